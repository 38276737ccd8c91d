//! `DELETE /account` of a large account, simulated: the real deletion's pages
//! ([`tollgate::app::retire::purge`]) over the in-memory store behind the DynamoDB model
//! (5 ms a request, `BatchWriteItem`s of 25, 4 at once, `Query` pages of 1 MB) on virtual time,
//! one request after another, each with the checkout function's budget
//! (`ACCOUNT_DELETION_BUDGET_MS`, 20 s), until one answers `complete: true`.

use crate::{Dynamo, START, Until, VirtualClock};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tollgate::app::Settings;
use tollgate::app::retire::{purge, retire};
use tollgate::domain::model::AccountId;
use tollgate::ports::accounts::{Account, AccountStore, Forgotten, Retirement};
use tollgate::ports::credits::{EntryKind, LedgerEntry};
use tollgate::ports::invoices::InvoiceStore;
use tollgate::testing::MemoryStore;

/// What is simulated.
#[derive(Debug, Clone, Serialize)]
pub struct DeletionConfig {
    pub ledger_entries: u64,
    pub invoices: u64,
    pub dynamo_latency_ms: u64,
    /// Each request's budget (`ACCOUNT_DELETION_BUDGET_MS`).
    pub budget_ms: u64,
}

impl Default for DeletionConfig {
    fn default() -> Self {
        Self { ledger_entries: 1_000_000, invoices: 10_000, dynamo_latency_ms: 5, budget_ms: 20_000 }
    }
}

/// What the simulation found.
#[derive(Debug, Clone, Serialize)]
pub struct DeletionReport {
    pub config: DeletionConfig,
    /// `DELETE /account` requests (checkout invocations) until `complete: true`.
    pub requests: u32,
    /// Virtual seconds the purge took over all requests.
    pub seconds: f64,
    /// DynamoDB requests by kind, and the write units the deletions consumed.
    pub dynamo_requests: BTreeMap<String, u64>,
    pub read_units: f64,
    pub write_units: f64,
    /// Items deleted (ledger entries and invoices), checked against what was seeded.
    pub deleted: u64,
    pub wall_seconds: f64,
}

/// Runs the simulation on a paused clock.
pub fn simulate_deletion(config: &DeletionConfig) -> anyhow::Result<DeletionReport> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build()?;
    runtime.block_on(run(config))
}

async fn run(config: &DeletionConfig) -> anyhow::Result<DeletionReport> {
    let wall = std::time::Instant::now();
    let memory = MemoryStore::new();
    let account = AccountId::parse("acct_large")?;
    let customer = "cus_large";
    memory.link_customer(&Account { account_id: account.clone(), customer_id: customer.into(), created_at: 0 }).await?;
    // The history: a ledger entry every 10 s and an invoice every 3 hours, before START.
    let entries = (0..config.ledger_entries).map(|i| LedgerEntry {
        id: format!("c{i}"),
        kind: EntryKind::Consumption,
        at_ms: (START - 10 * i64::try_from(i).unwrap_or(0) - 10) * 1000,
        credits: -1,
        event: Some("api_call_basic".into()),
        quantity: Some(1),
        grant: None,
        withheld: None,
        actor: None,
    });
    memory.seed_ledger(&account, entries);
    for i in 0..config.invoices {
        let created = START - 10_800 * i64::try_from(i)? - 60;
        let object = serde_json::json!({
            "object": "invoice", "id": format!("in_{i}"), "status": "paid", "amount_due": 1900, "amount_paid": 1900,
            "currency": "usd", "created": created, "period_start": created, "period_end": created,
        });
        let invoice = tollgate::domain::invoices::Invoice::from_json(&object, customer)
            .ok_or_else(|| anyhow::anyhow!("invoice {i} does not parse"))?;
        memory.put_invoice(&account, &invoice).await?;
    }

    let origin = Instant::now();
    let store = Dynamo::new(memory.clone(), Duration::from_millis(config.dynamo_latency_ms));
    let settings =
        Settings { clock: Arc::new(VirtualClock(origin)), ..tollgate::testing::settings(&Default::default()) };
    let tombstone = retire(&store, &settings, &account, Some(customer), Retirement::AccountDeleted, true).await?;
    let forgotten = Forgotten::of(&tombstone).ok_or_else(|| anyhow::anyhow!("a deletion stamps its time"))?;
    let _ = store.take();
    let started = Instant::now();
    let mut requests = 0_u32;
    loop {
        requests += 1;
        let deadline = Until(Instant::now() + Duration::from_millis(config.budget_ms));
        if purge(&store, &account, forgotten, &deadline).await? {
            break;
        }
        anyhow::ensure!(requests < 100_000, "the deletion never completes");
    }
    let seconds = started.elapsed().as_secs_f64();
    let (dynamo_requests, read_units, write_units) = store.take();
    let left = memory.ledger_len(&account) + memory.invoices_len(&account);
    anyhow::ensure!(left == 0, "{left} items left after complete: true");
    Ok(DeletionReport {
        config: config.clone(),
        requests,
        seconds,
        dynamo_requests,
        read_units,
        write_units,
        deleted: config.ledger_entries + config.invoices,
        wall_seconds: wall.elapsed().as_secs_f64(),
    })
}
