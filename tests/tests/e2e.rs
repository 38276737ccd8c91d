//! End to end over HTTP on the local stack (moto, the Stripe stand-in, every handler, the
//! local worker): signed events from `trigger` drive the projection that `GET /subscription`
//! reads, and replaying an earlier event changes nothing.

mod common;

use tollgate::edge::webhook::DEV_WEBHOOK_SECRET;
use tollgate_dev::trigger::trigger;
use tollgate_standin::TriggerSpec;

struct Stack(common::LocalStack);

async fn stack(test: &str) -> Stack {
    Stack(common::serve_stack(test).await)
}

impl Stack {
    async fn trigger(&self, event: &str, plan: Option<&str>) {
        let spec = TriggerSpec { plan: plan.map(str::to_owned), ..TriggerSpec::new(event, "acct_e2e") };
        let deliveries = trigger(&self.0.base, DEV_WEBHOOK_SECRET, &spec, false).await.unwrap();
        assert!(deliveries.iter().all(|d| d.status == Some(200)), "{deliveries:?}");
        self.0.drain().await;
    }

    async fn read(&self) -> serde_json::Value {
        reqwest::Client::new()
            .get(format!("{}/subscription", self.0.base))
            .header("x-tollgate-account", "acct_e2e")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn checkout_payment_failure_dispute_cancel_and_replay() {
    let stack = stack("e2e").await;

    stack.trigger("checkout.session.completed", Some("pro")).await;
    let pro = stack.read().await;
    stack.trigger("invoice.payment_failed", None).await;
    let failed = stack.read().await;
    stack.trigger("charge.dispute.created", None).await;
    let disputed = stack.read().await;
    stack.trigger("customer.subscription.deleted", None).await;
    let canceled = stack.read().await;

    assert_eq!(pro["plan"], "pro", "{pro}");
    assert!(pro["status"] == "trialing" || pro["status"] == "active", "{pro}");
    assert_eq!(pro["access"]["allowed"], true);
    assert_eq!(
        (failed["status"].as_str(), failed["access"]["reason"].as_str()),
        (Some("past_due"), Some("grace_period")),
        "{failed}"
    );
    assert_eq!(failed["access"]["allowed"], true);
    assert!(failed["grace_until"].as_i64().is_some());
    assert_eq!(disputed["access"], serde_json::json!({"allowed": false, "reason": "disputed"}), "{disputed}");
    assert_eq!(
        (canceled["plan"].as_str(), canceled["status"].as_str()),
        (Some("free"), Some("canceled")),
        "{canceled}"
    );

    // Replaying every earlier event, signed afresh, changes nothing.
    for event in stack.0.standin.events() {
        let body = event.to_string();
        let header = tollgate::testing::signature_header(
            &body,
            DEV_WEBHOOK_SECRET,
            tollgate::ports::clock::Clock::now(&tollgate::ports::clock::SystemClock),
        );
        let status = reqwest::Client::new()
            .post(format!("{}/webhooks/stripe", stack.0.base))
            .header("stripe-signature", header)
            .body(body)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
    }
    stack.0.drain().await;
    let after_replay = stack.read().await;
    assert_eq!(after_replay, canceled);
}

#[tokio::test]
async fn checkout_over_http_answers_a_standin_session_and_accounts_stay_apart() {
    let stack = stack("apart").await;
    let client = reqwest::Client::new();
    let post = |path: &str, account: &str, body: serde_json::Value| {
        client.post(format!("{}{path}", stack.0.base)).header("x-tollgate-account", account).json(&body).send()
    };
    stack.trigger("checkout.session.completed", Some("pro")).await;

    let checkout_b =
        post("/checkout", "acct_b", serde_json::json!({"plan": "team", "interval": "year"})).await.unwrap();
    let session: serde_json::Value = checkout_b.json().await.unwrap();
    let read_b: serde_json::Value = client
        .get(format!("{}/subscription", stack.0.base))
        .header("x-tollgate-account", "acct_b")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cancel_b = post("/subscription/cancel", "acct_b", serde_json::json!({"at_period_end": false})).await.unwrap();
    let change_b =
        post("/subscription/change", "acct_b", serde_json::json!({"plan": "team", "interval": "month"})).await.unwrap();
    let delete_b =
        client.delete(format!("{}/account", stack.0.base)).header("x-tollgate-account", "acct_b").send().await.unwrap();
    let read_a = stack.read().await;

    assert!(session["session_id"].as_str().unwrap().starts_with("cs_"), "{session}");
    let hosted = format!("{}/stripe/checkout/{}", stack.0.base, session["session_id"].as_str().unwrap());
    assert_eq!(session["url"].as_str(), Some(hosted.as_str()), "the stand-in's hosted page, on the stack's port");
    assert_eq!((read_b["account_id"].as_str(), read_b["plan"].as_str()), (Some("acct_b"), Some("free")), "{read_b}");
    assert_eq!(cancel_b.status(), 409);
    assert_eq!(change_b.status(), 409);
    assert_eq!(delete_b.status(), 200);
    assert_eq!((read_a["account_id"].as_str(), read_a["plan"].as_str()), (Some("acct_e2e"), Some("pro")), "{read_a}");
    assert_eq!(read_a["access"]["allowed"], true);
}
