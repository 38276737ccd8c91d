//! The DynamoDB adapter of [`RateLimitStore`]: one conditional update of a fixed window's
//! counter ([`DynamoStore::rate_window`]), sent alone by `take_rate` and inside a usage
//! consumption's transaction by the usage adapter, so both limits are decided the same way.

use super::{DynamoStore, n};
use crate::domain::model::AccountId;
use crate::domain::ratelimit::{Limit, Window};
use crate::ports::StoreError;
use crate::ports::keys;
use crate::ports::rate::{RateLimitStore, RateOutcome};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::Update;

/// Guards taking a rate window: fewer than the limit were counted in it.
const HAS_ROOM: &str = "attribute_not_exists(#count) OR #count < :limit";

impl DynamoStore {
    /// Counts one event in the account's window `name` that `window` is, only while fewer than
    /// `limit` were counted there (`HAS_ROOM`); the window's item expires a minute after it
    /// ends.
    pub(super) fn rate_window(&self, account: &AccountId, name: &str, limit: Limit, window: Window) -> Update {
        self.update(keys::account(account), keys::rate(name, window.start_ms))
            .update_expression("ADD #count :one SET expires_at = :expires")
            .condition_expression(HAS_ROOM)
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(limit.max()))
            .expression_attribute_values(":expires", n((window.end_ms / 1000).saturating_add(60)))
            .build()
            .expect("table, key and update are set")
    }
}

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
        match self.update_alone(self.rate_window(account, name, limit, window), "rate window full").await {
            Ok(()) => Ok(RateOutcome::Allowed),
            Err(StoreError::Conflict(_)) => Ok(RateOutcome::Limited { retry_after_ms: window.retry_after_ms(now_ms) }),
            Err(other) => Err(other),
        }
    }
}
