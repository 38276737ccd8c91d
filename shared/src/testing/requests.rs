//! A record of the requests DynamoDB and SQS clients send, by operation name, so a test can
//! assert how many round trips an operation of the core costs and which ones; and, for a
//! benchmark, what each request touched: the sizes of the items a read returned, the keys (and
//! put sizes) of the items a write changed, the bytes of each message sent. From these,
//! [`Request::read_units`] and [`Request::write_units`] price a request in capacity units by
//! [`crate::testing::capacity`]'s rules (the local server reports no real units).

use crate::testing::capacity;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef, Input, Output,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

/// The key attributes of Tollgate's table (`template.yaml`: `pk` and `sk`).
pub const KEY_ATTRIBUTES: [&str; 2] = ["pk", "sk"];

/// An item's primary key as the table's key attributes' values (`pk`, `sk`), in that order;
/// an attribute that is not a string counts as empty.
pub type ItemKey = (String, String);

/// One request a counted client sent, with what it touched.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    /// The service's name as the SDK gives it: `"DynamoDB"`, `"SQS"`.
    pub service: String,
    /// The operation's name: `"GetItem"`, `"TransactWriteItems"`, `"SendMessage"`, ...
    pub operation: String,
    /// Whether the service answered with a success (a failed condition is no success).
    pub succeeded: bool,
    /// Reads (`GetItem`, `BatchGetItem`, `Query`, `Scan`, `TransactGetItems`): the size of each
    /// item read, as returned; a requested key with no item counts as size 0.
    pub read_sizes: Vec<u64>,
    /// Whether the read was strongly consistent.
    pub consistent: bool,
    /// `BatchGetItem`: the keys requested, in order (`read_sizes` follows this order).
    pub read_keys: Vec<ItemKey>,
    /// Writes (`PutItem`, `UpdateItem`, `DeleteItem`, `BatchWriteItem`, `TransactWriteItems`,
    /// its `ConditionCheck`s included): each item's key, and a put's item size from its input.
    pub writes: Vec<Write>,
    /// `SendMessage` and `SendMessageBatch`: each message's bytes (body and attributes).
    pub message_bytes: Vec<u64>,
}

/// One item a write request changes (or, for a transaction's `ConditionCheck`, checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub key: ItemKey,
    /// The item a put writes, sized from the request; `None` for updates, deletes, checks.
    pub put_size: Option<u64>,
}

/// The bytes one SQS request covers: a 64 KB chunk of payload is billed as one request.
pub const SQS_CHUNK_BYTES: u64 = 64 * 1024;

impl Request {
    /// Read units by the operation's rule in [`capacity`]: a `GetItem` of its item (0 when
    /// none), a `BatchGetItem` item by item, a `Query`/`Scan` page as one read of its items'
    /// total, a `TransactGetItems` at twice. 0 for anything that is not a DynamoDB read.
    pub fn read_units(&self) -> f64 {
        match self.operation.as_str() {
            "GetItem" => capacity::read_units(self.read_sizes.first().copied().unwrap_or(0), self.consistent),
            "BatchGetItem" => capacity::batch_get_read_units(&self.read_sizes, self.consistent),
            "Query" | "Scan" => capacity::query_read_units(&self.read_sizes, self.consistent),
            "TransactGetItems" => capacity::transact_read_units(&self.read_sizes),
            _ => 0.0,
        }
    }

    /// Write units, each item sized as the larger of its size `before` the request, `after`
    /// it (0 when absent) and a put's own size, as DynamoDB charges an item's larger image;
    /// a transaction's items at twice. 0 for anything that is not a DynamoDB write.
    pub fn write_units(&self, before: impl Fn(&ItemKey) -> u64, after: impl Fn(&ItemKey) -> u64) -> u64 {
        let sizes: Vec<u64> =
            self.writes.iter().map(|w| before(&w.key).max(after(&w.key)).max(w.put_size.unwrap_or(0))).collect();
        match self.operation.as_str() {
            "PutItem" | "UpdateItem" | "DeleteItem" => capacity::write_units(sizes.first().copied().unwrap_or(0)),
            "BatchWriteItem" => capacity::batch_write_units(&sizes),
            "TransactWriteItems" => capacity::transact_write_units(&sizes),
            _ => 0,
        }
    }

    /// What SQS bills for the request: one request per 64 KB chunk of each message's payload
    /// (at least one per request). 0 for anything that is not SQS.
    pub fn sqs_billed_requests(&self) -> u64 {
        if self.service != "SQS" {
            return 0;
        }
        let chunks: u64 = self.message_bytes.iter().map(|bytes| bytes.div_ceil(SQS_CHUNK_BYTES).max(1)).sum();
        chunks.max(1)
    }
}

/// The requests the clients it is installed in sent, in order: one per call, however many
/// attempts the SDK's retries made. Clones share one log. Install it with [`counted_client`]
/// (DynamoDB) or [`counted_sqs_client`] (SQS).
#[derive(Debug, Clone, Default)]
pub struct RequestLog(Arc<Mutex<Vec<Request>>>);

/// The position of a request's entry in its log, kept in the request's config bag so its
/// answer is matched to it even when requests run concurrently.
#[derive(Debug, Clone, Copy)]
struct Entry(usize);

impl Storable for Entry {
    type Storer = StoreReplace<Self>;
}

impl RequestLog {
    /// The operation names recorded since the last `take`, in order; the log is left empty.
    pub fn take(&self) -> Vec<String> {
        self.take_requests().into_iter().map(|r| r.operation).collect()
    }

    /// The requests recorded since the last `take`, in order, with what each touched; the
    /// log is left empty.
    pub fn take_requests(&self) -> Vec<Request> {
        std::mem::take(&mut *self.lock())
    }

    /// How many requests were recorded since the last `take`.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Request>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Intercept for RequestLog {
    fn name(&self) -> &'static str {
        "RequestLog"
    }

    // Not `read_before_execution`: a client's interceptors see an execution start before the
    // operation has put its `Metadata` (the name) in the config bag. The input is read here:
    // it is gone (serialized) by the time the answer comes back.
    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Every generated operation stores its `Metadata`; "unknown" keeps `count` exact if one did not.
        let (service, operation) = cfg.load::<Metadata>().map_or(("unknown", "unknown"), |m| (m.service(), m.name()));
        let mut request =
            Request { service: service.to_owned(), operation: operation.to_owned(), ..Request::default() };
        describe_input(context.input(), &mut request);
        let mut log = self.lock();
        cfg.interceptor_state().store_put(Entry(log.len()));
        log.push(request);
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(&Entry(index)) = cfg.load::<Entry>() else { return Ok(()) };
        let output = context.output_or_error().and_then(Result::ok);
        if let Some(request) = self.lock().get_mut(index) {
            request.succeeded = output.is_some();
            if let Some(output) = output {
                describe_output(output, request);
            }
        }
        Ok(())
    }
}

/// The key of `item` (or of a `Key` map) as [`ItemKey`].
pub fn item_key(item: &HashMap<String, AttributeValue>) -> ItemKey {
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(value)) => value.clone(),
        _ => String::new(),
    };
    (text(KEY_ATTRIBUTES[0]), text(KEY_ATTRIBUTES[1]))
}

fn write(key: Option<&HashMap<String, AttributeValue>>) -> Write {
    Write { key: key.map(item_key).unwrap_or_default(), put_size: None }
}

fn put(item: Option<&HashMap<String, AttributeValue>>) -> Write {
    let item = item.cloned().unwrap_or_default();
    Write { key: item_key(&item), put_size: Some(capacity::item_size(&item)) }
}

fn describe_input(input: &Input, request: &mut Request) {
    use aws_sdk_dynamodb::operation as ddb;
    use aws_sdk_sqs::operation as sqs;
    if let Some(input) = input.downcast_ref::<ddb::get_item::GetItemInput>() {
        request.consistent = input.consistent_read == Some(true);
    } else if let Some(input) = input.downcast_ref::<ddb::query::QueryInput>() {
        request.consistent = input.consistent_read == Some(true);
    } else if let Some(input) = input.downcast_ref::<ddb::scan::ScanInput>() {
        request.consistent = input.consistent_read == Some(true);
    } else if let Some(input) = input.downcast_ref::<ddb::batch_get_item::BatchGetItemInput>() {
        let tables = input.request_items.iter().flat_map(|items| items.values());
        request.consistent = tables.clone().all(|t| t.consistent_read == Some(true));
        // The answer fills in the sizes of those found.
        request.read_keys = tables.flat_map(|t| t.keys.iter().map(item_key)).collect();
    } else if input.downcast_ref::<ddb::transact_get_items::TransactGetItemsInput>().is_some() {
        request.consistent = true;
    } else if let Some(input) = input.downcast_ref::<ddb::put_item::PutItemInput>() {
        request.writes = vec![put(input.item.as_ref())];
    } else if let Some(input) = input.downcast_ref::<ddb::update_item::UpdateItemInput>() {
        request.writes = vec![write(input.key.as_ref())];
    } else if let Some(input) = input.downcast_ref::<ddb::delete_item::DeleteItemInput>() {
        request.writes = vec![write(input.key.as_ref())];
    } else if let Some(input) = input.downcast_ref::<ddb::batch_write_item::BatchWriteItemInput>() {
        let requests = input.request_items.iter().flat_map(|items| items.values().flatten());
        request.writes = requests
            .filter_map(|r| match (&r.put_request, &r.delete_request) {
                (Some(p), _) => Some(put(Some(&p.item))),
                (None, Some(d)) => Some(write(Some(&d.key))),
                (None, None) => None,
            })
            .collect();
    } else if let Some(input) = input.downcast_ref::<ddb::transact_write_items::TransactWriteItemsInput>() {
        request.writes = input
            .transact_items
            .iter()
            .flatten()
            .filter_map(|item| {
                if let Some(p) = &item.put {
                    Some(put(Some(&p.item)))
                } else if let Some(u) = &item.update {
                    Some(write(Some(&u.key)))
                } else if let Some(d) = &item.delete {
                    Some(write(Some(&d.key)))
                } else {
                    item.condition_check.as_ref().map(|c| write(Some(&c.key)))
                }
            })
            .collect();
    } else if let Some(input) = input.downcast_ref::<sqs::send_message::SendMessageInput>() {
        request.message_bytes = vec![message_bytes(input.message_body.as_deref(), input.message_attributes.as_ref())];
    } else if let Some(input) = input.downcast_ref::<sqs::send_message_batch::SendMessageBatchInput>() {
        let entries = input.entries.iter().flatten();
        request.message_bytes =
            entries.map(|e| message_bytes(Some(e.message_body.as_str()), e.message_attributes.as_ref())).collect();
    }
}

fn describe_output(output: &Output, request: &mut Request) {
    use aws_sdk_dynamodb::operation as ddb;
    let sizes = |items: Option<&Vec<HashMap<String, AttributeValue>>>| -> Vec<u64> {
        items.into_iter().flatten().map(capacity::item_size).collect()
    };
    if let Some(output) = output.downcast_ref::<ddb::get_item::GetItemOutput>() {
        request.read_sizes = vec![output.item.as_ref().map_or(0, capacity::item_size)];
    } else if let Some(output) = output.downcast_ref::<ddb::query::QueryOutput>() {
        request.read_sizes = sizes(output.items.as_ref());
    } else if let Some(output) = output.downcast_ref::<ddb::scan::ScanOutput>() {
        request.read_sizes = sizes(output.items.as_ref());
    } else if let Some(output) = output.downcast_ref::<ddb::batch_get_item::BatchGetItemOutput>() {
        let found: BTreeMap<ItemKey, u64> = output
            .responses
            .iter()
            .flat_map(|tables| tables.values().flatten())
            .map(|item| (item_key(item), capacity::item_size(item)))
            .collect();
        request.read_sizes = request.read_keys.iter().map(|key| found.get(key).copied().unwrap_or(0)).collect();
    } else if let Some(output) = output.downcast_ref::<ddb::transact_get_items::TransactGetItemsOutput>() {
        let items = output.responses.iter().flatten();
        request.read_sizes = items.map(|r| r.item.as_ref().map_or(0, capacity::item_size)).collect();
    }
}

/// A message's payload as SQS sizes it: the body's UTF-8 bytes and, for each attribute, its
/// name, data type and value.
fn message_bytes(
    body: Option<&str>,
    attributes: Option<&HashMap<String, aws_sdk_sqs::types::MessageAttributeValue>>,
) -> u64 {
    let attributes = attributes.into_iter().flatten().map(|(name, value)| {
        let data = value.string_value.as_deref().map_or(0, str::len)
            + value.binary_value.as_ref().map_or(0, |b| b.as_ref().len());
        name.len() + value.data_type.len() + data
    });
    let total = body.map_or(0, str::len) + attributes.sum::<usize>();
    u64::try_from(total).unwrap_or(u64::MAX)
}

/// A DynamoDB client configured as `config` is, whose requests `log` records. Give it the
/// core's configuration, `tollgate::adapters::aws::dynamodb(&sdk).config()`, and it has the same region,
/// credentials and endpoint (`AWS_ENDPOINT_URL` still reaches the local server).
pub fn counted_client(config: &aws_sdk_dynamodb::Config, log: &RequestLog) -> Client {
    Client::from_conf(config.to_builder().interceptor(log.clone()).build())
}

/// An SQS client configured as `config` is, whose requests `log` records.
pub fn counted_sqs_client(config: &aws_sdk_sqs::Config, log: &RequestLog) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::from_conf(config.to_builder().interceptor(log.clone()).build())
}

/// The size of every item of `table`, by key, read with one consistent `Scan` per page
/// through `client` (give it an uncounted one): the sizes before or after an operation, for
/// [`Request::write_units`]. Meant for the small tables of tests and benchmarks.
pub async fn item_sizes(client: &Client, table: &str) -> Result<BTreeMap<ItemKey, u64>, BoxError> {
    let mut sizes = BTreeMap::new();
    let mut start = None;
    loop {
        let page = client.scan().table_name(table).consistent_read(true).set_exclusive_start_key(start).send().await?;
        for item in page.items() {
            sizes.insert(item_key(item), capacity::item_size(item));
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return Ok(sizes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::query::QueryOutput;
    use aws_sdk_dynamodb::types::AttributeValue;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    #[tokio::test]
    async fn each_request_is_recorded_by_its_operation_name() {
        let get = mock!(Client::get_item).then_output(|| GetItemOutput::builder().build());
        let query = mock!(Client::query).then_output(|| QueryOutput::builder().build());
        let log = RequestLog::default();
        let client = counted_client(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&get, &query]).config(), &log);

        client.get_item().table_name("t").key("pk", AttributeValue::S("a".into())).send().await.expect("mocked get");
        client.query().table_name("t").send().await.expect("mocked query");

        assert_eq!(log.count(), 2);
        assert_eq!(log.take(), ["GetItem", "Query"]);
        assert_eq!(log.count(), 0, "take empties the log");
    }

    fn item(pk: &str, sk: &str, filler: usize) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(pk.into())),
            ("sk".to_owned(), AttributeValue::S(sk.into())),
            ("x".to_owned(), AttributeValue::S("a".repeat(filler))),
        ])
    }

    #[tokio::test]
    async fn reads_are_priced_from_the_items_they_return() {
        let found = item("A", "B", 5000);
        let returned = found.clone();
        let get = mock!(Client::get_item)
            .then_output(move || GetItemOutput::builder().set_item(Some(returned.clone())).build());
        let log = RequestLog::default();
        let client = counted_client(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&get]).config(), &log);

        client
            .get_item()
            .table_name("t")
            .key("pk", AttributeValue::S("A".into()))
            .consistent_read(true)
            .send()
            .await
            .expect("mocked get");

        let request = &log.take_requests()[0];
        assert_eq!((request.service.as_str(), request.operation.as_str()), ("DynamoDB", "GetItem"));
        assert!(request.succeeded && request.consistent);
        assert_eq!(request.read_sizes, [capacity::item_size(&found)]);
        assert_eq!(request.read_units(), 2.0, "5 KB strongly consistent: two 4 KB units");
    }

    #[tokio::test]
    async fn writes_are_priced_from_the_larger_image_of_each_item() {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsOutput;
        use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
        let transact = mock!(Client::transact_write_items).then_output(|| TransactWriteItemsOutput::builder().build());
        let log = RequestLog::default();
        let client = counted_client(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&transact]).config(), &log);
        let put = Put::builder().table_name("t").set_item(Some(item("A", "new", 1500))).build().expect("a put");
        let update = Update::builder()
            .table_name("t")
            .key("pk", AttributeValue::S("A".into()))
            .key("sk", AttributeValue::S("old".into()))
            .update_expression("SET n = :n")
            .build()
            .expect("an update");

        client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().update(update).build())
            .send()
            .await
            .expect("mocked transaction");

        let request = &log.take_requests()[0];
        let keys: Vec<&ItemKey> = request.writes.iter().map(|w| &w.key).collect();
        assert_eq!(keys, [&("A".to_owned(), "new".to_owned()), &("A".to_owned(), "old".to_owned())]);
        // The put: 2 KB from its own size; the update: 3 KB before, 100 bytes after.
        let before = |key: &ItemKey| if key.1 == "old" { 2100 } else { 0 };
        let after = |key: &ItemKey| if key.1 == "old" { 100 } else { 1510 };
        assert_eq!(request.write_units(before, after), 2 * (2 + 3));
    }

    #[tokio::test]
    async fn clones_share_one_log() {
        let query = mock!(Client::query).then_output(|| QueryOutput::builder().build());
        let log = RequestLog::default();
        let client =
            counted_client(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&query]).config(), &log.clone());

        client.query().table_name("t").send().await.expect("mocked query");

        assert_eq!(log.take(), ["Query"]);
    }
}
