//! The authorizer's time per request over an in-memory store: the REQUEST event parsed, the
//! key hashed and looked up, expiry, revocation and scope checked, the tier read, the simple
//! response built; without DynamoDB's round trips. Also a refusal (an unknown key of the
//! right form), which costs the same hash and lookup.

use authorizer::{Deps, handle};
use aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use criterion::{Criterion, criterion_group, criterion_main};
use std::sync::Arc;
use tollgate::app::keys::{CreateRequest, KeysDeps, create};
use tollgate::domain::apikeys::Mode;
use tollgate::domain::model::AccountId;
use tollgate::testing::{FixedClock, MemoryStore};

const NOW: i64 = 1_795_273_200;

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let (store, clock) = (MemoryStore::new(), FixedClock::at(NOW));
    let keys = KeysDeps { store: store.clone(), clock: Arc::new(clock.clone()), mode: Mode::Test, max_active: 10 };
    let request =
        CreateRequest { name: Some("bench".into()), scopes: Some(vec!["usage:read".into()]), expires_at: None };
    let made = runtime.block_on(create(&keys, &AccountId::parse("acct_alice").unwrap(), request)).unwrap();
    let deps = Deps { store, clock: Arc::new(clock) };
    let raw: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/apigw-authorizer-request.json"))
            .unwrap(),
    )
    .unwrap();
    let event = |bearer: &str| {
        let mut json = raw.clone();
        json["routeKey"] = "POST /api/usage/check".into();
        json["headers"]["authorization"] = format!("Bearer {bearer}").into();
        json.to_string()
    };
    let known = event(&made.key);
    let unknown = event("tg_test_SampleKeyForTestsOnly0000000000000000000000");

    c.bench_function("authorizer_allow", |b| {
        b.to_async(&runtime).iter(|| async {
            let request: ApiGatewayV2CustomAuthorizerV2Request = serde_json::from_str(&known).unwrap();
            let answer = handle(&deps, request).await.unwrap();
            assert!(answer.is_authorized);
            answer
        })
    });
    c.bench_function("authorizer_deny_unknown_key", |b| {
        b.to_async(&runtime).iter(|| async {
            let request: ApiGatewayV2CustomAuthorizerV2Request = serde_json::from_str(&unknown).unwrap();
            handle(&deps, request).await.unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
