//! The `checkout` handler against the local Stripe stand-in over HTTP (through the real
//! `StripeBilling` adapter), asserting the requests Stripe would receive.

use checkout::{Deps, handle};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use tollgate::adapters::stripe::StripeBilling;
use tollgate::app::checkout::CheckoutDeps;
use tollgate::domain::model::{AccountId, Projection};
use tollgate::domain::ratelimit::Limit;
use tollgate::domain::redirect::AllowList;
use tollgate::domain::redirect::Redirects;
use tollgate::edge::config::IdentityConfig;
use tollgate::ports::accounts::AccountStore;
use tollgate::ports::subscriptions::SubscriptionStore;
use tollgate::testing::{FixedClock, MemoryStore, settings};
use tollgate_standin::{StandIn, test_billing};

const NOW: i64 = 1_795_273_200;

struct Harness {
    deps: Deps<MemoryStore, StripeBilling>,
    standin: StandIn,
    clock: FixedClock,
}

async fn harness() -> Harness {
    let standin = StandIn::new();
    standin.set_clock(NOW);
    let base = standin.spawn().await.unwrap();
    let clock = FixedClock::at(NOW);
    let checkout = CheckoutDeps {
        store: MemoryStore::new(),
        billing: test_billing(&base),
        settings: settings(&clock),
        redirects: Redirects {
            allowed: AllowList::parse("https://app.example.com").unwrap(),
            success_url: "https://app.example.com/billing/success".into(),
            cancel_url: "https://app.example.com/billing/cancel".into(),
            return_url: "https://app.example.com/billing".into(),
        },
        checkout_limit: Limit { limit: 5, window_ms: 60_000 },
        session_ttl_seconds: 3600,
    };
    let deps = Deps {
        checkout,
        identity: IdentityConfig { claim: "sub".into() },
        deletion_budget: std::time::Duration::from_secs(20),
    };
    Harness { deps, standin, clock }
}

/// The sample API Gateway event with another method, path, body and caller.
fn request(method: Method, path: &str, body: Option<serde_json::Value>, account: Option<&str>) -> Request {
    let raw =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/apigw-post-checkout.json")).unwrap();
    let mut event: serde_json::Value = serde_json::from_str(&raw).unwrap();
    event["rawPath"] = path.into();
    event["requestContext"]["http"]["path"] = path.into();
    event["requestContext"]["http"]["method"] = method.as_str().into();
    event["body"] = body.map_or(serde_json::Value::Null, |b| b.to_string().into());
    match account {
        Some(account) => event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = account.into(),
        None => {
            event["requestContext"].as_object_mut().unwrap().remove("authorizer");
        }
    }
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

fn checkout_body(plan: &str, interval: &str) -> serde_json::Value {
    serde_json::json!({ "plan": plan, "interval": interval })
}

fn body(response: &Response<Body>) -> serde_json::Value {
    serde_json::from_slice(response.body().as_ref()).unwrap()
}

fn posts(standin: &StandIn, path: &str) -> Vec<tollgate_standin::RecordedRequest> {
    standin.requests().into_iter().filter(|r| r.method == "POST" && r.path == path).collect()
}

async fn subscribed(h: &Harness, account: &str, lookup_key: &str) -> Projection {
    let customer = h.deps.checkout.billing_customer_for_test(account).await;
    let sub = h.standin.create_subscription(&customer, lookup_key, None).unwrap();
    let projection = Projection {
        customer_id: customer,
        subscription_id: Some(sub["id"].as_str().unwrap().into()),
        plan: lookup_key.split('_').next().unwrap().into(),
        price_lookup_key: Some(lookup_key.into()),
        current_period_start: Some(NOW),
        current_period_end: Some(NOW + 30 * 86_400),
        ..tollgate::testing::projection(account)
    };
    h.deps.checkout.store.put_subscription(&projection).await.unwrap();
    projection
}

trait TestCustomer {
    async fn billing_customer_for_test(&self, account: &str) -> String;
}

impl TestCustomer for CheckoutDeps<MemoryStore, StripeBilling> {
    /// Links the account to a new stand-in customer, as a completed checkout would.
    async fn billing_customer_for_test(&self, account: &str) -> String {
        use tollgate::ports::billing::Billing;
        let id = AccountId::parse(account).unwrap();
        let customer = self.billing.create_customer(&id, &format!("test-customer-{account}")).await.unwrap();
        self.store
            .link_customer(&tollgate::ports::accounts::Account {
                account_id: id,
                customer_id: customer.clone(),
                created_at: NOW,
            })
            .await
            .unwrap();
        customer
    }
}

#[tokio::test]
async fn checkout_sends_stripe_the_session_with_trial_account_and_idempotency_key() {
    let h = harness().await;

    let response =
        handle(&h.deps, request(Method::POST, "/checkout", Some(checkout_body("pro", "month")), Some("acct_a")))
            .await
            .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let answer = body(&response);
    assert!(answer["url"].as_str().unwrap().starts_with("http"));
    let customers = posts(&h.standin, "/v1/customers");
    assert_eq!(customers.len(), 1);
    assert_eq!(customers[0].idempotency_key.as_deref(), Some("customer-acct_a"));
    assert_eq!(customers[0].field("metadata[tollgate_account_id]"), Some("acct_a"));
    let sessions = posts(&h.standin, "/v1/checkout/sessions");
    assert_eq!(sessions.len(), 1);
    let session = &sessions[0];
    assert!(session.idempotency_key.as_deref().unwrap().starts_with("checkout-acct_a-"));
    let customer_id =
        h.deps.checkout.store.account(&AccountId::parse("acct_a").unwrap()).await.unwrap().unwrap().customer_id;
    for (field, value) in [
        ("mode", "subscription"),
        ("customer", customer_id.as_str()),
        ("client_reference_id", "acct_a"),
        ("line_items[0][price]", "price_pro_monthly"),
        ("line_items[0][quantity]", "1"),
        ("subscription_data[trial_period_days]", "14"),
        ("subscription_data[metadata][tollgate_account_id]", "acct_a"),
        ("metadata[tollgate_account_id]", "acct_a"),
        ("success_url", "https://app.example.com/billing/success"),
        ("cancel_url", "https://app.example.com/billing/cancel"),
    ] {
        assert_eq!(session.field(field), Some(value), "{field}");
    }
    assert!(answer["session_id"].as_str().unwrap().starts_with("cs_"));
    assert_eq!(session.stripe_version.as_deref(), Some(tollgate::adapters::stripe::STRIPE_API_VERSION));
}

#[tokio::test]
async fn double_click_returns_the_same_session_without_a_second_stripe_call() {
    let h = harness().await;
    let first = handle(&h.deps, request(Method::POST, "/checkout", Some(checkout_body("pro", "year")), Some("acct_b")))
        .await
        .unwrap();
    h.clock.advance(540);

    let second =
        handle(&h.deps, request(Method::POST, "/checkout", Some(checkout_body("pro", "year")), Some("acct_b")))
            .await
            .unwrap();

    assert_eq!(body(&first), body(&second));
    assert_eq!(posts(&h.standin, "/v1/checkout/sessions").len(), 1);
}

#[tokio::test]
async fn same_request_after_ten_minutes_makes_a_new_session() {
    let h = harness().await;
    let first = handle(&h.deps, request(Method::POST, "/checkout", Some(checkout_body("pro", "year")), Some("acct_c")))
        .await
        .unwrap();
    h.clock.advance(601);
    h.standin.set_clock(NOW + 601);

    let later = handle(&h.deps, request(Method::POST, "/checkout", Some(checkout_body("pro", "year")), Some("acct_c")))
        .await
        .unwrap();

    assert_ne!(body(&first)["session_id"], body(&later)["session_id"]);
    assert_eq!(posts(&h.standin, "/v1/checkout/sessions").len(), 2);
}

#[tokio::test]
async fn sixth_new_checkout_in_a_minute_gets_429_with_retry_after() {
    let h = harness().await;
    let plans = [("pro", "month"), ("pro", "year"), ("team", "month"), ("team", "year"), ("enterprise", "month")];
    for (i, (plan, interval)) in plans.into_iter().enumerate() {
        let response =
            handle(&h.deps, request(Method::POST, "/checkout", Some(checkout_body(plan, interval)), Some("acct_d")))
                .await
                .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "checkout {i}");
        h.clock.advance(5);
    }

    let sixth =
        handle(&h.deps, request(Method::POST, "/checkout", Some(checkout_body("enterprise", "year")), Some("acct_d")))
            .await
            .unwrap();
    // The latest session (an earlier plan's was expired when the next one opened).
    let repeat =
        handle(&h.deps, request(Method::POST, "/checkout", Some(checkout_body("enterprise", "month")), Some("acct_d")))
            .await
            .unwrap();

    assert_eq!(sixth.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(sixth.headers()["retry-after"], "35");
    assert_eq!(body(&sixth)["error"]["code"], "rate_limited");
    assert_eq!(repeat.status(), StatusCode::OK, "a repeat is not counted against the limit");
    assert_eq!(posts(&h.standin, "/v1/checkout/sessions").len(), 5);
}

#[tokio::test]
async fn foreign_redirect_origin_is_400_and_nothing_reaches_stripe() {
    let h = harness().await;
    let body_with = |field: &str| {
        let mut b = checkout_body("pro", "month");
        b[field] = "https://evil.example/phish".into();
        b
    };

    let success = handle(&h.deps, request(Method::POST, "/checkout", Some(body_with("success_url")), Some("acct_e")))
        .await
        .unwrap();
    let cancel = handle(&h.deps, request(Method::POST, "/checkout", Some(body_with("cancel_url")), Some("acct_e")))
        .await
        .unwrap();

    assert_eq!(success.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body(&success)["error"]["code"], "redirect_not_allowed");
    assert_eq!(cancel.status(), StatusCode::BAD_REQUEST);
    assert!(h.standin.requests().is_empty());
}

#[tokio::test]
async fn bad_plan_interval_and_body_are_400s_that_change_nothing() {
    let h = harness().await;
    let cases = [
        (Some(checkout_body("gold", "month")), "unknown_plan"),
        (Some(checkout_body("free", "month")), "unknown_plan"),
        (Some(checkout_body("PRO", "month")), "unknown_plan"),
        (Some(checkout_body("pro", "weekly")), "unknown_interval"),
        (Some(serde_json::json!({"interval": "month"})), "missing_plan"),
        (Some(serde_json::json!({"plan": 7, "interval": "month"})), "malformed_body"),
    ];
    for (b, code) in cases {
        let response = handle(&h.deps, request(Method::POST, "/checkout", b.clone(), Some("acct_f"))).await.unwrap();

        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{b:?}");
        assert_eq!(body(&response)["error"]["code"], code, "{b:?}");
    }
    let mut malformed = request(Method::POST, "/checkout", None, Some("acct_f"));
    *malformed.body_mut() = Body::Text("{\"plan\": ".into());
    let mut oversized = request(Method::POST, "/checkout", None, Some("acct_f"));
    *oversized.body_mut() = Body::Text(format!("{{\"plan\":\"pro\",\"pad\":\"{}\"}}", "x".repeat(20_000)));
    assert_eq!(handle(&h.deps, malformed).await.unwrap().status(), StatusCode::BAD_REQUEST);
    assert_eq!(handle(&h.deps, oversized).await.unwrap().status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(h.standin.requests().is_empty());
    assert!(h.deps.checkout.store.account(&AccountId::parse("acct_f").unwrap()).await.unwrap().is_none());
}

#[tokio::test]
async fn unauthenticated_and_wrong_method_requests_are_refused() {
    let h = harness().await;

    let anonymous =
        handle(&h.deps, request(Method::POST, "/checkout", Some(checkout_body("pro", "month")), None)).await.unwrap();
    let get = handle(&h.deps, request(Method::GET, "/checkout", None, Some("acct_g"))).await.unwrap();
    let delete_via_post = handle(&h.deps, request(Method::POST, "/account", None, Some("acct_g"))).await.unwrap();

    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(delete_via_post.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(h.standin.requests().is_empty());
}

#[tokio::test]
async fn live_subscription_gets_409_pointing_to_portal_or_change() {
    let h = harness().await;
    subscribed(&h, "acct_h", "pro_monthly").await;
    let before = h.standin.requests().len();

    let response =
        handle(&h.deps, request(Method::POST, "/checkout", Some(checkout_body("team", "month")), Some("acct_h")))
            .await
            .unwrap();

    assert_eq!(response.status(), StatusCode::CONFLICT);
    let error = body(&response);
    assert_eq!(error["error"]["code"], "subscription_exists");
    assert!(error["error"]["message"].as_str().unwrap().contains("/portal"));
    assert_eq!(h.standin.requests().len(), before);
}

#[tokio::test]
async fn portal_needs_a_customer_and_an_allowed_return_url() {
    let h = harness().await;
    let none = handle(&h.deps, request(Method::POST, "/portal", None, Some("acct_i"))).await.unwrap();
    let customer = h.deps.checkout.billing_customer_for_test("acct_i").await;

    let foreign = handle(
        &h.deps,
        request(
            Method::POST,
            "/portal",
            Some(serde_json::json!({"return_url": "https://evil.example"})),
            Some("acct_i"),
        ),
    )
    .await
    .unwrap();
    let ok = handle(&h.deps, request(Method::POST, "/portal", None, Some("acct_i"))).await.unwrap();

    assert_eq!(none.status(), StatusCode::CONFLICT);
    assert_eq!(body(&none)["error"]["code"], "no_customer");
    assert_eq!(foreign.status(), StatusCode::BAD_REQUEST);
    assert_eq!(ok.status(), StatusCode::OK);
    assert!(body(&ok)["url"].as_str().unwrap().starts_with("http"));
    let portal = posts(&h.standin, "/v1/billing_portal/sessions");
    assert_eq!(portal.len(), 1);
    assert_eq!(portal[0].field("customer"), Some(customer.as_str()));
    assert_eq!(portal[0].field("return_url"), Some("https://app.example.com/billing"));
    assert!(portal[0].idempotency_key.is_some());
}

#[tokio::test]
async fn plan_change_prorates_and_the_read_shows_the_new_plan() {
    let h = harness().await;
    let before = subscribed(&h, "acct_j", "pro_monthly").await;

    let response = handle(
        &h.deps,
        request(Method::POST, "/subscription/change", Some(checkout_body("team", "month")), Some("acct_j")),
    )
    .await
    .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(&response)["plan"], "team");
    let update = posts(&h.standin, &format!("/v1/subscriptions/{}", before.subscription_id.clone().unwrap()));
    assert_eq!(update.len(), 1);
    assert_eq!(update[0].field("items[0][price]"), Some("price_team_monthly"));
    assert!(update[0].field("items[0][id]").unwrap().starts_with("si_"));
    assert_eq!(update[0].field("proration_behavior"), Some("create_prorations"));
    assert!(update[0].idempotency_key.as_deref().unwrap().starts_with("change-"));
    let stored = h.deps.checkout.store.subscription(&AccountId::parse("acct_j").unwrap()).await.unwrap().unwrap();
    assert_eq!((stored.plan.as_str(), stored.price_lookup_key.as_deref()), ("team", Some("team_monthly")));
}

#[tokio::test]
async fn repeated_plan_change_is_a_409_not_a_second_charge() {
    let h = harness().await;
    subscribed(&h, "acct_k", "pro_monthly").await;
    let change = || request(Method::POST, "/subscription/change", Some(checkout_body("team", "month")), Some("acct_k"));
    handle(&h.deps, change()).await.unwrap();

    let again = handle(&h.deps, change()).await.unwrap();

    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(body(&again)["error"]["code"], "same_plan");
    assert_eq!(
        h.standin.requests().iter().filter(|r| r.path.starts_with("/v1/subscriptions/") && r.method == "POST").count(),
        1
    );
}

#[tokio::test]
async fn cancel_at_period_end_then_now() {
    let h = harness().await;
    subscribed(&h, "acct_l", "pro_monthly").await;

    let at_end = handle(
        &h.deps,
        request(Method::POST, "/subscription/cancel", Some(serde_json::json!({"at_period_end": true})), Some("acct_l")),
    )
    .await
    .unwrap();
    let now = handle(
        &h.deps,
        request(
            Method::POST,
            "/subscription/cancel",
            Some(serde_json::json!({"at_period_end": false})),
            Some("acct_l"),
        ),
    )
    .await
    .unwrap();
    let missing = handle(&h.deps, request(Method::POST, "/subscription/cancel", None, Some("acct_l"))).await.unwrap();

    assert_eq!(body(&at_end)["cancel_at_period_end"], true);
    assert_eq!(body(&at_end)["plan"], "pro");
    assert_eq!(body(&now)["status"], "canceled");
    assert_eq!(body(&now)["plan"], "free");
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn delete_account_cancels_in_stripe_first_then_forgets_and_is_idempotent() {
    let h = harness().await;
    let projection = subscribed(&h, "acct_m", "team_monthly").await;
    let account = AccountId::parse("acct_m").unwrap();

    let first = handle(&h.deps, request(Method::DELETE, "/account", None, Some("acct_m"))).await.unwrap();
    let second = handle(&h.deps, request(Method::DELETE, "/account", None, Some("acct_m"))).await.unwrap();

    assert_eq!(body(&first)["canceled_subscriptions"], 1);
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(body(&second)["canceled_subscriptions"], 0);
    let deletes: Vec<_> = h.standin.requests().into_iter().filter(|r| r.method == "DELETE").collect();
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0].path, format!("/v1/subscriptions/{}", projection.subscription_id.unwrap()));
    assert!(h.deps.checkout.store.account(&account).await.unwrap().is_none());
    assert!(h.deps.checkout.store.subscription(&account).await.unwrap().is_none());
    assert!(h.deps.checkout.store.account_for_customer(&projection.customer_id).await.unwrap().is_none());
}

#[tokio::test]
async fn stripe_outage_is_503_without_internals_and_records_nothing() {
    let h = harness().await;
    h.standin.fail_next(10, 500);

    let response =
        handle(&h.deps, request(Method::POST, "/checkout", Some(checkout_body("pro", "month")), Some("acct_n")))
            .await
            .unwrap();

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let error = body(&response);
    assert_eq!(error["error"]["code"], "payment_provider_unavailable");
    assert!(!error.to_string().contains("sk_test"));
    assert_eq!(h.standin.requests().len(), 3, "the first attempt and two retries");
    assert!(h.deps.checkout.store.account(&AccountId::parse("acct_n").unwrap()).await.unwrap().is_none());
}

#[tokio::test]
async fn stripe_rate_limit_is_retried_with_the_same_key() {
    let h = harness().await;
    h.standin.fail_next(2, 429);

    let response =
        handle(&h.deps, request(Method::POST, "/checkout", Some(checkout_body("pro", "month")), Some("acct_o")))
            .await
            .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let customers = posts(&h.standin, "/v1/customers");
    assert_eq!(customers.len(), 3);
    assert!(customers.iter().all(|r| r.idempotency_key.as_deref() == Some("customer-acct_o")));
}

#[tokio::test]
async fn a_credit_pack_checkout_sends_stripe_a_payment_session_for_the_packs_price_once() {
    let h = harness().await;
    let pack = |body: serde_json::Value| request(Method::POST, "/credits/checkout", Some(body), Some("acct_p"));

    let first = handle(&h.deps, pack(serde_json::json!({"pack": "credits_1000"}))).await.unwrap();
    let again = handle(&h.deps, pack(serde_json::json!({"pack": "credits_1000"}))).await.unwrap();
    let unknown = handle(&h.deps, pack(serde_json::json!({"pack": "gold"}))).await.unwrap();
    let missing = handle(&h.deps, pack(serde_json::json!({}))).await.unwrap();
    let foreign =
        handle(&h.deps, pack(serde_json::json!({"pack": "credits_1000", "success_url": "https://evil.example/"})))
            .await
            .unwrap();

    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(body(&again), body(&first), "a repeat answers the pending session");
    assert_eq!(
        (unknown.status(), body(&unknown)["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unknown_pack"))
    );
    assert_eq!(
        (missing.status(), body(&missing)["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("missing_pack"))
    );
    assert_eq!(body(&foreign)["error"]["code"], "redirect_not_allowed");
    let sessions = posts(&h.standin, "/v1/checkout/sessions");
    assert_eq!(sessions.len(), 1, "one session for the repeated request, none for the refused ones");
    let session = &sessions[0];
    assert!(session.idempotency_key.as_deref().unwrap().starts_with("pack-acct_p-"));
    for (field, value) in [
        ("mode", "payment"),
        ("client_reference_id", "acct_p"),
        ("line_items[0][price]", "price_credits_1000"),
        ("line_items[0][quantity]", "1"),
        ("metadata[tollgate_account_id]", "acct_p"),
        ("metadata[tollgate_pack]", "credits_1000"),
    ] {
        assert_eq!(session.field(field), Some(value), "{field}");
    }
    assert_eq!(session.field("subscription_data[trial_period_days]"), None);
}
