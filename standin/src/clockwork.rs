//! Stripe's machinery over time, as its test clocks play it: what becomes due as the stand-in's
//! clock passes each object's moments, performed in time order with the events Stripe sends.
//!
//! - A trial sends `customer.subscription.trial_will_end` three days before its end, then ends:
//!   the subscription is `active` from the trial's end (its new billing cycle anchor) and its
//!   first period is invoiced.
//! - A period renews at its end: the next period runs to the next boundary of the periods
//!   anchored at `billing_cycle_anchor` (the day clamped as Stripe clamps it), and is invoiced
//!   (`customer.subscription.updated`, `invoice.created`, `invoice.finalized`).
//! - A finalized invoice's payment is attempted an hour later, and a failed one on the retry
//!   schedule ([`crate::dunning::Dunning`]): the card pays (`invoice.paid`) unless the account's
//!   card declines ([`super::StandIn::set_card`]: `invoice.payment_failed`, `past_due`); after
//!   the last failed retry the subscription ends as the schedule says (`canceled` or `unpaid`).
//! - A subscription set to cancel at its period's end is canceled then.
//! - An open Checkout Session expires at its `expires_at` (`checkout.session.expired`).
//!
//! The local stack moves its clock to each moment [`State::next_due`] names and has
//! [`State::play_due`] perform what is due, delivering the events before the next moment.

use serde_json::{Value, json};
use tollgate::domain::events::ACCOUNT_METADATA_KEY;

use super::billing::{Retries, current_period, invoiced_subscription, renew_periods};
use super::dunning::AfterRetries;
use super::error::ApiError;
use super::state::{State, mark_canceled, period_end};

const DAY: i64 = 86_400;
/// Stripe sends `customer.subscription.trial_will_end` three days before a trial ends.
pub(crate) const TRIAL_WILL_END_NOTICE: i64 = 3 * DAY;
/// More steps than any clock move can need; a guard against a step that changes nothing.
const MAX_STEPS: usize = 100_000;

/// Something Stripe's machinery does at a moment, in the order it does things due together.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    /// An open Checkout Session reaches its `expires_at`.
    SessionExpires(String),
    /// Three days before a trial's end.
    TrialWillEnd(String),
    /// A subscription set to cancel at its period's end reaches it.
    EndsAtPeriodEnd(String),
    /// A trial's end: the first period starts and is invoiced.
    TrialEnds(String),
    /// A period's end: the next one starts and is invoiced.
    Renews(String),
    /// An open invoice's next payment attempt.
    Attempt(String),
}

fn str_of<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field].as_str().unwrap_or_default()
}

/// The key of a trial's `trial_will_end` notice (one per subscription and trial end).
pub(crate) fn trial_notice_key(subscription: &Value) -> String {
    format!("{}@{}", str_of(subscription, "id"), subscription["trial_end"].as_i64().unwrap_or_default())
}

impl State {
    /// Every moment something is due, with what.
    fn schedule(&self) -> Vec<(i64, Due)> {
        let mut due = Vec::new();
        for subscription in self.subscriptions.iter().filter(|s| !s.deleted).map(|s| &s.value) {
            let id = str_of(subscription, "id").to_owned();
            let cancel_at = subscription["cancel_at"].as_i64().filter(|_| subscription["cancel_at_period_end"] == true);
            match str_of(subscription, "status") {
                "trialing" => {
                    let Some(end) = subscription["trial_end"].as_i64() else { continue };
                    let notice = end - TRIAL_WILL_END_NOTICE;
                    let created = subscription["created"].as_i64().unwrap_or_default();
                    if notice >= created && !self.trial_notices.contains(&trial_notice_key(subscription)) {
                        due.push((notice, Due::TrialWillEnd(id.clone())));
                    }
                    match cancel_at {
                        Some(at) => due.push((at, Due::EndsAtPeriodEnd(id))),
                        None => due.push((end, Due::TrialEnds(id))),
                    }
                }
                "active" | "past_due" => match cancel_at {
                    Some(at) => due.push((at, Due::EndsAtPeriodEnd(id))),
                    None => {
                        let (_, end) = current_period(subscription, i64::MAX);
                        if end != i64::MAX {
                            due.push((end, Due::Renews(id)));
                        }
                    }
                },
                _ => {}
            }
        }
        for invoice in self.invoices.iter().map(|s| &s.value).filter(|i| i["status"] == "open") {
            let Some(at) = invoice["next_payment_attempt"].as_i64() else { continue };
            let billed = self.subscription(&invoiced_subscription(invoice));
            if billed.is_some_and(|s| !["canceled", "incomplete_expired", "paused"].contains(&str_of(s, "status"))) {
                due.push((at, Due::Attempt(str_of(invoice, "id").to_owned())));
            }
        }
        for session in self.sessions.iter().map(|s| &s.stored.value).filter(|s| s["status"] == "open") {
            if let Some(at) = session["expires_at"].as_i64() {
                due.push((at, Due::SessionExpires(str_of(session, "id").to_owned())));
            }
        }
        due
    }

    /// The earliest moment something is due (it may already have passed), if any.
    pub(crate) fn next_due(&self) -> Option<i64> {
        self.schedule().into_iter().map(|(at, _)| at).min()
    }

    /// Performs everything due at or before the stand-in's time, oldest first; returns the
    /// events recorded on the way, oldest first.
    pub(crate) fn play_due(&mut self) -> Vec<Value> {
        let first = self.events.len();
        for _ in 0..MAX_STEPS {
            let now = self.now();
            let next = self.schedule().into_iter().filter(|(at, _)| *at <= now).min();
            let Some((at, due)) = next else { break };
            self.cause = None;
            if let Err(error) = self.perform(at, &due) {
                tracing::warn!(?due, message = %error.message, "the stand-in could not perform what was due");
                break;
            }
        }
        self.events[first..].iter().map(|e| e.value.clone()).collect()
    }

    fn perform(&mut self, at: i64, due: &Due) -> Result<(), ApiError> {
        match due {
            Due::SessionExpires(id) => self.expire_session(id).map(drop),
            Due::TrialWillEnd(id) => {
                let subscription = self.subscription_value(id)?;
                self.trial_notices.insert(trial_notice_key(&subscription));
                self.record_event("customer.subscription.trial_will_end", subscription, None);
                Ok(())
            }
            Due::EndsAtPeriodEnd(id) => self.cancel_subscription(id).map(drop),
            Due::TrialEnds(id) => {
                let mut subscription = self.subscription_value(id)?;
                let (start, _) = current_period(&subscription, at);
                subscription["status"] = json!("active");
                subscription["billing_cycle_anchor"] = json!(at);
                for item in subscription["items"]["data"].as_array_mut().into_iter().flatten() {
                    let end = period_end(&item["price"], at);
                    item["current_period_start"] = json!(at);
                    item["current_period_end"] = json!(end);
                }
                self.start_period(id, subscription, (start, at))
            }
            Due::Renews(id) => {
                let mut subscription = self.subscription_value(id)?;
                let period = current_period(&subscription, at);
                renew_periods(&mut subscription);
                self.start_period(id, subscription, period)
            }
            Due::Attempt(invoice) => self.attempt(invoice),
        }
    }

    /// Stores `subscription` in its new period with a new invoice for `billed` (the period
    /// that ended), recording `customer.subscription.updated` and the invoice's events.
    fn start_period(&mut self, id: &str, mut subscription: Value, billed: (i64, i64)) -> Result<(), ApiError> {
        let invoice_id = self.new_id("in_", 24);
        subscription["latest_invoice"] = json!(invoice_id);
        let previous = self.replace_subscription(id, subscription.clone());
        self.record_updated(id, previous)?;
        self.issue_invoice(&subscription, &invoice_id, "subscription_cycle", billed);
        Ok(())
    }

    /// Attempts an open invoice's payment with its customer's card: paid, or failed with the
    /// next retry scheduled; after the last retry the subscription ends as the schedule says.
    fn attempt(&mut self, invoice_id: &str) -> Result<(), ApiError> {
        let invoice = self.invoice_value(invoice_id)?;
        if !self.declines(str_of(&invoice, "customer")) {
            return self.pay_invoice(invoice_id).map(drop);
        }
        if self.fail_invoice(invoice_id, "invoice.payment_failed")? == Retries::Scheduled {
            return Ok(());
        }
        let subscription = invoiced_subscription(&invoice);
        match self.dunning.after_retries {
            AfterRetries::Canceled => self
                .change_subscription(&subscription, "customer.subscription.deleted", |subscription, now| {
                    mark_canceled(subscription, now, "payment_failed");
                    Ok(())
                })
                .map(drop),
            AfterRetries::Unpaid => {
                let mut unpaid = self.subscription_value(&subscription)?;
                unpaid["status"] = json!("unpaid");
                let previous = self.replace_subscription(&subscription, unpaid);
                self.record_updated(&subscription, previous)
            }
        }
    }

    /// Whether `customer`'s card declines: its account's card was set to decline.
    fn declines(&self, customer: &str) -> bool {
        let account = self
            .trigger_account(customer)
            .or_else(|| self.customer(customer).and_then(|c| c.value["metadata"][ACCOUNT_METADATA_KEY].as_str()));
        account.is_some_and(|account| self.declining.contains(account))
    }

    /// Expires an open Checkout Session (it can no longer be paid) and records
    /// `checkout.session.expired`. Returns the session.
    pub(crate) fn expire_session(&mut self, id: &str) -> Result<Value, ApiError> {
        let session = self.session_mut(id).ok_or_else(|| ApiError::no_such("checkout.session", id))?;
        if session.stored.value["status"] != "open" {
            return Err(ApiError::invalid_state(format!("Checkout session {id} is not open.")));
        }
        let stored = &mut session.stored.value;
        stored["status"] = json!("expired");
        stored["url"] = Value::Null;
        let expired = stored.clone();
        self.record_event("checkout.session.expired", expired.clone(), None);
        Ok(expired)
    }
}
