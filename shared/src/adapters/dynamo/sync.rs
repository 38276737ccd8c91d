//! The DynamoDB adapter of [`SyncStore`]: the cursor, the outcome and the meter pass's
//! position, one item each.

use super::DynamoStore;
use crate::ports::StoreError;
use crate::ports::keys;
use crate::ports::meter::MeterPosition;
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

    async fn meter_position(&self) -> Result<Option<MeterPosition>, StoreError> {
        self.get(keys::SYNC.to_owned(), keys::METER_POSITION).await
    }

    async fn save_meter_position(&self, position: &MeterPosition) -> Result<(), StoreError> {
        self.put_plain(keys::SYNC, keys::METER_POSITION, position).await
    }
}
