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

/// The `subscription_canceled` notifications queued, taken off the queue.
async fn cancellations(stack: &common::LocalStack) -> Vec<Value> {
    stack.notifications().await.into_iter().filter(|n| n["kind"] == "subscription_canceled").collect()
}

#[tokio::test]
async fn two_sessions_both_paid_leave_one_subscription_the_newer_ended_and_refunded_with_its_notice() {
    let stack = common::serve_clocked_stack("session-both-paid").await;
    let account = "acct_both_paid";
    let monthly = checkout(&stack.base, account, "enterprise").await;
    // Stripe cannot be reached to expire the first when the second opens.
    stack.standin.fail_path("/expire", 10, 500);
    let (status, yearly) =
        post(&stack.base, "/checkout", account, json!({"plan": "enterprise", "interval": "year"})).await;
    assert_eq!(status, 200, "the new session is answered anyway: {yearly}");

    for session in [&monthly, &yearly] {
        tollgate_dev::trigger::pay(&stack.base, DEV_WEBHOOK_SECRET, session["session_id"].as_str().unwrap(), |_| {})
            .await
            .unwrap();
        stack.drain().await;
        // A minute apart: the second is the newer by `created`.
        let response = reqwest::Client::new()
            .post(format!("{}/_dev/clock", stack.base))
            .json(&json!({"advance": 60}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    // The cancellation and the refund the worker made reach it as events too.
    let later: Vec<Value> = stack
        .standin
        .events()
        .into_iter()
        .filter(|e| e["type"] == "customer.subscription.deleted" || e["type"] == "charge.refunded")
        .collect();
    stack.deliver(&later).await;
    let read = reqwest::Client::new()
        .get(format!("{}/subscription", stack.base))
        .header("x-tollgate-account", account)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let notices = cancellations(&stack).await;

    let subscription_of = |session: &Value| {
        stack.standin.object(session["session_id"].as_str().unwrap()).unwrap()["subscription"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let kept = stack.standin.object(&subscription_of(&monthly)).unwrap();
    let ended = stack.standin.object(&subscription_of(&yearly)).unwrap();
    assert_eq!(kept["status"], "active");
    assert_eq!(ended["status"], "canceled", "the newer is ended");
    let invoice = stack.standin.object(ended["latest_invoice"].as_str().unwrap()).unwrap();
    let refunded = stack.standin.events().into_iter().any(|e| {
        e["type"] == "charge.refunded"
            && e["data"]["object"]["payment_intent"].is_string()
            && e["data"]["object"]["customer"] == invoice["customer"]
    });
    assert!(refunded, "what it charged is refunded");
    assert_eq!(
        (read["plan"].as_str(), read["interval"].as_str(), read["status"].as_str()),
        (Some("enterprise"), Some("month"), Some("active")),
        "{read}"
    );
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0]["details"]["reason"], "duplicate_subscription");
    assert_eq!(notices[0]["object_id"], ended["id"]);
    assert_eq!(notices[0]["details"]["refunded"], true);
}

#[tokio::test]
async fn a_session_paid_after_its_account_was_deleted_is_ended_and_refunded() {
    let stack = common::serve_clocked_stack("session-after-delete").await;
    let account = "acct_paid_after_delete";
    let session = checkout(&stack.base, account, "enterprise").await;
    stack.standin.fail_path("/expire", 10, 500);
    let deleted = reqwest::Client::new()
        .delete(format!("{}/account", stack.base))
        .header("x-tollgate-account", account)
        .send()
        .await
        .unwrap()
        .status();

    tollgate_dev::trigger::pay(&stack.base, DEV_WEBHOOK_SECRET, session["session_id"].as_str().unwrap(), |_| {})
        .await
        .unwrap();
    stack.drain().await;
    let notices = cancellations(&stack).await;

    assert_eq!(deleted, 200);
    let bought = stack.standin.object(session["session_id"].as_str().unwrap()).unwrap()["subscription"].clone();
    let subscription = stack.standin.object(bought.as_str().unwrap()).unwrap();
    assert_eq!(subscription["status"], "canceled", "nothing bills a deleted account");
    assert!(stack.standin.events().iter().any(|e| e["type"] == "charge.refunded"), "its payment is refunded");
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0]["details"]["reason"], "account_deleted");
}
