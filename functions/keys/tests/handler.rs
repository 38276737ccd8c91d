//! The `keys` handler, called directly with API Gateway events from `events/` over an
//! in-memory store: a key is shown once and stored as its hash, bad input is a 400 that
//! changes nothing, the active-key limit holds, revoke and rotate behave as the README says.

use keys::{Deps, handle};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use std::sync::Arc;
use tollgate::app::keys::KeysDeps;
use tollgate::domain::apikeys::{Mode, Secret};
use tollgate::edge::config::IdentityConfig;
use tollgate::ports::api_keys::ApiKeyStore;
use tollgate::testing::{FixedClock, MemoryStore};

const NOW: i64 = 1_795_273_200;

fn deps(store: &MemoryStore, clock: &FixedClock, max_active: u32) -> Deps<MemoryStore> {
    Deps {
        keys: KeysDeps { store: store.clone(), clock: Arc::new(clock.clone()), mode: Mode::Test, max_active },
        identity: IdentityConfig { claim: "sub".into() },
    }
}

/// `events/apigw-post-api-keys.json` (JWT `sub` = `acct_alice`) as `method path` with `body`.
fn request(method: &str, path: &str, body: &str) -> Request {
    let raw = std::fs::read_to_string(format!("{}/../../events/apigw-post-api-keys.json", env!("CARGO_MANIFEST_DIR")))
        .unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&raw).unwrap();
    json["rawPath"] = path.into();
    json["requestContext"]["http"]["method"] = method.into();
    json["requestContext"]["http"]["path"] = path.into();
    json["body"] = body.into();
    lambda_http::request::from_str(&json.to_string()).unwrap()
}

fn body(response: &Response<Body>) -> serde_json::Value {
    serde_json::from_slice(response.body().as_ref()).unwrap()
}

async fn create(deps: &Deps<MemoryStore>, body_json: serde_json::Value) -> Response<Body> {
    handle(deps, request("POST", "/api-keys", &body_json.to_string())).await.unwrap()
}

async fn list(deps: &Deps<MemoryStore>) -> serde_json::Value {
    body(&handle(deps, request("GET", "/api-keys", "")).await.unwrap())
}

#[tokio::test]
async fn create_answers_the_key_once_and_stores_only_its_hash() {
    let (store, clock) = (MemoryStore::new(), FixedClock::at(NOW));
    let deps = deps(&store, &clock, 10);

    let response =
        handle(&deps, request("POST", "/api-keys", r#"{"name":"ci","scopes":["usage:read"]}"#)).await.unwrap();

    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let answer = body(&response);
    let mut fields: Vec<&str> = answer.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["created_at", "expires_at", "id", "key", "name", "prefix", "scopes"]);
    let key = answer["key"].as_str().unwrap();
    assert!(key.starts_with("tg_test_") && key.len() == 51, "{key}");
    assert!(key.starts_with(answer["prefix"].as_str().unwrap()));
    assert_eq!((answer["name"].clone(), answer["scopes"].clone()), ("ci".into(), serde_json::json!(["usage:read"])));
    assert_eq!((answer["created_at"].as_i64(), answer["expires_at"].clone()), (Some(NOW), serde_json::Value::Null));
    let stored = store.api_key_by_hash(&Secret::parse(key).unwrap().hash()).await.unwrap().unwrap();
    assert_eq!(stored.id.as_str(), answer["id"].as_str().unwrap());
    assert!(!format!("{store:?}").contains(key), "the store holds the hash, never the key");
    let listed = list(&deps).await.to_string();
    assert!(!listed.contains(key) && !listed.contains(stored.hash.as_str()), "{listed}");
}

#[tokio::test]
async fn the_list_shows_each_keys_state_never_the_key() {
    let (store, clock) = (MemoryStore::new(), FixedClock::at(NOW));
    let deps = deps(&store, &clock, 10);
    let first = body(&create(&deps, serde_json::json!({"name": "old", "scopes": ["usage:read"]})).await);
    clock.advance(10);
    create(&deps, serde_json::json!({"name": "new", "scopes": ["subscription:read"], "expires_at": NOW + 3600})).await;

    let listed = list(&deps).await;

    let keys = listed["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["name"], "new", "newest first");
    assert_eq!((keys[0]["status"].clone(), keys[0]["expires_at"].clone()), ("active".into(), (NOW + 3600).into()));
    assert_eq!(keys[1]["id"], first["id"]);
    for key in keys {
        assert!(key.get("key").is_none() && key.get("hash").is_none(), "{key}");
        assert_eq!(key["last_used_at"], serde_json::Value::Null);
    }
}

#[tokio::test]
async fn bad_input_is_refused_with_a_clear_400_and_changes_nothing() {
    let (store, clock) = (MemoryStore::new(), FixedClock::at(NOW));
    let deps = deps(&store, &clock, 10);
    let huge = format!(r#"{{"name":"{}","scopes":["usage:read"]}}"#, "x".repeat(20_000));
    let cases: Vec<(String, StatusCode, &str)> = vec![
        ("{not json".into(), StatusCode::BAD_REQUEST, "malformed_body"),
        ("[]".into(), StatusCode::BAD_REQUEST, "malformed_body"),
        (huge, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
        ("".into(), StatusCode::BAD_REQUEST, "missing_name"),
        (r#"{"scopes":["usage:read"]}"#.into(), StatusCode::BAD_REQUEST, "missing_name"),
        (r#"{"name":12,"scopes":["usage:read"]}"#.into(), StatusCode::BAD_REQUEST, "malformed_body"),
        (
            format!(r#"{{"name":"{}","scopes":["usage:read"]}}"#, "n".repeat(65)),
            StatusCode::BAD_REQUEST,
            "invalid_name",
        ),
        (r#"{"name":"a\u0000b","scopes":["usage:read"]}"#.into(), StatusCode::BAD_REQUEST, "invalid_name"),
        (r#"{"name":"ci"}"#.into(), StatusCode::BAD_REQUEST, "missing_scopes"),
        (r#"{"name":"ci","scopes":[]}"#.into(), StatusCode::BAD_REQUEST, "missing_scopes"),
        (r#"{"name":"ci","scopes":"usage:read"}"#.into(), StatusCode::BAD_REQUEST, "malformed_body"),
        (r#"{"name":"ci","scopes":["admin"]}"#.into(), StatusCode::BAD_REQUEST, "unknown_scope"),
        (r#"{"name":"ci","scopes":["usage:read","USAGE:READ"]}"#.into(), StatusCode::BAD_REQUEST, "unknown_scope"),
        (r#"{"name":"ci","scopes":["usage:read"],"expires_at":-1}"#.into(), StatusCode::BAD_REQUEST, "invalid_expiry"),
        (r#"{"name":"ci","scopes":["usage:read"],"expires_at":0}"#.into(), StatusCode::BAD_REQUEST, "invalid_expiry"),
        (
            format!(r#"{{"name":"ci","scopes":["usage:read"],"expires_at":{NOW}}}"#),
            StatusCode::BAD_REQUEST,
            "invalid_expiry",
        ),
        (
            r#"{"name":"ci","scopes":["usage:read"],"expires_at":9223372036854775807}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_expiry",
        ),
        (
            r#"{"name":"ci","scopes":["usage:read"],"expires_at":99999999999999999999999}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_expiry",
        ),
        (
            r#"{"name":"ci","scopes":["usage:read"],"expires_at":1e300}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_expiry",
        ),
        (
            r#"{"name":"ci","scopes":["usage:read"],"expires_at":"soon"}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_expiry",
        ),
    ];

    for (input, status, code) in cases {
        let response = handle(&deps, request("POST", "/api-keys", &input)).await.unwrap();

        let shown: String = input.chars().take(80).collect();
        assert_eq!(response.status(), status, "{shown}");
        assert_eq!(body(&response)["error"]["code"], code, "{shown}");
    }
    assert_eq!(list(&deps).await["keys"], serde_json::json!([]), "nothing was stored");
}

#[tokio::test]
async fn at_most_the_limit_is_active_and_expired_keys_make_room() {
    let (store, clock) = (MemoryStore::new(), FixedClock::at(NOW));
    let deps = deps(&store, &clock, 2);
    let scopes = serde_json::json!(["usage:read"]);
    create(&deps, serde_json::json!({"name": "short", "scopes": scopes, "expires_at": NOW + 60})).await;
    clock.advance(1);
    create(&deps, serde_json::json!({"name": "long", "scopes": scopes})).await;

    let full = create(&deps, serde_json::json!({"name": "third", "scopes": scopes})).await;
    clock.advance(59);
    let after_expiry = create(&deps, serde_json::json!({"name": "third", "scopes": scopes})).await;

    assert_eq!(full.status(), StatusCode::CONFLICT);
    assert_eq!(body(&full)["error"]["code"], "key_limit_reached");
    assert_eq!(after_expiry.status(), StatusCode::CREATED);
    let keys = list(&deps).await;
    let states: Vec<(&str, &str)> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["name"].as_str().unwrap(), k["status"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [("third", "active"), ("long", "active"), ("short", "revoked")]);
}

#[tokio::test]
async fn revoking_is_idempotent_and_only_the_accounts_own_keys_are_found() {
    let (store, clock) = (MemoryStore::new(), FixedClock::at(NOW));
    let deps = deps(&store, &clock, 10);
    let key = body(&create(&deps, serde_json::json!({"name": "ci", "scopes": ["usage:read"]})).await);
    let path = format!("/api-keys/{}", key["id"].as_str().unwrap());
    let mut as_bob = request("DELETE", &path, "");
    let mut context: serde_json::Value =
        serde_json::to_value(match lambda_http::RequestExt::request_context(&as_bob) {
            lambda_http::request::RequestContext::ApiGatewayV2(c) => c,
            _ => unreachable!(),
        })
        .unwrap();
    context["authorizer"]["jwt"]["claims"]["sub"] = "acct_bob".into();
    as_bob = lambda_http::RequestExt::with_request_context(
        as_bob,
        lambda_http::request::RequestContext::ApiGatewayV2(serde_json::from_value(context).unwrap()),
    );

    let bobs = handle(&deps, as_bob).await.unwrap();
    clock.advance(5);
    let first = handle(&deps, request("DELETE", &path, "")).await.unwrap();
    clock.advance(5);
    let again = handle(&deps, request("DELETE", &path, "")).await.unwrap();
    let unknown = handle(&deps, request("DELETE", "/api-keys/key_00000000000000000000zz", "")).await.unwrap();
    let hostile = handle(&deps, request("DELETE", "/api-keys/ACCOUNT%23acct_alice", "")).await.unwrap();

    assert_eq!(bobs.status(), StatusCode::NOT_FOUND, "another account's key is not found");
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(
        (body(&first)["status"].clone(), body(&first)["revoked_at"].clone()),
        ("revoked".into(), (NOW + 5).into())
    );
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(body(&again)["revoked_at"], NOW + 5, "the first revoke stands");
    assert_eq!((unknown.status(), hostile.status()), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));
    assert_eq!(body(&unknown)["error"]["code"], "key_not_found");
}

#[tokio::test]
async fn rotation_issues_a_successor_and_keeps_the_old_key_for_the_overlap() {
    let (store, clock) = (MemoryStore::new(), FixedClock::at(NOW));
    let deps = deps(&store, &clock, 1);
    let old =
        body(&create(&deps, serde_json::json!({"name": "ci", "scopes": ["subscription:read", "usage:read"]})).await);
    let rotate = format!("/api-keys/{}/rotate", old["id"].as_str().unwrap());

    let too_long = handle(&deps, request("POST", &rotate, r#"{"overlap_seconds":1e12}"#)).await.unwrap();
    let negative = handle(&deps, request("POST", &rotate, r#"{"overlap_seconds":-5}"#)).await.unwrap();
    let rotated = handle(&deps, request("POST", &rotate, r#"{"overlap_seconds":3600}"#)).await.unwrap();
    let twice = handle(&deps, request("POST", &rotate, "{}")).await.unwrap();

    assert_eq!(body(&too_long)["error"]["code"], "invalid_overlap");
    assert_eq!(body(&negative)["error"]["code"], "invalid_overlap");
    assert_eq!(rotated.status(), StatusCode::CREATED);
    let successor = body(&rotated);
    assert_eq!(successor["replaces"], serde_json::json!({"id": old["id"], "valid_until": NOW + 3600}));
    assert_eq!((successor["name"].clone(), successor["scopes"].clone()), (old["name"].clone(), old["scopes"].clone()));
    assert_ne!(successor["key"], old["key"]);
    assert_eq!(twice.status(), StatusCode::CONFLICT);
    assert_eq!(body(&twice)["error"]["code"], "key_rotated");
    let listed = list(&deps).await;
    let states: Vec<&str> = listed["keys"].as_array().unwrap().iter().map(|k| k["status"].as_str().unwrap()).collect();
    assert_eq!(states.len(), 2);
    assert!(states.contains(&"rotating") && states.contains(&"active"), "{states:?}");

    let successor_rotate = format!("/api-keys/{}/rotate", successor["id"].as_str().unwrap());
    let at_once = handle(&deps, request("POST", &successor_rotate, "")).await.unwrap();
    assert_eq!(body(&at_once)["replaces"]["valid_until"], NOW, "no overlap: revoked at once");
    let revoked = handle(&deps, request("POST", &successor_rotate, "")).await.unwrap();
    assert_eq!(body(&revoked)["error"]["code"], "key_revoked");
}

#[tokio::test]
async fn routes_methods_and_identity_are_checked_first() {
    let (store, clock) = (MemoryStore::new(), FixedClock::at(NOW));
    let deps = deps(&store, &clock, 10);
    let mut anonymous = request("GET", "/api-keys", "");
    let raw = serde_json::json!({"http": {"method": "GET", "path": "/api-keys"}});
    anonymous = lambda_http::RequestExt::with_request_context(
        anonymous,
        lambda_http::request::RequestContext::ApiGatewayV2(serde_json::from_value(raw).unwrap()),
    );
    let mut put = request("PUT", "/api-keys", "{}");
    *put.method_mut() = Method::PUT;
    let mut get_rotate = request("GET", "/api-keys/key_00000000000000000000zz/rotate", "");
    *get_rotate.method_mut() = Method::GET;

    let anonymous = handle(&deps, anonymous).await.unwrap();
    let put = handle(&deps, put).await.unwrap();
    let get_rotate = handle(&deps, get_rotate).await.unwrap();
    let elsewhere = handle(&deps, request("GET", "/api-keys/a/b/c", "")).await.unwrap();

    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(put.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(get_rotate.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(elsewhere.status(), StatusCode::NOT_FOUND);
}
