//! The in-memory [`SyncStore`], with the contracts of the DynamoDB one.

use super::MemoryStore;
use crate::ports::StoreError;
use crate::ports::meter::MeterPosition;
use crate::ports::sync::{SyncCursor, SyncOutcome, SyncStore};
use async_trait::async_trait;

#[async_trait]
impl SyncStore for MemoryStore {
    async fn cursor(&self) -> Result<Option<SyncCursor>, StoreError> {
        Ok(self.lock().cursor.clone())
    }

    async fn save_cursor(&self, cursor: &SyncCursor) -> Result<(), StoreError> {
        self.lock().cursor = Some(cursor.clone());
        Ok(())
    }

    async fn outcome(&self) -> Result<Option<SyncOutcome>, StoreError> {
        Ok(self.lock().outcome.clone())
    }

    async fn save_outcome(&self, outcome: &SyncOutcome) -> Result<(), StoreError> {
        self.lock().outcome = Some(outcome.clone());
        Ok(())
    }

    async fn meter_position(&self) -> Result<Option<MeterPosition>, StoreError> {
        Ok(self.lock().meter_position.clone())
    }

    async fn save_meter_position(&self, position: &MeterPosition) -> Result<(), StoreError> {
        self.lock().meter_position = Some(position.clone());
        Ok(())
    }
}
