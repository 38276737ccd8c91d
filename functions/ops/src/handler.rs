//! The request handler: routes, requires the operator's IAM identity, calls one use case of
//! [`tollgate::app::ops`] and maps its answer or error to HTTP.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tollgate::adapters::aws::SdkConfig;
use tollgate::adapters::dynamo::DynamoStore;
use tollgate::adapters::sqs::{SqsDeadLetters, SqsNotifier};
use tollgate::adapters::stripe::StripeBilling;
use tollgate::app::Before;
use tollgate::app::ops::{OpsDeps, Queue, failed, redrive, replay};
use tollgate::edge::config::{OpsConfig, Source};
use tollgate::edge::http::identity::{operator, path_segment};
use tollgate::edge::http::{ApiError, json, json_body_within, query};
use tollgate::ports::accounts::AccountStore;
use tollgate::ports::billing::Billing;
use tollgate::ports::clock::Clock;
use tollgate::ports::credits::CreditStore;
use tollgate::ports::events::EventLog;
use tollgate::ports::invoices::InvoiceStore;
use tollgate::ports::notifier::Notifier;
use tollgate::ports::queue::DeadLetters;
use tollgate::ports::subscriptions::SubscriptionStore;
use tollgate::ports::sync::SyncStore;

/// The production dependencies, from the function's configuration in `src`.
pub fn wire(
    src: &impl Source,
    aws: &SdkConfig,
    clock: Arc<dyn Clock>,
) -> Result<OpsDeps<DynamoStore, StripeBilling, SqsNotifier, SqsDeadLetters>, Error> {
    tollgate::edge::wire::ops_deps(&OpsConfig::load(src)?, aws, clock)
}

/// How long one redrive request moves messages: well inside API Gateway's 30 s (a page's
/// receive, sends and deletes take well under a second); the answer says `more` after it.
pub const REDRIVE_BUDGET: Duration = Duration::from_secs(20);

/// The routes, with their method checked.
enum Route {
    Failed,
    Replay(String),
    Redrive(Queue),
    StartAdoption,
    Adoption,
}

fn route(req: &Request) -> Result<Route, ApiError> {
    let path = req.uri().path().trim_end_matches('/');
    let (route, method) = if path == "/operator/adoption" {
        if req.method() == Method::POST { (Route::StartAdoption, Method::POST) } else { (Route::Adoption, Method::GET) }
    } else if path == "/operator/events/failed" {
        (Route::Failed, Method::GET)
    } else if let Some(id) = path.strip_prefix("/operator/events/").and_then(|rest| rest.strip_suffix("/replay")) {
        // Not an event id when it does not decode: the use case refuses it as one.
        (Route::Replay(path_segment(id).unwrap_or_default()), Method::POST)
    } else if let Some(name) = path.strip_prefix("/operator/queues/").and_then(|rest| rest.strip_suffix("/redrive")) {
        let queue = path_segment(name).as_deref().and_then(Queue::parse).ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, "unknown_queue", "`queue` must be `events` or `notifications`")
        })?;
        (Route::Redrive(queue), Method::POST)
    } else {
        return Err(ApiError::not_found());
    };
    if req.method() != method {
        return Err(ApiError::method_not_allowed());
    }
    Ok(route)
}

/// Answers one request; errors become their JSON error response, never a Lambda failure.
pub async fn handle<S, B, N, D>(deps: &OpsDeps<S, B, N, D>, req: Request) -> Result<Response<Body>, Error>
where
    S: AccountStore + SubscriptionStore + EventLog + CreditStore + InvoiceStore + SyncStore,
    B: Billing,
    N: Notifier,
    D: DeadLetters,
{
    Ok(answer(deps, &req).await.unwrap_or_else(ApiError::into_response))
}

async fn answer<S, B, N, D>(deps: &OpsDeps<S, B, N, D>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: AccountStore + SubscriptionStore + EventLog + CreditStore + InvoiceStore + SyncStore,
    B: Billing,
    N: Notifier,
    D: DeadLetters,
{
    let route = route(req)?;
    let actor = operator(req)?;
    Ok(match route {
        Route::Failed => json(StatusCode::OK, &failed(&deps.events.store, query(req, "invalid_query")?).await?),
        Route::Replay(event_id) => {
            let answer = replay(&deps.events, &event_id).await?;
            tracing::info!(%actor, event_id, outcome = ?answer.outcome, "event replayed");
            json(StatusCode::OK, &answer)
        }
        Route::Redrive(queue) => {
            let deadline = Before::at(SystemTime::now() + REDRIVE_BUDGET);
            let answer = redrive(deps.dead_letters(queue), &deadline).await?;
            tracing::info!(%actor, ?queue, moved = answer.moved, more = answer.more, "dead letters redriven");
            json(StatusCode::OK, &answer)
        }
        Route::StartAdoption => {
            let request = json_body_within(req, tollgate::edge::http::MAX_ADOPTION_BODY_BYTES)?;
            let now = deps.events.settings.clock.now_ms();
            let key = deps.adopt_metadata_key.as_deref();
            let started = tollgate::app::adopt::start(&deps.events.store, now, key, request).await?;
            tracing::info!(%actor, apply = started.apply, "adoption started");
            json(StatusCode::ACCEPTED, &started)
        }
        Route::Adoption => json(StatusCode::OK, &tollgate::app::adopt::status(&deps.events.store).await?),
    })
}
