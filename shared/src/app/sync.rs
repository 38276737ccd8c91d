//! The scheduled sync: Tollgate's safety net for webhooks that never arrived. It replays
//! Stripe's event list from a stored cursor through the worker's own [`apply`] (exactly once,
//! so replays of applied events are harmless), reconciles every subscription when asked or
//! when the cursor is unusable, stops itself before its deadline, and records how it ended.
//!
//! Progress is saved page by page, so a backlog of any size drains over successive runs.
//! Stripe lists events newest first (`created[gte]` and `starting_after` only), so the replay
//! walks down the list from the newest event to the oldest page after the cursor, saving a
//! mark per page, then hands the pages over oldest first, climbing back up the marks; the
//! cursor only ever moves past an event handed over (or passed over), so none is skipped. A
//! reconciliation owed is remembered in the cursor until it has run, and resumes after its
//! last page. A run that stops at its deadline having moved nothing fails, so a stall is seen.

use crate::access::DAY;
use crate::app::events::{EventDeps, EventError, Snapshots, account_for, apply, pass_over};
use crate::app::refresh::{Refreshed, Snapshot, refresh};
use crate::billing::{Billing, BillingError, RemoteEvent};
use crate::notify::Notifier;
use crate::store::{AccountStore, EventLog, StoreError, SubscriptionStore, SyncCursor, SyncOutcome, SyncStore};
use std::collections::BTreeMap;
use std::time::Duration;

/// Stripe lists events for 30 days.
const EVENT_RETENTION_DAYS: i64 = 30;

/// How many runs in a row an event may fail, for a cause that may pass (Stripe or the store
/// unavailable), before the replay passes it over: it is then recorded as a `FailedEvent`
/// (source `sync`) and counted in `EventsUnprocessable` for its alarm, and later events
/// apply. Until then each failure stops the replay at that event and fails the run. An event
/// that can never be applied (malformed) is passed over at once.
pub const MAX_EVENT_TRIES: u32 = 3;

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
    /// The replay stopped at this event; it is tried again next run and passed over after
    /// [`MAX_EVENT_TRIES`].
    #[error("applying event {event_id} (try {tries} of {MAX_EVENT_TRIES}): {source}")]
    Apply { event_id: String, tries: u32, source: EventError },
    /// The run reached its deadline without moving its cursor or its reconciliation: run after
    /// run would do the same.
    #[error("no progress: the run stopped at its deadline before it could move its cursor")]
    NoProgress,
}

/// Runs once and records the outcome: `last_success_at` moves only when the run finished,
/// `partial` says it stopped at its deadline (the next run resumes from the cursor), and
/// `last_error` says why it failed; a partial run that moved nothing fails with
/// [`SyncError::NoProgress`].
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
            SyncCursor { created: oldest_listed, reconcile_due: true, ..SyncCursor::default() }
        }
    };
    if mode == Mode::Full {
        cursor.reconcile_due = true;
    }
    let reconcile = cursor.reconcile_due || cursor.reconcile_after.is_some();
    if reconcile {
        outcome.mode = Mode::Full.as_str().to_owned();
    }
    let start = cursor.clone();

    let replayed = replay(deps, deadline, &mut cursor, outcome).await;
    store.save_cursor(&cursor).await?;
    let mut finished = replayed?;
    // A reconciliation waits for the replay to catch up; the cursor remembers it meanwhile.
    if finished && reconcile {
        let reconciled = self::reconcile(deps, deadline, &mut cursor, outcome).await;
        store.save_cursor(&cursor).await?;
        finished = reconciled?;
    }
    if !finished {
        outcome.partial = true;
        if cursor == start {
            return Err(SyncError::NoProgress);
        }
    }
    Ok(())
}

/// Hands every event since the cursor to the worker, oldest first, a page at a time, saving
/// the cursor after each page. Stripe lists newest first, so the replay walks down the list
/// (saving a mark per page, so a walk longer than one run resumes) to the oldest page holding
/// anything new, hands it over, then climbs back up the marks: each page above a mark ends
/// at that mark's event, so handing them over in turn skips nothing. The newest page has no
/// mark; if newer events pushed it down meanwhile, the list is walked again. Answers whether
/// it got through. Relies on what Stripe's paging relies on: a new event is listed above the
/// older ones.
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
    let store = &deps.events.store;
    let types = crate::events::handled_types();
    let mut snapshots = Snapshots::new();
    loop {
        if deadline.expired() {
            return Ok(false);
        }
        cursor.climbing &= !cursor.scan_marks.is_empty();
        // Climbing, the page above the last mark is next; walking down, the page below it.
        let marks = cursor.scan_marks.len();
        let at = if cursor.climbing {
            marks.checked_sub(2).map(|i| cursor.scan_marks[i].clone())
        } else {
            cursor.scan_marks.last().cloned()
        };
        let page = match deps.events.billing.events_page(&types, cursor.created, at.as_deref()).await {
            Err(err) if at.is_some() && names_a_missing_object(&err) => {
                tracing::warn!(mark = ?at, "a page mark is no longer listed: walking the event list again");
                cursor.scan_marks.clear();
                continue;
            }
            page => page?,
        };
        tokio::time::sleep(deps.pacing).await;

        if cursor.climbing {
            let bottom = cursor.scan_marks.last();
            let reaches_bottom = page.items.iter().any(|e| Some(&e.id) == bottom || handed_over(cursor, e));
            if at.is_none() && !reaches_bottom {
                tracing::info!("newer events pushed the newest page down: walking the event list again");
                cursor.scan_marks.clear();
                continue;
            }
            if !hand_over(deps, deadline, cursor, outcome, page.items, &mut snapshots).await? {
                return Ok(false);
            }
            cursor.scan_marks.pop();
            store.save_cursor(cursor).await?;
            if at.is_none() {
                return Ok(true);
            }
            continue;
        }

        // Walking down stops at the list's end, or at a page that reaches events handed over
        // before (everything below them was handed over too).
        let reaches_handed = page.items.last().is_some_and(|oldest| handed_over(cursor, oldest));
        if !reaches_handed && let Some(next) = page.next {
            cursor.scan_marks.push(next);
            store.save_cursor(cursor).await?;
            continue;
        }
        if !hand_over(deps, deadline, cursor, outcome, page.items, &mut snapshots).await? {
            return Ok(false);
        }
        // Everything below the last mark is handed over now: climb.
        cursor.climbing = at.is_some();
        store.save_cursor(cursor).await?;
        if at.is_none() {
            return Ok(true);
        }
    }
}

/// Hands one page's events to the worker's [`apply`], oldest first, moving the cursor past
/// each one applied or passed over; skips those the cursor is past. An event that fails stops
/// the replay there (the run fails) until it has failed [`MAX_EVENT_TRIES`] runs in a row; a
/// malformed one is passed over at once. Answers whether it got through the page.
async fn hand_over<S, B, N>(
    deps: &SyncDeps<S, B, N>,
    deadline: &dyn Deadline,
    cursor: &mut SyncCursor,
    outcome: &mut SyncOutcome,
    newest_first: Vec<RemoteEvent>,
    snapshots: &mut Snapshots,
) -> Result<bool, SyncError>
where
    S: AccountStore + SubscriptionStore + EventLog + SyncStore,
    B: Billing,
    N: Notifier,
{
    // Same-second events keep Stripe's order reversed, so the oldest is handed over first.
    for event in newest_first.into_iter().rev() {
        if handed_over(cursor, &event) {
            continue;
        }
        if deadline.expired() {
            return Ok(false);
        }
        match apply(&deps.events, &event.payload, snapshots).await {
            Ok(_) => outcome.replayed += 1,
            Err(source) => {
                let tries = match &cursor.failing_event {
                    Some(id) if *id == event.id => cursor.failing_tries.saturating_add(1),
                    _ => 1,
                };
                if !source.is_permanent() && tries < MAX_EVENT_TRIES {
                    cursor.failing_event = Some(event.id.clone());
                    cursor.failing_tries = tries;
                    return Err(SyncError::Apply { event_id: event.id, tries, source });
                }
                pass_over(&deps.events, &event.id, event_type(&event.payload).as_deref(), &source, "sync").await?;
                outcome.passed_over += 1;
            }
        }
        if cursor.failing_event.as_ref() == Some(&event.id) {
            cursor.failing_event = None;
            cursor.failing_tries = 0;
        }
        if event.created > cursor.created {
            cursor.created = event.created;
            cursor.ids_at_created.clear();
        }
        cursor.ids_at_created.push(event.id);
    }
    Ok(true)
}

/// Whether the cursor is past `event`: it was handed over (or passed over) before.
fn handed_over(cursor: &SyncCursor, event: &RemoteEvent) -> bool {
    event.created < cursor.created || (event.created == cursor.created && cursor.ids_at_created.contains(&event.id))
}

/// Whether Stripe answered that an object named in the request does not exist (here: the
/// event a page mark names, gone from the 30-day list).
fn names_a_missing_object(err: &BillingError) -> bool {
    match err {
        BillingError::NotFound => true,
        BillingError::Rejected { code, .. } => code.as_deref() == Some("resource_missing"),
        _ => false,
    }
}

/// The `type` of an event payload, if it has one (for the failure record).
fn event_type(payload: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(payload).ok()?;
    value.get("type")?.as_str().map(str::to_owned)
}

/// Rewrites the projection of every subscribed account whose stored state differs from
/// Stripe's, page by page, saving its place after each (`cursor.reconcile_after`) so a run
/// cut off resumes after the last page it finished. Answers whether it got through; then the
/// reconciliation is no longer due.
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
        let last = page.next.is_none();
        cursor.reconcile_after = page.next;
        if last {
            cursor.reconcile_due = false;
        }
        w.store.save_cursor(cursor).await?;
        if last {
            return Ok(true);
        }
    }
}
