//! `DELETE /account` of a large account over HTTP on the local stack (moto, the stand-in, every
//! handler): the first answer forgets everything of the account at once, and repeating the
//! request deletes the rest in pages until it answers `complete: true`.

mod common;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use serde_json::{Value, json};
use tollgate::edge::webhook::DEV_WEBHOOK_SECRET;
use tollgate::ports::clock::{Clock, SystemClock};
use tollgate_dev::resources::{Template, template_path};
use tollgate_standin::TriggerSpec;

const ACCOUNT: &str = "acct_large";
const LEDGER_ENTRIES: usize = 20_000;
const INVOICES: usize = 150;

async fn call(base: &str, method: reqwest::Method, path: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .header("x-tollgate-account", ACCOUNT)
        .header(tollgate_dev::gateway::OPERATOR_HEADER, "arn:aws:iam::123456789012:role/support")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// What the API shows of the account: every read a customer or the operator has.
async fn readable(base: &str) -> Vec<(String, Value)> {
    let mut shown = Vec::new();
    for path in ["/credits?limit=100", "/invoices?limit=100", "/usage/history", "/billing/summary", "/subscription"] {
        let (status, body) = call(base, reqwest::Method::GET, path).await;
        assert_eq!(status, 200, "{path}: {body}");
        shown.push((path.to_owned(), body));
    }
    let (status, body) = call(base, reqwest::Method::GET, &format!("/operator/accounts/{ACCOUNT}?limit=100")).await;
    assert_eq!(status, 200, "{body}");
    shown.push(("operator".to_owned(), body));
    shown
}

/// Writes `n` consumption entries of the account's ledger, a day old and older, 25 a request.
async fn seed_ledger(dynamodb: &aws_sdk_dynamodb::Client, table: &str, n: usize) {
    let day_ago_ms = (SystemClock.now() - 86_400) * 1000;
    let items: Vec<WriteRequest> = (0..n)
        .map(|i| {
            let at_ms = day_ago_ms - i64::try_from(i).unwrap();
            let id = format!("seed-{i}");
            let item = [
                ("pk", AttributeValue::S(format!("ACCOUNT#{ACCOUNT}"))),
                ("sk", AttributeValue::S(format!("LEDGER#{at_ms:016}#2#{id}"))),
                ("id", AttributeValue::S(id)),
                ("kind", AttributeValue::S("consumption".into())),
                ("at_ms", AttributeValue::N(at_ms.to_string())),
                ("credits", AttributeValue::N("-1".into())),
                ("event", AttributeValue::S("api_call_basic".into())),
                ("quantity", AttributeValue::N("1".into())),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            WriteRequest::builder().put_request(PutRequest::builder().set_item(Some(item)).build().unwrap()).build()
        })
        .collect();
    for chunk in items.chunks(25) {
        let out = dynamodb.batch_write_item().request_items(table, chunk.to_vec()).send().await.unwrap();
        assert!(out.unprocessed_items.is_none_or(|u| u.is_empty()), "moto processes every item");
    }
}

/// Every item of the account's partition whose sort key starts with one of `prefixes`.
async fn stored(dynamodb: &aws_sdk_dynamodb::Client, table: &str, prefixes: &[&str]) -> usize {
    let mut count = 0;
    let mut start = None;
    loop {
        let page = dynamodb
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(format!("ACCOUNT#{ACCOUNT}")))
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        count += page
            .items()
            .iter()
            .filter(|item| matches!(item.get("sk"), Some(AttributeValue::S(sk)) if prefixes.iter().any(|p| sk.starts_with(p))))
            .count();
        start = page.last_evaluated_key;
        if start.is_none() {
            return count;
        }
    }
}

#[tokio::test]
async fn a_large_account_is_forgotten_at_the_first_answer_and_deleted_by_repeating_it() {
    use tollgate_dev::server::{App, router};
    let (aws, resources) = common::local("deletion").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    // A short budget, so that the deletion takes several requests.
    let env = tollgate_dev::env::LocalEnv::new(&base, &resources).unwrap().with("ACCOUNT_DELETION_BUDGET_MS", "8000");
    let app = std::sync::Arc::new(App::new(&aws, &Template::load(&template_path()).unwrap(), &env).unwrap());
    let served = router(std::sync::Arc::clone(&app), None);
    tokio::spawn(async move { axum::serve(listener, served).await });
    let sqs = tollgate::adapters::aws::sqs(&aws);
    let events = &resources.queue("EventsQueue").unwrap().url;

    // A paying account with a pack, invoices, usage and a long ledger.
    let spec = TriggerSpec::new("checkout.session.completed", ACCOUNT).plan("pro");
    tollgate_dev::trigger::trigger(&base, DEV_WEBHOOK_SECRET, &spec, false).await.unwrap();
    let pack =
        TriggerSpec { pack: Some("credits_1000".into()), ..TriggerSpec::new("checkout.session.completed", ACCOUNT) };
    tollgate_dev::trigger::trigger(&base, DEV_WEBHOOK_SECRET, &pack, false).await.unwrap();
    while tollgate_dev::worker::poll_once(&app, &sqs, events).await.unwrap() > 0 {}
    let usage = json!({"metric": "api_calls", "quantity": 3, "idempotency_key": "u1"});
    let recorded = reqwest::Client::new()
        .post(format!("{base}/operator/accounts/{ACCOUNT}/usage"))
        .header(tollgate_dev::gateway::OPERATOR_HEADER, "backend")
        .json(&usage)
        .send()
        .await
        .unwrap();
    assert_eq!(recorded.status(), 200);
    let store = &app.store;
    let account = tollgate::domain::model::AccountId::parse(ACCOUNT).unwrap();
    let customer =
        tollgate::ports::accounts::AccountStore::account(store, &account).await.unwrap().unwrap().customer_id;
    for n in 0..INVOICES {
        let created = SystemClock.now() - 2 * 86_400 - i64::try_from(n).unwrap();
        let object = json!({
            "object": "invoice", "id": format!("in_seed_{n}"), "status": "paid", "amount_due": 1900,
            "amount_paid": 1900, "currency": "usd", "created": created, "period_start": created, "period_end": created,
        });
        let invoice = tollgate::domain::invoices::Invoice::from_json(&object, &customer).unwrap();
        assert!(tollgate::ports::invoices::InvoiceStore::put_invoice(store, &account, &invoice).await.unwrap());
    }
    let dynamodb = tollgate::adapters::aws::dynamodb(&aws);
    seed_ledger(&dynamodb, &resources.table, LEDGER_ENTRIES).await;
    let before = readable(&base).await;
    let credits = &before[0].1;
    assert!(credits["balance"].as_i64().unwrap() >= 1000 && credits["next_cursor"].is_string(), "{credits}");
    assert!(before[1].1["data"].as_array().unwrap().len() > 100 - 1, "invoices are listed before");

    let (status, first) = call(&base, reqwest::Method::DELETE, "/account").await;
    let after = readable(&base).await;
    let mut answers = vec![first.clone()];
    while answers.last().unwrap()["complete"] != true {
        assert!(answers.len() < 400, "the deletion never completes: {:?}", answers.last());
        let (status, answer) = call(&base, reqwest::Method::DELETE, "/account").await;
        assert_eq!(status, 200, "{answer}");
        answers.push(answer);
    }

    assert_eq!(status, 200, "{first}");
    assert_eq!((first["deleted"].as_bool(), first["complete"].as_bool()), (Some(true), Some(false)), "{first}");
    let shown = |path: &str| &after.iter().find(|(p, _)| p == path).unwrap().1;
    let credits = shown("/credits?limit=100");
    assert_eq!(
        (credits["balance"].as_i64(), credits["grants"].as_array().map(Vec::len)),
        (Some(0), Some(0)),
        "{credits}"
    );
    assert_eq!(
        (credits["entries"].as_array().map(Vec::len), &credits["next_cursor"]),
        (Some(0), &Value::Null),
        "{credits}"
    );
    let invoices = shown("/invoices?limit=100");
    assert_eq!(invoices, &json!({"data": [], "next_cursor": null}), "no invoice of the deleted account");
    let summary = shown("/billing/summary");
    assert!(summary["latest_invoice"].is_null() && summary["credits"]["balance"] == 0, "{summary}");
    assert_eq!(shown("/subscription")["plan"], "free");
    let operator = shown("operator");
    assert!(operator["credits"]["entries"].as_array().unwrap().is_empty(), "{operator}");
    let history = shown("/usage/history");
    let windows = history["periods"].as_array().map_or(0, Vec::len);
    assert!(windows <= 2, "the current window and at most the one of the deletion: {history}");

    assert!(answers.len() >= 2, "the deletion took several requests: {}", answers.len());
    assert!(answers.iter().all(|a| a["deleted"] == true));
    assert_eq!(stored(&dynamodb, &resources.table, &["LEDGER#", "INVOICE#", "STATE#GRANT#"]).await, 0);
    assert_eq!(stored(&dynamodb, &resources.table, &["STATE#TOMBSTONE"]).await, 1, "the tombstone stays");
}
