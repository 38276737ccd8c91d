//! The in-memory [`UsageStore`], with the contracts of the DynamoDB one: one lock is one
//! transaction.

use super::MemoryStore;
use crate::domain::model::AccountId;
use crate::domain::usage::Window;
use crate::ports::StoreError;
use crate::ports::usage::{Consumed, Consumption, Refunded, Tally, UsageRecord, UsageStore};
use async_trait::async_trait;

#[async_trait]
impl UsageStore for MemoryStore {
    async fn consume(&self, c: &Consumption<'_>) -> Result<Consumed, StoreError> {
        let mut tables = self.lock();
        let record = c.record;
        if let Some(earlier) = tables.usage_records.get(&(c.account.clone(), c.key.to_owned())) {
            return Ok(Consumed::Replayed(earlier.clone()));
        }
        let rate_key = c.rate.map(|limit| (limit, limit.window(c.now_ms)));
        if let Some((limit, window)) = rate_key {
            let taken = tables.rates.get(&(c.account.clone(), "usage".to_owned(), window.start_ms)).copied();
            if taken.unwrap_or_default() >= limit.max() {
                return Ok(Consumed::RateLimited { retry_after_ms: window.retry_after_ms(c.now_ms) });
            }
        }
        let counter = (c.account.clone(), record.metric.clone(), record.window.start);
        let used = tables.usage.get(&counter).copied().unwrap_or_default();
        let rate_at = rate_key.map(|(_, window)| (c.account.clone(), "usage".to_owned(), window.start_ms));
        let requests = rate_at.as_ref().and_then(|at| tables.rates.get(at)).copied().unwrap_or_default();
        if c.limit.is_some_and(|limit| used.saturating_add(record.quantity) > limit) {
            return Ok(Consumed::QuotaExceeded(Tally { used, requests }));
        }
        if let Some(at) = rate_at {
            tables.rates.insert(at, requests.saturating_add(1));
        }
        let after = used.saturating_add(record.quantity);
        let fields = tables.meters.entry(counter.clone()).or_default();
        fields.metered = c.metered;
        if c.metered {
            fields.due = true;
            fields.window_end = record.window.end;
            fields.behind_since.get_or_insert(record.at);
        }
        tables.usage.insert(counter, after);
        tables.usage_records.insert((c.account.clone(), c.key.to_owned()), record.clone());
        let requests = if rate_key.is_some() { requests.saturating_add(1) } else { 0 };
        Ok(Consumed::Counted(Tally { used: after, requests }))
    }

    async fn mark_threshold(
        &self,
        account: &AccountId,
        metric: &str,
        window: &Window,
        pct: u8,
    ) -> Result<bool, StoreError> {
        Ok(self.lock().alerts.insert((account.clone(), metric.to_owned(), window.start, pct)))
    }

    async fn usage_record(&self, account: &AccountId, key: &str) -> Result<Option<UsageRecord>, StoreError> {
        Ok(self.lock().usage_records.get(&(account.clone(), key.to_owned())).cloned())
    }

    async fn refund(&self, account: &AccountId, key: &str) -> Result<Refunded, StoreError> {
        let mut tables = self.lock();
        let Some(record) = tables.usage_records.get(&(account.clone(), key.to_owned())).cloned() else {
            return Ok(Refunded::Unknown);
        };
        if record.refunded {
            return Ok(Refunded::AlreadyRefunded(record));
        }
        let counter = (account.clone(), record.metric.clone(), record.window.start);
        let used = tables.usage.get(&counter).copied().unwrap_or_default();
        let Some(back) = used.checked_sub(record.quantity) else {
            return Err(StoreError::Corrupt("a usage counter holds less than a consumption it recorded".into()));
        };
        tables.meters.entry(counter.clone()).or_default().due = true;
        tables.usage.insert(counter, back);
        let refunded = crate::ports::usage::UsageRecord { refunded: true, ..record };
        tables.usage_records.insert((account.clone(), key.to_owned()), refunded.clone());
        Ok(Refunded::Refunded(refunded))
    }

    async fn tally(
        &self,
        account: &AccountId,
        metric: &str,
        window: &Window,
        rate_window_ms: Option<i64>,
    ) -> Result<Tally, StoreError> {
        let tables = self.lock();
        let used = tables.usage.get(&(account.clone(), metric.to_owned(), window.start)).copied().unwrap_or_default();
        let requests = rate_window_ms
            .and_then(|start| tables.rates.get(&(account.clone(), "usage".to_owned(), start)))
            .copied()
            .unwrap_or_default();
        Ok(Tally { used, requests })
    }
}
