//! Checkout Sessions cannot outlive what they were for, over HTTP on the local stack: each
//! answers its `expires_at` (`CHECKOUT_SESSION_TTL_SECONDS`, default an hour), one opened before
//! `DELETE /account` can no longer be paid after it, and opening a session for another plan
//! expires the account's earlier one.

mod common;

use serde_json::{Value, json};
use tollgate::edge::webhook::DEV_WEBHOOK_SECRET;

async fn post(base: &str, path: &str, account: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("x-tollgate-account", account)
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

async fn checkout(base: &str, account: &str, plan: &str) -> Value {
    let (status, session) = post(base, "/checkout", account, json!({"plan": plan, "interval": "month"})).await;
    assert_eq!(status, 200, "{session}");
    session
}

fn subscriptions_of(stack: &common::LocalStack, session: &Value) -> usize {
    let customer = stack.standin.object(session["session_id"].as_str().unwrap()).unwrap()["customer"].clone();
    stack
        .standin
        .events()
        .iter()
        .filter(|e| e["type"] == "customer.subscription.created" && e["data"]["object"]["customer"] == customer)
        .count()
}

#[tokio::test]
async fn a_session_answers_its_expiry_and_cannot_be_paid_after_the_account_is_deleted() {
    let stack = common::serve_clocked_stack("session-deleted").await;
    let account = "acct_session_deleted";
    let now = tollgate::ports::clock::Clock::now(&**stack.app.clock.as_ref().unwrap());
    let session = checkout(&stack.base, account, "pro").await;

    let response = reqwest::Client::new()
        .delete(format!("{}/account", stack.base))
        .header("x-tollgate-account", account)
        .send()
        .await
        .unwrap();
    let deleted = response.status().as_u16();
    let paid =
        tollgate_dev::trigger::pay(&stack.base, DEV_WEBHOOK_SECRET, session["session_id"].as_str().unwrap(), |_| {})
            .await;

    let expires_at = session["expires_at"].as_i64().unwrap();
    assert!((expires_at - now - 3_600).abs() <= 5, "an hour by default: {session}");
    assert_eq!(deleted, 200);
    let refused = paid.unwrap_err().to_string();
    assert!(refused.contains("HTTP 400") && refused.contains("has expired"), "{refused}");
    assert_eq!(subscriptions_of(&stack, &session), 0, "nothing billed");
}

#[tokio::test]
async fn opening_a_session_for_another_plan_expires_the_earlier_one() {
    let stack = common::serve_clocked_stack("session-replaced").await;
    let account = "acct_two_plans";
    let pro = checkout(&stack.base, account, "pro").await;
    let again = checkout(&stack.base, account, "pro").await;
    let team = checkout(&stack.base, account, "team").await;

    let first =
        tollgate_dev::trigger::pay(&stack.base, DEV_WEBHOOK_SECRET, pro["session_id"].as_str().unwrap(), |_| {}).await;
    let second =
        tollgate_dev::trigger::pay(&stack.base, DEV_WEBHOOK_SECRET, team["session_id"].as_str().unwrap(), |_| {}).await;
    stack.drain().await;

    assert_eq!(again["session_id"], pro["session_id"], "the same request reuses its session");
    assert_ne!(team["session_id"], pro["session_id"]);
    let refused = first.unwrap_err().to_string();
    assert!(refused.contains("has expired"), "{refused}");
    assert!(second.is_ok(), "{second:?}");
    assert_eq!(subscriptions_of(&stack, &team), 1, "one live subscription");
}
