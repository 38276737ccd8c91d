//! The in-memory [`AccountStore`], with the contracts of the DynamoDB one.

use super::MemoryStore;
use crate::domain::facts::Tombstone;
use crate::domain::model::AccountId;
use crate::ports::StoreError;
use crate::ports::accounts::{Account, AccountStore, CustomerLink, Forgotten, Retirement};
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

    async fn purge(&self, account: &AccountId, forgotten: Forgotten, max: usize) -> Result<usize, StoreError> {
        let mut tables = self.lock();
        let tables = &mut *tables;
        let mut deleted: usize = 0;
        // As DynamoDB's: the ledger and invoices first (each sorted by its stamp, so what is
        // forgotten is their start), then grants and older counters, while the page has room.
        if let Some(ledger) = tables.ledger.get_mut(account) {
            let doomed: Vec<String> = ledger
                .iter()
                .take_while(|(_, e)| forgotten.stamped_ms(e.at_ms))
                .take(max)
                .map(|(sk, _)| sk.clone())
                .collect();
            for sk in &doomed {
                ledger.remove(sk);
            }
            deleted = deleted.saturating_add(doomed.len());
        }
        if let Some(invoices) = tables.invoices.get_mut(account) {
            let doomed: Vec<String> = invoices
                .iter()
                .take_while(|(_, i)| forgotten.stamped(i.created))
                .take(max.saturating_sub(deleted))
                .map(|(sk, _)| sk.clone())
                .collect();
            for sk in &doomed {
                invoices.remove(sk);
            }
            deleted = deleted.saturating_add(doomed.len());
        }
        if let Some(grants) = tables.grants.get_mut(account) {
            let doomed: Vec<String> = grants
                .iter()
                .filter(|(_, g)| forgotten.stamped(g.granted_at))
                .take(max.saturating_sub(deleted))
                .map(|(id, _)| id.clone())
                .collect();
            for id in &doomed {
                grants.remove(id);
            }
            deleted = deleted.saturating_add(doomed.len());
        }
        let windows: Vec<(String, i64)> =
            tables.usage.keys().filter(|(a, _, _)| a == account).map(|(_, m, s)| (m.clone(), *s)).collect();
        let older: Vec<(String, i64)> = windows
            .iter()
            .filter(|(m, s)| forgotten.counter(m, *s, windows.iter().map(|(m, s)| (m.as_str(), *s))))
            .take(max.saturating_sub(deleted))
            .cloned()
            .collect();
        for (metric, start) in older {
            let key = (account.clone(), metric, start);
            tables.usage.remove(&key);
            tables.meters.remove(&key);
            deleted = deleted.saturating_add(1);
        }
        Ok(deleted)
    }

    async fn owe_purge(&self, account: &AccountId, forgotten: Forgotten) -> Result<(), StoreError> {
        self.lock().owed_purges.insert(account.clone(), forgotten);
        Ok(())
    }

    async fn owed_purges(&self, limit: usize) -> Result<Vec<(AccountId, Forgotten)>, StoreError> {
        Ok(self.lock().owed_purges.iter().take(limit).map(|(a, f)| (a.clone(), *f)).collect())
    }

    async fn purge_done(&self, account: &AccountId) -> Result<(), StoreError> {
        self.lock().owed_purges.remove(account);
        Ok(())
    }
}
