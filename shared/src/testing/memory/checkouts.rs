//! The in-memory [`CheckoutStore`], with the contracts of the DynamoDB one.

use super::MemoryStore;
use crate::domain::model::AccountId;
use crate::ports::StoreError;
use crate::ports::checkouts::{CheckoutStore, PendingCheckout};
use async_trait::async_trait;

#[async_trait]
impl CheckoutStore for MemoryStore {
    async fn pending_checkout(
        &self,
        account: &AccountId,
        request_key: &str,
        now: i64,
    ) -> Result<Option<PendingCheckout>, StoreError> {
        let tables = self.lock();
        Ok(tables.pending.get(&(account.clone(), request_key.to_owned())).filter(|p| p.valid_until > now).cloned())
    }

    async fn reserve_checkout(
        &self,
        account: &AccountId,
        pending: &PendingCheckout,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tables = self.lock();
        let key = (account.clone(), pending.request_key.clone());
        if tables.pending.get(&key).is_some_and(|p| p.valid_until > now) {
            return Err(StoreError::Conflict("checkout already pending"));
        }
        tables.pending.insert(key, pending.clone());
        Ok(())
    }

    async fn pending_checkouts(&self, account: &AccountId) -> Result<Vec<PendingCheckout>, StoreError> {
        let tables = self.lock();
        Ok(tables.pending.iter().filter(|((a, _), _)| a == account).map(|(_, p)| p.clone()).collect())
    }

    async fn complete_checkout(&self, account: &AccountId, pending: &PendingCheckout) -> Result<(), StoreError> {
        let mut tables = self.lock();
        match tables.pending.get_mut(&(account.clone(), pending.request_key.clone())) {
            Some(stored) if stored.nonce == pending.nonce => {
                *stored = pending.clone();
                Ok(())
            }
            _ => Err(StoreError::Conflict("reservation replaced")),
        }
    }
}
