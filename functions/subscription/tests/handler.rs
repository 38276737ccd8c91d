//! The `subscription` handler, called directly with API Gateway events from `events/`.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use subscription::{Deps, handle};
use tollgate::domain::model::{Projection, SubscriptionStatus};
use tollgate::edge::config::IdentityConfig;
use tollgate::testing::{FixedClock, MemoryStore, settings};

const NOW: i64 = 1_795_273_200;

fn deps(store: MemoryStore) -> Deps<MemoryStore> {
    Deps { store, settings: settings(&FixedClock::at(NOW)), identity: IdentityConfig { claim: "sub".into() } }
}

fn event(name: &str) -> Request {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    lambda_http::request::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn body(response: &Response<Body>) -> serde_json::Value {
    serde_json::from_slice(response.body().as_ref()).unwrap()
}

fn pro(account: &str, status: SubscriptionStatus) -> Projection {
    Projection {
        customer_id: "cus_1".into(),
        subscription_id: Some("sub_1".into()),
        status,
        current_period_start: Some(NOW - 86_400),
        current_period_end: Some(NOW + 29 * 86_400),
        ..tollgate::testing::projection(account)
    }
}

#[tokio::test]
async fn unknown_account_reads_free_and_allowed() {
    let deps = deps(MemoryStore::new());

    let response = handle(&deps, event("apigw-get-subscription.json")).await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let body = body(&response);
    assert_eq!(body["account_id"], "acct_alice");
    assert_eq!(body["plan"], "free");
    assert_eq!(body["access"]["allowed"], true);
    assert_eq!(body["access"]["reason"], "no_subscription");
    assert_eq!(body["limits"]["api_calls"], 100);
}

#[tokio::test]
async fn subscriber_reads_their_plan_and_limits() {
    let store = MemoryStore::new();
    tollgate::testing::subscribed(&store, &pro("acct_alice", SubscriptionStatus::Active)).await;
    let deps = deps(store);

    let response = handle(&deps, event("apigw-get-subscription.json")).await.unwrap();

    let body = body(&response);
    assert_eq!(body["plan"], "pro");
    assert_eq!(body["status"], "active");
    assert_eq!(body["interval"], "month");
    assert_eq!(body["current_period_end"], NOW + 29 * 86_400);
    assert_eq!(body["features"]["priority_support"], true);
    assert_eq!(body["limits"]["api_calls"], 10_000);
}

#[tokio::test]
async fn identity_header_cannot_select_another_account() {
    let store = MemoryStore::new();
    tollgate::testing::subscribed(&store, &pro("acct_someone_else", SubscriptionStatus::Active)).await;
    let deps = deps(store);

    // The sample event carries `x-tollgate-account: acct_someone_else` next to the JWT of acct_alice.
    let response = handle(&deps, event("apigw-get-subscription.json")).await.unwrap();

    let body = body(&response);
    assert_eq!(body["account_id"], "acct_alice");
    assert_eq!(body["plan"], "free");
}

#[tokio::test]
async fn request_without_identity_is_401() {
    let deps = deps(MemoryStore::new());
    let raw =
        std::fs::read_to_string(format!("{}/../../events/apigw-get-subscription.json", env!("CARGO_MANIFEST_DIR")))
            .unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&raw).unwrap();
    json["requestContext"].as_object_mut().unwrap().remove("authorizer");
    let req = lambda_http::request::from_str(&json.to_string()).unwrap();

    let response = handle(&deps, req).await.unwrap();

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body(&response)["error"]["code"], "unauthorized");
}

#[tokio::test]
async fn entitlements_answer_features_and_limits_only() {
    let store = MemoryStore::new();
    tollgate::testing::subscribed(&store, &pro("acct_alice", SubscriptionStatus::PastDue)).await;
    let deps = deps(store);

    let response = handle(&deps, event("apigw-get-entitlements.json")).await.unwrap();

    let body = body(&response);
    assert_eq!(body["plan"], "pro");
    assert_eq!(body["access"], serde_json::json!({"allowed": false, "reason": "past_due_expired"}));
    assert!(body.get("status").is_none());
    assert_eq!(body["limits"]["requests_per_minute"], 100);
}

#[tokio::test]
async fn other_methods_and_paths_are_refused_with_json_errors() {
    let deps = deps(MemoryStore::new());
    let mut post = event("apigw-get-subscription.json");
    *post.method_mut() = lambda_http::http::Method::POST;
    let mut elsewhere = event("apigw-get-subscription.json");
    *elsewhere.uri_mut() = "/admin".parse().unwrap();

    let post = handle(&deps, post).await.unwrap();
    let elsewhere = handle(&deps, elsewhere).await.unwrap();

    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(elsewhere.status(), StatusCode::NOT_FOUND);
    assert_eq!(body(&elsewhere)["error"]["code"], "not_found");
}

#[tokio::test]
async fn api_route_reads_the_account_of_the_key_authorizers_context() {
    let store = MemoryStore::new();
    tollgate::testing::subscribed(&store, &pro("acct_alice", SubscriptionStatus::Active)).await;
    let other =
        Projection { customer_id: "cus_2".into(), plan: "team".into(), ..pro("acct_x", SubscriptionStatus::Active) };
    tollgate::testing::subscribed(&store, &other).await;
    let deps = deps(store);

    // The sample carries `x-tollgate-account: acct_someone_else` beside the authorizer's context.
    let response = handle(&deps, event("apigw-get-api-subscription.json")).await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let body = body(&response);
    assert_eq!((body["account_id"].as_str(), body["plan"].as_str()), (Some("acct_alice"), Some("pro")));
}

#[tokio::test]
async fn api_route_refuses_a_key_without_subscription_read_and_any_jwt() {
    let deps = deps(MemoryStore::new());
    let with = |authorizer: serde_json::Value, path: &str| {
        let raw = std::fs::read_to_string(format!(
            "{}/../../events/apigw-get-api-subscription.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let mut json: serde_json::Value = serde_json::from_str(&raw).unwrap();
        json["requestContext"]["authorizer"] = authorizer;
        json["rawPath"] = path.into();
        json["requestContext"]["http"]["path"] = path.into();
        lambda_http::request::from_str(&json.to_string()).unwrap()
    };
    let usage_only =
        serde_json::json!({"lambda": {"account_id": "acct_alice", "tier": "free", "scopes": "usage:read"}});
    let jwt = serde_json::json!({"jwt": {"claims": {"sub": "acct_alice", "account_id": "acct_alice"}}});

    let narrow = handle(&deps, with(usage_only.clone(), "/api/subscription")).await.unwrap();
    let by_jwt = handle(&deps, with(jwt, "/api/subscription")).await.unwrap();
    let plain_by_key = handle(&deps, with(usage_only, "/subscription")).await.unwrap();

    assert_eq!(narrow.status(), StatusCode::FORBIDDEN);
    assert_eq!(body(&narrow)["error"]["code"], "insufficient_scope");
    assert_eq!(by_jwt.status(), StatusCode::UNAUTHORIZED, "a JWT is no identity on the API key route");
    assert_eq!(plain_by_key.status(), StatusCode::UNAUTHORIZED, "a key's context is no identity on the JWT route");
}

/// `GET path?query` with the JWT of `acct_alice`.
fn get(path: &str, query: &str) -> Request {
    let raw =
        std::fs::read_to_string(format!("{}/../../events/apigw-get-subscription.json", env!("CARGO_MANIFEST_DIR")))
            .unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&raw).unwrap();
    json["rawPath"] = path.into();
    json["rawQueryString"] = query.into();
    json["requestContext"]["http"]["path"] = path.into();
    lambda_http::request::from_str(&json.to_string()).unwrap()
}

#[tokio::test]
async fn credits_show_the_plans_grant_the_ledger_and_refuse_bad_queries() {
    let store = MemoryStore::new();
    tollgate::testing::subscribed(&store, &pro("acct_alice", SubscriptionStatus::Active)).await;
    let deps = deps(store);

    let read = handle(&deps, get("/subscription", "")).await.unwrap();
    let credits = handle(&deps, get("/credits", "limit=5")).await.unwrap();
    let mut bad = Vec::new();
    for query in ["limit=0", "limit=101", "limit=-1", "limit=99999999999999999999", "cursor=zz", "cursor=%ff%fe"] {
        bad.push(handle(&deps, get("/credits", query)).await.unwrap().status().as_u16());
    }

    assert_eq!(body(&read)["credits"], serde_json::json!({"balance": 1000, "purchased": 0, "subscription": 1000}));
    let credits = body(&credits);
    assert_eq!(credits["balance"], 1000);
    assert_eq!(credits["grants"][0]["expires_at"], NOW + 29 * 86_400, "the window's credits expire with it");
    assert_eq!(credits["entries"][0]["kind"], "grant");
    assert_eq!(credits["next_cursor"], serde_json::Value::Null);
    assert!(bad.iter().all(|s| *s == 400), "{bad:?}");
}

#[tokio::test]
async fn the_pricing_table_needs_no_identity_and_answers_304_to_its_etag() {
    let deps = deps(MemoryStore::new());
    let mut anonymous = get("/plans", "");
    anonymous.extensions_mut().clear();
    let plain = |tag: Option<&str>| {
        let mut req = get("/plans", "");
        if let Some(tag) = tag {
            req.headers_mut().insert("if-none-match", tag.parse().unwrap());
        }
        req
    };

    let first = handle(&deps, plain(None)).await.unwrap();
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let unchanged = handle(&deps, plain(Some(&etag))).await.unwrap();
    let listed = handle(&deps, plain(Some(&format!("\"x\", W/{etag}")))).await.unwrap();
    let changed = handle(&deps, plain(Some("\"stale\""))).await.unwrap();
    let no_context = handle(&deps, anonymous).await.unwrap();
    let mut post = get("/plans", "");
    *post.method_mut() = lambda_http::http::Method::POST;
    let posted = handle(&deps, post).await.unwrap();

    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()["cache-control"], "public, max-age=300");
    assert!(etag.starts_with('"') && etag.len() == 34, "{etag}");
    assert_eq!(body(&first)["tiers"][0]["id"], "free");
    assert_eq!((unchanged.status(), unchanged.body().as_ref().len()), (StatusCode::NOT_MODIFIED, 0));
    assert_eq!(listed.status(), StatusCode::NOT_MODIFIED, "any tag of the list, weak or strong");
    assert_eq!(changed.status(), StatusCode::OK);
    assert_eq!(no_context.status(), StatusCode::OK, "no identity needed");
    assert_eq!(posted.status(), StatusCode::METHOD_NOT_ALLOWED);
}

// ---- the billing page's reads: usage history, invoices, summary ----

/// `GET path?query` with a verified JWT of `acct_alice`.
fn get_url(path_and_query: &str) -> Request {
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    get(path, query)
}

/// Consumes `quantity` api calls for `acct_alice` through metering's own path, at the time of
/// `clock`.
async fn consume(store: &MemoryStore, clock: &FixedClock, quantity: u64, key: &str) {
    let deps = tollgate::app::usage::UsageDeps {
        store: store.clone(),
        notifier: tollgate::testing::Outbox::default(),
        settings: settings(clock),
    };
    let request = tollgate::app::usage::UsageRequest {
        metric: Some("api_calls".into()),
        quantity: Some(quantity.into()),
        idempotency_key: Some(key.into()),
    };
    let account = tollgate::domain::model::AccountId::parse("acct_alice").unwrap();
    tollgate::app::usage::consume(&deps, &account, "ops", request).await.unwrap();
}

#[tokio::test]
async fn usage_history_keeps_last_periods_totals_after_the_period_changes() {
    // A Free account counts in calendar months: 2026-11-21 and then 2026-12-03 (UTC).
    let (november, december) = (1_795_219_200, 1_796_256_000);
    let store = MemoryStore::new();
    let clock = FixedClock::at(november);
    consume(&store, &clock, 7, "k1").await;
    consume(&store, &clock, 5, "k2").await;
    clock.set(december);
    consume(&store, &clock, 2, "k3").await;
    let deps = Deps { store, settings: settings(&clock), identity: IdentityConfig { claim: "sub".into() } };

    let response = handle(&deps, get_url("/usage/history")).await.unwrap();
    let one = body(&handle(&deps, get_url("/usage/history?periods=1")).await.unwrap());

    assert_eq!(response.status(), StatusCode::OK);
    let periods = body(&response)["periods"].as_array().unwrap().clone();
    assert_eq!(periods.len(), 2, "{periods:?}");
    let (current, last) = (&periods[0], &periods[1]);
    assert_eq!((current["current"].as_bool(), current["metrics"]["api_calls"].as_u64()), (Some(true), Some(2)));
    assert_eq!(current["start"], 1_796_083_200, "December 1st");
    assert_eq!((last["current"].as_bool(), last["metrics"]["api_calls"].as_u64()), (Some(false), Some(12)));
    assert_eq!((last["start"].as_i64(), last["end"].as_i64()), (Some(1_793_491_200), Some(1_796_083_200)), "November");
    assert_eq!(one["periods"].as_array().unwrap().len(), 1, "only the current window");
}

#[tokio::test]
async fn invoices_and_the_summary_read_the_store_only() {
    let store = MemoryStore::new();
    let sub = pro("acct_alice", SubscriptionStatus::PastDue);
    tollgate::testing::subscribed(&store, &Projection { grace_until: Some(NOW + 86_400), ..sub }).await;
    let account = tollgate::domain::model::AccountId::parse("acct_alice").unwrap();
    for (id, created, status, attempts) in [("in_old", NOW - 86_400, "paid", 1), ("in_new", NOW, "open", 1)] {
        let object = serde_json::json!({
            "object": "invoice", "id": id, "status": status, "attempt_count": attempts, "amount_due": 1900,
            "currency": "usd", "created": created, "hosted_invoice_url": format!("https://pay.example/{id}"),
        });
        let invoice = tollgate::domain::invoices::Invoice::from_json(&object, "cus_1").unwrap();
        assert!(tollgate::ports::invoices::InvoiceStore::put_invoice(&store, &account, &invoice).await.unwrap());
    }
    let deps = deps(store);

    let invoices = body(&handle(&deps, get_url("/invoices?limit=1")).await.unwrap());
    let summary = body(&handle(&deps, get_url("/billing/summary")).await.unwrap());

    assert_eq!(invoices["data"][0]["id"], "in_new");
    assert!(invoices["next_cursor"].is_string());
    assert_eq!(summary["access"]["reason"], "grace_period");
    assert_eq!(summary["payment_action"]["hosted_invoice_url"], "https://pay.example/in_new");
    assert_eq!(summary["renewal"]["amount"], 2900, "pro monthly's price in plans.toml: {summary}");
    assert_eq!(summary["renewal"]["currency"], "usd");
}
