//! Invariant 2: for any delivery order of a customer's events, with duplicates and with
//! workers that read Stripe before another wrote a newer snapshot, the final projection equals
//! the one in-order delivery gives. Stripe's state advances as the events happen. And when the
//! lifecycle ends with the customer deleted in Stripe, and the account deleted by its owner at
//! any point of the deliveries, the account ends retired the same way whatever the order.

use proptest::prelude::*;
use tollgate::app::events::{EventDeps, Snapshots, apply};
use tollgate::app::refresh::Snapshot;
use tollgate::domain::model::{AccountId, Projection, SubscriptionStatus as S};
use tollgate::domain::snapshot::RemoteSubscription;
use tollgate::ports::billing::Billing;
use tollgate::ports::clock::Clock;
use tollgate::ports::subscriptions::SubscriptionStore;
use tollgate::testing::{FakeBilling, FixedClock, MemoryStore, Outbox, settings};

const T0: i64 = 1_795_000_000;

fn subscription(status: S, key: &str, at: i64) -> RemoteSubscription {
    RemoteSubscription {
        items: vec![tollgate::testing::remote_item("si_1", key, at)],
        trial_end: (status == S::Trialing).then_some(T0 + 14 * 86_400),
        created: T0,
        account_hint: Some("acct_1".into()),
        ..tollgate::testing::remote_subscription("sub_1", "cus_1", status, key, at)
    }
}

fn event(id: &str, event_type: &str, created: i64, object: serde_json::Value) -> String {
    serde_json::json!({"id": id, "object": "event", "type": event_type, "created": created, "data": {"object": object}})
        .to_string()
}

/// One step of Stripe's lifecycle: the state after it and the events it emits (several in
/// the same second, as Stripe does).
fn lifecycle() -> Vec<(RemoteSubscription, Vec<String>)> {
    let sub = |status| serde_json::json!({"id": "sub_1", "object": "subscription", "customer": "cus_1", "status": status, "metadata": {"tollgate_account_id": "acct_1"}});
    let invoice = |id: &str| serde_json::json!({"id": id, "object": "invoice", "customer": "cus_1", "parent": {"subscription_details": {"metadata": {"tollgate_account_id": "acct_1"}}}});
    let t = |n: i64| T0 + n * 86_400;
    vec![
        (
            subscription(S::Trialing, "pro_monthly", t(0)),
            vec![
                event("evt_created", "customer.subscription.created", t(0), sub("trialing")),
                event(
                    "evt_checkout",
                    "checkout.session.completed",
                    t(0),
                    serde_json::json!({"id": "cs_1", "object": "checkout.session", "customer": "cus_1", "client_reference_id": "acct_1"}),
                ),
            ],
        ),
        (
            subscription(S::Active, "pro_monthly", t(14)),
            vec![
                event("evt_paid_1", "invoice.paid", t(14), invoice("in_1")),
                event("evt_active", "customer.subscription.updated", t(14), sub("active")),
            ],
        ),
        (
            subscription(S::PastDue, "pro_monthly", t(44)),
            vec![
                event("evt_failed", "invoice.payment_failed", t(44), invoice("in_2")),
                event("evt_past_due", "customer.subscription.updated", t(44), sub("past_due")),
            ],
        ),
        (
            subscription(S::Active, "pro_monthly", t(45)),
            vec![
                event("evt_paid_2", "invoice.paid", t(45), invoice("in_2")),
                event("evt_recovered", "customer.subscription.updated", t(45), sub("active")),
            ],
        ),
        (
            subscription(S::Active, "team_monthly", t(50)),
            vec![event("evt_team", "customer.subscription.updated", t(50), sub("active"))],
        ),
        (
            subscription(S::Active, "team_monthly", t(50)),
            vec![event(
                "evt_dispute",
                "charge.dispute.created",
                t(51),
                serde_json::json!({"id": "dp_1", "object": "dispute", "charge": "ch_1", "status": "needs_response"}),
            )],
        ),
        (
            subscription(S::Canceled, "team_monthly", t(50)),
            vec![event("evt_canceled", "customer.subscription.deleted", t(52), sub("canceled"))],
        ),
    ]
}

/// Stripe for one customer (its subscriptions as they are now; every read moves the clock
/// by 1 ms), whose dispute names the charge `ch_1`.
fn deps(clock: &FixedClock) -> EventDeps<MemoryStore, FakeBilling, Outbox> {
    let billing = FakeBilling::ticking(clock.clone());
    billing.set_charge("ch_1", "cus_1");
    EventDeps { store: MemoryStore::new(), billing, notifier: Outbox::default(), settings: settings(clock) }
}

/// The projection without its version (which is when it was read, so differs per run).
async fn final_projection(deps: &EventDeps<MemoryStore, FakeBilling, Outbox>) -> Projection {
    let mut p = deps.store.subscription(&AccountId::parse("acct_1").unwrap()).await.unwrap().expect("a projection");
    p.version = 0;
    p
}

fn in_order() -> Projection {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        let clock = FixedClock::at(T0);
        let deps = deps(&clock);
        for (state, events) in lifecycle() {
            deps.billing.set_subscription(state);
            for body in events {
                apply(&deps, &body, &mut Snapshots::new()).await.unwrap();
            }
        }
        final_projection(&deps).await
    })
}

/// A delivery: which pending event, whether it stays pending (Stripe redelivers it), and
/// whether the worker uses a snapshot it read earlier (a slow worker) instead of a fresh one.
#[derive(Debug, Clone)]
struct Delivery {
    pick: usize,
    redeliver: bool,
    stale: Option<usize>,
}

fn delivery() -> impl Strategy<Value = Delivery> {
    (any::<usize>(), prop::bool::weighted(0.3), prop::option::weighted(0.3, any::<usize>()))
        .prop_map(|(pick, redeliver, stale)| Delivery { pick, redeliver, stale })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn any_delivery_order_gives_the_in_order_projection(
        between in prop::collection::vec(prop::collection::vec(delivery(), 0..4), 7),
        tail in prop::collection::vec(delivery(), 0..20),
    ) {
        let expected = in_order();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let actual = runtime.block_on(async {
            let clock = FixedClock::at(T0);
            let deps = deps(&clock);
            // Pending events with the step that emitted them; snapshots with the step they saw.
            let mut pending: Vec<(String, usize)> = Vec::new();
            let mut reads: Vec<(usize, Snapshot)> = Vec::new();
            let deliver = |d: &Delivery, pending: &mut Vec<(String, usize)>, reads: &[(usize, Snapshot)]| {
                let i = d.pick % pending.len();
                let (body, emitted) = if d.redeliver { pending[i].clone() } else { pending.remove(i) };
                // A slow worker read Stripe after the event happened, but maybe long before now.
                let usable: Vec<_> = reads.iter().filter(|(step, _)| *step >= emitted).collect();
                let mut cache = Snapshots::new();
                if let Some(pick) = d.stale.filter(|_| !usable.is_empty()) {
                    cache.insert("cus_1".into(), usable[pick % usable.len()].1.clone());
                }
                (body, cache)
            };
            for (step, ((state, events), deliveries)) in lifecycle().into_iter().zip(&between).enumerate() {
                deps.billing.set_subscription(state);
                pending.extend(events.into_iter().map(|e| (e, step)));
                let read = deps.billing.subscriptions("cus_1").await.unwrap();
                reads.push((step, Snapshot { subscriptions: read, read_at_ms: clock.now_ms() }));
                for d in deliveries {
                    if pending.is_empty() { break; }
                    let (body, mut cache) = deliver(d, &mut pending, &reads);
                    apply(&deps, &body, &mut cache).await.unwrap();
                }
            }
            for d in &tail {
                if pending.is_empty() { break; }
                let (body, mut cache) = deliver(&Delivery { redeliver: false, ..d.clone() }, &mut pending, &reads);
                apply(&deps, &body, &mut cache).await.unwrap();
            }
            while let Some((body, _)) = pending.pop() {
                apply(&deps, &body, &mut Snapshots::new()).await.unwrap();
            }
            final_projection(&deps).await
        });
        prop_assert_eq!(actual, expected);
    }
}

#[test]
fn in_order_lifecycle_ends_canceled_on_free_with_the_dispute_recorded() {
    let p = in_order();

    assert_eq!((p.status, p.plan.as_str()), (S::Canceled, "team"));
    assert_eq!(p.open_disputes, ["dp_1"]);
    assert_eq!(
        tollgate::domain::access::decide(Some(&p), T0 + 53 * 86_400).reason,
        tollgate::domain::access::Reason::Disputed
    );
}

/// Stripe's `customer.deleted` for the lifecycle's customer, after its subscription ended.
fn customer_deleted() -> String {
    let customer =
        serde_json::json!({"id": "cus_1", "object": "customer", "metadata": {"tollgate_account_id": "acct_1"}});
    event("evt_customer_deleted", "customer.deleted", T0 + 53 * 86_400, customer)
}

/// What is left of `acct_1` when everything was delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Retired {
    profile: bool,
    projection: bool,
    link: Option<tollgate::ports::accounts::CustomerLink>,
    trial_used: bool,
    disputes: std::collections::BTreeSet<String>,
    deleted: bool,
}

/// Delivers `bodies` in the order given, with the account deleted by its owner before the
/// delivery at `delete_at` (if any), to Stripe in its final state (the customer deleted, its
/// subscription canceled). The account was linked by its checkout, as in production.
fn deliver_ending(bodies: &[String], delete_at: Option<usize>) -> Retired {
    use tollgate::app::checkout::{CheckoutDeps, delete_account};
    use tollgate::ports::accounts::{Account, AccountStore};
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        let clock = FixedClock::at(T0 + 60 * 86_400);
        let deps = deps(&clock);
        let (last, _) = lifecycle().pop().unwrap();
        deps.billing.set_subscription(last);
        let account = AccountId::parse("acct_1").unwrap();
        let link = Account { account_id: account.clone(), customer_id: "cus_1".into(), created_at: T0 };
        deps.store.link_customer(&link).await.unwrap();
        let owner = CheckoutDeps {
            store: deps.store.clone(),
            billing: deps.billing.clone(),
            settings: settings(&clock),
            redirects: tollgate::domain::redirect::Redirects {
                allowed: tollgate::domain::redirect::AllowList::parse("https://app.example.com").unwrap(),
                success_url: "https://app.example.com/ok".into(),
                cancel_url: "https://app.example.com/cancel".into(),
                return_url: "https://app.example.com".into(),
            },
            checkout_limit: tollgate::domain::ratelimit::Limit { limit: 5, window_ms: 60_000 },
            session_ttl_seconds: 3600,
        };
        for (i, body) in bodies.iter().enumerate() {
            if delete_at == Some(i) {
                delete_account(&owner, &account, &tollgate::app::Never).await.unwrap();
            }
            apply(&deps, body, &mut Snapshots::new()).await.unwrap();
        }
        if delete_at.is_some_and(|at| at >= bodies.len()) {
            delete_account(&owner, &account, &tollgate::app::Never).await.unwrap();
        }
        let state = deps.store.state(&account).await.unwrap();
        Retired {
            profile: state.profile.is_some(),
            projection: state.subscription.is_some(),
            link: deps.store.customer_link("cus_1").await.unwrap(),
            trial_used: state.tombstone.trial_used,
            disputes: state.disputes(),
            deleted: state.tombstone.deleted_at.is_some(),
        }
    })
}

fn every_event_and_the_deletion() -> Vec<String> {
    let mut bodies: Vec<String> = lifecycle().into_iter().flat_map(|(_, events)| events).collect();
    bodies.push(customer_deleted());
    bodies
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn customer_and_account_deletion_in_any_order_leave_the_account_retired_alike(
        order in Just(every_event_and_the_deletion()).prop_shuffle(),
        duplicates in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
        delete_at in prop::option::of(0usize..20),
    ) {
        let mut bodies = order;
        for d in &duplicates {
            let again = d.get(&bodies).clone();
            bodies.push(again);
        }
        let in_order = deliver_ending(&every_event_and_the_deletion(), delete_at.map(|_| usize::MAX));

        let shuffled = deliver_ending(&bodies, delete_at);

        prop_assert_eq!(&shuffled, &in_order);
        prop_assert!(!in_order.profile && !in_order.projection && in_order.trial_used);
        prop_assert_eq!(in_order.link, Some(tollgate::ports::accounts::CustomerLink::Retired(AccountId::parse("acct_1").unwrap())));
        prop_assert!(in_order.disputes.contains("dp_1"), "a chargeback counts whenever it arrives");
        prop_assert_eq!(in_order.deleted, delete_at.is_some());
    }
}
