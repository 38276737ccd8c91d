//! The worker against the sample events in `events/`: every covered Stripe event type is
//! processed, its fact and notification come out right, the SQS batch sample goes through the
//! Lambda entry, and one failing record does not redo its batch-mates' work.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Context, LambdaEvent};
use tollgate::app::Never;
use tollgate::app::events::{EventDeps, Outcome, Record, Snapshots, apply, process};
use tollgate::domain::model::{AccountId, SubscriptionStatus};
use tollgate::domain::notifications::Kind;
use tollgate::ports::accounts::{Account, AccountStore};
use tollgate::ports::events::EventLog;
use tollgate::ports::subscriptions::SubscriptionStore;
use tollgate::testing::{FakeBilling, FixedClock, MemoryStore, Outbox, remote_subscription, settings};
use webhook_worker::handle;

const NOW: i64 = 1_795_273_300;

fn sample(event_type: &str) -> String {
    std::fs::read_to_string(format!("{}/../../events/stripe/{event_type}.json", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The customer of the samples (all made for one account).
fn sample_customer() -> String {
    let event: serde_json::Value = serde_json::from_str(&sample("customer.subscription.updated")).unwrap();
    event["data"]["object"]["customer"].as_str().unwrap().to_owned()
}

/// Stripe answering one past-due `pro` subscription of the samples' customer, whose charges
/// (the disputes') belong to that customer.
fn stripe() -> FakeBilling {
    let billing = FakeBilling::new();
    let subscription =
        remote_subscription("sub_sample", &sample_customer(), SubscriptionStatus::PastDue, "pro_monthly", NOW - 86_400);
    billing.set_subscription(tollgate::domain::snapshot::RemoteSubscription {
        account_hint: Some("acct_sample".into()),
        ..subscription
    });
    for event_type in ["charge.dispute.created", "charge.dispute.closed"] {
        let event: serde_json::Value = serde_json::from_str(&sample(event_type)).unwrap();
        billing.set_charge(event["data"]["object"]["charge"].as_str().unwrap(), &sample_customer());
    }
    billing
}

/// Worker dependencies whose store already links `acct_sample` to the samples' customer, as
/// the completed checkout did.
async fn deps() -> EventDeps<MemoryStore, FakeBilling, Outbox> {
    let store = MemoryStore::new();
    let link = Account {
        account_id: AccountId::parse("acct_sample").unwrap(),
        customer_id: sample_customer(),
        created_at: NOW,
    };
    store.link_customer(&link).await.unwrap();
    EventDeps { store, billing: stripe(), notifier: Outbox::default(), settings: settings(&FixedClock::at(NOW)) }
}

/// How many times Stripe's subscriptions were read.
fn reads(billing: &FakeBilling) -> usize {
    billing.calls().iter().filter(|c| c.starts_with("subscriptions ")).count()
}

#[tokio::test]
async fn every_covered_event_type_is_processed_once() {
    for event_type in tollgate::domain::events::handled_types() {
        let deps = deps().await;
        let body = sample(event_type);

        let first = apply(&deps, &body, &mut Snapshots::new()).await.unwrap();
        let again = apply(&deps, &body, &mut Snapshots::new()).await.unwrap();

        assert_eq!(first, Outcome::Applied, "{event_type}");
        assert_eq!(again, Outcome::Duplicate, "{event_type}");
        let id: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(deps.store.processed(id["id"].as_str().unwrap()).await.unwrap().is_some(), "{event_type}");
    }
}

#[tokio::test]
async fn facts_and_notifications_follow_the_event_type() {
    let deps = deps().await;
    let account = AccountId::parse("acct_sample").unwrap();

    for event_type in ["invoice.payment_failed", "charge.dispute.created", "customer.subscription.trial_will_end"] {
        apply(&deps, &sample(event_type), &mut Snapshots::new()).await.unwrap();
    }

    let projection = deps.store.subscription(&account).await.unwrap().unwrap();
    assert_eq!(projection.status, SubscriptionStatus::PastDue);
    assert!(projection.grace_until.is_some());
    assert_eq!(projection.open_disputes.len(), 1);
    let kinds: Vec<Kind> = deps.notifier.sent().iter().map(|n| n.kind).collect();
    assert_eq!(kinds, [Kind::PaymentFailed, Kind::DisputeOpened, Kind::TrialWillEnd]);
    let failed = deps.notifier.sent()[0].clone();
    assert_eq!(failed.account_id, "acct_sample");
    assert!(failed.id.starts_with("payment_failed:in_"));
}

#[tokio::test]
async fn sqs_batch_sample_goes_through_the_lambda_entry_with_one_stripe_read_per_customer() {
    let deps = deps().await;
    let raw = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/sqs-batch.json")).unwrap();
    let batch: SqsEvent = serde_json::from_str(&raw).unwrap();

    let response = handle(&deps, LambdaEvent::new(batch, Context::default())).await.unwrap();

    assert!(response.batch_item_failures.is_empty());
    assert_eq!(reads(&deps.billing), 1, "one snapshot per customer per batch");
}

#[tokio::test]
async fn a_poison_message_is_recorded_and_holds_nothing_back() {
    let deps = deps().await;
    let good = |event_type: &str| Record {
        message_id: event_type.into(),
        group: sample_customer(),
        body: sample(event_type),
        attempt: 1,
    };
    let poison = |id: &str, body: &str| Record {
        message_id: id.into(),
        group: sample_customer(),
        body: body.into(),
        attempt: 1,
    };
    let batch = vec![
        good("invoice.paid"),
        poison("poison", "{\"not\": \"an event\"}"),
        poison("named-poison", r#"{"id": "evt_poison", "type": "invoice.paid", "created": "yesterday"}"#),
        good("charge.refunded"),
        good("invoice.payment_failed"),
    ];

    let retry = process(&deps, &batch, &Never).await;
    let again = process(&deps, &batch, &Never).await;

    assert!(retry.is_empty(), "nothing is retried: {retry:?}");
    assert!(again.is_empty());
    for event_type in ["invoice.paid", "charge.refunded", "invoice.payment_failed"] {
        let id =
            serde_json::from_str::<serde_json::Value>(&sample(event_type)).unwrap()["id"].as_str().unwrap().to_owned();
        assert!(deps.store.processed(&id).await.unwrap().is_some(), "{event_type} after the poison was applied");
    }
    let unnamed = deps.store.failure("message:poison").await.unwrap().expect("the poison is recorded");
    assert!(unnamed.error.starts_with("malformed event"), "{unnamed:?}");
    assert_eq!(unnamed.source, "worker");
    assert!(deps.store.failure("evt_poison").await.unwrap().is_some(), "recorded under its event id");
}

#[tokio::test]
async fn records_not_started_before_the_deadline_are_retried() {
    let deps = deps().await;
    let record = Record { message_id: "m1".into(), group: sample_customer(), body: sample("invoice.paid"), attempt: 1 };
    let passed = tollgate::app::Before::at(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1));

    let retry = process(&deps, std::slice::from_ref(&record), &passed).await;

    assert_eq!(retry, ["m1"]);
    assert!(deps.billing.calls().is_empty(), "nothing was started");
}

/// The sample `checkout.session.completed` as a paid credit pack's session (event `id`).
fn pack_session(id: &str, event_type: &str, payment_status: &str) -> String {
    let mut event: serde_json::Value = serde_json::from_str(&sample("checkout.session.completed")).unwrap();
    event["id"] = id.into();
    event["type"] = event_type.into();
    let object = &mut event["data"]["object"];
    object["id"] = "cs_test_pack_1".into();
    object["mode"] = "payment".into();
    object["payment_status"] = payment_status.into();
    object["subscription"] = serde_json::Value::Null;
    object["payment_intent"] = "pi_pack_1".into();
    object["metadata"]["tollgate_pack"] = "credits_1000".into();
    event.to_string()
}

/// The sample `charge.refunded` as the refund of the pack's charge (`refunded`: in full).
fn pack_refund(id: &str, refunded: bool) -> String {
    let mut event: serde_json::Value = serde_json::from_str(&sample("charge.refunded")).unwrap();
    event["id"] = id.into();
    event["data"]["object"]["payment_intent"] = "pi_pack_1".into();
    event["data"]["object"]["refunded"] = refunded.into();
    event.to_string()
}

#[tokio::test]
async fn a_paid_pack_is_granted_once_and_a_full_refund_removes_what_is_left() {
    use tollgate::ports::credits::{CreditStore, EntryKind};
    let deps = deps().await;
    let account = AccountId::parse("acct_sample").unwrap();
    let balance = |deps: &EventDeps<MemoryStore, FakeBilling, Outbox>| {
        let (store, account) = (deps.store.clone(), account.clone());
        async move {
            let state = store.state(&account).await.unwrap();
            tollgate::domain::credits::balance(&state.grants, NOW).purchased
        }
    };

    apply(&deps, &pack_session("evt_unpaid", "checkout.session.completed", "unpaid"), &mut Snapshots::new())
        .await
        .unwrap();
    apply(&deps, &pack_session("evt_failed", "checkout.session.async_payment_failed", "unpaid"), &mut Snapshots::new())
        .await
        .unwrap();
    let unpaid = balance(&deps).await;
    for (id, event_type) in [
        ("evt_paid", "checkout.session.async_payment_succeeded"),
        ("evt_paid_again", "checkout.session.async_payment_succeeded"),
        ("evt_completed_paid", "checkout.session.completed"),
    ] {
        apply(&deps, &pack_session(id, event_type, "paid"), &mut Snapshots::new()).await.unwrap();
    }
    let granted = balance(&deps).await;
    let spent = tollgate::app::usage::UsageDeps {
        store: deps.store.clone(),
        notifier: Outbox::default(),
        settings: settings(&FixedClock::at(NOW)),
    };
    let body = tollgate::app::credits::ConsumeRequest {
        event: Some("ai_inference".into()),
        quantity: Some(serde_json::json!(4)),
        idempotency_key: Some("k".into()),
    };
    tollgate::app::credits::consume(&spent, &account, "ops", body).await.unwrap();
    apply(&deps, &pack_refund("evt_partial", false), &mut Snapshots::new()).await.unwrap();
    let after_partial = balance(&deps).await;
    apply(&deps, &pack_refund("evt_refund", true), &mut Snapshots::new()).await.unwrap();
    apply(&deps, &pack_refund("evt_refund_again", true), &mut Snapshots::new()).await.unwrap();

    assert_eq!(unpaid, 0, "nothing is granted before the payment succeeds");
    assert_eq!(granted, 1_000, "granted once, whichever of its events arrives, however often");
    assert_eq!(after_partial, 900, "a partial refund leaves the pack");
    assert_eq!(balance(&deps).await, 0, "a refunded pack leaves no spendable credits");
    let entries = deps.store.ledger(&account, 10, None).await.unwrap().entries;
    let reversal = entries.iter().find(|e| e.kind == EntryKind::Reversal).unwrap();
    assert_eq!((reversal.credits, reversal.quantity), (-900, Some(100)), "what was spent is reported, not clawed back");
    assert_eq!(entries.iter().filter(|e| e.kind == EntryKind::Reversal).count(), 1);
}

#[tokio::test]
async fn a_dispute_before_any_event_naming_the_account_links_the_customer_from_its_subscription() {
    // The customer is linked by no checkout of Tollgate's (made in the Dashboard, say); only its
    // subscription's metadata names the account, and the dispute arrives first.
    let deps = EventDeps {
        store: MemoryStore::new(),
        billing: stripe(),
        notifier: Outbox::default(),
        settings: settings(&FixedClock::at(NOW)),
    };
    let account = AccountId::parse("acct_sample").unwrap();

    let outcome = apply(&deps, &sample("charge.dispute.created"), &mut Snapshots::new()).await.unwrap();

    assert_eq!(outcome, Outcome::Applied);
    assert_eq!(deps.store.account_for_customer(&sample_customer()).await.unwrap(), Some(account.clone()));
    let projection = deps.store.subscription(&account).await.unwrap().unwrap();
    assert_eq!(projection.open_disputes.len(), 1, "the dispute's fact is kept, not lost to the order");
}
