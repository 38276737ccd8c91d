//! The DynamoDB single-table adapter for the store ports. Items are mapped with
//! `serde_dynamo`; every conditional write names what it guards.

mod api_keys;
mod credits;
mod invoices;
pub mod meter;
mod usage;

use super::keys;
use super::{
    Account, AccountState, AccountStore, ApplyOutcome, CheckoutStore, CustomerLink, Effect, EventLog, FailedEvent,
    PendingCheckout, ProcessedEvent, RateLimitStore, RateOutcome, Retirement, StoreError, SubscriptionStore,
    SyncCursor, SyncOutcome, SyncStore, Tombstone, UsageCounter,
};
use crate::facts::Facts;
use crate::model::{AccountId, Projection};
use crate::ratelimit::Limit;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem};
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
/// Guards taking a rate window: fewer than the limit were counted in it.
const HAS_ROOM: &str = "attribute_not_exists(#count) OR #count < :limit";

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

/// The customer index: the account a customer belongs to, or, once retired, the account it
/// was retired from (and none to link to, ever again).
#[derive(Serialize, Deserialize)]
struct CustomerIndex {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    account_id: Option<AccountId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retired_from: Option<AccountId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retired_at: Option<i64>,
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

/// Positions, within one transaction, of the items an event's effect adds after its record.
#[derive(Default)]
struct EffectItems {
    projection: Option<usize>,
    facts: Option<usize>,
    link: Option<usize>,
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

    fn subscription_put(&self, projection: &Projection) -> Result<Put, StoreError> {
        let item = to_item(&Keyed::new(keys::account(&projection.account_id), keys::SUBSCRIPTION, projection))?;
        Ok(Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(IS_NEWER)
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":version", AttributeValue::N(projection.version.to_string()))
            .build()
            .expect("table, item and condition are set"))
    }

    fn event_put(&self, event: &ProcessedEvent) -> Result<Put, StoreError> {
        let mut keyed = Keyed::new(keys::event(&event.event_id), keys::EVENT, event);
        keyed.expires_at = Some(super::record_expiry(event.processed_at));
        Ok(self.put(to_item(&keyed)?, IS_NEW))
    }

    fn facts_put(&self, account: &AccountId, facts: &Facts) -> Result<Put, StoreError> {
        let next = Facts { rev: facts.rev.saturating_add(1), ..facts.clone() };
        let item = to_item(&Keyed::new(keys::account(account), keys::FACTS, &next))?;
        Ok(Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(IS_SAME_REVISION)
            .expression_attribute_values(":rev", AttributeValue::N(facts.rev.to_string()))
            .build()
            .expect("table, item and condition are set"))
    }

    /// The record of `event` and the items of `effect` (the projection only when
    /// `with_projection`), with the positions of the effect's items.
    fn event_items(
        &self,
        event: &ProcessedEvent,
        effect: Option<&Effect<'_>>,
        with_projection: bool,
    ) -> Result<(Vec<TransactWriteItem>, EffectItems), StoreError> {
        let put = |p: Put| TransactWriteItem::builder().put(p).build();
        let mut items = vec![put(self.event_put(event)?)];
        let mut at = EffectItems::default();
        if let Some(effect) = effect {
            // A retired customer's effect is facts only, whatever the caller passed.
            if let Some(projection) = effect.projection.filter(|_| with_projection && !effect.retired) {
                at.projection = Some(items.len());
                items.push(put(self.subscription_put(projection)?));
            }
            if let Some(facts) = effect.facts {
                at.facts = Some(items.len());
                items.push(put(self.facts_put(effect.account, facts)?));
            }
            if items.len() > 1 {
                at.link = Some(items.len());
                items.push(self.linked(effect.account, effect.customer, effect.retired));
            }
        }
        Ok((items, at))
    }

    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        conflict: &'static str,
    ) -> Result<Result<(), Vec<bool>>, StoreError> {
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(Ok(())),
            Err(err) => failed_conditions(err, conflict).map(Err),
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

#[async_trait]
impl AccountStore for DynamoStore {
    async fn account(&self, account: &AccountId) -> Result<Option<Account>, StoreError> {
        self.get(keys::account(account), keys::PROFILE).await
    }

    async fn link_customer(&self, account: &Account) -> Result<(), StoreError> {
        let profile = to_item(&Keyed::new(keys::account(&account.account_id), keys::PROFILE, account))?;
        let link = CustomerIndex { account_id: Some(account.account_id.clone()), retired_from: None, retired_at: None };
        let index = to_item(&Keyed::new(keys::customer(&account.customer_id), keys::CUSTOMER_ACCOUNT, link))?;
        let items = [self.put(profile, IS_NEW), self.put(index, IS_NEW)]
            .into_iter()
            .map(|p| TransactWriteItem::builder().put(p).build())
            .collect();
        self.transact(items, "account already linked")
            .await?
            .map_err(|_| StoreError::Conflict("account already linked"))
    }

    async fn customer_link(&self, customer_id: &str) -> Result<Option<CustomerLink>, StoreError> {
        let index: Option<CustomerIndex> = self.get(keys::customer(customer_id), keys::CUSTOMER_ACCOUNT).await?;
        Ok(index.and_then(|i| match (i.account_id, i.retired_from) {
            (Some(account), _) => Some(CustomerLink::Linked(account)),
            (None, Some(account)) => Some(CustomerLink::Retired(account)),
            (None, None) => None,
        }))
    }

    async fn retire(
        &self,
        account: &AccountId,
        customer_id: Option<&str>,
        retirement: Retirement,
        tombstone: &Tombstone,
    ) -> Result<(), StoreError> {
        let pk = keys::account(account);
        // Pending sessions were made for the retired customer: none may be handed out again.
        self.delete_prefix(&pk, keys::CHECKOUT_PREFIX).await?;
        let mut items = vec![self.delete(pk.clone(), keys::PROFILE), self.delete(pk.clone(), keys::SUBSCRIPTION)];
        if retirement == Retirement::AccountDeleted {
            items.push(self.delete(pk.clone(), keys::FACTS));
        }
        let put = |item: Item| {
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(item))
                        .build()
                        .expect("table and item are set"),
                )
                .build()
        };
        items.push(if tombstone.is_empty() {
            self.delete(pk.clone(), keys::TOMBSTONE)
        } else {
            put(to_item(&Keyed::new(pk.clone(), keys::TOMBSTONE, tombstone))?)
        });
        if let Some(customer) = customer_id {
            let marker = CustomerIndex {
                account_id: None,
                retired_from: Some(account.clone()),
                retired_at: tombstone.deleted_at,
            };
            items.push(put(to_item(&Keyed::new(keys::customer(customer), keys::CUSTOMER_ACCOUNT, marker))?));
        }
        self.transact(items, "retire").await?.map_err(|_| StoreError::Conflict("retire"))?;
        if retirement == Retirement::AccountDeleted {
            // The balance is forfeited with the account (README): its grants and ledger go.
            self.delete_prefix(&pk, keys::GRANT_PREFIX).await?;
            self.delete_prefix(&pk, keys::LEDGER_PREFIX).await?;
            // Invoices go with the account (a customer deleted in Stripe keeps them).
            self.delete_prefix(&pk, keys::INVOICE_PREFIX).await?;
        }
        Ok(())
    }
}

/// The state items of one account, read from one query.
fn account_state(items: Vec<Item>) -> Result<AccountState, StoreError> {
    let mut state = AccountState::default();
    let mut projection: Option<Projection> = None;
    for item in items {
        let sk = match item.get("sk") {
            Some(AttributeValue::S(sk)) => sk.clone(),
            _ => continue,
        };
        match sk.as_str() {
            keys::PROFILE => state.profile = Some(from_item::<Keyed<Account>>(item)?.data),
            keys::SUBSCRIPTION => projection = Some(from_item::<Keyed<Projection>>(item)?.data),
            keys::FACTS => state.facts = from_item::<Keyed<Facts>>(item)?.data,
            keys::TOMBSTONE => state.tombstone = from_item::<Keyed<Tombstone>>(item)?.data,
            other if other.starts_with(keys::GRANT_PREFIX) => state.grants.push(credits::grant_from(item)?),
            other => {
                if let Some((metric, window_start)) = keys::parse_usage(other) {
                    let used = usage::counted(&item)?;
                    state.usage.push(UsageCounter { metric: metric.to_owned(), window_start, used });
                }
            }
        }
    }
    state.subscription = projection.map(|p| super::merge(p, &state.facts, &state.tombstone));
    state.usage.sort_by(|a, b| (&a.metric, a.window_start).cmp(&(&b.metric, b.window_start)));
    Ok(state)
}

#[async_trait]
impl SubscriptionStore for DynamoStore {
    async fn state(&self, account: &AccountId) -> Result<AccountState, StoreError> {
        account_state(self.query_prefix(&keys::account(account), keys::STATE_PREFIX).await?)
    }

    async fn facts(&self, account: &AccountId) -> Result<Facts, StoreError> {
        Ok(self.get(keys::account(account), keys::FACTS).await?.unwrap_or_default())
    }

    async fn put_subscription(&self, projection: &Projection) -> Result<(), StoreError> {
        let items = vec![
            TransactWriteItem::builder().put(self.subscription_put(projection)?).build(),
            self.linked(&projection.account_id, &projection.customer_id, false),
        ];
        self.transact(items, "newer projection stored")
            .await?
            .map_err(|_| StoreError::Conflict("newer projection stored, or the customer is unlinked"))
    }
}

#[async_trait]
impl EventLog for DynamoStore {
    async fn apply(&self, event: &ProcessedEvent, effect: Option<Effect<'_>>) -> Result<ApplyOutcome, StoreError> {
        let (items, at) = self.event_items(event, effect.as_ref(), true)?;
        let failed = match self.transact(items, "event already processed").await? {
            Ok(()) => return Ok(ApplyOutcome::Applied),
            Err(failed) => failed,
        };
        let lost = |position: Option<usize>| position.is_some_and(|p| failed.get(p) == Some(&true));
        if failed.first() == Some(&true) {
            return Ok(ApplyOutcome::Duplicate);
        }
        if lost(at.link) {
            // The customer was retired meanwhile: the event counts as processed, with no effect.
            let (items, _) = self.event_items(event, None, false)?;
            return match self.transact(items, "event already processed").await? {
                Ok(()) => Ok(ApplyOutcome::Unlinked),
                Err(_) => Ok(ApplyOutcome::Duplicate),
            };
        }
        if lost(at.facts) {
            return Err(StoreError::Conflict("facts changed"));
        }
        // Only the projection lost, to a newer one: an older truth. The event still counts as
        // processed, so it is recorded (with its facts) without it.
        let (items, at) = self.event_items(event, effect.as_ref(), false)?;
        match self.transact(items, "event already processed").await? {
            Ok(()) => Ok(ApplyOutcome::Stale),
            Err(failed) if failed.first() == Some(&true) => Ok(ApplyOutcome::Duplicate),
            Err(failed) if at.link.is_some_and(|p| failed.get(p) == Some(&true)) => {
                Err(StoreError::Conflict("customer unlinked"))
            }
            Err(_) => Err(StoreError::Conflict("facts changed")),
        }
    }

    async fn processed(&self, event_id: &str) -> Result<Option<ProcessedEvent>, StoreError> {
        self.get(keys::event(event_id), keys::EVENT).await
    }

    async fn record_failure(&self, failure: &FailedEvent) -> Result<(), StoreError> {
        let mut keyed = Keyed::new(keys::failure(&failure.id), keys::FAILURE, failure);
        keyed.expires_at = Some(super::record_expiry(failure.failed_at));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&keyed)?))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(e, "put"))
    }

    async fn failure(&self, id: &str) -> Result<Option<FailedEvent>, StoreError> {
        self.get(keys::failure(id), keys::FAILURE).await
    }
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
        facts.apply(&crate::facts::Fact::DisputeOpened { id: "dp_1".into() }, 3);
        facts
    }
}
