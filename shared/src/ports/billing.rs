//! The `Billing` port: what Tollgate asks of Stripe, in domain terms. Its adapter is
//! `adapters::stripe::StripeBilling`; its double `testing::FakeBilling`.

use crate::domain::model::AccountId;
use crate::domain::snapshot::RemoteSubscription;
use async_trait::async_trait;

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

/// A subscription Checkout Session to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRequest {
    pub account: AccountId,
    pub customer_id: String,
    pub price_lookup_key: String,
    /// Trial days, for an account that never had a subscription.
    pub trial_days: Option<u32>,
    pub success_url: String,
    pub cancel_url: String,
    /// A credit pack (`plans.toml` id): the session is in payment mode for the pack's
    /// one-time price, and its metadata names the pack; `None`: a subscription.
    pub pack: Option<String>,
    /// When the session expires (Unix seconds, 30 minutes to 24 hours from its creation).
    pub expires_at: i64,
}

/// A created Checkout Session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSession {
    pub id: String,
    pub url: String,
    pub expires_at: i64,
}

/// A Stripe event as listed by `GET /v1/events`: its envelope as JSON, as a webhook would
/// carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteEvent {
    pub id: String,
    pub created: i64,
    pub payload: String,
}

/// A Stripe customer as adoption reads it: its id and metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCustomer {
    pub id: String,
    pub metadata: std::collections::BTreeMap<String, String>,
}

/// A dispute on a customer's charge: open, or closed won or lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteDispute {
    pub id: String,
    /// `Some(won)` once closed (`won` or `lost`); `None` while open.
    pub closed: Option<bool>,
}

/// A customer's disputes and the Stripe calls finding them took.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Disputes {
    pub disputes: Vec<RemoteDispute>,
    pub calls: u64,
}

/// One page of a Stripe list; `next` is the `starting_after` of the following page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// A meter event to send: `value` units of the meter named `event_name` for a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeterEvent<'a> {
    pub event_name: &'a str,
    pub customer_id: &'a str,
    pub value: u64,
    /// Stripe deduplicates events by identifier for at least 24 hours.
    pub identifier: &'a str,
    /// Unix seconds: within the past 35 days and at most 5 minutes ahead.
    pub timestamp: i64,
}

/// Stripe, as Tollgate uses it. Every write takes an idempotency key: a retried call with the
/// same key is answered with the first result and changes nothing more.
#[async_trait]
pub trait Billing: Send + Sync {
    /// Creates the Stripe customer for `account`. `idempotency_key` makes a retried create
    /// return the first customer instead of making a second.
    async fn create_customer(&self, account: &AccountId, idempotency_key: &str) -> Result<String, BillingError>;

    /// The customer a charge belongs to (disputes name only their charge), if any.
    async fn charge_customer(&self, charge_id: &str) -> Result<Option<String>, BillingError>;

    /// The invoices a PaymentIntent paid (Stripe's InvoicePayments listed by
    /// `payment[payment_intent]`): how a charge is tied to an invoice in this API version.
    async fn invoices_paid_by(&self, payment_intent: &str) -> Result<Vec<String>, BillingError>;

    /// A customer's newest invoices, in every status: one page of Stripe's largest (100), one
    /// call (the full sync's weekly backfill of invoices whose events never arrived; a customer
    /// is not invoiced 100 times a week). Invoices without an id (previews) are left out.
    async fn invoices(&self, customer_id: &str) -> Result<Vec<crate::domain::invoices::Invoice>, BillingError>;

    /// One page of the account's customers, newest first, with their metadata.
    async fn customers_page(&self, starting_after: Option<&str>) -> Result<Page<RemoteCustomer>, BillingError>;

    /// The disputes on a customer's charges (its newest 100): Stripe's dispute list has no
    /// customer filter, so its charges are listed and each disputed one's disputes read.
    async fn disputes_of(&self, customer_id: &str) -> Result<Disputes, BillingError>;

    /// Writes [`crate::domain::events::ACCOUNT_METADATA_KEY`] = `account` onto a customer (an
    /// adopted one), so that later events link it on their own.
    async fn tag_customer(
        &self,
        customer_id: &str,
        account: &AccountId,
        idempotency_key: &str,
    ) -> Result<(), BillingError>;

    /// Every subscription of a customer, in every status (`status=all`), every page.
    async fn subscriptions(&self, customer_id: &str) -> Result<Vec<RemoteSubscription>, BillingError>;

    /// One page of events of `types` created at or after `created_gte`, newest first.
    async fn events_page(
        &self,
        types: &[&str],
        created_gte: i64,
        starting_after: Option<&str>,
    ) -> Result<Page<RemoteEvent>, BillingError>;

    /// One event, by id, as Stripe still lists it (30 days); `NotFound` when it does not.
    async fn event(&self, event_id: &str) -> Result<RemoteEvent, BillingError>;

    /// One page of every subscription of the account, in every status, newest first.
    async fn subscriptions_page(&self, starting_after: Option<&str>) -> Result<Page<RemoteSubscription>, BillingError>;

    /// Creates a Checkout Session for the price with this lookup key: subscription mode, or
    /// payment mode for a credit pack; `client_reference_id` and metadata
    /// `tollgate_account_id` carry the account (and `tollgate_pack` the pack).
    async fn create_checkout_session(
        &self,
        request: &CheckoutRequest,
        idempotency_key: &str,
    ) -> Result<CheckoutSession, BillingError>;

    /// Expires an open Checkout Session now, so it can no longer be paid (Stripe sends
    /// `checkout.session.expired`). A session no longer open (paid, expired) or unknown is no
    /// error: nothing is left to expire.
    async fn expire_checkout_session(&self, session_id: &str, idempotency_key: &str) -> Result<(), BillingError>;

    /// Creates a customer portal session; answers its URL.
    async fn create_portal_session(
        &self,
        customer_id: &str,
        return_url: &str,
        idempotency_key: &str,
    ) -> Result<String, BillingError>;

    /// Moves the subscription item to the price with this lookup key, prorating.
    async fn change_price(
        &self,
        subscription_id: &str,
        item_id: &str,
        price_lookup_key: &str,
        idempotency_key: &str,
    ) -> Result<RemoteSubscription, BillingError>;

    /// Sends one meter event. A meter event whose identifier Stripe already holds was sent
    /// before: that is a success, not an error.
    async fn send_meter_event(&self, event: &MeterEvent<'_>) -> Result<(), BillingError>;

    /// Cancels the meter event sent with `identifier` (Stripe allows it for 24 hours after it
    /// received the event).
    async fn cancel_meter_event(&self, event_name: &str, identifier: &str) -> Result<(), BillingError>;

    /// What the meter named `event_name` summed for a customer over `[start, end)` (Unix
    /// seconds, whole minutes): Stripe's meter event summary. `NotFound` when no meter has
    /// that event name.
    async fn meter_total(&self, event_name: &str, customer_id: &str, start: i64, end: i64)
    -> Result<u64, BillingError>;

    /// Refunds in full what paid invoice `invoice_id` (its payment's PaymentIntent): `false`
    /// when the invoice has no payment to refund (a trial's, an unpaid one) or it was refunded
    /// already.
    async fn refund_invoice(&self, invoice_id: &str, idempotency_key: &str) -> Result<bool, BillingError>;

    /// Cancels at the period's end (`at_period_end`) or at once.
    async fn cancel(
        &self,
        subscription_id: &str,
        at_period_end: bool,
        idempotency_key: &str,
    ) -> Result<RemoteSubscription, BillingError>;
}
