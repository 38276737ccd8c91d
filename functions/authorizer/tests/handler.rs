//! The `authorizer` handler, called directly with the REQUEST event of
//! `events/apigw-authorizer-request.json` over an in-memory store: a valid key is allowed with
//! its account, tier and scopes; a revoked, expired, unknown, malformed or out-of-scope key is
//! refused; hostile headers are refused without a panic; a store outage is an error.

use authorizer::{Deps, handle};
use aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use std::sync::Arc;
use tollgate::app::keys::{CreateRequest, KeysDeps, create, revoke};
use tollgate::domain::apikeys::{ApiKey, KeyHash, KeyId, Mode, Secret};
use tollgate::domain::model::{AccountId, Projection};
use tollgate::ports::StoreError;
use tollgate::ports::api_keys::{ApiKeyStore, KeyCreation};
use tollgate::ports::subscriptions::{AccountState, SubscriptionStore};
use tollgate::testing::{FixedClock, MemoryStore};

const NOW: i64 = 1_795_273_200;

fn event(authorization: Option<&str>, route_key: &str) -> ApiGatewayV2CustomAuthorizerV2Request {
    let raw =
        std::fs::read_to_string(format!("{}/../../events/apigw-authorizer-request.json", env!("CARGO_MANIFEST_DIR")))
            .unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&raw).unwrap();
    json["routeKey"] = route_key.into();
    match authorization {
        Some(value) => json["headers"]["authorization"] = value.into(),
        None => {
            json["headers"].as_object_mut().unwrap().remove("authorization");
        }
    }
    serde_json::from_value(json).unwrap()
}

fn keys(store: &MemoryStore, clock: &FixedClock) -> KeysDeps<MemoryStore> {
    KeysDeps { store: store.clone(), clock: Arc::new(clock.clone()), mode: Mode::Test, max_active: 10 }
}

fn deps(store: &MemoryStore, clock: &FixedClock) -> Deps<MemoryStore> {
    Deps { store: store.clone(), clock: Arc::new(clock.clone()) }
}

/// A key of `account` with `scopes` (and `expires_at`), as `POST /api-keys` makes it: its id
/// and the `Authorization` header that presents it.
async fn key(
    keys: &KeysDeps<MemoryStore>,
    account: &str,
    scopes: &[&str],
    expires_at: Option<i64>,
) -> (String, String) {
    let request = CreateRequest {
        name: Some("test".into()),
        scopes: Some(scopes.iter().map(|s| (*s).to_owned()).collect()),
        expires_at: expires_at.map(Into::into),
    };
    let made = create(keys, &AccountId::parse(account).unwrap(), request).await.unwrap();
    (made.id.to_string(), format!("Bearer {}", made.key))
}

const SUBSCRIPTION: &str = "GET /api/subscription";

#[tokio::test]
async fn a_valid_key_is_allowed_with_its_account_tier_and_scopes() {
    let (store, clock) = (MemoryStore::new(), FixedClock::at(NOW));
    let pro = Projection { customer_id: "cus_b".into(), ..tollgate::testing::projection("acct_bob") };
    tollgate::testing::subscribed(&store, &pro).await;
    let (id, bearer) = key(&keys(&store, &clock), "acct_bob", &["subscription:read", "usage:read"], None).await;

    let answer = handle(&deps(&store, &clock), event(Some(&bearer), SUBSCRIPTION)).await.unwrap();

    let json = serde_json::to_value(&answer).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"isAuthorized": true, "context": {
            "account_id": "acct_bob", "key_id": id, "tier": "pro", "scopes": "usage:read subscription:read"
        }})
    );
}

#[tokio::test]
async fn revoked_expired_unknown_and_out_of_scope_keys_are_refused() {
    let (store, clock) = (MemoryStore::new(), FixedClock::at(NOW));
    let keys = keys(&store, &clock);
    let (revoked_id, revoked) = key(&keys, "acct_a", &["subscription:read"], None).await;
    revoke(&keys, &AccountId::parse("acct_a").unwrap(), &revoked_id).await.unwrap();
    let (_, expiring) = key(&keys, "acct_a", &["subscription:read"], Some(NOW + 60)).await;
    let (_, usage_only) = key(&keys, "acct_a", &["usage:read"], None).await;
    let deps = deps(&store, &clock);
    let never_issued = format!("Bearer {}", Secret::generate(Mode::Test).unwrap().expose());

    let allowed_before = handle(&deps, event(Some(&expiring), SUBSCRIPTION)).await.unwrap();
    clock.advance(60);
    let cases = [
        ("revoked", revoked.as_str(), SUBSCRIPTION),
        ("expired", expiring.as_str(), SUBSCRIPTION),
        ("out of scope", usage_only.as_str(), SUBSCRIPTION),
        ("never issued", never_issued.as_str(), SUBSCRIPTION),
    ];

    assert!(allowed_before.is_authorized);
    for (what, bearer, route) in cases {
        let answer = handle(&deps, event(Some(bearer), route)).await.unwrap();
        assert_eq!(serde_json::to_value(&answer).unwrap(), serde_json::json!({"isAuthorized": false}), "{what}");
    }
    let usage = handle(&deps, event(Some(&usage_only), "GET /api/usage")).await.unwrap();
    assert!(usage.is_authorized, "the same key on a route of its scope");
}

#[tokio::test]
async fn a_products_own_route_needs_a_valid_key_and_reads_its_scopes() {
    let (store, clock) = (MemoryStore::new(), FixedClock::at(NOW));
    let (_, bearer) = key(&keys(&store, &clock), "acct_p", &["usage:read"], None).await;

    let answer = handle(&deps(&store, &clock), event(Some(&bearer), "POST /v1/generate")).await.unwrap();

    assert!(answer.is_authorized);
    let context = answer.context.unwrap();
    assert_eq!((context.tier.as_str(), context.scopes.as_str()), ("free", "usage:read"));
}

#[tokio::test]
async fn hostile_or_malformed_headers_are_refused() {
    let (store, clock) = (MemoryStore::new(), FixedClock::at(NOW));
    let (_, bearer) = key(&keys(&store, &clock), "acct_h", &["subscription:read"], None).await;
    let key = bearer.trim_start_matches("Bearer ").to_owned();
    let long = format!("Bearer tg_test_{}", "a".repeat(1 << 20));
    let headers = [
        None,
        Some(""),
        Some("Bearer"),
        Some("Bearer "),
        Some(key.as_str()),
        Some(&*format!("Basic {key}")),
        Some(&*format!("Bearer {key}x")),
        Some(&*format!("Bearer {key},Bearer {key}")),
        Some(&*format!("Bearer {}", key.to_uppercase())),
        Some(&*format!("Bearer {}é", &key[..key.len() - 2])),
        Some(long.as_str()),
        Some("Bearer\ttg_test_"),
    ];

    for header in headers {
        let answer = handle(&deps(&store, &clock), event(header, SUBSCRIPTION)).await.unwrap();
        assert!(!answer.is_authorized, "{:?}", header.map(|h| h.chars().take(40).collect::<String>()));
    }
}

#[tokio::test]
async fn a_use_is_recorded_at_most_once_a_minute() {
    let (store, clock) = (MemoryStore::new(), FixedClock::at(NOW));
    let (id, bearer) = key(&keys(&store, &clock), "acct_u", &["subscription:read"], None).await;
    let deps = deps(&store, &clock);
    let last_used = || async {
        let id = KeyId::parse(&id).unwrap();
        store.api_key(&AccountId::parse("acct_u").unwrap(), &id).await.unwrap().unwrap().last_used_at
    };

    handle(&deps, event(Some(&bearer), SUBSCRIPTION)).await.unwrap();
    let first = last_used().await;
    clock.advance(59);
    handle(&deps, event(Some(&bearer), SUBSCRIPTION)).await.unwrap();
    let within_a_minute = last_used().await;
    clock.advance(1);
    handle(&deps, event(Some(&bearer), SUBSCRIPTION)).await.unwrap();

    assert_eq!((first, within_a_minute, last_used().await), (Some(NOW), Some(NOW), Some(NOW + 60)));
}

/// A store that is down: every call fails as DynamoDB unreachable would.
struct Down;

fn down<T>() -> Result<T, StoreError> {
    Err(StoreError::Unavailable("connection refused".into()))
}

#[async_trait::async_trait]
impl SubscriptionStore for Down {
    async fn state(&self, _: &AccountId) -> Result<AccountState, StoreError> {
        down()
    }
    async fn put_subscription(&self, _: &Projection) -> Result<(), StoreError> {
        down()
    }
}

#[async_trait::async_trait]
impl ApiKeyStore for Down {
    async fn create_api_key(&self, _: &ApiKey, _: u32) -> Result<KeyCreation, StoreError> {
        down()
    }
    async fn api_key_by_hash(&self, _: &KeyHash) -> Result<Option<ApiKey>, StoreError> {
        down()
    }
    async fn api_key(&self, _: &AccountId, _: &KeyId) -> Result<Option<ApiKey>, StoreError> {
        down()
    }
    async fn api_keys(&self, _: &AccountId) -> Result<Vec<ApiKey>, StoreError> {
        down()
    }
    async fn revoke_api_key(&self, _: &ApiKey, _: i64, _: i64) -> Result<(), StoreError> {
        down()
    }
    async fn rotate_api_key(&self, _: &ApiKey, _: &ApiKey, _: i64, _: i64, _: i64) -> Result<(), StoreError> {
        down()
    }
    async fn record_api_key_use(&self, _: &ApiKey, _: i64) -> Result<bool, StoreError> {
        down()
    }
    async fn delete_api_keys(&self, _: &AccountId) -> Result<u32, StoreError> {
        down()
    }
}

#[tokio::test]
async fn a_store_outage_is_an_error_never_a_refusal() {
    let deps = Deps { store: Down, clock: Arc::new(FixedClock::at(NOW)) };
    let bearer = format!("Bearer {}", Secret::generate(Mode::Live).unwrap().expose());

    let answer = handle(&deps, event(Some(&bearer), SUBSCRIPTION)).await;

    assert!(answer.is_err(), "API Gateway answers 500, not a 403 that blames the key");
}
