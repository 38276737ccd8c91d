//! The in-memory [`InvoiceStore`], with the contracts of the DynamoDB one.

use super::MemoryStore;
use crate::domain::invoices::Invoice;
use crate::domain::model::AccountId;
use crate::ports::StoreError;
use crate::ports::invoices::{InvoicePage, InvoiceStore};
use crate::ports::keys;
use async_trait::async_trait;

#[async_trait]
impl InvoiceStore for MemoryStore {
    async fn put_invoice(&self, account: &AccountId, invoice: &Invoice) -> Result<bool, StoreError> {
        let mut tables = self.lock();
        if !tables.linked(account, &invoice.customer_id) {
            return Ok(false);
        }
        let invoices = tables.invoices.entry(account.clone()).or_default();
        let key = keys::invoice(invoice.created, &invoice.id);
        if invoices.get(&key).is_some_and(|stored| stored.version >= invoice.version) {
            return Ok(false);
        }
        invoices.insert(key, invoice.clone());
        Ok(true)
    }

    async fn invoices(
        &self,
        account: &AccountId,
        limit: usize,
        after: Option<&str>,
    ) -> Result<InvoicePage, StoreError> {
        let tables = self.lock();
        let Some(invoices) = tables.invoices.get(account) else { return Ok(InvoicePage::default()) };
        let after = after.filter(|sk| keys::is_invoice(sk));
        let mut newest_first =
            invoices.iter().rev().filter(|(sk, _)| after.is_none_or(|after| sk.as_str() < after)).peekable();
        let mut page = InvoicePage::default();
        while page.invoices.len() < limit {
            let Some((sk, invoice)) = newest_first.next() else { break };
            page.invoices.push(invoice.clone());
            page.next = Some(sk.clone());
        }
        if newest_first.peek().is_none() {
            page.next = None;
        }
        Ok(page)
    }
}
