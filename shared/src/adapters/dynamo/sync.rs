//! The DynamoDB adapter of [`SyncStore`]: the cursor, the outcome, the meter pass's position
//! and the adoption, one item each.

use super::{DynamoStore, Keyed, classify, from_item, to_item};
use crate::domain::adoption::{Adoption, Sorted};
use crate::ports::StoreError;
use crate::ports::keys;
use crate::ports::meter::MeterPosition;
use crate::ports::sync::{SyncCursor, SyncOutcome, SyncStore};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

/// An adoption's entry as its item holds it (the entry's own fields beside `pk` and `sk`).
#[derive(serde::Serialize, serde::Deserialize)]
struct Entry {
    entry: Sorted,
}

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

    async fn adoption(&self) -> Result<Option<Adoption>, StoreError> {
        self.get(keys::SYNC.to_owned(), keys::ADOPTION).await
    }

    async fn start_adoption(&self, adoption: &Adoption) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&Keyed::new(keys::SYNC.to_owned(), keys::ADOPTION, adoption))?))
            .condition_expression("attribute_not_exists(pk) OR #state <> :running")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":running", AttributeValue::S("running".to_owned()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(e, "adoption running"))
    }

    async fn save_adoption(&self, adoption: &Adoption) -> Result<(), StoreError> {
        self.put_plain(keys::SYNC, keys::ADOPTION, adoption).await
    }

    async fn save_adoption_entry(&self, id: &str, seq: u64, entry: &Sorted) -> Result<(), StoreError> {
        self.put_plain(keys::SYNC, &keys::adoption_entry(id, seq), &Entry { entry: entry.clone() }).await
    }

    async fn adoption_entries(&self, id: &str) -> Result<Vec<Sorted>, StoreError> {
        let items = self.query_prefix(keys::SYNC, &keys::adoption_entry_prefix(id)).await?;
        items.into_iter().map(|item| from_item::<Entry>(item).map(|e| e.entry)).collect()
    }
}
