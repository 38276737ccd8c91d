//! Adopting a live Stripe account over the local stack (issue 31): 20 customers made in the
//! stand-in as a product without Tollgate makes them (its own metadata key, or none and a map),
//! in every state that matters; `tollgate-dev adopt`'s calls (`POST /operator/adoption`, sync
//! runs, `GET /operator/adoption`) sort them in a dry run that changes nothing, link them with
//! their plans and access on `apply`, change nothing on a second `apply`, never apply a
//! conflict, and events for an adopted customer then apply as any other's.

mod common;

use serde_json::{Value, json};
use tollgate_standin::TriggerSpec;

const KEY: &str = "user_id";

struct Adopting {
    stack: common::LocalStack,
    http: reqwest::Client,
}

impl Adopting {
    /// Makes `account`'s customer by triggering `event` without delivering it (Tollgate never
    /// heard of it), the account id under `metadata_key` (`""`: no metadata); answers the
    /// customer id.
    fn make(&self, account: &str, event: &str, metadata_key: &str) -> String {
        let mark = self.stack.standin.events().len();
        let spec = TriggerSpec { metadata_key: Some(metadata_key.to_owned()), ..TriggerSpec::new(event, account) };
        self.stack.standin.trigger(&spec).unwrap_or_else(|e| panic!("{event} for {account}: {e}"));
        let events = self.stack.standin.events();
        let created = events[mark..].iter().find(|e| e["type"] == "customer.created").expect("a new customer");
        created["data"]["object"]["id"].as_str().unwrap().to_owned()
    }

    async fn subscription(&self, account: &str) -> Value {
        let response = self
            .http
            .get(format!("{}/subscription", self.stack.base))
            .header("x-tollgate-account", account)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    async fn subscriptions(&self, accounts: &[&str]) -> Vec<Value> {
        let mut reads = Vec::new();
        for account in accounts {
            reads.push(self.subscription(account).await);
        }
        reads
    }

    async fn adopt(&self, request: Value) -> Value {
        let adoption = tollgate_dev::ops::adopt(self.stack.port, &request).await.unwrap();
        assert_eq!(adoption["state"], "done", "{adoption}");
        adoption["report"].clone()
    }
}

fn customers(entries: &Value) -> Vec<String> {
    let mut ids: Vec<String> =
        entries.as_array().unwrap().iter().map(|e| e["customer_id"].as_str().unwrap().to_owned()).collect();
    ids.sort();
    ids
}

fn entry<'a>(report: &'a Value, list: &str, customer: &str) -> &'a Value {
    report[list].as_array().unwrap().iter().find(|e| e["customer_id"] == customer).unwrap_or_else(|| {
        panic!("{customer} not in {list}: {report}");
    })
}

#[tokio::test]
async fn a_stripe_account_is_adopted_dry_run_first_then_applied_once_with_conflicts_left_alone() {
    let a = Adopting { stack: common::serve_clocked_stack("adoption").await, http: reqwest::Client::new() };
    let standin = &a.stack.standin;

    // A customer Tollgate made (linked by its own checkout), before adoption.
    let events = standin.trigger(&TriggerSpec::new("checkout.session.completed", "acct_taken")).unwrap();
    a.stack.deliver(&events).await;

    // Under the product's own metadata key.
    let mut by_account = std::collections::BTreeMap::new();
    for (account, event) in [
        ("acct_trial_1", "customer.subscription.created"),
        ("acct_trial_2", "customer.subscription.created"),
        ("acct_trial_3", "customer.subscription.created"),
        ("acct_active_1", "invoice.paid"),
        ("acct_active_2", "invoice.paid"),
        ("acct_active_3", "invoice.paid"),
        ("acct_late_1", "invoice.payment_failed"),
        ("acct_late_2", "invoice.payment_failed"),
        ("acct_gone_1", "customer.subscription.deleted"),
        ("acct_gone_2", "customer.subscription.deleted"),
        ("acct_disputed_1", "charge.dispute.created"),
        ("acct_disputed_2", "charge.dispute.created"),
        ("acct_twice_a", "customer.subscription.created"),
        ("acct_twice_b", "customer.subscription.created"),
    ] {
        by_account.insert(account, a.make(account, event, KEY));
    }
    // One on a price the catalogue does not have.
    standin.add_foreign_price("legacy_monthly", 1900);
    let legacy = a.make("acct_legacy", "customer.created", KEY);
    let legacy_subscription = standin.create_subscription(&legacy, "legacy_monthly", None).unwrap();
    // Two customers naming one account: a conflict, never a pick.
    for twice in ["acct_twice_a", "acct_twice_b"] {
        let id = &by_account[twice];
        let updated = a
            .http
            .post(format!("{}/stripe/v1/customers/{id}", a.stack.base))
            .form(&[(format!("metadata[{KEY}]"), "acct_twice")])
            .send()
            .await
            .unwrap();
        assert_eq!(updated.status(), 200);
    }
    // No metadata at all: a map names their accounts, one of them an account linked already.
    let mapped_trial = a.make("acct_map_1", "customer.subscription.created", "");
    let mapped_active = a.make("acct_map_2", "invoice.paid", "");
    let mapped_taken = a.make("acct_map_3", "customer.subscription.created", "");
    let unmapped = a.make("acct_nobody", "customer.subscription.created", "");
    let map = json!([[mapped_trial, "acct_map_1"], [mapped_active, "acct_map_2"], [mapped_taken, "acct_taken"]]);
    let taken_before = a.subscription("acct_taken").await;

    // The dry run: every case reported, nothing changed.
    let dry = a.adopt(json!({"metadata_key": KEY, "map": map})).await;

    assert_eq!(customers(&dry["unmapped"]), [unmapped.as_str()]);
    let mut twice = vec![by_account["acct_twice_a"].clone(), by_account["acct_twice_b"].clone()];
    twice.sort();
    let mut conflicts = twice.clone();
    conflicts.push(mapped_taken.clone());
    conflicts.sort();
    assert_eq!(customers(&dry["conflicts"]), conflicts, "{dry}");
    for id in &twice {
        assert_eq!(entry(&dry, "conflicts", id)["reason"], "claimed_twice");
    }
    assert_eq!(entry(&dry, "conflicts", &mapped_taken)["reason"], "linked_elsewhere");
    let price = entry(&dry, "unmapped_prices", &legacy);
    assert_eq!(
        (&price["subscription_id"], &price["lookup_key"], &price["price_id"]),
        (&legacy_subscription["id"], &json!("legacy_monthly"), &json!("price_legacy_monthly"))
    );
    assert_eq!(dry["link"].as_array().unwrap().len(), 15, "12 by metadata, 2 by the map, acct_taken's own: {dry}");
    let expect = |account: &str, plan: &str, status: &str, access: &str| {
        let customer = if account.starts_with("acct_map") {
            if account == "acct_map_1" { mapped_trial.clone() } else { mapped_active.clone() }
        } else {
            by_account[account].clone()
        };
        let linked = entry(&dry, "link", &customer);
        assert_eq!(
            (&linked["account_id"], &linked["plan"], &linked["status"], &linked["access"]),
            (&json!(account), &json!(plan), &json!(status), &json!(access)),
            "{account}"
        );
    };
    expect("acct_trial_1", "pro", "trialing", "trialing");
    expect("acct_active_1", "pro", "active", "active");
    expect("acct_late_1", "pro", "past_due", "grace_period");
    expect("acct_gone_1", "free", "canceled", "canceled");
    expect("acct_disputed_1", "pro", "active", "disputed");
    expect("acct_map_1", "pro", "trialing", "trialing");
    expect("acct_map_2", "pro", "active", "active");
    assert!(dry["stripe_calls"].as_u64().unwrap() >= 16, "{dry}");
    for account in ["acct_trial_1", "acct_active_1", "acct_disputed_1", "acct_map_1"] {
        let read = a.subscription(account).await;
        assert_eq!(
            (&read["plan"], &read["access"]["reason"]),
            (&json!("free"), &json!("no_subscription")),
            "{account}"
        );
    }

    // Apply: linked with their plans and access; conflicts and unmapped left alone.
    let applied = a.adopt(json!({"metadata_key": KEY, "map": map, "apply": true, "write_metadata": true})).await;

    assert_eq!(customers(&applied["link"]), customers(&dry["link"]));
    assert_eq!(customers(&applied["conflicts"]), conflicts);
    const ACCOUNTS: &[&str] = &[
        "acct_trial_1",
        "acct_active_1",
        "acct_late_1",
        "acct_gone_1",
        "acct_disputed_1",
        "acct_map_1",
        "acct_map_2",
        "acct_twice",
        "acct_legacy",
        "acct_nobody",
        "acct_taken",
    ];
    let after = a.subscriptions(ACCOUNTS).await;
    let state = |read: &Value| (read["plan"].clone(), read["status"].clone(), read["access"]["reason"].clone());
    let expected = [
        ("pro", json!("trialing"), "trialing"),
        ("pro", json!("active"), "active"),
        ("pro", json!("past_due"), "grace_period"),
        ("free", json!("canceled"), "canceled"),
        ("pro", json!("active"), "disputed"),
        ("pro", json!("trialing"), "trialing"),
        ("pro", json!("active"), "active"),
        ("free", Value::Null, "no_subscription"),
        ("free", Value::Null, "no_subscription"),
        ("free", Value::Null, "no_subscription"),
    ];
    for ((account, read), (plan, status, reason)) in ACCOUNTS.iter().zip(&after).zip(expected) {
        assert_eq!(state(read), (json!(plan), status, json!(reason)), "{account}: {read}");
    }
    assert_eq!(after[10], taken_before, "a conflict never moves the account linked before");
    let tag = |customer: &str| standin.object(customer).unwrap()["metadata"]["tollgate_account_id"].clone();
    assert_eq!(tag(&by_account["acct_trial_1"]), "acct_trial_1", "write_metadata tags an adopted customer");
    assert_eq!(tag(&mapped_trial), "acct_map_1");
    for untouched in [&by_account["acct_twice_a"], &mapped_taken, &unmapped, &legacy] {
        assert_eq!(tag(untouched), Value::Null, "{untouched}: only adopted customers are tagged");
    }

    // A second apply changes nothing.
    let again = a.adopt(json!({"metadata_key": KEY, "map": map, "apply": true})).await;
    assert_eq!(customers(&again["link"]), customers(&applied["link"]));
    assert_eq!(a.subscriptions(ACCOUNTS).await, after, "a second apply writes nothing");

    // An event for an adopted customer (no Tollgate metadata anywhere) applies normally.
    let spec = TriggerSpec {
        plan: Some("team".into()),
        metadata_key: Some(KEY.into()),
        ..TriggerSpec::new("customer.subscription.updated", "acct_trial_1")
    };
    let events = standin.trigger(&spec).unwrap();
    a.stack.deliver(&events).await;
    assert_eq!(a.subscription("acct_trial_1").await["plan"], "team");
}

#[tokio::test]
async fn an_adoption_runs_one_at_a_time_and_a_bad_request_is_refused_whole() {
    let stack = common::serve_clocked_stack("adoption-one").await;
    let http = reqwest::Client::new();
    let post = |body: Value| {
        http.post(format!("{}/operator/adoption", stack.base)).header("x-tollgate-operator", "me").json(&body).send()
    };

    let first = post(json!({"metadata_key": KEY})).await.unwrap();
    assert_eq!(first.status(), 202);
    let running = post(json!({})).await.unwrap();
    assert_eq!(running.status(), 409);
    assert_eq!(running.json::<Value>().await.unwrap()["error"]["code"], "adoption_running");
    for bad in [json!({"mode": "adopt"}), json!({"map": [["1", "acct"]]}), json!({"metadata_key": ""})] {
        let refused = post(bad.clone()).await.unwrap();
        assert_eq!(refused.status(), 400, "{bad}");
    }
    let status: Value = http
        .get(format!("{}/operator/adoption", stack.base))
        .header("x-tollgate-operator", "me")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((&status["state"], &status["apply"], &status["done"]), (&json!("running"), &json!(false), &json!(0)));
    let unsigned = http.get(format!("{}/operator/adoption", stack.base)).send().await.unwrap();
    assert_eq!(unsigned.status(), 403, "the operator's alone");
}
