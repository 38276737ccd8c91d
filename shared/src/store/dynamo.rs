//! The DynamoDB single-table adapter for the store ports. Items are mapped with
//! `serde_dynamo`; every conditional write names what it guards.

use super::keys;
use super::{
    Account, AccountStore, ApplyOutcome, CheckoutStore, EventLog, PendingCheckout, ProcessedEvent, RATE_WRITE_ATTEMPTS,
    RateLimitStore, RateOutcome, StoreError, SubscriptionStore, SyncCursor, SyncOutcome, SyncStore,
};
use crate::facts::Facts;
use crate::model::{AccountId, Projection};
use crate::ratelimit::{Decision, Limit};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
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
/// Guards a checkout reservation: only when none is pending, or the pending one expired.
const IS_FREE_RESERVATION: &str = "attribute_not_exists(pk) OR valid_until <= :now";
/// Guards completing a reservation: it must still be ours.
const IS_OUR_RESERVATION: &str = "nonce = :nonce";
/// Guards a rate window: nobody wrote it since we read it.
const IS_UNCHANGED_WINDOW: &str = "attribute_not_exists(pk) OR rev = :rev";

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

#[derive(Serialize, Deserialize)]
struct CustomerLink {
    account_id: AccountId,
}

impl<T> Keyed<T> {
    fn new(pk: String, sk: &str, data: T) -> Self {
        Self { pk, sk: sk.to_owned(), data, expires_at: None }
    }
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

    fn put(&self, item: Item, condition: &str) -> Put {
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .build()
            .expect("table, item and condition are set")
    }

    fn subscription_item(projection: &Projection) -> Result<Item, StoreError> {
        to_item(&Keyed::new(keys::account(&projection.account_id), keys::SUBSCRIPTION, projection))
    }

    fn subscription_put(&self, projection: &Projection) -> Result<Put, StoreError> {
        Ok(Put::builder()
            .table_name(&self.table)
            .set_item(Some(Self::subscription_item(projection)?))
            .condition_expression(IS_NEWER)
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":version", AttributeValue::N(projection.version.to_string()))
            .build()
            .expect("table, item and condition are set"))
    }

    fn event_put(&self, event: &ProcessedEvent) -> Result<Put, StoreError> {
        let mut keyed = Keyed::new(keys::event(&event.event_id), keys::EVENT, event);
        keyed.expires_at = Some(event.processed_at + super::EVENT_RECORD_TTL_DAYS * crate::access::DAY);
        Ok(self.put(to_item(&keyed)?, IS_NEW))
    }

    /// Sends a transaction element's `Put` on its own, with the same condition.
    async fn send_put(&self, put: Put, conflict: &'static str) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(put.table_name())
            .set_item(Some(put.item().clone()))
            .set_condition_expression(put.condition_expression().map(str::to_owned))
            .set_expression_attribute_names(put.expression_attribute_names().cloned())
            .set_expression_attribute_values(put.expression_attribute_values().cloned())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(e, conflict))
    }

    fn facts_put(&self, account: &AccountId, facts: &Facts) -> Result<Put, StoreError> {
        let next = Facts { rev: facts.rev + 1, ..facts.clone() };
        let item = to_item(&Keyed::new(keys::account(account), keys::FACTS, &next))?;
        Ok(Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(IS_SAME_REVISION)
            .expression_attribute_values(":rev", AttributeValue::N(facts.rev.to_string()))
            .build()
            .expect("table, item and condition are set"))
    }

    async fn transact(&self, puts: Vec<Put>, conflict: &'static str) -> Result<Result<(), Vec<bool>>, StoreError> {
        let items = puts.into_iter().map(|p| TransactWriteItem::builder().put(p).build()).collect();
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(Ok(())),
            Err(err) => failed_conditions(err, conflict).map(Err),
        }
    }
}

#[async_trait]
impl AccountStore for DynamoStore {
    async fn account(&self, account: &AccountId) -> Result<Option<Account>, StoreError> {
        self.get(keys::account(account), keys::PROFILE).await
    }

    async fn link_customer(&self, account: &Account) -> Result<(), StoreError> {
        let profile = to_item(&Keyed::new(keys::account(&account.account_id), keys::PROFILE, account))?;
        let link = CustomerLink { account_id: account.account_id.clone() };
        let index = to_item(&Keyed::new(keys::customer(&account.customer_id), keys::CUSTOMER_ACCOUNT, link))?;
        self.transact(vec![self.put(profile, IS_NEW), self.put(index, IS_NEW)], "account already linked")
            .await?
            .map_err(|_| StoreError::Conflict("account already linked"))
    }

    async fn account_for_customer(&self, customer_id: &str) -> Result<Option<AccountId>, StoreError> {
        let link: Option<CustomerLink> = self.get(keys::customer(customer_id), keys::CUSTOMER_ACCOUNT).await?;
        Ok(link.map(|l| l.account_id))
    }

    async fn delete_account_data(&self, account: &AccountId, customer_id: Option<&str>) -> Result<(), StoreError> {
        let pk = keys::account(account);
        let mut keys_to_delete: Vec<(String, String)> = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", AttributeValue::S(pk.clone()))
                .projection_expression("pk, sk")
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| classify(e, "query"))?;
            for item in page.items() {
                if let Some(AttributeValue::S(sk)) = item.get("sk") {
                    keys_to_delete.push((pk.clone(), sk.clone()));
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        if let Some(customer) = customer_id {
            keys_to_delete.push((keys::customer(customer), keys::CUSTOMER_ACCOUNT.to_owned()));
        }
        for (pk, sk) in keys_to_delete {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(pk))
                .key("sk", AttributeValue::S(sk))
                .send()
                .await
                .map_err(|e| classify(e, "delete"))?;
        }
        Ok(())
    }
}

#[async_trait]
impl SubscriptionStore for DynamoStore {
    async fn subscription(&self, account: &AccountId) -> Result<Option<Projection>, StoreError> {
        let (state, facts) =
            tokio::join!(self.get::<Projection>(keys::account(account), keys::SUBSCRIPTION), self.facts(account));
        Ok(state?.map(|state| super::merge(state, &facts.unwrap_or_default())))
    }

    async fn facts(&self, account: &AccountId) -> Result<Facts, StoreError> {
        Ok(self.get(keys::account(account), keys::FACTS).await?.unwrap_or_default())
    }

    async fn put_subscription(&self, projection: &Projection) -> Result<(), StoreError> {
        self.send_put(self.subscription_put(projection)?, "newer projection stored").await
    }
}

#[async_trait]
impl EventLog for DynamoStore {
    async fn apply(
        &self,
        event: &ProcessedEvent,
        projection: Option<&Projection>,
        facts: Option<(&AccountId, &Facts)>,
    ) -> Result<ApplyOutcome, StoreError> {
        let facts_put = facts.map(|(account, facts)| self.facts_put(account, facts)).transpose()?;
        let mut puts = vec![self.event_put(event)?];
        if let Some(projection) = projection {
            puts.push(self.subscription_put(projection)?);
        }
        puts.extend(facts_put.clone());
        let facts_at = puts.len() - 1;
        match self.transact(puts, "event already processed").await? {
            Ok(()) => return Ok(ApplyOutcome::Applied),
            Err(failed) if failed.first() == Some(&true) => return Ok(ApplyOutcome::Duplicate),
            Err(failed) if facts_put.is_some() && failed.get(facts_at) == Some(&true) => {
                return Err(StoreError::Conflict("facts changed"));
            }
            Err(_) => {}
        }
        // Only the projection lost, to a newer one: an older truth. The event still counts as
        // processed, so it is recorded (with its facts) without it.
        let mut puts = vec![self.event_put(event)?];
        puts.extend(facts_put);
        match self.transact(puts, "event already processed").await? {
            Ok(()) => Ok(ApplyOutcome::Stale),
            Err(failed) if failed.first() == Some(&true) => Ok(ApplyOutcome::Duplicate),
            Err(_) => Err(StoreError::Conflict("facts changed")),
        }
    }

    async fn processed(&self, event_id: &str) -> Result<Option<ProcessedEvent>, StoreError> {
        self.get(keys::event(event_id), keys::EVENT).await
    }
}

#[derive(Serialize, Deserialize, Default)]
struct RateWindow {
    stamps: Vec<i64>,
    rev: i64,
}

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
        keyed.expires_at = Some(pending.valid_until + 3600);
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

    async fn complete_checkout(&self, account: &AccountId, pending: &PendingCheckout) -> Result<(), StoreError> {
        let mut keyed = Keyed::new(keys::account(account), &keys::checkout(&pending.request_key), pending);
        keyed.expires_at = Some(pending.valid_until + 3600);
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

#[async_trait]
impl RateLimitStore for DynamoStore {
    async fn take_rate(
        &self,
        account: &AccountId,
        name: &str,
        limit: Limit,
        now_ms: i64,
    ) -> Result<RateOutcome, StoreError> {
        for _ in 0..RATE_WRITE_ATTEMPTS {
            let window: RateWindow = self.get(keys::account(account), &keys::rate(name)).await?.unwrap_or_default();
            let stamps = match crate::ratelimit::decide(&window.stamps, now_ms, limit) {
                Decision::Limited { retry_after_ms } => return Ok(RateOutcome::Limited { retry_after_ms }),
                Decision::Allowed(stamps) => stamps,
            };
            let mut keyed =
                Keyed::new(keys::account(account), &keys::rate(name), RateWindow { stamps, rev: window.rev + 1 });
            keyed.expires_at = Some((now_ms + limit.window_ms) / 1000 + 60);
            let written = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(to_item(&keyed)?))
                .condition_expression(IS_UNCHANGED_WINDOW)
                .expression_attribute_values(":rev", AttributeValue::N(window.rev.to_string()))
                .send()
                .await;
            match written.map_err(|e| classify(e, "rate window changed")) {
                Ok(_) => return Ok(RateOutcome::Allowed),
                Err(StoreError::Conflict(_)) => continue,
                Err(other) => return Err(other),
            }
        }
        // Lost every race: the window is contended right now, which is itself a reason to wait.
        Ok(RateOutcome::Limited { retry_after_ms: 1000 })
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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::operation::get_item::{GetItemError, GetItemOutput};
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_sdk_dynamodb::types::error::{ConditionalCheckFailedException, ProvisionedThroughputExceededException};
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
        let throttled = mock!(Client::get_item).then_error(|| {
            GetItemError::ProvisionedThroughputExceededException(
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
        let lost = mock!(Client::put_item).then_error(|| {
            PutItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder().meta(wire_code("ConditionalCheckFailedException")).build(),
            )
        });
        let store = DynamoStore::new(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&lost]), "t");

        let err = store.put_subscription(&projection()).await.unwrap_err();

        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    }

    #[tokio::test]
    async fn item_of_the_wrong_shape_is_corrupt_not_missing() {
        let odd = mock!(Client::get_item).then_output(|| {
            GetItemOutput::builder()
                .item("pk", AttributeValue::S("ACCOUNT#acct_1".into()))
                .item("sk", AttributeValue::S("SUBSCRIPTION".into()))
                .item("status", AttributeValue::N("7".into()))
                .build()
        });
        let store = DynamoStore::new(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&odd]), "t");

        let err = store.subscription(&AccountId::parse("acct_1").unwrap()).await.unwrap_err();

        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    }
}
