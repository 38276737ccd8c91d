//! The stand-in follows time as Stripe's test clocks do: moved to each moment it names
//! (`next_due`) and played (`play_due`), it renews periods from the billing cycle anchor with
//! the day clamped, sends a trial's notice three days before its end and bills its first period,
//! retries a declined payment 3, 5 and 7 days later and then ends the subscription, cancels at a
//! period's end when asked, and expires open Checkout Sessions.

use serde_json::Value;
use tollgate_standin::{AfterRetries, CardBehaviour, Dunning, StandIn, TriggerSpec};

const DAY: i64 = 86_400;
/// 2027-01-31T10:00:00Z.
const JAN_31: i64 = 1_801_389_600;
const HOUR: i64 = 3_600;

/// Plays everything due up to `until`, moving the stand-in's clock to each moment in turn;
/// returns the events, oldest first.
fn run_until(standin: &StandIn, from: i64, until: i64) -> Vec<Value> {
    let mut now = from;
    let mut events = Vec::new();
    while let Some(due) = standin.next_due().filter(|due| *due <= until) {
        now = now.max(due);
        standin.set_clock(now);
        events.extend(standin.play_due());
    }
    standin.set_clock(until);
    events
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

/// A customer of `account` subscribed to Pro monthly at `at`, without a trial.
fn subscribed(standin: &StandIn, account: &str, at: i64) -> String {
    standin.set_clock(at);
    let events = standin.trigger(&TriggerSpec::new("customer.created", account)).unwrap();
    let customer = events[0]["data"]["object"]["id"].as_str().unwrap().to_owned();
    let subscription = standin.create_subscription(&customer, "pro_monthly", None).unwrap();
    subscription["id"].as_str().unwrap().to_owned()
}

fn period(standin: &StandIn, subscription: &str) -> (i64, i64) {
    let item = &standin.object(subscription).unwrap()["items"]["data"][0];
    (item["current_period_start"].as_i64().unwrap(), item["current_period_end"].as_i64().unwrap())
}

fn status(standin: &StandIn, subscription: &str) -> String {
    standin.object(subscription).unwrap()["status"].as_str().unwrap().to_owned()
}

#[test]
fn periods_anchored_on_january_31st_renew_on_each_month_s_last_day_and_each_renewal_is_paid() {
    let standin = StandIn::new();
    let subscription = subscribed(&standin, "acct_anchor", JAN_31);
    let feb_28 = JAN_31 + 28 * DAY;
    let mar_31 = feb_28 + 31 * DAY;
    let apr_30 = mar_31 + 30 * DAY;

    let first = period(&standin, &subscription);
    let events = run_until(&standin, JAN_31, feb_28 + 2 * HOUR);
    let second = period(&standin, &subscription);
    let later = run_until(&standin, feb_28 + 2 * HOUR, mar_31 + 2 * HOUR);
    let third = period(&standin, &subscription);

    assert_eq!(first, (JAN_31, feb_28));
    assert_eq!(second, (feb_28, mar_31), "not [Feb 28, Mar 28)");
    assert_eq!(third, (mar_31, apr_30));
    assert_eq!(
        types(&events),
        [
            "customer.subscription.updated",
            "invoice.created",
            "invoice.finalized",
            "invoice.paid",
            "invoice.payment_succeeded"
        ]
    );
    let paid = &of_type(&events, "invoice.paid")[0]["data"]["object"];
    assert_eq!(paid["billing_reason"], "subscription_cycle");
    assert_eq!(paid["lines"]["data"][0]["period"]["start"], feb_28);
    assert_eq!(paid["status_transitions"]["paid_at"], feb_28 + HOUR, "paid an hour after the renewal");
    assert_eq!(of_type(&events, "customer.subscription.updated")[0]["created"], feb_28);
    assert_eq!(of_type(&later, "invoice.paid").len(), 1);
    assert_eq!(status(&standin, &subscription), "active");
}

#[test]
fn a_trial_sends_its_notice_three_days_before_its_end_then_bills_the_first_period() {
    let standin = StandIn::new();
    standin.set_clock(JAN_31);
    standin.trigger(&TriggerSpec::new("customer.subscription.created", "acct_trial").plan("pro")).unwrap();
    let subscription = standin.events().last().unwrap()["data"]["object"]["id"].as_str().unwrap().to_owned();
    let trial_end = JAN_31 + 14 * DAY;

    let before = run_until(&standin, JAN_31, trial_end - 3 * DAY - 1);
    let notice = run_until(&standin, trial_end - 3 * DAY - 1, trial_end - 1);
    let ended = run_until(&standin, trial_end - 1, trial_end + 2 * HOUR);
    let again = run_until(&standin, trial_end + 2 * HOUR, trial_end + 3 * HOUR);

    assert!(before.is_empty(), "{:?}", types(&before));
    assert_eq!(types(&notice), ["customer.subscription.trial_will_end"]);
    assert_eq!(notice[0]["created"], trial_end - 3 * DAY);
    assert_eq!(
        types(&ended),
        [
            "customer.subscription.updated",
            "invoice.created",
            "invoice.finalized",
            "invoice.paid",
            "invoice.payment_succeeded"
        ]
    );
    let updated = &ended[0]["data"];
    assert_eq!(updated["previous_attributes"]["status"], "trialing");
    assert_eq!(updated["object"]["status"], "active");
    assert_eq!(updated["object"]["billing_cycle_anchor"], trial_end);
    assert_eq!(period(&standin, &subscription), (trial_end, trial_end + 28 * DAY), "Feb 14 to Mar 14");
    assert!(again.is_empty(), "the notice is sent once: {:?}", types(&again));
}

#[test]
fn a_declined_renewal_is_retried_three_five_and_seven_days_later_then_the_subscription_is_canceled() {
    let standin = StandIn::new();
    let subscription = subscribed(&standin, "acct_declines", JAN_31);
    standin.set_card("acct_declines", CardBehaviour::Decline);
    let renewal = JAN_31 + 28 * DAY;
    let first_attempt = renewal + HOUR;

    let failed = run_until(&standin, JAN_31, renewal + 2 * HOUR);
    let past_due = status(&standin, &subscription);
    let retries = run_until(&standin, renewal + 2 * HOUR, first_attempt + 15 * DAY - 1);
    let last = run_until(&standin, first_attempt + 15 * DAY - 1, first_attempt + 16 * DAY);

    assert_eq!(&types(&failed)[3..], ["invoice.payment_failed", "customer.subscription.updated"]);
    assert_eq!(past_due, "past_due");
    let attempts: Vec<(i64, i64)> = of_type(&retries, "invoice.payment_failed")
        .iter()
        .map(|e| (e["created"].as_i64().unwrap(), e["data"]["object"]["attempt_count"].as_i64().unwrap()))
        .collect();
    assert_eq!(attempts, [(first_attempt + 3 * DAY, 2), (first_attempt + 8 * DAY, 3)]);
    assert_eq!(types(&last), ["invoice.payment_failed", "customer.subscription.deleted"]);
    assert_eq!(last[0]["created"], first_attempt + 15 * DAY);
    assert!(last[0]["data"]["object"]["next_payment_attempt"].is_null());
    let canceled = &last[1]["data"]["object"];
    assert_eq!(canceled["status"], "canceled");
    assert_eq!(canceled["cancellation_details"]["reason"], "payment_failed");
    assert!(run_until(&standin, first_attempt + 16 * DAY, first_attempt + 90 * DAY).is_empty(), "nothing renews");
}

#[test]
fn a_card_that_pays_again_settles_the_next_retry_and_the_schedule_can_end_in_unpaid() {
    let standin = StandIn::new();
    standin.set_dunning(Dunning { retry_days: vec![1], after_retries: AfterRetries::Unpaid });
    let recovers = subscribed(&standin, "acct_recovers", JAN_31);
    let unpaid = subscribed(&standin, "acct_unpaid", JAN_31);
    standin.set_card("acct_recovers", CardBehaviour::Decline);
    standin.set_card("acct_unpaid", CardBehaviour::Decline);
    let renewal = JAN_31 + 28 * DAY;

    run_until(&standin, JAN_31, renewal + 2 * HOUR);
    standin.set_card("acct_recovers", CardBehaviour::Pay);
    let retried = run_until(&standin, renewal + 2 * HOUR, renewal + 2 * DAY);

    assert_eq!(status(&standin, &recovers), "active");
    assert_eq!(status(&standin, &unpaid), "unpaid");
    assert_eq!(of_type(&retried, "invoice.paid").len(), 1);
    assert_eq!(of_type(&retried, "invoice.payment_failed").len(), 1);
    assert!(of_type(&retried, "customer.subscription.deleted").is_empty());
}

/// The stand-in served, at `at`, with a client as Tollgate builds one.
async fn served(at: i64) -> (StandIn, stripe::Client) {
    let standin = StandIn::new();
    standin.set_clock(at);
    let base = standin.spawn().await.unwrap();
    (standin, stripe::ClientBuilder::new("sk_test_standin").url(base).build().unwrap())
}

#[tokio::test]
async fn a_subscription_set_to_cancel_at_its_period_s_end_ends_then_without_an_invoice() {
    let (standin, client) = served(JAN_31).await;
    let subscription = subscribed(&standin, "acct_leaves", JAN_31);
    stripe_billing::subscription::UpdateSubscription::new(subscription.as_str())
        .cancel_at_period_end(true)
        .send(&client)
        .await
        .unwrap();

    let events = run_until(&standin, JAN_31, JAN_31 + 60 * DAY);

    assert_eq!(types(&events), ["customer.subscription.deleted"]);
    assert_eq!(events[0]["created"], JAN_31 + 28 * DAY);
    assert_eq!(status(&standin, &subscription), "canceled");
}

#[tokio::test]
async fn an_open_checkout_session_expires_at_its_expires_at_and_cannot_be_paid_after() {
    let (standin, client) = served(JAN_31).await;
    let mut line_item = stripe_checkout::checkout_session::CreateCheckoutSessionLineItems::new();
    line_item.price = Some("price_pro_monthly".into());
    line_item.quantity = Some(1);
    let session = stripe_checkout::checkout_session::CreateCheckoutSession::new()
        .mode(stripe_shared::CheckoutSessionMode::Subscription)
        .line_items(vec![line_item])
        .success_url("https://app.example.com/ok")
        .send(&client)
        .await
        .unwrap();
    let expires_at = session.expires_at;

    let events = run_until(&standin, JAN_31, expires_at + 60);
    let paid = standin.complete_checkout_session(session.id.as_str());

    assert_eq!(types(&events), ["checkout.session.expired"]);
    assert_eq!(events[0]["created"], expires_at);
    assert_eq!(events[0]["data"]["object"]["status"], "expired");
    assert!(paid.is_err(), "{paid:?}");
}

#[tokio::test]
async fn the_card_route_sets_an_account_s_card_and_refuses_anything_else() {
    let standin = StandIn::new();
    let base = standin.spawn().await.unwrap();
    let http = reqwest::Client::new();
    let url = format!("{base}_tollgate/customers/acct_card/card");
    let post = |body: &'static str| http.post(&url).body(body).send();

    let decline = post(r#"{"behaviour": "decline"}"#).await.unwrap();
    let decline_status = decline.status().as_u16();
    let answered: Value = decline.json().await.unwrap();
    let refused = post(r#"{"behaviour": "sometimes"}"#).await.unwrap();
    let refused_status = refused.status().as_u16();
    let error: Value = refused.json().await.unwrap();

    assert_eq!(decline_status, 200);
    assert_eq!(answered, serde_json::json!({"account": "acct_card", "behaviour": "decline"}));
    assert_eq!(refused_status, 400);
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert_eq!(error["error"]["param"], "behaviour");
}
