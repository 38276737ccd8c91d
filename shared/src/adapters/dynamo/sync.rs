//! The DynamoDB adapter of [`SyncStore`]: the cursor and the outcome, one item each.

use super::DynamoStore;
use crate::ports::StoreError;
use crate::ports::keys;
use crate::ports::sync::{SyncCursor, SyncOutcome, SyncStore};
use async_trait::async_trait;

#[async_trait]
impl SyncStore for DynamoStore {
    async fn cursor(&self) -> Result<Option<SyncCursor>, StoreError> {
        self.get(keys::SYNC.to_owned(), keys::SYNC_CURSOR).await
    }

    async fn save_cursor(&self, cursor: &SyncCursor) -> Result<(), StoreError> {
        self.put_plain(keys::SYNC, keys::SYNC_CURSOR, cursor).await
    }

    async fn outcome(&self) -> Result<Option<SyncOutcome>, StoreError> {
        self.get(keys::SYNC.to_owned(), keys::SYNC_OUTCOME).await
    }

    async fn save_outcome(&self, outcome: &SyncOutcome) -> Result<(), StoreError> {
        self.put_plain(keys::SYNC, keys::SYNC_OUTCOME, outcome).await
    }
}
