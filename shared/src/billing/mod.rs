//! The `Billing` port: what Tollgate asks of Stripe, in domain terms, and `StripeBilling`, its
//! adapter on async-stripe.

use crate::model::{AccountId, Interval, SubscriptionStatus};
use async_trait::async_trait;

pub mod retry;
pub mod stripe;

pub use retry::RetryPolicy;
pub use stripe::{STRIPE_API_VERSION, StripeBilling};

/// What a Stripe call can fail with, without Stripe's internals.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    /// Stripe refused the request (4xx other than 404 and 429); `message` is Stripe's own
    /// user-facing message, safe to show.
    #[error("stripe rejected the request: {message}")]
    Rejected { code: Option<String>, message: String },
    /// The object does not exist in Stripe.
    #[error("not found in stripe")]
    NotFound,
    /// Still rate limited after every retry.
    #[error("stripe rate limit")]
    RateLimited,
    /// Stripe could not be reached, timed out, failed (5xx) or answered something unreadable.
    #[error("stripe unavailable: {0}")]
    Unavailable(String),
}

/// A subscription as Stripe holds it now, reduced to what the projection needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSubscription {
    pub id: String,
    pub customer_id: String,
    pub status: SubscriptionStatus,
    pub price_lookup_key: Option<String>,
    pub interval: Option<Interval>,
    /// The subscription item carrying the plan's price (changed on a plan change).
    pub item_id: Option<String>,
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
    pub trial_end: Option<i64>,
    pub cancel_at_period_end: bool,
    pub created: i64,
    /// The account id Tollgate put in the subscription's metadata, if any.
    pub account_hint: Option<String>,
}

/// Stripe, as Tollgate uses it.
#[async_trait]
pub trait Billing: Send + Sync {
    /// Creates the Stripe customer for `account`. `idempotency_key` makes a retried create
    /// return the first customer instead of making a second.
    async fn create_customer(&self, account: &AccountId, idempotency_key: &str) -> Result<String, BillingError>;

    /// Every subscription of a customer, in every status (`status=all`), every page.
    async fn subscriptions(&self, customer_id: &str) -> Result<Vec<RemoteSubscription>, BillingError>;
}
