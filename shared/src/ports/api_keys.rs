//! API keys: a lookup item per key hash and a listing item per account, never the key itself.

use super::StoreError;
use crate::domain::model::AccountId;
use async_trait::async_trait;

/// What creating an API key did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCreation {
    Created,
    /// The account already has `max_active` keys holding a slot: nothing was written.
    LimitReached,
}

/// API keys: a lookup item per key hash (`APIKEY#<sha256>` / `KEY`, what the authorizer
/// reads) and a listing item in the account's partition, outside its state range, holding the
/// same [`ApiKey`](crate::domain::apikeys::ApiKey) record; and a count of the account's keys that
/// hold a slot. Never the key itself.
#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// Stores a new key: its lookup and listing items (each only if absent) and one more slot
    /// taken, in one transaction, only while fewer than `max_active` slots are taken: exact
    /// under any concurrency. `LimitReached` when full; `Conflict` when the id or hash exists.
    async fn create_api_key(
        &self,
        key: &crate::domain::apikeys::ApiKey,
        max_active: u32,
    ) -> Result<KeyCreation, StoreError>;

    /// The key whose SHA-256 is `hash`, in one consistent `GetItem`.
    async fn api_key_by_hash(
        &self,
        hash: &crate::domain::apikeys::KeyHash,
    ) -> Result<Option<crate::domain::apikeys::ApiKey>, StoreError>;

    /// One of the account's keys, by id (consistent).
    async fn api_key(
        &self,
        account: &AccountId,
        id: &crate::domain::apikeys::KeyId,
    ) -> Result<Option<crate::domain::apikeys::ApiKey>, StoreError>;

    /// Every key of the account still stored (revoked and rotated-out keys until their TTL).
    async fn api_keys(&self, account: &AccountId) -> Result<Vec<crate::domain::apikeys::ApiKey>, StoreError>;

    /// Revokes `key` as read: `revoked_at` on both items, its slot freed if it held one, and
    /// both items set to expire (TTL) `retain_until`, in one transaction. `Conflict` when the
    /// stored key is no longer as read (revoked, rotated or deleted meanwhile): read it again.
    async fn revoke_api_key(
        &self,
        key: &crate::domain::apikeys::ApiKey,
        now: i64,
        retain_until: i64,
    ) -> Result<(), StoreError>;

    /// Rotates `old` as read to `successor`, in one transaction: the successor's items are
    /// written (only if absent) and take over `old`'s slot; `old` gets `replaced_by`, loses its
    /// slot and stays valid until `old_valid_until` (revoked at once when that is `now` or
    /// earlier), its items expiring (TTL) `retain_until`. `Conflict` when `old` is no longer as
    /// read or holds no slot (revoked or rotated already).
    async fn rotate_api_key(
        &self,
        old: &crate::domain::apikeys::ApiKey,
        successor: &crate::domain::apikeys::ApiKey,
        now: i64,
        old_valid_until: i64,
        retain_until: i64,
    ) -> Result<(), StoreError>;

    /// Records a use of `key` at `now` on both items, only if the stored `last_used_at` is
    /// [`LAST_USED_RESOLUTION_SECONDS`](crate::domain::apikeys::LAST_USED_RESOLUTION_SECONDS) old or
    /// more (or absent) and the key is still stored. Answers whether it wrote.
    async fn record_api_key_use(&self, key: &crate::domain::apikeys::ApiKey, now: i64) -> Result<bool, StoreError>;

    /// Deletes every key of the account (lookup items first, so each stops working before it
    /// leaves the list) and its slot count. Answers how many keys were deleted. Idempotent.
    async fn delete_api_keys(&self, account: &AccountId) -> Result<u32, StoreError>;
}
