//! Usage reported to Stripe Billing Meters by the sync, each unit exactly once.
//!
//! A counter of a metric with an `event_name` is listed as due from its first consumption.
//! For each due counter the sync first records the pending report (from the watermark to the
//! count, with a deterministic identifier `account:metric:window:to`), then sends it as one
//! meter event, and only then moves the watermark. A run that dies between the two finds the
//! report pending and resends it with the same identifier, which Stripe deduplicates for at
//! least 24 hours; a pending report older than that is never resent blindly: it is an alarmed
//! failure. Usage refunded after it was reported cannot be sent negative: the last event is
//! cancelled with a meter event adjustment while Stripe allows (24 hours), and the rest is
//! reported again; otherwise the difference shows as drift. Once a window has ended (and
//! Stripe had time to aggregate), the counter is settled: Tollgate's total is compared with
//! Stripe's meter event summary for the window, and any difference is recorded as drift
//! (the run's outcome, an alarmed metric, `tollgate-dev status`).

use crate::access::DAY;
use crate::billing::{Billing, BillingError, MeterEvent};
use crate::metrics::{self, Metric};
use crate::store::{AccountStore, CounterKey, MeterCounter, MeterReport, MeterStore, Settlement, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Duration;

use super::{Deadline, Settings};

/// How long Stripe deduplicates a meter event's identifier, and lets it be cancelled.
pub const STRIPE_DEDUP_WINDOW: i64 = DAY;
/// How far back a meter event's timestamp may be.
pub const STRIPE_MAX_EVENT_AGE: i64 = 35 * DAY;
/// Kept in hand at either edge of Stripe's windows, for clocks that disagree.
const EDGE: i64 = 300;
/// How long after a window's end (and after its last report) Stripe's summary is trusted to
/// hold every event: then the window is settled.
pub const SETTLE_AFTER: i64 = 3_600;
/// Stripe's limit on a meter event identifier's length; longer ones are hashed.
const MAX_IDENTIFIER: usize = 100;
/// Due counters read per page.
const PAGE: usize = 100;
/// At most this many drifts and failures are listed in one run's outcome (all are counted).
const LISTED: usize = 50;

/// What one pass of meter reporting did, as the sync's outcome records it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeterOutcome {
    /// Meter events sent (a resend of a pending report included).
    pub sent: u64,
    /// Units in them.
    pub units: u64,
    /// Meter events cancelled because usage they reported was refunded.
    pub cancelled: u64,
    /// Counters whose window was settled.
    pub settled: u64,
    /// Counters that cannot be reported (alarmed): `account:metric:window: reason`.
    pub failed: Vec<String>,
    /// Windows where Stripe's total differs from Tollgate's (alarmed).
    pub drift: Vec<MeterDrift>,
}

/// A window whose Stripe total differs from Tollgate's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeterDrift {
    pub account: String,
    pub metric: String,
    pub window_start: i64,
    pub tollgate: u64,
    pub stripe: u64,
}

/// Why a pass stopped early.
#[derive(Debug, thiserror::Error)]
pub enum MeterError {
    #[error("stripe: {0}")]
    Billing(#[from] BillingError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// The meter event identifier of a report ending at `to`: `account:metric:window:to`, with
/// `:r<revision>` after a cancellation (so no identifier is ever reused for other units), and
/// hashed when longer than Stripe accepts.
pub fn identifier(key: &CounterKey, to: u64, revision: u32) -> String {
    let mut id = format!("{}:{}:{}:{to}", key.account, key.metric, key.window_start);
    if revision > 0 {
        id.push_str(&format!(":r{revision}"));
    }
    if id.len() > MAX_IDENTIFIER {
        id = format!("tg:{}", hex::encode(Sha256::digest(id.as_bytes())));
    }
    id
}

/// The whole minutes covering `[start, end)`: Stripe's summaries take minute boundaries.
fn minutes(start: i64, end: i64) -> (i64, i64) {
    let floor = start.div_euclid(60).saturating_mul(60);
    let ceil = end.saturating_add(59).div_euclid(60).saturating_mul(60);
    (floor, ceil)
}

/// Reports every due counter, a page at a time, pausing `pacing` after each Stripe call (under
/// Stripe's meter event rate limit). Answers whether it got through before the deadline. A
/// Stripe or store failure stops the pass (the run fails; the next one resumes, resending
/// what was pending).
pub async fn report<S, B>(
    store: &S,
    billing: &B,
    settings: &Settings,
    pacing: Duration,
    deadline: &dyn Deadline,
    outcome: &mut MeterOutcome,
) -> Result<bool, MeterError>
where
    S: AccountStore + MeterStore,
    B: Billing,
{
    let mut after: Option<String> = None;
    loop {
        let page = store.due_counters(PAGE, after.as_deref()).await?;
        for key in page.counters {
            if deadline.expired() {
                return Ok(false);
            }
            let Some(counter) = store.meter_counter(&key).await? else { continue };
            Counter { store, billing, settings, pacing, outcome: &mut *outcome }.report(counter).await?;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(true),
        }
    }
}

/// One counter's reporting.
struct Counter<'a, S, B> {
    store: &'a S,
    billing: &'a B,
    settings: &'a Settings,
    pacing: Duration,
    outcome: &'a mut MeterOutcome,
}

impl<S, B> Counter<'_, S, B>
where
    S: AccountStore + MeterStore,
    B: Billing,
{
    async fn report(&mut self, mut counter: MeterCounter) -> Result<(), MeterError> {
        let now = self.settings.clock.now();
        let key = counter.key.clone();
        let event_name = self.settings.catalogue.metric(&key.metric).and_then(|m| m.event_name.clone());
        let Some(event_name) = event_name else {
            // Not (or no longer) metered: a refund listed it, or the catalogue changed.
            self.settle(&counter, Settlement::NotBilled).await?;
            return Ok(());
        };
        let customer = self.store.account(&key.account).await?.map(|a| a.customer_id);
        // Each turn moves the counter one step (resend, record, cancel); a lost condition
        // (the counter changed meanwhile) leaves it to the next run.
        for _ in 0..4 {
            if let Some(pending) = counter.pending.clone() {
                if now.saturating_sub(pending.recorded_at) > STRIPE_DEDUP_WINDOW.saturating_sub(EDGE) {
                    let reason = format!(
                        "the report of units {}..{} recorded at {} was never confirmed, and Stripe no longer \
                         deduplicates its identifier {}: not resent",
                        pending.from, pending.to, pending.recorded_at, pending.identifier
                    );
                    return self.fail(&counter, reason).await;
                }
                let Some(customer) = customer.as_deref() else {
                    return self.fail(&counter, "a pending report for an account without a customer".into()).await;
                };
                self.send(&event_name, customer, &pending).await?;
                if !self.store.confirm_report(&key, &pending).await? {
                    return Ok(());
                }
                counter.reported = pending.to;
                counter.last = Some(pending);
                counter.pending = None;
                continue;
            }
            if counter.used > counter.reported && customer.is_some() {
                let timestamp = now.min(counter.window_end.saturating_sub(1));
                if timestamp < now.saturating_sub(STRIPE_MAX_EVENT_AGE).saturating_add(EDGE) {
                    let reason = format!(
                        "units {}..{} of a window that ended at {} were never reported and Stripe no longer \
                         accepts events that old",
                        counter.reported, counter.used, counter.window_end
                    );
                    return self.fail(&counter, reason).await;
                }
                let report = MeterReport {
                    identifier: identifier(&key, counter.used, counter.revision),
                    from: counter.reported,
                    to: counter.used,
                    timestamp,
                    recorded_at: now,
                };
                if !self.store.record_report(&key, counter.revision, &report).await? {
                    return Ok(());
                }
                counter.pending = Some(report);
                continue;
            }
            if counter.used < counter.reported
                && let Some(last) = counter.last.clone()
                && last.to == counter.reported
                && now.saturating_sub(last.recorded_at) < STRIPE_DEDUP_WINDOW.saturating_sub(EDGE)
            {
                // Units reported were refunded: cancel the last event while Stripe allows, and
                // report what is left of it afresh.
                self.billing.cancel_meter_event(&event_name, &last.identifier).await?;
                tokio::time::sleep(self.pacing).await;
                if !self.store.cancel_report(&key, &last).await? {
                    return Ok(());
                }
                self.outcome.cancelled = self.outcome.cancelled.saturating_add(1);
                counter.reported = last.from;
                counter.revision = counter.revision.saturating_add(1);
                counter.last = None;
                continue;
            }
            break;
        }
        if counter.pending.is_some() || now < counter.window_end.saturating_add(SETTLE_AFTER) {
            return Ok(());
        }
        if counter.last.as_ref().is_some_and(|last| now.saturating_sub(last.recorded_at) < SETTLE_AFTER) {
            return Ok(());
        }
        let Some(customer) = customer else {
            self.settle(&counter, Settlement::NotBilled).await?;
            return Ok(());
        };
        let (start, end) = minutes(key.window_start, counter.window_end);
        let stripe = self.billing.meter_total(&event_name, &customer, start, end).await?;
        tokio::time::sleep(self.pacing).await;
        let settlement = if stripe == counter.used {
            Settlement::Reported
        } else {
            Settlement::Drift { tollgate: counter.used, stripe }
        };
        if self.settle(&counter, settlement).await? && stripe != counter.used {
            tracing::error!(account = %key.account, metric = key.metric, window = key.window_start,
                tollgate = counter.used, stripe, "meter drift: Stripe's total differs from Tollgate's");
            metrics::count(Metric::MeterDrift, 1);
            if self.outcome.drift.len() < LISTED {
                self.outcome.drift.push(MeterDrift {
                    account: key.account.to_string(),
                    metric: key.metric.clone(),
                    window_start: key.window_start,
                    tollgate: counter.used,
                    stripe,
                });
            }
        }
        Ok(())
    }

    async fn send(&mut self, event_name: &str, customer_id: &str, report: &MeterReport) -> Result<(), MeterError> {
        let event = MeterEvent {
            event_name,
            customer_id,
            value: report.value(),
            identifier: &report.identifier,
            timestamp: report.timestamp,
        };
        self.billing.send_meter_event(&event).await?;
        tokio::time::sleep(self.pacing).await;
        self.outcome.sent = self.outcome.sent.saturating_add(1);
        self.outcome.units = self.outcome.units.saturating_add(report.value());
        Ok(())
    }

    async fn settle(&mut self, counter: &MeterCounter, settlement: Settlement) -> Result<bool, MeterError> {
        let settled = self.store.settle(&counter.key, counter.used, counter.reported, &settlement).await?;
        if settled {
            self.outcome.settled = self.outcome.settled.saturating_add(1);
        }
        Ok(settled)
    }

    /// Takes the counter off the due list as failed, alarmed and listed in the outcome.
    async fn fail(&mut self, counter: &MeterCounter, reason: String) -> Result<(), MeterError> {
        let key = &counter.key;
        let settled = self.settle(counter, Settlement::Failed { reason: reason.clone() }).await?;
        if settled {
            tracing::error!(account = %key.account, metric = key.metric, window = key.window_start, %reason,
                "meter report failed");
            metrics::count(Metric::MeterReportsFailed, 1);
            if self.outcome.failed.len() < LISTED {
                self.outcome.failed.push(format!("{}:{}:{}: {reason}", key.account, key.metric, key.window_start));
            }
        }
        Ok(())
    }
}
