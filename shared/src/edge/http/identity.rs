//! Who is calling, from the verified identity of the route set the request came through only:
//! the JWT claim (customer routes), the API key authorizer's context (`/api/...`), the IAM
//! principal (`/operator/...`, with the account in the path). Headers and bodies are never
//! consulted.

use super::ApiError;
use crate::domain::apikeys::Scope;
use crate::domain::model::AccountId;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

/// The caller's account id, from the verified identity only: a JWT claim checked by API
/// Gateway's authorizer, or the context a Lambda authorizer returned. Headers, path and body
/// are never consulted.
pub fn account_id(req: &Request, claim: &str) -> Result<AccountId, ApiError> {
    let Some(RequestContext::ApiGatewayV2(context)) = req.request_context_ref() else {
        return Err(ApiError::unauthorized());
    };
    let authorizer = context.authorizer.as_ref().ok_or_else(ApiError::unauthorized)?;
    let from_jwt = authorizer.jwt.as_ref().and_then(|jwt| jwt.claims.get(claim)).cloned();
    let from_lambda = || authorizer.fields.get(claim).and_then(|v| v.as_str()).map(str::to_owned);
    let raw = from_jwt.or_else(from_lambda).ok_or_else(ApiError::unauthorized)?;
    AccountId::parse(&raw).map_err(|_| ApiError::unauthorized())
}

/// The caller's account on an `/api/...` route, from the context the API key authorizer
/// returned (never a JWT claim, header, path or body), if its key holds `scope`: 401 without
/// that context, 403 `insufficient_scope` without the scope. The authorizer checks the scope
/// too; checking it here keeps the route closed if the two ever disagree.
pub fn api_key_account(req: &Request, scope: Scope) -> Result<AccountId, ApiError> {
    let Some(RequestContext::ApiGatewayV2(context)) = req.request_context_ref() else {
        return Err(ApiError::unauthorized());
    };
    let fields = &context.authorizer.as_ref().ok_or_else(ApiError::unauthorized)?.fields;
    let field = |name: &str| fields.get(name).and_then(|v| v.as_str());
    let account = field("account_id").and_then(|raw| AccountId::parse(raw).ok()).ok_or_else(ApiError::unauthorized)?;
    if !crate::domain::apikeys::scopes_from_string(field("scopes").unwrap_or_default()).contains(&scope) {
        return Err(ApiError::forbidden("insufficient_scope", format!("this API key lacks the scope {scope}")));
    }
    Ok(account)
}

/// The operator (the product's backend) on an `/operator/...` route: the IAM principal's ARN
/// API Gateway verified (SigV4) and put in the request context; never a header, path or body.
/// 403 without it (API Gateway never passes such a request to the function).
pub fn operator(req: &Request) -> Result<String, ApiError> {
    let Some(RequestContext::ApiGatewayV2(context)) = req.request_context_ref() else {
        return Err(ApiError::forbidden("forbidden", "an operator route needs a SigV4-signed IAM identity"));
    };
    context
        .authorizer
        .as_ref()
        .and_then(|a| a.iam.as_ref())
        .and_then(|iam| iam.user_arn.clone())
        .filter(|arn| !arn.is_empty())
        .ok_or_else(|| ApiError::forbidden("forbidden", "an operator route needs a SigV4-signed IAM identity"))
}

/// An operator route's `{account_id}` path segment, percent-decoded and validated as a JWT
/// claim is (`auth0%7C123` is `auth0|123`): `400 invalid_account` otherwise.
/// A path segment as sent, percent-decoded; `None` when it is not UTF-8 once decoded.
pub fn path_segment(segment: &str) -> Option<String> {
    percent_encoding::percent_decode_str(segment).decode_utf8().ok().map(|s| s.into_owned())
}

pub fn path_account(segment: &str) -> Result<AccountId, ApiError> {
    let decoded =
        percent_encoding::percent_decode_str(segment).decode_utf8().map_err(|_| ApiError::invalid_account())?;
    AccountId::parse(&decoded).map_err(|_| ApiError::invalid_account())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http::{HeaderValue, StatusCode};

    fn request_with_context(context: serde_json::Value) -> Request {
        let context: lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext =
            serde_json::from_value(context).unwrap();
        Request::default().with_request_context(RequestContext::ApiGatewayV2(context))
    }

    #[test]
    fn account_comes_from_the_configured_jwt_claim() {
        let req = request_with_context(serde_json::json!({
            "http": {"method": "GET", "path": "/subscription"},
            "authorizer": {"jwt": {"claims": {"sub": "user_1", "org": "acct_9"}, "scopes": null}}
        }));

        assert_eq!(account_id(&req, "org").unwrap().as_str(), "acct_9");
        assert_eq!(account_id(&req, "sub").unwrap().as_str(), "user_1");
        assert_eq!(account_id(&req, "tenant").unwrap_err().status, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn identity_header_alone_is_not_an_identity() {
        let mut req = Request::default();
        req.headers_mut().insert("x-tollgate-account", HeaderValue::from_static("acct_1"));

        assert_eq!(account_id(&req, "sub").unwrap_err().status, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn claim_that_could_forge_a_key_is_refused() {
        let req = request_with_context(serde_json::json!({
            "http": {"method": "GET", "path": "/"},
            "authorizer": {"jwt": {"claims": {"sub": "a#PROFILE"}}}
        }));

        assert_eq!(account_id(&req, "sub").unwrap_err().code, "unauthorized");
    }

    #[test]
    fn api_key_routes_take_the_account_from_the_authorizers_context_only() {
        let key = |scopes: &str| {
            request_with_context(serde_json::json!({
                "http": {"method": "GET", "path": "/api/subscription"},
                "authorizer": {"lambda": {"account_id": "acct_7", "tier": "pro", "scopes": scopes}}
            }))
        };
        let jwt = request_with_context(serde_json::json!({
            "http": {"method": "GET", "path": "/api/subscription"},
            "authorizer": {"jwt": {"claims": {"sub": "acct_1", "account_id": "acct_1"}}}
        }));

        assert_eq!(api_key_account(&key("subscription:read"), Scope::SubscriptionRead).unwrap().as_str(), "acct_7");
        let narrow = api_key_account(&key("usage:read"), Scope::SubscriptionRead).unwrap_err();
        assert_eq!((narrow.status, narrow.code), (StatusCode::FORBIDDEN, "insufficient_scope"));
        assert_eq!(api_key_account(&jwt, Scope::SubscriptionRead).unwrap_err().status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            api_key_account(&Request::default(), Scope::SubscriptionRead).unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
    }
}
