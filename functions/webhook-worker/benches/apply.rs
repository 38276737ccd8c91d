//! The worker's apply step per event over the in-memory store and a fake Stripe: parse, the
//! exactly-once claim, the projection's version guard, the write, the notification. A fresh
//! event id each iteration (a first delivery) and the same one again (a duplicate, which costs
//! its check only). DynamoDB's and Stripe's round trips are not in these figures.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use tollgate::app::Never;
use tollgate::app::events::{EventDeps, Record, process};
use tollgate::domain::model::{AccountId, SubscriptionStatus};
use tollgate::ports::accounts::{Account, AccountStore};
use tollgate::testing::{FakeBilling, FixedClock, MemoryStore, Outbox, remote_subscription, settings};

const NOW: i64 = 1_795_273_300;

fn sample(event_type: &str) -> String {
    std::fs::read_to_string(format!("{}/../../events/stripe/{event_type}.json", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn customer() -> String {
    let event: serde_json::Value = serde_json::from_str(&sample("customer.subscription.updated")).unwrap();
    event["data"]["object"]["customer"].as_str().unwrap().to_owned()
}

/// The samples' account linked to their customer, and Stripe answering its subscription.
fn deps(runtime: &tokio::runtime::Runtime) -> EventDeps<MemoryStore, FakeBilling, Outbox> {
    let billing = FakeBilling::new();
    let subscription =
        remote_subscription("sub_sample", &customer(), SubscriptionStatus::Active, "pro_monthly", NOW - 86_400);
    billing.set_subscription(tollgate::domain::snapshot::RemoteSubscription {
        account_hint: Some("acct_sample".into()),
        ..subscription
    });
    let store = MemoryStore::new();
    let link =
        Account { account_id: AccountId::parse("acct_sample").unwrap(), customer_id: customer(), created_at: NOW };
    runtime.block_on(store.link_customer(&link)).unwrap();
    EventDeps { store, billing, notifier: Outbox::default(), settings: settings(&FixedClock::at(NOW)) }
}

/// The sample of `event_type` as the `n`th distinct event (its own id and creation second).
fn record(body: &str, event_type: &str, n: u64) -> Record {
    let mut event: serde_json::Value = serde_json::from_str(body).unwrap();
    event["id"] = format!("evt_bench_{event_type}_{n}").into();
    event["created"] = (NOW - 3_600 + i64::try_from(n % 3_000).unwrap()).into();
    Record { group: customer(), message_id: format!("m{n}"), body: event.to_string(), attempt: 1 }
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut group = c.benchmark_group("worker_apply");
    for event_type in ["customer.subscription.updated", "invoice.paid"] {
        let deps = deps(&runtime);
        let body = sample(event_type);
        let mut n = 0_u64;
        group.bench_function(event_type, |b| {
            b.to_async(&runtime).iter_batched(
                || {
                    n += 1;
                    vec![record(&body, event_type, n)]
                },
                |records| {
                    let deps = &deps;
                    async move { assert!(process(deps, &records, &Never).await.is_empty()) }
                },
                BatchSize::SmallInput,
            )
        });
        let duplicate = vec![record(&body, event_type, 0)];
        assert!(runtime.block_on(process(&deps, &duplicate, &Never)).is_empty());
        group.bench_function(format!("{event_type} duplicate"), |b| {
            b.to_async(&runtime).iter(|| async { assert!(process(&deps, &duplicate, &Never).await.is_empty()) })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
