//! The in-memory [`SyncStore`], with the contracts of the DynamoDB one.

use super::MemoryStore;
use crate::domain::adoption::{Adoption, AdoptionState, Sorted};
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

    async fn adoption(&self) -> Result<Option<Adoption>, StoreError> {
        Ok(self.lock().adoption.clone())
    }

    async fn start_adoption(&self, adoption: &Adoption) -> Result<(), StoreError> {
        let mut tables = self.lock();
        if tables.adoption.as_ref().is_some_and(|a| a.state == AdoptionState::Running) {
            return Err(StoreError::Conflict("adoption running"));
        }
        tables.adoption = Some(adoption.clone());
        Ok(())
    }

    async fn save_adoption(&self, adoption: &Adoption) -> Result<(), StoreError> {
        self.lock().adoption = Some(adoption.clone());
        Ok(())
    }

    async fn save_adoption_entry(&self, id: &str, seq: u64, entry: &Sorted) -> Result<(), StoreError> {
        self.lock().adoption_entries.insert((id.to_owned(), seq), entry.clone());
        Ok(())
    }

    async fn adoption_entries(&self, id: &str) -> Result<Vec<Sorted>, StoreError> {
        let tables = self.lock();
        Ok(tables.adoption_entries.iter().filter(|((of, _), _)| of == id).map(|(_, e)| e.clone()).collect())
    }
}
