//! The meter pass at scale: the real pass ([`tollgate::app::meters::report`]) over the
//! in-memory store behind a model of DynamoDB (a latency per request, requests and capacity
//! units counted) and a model of Stripe's meter endpoints (a latency per call, Stripe's rate
//! limits enforced with a 429), on virtual time (tokio's paused clock: a run of 280 s takes
//! milliseconds). A run every 15 minutes, each with the sync's budget, until every paying
//! account's units are in Stripe.
//!
//! Latencies, with their sources (`bench/REPORT.md` repeats them):
//! - DynamoDB: 5 ms per request. AWS: "consistent single-digit millisecond performance at any
//!   scale" (<https://aws.amazon.com/dynamodb/>); 5 ms is the middle of that range.
//! - Stripe: 300 ms per call. Stripe publishes no latency figure; 300 ms is an assumption, and
//!   the report runs 1 s too.
//! - Rate limits (<https://docs.stripe.com/rate-limits>, and the meter event endpoint's own:
//!   "up to 1,000 events per second in livemode", <https://docs.stripe.com/api/billing/meter-event/create>):
//!   1,000 meter events a second; 100 a second for every other call (live mode's general limit).

mod deletion;
mod dynamo;
mod renewals;
mod stripe;

pub use deletion::{DeletionConfig, DeletionReport, simulate_deletion};
pub use renewals::{RenewalConfig, RenewalReport, simulate_renewals};

pub use dynamo::Dynamo;
pub use stripe::Stripe;

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tollgate::app::meters::{Paces, report};
use tollgate::app::{Deadline, Settings};
use tollgate::domain::model::AccountId;
use tollgate::domain::usage::Window;
use tollgate::ports::accounts::{Account, AccountStore};
use tollgate::ports::clock::Clock;
use tollgate::ports::meter::MeterOutcome;
use tollgate::ports::usage::{Consumption, UsageRecord, UsageStore};
use tollgate::testing::MemoryStore;

/// The start of the simulated window (Unix seconds) and the simulation's first moment.
pub const START: i64 = 1_798_761_600;

/// What is simulated.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Accounts with usage in the window.
    pub accounts: u64,
    /// Of them, paying (a live subscription with a metered price); the others are Free.
    pub paying: u64,
    pub dynamo_latency_ms: u64,
    pub stripe_latency_ms: u64,
    pub meter_events_per_second: u64,
    pub other_calls_per_second: u64,
    /// The sync's pause between meter events (`METER_PACING`).
    pub meter_pacing_ms: u64,
    /// A run every this many seconds, each stopping after `budget_seconds`.
    pub run_every_seconds: u64,
    pub budget_seconds: u64,
    /// Stops after this many runs, reported or not.
    pub max_runs: u32,
}

impl Config {
    /// `accounts` accounts, 5% of them paying, and the deployed sync's figures.
    pub fn with_accounts(accounts: u64) -> Self {
        Self {
            accounts,
            paying: accounts / 20,
            dynamo_latency_ms: 5,
            stripe_latency_ms: 300,
            meter_events_per_second: 1_000,
            other_calls_per_second: 100,
            meter_pacing_ms: 2,
            run_every_seconds: 900,
            budget_seconds: 280,
            max_runs: 12,
        }
    }
}

/// What one run did.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub run: u32,
    /// Virtual seconds the pass took.
    pub seconds: f64,
    pub lap_completed: bool,
    pub visited: u64,
    pub sent: u64,
    pub units: u64,
    pub deferred: u64,
    pub lag_seconds: i64,
    /// DynamoDB requests by kind, and the capacity units they consumed.
    pub requests: BTreeMap<String, u64>,
    pub read_units: f64,
    pub write_units: f64,
    /// Stripe calls by kind, and how many were answered 429.
    pub stripe_calls: BTreeMap<String, u64>,
    pub rate_limited: u64,
    /// The paying accounts whose units are all in Stripe after the run.
    pub paying_reported: u64,
}

/// What the simulation found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub config: Config,
    pub runs: Vec<Run>,
    /// The run after which every paying account's units were in Stripe.
    pub runs_until_reported: Option<u32>,
    /// Real seconds the simulation took on this machine.
    pub wall_seconds: f64,
}

/// The clock the pass reads: [`START`] plus the virtual time elapsed.
pub(crate) struct VirtualClock(Instant);

impl Clock for VirtualClock {
    fn now_ms(&self) -> i64 {
        let elapsed = i64::try_from(self.0.elapsed().as_millis()).unwrap_or(i64::MAX);
        START.saturating_mul(1000).saturating_add(elapsed)
    }
}

/// A run's budget on virtual time.
pub(crate) struct Until(Instant);

impl Deadline for Until {
    fn expired(&self) -> bool {
        Instant::now() >= self.0
    }
}

/// Runs the simulation on a runtime whose clock is paused (virtual time).
pub fn simulate(config: &Config) -> anyhow::Result<Report> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build()?;
    runtime.block_on(run_all(config))
}

fn account(i: u64) -> Result<AccountId, tollgate::domain::model::InvalidAccountId> {
    AccountId::parse(&format!("acct_{i:07}"))
}

/// Units counted for account `i` (1 to 1,000, spread).
fn units(i: u64) -> u64 {
    i.wrapping_mul(2_654_435_761) % 1_000 + 1
}

async fn run_all(config: &Config) -> anyhow::Result<Report> {
    let wall = std::time::Instant::now();
    let memory = MemoryStore::new();
    let window = Window { start: START, end: START + 30 * 86_400 };
    // Paying accounts are spread among the Free ones, as sign-ups would have them.
    let every = (config.accounts / config.paying.max(1)).max(1);
    let is_paying = |i: u64| i.is_multiple_of(every) && i / every < config.paying;
    for i in 0..config.accounts {
        let id = account(i)?;
        let paying = is_paying(i);
        if paying {
            let profile = Account { account_id: id.clone(), customer_id: format!("cus_{i:07}"), created_at: START };
            memory.link_customer(&profile).await?;
        }
        let record = UsageRecord {
            actor: None,
            request: String::new(),
            metric: "api_calls".into(),
            quantity: units(i),
            window,
            at: START,
            refunded: false,
        };
        let consumption = Consumption {
            account: &id,
            key: "usage",
            record: &record,
            limit: None,
            rate: None,
            metered: paying,
            now_ms: START * 1000,
        };
        memory.consume(&consumption).await?;
    }
    let paying_units: BTreeMap<String, u64> =
        (0..config.accounts).filter(|i| is_paying(*i)).map(|i| (format!("cus_{i:07}"), units(i))).collect();

    let origin = Instant::now();
    let store = Dynamo::new(memory, Duration::from_millis(config.dynamo_latency_ms));
    let stripe = Stripe::new(
        Duration::from_millis(config.stripe_latency_ms),
        config.meter_events_per_second,
        config.other_calls_per_second,
    );
    let settings =
        Settings { clock: Arc::new(VirtualClock(origin)), ..tollgate::testing::settings(&Default::default()) };
    let mut runs = Vec::new();
    let mut runs_until_reported = None;
    for run in 1..=config.max_runs {
        let started = Instant::now();
        let deadline = Until(started + Duration::from_secs(config.budget_seconds));
        let paces = Paces::new(Duration::from_millis(config.meter_pacing_ms));
        let mut outcome = MeterOutcome::default();
        report(&store, &stripe, &settings, &paces, &deadline, &mut outcome).await?;
        let (requests, read_units, write_units) = store.take();
        let (stripe_calls, rate_limited) = stripe.take();
        let paying_reported =
            u64::try_from(paying_units.iter().filter(|(customer, units)| stripe.total(customer) == **units).count())?;
        runs.push(Run {
            run,
            seconds: started.elapsed().as_secs_f64(),
            lap_completed: outcome.lap_completed,
            visited: outcome.visited,
            sent: outcome.sent,
            units: outcome.units,
            deferred: outcome.deferred,
            lag_seconds: outcome.lag_seconds,
            requests,
            read_units,
            write_units,
            stripe_calls,
            rate_limited,
            paying_reported,
        });
        if paying_reported == config.paying.min(u64::try_from(paying_units.len())?) {
            runs_until_reported = Some(run);
            break;
        }
        tokio::time::sleep_until(started + Duration::from_secs(config.run_every_seconds)).await;
    }
    Ok(Report { config: config.clone(), runs, runs_until_reported, wall_seconds: wall.elapsed().as_secs_f64() })
}
