//! `FakeBilling`: Stripe as the application services see it, in memory. It answers reads from
//! the subscriptions a test put in, records every write it is asked for (with its idempotency
//! key), and answers writes Stripe's way (a plan change moves the item's price).

use crate::domain::model::{AccountId, Interval, SubscriptionStatus};
use crate::domain::snapshot::{RemoteItem, RemoteSubscription};
use crate::ports::billing::{
    Billing, BillingError, CheckoutRequest, CheckoutSession, Disputes, MeterEvent, Page, RemoteCustomer, RemoteDispute,
    RemoteEvent,
};
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
        items: vec![remote_item(&format!("si_{id}"), lookup_key, at)],
        trial_end: None,
        cancel_at_period_end: false,
        created: at,
        billing_cycle_anchor: Some(at),
        ended_at: None,
        account_hint: None,
        latest_invoice: Some(format!("in_{id}")),
    }
}

/// A subscription item `id` on the price `lookup_key`, its period started at `at`, monthly
/// unless the key says yearly.
pub fn remote_item(id: &str, lookup_key: &str, at: i64) -> RemoteItem {
    RemoteItem {
        id: id.into(),
        price_id: format!("price_{lookup_key}"),
        price_lookup_key: Some(lookup_key.into()),
        interval: Some(if lookup_key.ends_with("yearly") { Interval::Year } else { Interval::Month }),
        current_period_start: Some(at),
        current_period_end: Some(at + 30 * 86_400),
    }
}

#[derive(Debug, Default)]
struct State {
    /// Events Stripe lists, by id (`Billing::event`).
    events: Vec<RemoteEvent>,
    subscriptions: Vec<RemoteSubscription>,
    charges: BTreeMap<String, String>,
    /// Invoices by the PaymentIntent that paid them.
    invoice_payments: BTreeMap<String, Vec<String>>,
    /// Invoices as Stripe holds them now, oldest first.
    invoices: Vec<crate::domain::invoices::Invoice>,
    /// Customers by the idempotency key that created them.
    customers: BTreeMap<String, String>,
    calls: Vec<String>,
    /// Meter events accepted, oldest first (Stripe keeps one per identifier).
    meter_events: Vec<SentMeterEvent>,
    /// Meter events sent from now on are accepted but their answer is lost, this many times.
    lose_meter_answers: u32,
    fail_meter_events: u32,
    /// Customers Stripe lists (adoption), newest last, and the disputes on their charges.
    listed: Vec<RemoteCustomer>,
    disputes: BTreeMap<String, Vec<RemoteDispute>>,
}

/// A meter event as the fake accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMeterEvent {
    pub event_name: String,
    pub customer_id: String,
    pub value: u64,
    pub identifier: String,
    pub timestamp: i64,
    pub cancelled: bool,
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

    /// Makes Stripe list `event` (`Billing::event` finds it by id).
    pub fn publish_event(&self, event: RemoteEvent) {
        self.lock().events.push(event);
    }

    /// Says that `charge` belongs to `customer`.
    pub fn set_charge(&self, charge: &str, customer: &str) {
        self.lock().charges.insert(charge.into(), customer.into());
    }

    /// Says that `payment_intent` paid `invoice`.
    pub fn set_invoice_payment(&self, payment_intent: &str, invoice: &str) {
        self.lock().invoice_payments.entry(payment_intent.into()).or_default().push(invoice.into());
    }

    /// The meter events Stripe accepted (each identifier once), cancelled ones included.
    pub fn meter_events(&self) -> Vec<SentMeterEvent> {
        self.lock().meter_events.clone()
    }

    /// The next `times` meter events are accepted, then the answer is lost (the caller sees
    /// Stripe unavailable): a crash between sending and recording it.
    pub fn lose_meter_answers(&self, times: u32) {
        self.lock().lose_meter_answers = times;
    }

    /// The next `times` meter events fail before Stripe records them (Stripe unavailable).
    pub fn fail_meter_events(&self, times: u32) {
        self.lock().fail_meter_events = times;
    }

    /// A meter event from elsewhere (another system, a manual entry): Stripe's totals then
    /// differ from Tollgate's.
    /// A customer Stripe lists (for adoption), with its metadata.
    pub fn list_customer(&self, id: &str, metadata: &[(&str, &str)]) {
        let metadata = metadata.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        self.lock().listed.push(RemoteCustomer { id: id.to_owned(), metadata });
    }

    /// A dispute on one of `customer`'s charges.
    pub fn dispute_charge_of(&self, customer: &str, dispute: RemoteDispute) {
        self.lock().disputes.entry(customer.to_owned()).or_default().push(dispute);
    }

    /// The customers Stripe lists now (adoption may have tagged them).
    pub fn listed_customers(&self) -> Vec<RemoteCustomer> {
        self.lock().listed.clone()
    }

    pub fn add_meter_event(&self, event: SentMeterEvent) {
        self.lock().meter_events.push(event);
    }

    /// Puts (or replaces, by id) an invoice as Stripe holds it now.
    pub fn set_invoice(&self, invoice: crate::domain::invoices::Invoice) {
        let mut state = self.lock();
        state.invoices.retain(|i| i.id != invoice.id);
        state.invoices.push(invoice);
    }

    /// The calls made, in order, each as `operation key-or-argument`.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// Records a call.
    fn record(&self, call: String) {
        self.lock().calls.push(call);
    }

    fn update(
        &self,
        call: String,
        id: &str,
        change: impl FnOnce(&mut RemoteSubscription),
    ) -> Result<RemoteSubscription, BillingError> {
        self.record(call);
        let mut state = self.lock();
        let sub = state.subscriptions.iter_mut().find(|s| s.id == id).ok_or(BillingError::NotFound)?;
        change(sub);
        Ok(sub.clone())
    }
}

#[async_trait]
impl Billing for FakeBilling {
    async fn send_meter_event(&self, event: &MeterEvent<'_>) -> Result<(), BillingError> {
        self.record(format!("send_meter_event {}", event.identifier));
        let mut state = self.lock();
        if state.fail_meter_events > 0 {
            state.fail_meter_events -= 1;
            return Err(BillingError::Unavailable("Stripe did not answer".into()));
        }
        if !state.meter_events.iter().any(|e| e.identifier == event.identifier) {
            state.meter_events.push(SentMeterEvent {
                event_name: event.event_name.into(),
                customer_id: event.customer_id.into(),
                value: event.value,
                identifier: event.identifier.into(),
                timestamp: event.timestamp,
                cancelled: false,
            });
        }
        if state.lose_meter_answers > 0 {
            state.lose_meter_answers -= 1;
            return Err(BillingError::Unavailable("the answer was lost".into()));
        }
        Ok(())
    }

    async fn cancel_meter_event(&self, event_name: &str, identifier: &str) -> Result<(), BillingError> {
        self.record(format!("cancel_meter_event {identifier}"));
        let mut state = self.lock();
        let event = state
            .meter_events
            .iter_mut()
            .find(|e| e.identifier == identifier && e.event_name == event_name)
            .ok_or(BillingError::NotFound)?;
        event.cancelled = true;
        Ok(())
    }

    async fn meter_total(
        &self,
        event_name: &str,
        customer_id: &str,
        start: i64,
        end: i64,
    ) -> Result<u64, BillingError> {
        self.record(format!("meter_total {customer_id} {start} {end}"));
        Ok(self
            .lock()
            .meter_events
            .iter()
            .filter(|e| !e.cancelled && e.event_name == event_name && e.customer_id == customer_id)
            .filter(|e| (start..end).contains(&e.timestamp))
            .map(|e| e.value)
            .sum())
    }

    async fn create_customer(&self, account: &AccountId, idempotency_key: &str) -> Result<String, BillingError> {
        self.record(format!("create_customer {idempotency_key}"));
        // Stripe's idempotency: one key, one customer; a new key, a new customer.
        let mut state = self.lock();
        let first = format!("cus_{account}");
        let made = state.customers.values().filter(|c| **c == first || c.starts_with(&format!("{first}_"))).count();
        let fresh = if made == 0 { first } else { format!("cus_{account}_{made}") };
        Ok(state.customers.entry(idempotency_key.to_owned()).or_insert(fresh).clone())
    }

    async fn invoices_paid_by(&self, payment_intent: &str) -> Result<Vec<String>, BillingError> {
        self.record(format!("invoices_paid_by {payment_intent}"));
        Ok(self.lock().invoice_payments.get(payment_intent).cloned().unwrap_or_default())
    }

    async fn invoices(&self, customer_id: &str) -> Result<Vec<crate::domain::invoices::Invoice>, BillingError> {
        self.record(format!("invoices {customer_id}"));
        Ok(self.lock().invoices.iter().filter(|i| i.customer_id == customer_id).rev().cloned().collect())
    }

    async fn charge_customer(&self, charge_id: &str) -> Result<Option<String>, BillingError> {
        self.record(format!("charge_customer {charge_id}"));
        let state = self.lock();
        Ok(state.charges.get(charge_id).cloned())
    }

    /// Every listed customer in one page, newest first.
    async fn customers_page(&self, starting_after: Option<&str>) -> Result<Page<RemoteCustomer>, BillingError> {
        self.record(format!("customers_page {starting_after:?}"));
        let mut items = self.lock().listed.clone();
        items.reverse();
        if let Some(after) = starting_after {
            let at = items.iter().position(|c| c.id == after).map_or(items.len(), |i| i + 1);
            items.drain(..at);
        }
        Ok(Page { items, next: None })
    }

    async fn disputes_of(&self, customer_id: &str) -> Result<Disputes, BillingError> {
        self.record(format!("disputes_of {customer_id}"));
        let disputes = self.lock().disputes.get(customer_id).cloned().unwrap_or_default();
        let calls = 1 + disputes.len() as u64;
        Ok(Disputes { disputes, calls })
    }

    async fn tag_customer(
        &self,
        customer_id: &str,
        account: &AccountId,
        idempotency_key: &str,
    ) -> Result<(), BillingError> {
        self.record(format!("tag_customer {customer_id} {account} key={idempotency_key}"));
        let mut state = self.lock();
        let customer = state.listed.iter_mut().find(|c| c.id == customer_id).ok_or(BillingError::NotFound)?;
        customer.metadata.insert(crate::domain::events::ACCOUNT_METADATA_KEY.to_owned(), account.to_string());
        Ok(())
    }

    async fn subscriptions(&self, customer_id: &str) -> Result<Vec<RemoteSubscription>, BillingError> {
        self.record(format!("subscriptions {customer_id}"));
        let state = self.lock();
        if let Some(clock) = &self.clock {
            clock.advance_ms(1);
        }
        Ok(state.subscriptions.iter().filter(|s| s.customer_id == customer_id).cloned().collect())
    }

    /// No events: the sync's tests list events from the Stripe stand-in.
    async fn events_page(
        &self,
        _types: &[&str],
        created_gte: i64,
        _starting_after: Option<&str>,
    ) -> Result<Page<RemoteEvent>, BillingError> {
        self.record(format!("events_page {created_gte}"));
        Ok(Page { items: vec![], next: None })
    }

    async fn event(&self, event_id: &str) -> Result<RemoteEvent, BillingError> {
        self.record(format!("event {event_id}"));
        self.lock().events.iter().find(|e| e.id == event_id).cloned().ok_or(BillingError::NotFound)
    }

    async fn subscriptions_page(
        &self,
        _starting_after: Option<&str>,
    ) -> Result<Page<RemoteSubscription>, BillingError> {
        self.record("subscriptions_page".into());
        let state = self.lock();
        Ok(Page { items: state.subscriptions.clone(), next: None })
    }

    async fn create_checkout_session(
        &self,
        request: &CheckoutRequest,
        idempotency_key: &str,
    ) -> Result<CheckoutSession, BillingError> {
        self.record(format!("create_checkout_session {idempotency_key}"));
        let id = format!("cs_{}", request.account);
        Ok(CheckoutSession { url: format!("https://checkout.example/{id}"), id, expires_at: request.expires_at })
    }

    async fn refund_invoice(&self, invoice_id: &str, idempotency_key: &str) -> Result<bool, BillingError> {
        self.record(format!("refund_invoice {invoice_id} {idempotency_key}"));
        Ok(true)
    }

    async fn expire_checkout_session(&self, session_id: &str, idempotency_key: &str) -> Result<(), BillingError> {
        self.record(format!("expire_checkout_session {session_id} {idempotency_key}"));
        Ok(())
    }

    async fn create_portal_session(
        &self,
        customer_id: &str,
        _return_url: &str,
        idempotency_key: &str,
    ) -> Result<String, BillingError> {
        self.record(format!("create_portal_session {idempotency_key}"));
        Ok(format!("https://portal.example/{customer_id}"))
    }

    async fn change_price(
        &self,
        subscription_id: &str,
        item_id: &str,
        price_lookup_key: &str,
        idempotency_key: &str,
    ) -> Result<RemoteSubscription, BillingError> {
        self.update(format!("change_price {idempotency_key}"), subscription_id, |sub| {
            if let Some(item) = sub.items.iter_mut().find(|i| i.id == item_id) {
                item.price_lookup_key = Some(price_lookup_key.to_owned());
            }
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
