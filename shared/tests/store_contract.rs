//! The store contract: every behaviour the store ports promise, written once, generic over the
//! store, and run against both adapters: `MemoryStore` and `DynamoStore` on the local DynamoDB
//! API (moto's server on loopback, started single-threaded by `make test` so that its
//! transactions are isolated as DynamoDB's are). A divergence between the two stores is a
//! failing test here.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use std::sync::Arc;
use tollgate::model::{AccountId, Projection, SubscriptionStatus};
use tollgate::ratelimit::Limit;
use tollgate::store::{
    Account, ApplyOutcome, DynamoStore, EVENT_RECORD_TTL_DAYS, PendingCheckout, ProcessedEvent, RateOutcome, Store,
    StoreError, SyncCursor, SyncOutcome,
};
use tollgate::store::{EventLog, SubscriptionStore};
use tollgate::testing::MemoryStore;

const NOW: i64 = 1_795_273_200;

fn id(raw: &str) -> AccountId {
    AccountId::parse(raw).unwrap()
}

fn account(raw: &str, customer: &str) -> Account {
    Account { account_id: id(raw), customer_id: customer.into(), created_at: NOW }
}

fn projection(raw: &str, version: i64, status: SubscriptionStatus) -> Projection {
    Projection {
        customer_id: "cus_1".into(),
        subscription_id: Some("sub_1".into()),
        current_period_start: Some(NOW),
        current_period_end: Some(NOW + 30 * 86_400),
        status,
        version,
        ..tollgate::testing::projection(raw)
    }
}

fn event(raw: &str) -> ProcessedEvent {
    ProcessedEvent {
        event_id: raw.into(),
        event_type: "customer.subscription.updated".into(),
        created: NOW,
        outcome: "applied".into(),
        processed_at: NOW,
    }
}

fn pending(request_key: &str, nonce: &str, valid_until: i64) -> PendingCheckout {
    PendingCheckout { request_key: request_key.into(), nonce: nonce.into(), session_id: None, url: None, valid_until }
}

/// The behaviours, each a function of a fresh store.
mod contract {
    use super::*;

    pub async fn second_link_of_an_account_is_a_conflict(store: impl Store) {
        store.link_customer(&account("acct_a", "cus_a")).await.unwrap();

        let second = store.link_customer(&account("acct_a", "cus_other")).await;

        assert!(matches!(second, Err(StoreError::Conflict(_))), "{second:?}");
        assert_eq!(store.account(&id("acct_a")).await.unwrap().unwrap().customer_id, "cus_a");
        assert_eq!(store.account_for_customer("cus_a").await.unwrap(), Some(id("acct_a")));
        assert_eq!(store.account_for_customer("cus_other").await.unwrap(), None);
    }

    pub async fn transaction_with_one_failed_condition_writes_nothing(store: impl Store) {
        store.link_customer(&account("acct_a", "cus_shared")).await.unwrap();

        // acct_b's profile would be new, but the customer index item exists: the whole
        // transaction must fail, leaving no profile for acct_b.
        let result = store.link_customer(&account("acct_b", "cus_shared")).await;

        assert!(matches!(result, Err(StoreError::Conflict(_))), "{result:?}");
        assert_eq!(store.account(&id("acct_b")).await.unwrap(), None);
        assert_eq!(store.account_for_customer("cus_shared").await.unwrap(), Some(id("acct_a")));
    }

    pub async fn projection_round_trips_and_only_newer_versions_land(store: impl Store) {
        let mut first = projection("acct_v", 200, SubscriptionStatus::PastDue);
        first.grace_until = Some(NOW + 3 * 86_400);
        store.put_subscription(&first).await.unwrap();

        let older = store.put_subscription(&projection("acct_v", 100, SubscriptionStatus::Active)).await;
        let equal = store.put_subscription(&projection("acct_v", 200, SubscriptionStatus::Active)).await;

        assert!(matches!(older, Err(StoreError::Conflict(_))));
        assert!(matches!(equal, Err(StoreError::Conflict(_))));
        assert_eq!(store.subscription(&id("acct_v")).await.unwrap().unwrap(), first);
        store.put_subscription(&projection("acct_v", 300, SubscriptionStatus::Active)).await.unwrap();
        assert_eq!(store.subscription(&id("acct_v")).await.unwrap().unwrap().status, SubscriptionStatus::Active);
    }

    pub async fn event_and_its_effect_commit_together_once(store: impl Store) {
        let first = store
            .apply(&event("evt_1"), Some(&projection("acct_e", 10, SubscriptionStatus::Active)), None)
            .await
            .unwrap();
        let again = store
            .apply(&event("evt_1"), Some(&projection("acct_e", 20, SubscriptionStatus::Canceled)), None)
            .await
            .unwrap();

        assert_eq!(first, ApplyOutcome::Applied);
        assert_eq!(again, ApplyOutcome::Duplicate);
        let stored = store.subscription(&id("acct_e")).await.unwrap().unwrap();
        assert_eq!((stored.version, stored.status), (10, SubscriptionStatus::Active));
        assert_eq!(store.processed("evt_1").await.unwrap().unwrap(), event("evt_1"));
    }

    pub async fn older_snapshot_counts_the_event_as_processed_without_effect(store: impl Store) {
        store
            .apply(&event("evt_new"), Some(&projection("acct_s", 50, SubscriptionStatus::Canceled)), None)
            .await
            .unwrap();

        let outcome = store
            .apply(&event("evt_old"), Some(&projection("acct_s", 40, SubscriptionStatus::Active)), None)
            .await
            .unwrap();

        assert_eq!(outcome, ApplyOutcome::Stale);
        assert_eq!(store.subscription(&id("acct_s")).await.unwrap().unwrap().status, SubscriptionStatus::Canceled);
        assert!(store.processed("evt_old").await.unwrap().is_some());
        let replay = store
            .apply(&event("evt_old"), Some(&projection("acct_s", 40, SubscriptionStatus::Active)), None)
            .await
            .unwrap();
        assert_eq!(replay, ApplyOutcome::Duplicate);
    }

    pub async fn facts_commit_with_their_event_and_a_stale_revision_writes_nothing(store: impl Store) {
        let account = id("acct_f");
        let mut facts = store.facts(&account).await.unwrap();
        facts.apply(&tollgate::facts::Fact::DisputeOpened { id: "dp_1".into() }, 3);
        let state = projection("acct_f", 10, SubscriptionStatus::Active);

        let first = store.apply(&event("evt_dispute"), Some(&state), Some((&account, &facts))).await.unwrap();
        let stale = store.apply(&event("evt_other"), None, Some((&account, &facts))).await;

        assert_eq!(first, ApplyOutcome::Applied);
        assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
        assert!(store.processed("evt_other").await.unwrap().is_none(), "the losing event was not recorded");
        assert_eq!(store.subscription(&account).await.unwrap().unwrap().open_disputes, ["dp_1"]);
        assert_eq!(store.facts(&account).await.unwrap().rev, 1);
    }

    pub async fn twenty_workers_applying_one_event_write_its_effect_once(store: impl Store + 'static) {
        let store = Arc::new(store);

        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let state = projection("acct_r", 1000 + i, SubscriptionStatus::Active);
                    store.apply(&event("evt_race"), Some(&state), None).await
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

    pub async fn deleting_an_account_removes_all_its_items_and_is_idempotent(store: impl Store) {
        let acct = id("acct_d");
        store.link_customer(&account("acct_d", "cus_d")).await.unwrap();
        let mut facts = store.facts(&acct).await.unwrap();
        facts.apply(&tollgate::facts::Fact::DisputeOpened { id: "dp_d".into() }, 3);
        let state = projection("acct_d", 10, SubscriptionStatus::Active);
        store.apply(&event("evt_d"), Some(&state), Some((&acct, &facts))).await.unwrap();
        store.reserve_checkout(&acct, &pending("req_d", "n1", NOW + 600), NOW).await.unwrap();
        store.link_customer(&account("acct_other", "cus_other")).await.unwrap();

        store.delete_account_data(&acct, Some("cus_d")).await.unwrap();
        store.delete_account_data(&acct, Some("cus_d")).await.unwrap();

        assert_eq!(store.account(&acct).await.unwrap(), None);
        assert_eq!(store.account_for_customer("cus_d").await.unwrap(), None);
        assert_eq!(store.subscription(&acct).await.unwrap(), None);
        assert_eq!(store.facts(&acct).await.unwrap(), tollgate::facts::Facts::default(), "facts are deleted too");
        assert_eq!(store.pending_checkout(&acct, "req_d", NOW).await.unwrap(), None);
        assert!(store.processed("evt_d").await.unwrap().is_some(), "the event log is not the account's");
        assert_eq!(store.account_for_customer("cus_other").await.unwrap(), Some(id("acct_other")));
    }

    pub async fn a_checkout_reservation_is_taken_once_until_it_expires(store: impl Store) {
        let account = id("acct_c");
        store.reserve_checkout(&account, &pending("req", "n1", NOW + 600), NOW).await.unwrap();

        let twin = store.reserve_checkout(&account, &pending("req", "n2", NOW + 600), NOW).await;
        let other_request = store.reserve_checkout(&account, &pending("req_2", "n3", NOW + 600), NOW).await;
        let after_expiry = store.reserve_checkout(&account, &pending("req", "n4", NOW + 1200), NOW + 600).await;

        assert!(matches!(twin, Err(StoreError::Conflict(_))), "{twin:?}");
        assert!(other_request.is_ok());
        assert!(after_expiry.is_ok(), "{after_expiry:?}");
        assert_eq!(store.pending_checkout(&account, "req", NOW + 601).await.unwrap().unwrap().nonce, "n4");
        assert_eq!(store.pending_checkout(&account, "req", NOW + 1200).await.unwrap(), None, "expired");
    }

    pub async fn only_the_reservations_owner_completes_it(store: impl Store) {
        let account = id("acct_o");
        store.reserve_checkout(&account, &pending("req", "mine", NOW + 600), NOW).await.unwrap();
        let done = PendingCheckout {
            session_id: Some("cs_1".into()),
            url: Some("https://checkout/cs_1".into()),
            ..pending("req", "mine", NOW + 600)
        };

        let theirs =
            store.complete_checkout(&account, &PendingCheckout { nonce: "theirs".into(), ..done.clone() }).await;
        store.complete_checkout(&account, &done).await.unwrap();

        assert!(matches!(theirs, Err(StoreError::Conflict(_))), "{theirs:?}");
        assert_eq!(store.pending_checkout(&account, "req", NOW).await.unwrap(), Some(done));
    }

    pub async fn a_rate_window_allows_its_limit_then_says_when_to_retry(store: impl Store) {
        let account = id("acct_w");
        let limit = Limit { limit: 3, window_ms: 60_000 };
        let now_ms = NOW * 1000;
        for i in 0..3 {
            assert_eq!(store.take_rate(&account, "checkout", limit, now_ms + i).await.unwrap(), RateOutcome::Allowed);
        }

        let fourth = store.take_rate(&account, "checkout", limit, now_ms + 10_000).await.unwrap();
        let other_name = store.take_rate(&account, "other", limit, now_ms + 10_000).await.unwrap();
        let later = store.take_rate(&account, "checkout", limit, now_ms + 60_000).await.unwrap();

        assert_eq!(fourth, RateOutcome::Limited { retry_after_ms: 50_000 });
        assert_eq!(other_name, RateOutcome::Allowed);
        assert_eq!(later, RateOutcome::Allowed);
    }

    pub async fn parallel_takers_never_exceed_a_rate_limit(store: impl Store + 'static) {
        let store = Arc::new(store);
        let limit = Limit { limit: 5, window_ms: 60_000 };

        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.take_rate(&id("acct_p"), "checkout", limit, NOW * 1000 + i).await })
            })
            .collect();
        let mut allowed = 0;
        for task in tasks {
            if task.await.unwrap().unwrap() == RateOutcome::Allowed {
                allowed += 1;
            }
        }

        assert!(allowed <= 5, "{allowed} allowed of a limit of 5");
    }

    pub async fn sync_cursor_and_outcome_round_trip(store: impl Store) {
        assert_eq!(store.cursor().await.unwrap(), None);
        assert_eq!(store.outcome().await.unwrap(), None);
        let cursor =
            SyncCursor { created: NOW, ids_at_created: vec!["evt_1".into()], reconcile_after: Some("sub_9".into()) };
        let outcome = SyncOutcome { mode: "full".into(), started_at: NOW, replayed: 3, ..SyncOutcome::default() };

        store.save_cursor(&cursor).await.unwrap();
        store.save_outcome(&outcome).await.unwrap();

        assert_eq!(store.cursor().await.unwrap(), Some(cursor));
        assert_eq!(store.outcome().await.unwrap(), Some(outcome));
    }
}

/// Runs every contract behaviour against the stores `$make` makes (an async fn of the test's
/// name answering a fresh store).
macro_rules! contract_suite {
    ($adapter:ident, $make:path) => {
        mod $adapter {
            use super::contract;

            contract_suite!(@tests $make;
                second_link_of_an_account_is_a_conflict,
                transaction_with_one_failed_condition_writes_nothing,
                projection_round_trips_and_only_newer_versions_land,
                event_and_its_effect_commit_together_once,
                older_snapshot_counts_the_event_as_processed_without_effect,
                facts_commit_with_their_event_and_a_stale_revision_writes_nothing,
                twenty_workers_applying_one_event_write_its_effect_once,
                deleting_an_account_removes_all_its_items_and_is_idempotent,
                a_checkout_reservation_is_taken_once_until_it_expires,
                only_the_reservations_owner_completes_it,
                a_rate_window_allows_its_limit_then_says_when_to_retry,
                parallel_takers_never_exceed_a_rate_limit,
                sync_cursor_and_outcome_round_trip,
            );
        }
    };
    (@tests $make:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                contract::$name($make(stringify!($name)).await).await;
            }
        )*
    };
}

async fn memory_store(_test: &str) -> MemoryStore {
    MemoryStore::new()
}

/// The local DynamoDB API's SDK configuration; fails, saying how to start it, when nothing
/// listens there (such a test never passes silently).
async fn local_aws() -> aws_config::SdkConfig {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:4566".into());
    let address = endpoint.trim_start_matches("http://").trim_end_matches('/').to_owned();
    if tokio::net::TcpStream::connect(&address).await.is_err() {
        panic!("no local DynamoDB API at {endpoint}: run `make test`, or `make moto` and point AWS_ENDPOINT_URL at it");
    }
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "contract"))
        .load()
        .await
}

/// A fresh table (the template's key schema: `pk`, `sk`) for one test.
async fn dynamo_store(test: &str) -> DynamoStore {
    let client = aws_sdk_dynamodb::Client::new(&local_aws().await);
    let table = format!("contract-{test}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let key = |name: &str, kind| KeySchemaElement::builder().attribute_name(name).key_type(kind).build().unwrap();
    let attribute = |name: &str| {
        AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build().unwrap()
    };
    client
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("sk"))
        .send()
        .await
        .expect("creating a table on the local DynamoDB API");
    DynamoStore::new(client, table)
}

contract_suite!(memory, super::memory_store);
contract_suite!(dynamo, super::dynamo_store);

// What only the DynamoDB adapter can show: its items' attributes and its transport errors.

#[tokio::test]
async fn processed_event_records_expire_after_stripes_retention() {
    let store = dynamo_store("ttl").await;
    store.apply(&event("evt_ttl"), None, None).await.unwrap();

    let item = aws_sdk_dynamodb::Client::new(&local_aws().await)
        .get_item()
        .table_name(store.table())
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
async fn unreachable_store_is_unavailable_not_a_conflict() {
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url("http://127.0.0.1:9")
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "contract"))
        .load()
        .await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), "nowhere");

    let err = store.subscription(&id("acct_x")).await.unwrap_err();

    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}
