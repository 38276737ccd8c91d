//! The DynamoDB adapter of [`InvoiceStore`]: an invoice is one item of the account's partition
//! sorted after `INVOICE#` by `created`, written under a version condition together with a
//! check that its customer is still the account's.

use super::{DynamoStore, Keyed, to_item};
use crate::domain::invoices::Invoice;
use crate::domain::model::AccountId;
use crate::ports::StoreError;
use crate::ports::invoices::{InvoicePage, InvoiceStore};
use crate::ports::keys;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

/// Guards an invoice against an older (or the same) reading: only a strictly higher version
/// lands (see [`crate::domain::invoices`] for why the version only grows).
const IS_HIGHER_VERSION: &str = "attribute_not_exists(pk) OR #version < :version";

#[async_trait]
impl InvoiceStore for DynamoStore {
    async fn put_invoice(&self, account: &AccountId, invoice: &Invoice) -> Result<bool, StoreError> {
        let item = to_item(&Keyed::new(keys::account(account), &keys::invoice(invoice.created, &invoice.id), invoice))?;
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression(IS_HIGHER_VERSION)
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":version", AttributeValue::N(invoice.version.to_string()))
            .build()
            .expect("table, item and condition are set");
        let items =
            vec![TransactWriteItem::builder().put(put).build(), self.linked(account, &invoice.customer_id, false)];
        // Either condition failing is an answer, not an error: an older truth, or an unlinked customer.
        Ok(self.transact(items, "invoice").await?.is_ok())
    }

    async fn invoices(
        &self,
        account: &AccountId,
        limit: usize,
        after: Option<&str>,
    ) -> Result<InvoicePage, StoreError> {
        let after = after.filter(|sk| keys::is_invoice(sk));
        let (invoices, next) = self.newest_first(&keys::account(account), keys::INVOICE_PREFIX, limit, after).await?;
        Ok(InvoicePage { invoices, next })
    }
}
