//! The `/api/...` routes' Lambda authorizer, run by the local runner as API Gateway runs it:
//! a request without an `Authorization` header is answered 401 without calling it (its
//! identity source), a refusal is a bare 403, a failure a bare 500, and an allowed request
//! reaches its function with the authorizer's context as `requestContext.authorizer.lambda`.
//! The development header `x-tollgate-account` plays no part here.

use aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response as AxumResponse};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tollgate::ports::clock::Clock;

type Answer = Pin<Box<dyn Future<Output = Result<authorizer::SimpleResponse, lambda_runtime::Error>> + Send>>;

/// A Lambda authorizer's handler, as the runner calls it.
pub type AuthorizerHandler = Arc<dyn Fn(ApiGatewayV2CustomAuthorizerV2Request) -> Answer + Send + Sync>;

/// The Lambda authorizer whose binary is `binary`, built by its own `wire`, deciding on the
/// time of `clock`.
pub fn authorizer_function(
    binary: &str,
    src: &crate::env::LocalEnv,
    aws: &aws_config::SdkConfig,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<AuthorizerHandler> {
    anyhow::ensure!(
        binary == "authorizer",
        "template.yaml names the authorizer {binary}, which the runner does not know"
    );
    let deps = authorizer::wire(src, aws, clock).map_err(|e| anyhow::anyhow!("authorizer: {e}"))?;
    let deps = Arc::new(deps);
    Ok(Arc::new(move |request| {
        let deps = Arc::clone(&deps);
        Box::pin(async move { authorizer::handle(&deps, request).await })
    }))
}

/// API Gateway's own answers, which do not use Tollgate's error format.
fn gateway(status: StatusCode, message: &str) -> AxumResponse {
    (status, axum::Json(serde_json::json!({ "message": message }))).into_response()
}

/// Runs `authorizer` on a request for `route_key` (`GET /api/subscription`): the context to
/// pass on, or API Gateway's answer.
pub async fn authorize(
    authorizer: &AuthorizerHandler,
    route_key: &str,
    parts: &Parts,
    request_context: &serde_json::Value,
) -> Result<serde_json::Value, AxumResponse> {
    let authorization = parts.headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let Some(authorization) = authorization.filter(|v| !v.trim().is_empty()) else {
        return Err(gateway(StatusCode::UNAUTHORIZED, "Unauthorized"));
    };
    let headers: serde_json::Map<String, serde_json::Value> = parts
        .headers
        .keys()
        .filter_map(|name| {
            let values: Vec<&str> = parts.headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
            (!values.is_empty()).then(|| (name.as_str().to_owned(), values.join(",").into()))
        })
        .collect();
    let event = serde_json::json!({
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": format!("arn:aws:execute-api:us-east-1:000000000000:local/$default/{}", route_key.replacen(' ', "", 1)),
        "identitySource": [authorization],
        "routeKey": route_key,
        "rawPath": parts.uri.path(),
        "rawQueryString": parts.uri.query().unwrap_or_default(),
        "headers": headers,
        "requestContext": request_context,
    });
    let request: ApiGatewayV2CustomAuthorizerV2Request = serde_json::from_value(event)
        .map_err(|_| gateway(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"))?;
    match authorizer(request).await {
        Ok(answer) if answer.is_authorized => Ok(serde_json::to_value(answer.context).unwrap_or_default()),
        Ok(_) => Err(gateway(StatusCode::FORBIDDEN, "Forbidden")),
        Err(err) => {
            tracing::error!(error = %err, "authorizer failed");
            Err(gateway(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"))
        }
    }
}
