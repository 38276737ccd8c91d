//! The store contract: every behaviour the store ports promise, written once, generic over the
//! store, and run against both adapters: `MemoryStore` and `DynamoStore` on the local DynamoDB
//! API (moto's server on loopback, started single-threaded by `make test` so that its
//! transactions are isolated as DynamoDB's are). A divergence between the two stores is a
//! failing test here.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    Projection as IndexProjection, ProjectionType, ScalarAttributeType,
};
use std::sync::Arc;
use tollgate::adapters::dynamo::DynamoStore;
use tollgate::domain::apikeys::{ApiKey, KeyId, Mode, Scope, Secret};
use tollgate::domain::credits::{Draw, Grant, GrantKind};
use tollgate::domain::facts::Tombstone;
use tollgate::domain::facts::{Fact, Facts};
use tollgate::domain::invoices::Invoice;
use tollgate::domain::model::{AccountId, Projection, SubscriptionStatus};
use tollgate::domain::ratelimit::Limit;
use tollgate::ports::accounts::{Account, CustomerLink, Forgotten, Retirement};
use tollgate::ports::api_keys::ApiKeyStore;
use tollgate::ports::api_keys::KeyCreation;
use tollgate::ports::checkouts::PendingCheckout;
use tollgate::ports::credits::{
    CreditRecord, CreditRefund, DisputeStep, EntryKind, GrantWrite, LedgerEntry, LedgerPage, Spend, Spent,
};
use tollgate::ports::events::EventLog;
use tollgate::ports::events::{ApplyOutcome, EVENT_RECORD_TTL_DAYS, Effect, FailedEvent, ProcessedEvent};
use tollgate::ports::invoices::InvoicePage;
use tollgate::ports::meter::{CounterKey, MeterPosition, MeterReport, Settlement};
use tollgate::ports::rate::RateOutcome;
use tollgate::ports::subscriptions::SubscriptionStore;
use tollgate::ports::subscriptions::UsageCounter;
use tollgate::ports::sync::{SyncCursor, SyncOutcome};
use tollgate::ports::usage::{Consumed, Consumption, Refunded, Tally, UsageRecord};
use tollgate::ports::{Store, StoreError};
use tollgate::testing::MemoryStore;

const NOW: i64 = 1_795_273_200;

/// The usage window of the usage behaviours.
const USAGE_WINDOW: tollgate::domain::usage::Window =
    tollgate::domain::usage::Window { start: NOW - 86_400, end: NOW + 29 * 86_400 };

fn id(raw: &str) -> AccountId {
    AccountId::parse(raw).unwrap()
}

/// A purchased grant `id` of `credits` (expiring at `expires_at`).
fn grant(id: &str, credits: u64, expires_at: Option<i64>) -> Grant {
    let kind = if expires_at.is_some() { GrantKind::Subscription } else { GrantKind::Purchased };
    Grant {
        frozen: None,
        dispute_closed: false,
        reversed: false,
        actor: None,
        id: id.into(),
        kind,
        source: "test".into(),
        credits,
        remaining: credits,
        granted_at: NOW,
        expires_at,
        payment: None,
    }
}

fn grant_entry(id: &str, credits: u64) -> LedgerEntry {
    LedgerEntry {
        withheld: None,
        actor: None,
        id: format!("grant-{id}"),
        kind: EntryKind::Grant,
        at_ms: NOW * 1000,
        credits: credits as i64,
        event: None,
        quantity: None,
        grant: Some(id.into()),
    }
}

/// A consumption of `credits` drawn from `grant`, under `key`, at `at_ms`.
fn credit_spend(key: &str, grant: &str, credits: u64, at_ms: i64) -> (CreditRecord, LedgerEntry) {
    let entry = LedgerEntry {
        withheld: None,
        actor: None,
        id: format!("consume-{key}"),
        kind: EntryKind::Consumption,
        at_ms,
        credits: -(credits as i64),
        event: Some("api_call_basic".into()),
        quantity: Some(credits),
        grant: None,
    };
    let record = CreditRecord {
        request: format!("api_call_basic|{credits}"),
        event: "api_call_basic".into(),
        quantity: credits,
        cost: credits,
        draws: vec![Draw { grant: grant.into(), credits }],
        entry: entry.id.clone(),
        at_ms,
        refunded: false,
        split: None,
    };
    (record, entry)
}

fn account(raw: &str, customer: &str) -> Account {
    Account { account_id: id(raw), customer_id: customer.into(), created_at: NOW }
}

/// The customer of account `raw` in these tests.
fn customer_of(raw: &str) -> String {
    format!("cus_of_{raw}")
}

/// Links account `raw` to its customer (effects only land on linked customers).
async fn linked(store: &impl Store, raw: &str) {
    store.link_customer(&account(raw, &customer_of(raw))).await.unwrap();
}

/// Invoice `id` of account `raw`'s customer, created at `created`, in `status` after `attempts`
/// payment attempts.
fn invoice(raw: &str, id: &str, created: i64, status: &str, attempts: u64) -> Invoice {
    let object = serde_json::json!({
        "object": "invoice", "id": id, "number": format!("N-{id}"), "status": status, "attempt_count": attempts,
        "amount_due": 1900, "amount_paid": if status == "paid" { 1900 } else { 0 }, "currency": "usd",
        "period_start": created, "period_end": created + 86_400, "created": created,
        "hosted_invoice_url": format!("https://invoice.example/{id}"),
        "invoice_pdf": format!("https://invoice.example/{id}/pdf"),
    });
    Invoice::from_json(&object, &customer_of(raw)).unwrap()
}

fn projection(raw: &str, version: i64, status: SubscriptionStatus) -> Projection {
    Projection {
        customer_id: customer_of(raw),
        subscription_id: Some("sub_1".into()),
        current_period_start: Some(NOW),
        current_period_end: Some(NOW + 30 * 86_400),
        status,
        version,
        ..tollgate::testing::projection(raw)
    }
}

/// The effect of an event on `projection`'s account (and its facts, if any).
fn effect<'a>(projection: &'a Projection, facts: Option<&'a Facts>) -> Effect<'a> {
    Effect {
        account: &projection.account_id,
        customer: &projection.customer_id,
        retired: false,
        projection: Some(projection),
        facts,
    }
}

fn disputed(id: &str) -> Facts {
    let mut facts = Facts::default();
    facts.apply(&Fact::DisputeOpened { id: id.into() }, 3);
    facts
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
    PendingCheckout {
        request_key: request_key.into(),
        nonce: nonce.into(),
        session_id: None,
        url: None,
        valid_until,
        expires_at: None,
        plan: false,
    }
}

/// A new API key of account `raw` (its secret is dropped: the store never sees it).
fn api_key(raw: &str) -> ApiKey {
    api_key_with_secret(raw).1
}

fn api_key_with_secret(raw: &str) -> (Secret, ApiKey) {
    let secret = Secret::generate(Mode::Test).unwrap();
    let key = ApiKey {
        id: KeyId::generate().unwrap(),
        account_id: id(raw),
        hash: secret.hash(),
        prefix: secret.visible_prefix(),
        name: "ci".into(),
        scopes: [Scope::UsageRead, Scope::SubscriptionRead].into(),
        created_at: NOW,
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
        replaced_by: None,
        holds_slot: true,
    };
    (secret, key)
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
        linked(&store, "acct_v").await;
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
        linked(&store, "acct_e").await;
        let (active, canceled) = (
            projection("acct_e", 10, SubscriptionStatus::Active),
            projection("acct_e", 20, SubscriptionStatus::Canceled),
        );

        let first = store.apply(&event("evt_1"), Some(effect(&active, None))).await.unwrap();
        let again = store.apply(&event("evt_1"), Some(effect(&canceled, None))).await.unwrap();

        assert_eq!(first, ApplyOutcome::Applied);
        assert_eq!(again, ApplyOutcome::Duplicate);
        let stored = store.subscription(&id("acct_e")).await.unwrap().unwrap();
        assert_eq!((stored.version, stored.status), (10, SubscriptionStatus::Active));
        assert_eq!(store.processed("evt_1").await.unwrap().unwrap(), event("evt_1"));
    }

    pub async fn older_snapshot_counts_the_event_as_processed_without_effect(store: impl Store) {
        linked(&store, "acct_s").await;
        let (newer, older) = (
            projection("acct_s", 50, SubscriptionStatus::Canceled),
            projection("acct_s", 40, SubscriptionStatus::Active),
        );
        store.apply(&event("evt_new"), Some(effect(&newer, None))).await.unwrap();

        let outcome = store.apply(&event("evt_old"), Some(effect(&older, None))).await.unwrap();

        assert_eq!(outcome, ApplyOutcome::Stale);
        assert_eq!(store.subscription(&id("acct_s")).await.unwrap().unwrap().status, SubscriptionStatus::Canceled);
        assert!(store.processed("evt_old").await.unwrap().is_some());
        let replay = store.apply(&event("evt_old"), Some(effect(&older, None))).await.unwrap();
        assert_eq!(replay, ApplyOutcome::Duplicate);
    }

    pub async fn facts_commit_with_their_event_and_a_stale_revision_writes_nothing(store: impl Store) {
        linked(&store, "acct_f").await;
        let account = id("acct_f");
        let facts = disputed("dp_1");
        let state = projection("acct_f", 10, SubscriptionStatus::Active);
        let facts_only = Effect { projection: None, ..effect(&state, Some(&facts)) };

        let first = store.apply(&event("evt_dispute"), Some(effect(&state, Some(&facts)))).await.unwrap();
        let stale = store.apply(&event("evt_other"), Some(facts_only)).await;

        assert_eq!(first, ApplyOutcome::Applied);
        assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
        assert!(store.processed("evt_other").await.unwrap().is_none(), "the losing event was not recorded");
        assert_eq!(store.subscription(&account).await.unwrap().unwrap().open_disputes, ["dp_1"]);
        assert_eq!(store.facts(&account).await.unwrap().rev, 1);
    }

    pub async fn twenty_workers_applying_one_event_write_its_effect_once(store: impl Store + 'static) {
        linked(&store, "acct_r").await;
        let store = Arc::new(store);

        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let state = projection("acct_r", 1000 + i, SubscriptionStatus::Active);
                    store.apply(&event("evt_race"), Some(effect(&state, None))).await
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

    pub async fn deleting_an_account_keeps_only_its_tombstone_and_rate_windows(store: impl Store) {
        let acct = id("acct_d");
        linked(&store, "acct_d").await;
        let facts = disputed("dp_d");
        let state = projection("acct_d", 10, SubscriptionStatus::Active);
        store.apply(&event("evt_d"), Some(effect(&state, Some(&facts)))).await.unwrap();
        store.reserve_checkout(&acct, &pending("req_d", "n1", NOW + 600), NOW).await.unwrap();
        let one_a_minute = Limit { limit: 1, window_ms: 60_000 };
        store.take_rate(&acct, "checkout", one_a_minute, NOW * 1000).await.unwrap();
        store.grant(&acct, &grant("cs_d", 10, None), &grant_entry("cs_d", 10)).await.unwrap();
        assert!(store.put_invoice(&acct, &invoice("acct_d", "in_d", NOW, "paid", 1)).await.unwrap());
        linked(&store, "acct_other").await;
        assert!(store.put_invoice(&id("acct_other"), &invoice("acct_other", "in_o", NOW, "paid", 1)).await.unwrap());
        let tombstone = Tombstone {
            trial_used: true,
            disputes: ["dp_d".to_owned()].into(),
            deleted_at: Some(NOW),
            customers_retired: 1,
        };

        store.retire(&acct, Some(&customer_of("acct_d")), Retirement::AccountDeleted, &tombstone).await.unwrap();
        store.retire(&acct, Some(&customer_of("acct_d")), Retirement::AccountDeleted, &tombstone).await.unwrap();
        let forgotten = Forgotten { at: NOW };
        while store.purge(&acct, forgotten, 100).await.unwrap() > 0 {}

        let after = store.state(&acct).await.unwrap();
        assert_eq!((after.profile, after.subscription), (None, None));
        assert_eq!(after.facts, Facts::default(), "facts are deleted too");
        assert_eq!(after.tombstone, tombstone);
        assert!(after.grants.is_empty(), "the balance is forfeited with the account");
        assert_eq!(store.ledger(&acct, 10, None).await.unwrap(), LedgerPage::default(), "the ledger goes too");
        assert_eq!(store.invoices(&acct, 10, None).await.unwrap(), InvoicePage::default(), "the invoices go too");
        assert_eq!(store.invoices(&id("acct_other"), 10, None).await.unwrap().invoices.len(), 1, "not another's");
        assert_eq!(store.account_for_customer(&customer_of("acct_d")).await.unwrap(), None);
        assert_eq!(store.pending_checkout(&acct, "req_d", NOW).await.unwrap(), None);
        assert!(
            matches!(
                store.take_rate(&acct, "checkout", one_a_minute, NOW * 1000 + 1).await.unwrap(),
                RateOutcome::Limited { .. }
            ),
            "the rate window outlives the deletion"
        );
        assert!(store.processed("evt_d").await.unwrap().is_some(), "the event log is not the account's");
        assert_eq!(store.account_for_customer(&customer_of("acct_other")).await.unwrap(), Some(id("acct_other")));
    }

    pub async fn a_deletion_is_forgotten_at_once_and_purged_in_pages_keeping_the_rest(store: impl Store) {
        let acct = id("acct_purge");
        linked(&store, "acct_purge").await;
        let stamped = |n: i64, at: i64| {
            let mut g = grant(&format!("g{n}"), 1, None);
            g.granted_at = at;
            let mut entry = grant_entry(&format!("g{n}"), 1);
            entry.at_ms = at * 1000 + 999;
            (g, entry)
        };
        for n in 0..30 {
            let (g, entry) = stamped(n, NOW - n);
            store.grant(&acct, &g, &entry).await.unwrap();
        }
        let (late, late_entry) = stamped(99, NOW + 1);
        store.grant(&acct, &late, &late_entry).await.unwrap();
        for n in 0..40 {
            assert!(
                store
                    .put_invoice(&acct, &invoice("acct_purge", &format!("in_{n}"), NOW - 1000 - n, "paid", 1))
                    .await
                    .unwrap()
            );
        }
        assert!(store.put_invoice(&acct, &invoice("acct_purge", "in_late", NOW + 1, "paid", 1)).await.unwrap());
        const MONTH: i64 = 30 * 86_400;
        let windows = [NOW - 3 * MONTH, NOW - 2 * MONTH, NOW - 10, NOW + 5];
        for (n, start) in windows.into_iter().enumerate() {
            let record = UsageRecord {
                window: tollgate::domain::usage::Window { start, end: start + MONTH },
                ..usage_record(1)
            };
            let key = format!("u{n}");
            let consumption = Consumption {
                account: &acct,
                key: &key,
                record: &record,
                limit: None,
                rate: None,
                now_ms: NOW * 1000,
                metered: false,
            };
            store.consume(&consumption).await.unwrap();
        }
        let tombstone = Tombstone { deleted_at: Some(NOW), ..Tombstone::default() };
        store.retire(&acct, Some(&customer_of("acct_purge")), Retirement::AccountDeleted, &tombstone).await.unwrap();

        let read = store.state(&acct).await.unwrap();
        let mut deleted = Vec::new();
        loop {
            let n = store.purge(&acct, Forgotten { at: NOW }, 25).await.unwrap();
            if n == 0 {
                break;
            }
            deleted.push(n);
        }
        let again = store.purge(&acct, Forgotten { at: NOW }, 25).await.unwrap();

        let grants = |state: &tollgate::ports::subscriptions::AccountState| {
            state.grants.iter().map(|g| g.id.clone()).collect::<Vec<_>>()
        };
        let windows_read = |state: &tollgate::ports::subscriptions::AccountState| {
            state.usage.iter().map(|c| c.window_start).collect::<Vec<_>>()
        };
        assert_eq!(grants(&read), ["g99"], "forgotten at once, before the purge");
        assert_eq!(windows_read(&read), [NOW - 10, NOW + 5], "the window of the deletion and later stay");
        assert_eq!(deleted, [25, 25, 25, 25, 2], "30 grants, 30 ledger entries, 40 invoices, 2 counters, in pages");
        assert_eq!(again, 0, "idempotent");
        let after = store.state(&acct).await.unwrap();
        assert_eq!((grants(&after), windows_read(&after)), (vec!["g99".to_owned()], vec![NOW - 10, NOW + 5]));
        let ledger = store.ledger(&acct, 100, None).await.unwrap().entries;
        assert_eq!(ledger.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["grant-g99"]);
        let invoices = store.invoices(&acct, 100, None).await.unwrap().invoices;
        assert_eq!(invoices.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["in_late"]);
    }

    pub async fn owed_purges_are_noted_once_each_and_go_when_done(store: impl Store) {
        let (a, b) = (id("acct_owed_a"), id("acct_owed_b"));

        store.owe_purge(&a, Forgotten { at: NOW }).await.unwrap();
        store.owe_purge(&a, Forgotten { at: NOW + 5 }).await.unwrap();
        store.owe_purge(&b, Forgotten { at: NOW }).await.unwrap();
        let owed = store.owed_purges(10).await.unwrap();
        store.purge_done(&a).await.unwrap();
        store.purge_done(&id("acct_never")).await.unwrap();
        let after = store.owed_purges(10).await.unwrap();

        let mut owed = owed;
        owed.sort_by(|x, y| x.0.as_str().cmp(y.0.as_str()));
        assert_eq!(owed, [(a, Forgotten { at: NOW + 5 }), (b.clone(), Forgotten { at: NOW })], "a later note replaces");
        assert_eq!(after, [(b, Forgotten { at: NOW })]);
    }

    pub async fn a_retired_customer_is_never_linked_again(store: impl Store) {
        let acct = id("acct_n");
        linked(&store, "acct_n").await;
        let old = customer_of("acct_n");
        store.retire(&acct, Some(&old), Retirement::CustomerDeleted, &Tombstone::default()).await.unwrap();

        let relink = store.link_customer(&account("acct_n", &old)).await;
        let to_another = store.link_customer(&account("acct_thief", &old)).await;
        let fresh = store.link_customer(&account("acct_n", "cus_new")).await;

        assert!(matches!(relink, Err(StoreError::Conflict(_))), "{relink:?}");
        assert!(matches!(to_another, Err(StoreError::Conflict(_))), "{to_another:?}");
        assert!(fresh.is_ok(), "{fresh:?}");
        assert_eq!(store.account_for_customer(&old).await.unwrap(), None);
        assert_eq!(store.account_for_customer("cus_new").await.unwrap(), Some(acct));
    }

    pub async fn a_deleted_customer_takes_the_projection_and_leaves_the_facts(store: impl Store) {
        let acct = id("acct_g");
        linked(&store, "acct_g").await;
        let facts = disputed("dp_g");
        let state = projection("acct_g", 10, SubscriptionStatus::Canceled);
        store.apply(&event("evt_g"), Some(effect(&state, Some(&facts)))).await.unwrap();
        store.reserve_checkout(&acct, &pending("req_g", "n1", NOW + 600), NOW).await.unwrap();
        let paid = invoice("acct_g", "in_g", NOW, "paid", 1);
        store.put_invoice(&acct, &paid).await.unwrap();
        let tombstone = Tombstone { trial_used: true, customers_retired: 1, ..Tombstone::default() };

        store.retire(&acct, Some(&customer_of("acct_g")), Retirement::CustomerDeleted, &tombstone).await.unwrap();

        let after = store.state(&acct).await.unwrap();
        assert_eq!((after.profile, after.subscription), (None, None));
        assert!(after.facts.open_disputes.contains("dp_g"), "facts stay: {:?}", after.facts);
        assert_eq!(
            store.pending_checkout(&acct, "req_g", NOW).await.unwrap(),
            None,
            "its sessions were the customer's"
        );
        assert_eq!(after.tombstone, tombstone);
        assert_eq!(store.invoices(&acct, 10, None).await.unwrap().invoices, [paid], "invoices were paid: kept");
        let late = invoice("acct_g", "in_late", NOW + 1, "open", 0);
        assert!(!store.put_invoice(&acct, &late).await.unwrap(), "nothing about a retired customer lands");
    }

    pub async fn invoices_page_newest_first_each_once_in_their_account_only(store: impl Store) {
        let acct = id("acct_inv");
        linked(&store, "acct_inv").await;
        linked(&store, "acct_inv_other").await;
        for i in 0..5 {
            let written = store.put_invoice(&acct, &invoice("acct_inv", &format!("in_{i}"), NOW + i, "paid", 1)).await;
            assert!(written.unwrap());
        }
        // Two invoices of one second: ordered by id.
        store.put_invoice(&acct, &invoice("acct_inv", "in_4b", NOW + 4, "open", 0)).await.unwrap();

        let mut ids = Vec::new();
        let mut after: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = store.invoices(&acct, 2, after.as_deref()).await.unwrap();
            pages += 1;
            ids.extend(page.invoices.iter().map(|i| i.id.clone()));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }

        assert_eq!(pages, 3, "6 invoices in pages of 2");
        assert_eq!(ids, ["in_4b", "in_4", "in_3", "in_2", "in_1", "in_0"]);
        assert_eq!(store.invoices(&id("acct_inv_other"), 10, None).await.unwrap(), InvoicePage::default());
        assert_eq!(
            store.invoices(&acct, 10, Some("STATE#PROFILE")).await.unwrap().invoices.len(),
            6,
            "a foreign cursor starts over"
        );
        assert!(store.state(&acct).await.unwrap().usage.is_empty(), "invoices are outside the state range");
    }

    pub async fn an_invoice_reading_lands_only_over_an_older_one(store: impl Store) {
        let acct = id("acct_iv");
        linked(&store, "acct_iv").await;
        let read = |status: &str, attempts: u64| invoice("acct_iv", "in_v", NOW, status, attempts);

        let first = store.put_invoice(&acct, &read("open", 1)).await.unwrap();
        let older = store.put_invoice(&acct, &read("open", 0)).await.unwrap();
        let same = store.put_invoice(&acct, &read("open", 1)).await.unwrap();
        let paid = store.put_invoice(&acct, &read("paid", 2)).await.unwrap();
        let late_failure = store.put_invoice(&acct, &read("open", 1)).await.unwrap();
        let unlinked = store.put_invoice(&id("acct_stranger"), &read("paid", 2)).await.unwrap();

        assert_eq!((first, older, same, paid, late_failure), (true, false, false, true, false));
        assert!(!unlinked, "the customer is not the stranger's");
        let stored = store.invoices(&acct, 10, None).await.unwrap().invoices;
        assert_eq!(stored, [read("paid", 2)]);
        assert_eq!(store.invoices(&id("acct_stranger"), 10, None).await.unwrap(), InvoicePage::default());
    }

    pub async fn effects_about_a_retired_customer_never_land(store: impl Store) {
        let acct = id("acct_late");
        linked(&store, "acct_late").await;
        store
            .retire(&acct, Some(&customer_of("acct_late")), Retirement::AccountDeleted, &Tombstone::default())
            .await
            .unwrap();
        let late = projection("acct_late", 99, SubscriptionStatus::Canceled);
        let facts = disputed("dp_late");

        let outcome = store.apply(&event("evt_late"), Some(effect(&late, Some(&facts)))).await.unwrap();
        let direct = store.put_subscription(&late).await;

        assert_eq!(outcome, ApplyOutcome::Unlinked);
        assert!(matches!(direct, Err(StoreError::Conflict(_))), "{direct:?}");
        assert!(store.processed("evt_late").await.unwrap().is_some(), "the event counts as processed");
        assert_eq!(store.state(&acct).await.unwrap(), tollgate::ports::subscriptions::AccountState::default());
    }

    pub async fn a_retired_customers_dispute_still_counts_but_nothing_else_lands(store: impl Store) {
        let acct = id("acct_cb");
        linked(&store, "acct_cb").await;
        let customer = customer_of("acct_cb");
        store.retire(&acct, Some(&customer), Retirement::AccountDeleted, &Tombstone::default()).await.unwrap();
        let facts = disputed("dp_chargeback");
        let late = projection("acct_cb", 50, SubscriptionStatus::Active);
        let retired = Effect { retired: true, ..effect(&late, Some(&facts)) };
        let as_if_linked = Effect { retired: false, ..effect(&late, Some(&facts)) };

        let linked_outcome = store.apply(&event("evt_as_linked"), Some(as_if_linked)).await.unwrap();
        let retired_outcome = store.apply(&event("evt_chargeback"), Some(retired)).await.unwrap();

        assert_eq!(store.customer_link(&customer).await.unwrap(), Some(CustomerLink::Retired(acct.clone())));
        assert_eq!((linked_outcome, retired_outcome), (ApplyOutcome::Unlinked, ApplyOutcome::Applied));
        let state = store.state(&acct).await.unwrap();
        assert_eq!(state.subscription, None, "a retired customer never brings a projection back");
        assert!(state.facts.open_disputes.contains("dp_chargeback"), "{:?}", state.facts);
        assert!(state.disputes().contains("dp_chargeback"));
    }

    pub async fn the_state_read_combines_every_state_item(store: impl Store) {
        let acct = id("acct_read");
        linked(&store, "acct_read").await;
        let facts = disputed("dp_now");
        let state = projection("acct_read", 10, SubscriptionStatus::Active);
        store.apply(&event("evt_read"), Some(effect(&state, Some(&facts)))).await.unwrap();
        store.reserve_checkout(&acct, &pending("req", "n", NOW + 600), NOW).await.unwrap();

        let read = store.state(&acct).await.unwrap();

        assert_eq!(read.profile, Some(account("acct_read", &customer_of("acct_read"))));
        assert_eq!(read.facts.open_disputes, facts.open_disputes);
        let merged = read.subscription.unwrap();
        assert_eq!((merged.version, merged.open_disputes.as_slice()), (10, ["dp_now".to_owned()].as_slice()));
        assert_eq!(read.tombstone, Tombstone::default());
    }

    pub async fn failed_events_are_recorded_for_the_operator(store: impl Store) {
        let failure = FailedEvent {
            id: "evt_bad".into(),
            event_type: Some("invoice.paid".into()),
            error: "malformed event: invalid JSON".into(),
            failed_at: NOW,
            source: "worker".into(),
        };

        store.record_failure(&failure).await.unwrap();
        store.record_failure(&failure).await.unwrap();

        assert_eq!(store.failure("evt_bad").await.unwrap(), Some(failure));
        assert_eq!(store.failure("evt_other").await.unwrap(), None);
        assert!(store.processed("evt_bad").await.unwrap().is_none(), "a failure is not a processed event");
    }

    pub async fn failures_list_newest_first_once_each_and_go_when_resolved(store: impl Store) {
        let failure = |id: &str, at: i64| FailedEvent {
            id: id.into(),
            event_type: None,
            error: "stripe: timeout".into(),
            failed_at: at,
            source: "worker".into(),
        };
        for (id, at) in [("evt_1", NOW), ("evt_2", NOW + 1), ("message:m-3", NOW + 2), ("evt_1", NOW + 3)] {
            store.record_failure(&failure(id, at)).await.unwrap();
        }

        let first = store.failures(2, None).await.unwrap();
        let second = store.failures(2, first.next.as_deref()).await.unwrap();
        store.resolve_failure("evt_1").await.unwrap();
        store.resolve_failure("evt_never").await.unwrap();
        let after = store.failures(10, None).await.unwrap();

        let ids = |page: &tollgate::ports::events::FailurePage| {
            page.failures.iter().map(|f| f.id.clone()).collect::<Vec<_>>()
        };
        assert_eq!(ids(&first), ["evt_1", "message:m-3"], "a repeat moves its one place up");
        assert!(first.next.as_deref().is_some_and(tollgate::ports::keys::is_failure_listing));
        assert_eq!((ids(&second), second.next), (vec!["evt_2".to_owned()], None));
        assert_eq!(ids(&after), ["message:m-3", "evt_2"]);
        assert_eq!(store.failure("evt_1").await.unwrap(), None);
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
        // More takers than a read-then-write limiter survives: every lost race must still be
        // decided by the count, never answered "limited" for contention.
        let limit = Limit { limit: 25, window_ms: 60_000 };

        let tasks: Vec<_> = (0..40)
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

        assert_eq!(allowed, 25, "exactly the limit is allowed, never more, never fewer");
    }

    pub async fn an_api_key_is_found_by_its_hash_and_listed_in_its_account_only(store: impl Store) {
        let key = api_key("acct_k");
        let other = api_key("acct_other");

        assert_eq!(store.create_api_key(&key, 5).await.unwrap(), KeyCreation::Created);
        assert_eq!(store.create_api_key(&other, 5).await.unwrap(), KeyCreation::Created);
        let twin = store.create_api_key(&key, 5).await;

        assert!(matches!(twin, Err(StoreError::Conflict(_))), "{twin:?}");
        assert_eq!(store.api_key_by_hash(&key.hash).await.unwrap(), Some(key.clone()));
        assert_eq!(store.api_key(&id("acct_k"), &key.id).await.unwrap(), Some(key.clone()));
        assert_eq!(store.api_key(&id("acct_other"), &key.id).await.unwrap(), None, "another account's key");
        assert_eq!(store.api_keys(&id("acct_k")).await.unwrap(), [key]);
        assert_eq!(store.api_key_by_hash(&api_key("acct_k").hash).await.unwrap(), None);
        assert_eq!(
            store.state(&id("acct_k")).await.unwrap(),
            tollgate::ports::subscriptions::AccountState::default(),
            "outside STATE#"
        );
    }

    pub async fn revoking_a_key_frees_its_slot_once(store: impl Store) {
        let (first, second) = (api_key("acct_rv"), api_key("acct_rv"));
        store.create_api_key(&first, 2).await.unwrap();
        store.create_api_key(&second, 2).await.unwrap();
        assert_eq!(store.create_api_key(&api_key("acct_rv"), 2).await.unwrap(), KeyCreation::LimitReached);

        store.revoke_api_key(&first, NOW + 10, NOW + 100).await.unwrap();
        let again = store.revoke_api_key(&first, NOW + 20, NOW + 100).await;

        assert!(matches!(again, Err(StoreError::Conflict(_))), "a stale revoke frees nothing: {again:?}");
        let revoked = store.api_key_by_hash(&first.hash).await.unwrap().unwrap();
        assert_eq!((revoked.revoked_at, revoked.holds_slot), (Some(NOW + 10), false));
        assert_eq!(store.api_key(&id("acct_rv"), &first.id).await.unwrap(), Some(revoked));
        assert_eq!(store.create_api_key(&api_key("acct_rv"), 2).await.unwrap(), KeyCreation::Created);
        assert_eq!(store.create_api_key(&api_key("acct_rv"), 2).await.unwrap(), KeyCreation::LimitReached);
    }

    pub async fn a_rotated_key_stays_valid_for_its_overlap_and_hands_its_slot_over(store: impl Store) {
        let old = api_key("acct_rot");
        let successor = api_key("acct_rot");
        store.create_api_key(&old, 1).await.unwrap();

        store.rotate_api_key(&old, &successor, NOW, NOW + 3600, NOW + 9000).await.unwrap();
        let again = store.rotate_api_key(&old, &api_key("acct_rot"), NOW, NOW + 3600, NOW + 9000).await;

        assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
        let retiring = store.api_key_by_hash(&old.hash).await.unwrap().unwrap();
        assert_eq!(retiring.replaced_by.as_ref(), Some(&successor.id));
        assert_eq!((retiring.expires_at, retiring.revoked_at, retiring.holds_slot), (Some(NOW + 3600), None, false));
        assert_eq!(store.api_key_by_hash(&successor.hash).await.unwrap(), Some(successor.clone()));
        assert_eq!(store.api_keys(&id("acct_rot")).await.unwrap().len(), 2);
        assert_eq!(
            store.create_api_key(&api_key("acct_rot"), 1).await.unwrap(),
            KeyCreation::LimitReached,
            "the successor holds the only slot"
        );
        store.revoke_api_key(&retiring, NOW + 5, NOW + 100).await.unwrap();
        assert_eq!(
            store.create_api_key(&api_key("acct_rot"), 1).await.unwrap(),
            KeyCreation::LimitReached,
            "revoking the old key frees no slot it no longer held"
        );
        let at_once = api_key("acct_rot");
        store.rotate_api_key(&successor, &at_once, NOW + 50, NOW + 50, NOW + 100).await.unwrap();
        let revoked = store.api_key_by_hash(&successor.hash).await.unwrap().unwrap();
        assert_eq!((revoked.revoked_at, revoked.replaced_by), (Some(NOW + 50), Some(at_once.id)));
    }

    pub async fn parallel_creates_never_exceed_the_key_limit(store: impl Store + 'static) {
        let store = Arc::new(store);

        let tasks: Vec<_> = (0..12)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.create_api_key(&api_key("acct_par"), 5).await })
            })
            .collect();
        let mut created = 0;
        for task in tasks {
            if task.await.unwrap().unwrap() == KeyCreation::Created {
                created += 1;
            }
        }

        assert_eq!(created, 5, "exactly the limit is created, never more, never fewer");
        assert_eq!(store.api_keys(&id("acct_par")).await.unwrap().len(), 5);
    }

    pub async fn a_keys_use_is_recorded_at_most_once_a_minute(store: impl Store) {
        let key = api_key("acct_use");
        store.create_api_key(&key, 5).await.unwrap();

        let first = store.record_api_key_use(&key, NOW).await.unwrap();
        let soon = store.record_api_key_use(&key, NOW + 59).await.unwrap();
        let later = store.record_api_key_use(&key, NOW + 60).await.unwrap();
        let unknown = store.record_api_key_use(&api_key("acct_use"), NOW).await.unwrap();

        assert_eq!((first, soon, later, unknown), (true, false, true, false));
        assert_eq!(store.api_key_by_hash(&key.hash).await.unwrap().unwrap().last_used_at, Some(NOW + 60));
        assert_eq!(store.api_keys(&id("acct_use")).await.unwrap()[0].last_used_at, Some(NOW + 60));
        assert_eq!(store.api_keys(&id("acct_use")).await.unwrap().len(), 1, "no key was made by recording a use");
    }

    pub async fn deleting_an_accounts_keys_removes_every_trace_of_them(store: impl Store) {
        let (a, b) = (api_key("acct_del"), api_key("acct_del"));
        let other = api_key("acct_keep");
        for key in [&a, &b, &other] {
            store.create_api_key(key, 2).await.unwrap();
        }
        store.revoke_api_key(&b, NOW, NOW + 100).await.unwrap();

        let deleted = store.delete_api_keys(&id("acct_del")).await.unwrap();
        let again = store.delete_api_keys(&id("acct_del")).await.unwrap();

        assert_eq!((deleted, again), (2, 0));
        assert_eq!(store.api_key_by_hash(&a.hash).await.unwrap(), None);
        assert_eq!(store.api_key_by_hash(&b.hash).await.unwrap(), None);
        assert!(store.api_keys(&id("acct_del")).await.unwrap().is_empty());
        assert_eq!(store.api_key_by_hash(&other.hash).await.unwrap(), Some(other));
        for _ in 0..2 {
            assert_eq!(store.create_api_key(&api_key("acct_del"), 2).await.unwrap(), KeyCreation::Created);
        }
    }

    fn usage_record(quantity: u64) -> UsageRecord {
        UsageRecord {
            actor: None,
            request: format!("api_calls|{quantity}"),
            metric: "api_calls".into(),
            quantity,
            window: USAGE_WINDOW,
            at: NOW,
            refunded: false,
        }
    }

    fn consumption<'a>(account: &'a AccountId, key: &'a str, record: &'a UsageRecord, limit: u64) -> Consumption<'a> {
        Consumption { account, key, record, limit: Some(limit), rate: None, now_ms: NOW * 1000, metered: true }
    }

    pub async fn parallel_consumers_take_exactly_what_is_left(store: impl Store + 'static) {
        let store = Arc::new(store);
        let account = id("acct_quota");
        let record = usage_record(1);
        // 50 left of a limit of 100.
        let first = usage_record(50);
        store.consume(&consumption(&account, "setup", &first, 100)).await.unwrap();

        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let (store, account, record) = (Arc::clone(&store), account.clone(), record.clone());
                tokio::spawn(async move {
                    let key = format!("req-{i}");
                    store.consume(&consumption(&account, &key, &record, 100)).await.unwrap()
                })
            })
            .collect();
        let mut counted = 0;
        let mut refused = 0;
        for task in tasks {
            match task.await.unwrap() {
                Consumed::Counted(Tally { used, .. }) => {
                    assert!(used <= 100, "{used}");
                    counted += 1;
                }
                Consumed::QuotaExceeded(Tally { used, .. }) => {
                    assert!(used <= 100);
                    refused += 1;
                }
                other => panic!("{other:?}"),
            }
        }

        assert_eq!((counted, refused), (50, 150));
        assert_eq!(store.used(&account, "api_calls", &USAGE_WINDOW).await.unwrap(), 100, "the counter reads the limit");
    }

    pub async fn one_key_retried_in_parallel_counts_once(store: impl Store + 'static) {
        let store = Arc::new(store);
        let account = id("acct_retry");
        let record = usage_record(3);

        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let (store, account, record) = (Arc::clone(&store), account.clone(), record.clone());
                tokio::spawn(async move { store.consume(&consumption(&account, "job-1", &record, 100)).await.unwrap() })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }

        assert_eq!(outcomes.iter().filter(|o| matches!(o, Consumed::Counted { .. })).count(), 1, "{outcomes:?}");
        assert!(
            outcomes.iter().all(|o| matches!(o, Consumed::Counted(Tally { used: 3, .. }) | Consumed::Replayed(_))),
            "{outcomes:?}"
        );
        assert_eq!(store.used(&account, "api_calls", &USAGE_WINDOW).await.unwrap(), 3);
    }

    pub async fn a_refused_consumption_leaves_no_record_so_a_retry_counts(store: impl Store) {
        let account = id("acct_refused");
        let record = usage_record(10);

        let refused = store.consume(&consumption(&account, "k", &record, 5)).await.unwrap();
        let retried = store.consume(&consumption(&account, "k", &record, 50)).await.unwrap();
        let over_everything = store.consume(&consumption(&account, "big", &usage_record(500), 50)).await.unwrap();

        assert_eq!(refused, Consumed::QuotaExceeded(Tally { used: 0, requests: 0 }));
        assert_eq!(retried, Consumed::Counted(Tally { used: 10, requests: 0 }), "the refusal left no record behind");
        assert_eq!(over_everything, Consumed::QuotaExceeded(Tally { used: 10, requests: 0 }));
    }

    pub async fn the_per_minute_limit_is_exact_at_its_boundary(store: impl Store) {
        let account = id("acct_rpm");
        let record = usage_record(1);
        let rate = Some(Limit { limit: 5, window_ms: 60_000 });
        let at =
            |key: &'static str, now_ms: i64| Consumption { rate, now_ms, ..consumption(&account, key, &record, 1_000) };
        let start = NOW * 1000;

        let mut outcomes = Vec::new();
        for (i, key) in ["a", "b", "c", "d", "e", "f"].into_iter().enumerate() {
            outcomes.push(store.consume(&at(key, start + i as i64 * 1000)).await.unwrap());
        }
        let next_minute = store.consume(&at("g", start + 60_000)).await.unwrap();

        let counted: Vec<Consumed> = (1..=5).map(|n| Consumed::Counted(Tally { used: n, requests: n })).collect();
        assert_eq!(outcomes[..5], counted, "each answer tells the minute's requests so far");
        assert_eq!(outcomes[5], Consumed::RateLimited { retry_after_ms: 55_000 });
        assert_eq!(
            next_minute,
            Consumed::Counted(Tally { used: 6, requests: 1 }),
            "a new window allows again; the refused one counted nothing"
        );
        let tally = store.tally(&account, "api_calls", &USAGE_WINDOW, Some(start)).await.unwrap();
        assert_eq!(tally, Tally { used: 6, requests: 5 }, "the full minute's window reads its limit");
    }

    pub async fn a_refund_reverses_a_consumption_once(store: impl Store) {
        let account = id("acct_refund_usage");
        let record = usage_record(4);
        store.consume(&consumption(&account, "job", &record, 100)).await.unwrap();

        let first = store.refund(&account, "job").await.unwrap();
        let second = store.refund(&account, "job").await.unwrap();
        let unknown = store.refund(&account, "never").await.unwrap();
        let replay = store.consume(&consumption(&account, "job", &record, 100)).await.unwrap();

        assert!(matches!(first, Refunded::Refunded(ref r) if r.refunded && r.quantity == 4), "{first:?}");
        assert!(matches!(second, Refunded::AlreadyRefunded(_)), "{second:?}");
        assert_eq!(unknown, Refunded::Unknown);
        assert!(
            matches!(replay, Consumed::Replayed(ref r) if r.refunded),
            "a refunded key is not counted again: {replay:?}"
        );
        assert_eq!(store.used(&account, "api_calls", &USAGE_WINDOW).await.unwrap(), 0);
    }

    pub async fn a_threshold_is_marked_once_per_window(store: impl Store) {
        let account = id("acct_threshold");

        let first = store.mark_threshold(&account, "api_calls", &USAGE_WINDOW, 80).await.unwrap();
        let again = store.mark_threshold(&account, "api_calls", &USAGE_WINDOW, 80).await.unwrap();
        let other = store.mark_threshold(&account, "api_calls", &USAGE_WINDOW, 100).await.unwrap();

        assert_eq!((first, again, other), (true, false, true));
        assert!(store.state(&account).await.unwrap().usage.is_empty(), "a marker is no state item");
    }

    pub async fn a_consumptions_record_reads_back_with_its_actor(store: impl Store) {
        let account = id("acct_record_usage");
        let record = UsageRecord { actor: Some("arn:aws:sts::1:assumed-role/backend/x".into()), ..usage_record(3) };
        store.consume(&consumption(&account, "job", &record, 100)).await.unwrap();

        let read = store.usage_record(&account, "job").await.unwrap();
        let unknown = store.usage_record(&account, "never").await.unwrap();

        assert_eq!(read, Some(record));
        assert_eq!(unknown, None);
    }

    fn counter(account: &AccountId) -> CounterKey {
        CounterKey { account: account.clone(), metric: "api_calls".into(), window_start: USAGE_WINDOW.start }
    }

    fn report(from: u64, to: u64, identifier: &str) -> MeterReport {
        MeterReport { identifier: identifier.into(), from, to, timestamp: NOW, recorded_at: NOW }
    }

    /// Every due counter, page by page (`limit` per page).
    async fn all_due(store: &impl Store, limit: usize) -> Vec<CounterKey> {
        let mut due = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = store.due_counters(limit, after.as_deref()).await.unwrap();
            due.extend(page.counters);
            match page.next {
                Some(next) => after = Some(next),
                None => return due,
            }
        }
    }

    pub async fn a_metered_counter_is_due_until_settled_and_a_refund_lists_it_again(store: impl Store) {
        let (metered, plain) = (id("acct_metered"), id("acct_plain"));
        store.consume(&consumption(&metered, "a", &usage_record(3), 100)).await.unwrap();
        store.consume(&consumption(&metered, "b", &usage_record(2), 100)).await.unwrap();
        let three = usage_record(3);
        let unmetered = Consumption { metered: false, ..consumption(&plain, "a", &three, 100) };
        store.consume(&unmetered).await.unwrap();

        let due = all_due(&store, 10).await;
        let read = store.meter_counter(&counter(&metered)).await.unwrap().unwrap();
        let stale = store.settle(&counter(&metered), 4, 0, &Settlement::NotBilled).await.unwrap();
        let settled = store.settle(&counter(&metered), 5, 0, &Settlement::NotBilled).await.unwrap();
        let after_settling = all_due(&store, 10).await;
        store.refund(&metered, "b").await.unwrap();
        let after_refund = all_due(&store, 10).await;
        let refunded = store.meter_counter(&counter(&metered)).await.unwrap().unwrap();

        assert_eq!(due, vec![counter(&metered)], "only the metered counter is due, once");
        assert_eq!((read.used, read.reported, read.window_end, read.due), (5, 0, USAGE_WINDOW.end, true));
        assert!(read.pending.is_none() && read.last.is_none() && read.settlement.is_none(), "{read:?}");
        assert!(!stale, "a settlement on a count that changed since it was read writes nothing");
        assert!(settled);
        assert!(after_settling.is_empty(), "{after_settling:?}");
        assert_eq!(after_refund, vec![counter(&metered)], "a refund lists the counter again");
        assert_eq!((refunded.used, refunded.settlement), (3, Some(Settlement::NotBilled)));
        assert_eq!(store.meter_counter(&counter(&id("acct_never"))).await.unwrap(), None);
    }

    pub async fn a_report_is_recorded_once_confirmed_once_and_cancelled_once(store: impl Store) {
        let account = id("acct_report");
        let key = counter(&account);
        store.consume(&consumption(&account, "a", &usage_record(8), 100)).await.unwrap();
        let first = report(0, 8, "acct_report:api_calls:w:8");

        let wrong_watermark = store.record_report(&key, 0, &report(3, 8, "x")).await.unwrap();
        let wrong_revision = store.record_report(&key, 1, &first).await.unwrap();
        let recorded = store.record_report(&key, 0, &first).await.unwrap();
        let second = store.record_report(&key, 0, &report(0, 8, "other")).await.unwrap();
        let unsettled = store.settle(&key, 8, 0, &Settlement::Reported).await.unwrap();
        let pending = store.meter_counter(&key).await.unwrap().unwrap();
        let wrong_confirm = store.confirm_report(&key, &report(0, 8, "other")).await.unwrap();
        let confirmed = store.confirm_report(&key, &first).await.unwrap();
        let again = store.confirm_report(&key, &first).await.unwrap();
        let reported = store.meter_counter(&key).await.unwrap().unwrap();
        let cancelled = store.cancel_report(&key, &first).await.unwrap();
        let cancelled_twice = store.cancel_report(&key, &first).await.unwrap();
        let after_cancel = store.meter_counter(&key).await.unwrap().unwrap();
        let next = report(0, 8, "acct_report:api_calls:w:8:r1");
        let old_revision = store.record_report(&key, 0, &next).await.unwrap();
        let new_revision = store.record_report(&key, 1, &next).await.unwrap();
        let failed = Settlement::Failed { reason: "too old".into() };
        let failed_with_pending = store.settle(&key, 8, 0, &failed).await.unwrap();
        let failed_counter = store.meter_counter(&key).await.unwrap().unwrap();

        assert!(!wrong_watermark && !wrong_revision, "a report must start at the watermark of its revision");
        assert!(recorded && !second, "one report is pending at a time");
        assert!(!unsettled, "nothing is settled while a report is pending");
        assert_eq!((pending.pending.as_ref(), pending.reported), (Some(&first), 0));
        assert!(!wrong_confirm && confirmed && !again, "only the pending report is confirmed, once");
        assert_eq!((reported.reported, reported.pending.as_ref(), reported.last.as_ref()), (8, None, Some(&first)));
        assert!(cancelled && !cancelled_twice, "the last report is cancelled once");
        assert_eq!((after_cancel.reported, after_cancel.revision, after_cancel.last.as_ref()), (0, 1, None));
        assert!(!old_revision && new_revision);
        assert!(failed_with_pending, "a failure is settled with its pending report");
        assert_eq!((failed_counter.due, failed_counter.pending.as_ref()), (false, Some(&next)));
        assert_eq!(failed_counter.settlement, Some(failed));
        assert!(all_due(&store, 10).await.is_empty());
    }

    pub async fn a_counter_is_settled_once_and_a_lost_report_is_given_up_once(store: impl Store) {
        let (account, free) = (id("acct_lost_report"), id("acct_unpaid"));
        let key = counter(&account);
        let five = UsageRecord { at: NOW - 60, ..usage_record(5) };
        store.consume(&consumption(&account, "a", &five, 100)).await.unwrap();
        let two = usage_record(2);
        let unpaid = Consumption { metered: false, ..consumption(&free, "a", &two, 100) };
        store.consume(&unpaid).await.unwrap();
        let fresh = store.meter_counter(&key).await.unwrap().unwrap();
        let first = MeterReport { recorded_at: NOW - 30, ..report(0, 5, "r5") };
        store.record_report(&key, 0, &first).await.unwrap();
        store.consume(&consumption(&account, "b", &two, 100)).await.unwrap();
        store.confirm_report(&key, &first).await.unwrap();
        let behind = store.meter_counter(&key).await.unwrap().unwrap();
        let lost = report(5, 7, "r7");
        store.record_report(&key, 0, &lost).await.unwrap();

        let wrong = store.abandon_report(&key, &report(5, 7, "other")).await.unwrap();
        let given_up = store.abandon_report(&key, &lost).await.unwrap();
        let twice = store.abandon_report(&key, &lost).await.unwrap();
        let after = store.meter_counter(&key).await.unwrap().unwrap();
        let again = report(5, 7, "r7:r1");
        let recorded = store.record_report(&key, 1, &again).await.unwrap();
        store.confirm_report(&key, &again).await.unwrap();
        let up_to_date = store.meter_counter(&key).await.unwrap().unwrap();
        let settled = store.settle(&key, 7, 7, &Settlement::Reported).await.unwrap();
        let settled_twice = store.settle(&key, 7, 7, &Settlement::Reported).await.unwrap();
        let failed_after = store.settle(&key, 7, 7, &Settlement::Failed { reason: "late".into() }).await.unwrap();

        assert_eq!((fresh.metered, fresh.behind_since), (true, Some(NOW - 60)), "behind since its first unit");
        let unpaid = store.meter_counter(&counter(&free)).await.unwrap().unwrap();
        assert_eq!((unpaid.metered, unpaid.due), (false, false), "unpaid usage is never due");
        assert_eq!((behind.reported, behind.behind_since), (5, Some(NOW - 30)), "what came after the report's read");
        assert!(!wrong && given_up && !twice, "only the pending report is given up, once");
        assert_eq!((after.pending, after.reported, after.revision), (None, 5, 1), "on from what was confirmed");
        assert!(recorded);
        assert_eq!((up_to_date.reported, up_to_date.behind_since), (7, None));
        assert!(settled && !settled_twice && !failed_after, "settled once, however often it is listed");
        assert_eq!(store.meter_counter(&key).await.unwrap().unwrap().settlement, Some(Settlement::Reported));
    }

    pub async fn the_meter_position_round_trips(store: impl Store) {
        let position =
            MeterPosition { after: Some("page".into()), lap_started_at: NOW, last_lap_started_at: Some(NOW - 900) };

        let before = store.meter_position().await.unwrap();
        store.save_meter_position(&position).await.unwrap();

        assert_eq!(before, None);
        assert_eq!(store.meter_position().await.unwrap(), Some(position));
    }

    pub async fn due_counters_page_through_every_due_counter_once(store: impl Store) {
        let accounts: Vec<AccountId> = (0..7).map(|i| id(&format!("acct_due_{i}"))).collect();
        for account in &accounts {
            store.consume(&consumption(account, "a", &usage_record(1), 100)).await.unwrap();
        }

        let mut due = all_due(&store, 2).await;
        let whole = store.due_counters(10, None).await.unwrap();
        let after_third = store.due_counters(10, Some(&whole.cursors[2])).await.unwrap();

        assert_eq!(whole.cursors.len(), 7);
        assert_eq!(after_third.counters, whole.counters[3..], "a page goes on after any counter it listed");
        due.sort();
        let mut expected: Vec<CounterKey> = accounts.iter().map(counter).collect();
        expected.sort();
        assert_eq!(due, expected);
    }

    pub async fn parallel_reporters_record_one_pending_report(store: impl Store + 'static) {
        let store = Arc::new(store);
        let account = id("acct_race");
        store.consume(&consumption(&account, "a", &usage_record(5), 100)).await.unwrap();

        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let (store, key) = (Arc::clone(&store), counter(&account));
                tokio::spawn(
                    async move { store.record_report(&key, 0, &report(0, 5, &format!("r{i}"))).await.unwrap() },
                )
            })
            .collect();
        let mut recorded = 0;
        for task in tasks {
            recorded += usize::from(task.await.unwrap());
        }

        assert_eq!(recorded, 1, "exactly one of 20 parallel reporters records its report");
    }

    pub async fn the_state_read_shows_every_usage_counter(store: impl Store) {
        let account = id("acct_usage_state");
        let earlier =
            tollgate::domain::usage::Window { start: USAGE_WINDOW.start - 30 * 86_400, end: USAGE_WINDOW.start };
        store.consume(&consumption(&account, "now", &usage_record(7), 100)).await.unwrap();
        let last_month = UsageRecord { window: earlier, ..usage_record(2) };
        store.consume(&consumption(&account, "then", &last_month, 100)).await.unwrap();
        store.consume(&consumption(&id("acct_other_usage"), "x", &usage_record(5), 100)).await.unwrap();

        let state = store.state(&account).await.unwrap();

        assert_eq!(
            state.usage,
            [
                UsageCounter { metric: "api_calls".into(), window_start: earlier.start, used: 2 },
                UsageCounter { metric: "api_calls".into(), window_start: USAGE_WINDOW.start, used: 7 },
            ]
        );
        assert_eq!(state.used("api_calls", USAGE_WINDOW.start), 7);
        assert_eq!(state.used("storage_gb", USAGE_WINDOW.start), 0);
    }

    pub async fn a_grant_is_written_once_with_its_entry_and_read_with_the_state(store: impl Store) {
        let acct = id("acct_grant");

        let first = store.grant(&acct, &grant("cs_1", 40, None), &grant_entry("cs_1", 40)).await.unwrap();
        let again = store.grant(&acct, &grant("cs_1", 40, None), &grant_entry("cs_1", 40)).await.unwrap();

        assert!(first && !again, "granted once");
        assert_eq!(store.state(&acct).await.unwrap().grants, [grant("cs_1", 40, None)]);
        let page = store.ledger(&acct, 10, None).await.unwrap();
        assert_eq!(page.entries, [grant_entry("cs_1", 40)]);
        assert!(store.state(&id("acct_other_grant")).await.unwrap().grants.is_empty());
    }

    pub async fn a_grant_to_a_linked_account_lands_once_and_never_after_its_deletion(store: impl Store + 'static) {
        let store = Arc::new(store);
        let never = id("acct_never_linked");
        let acct = id("acct_grant_linked");
        linked(&*store, "acct_grant_linked").await;

        let unlinked = store.grant_to_linked(&never, &grant("cs_x", 10, None), &grant_entry("cs_x", 10)).await.unwrap();
        let first = store.grant_to_linked(&acct, &grant("cs_1", 40, None), &grant_entry("cs_1", 40)).await.unwrap();
        let again = store.grant_to_linked(&acct, &grant("cs_1", 40, None), &grant_entry("cs_1", 40)).await.unwrap();
        // Twenty grants racing the account's deletion: whatever landed before it goes with it,
        // nothing lands after it.
        let racers: Vec<_> = (0..20)
            .map(|i| {
                let (store, acct) = (Arc::clone(&store), acct.clone());
                tokio::spawn(async move {
                    let name = format!("cs_race_{i}");
                    store.grant_to_linked(&acct, &grant(&name, 5, None), &grant_entry(&name, 5)).await.unwrap()
                })
            })
            .collect();
        let tombstone = Tombstone { deleted_at: Some(NOW), ..Tombstone::default() };
        store
            .retire(&acct, Some(&customer_of("acct_grant_linked")), Retirement::AccountDeleted, &tombstone)
            .await
            .unwrap();
        for racer in racers {
            racer.await.unwrap();
        }
        let late = store.grant_to_linked(&acct, &grant("cs_late", 5, None), &grant_entry("cs_late", 5)).await.unwrap();
        while store.purge(&acct, Forgotten { at: NOW }, 100).await.unwrap() > 0 {}

        assert_eq!(unlinked, GrantWrite::NotLinked);
        assert_eq!((first, again), (GrantWrite::Written, GrantWrite::Exists));
        assert_eq!(late, GrantWrite::NotLinked);
        assert!(store.state(&never).await.unwrap().grants.is_empty());
        let left = store.state(&acct).await.unwrap().grants;
        assert!(left.is_empty(), "nothing re-created on the deleted account: {left:?}");
        assert!(store.ledger(&acct, 100, None).await.unwrap().entries.is_empty(), "the purge took what landed before");
    }

    pub async fn a_dispute_holds_a_grant_once_and_releases_or_forfeits_what_it_holds(store: impl Store) {
        let acct = id("acct_dispute_grant");
        let entry = |id: &str, kind: EntryKind, credits: i64| LedgerEntry {
            id: id.into(),
            kind,
            credits,
            ..grant_entry(id, 0)
        };
        store.grant(&acct, &grant("cs_won", 50, None), &grant_entry("cs_won", 50)).await.unwrap();
        store.grant(&acct, &grant("cs_lost", 30, None), &grant_entry("cs_lost", 30)).await.unwrap();
        store.grant(&acct, &grant("cs_late", 10, None), &grant_entry("cs_late", 10)).await.unwrap();
        let (record, spent) = credit_spend("k", "cs_won", 5, NOW * 1000);
        let spend = Spend {
            account: &acct,
            key: "k",
            record: &record,
            entry: &spent,
            now: NOW,
            emptied: &[],
            exact: None,
            part: None,
        };
        store.spend(&spend).await.unwrap();

        let stale = store.dispute_grant(&acct, "cs_won", DisputeStep::Freeze { seen: 50 }, None).await.unwrap();
        let freeze = entry("freeze-cs_won", EntryKind::Freeze, -45);
        let held = store.dispute_grant(&acct, "cs_won", DisputeStep::Freeze { seen: 45 }, Some(&freeze)).await.unwrap();
        let twice = store.dispute_grant(&acct, "cs_won", DisputeStep::Freeze { seen: 0 }, None).await.unwrap();
        // A refund during the dispute is held with the rest.
        store.refund_credits(&acct, "k", None, NOW * 1000 + 1, "ops").await.unwrap();
        let during = store.state(&acct).await.unwrap().grants.into_iter().find(|g| g.id == "cs_won").unwrap();
        let release = entry("release-cs_won", EntryKind::Release, 50);
        let released =
            store.dispute_grant(&acct, "cs_won", DisputeStep::Release { frozen: 50 }, Some(&release)).await.unwrap();
        let freeze_lost = entry("freeze-cs_lost", EntryKind::Freeze, -30);
        store.dispute_grant(&acct, "cs_lost", DisputeStep::Freeze { seen: 30 }, Some(&freeze_lost)).await.unwrap();
        let reversal = entry("reversal-cs_lost", EntryKind::Reversal, 0);
        let forfeit =
            store.dispute_grant(&acct, "cs_lost", DisputeStep::Forfeit { frozen: 30 }, Some(&reversal)).await.unwrap();
        let closed_first = store.dispute_grant(&acct, "cs_late", DisputeStep::Closed, None).await.unwrap();
        let late_freeze = store.dispute_grant(&acct, "cs_late", DisputeStep::Freeze { seen: 10 }, None).await.unwrap();

        assert!(!stale && held && !twice, "held once, as read");
        assert_eq!((during.remaining, during.frozen), (0, Some(50)));
        assert!(released && forfeit && closed_first && !late_freeze);
        let grants = store.state(&acct).await.unwrap().grants;
        let by_id = |id: &str| grants.iter().find(|g| g.id == id).unwrap().clone();
        assert_eq!((by_id("cs_won").remaining, by_id("cs_won").frozen, by_id("cs_won").reversed), (50, None, false));
        assert_eq!((by_id("cs_lost").remaining, by_id("cs_lost").frozen, by_id("cs_lost").reversed), (0, None, true));
        assert_eq!((by_id("cs_late").remaining, by_id("cs_late").dispute_closed), (10, true));
        let kinds: Vec<EntryKind> =
            store.ledger(&acct, 20, None).await.unwrap().entries.into_iter().map(|e| e.kind).collect();
        assert_eq!(kinds.iter().filter(|k| **k == EntryKind::Freeze).count(), 2);
        assert!(kinds.contains(&EntryKind::Release) && kinds.contains(&EntryKind::Reversal));
    }

    pub async fn the_parts_of_a_split_spend_commit_in_order_once_and_refund_each_on_its_own(store: impl Store) {
        use tollgate::ports::credits::{Part, Split};
        let acct = id("acct_parts");
        for name in ["p1", "p2"] {
            store.grant(&acct, &grant(name, 10, None), &grant_entry(name, 10)).await.unwrap();
        }
        let part = |index: u32, grant: &str| {
            let (record, entry) = credit_spend(&format!("big-{index}"), grant, 10, NOW * 1000 + i64::from(index));
            let master = CreditRecord {
                cost: 20,
                draws: vec![],
                split: Some(Split { parts: index + 1, drawn: 10 * u64::from(index + 1) }),
                ..record.clone()
            };
            (record, entry, master)
        };
        async fn spend_part(
            store: &impl Store,
            acct: &AccountId,
            index: u32,
            (record, entry, master): &(CreditRecord, LedgerEntry, CreditRecord),
        ) -> Spent {
            let part = Some(Part { index, master });
            let spend = Spend { account: acct, key: "big", record, entry, now: NOW, emptied: &[], exact: None, part };
            store.spend(&spend).await.unwrap()
        }
        let (zero, one, two) = (part(0, "p1"), part(1, "p2"), part(2, "p2"));

        let out_of_order = spend_part(&store, &acct, 1, &one).await;
        let first = spend_part(&store, &acct, 0, &zero).await;
        let first_again = spend_part(&store, &acct, 0, &zero).await;
        let second = spend_part(&store, &acct, 1, &one).await;
        let master = store.credit_record(&acct, "big").await.unwrap().unwrap();
        let refunded = store.refund_credits(&acct, "big", Some(1), NOW * 1000 + 5, "ops").await.unwrap();
        let twice = store.refund_credits(&acct, "big", Some(1), NOW * 1000 + 6, "ops").await.unwrap();
        let balance: u64 = store.state(&acct).await.unwrap().grants.iter().map(|g| g.remaining).sum();
        store.mark_refunded(&acct, "big").await.unwrap();
        let after_mark = spend_part(&store, &acct, 2, &two).await;

        assert_eq!((out_of_order, first, first_again), (Spent::Contended, Spent::Done, Spent::Contended));
        assert_eq!(second, Spent::Done);
        assert_eq!(master.split, Some(Split { parts: 2, drawn: 20 }), "the spend's record counts its parts");
        assert!(master.draws.is_empty() && !master.refunded);
        assert!(matches!(refunded, tollgate::ports::credits::CreditRefund::Refunded(_)), "{refunded:?}");
        assert!(matches!(twice, tollgate::ports::credits::CreditRefund::AlreadyRefunded(_)), "{twice:?}");
        assert_eq!(balance, 10, "only part 1 given back");
        assert_eq!(after_mark, Spent::Contended, "no part after the spend's record is refunded");
        assert!(store.credit_record(&acct, "big").await.unwrap().unwrap().refunded);
    }

    pub async fn grants_merge_once_as_read_and_keep_every_credit(store: impl Store) {
        let acct = id("acct_merge");
        for (name, credits) in [("m1", 10), ("m2", 20), ("m3", 30)] {
            store.grant(&acct, &grant(name, credits, None), &grant_entry(name, credits)).await.unwrap();
        }

        let stale = store.merge_grants(&acct, "m1", &[("m2".into(), 19), ("m3".into(), 30)]).await.unwrap();
        let merged = store.merge_grants(&acct, "m1", &[("m2".into(), 20), ("m3".into(), 30)]).await.unwrap();
        let again = store.merge_grants(&acct, "m1", &[("m2".into(), 20)]).await.unwrap();

        assert!(!stale && merged && !again, "once, as read");
        let grants = store.state(&acct).await.unwrap().grants;
        let left: Vec<(String, u64)> = grants.iter().map(|g| (g.id.clone(), g.remaining)).collect();
        assert_eq!(left, [("m1".to_owned(), 60), ("m2".to_owned(), 0), ("m3".to_owned(), 0)]);
    }

    pub async fn a_grant_is_lengthened_only_forward(store: impl Store) {
        let acct = id("acct_extend");
        store.grant(&acct, &grant("plan-1-1", 40, Some(NOW + 100)), &grant_entry("plan-1-1", 40)).await.unwrap();

        let longer = store.extend_grant(&acct, "plan-1-1", NOW + 500).await.unwrap();
        let shorter = store.extend_grant(&acct, "plan-1-1", NOW + 200).await.unwrap();
        let missing = store.extend_grant(&acct, "plan-9-9", NOW + 500).await.unwrap();

        assert!(longer && !shorter && !missing);
        assert_eq!(store.state(&acct).await.unwrap().grants[0].expires_at, Some(NOW + 500));
    }

    pub async fn parallel_spenders_take_exactly_the_credits_left(store: impl Store + 'static) {
        let store = Arc::new(store);
        let acct = id("acct_spend");
        store.grant(&acct, &grant("cs_30", 30, None), &grant_entry("cs_30", 30)).await.unwrap();

        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let (store, acct) = (Arc::clone(&store), acct.clone());
                tokio::spawn(async move {
                    let key = format!("spend-{i}");
                    let (record, entry) = credit_spend(&key, "cs_30", 1, NOW * 1000 + i);
                    let spend = Spend {
                        account: &acct,
                        key: &key,
                        record: &record,
                        entry: &entry,
                        now: NOW,
                        emptied: &[],
                        exact: None,
                        part: None,
                    };
                    store.spend(&spend).await.unwrap()
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }

        assert_eq!(outcomes.iter().filter(|o| **o == Spent::Done).count(), 30, "{outcomes:?}");
        assert!(outcomes.iter().all(|o| matches!(o, Spent::Done | Spent::Contended)));
        assert_eq!(store.state(&acct).await.unwrap().grants[0].remaining, 0, "never below zero");
        let page = store.ledger(&acct, 100, None).await.unwrap();
        assert_eq!(page.entries.iter().filter(|e| e.kind == EntryKind::Consumption).count(), 30);
    }

    pub async fn an_exact_spend_holds_only_on_the_grants_as_read(store: impl Store) {
        let acct = id("acct_spend_exact");
        store.grant(&acct, &grant("a", 10, None), &grant_entry("a", 10)).await.unwrap();
        let read = store.state(&acct).await.unwrap().grants;
        let (mut first, first_entry) = credit_spend("first", "a", 1, NOW * 1000);
        first.draws = vec![Draw { grant: "a".into(), credits: 2 }];
        let (mut second, second_entry) = credit_spend("second", "a", 1, NOW * 1000 + 1);
        second.draws = vec![Draw { grant: "a".into(), credits: 2 }];
        let exact = |key, record, entry| Spend {
            account: &acct,
            key,
            record,
            entry,
            now: NOW,
            emptied: &[],
            exact: Some(read.as_slice()),
            part: None,
        };

        let done = store.spend(&exact("first", &first, &first_entry)).await.unwrap();
        let stale = store.spend(&exact("second", &second, &second_entry)).await.unwrap();
        let loose = store.spend(&Spend { exact: None, ..exact("second", &second, &second_entry) }).await.unwrap();

        assert_eq!(done, Spent::Done);
        assert_eq!(stale, Spent::Contended, "the grant no longer holds what was read: nothing drawn");
        assert_eq!(loose, Spent::Done, "enough is left for a spend that needs only enough");
        assert_eq!(store.state(&acct).await.unwrap().grants[0].remaining, 6);
    }

    pub async fn a_spend_commits_all_or_nothing_once_per_key(store: impl Store) {
        let acct = id("acct_spend_once");
        store.grant(&acct, &grant("a", 5, None), &grant_entry("a", 5)).await.unwrap();
        store.grant(&acct, &grant("b", 5, Some(NOW + 60)), &grant_entry("b", 5)).await.unwrap();
        let spend = |key: &'static str, draws: Vec<Draw>, now: i64| {
            let (mut record, entry) = credit_spend(key, "a", 1, NOW * 1000);
            record.draws = draws;
            (record, entry, now)
        };
        let (record, entry, now) =
            spend("k", vec![Draw { grant: "a".into(), credits: 5 }, Draw { grant: "b".into(), credits: 6 }], NOW);
        let over = store
            .spend(&Spend {
                account: &acct,
                key: "k",
                record: &record,
                entry: &entry,
                now,
                emptied: &[],
                exact: None,
                part: None,
            })
            .await
            .unwrap();
        let (record, entry, now) = spend("k", vec![Draw { grant: "b".into(), credits: 1 }], NOW + 60);
        let expired = store
            .spend(&Spend {
                account: &acct,
                key: "k",
                record: &record,
                entry: &entry,
                now,
                emptied: &[],
                exact: None,
                part: None,
            })
            .await
            .unwrap();
        let (record, entry, now) =
            spend("k", vec![Draw { grant: "a".into(), credits: 2 }, Draw { grant: "b".into(), credits: 1 }], NOW);
        let done = store
            .spend(&Spend {
                account: &acct,
                key: "k",
                record: &record,
                entry: &entry,
                now,
                emptied: &[],
                exact: None,
                part: None,
            })
            .await
            .unwrap();
        let replay = store
            .spend(&Spend {
                account: &acct,
                key: "k",
                record: &record,
                entry: &entry,
                now,
                emptied: &[],
                exact: None,
                part: None,
            })
            .await
            .unwrap();

        assert_eq!(over, Spent::Contended, "one draw over its grant: nothing drawn");
        assert_eq!(expired, Spent::Contended, "an expired grant is drawn from no more");
        assert_eq!(done, Spent::Done);
        assert_eq!(replay, Spent::Replayed(record.clone()));
        let remaining: Vec<u64> = store.state(&acct).await.unwrap().grants.iter().map(|g| g.remaining).collect();
        assert_eq!(remaining, [3, 4]);
        assert_eq!(store.credit_record(&acct, "k").await.unwrap(), Some(record));
    }

    pub async fn a_refund_gives_nothing_back_to_a_reversed_grant_and_says_so(store: impl Store) {
        let acct = id("acct_reversed_refund");
        store.grant(&acct, &grant("g", 10, None), &grant_entry("g", 10)).await.unwrap();
        let (record, entry) = credit_spend("job", "g", 6, NOW * 1000 + 1);
        store
            .spend(&Spend {
                account: &acct,
                key: "job",
                record: &record,
                entry: &entry,
                now: NOW,
                emptied: &[],
                exact: None,
                part: None,
            })
            .await
            .unwrap();
        let reversal = LedgerEntry {
            id: "reversal-g".into(),
            kind: EntryKind::Reversal,
            at_ms: NOW * 1000 + 2,
            credits: -4,
            event: None,
            quantity: Some(6),
            grant: Some("g".into()),
            withheld: None,
            actor: Some("stripe:evt_1".into()),
        };
        assert!(store.reverse_grant(&acct, "g", 4, &reversal).await.unwrap());

        let refunded = store.refund_credits(&acct, "job", None, NOW * 1000 + 3, "ops").await.unwrap();

        assert!(matches!(refunded, CreditRefund::Refunded(_)), "{refunded:?}");
        let state = store.state(&acct).await.unwrap();
        assert_eq!((state.grants[0].remaining, state.grants[0].reversed), (0, true), "a reversal sticks");
        let newest = store.ledger(&acct, 1, None).await.unwrap().entries.remove(0);
        assert_eq!((newest.kind, newest.credits, newest.withheld), (EntryKind::Refund, 0, Some(6)));
    }

    pub async fn a_credit_refund_gives_back_once(store: impl Store) {
        let acct = id("acct_credit_refund");
        store.grant(&acct, &grant("g", 10, None), &grant_entry("g", 10)).await.unwrap();
        let (record, entry) = credit_spend("job", "g", 4, NOW * 1000 + 1);
        store
            .spend(&Spend {
                account: &acct,
                key: "job",
                record: &record,
                entry: &entry,
                now: NOW,
                emptied: &[],
                exact: None,
                part: None,
            })
            .await
            .unwrap();

        let first = store.refund_credits(&acct, "job", None, NOW * 1000 + 2, "ops").await.unwrap();
        let second = store.refund_credits(&acct, "job", None, NOW * 1000 + 3, "ops").await.unwrap();
        let unknown = store.refund_credits(&acct, "nope", None, NOW * 1000 + 4, "ops").await.unwrap();

        assert!(matches!(first, CreditRefund::Refunded(ref r) if r.refunded), "{first:?}");
        assert!(matches!(second, CreditRefund::AlreadyRefunded(_)), "{second:?}");
        assert_eq!(unknown, CreditRefund::Unknown);
        assert_eq!(store.state(&acct).await.unwrap().grants[0].remaining, 10);
        let kinds: Vec<EntryKind> =
            store.ledger(&acct, 10, None).await.unwrap().entries.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EntryKind::Refund, EntryKind::Consumption, EntryKind::Grant]);
    }

    pub async fn a_grant_is_emptied_once_and_only_as_it_was_read(store: impl Store) {
        let acct = id("acct_reverse");
        store.grant(&acct, &grant("pack", 10, None), &grant_entry("pack", 10)).await.unwrap();
        let (record, entry) = credit_spend("k", "pack", 3, NOW * 1000 + 1);
        store
            .spend(&Spend {
                account: &acct,
                key: "k",
                record: &record,
                entry: &entry,
                now: NOW,
                emptied: &[],
                exact: None,
                part: None,
            })
            .await
            .unwrap();
        let reversal = |left: u64| LedgerEntry {
            withheld: None,
            actor: None,
            id: "reversal-pack".into(),
            kind: EntryKind::Reversal,
            at_ms: NOW * 1000 + 2,
            credits: -(left as i64),
            event: None,
            quantity: Some(10 - left),
            grant: Some("pack".into()),
        };

        let stale = store.reverse_grant(&acct, "pack", 10, &reversal(10)).await.unwrap();
        let emptied = store.reverse_grant(&acct, "pack", 7, &reversal(7)).await.unwrap();
        let again = store.reverse_grant(&acct, "pack", 0, &reversal(0)).await;

        assert!(!stale, "a grant that changed since it was read is left alone");
        assert!(emptied);
        assert!(matches!(again, Err(tollgate::ports::StoreError::Conflict(_))), "once: {again:?}");
        assert_eq!(store.state(&acct).await.unwrap().grants[0].remaining, 0);
        let kinds: Vec<EntryKind> =
            store.ledger(&acct, 10, None).await.unwrap().entries.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EntryKind::Reversal, EntryKind::Consumption, EntryKind::Grant]);
    }

    pub async fn the_ledger_pages_newest_first_each_entry_once(store: impl Store) {
        let acct = id("acct_ledger");
        store.grant(&acct, &grant("g", 100, None), &grant_entry("g", 100)).await.unwrap();
        for i in 0..6 {
            let key = format!("k{i}");
            let (record, entry) = credit_spend(&key, "g", 1, NOW * 1000 + 10 + i);
            store
                .spend(&Spend {
                    account: &acct,
                    key: &key,
                    record: &record,
                    entry: &entry,
                    now: NOW,
                    emptied: &[],
                    exact: None,
                    part: None,
                })
                .await
                .unwrap();
        }

        let mut ids = Vec::new();
        let mut after: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = store.ledger(&acct, 3, after.as_deref()).await.unwrap();
            pages += 1;
            ids.extend(page.entries.iter().map(|e| e.id.clone()));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }

        assert_eq!(pages, 3, "7 entries in pages of 3");
        let expected: Vec<String> =
            (0..6).rev().map(|i| format!("consume-k{i}")).chain(["grant-g".to_owned()]).collect();
        assert_eq!(ids, expected);
        assert_eq!(
            store.ledger(&acct, 10, Some("STATE#PROFILE")).await.unwrap().entries.len(),
            7,
            "a foreign cursor starts over"
        );
    }

    pub async fn sync_cursor_and_outcome_round_trip(store: impl Store) {
        assert_eq!(store.cursor().await.unwrap(), None);
        assert_eq!(store.outcome().await.unwrap(), None);
        let cursor = SyncCursor {
            created: NOW,
            ids_at_created: vec!["evt_1".into()],
            reconcile_after: Some("sub_9".into()),
            failing_event: Some("evt_2".into()),
            failing_tries: 2,
            reconcile_due: true,
            ..SyncCursor::default()
        };
        let outcome = SyncOutcome { mode: "full".into(), started_at: NOW, replayed: 3, ..SyncOutcome::default() };

        store.save_cursor(&cursor).await.unwrap();
        store.save_outcome(&outcome).await.unwrap();

        assert_eq!(store.cursor().await.unwrap(), Some(cursor));
        assert_eq!(store.outcome().await.unwrap(), Some(outcome));
    }

    pub async fn one_adoption_runs_at_a_time_and_its_entries_read_back_in_order(store: impl Store) {
        use tollgate::domain::adoption::{Adoption, AdoptionRequest, AdoptionState, Sorted, UnmappedEntry};
        let adoption = |id: &str| Adoption {
            id: id.into(),
            state: AdoptionState::Running,
            request: AdoptionRequest {
                apply: true,
                map: vec![("cus_1".into(), "acct_1".into())],
                ..Default::default()
            },
            stripe_calls: 0,
            done: 0,
            total: 0,
            after: None,
            started_at: NOW,
            error: None,
        };
        let unmapped = |c: &str| Sorted::Unmapped(UnmappedEntry { customer_id: c.into() });
        assert_eq!(store.adoption().await.unwrap(), None);

        store.start_adoption(&adoption("1")).await.unwrap();
        assert!(matches!(store.start_adoption(&adoption("2")).await, Err(StoreError::Conflict(_))), "one at a time");
        // Out of order and again (a run cut off sorts a customer twice): read in order, once each.
        for (seq, customer) in [(10, "cus_c"), (2, "cus_b"), (0, "cus_a"), (2, "cus_b")] {
            store.save_adoption_entry("1", seq, &unmapped(customer)).await.unwrap();
        }
        store.save_adoption_entry("other", 0, &unmapped("cus_z")).await.unwrap();
        let done = Adoption { state: AdoptionState::Done, done: 3, ..adoption("1") };
        store.save_adoption(&done).await.unwrap();

        assert_eq!(store.adoption().await.unwrap(), Some(done));
        assert_eq!(
            store.adoption_entries("1").await.unwrap(),
            [unmapped("cus_a"), unmapped("cus_b"), unmapped("cus_c")]
        );
        store.start_adoption(&adoption("3")).await.unwrap();
        assert!(store.adoption_entries("3").await.unwrap().is_empty(), "a new adoption starts with no entries");
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
                deleting_an_account_keeps_only_its_tombstone_and_rate_windows,
                a_retired_customer_is_never_linked_again,
                a_deletion_is_forgotten_at_once_and_purged_in_pages_keeping_the_rest,
                owed_purges_are_noted_once_each_and_go_when_done,
                a_deleted_customer_takes_the_projection_and_leaves_the_facts,
                invoices_page_newest_first_each_once_in_their_account_only,
                an_invoice_reading_lands_only_over_an_older_one,
                effects_about_a_retired_customer_never_land,
                a_retired_customers_dispute_still_counts_but_nothing_else_lands,
                the_state_read_combines_every_state_item,
                failed_events_are_recorded_for_the_operator,
                failures_list_newest_first_once_each_and_go_when_resolved,
                a_checkout_reservation_is_taken_once_until_it_expires,
                only_the_reservations_owner_completes_it,
                a_rate_window_allows_its_limit_then_says_when_to_retry,
                parallel_takers_never_exceed_a_rate_limit,
                sync_cursor_and_outcome_round_trip,
                one_adoption_runs_at_a_time_and_its_entries_read_back_in_order,
                parallel_consumers_take_exactly_what_is_left,
                one_key_retried_in_parallel_counts_once,
                a_refused_consumption_leaves_no_record_so_a_retry_counts,
                the_per_minute_limit_is_exact_at_its_boundary,
                a_refund_reverses_a_consumption_once,
                a_threshold_is_marked_once_per_window,
                a_refund_gives_nothing_back_to_a_reversed_grant_and_says_so,
                a_consumptions_record_reads_back_with_its_actor,
                the_state_read_shows_every_usage_counter,
                a_metered_counter_is_due_until_settled_and_a_refund_lists_it_again,
                a_report_is_recorded_once_confirmed_once_and_cancelled_once,
                due_counters_page_through_every_due_counter_once,
                a_counter_is_settled_once_and_a_lost_report_is_given_up_once,
                the_meter_position_round_trips,
                parallel_reporters_record_one_pending_report,
                a_grant_is_written_once_with_its_entry_and_read_with_the_state,
                a_grant_to_a_linked_account_lands_once_and_never_after_its_deletion,
                a_grant_is_lengthened_only_forward,
                grants_merge_once_as_read_and_keep_every_credit,
                the_parts_of_a_split_spend_commit_in_order_once_and_refund_each_on_its_own,
                a_dispute_holds_a_grant_once_and_releases_or_forfeits_what_it_holds,
                parallel_spenders_take_exactly_the_credits_left,
                a_spend_commits_all_or_nothing_once_per_key,
                an_exact_spend_holds_only_on_the_grants_as_read,
                a_credit_refund_gives_back_once,
                the_ledger_pages_newest_first_each_entry_once,
                a_grant_is_emptied_once_and_only_as_it_was_read,
                an_api_key_is_found_by_its_hash_and_listed_in_its_account_only,
                revoking_a_key_frees_its_slot_once,
                a_rotated_key_stays_valid_for_its_overlap_and_hands_its_slot_over,
                parallel_creates_never_exceed_the_key_limit,
                a_keys_use_is_recorded_at_most_once_a_minute,
                deleting_an_accounts_keys_removes_every_trace_of_them,
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

/// A fresh table (the template's key schema: `pk`, `sk`, and its `due` index) for one test.
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
        .attribute_definitions(attribute("meter_due"))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(tollgate::adapters::dynamo::meter::DUE_INDEX)
                .key_schema(key("meter_due", KeyType::Hash))
                .projection(IndexProjection::builder().projection_type(ProjectionType::KeysOnly).build())
                .build()
                .unwrap(),
        )
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
    store.apply(&event("evt_ttl"), None).await.unwrap();

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

#[tokio::test]
async fn api_key_items_never_hold_the_key_and_retired_ones_expire() {
    let store = dynamo_store("keyitems").await;
    let (secret, key) = api_key_with_secret("acct_items");
    store.create_api_key(&key, 5).await.unwrap();
    store.record_api_key_use(&key, NOW).await.unwrap();
    store
        .revoke_api_key(&store.api_key_by_hash(&key.hash).await.unwrap().unwrap(), NOW, NOW + 30 * 86_400)
        .await
        .unwrap();

    let items = aws_sdk_dynamodb::Client::new(&local_aws().await)
        .scan()
        .table_name(store.table())
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();

    let dump = format!("{items:?}");
    assert!(!dump.contains(secret.expose()), "{dump}");
    assert!(!dump.contains(&secret.expose()[8..]), "{dump}");
    let keyed: Vec<_> = items.iter().filter(|i| i.contains_key("hash")).collect();
    assert_eq!(keyed.len(), 2, "a lookup and a listing item: {dump}");
    for item in keyed {
        assert_eq!(item["expires_at"].as_n().unwrap(), &(NOW + 30 * 86_400).to_string(), "TTL");
        assert!(!item.contains_key("key_expires_at"), "no expiry was asked for");
    }
    let lookup = items.iter().find(|i| i["pk"].as_s().unwrap().starts_with("APIKEY#")).unwrap();
    assert_eq!(lookup["pk"].as_s().unwrap(), &format!("APIKEY#{}", key.hash.as_str()));
    assert_eq!(lookup["sk"].as_s().unwrap(), "KEY");
}

#[tokio::test]
async fn grants_leave_the_hot_range_once_ended_or_spent_and_a_refund_keeps_a_spent_one() {
    use tollgate::ports::credits::CreditStore;
    let store = dynamo_store("grant-ttl").await;
    let acct = id("acct_grant_ttl");
    store.grant(&acct, &grant("plan-1-1", 10, Some(NOW + 100)), &grant_entry("plan-1-1", 10)).await.unwrap();
    store.grant(&acct, &grant("cs_pack", 5, None), &grant_entry("cs_pack", 5)).await.unwrap();
    let raw = aws_sdk_dynamodb::Client::new(&local_aws().await);
    let ttl = |sk: String| {
        let (raw, table) = (raw.clone(), store.table().to_owned());
        async move {
            let item = raw
                .get_item()
                .table_name(table)
                .key("pk", AttributeValue::S(tollgate::ports::keys::account(&id("acct_grant_ttl"))))
                .key("sk", AttributeValue::S(sk))
                .send()
                .await
                .unwrap()
                .item
                .unwrap();
            item.get("expires_at").map(|v| v.as_n().unwrap().parse::<i64>().unwrap())
        }
    };
    let pack = tollgate::ports::keys::grant("cs_pack");
    let fresh = ttl(pack.clone()).await;

    let (record, entry) = credit_spend("all", "cs_pack", 5, NOW * 1000);
    let emptied = ["cs_pack".to_owned()];
    let spend = Spend {
        account: &acct,
        key: "all",
        record: &record,
        entry: &entry,
        now: NOW,
        emptied: &emptied,
        exact: None,
        part: None,
    };
    assert_eq!(store.spend(&spend).await.unwrap(), Spent::Done);
    let spent = ttl(pack.clone()).await;
    store.refund_credits(&acct, "all", None, NOW * 1000 + 1, "ops").await.unwrap();
    let refunded = ttl(pack).await;

    assert_eq!(ttl(tollgate::ports::keys::grant("plan-1-1")).await, Some(NOW + 100 + 31 * 86_400), "an end: TTL");
    assert_eq!(fresh, None, "a pack never ends");
    assert_eq!(spent, Some(NOW + 31 * 86_400), "spent to 0: it leaves later");
    assert_eq!(refunded, None, "given back: it stays");
    assert_eq!(store.state(&acct).await.unwrap().grants.iter().find(|g| g.id == "cs_pack").unwrap().remaining, 5);
}
