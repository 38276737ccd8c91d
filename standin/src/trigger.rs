//! [`super::StandIn::trigger`]: moves the stand-in to the state a Stripe event implies, as
//! `stripe trigger` does against test mode, and records the events Stripe would send on the way,
//! in order.
//!
//! "The account's" objects are the newest live customer whose metadata
//! [`ACCOUNT_METADATA_KEY`] (`tollgate_account_id`) is the account, and that customer's newest
//! live (not canceled, not expired) subscription.
//! What an event needs and the account lacks is made first, the way Stripe would have made it,
//! and its events are recorded too: a customer (`customer.created`), a subscription on the
//! requested plan (`customer.subscription.created`; trialing when the plan has a trial), a paid
//! invoice and its charge for a refund or a dispute, an open dispute for `charge.dispute.closed`,
//! a pause for `customer.subscription.resumed`. A trigger that fails changes nothing.
//!
//! With a credit pack ([`TriggerSpec::pack`]), `checkout.session.completed` buys it through a
//! payment-mode Checkout Session (metadata [`ACCOUNT_METADATA_KEY`] and [`PACK_METADATA_KEY`])
//! and `charge.refunded` refunds the charge of the account's newest purchase of it; without
//! one, refunds and disputes concern subscription invoices' charges only.
//!
//! Events that Stripe sends because of an API call carry a `request.id`; those that Stripe's
//! own machinery sends (invoicing, Checkout completion, disputes) carry none.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tollgate::domain::events::{ACCOUNT_METADATA_KEY, KINDS};
use tollgate::domain::model::Interval;

use super::billing::{current_period, renew_periods};
use super::clockwork::{TRIAL_WILL_END_NOTICE, trial_notice_key};
use super::error::ApiError;
use super::objects;
use super::params::Params;
use super::routes;
use super::state::{Paying, State, SubscriptionRequest, period_end, previous_attributes};

/// Types the stand-in also triggers on their own that Tollgate does not handle, as `stripe
/// trigger` allows (a customer before anything else happens to it).
const UNHANDLED_TRIGGERS: [&str; 1] = ["customer.created"];

/// Every event type [`super::StandIn::trigger`] can produce: each of Tollgate's handled kinds
/// ([`tollgate::domain::events::KINDS`]), then [`UNHANDLED_TRIGGERS`].
pub const TRIGGER_EVENTS: [&str; KINDS.len() + UNHANDLED_TRIGGERS.len()] = trigger_events();

const fn trigger_events() -> [&'static str; KINDS.len() + UNHANDLED_TRIGGERS.len()] {
    let mut events = [""; KINDS.len() + UNHANDLED_TRIGGERS.len()];
    let mut i = 0;
    while i < KINDS.len() {
        events[i] = KINDS[i].event_type;
        i += 1;
    }
    let mut j = 0;
    while j < UNHANDLED_TRIGGERS.len() {
        events[i + j] = UNHANDLED_TRIGGERS[j];
        j += 1;
    }
    events
}

/// The metadata key that names a credit pack (Tollgate's own, from the core).
pub use tollgate::domain::events::PACK_METADATA_KEY;

/// The plan and billing interval used when a trigger does not name them.
pub const DEFAULT_PLAN: &str = "pro";
pub const DEFAULT_INTERVAL: &str = "month";

const DAY: i64 = 86_400;
/// Days a merchant has to answer a new dispute.
const DISPUTE_RESPONSE_DAYS: i64 = 7;
const OPEN_DISPUTE_STATUSES: [&str; 4] =
    ["needs_response", "under_review", "warning_needs_response", "warning_under_review"];

/// What to trigger: the body of `POST /_tollgate/trigger` and the argument of
/// [`super::StandIn::trigger`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerSpec {
    /// One of [`TRIGGER_EVENTS`].
    pub event: String,
    /// The Tollgate account (customer metadata [`ACCOUNT_METADATA_KEY`]).
    pub account: String,
    /// Tier of a new subscription, or the target of a plan change (`customer.subscription.updated`);
    /// default [`DEFAULT_PLAN`] for new subscriptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// `month` or `year`; default `month` for new subscriptions, the current one for changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// `won` or `lost`, for `charge.dispute.closed` only (default `won`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// A credit pack of the catalogue (its id), for `checkout.session.completed` (buys it),
    /// `charge.refunded` (refunds its newest purchase), `charge.dispute.created` and
    /// `charge.dispute.closed` (a dispute on, and the close of one on, its newest purchase's
    /// charge) and the delayed-payment events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pack: Option<String>,
    /// Plays a Stripe account Tollgate did not make (adoption): the account id goes under this
    /// metadata key on the customer only, `""` for no metadata at all, and
    /// [`ACCOUNT_METADATA_KEY`] is written nowhere (customer, session, subscription,
    /// `client_reference_id`); the stand-in finds the account's customer by its own record of
    /// the trigger's account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_key: Option<String>,
}

impl TriggerSpec {
    pub fn new(event: &str, account: &str) -> Self {
        Self {
            event: event.to_owned(),
            account: account.to_owned(),
            plan: None,
            interval: None,
            outcome: None,
            pack: None,
            metadata_key: None,
        }
    }

    #[must_use]
    pub fn plan(mut self, plan: &str) -> Self {
        self.plan = Some(plan.to_owned());
        self
    }

    #[must_use]
    pub fn interval(mut self, interval: &str) -> Self {
        self.interval = Some(interval.to_owned());
        self
    }

    #[must_use]
    pub fn outcome(mut self, outcome: &str) -> Self {
        self.outcome = Some(outcome.to_owned());
        self
    }

    #[must_use]
    pub fn pack(mut self, pack: &str) -> Self {
        self.pack = Some(pack.to_owned());
        self
    }
}

/// Performs `spec` on `state` and returns the events it recorded, oldest first. On error the
/// state is left as it was.
pub(crate) fn run(state: &mut State, spec: &TriggerSpec) -> Result<Vec<Value>, ApiError> {
    check(state, spec)?;
    let before = state.clone();
    let first = state.events.len();
    let result = Trigger { state: &mut *state, spec }.perform();
    state.cause = None;
    match result {
        Ok(()) => Ok(state.events[first..].iter().map(|event| event.value.clone()).collect()),
        Err(error) => {
            *state = before;
            Err(error)
        }
    }
}

/// Plans (tiers) the catalogue sells a price of.
fn plans(state: &State) -> BTreeSet<String> {
    state.catalogue.prices().iter().map(|price| price.tier.clone()).collect()
}

fn check(state: &State, spec: &TriggerSpec) -> Result<(), ApiError> {
    if !TRIGGER_EVENTS.contains(&spec.event.as_str()) {
        return Err(ApiError::invalid_value(
            "event",
            format!("Unsupported event type '{}'. Supported: {}.", spec.event, TRIGGER_EVENTS.join(", ")),
        ));
    }
    if spec.account.trim().is_empty() {
        return Err(ApiError::missing_param("account"));
    }
    if spec.account.len() > 500 {
        return Err(ApiError::invalid_value("account", "account must be at most 500 characters (a metadata value)."));
    }
    if let Some(plan) = &spec.plan {
        let known = plans(state);
        if !known.contains(plan) {
            return Err(ApiError::invalid_value(
                "plan",
                format!(
                    "Unknown plan '{plan}': the stand-in's catalogue sells no price of that tier. Plans: {}.",
                    known.into_iter().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    if let Some(interval) = &spec.interval
        && interval != "month"
        && interval != "year"
    {
        return Err(ApiError::invalid_value("interval", format!("Invalid interval '{interval}': month or year.")));
    }
    if let Some(outcome) = &spec.outcome {
        if spec.event != "charge.dispute.closed" {
            return Err(ApiError::invalid_value("outcome", "outcome applies to charge.dispute.closed only."));
        }
        if outcome != "won" && outcome != "lost" {
            return Err(ApiError::invalid_value("outcome", format!("Invalid outcome '{outcome}': won or lost.")));
        }
    }
    if let Some(pack) = &spec.pack {
        check_pack(state, spec, pack)?;
    }
    Ok(())
}

/// Events a credit pack applies to.
const PACK_EVENTS: [&str; 6] = [
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "charge.refunded",
    "charge.dispute.created",
    "charge.dispute.closed",
];

fn check_pack(state: &State, spec: &TriggerSpec, pack: &str) -> Result<(), ApiError> {
    if !PACK_EVENTS.contains(&spec.event.as_str()) {
        return Err(ApiError::invalid_value("pack", format!("pack applies to {} only.", PACK_EVENTS.join(", "))));
    }
    if spec.plan.is_some() || spec.interval.is_some() {
        return Err(ApiError::invalid_value(
            "pack",
            "A credit pack is bought once, without a plan: give pack, or plan and interval, not both.",
        ));
    }
    let packs = state.catalogue.credit_packs();
    if packs.iter().all(|known| known.id != pack) {
        let known = if packs.is_empty() {
            "the stand-in's catalogue sells none".to_owned()
        } else {
            format!("credit packs: {}", packs.iter().map(|p| p.id.as_str()).collect::<Vec<_>>().join(", "))
        };
        return Err(ApiError::invalid_value("pack", format!("Unknown credit pack '{pack}': {known}.")));
    }
    Ok(())
}

/// Trial days of a tier, from the stand-in's catalogue (as Tollgate's checkout reads them).
fn trial_days(state: &State, plan: &str) -> Option<i64> {
    state.catalogue.tier(plan)?.trial_days.map(i64::from)
}

/// Feature flags of the tier a price buys, from the stand-in's catalogue.
fn features(state: &State, price_lookup_key: &str) -> BTreeSet<String> {
    let tier =
        state.catalogue.price_by_lookup_key(price_lookup_key).and_then(|price| state.catalogue.tier(&price.tier));
    tier.map(|tier| tier.features.clone()).unwrap_or_default()
}

fn id_of(value: &Value) -> String {
    value["id"].as_str().unwrap_or_default().to_owned()
}

fn str_of<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field].as_str().unwrap_or_default()
}

struct Trigger<'a> {
    state: &'a mut State,
    spec: &'a TriggerSpec,
}

impl Trigger<'_> {
    fn perform(&mut self) -> Result<(), ApiError> {
        match self.spec.event.as_str() {
            "checkout.session.completed" => match self.spec.pack.clone() {
                Some(pack) => self.buy_pack(&pack).map(drop),
                None => self.checkout_session_completed(),
            },
            "checkout.session.async_payment_succeeded" | "checkout.session.async_payment_failed" => {
                // A pack paid by a delayed method (the first pack of the catalogue by default).
                let pack = match self.spec.pack.clone() {
                    Some(pack) => pack,
                    None => self.state.catalogue.credit_packs().first().map(|p| p.id.clone()).ok_or_else(|| {
                        ApiError::invalid_value("event", "The stand-in's catalogue sells no credit pack.")
                    })?,
                };
                let session = self.open_pack_session(&pack)?;
                let id = str_of(&session, "id").to_owned();
                self.state.complete_checkout_session_paying(&id, Paying::Later)?;
                let succeeded = self.spec.event.ends_with("succeeded");
                self.state.settle_delayed_payment(&id, succeeded).map(drop)
            }
            "checkout.session.expired" => {
                let session = self.open_plan_session()?;
                self.state.expire_session(str_of(&session, "id")).map(drop)
            }
            "customer.created" => self.customer_created(),
            "customer.subscription.created" => self.subscription_created(),
            "customer.subscription.updated" => self.subscription_updated(),
            "customer.subscription.deleted" => self.subscription_deleted(),
            "customer.subscription.paused" => {
                let id = self.ensure_subscription()?;
                self.pause(&id)
            }
            "customer.subscription.resumed" => self.subscription_resumed(),
            "customer.subscription.trial_will_end" => self.trial_will_end(),
            "invoice.finalized" => {
                let subscription = self.ensure_subscription()?;
                self.next_invoice(&subscription).map(drop)
            }
            "invoice.paid" | "invoice.payment_succeeded" => {
                let subscription = self.ensure_subscription()?;
                let invoice = self.collectible_invoice(&subscription)?;
                self.pay(&invoice).map(drop)
            }
            "invoice.payment_failed" | "invoice.payment_action_required" => {
                let subscription = self.ensure_subscription()?;
                let invoice = self.collectible_invoice(&subscription)?;
                let spec = self.spec;
                self.fail(&invoice, &spec.event)
            }
            "invoice.voided" | "invoice.marked_uncollectible" => {
                let subscription = self.ensure_subscription()?;
                let invoice = self.collectible_invoice(&subscription)?;
                let spec = self.spec;
                self.close_unpaid(&invoice, &spec.event)
            }
            "charge.refunded" => match self.spec.pack.clone() {
                Some(pack) => self.pack_refunded(&pack),
                None => self.charge_refunded(),
            },
            "charge.dispute.created" => self.dispute_created().map(drop),
            "charge.dispute.closed" => self.dispute_closed(),
            "customer.deleted" => self.customer_deleted(),
            "entitlements.active_entitlement_summary.updated" => self.entitlements_updated(),
            other => Err(ApiError::invalid_value("event", format!("Unsupported event type '{other}'."))),
        }
    }

    fn now(&self) -> i64 {
        self.state.now()
    }

    /// The next events are caused by an API request (they carry its id).
    fn by_request(&mut self) {
        let id = self.state.new_id("req_", 14);
        self.state.cause = Some((id, None));
    }

    /// The next events come from Stripe's own machinery (no request).
    fn automatically(&mut self) {
        self.state.cause = None;
    }

    fn plan(&self) -> &str {
        self.spec.plan.as_deref().unwrap_or(DEFAULT_PLAN)
    }

    fn price(&self, plan: &str, interval: &str) -> Result<Value, ApiError> {
        let price = Interval::parse(interval).and_then(|interval| self.state.catalogue.price(plan, interval));
        let key = price.map(|price| price.lookup_key.clone()).unwrap_or_default();
        self.state.price_by_lookup_key(&key).cloned().ok_or_else(|| {
            ApiError::invalid_value(
                if self.spec.interval.is_some() { "interval" } else { "plan" },
                format!("The stand-in's catalogue has no {interval}ly price for plan '{plan}'."),
            )
        })
    }

    // ----- the account's customer and subscription

    /// The account's newest live customer: one a trigger made for it, or one carrying its id in
    /// [`ACCOUNT_METADATA_KEY`] (made by Tollgate's checkout).
    fn customer(&self) -> Option<String> {
        let account = json!(self.spec.account);
        self.state
            .customers
            .iter()
            .filter(|c| !c.deleted)
            .filter(|c| {
                self.state.trigger_account(&id_of(&c.value)) == Some(self.spec.account.as_str())
                    || c.value["metadata"][ACCOUNT_METADATA_KEY] == account
            })
            .max_by_key(|c| c.seq)
            .map(|c| id_of(&c.value))
    }

    /// Tollgate's metadata naming the account, or none when the trigger plays an account
    /// Tollgate did not make.
    fn tollgate_metadata(&self) -> Value {
        match self.spec.metadata_key {
            None => json!({ ACCOUNT_METADATA_KEY: self.spec.account }),
            Some(_) => json!({}),
        }
    }

    fn ensure_customer(&mut self) -> String {
        if let Some(id) = self.customer() {
            return id;
        }
        self.by_request();
        let mut customer = self.state.new_customer();
        customer["metadata"] = match self.spec.metadata_key.as_deref() {
            None => json!({ ACCOUNT_METADATA_KEY: self.spec.account }),
            Some("") => json!({}),
            Some(key) => json!({ key: self.spec.account }),
        };
        let id = id_of(&customer);
        self.state.insert_customer(customer);
        self.state.trigger_accounts.insert(id.clone(), self.spec.account.clone());
        id
    }

    fn live_subscription(&self, customer: &str) -> Option<String> {
        self.state
            .subscriptions
            .iter()
            .filter(|s| str_of(&s.value, "customer") == customer)
            .filter(|s| !["canceled", "incomplete_expired"].contains(&str_of(&s.value, "status")))
            .max_by_key(|s| s.seq)
            .map(|s| id_of(&s.value))
    }

    fn subscription(&self, id: &str) -> Result<Value, ApiError> {
        self.state.subscription_value(id)
    }

    /// Subscribes the customer to the requested plan as Tollgate's checkout would (trialing
    /// when the plan has a trial), recording `customer.subscription.created`.
    fn create_subscription(&mut self, customer: &str) -> Result<String, ApiError> {
        let price = self.price(self.plan(), self.spec.interval.as_deref().unwrap_or(DEFAULT_INTERVAL))?;
        let trial_end = trial_days(self.state, self.plan()).map(|days| self.now() + days * DAY);
        self.by_request();
        let request = SubscriptionRequest { items: vec![(price, 1)], trial_end, metadata: self.tollgate_metadata() };
        Ok(id_of(&self.state.create_subscription(customer, request)))
    }

    /// The account's newest live subscription, made first (with its customer) if it has none.
    fn ensure_subscription(&mut self) -> Result<String, ApiError> {
        let customer = self.ensure_customer();
        match self.live_subscription(&customer) {
            Some(id) => Ok(id),
            None => self.create_subscription(&customer),
        }
    }

    /// Records `customer.subscription.updated` for a change whose previous attributes are given.
    fn record_updated(&mut self, id: &str, previous: Option<Value>) -> Result<(), ApiError> {
        self.state.record_updated(id, previous)
    }

    // ----- customers and Checkout

    fn customer_created(&mut self) -> Result<(), ApiError> {
        if let Some(existing) = self.customer() {
            return Err(ApiError::invalid_state(format!(
                "Account '{}' already has customer {existing}: customer.created is sent once per customer.",
                self.spec.account
            )));
        }
        self.ensure_customer();
        Ok(())
    }

    fn subscription_created(&mut self) -> Result<(), ApiError> {
        let customer = self.ensure_customer();
        self.create_subscription(&customer).map(drop)
    }

    /// A Checkout Session created as Tollgate's `POST /checkout` creates it, then completed.
    fn checkout_session_completed(&mut self) -> Result<(), ApiError> {
        let session = self.open_plan_session()?;
        self.state.complete_checkout_session(str_of(&session, "id"))?;
        Ok(())
    }

    /// A new, open subscription-mode Checkout Session for the requested plan, created as
    /// Tollgate's `POST /checkout` creates it, for the account's customer (made first when it
    /// has none).
    fn open_plan_session(&mut self) -> Result<Value, ApiError> {
        let plan = self.plan().to_owned();
        let price = self.price(&plan, self.spec.interval.as_deref().unwrap_or(DEFAULT_INTERVAL))?;
        let customer = self.ensure_customer();
        let account = self.spec.account.clone();
        let metadata = format!("metadata[{ACCOUNT_METADATA_KEY}]");
        let subscription_metadata = format!("subscription_data[metadata][{ACCOUNT_METADATA_KEY}]");
        let mut pairs: Vec<(String, String)> = [
            ("mode", "subscription"),
            ("customer", customer.as_str()),
            ("line_items[0][price]", str_of(&price, "id")),
            ("line_items[0][quantity]", "1"),
            ("success_url", "http://127.0.0.1/billing/success?session_id={CHECKOUT_SESSION_ID}"),
            ("cancel_url", "http://127.0.0.1/billing/cancel"),
        ]
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
        if self.spec.metadata_key.is_none() {
            for key in ["client_reference_id", metadata.as_str(), subscription_metadata.as_str()] {
                pairs.push((key.to_owned(), account.clone()));
            }
        }
        if let Some(days) = trial_days(self.state, &plan) {
            pairs.push(("subscription_data[trial_period_days]".to_owned(), days.to_string()));
        }
        self.by_request();
        let session = routes::create_checkout_session(self.state, &Params::from_pairs(&pairs))?;
        self.automatically();
        Ok(session)
    }

    /// Buys credit pack `pack` through a payment-mode Checkout Session for the account's
    /// customer (made first when it has none), then completes it: the customer pays its price
    /// once. Returns the completed session.
    fn buy_pack(&mut self, pack: &str) -> Result<Value, ApiError> {
        let session = self.open_pack_session(pack)?;
        self.state.complete_checkout_session(str_of(&session, "id"))
    }

    /// A new, open payment-mode Checkout Session for credit pack `pack`, for the account's
    /// customer (made first when it has none).
    fn open_pack_session(&mut self, pack: &str) -> Result<Value, ApiError> {
        let lookup_key = self.state.catalogue.credit_pack(pack).map(|p| p.lookup_key.clone()).unwrap_or_default();
        let price = self.state.price_by_lookup_key(&lookup_key).cloned().ok_or_else(|| {
            ApiError::invalid_value("pack", format!("The stand-in sells no price for pack '{pack}'."))
        })?;
        let customer = self.ensure_customer();
        let account = self.spec.account.clone();
        let account_metadata = format!("metadata[{ACCOUNT_METADATA_KEY}]");
        let pack_metadata = format!("metadata[{PACK_METADATA_KEY}]");
        let mut pairs: Vec<(String, String)> = [
            ("mode", "payment"),
            ("customer", customer.as_str()),
            ("line_items[0][price]", str_of(&price, "id")),
            ("line_items[0][quantity]", "1"),
            (pack_metadata.as_str(), pack),
            ("success_url", "http://127.0.0.1/billing/success?session_id={CHECKOUT_SESSION_ID}"),
            ("cancel_url", "http://127.0.0.1/billing/cancel"),
        ]
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
        if self.spec.metadata_key.is_none() {
            for key in ["client_reference_id", account_metadata.as_str()] {
                pairs.push((key.to_owned(), account.clone()));
            }
        }
        self.by_request();
        let session = routes::create_checkout_session(self.state, &Params::from_pairs(&pairs))?;
        self.automatically();
        Ok(session)
    }

    fn customer_deleted(&mut self) -> Result<(), ApiError> {
        let Some(customer) = self.customer() else {
            return Err(ApiError::missing_resource(
                format!(
                    "Account '{}' has no customer in the local Stripe stand-in (no live customer has \
                     metadata {ACCOUNT_METADATA_KEY}={}): there is nothing to delete.",
                    self.spec.account, self.spec.account
                ),
                "account",
            ));
        };
        self.by_request();
        self.state.delete_customer(&customer)?;
        Ok(())
    }

    // ----- subscription changes

    /// A plan (or interval) change with `--plan`/`--interval`; otherwise a metadata update, as
    /// the Stripe CLI's fixture does.
    fn subscription_updated(&mut self) -> Result<(), ApiError> {
        let id = self.ensure_subscription()?;
        let subscription = self.subscription(&id)?;
        let item = &subscription["items"]["data"][0];
        let current = &item["price"];
        let current_key = str_of(current, "lookup_key");
        let current_plan = self.state.catalogue.price_by_lookup_key(current_key).map(|price| price.tier.clone());
        let current_plan = current_plan.unwrap_or_else(|| DEFAULT_PLAN.to_owned());
        let current_interval = current["recurring"]["interval"].as_str().unwrap_or(DEFAULT_INTERVAL).to_owned();
        let plan = self.spec.plan.clone().unwrap_or(current_plan);
        let interval = self.spec.interval.clone().unwrap_or(current_interval);
        let target = self.price(&plan, &interval)?;
        self.by_request();
        if target["id"] == current["id"] {
            let marker = self.state.new_id("", 8);
            self.state.change_subscription(&id, "customer.subscription.updated", |subscription, _| {
                subscription["metadata"]["tollgate_trigger"] = json!(marker);
                Ok(())
            })?;
            return Ok(());
        }
        let pairs: Vec<(String, String)> = vec![
            ("items[0][id]".to_owned(), id_of(item)),
            ("items[0][price]".to_owned(), id_of(&target)),
            ("proration_behavior".to_owned(), "create_prorations".to_owned()),
        ];
        routes::update_subscription(self.state, &id, &Params::from_pairs(&pairs))?;
        Ok(())
    }

    fn subscription_deleted(&mut self) -> Result<(), ApiError> {
        let id = self.ensure_subscription()?;
        self.by_request();
        self.state.cancel_subscription(&id)?;
        Ok(())
    }

    /// Pauses a subscription: a trialing one as its trial ends without a payment method, any
    /// other as the pause endpoint does. Records `customer.subscription.paused` and
    /// `customer.subscription.updated`.
    fn pause(&mut self, id: &str) -> Result<(), ApiError> {
        let mut subscription = self.subscription(id)?;
        let status = str_of(&subscription, "status").to_owned();
        if status == "paused" {
            return Err(ApiError::invalid_state(format!("Subscription {id} is already paused.")));
        }
        let now = self.now();
        let trial_ended = status == "trialing";
        let why = if trial_ended { "trial_end_without_payment_method" } else { "pause_requested" };
        subscription["status"] = json!("paused");
        subscription["status_details"] =
            json!({ "paused": { "subscription": { "type": why }, "transitioned_at": now, "type": "subscription" } });
        if trial_ended {
            subscription["trial_end"] = json!(now);
            subscription["trial_settings"] = json!({ "end_behavior": { "missing_payment_method": "pause" } });
            self.automatically();
        } else {
            self.by_request();
        }
        let previous = self.state.replace_subscription(id, subscription.clone());
        self.state.record_event("customer.subscription.paused", subscription, None);
        self.record_updated(id, previous)
    }

    /// Resumes the account's subscription (pausing it first when it is not paused): active
    /// again, a new billing period from now.
    fn subscription_resumed(&mut self) -> Result<(), ApiError> {
        let id = self.ensure_subscription()?;
        if str_of(&self.subscription(&id)?, "status") != "paused" {
            self.pause(&id)?;
        }
        let now = self.now();
        let mut subscription = self.subscription(&id)?;
        subscription["status"] = json!("active");
        subscription["status_details"] = Value::Null;
        subscription["billing_cycle_anchor"] = json!(now);
        restart_periods(&mut subscription, now);
        self.by_request();
        let previous = self.state.replace_subscription(&id, subscription.clone());
        self.state.record_event("customer.subscription.resumed", subscription, None);
        self.record_updated(&id, previous)
    }

    /// The trial now ends in three days (as if the clock had moved on).
    fn trial_will_end(&mut self) -> Result<(), ApiError> {
        let customer = self.ensure_customer();
        let id = match self.live_subscription(&customer) {
            Some(id) => id,
            None if trial_days(self.state, self.plan()).is_none() => {
                return Err(ApiError::invalid_value(
                    "plan",
                    format!("Plan '{}' has no trial, so it never sends trial_will_end.", self.plan()),
                ));
            }
            None => self.create_subscription(&customer)?,
        };
        let mut subscription = self.subscription(&id)?;
        let status = str_of(&subscription, "status");
        if status != "trialing" {
            return Err(ApiError::invalid_state(format!(
                "Subscription {id} is {status}, not trialing: customer.subscription.trial_will_end is \
                 sent three days before a trial ends."
            )));
        }
        let notice = self.now() + TRIAL_WILL_END_NOTICE;
        if subscription["trial_end"].as_i64().is_none_or(|end| end > notice) {
            subscription["trial_end"] = json!(notice);
            subscription["billing_cycle_anchor"] = json!(notice);
            for item in items_mut(&mut subscription) {
                item["current_period_end"] = json!(notice);
            }
            self.state.replace_subscription(&id, subscription.clone());
        }
        self.automatically();
        self.state.trial_notices.insert(trial_notice_key(&subscription));
        self.state.record_event("customer.subscription.trial_will_end", subscription, None);
        Ok(())
    }

    // ----- invoices

    /// The subscription's open invoice when it has one (a payment to retry), else its next one.
    fn collectible_invoice(&mut self, subscription: &str) -> Result<String, ApiError> {
        let latest = self.subscription(subscription)?["latest_invoice"].as_str().map(str::to_owned);
        match latest.filter(|id| self.state.invoice(id).is_some_and(|i| i["status"] == "open")) {
            Some(open) => Ok(open),
            None => self.next_invoice(subscription),
        }
    }

    /// Bills the subscription's next period: ends a trial now, or moves to the next period (the
    /// first invoice of a subscription without a trial bills the current one). Records
    /// `customer.subscription.updated` when the subscription changed, then `invoice.created`
    /// (draft) and `invoice.finalized` (open, payment attempt pending).
    fn next_invoice(&mut self, id: &str) -> Result<String, ApiError> {
        let mut subscription = self.subscription(id)?;
        let status = str_of(&subscription, "status").to_owned();
        if status == "paused" {
            return Err(ApiError::invalid_state(format!(
                "Subscription {id} is paused and generates no invoices: trigger customer.subscription.resumed first."
            )));
        }
        let now = self.now();
        let (start, end) = current_period(&subscription, now);
        let (billing_reason, invoice_period) = if status == "trialing" {
            subscription["status"] = json!("active");
            subscription["trial_end"] = json!(now);
            subscription["billing_cycle_anchor"] = json!(now);
            restart_periods(&mut subscription, now);
            ("subscription_cycle", (start, now))
        } else if subscription["latest_invoice"].is_null() {
            ("subscription_create", (now, now))
        } else {
            renew_periods(&mut subscription);
            ("subscription_cycle", (start, end))
        };
        let invoice_id = self.state.new_id("in_", 24);
        subscription["latest_invoice"] = json!(invoice_id);
        self.automatically();
        let previous = self.state.replace_subscription(id, subscription.clone());
        if previous
            .as_ref()
            .and_then(Value::as_object)
            .is_some_and(|changed| changed.keys().any(|k| k != "latest_invoice"))
        {
            self.record_updated(id, previous)?;
        }

        Ok(self.state.issue_invoice(&subscription, &invoice_id, billing_reason, invoice_period))
    }

    fn invoice(&self, id: &str) -> Result<Value, ApiError> {
        self.state.invoice_value(id)
    }

    fn pay(&mut self, invoice_id: &str) -> Result<String, ApiError> {
        self.state.pay_invoice(invoice_id)
    }

    /// A failed attempt as the trigger records it: the retry is scheduled, the subscription
    /// is not ended (the clock ends it when the retries run out).
    fn fail(&mut self, invoice_id: &str, kind: &str) -> Result<(), ApiError> {
        self.state.fail_invoice(invoice_id, kind).map(drop)
    }

    /// Closes an open invoice without payment: voids it (`invoice.voided`, final) or marks it
    /// uncollectible (`invoice.marked_uncollectible`, still payable). No further payment is
    /// attempted; the subscription is left as it is.
    fn close_unpaid(&mut self, invoice_id: &str, kind: &str) -> Result<(), ApiError> {
        let mut invoice = self.invoice(invoice_id)?;
        let now = self.now();
        let (status, transition) =
            if kind == "invoice.voided" { ("void", "voided_at") } else { ("uncollectible", "marked_uncollectible_at") };
        invoice["status"] = json!(status);
        invoice["status_transitions"][transition] = json!(now);
        invoice["auto_advance"] = json!(false);
        invoice["next_payment_attempt"] = Value::Null;
        self.by_request();
        let previous = self.state.replace_billing_object(invoice.clone());
        self.state.record_event(kind, invoice, previous);
        Ok(())
    }

    // ----- charges, refunds and disputes

    /// Whether `charge` paid a subscription invoice (rather than, say, a credit pack).
    fn pays_an_invoice(&self, charge: &Value) -> bool {
        let payment_intent = &charge["payment_intent"];
        self.state.invoice_payments.iter().any(|p| &p.value["payment"]["payment_intent"] == payment_intent)
    }

    /// The account's newest succeeded invoice charge that `usable` accepts; when there is none,
    /// the subscription's open or next invoice is paid first (recording its events).
    fn paid_charge(&mut self, usable: impl Fn(&Value) -> bool) -> Result<Value, ApiError> {
        let customer = self.ensure_customer();
        let found = self
            .state
            .charges
            .iter()
            .filter(|c| str_of(&c.value, "customer") == customer && c.value["status"] == "succeeded")
            .filter(|c| self.pays_an_invoice(&c.value) && usable(&c.value))
            .max_by_key(|c| c.seq)
            .map(|c| c.value.clone());
        if let Some(charge) = found {
            return Ok(charge);
        }
        let subscription = self.ensure_subscription()?;
        let invoice = self.collectible_invoice(&subscription)?;
        let charge = self.pay(&invoice)?;
        self.state.charge(&charge).cloned().ok_or_else(|| ApiError::no_such("charge", &charge))
    }

    /// Refunds the whole of the account's newest invoice charge not yet refunded or disputed.
    fn charge_refunded(&mut self) -> Result<(), ApiError> {
        let charge = self.paid_charge(refundable)?;
        self.refund(charge)
    }

    /// Refunds the whole charge of the account's newest purchase of credit pack `pack` (a
    /// completed payment-mode session with its metadata), buying the pack first when there is
    /// none or that charge is already refunded or disputed.
    fn pack_refunded(&mut self, pack: &str) -> Result<(), ApiError> {
        let charge = self.pack_charge(pack, refundable)?;
        self.refund(charge)
    }

    /// The charge of the account's newest purchase of credit pack `pack` when `usable` accepts
    /// it, else the charge of a purchase made now.
    fn pack_charge(&mut self, pack: &str, usable: impl Fn(&Value) -> bool) -> Result<Value, ApiError> {
        let customer = self.customer().map(Value::String);
        let purchases: Vec<String> = self
            .state
            .sessions
            .iter()
            .filter(|s| {
                let session = &s.stored.value;
                session["mode"] == "payment"
                    && session["status"] == "complete"
                    && customer.as_ref().is_some_and(|c| session["customer"] == *c)
                    && session["metadata"][PACK_METADATA_KEY] == json!(pack)
            })
            .map(|s| str_of(&s.stored.value, "payment_intent").to_owned())
            .collect();
        let newest = purchases.last().and_then(|payment_intent| self.charge_of(payment_intent));
        match newest.filter(|c| usable(c)) {
            Some(charge) => Ok(charge),
            None => {
                let bought = self.buy_pack(pack)?;
                let payment_intent = str_of(&bought, "payment_intent");
                self.charge_of(payment_intent).ok_or_else(|| ApiError::no_such("charge", payment_intent))
            }
        }
    }

    /// Whether `dispute` is about the charge of a purchase of the spec's credit pack.
    fn disputes_pack(&self, dispute: &Value) -> bool {
        let pack = json!(self.spec.pack);
        self.state.sessions.iter().any(|s| {
            let session = &s.stored.value;
            session["metadata"][PACK_METADATA_KEY] == pack && session["payment_intent"] == dispute["payment_intent"]
        })
    }

    /// The charge of a payment intent.
    fn charge_of(&self, payment_intent: &str) -> Option<Value> {
        let payment_intent = json!(payment_intent);
        self.state.charges.iter().map(|c| &c.value).find(|c| c["payment_intent"] == payment_intent).cloned()
    }

    /// Refunds what is left of `before` and records `charge.refunded`.
    fn refund(&mut self, before: Value) -> Result<(), ApiError> {
        self.by_request();
        self.state.refund_charge(&before);
        Ok(())
    }

    /// Opens a chargeback on the account's newest undisputed, unrefunded charge. Returns the
    /// dispute id.
    fn dispute_created(&mut self) -> Result<String, ApiError> {
        let undisputed = |c: &Value| c["disputed"] == false && c["amount_refunded"] == 0;
        let mut charge = match self.spec.pack.clone() {
            Some(pack) => self.pack_charge(&pack, undisputed)?,
            None => self.paid_charge(undisputed)?,
        };
        let now = self.now();
        let dispute_id = self.state.new_id("dp_", 24);
        let dispute = objects::dispute(&dispute_id, &charge, now, now + DISPUTE_RESPONSE_DAYS * DAY);
        charge["disputed"] = json!(true);
        self.automatically();
        self.state.replace_billing_object(charge);
        self.state.insert_billing_object(dispute.clone());
        self.state.record_event("charge.dispute.created", dispute, None);
        Ok(dispute_id)
    }

    /// Closes the account's newest open dispute (opening one first when there is none) with
    /// the requested outcome (default won), evidence submitted.
    fn dispute_closed(&mut self) -> Result<(), ApiError> {
        let customer = self.ensure_customer();
        let open = self
            .state
            .disputes
            .iter()
            .filter(|d| OPEN_DISPUTE_STATUSES.contains(&str_of(&d.value, "status")))
            .filter(|d| self.state.charge(str_of(&d.value, "charge")).is_some_and(|c| c["customer"] == json!(customer)))
            .filter(|d| self.spec.pack.is_none() || self.disputes_pack(&d.value))
            .max_by_key(|d| d.seq)
            .map(|d| id_of(&d.value));
        let id = match open {
            Some(id) => id,
            None => self.dispute_created()?,
        };
        let mut dispute = self.state.dispute(&id).cloned().ok_or_else(|| ApiError::no_such("dispute", &id))?;
        dispute["status"] = json!(self.spec.outcome.as_deref().unwrap_or("won"));
        dispute["is_charge_refundable"] = json!(false);
        dispute["evidence"]["uncategorized_text"] = json!("Service delivered as described (tollgate-dev trigger).");
        dispute["evidence_details"]["has_evidence"] = json!(true);
        dispute["evidence_details"]["submission_count"] = json!(1);
        self.automatically();
        self.state.replace_billing_object(dispute.clone());
        self.state.record_event("charge.dispute.closed", dispute, None);
        Ok(())
    }

    // ----- entitlements

    /// The customer's active entitlements: the features of the tier its live subscription buys
    /// (from the plan catalogue), none without one.
    fn entitlements_updated(&mut self) -> Result<(), ApiError> {
        let customer = self.ensure_customer();
        let lookup_key = match self.live_subscription(&customer) {
            Some(id) => str_of(&self.subscription(&id)?["items"]["data"][0]["price"], "lookup_key").to_owned(),
            None => String::new(),
        };
        let previous = self.state.entitlement_summaries.get(&customer).cloned();
        let previous_list = previous.as_ref().map_or_else(
            || json!({ "object": "list", "data": [], "has_more": false, "url": "/v1/entitlements/active_entitlements" }),
            |summary| summary["entitlements"].clone(),
        );
        let mut entitlements = Vec::new();
        for feature in features(self.state, &lookup_key) {
            let kept = previous_list["data"]
                .as_array()
                .and_then(|list| list.iter().find(|e| e["lookup_key"] == json!(feature)))
                .map(id_of);
            let id = kept.unwrap_or_else(|| self.state.new_id("ent_test_", 24));
            entitlements.push(objects::active_entitlement(&id, &format!("feat_test_{feature}"), &feature));
        }
        let summary = objects::entitlement_summary(&customer, entitlements);
        self.state.entitlement_summaries.insert(customer, summary.clone());
        let previous = previous_attributes(&json!({ "entitlements": previous_list }), &summary);
        self.automatically();
        self.state.record_event("entitlements.active_entitlement_summary.updated", summary, previous);
        Ok(())
    }
}

/// Not yet refunded nor disputed.
fn refundable(charge: &Value) -> bool {
    charge["refunded"] == false && charge["disputed"] == false
}

fn items_mut(subscription: &mut Value) -> impl Iterator<Item = &mut Value> {
    subscription["items"]["data"].as_array_mut().into_iter().flatten()
}

/// Starts every item's billing period at `start`.
fn restart_periods(subscription: &mut Value, start: i64) {
    for item in items_mut(subscription) {
        let end = period_end(&item["price"], start);
        item["current_period_start"] = json!(start);
        item["current_period_end"] = json!(end);
    }
}
