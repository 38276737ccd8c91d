//! Usage windows are Stripe's periods, over HTTP on the local stack's clock: anchors on the
//! 28th to 31st follow Stripe's clamped periods with one plan grant each, an interval change
//! keeps the window's count and credits, and a window ended by a cancellation stays in the
//! history with its count.

mod common;

use serde_json::{Value, json};
use tollgate::domain::usage::add_months;
use tollgate::edge::webhook::DEV_WEBHOOK_SECRET;

const DAY: i64 = 86_400;
/// 2027-01-01T12:00:00Z.
const JAN_1_NOON: i64 = 1_798_804_800;
/// 2027-02-28T12:00:00Z.
const FEB_28_NOON: i64 = JAN_1_NOON + 58 * DAY;

async fn call(base: &str, method: reqwest::Method, path: &str, account: &str, body: Option<Value>) -> Value {
    let mut request =
        reqwest::Client::new().request(method, format!("{base}{path}")).header("x-tollgate-account", account);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

async fn get(base: &str, path: &str, account: &str) -> Value {
    call(base, reqwest::Method::GET, path, account, None).await
}

async fn post(base: &str, path: &str, account: &str, body: Value) -> Value {
    call(base, reqwest::Method::POST, path, account, Some(body)).await
}

/// Counts `quantity` API calls for `account` as the operator does.
async fn count(base: &str, account: &str, quantity: u64, key: &str) {
    let response = reqwest::Client::new()
        .post(format!("{base}/operator/accounts/{account}/usage"))
        .header("x-tollgate-operator", "ops")
        .json(&json!({"metric": "api_calls", "quantity": quantity, "idempotency_key": key}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// `account` subscribed to `plan` monthly through Checkout, paid with `tollgate-dev pay`.
async fn subscribe(stack: &common::LocalStack, account: &str, plan: &str) {
    let session = post(&stack.base, "/checkout", account, json!({"plan": plan, "interval": "month"})).await;
    let session = session["session_id"].as_str().unwrap();
    tollgate_dev::trigger::pay(&stack.base, DEV_WEBHOOK_SECRET, session, |_| {}).await.unwrap();
    stack.drain().await;
}

/// The window starts of the account's plan grants, from its ledger (`grant-plan-<start>-<n>`).
async fn plan_grant_windows(base: &str, account: &str) -> Vec<i64> {
    let ledger = get(base, "/credits?limit=100", account).await;
    let mut starts: Vec<i64> = ledger["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["id"].as_str()?.strip_prefix("grant-plan-")?.split('-').next()?.parse().ok())
        .collect();
    starts.sort_unstable();
    starts
}

#[tokio::test]
async fn anchors_on_the_28th_to_the_31st_count_in_stripe_s_periods_with_one_plan_grant_each() {
    for day in 28..=31 {
        let stack = common::serve_clocked_stack(&format!("anchor-{day}")).await;
        let account = format!("acct_anchor_{day}");
        stack.move_clock(JAN_1_NOON + (day - 1) * DAY).await;
        subscribe(&stack, &account, "enterprise").await;
        // The clock ran on while the session was paid: the anchor is the subscription's start.
        let started = get(&stack.base, "/usage", &account).await["period_start"].as_i64().unwrap();
        let period = |k: i64| add_months(started, k);
        get(&stack.base, "/credits", &account).await;

        stack.move_clock(FEB_28_NOON + DAY).await; // March 1st
        count(&stack.base, &account, 7, "march-1").await;
        get(&stack.base, "/credits", &account).await;
        let march_28_evening = FEB_28_NOON + 28 * DAY + 6 * 3_600;
        stack.move_clock(march_28_evening).await;
        let usage = get(&stack.base, "/usage", &account).await;
        let grants = plan_grant_windows(&stack.base, &account).await;

        let window = (usage["period_start"].as_i64().unwrap(), usage["period_end"].as_i64().unwrap());
        let used = usage["metrics"]["api_calls"]["used"].as_u64().unwrap();
        assert!((started - (JAN_1_NOON + (day - 1) * DAY)).abs() <= 5, "started on January {day}th at noon");
        assert_eq!(period(1) - started, (28 + 31 - day) * DAY, "day {day}: its second period starts on Feb 28");
        if day == 28 {
            assert_eq!(window, (period(2), period(3)), "day 28: [Mar 28, Apr 28)");
            assert_eq!(period(3) - period(2), 31 * DAY);
            assert_eq!(used, 0);
            assert_eq!(grants, [started, period(1), period(2)], "day 28: one grant per period");
        } else {
            assert_eq!(window, (period(1), period(2)), "day {day}: [Feb 28, Mar {day})");
            assert_eq!(period(2) - period(1), (day - 28 + 28) * DAY, "day {day}: the period ends on March {day}th");
            assert_eq!(used, 7, "day {day}: the March 1st count");
            assert_eq!(grants, [started, period(1)], "day {day}: one grant per period");
        }
    }
}

#[tokio::test]
async fn monthly_to_yearly_to_monthly_within_one_window_keeps_the_count_and_the_credits() {
    let stack = common::serve_clocked_stack("interval-change").await;
    let account = "acct_intervals";
    stack.move_clock(JAN_1_NOON + 9 * DAY).await;
    subscribe(&stack, account, "enterprise").await;
    count(&stack.base, account, 5, "before").await;
    let before = get(&stack.base, "/usage", account).await;
    let credits_before = get(&stack.base, "/credits", account).await;

    stack.move_clock(JAN_1_NOON + 14 * DAY).await;
    let yearly =
        post(&stack.base, "/subscription/change", account, json!({"plan": "enterprise", "interval": "year"})).await;
    stack.move_clock(JAN_1_NOON + 20 * DAY).await;
    let monthly =
        post(&stack.base, "/subscription/change", account, json!({"plan": "enterprise", "interval": "month"})).await;
    stack.drain().await;
    let after = get(&stack.base, "/usage", account).await;
    let credits_after = get(&stack.base, "/credits", account).await;

    assert_eq!((yearly["interval"].as_str(), monthly["interval"].as_str()), (Some("year"), Some("month")));
    assert_eq!(after["period_start"], before["period_start"], "the window in progress is kept");
    assert!(after["period_end"].as_i64() >= before["period_end"].as_i64(), "never cut shorter: {after}");
    assert_eq!(after["metrics"]["api_calls"]["used"], 5, "the count is kept");
    assert_eq!(credits_after["balance"], credits_before["balance"], "no second grant");
    assert_eq!(plan_grant_windows(&stack.base, account).await.len(), 1);
}

#[tokio::test]
async fn a_window_closed_by_a_cancellation_stays_in_the_history_with_its_count() {
    let stack = common::serve_clocked_stack("closed-window").await;
    let account = "acct_cancels";
    stack.move_clock(JAN_1_NOON + 9 * DAY).await;
    subscribe(&stack, account, "pro").await;
    count(&stack.base, account, 5, "on-pro").await;
    let pro = get(&stack.base, "/usage", account).await;

    stack.move_clock(JAN_1_NOON + 9 * DAY + 600).await;
    post(&stack.base, "/subscription/cancel", account, json!({"at_period_end": false})).await;
    stack.drain().await;
    let history = get(&stack.base, "/usage/history", account).await;
    let free = get(&stack.base, "/usage", account).await;

    let periods = history["periods"].as_array().unwrap();
    assert_eq!(periods[0]["current"], true);
    assert_eq!(periods[0]["start"], free["period_start"]);
    assert!(free["period_start"].as_i64() > pro["period_start"].as_i64(), "the free window opens at the cancellation");
    let closed = periods.iter().find(|p| p["start"] == pro["period_start"]).expect("the Pro window is listed");
    assert_eq!(closed["metrics"]["api_calls"], 5);
    assert_eq!(closed["end"], free["period_start"], "it ends where the next begins");
}
