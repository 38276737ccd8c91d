//! The store ports, one trait per aggregate (accounts, subscriptions and their facts, the event
//! log, checkouts, rate windows, the sync's bookkeeping, API keys), and their DynamoDB adapter. The
//! in-memory double (`testing::MemoryStore`, behind the `testing` feature) keeps the same
//! contracts; `shared/tests/store_contract.rs` holds both to them.

use crate::facts::Facts;
use crate::model::{AccountId, Projection, SubscriptionStatus};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

pub mod capacity;
pub mod dynamo;
pub mod keys;
pub mod meter;

pub use dynamo::DynamoStore;
pub use meter::{CounterKey, DuePage, MeterCounter, MeterReport, MeterStore, Settlement};

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

/// An event that could not be processed and was passed over: a message that can never be
/// (it does not parse), or an event that kept failing in the sync. Kept for the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedEvent {
    /// The event id, or `message:<SQS message id>` when the body names none.
    pub id: String,
    pub event_type: Option<String>,
    /// Why it failed (no payload, no secret).
    pub error: String,
    pub failed_at: i64,
    /// Where it was passed over: `worker` or `sync`.
    pub source: String,
}

/// What stays of an account once its billing data is deleted (`DELETE /account`) or its
/// Stripe customer is (`customer.deleted`): only what prevents abuse, and no personal data.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Tombstone {
    /// The account has had a subscription: no trial is offered again.
    #[serde(default)]
    pub trial_used: bool,
    /// Disputes open or lost when the data went: they stay in the access decision.
    #[serde(default)]
    pub disputes: BTreeSet<String>,
    /// When `DELETE /account` last ran; `None` when only Stripe deleted a customer.
    #[serde(default)]
    pub deleted_at: Option<i64>,
    /// How many Stripe customers the account was unlinked from: the next customer is created
    /// under a new idempotency key (the old key would answer the old customer).
    #[serde(default)]
    pub customers_retired: u32,
}

impl Tombstone {
    /// Whether nothing is kept (no item need be written).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Why an account's link to its Stripe customer ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retirement {
    /// `DELETE /account`: profile, projection, facts and pending checkouts are deleted; rate
    /// windows stay until they expire.
    AccountDeleted,
    /// Stripe deleted the customer: profile, projection (the account is on Free) and pending
    /// checkouts (sessions for that customer) go; facts stay.
    CustomerDeleted,
}

/// One consistent read of an account's state items.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccountState {
    pub profile: Option<Account>,
    /// The projection combined with the facts and the tombstone (see [`merge`]); `None` when
    /// the account has no subscription.
    pub subscription: Option<Projection>,
    pub facts: Facts,
    pub tombstone: Tombstone,
    /// The account's usage counters (every metric, every window kept).
    pub usage: Vec<UsageCounter>,
    /// The account's credit grants, live or expired, with what is left of each.
    pub grants: Vec<crate::credits::Grant>,
}

/// A metric's count in one usage window, as the account's read sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageCounter {
    pub metric: String,
    pub window_start: i64,
    pub used: u64,
}

impl AccountState {
    /// The count of `metric` in the window that starts at `window_start`.
    pub fn used(&self, metric: &str, window_start: i64) -> u64 {
        self.usage.iter().find(|c| c.metric == metric && c.window_start == window_start).map_or(0, |c| c.used)
    }

    /// Disputes that refuse access whatever the plan: open or lost ones from the facts and
    /// those kept in the tombstone.
    pub fn disputes(&self) -> BTreeSet<String> {
        self.facts.open_disputes.union(&self.tombstone.disputes).cloned().collect()
    }

    /// Whether a trial may be offered: the account never had a subscription.
    pub fn trial_available(&self) -> bool {
        self.subscription.is_none() && !self.tombstone.trial_used
    }
}

/// What the customer index says of a Stripe customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerLink {
    /// The customer is the account's.
    Linked(AccountId),
    /// The customer was the account's and was retired (deleted in Stripe, or the account
    /// deleted): it is never linked again; only disputes about it still count for the account.
    Retired(AccountId),
}

/// What an event changes for one account, committed with its record.
#[derive(Debug, Clone, Copy)]
pub struct Effect<'a> {
    pub account: &'a AccountId,
    /// The customer the event is about: it must still be linked to `account` when the effect
    /// commits (or, when `retired`, still retired from it), so nothing about a retired
    /// customer but its disputes lands after the retirement.
    pub customer: &'a str,
    /// The customer is retired from `account`: the effect carries facts only.
    pub retired: bool,
    pub projection: Option<&'a Projection>,
    pub facts: Option<&'a Facts>,
}

/// What `EventLog::apply` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// The event was new: its record and its effect were committed together.
    Applied,
    /// The event was new but its projection was older than the stored one: the event is
    /// recorded as processed and the projection left alone.
    Stale,
    /// The customer is no longer linked to the account (deleted meanwhile): the event is
    /// recorded with no effect.
    Unlinked,
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
    /// customer, or the customer belongs to an account already or was retired; then nothing
    /// is written.
    async fn link_customer(&self, account: &Account) -> Result<(), StoreError>;

    /// What the customer index says of a Stripe customer; `None` when it was never linked.
    async fn customer_link(&self, customer_id: &str) -> Result<Option<CustomerLink>, StoreError>;

    /// The account a Stripe customer belongs to, if linked (`None` for a retired customer).
    async fn account_for_customer(&self, customer_id: &str) -> Result<Option<AccountId>, StoreError> {
        Ok(match self.customer_link(customer_id).await? {
            Some(CustomerLink::Linked(account)) => Some(account),
            _ => None,
        })
    }

    /// Ends the account's link to `customer_id` for good: its pending checkouts are deleted,
    /// then, in one transaction, the customer's index becomes `Retired` (never linked again), the profile and projection are deleted (and, for
    /// `AccountDeleted`, the facts), and `tombstone` is stored; for `AccountDeleted`, the
    /// grants, the ledger and the invoices are deleted after it (`CustomerDeleted` keeps them).
    /// Rate windows stay. Idempotent.
    async fn retire(
        &self,
        account: &AccountId,
        customer_id: Option<&str>,
        retirement: Retirement,
        tombstone: &Tombstone,
    ) -> Result<(), StoreError>;
}

/// The subscription projection, one per account, and the account's other state items.
#[async_trait]
pub trait SubscriptionStore: Send + Sync {
    /// Every state item of the account, in one consistent request.
    async fn state(&self, account: &AccountId) -> Result<AccountState, StoreError>;

    /// The account's projection (state, facts and tombstone combined, see [`merge`]); `None`
    /// when it has no subscription.
    async fn subscription(&self, account: &AccountId) -> Result<Option<Projection>, StoreError> {
        Ok(self.state(account).await?.subscription)
    }

    /// The facts recorded for the account (empty, revision 0, when none).
    async fn facts(&self, account: &AccountId) -> Result<Facts, StoreError> {
        Ok(self.state(account).await?.facts)
    }

    /// Writes `projection` only if its `version` is newer than the stored one (or none is
    /// stored) and its customer is still linked to its account. `Conflict` otherwise; then
    /// nothing is written.
    async fn put_subscription(&self, projection: &Projection) -> Result<(), StoreError>;
}

/// The record of processed Stripe events, written together with their effects.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Records `event` and writes its `effect` (if any) in one transaction: the record only if
    /// the event is new, the projection only if newer than the stored one, the facts only if
    /// their revision is still `facts.rev` (they are stored as `rev + 1`), and either only if
    /// the effect's customer is still linked to its account. When only the projection's
    /// condition fails, the record and facts are written without it (`Stale`); when the link
    /// is gone, the record alone (`Unlinked`). A duplicate writes nothing. `Conflict` when the
    /// facts changed meanwhile (nothing written; process the event again). Records expire
    /// after `EVENT_RECORD_TTL_DAYS` (past Stripe's 30-day retention, so a replay can never
    /// apply an event twice).
    async fn apply(&self, event: &ProcessedEvent, effect: Option<Effect<'_>>) -> Result<ApplyOutcome, StoreError>;

    /// The record of an event, if it was processed.
    async fn processed(&self, event_id: &str) -> Result<Option<ProcessedEvent>, StoreError>;

    /// Records an event passed over as unprocessable (overwriting an earlier record of the
    /// same id). Expires as processed-event records do.
    async fn record_failure(&self, failure: &FailedEvent) -> Result<(), StoreError>;

    /// The failure recorded for `id`, if any.
    async fn failure(&self, id: &str) -> Result<Option<FailedEvent>, StoreError>;
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
    /// Counts one event in the account's window `name` (the fixed window of `limit` that
    /// `now_ms` falls in) if fewer than `limit.limit` were counted there, in one conditional
    /// write: exact under any concurrency. The window is shared by every instance and kept
    /// until it ends.
    async fn take_rate(
        &self,
        account: &AccountId,
        name: &str,
        limit: crate::ratelimit::Limit,
        now_ms: i64,
    ) -> Result<RateOutcome, StoreError>;
}

/// Where the sync stands. The replay's position: the `created` second it reached and the ids
/// already handed over from that second (events of one second are listed again and
/// deduplicated, so none is skipped). Stripe lists events newest first, so the replay walks
/// down the list to the oldest page holding anything new (`scan_marks`), then hands pages
/// over oldest first, climbing back up the marks. Every field but `created` defaults, so a
/// cursor saved before a field existed still reads.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SyncCursor {
    pub created: i64,
    #[serde(default)]
    pub ids_at_created: Vec<String>,
    /// The `starting_after` of each page the walk down the list found below the newest, in
    /// the order found: each names the oldest event of the page above it.
    #[serde(default)]
    pub scan_marks: Vec<String>,
    /// The walk is over and the replay climbs: every event below the last mark was handed
    /// over, and the page above it is next.
    #[serde(default)]
    pub climbing: bool,
    /// The event the replay is stopped at because applying it failed for a cause that may pass,
    /// and in how many runs in a row it failed; passed over after `sync::MAX_EVENT_TRIES`.
    #[serde(default)]
    pub failing_event: Option<String>,
    #[serde(default)]
    pub failing_tries: u32,
    /// A reconciliation of every subscription is owed (a full run was asked for, or the cursor
    /// was unusable) and runs once the replay has caught up, however many runs that takes.
    #[serde(default)]
    pub reconcile_due: bool,
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
    /// Events passed over as unprocessable (recorded as `FailedEvent`s with source `sync`).
    #[serde(default)]
    pub passed_over: u64,
    pub reconciled: u64,
    pub differed: u64,
    /// Usage reported to Stripe Billing Meters, drift and failures included.
    #[serde(default)]
    pub meters: crate::app::meters::MeterOutcome,
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

/// What creating an API key did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCreation {
    Created,
    /// The account already has `max_active` keys holding a slot: nothing was written.
    LimitReached,
}

/// API keys: a lookup item per key hash (`APIKEY#<sha256>` / `KEY`, what the authorizer
/// reads) and a listing item in the account's partition, outside its state range, holding the
/// same [`ApiKey`](crate::apikeys::ApiKey) record; and a count of the account's keys that
/// hold a slot. Never the key itself.
#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// Stores a new key: its lookup and listing items (each only if absent) and one more slot
    /// taken, in one transaction, only while fewer than `max_active` slots are taken: exact
    /// under any concurrency. `LimitReached` when full; `Conflict` when the id or hash exists.
    async fn create_api_key(&self, key: &crate::apikeys::ApiKey, max_active: u32) -> Result<KeyCreation, StoreError>;

    /// The key whose SHA-256 is `hash`, in one consistent `GetItem`.
    async fn api_key_by_hash(
        &self,
        hash: &crate::apikeys::KeyHash,
    ) -> Result<Option<crate::apikeys::ApiKey>, StoreError>;

    /// One of the account's keys, by id (consistent).
    async fn api_key(
        &self,
        account: &AccountId,
        id: &crate::apikeys::KeyId,
    ) -> Result<Option<crate::apikeys::ApiKey>, StoreError>;

    /// Every key of the account still stored (revoked and rotated-out keys until their TTL).
    async fn api_keys(&self, account: &AccountId) -> Result<Vec<crate::apikeys::ApiKey>, StoreError>;

    /// Revokes `key` as read: `revoked_at` on both items, its slot freed if it held one, and
    /// both items set to expire (TTL) `retain_until`, in one transaction. `Conflict` when the
    /// stored key is no longer as read (revoked, rotated or deleted meanwhile): read it again.
    async fn revoke_api_key(&self, key: &crate::apikeys::ApiKey, now: i64, retain_until: i64)
    -> Result<(), StoreError>;

    /// Rotates `old` as read to `successor`, in one transaction: the successor's items are
    /// written (only if absent) and take over `old`'s slot; `old` gets `replaced_by`, loses its
    /// slot and stays valid until `old_valid_until` (revoked at once when that is `now` or
    /// earlier), its items expiring (TTL) `retain_until`. `Conflict` when `old` is no longer as
    /// read or holds no slot (revoked or rotated already).
    async fn rotate_api_key(
        &self,
        old: &crate::apikeys::ApiKey,
        successor: &crate::apikeys::ApiKey,
        now: i64,
        old_valid_until: i64,
        retain_until: i64,
    ) -> Result<(), StoreError>;

    /// Records a use of `key` at `now` on both items, only if the stored `last_used_at` is
    /// [`LAST_USED_RESOLUTION_SECONDS`](crate::apikeys::LAST_USED_RESOLUTION_SECONDS) old or
    /// more (or absent) and the key is still stored. Answers whether it wrote.
    async fn record_api_key_use(&self, key: &crate::apikeys::ApiKey, now: i64) -> Result<bool, StoreError>;

    /// Deletes every key of the account (lookup items first, so each stops working before it
    /// leaves the list) and its slot count. Answers how many keys were deleted. Idempotent.
    async fn delete_api_keys(&self, account: &AccountId) -> Result<u32, StoreError>;
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

/// A page of an account's invoices, newest first, and the cursor of the next one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InvoicePage {
    pub invoices: Vec<crate::invoices::Invoice>,
    /// The sort key of the page's last invoice, when more follow.
    pub next: Option<String>,
}

/// An account's invoices, in its partition outside its state range (they grow), projected from
/// invoice events and the full sync's backfill. Deleted with the account; kept when Stripe
/// deletes the customer.
#[async_trait]
pub trait InvoiceStore: Send + Sync {
    /// Stores `invoice` for `account`, in one transaction, only if no reading of it with an
    /// equal or higher `version` is stored (see [`crate::invoices`]) and its customer is still
    /// linked to the account. Answers whether it wrote: `false` is an older (or the same)
    /// truth, or a customer unlinked meanwhile, and nothing changed. Idempotent.
    async fn put_invoice(&self, account: &AccountId, invoice: &crate::invoices::Invoice) -> Result<bool, StoreError>;

    /// Up to `limit` of the account's invoices, newest first (by `created`, then id), after
    /// `after` (a previous page's `next`; any other value starts from the newest): one
    /// consistent `Query`.
    async fn invoices(&self, account: &AccountId, limit: usize, after: Option<&str>)
    -> Result<InvoicePage, StoreError>;
}

/// What changed an account's credits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Grant,
    Consumption,
    Refund,
    Expiry,
    Reversal,
}

/// One entry of the credit ledger (append-only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LedgerEntry {
    pub id: String,
    pub kind: EntryKind,
    /// Unix milliseconds (the ledger's order, newest first).
    pub at_ms: i64,
    /// The change to the balance: positive for grants and refunds.
    pub credits: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<u64>,
    /// The grant an entry of kind `grant`, `expiry` or `reversal` is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
}

/// One credit consumption, as its idempotency record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditRecord {
    /// What was asked (event and quantity), hashed: the same key with another request is a
    /// mismatch, not a replay.
    pub request: String,
    pub event: String,
    pub quantity: u64,
    pub cost: u64,
    pub draws: Vec<crate::credits::Draw>,
    /// The consumption's ledger entry.
    pub entry: String,
    pub at_ms: i64,
    #[serde(default)]
    pub refunded: bool,
}

impl LedgerEntry {
    /// The entry that records `grant`, at `at_ms`.
    pub fn grant_of(grant: &crate::credits::Grant, at_ms: i64) -> Self {
        Self {
            id: format!("grant-{}", grant.id),
            kind: EntryKind::Grant,
            at_ms,
            credits: i64::try_from(grant.credits).unwrap_or(i64::MAX),
            event: None,
            quantity: None,
            grant: Some(grant.id.clone()),
        }
    }
}

impl LedgerEntry {
    /// The entry that records the expiry of what was left of `grant`, at its expiry.
    pub fn expiry_of(grant: &crate::credits::Grant) -> Self {
        Self {
            id: format!("expiry-{}", grant.id),
            kind: EntryKind::Expiry,
            at_ms: grant.expires_at.unwrap_or_default().saturating_mul(1000),
            credits: i64::try_from(grant.remaining).map_or(i64::MIN, i64::saturating_neg),
            event: None,
            quantity: None,
            grant: Some(grant.id.clone()),
        }
    }
}

impl CreditRecord {
    /// The ledger entry that gives this consumption back.
    pub fn refund_entry(&self, at_ms: i64) -> LedgerEntry {
        LedgerEntry {
            id: format!("refund-{}", self.entry),
            kind: EntryKind::Refund,
            at_ms,
            credits: i64::try_from(self.cost).unwrap_or(i64::MAX),
            event: Some(self.event.clone()),
            quantity: Some(self.quantity),
            grant: None,
        }
    }
}

/// A consumption to commit: its record, its ledger entry and its draws, at `now` (the draws
/// must still be there and their grants live).
#[derive(Debug, Clone, Copy)]
pub struct Spend<'a> {
    pub account: &'a AccountId,
    pub key: &'a str,
    pub record: &'a CreditRecord,
    pub entry: &'a LedgerEntry,
    pub now: i64,
}

/// What [`CreditStore::spend`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spent {
    /// Committed: the draws, the entry and the record, together.
    Done,
    /// The key was used before: nothing changed; its record.
    Replayed(CreditRecord),
    /// A grant no longer holds its draw (spent or expired meanwhile): nothing changed; read
    /// the grants again and plan anew.
    Contended,
}

/// What [`CreditStore::refund_credits`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreditRefund {
    Refunded(CreditRecord),
    AlreadyRefunded(CreditRecord),
    Unknown,
}

/// A page of the ledger, newest first, and the cursor of the next one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LedgerPage {
    pub entries: Vec<LedgerEntry>,
    pub next: Option<String>,
}

/// The credit ledger: grants (read with the account's state), consumptions decided in one
/// transaction with their entry and idempotency record, refunds, the ledger by page.
#[async_trait]
pub trait CreditStore: Send + Sync {
    /// Writes `grant` with its ledger entry, once: `false` (and nothing written) when a grant
    /// with its id exists.
    async fn grant(
        &self,
        account: &AccountId,
        grant: &crate::credits::Grant,
        entry: &LedgerEntry,
    ) -> Result<bool, StoreError>;

    /// Commits a consumption in one transaction: the record only if the key is new, the entry,
    /// and each draw only if its grant is live and still holds it.
    async fn spend(&self, spend: &Spend<'_>) -> Result<Spent, StoreError>;

    /// Gives back the consumption recorded under `key`, once, to the grants it was drawn from,
    /// with its refund entry, at `at_ms`.
    async fn refund_credits(&self, account: &AccountId, key: &str, at_ms: i64) -> Result<CreditRefund, StoreError>;

    /// Empties grant `grant` if it still holds exactly `seen` (what the caller read), with its
    /// `reversal` entry: `false` (nothing written) when it changed meanwhile; read it again.
    async fn reverse_grant(
        &self,
        account: &AccountId,
        grant: &str,
        seen: u64,
        entry: &LedgerEntry,
    ) -> Result<bool, StoreError>;

    /// The consumption recorded under `key`.
    async fn credit_record(&self, account: &AccountId, key: &str) -> Result<Option<CreditRecord>, StoreError>;

    /// Up to `limit` entries, newest first, after the cursor `after` (from a previous page).
    async fn ledger(&self, account: &AccountId, limit: usize, after: Option<&str>) -> Result<LedgerPage, StoreError>;
}

/// One consumption of a metric, as its idempotency record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// What was asked (metric and quantity), hashed: the same key with another request is a
    /// mismatch, not a replay.
    pub request: String,
    pub metric: String,
    pub quantity: u64,
    pub window: crate::usage::Window,
    pub at: i64,
    #[serde(default)]
    pub refunded: bool,
}

/// A consumption to decide.
#[derive(Debug, Clone, Copy)]
pub struct Consumption<'a> {
    pub account: &'a AccountId,
    /// The caller's idempotency key.
    pub key: &'a str,
    pub record: &'a UsageRecord,
    /// The metric's limit in the record's window; `None` counts and never refuses.
    pub limit: Option<u64>,
    /// The per-minute request limit; `None` is unlimited.
    pub rate: Option<crate::ratelimit::Limit>,
    /// The metric is reported to a Stripe meter: its counter is listed as due for the sync.
    pub metered: bool,
    pub now_ms: i64,
}

/// A metric's count in a window and the requests counted in the current per-minute window,
/// read together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    pub used: u64,
    /// Requests in the per-minute window (0 without a per-minute limit).
    pub requests: u64,
}

/// What [`UsageStore::consume`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consumed {
    /// Counted, with its idempotency record; the tally right after.
    Counted(Tally),
    /// The key was used before: nothing counted; its record.
    Replayed(UsageRecord),
    /// Over the per-minute limit: nothing counted, no record.
    RateLimited { retry_after_ms: i64 },
    /// Over the quota: nothing counted, no record; the tally as it stands.
    QuotaExceeded(Tally),
}

/// What [`UsageStore::refund`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refunded {
    /// The consumption was reversed now.
    Refunded(UsageRecord),
    /// It had been reversed before: nothing changed.
    AlreadyRefunded(UsageRecord),
    /// No consumption was recorded under that key.
    Unknown,
}

/// Usage counters, decided exactly.
#[async_trait]
pub trait UsageStore: Send + Sync {
    /// Decides one consumption in one transaction: the idempotency record is written only if
    /// the key is new, the request counted in the per-minute window only if it has room, and
    /// the quantity added to the metric's counter only if it stays within the limit. All or
    /// nothing: a refusal (or a failed write) leaves no record, so a retry is decided afresh.
    async fn consume(&self, consumption: &Consumption<'_>) -> Result<Consumed, StoreError>;

    /// Reverses the consumption recorded under `key`, once, in one transaction with its record.
    async fn refund(&self, account: &AccountId, key: &str) -> Result<Refunded, StoreError>;

    /// The count of `metric` in `window` and, with `rate_window_ms` (a per-minute window's
    /// start), the requests counted in that window: one read.
    async fn tally(
        &self,
        account: &AccountId,
        metric: &str,
        window: &crate::usage::Window,
        rate_window_ms: Option<i64>,
    ) -> Result<Tally, StoreError>;

    /// The count of `metric` in `window`.
    async fn used(&self, account: &AccountId, metric: &str, window: &crate::usage::Window) -> Result<u64, StoreError> {
        Ok(self.tally(account, metric, window, None).await?.used)
    }
}

/// Combines the versioned state with the recorded facts and the tombstone: the facts are
/// authoritative for refunds and entitlements, disputes come from the facts and the
/// tombstone; grace comes from the first unsettled failed payment, or, when no failure was
/// seen, from the state (the snapshot saw `past_due` first).
pub fn merge(mut state: Projection, facts: &Facts, tombstone: &Tombstone) -> Projection {
    state.open_disputes = facts.open_disputes.union(&tombstone.disputes).cloned().collect();
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

/// When a record written at `at` (Unix seconds) expires.
pub fn record_expiry(at: i64) -> i64 {
    at.saturating_add(EVENT_RECORD_TTL_DAYS.saturating_mul(crate::access::DAY))
}
