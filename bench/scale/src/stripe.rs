//! The simulation's Stripe: the three meter calls the pass makes, and a customer's
//! subscriptions (one active `pro_monthly`, as the worker reads them on a renewal), each after
//! a latency and under Stripe's rate limits (a call over its limit in a second is answered 429,
//! as `BillingError::RateLimited`); every other call is outside the simulation and refused.

use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;
use tollgate::domain::invoices::Invoice;
use tollgate::domain::model::{AccountId, SubscriptionStatus};
use tollgate::domain::snapshot::RemoteSubscription;
use tollgate::ports::billing::{
    Billing, BillingError, CheckoutRequest, CheckoutSession, MeterEvent, Page, RemoteEvent,
};

#[derive(Default)]
struct State {
    /// Meter events by identifier (Stripe deduplicates them): customer and value.
    events: HashMap<String, (String, u64)>,
    /// Totals by customer.
    totals: HashMap<String, u64>,
    /// Calls in the current second, by limit (meter events, the rest), and that second.
    second: u64,
    in_second: [u64; 2],
    /// The most calls under each limit in any one second.
    peak: [u64; 2],
    calls: BTreeMap<String, u64>,
    rate_limited: u64,
}

/// Stripe's meter endpoints as the simulation models them.
pub struct Stripe {
    latency: Duration,
    limits: [u64; 2],
    origin: Instant,
    state: Mutex<State>,
}

impl Stripe {
    pub fn new(latency: Duration, meter_events_per_second: u64, other_per_second: u64) -> Self {
        Self {
            latency,
            limits: [meter_events_per_second, other_per_second],
            origin: Instant::now(),
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One call of `kind` under limit `which` (0: meter events, 1: the rest): after the
    /// latency, `RateLimited` when the second it arrived in was full.
    async fn call(&self, kind: &str, which: usize) -> Result<(), BillingError> {
        let admitted = {
            let mut state = self.lock();
            *state.calls.entry(kind.to_owned()).or_default() += 1;
            let second = self.origin.elapsed().as_secs();
            if second != state.second {
                state.second = second;
                state.in_second = [0, 0];
            }
            state.in_second[which] += 1;
            state.peak[which] = state.peak[which].max(state.in_second[which]);
            let admitted = state.in_second[which] <= self.limits[which];
            if !admitted {
                state.rate_limited += 1;
            }
            admitted
        };
        tokio::time::sleep(self.latency).await;
        if admitted { Ok(()) } else { Err(BillingError::RateLimited) }
    }

    /// The calls by kind and the 429s since the last call.
    pub fn take(&self) -> (BTreeMap<String, u64>, u64) {
        let mut state = self.lock();
        (std::mem::take(&mut state.calls), std::mem::take(&mut state.rate_limited))
    }

    /// The most calls other than meter events answered in any one second.
    pub fn peak_other_per_second(&self) -> u64 {
        self.lock().peak[1]
    }

    /// What Stripe sums for a customer.
    pub fn total(&self, customer: &str) -> u64 {
        self.lock().totals.get(customer).copied().unwrap_or_default()
    }
}

fn outside() -> BillingError {
    BillingError::Unavailable("not part of the simulation".into())
}

#[async_trait]
impl Billing for Stripe {
    async fn create_customer(&self, _: &AccountId, _: &str) -> Result<String, BillingError> {
        Err(outside())
    }

    async fn charge_customer(&self, _: &str) -> Result<Option<String>, BillingError> {
        Err(outside())
    }

    async fn invoices_paid_by(&self, _: &str) -> Result<Vec<String>, BillingError> {
        Err(outside())
    }

    async fn invoices(&self, _: &str) -> Result<Vec<Invoice>, BillingError> {
        Err(outside())
    }

    async fn subscriptions(&self, customer_id: &str) -> Result<Vec<RemoteSubscription>, BillingError> {
        self.call("subscriptions", 1).await?;
        let id = customer_id.replace("cus_", "sub_");
        let start = crate::START;
        Ok(vec![tollgate::testing::remote_subscription(
            &id,
            customer_id,
            SubscriptionStatus::Active,
            "pro_monthly",
            start,
        )])
    }

    async fn events_page(&self, _: &[&str], _: i64, _: Option<&str>) -> Result<Page<RemoteEvent>, BillingError> {
        Err(outside())
    }

    async fn event(&self, _: &str) -> Result<RemoteEvent, BillingError> {
        Err(outside())
    }

    async fn subscriptions_page(&self, _: Option<&str>) -> Result<Page<RemoteSubscription>, BillingError> {
        Err(outside())
    }

    async fn customers_page(
        &self,
        _: Option<&str>,
    ) -> Result<Page<tollgate::ports::billing::RemoteCustomer>, BillingError> {
        Err(outside())
    }

    async fn disputes_of(&self, _: &str) -> Result<tollgate::ports::billing::Disputes, BillingError> {
        Err(outside())
    }

    async fn tag_customer(&self, _: &str, _: &AccountId, _: &str) -> Result<(), BillingError> {
        Err(outside())
    }

    async fn create_checkout_session(&self, _: &CheckoutRequest, _: &str) -> Result<CheckoutSession, BillingError> {
        Err(outside())
    }

    async fn expire_checkout_session(&self, _: &str, _: &str) -> Result<(), BillingError> {
        Err(outside())
    }

    async fn create_portal_session(&self, _: &str, _: &str, _: &str) -> Result<String, BillingError> {
        Err(outside())
    }

    async fn change_price(&self, _: &str, _: &str, _: &str, _: &str) -> Result<RemoteSubscription, BillingError> {
        Err(outside())
    }

    async fn send_meter_event(&self, event: &MeterEvent<'_>) -> Result<(), BillingError> {
        self.call("meter_event", 0).await?;
        let mut state = self.lock();
        if !state.events.contains_key(event.identifier) {
            state.events.insert(event.identifier.to_owned(), (event.customer_id.to_owned(), event.value));
            *state.totals.entry(event.customer_id.to_owned()).or_default() += event.value;
        }
        Ok(())
    }

    async fn cancel_meter_event(&self, _: &str, identifier: &str) -> Result<(), BillingError> {
        self.call("meter_event_adjustment", 1).await?;
        let mut state = self.lock();
        if let Some((customer, value)) = state.events.remove(identifier) {
            let total = state.totals.entry(customer).or_default();
            *total = total.saturating_sub(value);
        }
        Ok(())
    }

    async fn meter_total(&self, _: &str, customer: &str, _: i64, _: i64) -> Result<u64, BillingError> {
        self.call("meter_event_summaries", 1).await?;
        Ok(self.total(customer))
    }

    async fn refund_invoice(&self, _: &str, _: &str) -> Result<bool, BillingError> {
        Err(outside())
    }

    async fn cancel(&self, _: &str, _: bool, _: &str) -> Result<RemoteSubscription, BillingError> {
        Err(outside())
    }
}
