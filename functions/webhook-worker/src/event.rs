//! What a Stripe event means to Tollgate, read from its payload (plain JSON, so that a
//! Stripe-side field Tollgate does not use can never make an event unprocessable): whose
//! customer it concerns, which account it names, and which fact it carries.

use serde::Deserialize;
use serde_json::Value;
use tollgate::facts::Fact;

/// A Stripe event envelope.
#[derive(Debug, Clone, Deserialize)]
pub struct Incoming {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub created: i64,
    pub data: Data,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Data {
    pub object: Value,
}

/// How to find the Stripe customer an event concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerRef {
    Customer(String),
    /// Disputes name only their charge; the charge names the customer.
    Charge(String),
    None,
}

fn id_of(value: &Value) -> Option<String> {
    match value {
        Value::String(id) => Some(id.clone()),
        Value::Object(object) => object.get("id").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

impl Incoming {
    fn object(&self) -> &Value {
        &self.data.object
    }

    fn str_at(&self, path: &[&str]) -> Option<&str> {
        path.iter().try_fold(self.object(), |v, key| v.get(key)).and_then(Value::as_str).filter(|s| !s.is_empty())
    }

    /// The id of the object the event is about.
    pub fn object_id(&self) -> String {
        self.str_at(&["id"]).unwrap_or_default().to_owned()
    }

    /// The customer this event concerns.
    pub fn customer(&self) -> CustomerRef {
        let object = self.object();
        if object.get("object").and_then(Value::as_str) == Some("customer") {
            return id_of(&object["id"]).map_or(CustomerRef::None, CustomerRef::Customer);
        }
        if let Some(customer) = object.get("customer").and_then(id_of) {
            return CustomerRef::Customer(customer);
        }
        match object.get("charge").and_then(id_of) {
            Some(charge) => CustomerRef::Charge(charge),
            None => CustomerRef::None,
        }
    }

    /// The account id Tollgate attached to the object: Checkout's `client_reference_id`, or
    /// `tollgate_account_id` in its (or its subscription's) metadata.
    pub fn account_hint(&self) -> Option<String> {
        const KEY: &str = "tollgate_account_id";
        self.str_at(&["client_reference_id"])
            .or_else(|| self.str_at(&["metadata", KEY]))
            .or_else(|| self.str_at(&["parent", "subscription_details", "metadata", KEY]))
            .or_else(|| self.str_at(&["subscription_details", "metadata", KEY]))
            .map(str::to_owned)
    }

    /// The fact this event carries, if any; `period_end` is the current period's end as the
    /// state at hand says (what a full refund refunds).
    pub fn fact(&self, period_end: Option<i64>) -> Option<Fact> {
        let at = self.created;
        match self.event_type.as_str() {
            "charge.dispute.created" => Some(Fact::DisputeOpened { id: self.object_id() }),
            "charge.dispute.closed" => {
                // `warning_closed`: an inquiry that never became a chargeback; no money moved.
                let won = matches!(self.str_at(&["status"]), Some("won" | "warning_closed"));
                Some(Fact::DisputeClosed { id: self.object_id(), won })
            }
            "charge.refunded" => {
                let full = self.object().get("refunded").and_then(Value::as_bool) == Some(true);
                full.then_some(Fact::FullRefund { at, period_end })
            }
            "invoice.payment_failed" => Some(Fact::PaymentFailed { at }),
            "invoice.paid" | "invoice.payment_succeeded" => Some(Fact::InvoicePaid { at }),
            "entitlements.active_entitlement_summary.updated" => {
                let keys = self.object()["entitlements"]["data"]
                    .as_array()
                    .map(|items| items.iter().filter_map(|e| e["lookup_key"].as_str().map(str::to_owned)).collect())
                    .unwrap_or_default();
                Some(Fact::Entitlements { at, lookup_keys: keys })
            }
            _ => None,
        }
    }

    /// Details a notification carries (links and times the mailer needs, nothing sensitive).
    pub fn notification_details(&self) -> Value {
        let mut details = serde_json::Map::new();
        for key in [
            "hosted_invoice_url",
            "amount_due",
            "amount_paid",
            "amount_refunded",
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

    fn event(event_type: &str, object: Value) -> Incoming {
        serde_json::from_value(serde_json::json!({
            "id": "evt_1", "type": event_type, "created": 100, "data": {"object": object}
        }))
        .unwrap()
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
    fn account_hint_from_checkout_or_metadata() {
        let checkout =
            event("checkout.session.completed", serde_json::json!({"client_reference_id": "acct_1", "metadata": {}}));
        let invoice = event(
            "invoice.paid",
            serde_json::json!({"parent": {"subscription_details": {"metadata": {"tollgate_account_id": "acct_2"}}}}),
        );

        assert_eq!(checkout.account_hint().as_deref(), Some("acct_1"));
        assert_eq!(invoice.account_hint().as_deref(), Some("acct_2"));
        assert_eq!(event("invoice.paid", serde_json::json!({})).account_hint(), None);
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
    }
}
