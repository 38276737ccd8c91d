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

use crate::app::Deadline;
use crate::app::events::{EventDeps, EventError, Snapshots, account_for, apply, event_type_in, pass_over};
use crate::app::refresh::{Refreshed, Snapshot, refresh};
use crate::domain::access::DAY;
use crate::ports::StoreError;
use crate::ports::accounts::AccountStore;
use crate::ports::billing::{Billing, BillingError, RemoteEvent};
use crate::ports::credits::CreditStore;
use crate::ports::events::EventLog;
use crate::ports::invoices::InvoiceStore;
use crate::ports::meter::MeterStore;
use crate::ports::notifier::Notifier;
use crate::ports::subscriptions::SubscriptionStore;
use crate::ports::sync::{SyncCursor, SyncOutcome, SyncStore};
use std::collections::BTreeSet;
use std::time::Duration;

/// Stripe lists events for 30 days.
const EVENT_RETENTION_DAYS: i64 = 30;

/// How many runs in a row an event may fail, for a cause that may pass (Stripe or the store
/// unavailable), before the replay passes it over: it is then recorded as a `FailedEvent`
/// (source `sync`) and counted in `EventsUnprocessable` for its alarm, and later events
/// apply. Until then each failure stops the replay at that event and fails the run. An event
/// that can never be applied (malformed) is passed over at once.
pub const MAX_EVENT_TRIES: u32 = 3;

/// The most Stripe calls one unit of the sync's work makes between two deadline checks: an
/// event replayed (the worker's record, [`crate::app::events::STRIPE_CALLS_PER_EVENT`]); a
/// customer reconciled makes 2 (its subscriptions, its newest invoices); a counter reported to
/// Stripe's meters at most 3 (a lost report's total, its cancellation, the report). The run
/// stops starting units `sync::DEADLINE_MARGIN` before its timeout, which must cover this many
/// calls at their timeouts and retries (`tests/tests/template.rs`).
pub const STRIPE_CALLS_PER_UNIT: u32 = crate::app::events::STRIPE_CALLS_PER_EVENT;

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

/// What a run needs: the event path's dependencies (the replay goes through it) and a pause
/// between Stripe list calls.
pub struct SyncDeps<S, B, N> {
    pub events: EventDeps<S, B, N>,
    /// Keeps the run's list calls under Stripe's rate limit (about 25 requests/s in test mode).
    pub pacing: Duration,
    /// Keeps meter reporting under Stripe's meter event rate limit (the pass's other calls go
    /// [`crate::app::meters::OTHER_CALLS_SLOWER`] times slower).
    pub meter_pacing: Duration,
    /// The customer metadata key an adoption reads account ids from when its request names
    /// none (`ADOPT_METADATA_KEY`).
    pub adopt_metadata_key: Option<String>,
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
    /// Meter reporting stopped at a Stripe or store failure; the next run resumes it.
    #[error("meter reporting: {0}")]
    Meters(#[from] crate::app::meters::MeterError),
    /// Stripe failed while reporting some counters' usage; they wait for the next lap, the
    /// others were reported.
    #[error("meter reporting: {counters} counters deferred to the next lap: {error}")]
    MetersDeferred { counters: u64, error: String },
    /// The run reached its deadline without moving its cursor, its reconciliation or the meter
    /// pass's position: run after run would do the same.
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
    S: AccountStore + SubscriptionStore + EventLog + SyncStore + CreditStore + InvoiceStore + MeterStore,
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
    S: AccountStore + SubscriptionStore + EventLog + SyncStore + CreditStore + InvoiceStore + MeterStore,
    B: Billing,
    N: Notifier,
{
    let store = &deps.events.store;
    let now = deps.events.settings.clock.now();
    let oldest_listed = now.saturating_sub(EVENT_RETENTION_DAYS.saturating_mul(DAY));
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
    let owed = cursor.reconcile_due || cursor.reconcile_after.is_some();
    if owed {
        outcome.mode = Mode::Full.as_str().to_owned();
    }
    let start = cursor.clone();

    let replayed = replay(deps, deadline, &mut cursor, outcome).await;
    store.save_cursor(&cursor).await?;
    // Meter reporting runs whatever became of the replay: a stuck event never holds usage back.
    let events = &deps.events;
    let paces = crate::app::meters::Paces::new(deps.meter_pacing);
    let metered =
        crate::app::meters::report(store, &events.billing, &events.settings, &paces, deadline, &mut outcome.meters)
            .await;
    // An adoption running is worked on whatever became of the replay; its failure is its own
    // (recorded on it, shown by `GET /operator/adoption`), never the sync's.
    let adopter = crate::app::adopt::Adopter { events: &deps.events, pacing: deps.pacing };
    match crate::app::adopt::run(&adopter, deadline).await {
        Ok(moved) => outcome.adopting = moved,
        Err(err) => tracing::warn!(error = %err, "the adoption failed"),
    }
    let mut finished = replayed?;
    // A reconciliation waits for the replay to catch up; the cursor remembers it meanwhile.
    if finished && owed {
        let reconciled = reconcile(deps, deadline, &mut cursor, outcome).await;
        store.save_cursor(&cursor).await?;
        finished = reconciled?;
    }
    let metered = metered?;
    finished &= metered.finished;
    // Deletions whose requests stopped with items left are finished here, in what time is left.
    outcome.purges_finished = crate::app::retire::finish_owed_purges(store, deadline).await?;
    if !finished {
        outcome.partial = true;
        if cursor == start && !metered.moved {
            return Err(SyncError::NoProgress);
        }
    }
    match outcome.meters.deferred_error.clone() {
        // Stripe failed for some counters: left for the next lap, and the run fails so the
        // errors alarm sees a Stripe that keeps failing.
        Some(error) => Err(SyncError::MetersDeferred { counters: outcome.meters.deferred, error }),
        None => Ok(()),
    }
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
    S: AccountStore + SubscriptionStore + EventLog + SyncStore + CreditStore + InvoiceStore + MeterStore,
    B: Billing,
    N: Notifier,
{
    let store = &deps.events.store;
    let types = crate::domain::events::handled_types();
    let mut snapshots = Snapshots::new();
    loop {
        cursor.climbing &= !cursor.scan_marks.is_empty();
        if deadline.expired() {
            return Ok(false);
        }
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
                cursor.climbing = false;
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
                cursor.climbing = false;
                continue;
            }
            if !hand_over(deps, deadline, cursor, outcome, page.items, &mut snapshots).await? {
                return Ok(false);
            }
            cursor.scan_marks.pop();
            cursor.climbing = !cursor.scan_marks.is_empty();
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
    S: AccountStore + SubscriptionStore + EventLog + SyncStore + CreditStore + InvoiceStore + MeterStore,
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
            Ok(_) => outcome.replayed = outcome.replayed.saturating_add(1),
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
                pass_over(&deps.events, &event.id, event_type_in(&event.payload).as_deref(), &source, "sync").await?;
                outcome.passed_over = outcome.passed_over.saturating_add(1);
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

/// Backfills the customer's invoices (see [`crate::app::invoices::backfill`]), paced as the
/// other list calls.
async fn backfill_invoices<S, B, N>(
    deps: &SyncDeps<S, B, N>,
    account: &crate::domain::model::AccountId,
    customer: &str,
) -> Result<(), SyncError>
where
    S: InvoiceStore,
    B: Billing,
{
    let written = crate::app::invoices::backfill(&deps.events.store, &deps.events.billing, account, customer)
        .await
        .map_err(|err| match err {
            crate::app::invoices::BackfillError::Billing(err) => SyncError::Billing(err),
            crate::app::invoices::BackfillError::Store(err) => SyncError::Store(err),
        })?;
    tokio::time::sleep(deps.pacing).await;
    if written > 0 {
        tracing::info!(account_id = %account, customer, written, "invoices backfilled");
    }
    Ok(())
}

/// Rewrites the projection of every subscribed account whose stored state differs from
/// Stripe's, page by page, saving its place after each (`cursor.reconcile_after`), and after
/// the last customer it finished when the deadline stops it within a page, so a run cut off
/// resumes there. Answers whether it got through; then the
/// reconciliation is no longer due.
async fn reconcile<S, B, N>(
    deps: &SyncDeps<S, B, N>,
    deadline: &dyn Deadline,
    cursor: &mut SyncCursor,
    outcome: &mut SyncOutcome,
) -> Result<bool, SyncError>
where
    S: AccountStore + SubscriptionStore + EventLog + SyncStore + CreditStore + InvoiceStore + MeterStore,
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
        // One unit of work per customer, in the page's order; each starts only before the
        // deadline. Stopped at one, the next run lists the page again after the subscription
        // before it (customers met again there are reconciled again: harmless).
        let mut done: BTreeSet<&str> = BTreeSet::new();
        for (at, sub) in page.items.iter().enumerate() {
            let customer = sub.customer_id.as_str();
            if !done.insert(customer) {
                continue;
            }
            if deadline.expired() {
                if let Some(previous) = at.checked_sub(1).and_then(|i| page.items.get(i)) {
                    cursor.reconcile_after = Some(previous.id.clone());
                    w.store.save_cursor(cursor).await?;
                }
                return Ok(false);
            }
            let hint = page.items.iter().filter(|s| s.customer_id == customer).find_map(|s| s.account_hint.as_deref());
            let Some(account) = account_for(&w.store, &w.settings, customer, hint).await? else {
                continue;
            };
            // The page may hold only some of the customer's subscriptions: read them all.
            let snapshot = Snapshot::read(&w.billing, &w.settings, customer).await?;
            // Invoices whose events never arrived (the customer's newest page).
            backfill_invoices(deps, &account, customer).await?;
            match refresh(&w.store, &w.settings, &account, customer, &snapshot).await? {
                Refreshed::NoSubscription => continue,
                Refreshed::Written(_) => outcome.differed = outcome.differed.saturating_add(1),
                // Already right, or a webhook wrote a newer snapshot meanwhile.
                Refreshed::Unchanged(_) | Refreshed::Stale(_) => {}
            }
            outcome.reconciled = outcome.reconciled.saturating_add(1);
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

#[cfg(test)]
mod tests {
    //! The replay's paging and failure rules against an event list served in memory as Stripe
    //! pages it; `functions/sync/tests/sync.rs` runs the sync over HTTP against the stand-in.

    use super::*;
    use crate::app::{Before, Never};
    use crate::domain::model::AccountId;
    use crate::domain::snapshot::RemoteSubscription;
    use crate::ports::accounts::{Account, AccountStore};
    use crate::ports::billing::{CheckoutRequest, CheckoutSession, Page};
    use crate::testing::{After, FakeBilling, FixedClock, MemoryStore, Outbox, settings};
    use async_trait::async_trait;
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    const NOW: i64 = 1_795_273_200;

    /// Stripe with an event list: `GET /v1/events` answered from `events` (oldest first) as
    /// Stripe pages it (newest first, `created[gte]`, `starting_after`, `page` events a page;
    /// an unknown `starting_after` is `resource_missing`); subscription reads fail for the
    /// customers in `down`; everything else is `FakeBilling`'s.
    #[derive(Default)]
    struct Listed {
        fake: FakeBilling,
        events: Mutex<Vec<RemoteEvent>>,
        page: usize,
        down: Mutex<BTreeSet<String>>,
    }

    impl Listed {
        fn with_page(page: usize) -> Self {
            Self { page, ..Self::default() }
        }

        /// Records events as Stripe would, newest last.
        fn happen(&self, events: impl IntoIterator<Item = RemoteEvent>) {
            self.events.lock().unwrap().extend(events);
        }

        fn forget(&self, id: &str) {
            self.events.lock().unwrap().retain(|e| e.id != id);
        }
    }

    #[async_trait]
    impl Billing for Listed {
        async fn create_customer(&self, account: &AccountId, key: &str) -> Result<String, BillingError> {
            self.fake.create_customer(account, key).await
        }

        async fn charge_customer(&self, charge_id: &str) -> Result<Option<String>, BillingError> {
            self.fake.charge_customer(charge_id).await
        }

        async fn invoices_paid_by(&self, payment_intent: &str) -> Result<Vec<String>, BillingError> {
            self.fake.invoices_paid_by(payment_intent).await
        }

        async fn send_meter_event(&self, event: &crate::ports::billing::MeterEvent<'_>) -> Result<(), BillingError> {
            self.fake.send_meter_event(event).await
        }

        async fn cancel_meter_event(&self, event_name: &str, identifier: &str) -> Result<(), BillingError> {
            self.fake.cancel_meter_event(event_name, identifier).await
        }

        async fn meter_total(&self, name: &str, customer: &str, start: i64, end: i64) -> Result<u64, BillingError> {
            self.fake.meter_total(name, customer, start, end).await
        }

        async fn invoices(&self, customer_id: &str) -> Result<Vec<crate::domain::invoices::Invoice>, BillingError> {
            self.fake.invoices(customer_id).await
        }

        async fn subscriptions(&self, customer_id: &str) -> Result<Vec<RemoteSubscription>, BillingError> {
            if self.down.lock().unwrap().contains(customer_id) {
                return Err(BillingError::Unavailable("connection reset".into()));
            }
            self.fake.subscriptions(customer_id).await
        }

        async fn event(&self, event_id: &str) -> Result<RemoteEvent, BillingError> {
            self.events.lock().unwrap().iter().find(|e| e.id == event_id).cloned().ok_or(BillingError::NotFound)
        }

        async fn events_page(
            &self,
            _types: &[&str],
            created_gte: i64,
            starting_after: Option<&str>,
        ) -> Result<Page<RemoteEvent>, BillingError> {
            let events = self.events.lock().unwrap();
            let newest_first: Vec<&RemoteEvent> = events.iter().rev().collect();
            let from = match starting_after {
                None => 0,
                Some(id) => {
                    let at = newest_first.iter().position(|e| e.id == id).ok_or_else(|| BillingError::Rejected {
                        code: Some("resource_missing".into()),
                        message: format!("No such event: '{id}'"),
                    })?;
                    at + 1
                }
            };
            let after: Vec<RemoteEvent> =
                newest_first[from..].iter().filter(|e| e.created >= created_gte).map(|e| (*e).clone()).collect();
            let items: Vec<RemoteEvent> = after.iter().take(self.page).cloned().collect();
            let next = if after.len() > self.page { items.last().map(|e| e.id.clone()) } else { None };
            Ok(Page { items, next })
        }

        async fn subscriptions_page(&self, after: Option<&str>) -> Result<Page<RemoteSubscription>, BillingError> {
            self.fake.subscriptions_page(after).await
        }

        async fn customers_page(
            &self,
            after: Option<&str>,
        ) -> Result<Page<crate::ports::billing::RemoteCustomer>, BillingError> {
            self.fake.customers_page(after).await
        }

        async fn disputes_of(&self, customer: &str) -> Result<crate::ports::billing::Disputes, BillingError> {
            self.fake.disputes_of(customer).await
        }

        async fn tag_customer(&self, customer: &str, account: &AccountId, key: &str) -> Result<(), BillingError> {
            self.fake.tag_customer(customer, account, key).await
        }

        async fn create_checkout_session(
            &self,
            request: &CheckoutRequest,
            key: &str,
        ) -> Result<CheckoutSession, BillingError> {
            self.fake.create_checkout_session(request, key).await
        }

        async fn refund_invoice(&self, invoice_id: &str, key: &str) -> Result<bool, BillingError> {
            self.fake.refund_invoice(invoice_id, key).await
        }

        async fn expire_checkout_session(&self, session_id: &str, key: &str) -> Result<(), BillingError> {
            self.fake.expire_checkout_session(session_id, key).await
        }

        async fn create_portal_session(&self, customer: &str, url: &str, key: &str) -> Result<String, BillingError> {
            self.fake.create_portal_session(customer, url, key).await
        }

        async fn change_price(
            &self,
            subscription: &str,
            item: &str,
            price: &str,
            key: &str,
        ) -> Result<RemoteSubscription, BillingError> {
            self.fake.change_price(subscription, item, price, key).await
        }

        async fn cancel(
            &self,
            subscription: &str,
            at_end: bool,
            key: &str,
        ) -> Result<RemoteSubscription, BillingError> {
            self.fake.cancel(subscription, at_end, key).await
        }
    }

    /// A `customer.subscription.updated` event about `customer`.
    fn event(id: &str, created: i64, customer: &str) -> RemoteEvent {
        let payload = serde_json::json!({
            "id": id,
            "object": "event",
            "type": "customer.subscription.updated",
            "created": created,
            "livemode": false,
            "data": { "object": { "id": format!("sub_{customer}"), "object": "subscription", "customer": customer } },
        });
        RemoteEvent { id: id.into(), created, payload: payload.to_string() }
    }

    /// `n` events about customers Tollgate never linked (each is recorded and ignored), named
    /// `evt_<prefix><i>`, `per_second` to a second from `from`.
    fn events(prefix: &str, n: usize, from: i64, per_second: usize) -> Vec<RemoteEvent> {
        (0..n)
            .map(|i| {
                event(&format!("evt_{prefix}{i:03}"), from + i64::try_from(i / per_second).unwrap(), "cus_stranger")
            })
            .collect()
    }

    fn deps(page: usize) -> SyncDeps<MemoryStore, Listed, Outbox> {
        let clock = FixedClock::at(NOW + 3_600);
        let events = EventDeps {
            store: MemoryStore::new(),
            billing: Listed::with_page(page),
            notifier: Outbox::default(),
            settings: settings(&clock),
        };
        SyncDeps { events, pacing: Duration::ZERO, meter_pacing: Duration::ZERO, adopt_metadata_key: None }
    }

    async fn start_at(deps: &SyncDeps<MemoryStore, Listed, Outbox>, created: i64) {
        deps.events.store.save_cursor(&SyncCursor { created, ..SyncCursor::default() }).await.unwrap();
    }

    async fn cursor(deps: &SyncDeps<MemoryStore, Listed, Outbox>) -> SyncCursor {
        deps.events.store.cursor().await.unwrap().unwrap()
    }

    async fn unprocessed(deps: &SyncDeps<MemoryStore, Listed, Outbox>) -> Vec<String> {
        let mut missing = Vec::new();
        let listed = deps.events.billing.events.lock().unwrap().clone();
        for event in listed {
            if deps.events.store.processed(&event.id).await.unwrap().is_none()
                && deps.events.store.failure(&event.id).await.unwrap().is_none()
            {
                missing.push(event.id);
            }
        }
        missing
    }

    #[tokio::test]
    async fn an_event_that_keeps_failing_is_passed_over_after_its_tries_and_later_events_apply() {
        let deps = deps(2);
        start_at(&deps, NOW - 1).await;
        let account = AccountId::parse("acct_f").unwrap();
        let link = Account { account_id: account, customer_id: "cus_f".into(), created_at: NOW };
        deps.events.store.link_customer(&link).await.unwrap();
        deps.events.billing.happen(events("a", 3, NOW, 1));
        deps.events.billing.happen([event("evt_stuck", NOW + 3, "cus_f")]);
        deps.events.billing.happen(events("b", 3, NOW + 4, 1));
        deps.events.billing.down.lock().unwrap().insert("cus_f".into());

        let mut runs = Vec::new();
        for _ in 0..MAX_EVENT_TRIES {
            runs.push(run(&deps, Mode::Replay, &Never).await);
        }

        for (i, failed) in runs[..2].iter().enumerate() {
            assert!(
                matches!(failed, Err(SyncError::Apply { event_id, tries, .. }) if event_id == "evt_stuck" && *tries == u32::try_from(i + 1).unwrap()),
                "run {i}: {failed:?}"
            );
        }
        let passed = runs[2].as_ref().unwrap();
        assert_eq!((passed.replayed, passed.passed_over, passed.partial), (3, 1, false), "{passed:?}");
        let failure = deps.events.store.failure("evt_stuck").await.unwrap().unwrap();
        assert_eq!(failure.source, "sync");
        assert_eq!(failure.event_type.as_deref(), Some("customer.subscription.updated"));
        assert!(failure.error.contains("stripe unavailable"), "{failure:?}");
        assert_eq!(deps.events.store.processed("evt_stuck").await.unwrap(), None, "passed over, not processed");
        assert_eq!(unprocessed(&deps).await, Vec::<String>::new());
        let cursor = cursor(&deps).await;
        assert_eq!((cursor.failing_event, cursor.created), (None, NOW + 6));
    }

    #[tokio::test]
    async fn failing_tries_start_again_once_the_event_applies() {
        let deps = deps(2);
        start_at(&deps, NOW - 1).await;
        let account = AccountId::parse("acct_f").unwrap();
        let link = Account { account_id: account, customer_id: "cus_f".into(), created_at: NOW };
        deps.events.store.link_customer(&link).await.unwrap();
        deps.events.billing.happen([event("evt_slow", NOW, "cus_f")]);
        deps.events.billing.down.lock().unwrap().insert("cus_f".into());

        let failed = run(&deps, Mode::Replay, &Never).await;
        deps.events.billing.down.lock().unwrap().clear();
        let recovered = run(&deps, Mode::Replay, &Never).await.unwrap();

        assert!(matches!(failed, Err(SyncError::Apply { tries: 1, .. })), "{failed:?}");
        assert_eq!((recovered.replayed, recovered.passed_over), (1, 0));
        assert!(deps.events.store.processed("evt_slow").await.unwrap().is_some());
        let cursor = cursor(&deps).await;
        assert_eq!((cursor.failing_event, cursor.failing_tries), (None, 0));
    }

    #[tokio::test]
    async fn a_malformed_listed_event_is_passed_over_at_once() {
        let deps = deps(2);
        start_at(&deps, NOW - 1).await;
        deps.events.billing.happen(events("a", 2, NOW, 1));
        let body = serde_json::json!({"id": "evt_bad", "type": "invoice.paid", "created": NOW + 2, "data": {"object": "in_1"}});
        deps.events.billing.happen([RemoteEvent { id: "evt_bad".into(), created: NOW + 2, payload: body.to_string() }]);
        deps.events.billing.happen(events("b", 2, NOW + 3, 1));

        let outcome = run(&deps, Mode::Replay, &Never).await.unwrap();

        assert_eq!((outcome.replayed, outcome.passed_over, outcome.partial), (4, 1, false));
        let failure = deps.events.store.failure("evt_bad").await.unwrap().unwrap();
        assert_eq!((failure.source.as_str(), failure.event_type.as_deref()), ("sync", Some("invoice.paid")));
        assert!(failure.error.contains("malformed"), "{failure:?}");
        assert_eq!(unprocessed(&deps).await, Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_run_that_moves_nothing_fails_and_records_why() {
        let deps = deps(2);
        start_at(&deps, NOW - 1).await;
        deps.events.billing.happen(events("a", 5, NOW, 1));
        let done = run(&deps, Mode::Replay, &Never).await.unwrap();
        deps.events.billing.happen(events("b", 5, NOW + 10, 1));
        let before = cursor(&deps).await;

        let stalled = run(&deps, Mode::Replay, &Before::at(std::time::UNIX_EPOCH)).await;

        assert!(matches!(stalled, Err(SyncError::NoProgress)), "{stalled:?}");
        let recorded = deps.events.store.outcome().await.unwrap().unwrap();
        assert!(recorded.partial && recorded.last_error.as_deref().unwrap().contains("no progress"), "{recorded:?}");
        assert_eq!(recorded.last_success_at, done.last_success_at, "a stalled run is no success");
        assert_eq!(cursor(&deps).await, before);
    }

    #[tokio::test]
    async fn a_run_without_new_events_that_moves_the_meter_pass_is_progress_and_the_next_goes_on() {
        use crate::ports::usage::{Consumption, UsageRecord, UsageStore};
        let deps = deps(2);
        start_at(&deps, NOW - 1).await;
        let window = crate::domain::usage::Window { start: NOW, end: NOW + 30 * 86_400 };
        for i in 0..600 {
            let account = AccountId::parse(&format!("acct_m{i:03}")).unwrap();
            let profile = Account { account_id: account.clone(), customer_id: format!("cus_m{i:03}"), created_at: NOW };
            deps.events.store.link_customer(&profile).await.unwrap();
            let record = UsageRecord {
                actor: None,
                request: "r".into(),
                metric: "api_calls".into(),
                quantity: 1,
                window,
                at: NOW,
                refunded: false,
            };
            let consumption = Consumption {
                account: &account,
                key: "k",
                record: &record,
                limit: None,
                rate: None,
                metered: true,
                now_ms: NOW * 1000,
            };
            deps.events.store.consume(&consumption).await.unwrap();
        }

        let cut_short = run(&deps, Mode::Replay, &After::checks(300)).await.unwrap();
        let rest = run(&deps, Mode::Replay, &Never).await.unwrap();

        assert!(cut_short.partial && cut_short.replayed == 0, "{cut_short:?}");
        assert!((1..600).contains(&cut_short.meters.sent), "{cut_short:?}");
        assert!(rest.meters.lap_completed && !rest.partial, "{rest:?}");
        assert_eq!(cut_short.meters.sent + rest.meters.sent, 600, "each counter reported once, none skipped");
        assert_eq!(cut_short.meters.sent + rest.meters.visited, 600, "the second run went on, never back to the top");
    }

    #[tokio::test]
    async fn a_run_that_only_walks_down_a_long_list_counts_as_progress() {
        let deps = deps(2);
        start_at(&deps, NOW - 1).await;
        deps.events.billing.happen(events("a", 40, NOW, 3));

        let first = run(&deps, Mode::Replay, &After::checks(5)).await.unwrap();

        assert!(first.partial && first.replayed == 0, "{first:?}");
        assert_eq!(cursor(&deps).await.scan_marks.len(), 5, "the walk is saved for the next run");
        let second = run(&deps, Mode::Replay, &After::checks(25)).await.unwrap();
        assert!(second.replayed > 0, "{second:?}");
    }

    #[tokio::test]
    async fn events_arriving_while_the_replay_climbs_are_never_skipped() {
        let deps = deps(3);
        start_at(&deps, NOW - 1).await;
        deps.events.billing.happen(events("a", 30, NOW, 4));
        let mut handed = 0;

        for round in 0..40 {
            // Many same-second events, some arriving in a second already handed over.
            let created = NOW + 8 + round / 2;
            deps.events.billing.happen(events(&format!("r{round:02}_"), 4, created, 4));
            match run(&deps, Mode::Replay, &After::checks(9)).await {
                Ok(outcome) => handed += outcome.replayed,
                Err(err) => panic!("round {round}: {err}"),
            }
        }
        let last = run(&deps, Mode::Replay, &Never).await.unwrap();
        handed += last.replayed;

        assert!(!last.partial);
        assert_eq!(unprocessed(&deps).await, Vec::<String>::new());
        assert_eq!(handed, 30 + 40 * 4, "each event handed over exactly once");
    }

    #[tokio::test]
    async fn a_page_mark_gone_from_the_list_makes_the_replay_walk_again() {
        let deps = deps(2);
        start_at(&deps, NOW - 1).await;
        deps.events.billing.happen(events("a", 9, NOW, 1));
        run(&deps, Mode::Replay, &After::checks(3)).await.unwrap();
        let mark = cursor(&deps).await.scan_marks.last().cloned().unwrap();
        deps.events.billing.forget(&mark);

        let outcome = run(&deps, Mode::Replay, &Never).await.unwrap();

        assert!(!outcome.partial);
        assert_eq!(unprocessed(&deps).await, Vec::<String>::new());
    }
}
