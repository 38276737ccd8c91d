//! Notifications for the product's mailer: one message per thing a customer should hear about
//! (a failed payment, a trial ending, a dispute...), on an SQS FIFO queue of their own.
//!
//! Message schema (JSON), documented in docs/api.md (Notifications):
//! `{"id": "<kind>:<object id>", "kind", "account_id", "customer_id", "event_id", "event_type",
//!   "occurred_at": <unix seconds>, "object_id", "details": {...}}`.
//! Delivery is at least once; `id` is stable for one occurrence (so `invoice.paid` and
//! `invoice.payment_succeeded` of one invoice make one `payment_succeeded`), and serves as the
//! queue's deduplication id.

use serde::{Deserialize, Serialize};

/// What happened, from the customer's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    PaymentActionRequired,
    TrialWillEnd,
    PaymentSucceeded,
    PaymentFailed,
    DisputeOpened,
    DisputeClosed,
    Refunded,
    SubscriptionCanceled,
    /// A Checkout Session the account opened expired unpaid.
    CheckoutExpired,
    /// An account's usage of a metric reached an alert threshold of its limit.
    UsageThreshold,
    /// A credit consumption took the balance under the catalogue's low-balance mark.
    CreditsLow,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PaymentActionRequired => "payment_action_required",
            Self::TrialWillEnd => "trial_will_end",
            Self::PaymentSucceeded => "payment_succeeded",
            Self::PaymentFailed => "payment_failed",
            Self::DisputeOpened => "dispute_opened",
            Self::DisputeClosed => "dispute_closed",
            Self::Refunded => "refunded",
            Self::SubscriptionCanceled => "subscription_canceled",
            Self::CheckoutExpired => "checkout_expired",
            Self::UsageThreshold => "usage_threshold",
            Self::CreditsLow => "credits_low",
        }
    }
}

/// One notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub id: String,
    pub kind: Kind,
    pub account_id: String,
    pub customer_id: String,
    pub event_id: String,
    pub event_type: String,
    pub occurred_at: i64,
    pub object_id: String,
    pub details: serde_json::Value,
}
