//! The authorizer's handler: reads the `Authorization` header and the route key of the
//! request, calls the core's decision ([`tollgate::app::keys::authorize`]) and answers API
//! Gateway's simple response. A refusal is `{"isAuthorized": false}` (API Gateway answers the
//! caller a bare 403); a store failure is an error (API Gateway answers 500), never a refusal,
//! so an outage does not look like a bad key. Logs name the key id and the reason, never the
//! key.

use aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use http::header::AUTHORIZATION;
use lambda_runtime::Error;
use serde::Serialize;
use std::sync::Arc;
use tollgate::adapters::aws::SdkConfig;
use tollgate::adapters::dynamo::DynamoStore;
use tollgate::app::keys::{AuthorizerDeps, Caller, Decision, authorize};
use tollgate::edge::config::{AuthorizerConfig, Source};
use tollgate::ports::api_keys::ApiKeyStore;
use tollgate::ports::clock::Clock;
use tollgate::ports::subscriptions::SubscriptionStore;

/// What the handler needs.
pub type Deps<S> = AuthorizerDeps<S>;

/// The production dependencies, from the function's configuration in `src`.
pub fn wire(src: &impl Source, aws: &SdkConfig, clock: Arc<dyn Clock>) -> Result<Deps<DynamoStore>, Error> {
    let config = AuthorizerConfig::load(src)?;
    Ok(Deps { store: tollgate::edge::wire::store(aws, &config.table_name), clock })
}

/// API Gateway's simple response: `{"isAuthorized": bool, "context": {...}}`; the context
/// (account_id, key_id, tier, scopes) reaches the route's function as
/// `requestContext.authorizer.lambda`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimpleResponse {
    pub is_authorized: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<Caller>,
}

/// Decides on one request.
pub async fn handle<S>(deps: &Deps<S>, request: ApiGatewayV2CustomAuthorizerV2Request) -> Result<SimpleResponse, Error>
where
    S: ApiKeyStore + SubscriptionStore,
{
    let authorization = request.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    let route = request.route_key.as_deref().unwrap_or_default();
    match authorize(deps, authorization, route).await {
        Ok(Decision::Allow(caller)) => {
            tracing::info!(account = %caller.account_id, key_id = %caller.key_id, route, "api key allowed");
            Ok(SimpleResponse { is_authorized: true, context: Some(caller) })
        }
        Ok(Decision::Deny { reason, key_id }) => {
            let key_id = key_id.map(|id| id.to_string());
            tracing::info!(?reason, key_id, route, "api key refused");
            Ok(SimpleResponse { is_authorized: false, context: None })
        }
        Err(err) => {
            tracing::error!(error = %err, cause = ?std::error::Error::source(&err).map(ToString::to_string), route, "api key check failed");
            Err(Box::new(err))
        }
    }
}
