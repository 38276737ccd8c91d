//! The HTTP edge shared by every API function: the caller's identity, JSON bodies, and the one
//! place that turns an error into a status and a `{"error": {"code", "message"}}` body.

pub mod identity;

use crate::app::checkout::{CheckoutError, Field};
use crate::app::credits::CreditError;
use crate::app::keys::KeysError;
use crate::app::usage::{UsageAnswer, UsageError};
use crate::domain::apikeys::InvalidKeyRequest;
use crate::domain::usage::Policy;
use crate::edge::webhook::WebhookRejection;
use crate::ports::StoreError;
use crate::ports::billing::BillingError;
use crate::ports::queue::QueueError;
use lambda_http::http::{HeaderName, HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Largest JSON body an API function reads.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Largest body of a batch of consumptions: 100 records of up to about 400 bytes each.
pub const MAX_BATCH_BODY_BYTES: usize = 64 * 1024;
/// Largest body of `POST /operator/adoption`: room for a map of
/// [`crate::domain::adoption::MAX_MAP`] pairs of the longest ids.
pub const MAX_ADOPTION_BODY_BYTES: usize = 256 * 1024;

/// An error as the caller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds, sent as `Retry-After`.
    pub retry_after: Option<u64>,
    /// More headers (the rate-limit headers of a refused consumption).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Why access is denied, as the access decision's reason (`error.reason` in the body).
    pub reason: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None, headers: Vec::new(), reason: None }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "a verified caller identity is required")
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such route")
    }

    /// An `{account_id}` (or a batch record's `account_id`) that is no account id.
    pub fn invalid_account() -> Self {
        Self::bad_request("invalid_account", "`account_id` must be 1 to 128 of A-Z a-z 0-9 - _ . : @ |")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this route")
    }

    /// `405` with the `Allow` header naming the only method `allow` (a function URL, which
    /// takes every method).
    pub fn only(allow: &'static str) -> Self {
        Self {
            headers: vec![(header::ALLOW, HeaderValue::from_static(allow))],
            ..Self::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", format!("only {allow} is allowed"))
        }
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn too_many_requests(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many requests; retry later")
        }
    }

    fn unavailable(code: &'static str, message: &str, retry_after: Option<u64>) -> Self {
        Self { retry_after, ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message) }
    }

    /// The error's JSON body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message.clone(),
                reason: self.reason.clone(),
            },
        }
    }

    /// Turns the error into the response; 5xx bodies are generic by construction (their
    /// messages are written here, never copied from a cause).
    pub fn into_response(self) -> Response<Body> {
        let mut response = json(self.status, &self.body());
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response.headers_mut().extend(self.headers);
        response
    }
}

/// The body of every error answer: `{"error": {"code", "message", "reason"?}}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable machine-readable `code`, a message for people, and for a refused
/// metering call the access decision's `reason`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The answer of `POST /operator/usage/batch`: one result per record, in order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchAnswer {
    pub results: Vec<BatchResult>,
}

/// A batch record's answer: the status and body the single route would have answered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchResult {
    pub status: u16,
    pub body: BatchBody,
}

/// A batch record's body: the count, or the error.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum BatchBody {
    Counted(UsageAnswer),
    Refused(ErrorBody),
}

impl BatchAnswer {
    /// Each record's decision mapped as the single route maps it.
    pub fn of(results: Vec<Result<UsageAnswer, UsageError>>) -> Self {
        let results = results
            .into_iter()
            .map(|result| match result {
                Ok(answer) => BatchResult { status: StatusCode::OK.as_u16(), body: BatchBody::Counted(answer) },
                Err(err) => {
                    let err = ApiError::from(err);
                    BatchResult { status: err.status.as_u16(), body: BatchBody::Refused(err.body()) }
                }
            })
            .collect();
        Self { results }
    }
}

/// The webhook intake's answer to a delivery it accepted: `ignored` when Tollgate does not act
/// on the event's type (nothing was queued).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookAck {
    pub received: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignored: Option<bool>,
}

/// Logs an error with its whole cause chain (never shown to the caller).
fn log_chain(context: &str, err: &(dyn std::error::Error + 'static)) {
    let mut chain = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    tracing::error!(error = %chain, "{context}");
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match &err {
            StoreError::Conflict(what) => Self::conflict("conflict", *what),
            StoreError::Throttled(_) => {
                log_chain("store throttled", &err);
                Self::unavailable("store_busy", "the billing store is busy; retry shortly", Some(1))
            }
            StoreError::Unavailable(_) => {
                log_chain("store unavailable", &err);
                Self::unavailable("store_unavailable", "the billing store is unavailable; retry later", Some(5))
            }
            StoreError::Corrupt(_) => {
                log_chain("corrupt item", &err);
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
            }
        }
    }
}

impl From<BillingError> for ApiError {
    fn from(err: BillingError) -> Self {
        log_chain("stripe call failed", &err);
        match err {
            BillingError::RateLimited => {
                Self::unavailable("payment_provider_busy", "the payment provider is busy; retry shortly", Some(2))
            }
            BillingError::Unavailable(_) => Self::unavailable(
                "payment_provider_unavailable",
                "the payment provider is unavailable; retry later",
                Some(5),
            ),
            BillingError::Rejected { .. } | BillingError::NotFound => {
                Self::new(StatusCode::BAD_GATEWAY, "payment_provider_error", "the payment provider refused the request")
            }
        }
    }
}

impl From<CheckoutError> for ApiError {
    fn from(err: CheckoutError) -> Self {
        let message = err.to_string();
        match err {
            CheckoutError::Missing(field) => {
                let code = match field {
                    Field::Plan => "missing_plan",
                    Field::Pack => "missing_pack",
                    Field::Interval => "missing_interval",
                    Field::AtPeriodEnd => "missing_at_period_end",
                };
                Self::bad_request(code, message)
            }
            CheckoutError::UnknownInterval => Self::bad_request("unknown_interval", message),
            CheckoutError::UnknownPlan(_) => Self::bad_request("unknown_plan", message),
            CheckoutError::UnknownPack(_) => Self::bad_request("unknown_pack", message),
            CheckoutError::RedirectNotAllowed(_) => Self::bad_request("redirect_not_allowed", message),
            CheckoutError::SubscriptionExists => Self::conflict("subscription_exists", message),
            CheckoutError::NoCustomer => Self::conflict("no_customer", message),
            CheckoutError::NoSubscription(_) => Self::conflict("no_subscription", message),
            CheckoutError::SamePlan => Self::conflict("same_plan", message),
            CheckoutError::CustomerConflict => Self::conflict("customer_conflict", message),
            CheckoutError::RateLimited { retry_after_ms } => {
                Self::too_many_requests(crate::domain::ratelimit::retry_after_seconds(retry_after_ms))
            }
            CheckoutError::Store(err) => err.into(),
            CheckoutError::Billing(err) => err.into(),
        }
    }
}

impl From<KeysError> for ApiError {
    fn from(err: KeysError) -> Self {
        let message = err.to_string();
        match err {
            KeysError::Invalid(invalid) => {
                let code = match invalid {
                    InvalidKeyRequest::MissingName => "missing_name",
                    InvalidKeyRequest::InvalidName => "invalid_name",
                    InvalidKeyRequest::MissingScopes => "missing_scopes",
                    InvalidKeyRequest::UnknownScope(_) => "unknown_scope",
                    InvalidKeyRequest::InvalidExpiry => "invalid_expiry",
                    InvalidKeyRequest::InvalidOverlap => "invalid_overlap",
                };
                Self::bad_request(code, message)
            }
            KeysError::LimitReached(_) => Self::conflict("key_limit_reached", message),
            KeysError::NotFound => Self::new(StatusCode::NOT_FOUND, "key_not_found", message),
            KeysError::Revoked => Self::conflict("key_revoked", message),
            KeysError::Rotated => Self::conflict("key_rotated", message),
            KeysError::Random(_) => {
                log_chain("no random bytes for a key", &err);
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
            }
            KeysError::Store(err) => err.into(),
        }
    }
}

impl From<UsageError> for ApiError {
    fn from(err: UsageError) -> Self {
        let message = err.to_string();
        match err {
            UsageError::Invalid(_) => Self::bad_request("invalid_usage", message),
            UsageError::InvalidAccount => Self::invalid_account(),
            UsageError::AccessDenied(reason) => {
                let reason = serde_json::to_value(reason).ok().and_then(|v| v.as_str().map(str::to_owned));
                let message = format!("the account has no access ({})", reason.as_deref().unwrap_or("unknown"));
                Self { reason, ..Self::forbidden("access_denied", message) }
            }
            UsageError::IdempotencyMismatch => Self::conflict("idempotency_mismatch", message),
            UsageError::Refunded => Self::conflict("idempotency_key_refunded", message),
            UsageError::UnknownKey => Self::new(StatusCode::NOT_FOUND, "usage_not_found", message),
            UsageError::RateLimited { retry_after_ms, policies } => Self {
                headers: rate_limit_headers(&policies),
                ..Self::too_many_requests(crate::domain::ratelimit::retry_after_seconds(retry_after_ms))
            },
            UsageError::QuotaExceeded(answer) => {
                let reset = answer.policies.iter().find(|p| p.name == answer.metric).map_or(1, |p| p.reset_secs);
                Self {
                    retry_after: Some(reset.max(1)),
                    headers: rate_limit_headers(&answer.policies),
                    ..Self::new(StatusCode::TOO_MANY_REQUESTS, "quota_exceeded", message)
                }
            }
            UsageError::Store(err) => err.into(),
        }
    }
}

impl From<crate::app::invoices::ReadError> for ApiError {
    fn from(err: crate::app::invoices::ReadError) -> Self {
        match err {
            crate::app::invoices::ReadError::Invalid { code, message } => Self::bad_request(code, message),
            crate::app::invoices::ReadError::Store(err) => err.into(),
        }
    }
}

impl From<CreditError> for ApiError {
    fn from(err: CreditError) -> Self {
        let message = err.to_string();
        match err {
            CreditError::Invalid(_) => Self::bad_request("invalid_credits", message),
            CreditError::Insufficient { .. } => {
                Self::new(StatusCode::PAYMENT_REQUIRED, "insufficient_credits", message)
            }
            CreditError::IdempotencyMismatch => Self::conflict("idempotency_mismatch", message),
            CreditError::Refunded => Self::conflict("idempotency_key_refunded", message),
            CreditError::UnknownKey => Self::new(StatusCode::NOT_FOUND, "consumption_not_found", message),
            CreditError::Store(err) => err.into(),
        }
    }
}

/// The rate-limit headers of `policies`: `RateLimit-Policy` and `RateLimit` of the IETF
/// httpapi draft (every policy), and the older `RateLimit-Limit`, `RateLimit-Remaining` and
/// `RateLimit-Reset` for the tightest one. None without a policy (an unlimited tier).
pub fn rate_limit_headers(policies: &[Policy]) -> Vec<(HeaderName, HeaderValue)> {
    let Some(tightest) = crate::domain::usage::tightest(policies) else { return Vec::new() };
    let list = |item: &dyn Fn(&Policy) -> String| policies.iter().map(item).collect::<Vec<_>>().join(", ");
    let policy = list(&|p| format!("\"{}\";q={};w={}", p.name, p.quota, p.window_secs));
    let current = list(&|p| format!("\"{}\";r={};t={}", p.name, p.remaining, p.reset_secs));
    // Policy names are `minute` or a metric name (lowercase letters, digits, `_`): always
    // valid header text.
    let text = |value: String| HeaderValue::try_from(value).ok();
    [
        ("ratelimit-policy", text(policy)),
        ("ratelimit", text(current)),
        ("ratelimit-limit", Some(HeaderValue::from(tightest.quota))),
        ("ratelimit-remaining", Some(HeaderValue::from(tightest.remaining))),
        ("ratelimit-reset", Some(HeaderValue::from(tightest.reset_secs))),
    ]
    .into_iter()
    .filter_map(|(name, value)| Some((HeaderName::from_static(name), value?)))
    .collect()
}

/// `response` with `headers` added.
pub fn with_headers(mut response: Response<Body>, headers: Vec<(HeaderName, HeaderValue)>) -> Response<Body> {
    response.headers_mut().extend(headers);
    response
}

/// 413 for an oversized body, 500 for an unusable secret (a deployment error: Stripe retries
/// once it is fixed), 400 for everything else; the body never carries a secret or the payload.
impl From<WebhookRejection> for ApiError {
    fn from(rejection: WebhookRejection) -> Self {
        let status = match rejection {
            WebhookRejection::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            WebhookRejection::SecretUnusable => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        let message = match rejection {
            WebhookRejection::SecretUnusable => "internal error".to_owned(),
            _ => rejection.to_string(),
        };
        ApiError::new(status, rejection.code(), message)
    }
}

impl From<crate::app::ops::ReplayError> for ApiError {
    fn from(err: crate::app::ops::ReplayError) -> Self {
        use crate::app::ops::ReplayError;
        let message = err.to_string();
        match err {
            ReplayError::InvalidEventId => Self::new(StatusCode::BAD_REQUEST, "invalid_event_id", message),
            ReplayError::NotFound => Self::new(StatusCode::NOT_FOUND, "event_not_found", message),
            ReplayError::Store(err) => err.into(),
        }
    }
}

impl From<crate::app::adopt::AdoptError> for ApiError {
    fn from(err: crate::app::adopt::AdoptError) -> Self {
        use crate::app::adopt::AdoptError;
        let message = err.to_string();
        match err {
            AdoptError::Invalid(_) => Self::bad_request("invalid_adoption", message),
            AdoptError::Running => Self::conflict("adoption_running", message),
            AdoptError::Store(err) => err.into(),
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(err: QueueError) -> Self {
        log_chain("enqueue failed", &err);
        Self::unavailable("queue_unavailable", "could not accept the request; retry later", Some(5))
    }
}

/// A JSON response.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    let body = serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned());
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `response` made cacheable: `Cache-Control: public, max-age=<max_age>` and a strong `ETag`
/// (the SHA-256 of its body); `304 Not Modified` without a body when the request's
/// `If-None-Match` names that tag (or `*`).
pub fn cacheable(req: &Request, mut response: Response<Body>, max_age: u32) -> Response<Body> {
    use sha2::{Digest, Sha256};
    let digest = hex::encode(Sha256::digest(response.body().as_ref()));
    let etag = format!("\"{}\"", digest.get(..32).unwrap_or(&digest));
    let weak = format!("W/{etag}");
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').map(str::trim).any(|tag| tag == etag || tag == weak || tag == "*"));
    if matches {
        *response.body_mut() = Body::Empty;
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response.headers_mut().remove(header::CONTENT_TYPE);
    }
    let headers = response.headers_mut();
    if let Ok(control) = HeaderValue::try_from(format!("public, max-age={max_age}")) {
        headers.insert(header::CACHE_CONTROL, control);
    }
    if let Ok(tag) = HeaderValue::try_from(etag) {
        headers.insert(header::ETAG, tag);
    }
    response
}

/// The request's query string as `T`; `code` names the error of one that does not read.
pub fn query<T: DeserializeOwned>(req: &Request, code: &'static str) -> Result<T, ApiError> {
    serde_urlencoded::from_str(req.uri().query().unwrap_or_default())
        .map_err(|e| ApiError::bad_request(code, format!("invalid query: {e}")))
}

/// Parses a JSON request body of at most `MAX_BODY_BYTES`; an empty body reads as `{}` so
/// that requests whose fields are all optional need none.
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    json_body_within(req, MAX_BODY_BYTES)
}

/// [`json_body`] with a limit of its own: `POST /operator/usage/batch` reads up to
/// [`MAX_BATCH_BODY_BYTES`], room for 100 records with the longest idempotency keys.
pub fn json_body_within<T: DeserializeOwned>(req: &Request, max: usize) -> Result<T, ApiError> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body over {max} bytes"),
        ));
    }
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { bytes };
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request("malformed_body", format!("invalid JSON body: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_code_and_message_and_retry_after() {
        let response = ApiError::too_many_requests(7).into_response();

        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
        let body: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();
        assert_eq!(body["error"]["code"], "rate_limited");
        assert!(body["error"]["message"].is_string());
    }

    #[test]
    fn store_outage_is_503_with_a_generic_message() {
        let err = StoreError::Unavailable("dispatch failure: connection refused to 10.0.0.1 secret".into());

        let api = ApiError::from(err);

        assert_eq!(api.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!api.message.contains("10.0.0.1"));
        assert_eq!(ApiError::from(StoreError::Conflict("x")).status, StatusCode::CONFLICT);
    }

    #[test]
    fn oversized_and_malformed_bodies_are_refused() {
        let big = Request::new(Body::Text(format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_BODY_BYTES))));
        let bad = Request::new(Body::Text("{not json".into()));
        let empty = Request::new(Body::Empty);

        assert_eq!(json_body::<serde_json::Value>(&big).unwrap_err().status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(json_body::<serde_json::Value>(&bad).unwrap_err().code, "malformed_body");
        assert_eq!(json_body::<serde_json::Value>(&empty).unwrap(), serde_json::json!({}));
    }

    #[test]
    fn refused_consumptions_carry_the_rate_limit_headers_and_their_reason() {
        let minute = Policy { name: "minute".into(), quota: 10, remaining: 0, reset_secs: 42, window_secs: 60 };
        let quota =
            Policy { name: "api_calls".into(), quota: 100, remaining: 7, reset_secs: 86_400, window_secs: 2_592_000 };

        let limited = ApiError::from(UsageError::RateLimited { retry_after_ms: 41_001, policies: vec![minute, quota] })
            .into_response();
        let denied = ApiError::from(UsageError::AccessDenied(crate::domain::access::Reason::Unpaid)).into_response();

        assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
        let h = limited.headers();
        assert_eq!(h[header::RETRY_AFTER], "42");
        assert_eq!(h["ratelimit-policy"], r#""minute";q=10;w=60, "api_calls";q=100;w=2592000"#);
        assert_eq!(h["ratelimit"], r#""minute";r=0;t=42, "api_calls";r=7;t=86400"#);
        assert_eq!(
            (&h["ratelimit-limit"], &h["ratelimit-remaining"], &h["ratelimit-reset"]),
            (&"10".try_into().unwrap(), &"0".try_into().unwrap(), &"42".try_into().unwrap())
        );
        assert_eq!(denied.status(), StatusCode::FORBIDDEN);
        let body: serde_json::Value = serde_json::from_slice(denied.body().as_ref()).unwrap();
        assert_eq!(
            (body["error"]["code"].as_str(), body["error"]["reason"].as_str()),
            (Some("access_denied"), Some("unpaid"))
        );
        assert!(rate_limit_headers(&[]).is_empty(), "an unlimited tier sends none");
    }
}
