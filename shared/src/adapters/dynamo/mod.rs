//! The DynamoDB single-table adapter for the store ports. Items are mapped with
//! `serde_dynamo`; every conditional write names what it guards.

mod accounts;
mod api_keys;
mod checkouts;
mod credits;
mod events;
mod invoices;
pub mod meter;
mod rate;
mod subscriptions;
mod sync;
mod usage;

use crate::domain::model::AccountId;
use crate::ports::StoreError;
use crate::ports::keys;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

/// Guards a create: the item must not exist yet.
const IS_NEW: &str = "attribute_not_exists(pk)";
/// Guards the projection against an older snapshot: only a strictly newer version lands.
const IS_NEWER: &str = "attribute_not_exists(pk) OR #version < :version";
/// Guards the facts against a concurrent writer: the revision we read must still be stored.
const IS_SAME_REVISION: &str = "attribute_not_exists(pk) OR rev = :rev";
/// Guards an effect: the customer is still linked to the account.
const IS_LINKED_TO: &str = "account_id = :account";
/// Guards a retired customer's facts: it is still retired from the account.
const IS_RETIRED_FROM: &str = "retired_from = :account";
/// Guards a checkout reservation: only when none is pending, or the pending one expired.
const IS_FREE_RESERVATION: &str = "attribute_not_exists(pk) OR valid_until <= :now";
/// Guards completing a reservation: it must still be ours.
const IS_OUR_RESERVATION: &str = "nonce = :nonce";
/// Guards a refund's mark on an idempotency record: the record is stored and not refunded yet.
const NOT_REFUNDED: &str = "attribute_exists(pk) AND refunded = :false";

/// How long a request's idempotency record (a usage or a credit consumption) is kept, in
/// seconds: a week, so a job that fails days later can still be refunded by its key.
const REQUEST_RECORD_TTL: i64 = 7 * 86_400;

/// DynamoDB error codes that mean "slow down", not "broken".
const THROTTLING_CODES: [&str; 4] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TransactionInProgressException",
];

/// The store on one DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

#[derive(Serialize, Deserialize)]
struct Keyed<T> {
    pk: String,
    sk: String,
    #[serde(flatten)]
    data: T,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    expires_at: Option<i64>,
}

impl<T> Keyed<T> {
    fn new(pk: String, sk: &str, data: T) -> Self {
        Self { pk, sk: sk.to_owned(), data, expires_at: None }
    }
}

/// A number attribute.
fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn to_item<T: Serialize>(value: &T) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Classifies any SDK error: a failed condition is a `Conflict`, capacity errors are
/// `Throttled`, everything else (network, timeouts, 5xx) is `Unavailable`.
fn classify<E, R>(err: SdkError<E, R>, conflict: &'static str) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match err.code() {
        Some("ConditionalCheckFailedException") => StoreError::Conflict(conflict),
        Some(code) if THROTTLING_CODES.contains(&code) => StoreError::Throttled(Box::new(err)),
        _ => StoreError::Unavailable(Box::new(err)),
    }
}

/// How often and how soon a transaction cancelled for a conflict is sent again.
const CONFLICT_RETRIES: crate::adapters::stripe::retry::RetryPolicy = crate::adapters::stripe::retry::RetryPolicy {
    max_retries: 4,
    base_delay: std::time::Duration::from_millis(10),
    max_delay: std::time::Duration::from_millis(200),
};

/// Whether DynamoDB cancelled the transaction only because another one in flight touched one
/// of its items (no condition failed).
fn in_conflict(err: &SdkError<TransactWriteItemsError, aws_smithy_runtime_api::http::Response>) -> bool {
    let Some(TransactWriteItemsError::TransactionCanceledException(cancel)) = err.as_service_error() else {
        return false;
    };
    let codes: Vec<Option<&str>> = cancel.cancellation_reasons().iter().map(|r| r.code()).collect();
    codes.contains(&Some("TransactionConflict")) && !codes.contains(&Some("ConditionalCheckFailed"))
}

/// Which items of a cancelled transaction failed their condition (by position), or the
/// error to return when the cancellation was not about conditions.
fn failed_conditions(
    err: SdkError<TransactWriteItemsError, aws_smithy_runtime_api::http::Response>,
    conflict: &'static str,
) -> Result<Vec<bool>, StoreError> {
    if let Some(TransactWriteItemsError::TransactionCanceledException(cancel)) = err.as_service_error() {
        let codes: Vec<Option<&str>> = cancel.cancellation_reasons().iter().map(|r| r.code()).collect();
        if codes.contains(&Some("ConditionalCheckFailed")) {
            return Ok(codes.iter().map(|c| *c == Some("ConditionalCheckFailed")).collect());
        }
        if codes
            .iter()
            .any(|c| matches!(c, Some("ThrottlingError" | "ProvisionedThroughputExceeded" | "TransactionConflict")))
        {
            return Err(StoreError::Throttled(Box::new(err)));
        }
    }
    Err(classify(err, conflict))
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Checks that the table answers (for health probes).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(e, "describe table"))
    }

    async fn get<T: DeserializeOwned>(&self, pk: String, sk: &str) -> Result<Option<T>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk))
            .key("sk", AttributeValue::S(sk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify(e, "get"))?;
        out.item.map(|item| from_item::<Keyed<T>>(item).map(|k| k.data)).transpose()
    }

    /// A consistent `Query` of partition `pk`'s items whose sort key starts with `prefix`.
    fn prefix_query(&self, pk: &str, prefix: &str) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
            .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()))
            .consistent_read(true)
    }

    /// Every item of partition `pk` whose sort key starts with `prefix`, in one consistent
    /// `Query` (more pages only past 1 MB, which state items never reach).
    async fn query_prefix(&self, pk: &str, prefix: &str) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .prefix_query(pk, prefix)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| classify(e, "query"))?;
            items.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// The sort keys of up to `limit` items of partition `pk` from `from` (inclusive) to `to`
    /// (exclusive), lowest first: one `Query` a page (keys only).
    async fn keys_between(&self, pk: &str, from: &str, to: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        let mut start: Option<Item> = None;
        while keys.len() < limit {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
                .expression_attribute_values(":from", AttributeValue::S(from.to_owned()))
                .expression_attribute_values(":to", AttributeValue::S(to.to_owned()))
                .projection_expression("sk")
                .limit(i32::try_from(limit.saturating_sub(keys.len())).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| classify(e, "query"))?;
            keys.extend(page.items.unwrap_or_default().into_iter().filter_map(|item| match item.get("sk") {
                Some(AttributeValue::S(sk)) if sk.as_str() < to => Some(sk.clone()),
                _ => None,
            }));
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(keys)
    }

    /// Deletes the items `sks` of partition `pk` with `BatchWriteItem`, 25 at a time and 4
    /// batches at once, sending again what DynamoDB leaves unprocessed (with a short backoff)
    /// until every one is gone.
    async fn delete_batches(&self, pk: &str, sks: &[String]) -> Result<(), StoreError> {
        use futures_util::TryStreamExt;
        futures_util::stream::iter(sks.chunks(25).map(Ok))
            .try_for_each_concurrent(4, |chunk| self.delete_batch(pk, chunk))
            .await
    }

    /// One `BatchWriteItem` of up to 25 deletions, and its unprocessed items again.
    async fn delete_batch(&self, pk: &str, chunk: &[String]) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
        let mut requests: Vec<WriteRequest> = chunk
            .iter()
            .map(|sk| {
                let delete = DeleteRequest::builder()
                    .key("pk", AttributeValue::S(pk.to_owned()))
                    .key("sk", AttributeValue::S(sk.clone()))
                    .build()
                    .expect("the key is set");
                WriteRequest::builder().delete_request(delete).build()
            })
            .collect();
        let mut backoff = std::time::Duration::from_millis(25);
        for _ in 0..8 {
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, requests)
                .send()
                .await
                .map_err(|e| classify(e, "batch delete"))?;
            requests = out.unprocessed_items.and_then(|mut u| u.remove(&self.table)).unwrap_or_default();
            if requests.is_empty() {
                return Ok(());
            }
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
        }
        Err(StoreError::Throttled("batch delete: items still unprocessed after 8 tries".into()))
    }

    /// Up to `limit` items of partition `pk` whose sort key starts with `prefix`, newest (highest
    /// sort key) first, after the sort key `after` of a previous page, read as `T`; and the
    /// sort key to continue after when more follow. One consistent `Query` of `limit + 1`
    /// items: the extra one only says whether a next page exists.
    async fn newest_first<T: DeserializeOwned>(
        &self,
        pk: &str,
        prefix: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<(Vec<T>, Option<String>), StoreError> {
        let mut query = self
            .prefix_query(pk, prefix)
            .scan_index_forward(false)
            .limit(i32::try_from(limit.saturating_add(1)).unwrap_or(i32::MAX));
        // A cursor outside the range starts from the newest item.
        if let Some(sk) = after.filter(|sk| sk.starts_with(prefix)) {
            query = query
                .exclusive_start_key("pk", AttributeValue::S(pk.to_owned()))
                .exclusive_start_key("sk", AttributeValue::S(sk.to_owned()));
        }
        let items = query.send().await.map_err(|e| classify(e, "page"))?.items.unwrap_or_default();
        let more = items.len() > limit;
        let mut page = Vec::new();
        let mut next = None;
        for item in items.into_iter().take(limit) {
            if let Some(AttributeValue::S(sk)) = item.get("sk") {
                next = Some(sk.clone());
            }
            page.push(from_item::<Keyed<T>>(item)?.data);
        }
        Ok((page, next.filter(|_| more)))
    }

    /// An update of the item at `pk`/`sk`, for a transaction (or [`Self::update_alone`]).
    fn update(&self, pk: String, sk: String) -> UpdateBuilder {
        Update::builder().table_name(&self.table).key("pk", AttributeValue::S(pk)).key("sk", AttributeValue::S(sk))
    }

    /// Sends one `Update` on its own, as an `UpdateItem` (one write, not a transaction's two).
    async fn update_alone(&self, update: Update, conflict: &'static str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(update.table_name())
            .set_key(Some(update.key().clone()))
            .update_expression(update.update_expression())
            .set_condition_expression(update.condition_expression().map(str::to_owned))
            .set_expression_attribute_names(update.expression_attribute_names().cloned())
            .set_expression_attribute_values(update.expression_attribute_values().cloned())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(e, conflict))
    }

    /// Marks the idempotency record at `pk` refunded, only if it is stored and not refunded
    /// yet: the first item of a refund's transaction (its condition failing means "refunded
    /// meanwhile").
    fn refund_mark(&self, pk: String) -> TransactWriteItem {
        let mark = self
            .update(pk, keys::IDEMPOTENCY.to_owned())
            .update_expression("SET refunded = :true")
            .condition_expression(NOT_REFUNDED)
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .build()
            .expect("table, key and update are set");
        TransactWriteItem::builder().update(mark).build()
    }

    fn put(&self, item: Item, condition: &str) -> Put {
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .build()
            .expect("table, item and condition are set")
    }

    fn delete(&self, pk: String, sk: &str) -> TransactWriteItem {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk))
            .key("sk", AttributeValue::S(sk.to_owned()))
            .build()
            .expect("table and key are set");
        TransactWriteItem::builder().delete(delete).build()
    }

    /// Checks, inside a transaction, that `customer` is still linked to `account` (or, when
    /// `retired`, still retired from it).
    fn linked(&self, account: &AccountId, customer: &str, retired: bool) -> TransactWriteItem {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(keys::customer(customer)))
            .key("sk", AttributeValue::S(keys::CUSTOMER_ACCOUNT.to_owned()))
            .condition_expression(if retired { IS_RETIRED_FROM } else { IS_LINKED_TO })
            .expression_attribute_values(":account", AttributeValue::S(account.to_string()))
            .build()
            .expect("table, key and condition are set");
        TransactWriteItem::builder().condition_check(check).build()
    }

    /// Sends one transaction: `Ok(Err(failed))` names the items whose condition failed. A
    /// transaction DynamoDB cancelled for a conflict with another in flight on one of its items
    /// (`TransactionConflict`, which wrote nothing) is sent again after a jittered backoff, at
    /// most [`CONFLICT_RETRIES`] times, then answered as throttled.
    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        conflict: &'static str,
    ) -> Result<Result<(), Vec<bool>>, StoreError> {
        let mut attempt = 0;
        loop {
            let sent = self.client.transact_write_items().set_transact_items(Some(items.clone())).send().await;
            match sent {
                Ok(_) => return Ok(Ok(())),
                Err(err) if attempt < CONFLICT_RETRIES.max_retries && in_conflict(&err) => {
                    tokio::time::sleep(CONFLICT_RETRIES.delay(attempt, crate::adapters::stripe::retry::jitter())).await;
                    attempt = attempt.saturating_add(1);
                }
                Err(err) => return failed_conditions(err, conflict).map(Err),
            }
        }
    }

    /// Deletes every item of the partition whose sort key starts with `prefix`.
    async fn delete_prefix(&self, pk: &str, prefix: &str) -> Result<(), StoreError> {
        for item in self.query_prefix(pk, prefix).await? {
            let Some(AttributeValue::S(sk)) = item.get("sk") else { continue };
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(pk.to_owned()))
                .key("sk", AttributeValue::S(sk.clone()))
                .send()
                .await
                .map_err(|e| classify(e, "delete"))?;
        }
        Ok(())
    }
}

impl DynamoStore {
    async fn put_plain<T: Serialize + Sync>(&self, pk: &str, sk: &str, data: &T) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&Keyed::new(pk.to_owned(), sk, data))?))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(e, "put"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::facts::Facts;
    use crate::domain::model::Projection;
    use crate::ports::subscriptions::SubscriptionStore;
    use aws_sdk_dynamodb::operation::query::{QueryError, QueryOutput};
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    use aws_sdk_dynamodb::types::CancellationReason;
    use aws_sdk_dynamodb::types::error::ProvisionedThroughputExceededException;
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use aws_smithy_types::error::ErrorMetadata;

    /// The error code the SDK reads from DynamoDB's `__type` on the wire.
    fn wire_code(code: &str) -> ErrorMetadata {
        ErrorMetadata::builder().code(code).build()
    }

    fn projection() -> Projection {
        Projection { customer_id: "cus_1".into(), version: 5, ..crate::testing::projection("acct_1") }
    }

    #[tokio::test]
    async fn throttling_is_not_a_conflict() {
        let throttled = mock!(Client::query).then_error(|| {
            QueryError::ProvisionedThroughputExceededException(
                ProvisionedThroughputExceededException::builder()
                    .message("slow down")
                    .meta(wire_code("ProvisionedThroughputExceededException"))
                    .build(),
            )
        });
        let store = DynamoStore::new(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&throttled]), "t");

        let err = store.subscription(&AccountId::parse("acct_1").unwrap()).await.unwrap_err();

        assert!(matches!(err, StoreError::Throttled(_)), "{err:?}");
    }

    #[tokio::test]
    async fn failed_condition_is_a_conflict() {
        let lost = mock!(Client::transact_write_items).then_error(|| {
            TransactWriteItemsError::TransactionCanceledException(
                TransactionCanceledException::builder()
                    .cancellation_reasons(CancellationReason::builder().code("ConditionalCheckFailed").build())
                    .cancellation_reasons(CancellationReason::builder().code("None").build())
                    .meta(wire_code("TransactionCanceledException"))
                    .build(),
            )
        });
        let store = DynamoStore::new(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&lost]), "t");

        let err = store.put_subscription(&projection()).await.unwrap_err();

        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    }

    #[tokio::test]
    async fn item_of_the_wrong_shape_is_corrupt_not_missing() {
        let odd = mock!(Client::query).then_output(|| {
            QueryOutput::builder()
                .items(HashMap::from([
                    ("pk".to_owned(), AttributeValue::S("ACCOUNT#acct_1".into())),
                    ("sk".to_owned(), AttributeValue::S(keys::SUBSCRIPTION.into())),
                    ("status".to_owned(), AttributeValue::N("7".into())),
                ]))
                .build()
        });
        let store = DynamoStore::new(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&odd]), "t");

        let err = store.subscription(&AccountId::parse("acct_1").unwrap()).await.unwrap_err();

        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    }

    /// `GET /subscription`'s read is one request: a store that answers only one `Query` (and
    /// would fail any other call) serves the whole state.
    #[tokio::test]
    async fn the_state_is_one_query() {
        let item = |sk: &str, extra: &[(&str, AttributeValue)]| {
            let mut item = HashMap::from([
                ("pk".to_owned(), AttributeValue::S("ACCOUNT#acct_1".into())),
                ("sk".to_owned(), AttributeValue::S(sk.into())),
            ]);
            item.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
            item
        };
        let mut stored = to_item(&projection()).unwrap();
        stored.insert("pk".into(), AttributeValue::S("ACCOUNT#acct_1".into()));
        stored.insert("sk".into(), AttributeValue::S(keys::SUBSCRIPTION.into()));
        let facts = to_item(&disputed()).unwrap().into_iter().collect::<Vec<_>>();
        let facts: Vec<(&str, AttributeValue)> = facts.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let tombstone = [("trial_used", AttributeValue::Bool(true))];
        let items = vec![stored, item(keys::FACTS, &facts), item(keys::TOMBSTONE, &tombstone)];
        let query =
            mock!(Client::query).then_output(move || QueryOutput::builder().set_items(Some(items.clone())).build());
        let store = DynamoStore::new(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&query]), "t");

        let state = store.state(&AccountId::parse("acct_1").unwrap()).await.unwrap();

        assert_eq!(query.num_calls(), 1);
        assert!(state.tombstone.trial_used);
        assert_eq!(state.subscription.unwrap().open_disputes, ["dp_1"]);
    }

    fn disputed() -> Facts {
        let mut facts = Facts::default();
        facts.apply(&crate::domain::facts::Fact::DisputeOpened { id: "dp_1".into() }, 3);
        facts
    }
}
