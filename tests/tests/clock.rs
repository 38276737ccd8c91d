//! The local stack's clock over HTTP (`/_dev/clock`): it moves forward only, every function and
//! the Stripe stand-in read it, and the trigger signs events at its time, so the intake accepts
//! them however far the clock was moved.

mod common;

use serde_json::{Value, json};
use tollgate::edge::webhook::DEV_WEBHOOK_SECRET;
use tollgate_standin::TriggerSpec;

const DAY: i64 = 86_400;

async fn clock(base: &str, body: Option<Value>) -> (u16, Value) {
    let http = reqwest::Client::new();
    let request = match body {
        None => http.get(format!("{base}/_dev/clock")),
        Some(body) => http.post(format!("{base}/_dev/clock")).json(&body),
    };
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn read(base: &str, path: &str, account: &str) -> Value {
    let response =
        reqwest::Client::new().get(format!("{base}{path}")).header("x-tollgate-account", account).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_stack_clock_moves_forward_only_and_every_function_and_the_standin_follow_it() {
    let stack = common::serve_clocked_stack("clock").await;
    let account = "acct_clock";
    let (_, shown) = clock(&stack.base, None).await;
    let before = read(&stack.base, "/usage", account).await;

    let (advanced, moved) = clock(&stack.base, Some(json!({"advance": 62 * DAY}))).await;
    let after = read(&stack.base, "/usage", account).await;
    let back = clock(&stack.base, Some(json!({"set": shown["now"]}))).await;
    let negative = clock(&stack.base, Some(json!({"advance": -5}))).await;
    let neither = clock(&stack.base, Some(json!({"forward": 5}))).await;
    let spec = TriggerSpec::new("checkout.session.completed", account).plan("pro");
    let delivered = tollgate_dev::trigger::trigger(&stack.base, DEV_WEBHOOK_SECRET, &spec, false).await;
    stack.drain().await;
    let subscribed = read(&stack.base, "/subscription", account).await;
    let (_, now) = clock(&stack.base, None).await;

    let start = shown["now"].as_i64().unwrap();
    assert_eq!(shown["iso"], tollgate_dev::clock::iso(start));
    assert_eq!(advanced, 200);
    let moved_to = moved["now"].as_i64().unwrap();
    assert!((moved_to - start - 62 * DAY).abs() <= 2, "{shown} -> {moved}");
    let window = |at: i64| tollgate::domain::usage::window(None, at);
    assert_eq!(before["period_start"], window(start).start);
    assert_eq!(after["period_start"], window(moved_to).start, "the usage function reads the stack's time");
    assert_eq!((back.0, back.1["error"]["code"].as_str()), (400, Some("clock_backwards")));
    assert_eq!((negative.0, negative.1["error"]["code"].as_str()), (400, Some("clock_backwards")));
    assert_eq!((neither.0, neither.1["error"]["code"].as_str()), (400, Some("invalid_clock")));
    assert!(delivered.is_ok(), "events signed at the stack's time are accepted: {delivered:?}");
    assert_eq!(subscribed["plan"], "pro");
    let period_start = subscribed["usage"]["period_start"].as_i64().unwrap();
    assert!((period_start - moved_to).abs() <= 5, "the stand-in made the period at the stack's time: {subscribed}");
    assert!(now["now"].as_i64().unwrap() >= moved_to, "the clock runs on from where it was set");
}

#[tokio::test]
async fn a_stack_on_the_system_clock_refuses_to_move_it() {
    let stack = common::serve_stack("clock-fixed").await;

    let (shown, body) = clock(&stack.base, None).await;
    let (status, refused) = clock(&stack.base, Some(json!({"advance": 60}))).await;

    assert_eq!(shown, 200);
    assert!(body["now"].as_i64().is_some());
    assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("clock_fixed")));
}

async fn checkout(base: &str, account: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{base}/checkout"))
        .header("x-tollgate-account", account)
        .json(&json!({"plan": "pro", "interval": "month"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["session_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_session_paid_with_tollgate_dev_pay_subscribes_once_and_not_after_it_expired() {
    let stack = common::serve_clocked_stack("pay").await;
    let session = checkout(&stack.base, "acct_pays").await;
    let late = checkout(&stack.base, "acct_late").await;

    let paid = tollgate_dev::trigger::pay(&stack.base, DEV_WEBHOOK_SECRET, &session, |_| {}).await;
    stack.drain().await;
    let again = tollgate_dev::trigger::pay(&stack.base, DEV_WEBHOOK_SECRET, &session, |_| {}).await;
    clock(&stack.base, Some(json!({"advance": DAY + 60}))).await;
    let expired = tollgate_dev::trigger::pay(&stack.base, DEV_WEBHOOK_SECRET, &late, |_| {}).await;
    let read = read(&stack.base, "/subscription", "acct_pays").await;
    let unpaid = read_plan(&stack.base, "acct_late").await;

    let deliveries = paid.unwrap();
    assert!(deliveries.iter().any(|d| d.event_type == "checkout.session.completed"), "{deliveries:?}");
    assert!(deliveries.iter().all(|d| d.status == Some(200)), "{deliveries:?}");
    assert_eq!(read["plan"], "pro");
    let again = again.unwrap_err().to_string();
    assert!(again.contains("HTTP 400") && again.contains("not open"), "{again}");
    let expired = expired.unwrap_err().to_string();
    assert!(expired.contains("HTTP 400") && expired.contains("has expired"), "{expired}");
    assert_eq!(unpaid, "free");
}

async fn read_plan(base: &str, account: &str) -> String {
    read(base, "/subscription", account).await["plan"].as_str().unwrap().to_owned()
}

/// 2027-03-10T12:00:00Z: a Pro trial started then ends on the 24th, the billing day.
const MARCH_10: i64 = 1_804_680_000;
const HOUR: i64 = 3_600;

async fn card(base: &str, account: &str, behaviour: &str) {
    let response = reqwest::Client::new()
        .post(format!("{base}/stripe/_tollgate/customers/{account}/card"))
        .json(&json!({ "behaviour": behaviour }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// The notification kinds queued since the last call, in order.
async fn notified(stack: &common::LocalStack) -> Vec<String> {
    stack.notifications().await.iter().map(|n| n["kind"].as_str().unwrap().to_owned()).collect()
}

/// What the account's reads say at one step of its life.
#[derive(Debug)]
struct Step {
    subscription: Value,
    credits: Value,
    invoices: Vec<Value>,
    notices: Vec<String>,
}

async fn step(stack: &common::LocalStack, account: &str) -> Step {
    let subscription = read(&stack.base, "/subscription", account).await;
    let credits = read(&stack.base, "/credits", account).await;
    let invoices = read(&stack.base, "/invoices", account).await["data"].as_array().unwrap().clone();
    Step { subscription, credits, invoices, notices: notified(stack).await }
}

impl Step {
    fn state(&self) -> (&str, &str, &str) {
        let s = &self.subscription;
        (s["plan"].as_str().unwrap(), s["status"].as_str().unwrap(), s["access"]["reason"].as_str().unwrap())
    }

    fn window(&self) -> i64 {
        self.subscription["usage"]["period_start"].as_i64().unwrap()
    }

    fn period_end(&self) -> i64 {
        self.subscription["current_period_end"].as_i64().unwrap()
    }

    fn balance(&self) -> i64 {
        self.credits["balance"].as_i64().unwrap()
    }

    /// Status and attempts of the newest invoice first.
    fn invoices(&self) -> Vec<(String, i64)> {
        self.invoices
            .iter()
            .map(|i| (i["status"].as_str().unwrap().to_owned(), i["amount_paid"].as_i64().unwrap()))
            .collect()
    }
}

#[tokio::test]
async fn a_trialing_pro_account_lives_through_its_trial_renewals_a_declined_renewal_retries_grace_and_cancellation() {
    let stack = common::serve_clocked_stack("walk").await;
    let account = "acct_walk";
    stack.move_clock(MARCH_10).await;
    let session = checkout(&stack.base, account).await;
    tollgate_dev::trigger::pay(&stack.base, DEV_WEBHOOK_SECRET, &session, |_| {}).await.unwrap();
    stack.drain().await;

    // Trialing: Pro's 14 days, its credits, no invoice yet.
    let trial = step(&stack, account).await;
    let trial_end = trial.subscription["trial_end"].as_i64().unwrap();
    assert_eq!(trial.state(), ("pro", "trialing", "trialing"));
    assert!((trial_end - MARCH_10 - 14 * DAY).abs() <= 5, "{trial:?}");
    assert!((trial.window() - MARCH_10).abs() <= 5, "the window is the trial's period");
    assert_eq!(trial.balance(), 1000);
    assert!(trial.invoices.is_empty());

    // Three days before its end: the notice.
    stack.move_clock(trial_end - 3 * DAY + 60).await;
    let notice = step(&stack, account).await;
    assert_eq!(notice.state(), ("pro", "trialing", "trialing"));
    assert_eq!(notice.notices, ["trial_will_end"]);

    // The trial ends: the first period is billed and paid an hour later, a new window opens.
    stack.move_clock(trial_end + 2 * HOUR).await;
    let first = step(&stack, account).await;
    assert_eq!(first.state(), ("pro", "active", "active"));
    assert_eq!(first.window(), trial_end);
    assert_eq!(first.period_end(), trial_end + 31 * DAY, "March 24th to April 24th");
    assert_eq!(first.invoices(), [("paid".to_owned(), 2900)]);
    assert_eq!(first.balance(), 1000, "the new window's grant; the trial's expired");
    assert_eq!(first.notices, ["payment_succeeded"]);

    // Two renewals, each paid.
    let mut period_end = first.period_end();
    for renewal in 1..=2 {
        stack.move_clock(period_end + 2 * HOUR).await;
        let renewed = step(&stack, account).await;
        assert_eq!(renewed.state(), ("pro", "active", "active"), "renewal {renewal}");
        assert_eq!(renewed.window(), period_end, "renewal {renewal}: the window is the new period");
        assert_eq!(renewed.invoices.len(), renewal + 1);
        assert_eq!(renewed.invoices()[0], ("paid".to_owned(), 2900));
        assert_eq!(renewed.balance(), 1000);
        assert_eq!(renewed.notices, ["payment_succeeded"], "renewal {renewal}");
        period_end = renewed.period_end();
    }

    // The card declines: the renewal fails and the account is in its 3-day grace.
    card(&stack.base, account, "decline").await;
    let failed_at = period_end + HOUR;
    stack.move_clock(failed_at + HOUR).await;
    let declined = step(&stack, account).await;
    assert_eq!(declined.state(), ("pro", "past_due", "grace_period"));
    assert_eq!(declined.window(), period_end, "the new period's window opens even unpaid");
    assert_eq!(declined.invoices()[0], ("open".to_owned(), 0));
    assert_eq!(declined.balance(), 0, "no grant for a window that is not paid up");
    assert_eq!(declined.notices, ["payment_failed"]);

    // The first retry, 3 days later, fails too: the grace is over.
    stack.move_clock(failed_at + 3 * DAY + HOUR).await;
    let expired = step(&stack, account).await;
    assert_eq!(expired.state(), ("pro", "past_due", "past_due_expired"));
    assert_eq!(expired.subscription["access"]["allowed"], false);
    assert_eq!(expired.notices, ["payment_failed"]);

    // The second retry, 5 days after the first.
    stack.move_clock(failed_at + 8 * DAY + HOUR).await;
    let second = step(&stack, account).await;
    assert_eq!(second.state(), ("pro", "past_due", "past_due_expired"));
    assert_eq!(second.notices, ["payment_failed"]);

    // The last retry, 7 days after the second: the subscription is canceled.
    stack.move_clock(failed_at + 15 * DAY + HOUR).await;
    let canceled = step(&stack, account).await;
    assert_eq!(canceled.state(), ("free", "canceled", "canceled"));
    assert_eq!(canceled.subscription["limits"]["api_calls"], 100);
    assert_eq!(canceled.balance(), 0);
    assert_eq!(canceled.invoices.len(), 4);
    assert_eq!(canceled.invoices()[0], ("open".to_owned(), 0));
    assert_eq!(canceled.notices, ["payment_failed", "subscription_canceled"]);
}

#[tokio::test]
async fn an_abandoned_session_expires_on_the_clock_and_its_account_is_told() {
    let stack = common::serve_clocked_stack("expiry").await;
    let session = checkout(&stack.base, "acct_abandons").await;

    let (status, _) = clock(&stack.base, Some(json!({"advance": DAY + 60, "wait": "applied"}))).await;
    let expired = stack.standin.object(&session).unwrap();
    let notices = notified(&stack).await;
    let paid = tollgate_dev::trigger::pay(&stack.base, DEV_WEBHOOK_SECRET, &session, |_| {}).await;

    assert_eq!(status, 200);
    assert_eq!(expired["status"], "expired");
    assert_eq!(notices, ["checkout_expired"]);
    let paid = paid.unwrap_err().to_string();
    assert!(paid.contains("HTTP 400") && paid.contains("has expired"), "{paid}");
    assert_eq!(read_plan(&stack.base, "acct_abandons").await, "free");
}

#[tokio::test]
async fn with_the_sync_following_the_clock_a_move_replays_missed_events_and_without_it_nothing_runs() {
    let syncing = common::serve_clocked_stack_syncing("clock-sync", true).await;
    let idle = common::serve_clocked_stack("clock-nosync").await;
    let spec = TriggerSpec::new("checkout.session.completed", "acct_missed").plan("pro");
    for stack in [&syncing, &idle] {
        tollgate_dev::trigger::trigger(&stack.base, DEV_WEBHOOK_SECRET, &spec, true).await.unwrap();
    }

    for stack in [&syncing, &idle] {
        let (status, _) = clock(&stack.base, Some(json!({"advance": 2 * DAY, "wait": "applied"}))).await;
        assert_eq!(status, 200);
    }

    assert_eq!(read_plan(&syncing.base, "acct_missed").await, "pro", "the sync replayed the missed events");
    assert_eq!(read_plan(&idle.base, "acct_missed").await, "free", "no sync ran");
}

#[tokio::test]
async fn an_item_whose_expires_at_passed_on_the_clock_reads_as_absent() {
    let stack = common::serve_clocked_stack("ttl").await;
    stack.move_clock(MARCH_10).await;
    let record = |key: &'static str| {
        let url = format!("{}/operator/accounts/acct_ttl/usage", stack.base);
        async move {
            let response = reqwest::Client::new()
                .post(url)
                .header("x-tollgate-operator", "ops")
                .json(&json!({"metric": "api_calls", "quantity": 1, "idempotency_key": key}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()["used"].as_i64().unwrap()
        }
    };

    let first = record("job-1").await;
    stack.move_clock(MARCH_10 + 6 * DAY).await;
    let replayed = record("job-1").await;
    stack.move_clock(MARCH_10 + 8 * DAY).await;
    let forgotten = record("job-1").await;

    assert_eq!((first, replayed), (1, 1), "within 7 days the key is remembered");
    assert_eq!(forgotten, 2, "its record expired on the clock: the key is new again");
}

#[tokio::test]
async fn tollgate_dev_card_makes_the_next_renewal_fail_and_pay_makes_the_retry_succeed() {
    let stack = common::serve_clocked_stack("card-cli").await;
    let account = "acct_card_cli";
    stack.move_clock(MARCH_10).await;
    let response = reqwest::Client::new()
        .post(format!("{}/checkout", stack.base))
        .header("x-tollgate-account", account)
        .json(&json!({"plan": "enterprise", "interval": "month"}))
        .send()
        .await
        .unwrap();
    let session = response.json::<Value>().await.unwrap()["session_id"].as_str().unwrap().to_owned();
    tollgate_dev::trigger::pay(&stack.base, DEV_WEBHOOK_SECRET, &session, |_| {}).await.unwrap();
    stack.drain().await;

    tollgate_dev::ops::card(stack.port, account, tollgate_standin::CardBehaviour::Decline).await.unwrap();
    stack.move_clock(MARCH_10 + 31 * DAY + 2 * HOUR).await;
    let declined = read(&stack.base, "/subscription", account).await;
    tollgate_dev::ops::card(stack.port, account, tollgate_standin::CardBehaviour::Pay).await.unwrap();
    stack.move_clock(MARCH_10 + 34 * DAY + 2 * HOUR).await;
    let recovered = read(&stack.base, "/subscription", account).await;

    assert_eq!(declined["status"], "past_due", "{declined}");
    assert_eq!(recovered["status"], "active", "the retry three days later paid: {recovered}");
}
