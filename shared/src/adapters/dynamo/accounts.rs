//! The DynamoDB adapter of [`AccountStore`]: the profile and the customer index, written together; a retirement in one transaction.

use super::{DynamoStore, IS_NEW, Item, Keyed, to_item};
use crate::domain::facts::Tombstone;
use crate::domain::model::AccountId;
use crate::ports::StoreError;
use crate::ports::accounts::{Account, AccountStore, CustomerLink, Forgotten, Retirement};
use crate::ports::keys;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
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
        self.transact(items, "retire").await?.map_err(|_| StoreError::Conflict("retire"))
    }

    async fn purge(&self, account: &AccountId, forgotten: Forgotten, max: usize) -> Result<usize, StoreError> {
        let pk = keys::account(account);
        // The largest parts first, each looked at only while the page has room: ledger entries
        // by time and invoices by `created` (both sort by their stamp), then grants (the
        // balance is forfeited with the account, docs/api.md) and older usage counters.
        let ledger_to =
            format!("{}{:016}", keys::LEDGER_PREFIX, forgotten.at.saturating_add(1).saturating_mul(1000).max(0));
        let mut doomed = self.keys_between(&pk, keys::LEDGER_PREFIX, &ledger_to, max).await?;
        let invoices_to = format!("{}{:016}", keys::INVOICE_PREFIX, forgotten.at.saturating_add(1).max(0));
        let left = max.saturating_sub(doomed.len());
        doomed.extend(self.keys_between(&pk, keys::INVOICE_PREFIX, &invoices_to, left).await?);
        if doomed.len() < max {
            for item in self.query_prefix(&pk, keys::GRANT_PREFIX).await? {
                let granted_at = match item.get("granted_at") {
                    Some(AttributeValue::N(n)) => n.parse::<i64>().ok(),
                    _ => None,
                };
                if let (Some(AttributeValue::S(sk)), Some(at)) = (item.get("sk"), granted_at)
                    && forgotten.stamped(at)
                {
                    doomed.push(sk.clone());
                }
            }
        }
        if doomed.len() < max {
            // Every counter is read (one per metric and window: few), to know each metric's
            // window of the deletion.
            let (from, to) = (format!("{}USAGE#", keys::STATE_PREFIX), format!("{}USAGE$", keys::STATE_PREFIX));
            let windows: Vec<(String, String, i64)> = self
                .keys_between(&pk, &from, &to, usize::MAX)
                .await?
                .into_iter()
                .filter_map(|sk| keys::parse_usage(&sk).map(|(m, start)| (sk.clone(), m.to_owned(), start)))
                .collect();
            let older = windows.iter().filter(|(_, metric, start)| {
                forgotten.counter(metric, *start, windows.iter().map(|(_, m, s)| (m.as_str(), *s)))
            });
            doomed.extend(older.map(|(sk, _, _)| sk.clone()));
        }
        doomed.truncate(max);
        self.delete_batches(&pk, &doomed).await?;
        Ok(doomed.len())
    }

    async fn owe_purge(&self, account: &AccountId, forgotten: Forgotten) -> Result<(), StoreError> {
        let note = OwedPurge { account_id: account.clone(), forgotten };
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&Keyed::new(keys::SYNC.to_owned(), &keys::owed_purge(account), note))?))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| super::classify(e, "put"))
    }

    async fn owed_purges(&self, limit: usize) -> Result<Vec<(AccountId, Forgotten)>, StoreError> {
        let (notes, _) = self.newest_first::<OwedPurge>(keys::SYNC, keys::OWED_PURGE_PREFIX, limit, None).await?;
        Ok(notes.into_iter().map(|n| (n.account_id, n.forgotten)).collect())
    }

    async fn purge_done(&self, account: &AccountId) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(keys::SYNC.to_owned()))
            .key("sk", AttributeValue::S(keys::owed_purge(account)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| super::classify(e, "delete"))
    }
}

/// A deletion with items left to purge, noted for the sync.
#[derive(serde::Serialize, serde::Deserialize)]
struct OwedPurge {
    account_id: AccountId,
    forgotten: Forgotten,
}
