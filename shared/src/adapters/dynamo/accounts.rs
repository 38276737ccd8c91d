//! The DynamoDB adapter of [`AccountStore`]: the profile and the customer index, written together; a retirement in one transaction.

use super::{DynamoStore, IS_NEW, Item, Keyed, to_item};
use crate::domain::facts::Tombstone;
use crate::domain::model::AccountId;
use crate::ports::StoreError;
use crate::ports::accounts::{Account, AccountStore, CustomerLink, Retirement};
use crate::ports::keys;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use serde::{Deserialize, Serialize};

/// The customer index: the account a customer belongs to, or, once retired, the account it
/// was retired from (and none to link to, ever again).
#[derive(Serialize, Deserialize)]
struct CustomerIndex {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    account_id: Option<AccountId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retired_from: Option<AccountId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retired_at: Option<i64>,
}

#[async_trait]
impl AccountStore for DynamoStore {
    async fn account(&self, account: &AccountId) -> Result<Option<Account>, StoreError> {
        self.get(keys::account(account), keys::PROFILE).await
    }

    async fn link_customer(&self, account: &Account) -> Result<(), StoreError> {
        let profile = to_item(&Keyed::new(keys::account(&account.account_id), keys::PROFILE, account))?;
        let link = CustomerIndex { account_id: Some(account.account_id.clone()), retired_from: None, retired_at: None };
        let index = to_item(&Keyed::new(keys::customer(&account.customer_id), keys::CUSTOMER_ACCOUNT, link))?;
        let items = [self.put(profile, IS_NEW), self.put(index, IS_NEW)]
            .into_iter()
            .map(|p| TransactWriteItem::builder().put(p).build())
            .collect();
        self.transact(items, "account already linked")
            .await?
            .map_err(|_| StoreError::Conflict("account already linked"))
    }

    async fn customer_link(&self, customer_id: &str) -> Result<Option<CustomerLink>, StoreError> {
        let index: Option<CustomerIndex> = self.get(keys::customer(customer_id), keys::CUSTOMER_ACCOUNT).await?;
        Ok(index.and_then(|i| match (i.account_id, i.retired_from) {
            (Some(account), _) => Some(CustomerLink::Linked(account)),
            (None, Some(account)) => Some(CustomerLink::Retired(account)),
            (None, None) => None,
        }))
    }

    async fn retire(
        &self,
        account: &AccountId,
        customer_id: Option<&str>,
        retirement: Retirement,
        tombstone: &Tombstone,
    ) -> Result<(), StoreError> {
        let pk = keys::account(account);
        // Pending sessions were made for the retired customer: none may be handed out again.
        self.delete_prefix(&pk, keys::CHECKOUT_PREFIX).await?;
        let mut items = vec![self.delete(pk.clone(), keys::PROFILE), self.delete(pk.clone(), keys::SUBSCRIPTION)];
        if retirement == Retirement::AccountDeleted {
            items.push(self.delete(pk.clone(), keys::FACTS));
        }
        let put = |item: Item| {
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(item))
                        .build()
                        .expect("table and item are set"),
                )
                .build()
        };
        items.push(if tombstone.is_empty() {
            self.delete(pk.clone(), keys::TOMBSTONE)
        } else {
            put(to_item(&Keyed::new(pk.clone(), keys::TOMBSTONE, tombstone))?)
        });
        if let Some(customer) = customer_id {
            let marker = CustomerIndex {
                account_id: None,
                retired_from: Some(account.clone()),
                retired_at: tombstone.deleted_at,
            };
            items.push(put(to_item(&Keyed::new(keys::customer(customer), keys::CUSTOMER_ACCOUNT, marker))?));
        }
        self.transact(items, "retire").await?.map_err(|_| StoreError::Conflict("retire"))?;
        if retirement == Retirement::AccountDeleted {
            // The balance is forfeited with the account (docs/api.md): its grants and ledger go.
            self.delete_prefix(&pk, keys::GRANT_PREFIX).await?;
            self.delete_prefix(&pk, keys::LEDGER_PREFIX).await?;
            // Invoices go with the account (a customer deleted in Stripe keeps them).
            self.delete_prefix(&pk, keys::INVOICE_PREFIX).await?;
        }
        Ok(())
    }
}
