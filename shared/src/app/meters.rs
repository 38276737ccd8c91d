//! Usage reported to Stripe Billing Meters by the sync, each unit exactly once.
//!
//! A counter of a metric with an `event_name` is listed as due from its first consumption in
//! a live paid subscription's window (Free usage never reaches a meter). The pass goes
//! through the due list a page at a time, from where the last run stopped (its position is
//! saved after each page), several counters at once, its Stripe calls paced under Stripe's
//! meter event limit; every due counter is visited within two runs, whatever their number.
//! For each due counter the sync first records the pending report (from the watermark to the
//! count, with a deterministic identifier `account:metric:window:to`), then sends it as one
//! meter event, and only then moves the watermark. A run that dies between the two finds the
//! report pending and resends it with the same identifier, which Stripe deduplicates for at
//! least 24 hours; a pending report older than that is never resent blindly: it is an alarmed
//! failure: it is dropped and its units reported again under a new identifier (so reporting goes
//! on from what was confirmed, and the window's settlement shows whether Stripe had counted
//! them). Units of an account whose customer was retired before they were reported are an
//! alarmed failure too. Usage refunded after it was reported cannot be sent negative: the last event is
//! cancelled with a meter event adjustment while Stripe allows (24 hours), and the rest is
//! reported again; otherwise the difference shows as drift. Once a window has ended (and
//! Stripe had time to aggregate), the counter is settled: Tollgate's total is compared with
//! Stripe's meter event summary for the window, and any difference is recorded as drift
//! (the run's outcome, an alarmed metric, `tollgate-dev status`).

use crate::domain::access::DAY;
use crate::ports::StoreError;
use crate::ports::accounts::AccountStore;
use crate::ports::billing::{Billing, BillingError, MeterEvent};
use crate::ports::meter::{
    CounterKey, MeterCounter, MeterDrift, MeterOutcome, MeterPosition, MeterReport, MeterStore, Settlement,
};
use crate::ports::metrics;
use crate::ports::metrics::Metric;
use crate::ports::sync::SyncStore;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::time::Duration;

use super::{Deadline, Settings};

/// How long Stripe deduplicates a meter event's identifier, and lets it be cancelled.
pub const STRIPE_DEDUP_WINDOW: i64 = DAY;
/// How far back a meter event's timestamp may be.
pub const STRIPE_MAX_EVENT_AGE: i64 = 35 * DAY;
/// Kept in hand at either edge of Stripe's windows, for clocks that disagree.
const EDGE: i64 = 300;
/// How long after a window's end (and after its last report) Stripe's summary is trusted to
/// hold every event: then the window is settled.
pub const SETTLE_AFTER: i64 = 3_600;
/// Stripe's limit on a meter event identifier's length; longer ones are hashed.
const MAX_IDENTIFIER: usize = 100;
/// Due counters read per page.
const PAGE: usize = 500;
/// Counters reported at once: their reads and Stripe calls overlap (Stripe's calls paced by
/// [`Pace`]).
pub const CONCURRENCY: usize = 128;
/// At most this many drifts and failures are listed in one run's outcome (all are counted).
const LISTED: usize = MeterOutcome::LISTED;

/// Why a pass stopped early.
#[derive(Debug, thiserror::Error)]
pub enum MeterError {
    #[error("stripe: {0}")]
    Billing(#[from] BillingError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// The meter event identifier of a report ending at `to`: `account:metric:window:to`, with
/// `:r<revision>` after a cancellation (so no identifier is ever reused for other units), and
/// hashed when longer than Stripe accepts.
pub fn identifier(key: &CounterKey, to: u64, revision: u32) -> String {
    let mut id = format!("{}:{}:{}:{to}", key.account, key.metric, key.window_start);
    if revision > 0 {
        id.push_str(&format!(":r{revision}"));
    }
    if id.len() > MAX_IDENTIFIER {
        id = format!("tg:{}", hex::encode(Sha256::digest(id.as_bytes())));
    }
    id
}

/// The whole minutes inside `[start, end)`: Stripe's summaries take minute boundaries, and a
/// window's reports are dated inside them, so a minute shared with the next window (a window
/// need not start on a minute) is summed by neither. A window shorter than two minutes keeps
/// the minutes covering it.
fn minutes(start: i64, end: i64) -> (i64, i64) {
    let ceil = start.saturating_add(59).div_euclid(60).saturating_mul(60);
    let floor = end.div_euclid(60).saturating_mul(60);
    if ceil < floor {
        (ceil, floor)
    } else {
        (start.div_euclid(60).saturating_mul(60), end.saturating_add(59).div_euclid(60).saturating_mul(60))
    }
}

/// How much slower than meter events the pass's other Stripe calls go (meter event
/// summaries and adjustments share Stripe's general rate limit, 25 requests a second in test
/// mode, where meter events have their own, 1,000 a second).
pub const OTHER_CALLS_SLOWER: u32 = 25;

/// The pass's Stripe calls, each kind paced under its own rate limit.
pub struct Paces {
    pub meter_events: Pace,
    pub other: Pace,
}

impl Paces {
    /// Meter events `interval` apart, every other call [`OTHER_CALLS_SLOWER`] times that.
    pub fn new(interval: Duration) -> Self {
        Self { meter_events: Pace::new(interval), other: Pace::new(interval.saturating_mul(OTHER_CALLS_SLOWER)) }
    }
}

/// Spaces Stripe calls at least `interval` apart, across every counter reported at once.
pub struct Pace {
    interval: Duration,
    next: tokio::sync::Mutex<Option<tokio::time::Instant>>,
}

impl Pace {
    pub fn new(interval: Duration) -> Self {
        Self { interval, next: tokio::sync::Mutex::new(None) }
    }

    /// Waits for the next free slot.
    async fn turn(&self) {
        if self.interval.is_zero() {
            return;
        }
        let slot = {
            let mut next = self.next.lock().await;
            let now = tokio::time::Instant::now();
            let slot = next.map_or(now, |next| next.max(now));
            *next = Some(slot.checked_add(self.interval).unwrap_or(slot));
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// How a pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeterPass {
    /// The lap over the due counters was completed (the next run starts another).
    pub finished: bool,
    /// The position moved (a page was visited through), so the run made progress.
    pub moved: bool,
}

/// Reports due counters from where the last run stopped, a page at a time, [`CONCURRENCY`]
/// counters at once, until the lap is complete or the deadline comes; the position is saved
/// after each page, so the next run goes on from it. A Stripe failure leaves its counter for
/// the next lap (counted as `deferred`, the run then fails) and never holds the others back;
/// a store failure stops the pass. Records the reporting lag (the `MeterReportLag` metric).
pub async fn report<S, B>(
    store: &S,
    billing: &B,
    settings: &Settings,
    paces: &Paces,
    deadline: &dyn Deadline,
    outcome: &mut MeterOutcome,
) -> Result<MeterPass, MeterError>
where
    S: AccountStore + MeterStore + SyncStore,
    B: Billing,
{
    let clock = &settings.clock;
    let mut position = store
        .meter_position()
        .await?
        .unwrap_or_else(|| MeterPosition { lap_started_at: clock.now(), ..Default::default() });
    let mut moved = false;
    let finished = loop {
        // Each counter looks at the deadline before it starts (a page past it visits nothing).
        let page = store.due_counters(PAGE, position.after.as_deref()).await?;
        // In order, so that a page the deadline cut short goes on after its last counter visited.
        let visits: Vec<Result<Option<MeterOutcome>, MeterError>> = futures_util::stream::iter(page.counters)
            .map(|key| visit(store, billing, settings, paces, deadline, key))
            .buffered(CONCURRENCY)
            .collect()
            .await;
        let mut visited: usize = 0;
        let mut whole = true;
        for visit in visits {
            match visit? {
                Some(one) if whole => {
                    outcome.absorb(one);
                    visited = visited.saturating_add(1);
                }
                Some(one) => outcome.absorb(one),
                None => whole = false,
            }
        }
        if !whole {
            // The deadline came within the page: the next run goes on after the last counter
            // visited in order.
            if let Some(last) = visited.checked_sub(1).and_then(|i| page.cursors.get(i)) {
                position.after = Some(last.clone());
                store.save_meter_position(&position).await?;
                moved = true;
            }
            break false;
        }
        // An empty list read from the top moves nothing.
        moved |= visited > 0 || position.after.is_some();
        match page.next {
            Some(next) => position.after = Some(next),
            None => {
                position = MeterPosition {
                    after: None,
                    lap_started_at: clock.now(),
                    last_lap_started_at: Some(position.lap_started_at),
                };
                store.save_meter_position(&position).await?;
                break true;
            }
        }
        store.save_meter_position(&position).await?;
    };
    outcome.lap_completed |= finished;
    if !finished {
        // The counters not reached were all visited in the last lap completed, after it started.
        let since = position.last_lap_started_at.unwrap_or(position.lap_started_at);
        outcome.lag_seconds = outcome.lag_seconds.max(clock.now().saturating_sub(since));
    }
    metrics::record(Metric::MeterReportLag, u64::try_from(outcome.lag_seconds).unwrap_or(0));
    Ok(MeterPass { finished, moved })
}

/// Visits one due counter; `None` when the deadline came first. A Stripe failure leaves the
/// counter as it is, counted as deferred.
async fn visit<S, B>(
    store: &S,
    billing: &B,
    settings: &Settings,
    paces: &Paces,
    deadline: &dyn Deadline,
    key: CounterKey,
) -> Result<Option<MeterOutcome>, MeterError>
where
    S: AccountStore + MeterStore,
    B: Billing,
{
    if deadline.expired() {
        return Ok(None);
    }
    let mut counter =
        Counter { store, billing, settings, paces, outcome: MeterOutcome { visited: 1, ..MeterOutcome::default() } };
    let Some(read) = store.meter_counter(&key).await? else { return Ok(Some(counter.outcome)) };
    let now = settings.clock.now();
    let behind = (read.metered && read.used > read.reported).then(|| read.behind_since.unwrap_or(now));
    match counter.report(read).await {
        Ok(()) => {}
        Err(MeterError::Billing(err)) => {
            tracing::warn!(account = %key.account, metric = key.metric, window = key.window_start, error = %err,
                "meter report deferred to the next lap");
            counter.outcome.deferred = 1;
            counter.outcome.deferred_error = Some(err.to_string());
            counter.outcome.lag_seconds = behind.map_or(0, |since| now.saturating_sub(since));
        }
        Err(err) => return Err(err),
    }
    Ok(Some(counter.outcome))
}

/// What one step did to a counter.
enum Step {
    /// It moved (a report resent, recorded or cancelled): look again.
    Moved,
    /// Nothing is left to move.
    Idle,
    /// It failed, or a condition was lost to a concurrent change: leave it to the next run.
    Stopped,
}

/// The last report, when units it reported were refunded and Stripe still lets it be
/// cancelled.
fn cancellable(counter: &MeterCounter, now: i64) -> Option<MeterReport> {
    counter.last.clone().filter(|last| {
        counter.used < counter.reported
            && last.to == counter.reported
            && now.saturating_sub(last.recorded_at) < STRIPE_DEDUP_WINDOW.saturating_sub(EDGE)
    })
}

/// One counter's reporting.
struct Counter<'a, S, B> {
    store: &'a S,
    billing: &'a B,
    settings: &'a Settings,
    paces: &'a Paces,
    outcome: MeterOutcome,
}

impl<S, B> Counter<'_, S, B>
where
    S: AccountStore + MeterStore,
    B: Billing,
{
    /// Moves one counter as far as it can go now: resend a pending report, record a new one,
    /// cancel a refunded one (each step a conditional write; a lost condition leaves the
    /// counter to the next run), then settle its window once it is over.
    async fn report(&mut self, mut counter: MeterCounter) -> Result<(), MeterError> {
        let now = self.settings.clock.now();
        let event_name = self.settings.catalogue.metric(&counter.key.metric).and_then(|m| m.event_name.clone());
        let Some(event_name) = event_name.filter(|_| counter.metered) else {
            // Not paid usage, or not (or no longer) metered: a refund listed it, or the
            // catalogue changed.
            self.settle(&counter, Settlement::NotBilled).await?;
            return Ok(());
        };
        let customer = self.store.account(&counter.key.account).await?.map(|a| a.customer_id);
        if customer.is_none() && counter.used > counter.reported {
            let reason = format!(
                "units {}..{} were never reported: the account's Stripe customer was retired first",
                counter.reported, counter.used
            );
            return self.fail(&counter, reason).await;
        }
        for _ in 0..4 {
            let step = if let Some(pending) = counter.pending.clone() {
                self.resend(&mut counter, &event_name, customer.as_deref(), pending, now).await?
            } else if counter.used > counter.reported && customer.is_some() {
                self.record(&mut counter, now).await?
            } else if let Some(last) = cancellable(&counter, now) {
                self.cancel(&mut counter, &event_name, last).await?
            } else {
                Step::Idle
            };
            match step {
                Step::Moved => continue,
                Step::Idle => break,
                Step::Stopped => return Ok(()),
            }
        }
        self.settle_if_over(&counter, &event_name, customer.as_deref(), now).await
    }

    /// Sends the pending report again (same identifier: Stripe deduplicates it) and confirms it.
    async fn resend(
        &mut self,
        counter: &mut MeterCounter,
        event_name: &str,
        customer: Option<&str>,
        pending: MeterReport,
        now: i64,
    ) -> Result<Step, MeterError> {
        if now.saturating_sub(pending.recorded_at) > STRIPE_DEDUP_WINDOW.saturating_sub(EDGE) {
            // Stripe may have forgotten the identifier: resending it could count the units
            // twice. Reporting goes on from what was confirmed, under a new identifier; the
            // window's settlement shows whether Stripe had counted the lost report.
            if !self.store.abandon_report(&counter.key, &pending).await? {
                return Ok(Step::Stopped);
            }
            let reason = format!(
                "the report of units {}..{} recorded at {} was never confirmed, and Stripe no longer \
                 deduplicates its identifier {}: reported again under a new identifier",
                pending.from, pending.to, pending.recorded_at, pending.identifier
            );
            self.alarm(&counter.key, reason);
            counter.pending = None;
            counter.revision = counter.revision.saturating_add(1);
            return Ok(Step::Moved);
        }
        let Some(customer) = customer else {
            self.fail(counter, "a pending report for an account without a customer".into()).await?;
            return Ok(Step::Stopped);
        };
        self.send(event_name, customer, &pending).await?;
        if !self.store.confirm_report(&counter.key, &pending).await? {
            return Ok(Step::Stopped);
        }
        counter.reported = pending.to;
        counter.last = Some(pending);
        counter.pending = None;
        Ok(Step::Moved)
    }

    /// Records a report of the units not reported yet, as pending (sent by the next step).
    async fn record(&mut self, counter: &mut MeterCounter, now: i64) -> Result<Step, MeterError> {
        let (first, end) = minutes(counter.key.window_start, counter.window_end);
        let timestamp = now.clamp(first.max(counter.key.window_start), end.min(counter.window_end).saturating_sub(1));
        if timestamp < now.saturating_sub(STRIPE_MAX_EVENT_AGE).saturating_add(EDGE) {
            let reason = format!(
                "units {}..{} of a window that ended at {} were never reported and Stripe no longer \
                 accepts events that old",
                counter.reported, counter.used, counter.window_end
            );
            self.fail(counter, reason).await?;
            return Ok(Step::Stopped);
        }
        let report = MeterReport {
            identifier: identifier(&counter.key, counter.used, counter.revision),
            from: counter.reported,
            to: counter.used,
            timestamp,
            recorded_at: now,
        };
        if !self.store.record_report(&counter.key, counter.revision, &report).await? {
            return Ok(Step::Stopped);
        }
        counter.pending = Some(report);
        Ok(Step::Moved)
    }

    /// Units reported were refunded: cancels the last event while Stripe allows, so what is
    /// left of it is reported afresh.
    async fn cancel(
        &mut self,
        counter: &mut MeterCounter,
        event_name: &str,
        last: MeterReport,
    ) -> Result<Step, MeterError> {
        self.paces.other.turn().await;
        self.billing.cancel_meter_event(event_name, &last.identifier).await?;
        if !self.store.cancel_report(&counter.key, &last).await? {
            return Ok(Step::Stopped);
        }
        self.outcome.cancelled = self.outcome.cancelled.saturating_add(1);
        counter.reported = last.from;
        counter.revision = counter.revision.saturating_add(1);
        counter.last = None;
        Ok(Step::Moved)
    }

    /// Settles a window that is over and quiet: Stripe's total against Tollgate's, drift
    /// alarmed.
    async fn settle_if_over(
        &mut self,
        counter: &MeterCounter,
        event_name: &str,
        customer: Option<&str>,
        now: i64,
    ) -> Result<(), MeterError> {
        if counter.pending.is_some() || now < counter.window_end.saturating_add(SETTLE_AFTER) {
            return Ok(());
        }
        if counter.last.as_ref().is_some_and(|last| now.saturating_sub(last.recorded_at) < SETTLE_AFTER) {
            return Ok(());
        }
        let Some(customer) = customer else {
            self.settle(counter, Settlement::NotBilled).await?;
            return Ok(());
        };
        let key = &counter.key;
        let (start, end) = minutes(key.window_start, counter.window_end);
        self.paces.other.turn().await;
        let stripe = self.billing.meter_total(event_name, customer, start, end).await?;
        let settlement = if stripe == counter.used {
            Settlement::Reported
        } else {
            Settlement::Drift { tollgate: counter.used, stripe }
        };
        if self.settle(counter, settlement).await? && stripe != counter.used {
            self.drift(counter, stripe);
        }
        Ok(())
    }

    /// Alarms a window whose Stripe total differs from Tollgate's and lists it in the outcome.
    fn drift(&mut self, counter: &MeterCounter, stripe: u64) {
        let key = &counter.key;
        tracing::error!(account = %key.account, metric = key.metric, window = key.window_start,
            tollgate = counter.used, stripe, "meter drift: Stripe's total differs from Tollgate's");
        metrics::count(Metric::MeterDrift, 1);
        if self.outcome.drift.len() < LISTED {
            self.outcome.drift.push(MeterDrift {
                account: key.account.to_string(),
                metric: key.metric.clone(),
                window_start: key.window_start,
                tollgate: counter.used,
                stripe,
            });
        }
    }

    async fn send(&mut self, event_name: &str, customer_id: &str, report: &MeterReport) -> Result<(), MeterError> {
        let event = MeterEvent {
            event_name,
            customer_id,
            value: report.value(),
            identifier: &report.identifier,
            timestamp: report.timestamp,
        };
        self.paces.meter_events.turn().await;
        self.billing.send_meter_event(&event).await?;
        self.outcome.sent = self.outcome.sent.saturating_add(1);
        self.outcome.units = self.outcome.units.saturating_add(report.value());
        Ok(())
    }

    async fn settle(&mut self, counter: &MeterCounter, settlement: Settlement) -> Result<bool, MeterError> {
        let settled = self.store.settle(&counter.key, counter.used, counter.reported, &settlement).await?;
        if settled {
            self.outcome.settled = self.outcome.settled.saturating_add(1);
        }
        Ok(settled)
    }

    /// Takes the counter off the due list as failed, alarmed and listed in the outcome.
    async fn fail(&mut self, counter: &MeterCounter, reason: String) -> Result<(), MeterError> {
        let key = &counter.key;
        if self.settle(counter, Settlement::Failed { reason: reason.clone() }).await? {
            self.alarm(key, reason);
        }
        Ok(())
    }

    /// Alarms units that cannot be reported as they should, and lists them in the outcome.
    fn alarm(&mut self, key: &CounterKey, reason: String) {
        tracing::error!(account = %key.account, metric = key.metric, window = key.window_start, %reason,
            "meter report failed");
        metrics::count(Metric::MeterReportsFailed, 1);
        if self.outcome.failed.len() < LISTED {
            self.outcome.failed.push(format!("{}:{}:{}: {reason}", key.account, key.metric, key.window_start));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Never;
    use crate::domain::model::AccountId;
    use crate::domain::usage::Window;
    use crate::ports::accounts::Account;
    use crate::ports::clock::Clock;
    use crate::ports::usage::{Consumption, UsageRecord, UsageStore};
    use crate::testing::{FakeBilling, FixedClock, MemoryStore, SentMeterEvent, settings};

    const NOW: i64 = 1_795_273_200;
    const WINDOW: Window = Window { start: NOW - DAY, end: NOW + 29 * DAY };
    const EVENT: &str = "tollgate_api_calls";

    struct Harness {
        store: MemoryStore,
        billing: FakeBilling,
        clock: FixedClock,
        settings: Settings,
        account: AccountId,
    }

    async fn harness() -> Harness {
        let clock = FixedClock::at(NOW);
        let store = MemoryStore::new();
        let account = AccountId::parse("acct_meter").unwrap();
        let profile = Account { account_id: account.clone(), customer_id: "cus_meter".into(), created_at: NOW };
        store.link_customer(&profile).await.unwrap();
        Harness { settings: settings(&clock), store, billing: FakeBilling::new(), clock, account }
    }

    impl Harness {
        fn key(&self) -> CounterKey {
            CounterKey { account: self.account.clone(), metric: "api_calls".into(), window_start: WINDOW.start }
        }

        async fn consume(&self, key: &str, quantity: u64) {
            let record = UsageRecord {
                actor: None,
                request: key.into(),
                metric: "api_calls".into(),
                quantity,
                window: WINDOW,
                at: self.clock.now(),
                refunded: false,
            };
            let consumption = Consumption {
                account: &self.account,
                key,
                record: &record,
                limit: None,
                rate: None,
                now_ms: self.clock.now() * 1000,
                metered: true,
            };
            self.store.consume(&consumption).await.unwrap();
        }

        async fn run(&self) -> Result<MeterOutcome, MeterError> {
            let mut outcome = MeterOutcome::default();
            report(&self.store, &self.billing, &self.settings, &Paces::new(Duration::ZERO), &Never, &mut outcome)
                .await?;
            Ok(outcome)
        }

        /// What Stripe sums for the account's window.
        async fn stripe_total(&self) -> u64 {
            self.billing.meter_total(EVENT, "cus_meter", WINDOW.start, WINDOW.end).await.unwrap()
        }

        async fn counter(&self) -> MeterCounter {
            self.store.meter_counter(&self.key()).await.unwrap().unwrap()
        }

        fn sends(&self) -> Vec<String> {
            self.billing.calls().into_iter().filter(|c| c.starts_with("send_meter_event")).collect()
        }
    }

    #[tokio::test]
    async fn two_runs_report_each_unit_once_with_deterministic_identifiers() {
        let h = harness().await;
        h.consume("a", 7).await;
        let first = h.run().await.unwrap();
        let second = h.run().await.unwrap();
        h.consume("b", 5).await;
        let third = h.run().await.unwrap();

        let events = h.billing.meter_events();
        let ids: Vec<&str> = events.iter().map(|e| e.identifier.as_str()).collect();
        assert_eq!(
            ids,
            [format!("acct_meter:api_calls:{}:7", WINDOW.start), format!("acct_meter:api_calls:{}:12", WINDOW.start)]
        );
        assert_eq!(events.iter().map(|e| e.value).collect::<Vec<_>>(), [7, 5]);
        assert!(events.iter().all(|e| e.timestamp == NOW && e.customer_id == "cus_meter" && e.event_name == EVENT));
        assert_eq!((first.sent, first.units, second.sent, third.units), (1, 7, 0, 5));
        assert_eq!(h.stripe_total().await, 12);
        let counter = h.counter().await;
        assert_eq!(
            (counter.reported, counter.pending, counter.due),
            (12, None, true),
            "due until its window is settled"
        );
    }

    #[tokio::test]
    async fn a_crash_between_sending_and_saving_resends_the_same_identifier_and_stripe_counts_it_once() {
        let h = harness().await;
        h.consume("a", 9).await;
        h.billing.lose_meter_answers(1);

        let crashed = h.run().await.unwrap();
        let pending = h.counter().await;
        h.clock.advance(600);
        let resumed = h.run().await.unwrap();

        assert_eq!(crashed.deferred, 1, "left for the next lap: {crashed:?}");
        assert!(crashed.deferred_error.is_some(), "{crashed:?}");
        assert_eq!((pending.reported, pending.pending.as_ref().map(|p| (p.from, p.to))), (0, Some((0, 9))));
        let sends = h.sends();
        assert_eq!(sends.len(), 2, "{sends:?}");
        assert_eq!(sends[0], sends[1], "the resend carries the recorded identifier");
        assert_eq!((resumed.sent, resumed.deferred), (1, 0));
        assert_eq!(h.stripe_total().await, 9, "Stripe deduplicated the identifier");
        assert_eq!(h.counter().await.reported, 9);
    }

    #[tokio::test]
    async fn a_pending_report_older_than_stripes_deduplication_is_alarmed_and_reporting_goes_on_from_what_was_confirmed()
     {
        let h = harness().await;
        h.consume("a", 4).await;
        h.run().await.unwrap();
        h.consume("b", 3).await;
        h.billing.lose_meter_answers(1);
        h.run().await.unwrap();
        h.clock.advance(STRIPE_DEDUP_WINDOW);
        h.consume("c", 2).await;

        let outcome = h.run().await.unwrap();
        let again = h.run().await.unwrap();

        let ids: Vec<String> = h.billing.meter_events().iter().map(|e| e.identifier.clone()).collect();
        let start = WINDOW.start;
        assert_eq!(
            ids,
            [
                format!("acct_meter:api_calls:{start}:4"),
                format!("acct_meter:api_calls:{start}:7"),
                format!("acct_meter:api_calls:{start}:9:r1")
            ],
            "the lost report is never resent under its identifier; units 4..9 go under a new one"
        );
        assert_eq!(outcome.failed.len(), 1, "{outcome:?}");
        assert!(outcome.failed[0].contains("never confirmed"), "{outcome:?}");
        let counter = h.counter().await;
        assert_eq!((counter.reported, counter.pending.is_none(), counter.due), (9, true, true));
        assert!(again.failed.is_empty(), "alarmed once, not on every run");
        assert_eq!(h.stripe_total().await, 12, "Stripe had the lost report: settlement will show it as drift");
    }

    #[tokio::test]
    async fn usage_of_a_window_that_ended_more_than_35_days_ago_is_an_alarmed_failure_not_a_silent_loss() {
        let h = harness().await;
        h.consume("a", 3).await;
        h.clock.set(WINDOW.end + STRIPE_MAX_EVENT_AGE);

        let outcome = h.run().await.unwrap();

        assert!(h.sends().is_empty());
        assert_eq!(outcome.failed.len(), 1);
        assert!(outcome.failed[0].contains("never reported"), "{outcome:?}");
    }

    #[tokio::test]
    async fn usage_reported_late_in_stripes_window_is_dated_at_the_end_of_its_own_window() {
        let h = harness().await;
        h.consume("a", 3).await;
        h.clock.set(WINDOW.end + 30 * DAY);

        h.run().await.unwrap();

        let events = h.billing.meter_events();
        assert_eq!((events.len(), events[0].timestamp), (1, WINDOW.end - 1));
    }

    #[tokio::test]
    async fn usage_refunded_after_it_was_reported_cancels_the_event_and_reports_the_rest() {
        let h = harness().await;
        h.consume("a", 6).await;
        h.consume("b", 4).await;
        h.run().await.unwrap();
        h.store.refund(&h.account, "b").await.unwrap();
        h.clock.advance(3_600);

        let outcome = h.run().await.unwrap();

        let events = h.billing.meter_events();
        assert_eq!(outcome.cancelled, 1);
        assert!(events[0].cancelled, "{events:?}");
        assert_eq!(events[1].identifier, format!("acct_meter:api_calls:{}:6:r1", WINDOW.start));
        assert_eq!(h.stripe_total().await, 6);
    }

    #[tokio::test]
    async fn a_window_is_settled_against_stripes_summary_and_drift_is_recorded_once() {
        let h = harness().await;
        h.consume("a", 10).await;
        h.run().await.unwrap();
        h.billing.add_meter_event(SentMeterEvent {
            event_name: EVENT.into(),
            customer_id: "cus_meter".into(),
            value: 3,
            identifier: "elsewhere".into(),
            timestamp: NOW,
            cancelled: false,
        });
        let open = h.run().await.unwrap();
        h.clock.set(WINDOW.end + SETTLE_AFTER);

        let settled = h.run().await.unwrap();
        let again = h.run().await.unwrap();

        assert_eq!((open.settled, open.drift.len()), (0, 0), "an open window is not settled");
        let drift = MeterDrift {
            account: "acct_meter".into(),
            metric: "api_calls".into(),
            window_start: WINDOW.start,
            tollgate: 10,
            stripe: 13,
        };
        assert_eq!((settled.settled, settled.drift), (1, vec![drift]));
        assert_eq!(h.counter().await.settlement, Some(Settlement::Drift { tollgate: 10, stripe: 13 }));
        assert_eq!((again.settled, again.drift.len()), (0, 0));
    }

    #[tokio::test]
    async fn a_refund_too_late_to_cancel_shows_as_drift_when_the_window_settles() {
        let h = harness().await;
        h.consume("a", 6).await;
        h.consume("b", 4).await;
        h.run().await.unwrap();
        h.clock.advance(STRIPE_DEDUP_WINDOW);
        h.store.refund(&h.account, "b").await.unwrap();
        h.run().await.unwrap();
        h.clock.set(WINDOW.end + SETTLE_AFTER);

        let settled = h.run().await.unwrap();

        assert!(h.billing.calls().iter().all(|c| !c.starts_with("cancel_meter_event")));
        assert_eq!(settled.drift.iter().map(|d| (d.tollgate, d.stripe)).collect::<Vec<_>>(), [(6, 10)]);
    }

    /// Counts `quantity` for `account` in WINDOW, as paid usage or not.
    async fn count(store: &MemoryStore, account: &AccountId, key: &str, quantity: u64, metered: bool) {
        let record = UsageRecord {
            actor: None,
            request: key.into(),
            metric: "api_calls".into(),
            quantity,
            window: WINDOW,
            at: NOW,
            refunded: false,
        };
        let consumption =
            Consumption { account, key, record: &record, limit: None, rate: None, now_ms: NOW * 1000, metered };
        store.consume(&consumption).await.unwrap();
    }

    #[tokio::test]
    async fn a_matching_window_settles_as_reported_and_unpaid_usage_listed_by_a_refund_is_not_billed() {
        let h = harness().await;
        h.consume("a", 2).await;
        let other = AccountId::parse("acct_free").unwrap();
        count(&h.store, &other, "x", 3, false).await;
        let listed_before = h.store.due_counters(10, None).await.unwrap().counters.len();
        h.store.refund(&other, "x").await.unwrap();
        h.run().await.unwrap();
        h.clock.set(WINDOW.end + SETTLE_AFTER);

        let outcome = h.run().await.unwrap();

        assert_eq!(listed_before, 1, "only the paid counter is due");
        assert_eq!((outcome.settled, outcome.drift.len(), outcome.failed.len()), (1, 0, 0), "{outcome:?}");
        assert_eq!(h.counter().await.settlement, Some(Settlement::Reported));
        let unpaid = CounterKey { account: other, ..h.key() };
        assert_eq!(h.store.meter_counter(&unpaid).await.unwrap().unwrap().settlement, Some(Settlement::NotBilled));
        assert_eq!(h.billing.meter_events().len(), 1, "no event for usage nobody pays for");
    }

    #[tokio::test]
    async fn units_of_an_account_whose_customer_was_retired_first_are_an_alarmed_failure_not_a_silent_loss() {
        let h = harness().await;
        let retired = AccountId::parse("acct_retired").unwrap();
        count(&h.store, &retired, "x", 3, true).await;

        let outcome = h.run().await.unwrap();
        let again = h.run().await.unwrap();

        assert_eq!(outcome.failed.len(), 1, "{outcome:?}");
        assert!(outcome.failed[0].contains("units 0..3 were never reported"), "{outcome:?}");
        let key = CounterKey { account: retired, ..h.key() };
        let counter = h.store.meter_counter(&key).await.unwrap().unwrap();
        assert!(!counter.due && matches!(counter.settlement, Some(Settlement::Failed { .. })), "{counter:?}");
        assert!(again.failed.is_empty() && h.billing.meter_events().is_empty());
    }

    /// Expires after `n` looks.
    struct Budget(std::sync::atomic::AtomicUsize);

    impl Deadline for Budget {
        fn expired(&self) -> bool {
            self.0
                .fetch_update(std::sync::atomic::Ordering::SeqCst, std::sync::atomic::Ordering::SeqCst, |n| {
                    n.checked_sub(1)
                })
                .is_err()
        }
    }

    #[tokio::test]
    async fn each_run_goes_on_from_where_the_last_stopped_and_the_lap_ends_within_the_runs_it_needs() {
        let h = harness().await;
        for i in 0..250 {
            let account = AccountId::parse(&format!("acct_{i:03}")).unwrap();
            let profile = Account { account_id: account.clone(), customer_id: format!("cus_{i:03}"), created_at: NOW };
            h.store.link_customer(&profile).await.unwrap();
            count(&h.store, &account, "k", 1, true).await;
        }
        let mut passes = Vec::new();
        for _ in 0..3 {
            let mut outcome = MeterOutcome::default();
            // One look per counter: 100 counters of the page, then the next look is late.
            let budget = Budget(std::sync::atomic::AtomicUsize::new(100));
            let pass = report(&h.store, &h.billing, &h.settings, &Paces::new(Duration::ZERO), &budget, &mut outcome)
                .await
                .unwrap();
            passes.push((pass.finished, pass.moved, outcome.sent, outcome.lap_completed));
            h.clock.advance(900);
        }

        assert_eq!(passes, [(false, true, 100, false), (false, true, 100, false), (true, true, 50, true)]);
        let mut ids: Vec<String> = h.billing.meter_events().into_iter().map(|e| e.identifier).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 250, "every counter reported once");
        let position = h.store.meter_position().await.unwrap().unwrap();
        assert_eq!((position.after, position.last_lap_started_at), (None, Some(NOW)));
    }

    #[tokio::test]
    async fn the_lag_is_the_age_of_the_oldest_unit_left_unreported() {
        let h = harness().await;
        h.consume("a", 2).await;
        h.clock.advance(1_200);
        h.billing.fail_meter_events(1);

        let failing = h.run().await.unwrap();
        h.clock.advance(900);
        let recovered = h.run().await.unwrap();

        assert_eq!((failing.deferred, failing.lag_seconds), (1, 1_200), "{failing:?}");
        assert_eq!((recovered.deferred, recovered.lag_seconds), (0, 0), "{recovered:?}");
        assert_eq!(h.counter().await.behind_since, None, "up to date");
    }

    #[tokio::test]
    async fn reports_are_dated_in_the_window_s_whole_minutes_and_its_summary_sums_only_them() {
        let clock = FixedClock::at(NOW + 30);
        let h = Harness { settings: settings(&clock), clock, ..harness().await };
        let window = Window { start: NOW + 30, end: NOW + 30 + 29 * DAY };
        let record = UsageRecord {
            actor: None,
            request: "a".into(),
            metric: "api_calls".into(),
            quantity: 4,
            window,
            at: NOW + 30,
            refunded: false,
        };
        let consumption = Consumption {
            account: &h.account,
            key: "a",
            record: &record,
            limit: None,
            rate: None,
            now_ms: (NOW + 30) * 1000,
            metered: true,
        };
        h.store.consume(&consumption).await.unwrap();

        h.run().await.unwrap();

        let events = h.billing.meter_events();
        assert_eq!(events[0].timestamp, NOW + 60, "the window's first whole minute, never the one it shares");
        assert_eq!(minutes(window.start, window.end), (NOW + 60, NOW + 29 * DAY));
    }

    #[test]
    fn identifiers_are_deterministic_and_never_longer_than_stripe_accepts() {
        let key = |account: &str| CounterKey {
            account: AccountId::parse(account).unwrap(),
            metric: "api_calls".into(),
            window_start: 1_700_000_000,
        };

        assert_eq!(identifier(&key("acct_1"), 42, 0), "acct_1:api_calls:1700000000:42");
        assert_eq!(identifier(&key("acct_1"), 42, 2), "acct_1:api_calls:1700000000:42:r2");
        let long = identifier(&key(&"a".repeat(128)), 42, 0);
        assert!(long.len() <= MAX_IDENTIFIER && long.starts_with("tg:"), "{long}");
        assert_ne!(long, identifier(&key(&"a".repeat(128)), 43, 0));
        assert_eq!(minutes(61, 119), (60, 120));
    }
}
