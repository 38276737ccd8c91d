//! A renewal burst through the worker, simulated: `RENEWALS` subscriptions renewing within one
//! hour, each making four events (`invoice.finalized`, `invoice.paid`,
//! `invoice.payment_succeeded`, `customer.subscription.updated`), queued as Stripe delivers them
//! and applied by the worker's real path ([`tollgate::app::events::process`]) in batches of
//! 10, by as many workers at once as the template's `WorkerMaxConcurrency` allows, on virtual
//! time. Stripe's subscription reads are the simulation's Stripe model's (a latency each,
//! live mode's 100 a second, counted per second); each record's DynamoDB requests (the event log, the link, the state, the
//! transaction: about 4) are modelled as 4 x 5 ms.

use crate::{START, Stripe, VirtualClock};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tollgate::app::Settings;
use tollgate::app::events::{EventDeps, Record, process};
use tollgate::domain::model::AccountId;
use tollgate::ports::accounts::{Account, AccountStore};
use tollgate::testing::{MemoryStore, Outbox};

/// What is simulated.
#[derive(Debug, Clone, Serialize)]
pub struct RenewalConfig {
    pub renewals: u64,
    /// Over how many seconds the renewals come (evenly).
    pub over_seconds: u64,
    /// Workers at once (`WorkerMaxConcurrency`: 2 by default, 5 at most).
    pub workers: usize,
    pub stripe_latency_ms: u64,
    /// DynamoDB time per record (4 requests of 5 ms).
    pub store_ms_per_record: u64,
}

impl RenewalConfig {
    pub fn with_workers(workers: usize) -> Self {
        Self { renewals: 50_000, over_seconds: 3_600, workers, stripe_latency_ms: 300, store_ms_per_record: 20 }
    }
}

/// What the simulation found.
#[derive(Debug, Clone, Serialize)]
pub struct RenewalReport {
    pub config: RenewalConfig,
    /// Seconds from the first renewal until the last event was applied.
    pub drained_seconds: f64,
    /// The longest any event waited in the queue, seconds (the `EventsQueueAgeAlarm` fires at 900).
    pub oldest_wait_seconds: f64,
    pub events: u64,
    /// Stripe reads of a customer's subscriptions, and the most in any one second.
    pub stripe_calls: u64,
    pub peak_stripe_calls_per_second: u64,
    pub mean_stripe_calls_per_second: f64,
    /// Records the worker reported failed (none expected).
    pub failed: u64,
    /// Accounts whose projection the events wrote (every one expected).
    pub projected: u64,
    pub wall_seconds: f64,
}

/// Runs the simulation on a paused clock.
pub fn simulate_renewals(config: &RenewalConfig) -> anyhow::Result<RenewalReport> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build()?;
    runtime.block_on(run(config))
}

fn customer(i: u64) -> String {
    format!("cus_{i:06}")
}

/// The four events of renewal `i` at `created`.
fn renewal(i: u64, created: i64) -> Vec<String> {
    let (customer, invoice) = (customer(i), format!("in_{i:06}"));
    let invoice_object = serde_json::json!({
        "object": "invoice", "id": invoice, "customer": customer, "status": "paid", "amount_due": 1900,
        "amount_paid": 1900, "currency": "usd", "created": created, "period_start": created, "period_end": created,
        "subscription": customer.replace("cus_", "sub_"),
    });
    let subscription =
        serde_json::json!({"object": "subscription", "id": customer.replace("cus_", "sub_"), "customer": customer});
    [
        ("invoice.finalized", &invoice_object),
        ("invoice.paid", &invoice_object),
        ("invoice.payment_succeeded", &invoice_object),
        ("customer.subscription.updated", &subscription),
    ]
    .iter()
    .enumerate()
    .map(|(n, (kind, object))| {
        serde_json::json!({
            "id": format!("evt_{i:06}_{n}"), "object": "event", "type": kind, "created": created,
            "livemode": true, "data": {"object": object},
        })
        .to_string()
    })
    .collect()
}

async fn run(config: &RenewalConfig) -> anyhow::Result<RenewalReport> {
    let wall = std::time::Instant::now();
    let store = MemoryStore::new();
    for i in 0..config.renewals {
        let account_id = AccountId::parse(&format!("acct_{i:06}"))?;
        store.link_customer(&Account { account_id, customer_id: customer(i), created_at: START }).await?;
    }
    let origin = Instant::now();
    // Live mode's limits: 1,000 meter events (none here) and 100 other calls a second.
    let billing = Stripe::new(Duration::from_millis(config.stripe_latency_ms), 1_000, 100);
    let settings =
        Settings { clock: Arc::new(VirtualClock(origin)), ..tollgate::testing::settings(&Default::default()) };
    let deps = Arc::new(EventDeps { store, billing, notifier: Outbox::default(), settings });
    // The queue: (arrival, record), in arrival order; a renewal's four events arrive together.
    let spacing = Duration::from_secs(config.over_seconds).div_f64(config.renewals.max(1) as f64);
    let queue: Arc<Mutex<VecDeque<(Instant, Record)>>> = Arc::default();
    {
        let mut queue = queue.lock().unwrap_or_else(|p| p.into_inner());
        for i in 0..config.renewals {
            let at = origin + spacing.mul_f64(i as f64);
            let created = START + i64::try_from(at.duration_since(origin).as_secs())?;
            for (n, body) in renewal(i, created).into_iter().enumerate() {
                let record = Record { message_id: format!("m{i}-{n}"), group: customer(i), body, attempt: 1 };
                queue.push_back((at, record));
            }
        }
    }
    let events = config.renewals * 4;
    let oldest_wait = Arc::new(Mutex::new(Duration::ZERO));
    let failed = Arc::new(Mutex::new(0_u64));
    let mut workers = Vec::new();
    for _ in 0..config.workers {
        let (deps, queue, oldest_wait, failed) = (deps.clone(), queue.clone(), oldest_wait.clone(), failed.clone());
        let store_ms = config.store_ms_per_record;
        workers.push(tokio::spawn(async move {
            loop {
                // A batch: up to 10 messages that have arrived (SQS waits up to 20 s for one).
                let batch: Vec<(Instant, Record)> = {
                    let mut queue = queue.lock().unwrap_or_else(|p| p.into_inner());
                    let now = Instant::now();
                    let ready = queue.iter().take(10).take_while(|(at, _)| *at <= now).count();
                    queue.drain(..ready).collect()
                };
                if batch.is_empty() {
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).front().map(|(at, _)| *at);
                    match next {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => return,
                    }
                    continue;
                }
                let now = Instant::now();
                {
                    let mut oldest = oldest_wait.lock().unwrap_or_else(|p| p.into_inner());
                    *oldest = batch.iter().map(|(at, _)| now.duration_since(*at)).fold(*oldest, Duration::max);
                }
                let records: Vec<Record> = batch.into_iter().map(|(_, r)| r).collect();
                tokio::time::sleep(Duration::from_millis(store_ms * records.len() as u64)).await;
                let retry = process(&deps, &records, &tollgate::app::Never).await;
                *failed.lock().unwrap_or_else(|p| p.into_inner()) += retry.len() as u64;
            }
        }));
    }
    for worker in workers {
        worker.await?;
    }
    let drained = origin.elapsed().as_secs_f64();
    let (calls, rate_limited) = deps.billing.take();
    anyhow::ensure!(rate_limited == 0, "{rate_limited} reads were answered 429");
    let stripe_calls: u64 = calls.values().sum();
    let oldest_wait_seconds = oldest_wait.lock().unwrap_or_else(|p| p.into_inner()).as_secs_f64();
    let failed = *failed.lock().unwrap_or_else(|p| p.into_inner());
    let mut projected = 0;
    for i in 0..config.renewals {
        let account = AccountId::parse(&format!("acct_{i:06}"))?;
        if tollgate::ports::subscriptions::SubscriptionStore::subscription(&deps.store, &account).await?.is_some() {
            projected += 1;
        }
    }
    Ok(RenewalReport {
        projected,
        config: config.clone(),
        drained_seconds: drained,
        oldest_wait_seconds,
        events,
        stripe_calls,
        peak_stripe_calls_per_second: deps.billing.peak_other_per_second(),
        mean_stripe_calls_per_second: stripe_calls as f64 / drained.max(1.0),
        failed,
        wall_seconds: wall.elapsed().as_secs_f64(),
    })
}
