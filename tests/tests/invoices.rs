//! The billing page's reads over HTTP on the local stack (moto, the Stripe stand-in, every
//! handler, the local worker): `GET /invoices` after a checkout, two paid invoices and a
//! failed one; the full sync's backfill of an invoice whose event never arrived;
//! `GET /billing/summary` of an account in grace, in at most two DynamoDB requests; bad input
//! on the new routes.

mod common;

use serde_json::{Value, json};
use std::collections::BTreeSet;
use tollgate::adapters::dynamo::DynamoStore;
use tollgate::app::Never;
use tollgate::app::sync::{Mode, run};
use tollgate::domain::model::AccountId;
use tollgate::edge::webhook::DEV_WEBHOOK_SECRET;
use tollgate::ports::clock::{Clock, SystemClock};
use tollgate::ports::invoices::InvoiceStore;
use tollgate::ports::sync::{SyncCursor, SyncStore};
use tollgate::testing::{FixedClock, RequestLog, counted_client, settings};
use tollgate_dev::trigger::trigger;
use tollgate_standin::TriggerSpec;

struct Stack(common::LocalStack);

async fn stack(test: &str) -> Stack {
    Stack(common::serve_stack(test).await)
}

impl Stack {
    async fn get(&self, path: &str, account: Option<&str>) -> (u16, Value) {
        let mut request = reqwest::Client::new().get(format!("{}{path}", self.0.base));
        if let Some(account) = account {
            request = request.header("x-tollgate-account", account);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Triggers `event` for `account` at the stand-in's `at` (Unix seconds) and delivers its
    /// events unless `skip`; answers the invoices the events carried, by id.
    async fn trigger(&self, event: &str, account: &str, at: i64, skip: bool) -> BTreeSet<String> {
        self.0.standin.set_clock(at);
        let mark = self.0.standin.events().len();
        let spec = TriggerSpec {
            plan: (event == "checkout.session.completed").then(|| "pro".to_owned()),
            ..TriggerSpec::new(event, account)
        };
        trigger(&self.0.base, DEV_WEBHOOK_SECRET, &spec, skip).await.unwrap();
        if !skip {
            self.0.drain().await;
        }
        self.0.standin.events()[mark..]
            .iter()
            .filter(|e| e["data"]["object"]["object"] == "invoice")
            .map(|e| e["data"]["object"]["id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Every invoice id `GET /invoices` lists for `account` in pages of `limit`, in order.
    async fn all_pages(&self, account: &str, limit: usize) -> Vec<String> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..20 {
            let path = match &cursor {
                Some(c) => format!("/invoices?limit={limit}&cursor={c}"),
                None => format!("/invoices?limit={limit}"),
            };
            let (status, page) = self.get(&path, Some(account)).await;
            assert_eq!(status, 200, "{page}");
            let data = page["data"].as_array().unwrap();
            assert!(data.len() <= limit, "{page}");
            ids.extend(data.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return ids,
            }
        }
        panic!("pagination did not end");
    }
}

/// A checkout, two paid invoices and a failed one, a minute apart: answers the invoices by
/// status as the stand-in made them (paid ones oldest first) and the last trigger's time.
async fn two_paid_one_failed(stack: &Stack, account: &str) -> (Vec<String>, String, i64) {
    let start = SystemClock.now();
    let mut paid = Vec::new();
    stack.trigger("checkout.session.completed", account, start, false).await;
    for (n, at) in [start + 60, start + 120].into_iter().enumerate() {
        let invoices = stack.trigger("invoice.paid", account, at, false).await;
        assert_eq!(invoices.len(), 1, "payment {n} is of one invoice: {invoices:?}");
        paid.extend(invoices);
    }
    let failed = stack.trigger("invoice.payment_failed", account, start + 180, false).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    (paid, failed.into_iter().next().unwrap(), start + 180)
}

#[tokio::test]
async fn invoices_are_listed_newest_first_with_their_links_each_page_once_and_to_their_account_only() {
    let stack = stack("invoices-list").await;
    let (paid, failed, _) = two_paid_one_failed(&stack, "acct_inv").await;

    let (status, first) = stack.get("/invoices", Some("acct_inv")).await;
    let by_one = stack.all_pages("acct_inv", 1).await;
    let by_two = stack.all_pages("acct_inv", 2).await;
    let (other_status, other) = stack.get("/invoices", Some("acct_someone_else")).await;

    assert_eq!(status, 200, "{first}");
    let listed = first["data"].as_array().unwrap();
    let ids: Vec<&str> = listed.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [failed.as_str(), paid[1].as_str(), paid[0].as_str()], "newest first: {first}");
    assert_eq!(first["next_cursor"], Value::Null);
    let statuses: Vec<&str> = listed.iter().map(|i| i["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["open", "paid", "paid"]);
    for invoice in listed {
        let id = invoice["id"].as_str().unwrap();
        assert!(invoice["hosted_invoice_url"].as_str().unwrap().ends_with(&format!("/invoices/{id}")), "{invoice}");
        assert!(invoice["invoice_pdf"].as_str().unwrap().ends_with(&format!("/invoices/{id}/pdf")), "{invoice}");
        assert!(invoice["number"].is_string() && invoice["currency"] == "usd", "{invoice}");
        assert!(invoice["period"]["start"].is_i64() && invoice["period"]["end"].is_i64(), "{invoice}");
        assert!(invoice["created"].is_i64() && invoice["amount_due"].as_i64().unwrap() > 0, "{invoice}");
    }
    assert_eq!(listed[1]["amount_paid"], listed[1]["amount_due"], "paid in full");
    assert_eq!(listed[0]["amount_paid"], 0, "the failed one is unpaid");
    assert_eq!(by_one, ids, "pages of one list each invoice once");
    assert_eq!(by_two, ids, "pages of two list each invoice once");
    assert_eq!((other_status, other), (200, json!({"data": [], "next_cursor": null})));
}

#[tokio::test]
async fn the_full_sync_backfills_an_invoice_whose_event_never_arrived() {
    let stack = stack("invoices-backfill").await;
    let account = "acct_missed";
    let start = SystemClock.now();
    stack.trigger("checkout.session.completed", account, start, false).await;
    let seen = stack.trigger("invoice.paid", account, start + 60, false).await;
    let missed = stack.trigger("invoice.paid", account, start + 120, true).await;
    let before = stack.all_pages(account, 10).await;
    // The replay would hand the missed events over too: start it past them (as when they
    // are older than Stripe's 30-day event list), so only the backfill can bring the invoice.
    let past_them = SyncCursor { created: start + 121, ..SyncCursor::default() };
    stack.0.app.store.save_cursor(&past_them).await.unwrap();

    let outcome = run(&stack.0.app.sync, Mode::Full, &Never).await.unwrap();

    let after = stack.all_pages(account, 10).await;
    assert_eq!(outcome.replayed, 0, "nothing was replayed: {outcome:?}");
    let missed: Vec<String> = missed.into_iter().collect();
    let seen: Vec<String> = seen.into_iter().collect();
    assert_eq!(before, seen, "the worker never saw {missed:?}");
    assert_eq!(after, [missed[0].clone(), seen[0].clone()], "backfilled, newest first");
    let stored = stack.0.app.store.invoices(&AccountId::parse(account).unwrap(), 10, None).await.unwrap();
    assert_eq!(stored.invoices[0].status, "paid");
    assert!(stored.invoices[0].hosted_invoice_url.is_some());
}

#[tokio::test]
async fn the_summary_of_an_account_in_grace_links_the_failed_invoice_from_two_requests() {
    let stack = stack("invoices-summary").await;
    let (paid, failed, at) = two_paid_one_failed(&stack, "acct_grace").await;
    let aws = tollgate_dev::local::require_server().await.unwrap();
    let log = RequestLog::default();
    let counted = DynamoStore::new(
        counted_client(tollgate::adapters::aws::dynamodb(&aws).config(), &log),
        &stack.0.resources.table,
    );

    let (status, summary) = stack.get("/billing/summary", Some("acct_grace")).await;
    let direct = tollgate::app::read::billing_summary(
        &counted,
        &settings(&FixedClock::at(at)),
        &AccountId::parse("acct_grace").unwrap(),
    )
    .await
    .unwrap();

    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["status"], "past_due", "{summary}");
    assert_eq!(summary["access"], json!({"allowed": true, "reason": "grace_period"}), "{summary}");
    assert_eq!(summary["payment_action_required"], true);
    assert_eq!(summary["payment_action"]["invoice_id"], failed.as_str());
    let link = summary["payment_action"]["hosted_invoice_url"].as_str().unwrap();
    assert!(link.ends_with(&format!("/invoices/{failed}")), "{summary}");
    assert_eq!(summary["latest_invoice"]["id"], failed.as_str());
    assert_ne!(summary["latest_invoice"]["id"], paid[1].as_str());
    assert_eq!(summary["plan"], "pro");
    assert!(summary["grace_until"].as_i64().unwrap() > at, "{summary}");
    assert!(summary["renewal"]["amount"].as_u64().unwrap() > 0, "the price's amount: {summary}");
    assert_eq!(summary["renewal"]["at"], summary["current_period_end"]);
    assert!(summary["usage"]["metrics"].is_object() && summary["credits"]["balance"].is_u64(), "{summary}");
    assert_eq!(direct.payment_action.unwrap().invoice_id, failed);
    let requests = log.take();
    assert!(requests.len() <= 2, "at most two DynamoDB requests: {requests:?}");
    assert_eq!(requests, ["Query", "Query"], "the state and the newest invoices");
}

#[tokio::test]
async fn bad_input_on_the_new_routes_is_a_clear_4xx_and_changes_nothing() {
    let stack = stack("invoices-bad-input").await;
    stack.two_invoices("acct_bad").await;
    let before = stack.all_pages("acct_bad", 10).await;
    let hostile = hex_of("STATE#PROFILE");
    let refusals = [
        ("/invoices?limit=0", "invalid_limit"),
        ("/invoices?limit=101", "invalid_limit"),
        ("/invoices?limit=-1", "invalid_limit"),
        ("/invoices?limit=ten", "invalid_limit"),
        ("/invoices?limit=99999999999999999999999", "invalid_limit"),
        ("/invoices?cursor=zz", "invalid_cursor"),
        (&format!("/invoices?cursor={hostile}"), "invalid_cursor"),
        (&format!("/invoices?cursor={}", "a".repeat(5000)), "invalid_cursor"),
        ("/invoices?limit=1&limit=2", "invalid_invoices"),
        ("/usage/history?periods=0", "invalid_periods"),
        ("/usage/history?periods=14", "invalid_periods"),
        ("/usage/history?periods=18446744073709551616", "invalid_periods"),
        ("/usage/history?periods=%00", "invalid_periods"),
    ];

    for (path, code) in refusals {
        let (status, body) = stack.get(path, Some("acct_bad")).await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some(code)), "{path}: {body}");
    }
    for path in ["/invoices", "/usage/history", "/billing/summary"] {
        let (status, body) = stack.get(path, None).await;
        assert_eq!(status, 401, "{path} without an identity: {body}");
    }
    assert_eq!(stack.all_pages("acct_bad", 10).await, before, "nothing changed");
}

fn hex_of(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

impl Stack {
    /// A checkout and one paid invoice, delivered.
    async fn two_invoices(&self, account: &str) {
        let start = SystemClock.now();
        self.trigger("checkout.session.completed", account, start, false).await;
        self.trigger("invoice.paid", account, start + 60, false).await;
    }
}

#[tokio::test]
async fn an_invoices_events_delivered_in_reverse_leave_its_latest_state() {
    let stack = stack("invoices-order").await;
    let account = "acct_order";
    let start = SystemClock.now();
    stack.trigger("checkout.session.completed", account, start, false).await;
    let mark = stack.0.standin.events().len();
    let failed = stack.trigger("invoice.payment_failed", account, start + 60, true).await;
    let retried = stack.trigger("invoice.paid", account, start + 120, true).await;
    let mut events = stack.0.standin.events().split_off(mark);
    events.reverse();

    stack.0.deliver(&events).await;

    assert_eq!(failed, retried, "the retry paid the invoice that failed");
    let (_, listed) = stack.get("/invoices", Some(account)).await;
    let invoice = &listed["data"][0];
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(invoice["status"], "paid", "the failure, delivered last, is an older reading: {listed}");
    assert_eq!(invoice["amount_paid"], invoice["amount_due"]);
}
