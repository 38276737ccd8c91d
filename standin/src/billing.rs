//! Subscription billing as Stripe's machinery runs it, shared by the trigger
//! ([`crate::trigger`]) and the clock ([`crate::clockwork`]): an invoice for a period (created
//! as a draft, then finalized with its payment attempt an hour later), a payment attempt that
//! pays it with a card charge or fails, and the retry schedule of a failed payment (Stripe's
//! default: 3, 5 and 7 days after the attempt before, then the subscription ends).

use serde_json::{Value, json};

use super::error::ApiError;
use super::objects::{self, NewCharge, NewInvoice};
use super::state::State;

const DAY: i64 = 86_400;
/// A finalized invoice's payment is attempted an hour later.
pub(crate) const FIRST_ATTEMPT_AFTER: i64 = 3_600;

/// Whether a failed attempt leaves retries to come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retries {
    /// The next attempt is scheduled (`next_payment_attempt`).
    Scheduled,
    /// None left: the invoice will not be attempted again.
    Exhausted,
}

fn str_of<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field].as_str().unwrap_or_default()
}

/// The subscription an invoice bills.
pub(crate) fn invoiced_subscription(invoice: &Value) -> String {
    str_of(&invoice["parent"]["subscription_details"], "subscription").to_owned()
}

impl State {
    pub(crate) fn subscription_value(&self, id: &str) -> Result<Value, ApiError> {
        self.subscription(id).cloned().ok_or_else(|| ApiError::no_such("subscription", id))
    }

    pub(crate) fn invoice_value(&self, id: &str) -> Result<Value, ApiError> {
        self.invoice(id).cloned().ok_or_else(|| ApiError::no_such("invoice", id))
    }

    /// Records `customer.subscription.updated` for a change whose previous attributes are given.
    pub(crate) fn record_updated(&mut self, id: &str, previous: Option<Value>) -> Result<(), ApiError> {
        let subscription = self.subscription_value(id)?;
        self.record_event("customer.subscription.updated", subscription, previous);
        Ok(())
    }

    /// Invoices `subscription` (already stored with `latest_invoice` = `invoice_id`) for
    /// `period`: one line per item, `invoice.created` (draft), then `invoice.finalized` (open,
    /// numbered, its payment attempted [`FIRST_ATTEMPT_AFTER`] later). Returns the invoice id.
    pub(crate) fn issue_invoice(
        &mut self,
        subscription: &Value,
        invoice_id: &str,
        billing_reason: &str,
        period: (i64, i64),
    ) -> String {
        let now = self.now();
        let subscription_id = str_of(subscription, "id").to_owned();
        let customer_id = str_of(subscription, "customer").to_owned();
        let customer = self.live_customer(&customer_id).cloned().unwrap_or_else(|| json!({ "id": customer_id }));
        let mut lines = Vec::new();
        for item in subscription["items"]["data"].as_array().cloned().unwrap_or_default() {
            let line_id = self.new_id("il_", 24);
            let product = self.product(str_of(&item["price"], "product")).cloned().unwrap_or(Value::Null);
            lines.push(objects::invoice_line(&line_id, invoice_id, &subscription_id, &item, str_of(&product, "name")));
        }
        let mut invoice = objects::invoice(NewInvoice {
            id: invoice_id,
            created: now,
            customer: &customer,
            subscription,
            billing_reason,
            period,
            lines,
        });
        self.cause = None;
        self.insert_billing_object(invoice.clone());
        self.record_event("invoice.created", invoice.clone(), None);

        let prefix = str_of(&customer, "invoice_prefix").to_owned();
        let numbered = self.invoices.iter().filter(|i| i.value["customer"] == customer["id"]).count();
        invoice["status"] = json!("open");
        invoice["number"] = json!(format!("{prefix}-{numbered:04}"));
        invoice["automatically_finalizes_at"] = Value::Null;
        invoice["effective_at"] = json!(now);
        invoice["ending_balance"] = json!(0);
        invoice["next_payment_attempt"] = json!(now + FIRST_ATTEMPT_AFTER);
        invoice["status_transitions"]["finalized_at"] = json!(now);
        invoice["hosted_invoice_url"] = json!(format!("{}/invoices/{invoice_id}", self.public_base));
        invoice["invoice_pdf"] = json!(format!("{}/invoices/{invoice_id}/pdf", self.public_base));
        self.replace_billing_object(invoice.clone());
        self.record_event("invoice.finalized", invoice, None);
        invoice_id.to_owned()
    }

    /// Pays an open invoice with a card charge through a payment intent (listed by
    /// `GET /v1/invoice_payments?payment[payment_intent]=...`): records `invoice.paid` and
    /// `invoice.payment_succeeded`, then `customer.subscription.updated` when the payment
    /// brings the subscription back to `active`. Returns the charge id.
    pub(crate) fn pay_invoice(&mut self, invoice_id: &str) -> Result<String, ApiError> {
        let mut invoice = self.invoice_value(invoice_id)?;
        let now = self.now();
        let customer_id = str_of(&invoice, "customer").to_owned();
        let customer = self.live_customer(&customer_id).cloned().unwrap_or_else(|| json!({ "id": customer_id }));
        let amount = invoice["amount_due"].as_i64().unwrap_or_default();
        let description = if invoice["billing_reason"] == "subscription_create" {
            "Subscription creation"
        } else {
            "Subscription update"
        };
        let (charge_id, payment_method) = (self.new_id("ch_", 24), self.new_id("pm_", 24));
        let payment_intent = self.new_id("pi_", 24);
        let charge = objects::charge(NewCharge {
            id: &charge_id,
            payment_intent: &payment_intent,
            payment_method: &payment_method,
            customer: &customer,
            amount,
            currency: str_of(&invoice, "currency"),
            created: now,
            description: Some(description),
        });
        self.cause = None;
        self.insert_billing_object(charge);

        invoice["status"] = json!("paid");
        invoice["amount_paid"] = json!(amount);
        invoice["amount_remaining"] = json!(0);
        invoice["attempted"] = json!(true);
        invoice["attempt_count"] = json!(invoice["attempt_count"].as_u64().unwrap_or_default() + 1);
        invoice["auto_advance"] = json!(false);
        invoice["next_payment_attempt"] = Value::Null;
        invoice["status_transitions"]["paid_at"] = json!(now);
        self.replace_billing_object(invoice.clone());
        let payment_id = self.new_id("inpay_", 24);
        self.insert_billing_object(objects::invoice_payment(&payment_id, &invoice, &payment_intent, now));
        self.record_event("invoice.paid", invoice.clone(), None);
        self.record_event("invoice.payment_succeeded", invoice.clone(), None);

        let subscription_id = invoiced_subscription(&invoice);
        let mut subscription = self.subscription_value(&subscription_id)?;
        if ["past_due", "unpaid", "incomplete"].contains(&str_of(&subscription, "status")) {
            subscription["status"] = json!("active");
            let previous = self.replace_subscription(&subscription_id, subscription);
            self.record_updated(&subscription_id, previous)?;
        }
        Ok(charge_id)
    }

    /// Refunds what is left of `charge` in full and records `charge.refunded`; returns the
    /// refund.
    pub(crate) fn refund_charge(&mut self, before: &Value) -> Value {
        let now = self.now();
        let amount = before["amount"].as_i64().unwrap_or_default();
        let remaining = amount - before["amount_refunded"].as_i64().unwrap_or_default();
        let refund_id = self.new_id("re_", 24);
        let refund = objects::refund(&refund_id, before, remaining, now);
        let mut charge = before.clone();
        charge["amount_refunded"] = json!(amount);
        charge["refunded"] = json!(true);
        if let Some(refunds) = charge["refunds"]["data"].as_array_mut() {
            refunds.insert(0, refund.clone());
        }
        let previous = self.replace_billing_object(charge.clone());
        self.record_event("charge.refunded", charge, previous);
        refund
    }

    /// A payment attempt that failed (`invoice.payment_failed`: the next retry of the
    /// schedule is set, if any is left) or needs the customer to authenticate
    /// (`invoice.payment_action_required`: no retry); the invoice stays open and the
    /// subscription becomes `past_due`.
    pub(crate) fn fail_invoice(&mut self, invoice_id: &str, kind: &str) -> Result<Retries, ApiError> {
        let mut invoice = self.invoice_value(invoice_id)?;
        let now = self.now();
        let attempts = invoice["attempt_count"].as_u64().unwrap_or_default() + 1;
        let retry = usize::try_from(attempts - 1).ok().and_then(|done| self.dunning.retry_days.get(done)).copied();
        let next = retry.filter(|_| kind == "invoice.payment_failed").map(|days| now + i64::from(days) * DAY);
        invoice["attempted"] = json!(true);
        invoice["attempt_count"] = json!(attempts);
        invoice["next_payment_attempt"] = json!(next);
        self.cause = None;
        self.replace_billing_object(invoice.clone());
        self.record_event(kind, invoice.clone(), None);

        let subscription_id = invoiced_subscription(&invoice);
        let mut subscription = self.subscription_value(&subscription_id)?;
        if !["past_due", "unpaid", "canceled"].contains(&str_of(&subscription, "status")) {
            subscription["status"] = json!("past_due");
            let previous = self.replace_subscription(&subscription_id, subscription);
            self.record_updated(&subscription_id, previous)?;
        }
        Ok(if next.is_some() { Retries::Scheduled } else { Retries::Exhausted })
    }
}

/// Moves every item of `subscription` to its next period: from its current end to the next
/// boundary of the periods anchored at the subscription's `billing_cycle_anchor`, the day
/// clamped as Stripe clamps it (anchored on Jan 31: Feb 28, then Mar 31).
pub(crate) fn renew_periods(subscription: &mut Value) {
    let anchor = subscription["billing_cycle_anchor"].as_i64();
    for item in subscription["items"]["data"].as_array_mut().into_iter().flatten() {
        let Some(end) = item["current_period_end"].as_i64() else { continue };
        let recurring = &item["price"]["recurring"];
        let interval = recurring["interval"].as_str().unwrap_or("month").to_owned();
        let count = recurring["interval_count"].as_i64().unwrap_or(1);
        let next = crate::calendar::boundary_after(anchor.unwrap_or(end), &interval, count, end);
        item["current_period_start"] = json!(end);
        item["current_period_end"] = json!(next);
    }
}

/// The current period of a subscription's first item (`at` for a missing bound).
pub(crate) fn current_period(subscription: &Value, at: i64) -> (i64, i64) {
    let item = &subscription["items"]["data"][0];
    (item["current_period_start"].as_i64().unwrap_or(at), item["current_period_end"].as_i64().unwrap_or(at))
}
