//! The webhook intake against a real SQS FIFO queue (moto's server on loopback): what a
//! delivery leaves in the queue, through the handler and through the local stack's route.

mod common;

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use lambda_http::http::{HeaderValue, StatusCode};
use std::sync::Arc;
use tollgate::adapters::sqs::SqsEventQueue;
use tollgate::edge::webhook::{DEV_WEBHOOK_SECRET, WebhookSecrets};
use tollgate::ports::clock::{Clock, SystemClock};
use tollgate::testing::{FixedClock, signature_header};
use tollgate_dev::server::{App, router};
use webhook_intake::{Deps, handle};

/// The `t=` of the sample event's signature.
const SIGNED_AT: i64 = 1_795_273_200;

fn sample_json() -> serde_json::Value {
    let path = format!("{}/../events/function-url-stripe-webhook.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn sample() -> lambda_http::Request {
    lambda_http::request::from_str(&sample_json().to_string()).unwrap()
}

fn sample_payload() -> String {
    sample_json()["body"].as_str().unwrap().to_owned()
}

fn intake(aws: &aws_config::SdkConfig, url: &str) -> Deps<SqsEventQueue> {
    Deps {
        queue: SqsEventQueue::new(tollgate::adapters::aws::sqs(aws), url),
        secrets: WebhookSecrets::parse(DEV_WEBHOOK_SECRET).unwrap(),
        livemode: false,
        clock: Arc::new(FixedClock::at(SIGNED_AT + 1)),
    }
}

/// Everything currently visible in the queue, with each message's group id.
async fn drain(aws: &aws_config::SdkConfig, url: &str) -> Vec<Message> {
    tollgate::adapters::aws::sqs(aws)
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(0)
        .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default()
}

fn group(message: &Message) -> &str {
    message.attributes().unwrap()[&MessageSystemAttributeName::MessageGroupId].as_str()
}

#[tokio::test]
async fn valid_event_lands_in_the_fifo_queue_in_its_customer_group() {
    let (aws, resources) = common::local("intake-ok").await;
    let url = resources.queue("EventsQueue").unwrap().url.clone();
    let deps = intake(&aws, &url);

    let response = handle(&deps, sample()).await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let messages = drain(&aws, &url).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].body(), Some(sample_payload().as_str()));
    assert_eq!(group(&messages[0]), "cus_QXg1o8vcGmoR32");
}

#[tokio::test]
async fn same_event_delivered_twice_leaves_one_message() {
    let (aws, resources) = common::local("intake-dup").await;
    let url = resources.queue("EventsQueue").unwrap().url.clone();
    let deps = intake(&aws, &url);

    let first = handle(&deps, sample()).await.unwrap();
    let second = handle(&deps, sample()).await.unwrap();

    assert_eq!((first.status(), second.status()), (StatusCode::OK, StatusCode::OK));
    let messages = drain(&aws, &url).await;
    assert_eq!(messages.len(), 1, "the event id is the deduplication id");
    assert!(drain(&aws, &url).await.is_empty());
}

#[tokio::test]
async fn bad_signature_leaves_the_queue_empty() {
    let (aws, resources) = common::local("intake-bad").await;
    let url = resources.queue("EventsQueue").unwrap().url.clone();
    let deps = intake(&aws, &url);
    let mut req = sample();
    let forged = signature_header(&sample_payload(), "whsec_forger", SIGNED_AT);
    req.headers_mut().insert("stripe-signature", HeaderValue::from_str(&forged).unwrap());

    let response = handle(&deps, req).await.unwrap();

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(drain(&aws, &url).await.is_empty());
}

#[tokio::test]
async fn signed_event_posted_to_the_local_stack_is_queued() {
    let (aws, resources) = common::local("intake-http").await;
    let url = resources.queue("EventsQueue").unwrap().url.clone();
    let app = Arc::new(App::local(&aws, &resources, "http://127.0.0.1:9").unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(app, None)).await });
    let payload = sample_payload();
    let header = signature_header(&payload, DEV_WEBHOOK_SECRET, SystemClock.now());

    let response = reqwest::Client::new()
        .post(format!("{base}/webhooks/stripe"))
        .header("stripe-signature", header)
        .header("content-type", "application/json")
        .body(payload.clone())
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap(), serde_json::json!({"received": true}));
    let messages = drain(&aws, &url).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].body(), Some(payload.as_str()));
}

/// Extreme numbers in signed input over HTTP: the debug build `make dev` runs used to panic on
/// a signature `t` far from now (the connection dropped); now a clear 4xx, and an event with
/// extreme `created` and amounts is accepted and applied without a panic.
#[tokio::test]
async fn extreme_numbers_in_signed_input_get_an_answer_never_a_dropped_connection() {
    let stack = common::serve_stack("hostile").await;
    let http = reqwest::Client::new();
    let post = |body: String, header: String| {
        http.post(format!("{}/webhooks/stripe", stack.base)).header("Stripe-Signature", header).body(body).send()
    };
    let payload = sample_payload();
    let now = SystemClock.now();

    for t in [i64::MIN, i64::MAX, i64::MIN + 1, -1, 0] {
        let response = post(payload.clone(), signature_header(&payload, DEV_WEBHOOK_SECRET, t)).await.unwrap();
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("stale_timestamp")), "t={t}: {body}");
    }
    let extreme = serde_json::json!({
        "id": "evt_extreme", "object": "event", "type": "invoice.payment_failed", "created": i64::MAX,
        "livemode": false, "data": {"object": {"id": "in_x", "customer": "cus_x", "amount_due": u64::MAX,
            "attempt_count": i64::MIN, "metadata": {"tollgate_account_id": "acct_x"}}}
    })
    .to_string();
    let accepted = post(extreme.clone(), signature_header(&extreme, DEV_WEBHOOK_SECRET, now)).await.unwrap();
    assert_eq!(accepted.status().as_u16(), 200);
    stack.drain().await;
    let processed = tollgate::ports::events::EventLog::processed(&stack.app.store, "evt_extreme").await.unwrap();
    assert!(processed.is_some(), "the worker applied it");
}
