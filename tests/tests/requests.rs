//! Requests per operation, on the real handlers against the local server and the Stripe
//! stand-in (each function wired by its own `wire`, Stripe pointed at the stand-in, DynamoDB
//! and SQS clients counted): the intake sends one message per handled event and none for an
//! ignored one; a duplicate delivery costs the worker its idempotency check and nothing else;
//! no read, usage decision, authorizer decision or intake calls Stripe.
//! `bench/requests` reports the same operations' units and cost (bench/REPORT.md).

mod common;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use lambda_http::http::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;
use tollgate::adapters::dynamo::DynamoStore;
use tollgate::adapters::sqs::SqsEventQueue;
use tollgate::adapters::sqs::SqsNotifier;
use tollgate::edge::webhook::DEV_WEBHOOK_SECRET;
use tollgate::ports::clock::{Clock, SystemClock};
use tollgate::testing::{RequestLog, counted_client, counted_sqs_client};
use tollgate_dev::env::LocalEnv;
use tollgate_dev::resources::Resources;
use tollgate_standin::{StandIn, TriggerSpec};

/// Fresh resources, a stand-in served where the local stack serves it (`{base}/stripe/`, where
/// `LocalEnv` points Stripe), and counted DynamoDB and SQS clients.
struct Harness {
    aws: aws_config::SdkConfig,
    resources: Resources,
    env: LocalEnv,
    standin: StandIn,
    ddb: RequestLog,
    sqs: RequestLog,
    store: DynamoStore,
    counted_sqs: aws_sdk_sqs::Client,
}

async fn harness(test: &str) -> Harness {
    let (aws, resources) = common::local(test).await;
    let standin = StandIn::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = axum::Router::new().nest("/stripe", standin.router());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let env = LocalEnv::new(&base, &resources).unwrap();
    let (ddb, sqs) = (RequestLog::default(), RequestLog::default());
    let store =
        DynamoStore::new(counted_client(tollgate::adapters::aws::dynamodb(&aws).config(), &ddb), &resources.table);
    let counted_sqs = counted_sqs_client(tollgate::adapters::aws::sqs(&aws).config(), &sqs);
    Harness { aws, resources, env, standin, ddb, sqs, store, counted_sqs }
}

impl Harness {
    fn intake(&self) -> webhook_intake::Deps<SqsEventQueue> {
        let mut deps =
            webhook_intake::wire(&self.env, &self.aws, std::sync::Arc::new(tollgate::ports::clock::SystemClock))
                .unwrap();
        let url = &self.resources.queue("EventsQueue").unwrap().url;
        deps.queue = SqsEventQueue::new(self.counted_sqs.clone(), url);
        deps
    }

    fn worker(
        &self,
    ) -> tollgate::app::events::EventDeps<DynamoStore, tollgate::adapters::stripe::StripeBilling, SqsNotifier> {
        let mut deps =
            webhook_worker::wire(&self.env, &self.aws, std::sync::Arc::new(tollgate::ports::clock::SystemClock))
                .unwrap();
        let url = &self.resources.queue("NotificationsQueue").unwrap().url;
        (deps.store, deps.notifier) = (self.store.clone(), SqsNotifier::new(self.counted_sqs.clone(), url));
        deps
    }

    fn stripe_calls(&self) -> Vec<String> {
        self.standin.requests().iter().map(|r| format!("{} {}", r.method, r.path)).collect()
    }

    fn forget(&self) {
        self.ddb.take();
        self.sqs.take();
    }
}

/// The function URL request Stripe sends for `event`, signed now.
fn signed(event: &Value) -> lambda_http::Request {
    let body = event.to_string();
    let path = format!("{}/../events/function-url-stripe-webhook.json", env!("CARGO_MANIFEST_DIR"));
    let mut request: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    request["headers"]["stripe-signature"] =
        tollgate::testing::signature_header(&body, DEV_WEBHOOK_SECRET, SystemClock.now()).into();
    request["headers"]["content-length"] = body.len().to_string().into();
    request["body"] = body.into();
    lambda_http::request::from_str(&request.to_string()).unwrap()
}

/// A batch of one message carrying `event`, as the event source mapping hands it over.
fn batch(event: &Value) -> lambda_runtime::LambdaEvent<SqsEvent> {
    let mut message = SqsMessage::default();
    message.message_id = Some(uuid::Uuid::new_v4().to_string());
    message.body = Some(event.to_string());
    let customer = event["data"]["object"]["customer"].as_str().unwrap_or_default().to_owned();
    message.attributes = HashMap::from([("MessageGroupId".to_owned(), customer)]);
    let mut batch = SqsEvent::default();
    batch.records = vec![message];
    lambda_runtime::LambdaEvent::new(batch, lambda_runtime::Context::default())
}

/// `method path` with `body` as API Gateway passes it with a verified JWT of `account`, or, on
/// `/operator/...`, with the operator sample's IAM principal.
fn jwt(method: &str, path: &str, body: &str, account: &str) -> lambda_http::Request {
    let sample =
        if path.starts_with("/operator/") { "apigw-post-operator-usage.json" } else { "apigw-post-usage-check.json" };
    let raw = std::fs::read_to_string(format!("{}/../events/{sample}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut event: Value = serde_json::from_str(&raw).unwrap();
    event["rawPath"] = path.into();
    event["routeKey"] = format!("{method} {path}").into();
    event["requestContext"]["http"]["method"] = method.into();
    event["requestContext"]["http"]["path"] = path.into();
    event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = account.into();
    event["body"] = body.into();
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

#[tokio::test]
async fn the_intake_sends_one_message_per_handled_event_none_for_an_ignored_one_and_calls_no_stripe() {
    let h = harness("req-intake").await;
    let intake = h.intake();
    let events = h.standin.trigger(&TriggerSpec::new("checkout.session.completed", "acct_in")).unwrap();
    assert!(events.iter().any(|e| e["type"] == "customer.created"), "the trigger makes an ignored type too");

    for event in &events {
        let response = webhook_intake::handle(&intake, signed(event)).await.unwrap();

        assert_eq!(response.status(), StatusCode::OK, "{}", event["type"]);
        let expected: &[&str] =
            if tollgate::domain::events::is_handled(event["type"].as_str().unwrap()) { &["SendMessage"] } else { &[] };
        assert_eq!(h.sqs.take(), expected, "{}", event["type"]);
        assert_eq!(h.ddb.take(), Vec::<String>::new(), "the intake never reads the table");
    }
    assert_eq!(h.stripe_calls(), Vec::<String>::new());
}

#[tokio::test]
async fn a_duplicate_delivery_costs_the_worker_only_its_idempotency_check() {
    let h = harness("req-dup").await;
    let worker = h.worker();
    for event in h.standin.trigger(&TriggerSpec::new("checkout.session.completed", "acct_dup")).unwrap() {
        webhook_worker::handle(&worker, batch(&event)).await.unwrap();
    }
    let failed = h.standin.trigger(&TriggerSpec::new("invoice.payment_failed", "acct_dup")).unwrap();
    let failed = failed.iter().find(|e| e["type"] == "invoice.payment_failed").unwrap();
    let first = webhook_worker::handle(&worker, batch(failed)).await.unwrap();
    let (first_ddb, first_sqs) = (h.ddb.take(), h.sqs.take());
    let stripe_before = h.stripe_calls().len();

    let again = webhook_worker::handle(&worker, batch(failed)).await.unwrap();

    assert!(first.batch_item_failures.is_empty() && again.batch_item_failures.is_empty());
    assert!(first_ddb.contains(&"TransactWriteItems".to_owned()), "the first delivery applied: {first_ddb:?}");
    assert_eq!(first_sqs, ["SendMessage"], "the first delivery notified");
    assert_eq!(h.ddb.take(), ["GetItem"], "the duplicate: one consistent GetItem of its processed-event record");
    assert_eq!(h.sqs.take(), Vec::<String>::new(), "no second notification");
    assert_eq!(h.stripe_calls().len(), stripe_before, "no Stripe call for a duplicate");
}

#[tokio::test]
async fn reads_usage_decisions_and_the_authorizer_make_no_stripe_call() {
    let h = harness("req-nostripe").await;
    let mut reads =
        subscription::wire(&h.env, &h.aws, std::sync::Arc::new(tollgate::ports::clock::SystemClock)).unwrap();
    reads.store = h.store.clone();
    let mut metering = usage::wire(&h.env, &h.aws, std::sync::Arc::new(tollgate::ports::clock::SystemClock)).unwrap();
    metering.usage.store = h.store.clone();
    let mut authorizer =
        authorizer::wire(&h.env, &h.aws, std::sync::Arc::new(tollgate::ports::clock::SystemClock)).unwrap();
    authorizer.store = h.store.clone();
    let projection = tollgate::testing::projection("acct_reader");
    tollgate::testing::subscribed(&h.store, &projection).await;
    let account = projection.account_id.clone();
    let keys = tollgate::app::keys::KeysDeps {
        store: h.store.clone(),
        clock: std::sync::Arc::new(SystemClock),
        mode: tollgate::domain::apikeys::Mode::Test,
        max_active: 10,
    };
    let request = tollgate::app::keys::CreateRequest {
        name: Some("reader".into()),
        scopes: Some(vec!["subscription:read".into()]),
        expires_at: None,
    };
    let key = tollgate::app::keys::create(&keys, &account, request).await.unwrap().key;
    h.forget();
    let consume = |key: &str| json!({"metric": "api_calls", "quantity": 1, "idempotency_key": key}).to_string();
    let mut answers = Vec::new();

    for path in ["/subscription", "/entitlements", "/billing/summary", "/invoices", "/usage/history", "/credits"] {
        answers.push(subscription::handle(&reads, jwt("GET", path, "", "acct_reader")).await.unwrap().status());
    }
    for (method, path, body) in [
        ("POST", "/operator/accounts/acct_reader/usage", consume("k1")),
        ("POST", "/operator/accounts/acct_reader/usage", consume("k1")),
        ("POST", "/usage/check", consume("k2")),
        ("GET", "/usage", String::new()),
    ] {
        answers.push(usage::handle(&metering, jwt(method, path, &body, "acct_reader")).await.unwrap().status());
    }
    let raw =
        std::fs::read_to_string(format!("{}/../events/apigw-authorizer-request.json", env!("CARGO_MANIFEST_DIR")))
            .unwrap();
    let mut event: Value = serde_json::from_str(&raw).unwrap();
    event["routeKey"] = "GET /api/subscription".into();
    event["headers"]["authorization"] = format!("Bearer {key}").into();
    let decision = authorizer::handle(&authorizer, serde_json::from_value(event).unwrap()).await.unwrap();

    assert!(answers.iter().all(|status| *status == StatusCode::OK), "{answers:?}");
    assert!(decision.is_authorized);
    assert!(h.ddb.count() > 0, "the handlers did their work on the table");
    assert_eq!(h.stripe_calls(), Vec::<String>::new());
}
