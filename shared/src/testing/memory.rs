//! The store ports over a `Mutex<HashMap>`, with the same contracts as `DynamoStore` (the
//! contract suite, `shared/tests/store_contract.rs`, runs on both). For handler tests and
//! benchmarks.

use crate::facts::Facts;
use crate::model::{AccountId, Projection};
use crate::ratelimit::{Decision, Limit};
use crate::store::{
    Account, AccountStore, ApplyOutcome, CheckoutStore, EventLog, PendingCheckout, ProcessedEvent, RateLimitStore,
    RateOutcome, StoreError, SubscriptionStore, SyncCursor, SyncOutcome, SyncStore,
};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, Default)]
struct Tables {
    accounts: HashMap<AccountId, Account>,
    customers: HashMap<String, AccountId>,
    subscriptions: HashMap<AccountId, Projection>,
    events: HashMap<String, ProcessedEvent>,
    pending: HashMap<(AccountId, String), PendingCheckout>,
    rates: HashMap<(AccountId, String), Vec<i64>>,
    facts: HashMap<AccountId, Facts>,
    cursor: Option<SyncCursor>,
    outcome: Option<SyncOutcome>,
}

/// An in-memory store; clones share the same data.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore(Arc<Mutex<Tables>>);

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn newer(stored: Option<&Projection>, candidate: &Projection) -> bool {
    stored.is_none_or(|s| s.version < candidate.version)
}

#[async_trait]
impl AccountStore for MemoryStore {
    async fn account(&self, account: &AccountId) -> Result<Option<Account>, StoreError> {
        Ok(self.lock().accounts.get(account).cloned())
    }

    async fn link_customer(&self, account: &Account) -> Result<(), StoreError> {
        let mut tables = self.lock();
        if tables.accounts.contains_key(&account.account_id) || tables.customers.contains_key(&account.customer_id) {
            return Err(StoreError::Conflict("account already linked"));
        }
        tables.accounts.insert(account.account_id.clone(), account.clone());
        tables.customers.insert(account.customer_id.clone(), account.account_id.clone());
        Ok(())
    }

    async fn account_for_customer(&self, customer_id: &str) -> Result<Option<AccountId>, StoreError> {
        Ok(self.lock().customers.get(customer_id).cloned())
    }

    async fn delete_account_data(&self, account: &AccountId, customer_id: Option<&str>) -> Result<(), StoreError> {
        let mut tables = self.lock();
        tables.accounts.remove(account);
        tables.subscriptions.remove(account);
        tables.facts.remove(account);
        if let Some(customer) = customer_id {
            tables.customers.remove(customer);
        }
        tables.pending.retain(|(a, _), _| a != account);
        tables.rates.retain(|(a, _), _| a != account);
        Ok(())
    }
}

#[async_trait]
impl SubscriptionStore for MemoryStore {
    async fn subscription(&self, account: &AccountId) -> Result<Option<Projection>, StoreError> {
        let tables = self.lock();
        let facts = tables.facts.get(account).cloned().unwrap_or_default();
        Ok(tables.subscriptions.get(account).cloned().map(|state| crate::store::merge(state, &facts)))
    }

    async fn facts(&self, account: &AccountId) -> Result<Facts, StoreError> {
        Ok(self.lock().facts.get(account).cloned().unwrap_or_default())
    }

    async fn put_subscription(&self, projection: &Projection) -> Result<(), StoreError> {
        let mut tables = self.lock();
        if !newer(tables.subscriptions.get(&projection.account_id), projection) {
            return Err(StoreError::Conflict("newer projection stored"));
        }
        tables.subscriptions.insert(projection.account_id.clone(), projection.clone());
        Ok(())
    }
}

#[async_trait]
impl EventLog for MemoryStore {
    async fn apply(
        &self,
        event: &ProcessedEvent,
        projection: Option<&Projection>,
        facts: Option<(&AccountId, &Facts)>,
    ) -> Result<ApplyOutcome, StoreError> {
        let mut tables = self.lock();
        if tables.events.contains_key(&event.event_id) {
            return Ok(ApplyOutcome::Duplicate);
        }
        if let Some((account, facts)) = facts {
            if tables.facts.get(account).map_or(0, |f| f.rev) != facts.rev {
                return Err(StoreError::Conflict("facts changed"));
            }
            tables.facts.insert(account.clone(), Facts { rev: facts.rev + 1, ..facts.clone() });
        }
        tables.events.insert(event.event_id.clone(), event.clone());
        match projection {
            Some(p) if newer(tables.subscriptions.get(&p.account_id), p) => {
                tables.subscriptions.insert(p.account_id.clone(), p.clone());
                Ok(ApplyOutcome::Applied)
            }
            Some(_) => Ok(ApplyOutcome::Stale),
            None => Ok(ApplyOutcome::Applied),
        }
    }

    async fn processed(&self, event_id: &str) -> Result<Option<ProcessedEvent>, StoreError> {
        Ok(self.lock().events.get(event_id).cloned())
    }
}

#[async_trait]
impl CheckoutStore for MemoryStore {
    async fn pending_checkout(
        &self,
        account: &AccountId,
        request_key: &str,
        now: i64,
    ) -> Result<Option<PendingCheckout>, StoreError> {
        let tables = self.lock();
        Ok(tables.pending.get(&(account.clone(), request_key.to_owned())).filter(|p| p.valid_until > now).cloned())
    }

    async fn reserve_checkout(
        &self,
        account: &AccountId,
        pending: &PendingCheckout,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tables = self.lock();
        let key = (account.clone(), pending.request_key.clone());
        if tables.pending.get(&key).is_some_and(|p| p.valid_until > now) {
            return Err(StoreError::Conflict("checkout already pending"));
        }
        tables.pending.insert(key, pending.clone());
        Ok(())
    }

    async fn complete_checkout(&self, account: &AccountId, pending: &PendingCheckout) -> Result<(), StoreError> {
        let mut tables = self.lock();
        match tables.pending.get_mut(&(account.clone(), pending.request_key.clone())) {
            Some(stored) if stored.nonce == pending.nonce => {
                *stored = pending.clone();
                Ok(())
            }
            _ => Err(StoreError::Conflict("reservation replaced")),
        }
    }
}

#[async_trait]
impl RateLimitStore for MemoryStore {
    async fn take_rate(
        &self,
        account: &AccountId,
        name: &str,
        limit: Limit,
        now_ms: i64,
    ) -> Result<RateOutcome, StoreError> {
        let mut tables = self.lock();
        let stamps = tables.rates.entry((account.clone(), name.to_owned())).or_default();
        Ok(match crate::ratelimit::decide(stamps, now_ms, limit) {
            Decision::Allowed(next) => {
                *stamps = next;
                RateOutcome::Allowed
            }
            Decision::Limited { retry_after_ms } => RateOutcome::Limited { retry_after_ms },
        })
    }
}

#[async_trait]
impl SyncStore for MemoryStore {
    async fn cursor(&self) -> Result<Option<SyncCursor>, StoreError> {
        Ok(self.lock().cursor.clone())
    }

    async fn save_cursor(&self, cursor: &SyncCursor) -> Result<(), StoreError> {
        self.lock().cursor = Some(cursor.clone());
        Ok(())
    }

    async fn outcome(&self) -> Result<Option<SyncOutcome>, StoreError> {
        Ok(self.lock().outcome.clone())
    }

    async fn save_outcome(&self, outcome: &SyncOutcome) -> Result<(), StoreError> {
        self.lock().outcome = Some(outcome.clone());
        Ok(())
    }
}
