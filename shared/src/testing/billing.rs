//! `FakeBilling`: Stripe as the application services see it, in memory. It answers reads from
//! the subscriptions a test put in, records every write it is asked for (with its idempotency
//! key), and answers writes Stripe's way (a plan change moves the item's price).

use crate::billing::{Billing, BillingError, CheckoutRequest, CheckoutSession, Page, RemoteEvent, RemoteSubscription};
use crate::model::{AccountId, Interval, SubscriptionStatus};
use crate::testing::FixedClock;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A Stripe subscription `id` of `customer` on the price `lookup_key`, created and its period
/// started at `at` (Unix seconds), monthly.
pub fn remote_subscription(
    id: &str,
    customer: &str,
    status: SubscriptionStatus,
    lookup_key: &str,
    at: i64,
) -> RemoteSubscription {
    RemoteSubscription {
        id: id.into(),
        customer_id: customer.into(),
        status,
        price_lookup_key: Some(lookup_key.into()),
        interval: Some(if lookup_key.ends_with("yearly") { Interval::Year } else { Interval::Month }),
        item_id: Some(format!("si_{id}")),
        current_period_start: Some(at),
        current_period_end: Some(at + 30 * 86_400),
        trial_end: None,
        cancel_at_period_end: false,
        created: at,
        account_hint: None,
    }
}

#[derive(Debug, Default)]
struct State {
    subscriptions: Vec<RemoteSubscription>,
    charges: BTreeMap<String, String>,
    events: Vec<RemoteEvent>,
    calls: Vec<String>,
    customers_created: u32,
    fail_with: Option<fn() -> BillingError>,
}

/// An in-memory Stripe; clones share their state.
#[derive(Debug, Clone, Default)]
pub struct FakeBilling {
    state: Arc<Mutex<State>>,
    /// Moved 1 ms forward on every subscription read, so two reads have two versions.
    clock: Option<FixedClock>,
}

impl FakeBilling {
    pub fn new() -> Self {
        Self::default()
    }

    /// A fake whose subscription reads move `clock` forward by 1 ms each.
    pub fn ticking(clock: FixedClock) -> Self {
        Self { clock: Some(clock), ..Self::default() }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts (or replaces, by id) a subscription as Stripe holds it now.
    pub fn set_subscription(&self, subscription: RemoteSubscription) {
        let mut state = self.lock();
        state.subscriptions.retain(|s| s.id != subscription.id);
        state.subscriptions.push(subscription);
    }

    /// Removes every subscription.
    pub fn clear_subscriptions(&self) {
        self.lock().subscriptions.clear();
    }

    /// Says that `charge` belongs to `customer`.
    pub fn set_charge(&self, charge: &str, customer: &str) {
        self.lock().charges.insert(charge.into(), customer.into());
    }

    /// Events the event list answers (give them newest first, as Stripe lists them).
    pub fn set_events(&self, events: Vec<RemoteEvent>) {
        self.lock().events = events;
    }

    /// Every later call fails with `error()` until [`FakeBilling::recover`].
    pub fn fail_with(&self, error: fn() -> BillingError) {
        self.lock().fail_with = Some(error);
    }

    pub fn recover(&self) {
        self.lock().fail_with = None;
    }

    /// The calls made, in order, each as `operation key-or-argument`.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    fn call(&self, call: String) -> Result<MutexGuard<'_, State>, BillingError> {
        let mut state = self.lock();
        state.calls.push(call);
        match state.fail_with {
            Some(error) => Err(error()),
            None => Ok(state),
        }
    }

    fn update(
        &self,
        call: String,
        id: &str,
        change: impl FnOnce(&mut RemoteSubscription),
    ) -> Result<RemoteSubscription, BillingError> {
        let mut state = self.call(call)?;
        let sub = state.subscriptions.iter_mut().find(|s| s.id == id).ok_or(BillingError::NotFound)?;
        change(sub);
        Ok(sub.clone())
    }
}

#[async_trait]
impl Billing for FakeBilling {
    async fn create_customer(&self, account: &AccountId, idempotency_key: &str) -> Result<String, BillingError> {
        let mut state = self.call(format!("create_customer {idempotency_key}"))?;
        state.customers_created += 1;
        Ok(format!("cus_{account}"))
    }

    async fn charge_customer(&self, charge_id: &str) -> Result<Option<String>, BillingError> {
        let state = self.call(format!("charge_customer {charge_id}"))?;
        Ok(state.charges.get(charge_id).cloned())
    }

    async fn subscriptions(&self, customer_id: &str) -> Result<Vec<RemoteSubscription>, BillingError> {
        let state = self.call(format!("subscriptions {customer_id}"))?;
        if let Some(clock) = &self.clock {
            clock.advance_ms(1);
        }
        Ok(state.subscriptions.iter().filter(|s| s.customer_id == customer_id).cloned().collect())
    }

    async fn events_page(
        &self,
        _types: &[&str],
        created_gte: i64,
        starting_after: Option<&str>,
    ) -> Result<Page<RemoteEvent>, BillingError> {
        let state = self.call(format!("events_page {created_gte}"))?;
        let listed: Vec<_> = state.events.iter().filter(|e| e.created >= created_gte).cloned().collect();
        let start = starting_after.and_then(|id| listed.iter().position(|e| e.id == id)).map_or(0, |at| at + 1);
        Ok(Page { items: listed[start..].to_vec(), next: None })
    }

    async fn subscriptions_page(
        &self,
        _starting_after: Option<&str>,
    ) -> Result<Page<RemoteSubscription>, BillingError> {
        let state = self.call("subscriptions_page".into())?;
        Ok(Page { items: state.subscriptions.clone(), next: None })
    }

    async fn create_checkout_session(
        &self,
        request: &CheckoutRequest,
        idempotency_key: &str,
    ) -> Result<CheckoutSession, BillingError> {
        let _state = self.call(format!("create_checkout_session {idempotency_key}"))?;
        let id = format!("cs_{}", request.account);
        Ok(CheckoutSession { url: format!("https://checkout.example/{id}"), id, expires_at: 0 })
    }

    async fn create_portal_session(
        &self,
        customer_id: &str,
        _return_url: &str,
        idempotency_key: &str,
    ) -> Result<String, BillingError> {
        let _state = self.call(format!("create_portal_session {idempotency_key}"))?;
        Ok(format!("https://portal.example/{customer_id}"))
    }

    async fn change_price(
        &self,
        subscription_id: &str,
        _item_id: &str,
        price_lookup_key: &str,
        idempotency_key: &str,
    ) -> Result<RemoteSubscription, BillingError> {
        self.update(format!("change_price {idempotency_key}"), subscription_id, |sub| {
            sub.price_lookup_key = Some(price_lookup_key.to_owned());
        })
    }

    async fn cancel(
        &self,
        subscription_id: &str,
        at_period_end: bool,
        idempotency_key: &str,
    ) -> Result<RemoteSubscription, BillingError> {
        self.update(format!("cancel {idempotency_key}"), subscription_id, |sub| {
            if at_period_end {
                sub.cancel_at_period_end = true;
            } else {
                sub.status = SubscriptionStatus::Canceled;
            }
        })
    }
}
