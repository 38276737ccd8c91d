//! Accounts and their link to a Stripe customer: the port, its records and its contract.

use super::StoreError;
use crate::domain::facts::Tombstone;
use crate::domain::model::AccountId;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// An account's billing profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub account_id: AccountId,
    pub customer_id: String,
    pub created_at: i64,
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

/// What the customer index says of a Stripe customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerLink {
    /// The customer is the account's.
    Linked(AccountId),
    /// The customer was the account's and was retired (deleted in Stripe, or the account
    /// deleted): it is never linked again; only disputes about it still count for the account.
    Retired(AccountId),
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
    /// then, in one transaction, the customer's index becomes `Retired` (never linked again),
    /// the profile and projection are deleted (and, for `AccountDeleted`, the facts), and
    /// `tombstone` is stored. For `AccountDeleted` the tombstone's `deleted_at` makes every read
    /// forget what the deletion removes ([`Forgotten`]) from then on; [`AccountStore::purge`]
    /// deletes it. `CustomerDeleted` keeps grants, ledger and invoices. Rate windows stay.
    /// Idempotent.
    async fn retire(
        &self,
        account: &AccountId,
        customer_id: Option<&str>,
        retirement: Retirement,
        tombstone: &Tombstone,
    ) -> Result<(), StoreError>;

    /// Deletes up to `max` of the account's items that its deletion `forgotten` removes and
    /// that are still stored (grants, usage counters, invoices, ledger entries: see
    /// [`Forgotten`]), in batches (DynamoDB's `BatchWriteItem`, 25 at a time). Answers how many
    /// it deleted: 0 once none is left. Idempotent and resumable: each call finds what is left.
    async fn purge(&self, account: &AccountId, forgotten: Forgotten, max: usize) -> Result<usize, StoreError>;

    /// Notes that the deletion of `account` has items left to purge (the sync finishes it),
    /// replacing an earlier note. Idempotent.
    async fn owe_purge(&self, account: &AccountId, forgotten: Forgotten) -> Result<(), StoreError>;

    /// Up to `limit` deletions with items left to purge, by account.
    async fn owed_purges(&self, limit: usize) -> Result<Vec<(AccountId, Forgotten)>, StoreError>;

    /// The deletion of `account` is purged: its note goes. Nothing noted: nothing to do.
    async fn purge_done(&self, account: &AccountId) -> Result<(), StoreError>;
}

/// What an account's deletion at `at` (Unix seconds: the tombstone's `deleted_at`) removes,
/// and every read forgets until it is gone (DESIGN.md's account-partition table): whatever of
/// the account is stamped at or before that second (credit grants by `granted_at`, ledger
/// entries by `at_ms`, invoices by `created`), and its usage counters but, per metric, the one
/// of the window the deletion fell in (no quota starts again). Nothing new of the account is
/// stamped in that second: the account has no Stripe customer left, and a new one comes only
/// through a new checkout, paid later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forgotten {
    pub at: i64,
}

impl Forgotten {
    /// What the tombstone's deletion forgets, if the account was deleted.
    pub fn of(tombstone: &Tombstone) -> Option<Self> {
        tombstone.deleted_at.map(|at| Self { at })
    }

    /// Whether something stamped at `at` (Unix seconds) is forgotten.
    pub fn stamped(self, at: i64) -> bool {
        at <= self.at
    }

    /// Whether something stamped at `at_ms` (Unix milliseconds) is forgotten.
    pub fn stamped_ms(self, at_ms: i64) -> bool {
        at_ms.div_euclid(1000) <= self.at
    }

    /// Whether the counter of `metric` in the window starting at `window_start` is forgotten,
    /// among the account's `windows` (metric, window start) of every counter stored: it is, when
    /// a later window of its metric also started at or before the deletion.
    pub fn counter<'a>(
        self,
        metric: &str,
        window_start: i64,
        windows: impl IntoIterator<Item = (&'a str, i64)>,
    ) -> bool {
        window_start <= self.at
            && windows.into_iter().any(|(m, start)| m == metric && start > window_start && start <= self.at)
    }
}
