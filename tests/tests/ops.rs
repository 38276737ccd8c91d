//! Operations on a bad day over HTTP on the local stack (moto, the Stripe stand-in, every
//! handler, the local worker), through the `ops` function's operator routes: an event that
//! failed is listed, replayed from Stripe once and then answered `already_applied`; a message
//! in the events dead-letter queue is moved back and applied; bad input changes nothing.

mod common;

use serde_json::Value;
use tollgate_standin::TriggerSpec;

const OPERATOR: &str = "arn:aws:iam::123456789012:role/support";

async fn call(stack: &common::LocalStack, method: reqwest::Method, path: &str, operator: bool) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, format!("{}{path}", stack.base));
    if operator {
        request = request.header(tollgate_dev::gateway::OPERATOR_HEADER, OPERATOR);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn plan(stack: &common::LocalStack, account: &str) -> Value {
    let response = reqwest::Client::new()
        .get(format!("{}/subscription", stack.base))
        .header("x-tollgate-account", account)
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    body["plan"].clone()
}

/// The id of the `customer.subscription.created` among `events`.
fn created(events: &[Value]) -> &Value {
    events.iter().find(|e| e["type"] == "customer.subscription.created").expect("a subscription was created")
}

#[tokio::test]
async fn an_event_that_failed_is_listed_replayed_once_and_then_already_applied() {
    let stack = common::serve_stack("ops-replay").await;
    let events = stack.standin.trigger(&TriggerSpec::new("customer.subscription.created", "acct_ops1")).unwrap();
    let event = created(&events);
    let id = event["id"].as_str().unwrap();
    // Stripe fails every attempt of the worker's read of the customer's subscriptions.
    stack.standin.fail_path("/v1/subscriptions", 3, 500);
    stack.deliver(std::slice::from_ref(event)).await;
    assert_eq!(plan(&stack, "acct_ops1").await, "free", "the event failed");

    let (status, listed) = call(&stack, reqwest::Method::GET, "/operator/events/failed", true).await;
    assert_eq!(status, 200, "{listed}");
    let failure = listed["data"].as_array().unwrap().iter().find(|f| f["id"] == id).expect("the failure is listed");
    assert_eq!(
        (failure["type"].as_str(), failure["source"].as_str()),
        (Some("customer.subscription.created"), Some("worker"))
    );
    assert!(failure["error"].as_str().unwrap().contains("stripe"), "{failure}");
    assert!(failure["at"].as_i64().unwrap() > 0);

    let (status, first) = call(&stack, reqwest::Method::POST, &format!("/operator/events/{id}/replay"), true).await;
    assert_eq!((status, first.clone()), (200, serde_json::json!({"outcome": "applied"})));
    assert_eq!(plan(&stack, "acct_ops1").await, "pro", "the replay applied the event");
    let (status, second) = call(&stack, reqwest::Method::POST, &format!("/operator/events/{id}/replay"), true).await;
    assert_eq!((status, second), (200, serde_json::json!({"outcome": "already_applied"})));
    let (_, after) = call(&stack, reqwest::Method::GET, "/operator/events/failed", true).await;
    assert!(
        after["data"].as_array().unwrap().iter().all(|f| f["id"] != id),
        "an applied event is no longer listed: {after}"
    );
}

#[tokio::test]
async fn a_dead_lettered_event_is_redriven_and_applied() {
    let stack = common::serve_stack("ops-redrive").await;
    let events = stack.standin.trigger(&TriggerSpec::new("customer.subscription.created", "acct_ops2")).unwrap();
    let event = created(&events);
    let dlq = &stack.resources.queue("EventsDeadLetterQueue").unwrap().url;
    stack
        .sqs
        .send_message()
        .queue_url(dlq)
        .message_group_id(event["data"]["object"]["customer"].as_str().unwrap())
        .message_deduplication_id(event["id"].as_str().unwrap())
        .message_body(event.to_string())
        .send()
        .await
        .unwrap();

    let (status, moved) = call(&stack, reqwest::Method::POST, "/operator/queues/events/redrive", true).await;
    stack.drain().await;

    assert_eq!((status, moved), (200, serde_json::json!({"moved": 1, "more": false})));
    assert_eq!(plan(&stack, "acct_ops2").await, "pro", "the redriven event was applied");
    assert!(common::receive_all(&stack.sqs, dlq).await.is_empty(), "the dead-letter queue is empty");
    let (_, again) = call(&stack, reqwest::Method::POST, "/operator/queues/events/redrive", true).await;
    assert_eq!(again, serde_json::json!({"moved": 0, "more": false}));
}

#[tokio::test]
async fn bad_operations_get_a_clear_error_and_change_nothing() {
    let stack = common::serve_stack("ops-bad").await;
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;

    let cases = [
        (get.clone(), "/operator/events/failed", false, 403, None),
        (post.clone(), "/operator/events/evt_1/replay", false, 403, None),
        (post.clone(), "/operator/queues/events/redrive", false, 403, None),
        (get.clone(), "/operator/events/failed?limit=0", true, 400, Some("invalid_limit")),
        (get.clone(), "/operator/events/failed?cursor=zz", true, 400, Some("invalid_cursor")),
        (get.clone(), "/operator/events/failed?cursor=4c45444745523a", true, 400, Some("invalid_cursor")),
        (post.clone(), "/operator/events/cus_1/replay", true, 400, Some("invalid_event_id")),
        (post.clone(), "/operator/events/evt_x%2F..%2Fy/replay", true, 400, Some("invalid_event_id")),
        (post.clone(), "/operator/events/evt_never/replay", true, 404, Some("event_not_found")),
        (post.clone(), "/operator/queues/mail/redrive", true, 404, Some("unknown_queue")),
        (get.clone(), "/operator/queues/events/redrive", true, 404, None),
    ];
    for (method, path, operator, status, code) in cases {
        let (got, body) = call(&stack, method.clone(), path, operator).await;
        assert_eq!(got, status, "{method} {path}: {body}");
        if let Some(code) = code {
            assert_eq!(body["error"]["code"], code, "{method} {path}: {body}");
        }
    }
    let (_, listed) = call(&stack, get, "/operator/events/failed", true).await;
    assert_eq!(listed, serde_json::json!({"data": [], "next_cursor": null}));
}

#[tokio::test]
async fn tollgate_dev_lists_replays_and_redrives_through_the_operator_routes() {
    use tollgate_dev::ops::{OpsCall, ops};
    let stack = common::serve_stack("ops-cli").await;
    let events = stack.standin.trigger(&TriggerSpec::new("customer.subscription.created", "acct_ops3")).unwrap();
    let id = created(&events)["id"].as_str().unwrap().to_owned();

    let listed = ops(stack.port, OpsCall::Failed { limit: Some(5), cursor: None }).await;
    let missing = ops(stack.port, OpsCall::Replay { event_id: "evt_never".into() }).await;
    let replayed = ops(stack.port, OpsCall::Replay { event_id: id }).await;
    let redriven = ops(stack.port, OpsCall::Redrive { queue: "notifications".into() }).await;
    let unknown = ops(stack.port, OpsCall::Redrive { queue: "mail".into() }).await;

    assert!(listed.is_ok(), "{listed:?}");
    assert!(missing.as_ref().is_err_and(|e| e.to_string().contains("404")), "{missing:?}");
    assert!(replayed.is_ok(), "{replayed:?}");
    assert_eq!(plan(&stack, "acct_ops3").await, "pro", "the CLI's replay applied the event");
    assert!(redriven.is_ok(), "{redriven:?}");
    assert!(unknown.is_err(), "{unknown:?}");
}
