//! Metering against the single-threaded local DynamoDB: the `usage` handler on the real store
//! with faults injected into its transaction, the DynamoDB requests and capacity units of each
//! decision, and the whole local stack over HTTP (a Free account consumed to its quota, a Pro
//! checkout opening a new window, 200 parallel consumers taking exactly what is left, one key
//! retried in parallel counted once).

mod common;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextMut, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use lambda_http::http::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tollgate::adapters::dynamo::DynamoStore;
use tollgate::app::usage::UsageDeps;
use tollgate::domain::model::AccountId;
use tollgate::edge::config::IdentityConfig;
use tollgate::edge::webhook::DEV_WEBHOOK_SECRET;
use tollgate::ports::keys;
use tollgate::ports::usage::UsageStore;
use tollgate::testing::capacity;
use tollgate::testing::{FixedClock, Outbox, RequestLog, counted_client, settings};
use tollgate_standin::TriggerSpec;

const NOW: i64 = 1_795_273_200;

// ---- the handler on the real store ----

/// How a fault breaks the first `TransactWriteItems` the client sends (later ones go through).
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// A part of the transaction after the idempotency record's check fails (as a counter
    /// write that cannot be applied would): DynamoDB cancels the whole transaction.
    CancelAfterTheRecord,
    /// The transaction commits and its answer is lost on the way back.
    LoseTheAnswer,
    /// The first `n` transactions are cancelled for a conflict with another in flight
    /// (`TransactionConflict`), writing nothing, as DynamoDB does and moto never does.
    Conflicts(usize),
}

/// Marks a request this interceptor made conflict.
#[derive(Debug, Clone)]
struct Conflicted;

impl aws_smithy_types::config_bag::Storable for Conflicted {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

#[derive(Debug)]
struct Faulty {
    fault: Fault,
    transactions: Arc<AtomicUsize>,
}

impl Faulty {
    fn first(&self, operation: &str) -> bool {
        operation == "TransactWriteItems" && self.transactions.fetch_add(1, Ordering::SeqCst) == 0
    }
}

impl Intercept for Faulty {
    fn name(&self) -> &'static str {
        "Faulty"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(input) = context.input_mut().downcast_mut::<TransactWriteItemsInput>() else { return Ok(()) };
        if let Fault::Conflicts(n) = self.fault
            && self.transactions.fetch_add(1, Ordering::SeqCst) < n
        {
            // Sent to a table that does not exist, so that nothing is written; its answer
            // becomes the conflict below.
            let items = input.transact_items.take().unwrap_or_default();
            let elsewhere = items.into_iter().map(|item| {
                let mut item = item;
                if let Some(put) = item.put.as_mut() {
                    put.table_name = "tollgate-no-such-table".into();
                }
                if let Some(update) = item.update.as_mut() {
                    update.table_name = "tollgate-no-such-table".into();
                }
                if let Some(check) = item.condition_check.as_mut() {
                    check.table_name = "tollgate-no-such-table".into();
                }
                if let Some(delete) = item.delete.as_mut() {
                    delete.table_name = "tollgate-no-such-table".into();
                }
                item
            });
            input.transact_items = Some(elsewhere.collect());
            _cfg.interceptor_state().store_put(Conflicted);
            return Ok(());
        }
        if matches!(self.fault, Fault::CancelAfterTheRecord) && self.first("TransactWriteItems") {
            let items = input.transact_items.get_or_insert_with(Vec::new);
            let table = items[0].put().unwrap().table_name().to_owned();
            let never = ConditionCheck::builder()
                .table_name(table)
                .key("pk", AttributeValue::S("FAULT".into()))
                .key("sk", AttributeValue::S("FAULT".into()))
                .condition_expression("attribute_exists(pk)")
                .build()
                .unwrap();
            items.push(TransactWriteItem::builder().condition_check(never).build());
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextMut<
            '_,
        >,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<Conflicted>().is_none() {
            return Ok(());
        }
        cfg.interceptor_state().unset::<Conflicted>();
        let response = context.response_mut();
        *response.status_mut() = aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap();
        response.headers_mut().insert("x-amzn-errortype", "TransactionCanceledException");
        let body = json!({
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict]",
            "CancellationReasons": [{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}],
        });
        *response.body_mut() = aws_smithy_types::body::SdkBody::from(body.to_string());
        Ok(())
    }

    fn read_after_execution(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // The input is gone by now (serialized); the operation's name is in the config bag.
        let operation = cfg.load::<Metadata>().map_or("", Metadata::name);
        if matches!(self.fault, Fault::LoseTheAnswer) && self.first(operation) {
            return Err("the connection dropped after the request was sent".into());
        }
        Ok(())
    }
}

struct Direct {
    deps: usage::Deps<DynamoStore, Outbox>,
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// The `usage` handler on a fresh table of the local server, its client carrying `extra`.
async fn direct(test: &str, log: &RequestLog, fault: Option<Fault>) -> Direct {
    let (aws, resources) = common::local(test).await;
    let plain = tollgate::adapters::aws::dynamodb(&aws);
    let mut config = plain.config().to_builder();
    if let Some(fault) = fault {
        config = config.interceptor(Faulty { fault, transactions: Arc::default() });
    }
    let client = counted_client(&config.build(), log);
    let store = DynamoStore::new(client, resources.table.clone());
    let deps = usage::Deps {
        usage: UsageDeps { store, notifier: Outbox::default(), settings: settings(&FixedClock::at(NOW)) },
        identity: IdentityConfig { claim: "sub".into() },
    };
    Direct { deps, client: plain, table: resources.table }
}

/// The writes that are the operator's: `POST <path>` on `/operator/accounts/{account_id}<path>`.
const OPERATOR_WRITES: [&str; 4] = ["/usage", "/usage/refund", "/credits/consume", "/credits/refund"];

/// `method path` with `body` as API Gateway passes it for `acct_alice`: a write as the
/// operator's (an IAM principal, the account in the path), a read or check with a verified JWT.
fn request(method: &str, path: &str, body: &str) -> lambda_http::Request {
    let (sample, path) = if method == "POST" && OPERATOR_WRITES.contains(&path) {
        ("apigw-post-operator-usage.json", format!("/operator/accounts/acct_alice{path}"))
    } else {
        ("apigw-post-usage-check.json", path.to_owned())
    };
    let raw = std::fs::read_to_string(format!("{}/../events/{sample}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut event: Value = serde_json::from_str(&raw).unwrap();
    let path = path.as_str();
    event["rawPath"] = path.into();
    event["requestContext"]["http"]["method"] = method.into();
    event["requestContext"]["http"]["path"] = path.into();
    event["body"] = body.into();
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

fn consume(quantity: u64, key: &str) -> String {
    json!({"metric": "api_calls", "quantity": quantity, "idempotency_key": key}).to_string()
}

impl Direct {
    async fn call(&self, method: &str, path: &str, body: &str) -> (StatusCode, Value) {
        let response = usage::handle(&self.deps, request(method, path, body)).await.unwrap();
        (response.status(), serde_json::from_slice(response.body().as_ref()).unwrap_or(Value::Null))
    }

    async fn used(&self) -> u64 {
        let window = tollgate::domain::usage::window(None, NOW);
        self.deps.usage.store.used(&alice(), "api_calls", &window).await.unwrap()
    }

    async fn record(&self, key: &str) -> Option<HashMap<String, AttributeValue>> {
        self.item(keys::usage_request(&alice(), key), keys::IDEMPOTENCY).await
    }

    async fn item(&self, pk: String, sk: &str) -> Option<HashMap<String, AttributeValue>> {
        let got = self.client.get_item().table_name(&self.table).key("pk", AttributeValue::S(pk));
        got.key("sk", AttributeValue::S(sk.to_owned())).send().await.unwrap().item
    }
}

fn alice() -> AccountId {
    AccountId::parse("acct_alice").unwrap()
}

#[tokio::test]
async fn a_transaction_cancelled_after_the_idempotency_check_leaves_no_record_so_the_retry_counts() {
    let log = RequestLog::default();
    let direct = direct("usage-fault", &log, Some(Fault::CancelAfterTheRecord)).await;

    let (failed, _) = direct.call("POST", "/usage", &consume(3, "job-1")).await;
    let record_after_failure = direct.record("job-1").await;
    let used_after_failure = direct.used().await;
    let (retried, answer) = direct.call("POST", "/usage", &consume(3, "job-1")).await;
    let (replayed, _) = direct.call("POST", "/usage", &consume(3, "job-1")).await;

    assert!(failed.is_server_error() || failed == StatusCode::CONFLICT, "the failed write is no success: {failed}");
    assert!(record_after_failure.is_none(), "no idempotency record without its count");
    assert_eq!(used_after_failure, 0);
    assert_eq!((retried, answer["used"].as_u64()), (StatusCode::OK, Some(3)), "the retry counts");
    assert_eq!(replayed, StatusCode::OK);
    assert_eq!(direct.used().await, 3, "counted once");
    assert!(direct.record("job-1").await.is_some());
}

#[tokio::test]
async fn transactions_cancelled_for_a_conflict_are_sent_again_and_count_once() {
    let log = RequestLog::default();
    let direct = direct("usage-conflicts", &log, Some(Fault::Conflicts(3))).await;
    let (counted, answer) = direct.call("POST", "/usage", &consume(3, "job-1")).await;
    let sent = log.take().iter().filter(|op| *op == "TransactWriteItems").count();
    let (replayed, _) = direct.call("POST", "/usage", &consume(3, "job-1")).await;

    assert_eq!((counted, answer["used"].as_u64()), (StatusCode::OK, Some(3)), "{answer}");
    assert_eq!(sent, 4, "three conflicts, then the commit");
    assert_eq!(replayed, StatusCode::OK);
    assert_eq!(direct.used().await, 3, "counted once");
}

#[tokio::test]
async fn conflicts_beyond_the_retries_answer_unavailable_and_count_nothing() {
    let log = RequestLog::default();
    let direct = direct("usage-conflicts-forever", &log, Some(Fault::Conflicts(100))).await;

    let (refused, answer) = direct.call("POST", "/usage", &consume(3, "job-1")).await;
    let sent = log.take().iter().filter(|op| *op == "TransactWriteItems").count();

    assert_eq!(refused, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(sent, 5, "the first attempt and four retries, bounded");
    assert_eq!(direct.used().await, 0);
    assert!(direct.record("job-1").await.is_none());
}

#[tokio::test]
async fn an_answer_lost_after_the_commit_is_replayed_not_counted_twice() {
    let log = RequestLog::default();
    let direct = direct("usage-lost", &log, Some(Fault::LoseTheAnswer)).await;

    let (lost, _) = direct.call("POST", "/usage", &consume(4, "job-2")).await;
    let (retried, answer) = direct.call("POST", "/usage", &consume(4, "job-2")).await;

    assert!(lost.is_server_error(), "{lost}");
    assert_eq!((retried, answer["used"].as_u64()), (StatusCode::OK, Some(4)));
    assert_eq!(direct.used().await, 4, "the committed consumption is not counted again");
}

/// Bytes of each item, as DynamoDB sizes them.
fn sizes(items: &[HashMap<String, AttributeValue>]) -> Vec<u64> {
    items.iter().map(capacity::item_size).collect()
}

#[tokio::test]
async fn each_decision_costs_a_fixed_set_of_requests_and_capacity_units() {
    let log = RequestLog::default();
    let direct = direct("usage-cost", &log, None).await;
    let requests = |expected: &[&str]| assert_eq!(log.take(), expected);

    direct.call("POST", "/usage", &consume(1, "warm")).await;
    log.take();
    assert_eq!(direct.call("POST", "/usage", &consume(1, "k")).await.0, StatusCode::OK);
    requests(&["Query", "TransactWriteItems", "BatchGetItem"]);
    direct.call("POST", "/usage", &consume(1, "k")).await;
    requests(&["Query", "TransactWriteItems", "GetItem", "BatchGetItem"]);
    direct.call("POST", "/usage/check", r#"{"metric":"api_calls","quantity":1}"#).await;
    requests(&["Query", "BatchGetItem"]);
    direct.call("GET", "/usage", "").await;
    requests(&["Query"]);
    direct.call("POST", "/usage/refund", r#"{"idempotency_key":"k"}"#).await;
    requests(&["GetItem", "TransactWriteItems", "BatchGetItem"]);

    // Capacity units of one consumption, from the items as stored.
    let window = tollgate::domain::usage::window(None, NOW);
    let minute = NOW * 1000 - (NOW * 1000).rem_euclid(60_000);
    let account = keys::account(&alice());
    let counter = direct.item(account.clone(), &keys::usage("api_calls", window.start)).await.unwrap();
    let rate = direct.item(account.clone(), &keys::rate("usage", minute)).await.unwrap();
    let record = direct.record("k").await.unwrap();
    let written = sizes(&[record, rate.clone(), counter.clone()]);
    assert!(written.iter().all(|size| *size < 1024), "{written:?}");
    assert_eq!(capacity::transact_write_units(&written), 6, "three items under 1 KB, written transactionally");
    assert_eq!(capacity::query_read_units(&sizes(std::slice::from_ref(&counter)), true), 1.0);
    assert_eq!(capacity::batch_get_read_units(&sizes(&[counter, rate]), true), 2.0);
}

#[tokio::test]
async fn the_subscription_read_with_its_usage_is_one_query() {
    let log = RequestLog::default();
    let direct = direct("usage-read", &log, None).await;
    direct.call("POST", "/usage", &consume(7, "k")).await;
    let deps = subscription::Deps {
        store: direct.deps.usage.store.clone(),
        settings: settings(&FixedClock::at(NOW)),
        identity: IdentityConfig { claim: "sub".into() },
    };
    log.take();

    let response = subscription::handle(&deps, request("GET", "/subscription", "")).await.unwrap();

    assert_eq!(log.take(), ["Query"]);
    let read: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    assert_eq!(read["usage"]["metrics"]["api_calls"], json!({"used": 7, "limit": 100, "remaining": 93}));
}

// ---- the local stack over HTTP ----

/// The development name the local runner passes as the operator's IAM principal.
const OPERATOR: &str = "backend-test";

struct Stack(common::LocalStack);

impl Stack {
    async fn call(&self, method: reqwest::Method, path: &str, account: &str, body: Value) -> (u16, Value) {
        let response = reqwest::Client::new()
            .request(method, format!("{}{path}", self.0.base))
            .header("x-tollgate-account", account)
            .json(&body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }

    /// `POST /operator/accounts/{account}<sub>` as the operator (the development IAM name).
    async fn operate(&self, sub: &str, account: &str, body: Value) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(format!("{}/operator/accounts/{account}{sub}", self.0.base))
            .header("x-tollgate-operator", OPERATOR)
            .json(&body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }

    /// `GET /operator/accounts/{account}` as the operator.
    async fn operator_read(&self, account: &str) -> Value {
        let response = reqwest::Client::new()
            .get(format!("{}/operator/accounts/{account}", self.0.base))
            .header("x-tollgate-operator", OPERATOR)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    async fn consume(&self, account: &str, quantity: u64, key: &str) -> (u16, Value) {
        let body = json!({"metric": "api_calls", "quantity": quantity, "idempotency_key": key});
        self.operate("/usage", account, body).await
    }

    async fn subscribe(&self, account: &str, plan: &str) {
        let spec = TriggerSpec::new("checkout.session.completed", account).plan(plan);
        tollgate_dev::trigger::trigger(&self.0.base, DEV_WEBHOOK_SECRET, &spec, false).await.unwrap();
        self.0.drain().await;
    }
}

#[tokio::test]
async fn free_consumes_to_its_quota_then_a_pro_checkout_opens_a_window_up_to_the_pro_limit() {
    let stack = Stack(common::serve_stack("usage-http").await);
    let account = "acct_metered";

    let first = stack.consume(account, 60, "f1").await;
    let rest = stack.consume(account, 40, "f2").await;
    let over = stack.consume(account, 1, "f3").await;
    stack.subscribe(account, "pro").await;
    let (status, read) = stack.call(reqwest::Method::GET, "/subscription", account, Value::Null).await;
    let pro = stack.consume(account, 9_000, "p1").await;
    let to_the_limit = stack.consume(account, 1_000, "p2").await;
    let over_pro = stack.consume(account, 1, "p3").await;
    let (_, report) = stack.call(reqwest::Method::GET, "/usage", account, Value::Null).await;
    let (_, after) = stack.call(reqwest::Method::GET, "/subscription", account, Value::Null).await;

    assert_eq!((first.0, first.1["remaining"].as_u64()), (200, Some(40)));
    assert_eq!((rest.0, rest.1["used"].as_u64(), rest.1["limit"].as_u64()), (200, Some(100), Some(100)));
    assert_eq!((over.0, over.1["error"]["code"].as_str()), (429, Some("quota_exceeded")));
    assert_eq!((status, read["plan"].as_str()), (200, Some("pro")));
    assert_eq!(read["usage"]["metrics"]["api_calls"], json!({"used": 0, "limit": 10_000, "remaining": 10_000}));
    assert_ne!(read["usage"]["period_start"], first.1["period_start"], "the subscription opened a new window");
    assert_eq!((pro.0, pro.1["used"].as_u64()), (200, Some(9_000)));
    assert_eq!((to_the_limit.0, to_the_limit.1["remaining"].as_u64()), (200, Some(0)));
    assert_eq!((over_pro.0, over_pro.1["error"]["code"].as_str()), (429, Some("quota_exceeded")));
    assert_eq!(report["metrics"]["api_calls"], json!({"used": 10_000, "limit": 10_000, "remaining": 0}));
    assert_eq!(after["usage"], report, "GET /subscription shows this period's usage");
    let notifications =
        common::receive_all(&stack.0.sqs, &stack.0.resources.queue("NotificationsQueue").unwrap().url).await;
    let mut alerts: Vec<(u64, u64)> = notifications
        .iter()
        .map(|body| serde_json::from_str::<Value>(body).unwrap())
        .filter(|n| n["kind"] == "usage_threshold")
        .map(|n| (n["details"]["threshold_percent"].as_u64().unwrap(), n["details"]["limit"].as_u64().unwrap()))
        .collect();
    alerts.sort_unstable();
    assert_eq!(alerts, [(80, 100), (80, 10_000), (100, 100), (100, 10_000)], "each crossing told once per window");
}

#[tokio::test]
async fn two_hundred_parallel_consumers_take_exactly_the_fifty_left_and_one_key_counts_once() {
    let stack = Arc::new(Stack(common::serve_stack("usage-race").await));
    let account = "acct_burst";
    // Team: 100,000 a month, 500 requests a minute (the burst fits).
    stack.subscribe(account, "team").await;
    assert_eq!(stack.consume(account, 99_950, "setup").await.0, 200);

    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let stack = Arc::clone(&stack);
            tokio::spawn(async move { stack.consume(account, 1, &format!("burst-{i}")).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        statuses.push((status, body["error"]["code"].as_str().map(str::to_owned)));
    }
    let retries: Vec<_> = (0..10)
        .map(|_| {
            let stack = Arc::clone(&stack);
            tokio::spawn(async move { stack.consume("acct_retry", 3, "the-same-key").await })
        })
        .collect();
    let mut retried = Vec::new();
    for task in retries {
        retried.push(task.await.unwrap());
    }
    let (_, report) = stack.call(reqwest::Method::GET, "/usage", account, Value::Null).await;
    let (_, retry_report) = stack.call(reqwest::Method::GET, "/usage", "acct_retry", Value::Null).await;

    assert_eq!(statuses.iter().filter(|(s, _)| *s == 200).count(), 50, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|(s, c)| *s == 429 && c.as_deref() == Some("quota_exceeded")).count(), 150);
    assert_eq!(report["metrics"]["api_calls"]["used"], 100_000, "the stored counter reads the limit");
    assert!(retried.iter().all(|(status, body)| *status == 200 && body["used"] == 3), "{retried:?}");
    assert_eq!(retry_report["metrics"]["api_calls"]["used"], 3, "ten parallel retries of one key count once");
}

#[tokio::test]
async fn a_key_checks_and_reads_its_own_account_while_the_operator_meters_it() {
    let stack = Stack(common::serve_stack("usage-key").await);
    let make = |scopes: Value| {
        let stack = &stack;
        async move {
            stack.call(reqwest::Method::POST, "/api-keys", "acct_keyed", json!({"name": "job", "scopes": scopes})).await
        }
    };
    let (writer_status, writer) = make(json!(["usage:write"])).await;
    let (_, reader) = make(json!(["usage:read"])).await;
    let reader = reader["key"].as_str().unwrap().to_owned();
    let with_key = |method: reqwest::Method, path: &str, key: &str, body: Value| {
        reqwest::Client::new().request(method, format!("{}{path}", stack.0.base)).bearer_auth(key).json(&body).send()
    };
    let body = json!({"metric": "api_calls", "quantity": 5, "idempotency_key": "k1"});

    let metered = stack.consume("acct_keyed", 5, "k1").await;
    let checked = with_key(reqwest::Method::POST, "/api/usage/check", &reader, body.clone()).await.unwrap();
    let written = with_key(reqwest::Method::POST, "/api/usage", &reader, body.clone()).await.unwrap();
    let read = with_key(reqwest::Method::GET, "/api/usage", &reader, Value::Null).await.unwrap();
    let no_key =
        reqwest::Client::new().post(format!("{}/api/usage/check", stack.0.base)).json(&body).send().await.unwrap();

    assert_eq!(
        (writer_status, writer["error"]["code"].as_str()),
        (400, Some("unknown_scope")),
        "usage:write is no scope"
    );
    assert_eq!(metered.0, 200);
    assert_eq!(checked.status(), 200);
    assert!(checked.headers().contains_key("ratelimit-policy"));
    assert_eq!(written.status(), 404, "no key route writes");
    assert_eq!(written.json::<Value>().await.unwrap(), json!({"message": "Not Found"}));
    assert_eq!(read.status(), 200);
    let report: Value = read.json().await.unwrap();
    assert_eq!(report["metrics"]["api_calls"]["used"], 5, "counted once, for the key's account");
    assert_eq!(no_key.status(), 401);
}

#[tokio::test]
async fn no_customer_or_key_credential_changes_a_count_or_the_ledger() {
    let stack = Stack(common::serve_stack("usage-line").await);
    let account = "acct_line";
    stack.subscribe(account, "pro").await;
    assert_eq!(stack.consume(account, 5, "job-1").await.0, 200);
    let spent = stack.operate(
        "/credits/consume",
        account,
        json!({"event": "api_call_basic", "quantity": 2, "idempotency_key": "c-1"}),
    );
    assert_eq!(spent.await.0, 200);
    let (_, key) = stack
        .call(
            reqwest::Method::POST,
            "/api-keys",
            account,
            json!({"name": "k", "scopes": ["usage:read", "subscription:read"]}),
        )
        .await;
    let key = key["key"].as_str().unwrap().to_owned();
    let before = stack.operator_read(account).await;
    let usage = json!({"metric": "api_calls", "quantity": 1, "idempotency_key": "job-2"});
    let refund = json!({"idempotency_key": "job-1"});
    let credits = json!({"event": "api_call_basic", "quantity": 1, "idempotency_key": "c-2"});
    let credit_refund = json!({"idempotency_key": "c-1"});
    let grant = json!({"credits": 100, "reason": "free money", "idempotency_key": "g"});
    let attempts = [
        ("/usage", &usage),
        ("/usage/refund", &refund),
        ("/credits/consume", &credits),
        ("/credits/refund", &credit_refund),
        ("/api/usage", &usage),
        ("/api/usage/refund", &refund),
        ("/api/credits/consume", &credits),
        ("/api/credits/refund", &credit_refund),
        (&*format!("/operator/accounts/{account}/usage"), &usage),
        (&*format!("/operator/accounts/{account}/usage/refund"), &refund),
        (&*format!("/operator/accounts/{account}/credits/consume"), &credits),
        (&*format!("/operator/accounts/{account}/credits/refund"), &credit_refund),
        (&*format!("/operator/accounts/{account}/credits/grants"), &grant),
    ];

    let mut answers = Vec::new();
    for (path, body) in attempts {
        let jwt = reqwest::Client::new().post(format!("{}{path}", stack.0.base)).header("x-tollgate-account", account);
        let keyed = reqwest::Client::new().post(format!("{}{path}", stack.0.base)).bearer_auth(&key);
        for request in [jwt, keyed] {
            let response = request.json(body).send().await.unwrap();
            answers.push((path.to_owned(), response.status().as_u16(), response.json::<Value>().await.unwrap()));
        }
    }
    let after = stack.operator_read(account).await;

    for (path, status, body) in &answers {
        let gateway = [(404, json!({"message": "Not Found"})), (403, json!({"message": "Forbidden"}))];
        assert!(gateway.contains(&(*status, body.clone())), "{path}: {status} {body}");
    }
    assert_eq!(after["usage"], before["usage"], "no count moved");
    assert_eq!(after["credits"], before["credits"], "no ledger entry, no balance moved");
    assert_eq!(after["usage"]["metrics"]["api_calls"]["used"], 5);
}

#[tokio::test]
async fn the_operator_meters_refunds_grants_and_batches_with_its_actor_shown_to_it_alone() {
    let stack = Stack(common::serve_stack("usage-operator").await);
    let account = "acct_ops";
    // Team: 100,000 a month and 500 requests a minute, so the batch meets the quota alone.
    stack.subscribe(account, "team").await;
    assert_eq!(stack.consume(account, 99_990, "base").await.0, 200);
    let records: Vec<Value> = (0..100)
        .map(|i| json!({"account_id": account, "metric": "api_calls", "quantity": 1, "idempotency_key": format!("b{i}")}))
        .collect();
    let batch = reqwest::Client::new()
        .post(format!("{}/operator/usage/batch", stack.0.base))
        .header("x-tollgate-operator", OPERATOR)
        .json(&json!({ "records": records }))
        .send()
        .await
        .unwrap();
    let status = batch.status().as_u16();
    let results: Value = batch.json().await.unwrap();
    let (granted, grant) = stack
        .operate("/credits/grants", account, json!({"credits": 25, "reason": "support", "idempotency_key": "g1"}))
        .await;
    let (spent, _) = stack
        .operate(
            "/credits/consume",
            account,
            json!({"event": "api_call_basic", "quantity": 3, "idempotency_key": "c1"}),
        )
        .await;
    let (refunded, refund) = stack.operate("/usage/refund", account, json!({"idempotency_key": "base"})).await;
    let read = stack.operator_read(account).await;
    let (_, customer) = stack.call(reqwest::Method::GET, "/credits", account, Value::Null).await;
    let unsigned = reqwest::Client::new()
        .post(format!("{}/operator/accounts/{account}/usage", stack.0.base))
        .json(&json!({"metric": "api_calls", "quantity": 1, "idempotency_key": "x"}))
        .send()
        .await
        .unwrap();

    assert_eq!(status, 200);
    let counted = results["results"].as_array().unwrap().iter().filter(|r| r["status"] == 200).count();
    let refused = results["results"].as_array().unwrap().iter().filter(|r| r["status"] == 429).count();
    assert_eq!((counted, refused), (10, 90), "a batch of 100 with 10 left counts exactly 10");
    assert_eq!((granted, grant["source"].as_str()), (201, Some("manual:support")));
    assert_eq!(spent, 200);
    assert_eq!((refunded, refund["used"].as_u64()), (200, Some(10)));
    assert_eq!(read["usage"]["metrics"]["api_calls"]["used"], 10);
    assert_eq!(read["credits"]["balance"], 5_000 + 25 - 3, "Team's plan credits, the grant, the spend");
    let mut actors: Vec<&str> =
        read["credits"]["entries"].as_array().unwrap().iter().filter_map(|e| e["actor"].as_str()).collect();
    // Entries of one millisecond list in no set order.
    actors.sort_unstable();
    assert_eq!(actors, [OPERATOR, OPERATOR, "tollgate"], "the consumption and manual grant, the plan's grant");
    assert!(customer["entries"].as_array().unwrap().iter().all(|e| e.get("actor").is_none()), "{customer}");
    assert!(!customer.to_string().contains(OPERATOR), "{customer}");
    assert_eq!(unsigned.status(), 403, "no operator header: API Gateway's answer to an unsigned request");
    assert_eq!(unsigned.json::<Value>().await.unwrap(), json!({"message": "Forbidden"}));
}

// ---- credits ----

#[tokio::test]
async fn a_credit_consumption_costs_a_query_and_a_transaction() {
    let log = RequestLog::default();
    let direct = direct("credits-cost", &log, None).await;
    let pro = tollgate::domain::model::Projection {
        current_period_start: Some(NOW - 86_400),
        current_period_end: Some(NOW + 29 * 86_400),
        ..tollgate::testing::projection("acct_alice")
    };
    tollgate::testing::subscribed(&direct.deps.usage.store, &pro).await;
    let spend = |key: &str| json!({"event": "api_call_basic", "quantity": 1, "idempotency_key": key}).to_string();
    log.take();

    let (first, answer) = direct.call("POST", "/credits/consume", &spend("first")).await;
    let first_requests = log.take();
    let (second, _) = direct.call("POST", "/credits/consume", &spend("second")).await;

    assert_eq!((first, answer["balance"].as_u64()), (StatusCode::OK, Some(999)));
    assert_eq!(
        first_requests,
        ["Query", "TransactWriteItems", "Query", "TransactWriteItems"],
        "the window's grant first"
    );
    assert_eq!(second, StatusCode::OK);
    assert_eq!(log.take(), ["Query", "TransactWriteItems"]);
    let account = keys::account(&alice());
    let grant = direct.item(account.clone(), &keys::grant(&format!("plan-{}-1", NOW - 86_400))).await.unwrap();
    let record = direct.item(keys::credit_request(&alice(), "second"), keys::IDEMPOTENCY).await.unwrap();
    let written = sizes(&[record, grant]);
    assert!(written.iter().all(|size| *size < 1024), "{written:?}");
    // The record, the ledger entry (under 1 KB, as the record) and one grant: 3 items, twice.
    assert_eq!(capacity::transact_write_units(&[written[0], written[0], written[1]]), 6);
}

#[tokio::test]
async fn a_hundred_parallel_consumers_take_exactly_the_thirty_credits_left_over_http() {
    let stack = Arc::new(Stack(common::serve_stack("credits-race").await));
    let account = "acct_credits";
    stack.subscribe(account, "pro").await;
    let spend =
        |quantity: u64, key: String| json!({"event": "api_call_basic", "quantity": quantity, "idempotency_key": key});
    let (status, setup) = stack.operate("/credits/consume", account, spend(970, "setup".into())).await;
    assert_eq!((status, setup["balance"].as_u64()), (200, Some(30)), "{setup}");

    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let stack = Arc::clone(&stack);
            let body = spend(1, format!("burst-{i}"));
            tokio::spawn(async move { stack.operate("/credits/consume", account, body).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        statuses.push((status, body["error"]["code"].as_str().map(str::to_owned)));
    }
    let (_, ledger) = stack.call(reqwest::Method::GET, "/credits?limit=100", account, Value::Null).await;
    let (_, read) = stack.call(reqwest::Method::GET, "/subscription", account, Value::Null).await;

    assert_eq!(statuses.iter().filter(|(s, _)| *s == 200).count(), 30, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|(s, c)| *s == 402 && c.as_deref() == Some("insufficient_credits")).count(), 70);
    assert_eq!(ledger["balance"], 0);
    let consumptions = ledger["entries"].as_array().unwrap().iter().filter(|e| e["kind"] == "consumption").count();
    assert_eq!(consumptions, 31, "the setup and exactly 30 of the burst");
    assert_eq!(read["credits"]["balance"], 0, "the subscription read shows the balance");
}

#[tokio::test]
async fn a_pack_bought_through_checkout_is_spent_listed_and_reversed_by_its_refund_over_http() {
    let stack = Stack(common::serve_stack("credits-pack").await);
    let account = "acct_pack";

    let (status, session) =
        stack.call(reqwest::Method::POST, "/credits/checkout", account, json!({"pack": "credits_1000"})).await;
    assert_eq!(status, 200, "{session}");
    let mark = stack.0.standin.events().len();
    stack.0.standin.complete_checkout_session(session["session_id"].as_str().unwrap()).unwrap();
    let events = stack.0.standin.events().split_off(mark);
    stack.0.deliver(&events).await;
    stack.0.deliver(&events).await;
    let spend = json!({"event": "ai_inference", "quantity": 2, "idempotency_key": "job-1"});
    let (spent, answer) = stack.operate("/credits/consume", account, spend).await;
    let (_, ledger) = stack.call(reqwest::Method::GET, "/credits", account, Value::Null).await;
    let spec = TriggerSpec::new("charge.refunded", account).pack("credits_1000");
    tollgate_dev::trigger::trigger(&stack.0.base, DEV_WEBHOOK_SECRET, &spec, false).await.unwrap();
    stack.0.drain().await;
    let (_, after) = stack.call(reqwest::Method::GET, "/credits", account, Value::Null).await;

    assert_eq!(
        (spent, answer["purchased"].as_u64()),
        (200, Some(950)),
        "granted once though delivered twice: {answer}"
    );
    assert_eq!(ledger["entries"].as_array().unwrap().len(), 2, "{ledger}");
    assert_eq!(ledger["entries"][0]["kind"], "consumption");
    assert_eq!(ledger["entries"][1]["kind"], "grant");
    assert_eq!(ledger["grants"][0]["kind"], "purchased");
    assert_eq!(ledger["grants"][0]["expires_at"], Value::Null, "bought credits never expire");
    assert_eq!(after["balance"], 0, "a refunded pack leaves no spendable credits: {after}");
    assert_eq!(after["entries"][0]["kind"], "reversal");
    assert_eq!(
        (after["entries"][0]["credits"].as_i64(), after["entries"][0]["quantity"].as_u64()),
        (Some(-950), Some(50))
    );
}

#[tokio::test]
async fn usage_reaches_the_stripe_meter_once_through_two_local_syncs_and_status_shows_it() {
    use tollgate::ports::billing::Billing;
    let stack = Stack(common::serve_stack("usage-meter").await);
    let account = "acct_meter_http";
    stack.subscribe(account, "pro").await;
    stack.consume(account, 30, "m1").await;
    stack.consume(account, 12, "m2").await;
    let (_, usage) = stack.call(reqwest::Method::GET, "/usage", account, Value::Null).await;

    tollgate_dev::ops::sync(stack.0.port, false).await.unwrap();
    tollgate_dev::ops::sync(stack.0.port, false).await.unwrap();

    let id = AccountId::parse(account).unwrap();
    let customer =
        tollgate::ports::accounts::AccountStore::account(&stack.0.app.store, &id).await.unwrap().unwrap().customer_id;
    let stripe = tollgate_standin::test_billing(&format!("{}/stripe/", stack.0.base));
    let start = usage["period_start"].as_i64().unwrap();
    let end = usage["period_end"].as_i64().unwrap();
    let total = stripe.meter_total("tollgate_api_calls", &customer, start - 60, end + 60).await.unwrap();
    let posts = stack.0.standin.requests().iter().filter(|r| r.path == "/v1/billing/meter_events").count();
    let health: Value = reqwest::get(format!("{}/health", stack.0.base)).await.unwrap().json().await.unwrap();

    assert_eq!(total, 42, "the stand-in's meter sums what was used");
    assert_eq!(posts, 1, "one meter event for both consumptions, none from the second sync");
    assert_eq!(health["sync"]["meters"]["sent"], 0, "the last run had nothing left to send: {health}");
    assert!(health["sync"]["meters"]["drift"].as_array().is_some_and(Vec::is_empty), "{health}");
    assert!(health["sync"]["meters"]["failed"].as_array().is_some_and(Vec::is_empty), "{health}");
}

#[tokio::test]
async fn a_counted_request_replays_its_answer_after_a_dispute_and_check_agrees_with_the_replay() {
    let stack = Stack(common::serve_stack("usage-replay").await);
    let disputed = "acct_replay_dispute";
    stack.subscribe(disputed, "pro").await;
    let body = json!({"metric": "api_calls", "quantity": 5, "idempotency_key": "k"});
    let first = stack.operate("/usage", disputed, body.clone()).await;
    let spec = TriggerSpec::new("charge.dispute.created", disputed);
    tollgate_dev::trigger::trigger(&stack.0.base, DEV_WEBHOOK_SECRET, &spec, false).await.unwrap();
    stack.0.drain().await;
    let full = "acct_replay_quota";
    let filled = stack.consume(full, 100, "k100").await;

    let retried = stack.operate("/usage", disputed, body.clone()).await;
    let fresh =
        stack.operate("/usage", disputed, json!({"metric": "api_calls", "quantity": 5, "idempotency_key": "k2"})).await;
    let check_replay = stack
        .call(
            reqwest::Method::POST,
            "/usage/check",
            full,
            json!({"metric": "api_calls", "quantity": 100, "idempotency_key": "k100"}),
        )
        .await;
    let operator_check = stack
        .operate("/usage/check", full, json!({"metric": "api_calls", "quantity": 100, "idempotency_key": "k100"}))
        .await;
    let check_new =
        stack.call(reqwest::Method::POST, "/usage/check", full, json!({"metric": "api_calls", "quantity": 100})).await;
    let check_mismatch = stack
        .operate("/usage/check", full, json!({"metric": "api_calls", "quantity": 99, "idempotency_key": "k100"}))
        .await;
    let write_replay = stack.consume(full, 100, "k100").await;

    assert_eq!(first.0, 200);
    assert_eq!((retried.0, &retried.1), (200, &first.1), "the retry answers what the first request answered");
    assert_eq!((fresh.0, fresh.1["error"]["code"].as_str()), (403, Some("access_denied")));
    assert_eq!(filled.0, 200);
    assert_eq!((check_replay.0, check_replay.1["used"].as_u64()), (200, Some(100)), "{check_replay:?}");
    assert_eq!((operator_check.0, &operator_check.1), (200, &check_replay.1));
    assert_eq!((check_new.0, check_new.1["error"]["code"].as_str()), (429, Some("quota_exceeded")));
    assert_eq!((check_mismatch.0, check_mismatch.1["error"]["code"].as_str()), (409, Some("idempotency_mismatch")));
    assert_eq!((write_replay.0, &write_replay.1), (200, &check_replay.1), "check and the write agree");
}

#[tokio::test]
async fn a_refunded_pack_stays_empty_when_a_consumption_drawn_from_it_is_refunded() {
    let stack = Stack(common::serve_stack("credits-reversal").await);
    let account = "acct_reversal";
    let (_, session) =
        stack.call(reqwest::Method::POST, "/credits/checkout", account, json!({"pack": "credits_1000"})).await;
    let mark = stack.0.standin.events().len();
    stack.0.standin.complete_checkout_session(session["session_id"].as_str().unwrap()).unwrap();
    let events = stack.0.standin.events().split_off(mark);
    stack.0.deliver(&events).await;
    let spend = json!({"event": "ai_inference", "quantity": 40, "idempotency_key": "all"});
    let (spent, emptied) = stack.operate("/credits/consume", account, spend).await;
    let spec = TriggerSpec::new("charge.refunded", account).pack("credits_1000");
    tollgate_dev::trigger::trigger(&stack.0.base, DEV_WEBHOOK_SECRET, &spec, false).await.unwrap();
    stack.0.drain().await;

    let (refunded, answer) = stack.operate("/credits/refund", account, json!({"idempotency_key": "all"})).await;
    let (_, ledger) = stack.call(reqwest::Method::GET, "/credits", account, Value::Null).await;

    assert_eq!((spent, emptied["balance"].as_u64()), (200, Some(0)), "{emptied}");
    assert_eq!(refunded, 200, "{answer}");
    assert_eq!(answer["balance"], 0, "the reversed pack takes nothing back: {answer}");
    assert_eq!(ledger["balance"], 0);
    assert_eq!(ledger["entries"][0]["kind"], "refund");
    assert_eq!(
        (ledger["entries"][0]["credits"].as_i64(), ledger["entries"][0]["withheld"].as_u64()),
        (Some(0), Some(1000))
    );
}

#[tokio::test]
async fn requests_crossing_a_threshold_together_send_exactly_one_alert() {
    let stack = Arc::new(Stack(common::serve_stack("usage-crossing").await));
    let account = "acct_crossing";
    // Pro: 10,000 a month, 100 requests a minute; 7,990 counted, then 20 cross 80% together.
    stack.subscribe(account, "pro").await;
    assert_eq!(stack.consume(account, 7_990, "setup").await.0, 200);

    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let stack = Arc::clone(&stack);
            tokio::spawn(async move { stack.consume(account, 1, &format!("cross-{i}")).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().0, 200);
    }

    let notifications =
        common::receive_all(&stack.0.sqs, &stack.0.resources.queue("NotificationsQueue").unwrap().url).await;
    let alerts: Vec<Value> = notifications
        .iter()
        .map(|body| serde_json::from_str::<Value>(body).unwrap())
        .filter(|n| n["kind"] == "usage_threshold")
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["details"]["threshold_percent"], 80);
}

#[tokio::test]
async fn spends_crossing_the_low_balance_mark_together_send_exactly_one_notification() {
    let stack = Arc::new(Stack(common::serve_stack("credits-crossing").await));
    let account = "acct_low";
    // Pro's 1,000 credits, 850 spent: 150 left; then 20 spends of 5 cross 100 together.
    stack.subscribe(account, "pro").await;
    let spend =
        |quantity: u64, key: String| json!({"event": "api_call_basic", "quantity": quantity, "idempotency_key": key});
    let (status, setup) = stack.operate("/credits/consume", account, spend(850, "setup".into())).await;
    assert_eq!((status, setup["balance"].as_u64()), (200, Some(150)), "{setup}");
    stack.0.notifications().await;

    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let stack = Arc::clone(&stack);
            let body = spend(5, format!("cross-{i}"));
            tokio::spawn(async move { stack.operate("/credits/consume", account, body).await })
        })
        .collect();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
    let (_, ledger) = stack.call(reqwest::Method::GET, "/credits?limit=100", account, Value::Null).await;

    let lows: Vec<Value> = stack.0.notifications().await.into_iter().filter(|n| n["kind"] == "credits_low").collect();
    assert_eq!(lows.len(), 1, "{lows:?}");
    assert_eq!(lows[0]["details"]["threshold"], 100);
    assert!(lows[0]["details"]["balance"].as_u64().is_some_and(|b| (50..100).contains(&b)), "{lows:?}");
    assert_eq!(ledger["balance"], 50, "every spend counted once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn first_credit_operations_racing_an_upgrade_grant_the_higher_tier_s_credits_once_in_all() {
    for round in 0..4 {
        let log = RequestLog::default();
        let direct = Arc::new(direct(&format!("credits-upgrade-race-{round}"), &log, None).await);
        let pro = tollgate::domain::model::Projection {
            current_period_start: Some(NOW - 86_400),
            current_period_end: Some(NOW + 29 * 86_400),
            billing_cycle_anchor: Some(NOW - 86_400),
            ..tollgate::testing::projection("acct_alice")
        };
        tollgate::testing::subscribed(&direct.deps.usage.store, &pro).await;
        let team = tollgate::domain::model::Projection {
            plan: "team".into(),
            price_lookup_key: Some("team_monthly".into()),
            version: pro.version + 1,
            ..pro.clone()
        };
        let spend = |key: String| json!({"event": "api_call_basic", "quantity": 1, "idempotency_key": key}).to_string();

        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let (direct, body) = (Arc::clone(&direct), spend(format!("race-{i}")));
                tokio::spawn(async move { direct.call("POST", "/credits/consume", &body).await.0 })
            })
            .collect();
        // The upgrade lands while they run: some read Pro, some Team.
        tokio::time::sleep(std::time::Duration::from_millis(5 * round)).await;
        tollgate::ports::subscriptions::SubscriptionStore::put_subscription(&direct.deps.usage.store, &team)
            .await
            .unwrap();
        let mut statuses = Vec::new();
        for task in tasks {
            statuses.push(task.await);
        }
        let (after, _) = direct.call("POST", "/credits/consume", &spend("after".into())).await;
        let state =
            tollgate::ports::subscriptions::SubscriptionStore::state(&direct.deps.usage.store, &alice()).await.unwrap();

        assert!(statuses.iter().all(|s| *s.as_ref().unwrap() == StatusCode::OK), "{statuses:?}");
        assert_eq!(after, StatusCode::OK);
        let plan: Vec<_> = state.grants.iter().filter(|g| g.id.starts_with("plan-")).collect();
        let total: u64 = plan.iter().map(|g| g.credits).sum();
        assert_eq!(total, 5_000, "Team's credits once in all, never Pro's on top: {plan:?}");
        assert_eq!(state.grants.iter().map(|g| g.remaining).sum::<u64>(), 5_000 - 17);
    }
}

#[tokio::test]
async fn a_pack_spent_to_zero_leaves_the_hot_range_later_and_one_with_credits_left_stays() {
    use tollgate::ports::credits::CreditStore;
    let log = RequestLog::default();
    let direct = direct("pack-spent-ttl", &log, None).await;
    let pack = |id: &str, credits: u64| tollgate::domain::credits::Grant {
        frozen: None,
        dispute_closed: false,
        reversed: false,
        id: id.into(),
        kind: tollgate::domain::credits::GrantKind::Purchased,
        source: format!("checkout:{id}"),
        credits,
        remaining: credits,
        granted_at: NOW,
        expires_at: None,
        payment: None,
        actor: None,
    };
    let grant = pack("cs_pack", 5);
    let entry = tollgate::ports::credits::LedgerEntry::grant_of(&grant, NOW * 1000);
    direct.deps.usage.store.grant(&alice(), &grant, &entry).await.unwrap();
    let spend = |quantity: u64, key: &str| {
        json!({"event": "api_call_basic", "quantity": quantity, "idempotency_key": key}).to_string()
    };

    let (first, _) = direct.call("POST", "/credits/consume", &spend(2, "two")).await;
    let partly = direct.item(keys::account(&alice()), &keys::grant("cs_pack")).await.unwrap();
    let (second, _) = direct.call("POST", "/credits/consume", &spend(3, "three")).await;
    let spent = direct.item(keys::account(&alice()), &keys::grant("cs_pack")).await.unwrap();

    assert_eq!((first, second), (StatusCode::OK, StatusCode::OK));
    assert_eq!(partly["remaining"].as_n().unwrap(), "3");
    assert!(!partly.contains_key("expires_at"), "credits left: it stays");
    assert_eq!(spent["remaining"].as_n().unwrap(), "0");
    let gone_at: i64 = spent["expires_at"].as_n().unwrap().parse().unwrap();
    assert_eq!(gone_at, NOW + 31 * 86_400, "spent to 0: DynamoDB's TTL takes it a month later");
}

#[tokio::test]
async fn a_spend_from_a_hundred_and_fifty_grants_succeeds_once() {
    use tollgate::ports::credits::CreditStore;
    let log = RequestLog::default();
    let direct = direct("spend-150", &log, None).await;
    for i in 0..150 {
        let grant = tollgate::domain::credits::Grant {
            reversed: false,
            frozen: None,
            dispute_closed: false,
            id: format!("manual-{i:03}"),
            kind: tollgate::domain::credits::GrantKind::Purchased,
            source: "manual:promotion".into(),
            credits: 10,
            remaining: 10,
            granted_at: NOW,
            expires_at: None,
            payment: None,
            actor: Some("ops".into()),
        };
        let entry = tollgate::ports::credits::LedgerEntry::grant_of(&grant, NOW * 1000 + i);
        direct.deps.usage.store.grant(&alice(), &grant, &entry).await.unwrap();
    }
    let spend = json!({"event": "api_call_basic", "quantity": 1_450, "idempotency_key": "big"}).to_string();

    let (status, answer) = direct.call("POST", "/credits/consume", &spend).await;
    let (replayed, again) = direct.call("POST", "/credits/consume", &spend).await;
    let state =
        tollgate::ports::subscriptions::SubscriptionStore::state(&direct.deps.usage.store, &alice()).await.unwrap();

    assert_eq!((status, answer["balance"].as_u64()), (StatusCode::OK, Some(50)), "{answer}");
    assert_eq!(replayed, StatusCode::OK, "{again}");
    assert_eq!(state.grants.iter().map(|g| g.remaining).sum::<u64>(), 50, "spent once");
    assert_eq!(state.grants.iter().map(|g| g.credits).sum::<u64>(), 1_500, "every grant kept");
}

#[tokio::test]
async fn a_spend_from_a_hundred_and_fifty_packs_is_drawn_in_parts_once_and_refunded_whole() {
    use tollgate::ports::credits::{CreditStore, EntryKind};
    let log = RequestLog::default();
    let direct = direct("spend-150-packs", &log, None).await;
    // Packs keep their payment (a refund or a dispute reverses each on its own): never merged.
    for i in 0..150 {
        let grant = tollgate::domain::credits::Grant {
            reversed: false,
            frozen: None,
            dispute_closed: false,
            id: format!("pack-cs_{i:03}"),
            kind: tollgate::domain::credits::GrantKind::Purchased,
            source: format!("checkout:cs_{i:03}"),
            credits: 10,
            remaining: 10,
            granted_at: NOW,
            expires_at: None,
            payment: Some(format!("pi_{i:03}")),
            actor: Some("stripe:evt".into()),
        };
        let entry = tollgate::ports::credits::LedgerEntry::grant_of(&grant, (NOW - 60) * 1000 + i);
        direct.deps.usage.store.grant(&alice(), &grant, &entry).await.unwrap();
    }
    let spend = json!({"event": "api_call_basic", "quantity": 1_450, "idempotency_key": "big"}).to_string();
    let refund = json!({"idempotency_key": "big"}).to_string();
    let state = || async {
        tollgate::ports::subscriptions::SubscriptionStore::state(&direct.deps.usage.store, &alice()).await.unwrap()
    };

    let (status, answer) = direct.call("POST", "/credits/consume", &spend).await;
    let (replayed, again) = direct.call("POST", "/credits/consume", &spend).await;
    let spent = state().await;
    let ledger = direct.deps.usage.store.ledger(&alice(), 100, None).await.unwrap().entries;
    let (refunded, back) = direct.call("POST", "/credits/refund", &refund).await;
    let (twice, _) = direct.call("POST", "/credits/refund", &refund).await;
    let restored = state().await;
    let (after_refund, replay_after) = direct.call("POST", "/credits/consume", &spend).await;

    assert_eq!((status, answer["balance"].as_u64(), answer["cost"].as_u64()), (StatusCode::OK, Some(50), Some(1_450)));
    assert_eq!((replayed, again["balance"].as_u64()), (StatusCode::OK, Some(50)), "{again}");
    assert_eq!(spent.grants.iter().map(|g| g.remaining).sum::<u64>(), 50, "spent once");
    assert_eq!(spent.grants.iter().filter(|g| g.payment.is_some()).count(), 150, "no pack merged");
    let parts: Vec<_> = ledger.iter().filter(|e| e.kind == EntryKind::Consumption).collect();
    assert_eq!(parts.len(), 2, "97 packs, then 48: {parts:?}");
    assert_eq!(parts.iter().map(|e| e.credits).sum::<i64>(), -1_450);
    assert_eq!(
        (refunded, back["refunded"].as_bool(), back["balance"].as_u64()),
        (StatusCode::OK, Some(true), Some(1_500))
    );
    assert_eq!(twice, StatusCode::OK, "a second refund answers the same");
    assert!(restored.grants.iter().all(|g| g.remaining == 10), "every pack whole again, once");
    assert_eq!(after_refund, StatusCode::CONFLICT, "a refunded key is spent: {replay_after}");
}
