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
    /// How it was settled, once settled.
    pub settlement: Option<Settlement>,
}

/// A page of due counters and the cursor of the next one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DuePage {
    pub counters: Vec<CounterKey>,
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
    /// pending report.
    async fn confirm_report(&self, key: &CounterKey, report: &MeterReport) -> Result<bool, StoreError>;

    /// After `last` was cancelled in Stripe: the watermark goes back to `last.from`, the
    /// revision up by one, if `last` is still the last report and nothing is pending.
    async fn cancel_report(&self, key: &CounterKey, last: &MeterReport) -> Result<bool, StoreError>;

    /// Takes the counter off the due list with `settlement`, if it still holds `used` and
    /// `reported` as read and nothing is pending (a `Failed` settlement keeps what is pending).
    /// A later refund lists it again.
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
