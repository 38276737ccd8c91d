//! The DynamoDB adapter of [`CheckoutStore`]: a reservation per request key, replaced only once expired.

use super::{DynamoStore, IS_FREE_RESERVATION, IS_OUR_RESERVATION, Keyed, classify, from_item, to_item};
use crate::domain::model::AccountId;
use crate::ports::StoreError;
use crate::ports::checkouts::{CheckoutStore, PendingCheckout};
use crate::ports::keys;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

#[async_trait]
impl CheckoutStore for DynamoStore {
    async fn pending_checkout(
        &self,
        account: &AccountId,
        request_key: &str,
        now: i64,
    ) -> Result<Option<PendingCheckout>, StoreError> {
        let pending: Option<PendingCheckout> = self.get(keys::account(account), &keys::checkout(request_key)).await?;
        Ok(pending.filter(|p| p.valid_until > now))
    }

    async fn reserve_checkout(
        &self,
        account: &AccountId,
        pending: &PendingCheckout,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut keyed = Keyed::new(keys::account(account), &keys::checkout(&pending.request_key), pending);
        keyed.expires_at = Some(pending.valid_until.saturating_add(3600));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&keyed)?))
            .condition_expression(IS_FREE_RESERVATION)
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(e, "checkout already pending"))
    }

    async fn pending_checkouts(&self, account: &AccountId) -> Result<Vec<PendingCheckout>, StoreError> {
        let items = self.query_prefix(&keys::account(account), keys::CHECKOUT_PREFIX).await?;
        items.into_iter().map(|item| Ok(from_item::<Keyed<PendingCheckout>>(item)?.data)).collect()
    }

    async fn complete_checkout(&self, account: &AccountId, pending: &PendingCheckout) -> Result<(), StoreError> {
        let mut keyed = Keyed::new(keys::account(account), &keys::checkout(&pending.request_key), pending);
        keyed.expires_at = Some(pending.valid_until.saturating_add(3600));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&keyed)?))
            .condition_expression(IS_OUR_RESERVATION)
            .expression_attribute_values(":nonce", AttributeValue::S(pending.nonce.clone()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(e, "reservation replaced"))
    }
}
