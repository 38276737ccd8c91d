//! An account's invoices, projected from invoice events and the full sync's backfill.

use super::StoreError;
use crate::domain::model::AccountId;
use async_trait::async_trait;

/// A page of an account's invoices, newest first, and the cursor of the next one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InvoicePage {
    pub invoices: Vec<crate::domain::invoices::Invoice>,
    /// The sort key of the page's last invoice, when more follow.
    pub next: Option<String>,
}

impl InvoicePage {
    /// The page without the invoices the account's deletion forgets; they are the oldest, so
    /// once one is met nothing after it is the account's any more (no next page).
    pub fn forgetting(mut self, forgotten: Option<crate::ports::accounts::Forgotten>) -> Self {
        let Some(forgotten) = forgotten else { return self };
        let before = self.invoices.len();
        self.invoices.retain(|i| !forgotten.stamped(i.created));
        if self.invoices.len() < before {
            self.next = None;
        }
        self
    }
}

/// An account's invoices, in its partition outside its state range (they grow), projected from
/// invoice events and the full sync's backfill. Deleted with the account; kept when Stripe
/// deletes the customer.
#[async_trait]
pub trait InvoiceStore: Send + Sync {
    /// Stores `invoice` for `account`, in one transaction, only if no reading of it with an
    /// equal or higher `version` is stored (see [`crate::domain::invoices`]) and its customer is still
    /// linked to the account. Answers whether it wrote: `false` is an older (or the same)
    /// truth, or a customer unlinked meanwhile, and nothing changed. Idempotent.
    async fn put_invoice(
        &self,
        account: &AccountId,
        invoice: &crate::domain::invoices::Invoice,
    ) -> Result<bool, StoreError>;

    /// Up to `limit` of the account's invoices, newest first (by `created`, then id), after
    /// `after` (a previous page's `next`; any other value starts from the newest): one
    /// consistent `Query`.
    async fn invoices(&self, account: &AccountId, limit: usize, after: Option<&str>)
    -> Result<InvoicePage, StoreError>;
}
