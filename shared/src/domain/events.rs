//! The Stripe event kinds Tollgate handles, in one table: for each type, whose customer the
//! event is about, the fact its payload records and the notification it sends. The intake
//! (what to enqueue, the message group), the worker (what to apply), the sync (what to list)
//! and the Stripe stand-in's trigger all read it; nothing else lists event types.
//!
//! [`Incoming`] reads an event payload as plain JSON, so that a Stripe-side field Tollgate
//! does not use can never make an event unprocessable.

use crate::domain::facts::Fact;
use crate::domain::notifications::Kind as Notice;
use serde::Deserialize;
use serde_json::Value;

/// The metadata key, on the customers, subscriptions and Checkout Sessions Tollgate creates,
/// that names the product's account.
pub const ACCOUNT_METADATA_KEY: &str = "tollgate_account_id";

/// The metadata key of a credit pack's Checkout Session naming the pack.
pub const PACK_METADATA_KEY: &str = "tollgate_pack";

/// A credit pack bought with a Checkout Session, as its event tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackPurchase<'a> {
    pub session: &'a str,
    pub pack: &'a str,
    pub payment_intent: Option<&'a str>,
}

/// Where a dispute on a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisputeStage {
    Opened,
    Won,
    Lost,
}

/// How to find the Stripe customer an event's object is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum About {
    /// The object is the customer itself.
    TheCustomer,
    /// The object's `customer` field (an id or an expanded object).
    CustomerField,
    /// Disputes name only their `charge`; the charge names the customer.
    DisputedCharge,
}

/// What the payload records beside Stripe's state (see [`crate::domain::facts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Records {
    DisputeOpened,
    DisputeClosed,
    Refund,
    PaymentFailed,
    InvoicePaid,
    Entitlements,
    /// The customer was deleted in Stripe: the account is unlinked and drops to Free.
    CustomerDeleted,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventKind {
    pub event_type: &'static str,
    pub about: About,
    pub records: Option<Records>,
    pub notice: Option<Notice>,
}

impl EventKind {
    /// Whether the event's object is an invoice that the account's invoice list projects
    /// (every `invoice.*` type of the table).
    pub fn projects_invoice(&self) -> bool {
        self.event_type.starts_with("invoice.")
    }
}

const fn kind(event_type: &'static str, about: About, records: Option<Records>, notice: Option<Notice>) -> EventKind {
    EventKind { event_type, about, records, notice }
}

use About::{CustomerField, DisputedCharge, TheCustomer};

/// Every event type Tollgate acts on; any other type is acknowledged and ignored. The
/// webhook endpoint must be created with exactly these types (docs/stripe-setup.md, held by tests/tests/docs.rs).
pub const KINDS: &[EventKind] = &[
    kind("checkout.session.completed", CustomerField, None, None),
    // A credit pack paid by a delayed method (bank debits): granted on success only.
    kind("checkout.session.async_payment_succeeded", CustomerField, None, None),
    kind("checkout.session.async_payment_failed", CustomerField, None, None),
    // A session left unpaid until it expired: the product's app may remind its user.
    kind("checkout.session.expired", CustomerField, None, Some(Notice::CheckoutExpired)),
    kind("customer.subscription.created", CustomerField, None, None),
    kind("customer.subscription.updated", CustomerField, None, None),
    kind("customer.subscription.deleted", CustomerField, None, Some(Notice::SubscriptionCanceled)),
    kind("customer.subscription.paused", CustomerField, None, None),
    kind("customer.subscription.resumed", CustomerField, None, None),
    kind("customer.subscription.trial_will_end", CustomerField, None, Some(Notice::TrialWillEnd)),
    kind("invoice.paid", CustomerField, Some(Records::InvoicePaid), Some(Notice::PaymentSucceeded)),
    kind("invoice.payment_succeeded", CustomerField, Some(Records::InvoicePaid), Some(Notice::PaymentSucceeded)),
    kind("invoice.payment_failed", CustomerField, Some(Records::PaymentFailed), Some(Notice::PaymentFailed)),
    kind("invoice.payment_action_required", CustomerField, None, Some(Notice::PaymentActionRequired)),
    kind("invoice.finalized", CustomerField, None, None),
    kind("invoice.voided", CustomerField, None, None),
    kind("invoice.marked_uncollectible", CustomerField, None, None),
    kind("charge.dispute.created", DisputedCharge, Some(Records::DisputeOpened), Some(Notice::DisputeOpened)),
    kind("charge.dispute.closed", DisputedCharge, Some(Records::DisputeClosed), Some(Notice::DisputeClosed)),
    kind("charge.refunded", CustomerField, Some(Records::Refund), Some(Notice::Refunded)),
    kind("customer.deleted", TheCustomer, Some(Records::CustomerDeleted), None),
    kind("entitlements.active_entitlement_summary.updated", CustomerField, Some(Records::Entitlements), None),
];

/// The row of `event_type`; `None` for a type Tollgate does not handle.
pub fn kind_of(event_type: &str) -> Option<&'static EventKind> {
    KINDS.iter().find(|k| k.event_type == event_type)
}

/// Whether Tollgate acts on events of this type.
pub fn is_handled(event_type: &str) -> bool {
    kind_of(event_type).is_some()
}

/// The handled types, in the table's order (for Stripe's event list filter).
pub fn handled_types() -> Vec<&'static str> {
    KINDS.iter().map(|k| k.event_type).collect()
}

/// A Stripe event envelope: the one reading of an event payload, shared by the intake (what
/// it accepts), the worker and the sync (what they apply), so that whatever the intake accepts
/// the worker can process.
#[derive(Debug, Clone, Deserialize)]
pub struct Incoming {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(deserialize_with = "crate::domain::number::deserialize_whole_i64")]
    pub created: i64,
    /// Present on every Stripe event; the intake requires it, the worker does not use it.
    #[serde(default)]
    pub livemode: Option<bool>,
    pub data: Data,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Data {
    pub object: Value,
}

/// Why a payload is not a Stripe event Tollgate can process (no part of the payload in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub &'static str);

/// Longest id Tollgate reads from a payload (Stripe's ids are far shorter): every id becomes
/// part of a DynamoDB key or an SQS attribute, which have hard limits.
pub const MAX_ID_LEN: usize = 255;

/// Whether `value` can be an id Tollgate stores: 1 to [`MAX_ID_LEN`] printable ASCII.
pub fn is_id(value: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic())
}

/// Whether `value` can be an SQS FIFO group or deduplication id: 1 to 128 printable ASCII.
pub fn is_queue_token(value: &str) -> bool {
    value.len() <= 128 && is_id(value)
}

/// How to find the Stripe customer an event concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerRef {
    Customer(String),
    /// Disputes name only their charge; the charge names the customer.
    Charge(String),
    None,
}

fn id_of(value: &Value) -> Option<&str> {
    match value {
        Value::String(id) => Some(id.as_str()),
        Value::Object(object) => object.get("id").and_then(Value::as_str),
        _ => None,
    }
    .filter(|id| is_id(id))
}

/// The customer an event's `object` is about, by the table's rule for `event_type`; for a type
/// outside the table, the object's `customer` field.
pub fn customer_of(event_type: &str, object: &Value) -> CustomerRef {
    let about = kind_of(event_type).map_or(CustomerField, |k| k.about);
    let found = match about {
        TheCustomer => id_of(&object["id"]).map(|id| CustomerRef::Customer(id.to_owned())),
        CustomerField => id_of(&object["customer"]).map(|id| CustomerRef::Customer(id.to_owned())),
        DisputedCharge => id_of(&object["charge"]).map(|id| CustomerRef::Charge(id.to_owned())),
    };
    found.unwrap_or(CustomerRef::None)
}

impl Incoming {
    /// Parses an event payload (a webhook body, or an event listed by the sync): a JSON
    /// object with a string `id` usable as a queue token, a non-empty `type`, an integer
    /// `created` and an object `data.object`.
    pub fn parse(body: &str) -> Result<Self, Malformed> {
        let event: Self = serde_json::from_str(body).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => {
                Malformed("not a Stripe event envelope (id, type, created, data.object)")
            }
            _ => Malformed("invalid JSON"),
        })?;
        if !is_queue_token(&event.id) {
            return Err(Malformed("`id` is not an event id"));
        }
        if !is_id(&event.event_type) {
            return Err(Malformed("`type` is not an event type"));
        }
        if !event.data.object.is_object() {
            return Err(Malformed("`data.object` is not an object"));
        }
        Ok(event)
    }

    /// The event's row in the table, if Tollgate handles its type.
    pub fn kind(&self) -> Option<&'static EventKind> {
        kind_of(&self.event_type)
    }

    fn object(&self) -> &Value {
        &self.data.object
    }

    fn str_at(&self, path: &[&str]) -> Option<&str> {
        path.iter().try_fold(self.object(), |v, key| v.get(key)).and_then(Value::as_str).filter(|s| !s.is_empty())
    }

    /// The credit pack a paid, payment-mode Checkout Session bought: on
    /// `checkout.session.completed` with `payment_status: paid`, or on
    /// `checkout.session.async_payment_succeeded`.
    pub fn pack_purchase(&self) -> Option<PackPurchase<'_>> {
        let paid = match self.event_type.as_str() {
            "checkout.session.completed" => self.str_at(&["payment_status"]) == Some("paid"),
            "checkout.session.async_payment_succeeded" => true,
            _ => false,
        };
        if !paid || self.str_at(&["mode"]) != Some("payment") {
            return None;
        }
        let session = self.str_at(&["id"]).filter(|id| is_id(id))?;
        let pack = self.str_at(&["metadata", PACK_METADATA_KEY])?;
        Some(PackPurchase { session, pack, payment_intent: self.payment_intent() })
    }

    /// A dispute on a payment, as the event tells it: the payment's PaymentIntent and what
    /// happened (`charge.dispute.created`: opened; `charge.dispute.closed`: won or lost, an
    /// inquiry closed without a chargeback counting as won).
    pub fn payment_dispute(&self) -> Option<(&str, DisputeStage)> {
        let stage = match self.event_type.as_str() {
            "charge.dispute.created" => DisputeStage::Opened,
            "charge.dispute.closed" if self.str_at(&["status"]) == Some("lost") => DisputeStage::Lost,
            "charge.dispute.closed" => DisputeStage::Won,
            _ => return None,
        };
        Some((self.payment_intent()?, stage))
    }

    /// The PaymentIntent of a charge refunded in full (`charge.refunded` with `refunded: true`).
    pub fn full_refund(&self) -> Option<&str> {
        let full = self.event_type == "charge.refunded"
            && self.object().get("refunded").and_then(Value::as_bool) == Some(true);
        full.then(|| self.payment_intent()).flatten()
    }

    /// The id of the object the event is about.
    pub fn object_id(&self) -> String {
        self.str_at(&["id"]).unwrap_or_default().to_owned()
    }

    /// The customer this event concerns.
    pub fn customer(&self) -> CustomerRef {
        customer_of(&self.event_type, self.object())
    }

    /// The account id Tollgate itself wrote on the object: [`ACCOUNT_METADATA_KEY`] in its
    /// (or its subscription's) metadata, which only the API key can set. Never Checkout's
    /// `client_reference_id`: buyers can set that on Payment Links and pricing tables.
    pub fn account_hint(&self) -> Option<String> {
        const KEY: &str = ACCOUNT_METADATA_KEY;
        self.str_at(&["metadata", KEY])
            .or_else(|| self.str_at(&["parent", "subscription_details", "metadata", KEY]))
            .or_else(|| self.str_at(&["subscription_details", "metadata", KEY]))
            .map(str::to_owned)
    }

    /// The fact this event carries, if any; `period_end` is the current period's end as the
    /// state at hand says (what a full refund refunds).
    pub fn fact(&self, period_end: Option<i64>) -> Option<Fact> {
        let at = self.created;
        match self.kind()?.records? {
            Records::DisputeOpened => Some(Fact::DisputeOpened { id: self.object_id() }),
            Records::DisputeClosed => {
                // `warning_closed`: an inquiry that never became a chargeback; no money moved.
                let won = matches!(self.str_at(&["status"]), Some("won" | "warning_closed"));
                Some(Fact::DisputeClosed { id: self.object_id(), won })
            }
            Records::Refund => {
                let full = self.object().get("refunded").and_then(Value::as_bool) == Some(true);
                full.then_some(Fact::FullRefund { at, period_end })
            }
            Records::PaymentFailed => Some(Fact::PaymentFailed { at }),
            Records::InvoicePaid => Some(Fact::InvoicePaid { at }),
            Records::Entitlements => {
                let keys = self.object()["entitlements"]["data"]
                    .as_array()
                    .map(|items| items.iter().filter_map(|e| e["lookup_key"].as_str().map(str::to_owned)).collect())
                    .unwrap_or_default();
                Some(Fact::Entitlements { at, lookup_keys: keys })
            }
            Records::CustomerDeleted => None,
        }
    }

    /// The charge's PaymentIntent (a `charge.refunded` event's link to the invoice it paid).
    pub fn payment_intent(&self) -> Option<&str> {
        id_of(&self.object()["payment_intent"])
    }

    /// What tells one occurrence of this event's notification from another about the same
    /// object: an invoice's payment attempt (for failures and actions required), a refund's id
    /// (or, without the refunds list, the amount refunded so far). A redelivery, and the two
    /// events of one payment, give the same occurrence.
    pub fn occurrence(&self, notice: Notice) -> Option<String> {
        let object = self.object();
        match notice {
            Notice::PaymentFailed | Notice::PaymentActionRequired => {
                object.get("attempt_count").and_then(Value::as_i64).map(|n| format!("attempt-{n}"))
            }
            Notice::Refunded => id_of(&object["refunds"]["data"][0])
                .map(str::to_owned)
                .or_else(|| object.get("amount_refunded").and_then(Value::as_i64).map(|a| format!("refunded-{a}"))),
            Notice::TrialWillEnd => object.get("trial_end").and_then(Value::as_i64).map(|t| format!("trial-{t}")),
            _ => None,
        }
    }

    /// Whether the event says the customer was deleted in Stripe.
    pub fn deletes_customer(&self) -> bool {
        self.kind().and_then(|k| k.records) == Some(Records::CustomerDeleted)
    }

    /// Details a notification carries (links and times the mailer needs, nothing sensitive).
    pub fn notification_details(&self) -> Value {
        let mut details = serde_json::Map::new();
        for key in [
            "hosted_invoice_url",
            "amount_due",
            "amount_paid",
            "amount_refunded",
            "amount_total",
            "mode",
            "currency",
            "trial_end",
            "status",
            "reason",
        ] {
            if let Some(value) = self.object().get(key).filter(|v| !v.is_null()) {
                details.insert(key.to_owned(), value.clone());
            }
        }
        Value::Object(details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn event(event_type: &str, object: Value) -> Incoming {
        Incoming::parse(
            &serde_json::json!({"id": "evt_1", "type": event_type, "created": 100, "data": {"object": object}})
                .to_string(),
        )
        .unwrap()
    }

    #[test]
    fn each_type_is_in_the_table_once() {
        let types: HashSet<_> = KINDS.iter().map(|k| k.event_type).collect();

        assert_eq!(types.len(), KINDS.len());
        assert!(is_handled("invoice.paid"));
        assert!(!is_handled("customer.created"));
    }

    #[test]
    fn customer_comes_from_the_object_or_its_charge() {
        let sub = event("customer.subscription.updated", serde_json::json!({"id": "sub_1", "customer": "cus_1"}));
        let expanded = event("invoice.paid", serde_json::json!({"id": "in_1", "customer": {"id": "cus_2"}}));
        let customer = event("customer.deleted", serde_json::json!({"id": "cus_3", "object": "customer"}));
        let dispute = event("charge.dispute.created", serde_json::json!({"id": "dp_1", "charge": "ch_1"}));

        assert_eq!(sub.customer(), CustomerRef::Customer("cus_1".into()));
        assert_eq!(expanded.customer(), CustomerRef::Customer("cus_2".into()));
        assert_eq!(customer.customer(), CustomerRef::Customer("cus_3".into()));
        assert_eq!(dispute.customer(), CustomerRef::Charge("ch_1".into()));
    }

    #[test]
    fn account_hint_only_from_metadata_tollgate_wrote() {
        let checkout = event(
            "checkout.session.completed",
            serde_json::json!({"client_reference_id": "acct_1", "metadata": {"tollgate_account_id": "acct_1"}}),
        );
        let buyer_set = event("checkout.session.completed", serde_json::json!({"client_reference_id": "acct_victim"}));
        let invoice = event(
            "invoice.paid",
            serde_json::json!({"parent": {"subscription_details": {"metadata": {"tollgate_account_id": "acct_2"}}}}),
        );

        assert_eq!(checkout.account_hint().as_deref(), Some("acct_1"));
        assert_eq!(buyer_set.account_hint(), None, "client_reference_id is the buyer's to set");
        assert_eq!(invoice.account_hint().as_deref(), Some("acct_2"));
        assert_eq!(event("invoice.paid", serde_json::json!({})).account_hint(), None);
    }

    #[test]
    fn a_payload_that_is_not_an_event_is_malformed() {
        let object = r#"{"id":"x"}"#;
        let bodies = [
            "not json".to_owned(),
            "[]".to_owned(),
            format!(r#"{{"id":"evt_1","id":"evt_2","type":"invoice.paid","created":1,"data":{{"object":{object}}}}}"#),
            format!(r#"{{"id":"evt_1","type":"invoice.paid","created":1e30,"data":{{"object":{object}}}}}"#),
            format!(
                r#"{{"id":"evt_1","type":"invoice.paid","created":18446744073709551615,"data":{{"object":{object}}}}}"#
            ),
            format!(r#"{{"id":"evt 1","type":"invoice.paid","created":1,"data":{{"object":{object}}}}}"#),
            format!(r#"{{"id":"evt_1","type":"","created":1,"data":{{"object":{object}}}}}"#),
            r#"{"id":"evt_1","type":"invoice.paid","created":1,"data":{"object":[]}}"#.to_owned(),
            format!(r#"{{"id":"{}","type":"invoice.paid","created":1,"data":{{"object":{object}}}}}"#, "e".repeat(129)),
        ];

        for body in bodies {
            assert!(Incoming::parse(&body).is_err(), "{body}");
        }
    }

    #[test]
    fn ids_too_long_to_be_keys_name_no_customer() {
        let long = "c".repeat(MAX_ID_LEN + 1);

        assert_eq!(event("invoice.paid", serde_json::json!({"customer": long})).customer(), CustomerRef::None);
        assert_eq!(event("invoice.paid", serde_json::json!({"customer": "cus\n1"})).customer(), CustomerRef::None);
    }

    #[test]
    fn occurrences_tell_attempts_and_refunds_apart() {
        let attempt = |n: i64| event("invoice.payment_failed", serde_json::json!({"id": "in_1", "attempt_count": n}));
        let refund = |id: &str, amount: i64| {
            event(
                "charge.refunded",
                serde_json::json!({"id": "ch_1", "amount_refunded": amount, "refunds": {"data": [{"id": id}]}}),
            )
        };
        let bare = event("charge.refunded", serde_json::json!({"id": "ch_1", "amount_refunded": 300}));

        assert_eq!(attempt(1).occurrence(Notice::PaymentFailed).as_deref(), Some("attempt-1"));
        assert_ne!(attempt(1).occurrence(Notice::PaymentFailed), attempt(2).occurrence(Notice::PaymentFailed));
        assert_eq!(refund("re_2", 500).occurrence(Notice::Refunded).as_deref(), Some("re_2"));
        assert_eq!(bare.occurrence(Notice::Refunded).as_deref(), Some("refunded-300"));
        assert_eq!(attempt(1).occurrence(Notice::PaymentSucceeded), None, "one payment, one notice");
    }

    #[test]
    fn facts_by_event_type() {
        let won = event("charge.dispute.closed", serde_json::json!({"id": "dp_1", "status": "won"}));
        let lost = event("charge.dispute.closed", serde_json::json!({"id": "dp_1", "status": "lost"}));
        let partial = event("charge.refunded", serde_json::json!({"id": "ch_1", "refunded": false}));
        let full = event("charge.refunded", serde_json::json!({"id": "ch_1", "refunded": true}));

        assert_eq!(won.fact(None), Some(Fact::DisputeClosed { id: "dp_1".into(), won: true }));
        assert_eq!(lost.fact(None), Some(Fact::DisputeClosed { id: "dp_1".into(), won: false }));
        assert_eq!(partial.fact(Some(9)), None);
        assert_eq!(full.fact(Some(9)), Some(Fact::FullRefund { at: 100, period_end: Some(9) }));
        assert_eq!(event("invoice.finalized", serde_json::json!({})).fact(None), None);
        assert_eq!(event("invoice.voided", serde_json::json!({})).fact(None), None);
    }
}
