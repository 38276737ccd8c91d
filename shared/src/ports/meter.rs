//! The meter port: what the sync needs to report usage counters to Stripe Billing Meters
//! exactly once. A counter of a metered metric (one with an `event_name`) is *due* from its
//! first consumption until the sync settles it after its window ended; each counter keeps a
//! reported watermark, the report in flight (recorded before it is sent, so a crash between
//! sending and saving resends the same identifier), and the last report sent (so usage
//! refunded after it was reported can cancel it while Stripe allows).

use super::StoreError;
use crate::domain::model::AccountId;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A usage counter: account, metric and the start of its window.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CounterKey {
    pub account: AccountId,
    pub metric: String,
    pub window_start: i64,
}

/// One meter event: the counter's units from `from` (exclusive) to `to` (inclusive), sent
/// with `identifier` and `timestamp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeterReport {
    pub identifier: String,
    pub from: u64,
    pub to: u64,
    /// The meter event's time (Unix seconds), inside the counter's window.
    pub timestamp: i64,
    /// When the report was recorded (Unix seconds): a pending report is resent only while
    /// Stripe still deduplicates its identifier (24 hours).
    pub recorded_at: i64,
}

impl MeterReport {
    /// The units it reports.
    pub fn value(&self) -> u64 {
        self.to.saturating_sub(self.from)
    }
}

/// How the sync left a counter it settled (its window ended).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Settlement {
    /// Stripe's total for the window equals Tollgate's.
    Reported,
    /// The metric is not reported to a meter, or the account has no Stripe customer to bill.
    NotBilled,
    /// Stripe's total for the window differs from Tollgate's (`stripe - tollgate` units).
    Drift { tollgate: u64, stripe: u64 },
    /// The counter cannot be reported: a pending report older than Stripe's deduplication, or
    /// a window older than Stripe accepts. Never resent blindly; alarmed.
    Failed { reason: String },
}

/// A usage counter as the meter reporting reads it (one strongly consistent read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterCounter {
    pub key: CounterKey,
    pub window_end: i64,
    pub used: u64,
    /// The units reported to Stripe so far (the watermark).
    pub reported: u64,
    /// A report recorded and perhaps sent, not yet confirmed.
    pub pending: Option<MeterReport>,
    /// The last report confirmed.
    pub last: Option<MeterReport>,
    /// How many reports were cancelled in this window: a part of later identifiers, so an
    /// identifier is never reused for other units.
    pub revision: u32,
    /// Still listed as due.
    pub due: bool,
    /// Counted as paid usage (a live paid subscription's window): only such a counter is
    /// reported; a refund may list any counter, which is then settled as not billed.
    pub metered: bool,
    /// When the oldest unit not reported yet was counted (Unix seconds): set by the first
    /// consumption after the counter was up to date, moved by each confirmed report; only
    /// meaningful while `used > reported`.
    pub behind_since: Option<i64>,
    /// How it was settled, once settled.
    pub settlement: Option<Settlement>,
}

/// A page of due counters and the cursor of the next one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DuePage {
    pub counters: Vec<CounterKey>,
    /// The cursor after each of `counters` (a page visited in part goes on after the last
    /// counter visited).
    pub cursors: Vec<String>,
    pub next: Option<String>,
}

/// Usage counters as Stripe Billing Meters see them. Every write is conditional on what the
/// caller read, so a write that loses answers `false` and changes nothing.
#[async_trait]
pub trait MeterStore: Send + Sync {
    /// Up to `limit` due counters, after the cursor `after` (from a previous page).
    async fn due_counters(&self, limit: usize, after: Option<&str>) -> Result<DuePage, StoreError>;

    /// The counter; `None` when it does not exist (deleted with its account).
    async fn meter_counter(&self, key: &CounterKey) -> Result<Option<MeterCounter>, StoreError>;

    /// Records `report` as pending, if the watermark is still `report.from` at `revision` and
    /// no report is pending.
    async fn record_report(&self, key: &CounterKey, revision: u32, report: &MeterReport) -> Result<bool, StoreError>;

    /// Moves the watermark to `report.to` and makes `report` the last one sent, if it is the
    /// pending report. `behind_since` is cleared when the counter still holds `report.to`
    /// units, and otherwise becomes `report.recorded_at` (the units after it were counted
    /// after the report read the counter).
    async fn confirm_report(&self, key: &CounterKey, report: &MeterReport) -> Result<bool, StoreError>;

    /// Gives up a pending report that can no longer be resent (Stripe may have forgotten its
    /// identifier): it is dropped, the watermark stays at what was confirmed and the revision
    /// goes up by one (the units are reported again under a new identifier), if `pending` is
    /// still the pending report.
    async fn abandon_report(&self, key: &CounterKey, pending: &MeterReport) -> Result<bool, StoreError>;

    /// After `last` was cancelled in Stripe: the watermark goes back to `last.from`, the
    /// revision up by one, if `last` is still the last report and nothing is pending.
    async fn cancel_report(&self, key: &CounterKey, last: &MeterReport) -> Result<bool, StoreError>;

    /// Takes the counter off the due list with `settlement`, if it is still due (so a counter
    /// is settled once, however often an eventually consistent index lists it), still holds
    /// `used` and `reported` as read and nothing is pending (a `Failed` settlement keeps what
    /// is pending). A later refund lists it again.
    async fn settle(
        &self,
        key: &CounterKey,
        used: u64,
        reported: u64,
        settlement: &Settlement,
    ) -> Result<bool, StoreError>;
}

/// What one pass of meter reporting did, as the sync's outcome records it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeterOutcome {
    /// Meter events sent (a resend of a pending report included).
    pub sent: u64,
    /// Units in them.
    pub units: u64,
    /// Meter events cancelled because usage they reported was refunded.
    pub cancelled: u64,
    /// Counters whose window was settled.
    pub settled: u64,
    /// Counters that cannot be reported (alarmed): `account:metric:window: reason`.
    pub failed: Vec<String>,
    /// Windows where Stripe's total differs from Tollgate's (alarmed).
    pub drift: Vec<MeterDrift>,
    /// Due counters this run visited.
    #[serde(default)]
    pub visited: u64,
    /// Counters left for the next run after a Stripe failure that may pass (unavailable,
    /// rate limited).
    #[serde(default)]
    pub deferred: u64,
    /// The Stripe failure that deferred the first of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferred_error: Option<String>,
    /// The lap over every due counter was completed in this run.
    #[serde(default)]
    pub lap_completed: bool,
    /// The age in seconds of the oldest unit of a paying account not yet reported, as far as
    /// the run can tell (the `MeterReportLag` metric): exact for the counters it visited, an
    /// upper bound for those it did not reach.
    #[serde(default)]
    pub lag_seconds: i64,
}

impl MeterOutcome {
    /// At most this many drifts and failures are listed (all are counted in the metrics).
    pub const LISTED: usize = 50;

    /// Adds what `other` did (one counter's reporting) to this run's outcome.
    pub fn absorb(&mut self, other: MeterOutcome) {
        self.sent = self.sent.saturating_add(other.sent);
        self.units = self.units.saturating_add(other.units);
        self.cancelled = self.cancelled.saturating_add(other.cancelled);
        self.settled = self.settled.saturating_add(other.settled);
        self.visited = self.visited.saturating_add(other.visited);
        self.deferred = self.deferred.saturating_add(other.deferred);
        if self.deferred_error.is_none() {
            self.deferred_error = other.deferred_error;
        }
        self.lag_seconds = self.lag_seconds.max(other.lag_seconds);
        let room = Self::LISTED.saturating_sub(self.failed.len());
        self.failed.extend(other.failed.into_iter().take(room));
        let room = Self::LISTED.saturating_sub(self.drift.len());
        self.drift.extend(other.drift.into_iter().take(room));
    }
}

/// Where the meter pass stands in its lap over the due counters: the next run goes on from
/// `after`, so every due counter is visited within a bounded number of runs, however many
/// there are.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MeterPosition {
    /// The due-counter page cursor to go on from; `None`: the top of the list.
    #[serde(default)]
    pub after: Option<String>,
    /// When the lap in progress started (Unix seconds).
    #[serde(default)]
    pub lap_started_at: i64,
    /// When the last completed lap started: every counter was visited since, so no unit
    /// counted before it waits unreported (unless alarmed).
    #[serde(default)]
    pub last_lap_started_at: Option<i64>,
}

/// A window whose Stripe total differs from Tollgate's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeterDrift {
    pub account: String,
    pub metric: String,
    pub window_start: i64,
    pub tollgate: u64,
    pub stripe: u64,
}
