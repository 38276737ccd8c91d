//! The store ports, one trait per aggregate (accounts, subscriptions and their facts, the event
//! log, checkouts, rate windows, the sync's bookkeeping), and their DynamoDB adapter. The
//! in-memory double (`testing::MemoryStore`, behind the `testing` feature) keeps the same
//! contracts; `shared/tests/store_contract.rs` holds both to them.

use crate::facts::Facts;
use crate::model::{AccountId, Projection, SubscriptionStatus};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub mod dynamo;
pub mod keys;

pub use dynamo::DynamoStore;

/// Optimistic writers of one rate window retry this often before answering "limited".
pub const RATE_WRITE_ATTEMPTS: usize = 16;

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

/// An account's billing profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub account_id: AccountId,
    pub customer_id: String,
    pub created_at: i64,
}

/// A Stripe event Tollgate has handled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessedEvent {
    pub event_id: String,
    pub event_type: String,
    /// Stripe's `created`, Unix seconds.
    pub created: i64,
    /// What handling it did, e.g. `applied`, `stale`, `ignored`.
    pub outcome: String,
    pub processed_at: i64,
}

/// What `EventLog::apply` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// The event was new: its record and its effect were committed together.
    Applied,
    /// The event was new but its projection was older than the stored one: the event is
    /// recorded as processed and the projection left alone.
    Stale,
    /// The event had been processed before: nothing was written.
    Duplicate,
}

/// Accounts and their link to a Stripe customer.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// The account's profile; `None` when it was never linked to a Stripe customer.
    async fn account(&self, account: &AccountId) -> Result<Option<Account>, StoreError>;

    /// Links `account` to `customer_id`, once: the profile and the customer index are written
    /// in one transaction, each only if absent. `Conflict` when the account already has a
    /// customer or the customer belongs to an account already; then nothing is written.
    async fn link_customer(&self, account: &Account) -> Result<(), StoreError>;

    /// The account a Stripe customer belongs to, if linked.
    async fn account_for_customer(&self, customer_id: &str) -> Result<Option<AccountId>, StoreError>;

    /// Removes every item of the account's partition (profile, projection, facts, pending
    /// checkouts, rate windows) and the index of `customer_id`. Idempotent: deleting what is
    /// gone succeeds.
    async fn delete_account_data(&self, account: &AccountId, customer_id: Option<&str>) -> Result<(), StoreError>;
}

/// The subscription projection, one per account.
#[async_trait]
pub trait SubscriptionStore: Send + Sync {
    /// The account's projection (state and facts combined, see `merge`); `None` when it has
    /// never had a subscription.
    async fn subscription(&self, account: &AccountId) -> Result<Option<Projection>, StoreError>;

    /// The facts recorded for the account (empty, revision 0, when none).
    async fn facts(&self, account: &AccountId) -> Result<Facts, StoreError>;

    /// Writes `projection` only if its `version` is newer than the stored one (or none is
    /// stored). `Conflict` when a newer or equal version is stored; then nothing is written.
    async fn put_subscription(&self, projection: &Projection) -> Result<(), StoreError>;
}

/// The record of processed Stripe events, written together with their effects.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Records `event`, writes `projection` (if any) and `facts` (if any) in one transaction:
    /// the record only if the event is new, the projection only if newer than the stored one,
    /// the facts only if their revision is still `facts.rev` (they are stored as `rev + 1`).
    /// When only the projection's condition fails, the record and facts are written without
    /// it (`Stale`). A duplicate writes nothing. `Conflict` when the facts changed meanwhile
    /// (nothing written; process the event again). Records expire after
    /// `EVENT_RECORD_TTL_DAYS` (past Stripe's 30-day retention, so a replay can never apply an
    /// event twice).
    async fn apply(
        &self,
        event: &ProcessedEvent,
        projection: Option<&Projection>,
        facts: Option<(&AccountId, &Facts)>,
    ) -> Result<ApplyOutcome, StoreError>;

    /// The record of an event, if it was processed.
    async fn processed(&self, event_id: &str) -> Result<Option<ProcessedEvent>, StoreError>;
}

/// A Checkout Session requested (or being requested) for one account, plan, interval and
/// redirect URLs. Its `nonce` is the Stripe idempotency key's unique part: every request that
/// finds the same reservation sends the same key, so Stripe answers them all with one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCheckout {
    /// What the request was (plan, interval, URLs), hashed.
    pub request_key: String,
    pub nonce: String,
    pub session_id: Option<String>,
    pub url: Option<String>,
    /// Unix seconds; a reservation past it is free to be replaced.
    pub valid_until: i64,
}

/// The outcome of asking a rate window for one more event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateOutcome {
    Allowed,
    Limited { retry_after_ms: i64 },
}

/// Checkout Sessions requested and not yet expired, per account and request.
#[async_trait]
pub trait CheckoutStore: Send + Sync {
    /// The pending checkout for `request_key`, if one exists that has not expired at `now`.
    async fn pending_checkout(
        &self,
        account: &AccountId,
        request_key: &str,
        now: i64,
    ) -> Result<Option<PendingCheckout>, StoreError>;

    /// Reserves `pending.request_key`: written only if no unexpired reservation exists at
    /// `now`. `Conflict` when one does (another request got there first).
    async fn reserve_checkout(
        &self,
        account: &AccountId,
        pending: &PendingCheckout,
        now: i64,
    ) -> Result<(), StoreError>;

    /// Stores the session created for a reservation, if the reservation is still `nonce`'s.
    /// `Conflict` when another request replaced it.
    async fn complete_checkout(&self, account: &AccountId, pending: &PendingCheckout) -> Result<(), StoreError>;
}

/// Rate windows shared by every instance, per account and name.
#[async_trait]
pub trait RateLimitStore: Send + Sync {
    /// Counts one event in the account's window `name` if `limit` allows it at `now_ms`; the
    /// window is shared by every instance. Never a conflict: racing writers retry internally.
    async fn take_rate(
        &self,
        account: &AccountId,
        name: &str,
        limit: crate::ratelimit::Limit,
        now_ms: i64,
    ) -> Result<RateOutcome, StoreError>;
}

/// Where the sync's replay of Stripe's event list stopped: the `created` second it reached
/// and the ids already handed over from that second (events of one second are listed again
/// and deduplicated, so none is skipped).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SyncCursor {
    pub created: i64,
    #[serde(default)]
    pub ids_at_created: Vec<String>,
    /// A reconciliation that stopped at its deadline resumes after this subscription.
    #[serde(default)]
    pub reconcile_after: Option<String>,
}

/// How the last sync run ended; `last_success_at` only moves on a run that finished.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SyncOutcome {
    pub mode: String,
    pub started_at: i64,
    pub finished_at: i64,
    pub last_success_at: Option<i64>,
    pub last_error: Option<String>,
    /// The run stopped at its deadline; the next run resumes from the cursor.
    pub partial: bool,
    pub replayed: u64,
    pub reconciled: u64,
    pub differed: u64,
}

/// The sync's bookkeeping.
#[async_trait]
pub trait SyncStore: Send + Sync {
    /// The saved cursor; `None` before the first run.
    async fn cursor(&self) -> Result<Option<SyncCursor>, StoreError>;
    /// Saves the cursor (unconditionally: one sync runs at a time, by the schedule's
    /// reserved concurrency of 1).
    async fn save_cursor(&self, cursor: &SyncCursor) -> Result<(), StoreError>;
    /// How the last run ended; `None` before the first run.
    async fn outcome(&self) -> Result<Option<SyncOutcome>, StoreError>;
    /// Saves how a run ended (unconditionally, as the cursor).
    async fn save_outcome(&self, outcome: &SyncOutcome) -> Result<(), StoreError>;
}

/// Every store port at once: what one single-table store provides.
pub trait Store: AccountStore + SubscriptionStore + EventLog + CheckoutStore + RateLimitStore + SyncStore {}

impl<T> Store for T where T: AccountStore + SubscriptionStore + EventLog + CheckoutStore + RateLimitStore + SyncStore {}

/// Combines the versioned state with the recorded facts: the facts are authoritative for
/// disputes, refunds and entitlements; grace comes from the first unsettled failed payment,
/// or, when no failure was seen, from the state (the snapshot saw `past_due` first).
pub fn merge(mut state: Projection, facts: &Facts) -> Projection {
    state.open_disputes = facts.open_disputes.iter().cloned().collect();
    state.refunded_period_end = facts.refunded_period_end;
    state.entitlements = facts.entitlements.clone();
    state.grace_until = match state.status {
        SubscriptionStatus::PastDue => facts.grace_until.or(state.grace_until),
        _ => None,
    };
    state
}

/// Processed-event records live this long: past Stripe's 30-day event retention.
pub const EVENT_RECORD_TTL_DAYS: i64 = 35;
