//! The in-memory [`SubscriptionStore`], with the contracts of the DynamoDB one.

use super::{MemoryStore, newer};
use crate::domain::model::{AccountId, Projection};
use crate::ports::StoreError;
use crate::ports::subscriptions::{AccountState, SubscriptionStore, UsageCounter};
use async_trait::async_trait;

#[async_trait]
impl SubscriptionStore for MemoryStore {
    async fn state(&self, account: &AccountId) -> Result<AccountState, StoreError> {
        let tables = self.lock();
        let facts = tables.facts.get(account).cloned().unwrap_or_default();
        let tombstone = tables.tombstones.get(account).cloned().unwrap_or_default();
        let subscription = tables
            .subscriptions
            .get(account)
            .cloned()
            .map(|state| crate::domain::projection::merge(state, &facts, &tombstone));
        let mut usage: Vec<UsageCounter> = tables
            .usage
            .iter()
            .filter(|((a, _, _), _)| a == account)
            .map(|((_, metric, start), used)| UsageCounter {
                metric: metric.clone(),
                window_start: *start,
                used: *used,
            })
            .collect();
        usage.sort_by(|a, b| (&a.metric, a.window_start).cmp(&(&b.metric, b.window_start)));
        let grants = tables.grants.get(account).map(|g| g.values().cloned().collect()).unwrap_or_default();
        Ok(AccountState {
            profile: tables.accounts.get(account).cloned(),
            subscription,
            facts,
            tombstone,
            usage,
            grants,
        }
        .forgetting_deleted())
    }

    async fn put_subscription(&self, projection: &Projection) -> Result<(), StoreError> {
        let mut tables = self.lock();
        if !newer(tables.subscriptions.get(&projection.account_id), projection)
            || !tables.linked(&projection.account_id, &projection.customer_id)
        {
            return Err(StoreError::Conflict("newer projection stored, or the customer is unlinked"));
        }
        tables.subscriptions.insert(projection.account_id.clone(), projection.clone());
        Ok(())
    }
}
