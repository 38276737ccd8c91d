//! The store ports over a `Mutex<HashMap>`, with the same contracts as `DynamoStore` (the
//! contract suite, `shared/tests/store_contract.rs`, runs on both). For handler tests and
//! benchmarks.

mod accounts;
mod api_keys;
mod checkouts;
mod credits;
mod events;
mod invoices;
mod meter;
mod rate;
mod subscriptions;
mod sync;
mod usage;

use crate::domain::facts::Facts;
use crate::domain::facts::Tombstone;
use crate::domain::model::{AccountId, Projection};
use crate::ports::accounts::{Account, CustomerLink};
use crate::ports::checkouts::PendingCheckout;
use crate::ports::events::{FailedEvent, ProcessedEvent};
use crate::ports::sync::{SyncCursor, SyncOutcome};
use std::collections::HashMap;
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
    /// Deletions with items left to purge.
    owed_purges: std::collections::BTreeMap<AccountId, crate::ports::accounts::Forgotten>,
    cursor: Option<SyncCursor>,
    outcome: Option<SyncOutcome>,
    adoption: Option<crate::domain::adoption::Adoption>,
    adoption_entries: std::collections::BTreeMap<(String, u64), crate::domain::adoption::Sorted>,
    meter_position: Option<crate::ports::meter::MeterPosition>,
    /// API keys by id (each record is both the lookup and the listing item).
    api_keys: HashMap<crate::domain::apikeys::KeyId, crate::domain::apikeys::ApiKey>,
    /// Slots taken per account.
    api_key_slots: HashMap<AccountId, u32>,
    /// Usage counters by account, metric and window start.
    usage: HashMap<(AccountId, String, i64), u64>,
    /// The meter fields of usage counters, by the same key as `usage`, in key order (the
    /// due list pages through them).
    meters: std::collections::BTreeMap<(AccountId, String, i64), meter::MeterFields>,
    /// Usage requests' idempotency records by account and key.
    usage_records: HashMap<(AccountId, String), crate::ports::usage::UsageRecord>,
    /// Usage alert markers by account, metric, window start and percentage.
    alerts: std::collections::HashSet<(AccountId, String, i64, u8)>,
    /// Credit grants by account, then id.
    grants: HashMap<AccountId, std::collections::BTreeMap<String, crate::domain::credits::Grant>>,
    /// Ledger entries by account, by their sort key (time, then id).
    ledger: HashMap<AccountId, std::collections::BTreeMap<String, crate::ports::credits::LedgerEntry>>,
    /// Credit consumptions' idempotency records by account, key and part (a spend drawn in parts).
    credit_records: HashMap<(AccountId, String, Option<u32>), crate::ports::credits::CreditRecord>,
    /// Invoices by account, by their sort key (`created`, then id).
    invoices: HashMap<AccountId, std::collections::BTreeMap<String, crate::domain::invoices::Invoice>>,
    /// Spends left before every further one fails as unavailable (a request that stops
    /// midway); `None` never fails.
    spends_left: Option<u32>,
}

/// An in-memory store; clones share the same data.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore(Arc<Mutex<Tables>>);

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// After `n` more committed spends, every spend fails (`Unavailable`) until
    /// [`MemoryStore::heal_spends`]: a request that stops midway.
    pub fn fail_spends_after(&self, n: u32) {
        self.lock().spends_left = Some(n);
    }

    /// Spends commit again.
    pub fn heal_spends(&self) {
        self.lock().spends_left = None;
    }

    /// How many ledger entries the account has stored.
    pub fn ledger_len(&self, account: &AccountId) -> u64 {
        self.lock().ledger.get(account).map_or(0, |l| l.len() as u64)
    }

    /// How many invoices the account has stored.
    pub fn invoices_len(&self, account: &AccountId) -> u64 {
        self.lock().invoices.get(account).map_or(0, |l| l.len() as u64)
    }

    /// Stores `entries` in the account's ledger as they are (a large account's history, for
    /// simulations), without grants.
    pub fn seed_ledger(
        &self,
        account: &AccountId,
        entries: impl IntoIterator<Item = crate::ports::credits::LedgerEntry>,
    ) {
        let mut tables = self.lock();
        let ledger = tables.ledger.entry(account.clone()).or_default();
        for entry in entries {
            ledger.insert(crate::ports::keys::ledger(&entry), entry);
        }
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
