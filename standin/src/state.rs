//! The stand-in's state: the price catalogue, every object created, the events they caused, the
//! requests received, saved idempotent answers and pending injected faults.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tollgate::ports::clock::Clock;

use serde_json::{Map, Value, json};
use tollgate::domain::plans::Catalogue;

use super::RecordedRequest;
use super::error::ApiError;
use super::objects::{self, EventCause, NewCharge, NewSubscription};
use crate::calendar::add_interval;
use crate::dunning::Dunning;

/// One stored object and its creation sequence number.
#[derive(Clone)]
pub(crate) struct Stored {
    pub(crate) seq: u64,
    pub(crate) value: Value,
    pub(crate) deleted: bool,
}

/// What a checkout session will subscribe to once completed.
#[derive(Clone)]
pub(crate) struct SessionPlan {
    pub(crate) items: Vec<(String, i64)>,
    pub(crate) trial_days: Option<i64>,
    pub(crate) metadata: Value,
}

/// What a new subscription is made of.
pub(crate) struct SubscriptionRequest {
    pub(crate) items: Vec<(Value, i64)>,
    pub(crate) trial_end: Option<i64>,
    pub(crate) metadata: Value,
}

#[derive(Clone)]
pub(crate) struct StoredSession {
    pub(crate) stored: Stored,
    pub(crate) plan: SessionPlan,
}

/// The first answer given for an idempotency key.
#[derive(Clone)]
pub(crate) struct Saved {
    pub(crate) fingerprint: String,
    pub(crate) status: u16,
    pub(crate) body: Value,
    pub(crate) request_id: String,
}

/// Cloneable so that a multi-step change ([`super::trigger`]) can be undone whole.
#[derive(Clone)]
pub(crate) struct State {
    /// The stand-in's time: the system clock unless set ([`Self::set_clock`]) or made to
    /// follow another (the local stack's clock).
    clock: Option<Arc<dyn Clock>>,
    seq: u64,
    /// The plan catalogue the prices and products come from (trial days, features).
    pub(crate) catalogue: Catalogue,
    pub(crate) prices: Vec<Value>,
    pub(crate) products: Vec<Value>,
    pub(crate) customers: Vec<Stored>,
    pub(crate) sessions: Vec<StoredSession>,
    pub(crate) subscriptions: Vec<Stored>,
    pub(crate) invoices: Vec<Stored>,
    pub(crate) charges: Vec<Stored>,
    /// The payment intents of charges, each succeeded with its one charge.
    pub(crate) payment_intents: Vec<Stored>,
    pub(crate) disputes: Vec<Stored>,
    /// Paid invoices' payments, by payment intent.
    pub(crate) invoice_payments: Vec<Stored>,
    pub(crate) meters: Vec<Stored>,
    /// Accepted meter events, oldest first.
    pub(crate) meter_events: Vec<Value>,
    /// Identifiers of meter events cancelled by a meter event adjustment (not summed).
    pub(crate) cancelled_meter_events: Vec<String>,
    /// Answers still to lose, and the API path they are for: the request is carried out,
    /// then answered 500 (a connection that died after Stripe acted).
    pub(crate) lost_answers: (String, usize),
    /// Each customer's latest active entitlement summary, by customer id.
    pub(crate) entitlement_summaries: HashMap<String, Value>,
    pub(crate) events: Vec<Stored>,
    pub(crate) requests: Vec<RecordedRequest>,
    pub(crate) idempotency: HashMap<String, Saved>,
    pub(crate) faults: VecDeque<u16>,
    /// Faults for requests whose path ends with a suffix: (suffix, how many left, status).
    pub(crate) path_faults: Vec<(String, usize, u16)>,
    /// How long every API request waits before its answer (`StandIn::set_latency`).
    pub(crate) latency: std::time::Duration,
    pub(crate) cause: EventCause,
    /// The retry schedule of failed subscription payments.
    pub(crate) dunning: Dunning,
    /// Accounts whose customers' cards decline every payment from now on
    /// ([`super::StandIn::set_card`]).
    pub(crate) declining: BTreeSet<String>,
    /// `<subscription>@<trial end>` of each trial whose `trial_will_end` was sent.
    pub(crate) trial_notices: BTreeSet<String>,
    /// Where the hosted pages are served (checkout, portal, invoices): the URLs the API
    /// answers start with it ([`super::StandIn::set_public_base`]).
    pub(crate) public_base: String,
    /// Customer portal sessions made, for their hosted page.
    pub(crate) portal_sessions: Vec<Value>,
    /// The account each customer a trigger made is for, by customer id (triggers find an
    /// account's customer here when its metadata does not name it).
    pub(crate) trigger_accounts: BTreeMap<String, String>,
}

pub(crate) const SUBSCRIPTION_STATUSES: [&str; 8] =
    ["incomplete", "incomplete_expired", "trialing", "active", "past_due", "unpaid", "canceled", "paused"];

const DAY: i64 = 86_400;

/// A time set by hand ([`State::set_clock`]).
struct Fixed(i64);

impl Clock for Fixed {
    fn now_ms(&self) -> i64 {
        self.0.saturating_mul(1000)
    }
}

fn system_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
}

/// Top-level fields of `before` that differ in `after`, with their old values.
pub(crate) fn previous_attributes(before: &Value, after: &Value) -> Option<Value> {
    let (Value::Object(before), Value::Object(after)) = (before, after) else {
        return None;
    };
    let changed: Map<String, Value> = before
        .iter()
        .filter(|(key, old)| after.get(*key) != Some(*old))
        .map(|(key, old)| (key.clone(), old.clone()))
        .collect();
    (!changed.is_empty()).then_some(Value::Object(changed))
}

impl State {
    pub(crate) fn new(catalogue: &Catalogue) -> Self {
        let mut state = Self {
            clock: None,
            seq: 0,
            catalogue: catalogue.clone(),
            prices: Vec::new(),
            products: Vec::new(),
            customers: Vec::new(),
            sessions: Vec::new(),
            subscriptions: Vec::new(),
            invoices: Vec::new(),
            charges: Vec::new(),
            payment_intents: Vec::new(),
            disputes: Vec::new(),
            invoice_payments: Vec::new(),
            meters: Vec::new(),
            meter_events: Vec::new(),
            cancelled_meter_events: Vec::new(),
            lost_answers: (String::new(), 0),
            entitlement_summaries: HashMap::new(),
            events: Vec::new(),
            requests: Vec::new(),
            idempotency: HashMap::new(),
            faults: VecDeque::new(),
            path_faults: Vec::new(),
            latency: std::time::Duration::ZERO,
            cause: None,
            dunning: Dunning::default(),
            declining: BTreeSet::new(),
            trial_notices: BTreeSet::new(),
            public_base: "http://127.0.0.1/stripe-standin".to_owned(),
            portal_sessions: Vec::new(),
            trigger_accounts: BTreeMap::new(),
        };
        let now = state.now();
        for spec in catalogue.prices() {
            state.prices.push(objects::price(spec, now));
            let product = objects::product_id(&spec.tier);
            if state.product(&product).is_none() {
                let name = catalogue.tier(&spec.tier).map_or(spec.tier.as_str(), |tier| tier.name.as_str());
                state.products.push(objects::product(&product, name, &objects::price_id(&spec.lookup_key), now));
            }
        }
        for pack in catalogue.credit_packs() {
            let name = format!("{} credits", pack.credits);
            let price = objects::price_id(&pack.lookup_key);
            state.products.push(objects::product(&objects::pack_product_id(&pack.id), &name, &price, now));
            state.prices.push(objects::pack_price(pack, now));
        }
        // The meters the catalogue reports to, as a setup script makes them in Stripe.
        for event_name in catalogue.metrics().filter_map(|m| m.event_name.clone()) {
            state.create_meter(&event_name);
        }
        state
    }

    pub(crate) fn set_clock(&mut self, unix_seconds: i64) {
        self.clock = Some(Arc::new(Fixed(unix_seconds)));
    }

    pub(crate) fn follow(&mut self, clock: Arc<dyn Clock>) {
        self.clock = Some(clock);
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.as_ref().map_or_else(system_now, |clock| clock.now())
    }

    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// A fresh id: `prefix` and `len` lowercase hex characters.
    pub(crate) fn new_id(&mut self, prefix: &str, len: usize) -> String {
        let mut random = String::new();
        while random.len() < len {
            random.push_str(&uuid::Uuid::new_v4().simple().to_string());
        }
        random.truncate(len);
        format!("{prefix}{random}")
    }

    pub(crate) fn price(&self, id: &str) -> Option<&Value> {
        self.prices.iter().find(|price| price["id"].as_str() == Some(id))
    }

    pub(crate) fn price_by_lookup_key(&self, lookup_key: &str) -> Option<&Value> {
        self.prices.iter().find(|price| price["lookup_key"].as_str() == Some(lookup_key))
    }

    pub(crate) fn product(&self, id: &str) -> Option<&Value> {
        self.products.iter().find(|product| product["id"].as_str() == Some(id))
    }

    pub(crate) fn customer(&self, id: &str) -> Option<&Stored> {
        self.customers.iter().find(|c| c.value["id"].as_str() == Some(id))
    }

    fn customer_mut(&mut self, id: &str) -> Option<&mut Stored> {
        self.customers.iter_mut().find(|c| c.value["id"].as_str() == Some(id))
    }

    /// A customer that exists and is not deleted.
    /// The account a trigger made customer `customer` for, if one did.
    pub(crate) fn trigger_account(&self, customer: &str) -> Option<&str> {
        self.trigger_accounts.get(customer).map(String::as_str)
    }

    pub(crate) fn live_customer(&self, id: &str) -> Option<&Value> {
        self.customer(id).filter(|c| !c.deleted).map(|c| &c.value)
    }

    pub(crate) fn subscription(&self, id: &str) -> Option<&Value> {
        self.subscriptions.iter().map(|s| &s.value).find(|s| s["id"].as_str() == Some(id))
    }

    fn subscription_mut(&mut self, id: &str) -> Option<&mut Value> {
        self.subscriptions.iter_mut().map(|s| &mut s.value).find(|s| s["id"].as_str() == Some(id))
    }

    /// Replaces a subscription without recording anything; returns the previous attributes
    /// of what changed (None when nothing did or there is no such subscription).
    pub(crate) fn replace_subscription(&mut self, id: &str, after: Value) -> Option<Value> {
        let subscription = self.subscription_mut(id)?;
        let before = std::mem::replace(subscription, after);
        previous_attributes(&before, subscription)
    }

    pub(crate) fn invoice(&self, id: &str) -> Option<&Value> {
        find(&self.invoices, id)
    }

    pub(crate) fn charge(&self, id: &str) -> Option<&Value> {
        find(&self.charges, id)
    }

    pub(crate) fn dispute(&self, id: &str) -> Option<&Value> {
        find(&self.disputes, id)
    }

    /// Stores a new invoice, charge, dispute or invoice payment (by its `object`); a charge
    /// with its payment intent.
    pub(crate) fn insert_billing_object(&mut self, value: Value) {
        let seq = self.next_seq();
        let stored = Stored { seq, value, deleted: false };
        match stored.value["object"].as_str() {
            Some("invoice") => self.invoices.push(stored),
            Some("charge") => {
                let intent = objects::payment_intent(&stored.value);
                self.charges.push(stored);
                let seq = self.next_seq();
                self.payment_intents.push(Stored { seq, value: intent, deleted: false });
            }
            Some("dispute") => self.disputes.push(stored),
            Some("invoice_payment") => self.invoice_payments.push(stored),
            other => unreachable!("not a billing object: {other:?}"),
        }
    }

    /// Replaces a stored invoice, charge or dispute; returns the previous attributes of what
    /// changed.
    pub(crate) fn replace_billing_object(&mut self, after: Value) -> Option<Value> {
        let id = after["id"].as_str().unwrap_or_default().to_owned();
        let stored = match after["object"].as_str() {
            Some("invoice") => &mut self.invoices,
            Some("charge") => &mut self.charges,
            Some("dispute") => &mut self.disputes,
            _ => return None,
        };
        let object = stored.iter_mut().map(|s| &mut s.value).find(|v| v["id"].as_str() == Some(id.as_str()))?;
        let before = std::mem::replace(object, after);
        previous_attributes(&before, object)
    }

    pub(crate) fn create_meter(&mut self, event_name: &str) -> Value {
        let id = self.new_id("mtr_test_", 24);
        let meter = objects::meter(&id, event_name, self.now());
        let seq = self.next_seq();
        self.meters.push(Stored { seq, value: meter.clone(), deleted: false });
        meter
    }

    /// Any object by id.
    pub(crate) fn object(&self, id: &str) -> Option<Value> {
        let stored = [
            &self.customers,
            &self.subscriptions,
            &self.invoices,
            &self.charges,
            &self.payment_intents,
            &self.disputes,
            &self.invoice_payments,
            &self.meters,
            &self.events,
        ];
        stored
            .into_iter()
            .find_map(|objects| find(objects, id))
            .or_else(|| self.session(id).map(|s| &s.stored.value))
            .or_else(|| self.price(id))
            .or_else(|| self.product(id))
            .cloned()
    }

    pub(crate) fn session(&self, id: &str) -> Option<&StoredSession> {
        self.sessions.iter().find(|s| s.stored.value["id"].as_str() == Some(id))
    }

    pub(crate) fn session_mut(&mut self, id: &str) -> Option<&mut StoredSession> {
        self.sessions.iter_mut().find(|s| s.stored.value["id"].as_str() == Some(id))
    }

    pub(crate) fn record_event(&mut self, kind: &str, object: Value, previous: Option<Value>) {
        let id = self.new_id("evt_", 24);
        let now = self.now();
        let event = objects::event(&id, kind, now, object, previous, self.cause.clone());
        let seq = self.next_seq();
        self.events.push(Stored { seq, value: event, deleted: false });
    }

    /// Stores a new customer and records `customer.created`.
    pub(crate) fn insert_customer(&mut self, customer: Value) {
        let seq = self.next_seq();
        self.customers.push(Stored { seq, value: customer.clone(), deleted: false });
        self.record_event("customer.created", customer, None);
    }

    pub(crate) fn new_customer(&mut self) -> Value {
        let id = self.new_id("cus_", 14);
        let prefix = self.new_id("", 8).to_uppercase();
        objects::customer(&id, self.now(), &prefix)
    }

    /// Deletes a customer, canceling its subscriptions first, as Stripe does.
    pub(crate) fn delete_customer(&mut self, id: &str) -> Result<(), ApiError> {
        let customer = self.live_customer(id).cloned().ok_or_else(|| ApiError::no_such("customer", id))?;
        let open: Vec<String> = self
            .subscriptions
            .iter()
            .map(|s| &s.value)
            .filter(|s| s["customer"].as_str() == Some(id) && s["status"] != json!("canceled"))
            .filter_map(|s| s["id"].as_str().map(str::to_owned))
            .collect();
        for subscription in open {
            self.cancel_subscription(&subscription)?;
        }
        if let Some(stored) = self.customer_mut(id) {
            stored.deleted = true;
        }
        self.record_event("customer.deleted", customer, None);
        Ok(())
    }

    /// Creates a subscription for `customer` and records `customer.subscription.created`.
    pub(crate) fn create_subscription(&mut self, customer: &str, request: SubscriptionRequest) -> Value {
        let now = self.now();
        let id = self.new_id("sub_", 24);
        let trial = request.trial_end.map(|end| (now, end));
        let items: Vec<Value> = request
            .items
            .iter()
            .map(|(price, quantity)| {
                let item_id = self.new_id("si_", 14);
                let end = request.trial_end.unwrap_or_else(|| period_end(price, now));
                objects::subscription_item(&item_id, &id, price, *quantity, now, (now, end))
            })
            .collect();
        let subscription = objects::subscription(NewSubscription {
            id: &id,
            customer,
            created: now,
            status: if trial.is_some() { "trialing" } else { "active" },
            items,
            trial,
            metadata: request.metadata,
        });
        let seq = self.next_seq();
        self.subscriptions.push(Stored { seq, value: subscription.clone(), deleted: false });
        if let Some(stored) = self.customer_mut(customer)
            && stored.value["currency"].is_null()
        {
            stored.value["currency"] = json!("usd");
        }
        self.record_event("customer.subscription.created", subscription.clone(), None);
        subscription
    }

    /// Applies `change` to a subscription and records `kind` with the previous attributes.
    pub(crate) fn change_subscription(
        &mut self,
        id: &str,
        kind: &str,
        change: impl FnOnce(&mut Value, i64) -> Result<(), ApiError>,
    ) -> Result<Value, ApiError> {
        let now = self.now();
        let subscription = self.subscription_mut(id).ok_or_else(|| ApiError::no_such("subscription", id))?;
        let before = subscription.clone();
        let mut after = before.clone();
        change(&mut after, now)?;
        *subscription = after.clone();
        let previous = previous_attributes(&before, &after);
        if kind == "customer.subscription.deleted" {
            self.record_event(kind, after.clone(), None);
        } else if previous.is_some() {
            self.record_event(kind, after.clone(), previous);
        }
        Ok(after)
    }

    /// Cancels a subscription now and records `customer.subscription.deleted`.
    pub(crate) fn cancel_subscription(&mut self, id: &str) -> Result<Value, ApiError> {
        if self.subscription(id).is_some_and(|s| s["status"] == json!("canceled")) {
            return Err(ApiError::no_such("subscription", id));
        }
        self.change_subscription(id, "customer.subscription.deleted", |subscription, now| {
            mark_canceled(subscription, now, "cancellation_requested");
            Ok(())
        })
    }

    /// Completes an open checkout session as if the customer paid: creates the customer when
    /// the session had none; in subscription mode the subscription, in payment mode the payment
    /// (a payment intent and its succeeded charge of the session's `amount_total`).
    pub(crate) fn complete_checkout_session(&mut self, id: &str) -> Result<Value, ApiError> {
        self.complete_checkout_session_paying(id, Paying::Now)
    }

    /// Completes a session as [`State::complete_checkout_session`] does; a payment-mode
    /// session paid by a delayed method ([`Paying::Later`]) completes `unpaid`, without a
    /// payment, until [`State::settle_delayed_payment`].
    pub(crate) fn complete_checkout_session_paying(&mut self, id: &str, paying: Paying) -> Result<Value, ApiError> {
        let session = self.session(id).ok_or_else(|| ApiError::no_such("checkout.session", id))?;
        let value = session.stored.value.clone();
        let expired = value["status"] == json!("expired");
        if expired
            || value["status"] == json!("open") && value["expires_at"].as_i64().is_some_and(|at| at <= self.now())
        {
            return Err(ApiError::invalid_state(format!("Checkout session {id} has expired.")));
        }
        if value["status"] != json!("open") {
            return Err(ApiError::invalid_state(format!(
                "Checkout session {id} is {}, not open.",
                value["status"].as_str().unwrap_or("unknown")
            )));
        }
        let plan = &session.plan;
        let items: Vec<(Value, i64)> = plan
            .items
            .iter()
            .filter_map(|(price, quantity)| self.price(price).map(|p| (p.clone(), *quantity)))
            .collect();
        let trial_end = plan.trial_days.map(|days| self.now() + days * DAY);
        let metadata = plan.metadata.clone();

        let customer_id = match value["customer"].as_str() {
            Some(existing) if self.live_customer(existing).is_none() => {
                return Err(ApiError::invalid_state(format!(
                    "Checkout session {id} is for customer {existing}, which has been deleted."
                )));
            }
            Some(existing) => existing.to_owned(),
            None => {
                let customer = self.new_customer();
                self.insert_customer(customer.clone());
                customer["id"].as_str().unwrap_or_default().to_owned()
            }
        };
        let customer = self.live_customer(&customer_id).cloned().unwrap_or(Value::Null);
        let details = objects::checkout_customer_details(customer["email"].as_str(), customer["name"].as_str());

        let subscription = (value["mode"] == json!("subscription")).then(|| {
            let request = SubscriptionRequest { items, trial_end, metadata };
            self.create_subscription(&customer_id, request)
        });
        // Without a trial the first period is paid on the hosted page: its invoice, paid.
        if let Some(created) = subscription.as_ref().filter(|_| trial_end.is_none()) {
            self.bill_first_period(created)?;
        }
        let pays_now = value["mode"] == json!("payment") && paying == Paying::Now;
        let payment_intent = pays_now.then(|| self.pay_checkout(&value, &customer));
        let payment_status = match (value["mode"].as_str(), paying) {
            (Some("payment"), Paying::Later) => "unpaid",
            _ if subscription.is_some() && trial_end.is_some() => "no_payment_required",
            _ => "paid",
        };
        let session = self.session_mut(id).expect("session exists");
        let stored = &mut session.stored.value;
        stored["status"] = json!("complete");
        stored["payment_status"] = json!(payment_status);
        stored["customer"] = json!(customer_id);
        stored["customer_details"] = details;
        stored["url"] = Value::Null;
        if let Some(subscription) = subscription {
            stored["subscription"] = subscription["id"].clone();
        }
        if let Some(payment_intent) = payment_intent {
            stored["payment_intent"] = json!(payment_intent);
        }
        let completed = stored.clone();
        self.record_event("checkout.session.completed", completed.clone(), None);
        Ok(completed)
    }

    /// Invoices a new subscription's first period (`subscription_create`) and pays it.
    fn bill_first_period(&mut self, subscription: &Value) -> Result<(), ApiError> {
        let id = subscription["id"].as_str().unwrap_or_default().to_owned();
        let invoice_id = self.new_id("in_", 24);
        let mut billed = self.subscription_value(&id)?;
        billed["latest_invoice"] = json!(invoice_id);
        self.replace_subscription(&id, billed.clone());
        let now = self.now();
        self.issue_invoice(&billed, &invoice_id, "subscription_create", (now, now));
        self.pay_invoice(&invoice_id).map(drop)
    }

    /// Settles the delayed payment of a payment-mode session that completed `unpaid`: it
    /// succeeds (a payment intent and its charge, `paid`, `checkout.session.async_payment_succeeded`)
    /// or fails (`checkout.session.async_payment_failed`, still `unpaid`). Returns the session.
    pub(crate) fn settle_delayed_payment(&mut self, id: &str, succeeded: bool) -> Result<Value, ApiError> {
        let session = self.session(id).ok_or_else(|| ApiError::no_such("checkout.session", id))?;
        let value = session.stored.value.clone();
        if value["status"] != json!("complete") || value["payment_status"] != json!("unpaid") {
            return Err(ApiError::invalid_state(format!("Checkout session {id} has no delayed payment to settle.")));
        }
        let customer = value["customer"].as_str().and_then(|c| self.live_customer(c)).cloned().unwrap_or(Value::Null);
        let payment_intent = succeeded.then(|| self.pay_checkout(&value, &customer));
        let stored = &mut self.session_mut(id).expect("session exists").stored.value;
        if let Some(payment_intent) = payment_intent {
            stored["payment_intent"] = json!(payment_intent);
            stored["payment_status"] = json!("paid");
        }
        let settled = stored.clone();
        let event = if succeeded {
            "checkout.session.async_payment_succeeded"
        } else {
            "checkout.session.async_payment_failed"
        };
        self.record_event(event, settled.clone(), None);
        Ok(settled)
    }

    /// Pays a payment-mode session's `amount_total` by card, as its customer does on the
    /// hosted page: stores the succeeded charge and returns its payment intent's id.
    fn pay_checkout(&mut self, session: &Value, customer: &Value) -> String {
        let (payment_intent, charge_id, payment_method) =
            (self.new_id("pi_", 24), self.new_id("ch_", 24), self.new_id("pm_", 24));
        let charge = objects::charge(NewCharge {
            id: &charge_id,
            payment_intent: &payment_intent,
            payment_method: &payment_method,
            customer,
            amount: session["amount_total"].as_i64().unwrap_or_default(),
            currency: session["currency"].as_str().unwrap_or("usd"),
            created: self.now(),
            description: None,
        });
        self.insert_billing_object(charge);
        payment_intent
    }
}

/// When a payment-mode session's buyer pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Paying {
    /// By card, on the hosted page.
    Now,
    /// By a delayed method (a bank debit): settled later.
    Later,
}

fn find<'a>(stored: &'a [Stored], id: &str) -> Option<&'a Value> {
    stored.iter().map(|s| &s.value).find(|v| v["id"].as_str() == Some(id))
}

/// End of the first billing period of `price` starting at `start`.
pub(crate) fn period_end(price: &Value, start: i64) -> i64 {
    let interval = price["recurring"]["interval"].as_str().unwrap_or("month");
    let count = price["recurring"]["interval_count"].as_i64().unwrap_or(1);
    add_interval(start, interval, count)
}

pub(crate) fn mark_canceled(subscription: &mut Value, now: i64, reason: &str) {
    subscription["status"] = json!("canceled");
    subscription["canceled_at"] = json!(now);
    subscription["ended_at"] = json!(now);
    subscription["cancel_at"] = Value::Null;
    subscription["cancel_at_period_end"] = json!(false);
    subscription["cancellation_details"] = json!({ "comment": null, "feedback": null, "reason": reason });
    if subscription["trial_end"].as_i64().is_some_and(|end| end > now) {
        subscription["trial_end"] = json!(now);
    }
}

/// Sets or clears a cancellation at the end of the current period.
pub(crate) fn schedule_cancellation(subscription: &mut Value, at_period_end: bool) {
    if at_period_end {
        let period_end = subscription["items"]["data"]
            .as_array()
            .and_then(|items| items.iter().filter_map(|i| i["current_period_end"].as_i64()).max());
        subscription["cancel_at"] = json!(period_end);
        subscription["cancel_at_period_end"] = json!(true);
        subscription["cancellation_details"]["reason"] = json!("cancellation_requested");
    } else {
        subscription["cancel_at"] = Value::Null;
        subscription["cancel_at_period_end"] = json!(false);
        subscription["cancellation_details"]["reason"] = Value::Null;
    }
}
