//! The in-memory [`AccountStore`], with the contracts of the DynamoDB one.

use super::MemoryStore;
use crate::domain::facts::Tombstone;
use crate::domain::model::AccountId;
use crate::ports::StoreError;
use crate::ports::accounts::{Account, AccountStore, CustomerLink, Retirement};
use async_trait::async_trait;

#[async_trait]
impl AccountStore for MemoryStore {
    async fn account(&self, account: &AccountId) -> Result<Option<Account>, StoreError> {
        Ok(self.lock().accounts.get(account).cloned())
    }

    async fn link_customer(&self, account: &Account) -> Result<(), StoreError> {
        let mut tables = self.lock();
        if tables.accounts.contains_key(&account.account_id) || tables.customers.contains_key(&account.customer_id) {
            return Err(StoreError::Conflict("account already linked"));
        }
        tables.accounts.insert(account.account_id.clone(), account.clone());
        tables.customers.insert(account.customer_id.clone(), CustomerLink::Linked(account.account_id.clone()));
        Ok(())
    }

    async fn customer_link(&self, customer_id: &str) -> Result<Option<CustomerLink>, StoreError> {
        Ok(self.lock().customers.get(customer_id).cloned())
    }

    async fn retire(
        &self,
        account: &AccountId,
        customer_id: Option<&str>,
        retirement: Retirement,
        tombstone: &Tombstone,
    ) -> Result<(), StoreError> {
        let mut tables = self.lock();
        tables.accounts.remove(account);
        tables.subscriptions.remove(account);
        tables.pending.retain(|(a, _), _| a != account);
        if retirement == Retirement::AccountDeleted {
            tables.facts.remove(account);
            tables.grants.remove(account);
            tables.ledger.remove(account);
            tables.invoices.remove(account);
        }
        if tombstone.is_empty() {
            tables.tombstones.remove(account);
        } else {
            tables.tombstones.insert(account.clone(), tombstone.clone());
        }
        if let Some(customer) = customer_id {
            tables.customers.insert(customer.to_owned(), CustomerLink::Retired(account.clone()));
        }
        Ok(())
    }
}
