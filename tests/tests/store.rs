//! The DynamoDB store against a real DynamoDB API (moto's server on loopback): conditional
//! writes, transactions that write all or nothing, versions, and processed-event records.

mod common;

use aws_sdk_dynamodb::types::AttributeValue;
use std::sync::Arc;
use tollgate::model::{AccountId, Interval, Projection, SubscriptionStatus};
use tollgate::store::{
    Account, AccountStore, ApplyOutcome, DynamoStore, EVENT_RECORD_TTL_DAYS, EventLog, ProcessedEvent, StoreError,
    SubscriptionStore,
};

const NOW: i64 = 1_795_273_200;

async fn store(test: &str) -> DynamoStore {
    let (aws, resources) = common::local(test).await;
    DynamoStore::new(tollgate::aws::dynamodb(&aws), resources.table)
}

fn account(id: &str, customer: &str) -> Account {
    Account { account_id: AccountId::parse(id).unwrap(), customer_id: customer.into(), created_at: NOW }
}

fn projection(id: &str, version: i64, status: SubscriptionStatus) -> Projection {
    Projection {
        account_id: AccountId::parse(id).unwrap(),
        customer_id: "cus_1".into(),
        subscription_id: Some("sub_1".into()),
        status,
        plan: "pro".into(),
        price_lookup_key: Some("pro_monthly".into()),
        interval: Some(Interval::Month),
        current_period_start: Some(NOW),
        current_period_end: Some(NOW + 30 * 86_400),
        trial_end: None,
        cancel_at_period_end: false,
        grace_until: None,
        open_disputes: vec![],
        refunded_period_end: None,
        entitlements: vec![],
        version,
    }
}

fn event(id: &str) -> ProcessedEvent {
    ProcessedEvent {
        event_id: id.into(),
        event_type: "customer.subscription.updated".into(),
        created: NOW,
        outcome: "applied".into(),
        processed_at: NOW,
    }
}

#[tokio::test]
async fn second_link_of_an_account_is_a_conflict() {
    let store = store("link").await;
    store.link_customer(&account("acct_a", "cus_a")).await.unwrap();

    let second = store.link_customer(&account("acct_a", "cus_other")).await;

    assert!(matches!(second, Err(StoreError::Conflict(_))), "{second:?}");
    let stored = store.account(&AccountId::parse("acct_a").unwrap()).await.unwrap().unwrap();
    assert_eq!(stored.customer_id, "cus_a");
    assert_eq!(store.account_for_customer("cus_a").await.unwrap().unwrap().as_str(), "acct_a");
    assert_eq!(store.account_for_customer("cus_other").await.unwrap(), None);
}

#[tokio::test]
async fn transaction_with_one_failed_condition_writes_nothing() {
    let store = store("txn").await;
    store.link_customer(&account("acct_a", "cus_shared")).await.unwrap();

    // acct_b's profile would be new, but the customer index item exists: the whole
    // transaction must fail, leaving no profile for acct_b.
    let result = store.link_customer(&account("acct_b", "cus_shared")).await;

    assert!(matches!(result, Err(StoreError::Conflict(_))), "{result:?}");
    assert_eq!(store.account(&AccountId::parse("acct_b").unwrap()).await.unwrap(), None);
    assert_eq!(store.account_for_customer("cus_shared").await.unwrap().unwrap().as_str(), "acct_a");
}

#[tokio::test]
async fn projection_round_trips_and_only_newer_versions_land() {
    let store = store("version").await;
    let id = AccountId::parse("acct_v").unwrap();
    let mut first = projection("acct_v", 200, SubscriptionStatus::PastDue);
    first.grace_until = Some(NOW + 3 * 86_400);
    store.put_subscription(&first).await.unwrap();

    let older = store.put_subscription(&projection("acct_v", 100, SubscriptionStatus::Active)).await;
    let equal = store.put_subscription(&projection("acct_v", 200, SubscriptionStatus::Active)).await;

    assert!(matches!(older, Err(StoreError::Conflict(_))));
    assert!(matches!(equal, Err(StoreError::Conflict(_))));
    assert_eq!(store.subscription(&id).await.unwrap().unwrap(), first);
    store.put_subscription(&projection("acct_v", 300, SubscriptionStatus::Active)).await.unwrap();
    assert_eq!(store.subscription(&id).await.unwrap().unwrap().status, SubscriptionStatus::Active);
}

#[tokio::test]
async fn event_and_its_effect_commit_together_once() {
    let store = store("apply").await;
    let id = AccountId::parse("acct_e").unwrap();

    let first =
        store.apply(&event("evt_1"), Some(&projection("acct_e", 10, SubscriptionStatus::Active)), None).await.unwrap();
    let again = store
        .apply(&event("evt_1"), Some(&projection("acct_e", 20, SubscriptionStatus::Canceled)), None)
        .await
        .unwrap();

    assert_eq!(first, ApplyOutcome::Applied);
    assert_eq!(again, ApplyOutcome::Duplicate);
    let stored = store.subscription(&id).await.unwrap().unwrap();
    assert_eq!((stored.version, stored.status), (10, SubscriptionStatus::Active));
    assert_eq!(store.processed("evt_1").await.unwrap().unwrap(), event("evt_1"));
}

#[tokio::test]
async fn older_snapshot_counts_the_event_as_processed_without_effect() {
    let store = store("stale").await;
    let id = AccountId::parse("acct_s").unwrap();
    store.apply(&event("evt_new"), Some(&projection("acct_s", 50, SubscriptionStatus::Canceled)), None).await.unwrap();

    let outcome = store
        .apply(&event("evt_old"), Some(&projection("acct_s", 40, SubscriptionStatus::Active)), None)
        .await
        .unwrap();

    assert_eq!(outcome, ApplyOutcome::Stale);
    assert_eq!(store.subscription(&id).await.unwrap().unwrap().status, SubscriptionStatus::Canceled);
    assert!(store.processed("evt_old").await.unwrap().is_some());
    let replay = store
        .apply(&event("evt_old"), Some(&projection("acct_s", 40, SubscriptionStatus::Active)), None)
        .await
        .unwrap();
    assert_eq!(replay, ApplyOutcome::Duplicate);
}

#[tokio::test]
async fn processed_event_records_expire_after_stripes_retention() {
    let (aws, resources) = common::local("ttl").await;
    let store = DynamoStore::new(tollgate::aws::dynamodb(&aws), resources.table.clone());
    store.apply(&event("evt_ttl"), None, None).await.unwrap();

    let item = tollgate::aws::dynamodb(&aws)
        .get_item()
        .table_name(&resources.table)
        .key("pk", AttributeValue::S("EVENT#evt_ttl".into()))
        .key("sk", AttributeValue::S("EVENT".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();

    let expires: i64 = item["expires_at"].as_n().unwrap().parse().unwrap();
    assert_eq!(expires, NOW + EVENT_RECORD_TTL_DAYS * 86_400);
    const { assert!(EVENT_RECORD_TTL_DAYS >= 31) };
}

#[tokio::test]
async fn twenty_workers_applying_one_event_write_its_effect_once() {
    let store = Arc::new(store("race").await);

    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .apply(&event("evt_race"), Some(&projection("acct_r", 1000 + i, SubscriptionStatus::Active)), None)
                    .await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap().unwrap());
    }

    assert_eq!(outcomes.iter().filter(|o| **o == ApplyOutcome::Applied).count(), 1, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| **o == ApplyOutcome::Duplicate).count(), 19, "{outcomes:?}");
}

#[tokio::test]
async fn unreachable_store_is_unavailable_not_a_conflict() {
    let aws = tollgate_dev::local::sdk_config("http://127.0.0.1:9").await;
    let store = DynamoStore::new(tollgate::aws::dynamodb(&aws), "nowhere");

    let err = store.subscription(&AccountId::parse("acct_x").unwrap()).await.unwrap_err();

    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn facts_commit_with_their_event_and_a_stale_revision_writes_nothing() {
    let store = store("facts").await;
    let account = AccountId::parse("acct_f").unwrap();
    let mut facts = store.facts(&account).await.unwrap();
    facts.apply(&tollgate::facts::Fact::DisputeOpened { id: "dp_1".into() }, 3);
    let state = projection("acct_f", 10, SubscriptionStatus::Active);

    let first = store.apply(&event("evt_dispute"), Some(&state), Some((&account, &facts))).await.unwrap();
    let stale = store.apply(&event("evt_other"), None, Some((&account, &facts))).await;

    assert_eq!(first, ApplyOutcome::Applied);
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    assert!(store.processed("evt_other").await.unwrap().is_none(), "the losing event was not recorded");
    let read = store.subscription(&account).await.unwrap().unwrap();
    assert_eq!(read.open_disputes, ["dp_1"]);
    assert_eq!(store.facts(&account).await.unwrap().rev, 1);
}
