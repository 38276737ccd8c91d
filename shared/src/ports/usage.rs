//! Usage counters, decided exactly: one consumption, its refund, the tally.

use super::{Refund, StoreError};
use crate::domain::model::AccountId;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// One consumption of a metric, as its idempotency record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// What was asked (metric and quantity), hashed: the same key with another request is a
    /// mismatch, not a replay.
    pub request: String,
    pub metric: String,
    pub quantity: u64,
    pub window: crate::domain::usage::Window,
    pub at: i64,
    #[serde(default)]
    pub refunded: bool,
    /// Who recorded it ([`crate::domain::actor`]); `None` on records stored before actors were
    /// kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// A consumption to decide.
#[derive(Debug, Clone, Copy)]
pub struct Consumption<'a> {
    pub account: &'a AccountId,
    /// The caller's idempotency key.
    pub key: &'a str,
    pub record: &'a UsageRecord,
    /// The metric's limit in the record's window; `None` counts and never refuses.
    pub limit: Option<u64>,
    /// The per-minute request limit; `None` is unlimited.
    pub rate: Option<crate::domain::ratelimit::Limit>,
    /// Paid usage of a metric reported to a Stripe meter (a live paid subscription's window):
    /// its counter is listed as due for the sync's meter pass. Free usage never is.
    pub metered: bool,
    pub now_ms: i64,
}

/// A metric's count in a window and the requests counted in the current per-minute window,
/// read together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    pub used: u64,
    /// Requests in the per-minute window (0 without a per-minute limit).
    pub requests: u64,
}

/// What [`UsageStore::consume`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consumed {
    /// Counted, with its idempotency record; the tally right after.
    Counted(Tally),
    /// The key was used before: nothing counted; its record.
    Replayed(UsageRecord),
    /// Over the per-minute limit: nothing counted, no record.
    RateLimited { retry_after_ms: i64 },
    /// Over the quota: nothing counted, no record; the tally as it stands.
    QuotaExceeded(Tally),
}

/// What [`UsageStore::refund`] did.
pub type Refunded = Refund<UsageRecord>;

/// Usage counters, decided exactly.
#[async_trait]
pub trait UsageStore: Send + Sync {
    /// Decides one consumption in one transaction: the idempotency record is written only if
    /// the key is new, the request counted in the per-minute window only if it has room, and
    /// the quantity added to the metric's counter only if it stays within the limit. All or
    /// nothing: a refusal (or a failed write) leaves no record, so a retry is decided afresh.
    async fn consume(&self, consumption: &Consumption<'_>) -> Result<Consumed, StoreError>;

    /// Records, once, that `metric`'s count in `window` reached `pct` percent of its limit:
    /// `true` the first time (the caller tells it), `false` ever after, under any concurrency
    /// (one conditional write).
    async fn mark_threshold(
        &self,
        account: &AccountId,
        metric: &str,
        window: &crate::domain::usage::Window,
        pct: u8,
    ) -> Result<bool, StoreError>;

    /// The consumption recorded under `key`, if any (consistent).
    async fn usage_record(&self, account: &AccountId, key: &str) -> Result<Option<UsageRecord>, StoreError>;

    /// Reverses the consumption recorded under `key`, once, in one transaction with its record.
    async fn refund(&self, account: &AccountId, key: &str) -> Result<Refunded, StoreError>;

    /// The count of `metric` in `window` and, with `rate_window_ms` (a per-minute window's
    /// start), the requests counted in that window: one read.
    async fn tally(
        &self,
        account: &AccountId,
        metric: &str,
        window: &crate::domain::usage::Window,
        rate_window_ms: Option<i64>,
    ) -> Result<Tally, StoreError>;

    /// The count of `metric` in `window`.
    async fn used(
        &self,
        account: &AccountId,
        metric: &str,
        window: &crate::domain::usage::Window,
    ) -> Result<u64, StoreError> {
        Ok(self.tally(account, metric, window, None).await?.used)
    }
}
