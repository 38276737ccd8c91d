//! The DynamoDB adapter of [`RateLimitStore`]: one conditional update of a window's counter.

use super::{DynamoStore, HAS_ROOM, classify};
use crate::domain::model::AccountId;
use crate::domain::ratelimit::Limit;
use crate::ports::StoreError;
use crate::ports::keys;
use crate::ports::rate::{RateLimitStore, RateOutcome};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

#[async_trait]
impl RateLimitStore for DynamoStore {
    async fn take_rate(
        &self,
        account: &AccountId,
        name: &str,
        limit: Limit,
        now_ms: i64,
    ) -> Result<RateOutcome, StoreError> {
        let window = limit.window(now_ms);
        let taken = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(keys::account(account)))
            .key("sk", AttributeValue::S(keys::rate(name, window.start_ms)))
            .update_expression("ADD #count :one SET expires_at = :expires")
            .condition_expression(HAS_ROOM)
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":limit", AttributeValue::N(limit.max().to_string()))
            .expression_attribute_values(
                ":expires",
                AttributeValue::N((window.end_ms / 1000).saturating_add(60).to_string()),
            )
            .send()
            .await;
        match taken.map_err(|e| classify(e, "rate window full")) {
            Ok(_) => Ok(RateOutcome::Allowed),
            Err(StoreError::Conflict(_)) => Ok(RateOutcome::Limited { retry_after_ms: window.retry_after_ms(now_ms) }),
            Err(other) => Err(other),
        }
    }
}
