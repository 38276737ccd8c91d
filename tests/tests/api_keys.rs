//! API keys over the local stack's HTTP API, against moto: a key made on the JWT route (the
//! development header) reads its account's subscription on `/api/subscription` through the real
//! authorizer; revoked, expired and out-of-scope keys are refused as API Gateway refuses them;
//! `tollgate-dev create-key` makes a working key; `DELETE /account` takes the keys with it; and
//! the logs of a whole key lifecycle never hold a key.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use tollgate::ports::clock::{Clock, SystemClock};
use tollgate::testing::FixedClock;
use tollgate_dev::server::{App, router};

/// The local stack with its authorizer on `clock`; answers its base URL and port.
async fn serve(test: &str, clock: &FixedClock) -> (String, u16) {
    let (aws, resources) = common::local(test).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let app = Arc::new(App::local_with_clock(&aws, &resources, &base, Arc::new(clock.clone())).unwrap());
    tokio::spawn(async move { axum::serve(listener, router(app, None)).await });
    (base, port)
}

fn now() -> i64 {
    SystemClock.now()
}

/// `POST /api-keys` as `account` (the development header stands in for the JWT).
async fn create_key(base: &str, account: &str, body: serde_json::Value) -> serde_json::Value {
    let response = reqwest::Client::new()
        .post(format!("{base}/api-keys"))
        .header("x-tollgate-account", account)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

/// `GET /api/subscription` with `Authorization: Bearer <key>` (and any `extra` header).
async fn read_with_key(base: &str, key: &str, extra: Option<(&str, &str)>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(format!("{base}/api/subscription")).bearer_auth(key);
    if let Some((name, value)) = extra {
        request = request.header(name, value);
    }
    request.send().await.unwrap()
}

async fn as_account(method: reqwest::Method, url: String, account: &str) -> reqwest::Response {
    reqwest::Client::new().request(method, url).header("x-tollgate-account", account).send().await.unwrap()
}

#[tokio::test]
async fn a_key_reads_its_own_accounts_subscription_through_the_authorizer() {
    let clock = FixedClock::at(now());
    let (base, _) = serve("keyread", &clock).await;
    let made = create_key(&base, "acct_k", serde_json::json!({"name": "ci", "scopes": ["subscription:read"]})).await;
    let key = made["key"].as_str().unwrap();

    let allowed = read_with_key(&base, key, Some(("x-tollgate-account", "acct_intruder"))).await;
    let no_header = reqwest::get(format!("{base}/api/subscription")).await.unwrap();
    let dev_header_only = as_account(reqwest::Method::GET, format!("{base}/api/subscription"), "acct_k").await;
    let jwt_route_with_key = reqwest::Client::new().get(format!("{base}/subscription")).bearer_auth(key).send().await;

    assert_eq!(allowed.status(), 200);
    let body: serde_json::Value = allowed.json().await.unwrap();
    assert_eq!((body["account_id"].as_str(), body["plan"].as_str()), (Some("acct_k"), Some("free")));
    assert_eq!(no_header.status(), 401);
    assert_eq!(no_header.json::<serde_json::Value>().await.unwrap(), serde_json::json!({"message": "Unauthorized"}));
    assert_eq!(dev_header_only.status(), 401, "the development header is no identity on /api routes");
    assert_eq!(jwt_route_with_key.unwrap().status(), 401, "a key is no identity on the JWT routes");
}

#[tokio::test]
async fn revoked_expired_and_out_of_scope_keys_are_refused() {
    let start = now();
    let clock = FixedClock::at(start);
    let (base, _) = serve("keyrefuse", &clock).await;
    let read = serde_json::json!(["subscription:read"]);
    let revoked = create_key(&base, "acct_r", serde_json::json!({"name": "a", "scopes": read})).await;
    // From the authorizer's clock, not a later reading of the system's (a second boundary
    // crossed meanwhile would leave the key valid after the move below).
    let expiring =
        create_key(&base, "acct_r", serde_json::json!({"name": "b", "scopes": read, "expires_at": start + 3600})).await;
    let usage_only = create_key(&base, "acct_r", serde_json::json!({"name": "c", "scopes": ["usage:read"]})).await;
    let key = |made: &serde_json::Value| made["key"].as_str().unwrap().to_owned();
    assert_eq!(read_with_key(&base, &key(&revoked), None).await.status(), 200);
    assert_eq!(read_with_key(&base, &key(&expiring), None).await.status(), 200);

    let deleted =
        as_account(reqwest::Method::DELETE, format!("{base}/api-keys/{}", revoked["id"].as_str().unwrap()), "acct_r")
            .await;
    // No cache (the revocation bound is 0 s): the very next request is refused.
    let after_revoke = read_with_key(&base, &key(&revoked), None).await;
    clock.advance(3600);
    let after_expiry = read_with_key(&base, &key(&expiring), None).await;
    let out_of_scope = read_with_key(&base, &key(&usage_only), None).await;
    let unknown = read_with_key(&base, &format!("tg_test_{}", "0".repeat(43)), None).await;
    let malformed = read_with_key(&base, "not-a-key", None).await;

    assert_eq!(deleted.status(), 200);
    for (what, response) in [
        ("revoked", after_revoke),
        ("expired", after_expiry),
        ("out of scope", out_of_scope),
        ("unknown", unknown),
        ("malformed", malformed),
    ] {
        assert_eq!(response.status(), 403, "{what}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body, serde_json::json!({"message": "Forbidden"}), "{what}: API Gateway's bare refusal");
    }
}

#[tokio::test]
async fn tollgate_dev_create_key_makes_a_working_key() {
    let clock = FixedClock::at(now());
    let (base, port) = serve("keycli", &clock).await;
    let request = tollgate_dev::keys::CreateKey {
        port,
        account: "acct_cli".into(),
        name: "local".into(),
        scopes: vec![],
        expires_at: None,
    };

    let made = tollgate_dev::keys::create_key(&request).await.unwrap();

    assert_eq!(made["scopes"], serde_json::json!(["usage:read", "subscription:read"]));
    let response = read_with_key(&base, made["key"].as_str().unwrap(), None).await;
    assert_eq!(response.json::<serde_json::Value>().await.unwrap()["account_id"], "acct_cli");
}

#[tokio::test]
async fn deleting_the_account_revokes_and_deletes_its_keys() {
    let clock = FixedClock::at(now());
    let (base, _) = serve("keydelete", &clock).await;
    let made = create_key(&base, "acct_gone", serde_json::json!({"name": "ci", "scopes": ["subscription:read"]})).await;
    let kept = create_key(&base, "acct_kept", serde_json::json!({"name": "ci", "scopes": ["subscription:read"]})).await;

    let deleted = as_account(reqwest::Method::DELETE, format!("{base}/account"), "acct_gone").await;

    assert_eq!(deleted.status(), 200);
    assert_eq!(read_with_key(&base, made["key"].as_str().unwrap(), None).await.status(), 403);
    let listed = as_account(reqwest::Method::GET, format!("{base}/api-keys"), "acct_gone").await;
    assert_eq!(listed.json::<serde_json::Value>().await.unwrap(), serde_json::json!({"keys": []}));
    assert_eq!(read_with_key(&base, kept["key"].as_str().unwrap(), None).await.status(), 200);
}

/// Everything every test of this binary logs, at every level.
fn captured() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&logs);
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
            .with_ansi(false)
            .with_writer(move || Capture(Arc::clone(&sink)))
            .init();
        logs
    })
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_key_appears_in_the_logs_of_a_whole_key_lifecycle() {
    let logs = captured();
    let clock = FixedClock::at(now());
    let (base, port) = serve("keylogs", &clock).await;
    let account = "acct_logged";
    let mut keys = Vec::new();

    // Created on the JWT route and by tollgate-dev, listed, used, rotated with an overlap, both
    // used, revoked, refused, and deleted with the account.
    let first = create_key(&base, account, serde_json::json!({"name": "ci", "scopes": ["subscription:read"]})).await;
    keys.push(first["key"].as_str().unwrap().to_owned());
    let request = tollgate_dev::keys::CreateKey {
        port,
        account: account.into(),
        name: "cli".into(),
        scopes: vec!["usage:read".into()],
        expires_at: None,
    };
    keys.push(tollgate_dev::keys::create_key(&request).await.unwrap()["key"].as_str().unwrap().to_owned());
    as_account(reqwest::Method::GET, format!("{base}/api-keys"), account).await;
    assert_eq!(read_with_key(&base, &keys[0], None).await.status(), 200);
    let rotated = reqwest::Client::new()
        .post(format!("{base}/api-keys/{}/rotate", first["id"].as_str().unwrap()))
        .header("x-tollgate-account", account)
        .json(&serde_json::json!({"overlap_seconds": 600}))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    keys.push(rotated["key"].as_str().unwrap().to_owned());
    assert_eq!(read_with_key(&base, &keys[0], None).await.status(), 200, "the overlap");
    assert_eq!(read_with_key(&base, &keys[2], None).await.status(), 200);
    assert_eq!(read_with_key(&base, &keys[1], None).await.status(), 403, "out of scope");
    let path = format!("{base}/api-keys/{}", rotated["id"].as_str().unwrap());
    assert_eq!(as_account(reqwest::Method::DELETE, path, account).await.status(), 200);
    assert_eq!(read_with_key(&base, &keys[2], None).await.status(), 403, "revoked");
    clock.advance(601);
    assert_eq!(read_with_key(&base, &keys[0], None).await.status(), 403, "the overlap is over");
    assert_eq!(as_account(reqwest::Method::DELETE, format!("{base}/account"), account).await.status(), 200);
    assert_eq!(read_with_key(&base, &keys[1], None).await.status(), 403, "deleted with the account");

    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(text.contains("api key created") && text.contains("api key refused"), "the capture works");
    assert!(text.contains(first["id"].as_str().unwrap()), "keys are logged by id");
    for key in &keys {
        assert!(!text.contains(key.as_str()), "a key is in the logs");
        assert!(!text.contains(&key[12..]), "the secret part of a key is in the logs");
    }
}

#[tokio::test]
async fn rotating_five_times_with_a_week_of_overlap_leaves_two_valid_keys_on_the_slot() {
    let clock = FixedClock::at(now());
    let (base, _) = serve("keyrotations", &clock).await;
    let first = create_key(&base, "acct_rot", serde_json::json!({"name": "ci", "scopes": ["subscription:read"]})).await;
    let mut keys = vec![first["key"].as_str().unwrap().to_owned()];
    let mut id = first["id"].as_str().unwrap().to_owned();

    for _ in 0..5 {
        let response = reqwest::Client::new()
            .post(format!("{base}/api-keys/{id}/rotate"))
            .header("x-tollgate-account", "acct_rot")
            .json(&serde_json::json!({"overlap_seconds": 7 * 86_400}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let rotated: serde_json::Value = response.json().await.unwrap();
        keys.push(rotated["key"].as_str().unwrap().to_owned());
        id = rotated["id"].as_str().unwrap().to_owned();
    }
    let listed: serde_json::Value =
        as_account(reqwest::Method::GET, format!("{base}/api-keys"), "acct_rot").await.json().await.unwrap();
    let mut answers = Vec::new();
    for key in &keys {
        answers.push(read_with_key(&base, key, None).await.status().as_u16());
    }

    let mut valid: Vec<&str> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["status"].as_str())
        .filter(|s| ["active", "rotating"].contains(s))
        .collect();
    // Keys made in one second list in no set order.
    valid.sort_unstable();
    assert_eq!(valid, ["active", "rotating"], "{listed}");
    assert_eq!(answers, [403, 403, 403, 403, 200, 200], "only the newest and its predecessor still work");
}
