//! The local stack's clock over HTTP (`/_dev/clock`): it moves forward only, every function and
//! the Stripe stand-in read it, and the trigger signs events at its time, so the intake accepts
//! them however far the clock was moved.

mod common;

use serde_json::{Value, json};
use tollgate::edge::webhook::DEV_WEBHOOK_SECRET;
use tollgate_standin::TriggerSpec;

const DAY: i64 = 86_400;

async fn clock(base: &str, body: Option<Value>) -> (u16, Value) {
    let http = reqwest::Client::new();
    let request = match body {
        None => http.get(format!("{base}/_dev/clock")),
        Some(body) => http.post(format!("{base}/_dev/clock")).json(&body),
    };
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn read(base: &str, path: &str, account: &str) -> Value {
    let response =
        reqwest::Client::new().get(format!("{base}{path}")).header("x-tollgate-account", account).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_stack_clock_moves_forward_only_and_every_function_and_the_standin_follow_it() {
    let stack = common::serve_clocked_stack("clock").await;
    let account = "acct_clock";
    let (_, shown) = clock(&stack.base, None).await;
    let before = read(&stack.base, "/usage", account).await;

    let (advanced, moved) = clock(&stack.base, Some(json!({"advance": 62 * DAY}))).await;
    let after = read(&stack.base, "/usage", account).await;
    let back = clock(&stack.base, Some(json!({"set": shown["now"]}))).await;
    let negative = clock(&stack.base, Some(json!({"advance": -5}))).await;
    let neither = clock(&stack.base, Some(json!({"forward": 5}))).await;
    let spec = TriggerSpec::new("checkout.session.completed", account).plan("pro");
    let delivered = tollgate_dev::trigger::trigger(&stack.base, DEV_WEBHOOK_SECRET, &spec, false).await;
    stack.drain().await;
    let subscribed = read(&stack.base, "/subscription", account).await;
    let (_, now) = clock(&stack.base, None).await;

    let start = shown["now"].as_i64().unwrap();
    assert_eq!(shown["iso"], tollgate_dev::clock::iso(start));
    assert_eq!(advanced, 200);
    let moved_to = moved["now"].as_i64().unwrap();
    assert!((moved_to - start - 62 * DAY).abs() <= 2, "{shown} -> {moved}");
    let window = |at: i64| tollgate::domain::usage::window(None, at);
    assert_eq!(before["period_start"], window(start).start);
    assert_eq!(after["period_start"], window(moved_to).start, "the usage function reads the stack's time");
    assert_eq!((back.0, back.1["error"]["code"].as_str()), (400, Some("clock_backwards")));
    assert_eq!((negative.0, negative.1["error"]["code"].as_str()), (400, Some("clock_backwards")));
    assert_eq!((neither.0, neither.1["error"]["code"].as_str()), (400, Some("invalid_clock")));
    assert!(delivered.is_ok(), "events signed at the stack's time are accepted: {delivered:?}");
    assert_eq!(subscribed["plan"], "pro");
    let period_start = subscribed["usage"]["period_start"].as_i64().unwrap();
    assert!((period_start - moved_to).abs() <= 5, "the stand-in made the period at the stack's time: {subscribed}");
    assert!(now["now"].as_i64().unwrap() >= moved_to, "the clock runs on from where it was set");
}

#[tokio::test]
async fn a_stack_on_the_system_clock_refuses_to_move_it() {
    let stack = common::serve_stack("clock-fixed").await;

    let (shown, body) = clock(&stack.base, None).await;
    let (status, refused) = clock(&stack.base, Some(json!({"advance": 60}))).await;

    assert_eq!(shown, 200);
    assert!(body["now"].as_i64().is_some());
    assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("clock_fixed")));
}

async fn checkout(base: &str, account: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{base}/checkout"))
        .header("x-tollgate-account", account)
        .json(&json!({"plan": "pro", "interval": "month"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["session_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_session_paid_with_tollgate_dev_pay_subscribes_once_and_not_after_it_expired() {
    let stack = common::serve_clocked_stack("pay").await;
    let session = checkout(&stack.base, "acct_pays").await;
    let late = checkout(&stack.base, "acct_late").await;

    let paid = tollgate_dev::trigger::pay(&stack.base, DEV_WEBHOOK_SECRET, &session, |_| {}).await;
    stack.drain().await;
    let again = tollgate_dev::trigger::pay(&stack.base, DEV_WEBHOOK_SECRET, &session, |_| {}).await;
    clock(&stack.base, Some(json!({"advance": DAY + 60}))).await;
    let expired = tollgate_dev::trigger::pay(&stack.base, DEV_WEBHOOK_SECRET, &late, |_| {}).await;
    let read = read(&stack.base, "/subscription", "acct_pays").await;
    let unpaid = read_plan(&stack.base, "acct_late").await;

    let deliveries = paid.unwrap();
    assert!(deliveries.iter().any(|d| d.event_type == "checkout.session.completed"), "{deliveries:?}");
    assert!(deliveries.iter().all(|d| d.status == Some(200)), "{deliveries:?}");
    assert_eq!(read["plan"], "pro");
    let again = again.unwrap_err().to_string();
    assert!(again.contains("HTTP 400") && again.contains("not open"), "{again}");
    let expired = expired.unwrap_err().to_string();
    assert!(expired.contains("HTTP 400") && expired.contains("has expired"), "{expired}");
    assert_eq!(unpaid, "free");
}

async fn read_plan(base: &str, account: &str) -> String {
    read(base, "/subscription", account).await["plan"].as_str().unwrap().to_owned()
}
