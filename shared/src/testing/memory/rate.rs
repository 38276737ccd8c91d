//! The in-memory [`RateLimitStore`], with the contracts of the DynamoDB one.

use super::MemoryStore;
use crate::domain::model::AccountId;
use crate::domain::ratelimit::Limit;
use crate::ports::StoreError;
use crate::ports::rate::{RateLimitStore, RateOutcome};
use async_trait::async_trait;

#[async_trait]
impl RateLimitStore for MemoryStore {
    async fn take_rate(
        &self,
        account: &AccountId,
        name: &str,
        limit: Limit,
        now_ms: i64,
    ) -> Result<RateOutcome, StoreError> {
        let window = limit.window(now_ms);
        let mut tables = self.lock();
        let count = tables.rates.entry((account.clone(), name.to_owned(), window.start_ms)).or_default();
        if *count >= limit.max() {
            return Ok(RateOutcome::Limited { retry_after_ms: window.retry_after_ms(now_ms) });
        }
        *count = count.saturating_add(1);
        Ok(RateOutcome::Allowed)
    }
}
