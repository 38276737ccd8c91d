//! `GET /subscription` handler time per request over an in-memory store: the handler's own
//! cost (routing, identity, decision, JSON), without DynamoDB's network round trip.

use criterion::{Criterion, criterion_group, criterion_main};
use subscription::{Deps, handle};
use tollgate::domain::model::Projection;
use tollgate::edge::config::IdentityConfig;
use tollgate::testing::{FixedClock, MemoryStore, settings};

const NOW: i64 = 1_795_273_200;

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let store = MemoryStore::new();
    let projection = Projection {
        customer_id: "cus_1".into(),
        subscription_id: Some("sub_1".into()),
        current_period_start: Some(NOW - 86_400),
        current_period_end: Some(NOW + 86_400),
        ..tollgate::testing::projection("acct_alice")
    };
    runtime.block_on(tollgate::testing::subscribed(&store, &projection));
    let deps =
        Deps { store, settings: settings(&FixedClock::at(NOW)), identity: IdentityConfig { claim: "sub".into() } };
    let raw = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/apigw-get-subscription.json"))
        .unwrap();

    c.bench_function("get_subscription_handler", |b| {
        b.to_async(&runtime).iter(|| async {
            let req = lambda_http::request::from_str(&raw).unwrap();
            handle(&deps, req).await.unwrap()
        })
    });
    c.bench_function("parse_event_only", |b| b.iter(|| lambda_http::request::from_str(&raw).unwrap()));
}

criterion_group!(benches, bench);
criterion_main!(benches);
