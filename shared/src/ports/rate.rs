//! Fixed rate windows shared by every instance, per account and name: the per-minute limits.

use super::StoreError;
use crate::domain::model::AccountId;
use async_trait::async_trait;

/// The outcome of asking a rate window for one more event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateOutcome {
    Allowed,
    Limited { retry_after_ms: i64 },
}

/// Rate windows shared by every instance, per account and name.
#[async_trait]
pub trait RateLimitStore: Send + Sync {
    /// Counts one event in the account's window `name` (the fixed window of `limit` that
    /// `now_ms` falls in) if fewer than `limit.limit` were counted there, in one conditional
    /// write: exact under any concurrency. The window is shared by every instance and kept
    /// until it ends.
    async fn take_rate(
        &self,
        account: &AccountId,
        name: &str,
        limit: crate::domain::ratelimit::Limit,
        now_ms: i64,
    ) -> Result<RateOutcome, StoreError>;
}
