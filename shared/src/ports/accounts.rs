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
