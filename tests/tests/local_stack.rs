//! The local stack's router over HTTP: health probes the table and queue, the functions'
//! real handlers answer under the API's paths, and the development identity header is the
//! only identity the runner accepts.

mod common;

use std::sync::Arc;
use tollgate_dev::resources::{Queue, Resources};
use tollgate_dev::server::{App, router};

async fn serve(aws: &aws_config::SdkConfig, resources: &Resources) -> String {
    let app = Arc::new(App::local(aws, resources, "http://127.0.0.1:9").unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(app, None)).await });
    base
}

#[tokio::test]
async fn health_is_200_when_table_and_queue_answer() {
    let (aws, resources) = common::local("health").await;
    let base = serve(&aws, &resources).await;

    let response = reqwest::get(format!("{base}/health")).await.unwrap();

    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "ok", "table": "ok", "queue": "ok", "sync": null}));
}

#[tokio::test]
async fn health_is_503_when_the_local_server_is_down() {
    let aws = tollgate_dev::local::sdk_config("http://127.0.0.1:9").await;
    let queue = |name: &str| Queue {
        url: format!("http://127.0.0.1:9/000000000000/{name}.fifo"),
        arn: format!("arn:aws:sqs:us-east-1:000000000000:{name}.fifo"),
    };
    let resources = Resources {
        table: "t".into(),
        queues: ["EventsQueue", "NotificationsQueue", "EventsDeadLetterQueue", "NotificationsDeadLetterQueue"]
            .map(|name| (name.to_owned(), queue(name)))
            .into(),
    };
    let base = serve(&aws, &resources).await;

    let response = reqwest::get(format!("{base}/health")).await.unwrap();

    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["table"], "unreachable");
    assert_eq!(body["queue"], "unreachable");
}

#[tokio::test]
async fn new_account_reads_free_through_the_local_stack() {
    let (aws, resources) = common::local("read").await;
    let base = serve(&aws, &resources).await;
    let client = reqwest::Client::new();

    let response =
        client.get(format!("{base}/subscription")).header("x-tollgate-account", "acct_local").send().await.unwrap();

    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["account_id"], "acct_local");
    assert_eq!(body["plan"], "free");
    assert_eq!(body["access"], serde_json::json!({"allowed": true, "reason": "no_subscription"}));
}

#[tokio::test]
async fn request_without_the_identity_header_is_401() {
    let (aws, resources) = common::local("anon").await;
    let base = serve(&aws, &resources).await;

    let response = reqwest::get(format!("{base}/entitlements")).await.unwrap();

    assert_eq!(response.status(), 401);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
}

#[tokio::test]
async fn unknown_path_is_a_json_404() {
    let (aws, resources) = common::local("nf").await;
    let base = serve(&aws, &resources).await;

    let response = reqwest::get(format!("{base}/nope")).await.unwrap();

    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"message": "Not Found"}), "API Gateway's own answer");
}

#[tokio::test]
async fn the_webhook_function_url_answers_other_methods_405_with_allow_post() {
    let (aws, resources) = common::local("url405").await;
    let base = serve(&aws, &resources).await;
    let client = reqwest::Client::new();

    for method in [reqwest::Method::GET, reqwest::Method::PUT, reqwest::Method::DELETE, reqwest::Method::PATCH] {
        let response = client.request(method.clone(), format!("{base}/webhooks/stripe")).send().await.unwrap();

        assert_eq!(response.status(), 405, "{method}");
        assert_eq!(response.headers()["allow"], "POST", "{method}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "method_not_allowed");
    }
}

#[tokio::test]
async fn the_pricing_table_is_public_and_a_repeat_with_its_etag_is_304() {
    let (aws, resources) = common::local("plans").await;
    let base = serve(&aws, &resources).await;
    let client = reqwest::Client::new();

    let first = client.get(format!("{base}/plans")).send().await.unwrap();
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let cache = first.headers()["cache-control"].to_str().unwrap().to_owned();
    let body: serde_json::Value = first.json().await.unwrap();
    let again = client.get(format!("{base}/plans")).header("if-none-match", &etag).send().await.unwrap();
    let other = client.get(format!("{base}/plans")).header("if-none-match", "\"stale\"").send().await.unwrap();

    assert_eq!(body["tiers"][1]["id"], "pro");
    assert_eq!(body["credit_packs"][0]["id"], "credits_1000");
    assert_eq!(cache, "public, max-age=300");
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    assert!(again.bytes().await.unwrap().is_empty(), "a 304 has no body");
    assert_eq!(other.status(), 200);
}

#[tokio::test]
async fn browsers_on_an_allowed_origin_get_their_preflight_and_cors_headers_others_do_not() {
    let (aws, resources) = common::local("cors").await;
    let base = serve(&aws, &resources).await;
    // App::local allows the stack's own origin (its ALLOWED_REDIRECT_ORIGINS default).
    let allowed = "http://127.0.0.1:9";
    let client = reqwest::Client::new();
    let preflight = |origin: &str, method: &str, headers: &str| {
        client
            .request(reqwest::Method::OPTIONS, format!("{base}/subscription"))
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", headers)
            .send()
    };

    let ok = preflight(allowed, "GET", "authorization, x-tollgate-account").await.unwrap();
    let other = preflight("https://evil.example", "GET", "authorization").await.unwrap();
    let odd_header = preflight(allowed, "GET", "x-secret").await.unwrap();
    let read = client
        .get(format!("{base}/subscription"))
        .header("origin", allowed)
        .header("x-tollgate-account", "acct_cors")
        .send()
        .await
        .unwrap();
    let foreign = client.get(format!("{base}/plans")).header("origin", "https://evil.example").send().await.unwrap();

    assert_eq!(ok.status(), 204);
    assert_eq!(ok.headers()["access-control-allow-origin"], allowed);
    let methods = ok.headers()["access-control-allow-methods"].to_str().unwrap().to_owned();
    assert!(["GET", "POST", "DELETE"].iter().all(|m| methods.contains(m)), "{methods}");
    assert!(ok.headers()["access-control-allow-headers"].to_str().unwrap().contains("authorization"));
    assert_eq!(ok.headers()["access-control-max-age"], "600");
    for refused in [&other, &odd_header] {
        assert_eq!(refused.status(), 204);
        assert!(refused.headers().get("access-control-allow-origin").is_none(), "{:?}", refused.headers());
    }
    assert_eq!(read.status(), 200);
    assert_eq!(read.headers()["access-control-allow-origin"], allowed);
    assert_eq!(foreign.status(), 200);
    assert!(foreign.headers().get("access-control-allow-origin").is_none());
}
