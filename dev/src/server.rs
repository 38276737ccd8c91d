//! The local HTTP server: every function's real handler under the HTTP API's paths, `GET
//! /health`, and the Stripe stand-in under `/stripe`. Requests are turned into the API Gateway
//! events the handlers get in Lambda; the caller's identity comes from the development header
//! `x-tollgate-account`, which only this runner reads (it becomes the JWT claim API Gateway's
//! authorizer would have verified, and the header itself is removed).

use crate::resources::Resources;
use anyhow::Context;
use axum::Router;
use axum::body::Body as AxumBody;
use axum::extract::{Request as AxumRequest, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response as AxumResponse};
use axum::routing::{any, get};
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};
use std::collections::HashMap;
use std::sync::Arc;
use tollgate::billing::StripeBilling;
use tollgate::config::{Env, IdentityConfig, RedirectConfig, Source, StripeConfig, vars};
use tollgate::notify::SqsNotifier;
use tollgate::queue::SqsEventQueue;
use tollgate::store::DynamoStore;
use tollgate::webhook::{DEV_WEBHOOK_SECRET, WebhookSecrets};
use tollgate_standin::StandIn;

/// The development identity header, honoured by this runner only.
pub const ACCOUNT_HEADER: &str = "x-tollgate-account";

/// The largest body the runner passes on; handlers enforce their own, smaller limits.
const MAX_FORWARDED_BODY: usize = 1024 * 1024;

/// Everything the local stack serves.
pub struct App {
    pub store: DynamoStore,
    pub events_queue: SqsEventQueue,
    pub identity: IdentityConfig,
    pub subscription: subscription::Deps<DynamoStore>,
    pub webhook_intake: webhook_intake::Deps<SqsEventQueue>,
    pub checkout: checkout::Deps<DynamoStore, StripeBilling>,
    pub worker: webhook_worker::Deps<DynamoStore, StripeBilling, SqsNotifier>,
    pub sync: sync::Deps<DynamoStore, StripeBilling, SqsNotifier>,
}

/// Stripe for the local stack: the stand-in served at `{base}/stripe/` (a test-mode-shaped
/// key that never leaves this machine).
pub fn standin_stripe(base: &str) -> StripeConfig {
    StripeConfig {
        secret_key: "sk_test_tollgate_local_standin".into(),
        api_base: Some(format!("{base}/stripe/")),
        timeout: std::time::Duration::from_secs(5),
        max_retries: 2,
    }
}

/// Redirects for the local stack: from the environment when `ALLOWED_REDIRECT_ORIGINS` is set,
/// else pages of the local stack itself.
pub fn local_redirects(base: &str) -> anyhow::Result<RedirectConfig> {
    if Env.get(vars::ALLOWED_REDIRECT_ORIGINS).is_some() {
        return Ok(RedirectConfig::load(&Env)?);
    }
    let defaults = |name: &str| match name {
        vars::ALLOWED_REDIRECT_ORIGINS => Some(base.to_owned()),
        vars::DEFAULT_SUCCESS_URL => Some(format!("{base}/billing/success")),
        vars::DEFAULT_CANCEL_URL => Some(format!("{base}/billing/cancel")),
        vars::DEFAULT_RETURN_URL => Some(format!("{base}/billing")),
        _ => None,
    };
    Ok(RedirectConfig::load(&defaults)?)
}

impl App {
    /// Wires the functions' dependencies for the given local resources.
    pub fn new(
        aws: &aws_config::SdkConfig,
        resources: &Resources,
        identity: IdentityConfig,
        stripe: &StripeConfig,
        redirects: RedirectConfig,
    ) -> anyhow::Result<Self> {
        let dynamo = tollgate::aws::dynamodb(aws);
        let store = DynamoStore::new(dynamo, resources.table.clone());
        let events_queue = SqsEventQueue::new(tollgate::aws::sqs(aws), resources.queue("EventsQueue")?.url.clone());
        let subscription = subscription::Deps::new(store.clone(), identity.clone())?;
        let secrets = Env.get(vars::STRIPE_WEBHOOK_SECRETS).unwrap_or_else(|| DEV_WEBHOOK_SECRET.to_owned());
        let secrets = WebhookSecrets::parse(&secrets).context(vars::STRIPE_WEBHOOK_SECRETS)?;
        // The local stack only ever receives test-mode events (the stand-in's or Stripe's test mode).
        let webhook_intake = webhook_intake::Deps::new(events_queue.clone(), secrets, false);
        let grace_days = Env.get(vars::GRACE_DAYS).and_then(|v| v.parse().ok()).unwrap_or(3);
        let checkout_config = tollgate::config::CheckoutConfig {
            table_name: resources.table.clone(),
            identity: identity.clone(),
            stripe: stripe.clone(),
            redirects,
            sessions_per_minute: Env.get(vars::CHECKOUT_SESSIONS_PER_MINUTE).and_then(|v| v.parse().ok()).unwrap_or(5),
            grace_days,
        };
        let checkout = checkout::Deps::new(store.clone(), StripeBilling::new(stripe)?, &checkout_config)?;
        let notifier = SqsNotifier::new(tollgate::aws::sqs(aws), resources.queue("NotificationsQueue")?.url.clone());
        let worker =
            webhook_worker::Deps::new(store.clone(), StripeBilling::new(stripe)?, notifier.clone(), grace_days)?;
        let sync = sync::Deps {
            worker: webhook_worker::Deps::new(store.clone(), StripeBilling::new(stripe)?, notifier, grace_days)?,
            pacing: std::time::Duration::from_millis(50),
        };
        Ok(Self { store, events_queue, identity, subscription, webhook_intake, checkout, worker, sync })
    }
}

/// The router of the local stack; `standin` is mounted under `/stripe` when given.
pub fn router(app: Arc<App>, standin: Option<&StandIn>) -> Router {
    let mut router = Router::new()
        .route("/health", get(health))
        .route("/_dev/sync", axum::routing::post(sync_fn))
        .route("/subscription", any(subscription_fn))
        .route("/entitlements", any(subscription_fn))
        .route("/webhooks/stripe", any(webhook_intake_fn))
        .route("/checkout", any(checkout_fn))
        .route("/portal", any(checkout_fn))
        .route("/subscription/change", any(checkout_fn))
        .route("/subscription/cancel", any(checkout_fn))
        .route("/account", any(checkout_fn))
        .fallback(not_found)
        .with_state(app);
    if let Some(standin) = standin {
        router = router.nest("/stripe", standin.router());
    }
    router
}

async fn not_found() -> AxumResponse {
    lambda_to_axum(tollgate::http::ApiError::not_found().into_response())
}

/// 200 when the table and the events queue both answer, 503 naming the one that did not.
async fn health(State(app): State<Arc<App>>) -> AxumResponse {
    let (table, queue) = tokio::join!(app.store.ping(), app.events_queue.ping());
    let ok = table.is_ok() && queue.is_ok();
    let state = |up: bool| if up { "ok" } else { "unreachable" };
    let sync = match table {
        Ok(()) => tollgate::store::SyncStore::outcome(&app.store).await.ok().flatten(),
        Err(_) => None,
    };
    let body = serde_json::json!({
        "status": if ok { "ok" } else { "unavailable" },
        "table": state(table.is_ok()),
        "queue": state(queue.is_ok()),
        "sync": sync,
    });
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(body)).into_response()
}

async fn subscription_fn(State(app): State<Arc<App>>, req: AxumRequest) -> AxumResponse {
    let req = match axum_to_lambda(req, &app.identity.claim).await {
        Ok(req) => req,
        Err(response) => return response,
    };
    match subscription::handle(&app.subscription, req).await {
        Ok(response) => lambda_to_axum(response),
        Err(err) => {
            tracing::error!(error = %err, "handler failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Runs one sync now (`?mode=full` for a full reconciliation); local runner only. Answers the
/// recorded outcome, 200 when the run finished or stopped at its deadline, 502 when it failed.
async fn sync_fn(
    State(app): State<Arc<App>>,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> AxumResponse {
    let mode =
        if query.get("mode").map(String::as_str) == Some("full") { sync::Mode::Full } else { sync::Mode::Replay };
    match sync::run(&app.sync, mode, &sync::Never).await {
        Ok(outcome) => (StatusCode::OK, axum::Json(serde_json::json!(outcome))).into_response(),
        Err(err) => {
            let outcome = tollgate::store::SyncStore::outcome(&app.store).await.ok().flatten();
            let body = serde_json::json!({ "error": err.to_string(), "outcome": outcome });
            (StatusCode::BAD_GATEWAY, axum::Json(body)).into_response()
        }
    }
}

async fn checkout_fn(State(app): State<Arc<App>>, req: AxumRequest) -> AxumResponse {
    match axum_to_lambda(req, &app.identity.claim).await {
        Ok(req) => respond(checkout::handle(&app.checkout, req).await),
        Err(response) => response,
    }
}

fn respond(result: Result<lambda_http::Response<Body>, lambda_http::Error>) -> AxumResponse {
    match result {
        Ok(response) => lambda_to_axum(response),
        Err(err) => {
            tracing::error!(error = %err, "handler failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn webhook_intake_fn(State(app): State<Arc<App>>, req: AxumRequest) -> AxumResponse {
    let req = match axum_to_lambda(req, &app.identity.claim).await {
        Ok(req) => req,
        Err(response) => return response,
    };
    match webhook_intake::handle(&app.webhook_intake, req).await {
        Ok(response) => lambda_to_axum(response),
        Err(err) => {
            tracing::error!(error = %err, "handler failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Turns a local HTTP request into the API Gateway (HTTP API, payload 2.0) request a handler
/// receives in Lambda, with the development identity as the verified JWT claim.
pub async fn axum_to_lambda(req: AxumRequest, claim: &str) -> Result<lambda_http::Request, AxumResponse> {
    let (mut parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORWARDED_BODY).await.map_err(|_| {
        lambda_to_axum(
            tollgate::http::ApiError::new(
                lambda_http::http::StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "request body too large",
            )
            .into_response(),
        )
    })?;
    let account = parts.headers.remove(ACCOUNT_HEADER).and_then(|v| v.to_str().ok().map(str::to_owned));
    let mut context = serde_json::json!({
        "requestId": uuid::Uuid::new_v4().to_string(),
        "stage": "$default",
        "http": { "method": parts.method.as_str(), "path": parts.uri.path(), "sourceIp": "127.0.0.1" },
    });
    if let Some(account) = account {
        context["authorizer"] = serde_json::json!({ "jwt": { "claims": { claim: account } } });
    }
    let context = serde_json::from_value(context).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())?;
    let query: HashMap<String, Vec<String>> = parts
        .uri
        .query()
        .map(|q| {
            serde_urlencoded::from_str::<Vec<(String, String)>>(q).unwrap_or_default().into_iter().fold(
                HashMap::new(),
                |mut map: HashMap<String, Vec<String>>, (k, v)| {
                    map.entry(k).or_default().push(v);
                    map
                },
            )
        })
        .unwrap_or_default();
    let body = if bytes.is_empty() {
        Body::Empty
    } else {
        match String::from_utf8(bytes.to_vec()) {
            Ok(text) => Body::Text(text),
            Err(raw) => Body::Binary(raw.into_bytes()),
        }
    };
    Ok(lambda_http::Request::from_parts(parts, body)
        .with_request_context(RequestContext::ApiGatewayV2(context))
        .with_query_string_parameters(query))
}

/// Turns a handler's response into the local server's.
pub fn lambda_to_axum(response: lambda_http::Response<Body>) -> AxumResponse {
    let (parts, body) = response.into_parts();
    let body = match body {
        Body::Empty => AxumBody::empty(),
        Body::Text(text) => AxumBody::from(text),
        Body::Binary(bytes) => AxumBody::from(bytes),
        _ => AxumBody::empty(),
    };
    AxumResponse::from_parts(parts, body)
}
