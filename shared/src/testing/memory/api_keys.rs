//! The in-memory [`ApiKeyStore`], with the contracts of the DynamoDB one.

use super::MemoryStore;
use crate::domain::apikeys::{ApiKey, KeyHash, KeyId};
use crate::domain::model::AccountId;
use crate::ports::StoreError;
use crate::ports::api_keys::{ApiKeyStore, KeyCreation};
use async_trait::async_trait;

/// Whether the stored key is still as `read` for a change: not revoked, its slot as read.
fn as_read(stored: Option<&ApiKey>, read: &ApiKey) -> bool {
    stored.is_some_and(|s| s.revoked_at.is_none() && s.holds_slot == read.holds_slot)
}

#[async_trait]
impl ApiKeyStore for MemoryStore {
    async fn create_api_key(&self, key: &ApiKey, max_active: u32) -> Result<KeyCreation, StoreError> {
        let mut tables = self.lock();
        if tables.api_keys.contains_key(&key.id) || tables.api_keys.values().any(|k| k.hash == key.hash) {
            return Err(StoreError::Conflict("api key exists"));
        }
        let taken = tables.api_key_slots.entry(key.account_id.clone()).or_default();
        if *taken >= max_active {
            return Ok(KeyCreation::LimitReached);
        }
        *taken = taken.saturating_add(1);
        tables.api_keys.insert(key.id.clone(), key.clone());
        Ok(KeyCreation::Created)
    }

    async fn api_key_by_hash(&self, hash: &KeyHash) -> Result<Option<ApiKey>, StoreError> {
        Ok(self.lock().api_keys.values().find(|k| &k.hash == hash).cloned())
    }

    async fn api_key(&self, account: &AccountId, id: &KeyId) -> Result<Option<ApiKey>, StoreError> {
        Ok(self.lock().api_keys.get(id).filter(|k| &k.account_id == account).cloned())
    }

    async fn api_keys(&self, account: &AccountId) -> Result<Vec<ApiKey>, StoreError> {
        let tables = self.lock();
        let mut keys: Vec<ApiKey> = tables.api_keys.values().filter(|k| &k.account_id == account).cloned().collect();
        keys.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(keys)
    }

    async fn revoke_api_key(&self, key: &ApiKey, now: i64, _retain_until: i64) -> Result<(), StoreError> {
        let mut tables = self.lock();
        if !as_read(tables.api_keys.get(&key.id), key) {
            return Err(StoreError::Conflict("api key changed"));
        }
        if key.holds_slot {
            let taken = tables.api_key_slots.entry(key.account_id.clone()).or_default();
            *taken = taken.saturating_sub(1);
        }
        if let Some(stored) = tables.api_keys.get_mut(&key.id) {
            stored.revoked_at = Some(now);
            stored.holds_slot = false;
        }
        Ok(())
    }

    async fn rotate_api_key(
        &self,
        old: &ApiKey,
        successor: &ApiKey,
        now: i64,
        old_valid_until: i64,
        _retain_until: i64,
    ) -> Result<(), StoreError> {
        let mut tables = self.lock();
        if !old.holds_slot || !as_read(tables.api_keys.get(&old.id), old) {
            return Err(StoreError::Conflict("api key changed"));
        }
        if tables.api_keys.contains_key(&successor.id) || tables.api_keys.values().any(|k| k.hash == successor.hash) {
            return Err(StoreError::Conflict("api key changed"));
        }
        if let Some(stored) = tables.api_keys.get_mut(&old.id) {
            stored.replaced_by = Some(successor.id.clone());
            stored.holds_slot = false;
            if old_valid_until <= now {
                stored.revoked_at = Some(now);
            } else {
                stored.expires_at = Some(old_valid_until);
            }
        }
        tables.api_keys.insert(successor.id.clone(), successor.clone());
        Ok(())
    }

    async fn record_api_key_use(&self, key: &ApiKey, now: i64) -> Result<bool, StoreError> {
        let mut tables = self.lock();
        match tables.api_keys.get_mut(&key.id) {
            Some(stored) if stored.use_is_due(now) => {
                stored.last_used_at = Some(now);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_api_keys(&self, account: &AccountId) -> Result<u32, StoreError> {
        let mut tables = self.lock();
        let before = tables.api_keys.len();
        tables.api_keys.retain(|_, k| &k.account_id != account);
        tables.api_key_slots.remove(account);
        Ok(u32::try_from(before.saturating_sub(tables.api_keys.len())).unwrap_or(u32::MAX))
    }
}
