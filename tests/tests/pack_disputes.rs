//! A chargeback on a credit pack's payment, over HTTP on the local stack with the trigger's
//! `--pack`: the dispute holds what is left of the pack (`freeze`), a loss removes it for good
//! (`reversal`), a win gives all of it back (`release`), and a loss delivered before its opening
//! reverses at once while the late opening holds nothing.

mod common;

use serde_json::Value;
use tollgate::edge::webhook::DEV_WEBHOOK_SECRET;
use tollgate_standin::TriggerSpec;

async fn credits(base: &str, account: &str) -> Value {
    let response = reqwest::Client::new()
        .get(format!("{base}/credits?limit=100"))
        .header("x-tollgate-account", account)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn kinds(ledger: &Value) -> Vec<String> {
    let mut kinds: Vec<String> =
        ledger["entries"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap().to_owned()).collect();
    kinds.reverse();
    kinds
}

async fn trigger(stack: &common::LocalStack, spec: TriggerSpec) -> Vec<Value> {
    let delivered = tollgate_dev::trigger::trigger(&stack.base, DEV_WEBHOOK_SECRET, &spec, false).await.unwrap();
    stack.drain().await;
    delivered.iter().map(|d| serde_json::json!(d.event_type)).collect()
}

#[tokio::test]
async fn a_disputed_pack_is_held_then_gone_when_lost_and_back_when_won() {
    let stack = common::serve_clocked_stack("pack-disputes").await;
    for (account, outcome) in [("acct_pack_lost", "lost"), ("acct_pack_won", "won")] {
        trigger(&stack, TriggerSpec::new("checkout.session.completed", account).pack("credits_1000")).await;
        let bought = credits(&stack.base, account).await;

        trigger(&stack, TriggerSpec::new("charge.dispute.created", account).pack("credits_1000")).await;
        let held = credits(&stack.base, account).await;
        trigger(&stack, TriggerSpec::new("charge.dispute.closed", account).pack("credits_1000").outcome(outcome)).await;
        let closed = credits(&stack.base, account).await;
        // A redelivered opening after the close holds nothing.
        let opened_again = stack.standin.events().into_iter().find(|e| e["type"] == "charge.dispute.created").unwrap();
        stack.deliver(&[opened_again]).await;
        let after = credits(&stack.base, account).await;

        assert_eq!(bought["purchased"], 1000, "{account}: {bought}");
        assert_eq!(held["purchased"], 0, "{account}: held while the dispute is open");
        assert_eq!(kinds(&held), ["grant", "freeze"], "{account}");
        let expected = if outcome == "won" { 1000 } else { 0 };
        assert_eq!(closed["purchased"], expected, "{account}: {closed}");
        let last = if outcome == "won" { "release" } else { "reversal" };
        assert_eq!(kinds(&closed), ["grant", "freeze", last], "{account}");
        assert_eq!(after["purchased"], expected, "{account}: nothing moves on a late event");
        assert_eq!(kinds(&after).len(), 3, "{account}");
    }
}

#[tokio::test]
async fn a_loss_delivered_before_its_opening_reverses_at_once_and_the_late_opening_holds_nothing() {
    let stack = common::serve_clocked_stack("pack-dispute-order").await;
    let account = "acct_pack_order";
    trigger(&stack, TriggerSpec::new("checkout.session.completed", account).pack("credits_1000")).await;
    let spec = TriggerSpec::new("charge.dispute.closed", account).pack("credits_1000").outcome("lost");
    tollgate_dev::trigger::trigger(&stack.base, DEV_WEBHOOK_SECRET, &spec, true).await.unwrap();
    let events = stack.standin.events();
    let opened = events.iter().rev().find(|e| e["type"] == "charge.dispute.created").unwrap().clone();
    let lost = events.iter().rev().find(|e| e["type"] == "charge.dispute.closed").unwrap().clone();

    stack.deliver(&[lost]).await;
    let reversed = credits(&stack.base, account).await;
    stack.deliver(&[opened]).await;
    let after = credits(&stack.base, account).await;

    assert_eq!(reversed["purchased"], 0);
    assert_eq!(kinds(&reversed), ["grant", "reversal"]);
    assert_eq!(kinds(&after), ["grant", "reversal"], "the late opening holds nothing: {after}");
}
