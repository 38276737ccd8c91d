//! The worker against the sample events in `events/`: every covered Stripe event type is
//! processed, its fact and notification come out right, the SQS batch sample goes through the
//! Lambda entry, and one failing record does not redo its batch-mates' work.

use async_trait::async_trait;
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Context, LambdaEvent};
use std::sync::{Arc, Mutex};
use tollgate::billing::{
    Billing, BillingError, CheckoutRequest, CheckoutSession, Page, RemoteEvent, RemoteSubscription,
};
use tollgate::clock::FixedClock;
use tollgate::model::{AccountId, Interval, SubscriptionStatus};
use tollgate::notify::{Kind, Notification, Notifier};
use tollgate::plans::Catalogue;
use tollgate::queue::QueueError;
use tollgate::store::{Account, AccountStore, EventLog, MemoryStore, SubscriptionStore};
use webhook_worker::{Deps, Outcome, Record, Snapshots, apply, handle, process};

const NOW: i64 = 1_795_273_300;

/// Stripe answering one active `pro` subscription for any customer, counting reads.
#[derive(Default)]
struct OneSubscription {
    reads: Mutex<u32>,
}

#[async_trait]
impl Billing for OneSubscription {
    async fn create_customer(&self, _: &AccountId, _: &str) -> Result<String, BillingError> {
        Err(BillingError::Unavailable("not used by the worker".into()))
    }
    async fn charge_customer(&self, _: &str) -> Result<Option<String>, BillingError> {
        Ok(Some(sample_customer()))
    }
    async fn subscriptions(&self, customer: &str) -> Result<Vec<RemoteSubscription>, BillingError> {
        *self.reads.lock().unwrap() += 1;
        Ok(vec![RemoteSubscription {
            id: "sub_sample".into(),
            customer_id: customer.into(),
            status: SubscriptionStatus::PastDue,
            price_lookup_key: Some("pro_monthly".into()),
            interval: Some(Interval::Month),
            item_id: Some("si_sample".into()),
            current_period_start: Some(NOW - 86_400),
            current_period_end: Some(NOW + 29 * 86_400),
            trial_end: None,
            cancel_at_period_end: false,
            created: NOW - 86_400,
            account_hint: Some("acct_sample".into()),
        }])
    }
    async fn events_page(&self, _: &[&str], _: i64, _: Option<&str>) -> Result<Page<RemoteEvent>, BillingError> {
        Err(BillingError::Unavailable("not used by the worker".into()))
    }
    async fn subscriptions_page(&self, _: Option<&str>) -> Result<Page<RemoteSubscription>, BillingError> {
        Err(BillingError::Unavailable("not used by the worker".into()))
    }
    async fn create_checkout_session(&self, _: &CheckoutRequest, _: &str) -> Result<CheckoutSession, BillingError> {
        Err(BillingError::Unavailable("not used by the worker".into()))
    }
    async fn create_portal_session(&self, _: &str, _: &str, _: &str) -> Result<String, BillingError> {
        Err(BillingError::Unavailable("not used by the worker".into()))
    }
    async fn change_price(&self, _: &str, _: &str, _: &str, _: &str) -> Result<RemoteSubscription, BillingError> {
        Err(BillingError::Unavailable("not used by the worker".into()))
    }
    async fn cancel(&self, _: &str, _: bool, _: &str) -> Result<RemoteSubscription, BillingError> {
        Err(BillingError::Unavailable("not used by the worker".into()))
    }
}

#[derive(Default)]
struct Outbox(Mutex<Vec<Notification>>);

#[async_trait]
impl Notifier for Outbox {
    async fn notify(&self, notification: &Notification) -> Result<(), QueueError> {
        self.0.lock().unwrap().push(notification.clone());
        Ok(())
    }
}

fn sample(event_type: &str) -> String {
    std::fs::read_to_string(format!("{}/../../events/stripe/{event_type}.json", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The customer of the samples (all made for one account).
fn sample_customer() -> String {
    let event: serde_json::Value = serde_json::from_str(&sample("customer.subscription.updated")).unwrap();
    event["data"]["object"]["customer"].as_str().unwrap().to_owned()
}

/// Worker dependencies whose store already links `acct_sample` to the samples' customer, as
/// the completed checkout did.
async fn deps() -> Deps<MemoryStore, OneSubscription, Outbox> {
    let store = MemoryStore::new();
    let link = Account {
        account_id: AccountId::parse("acct_sample").unwrap(),
        customer_id: sample_customer(),
        created_at: NOW,
    };
    store.link_customer(&link).await.unwrap();
    Deps {
        store,
        billing: OneSubscription::default(),
        notifier: Outbox::default(),
        catalogue: Catalogue::builtin().unwrap(),
        clock: Arc::new(FixedClock::at(NOW)),
        grace_days: 3,
    }
}

#[tokio::test]
async fn every_covered_event_type_is_processed_once() {
    for event_type in tollgate::events::handled_types() {
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
    let kinds: Vec<Kind> = deps.notifier.0.lock().unwrap().iter().map(|n| n.kind).collect();
    assert_eq!(kinds, [Kind::PaymentFailed, Kind::DisputeOpened, Kind::TrialWillEnd]);
    let failed = deps.notifier.0.lock().unwrap()[0].clone();
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
    assert_eq!(*deps.billing.reads.lock().unwrap(), 1, "one snapshot per customer per batch");
}

#[tokio::test]
async fn failing_record_is_retried_alone_and_its_group_waits() {
    let deps = deps().await;
    let good =
        |event_type: &str| Record { message_id: event_type.into(), group: "cus_a".into(), body: sample(event_type) };
    let batch = vec![
        good("invoice.paid"),
        Record { message_id: "poison".into(), group: "cus_b".into(), body: "{\"not\": \"an event\"}".into() },
        Record { message_id: "after-poison".into(), group: "cus_b".into(), body: sample("charge.refunded") },
        good("invoice.payment_failed"),
    ];

    let failed = process(&deps, &batch).await;
    let notified = deps.notifier.0.lock().unwrap().len();
    let retried = process(&deps, &[good("invoice.paid"), good("invoice.payment_failed")]).await;

    assert_eq!(failed, ["poison", "after-poison"]);
    assert!(retried.is_empty());
    assert_eq!(deps.notifier.0.lock().unwrap().len(), notified, "batch-mates were not redone");
}
