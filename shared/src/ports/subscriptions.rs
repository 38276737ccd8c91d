//! The subscription projection and the account's other state items, read in one request.

use super::StoreError;
use super::accounts::Account;
use crate::domain::facts::Facts;
use crate::domain::facts::Tombstone;
use crate::domain::model::{AccountId, Projection};
use async_trait::async_trait;
use std::collections::BTreeSet;

/// One consistent read of an account's state items.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccountState {
    pub profile: Option<Account>,
    /// The projection combined with the facts and the tombstone (see [`merge`]); `None` when
    /// the account has no subscription.
    pub subscription: Option<Projection>,
    pub facts: Facts,
    pub tombstone: Tombstone,
    /// The account's usage counters (every metric, every window kept).
    pub usage: Vec<UsageCounter>,
    /// The account's credit grants, live or expired, with what is left of each.
    pub grants: Vec<crate::domain::credits::Grant>,
}

/// A metric's count in one usage window, as the account's read sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageCounter {
    pub metric: String,
    pub window_start: i64,
    pub used: u64,
}

impl AccountState {
    /// The state without what the account's deletion forgets ([`Forgotten`]): both stores
    /// read it so, while the deletion's purge runs and after.
    ///
    /// [`Forgotten`]: crate::ports::accounts::Forgotten
    pub fn forgetting_deleted(mut self) -> Self {
        let Some(forgotten) = crate::ports::accounts::Forgotten::of(&self.tombstone) else { return self };
        self.grants.retain(|g| !forgotten.stamped(g.granted_at));
        let windows: Vec<(String, i64)> = self.usage.iter().map(|c| (c.metric.clone(), c.window_start)).collect();
        self.usage
            .retain(|c| !forgotten.counter(&c.metric, c.window_start, windows.iter().map(|(m, s)| (m.as_str(), *s))));
        self
    }

    /// The count of `metric` in the window that starts at `window_start`.
    pub fn used(&self, metric: &str, window_start: i64) -> u64 {
        self.usage.iter().find(|c| c.metric == metric && c.window_start == window_start).map_or(0, |c| c.used)
    }

    /// Disputes that refuse access whatever the plan: open or lost ones from the facts and
    /// those kept in the tombstone.
    pub fn disputes(&self) -> BTreeSet<String> {
        self.facts.open_disputes.union(&self.tombstone.disputes).cloned().collect()
    }

    /// Whether a trial may be offered: the account never had a subscription.
    pub fn trial_available(&self) -> bool {
        self.subscription.is_none() && !self.tombstone.trial_used
    }
}

/// The subscription projection, one per account, and the account's other state items.
#[async_trait]
pub trait SubscriptionStore: Send + Sync {
    /// Every state item of the account, in one consistent request.
    async fn state(&self, account: &AccountId) -> Result<AccountState, StoreError>;

    /// The account's projection (state, facts and tombstone combined, see [`merge`]); `None`
    /// when it has no subscription.
    async fn subscription(&self, account: &AccountId) -> Result<Option<Projection>, StoreError> {
        Ok(self.state(account).await?.subscription)
    }

    /// The facts recorded for the account (empty, revision 0, when none).
    async fn facts(&self, account: &AccountId) -> Result<Facts, StoreError> {
        Ok(self.state(account).await?.facts)
    }

    /// Writes `projection` only if its `version` is newer than the stored one (or none is
    /// stored) and its customer is still linked to its account. `Conflict` otherwise; then
    /// nothing is written.
    async fn put_subscription(&self, projection: &Projection) -> Result<(), StoreError>;
}
