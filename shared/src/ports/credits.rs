//! The credit ledger: grants, consumptions decided in one transaction, refunds, the ledger by page.

use super::{Refund, StoreError};
use crate::domain::model::AccountId;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

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
    /// A dispute on a pack's payment opened: what was left of it is held (negative).
    Freeze,
    /// The dispute was won: what was held counts again (positive).
    Release,
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
    /// On a `refund`: the credits not given back because the grant they were drawn from was
    /// reversed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withheld: Option<u64>,
    /// Who wrote it ([`crate::domain::actor`]): shown on operator reads only (`GET /credits`
    /// leaves it out); `None` on entries stored before actors were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
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
    pub draws: Vec<crate::domain::credits::Draw>,
    /// The consumption's ledger entry.
    pub entry: String,
    pub at_ms: i64,
    #[serde(default)]
    pub refunded: bool,
    /// Set on the record of a spend drawn in parts (it needed more grants than one transaction
    /// holds): how far it got. Each part has its own record, entry and draws.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<Split>,
}

/// How far a spend drawn in parts got: parts `0..parts` are committed, drawing `drawn` of its
/// cost. It is spent when `drawn` is its cost; until then a request with its key goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    pub parts: u32,
    pub drawn: u64,
}

impl LedgerEntry {
    /// The entry that records `grant`, at `at_ms`.
    pub fn grant_of(grant: &crate::domain::credits::Grant, at_ms: i64) -> Self {
        Self {
            withheld: None,
            id: format!("grant-{}", grant.id),
            kind: EntryKind::Grant,
            at_ms,
            credits: i64::try_from(grant.credits).unwrap_or(i64::MAX),
            event: None,
            quantity: None,
            grant: Some(grant.id.clone()),
            actor: grant.actor.clone(),
        }
    }

    /// The entry that records the expiry of what was left of `grant`, at its expiry.
    pub fn expiry_of(grant: &crate::domain::credits::Grant) -> Self {
        Self {
            withheld: None,
            id: format!("expiry-{}", grant.id),
            kind: EntryKind::Expiry,
            at_ms: grant.expires_at.unwrap_or_default().saturating_mul(1000),
            credits: i64::try_from(grant.remaining).map_or(i64::MIN, i64::saturating_neg),
            event: None,
            quantity: None,
            grant: Some(grant.id.clone()),
            actor: Some(crate::domain::actor::TOLLGATE.to_owned()),
        }
    }
}

impl CreditRecord {
    /// The ledger entry that gives this consumption back, written by `actor`, less the
    /// `withheld` credits drawn from grants reversed since.
    pub fn refund_entry(&self, at_ms: i64, actor: &str, withheld: u64) -> LedgerEntry {
        LedgerEntry {
            id: format!("refund-{}", self.entry),
            kind: EntryKind::Refund,
            at_ms,
            credits: i64::try_from(self.cost.saturating_sub(withheld)).unwrap_or(i64::MAX),
            event: Some(self.event.clone()),
            quantity: Some(self.quantity),
            grant: None,
            withheld: (withheld > 0).then_some(withheld),
            actor: Some(actor.to_owned()),
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
    /// Grants that never end which this spend empties (each drawn to exactly 0): they leave
    /// the account's state items some time after (DynamoDB's TTL), unless a refund gives back
    /// to them first.
    pub emptied: &'a [String],
    /// When set, each draw holds only while its grant holds exactly what it held in this
    /// read (not merely enough): the balance read before is then the balance at the commit,
    /// so a crossing of the low-balance mark is seen by exactly the spend that makes it.
    pub exact: Option<&'a [crate::domain::credits::Grant]>,
    /// When set, `record` is part `index` of the spend recorded under `key`, and `master` is
    /// that record as it stands after this part: written new with part 0, else only while it
    /// records exactly `index` parts and is not refunded.
    pub part: Option<Part<'a>>,
}

/// One part of a spend drawn in parts ([`Spend::part`]).
#[derive(Debug, Clone, Copy)]
pub struct Part<'a> {
    pub index: u32,
    pub master: &'a CreditRecord,
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
pub type CreditRefund = Refund<CreditRecord>;

/// A page of the ledger, newest first, and the cursor of the next one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LedgerPage {
    pub entries: Vec<LedgerEntry>,
    pub next: Option<String>,
}

impl LedgerPage {
    /// The page without the entries the account's deletion forgets; they are the oldest, so
    /// once one is met nothing after it is the account's any more (no next page).
    pub fn forgetting(mut self, forgotten: Option<crate::ports::accounts::Forgotten>) -> Self {
        let Some(forgotten) = forgotten else { return self };
        let before = self.entries.len();
        self.entries.retain(|e| !forgotten.stamped_ms(e.at_ms));
        if self.entries.len() < before {
            self.next = None;
        }
        self
    }
}

/// One step of a pack's grant through a dispute on its payment ([`CreditStore::dispute_grant`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisputeStep {
    /// Opened: hold what is left (`seen`, as read), unless a dispute closed or it was reversed.
    Freeze { seen: u64 },
    /// Won: what is held (`frozen`, as read) counts again.
    Release { frozen: u64 },
    /// Lost: what is held (`frozen`, as read) is gone; the grant is reversed.
    Forfeit { frozen: u64 },
    /// Closed won before its opening was seen: only remembered, so a late opening holds nothing.
    Closed,
}

/// Most grants one spend draws from: its transaction also holds the idempotency record and the
/// ledger entry, and DynamoDB takes 100 items at most.
pub const MAX_DRAWS: usize = 98;
/// Most grants one part of a spend drawn in parts draws from: its transaction also holds the
/// spend's record.
pub const PART_DRAWS: usize = MAX_DRAWS - 1;
/// Most grants merged into another at once (one transaction of 100 items).
pub const MAX_MERGED: usize = 99;

/// What writing a grant to a linked account did ([`CreditStore::grant_to_linked`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantWrite {
    Written,
    /// A grant with its id exists: nothing written.
    Exists,
    /// The account is not linked (never was, or was deleted meanwhile): nothing written.
    NotLinked,
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
        grant: &crate::domain::credits::Grant,
        entry: &LedgerEntry,
    ) -> Result<bool, StoreError>;

    /// Writes `grant` with its ledger entry, once, and only while the account is linked (its
    /// profile stored: not deleted), all in one conditional write: a plan's or a pack's grant
    /// racing `DELETE /account` never re-creates credits on the deleted account.
    async fn grant_to_linked(
        &self,
        account: &AccountId,
        grant: &crate::domain::credits::Grant,
        entry: &LedgerEntry,
    ) -> Result<GrantWrite, StoreError>;

    /// Moves the end of grant `id` to `until`, if it ends earlier (a plan grant follows its
    /// usage window when an interval change lengthened it); `false` when nothing changed.
    async fn extend_grant(&self, account: &AccountId, id: &str, until: i64) -> Result<bool, StoreError>;

    /// Commits a consumption in one transaction: the record only if the key is new, the entry,
    /// and each draw only if its grant is live and still holds it. A part of a spend drawn in
    /// parts ([`Spend::part`]) is `Contended` when its record exists or the spend's record is
    /// not as it expects.
    async fn spend(&self, spend: &Spend<'_>) -> Result<Spent, StoreError>;

    /// Gives back the consumption recorded under `key`, once, to the grants it was drawn from,
    /// with its refund entry, at `at_ms`, by `actor`; what was drawn from a reversed grant is
    /// withheld (the entry says how much). `Conflict` when a grant was reversed or deleted
    /// meanwhile (nothing written; refund again).
    /// `part` names one part of a spend drawn in parts instead.
    async fn refund_credits(
        &self,
        account: &AccountId,
        key: &str,
        part: Option<u32>,
        at_ms: i64,
        actor: &str,
    ) -> Result<CreditRefund, StoreError>;

    /// Marks the record of a spend drawn in parts refunded, so that no part is added to it any
    /// more (its parts are refunded each on their own); nothing when it is already.
    async fn mark_refunded(&self, account: &AccountId, key: &str) -> Result<(), StoreError>;

    /// Empties grant `grant` if it still holds exactly `seen` (what the caller read) and marks
    /// it reversed, with its `reversal` entry: `false` (nothing written) when it changed
    /// meanwhile; read it again.
    async fn reverse_grant(
        &self,
        account: &AccountId,
        grant: &str,
        seen: u64,
        entry: &LedgerEntry,
    ) -> Result<bool, StoreError>;

    /// Moves what is left of each of `from` (grant id and what was read of it) into grant
    /// `into`, in one conditional write: grants alike (same kind and end, no payment, none
    /// reversed or held) merged so that a spend can draw from fewer. `false` (nothing written)
    /// when one changed meanwhile. At most [`MAX_MERGED`] at once.
    async fn merge_grants(&self, account: &AccountId, into: &str, from: &[(String, u64)]) -> Result<bool, StoreError>;

    /// Moves grant `grant` one step through a dispute on the payment that bought it, with
    /// `entry` when the step changes the balance, in one conditional write: `false` (nothing
    /// written) when the grant is not as the step expects (read it again).
    async fn dispute_grant(
        &self,
        account: &AccountId,
        grant: &str,
        step: DisputeStep,
        entry: Option<&LedgerEntry>,
    ) -> Result<bool, StoreError>;

    /// The consumption recorded under `key`.
    async fn credit_record(&self, account: &AccountId, key: &str) -> Result<Option<CreditRecord>, StoreError>;

    /// Up to `limit` entries, newest first, after the cursor `after` (from a previous page).
    async fn ledger(&self, account: &AccountId, limit: usize, after: Option<&str>) -> Result<LedgerPage, StoreError>;
}
