//! `sync`: the scheduled safety net for webhooks that never arrived. The run itself is the
//! core's [`tollgate::app::sync::run`]; this crate reads the schedule's input and deadline.

use lambda_runtime::{Error, LambdaEvent};
use std::sync::Arc;
use std::time::Duration;
use tollgate::adapters::aws::SdkConfig;
use tollgate::adapters::dynamo::DynamoStore;
use tollgate::adapters::sqs::SqsNotifier;
use tollgate::adapters::stripe::StripeBilling;
use tollgate::app::Before;
use tollgate::app::sync::{Mode, SyncDeps, run};
use tollgate::edge::config::{Source, WorkerConfig};
use tollgate::ports::accounts::AccountStore;
use tollgate::ports::billing::Billing;
use tollgate::ports::clock::Clock;
use tollgate::ports::credits::CreditStore;
use tollgate::ports::events::EventLog;
use tollgate::ports::invoices::InvoiceStore;
use tollgate::ports::meter::MeterStore;
use tollgate::ports::notifier::Notifier;
use tollgate::ports::subscriptions::SubscriptionStore;
use tollgate::ports::sync::SyncStore;

/// Pause between Stripe list calls: keeps a run under Stripe's rate limit (about 25
/// requests/s in test mode).
pub const PACING: Duration = Duration::from_millis(100);

/// Pause after each meter call: at most 500 a second, half of Stripe's meter event limit.
pub const METER_PACING: Duration = Duration::from_millis(2);

/// The production dependencies, from the function's configuration in `src`.
pub fn wire(
    src: &impl Source,
    aws: &SdkConfig,
    clock: Arc<dyn Clock>,
) -> Result<SyncDeps<DynamoStore, StripeBilling, SqsNotifier>, Error> {
    let config = WorkerConfig::load(src)?;
    let events = tollgate::edge::wire::event_deps(&config, aws, clock)?;
    Ok(SyncDeps { events, pacing: PACING, meter_pacing: METER_PACING, adopt_metadata_key: config.adopt_metadata_key })
}

/// No unit of work starts in the invocation's last this long: one unit's Stripe calls at their
/// worst ([`tollgate::app::sync::STRIPE_CALLS_PER_UNIT`]) and saving the cursor and the
/// outcome fit in it (`tests/tests/template.rs` holds the sum to it).
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(100);

/// The Lambda entry: the schedule's input is `{"mode": "replay"}` or `{"mode": "full"}`;
/// `{"mode": "adopt", ...}` (an invocation of its own) starts an adoption with the rest of the
/// object as its request (`POST /operator/adoption`'s body), then runs. A run
/// that could not finish fails the invocation (after recording its outcome), so the errors
/// alarm sees it; a run stopped at its deadline succeeds with `partial: true` if it moved its
/// cursor, and fails (`no progress`) if it moved nothing.
pub async fn handle<S, B, N>(
    deps: &SyncDeps<S, B, N>,
    event: LambdaEvent<serde_json::Value>,
) -> Result<serde_json::Value, Error>
where
    S: AccountStore + SubscriptionStore + EventLog + SyncStore + CreditStore + InvoiceStore + MeterStore,
    B: Billing,
    N: Notifier,
{
    if event.payload["mode"] == "adopt" {
        let mut request = event.payload.clone();
        if let Some(object) = request.as_object_mut() {
            object.remove("mode");
        }
        let request: tollgate::domain::adoption::AdoptionRequest = serde_json::from_value(request)?;
        let now = deps.events.settings.clock.now_ms();
        tollgate::app::adopt::start(&deps.events.store, now, deps.adopt_metadata_key.as_deref(), request).await?;
    }
    let mode = if event.payload["mode"] == "full" { Mode::Full } else { Mode::Replay };
    let deadline = Before::margin_before(event.context.deadline(), DEADLINE_MARGIN);
    let outcome = run(deps, mode, &deadline).await.map_err(Error::from)?;
    Ok(serde_json::to_value(outcome)?)
}
