//! The usage decision's time per request over an in-memory store: the operator's
//! `POST /operator/accounts/{account_id}/usage` through the handler (routing, identity,
//! validation, the account's read, the one-transaction decision, JSON and rate-limit headers)
//! and its `.../usage/check`, without DynamoDB's round trips.
//! Each consumption uses a new idempotency key on an unlimited tier, so every iteration is a
//! counted decision, never a replay or a refusal. `.../credits/consume` is timed the same
//! way, drawing from a purchased grant no run can spend (the plan's 25,000 would run out).

use criterion::{Criterion, criterion_group, criterion_main};
use std::sync::atomic::{AtomicU64, Ordering};
use tollgate::app::usage::UsageDeps;
use tollgate::domain::model::Projection;
use tollgate::edge::config::IdentityConfig;
use tollgate::ports::credits::CreditStore;
use tollgate::testing::{FixedClock, MemoryStore, Outbox, settings};
use usage::{Deps, handle};

const NOW: i64 = 1_795_273_200;

fn request(raw: &serde_json::Value, path: &str, body: String) -> lambda_http::Request {
    let mut event = raw.clone();
    event["rawPath"] = path.into();
    event["requestContext"]["http"]["path"] = path.into();
    event["body"] = body.into();
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let store = MemoryStore::new();
    let enterprise = Projection {
        plan: "enterprise".into(),
        current_period_start: Some(NOW - 86_400),
        current_period_end: Some(NOW + 29 * 86_400),
        ..tollgate::testing::projection("acct_alice")
    };
    runtime.block_on(tollgate::testing::subscribed(&store, &enterprise));
    let deps = Deps {
        usage: UsageDeps { store, notifier: Outbox::default(), settings: settings(&FixedClock::at(NOW)) },
        identity: IdentityConfig { claim: "sub".into() },
    };
    let raw: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/apigw-post-operator-usage.json"))
            .unwrap(),
    )
    .unwrap();
    let next = AtomicU64::new(0);

    c.bench_function("post_usage_handler", |b| {
        b.to_async(&runtime).iter(|| async {
            let key = next.fetch_add(1, Ordering::Relaxed);
            let body = format!(r#"{{"metric":"api_calls","quantity":1,"idempotency_key":"bench-{key}"}}"#);
            let response = handle(&deps, request(&raw, "/operator/accounts/acct_alice/usage", body)).await.unwrap();
            assert_eq!(response.status(), 200);
            response
        })
    });
    c.bench_function("post_usage_check_handler", |b| {
        b.to_async(&runtime).iter(|| async {
            let body = r#"{"metric":"api_calls","quantity":1}"#.to_owned();
            handle(&deps, request(&raw, "/operator/accounts/acct_alice/usage/check", body)).await.unwrap()
        })
    });
    // Credits: a purchased grant no run of the bench can spend.
    let pack = tollgate::domain::credits::Grant {
        frozen: None,
        dispute_closed: false,
        reversed: false,
        actor: None,
        id: "cs_bench".into(),
        kind: tollgate::domain::credits::GrantKind::Purchased,
        source: "checkout:cs_bench".into(),
        credits: u64::MAX / 2,
        remaining: u64::MAX / 2,
        granted_at: NOW,
        expires_at: None,
        payment: None,
    };
    let entry = tollgate::ports::credits::LedgerEntry {
        withheld: None,
        actor: None,
        id: "grant-cs_bench".into(),
        kind: tollgate::ports::credits::EntryKind::Grant,
        at_ms: NOW * 1000,
        credits: i64::MAX,
        event: None,
        quantity: None,
        grant: Some("cs_bench".into()),
    };
    let alice = tollgate::domain::model::AccountId::parse("acct_alice").unwrap();
    runtime.block_on(deps.usage.store.grant(&alice, &pack, &entry)).unwrap();
    c.bench_function("post_credits_consume_handler", |b| {
        b.to_async(&runtime).iter(|| async {
            let key = next.fetch_add(1, Ordering::Relaxed);
            let body = format!(r#"{{"event":"ai_inference","quantity":1,"idempotency_key":"bench-{key}"}}"#);
            let response =
                handle(&deps, request(&raw, "/operator/accounts/acct_alice/credits/consume", body)).await.unwrap();
            assert_eq!(response.status(), 200);
            response
        })
    });
    c.bench_function("usage_event_parse_only", |b| {
        b.iter(|| {
            request(
                &raw,
                "/operator/accounts/acct_alice/usage",
                r#"{"metric":"api_calls","quantity":1,"idempotency_key":"k"}"#.to_owned(),
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
