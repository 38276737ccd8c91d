//! The `usage` handler, called directly with API Gateway events from `events/` over an
//! in-memory store: each route answers its documented shape with the rate-limit headers; bad,
//! oversized, hostile, unauthorised and replayed input gets a clear error and counts nothing.
//! The writes are the operator's (`/operator/...`, an IAM principal in the request context);
//! customer credentials (JWT, API key) read and check only.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use tollgate::app::usage::UsageDeps;
use tollgate::domain::model::{AccountId, Projection, SubscriptionStatus};
use tollgate::edge::config::IdentityConfig;
use tollgate::ports::usage::UsageStore;
use tollgate::testing::{FixedClock, MemoryStore, Outbox, settings};
use usage::{Deps, handle};

const NOW: i64 = 1_795_273_200;

fn deps(clock: &FixedClock) -> Deps<MemoryStore, Outbox> {
    Deps {
        usage: UsageDeps { store: MemoryStore::new(), notifier: Outbox::default(), settings: settings(clock) },
        identity: IdentityConfig { claim: "sub".into() },
    }
}

fn event(name: &str) -> serde_json::Value {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `event` as `method path` with `body`.
fn with(mut json: serde_json::Value, method: &str, path: &str, body: &str) -> Request {
    json["rawPath"] = path.into();
    json["requestContext"]["http"]["method"] = method.into();
    json["requestContext"]["http"]["path"] = path.into();
    json["body"] = body.into();
    lambda_http::request::from_str(&json.to_string()).unwrap()
}

/// A JWT request of `acct_alice`.
fn jwt(method: &str, path: &str, body: &str) -> Request {
    with(event("apigw-post-usage-check.json"), method, path, body)
}

/// An operator request (IAM) for `acct_alice`: `sub` is the path after the account.
fn op(method: &str, sub: &str, body: &str) -> Request {
    with(event("apigw-post-operator-usage.json"), method, &format!("/operator/accounts/acct_alice{sub}"), body)
}

/// The IAM principal of the operator sample.
const OPERATOR: &str = "arn:aws:sts::123456789012:assumed-role/product-backend/backend";

/// An `/api/...` request as the authorizer passes it, with the key's `scopes`.
fn api(method: &str, path: &str, body: &str, scopes: &str) -> Request {
    let mut json = event("apigw-post-api-usage-check.json");
    json["requestContext"]["authorizer"]["lambda"]["scopes"] = scopes.into();
    with(json, method, path, body)
}

fn consume(quantity: impl serde::Serialize, key: &str) -> String {
    serde_json::json!({"metric": "api_calls", "quantity": quantity, "idempotency_key": key}).to_string()
}

fn body(response: &Response<Body>) -> serde_json::Value {
    serde_json::from_slice(response.body().as_ref()).unwrap()
}

fn alice() -> AccountId {
    AccountId::parse("acct_alice").unwrap()
}

async fn used(deps: &Deps<MemoryStore, Outbox>) -> u64 {
    let window = tollgate::domain::usage::window(None, NOW);
    deps.usage.store.used(&alice(), "api_calls", &window).await.unwrap()
}

#[tokio::test]
async fn a_consumption_answers_its_count_with_the_rate_limit_headers() {
    let deps = deps(&FixedClock::at(NOW));

    let response =
        handle(&deps, lambda_http::request::from_str(&event("apigw-post-operator-usage.json").to_string()).unwrap())
            .await
            .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let window = tollgate::domain::usage::window(None, NOW);
    assert_eq!(
        body(&response),
        serde_json::json!({"metric": "api_calls", "used": 1, "limit": 100, "remaining": 99,
            "period_start": window.start, "period_end": window.end})
    );
    let h = response.headers();
    let minute_reset = 60 - NOW % 60;
    let month_reset = window.end - NOW;
    assert_eq!(
        h["ratelimit-policy"],
        format!(r#""minute";q=10;w=60, "api_calls";q=100;w={}"#, window.end - window.start).as_str()
    );
    assert_eq!(h["ratelimit"], format!(r#""minute";r=9;t={minute_reset}, "api_calls";r=99;t={month_reset}"#).as_str());
    assert_eq!((&h["ratelimit-limit"], &h["ratelimit-remaining"]), (&"10".parse().unwrap(), &"9".parse().unwrap()));
    assert_eq!(h["ratelimit-reset"], minute_reset.to_string().as_str());
}

#[tokio::test]
async fn the_api_route_set_reads_and_checks_with_usage_read_and_writes_nothing() {
    let deps = deps(&FixedClock::at(NOW));
    handle(&deps, op("POST", "/usage", &consume(2, "a"))).await.unwrap();
    let check = r#"{"metric":"api_calls","quantity":1}"#;

    let checked = handle(&deps, api("POST", "/api/usage/check", check, "usage:read")).await.unwrap();
    let check_without_scope = handle(&deps, api("POST", "/api/usage/check", check, "subscription:read")).await.unwrap();
    let report = handle(&deps, api("GET", "/api/usage", "", "usage:read")).await.unwrap();
    let report_without_scope = handle(&deps, api("GET", "/api/usage", "", "subscription:read")).await.unwrap();
    let retired_scope = handle(&deps, api("GET", "/api/usage", "", "usage:write")).await.unwrap();
    let jwt_on_api =
        handle(&deps, with(event("apigw-post-usage-check.json"), "POST", "/api/usage/check", check)).await.unwrap();
    let writes = answers(
        &deps,
        vec![
            api("POST", "/api/usage", &consume(2, "b"), "usage:read subscription:read"),
            api("POST", "/api/usage/refund", r#"{"idempotency_key":"a"}"#, "usage:read"),
            api("POST", "/api/credits/consume", &spend("api_call_basic", 1, "c"), "usage:read"),
            jwt("POST", "/usage", &consume(2, "d")),
            jwt("POST", "/usage/refund", r#"{"idempotency_key":"a"}"#),
            jwt("POST", "/credits/consume", &spend("api_call_basic", 1, "e")),
            jwt("POST", "/credits/refund", r#"{"idempotency_key":"a"}"#),
        ],
    )
    .await;

    assert_eq!((checked.status(), body(&checked)["used"].as_u64()), (StatusCode::OK, Some(2)));
    assert_eq!(
        (check_without_scope.status(), body(&check_without_scope)["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("insufficient_scope"))
    );
    assert_eq!(report.status(), StatusCode::OK);
    assert_eq!(body(&report)["metrics"]["api_calls"], serde_json::json!({"used": 2, "limit": 100, "remaining": 98}));
    assert_eq!(report_without_scope.status(), StatusCode::FORBIDDEN);
    assert_eq!(retired_scope.status(), StatusCode::FORBIDDEN, "usage:write is no scope");
    assert_eq!(jwt_on_api.status(), StatusCode::UNAUTHORIZED, "a JWT is no API key context");
    for write in &writes {
        assert!([StatusCode::NOT_FOUND, StatusCode::METHOD_NOT_ALLOWED].contains(&write.status()), "{write:?}");
    }
    assert_eq!(used(&deps).await, 2, "no customer credential changed a count");
}

/// Each request answered in turn.
async fn answers(deps: &Deps<MemoryStore, Outbox>, requests: Vec<Request>) -> Vec<Response<Body>> {
    let mut answers = Vec::new();
    for request in requests {
        answers.push(handle(deps, request).await.unwrap());
    }
    answers
}

#[tokio::test]
async fn without_a_verified_identity_nothing_is_counted() {
    let deps = deps(&FixedClock::at(NOW));
    let mut no_iam = event("apigw-post-operator-usage.json");
    no_iam["requestContext"].as_object_mut().unwrap().remove("authorizer");
    no_iam["headers"]["x-tollgate-operator"] = "ops".into();
    let mut jwt_on_operator = event("apigw-post-operator-usage.json");
    jwt_on_operator["requestContext"]["authorizer"] =
        event("apigw-post-usage-check.json")["requestContext"]["authorizer"].clone();
    let mut no_identity = event("apigw-post-usage-check.json");
    no_identity["requestContext"].as_object_mut().unwrap().remove("authorizer");
    no_identity["headers"]["x-tollgate-account"] = "acct_alice".into();
    let mut forged = event("apigw-post-usage-check.json");
    forged["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = "acct_alice#STATE#USAGE".into();
    let requests = [no_iam, jwt_on_operator, no_identity, forged]
        .map(|json| lambda_http::request::from_str(&json.to_string()).unwrap())
        .into_iter()
        .collect();

    let statuses: Vec<u16> = answers(&deps, requests).await.iter().map(|r| r.status().as_u16()).collect();
    let forged_path = handle(
        &deps,
        with(
            event("apigw-post-operator-usage.json"),
            "POST",
            "/operator/accounts/acct_alice%23STATE%23USAGE/usage",
            &consume(1, "k"),
        ),
    )
    .await
    .unwrap();

    assert_eq!(statuses, [403, 403, 401, 401], "the development header alone is no identity");
    assert_eq!(
        (forged_path.status(), body(&forged_path)["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_account"))
    );
    assert_eq!(used(&deps).await, 0);
}

#[tokio::test]
async fn bad_and_hostile_input_is_a_400_that_counts_nothing() {
    let deps = deps(&FixedClock::at(NOW));
    let long_key = "k".repeat(256);
    let bad = [
        consume(0, "k"),
        consume(-1, "k"),
        consume(1.5, "k"),
        consume("1", "k"),
        consume(1_000_001, "k"),
        consume(u64::MAX, "k"),
        consume(i64::MIN, "k"),
        r#"{"metric":"api_calls","quantity":1e308,"idempotency_key":"k"}"#.to_owned(),
        r#"{"metric":"api_calls","quantity":18446744073709551616,"idempotency_key":"k"}"#.to_owned(),
        consume(1, ""),
        consume(1, &long_key),
        r#"{"metric":"gpu_seconds","quantity":1,"idempotency_key":"k"}"#.to_owned(),
        r#"{"metric":["api_calls"],"quantity":1,"idempotency_key":"k"}"#.to_owned(),
        "{not json".to_owned(),
        "[]".to_owned(),
        String::new(),
    ];

    for payload in &bad {
        for path in ["/usage", "/usage/check"] {
            let response = handle(&deps, op("POST", path, payload)).await.unwrap();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path} {payload}");
            let code = body(&response)["error"]["code"].as_str().unwrap().to_owned();
            assert!(["invalid_usage", "malformed_body"].contains(&code.as_str()), "{payload}: {code}");
        }
    }
    let without_key = handle(&deps, op("POST", "/usage", r#"{"metric":"api_calls","quantity":1}"#)).await.unwrap();
    let oversized = consume(1, &"k".repeat(20_000));
    let too_large = handle(&deps, op("POST", "/usage", &oversized)).await.unwrap();
    let refund_without_key = handle(&deps, op("POST", "/usage/refund", "{}")).await.unwrap();

    assert_eq!(without_key.status(), StatusCode::BAD_REQUEST, "a consumption needs its idempotency key");
    assert_eq!(too_large.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(refund_without_key.status(), StatusCode::BAD_REQUEST);
    assert_eq!(used(&deps).await, 0);
    assert!(deps.usage.notifier.sent().is_empty());
}

#[tokio::test]
async fn a_replay_answers_the_same_and_another_body_under_its_key_is_409() {
    let deps = deps(&FixedClock::at(NOW));

    let first = handle(&deps, op("POST", "/usage", &consume(5, "job-1"))).await.unwrap();
    let replay = handle(&deps, op("POST", "/usage", &consume(5, "job-1"))).await.unwrap();
    let mismatch = handle(&deps, op("POST", "/usage", &consume(6, "job-1"))).await.unwrap();

    assert_eq!(replay.status(), StatusCode::OK);
    assert_eq!(body(&replay), body(&first));
    assert_eq!(
        (mismatch.status(), body(&mismatch)["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("idempotency_mismatch"))
    );
    assert_eq!(used(&deps).await, 5);
}

#[tokio::test]
async fn over_the_quota_is_429_quota_exceeded_until_the_period_ends() {
    let deps = deps(&FixedClock::at(NOW));
    handle(&deps, op("POST", "/usage", &consume(99, "a"))).await.unwrap();

    let check_two = handle(&deps, op("POST", "/usage/check", r#"{"metric":"api_calls","quantity":2}"#)).await.unwrap();
    let check_one = handle(&deps, op("POST", "/usage/check", r#"{"metric":"api_calls","quantity":1}"#)).await.unwrap();
    let over = handle(&deps, op("POST", "/usage", &consume(2, "b"))).await.unwrap();

    let window = tollgate::domain::usage::window(None, NOW);
    assert_eq!(check_two.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!((check_one.status(), body(&check_one)["remaining"].as_u64()), (StatusCode::OK, Some(1)));
    assert_eq!(
        (over.status(), body(&over)["error"]["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("quota_exceeded"))
    );
    assert_eq!(over.headers()["retry-after"], (window.end - NOW).to_string().as_str());
    assert_eq!(over.headers()["ratelimit-remaining"], "1", "the tightest policy: 1 left of the quota");
    assert_eq!(used(&deps).await, 99);
}

#[tokio::test]
async fn a_burst_over_the_minute_gets_exactly_one_429_and_the_next_minute_allows() {
    let clock = FixedClock::at(NOW);
    let deps = deps(&clock);

    let mut statuses = Vec::new();
    for i in 0..11 {
        statuses.push(handle(&deps, op("POST", "/usage", &consume(1, &format!("k{i}")))).await.unwrap());
    }
    clock.advance(60);
    let next = handle(&deps, op("POST", "/usage", &consume(1, "k11"))).await.unwrap();

    let limited: Vec<&Response<Body>> =
        statuses.iter().filter(|r| r.status() == StatusCode::TOO_MANY_REQUESTS).collect();
    assert_eq!(limited.len(), 1);
    assert_eq!(body(limited[0])["error"]["code"], "rate_limited");
    let retry_after: i64 = limited[0].headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert_eq!(retry_after, 60 - NOW % 60);
    assert_eq!(limited[0].headers()["ratelimit-remaining"], "0");
    assert_eq!(next.status(), StatusCode::OK);
    assert_eq!(used(&deps).await, 11);
}

#[tokio::test]
async fn a_refund_gives_back_once_and_an_unknown_key_is_404() {
    let deps = deps(&FixedClock::at(NOW));
    handle(&deps, op("POST", "/usage", &consume(7, "job"))).await.unwrap();

    let first = handle(&deps, op("POST", "/usage/refund", r#"{"idempotency_key":"job"}"#)).await.unwrap();
    let again = handle(&deps, op("POST", "/usage/refund", r#"{"idempotency_key":"job"}"#)).await.unwrap();
    let unknown = handle(&deps, op("POST", "/usage/refund", r#"{"idempotency_key":"other"}"#)).await.unwrap();
    let reused = handle(&deps, op("POST", "/usage", &consume(7, "job"))).await.unwrap();

    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!((body(&first)["quantity"].as_u64(), body(&first)["used"].as_u64()), (Some(7), Some(0)));
    assert_eq!(body(&again), body(&first));
    assert_eq!(
        (unknown.status(), body(&unknown)["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("usage_not_found"))
    );
    assert_eq!(reused.status(), StatusCode::CONFLICT);
    assert_eq!(used(&deps).await, 0);
}

#[tokio::test]
async fn an_account_without_access_is_403_with_its_reason_and_unlimited_tiers_send_no_limits() {
    let deps = deps(&FixedClock::at(NOW));
    let unpaid = Projection { status: SubscriptionStatus::Unpaid, ..tollgate::testing::projection("acct_alice") };
    tollgate::testing::subscribed(&deps.usage.store, &unpaid).await;

    let denied = handle(&deps, op("POST", "/usage", &consume(1, "a"))).await.unwrap();
    let enterprise = Projection {
        plan: "enterprise".into(),
        version: unpaid.version + 1,
        ..tollgate::testing::projection("acct_alice")
    };
    tollgate::testing::subscribed(&deps.usage.store, &enterprise).await;
    let unlimited = handle(&deps, op("POST", "/usage", &consume(1_000_000, "b"))).await.unwrap();

    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    assert_eq!(body(&denied)["error"]["code"], "access_denied");
    assert_eq!(body(&denied)["error"]["reason"], "unpaid");
    assert_eq!(unlimited.status(), StatusCode::OK);
    assert_eq!(
        (body(&unlimited)["limit"].clone(), body(&unlimited)["remaining"].clone()),
        (serde_json::Value::Null, serde_json::Value::Null)
    );
    assert!(unlimited.headers().get("ratelimit").is_none(), "{:?}", unlimited.headers());
}

#[tokio::test]
async fn unknown_routes_and_methods_are_refused() {
    let deps = deps(&FixedClock::at(NOW));

    let unknown = handle(&deps, jwt("POST", "/usage/everything", "{}")).await.unwrap();
    let wrong_method = handle(&deps, jwt("DELETE", "/usage", "")).await.unwrap();
    let get_check = handle(&deps, jwt("GET", "/usage/check", "")).await.unwrap();
    let unknown_operator = handle(&deps, op("POST", "/usage/everything", "{}")).await.unwrap();
    let get_consume = handle(&deps, op("GET", "/usage", "")).await.unwrap();

    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(get_check.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(unknown_operator.status(), StatusCode::NOT_FOUND);
    assert_eq!(get_consume.status(), StatusCode::METHOD_NOT_ALLOWED);
}

// ---- credits ----

fn spend(event: &str, quantity: impl serde::Serialize, key: &str) -> String {
    serde_json::json!({"event": event, "quantity": quantity, "idempotency_key": key}).to_string()
}

/// `acct_alice` on Pro, paid, in a period from a day before NOW (1,000 plan credits).
async fn on_pro(deps: &Deps<MemoryStore, Outbox>) {
    let pro = Projection {
        current_period_start: Some(NOW - 86_400),
        current_period_end: Some(NOW + 29 * 86_400),
        ..tollgate::testing::projection("acct_alice")
    };
    tollgate::testing::subscribed(&deps.usage.store, &pro).await;
}

#[tokio::test]
async fn credits_are_consumed_once_per_key_and_refunded_once() {
    let deps = deps(&FixedClock::at(NOW));
    on_pro(&deps).await;

    let first = handle(&deps, op("POST", "/credits/consume", &spend("ai_inference", 2, "job"))).await.unwrap();
    let replay = handle(&deps, op("POST", "/credits/consume", &spend("ai_inference", 2, "job"))).await.unwrap();
    let mismatch = handle(&deps, op("POST", "/credits/consume", &spend("ai_inference", 3, "job"))).await.unwrap();
    let short = handle(&deps, op("POST", "/credits/consume", &spend("ai_inference", 40, "big"))).await.unwrap();
    let refunded = handle(&deps, op("POST", "/credits/refund", r#"{"idempotency_key":"job"}"#)).await.unwrap();
    let other = handle(&deps, op("POST", "/credits/consume", &spend("api_call_basic", 1, "k"))).await.unwrap();
    let refund_via_key =
        handle(&deps, api("POST", "/api/credits/refund", r#"{"idempotency_key":"k"}"#, "usage:read")).await.unwrap();

    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(
        body(&first),
        serde_json::json!({"event": "ai_inference", "quantity": 2, "cost": 50, "balance": 950, "purchased": 0, "subscription": 950})
    );
    assert_eq!(body(&replay)["cost"], 50);
    assert_eq!(body(&replay)["balance"], 950, "counted once");
    assert_eq!(
        (mismatch.status(), body(&mismatch)["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("idempotency_mismatch"))
    );
    assert_eq!(
        (short.status(), body(&short)["error"]["code"].as_str()),
        (StatusCode::PAYMENT_REQUIRED, Some("insufficient_credits"))
    );
    assert_eq!((refunded.status(), body(&refunded)["balance"].as_u64()), (StatusCode::OK, Some(1_000)));
    assert_eq!((other.status(), body(&other)["balance"].as_u64()), (StatusCode::OK, Some(999)));
    assert_eq!(refund_via_key.status(), StatusCode::NOT_FOUND, "refunds are not an API key route");
}

#[tokio::test]
async fn bad_and_hostile_credit_requests_are_400_and_spend_nothing() {
    let deps = deps(&FixedClock::at(NOW));
    on_pro(&deps).await;
    let bad = [
        spend("ai_inference", 0, "k"),
        spend("ai_inference", -1, "k"),
        spend("ai_inference", 2.5, "k"),
        spend("ai_inference", u64::MAX, "k"),
        spend("ai_inference", 1_000_001, "k"),
        spend("teleport", 1, "k"),
        spend("ai_inference", 1, ""),
        spend("ai_inference", 1, &"k".repeat(256)),
        r#"{"event":"ai_inference","quantity":1}"#.to_owned(),
        r#"{"quantity":1,"idempotency_key":"k"}"#.to_owned(),
        "{oops".to_owned(),
    ];

    for payload in &bad {
        let response = handle(&deps, op("POST", "/credits/consume", payload)).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{payload}");
    }
    let unknown = handle(&deps, op("POST", "/credits/refund", r#"{"idempotency_key":"never"}"#)).await.unwrap();
    let huge =
        handle(&deps, op("POST", "/credits/consume", &spend("ai_inference", 1, &"k".repeat(20_000)))).await.unwrap();
    let ok = handle(&deps, op("POST", "/credits/consume", &spend("api_call_basic", 1, "after"))).await.unwrap();

    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body(&ok)["balance"], 999, "nothing was spent before");
}

// ---- the operator's other routes ----

fn grant(credits: impl serde::Serialize, reason: &str, key: &str) -> String {
    serde_json::json!({"credits": credits, "reason": reason, "idempotency_key": key}).to_string()
}

#[tokio::test]
async fn a_manual_grant_is_201_once_per_key_and_another_body_under_it_is_409() {
    let deps = deps(&FixedClock::at(NOW));

    let first = handle(&deps, op("POST", "/credits/grants", &grant(500, "goodwill", "g-1"))).await.unwrap();
    let replay = handle(&deps, op("POST", "/credits/grants", &grant(500, "goodwill", "g-1"))).await.unwrap();
    let mismatch = handle(&deps, op("POST", "/credits/grants", &grant(501, "goodwill", "g-1"))).await.unwrap();
    let expiring =
        serde_json::json!({"credits": 10, "reason": "trial", "idempotency_key": "g-2", "expires_at": NOW + 60});
    let promo = handle(&deps, op("POST", "/credits/grants", &expiring.to_string())).await.unwrap();
    let spent = handle(&deps, op("POST", "/credits/consume", &spend("api_call_basic", 3, "s"))).await.unwrap();

    assert_eq!(first.status(), StatusCode::CREATED);
    assert_eq!(body(&first)["source"], "manual:goodwill");
    assert_eq!((body(&first)["kind"].clone(), body(&first)["credits"].clone()), ("purchased".into(), 500.into()));
    assert_eq!((replay.status(), body(&replay)), (StatusCode::CREATED, body(&first)));
    assert_eq!(
        (mismatch.status(), body(&mismatch)["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("idempotency_mismatch"))
    );
    assert_eq!((promo.status(), body(&promo)["kind"].as_str()), (StatusCode::CREATED, Some("subscription")));
    assert_eq!(body(&spent)["balance"], 507, "granted once: 500 + 10 - 3");
}

#[tokio::test]
async fn a_grant_replayed_after_its_expiry_answers_the_same_grant() {
    let clock = FixedClock::at(NOW);
    let deps = deps(&clock);
    let expiring =
        serde_json::json!({"credits": 10, "reason": "trial", "idempotency_key": "g", "expires_at": NOW + 60});
    let first = handle(&deps, op("POST", "/credits/grants", &expiring.to_string())).await.unwrap();
    clock.advance(120);

    let replay = handle(&deps, op("POST", "/credits/grants", &expiring.to_string())).await.unwrap();
    let new_key = expiring
        .as_object()
        .unwrap()
        .clone()
        .into_iter()
        .map(|(k, v)| if k == "idempotency_key" { (k, "g2".into()) } else { (k, v) });
    let late_new =
        handle(&deps, op("POST", "/credits/grants", &serde_json::Value::Object(new_key.collect()).to_string()))
            .await
            .unwrap();

    assert_eq!(first.status(), StatusCode::CREATED);
    assert_eq!((replay.status(), body(&replay)["id"].clone()), (StatusCode::CREATED, body(&first)["id"].clone()));
    assert_eq!(late_new.status(), StatusCode::BAD_REQUEST, "a new grant must end in the future");
}

#[tokio::test]
async fn a_batch_of_100_records_with_the_longest_keys_fits_its_body_limit() {
    let deps = deps(&FixedClock::at(NOW));
    let records: Vec<serde_json::Value> = (0..100).map(|i| record("acct_alice", 1, &format!("{i:0>255}"))).collect();

    let answer = handle(&deps, batch(records)).await.unwrap();

    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(body(&answer)["results"].as_array().unwrap().len(), 100);
}

#[tokio::test]
async fn bad_and_hostile_grants_are_400_and_grant_nothing() {
    let deps = deps(&FixedClock::at(NOW));
    let bad = [
        grant(0, "r", "k"),
        grant(10_000_001, "r", "k"),
        grant(-5, "r", "k"),
        grant(1.5, "r", "k"),
        grant("10", "r", "k"),
        grant(10, "", "k"),
        grant(10, &"r".repeat(201), "k"),
        grant(10, "line\nbreak", "k"),
        grant(10, "r", ""),
        serde_json::json!({"credits": 10, "reason": "r", "idempotency_key": "k", "expires_at": NOW}).to_string(),
        serde_json::json!({"credits": 10, "reason": "r", "idempotency_key": "k", "expires_at": "soon"}).to_string(),
        "{oops".to_owned(),
    ];

    for payload in &bad {
        let response = handle(&deps, op("POST", "/credits/grants", payload)).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{payload}");
    }
    let short = handle(&deps, op("POST", "/credits/consume", &spend("api_call_basic", 1, "s"))).await.unwrap();

    assert_eq!(short.status(), StatusCode::PAYMENT_REQUIRED, "nothing was granted");
}

fn record(account: &str, quantity: u64, key: &str) -> serde_json::Value {
    serde_json::json!({"account_id": account, "metric": "api_calls", "quantity": quantity, "idempotency_key": key})
}

fn batch(records: Vec<serde_json::Value>) -> Request {
    let body = serde_json::json!({ "records": records }).to_string();
    with(event("apigw-post-operator-usage.json"), "POST", "/operator/usage/batch", &body)
}

#[tokio::test]
async fn a_batch_answers_each_record_as_the_single_route_would_in_order() {
    let deps = deps(&FixedClock::at(NOW));
    handle(&deps, op("POST", "/usage", &consume(95, "before"))).await.unwrap();

    let answer = handle(
        &deps,
        batch(vec![
            record("acct_alice", 3, "a"),
            record("acct_alice#STATE", 1, "b"),
            record("acct_alice", 3, "a"),
            record("acct_alice", 5, "c"),
            record("acct_bob", 5, "c"),
        ]),
    )
    .await
    .unwrap();

    assert_eq!(answer.status(), StatusCode::OK);
    let results = body(&answer)["results"].as_array().unwrap().clone();
    let statuses: Vec<u64> = results.iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [200, 400, 200, 429, 200]);
    assert_eq!(results[0]["body"]["used"], 98);
    assert_eq!(results[1]["body"]["error"]["code"], "invalid_account");
    assert_eq!(results[2]["body"], results[0]["body"], "a replay answers as the first time");
    assert_eq!(results[3]["body"]["error"]["code"], "quota_exceeded");
    assert_eq!(results[4]["body"]["used"], 5, "each record counts for its own account");
    assert_eq!(used(&deps).await, 98);
}

#[tokio::test]
async fn a_batch_of_none_or_over_100_records_is_refused_whole() {
    let deps = deps(&FixedClock::at(NOW));
    let over: Vec<serde_json::Value> = (0..101).map(|i| record("acct_alice", 1, &format!("k{i}"))).collect();

    let empty = handle(&deps, batch(Vec::new())).await.unwrap();
    let too_many = handle(&deps, batch(over)).await.unwrap();
    let no_records =
        handle(&deps, with(event("apigw-post-operator-usage.json"), "POST", "/operator/usage/batch", "{}"))
            .await
            .unwrap();

    for refused in [&empty, &too_many, &no_records] {
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    }
    assert_eq!(used(&deps).await, 0);
}

#[tokio::test]
async fn the_operator_reads_an_account_with_each_entrys_actor_which_the_customer_never_sees() {
    let deps = deps(&FixedClock::at(NOW));
    handle(&deps, op("POST", "/credits/grants", &grant(50, "goodwill", "g"))).await.unwrap();
    handle(&deps, op("POST", "/credits/consume", &spend("api_call_basic", 2, "s"))).await.unwrap();
    handle(&deps, op("POST", "/usage", &consume(4, "u"))).await.unwrap();

    let read = handle(&deps, op("GET", "", "")).await.unwrap();
    let customer = tollgate::app::credits::credits(
        &deps.usage.store,
        &deps.usage.settings,
        &alice(),
        Default::default(),
        tollgate::app::credits::Reader::Customer,
    )
    .await
    .unwrap();

    assert_eq!(read.status(), StatusCode::OK);
    let read = body(&read);
    assert_eq!(read["account_id"], "acct_alice");
    assert_eq!(read["subscription"]["plan"], "free");
    assert_eq!(read["usage"]["metrics"]["api_calls"]["used"], 4);
    assert_eq!(read["credits"]["balance"], 48);
    let actors: Vec<&str> =
        read["credits"]["entries"].as_array().unwrap().iter().map(|e| e["actor"].as_str().unwrap()).collect();
    assert_eq!(actors, [OPERATOR, OPERATOR], "the consumption and the grant, newest first");
    assert!(read["keys"].as_array().unwrap().is_empty());
    assert!(customer.entries.iter().all(|e| e.actor.is_none()), "{:?}", customer.entries);
    assert!(!serde_json::to_string(&customer).unwrap().contains("arn:aws"));
}

#[tokio::test]
async fn a_percent_encoded_account_in_the_path_is_the_claim_it_encodes() {
    let deps = deps(&FixedClock::at(NOW));
    let path = "/operator/accounts/auth0%7C123/usage";

    let counted =
        handle(&deps, with(event("apigw-post-operator-usage.json"), "POST", path, &consume(2, "k"))).await.unwrap();

    assert_eq!(counted.status(), StatusCode::OK);
    let account = AccountId::parse("auth0|123").unwrap();
    let window = tollgate::domain::usage::window(None, NOW);
    assert_eq!(deps.usage.store.used(&account, "api_calls", &window).await.unwrap(), 2);
}

#[tokio::test]
async fn the_operator_read_pages_the_ledger_as_get_credits_does() {
    let deps = deps(&FixedClock::at(NOW));
    handle(&deps, op("POST", "/credits/grants", &grant(50, "goodwill", "g"))).await.unwrap();
    handle(&deps, op("POST", "/credits/consume", &spend("api_call_basic", 2, "s"))).await.unwrap();

    let first = body(
        &handle(&deps, with(event("apigw-post-operator-usage.json"), "GET", "/operator/accounts/acct_alice", ""))
            .await
            .unwrap(),
    );
    let mut page = event("apigw-post-operator-usage.json");
    page["rawQueryString"] = "limit=1".into();
    page["queryStringParameters"] = serde_json::json!({"limit": "1"});
    let limited = handle(&deps, with(page, "GET", "/operator/accounts/acct_alice", "")).await.unwrap();
    let mut bad = event("apigw-post-operator-usage.json");
    bad["rawQueryString"] = "limit=0".into();
    bad["queryStringParameters"] = serde_json::json!({"limit": "0"});
    let refused = handle(&deps, with(bad, "GET", "/operator/accounts/acct_alice", "")).await.unwrap();

    assert_eq!(first["credits"]["entries"].as_array().unwrap().len(), 2);
    let limited = body(&limited);
    assert_eq!(limited["credits"]["entries"].as_array().unwrap().len(), 1);
    assert!(limited["credits"]["next_cursor"].is_string(), "{limited}");
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
}
