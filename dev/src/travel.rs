//! Moving the local stack's clock (`POST /_dev/clock`, `tollgate-dev clock`) as Stripe's test
//! clocks move: the clock stops at each moment the Stripe stand-in has something due (a trial's
//! notice or end, a renewal, a payment attempt or retry, a cancellation at a period's end, a
//! Checkout Session's expiry), the stand-in performs it, and its events are delivered signed to
//! the intake at that moment, in time order, before the clock goes on. Asked to wait until they
//! are applied ([`Wait::Applied`]), the move also runs the events queue through the worker after
//! each moment. With the sync following the clock ([`crate::gateway::App::sync_follows_clock`],
//! `up --sync-every`), it runs once per stack-time day crossed (after that day's events were
//! delivered) and once at the end. Last, items whose `expires_at` passed on the clock are
//! deleted, as DynamoDB's TTL would eventually delete them (moto neither expires items nor
//! follows a fake clock).

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::QueueAttributeName;
use axum::body::Body;
use axum::http::{Request, header};
use serde_json::Value;
use tollgate::ports::clock::Clock;

use crate::clock::ClockError;
use crate::gateway::{App, WEBHOOK_PATH};
use crate::trigger::STRIPE_USER_AGENT;

const DAY: i64 = 86_400;
/// How long a move waits for the worker to apply what it delivered.
const APPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// When a move answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Wait {
    /// Once every event was accepted by the intake (queued).
    #[default]
    Accepted,
    /// Once the worker also applied them: the queue is empty and nothing is in flight.
    Applied,
}

/// Why a move failed.
#[derive(Debug, thiserror::Error)]
pub enum TravelError {
    #[error(transparent)]
    Clock(#[from] ClockError),
    /// The stack has no clock of its own (it runs on the system clock).
    #[error("this stack runs on the system clock")]
    NoClock,
    /// The intake refused events (they stay in the stand-in's event list for the sync).
    #[error("the intake did not accept {0}")]
    Refused(String),
    /// The worker did not apply the delivered events in time.
    #[error("the worker did not apply the delivered events within {0:?}: {1}")]
    NotApplied(Duration, String),
}

/// Moves the stack's clock to `to` (Unix seconds, not before its time), playing what the
/// stand-in has due on the way; answers the time reached.
pub async fn travel(app: &Arc<App>, to: i64, wait: Wait) -> Result<i64, TravelError> {
    let clock = app.clock.as_ref().ok_or(TravelError::NoClock)?;
    let start = clock.now();
    if to < start {
        return Err(ClockError::Backwards { requested: to, now: start }.into());
    }
    clock.set(start)?; // refuses at once when the clock is fixed (real Stripe)
    let mut refused = Vec::new();
    let mut day = start.div_euclid(DAY);
    loop {
        let due = app.standin.as_ref().and_then(tollgate_standin::StandIn::next_due).filter(|at| *at <= to);
        let midnight = (day + 1) * DAY;
        let sync_due = (app.sync_follows_clock && midnight <= to).then_some(midnight);
        let Some(next) = [due, sync_due].into_iter().flatten().min() else { break };
        clock.set(next.max(clock.now()))?;
        if due == Some(next) {
            let standin = app.standin.as_ref().expect("a due moment comes from the stand-in");
            let events = standin.play_due();
            if events.is_empty() && standin.next_due() == Some(next) {
                tracing::warn!(at = next, "the stand-in could not perform what was due; the clock goes on");
                break;
            }
            refused.extend(deliver(app, &events).await);
            if wait == Wait::Applied {
                drain(app).await?;
            }
        }
        if app.sync_follows_clock && clock.now() >= midnight {
            sync_once(app).await;
            day = clock.now().div_euclid(DAY);
        }
    }
    let reached = clock.set(to.max(clock.now()))?;
    sweep_expired(app, reached).await;
    if app.sync_follows_clock {
        sync_once(app).await;
    }
    if wait == Wait::Applied {
        drain(app).await?;
    }
    if !refused.is_empty() {
        return Err(TravelError::Refused(refused.join("; ")));
    }
    Ok(reached)
}

/// Signs each event at the stack's time and posts it to the intake as Stripe would; answers
/// a line for each event the intake did not accept.
pub async fn deliver(app: &Arc<App>, events: &[Value]) -> Vec<String> {
    let mut refused = Vec::new();
    for event in events {
        let body = event.to_string();
        let signed_at = app.clock.as_ref().map_or_else(|| tollgate::ports::clock::SystemClock.now(), |c| c.now());
        let signature = stripe_webhook::Webhook::generate_test_header(&body, &app.signing_secret, Some(signed_at));
        let request = Request::post(WEBHOOK_PATH)
            .header("Stripe-Signature", signature)
            .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
            .header(header::USER_AGENT, STRIPE_USER_AGENT)
            .body(Body::from(body));
        let status = match request {
            Ok(request) => crate::gateway::serve(Arc::clone(app), WEBHOOK_PATH, request).await.status(),
            Err(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        };
        if !status.is_success() {
            refused.push(format!("{} {}: HTTP {}", event["type"], event["id"], status.as_u16()));
        }
    }
    refused
}

/// Runs the events queue through the worker until nothing is waiting or in flight.
async fn drain(app: &App) -> Result<(), TravelError> {
    let deadline = tokio::time::Instant::now() + APPLY_TIMEOUT;
    loop {
        let polled = crate::worker::poll_once(app, &app.sqs, &app.events_url).await;
        let pending = match polled {
            Ok(0) => pending(app).await,
            Ok(_) => continue,
            Err(error) => Err(error.to_string()),
        };
        match pending {
            Ok(0) => return Ok(()),
            Ok(count) if tokio::time::Instant::now() >= deadline => {
                return Err(TravelError::NotApplied(APPLY_TIMEOUT, format!("{count} message(s) still queued")));
            }
            Err(why) if tokio::time::Instant::now() >= deadline => {
                return Err(TravelError::NotApplied(APPLY_TIMEOUT, why));
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Messages waiting or in flight on the events queue.
async fn pending(app: &App) -> Result<u64, String> {
    let attributes = app
        .sqs
        .get_queue_attributes()
        .queue_url(&app.events_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(|error| error.to_string())?;
    let count = |name: QueueAttributeName| {
        attributes.attributes().and_then(|a| a.get(&name)).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
    };
    Ok(count(QueueAttributeName::ApproximateNumberOfMessages)
        + count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
}

async fn sync_once(app: &App) {
    let run = tollgate::app::sync::run(&app.sync, tollgate::app::sync::Mode::Replay, &tollgate::app::Never);
    if let Err(error) = run.await {
        tracing::warn!(%error, "the sync of a clock move failed");
    }
}

/// Deletes every item of the table whose `expires_at` is before `now`, as DynamoDB's TTL
/// deletes expired items; answers how many.
pub async fn sweep_expired(app: &App, now: i64) -> usize {
    let mut deleted = 0;
    let mut start = None;
    loop {
        let page = app
            .dynamodb
            .scan()
            .table_name(&app.table)
            .filter_expression("expires_at < :now")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .projection_expression("pk, sk")
            .set_exclusive_start_key(start)
            .send()
            .await;
        let page = match page {
            Ok(page) => page,
            Err(error) => {
                tracing::warn!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(&error), "the TTL sweep could not scan");
                return deleted;
            }
        };
        for key in page.items() {
            let removed = app
                .dynamodb
                .delete_item()
                .table_name(&app.table)
                .set_key(Some(key.clone()))
                .condition_expression("expires_at < :now")
                .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
                .send()
                .await;
            deleted += usize::from(removed.is_ok());
        }
        match page.last_evaluated_key() {
            Some(last) => start = Some(last.clone()),
            None => return deleted,
        }
    }
}

/// Serves `standin`'s hosted pages (Checkout, the portal, invoices) at `{base}/stripe/...`, the
/// URLs its API answers, and delivers the events their actions record to the stack's intake
/// (signed at the stack's time, as [`deliver`] does) before the page moves on.
pub fn host_pages(app: &Arc<App>, standin: &tollgate_standin::StandIn, base: &str) {
    standin.set_public_base(&format!("{}{}", base.trim_end_matches('/'), crate::trigger::STANDIN_PREFIX));
    // Weak: the app holds its stand-in, which holds this.
    let app = Arc::downgrade(app);
    standin.set_delivery(Arc::new(move |events| {
        let app = app.clone();
        Box::pin(async move {
            let Some(app) = app.upgrade() else { return };
            for refused in deliver(&app, &events).await {
                tracing::warn!(%refused, "the local intake refused an event of a hosted page");
            }
        })
    }));
}
