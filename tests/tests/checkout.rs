//! `checkout` against the real DynamoDB API (moto) and the Stripe stand-in: the conditional
//! writes that make racing requests safe, and a rate window shared by every instance.

mod common;

use checkout::{Deps, handle};
use lambda_http::http::StatusCode;
use std::sync::Arc;
use tollgate::adapters::dynamo::DynamoStore;
use tollgate::adapters::stripe::StripeBilling;
use tollgate::app::checkout::CheckoutDeps;
use tollgate::domain::ratelimit::Limit;
use tollgate::domain::redirect::AllowList;
use tollgate::domain::redirect::Redirects;
use tollgate::edge::config::IdentityConfig;
use tollgate::testing::{FixedClock, settings};
use tollgate_standin::{StandIn, test_billing};

const NOW: i64 = 1_795_273_200;

fn deps(store: DynamoStore, base: &str) -> Deps<DynamoStore, StripeBilling> {
    let checkout = CheckoutDeps {
        store,
        billing: test_billing(base),
        settings: settings(&FixedClock::at(NOW)),
        redirects: Redirects {
            allowed: AllowList::parse("https://app.example.com").unwrap(),
            success_url: "https://app.example.com/ok".into(),
            cancel_url: "https://app.example.com/cancel".into(),
            return_url: "https://app.example.com/billing".into(),
        },
        checkout_limit: Limit { limit: 5, window_ms: 60_000 },
        session_ttl_seconds: 3600,
    };
    Deps {
        checkout,
        identity: IdentityConfig { claim: "sub".into() },
        deletion_budget: std::time::Duration::from_secs(20),
    }
}

fn post_checkout(account: &str, plan: &str, interval: &str) -> lambda_http::Request {
    let raw =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../events/apigw-post-checkout.json")).unwrap();
    let mut event: serde_json::Value = serde_json::from_str(&raw).unwrap();
    event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = account.into();
    event["body"] = serde_json::json!({ "plan": plan, "interval": interval }).to_string().into();
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

#[tokio::test]
async fn ten_racing_checkouts_for_a_new_account_create_one_customer_and_one_session() {
    let (aws, resources) = common::local("race-checkout").await;
    let standin = StandIn::new();
    standin.set_clock(NOW);
    let base = standin.spawn().await.unwrap();
    let deps = Arc::new(deps(DynamoStore::new(tollgate::adapters::aws::dynamodb(&aws), resources.table), &base));

    let racers: Vec<_> = (0..10)
        .map(|_| {
            let deps = Arc::clone(&deps);
            tokio::spawn(async move { handle(&deps, post_checkout("acct_race", "pro", "month")).await.unwrap() })
        })
        .collect();
    let mut answers = Vec::new();
    for racer in racers {
        let response = racer.await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{:?}", response.body());
        answers.push(serde_json::from_slice::<serde_json::Value>(response.body().as_ref()).unwrap());
    }

    let customers =
        reqwest::get(format!("{base}v1/customers?limit=100")).await.unwrap().json::<serde_json::Value>().await.unwrap();
    assert_eq!(customers["data"].as_array().unwrap().len(), 1, "{customers}");
    let sessions = reqwest::get(format!("{base}v1/checkout/sessions?limit=100"))
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(sessions["data"].as_array().unwrap().len(), 1, "{sessions}");
    assert!(answers.iter().all(|a| a["session_id"] == answers[0]["session_id"]));
}

#[tokio::test]
async fn rate_window_is_shared_by_every_instance() {
    let (aws, resources) = common::local("shared-rate").await;
    let standin = StandIn::new();
    standin.set_clock(NOW);
    let base = standin.spawn().await.unwrap();
    let one = deps(DynamoStore::new(tollgate::adapters::aws::dynamodb(&aws), resources.table.clone()), &base);
    let two = deps(DynamoStore::new(tollgate::adapters::aws::dynamodb(&aws), resources.table), &base);
    let plans = [("pro", "month"), ("pro", "year"), ("team", "month"), ("team", "year"), ("enterprise", "month")];

    for (i, (plan, interval)) in plans.into_iter().enumerate() {
        let instance = if i % 2 == 0 { &one } else { &two };
        let response = handle(instance, post_checkout("acct_rate", plan, interval)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let sixth = handle(&two, post_checkout("acct_rate", "enterprise", "year")).await.unwrap();

    assert_eq!(sixth.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(sixth.headers().contains_key("retry-after"));
}
