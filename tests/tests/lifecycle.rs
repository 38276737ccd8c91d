//! An account's lifecycle over HTTP on the local stack (moto, the Stripe stand-in, every
//! handler, the local worker), as a new user drives it: a customer deleted in Stripe, an
//! account deleted by its owner, refunds, a second subscription, a buyer-set account reference
//! and repeated payment attempts. Each test reproduces a defect the first round had.

mod common;

use serde_json::{Value, json};
use tollgate::domain::model::AccountId;
use tollgate::edge::webhook::DEV_WEBHOOK_SECRET;
use tollgate::ports::accounts::AccountStore;
use tollgate::ports::subscriptions::SubscriptionStore;
use tollgate_dev::trigger::trigger;
use tollgate_standin::TriggerSpec;

struct Stack(common::LocalStack);

async fn stack(test: &str) -> Stack {
    Stack(common::serve_stack(test).await)
}

fn id(raw: &str) -> AccountId {
    AccountId::parse(raw).unwrap()
}

impl Stack {
    fn base(&self) -> &str {
        &self.0.base
    }

    async fn call(&self, method: reqwest::Method, path: &str, account: &str, body: Value) -> (u16, Value) {
        let response = reqwest::Client::new()
            .request(method, format!("{}{path}", self.base()))
            .header("x-tollgate-account", account)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn checkout(&self, account: &str, plan: &str, interval: &str) -> (u16, Value) {
        self.call(reqwest::Method::POST, "/checkout", account, json!({"plan": plan, "interval": interval})).await
    }

    async fn read(&self, account: &str) -> Value {
        self.call(reqwest::Method::GET, "/subscription", account, Value::Null).await.1
    }

    /// Signs and delivers `events` to the local intake in the order given, then drains the
    /// queue through the worker.
    async fn deliver(&self, events: &[Value]) {
        self.0.deliver(events).await;
    }

    /// The events the stand-in recorded since `mark` (oldest first).
    fn events_since(&self, mark: usize) -> Vec<Value> {
        self.0.standin.events().split_off(mark)
    }

    /// Subscribes `account` to pro monthly through Tollgate's own checkout and the stand-in's
    /// completion of the session, with every event delivered. Answers the customer.
    async fn subscribe(&self, account: &str) -> String {
        let mark = self.0.standin.events().len();
        let (status, session) = self.checkout(account, "pro", "month").await;
        assert_eq!(status, 200, "{session}");
        let completed = self.0.standin.complete_checkout_session(session["session_id"].as_str().unwrap()).unwrap();
        self.deliver(&self.events_since(mark)).await;
        completed["customer"].as_str().unwrap().to_owned()
    }

    /// Triggers `spec` in the stand-in and delivers its events (unless `skip`), answering them.
    async fn trigger(&self, spec: TriggerSpec, skip: bool) -> Vec<Value> {
        let mark = self.0.standin.events().len();
        trigger(self.base(), DEV_WEBHOOK_SECRET, &spec, skip).await.unwrap();
        if !skip {
            self.0.drain().await;
        }
        self.events_since(mark)
    }

    /// The idempotency keys of the customer-create requests Stripe received, in order.
    fn customers_created(&self) -> Vec<String> {
        self.0
            .standin
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path == "/v1/customers")
            .filter_map(|r| r.idempotency_key)
            .collect()
    }

    fn session_requests(&self) -> Vec<tollgate_standin::RecordedRequest> {
        self.0
            .standin
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path == "/v1/checkout/sessions")
            .collect()
    }
}

fn is_free_and_unlinked(read: &Value) {
    assert_eq!(read["plan"], "free", "{read}");
    assert_eq!(read["access"]["allowed"], true, "{read}");
}

#[tokio::test]
async fn a_customer_deleted_in_stripe_unlinks_the_account_in_either_order_and_checkout_starts_afresh() {
    let stack = stack("customer-deleted").await;
    for (account, reversed) in [("acct_in_order", false), ("acct_reversed", true)] {
        let old = stack.subscribe(account).await;
        let mut events = stack.trigger(TriggerSpec::new("customer.deleted", account), true).await;
        let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
        assert_eq!(types, ["customer.subscription.deleted", "customer.deleted"], "Stripe's order");
        if reversed {
            events.reverse();
        }
        stack.deliver(&events).await;

        let read = stack.read(account).await;
        let (status, session) = stack.checkout(account, "pro", "month").await;

        is_free_and_unlinked(&read);
        assert_eq!(stack.0.app.store.account_for_customer(&old).await.unwrap(), None, "{account}");
        assert_eq!(status, 200, "{account}: {session}");
        let profile = stack.0.app.store.account(&id(account)).await.unwrap().expect("linked to a new customer");
        assert_ne!(profile.customer_id, old, "{account}: a new customer, not the deleted one");
    }
    let keys = stack.customers_created();
    assert_eq!(
        keys.iter().collect::<std::collections::BTreeSet<_>>().len(),
        keys.len(),
        "one key per customer: {keys:?}"
    );
}

#[tokio::test]
async fn an_account_deletion_sticks_against_late_events_replays_and_a_full_sync() {
    let stack = stack("delete-sticks").await;
    let account = "acct_gone";
    let mark = stack.0.standin.events().len();
    let old = stack.subscribe(account).await;
    let history = stack.events_since(mark);

    let (status, deleted) = stack.call(reqwest::Method::DELETE, "/account", account, Value::Null).await;
    assert_eq!((status, deleted["canceled_subscriptions"].as_u64()), (200, Some(1)), "{deleted}");
    // The cancellation's own events, a replay of everything before, and later events about
    // the old customer (Stripe still has it: the account's owner deleted Tollgate's data only).
    let cancel_events = stack.events_since(mark + history.len());
    stack.deliver(&cancel_events).await;
    stack.deliver(&history).await;
    stack.trigger(TriggerSpec::new("invoice.paid", account), false).await;
    stack.trigger(TriggerSpec::new("customer.subscription.updated", account), false).await;
    tollgate_dev::ops::sync(stack.0.port, true).await.unwrap();

    let read = stack.read(account).await;
    let state = stack.0.app.store.state(&id(account)).await.unwrap();
    assert_eq!(read["status"], Value::Null, "no projection came back: {read}");
    is_free_and_unlinked(&read);
    assert_eq!((state.profile, state.subscription), (None, None));
    assert_eq!(stack.0.app.store.account_for_customer(&old).await.unwrap(), None);
    assert!(state.tombstone.trial_used && state.tombstone.deleted_at.is_some(), "{:?}", state.tombstone);
}

#[tokio::test]
async fn deletion_keeps_the_trial_used_and_the_checkout_rate_window() {
    let stack = stack("delete-abuse").await;
    // The trial: used by the first subscription, not offered after deletion.
    stack.subscribe("acct_trial").await;
    assert!(stack.session_requests()[0].field("subscription_data[trial_period_days]").is_some(), "first: a trial");
    stack.call(reqwest::Method::DELETE, "/account", "acct_trial", Value::Null).await;
    let (status, _) = stack.checkout("acct_trial", "pro", "month").await;
    let again = stack.session_requests().pop().unwrap();
    assert_eq!(status, 200);
    assert_eq!(again.field("subscription_data[trial_period_days]"), None, "no second trial after deletion");

    // The rate window: five sessions a minute, and deleting does not reset it. The six calls
    // below must fall in one clock minute, the limit's window.
    common::within_one_minute(std::time::Duration::from_secs(20)).await;
    let plans = [("pro", "month"), ("pro", "year"), ("team", "month"), ("team", "year")];
    for (plan, interval) in plans {
        assert_eq!(stack.checkout("acct_rate", plan, interval).await.0, 200);
    }
    let fifth = stack
        .call(
            reqwest::Method::POST,
            "/checkout",
            "acct_rate",
            json!({"plan": "pro", "interval": "month", "success_url": format!("{}/fifth", stack.base())}),
        )
        .await;
    assert_eq!(fifth.0, 200, "{}", fifth.1);
    stack.call(reqwest::Method::DELETE, "/account", "acct_rate", Value::Null).await;
    let (status, limited) = stack.checkout("acct_rate", "pro", "month").await;
    assert_eq!((status, limited["error"]["code"].as_str()), (429, Some("rate_limited")), "{limited}");
}

#[tokio::test]
async fn only_a_full_refund_of_the_current_periods_invoice_downgrades() {
    let stack = stack("refunds").await;
    let account = "acct_refund";
    let customer = stack.subscribe(account).await;
    stack.trigger(TriggerSpec::new("invoice.paid", account), false).await;
    // The first period's charge is refunded now, but Stripe's event arrives only after the
    // next period was paid: it refunds an earlier period's invoice.
    let earlier_refund = stack.trigger(TriggerSpec::new("charge.refunded", account), true).await;
    stack.trigger(TriggerSpec::new("invoice.paid", account), false).await;
    // A one-off charge of the same customer, not paid towards any invoice.
    let one_off = json!({
        "id": "evt_refund_one_off", "object": "event", "type": "charge.refunded",
        "created": tollgate::ports::clock::Clock::now(&tollgate::ports::clock::SystemClock), "livemode": false,
        "data": {"object": {"id": "ch_one_off", "object": "charge", "customer": customer, "amount": 500,
            "amount_refunded": 500, "refunded": true, "payment_intent": "pi_one_off", "paid": true}}
    });

    stack.deliver(&[one_off]).await;
    stack.deliver(&earlier_refund).await;
    let after_other_refunds = stack.read(account).await;
    stack.trigger(TriggerSpec::new("charge.refunded", account), false).await;
    let after_current = stack.read(account).await;

    assert_eq!(earlier_refund.len(), 1, "{earlier_refund:?}");
    assert_eq!(after_other_refunds["plan"], "pro", "{after_other_refunds}");
    assert_eq!(after_other_refunds["access"]["allowed"], true, "{after_other_refunds}");
    assert_eq!(
        (after_current["plan"].as_str(), after_current["access"]["reason"].as_str()),
        (Some("free"), Some("refunded")),
        "{after_current}"
    );
}

#[tokio::test]
async fn checkout_refuses_a_second_subscription_before_the_first_ones_webhook_arrives() {
    let stack = stack("second-subscription").await;
    let account = "acct_twice";
    let (status, session) = stack.checkout(account, "pro", "month").await;
    assert_eq!(status, 200, "{session}");
    // Paid, but the webhooks have not arrived (or wait behind others in the queue).
    stack.0.standin.complete_checkout_session(session["session_id"].as_str().unwrap()).unwrap();

    let (status, refused) = stack.checkout(account, "team", "month").await;

    assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("subscription_exists")), "{refused}");
    assert_eq!(stack.session_requests().len(), 1, "no second session was created");
    assert_eq!(stack.read(account).await["plan"], "pro", "and the read caught up from Stripe's answer");
}

#[tokio::test]
async fn a_buyer_set_client_reference_id_links_no_account() {
    let stack = stack("client-reference").await;
    // A Payment Link's session: Stripe made the customer, the buyer typed the reference.
    let event = json!({
        "id": "evt_payment_link", "object": "event", "type": "checkout.session.completed",
        "created": tollgate::ports::clock::Clock::now(&tollgate::ports::clock::SystemClock), "livemode": false,
        "data": {"object": {"id": "cs_link", "object": "checkout.session", "mode": "subscription",
            "customer": "cus_stranger", "client_reference_id": "acct_victim", "metadata": {}}}
    });

    stack.deliver(&[event]).await;

    assert_eq!(stack.0.app.store.account_for_customer("cus_stranger").await.unwrap(), None);
    assert_eq!(stack.0.app.store.account(&id("acct_victim")).await.unwrap(), None);
}

#[tokio::test]
async fn each_failed_payment_attempt_is_its_own_notice_and_one_payment_is_one() {
    let stack = stack("notices").await;
    let account = "acct_notice";
    stack.subscribe(account).await;
    stack.trigger(TriggerSpec::new("invoice.payment_failed", account), false).await;
    stack.trigger(TriggerSpec::new("invoice.payment_failed", account), false).await;
    let paid = stack.trigger(TriggerSpec::new("invoice.paid", account), false).await;
    // A redelivery of the payment's events changes nothing either.
    stack.deliver(&paid).await;

    let url = &stack.0.resources.queue("NotificationsQueue").unwrap().url;
    let notices: Vec<tollgate::domain::notifications::Notification> =
        common::receive_all(&stack.0.sqs, url).await.iter().map(|body| serde_json::from_str(body).unwrap()).collect();
    let ids = |kind: &str| -> std::collections::BTreeSet<(String, String)> {
        notices.iter().filter(|n| n.kind.as_str() == kind).map(|n| (n.id.clone(), n.object_id.clone())).collect()
    };

    let failed = ids("payment_failed");
    let invoices: std::collections::BTreeSet<_> = failed.iter().map(|(_, invoice)| invoice).collect();
    assert_eq!((failed.len(), invoices.len()), (2, 1), "two attempts on one invoice, two notices: {failed:?}");
    let succeeded = ids("payment_succeeded");
    assert_eq!(
        succeeded.len(),
        1,
        "invoice.paid and invoice.payment_succeeded, delivered twice, are one notice: {succeeded:?}"
    );
}
