//! The scheduled sync: Tollgate's safety net for webhooks that never arrived. It replays
//! Stripe's event list from a stored cursor through the worker's own [`apply`] (exactly once,
//! so replays of applied events are harmless), reconciles every subscription when asked or
//! when the cursor is unusable, stops itself before its deadline, and records how it ended.

use crate::access::DAY;
use crate::app::events::{EventDeps, EventError, Snapshots, account_for, apply};
use crate::app::refresh::{Refreshed, Snapshot, refresh};
use crate::billing::{Billing, BillingError, RemoteEvent};
use crate::notify::Notifier;
use crate::store::{AccountStore, EventLog, StoreError, SubscriptionStore, SyncCursor, SyncOutcome, SyncStore};
use std::collections::BTreeMap;
use std::time::Duration;

/// Stripe lists events for 30 days.
const EVENT_RETENTION_DAYS: i64 = 30;
/// The cursor is saved after this many replayed events (and whenever the run stops).
const CURSOR_SAVE_EVERY: u64 = 25;

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Replay events since the cursor (the frequent schedule).
    Replay,
    /// Replay, then reconcile every subscription (the weekly schedule, `tollgate-dev sync --full`).
    Full,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Replay => "replay",
            Self::Full => "full",
        }
    }
}

pub use crate::app::{Before, Deadline, Never};

/// Seconds kept in hand before the function's timeout.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(20);

/// What a run needs: the event path's dependencies (the replay goes through it) and a pause
/// between Stripe list calls.
pub struct SyncDeps<S, B, N> {
    pub events: EventDeps<S, B, N>,
    /// Keeps the run's list calls under Stripe's rate limit (about 25 requests/s in test mode).
    pub pacing: Duration,
}

/// Why a run could not finish. The run's outcome is recorded first; the error then fails the
/// invocation so the schedule's alarm sees it.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("stripe: {0}")]
    Billing(#[from] BillingError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("applying event {event_id}: {source}")]
    Apply { event_id: String, source: EventError },
}

/// Runs once and records the outcome: `last_success_at` moves only when the run finished,
/// `partial` says it stopped at its deadline (the next run resumes from the cursor), and
/// `last_error` says why it failed.
pub async fn run<S, B, N>(
    deps: &SyncDeps<S, B, N>,
    mode: Mode,
    deadline: &dyn Deadline,
) -> Result<SyncOutcome, SyncError>
where
    S: AccountStore + SubscriptionStore + EventLog + SyncStore,
    B: Billing,
    N: Notifier,
{
    let store = &deps.events.store;
    let clock = &deps.events.settings.clock;
    let previous = store.outcome().await?;
    let mut outcome = SyncOutcome {
        mode: mode.as_str().to_owned(),
        started_at: clock.now(),
        last_success_at: previous.and_then(|p| p.last_success_at),
        ..SyncOutcome::default()
    };
    let result = work(deps, mode, deadline, &mut outcome).await;
    outcome.finished_at = clock.now();
    match &result {
        Ok(()) => {
            outcome.last_error = None;
            if !outcome.partial {
                outcome.last_success_at = Some(outcome.finished_at);
            }
        }
        Err(err) => {
            tracing::error!(error = %err, "sync failed");
            outcome.last_error = Some(err.to_string());
        }
    }
    store.save_outcome(&outcome).await?;
    tracing::info!(?outcome, "sync finished");
    result.map(|()| outcome)
}

async fn work<S, B, N>(
    deps: &SyncDeps<S, B, N>,
    mode: Mode,
    deadline: &dyn Deadline,
    outcome: &mut SyncOutcome,
) -> Result<(), SyncError>
where
    S: AccountStore + SubscriptionStore + EventLog + SyncStore,
    B: Billing,
    N: Notifier,
{
    let store = &deps.events.store;
    let now = deps.events.settings.clock.now();
    let oldest_listed = now - EVENT_RETENTION_DAYS * DAY;
    let mut cursor = match store.cursor().await? {
        Some(cursor) if cursor.created >= oldest_listed => cursor,
        unusable => {
            tracing::warn!(
                cursor = ?unusable.map(|c| c.created),
                "no event cursor, or one older than Stripe's 30-day event list: replaying all Stripe still lists and reconciling every subscription"
            );
            outcome.mode = Mode::Full.as_str().to_owned();
            SyncCursor { created: oldest_listed, ..SyncCursor::default() }
        }
    };
    let full = mode == Mode::Full || outcome.mode == Mode::Full.as_str();
    let finished = replay(deps, deadline, &mut cursor, outcome).await;
    store.save_cursor(&cursor).await?;
    if !finished? {
        outcome.partial = true;
        return Ok(());
    }
    if full || cursor.reconcile_after.is_some() {
        let finished = reconcile(deps, deadline, &mut cursor, outcome).await;
        store.save_cursor(&cursor).await?;
        if !finished? {
            outcome.partial = true;
        }
    }
    Ok(())
}

/// Lists every event since the cursor (every page), then hands them to the worker oldest
/// first, moving the cursor past each one handed over. Answers whether it got through.
async fn replay<S, B, N>(
    deps: &SyncDeps<S, B, N>,
    deadline: &dyn Deadline,
    cursor: &mut SyncCursor,
    outcome: &mut SyncOutcome,
) -> Result<bool, SyncError>
where
    S: AccountStore + SubscriptionStore + EventLog + SyncStore,
    B: Billing,
    N: Notifier,
{
    let mut listed: Vec<RemoteEvent> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        if deadline.expired() {
            return Ok(false);
        }
        let page =
            deps.events.billing.events_page(&crate::events::handled_types(), cursor.created, after.as_deref()).await?;
        listed.extend(page.items);
        tokio::time::sleep(deps.pacing).await;
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    // Stripe lists newest first; same-second events keep Stripe's order reversed, so the
    // oldest is handed over first.
    listed.reverse();
    let mut snapshots = Snapshots::new();
    for event in listed {
        if event.created == cursor.created && cursor.ids_at_created.contains(&event.id) {
            continue;
        }
        if deadline.expired() {
            return Ok(false);
        }
        apply(&deps.events, &event.payload, &mut snapshots)
            .await
            .map_err(|source| SyncError::Apply { event_id: event.id.clone(), source })?;
        outcome.replayed += 1;
        if event.created > cursor.created {
            cursor.created = event.created;
            cursor.ids_at_created.clear();
        }
        cursor.ids_at_created.push(event.id);
        if outcome.replayed.is_multiple_of(CURSOR_SAVE_EVERY) {
            deps.events.store.save_cursor(cursor).await?;
        }
    }
    Ok(true)
}

/// Rewrites the projection of every subscribed account whose stored state differs from
/// Stripe's, page by page (resumable at `cursor.reconcile_after`). Answers whether it got
/// through.
async fn reconcile<S, B, N>(
    deps: &SyncDeps<S, B, N>,
    deadline: &dyn Deadline,
    cursor: &mut SyncCursor,
    outcome: &mut SyncOutcome,
) -> Result<bool, SyncError>
where
    S: AccountStore + SubscriptionStore + EventLog + SyncStore,
    B: Billing,
    N: Notifier,
{
    let w = &deps.events;
    loop {
        if deadline.expired() {
            return Ok(false);
        }
        let page = w.billing.subscriptions_page(cursor.reconcile_after.as_deref()).await?;
        tokio::time::sleep(deps.pacing).await;
        let mut customers: BTreeMap<String, Option<String>> = BTreeMap::new();
        for sub in &page.items {
            let hint = customers.entry(sub.customer_id.clone()).or_default();
            if hint.is_none() {
                hint.clone_from(&sub.account_hint);
            }
        }
        for (customer, hint) in customers {
            let Some(account) = account_for(&w.store, &w.settings, &customer, hint.as_deref()).await? else {
                continue;
            };
            // The page may hold only some of the customer's subscriptions: read them all.
            let snapshot = Snapshot::read(&w.billing, &w.settings, &customer).await?;
            match refresh(&w.store, &w.settings, &account, &customer, &snapshot).await? {
                Refreshed::NoSubscription => continue,
                Refreshed::Written(_) => outcome.differed += 1,
                // Already right, or a webhook wrote a newer snapshot meanwhile.
                Refreshed::Unchanged(_) | Refreshed::Stale(_) => {}
            }
            outcome.reconciled += 1;
        }
        match page.next {
            Some(next) => cursor.reconcile_after = Some(next),
            None => {
                cursor.reconcile_after = None;
                return Ok(true);
            }
        }
    }
}
