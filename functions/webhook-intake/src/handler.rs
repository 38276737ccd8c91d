//! The request handler, generic over its queue so tests and the local stack call it directly.
//!
//! | answer | when |
//! |---|---|
//! | 200 `{"received":true}` | verified, handled type, and the queue accepted the message |
//! | 200 `{"received":true,"ignored":true}` | verified, a type Tollgate does not use (not enqueued) |
//! | 400 `missing_signature`, `malformed_signature`, `bad_signature`, `stale_timestamp`, `body_not_utf8`, `malformed_json`, `wrong_livemode` | see [`tollgate::edge::webhook::WebhookRejection`] |
//! | 405 `method_not_allowed`, `Allow: POST` | anything but `POST` (a function URL takes every method) |
//! | 413 `body_too_large` | body over [`tollgate::edge::webhook::MAX_WEBHOOK_BODY_BYTES`] (512 KiB) |
//! | 503 `queue_unavailable` | the queue did not accept the message (Stripe retries) |
//!
//! Only the event id, type and outcome are logged, never the payload or a secret.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use std::sync::Arc;
use tollgate::adapters::aws::SdkConfig;
use tollgate::adapters::sqs::SqsEventQueue;
use tollgate::edge::config::{Source, WebhookIntakeConfig};
use tollgate::edge::http::{ApiError, WebhookAck, json};
use tollgate::edge::webhook::{SIGNATURE_HEADER, WebhookRejection, WebhookSecrets, verify};
use tollgate::ports::clock::{Clock, SystemClock};
use tollgate::ports::queue::EventQueue;

/// What the handler needs.
pub struct Deps<Q> {
    pub queue: Q,
    pub secrets: WebhookSecrets,
    /// The mode of the Stripe account's endpoint; events of the other mode are refused.
    pub livemode: bool,
    pub clock: Arc<dyn Clock>,
}

impl<Q> Deps<Q> {
    /// Production dependencies: the system clock.
    pub fn new(queue: Q, secrets: WebhookSecrets, livemode: bool) -> Self {
        Self { queue, secrets, livemode, clock: Arc::new(SystemClock) }
    }
}

/// The production dependencies, from the function's configuration in `src`.
pub fn wire(src: &impl Source, aws: &SdkConfig, clock: Arc<dyn Clock>) -> Result<Deps<SqsEventQueue>, Error> {
    let config = WebhookIntakeConfig::load(src)?;
    let queue = SqsEventQueue::new(tollgate::adapters::aws::sqs(aws), config.events_queue_url);
    Ok(Deps { clock, ..Deps::new(queue, config.secrets, config.livemode) })
}

/// Answers one delivery; errors become their JSON error response, never a Lambda failure.
/// A 2xx is returned only after the queue accepted the message (or for an ignored type).
pub async fn handle<Q: EventQueue>(deps: &Deps<Q>, req: Request) -> Result<Response<Body>, Error> {
    Ok(answer(deps, &req).await.unwrap_or_else(ApiError::into_response))
}

async fn answer<Q: EventQueue>(deps: &Deps<Q>, req: &Request) -> Result<Response<Body>, ApiError> {
    if req.method() != Method::POST {
        return Err(ApiError::only("POST"));
    }
    let signature = match req.headers().get(SIGNATURE_HEADER) {
        None => None,
        Some(value) => Some(value.to_str().map_err(|_| rejected(WebhookRejection::MalformedSignature))?),
    };
    let envelope =
        verify(req.body().as_ref(), signature, &deps.secrets, deps.livemode, deps.clock.now()).map_err(rejected)?;
    let (event_id, event_type) = (envelope.id.as_str(), envelope.event_type.as_str());
    if !envelope.is_handled() {
        tracing::info!(event_id, event_type, outcome = "ignored", "webhook event");
        return Ok(json(StatusCode::OK, &WebhookAck { received: true, ignored: Some(true) }));
    }
    if let Err(err) = deps.queue.enqueue(&envelope.to_message()).await {
        tracing::warn!(event_id, event_type, outcome = "enqueue_failed", "webhook event");
        return Err(err.into());
    }
    tracing::info!(event_id, event_type, outcome = "enqueued", "webhook event");
    Ok(json(StatusCode::OK, &WebhookAck { received: true, ignored: None }))
}

fn rejected(rejection: WebhookRejection) -> ApiError {
    tracing::warn!(outcome = "rejected", code = rejection.code(), "webhook delivery");
    rejection.into()
}
