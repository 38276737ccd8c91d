//! The simulation's DynamoDB: the in-memory store behind a latency per request, with the
//! requests and the capacity units each would consume counted by kind.
//!
//! Capacity units as DynamoDB bills them (<https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/provisioned-capacity-mode.html>):
//! a strongly consistent read of up to 4 KB is 1 read unit, an eventually consistent one half
//! that (a `Query` sums its items' sizes); a write of up to 1 KB is 1 write unit. Sizes are
//! estimates of Tollgate's items: a usage counter with its meter fields under 1 KB, a profile
//! under 1 KB, a key-only entry of the `due` index about 120 bytes.

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use tollgate::domain::facts::Tombstone;
use tollgate::domain::model::AccountId;
use tollgate::domain::model::Projection;
use tollgate::ports::StoreError;
use tollgate::ports::accounts::{Account, AccountStore, CustomerLink, Forgotten, Retirement};
use tollgate::ports::meter::{CounterKey, DuePage, MeterCounter, MeterPosition, MeterReport, MeterStore, Settlement};
use tollgate::ports::subscriptions::{AccountState, SubscriptionStore};
use tollgate::ports::sync::{SyncCursor, SyncOutcome, SyncStore};
use tollgate::testing::MemoryStore;

/// Bytes of one key-only entry of the `due` index.
const DUE_ENTRY_BYTES: f64 = 120.0;
/// Bytes of one ledger entry or invoice as stored (keys, kind, time, credits, ids).
const ITEM_BYTES: f64 = 170.0;

#[derive(Default)]
struct Tally {
    requests: BTreeMap<String, u64>,
    read_units: f64,
    write_units: f64,
}

/// The in-memory store as DynamoDB would serve it.
pub struct Dynamo {
    inner: MemoryStore,
    latency: Duration,
    tally: Mutex<Tally>,
}

impl Dynamo {
    pub fn new(inner: MemoryStore, latency: Duration) -> Self {
        Self { inner, latency, tally: Mutex::new(Tally::default()) }
    }

    /// One request of `kind`, consuming `read` and `write` units, after the latency.
    async fn request(&self, kind: &str, read: f64, write: f64) {
        {
            let mut tally = self.tally.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            *tally.requests.entry(kind.to_owned()).or_default() += 1;
            tally.read_units += read;
            tally.write_units += write;
        }
        tokio::time::sleep(self.latency).await;
    }

    /// Counts `n` requests of `kind` without waiting (requests sent at once).
    fn count(&self, kind: &str, n: u64, read: f64, write: f64) {
        let mut tally = self.tally.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *tally.requests.entry(kind.to_owned()).or_default() += n;
        tally.read_units += read;
        tally.write_units += write;
    }

    /// The requests and units since the last call.
    pub fn take(&self) -> (BTreeMap<String, u64>, f64, f64) {
        let tally = std::mem::take(&mut *self.tally.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        (tally.requests, tally.read_units, tally.write_units)
    }
}

#[async_trait]
impl AccountStore for Dynamo {
    async fn account(&self, account: &AccountId) -> Result<Option<Account>, StoreError> {
        self.request("GetItem", 1.0, 0.0).await;
        self.inner.account(account).await
    }

    async fn link_customer(&self, account: &Account) -> Result<(), StoreError> {
        self.request("TransactWriteItems", 0.0, 4.0).await;
        self.inner.link_customer(account).await
    }

    async fn customer_link(&self, customer_id: &str) -> Result<Option<CustomerLink>, StoreError> {
        self.request("GetItem", 1.0, 0.0).await;
        self.inner.customer_link(customer_id).await
    }

    async fn retire(
        &self,
        account: &AccountId,
        customer_id: Option<&str>,
        retirement: Retirement,
        tombstone: &Tombstone,
    ) -> Result<(), StoreError> {
        self.request("TransactWriteItems", 0.0, 8.0).await;
        self.inner.retire(account, customer_id, retirement, tombstone).await
    }

    /// As `DynamoStore::purge`: keys-only `Query`s, one per 1 MB of items read (about 6,000
    /// ledger entries of ~170 bytes; each is billed by the size it reads, 4 KB a read unit,
    /// consistent), all four kinds when the page has room (the grants' and counters' reads
    /// small); then one `BatchWriteItem` per 25 deletions, 4 at once (a deletion of an item
    /// under 1 KB costs one write unit).
    async fn purge(&self, account: &AccountId, forgotten: Forgotten, max: usize) -> Result<usize, StoreError> {
        let deleted = self.inner.purge(account, forgotten, max).await?;
        let read_bytes = ITEM_BYTES * deleted as f64;
        let queries = if deleted < max { 4 } else { (read_bytes / 1_048_576.0).ceil().max(1.0) as usize };
        for _ in 0..queries {
            self.request("Query", (read_bytes / 4096.0 / queries as f64).ceil().max(1.0), 0.0).await;
        }
        let batches: Vec<usize> = (0..deleted).step_by(25).map(|at| deleted.saturating_sub(at).min(25)).collect();
        for round in batches.chunks(4) {
            // Four batches at once: one latency for the round.
            self.count("BatchWriteItem", round.len() as u64, 0.0, round.iter().sum::<usize>() as f64);
            tokio::time::sleep(self.latency).await;
        }
        Ok(deleted)
    }

    async fn owe_purge(&self, account: &AccountId, forgotten: Forgotten) -> Result<(), StoreError> {
        self.request("PutItem", 0.0, 1.0).await;
        self.inner.owe_purge(account, forgotten).await
    }

    async fn owed_purges(&self, limit: usize) -> Result<Vec<(AccountId, Forgotten)>, StoreError> {
        self.request("Query", 0.5, 0.0).await;
        self.inner.owed_purges(limit).await
    }

    async fn purge_done(&self, account: &AccountId) -> Result<(), StoreError> {
        self.request("DeleteItem", 0.0, 1.0).await;
        self.inner.purge_done(account).await
    }
}

#[async_trait]
impl SubscriptionStore for Dynamo {
    /// One consistent `Query` of the account's state range (a few small items).
    async fn state(&self, account: &AccountId) -> Result<AccountState, StoreError> {
        self.request("Query", 1.0, 0.0).await;
        self.inner.state(account).await
    }

    async fn put_subscription(&self, projection: &Projection) -> Result<(), StoreError> {
        self.request("TransactWriteItems", 0.0, 4.0).await;
        self.inner.put_subscription(projection).await
    }
}

#[async_trait]
impl MeterStore for Dynamo {
    async fn due_counters(&self, limit: usize, after: Option<&str>) -> Result<DuePage, StoreError> {
        let page = self.inner.due_counters(limit, after).await?;
        let bytes = DUE_ENTRY_BYTES * page.counters.len() as f64;
        self.request("Query", (bytes / 4096.0).ceil().max(1.0) / 2.0, 0.0).await;
        Ok(page)
    }

    async fn meter_counter(&self, key: &CounterKey) -> Result<Option<MeterCounter>, StoreError> {
        self.request("GetItem", 1.0, 0.0).await;
        self.inner.meter_counter(key).await
    }

    async fn record_report(&self, key: &CounterKey, revision: u32, report: &MeterReport) -> Result<bool, StoreError> {
        self.request("UpdateItem", 0.0, 1.0).await;
        self.inner.record_report(key, revision, report).await
    }

    async fn confirm_report(&self, key: &CounterKey, report: &MeterReport) -> Result<bool, StoreError> {
        self.request("UpdateItem", 0.0, 1.0).await;
        self.inner.confirm_report(key, report).await
    }

    async fn abandon_report(&self, key: &CounterKey, pending: &MeterReport) -> Result<bool, StoreError> {
        self.request("UpdateItem", 0.0, 1.0).await;
        self.inner.abandon_report(key, pending).await
    }

    async fn cancel_report(&self, key: &CounterKey, last: &MeterReport) -> Result<bool, StoreError> {
        self.request("UpdateItem", 0.0, 1.0).await;
        self.inner.cancel_report(key, last).await
    }

    async fn settle(
        &self,
        key: &CounterKey,
        used: u64,
        reported: u64,
        settlement: &Settlement,
    ) -> Result<bool, StoreError> {
        self.request("UpdateItem", 0.0, 1.0).await;
        self.inner.settle(key, used, reported, settlement).await
    }
}

#[async_trait]
impl SyncStore for Dynamo {
    async fn cursor(&self) -> Result<Option<SyncCursor>, StoreError> {
        self.request("GetItem", 0.5, 0.0).await;
        self.inner.cursor().await
    }

    async fn save_cursor(&self, cursor: &SyncCursor) -> Result<(), StoreError> {
        self.request("PutItem", 0.0, 1.0).await;
        self.inner.save_cursor(cursor).await
    }

    async fn outcome(&self) -> Result<Option<SyncOutcome>, StoreError> {
        self.request("GetItem", 0.5, 0.0).await;
        self.inner.outcome().await
    }

    async fn save_outcome(&self, outcome: &SyncOutcome) -> Result<(), StoreError> {
        self.request("PutItem", 0.0, 2.0).await;
        self.inner.save_outcome(outcome).await
    }

    async fn meter_position(&self) -> Result<Option<MeterPosition>, StoreError> {
        self.request("GetItem", 0.5, 0.0).await;
        self.inner.meter_position().await
    }

    async fn save_meter_position(&self, position: &MeterPosition) -> Result<(), StoreError> {
        self.request("PutItem", 0.0, 1.0).await;
        self.inner.save_meter_position(position).await
    }

    async fn adoption(&self) -> Result<Option<tollgate::domain::adoption::Adoption>, StoreError> {
        self.request("GetItem", 0.5, 0.0).await;
        self.inner.adoption().await
    }

    async fn start_adoption(&self, adoption: &tollgate::domain::adoption::Adoption) -> Result<(), StoreError> {
        self.request("PutItem", 0.0, 1.0).await;
        self.inner.start_adoption(adoption).await
    }

    async fn save_adoption(&self, adoption: &tollgate::domain::adoption::Adoption) -> Result<(), StoreError> {
        self.request("PutItem", 0.0, 1.0).await;
        self.inner.save_adoption(adoption).await
    }

    async fn save_adoption_entry(
        &self,
        id: &str,
        seq: u64,
        entry: &tollgate::domain::adoption::Sorted,
    ) -> Result<(), StoreError> {
        self.request("PutItem", 0.0, 1.0).await;
        self.inner.save_adoption_entry(id, seq, entry).await
    }

    async fn adoption_entries(&self, id: &str) -> Result<Vec<tollgate::domain::adoption::Sorted>, StoreError> {
        self.request("Query", 0.5, 0.0).await;
        self.inner.adoption_entries(id).await
    }
}
