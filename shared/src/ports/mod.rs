//! The ports: one trait per aggregate, each file holding the trait, its records and its `///`
//! contract. The store's aggregates each have their DynamoDB adapter in
//! `adapters::dynamo::<name>` and their in-memory double in `testing::memory::<name>`, by the
//! same file name; `shared/tests/store_contract.rs` holds both to the contracts. Besides the
//! store: Stripe (`billing`), the event queue (`queue`), notifications (`notifier`), the clock
//! (`clock`) and the alarmed counts (`metrics`).

pub mod accounts;
pub mod api_keys;
pub mod billing;
pub mod checkouts;
pub mod clock;
pub mod credits;
pub mod events;
pub mod invoices;
pub mod keys;
pub mod meter;
pub mod metrics;
pub mod notifier;
pub mod queue;
pub mod rate;
pub mod subscriptions;
pub mod sync;
pub mod usage;

use accounts::AccountStore;
use api_keys::ApiKeyStore;
use checkouts::CheckoutStore;
use credits::CreditStore;
use events::EventLog;
use invoices::InvoiceStore;
use meter::MeterStore;
use rate::RateLimitStore;
use subscriptions::SubscriptionStore;
use sync::SyncStore;
use usage::UsageStore;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a store operation can fail with. A failed condition (`Conflict`) is never confused
/// with the store being throttled or unreachable: the first is an answer, the others are
/// worth a retry.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write lost: the item exists already, or a newer version is stored.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// DynamoDB refused for capacity; retry later.
    #[error("store throttled")]
    Throttled(#[source] BoxError),
    /// DynamoDB could not be reached or failed.
    #[error("store unavailable")]
    Unavailable(#[source] BoxError),
    /// An item could not be read as the type it should hold.
    #[error("corrupt item: {0}")]
    Corrupt(String),
}

/// What reversing a consumption recorded under an idempotency key did (usage and credits
/// alike), with the consumption's record `R`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refund<R> {
    /// The consumption was reversed now.
    Refunded(R),
    /// It had been reversed before: nothing changed.
    AlreadyRefunded(R),
    /// No consumption was recorded under that key.
    Unknown,
}

/// Every store port at once: what one single-table store provides.
pub trait Store:
    AccountStore
    + SubscriptionStore
    + EventLog
    + CheckoutStore
    + RateLimitStore
    + SyncStore
    + ApiKeyStore
    + UsageStore
    + CreditStore
    + InvoiceStore
    + MeterStore
{
}

impl<T> Store for T where
    T: AccountStore
        + SubscriptionStore
        + EventLog
        + CheckoutStore
        + RateLimitStore
        + SyncStore
        + ApiKeyStore
        + UsageStore
        + CreditStore
        + InvoiceStore
        + MeterStore
{
}
