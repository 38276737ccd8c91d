//! The store ports over a `Mutex<HashMap>`, with the same contracts as `DynamoStore` (the
//! contract suite, `shared/tests/store_contract.rs`, runs on both). For handler tests and
//! benchmarks.

use crate::facts::Facts;
use crate::model::{AccountId, Projection};
use crate::ratelimit::Limit;
use crate::store::{
    Account, AccountState, AccountStore, ApplyOutcome, CheckoutStore, CustomerLink, Effect, EventLog, FailedEvent,
    PendingCheckout, ProcessedEvent, RateLimitStore, RateOutcome, Retirement, StoreError, SubscriptionStore,
    SyncCursor, SyncOutcome, SyncStore, Tombstone, UsageCounter,
};
use async_trait::async_trait;
use std::collections::HashMap;

mod api_keys;
mod credits;
mod invoices;
mod meter;
mod usage;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, Default)]
struct Tables {
    accounts: HashMap<AccountId, Account>,
    /// The customer index.
    customers: HashMap<String, CustomerLink>,
    subscriptions: HashMap<AccountId, Projection>,
    events: HashMap<String, ProcessedEvent>,
    pending: HashMap<(AccountId, String), PendingCheckout>,
    rates: HashMap<(AccountId, String, i64), u64>,
    facts: HashMap<AccountId, Facts>,
    tombstones: HashMap<AccountId, Tombstone>,
    failures: HashMap<String, FailedEvent>,
    cursor: Option<SyncCursor>,
    outcome: Option<SyncOutcome>,
    /// API keys by id (each record is both the lookup and the listing item).
    api_keys: HashMap<crate::apikeys::KeyId, crate::apikeys::ApiKey>,
    /// Slots taken per account.
    api_key_slots: HashMap<AccountId, u32>,
    /// Usage counters by account, metric and window start.
    usage: HashMap<(AccountId, String, i64), u64>,
    /// The meter fields of usage counters, by the same key as `usage`.
    meters: HashMap<(AccountId, String, i64), meter::MeterFields>,
    /// Usage requests' idempotency records by account and key.
    usage_records: HashMap<(AccountId, String), crate::store::UsageRecord>,
    /// Credit grants by account, then id.
    grants: HashMap<AccountId, std::collections::BTreeMap<String, crate::credits::Grant>>,
    /// Ledger entries by account, by their sort key (time, then id).
    ledger: HashMap<AccountId, std::collections::BTreeMap<String, crate::store::LedgerEntry>>,
    /// Credit consumptions' idempotency records by account and key.
    credit_records: HashMap<(AccountId, String), crate::store::CreditRecord>,
    /// Invoices by account, by their sort key (`created`, then id).
    invoices: HashMap<AccountId, std::collections::BTreeMap<String, crate::invoices::Invoice>>,
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

impl Tables {
    fn linked(&self, account: &AccountId, customer: &str) -> bool {
        self.customers.get(customer) == Some(&CustomerLink::Linked(account.clone()))
    }
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
        tables.customers.insert(account.customer_id.clone(), CustomerLink::Linked(account.account_id.clone()));
        Ok(())
    }

    async fn customer_link(&self, customer_id: &str) -> Result<Option<CustomerLink>, StoreError> {
        Ok(self.lock().customers.get(customer_id).cloned())
    }

    async fn retire(
        &self,
        account: &AccountId,
        customer_id: Option<&str>,
        retirement: Retirement,
        tombstone: &Tombstone,
    ) -> Result<(), StoreError> {
        let mut tables = self.lock();
        tables.accounts.remove(account);
        tables.subscriptions.remove(account);
        tables.pending.retain(|(a, _), _| a != account);
        if retirement == Retirement::AccountDeleted {
            tables.facts.remove(account);
            tables.grants.remove(account);
            tables.ledger.remove(account);
            tables.invoices.remove(account);
        }
        if tombstone.is_empty() {
            tables.tombstones.remove(account);
        } else {
            tables.tombstones.insert(account.clone(), tombstone.clone());
        }
        if let Some(customer) = customer_id {
            tables.customers.insert(customer.to_owned(), CustomerLink::Retired(account.clone()));
        }
        Ok(())
    }
}

#[async_trait]
impl SubscriptionStore for MemoryStore {
    async fn state(&self, account: &AccountId) -> Result<AccountState, StoreError> {
        let tables = self.lock();
        let facts = tables.facts.get(account).cloned().unwrap_or_default();
        let tombstone = tables.tombstones.get(account).cloned().unwrap_or_default();
        let subscription =
            tables.subscriptions.get(account).cloned().map(|state| crate::store::merge(state, &facts, &tombstone));
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
        })
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

#[async_trait]
impl EventLog for MemoryStore {
    async fn apply(&self, event: &ProcessedEvent, effect: Option<Effect<'_>>) -> Result<ApplyOutcome, StoreError> {
        let mut tables = self.lock();
        if tables.events.contains_key(&event.event_id) {
            return Ok(ApplyOutcome::Duplicate);
        }
        let Some(effect) = effect.filter(|e| e.projection.is_some() || e.facts.is_some()) else {
            tables.events.insert(event.event_id.clone(), event.clone());
            return Ok(ApplyOutcome::Applied);
        };
        let link = if effect.retired {
            CustomerLink::Retired(effect.account.clone())
        } else {
            CustomerLink::Linked(effect.account.clone())
        };
        if tables.customers.get(effect.customer) != Some(&link) {
            tables.events.insert(event.event_id.clone(), event.clone());
            return Ok(ApplyOutcome::Unlinked);
        }
        // A retired customer's effect is facts only, whatever the caller passed.
        let projection = effect.projection.filter(|_| !effect.retired);
        if let Some(facts) = effect.facts {
            if tables.facts.get(effect.account).map_or(0, |f| f.rev) != facts.rev {
                return Err(StoreError::Conflict("facts changed"));
            }
            tables.facts.insert(effect.account.clone(), Facts { rev: facts.rev.saturating_add(1), ..facts.clone() });
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

    async fn record_failure(&self, failure: &FailedEvent) -> Result<(), StoreError> {
        self.lock().failures.insert(failure.id.clone(), failure.clone());
        Ok(())
    }

    async fn failure(&self, id: &str) -> Result<Option<FailedEvent>, StoreError> {
        Ok(self.lock().failures.get(id).cloned())
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
