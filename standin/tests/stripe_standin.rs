//! The local Stripe stand-in, driven through async-stripe's real request builders (the calls
//! Tollgate makes): every answer must parse as async-stripe's types, state must persist between
//! calls, and the recorded requests must show exactly what Stripe would receive; objects the API
//! does not serve are read with `StandIn::object`. Its triggers must leave the
//! state Stripe would be in and record, in order, events async-stripe parses.

use std::collections::HashMap;

use serde_json::{Value, json};
use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_billing::billing_meter_event::CreateBillingMeterEvent;
use stripe_billing::billing_meter_event_summary::ListIdBillingMeterEventSummary;
use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_billing::invoice_payment::{ListInvoicePayment, ListInvoicePaymentPayment, ListInvoicePaymentPaymentType};
use stripe_billing::subscription::{
    CancelSubscription, ListSubscription, ListSubscriptionStatus, UpdateSubscription, UpdateSubscriptionItems,
    UpdateSubscriptionProrationBehavior,
};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionSubscriptionData,
};
use stripe_core::charge::RetrieveCharge;
use stripe_core::customer::{CreateCustomer, ListCustomer};
use stripe_core::event::ListEvent;
use stripe_shared::{
    ApiErrorsCode, ApiErrorsType, ChargeStatus, CheckoutSession, CheckoutSessionMode, CheckoutSessionPaymentStatus,
    CheckoutSessionStatus, Customer, Dispute, DisputeStatus, Invoice, InvoiceBillingReason, InvoiceStatus, Price,
    PriceType, Product, RecurringInterval, Subscription, SubscriptionStatus,
    SubscriptionsResourcePausedStatusDetailsSubscriptionType,
};
use stripe_types::List;
use stripe_webhook::{EventObject, Webhook};
use tollgate_standin::{StandIn, StandInError, TRIGGER_EVENTS, TriggerSpec};

const NOW: i64 = 1_790_000_000;
const DAY: i64 = 86_400;

/// The catalogue these tests sell (its keys and amounts are the ones they assert): three paid
/// tiers, monthly and yearly, Pro and Team with a 14-day trial, and two credit packs.
const CATALOGUE: &str = r#"
[metrics.api_calls]
unit = "call"

[tiers.free]
name = "Free"
api_calls = 100
requests_per_minute = 10

[tiers.pro]
name = "Pro"
trial_days = 14
features = ["priority_support"]
api_calls = 10000
requests_per_minute = 100

[tiers.team]
name = "Team"
trial_days = 14
features = ["priority_support", "websocket_streaming"]
api_calls = 100000
requests_per_minute = 500

[tiers.enterprise]
name = "Enterprise"
features = ["priority_support", "websocket_streaming", "sso"]
api_calls = "unlimited"
requests_per_minute = "unlimited"

[[prices]]
lookup_key = "pro_monthly"
tier = "pro"
interval = "month"
amount = 2900
currency = "usd"

[[prices]]
lookup_key = "pro_yearly"
tier = "pro"
interval = "year"
amount = 29000
currency = "usd"

[[prices]]
lookup_key = "team_monthly"
tier = "team"
interval = "month"
amount = 9900
currency = "usd"

[[prices]]
lookup_key = "team_yearly"
tier = "team"
interval = "year"
amount = 99000
currency = "usd"

[[prices]]
lookup_key = "enterprise_monthly"
tier = "enterprise"
interval = "month"
amount = 29900
currency = "usd"

[[prices]]
lookup_key = "enterprise_yearly"
tier = "enterprise"
interval = "year"
amount = 299000
currency = "usd"

[[credit_packs]]
id = "credits_1000"
credits = 1000
lookup_key = "credits_1000"
amount = 1000
currency = "usd"

[[credit_packs]]
id = "credits_10000"
credits = 10000
lookup_key = "credits_10000"
amount = 8000
currency = "usd"
"#;

fn test_standin() -> StandIn {
    StandIn::from_catalogue(&tollgate::domain::plans::Catalogue::parse(CATALOGUE).expect("the test catalogue is valid"))
}

async fn started() -> (StandIn, Client) {
    let standin = test_standin();
    standin.set_clock(NOW);
    let base = standin.spawn().await.expect("the stand-in serves");
    let client = ClientBuilder::new("sk_test_standin").url(base).build().expect("a client");
    (standin, client)
}

fn account_metadata(account: &str) -> HashMap<String, String> {
    HashMap::from([("tollgate_account_id".to_owned(), account.to_owned())])
}

/// A customer created as Tollgate creates one: only its account in the metadata.
async fn customer(client: &Client, account: &str) -> Customer {
    CreateCustomer::new().metadata(account_metadata(account)).send(client).await.expect("the customer is created")
}

/// The object `id` as the stand-in holds it, read as async-stripe's type `T`.
fn typed<T: serde::de::DeserializeOwned>(standin: &StandIn, id: impl ToString) -> T {
    let id = id.to_string();
    let object = standin.object(&id).unwrap_or_else(|| panic!("the stand-in holds no {id}"));
    serde_json::from_value(object).unwrap_or_else(|error| panic!("{id} does not parse: {error}"))
}

async fn subscribed(standin: &StandIn, client: &Client, account: &str, price: &str) -> Subscription {
    let customer = customer(client, account).await;
    let created = standin.create_subscription(customer.id.as_str(), price, None).expect("the subscription is created");
    typed(standin, created["id"].as_str().expect("an id"))
}

fn stripe_error(result: Result<impl std::fmt::Debug, StripeError>) -> (stripe::ApiErrors, u16) {
    match result {
        Err(StripeError::Stripe(error, status)) => (*error, status),
        other => panic!("expected a Stripe error, got {other:?}"),
    }
}

fn ids<T>(list: &List<T>, id: impl Fn(&T) -> String) -> Vec<String> {
    list.data.iter().map(id).collect()
}

#[tokio::test]
async fn created_customers_are_listed_newest_first() {
    let (standin, client) = started().await;

    let first = customer(&client, "acct_1").await;
    let second = customer(&client, "acct_2").await;
    let third = customer(&client, "acct_3").await;

    let listed = ListCustomer::new().send(&client).await.unwrap();
    assert_eq!(
        ids(&listed, |c| c.id.to_string()),
        vec![third.id.to_string(), second.id.to_string(), first.id.to_string()]
    );
    assert!(!listed.has_more);
    assert_eq!(listed.url, "/v1/customers");
    let retrieved: Customer = typed(&standin, &first.id);
    assert_eq!(retrieved.metadata.unwrap()["tollgate_account_id"], "acct_1");
    assert_eq!(retrieved.created, NOW);
    assert!(!retrieved.livemode);
}

#[tokio::test]
async fn the_recorded_request_shows_the_exact_form_fields_and_headers() {
    let (standin, client) = started().await;
    let customer = customer(&client, "buyer@example.com").await;
    let mut line_item = CreateCheckoutSessionLineItems::new();
    line_item.price = Some("price_pro_monthly".into());
    line_item.quantity = Some(1);
    let mut subscription_data = CreateCheckoutSessionSubscriptionData::new();
    subscription_data.trial_period_days = Some(14);
    subscription_data.metadata = Some(HashMap::from([("tollgate_account_id".to_owned(), "acct_1".to_owned())]));

    let session = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Subscription)
        .customer(customer.id.as_str())
        .client_reference_id("acct_1")
        .line_items(vec![line_item])
        .success_url("https://app.example.com/billing/success")
        .cancel_url("https://app.example.com/billing/cancel")
        .subscription_data(subscription_data)
        .metadata(HashMap::from([("tollgate_account_id".to_owned(), "acct_1".to_owned())]))
        .send(&client)
        .await
        .unwrap();

    let request = standin.requests().last().cloned().unwrap();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/checkout/sessions");
    assert_eq!(request.query, "");
    assert_eq!(request.stripe_version.as_deref(), Some("2026-09-30.endive"));
    assert_eq!(request.idempotency_key, None);
    let expected: Vec<(String, String)> = [
        ("cancel_url", "https://app.example.com/billing/cancel"),
        ("client_reference_id", "acct_1"),
        ("customer", customer.id.as_str()),
        ("line_items[0][price]", "price_pro_monthly"),
        ("line_items[0][quantity]", "1"),
        ("metadata[tollgate_account_id]", "acct_1"),
        ("mode", "subscription"),
        ("subscription_data[metadata][tollgate_account_id]", "acct_1"),
        ("subscription_data[trial_period_days]", "14"),
        ("success_url", "https://app.example.com/billing/success"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(request.form, expected);
    assert_eq!(request.field("line_items[0][price]"), Some("price_pro_monthly"));
    assert_eq!(session.status, Some(CheckoutSessionStatus::Open));
    assert_eq!(session.mode, CheckoutSessionMode::Subscription);
    assert_eq!(
        session.url.as_deref(),
        Some(format!("http://127.0.0.1/stripe-standin/checkout/{}", session.id).as_str())
    );
    assert_eq!(session.expires_at, NOW + DAY);
    assert_eq!(session.client_reference_id.as_deref(), Some("acct_1"));
    assert_eq!(session.customer.as_ref().map(|c| c.id().to_string()), Some(customer.id.to_string()));
}

#[tokio::test]
async fn completing_a_checkout_session_with_a_trial_creates_a_trialing_subscription() {
    let (standin, client) = started().await;
    let customer = customer(&client, "trial@example.com").await;
    let mut line_item = CreateCheckoutSessionLineItems::new();
    line_item.price = Some("price_pro_monthly".into());
    line_item.quantity = Some(1);
    let mut subscription_data = CreateCheckoutSessionSubscriptionData::new();
    subscription_data.trial_period_days = Some(14);
    subscription_data.metadata = Some(HashMap::from([("tollgate_account_id".to_owned(), "acct_9".to_owned())]));
    let session = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Subscription)
        .customer(customer.id.as_str())
        .line_items(vec![line_item])
        .success_url("https://app.example.com/ok")
        .subscription_data(subscription_data)
        .send(&client)
        .await
        .unwrap();

    standin.complete_checkout_session(session.id.as_str()).unwrap();

    let completed = typed::<CheckoutSession>(&standin, session.id.clone());
    assert_eq!(completed.status, Some(CheckoutSessionStatus::Complete));
    assert_eq!(completed.payment_status, CheckoutSessionPaymentStatus::NoPaymentRequired);
    assert_eq!(completed.url, None);
    let subscription_id = completed.subscription.expect("the session links its subscription");
    let subscription = typed::<Subscription>(&standin, subscription_id.id().clone());
    assert_eq!(subscription.status, SubscriptionStatus::Trialing);
    assert_eq!(subscription.customer.id().as_str(), customer.id.as_str());
    assert_eq!(subscription.trial_end, Some(NOW + 14 * DAY));
    assert_eq!(subscription.metadata["tollgate_account_id"], "acct_9");
    let item = &subscription.items.data[0];
    assert_eq!(item.price.lookup_key.as_deref(), Some("pro_monthly"));
    assert_eq!(item.price.recurring.as_ref().unwrap().interval, RecurringInterval::Month);
    assert_eq!(item.current_period_start, NOW);
    assert_eq!(item.current_period_end, NOW + 14 * DAY);
    let kinds: Vec<String> = standin.events().iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect();
    assert_eq!(kinds, vec!["customer.created", "customer.subscription.created", "checkout.session.completed"]);
}

#[tokio::test]
async fn completing_a_checkout_session_without_a_customer_creates_one() {
    let (standin, client) = started().await;
    let mut line_item = CreateCheckoutSessionLineItems::new();
    line_item.price = Some("price_team_yearly".into());
    line_item.quantity = Some(2);
    let session = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Subscription)
        .line_items(vec![line_item])
        .success_url("https://app.example.com/ok")
        .send(&client)
        .await
        .unwrap();

    let completed = standin.complete_checkout_session(session.id.as_str()).unwrap();

    let customer_id = completed["customer"].as_str().unwrap();
    let subscriptions = ListSubscription::new().customer(customer_id).send(&client).await.unwrap();
    assert_eq!(subscriptions.data.len(), 1);
    let subscription = &subscriptions.data[0];
    assert_eq!(subscription.status, SubscriptionStatus::Active);
    assert_eq!(subscription.items.data[0].quantity, Some(2));
    assert_eq!(subscription.items.data[0].current_period_end, NOW + 365 * DAY);
    assert_eq!(
        standin.complete_checkout_session(session.id.as_str()),
        Err(StandInError::Invalid(format!("Checkout session {} is complete, not open.", session.id)))
    );
}

/// A payment-mode session buying `quantity` `credits_1000` packs for `acct_pack`, with the
/// metadata the stand-in's trigger sets.
fn pack_checkout(customer: &str, quantity: u64) -> CreateCheckoutSession {
    let mut line_item = CreateCheckoutSessionLineItems::new();
    line_item.price = Some("price_credits_1000".into());
    line_item.quantity = Some(quantity);
    let metadata = HashMap::from([
        ("tollgate_account_id".to_owned(), "acct_pack".to_owned()),
        ("tollgate_pack".to_owned(), "credits_1000".to_owned()),
    ]);
    CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Payment)
        .customer(customer)
        .client_reference_id("acct_pack")
        .line_items(vec![line_item])
        .metadata(metadata)
        .success_url("https://app.example.com/credits/success")
        .cancel_url("https://app.example.com/credits/cancel")
}

#[tokio::test]
async fn credit_packs_are_one_time_prices_listed_by_lookup_key() {
    let (standin, _client) = started().await;
    let base = standin.spawn().await.unwrap();

    let prices: List<Price> =
        reqwest::get(format!("{base}v1/prices?lookup_keys[]=credits_1000&lookup_keys[]=pro_monthly"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();

    let pack = prices.data.iter().find(|p| p.lookup_key.as_deref() == Some("credits_1000")).expect("the pack's price");
    assert_eq!(prices.data.len(), 2);
    assert_eq!(pack.id.as_str(), "price_credits_1000");
    assert_eq!(pack.type_, PriceType::OneTime);
    assert_eq!(pack.recurring, None);
    assert_eq!((pack.unit_amount, pack.currency.to_string()), (Some(1_000), "usd".to_owned()));
    assert_eq!(pack.product.id().as_str(), "prod_pack_credits_1000");
    let product: Product = typed(&standin, "prod_pack_credits_1000");
    assert_eq!(product.name, "1000 credits");
    assert_eq!(standin.object("price_credits_10000").unwrap()["unit_amount"], 8_000);
}

#[tokio::test]
async fn a_payment_mode_session_for_a_pack_is_open_and_unpaid_and_created_once_per_idempotency_key() {
    let (standin, client) = started().await;
    let customer = customer(&client, "acct_pack").await;
    let key = IdempotencyKey::new("tollgate-pack-checkout-acct_pack-1").unwrap();
    let idempotent = RequestStrategy::Idempotent(key.clone());

    let first =
        pack_checkout(customer.id.as_str(), 1).customize().request_strategy(idempotent.clone()).send(&client).await;
    let again = pack_checkout(customer.id.as_str(), 1).customize().request_strategy(idempotent).send(&client).await;
    let different = pack_checkout(customer.id.as_str(), 2)
        .customize()
        .request_strategy(RequestStrategy::Idempotent(key))
        .send(&client)
        .await;

    let session = first.expect("the session is created");
    assert_eq!(again.unwrap().id, session.id, "the same key answers the same session");
    let (error, status) = stripe_error(different);
    assert_eq!((status, error.type_), (400, ApiErrorsType::IdempotencyError));
    assert_eq!(session.mode, CheckoutSessionMode::Payment);
    assert_eq!(session.status, Some(CheckoutSessionStatus::Open));
    assert_eq!(session.payment_status, CheckoutSessionPaymentStatus::Unpaid);
    assert_eq!(session.amount_total, Some(1_000));
    assert_eq!(session.currency.as_ref().map(ToString::to_string).as_deref(), Some("usd"));
    assert_eq!(session.client_reference_id.as_deref(), Some("acct_pack"));
    assert_eq!(session.customer.as_ref().map(|c| c.id().to_string()), Some(customer.id.to_string()));
    let metadata = session.metadata.clone().unwrap();
    assert_eq!(
        (metadata["tollgate_account_id"].as_str(), metadata["tollgate_pack"].as_str()),
        ("acct_pack", "credits_1000")
    );
    assert_eq!(
        session.url.as_deref(),
        Some(format!("http://127.0.0.1/stripe-standin/checkout/{}", session.id).as_str())
    );
    let raw = standin.object(session.id.as_str()).unwrap();
    assert_eq!((&raw["subscription"], &raw["payment_intent"]), (&Value::Null, &Value::Null));
    let listed: Value = reqwest::Client::new()
        .get(format!("{}v1/checkout/sessions", standin.spawn().await.unwrap()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "a replayed key creates nothing");
    assert!(standin.events().iter().all(|e| e["type"] == "customer.created"), "an open session sends nothing");
}

#[tokio::test]
async fn completing_a_payment_mode_session_pays_it_through_a_payment_intent_and_its_charge() {
    let (standin, client) = started().await;
    let customer = customer(&client, "acct_pack").await;
    let session = pack_checkout(customer.id.as_str(), 2).send(&client).await.unwrap();
    let before = standin.events().len();

    standin.complete_checkout_session(session.id.as_str()).unwrap();

    let completed = typed::<CheckoutSession>(&standin, session.id.clone());
    assert_eq!(completed.status, Some(CheckoutSessionStatus::Complete));
    assert_eq!(completed.payment_status, CheckoutSessionPaymentStatus::Paid);
    assert_eq!(completed.amount_total, Some(2_000));
    assert!(completed.subscription.is_none());
    let payment_intent = completed.payment_intent.expect("a paid session names its payment intent");
    assert!(payment_intent.id().as_str().starts_with("pi_"));
    let intent = typed::<stripe_shared::PaymentIntent>(&standin, payment_intent.id());
    assert_eq!(intent.status, stripe_shared::PaymentIntentStatus::Succeeded);
    assert_eq!((intent.amount, intent.amount_received), (2_000, 2_000));
    let charge_id = intent.latest_charge.expect("the payment intent names its charge").id().clone();
    let charge = RetrieveCharge::new(charge_id.clone()).send(&client).await.expect("the charge is retrievable");
    assert!(charge.id.as_str().starts_with("ch_"));
    assert_eq!(charge.payment_intent.as_ref().map(|pi| pi.id().clone()), Some(payment_intent.id().clone()));
    assert_eq!(charge.customer.as_ref().map(|c| c.id().to_string()), Some(customer.id.to_string()));
    assert_eq!((charge.amount, charge.amount_refunded), (2_000, 0));
    assert!(charge.paid && !charge.refunded);
    assert_eq!(charge.status, ChargeStatus::Succeeded);
    let events = &standin.events()[before..];
    assert_eq!(kinds(events), vec!["checkout.session.completed"]);
    assert_eq!(events[0]["data"]["object"], standin.object(session.id.as_str()).unwrap());
    assert_typed(events);
}

#[tokio::test]
async fn subscriptions_filter_by_customer_and_status_all_includes_canceled() {
    let (standin, client) = started().await;
    let kept = subscribed(&standin, &client, "a@example.com", "pro_monthly").await;
    let customer = kept.customer.id().to_string();
    let canceled =
        standin.create_subscription(&customer, "team_monthly", None).unwrap()["id"].as_str().unwrap().to_owned();
    subscribed(&standin, &client, "other@example.com", "pro_monthly").await;

    let canceled = CancelSubscription::new(canceled).send(&client).await.unwrap();

    assert_eq!(canceled.status, SubscriptionStatus::Canceled);
    assert_eq!(canceled.canceled_at, Some(NOW));
    assert_eq!(canceled.ended_at, Some(NOW));
    let default = ListSubscription::new().customer(customer.as_str()).send(&client).await.unwrap();
    assert_eq!(ids(&default, |s| s.id.to_string()), vec![kept.id.to_string()]);
    let all = ListSubscription::new()
        .customer(customer.as_str())
        .status(ListSubscriptionStatus::All)
        .send(&client)
        .await
        .unwrap();
    assert_eq!(ids(&all, |s| s.id.to_string()), vec![canceled.id.to_string(), kept.id.to_string()]);
}

#[tokio::test]
async fn subscription_pages_are_stable_across_three_pages() {
    let (standin, client) = started().await;
    let customer = customer(&client, "many@example.com").await;
    let created: Vec<String> = (0..7)
        .map(|_| {
            standin.create_subscription(customer.id.as_str(), "pro_monthly", None).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();

    let first = ListSubscription::new().limit(3).send(&client).await.unwrap();
    let second = ListSubscription::new()
        .limit(3)
        .starting_after(first.data.last().unwrap().id.as_str())
        .send(&client)
        .await
        .unwrap();
    let third = ListSubscription::new()
        .limit(3)
        .starting_after(second.data.last().unwrap().id.as_str())
        .send(&client)
        .await
        .unwrap();
    let back = ListSubscription::new().limit(3).ending_before(third.data[0].id.as_str()).send(&client).await.unwrap();

    assert_eq!((first.has_more, second.has_more, third.has_more), (true, true, false));
    let walked: Vec<String> =
        [&first, &second, &third].iter().flat_map(|page| ids(page, |s| s.id.to_string())).collect();
    assert_eq!(walked, newest_first);
    assert_eq!(ids(&back, |s| s.id.to_string()), newest_first[3..6].to_vec());
    assert!(back.has_more);
}

#[tokio::test]
async fn a_repeated_idempotency_key_returns_the_first_answer_and_creates_nothing() {
    let (standin, client) = started().await;
    let key = IdempotencyKey::new("tollgate-customer-acct_1").unwrap();
    let create = CreateCustomer::new().metadata(account_metadata("acct_once"));

    let first =
        create.customize().request_strategy(RequestStrategy::Idempotent(key.clone())).send(&client).await.unwrap();
    let again =
        create.customize().request_strategy(RequestStrategy::Idempotent(key.clone())).send(&client).await.unwrap();
    let different = CreateCustomer::new()
        .metadata(account_metadata("acct_twice"))
        .customize()
        .request_strategy(RequestStrategy::Idempotent(key))
        .send(&client)
        .await;

    assert_eq!(again.id, first.id);
    assert_eq!(ListCustomer::new().send(&client).await.unwrap().data.len(), 1);
    let (error, status) = stripe_error(different);
    assert_eq!(status, 400);
    assert_eq!(error.type_, ApiErrorsType::IdempotencyError);
    let keys: Vec<Option<String>> = standin.requests().iter().take(3).map(|r| r.idempotency_key.clone()).collect();
    assert_eq!(keys, vec![Some("tollgate-customer-acct_1".to_owned()); 3]);
    assert_eq!(standin.events().iter().filter(|e| e["type"] == "customer.created").count(), 1);
}

#[tokio::test]
async fn injected_rate_limits_are_answered_then_the_retry_succeeds() {
    let (standin, client) = started().await;
    standin.fail_next(2, 429);

    let created = CreateCustomer::new()
        .metadata(account_metadata("acct_retry"))
        .customize()
        .request_strategy(RequestStrategy::Retry(3))
        .send(&client)
        .await
        .unwrap();

    assert_eq!(created.metadata.unwrap()["tollgate_account_id"], "acct_retry");
    assert_eq!(standin.requests().len(), 3);
    assert_eq!(ListCustomer::new().send(&client).await.unwrap().data.len(), 1);
}

#[tokio::test]
async fn an_injected_fault_answers_in_stripes_error_shape() {
    let (standin, client) = started().await;
    standin.fail_next(1, 429);
    standin.fail_next(1, 500);

    let limited = stripe_error(ListCustomer::new().send(&client).await);
    let failed = stripe_error(ListCustomer::new().send(&client).await);
    let recovered = ListCustomer::new().send(&client).await;

    assert_eq!(limited.1, 429);
    assert_eq!(limited.0.code, Some(ApiErrorsCode::RateLimit));
    assert_eq!(failed.1, 500);
    assert_eq!(failed.0.type_, ApiErrorsType::ApiError);
    assert!(recovered.is_ok());
}

#[tokio::test]
async fn a_fault_is_not_saved_as_the_answer_for_an_idempotency_key() {
    let (standin, client) = started().await;
    let key = IdempotencyKey::new("tollgate-key-after-fault").unwrap();
    standin.fail_next(1, 500);
    let create = CreateCustomer::new().metadata(account_metadata("acct_after_fault"));

    let failed = create.customize().request_strategy(RequestStrategy::Idempotent(key.clone())).send(&client).await;
    let retried = create.customize().request_strategy(RequestStrategy::Idempotent(key)).send(&client).await;

    assert_eq!(stripe_error(failed).1, 500);
    assert_eq!(retried.unwrap().metadata.unwrap()["tollgate_account_id"], "acct_after_fault");
}

#[tokio::test]
async fn changing_the_price_records_an_update_with_previous_attributes() {
    let (standin, client) = started().await;
    let subscription = subscribed(&standin, &client, "upgrade@example.com", "pro_monthly").await;
    let mut item = UpdateSubscriptionItems::new();
    item.id = Some(subscription.items.data[0].id.to_string());
    item.price = Some("price_team_yearly".into());
    let later = NOW + 3_600;
    standin.set_clock(later);

    let updated = UpdateSubscription::new(subscription.id.clone())
        .items(vec![item])
        .proration_behavior(UpdateSubscriptionProrationBehavior::CreateProrations)
        .send(&client)
        .await
        .unwrap();

    let updated_item = &updated.items.data[0];
    assert_eq!(updated_item.id, subscription.items.data[0].id);
    assert_eq!(updated_item.price.lookup_key.as_deref(), Some("team_yearly"));
    assert_eq!(updated_item.price.recurring.as_ref().unwrap().interval, RecurringInterval::Year);
    assert_eq!(updated_item.current_period_start, later);
    assert_eq!(updated_item.current_period_end, later + 365 * DAY);
    let request = standin.requests().last().cloned().unwrap();
    assert_eq!(request.field("items[0][price]"), Some("price_team_yearly"));
    assert_eq!(request.field("proration_behavior"), Some("create_prorations"));
    let events = ListEvent::new().types(vec!["customer.subscription.updated".to_owned()]).send(&client).await.unwrap();
    assert_eq!(events.data.len(), 1);
    let raw = standin.events().into_iter().find(|e| e["type"] == "customer.subscription.updated").unwrap();
    let previous = &raw["data"]["previous_attributes"];
    assert_eq!(previous["items"]["data"][0]["price"]["lookup_key"], "pro_monthly");
    assert_eq!(raw["data"]["object"]["items"]["data"][0]["price"]["lookup_key"], "team_yearly");
    assert_eq!(raw["request"]["id"].as_str().map(|id| id.starts_with("req_")), Some(true));
}

#[tokio::test]
async fn scheduling_a_cancellation_sets_cancel_at_the_period_end() {
    let (standin, client) = started().await;
    let subscription = subscribed(&standin, &client, "leaving@example.com", "pro_monthly").await;

    let updated =
        UpdateSubscription::new(subscription.id.clone()).cancel_at_period_end(true).send(&client).await.unwrap();

    assert!(updated.cancel_at_period_end);
    assert_eq!(updated.cancel_at, Some(subscription.items.data[0].current_period_end));
    assert_eq!(updated.status, SubscriptionStatus::Active);
}

#[tokio::test]
async fn a_canceled_subscription_can_only_change_its_metadata() {
    let (standin, client) = started().await;
    let subscription = subscribed(&standin, &client, "gone@example.com", "pro_monthly").await;
    CancelSubscription::new(subscription.id.clone()).send(&client).await.unwrap();

    let update = UpdateSubscription::new(subscription.id.clone()).cancel_at_period_end(true).send(&client).await;
    let cancel_again = CancelSubscription::new(subscription.id.clone()).send(&client).await;

    let (error, status) = stripe_error(update);
    assert_eq!(status, 400);
    assert_eq!(
        error.message.as_deref(),
        Some("A canceled subscription can only update its cancellation_details and metadata.")
    );
    assert_eq!(stripe_error(cancel_again).1, 404);
}

#[tokio::test]
async fn events_are_listed_newest_first_and_filtered_by_type_and_created() {
    let (standin, client) = started().await;
    customer(&client, "acct_early").await;
    standin.set_clock(NOW + 60);
    let late = customer(&client, "acct_late").await;
    standin.create_subscription(late.id.as_str(), "pro_monthly", Some(7)).unwrap();

    let all = ListEvent::new().send(&client).await.unwrap();
    let recent = ListEvent::new()
        .created(stripe_types::RangeQueryTs::gte(NOW + 60))
        .types(vec!["customer.created".to_owned()])
        .send(&client)
        .await
        .unwrap();

    let kinds: Vec<&str> = all.data.iter().map(|e| e.type_.as_str()).collect();
    assert_eq!(kinds, vec!["customer.subscription.created", "customer.created", "customer.created"]);
    assert_eq!(all.data[0].created, NOW + 60);
    assert_eq!(all.data[2].created, NOW);
    assert_eq!(recent.data.len(), 1);
    assert_eq!(recent.data[0].type_.as_str(), "customer.created");
    assert_eq!(recent.data[0].created, NOW + 60);
    let request = standin.requests().last().cloned().unwrap();
    assert_eq!(request.method, "GET");
    assert!(request.query.contains("created%5Bgte%5D=1790000060") || request.query.contains("created[gte]=1790000060"));
}

#[tokio::test]
async fn portal_sessions_carry_a_url_and_the_return_url() {
    let (standin, client) = started().await;
    let subscription = subscribed(&standin, &client, "acct_portal", "pro_monthly").await;

    let session = CreateBillingPortalSession::new()
        .customer(subscription.customer.id().as_str())
        .return_url("https://app.example.com/billing")
        .send(&client)
        .await
        .unwrap();

    assert_eq!(session.customer, subscription.customer.id().to_string());
    assert_eq!(session.return_url.as_deref(), Some("https://app.example.com/billing"));
    assert_eq!(session.url, format!("http://127.0.0.1/stripe-standin/billing_portal/{}", session.id));
    assert!(session.flow.is_none());
    let request = standin.requests().last().cloned().unwrap();
    assert_eq!(request.field("customer"), Some(subscription.customer.id().as_str()));
    assert_eq!(request.field("return_url"), Some("https://app.example.com/billing"));
}

#[tokio::test]
async fn unknown_ids_missing_params_and_unknown_params_answer_stripe_errors() {
    let (_standin, client) = started().await;

    let missing_object = stripe_error(CancelSubscription::new("sub_missing").send(&client).await);
    let missing_param = stripe_error(CreateBillingPortalSession::new().send(&client).await);
    let mut line_item = CreateCheckoutSessionLineItems::new();
    line_item.price = Some("price_nope".into());
    let unknown_price = stripe_error(
        CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Subscription)
            .line_items(vec![line_item])
            .send(&client)
            .await,
    );

    assert_eq!(missing_object.1, 404);
    assert_eq!(missing_object.0.code, Some(ApiErrorsCode::ResourceMissing));
    assert_eq!(missing_object.0.message.as_deref(), Some("No such subscription: 'sub_missing'"));
    assert_eq!(missing_param.1, 400);
    assert_eq!(missing_param.0.code, Some(ApiErrorsCode::ParameterMissing));
    assert_eq!(missing_param.0.param.as_deref(), Some("customer"));
    assert_eq!(unknown_price.1, 400);
    assert_eq!(unknown_price.0.param.as_deref(), Some("line_items[0][price]"));
}

#[tokio::test]
async fn unknown_routes_and_parameters_answer_in_stripes_error_shape() {
    let (standin, _client) = started().await;
    let base = standin.spawn().await.unwrap();
    let http = reqwest::Client::new();

    let route = http.get(format!("{base}v1/nonsense")).send().await.unwrap();
    let route_status = route.status().as_u16();
    let route_body: Value = route.json().await.unwrap();
    let param = http.post(format!("{base}v1/customers")).form(&[("emali", "typo@example.com")]).send().await.unwrap();
    let param_status = param.status().as_u16();
    let param_body: Value = param.json().await.unwrap();

    assert_eq!(route_status, 404);
    assert_eq!(route_body["error"]["type"], "invalid_request_error");
    assert!(
        route_body["error"]["message"].as_str().unwrap().starts_with("Unrecognized request URL (GET: /v1/nonsense)")
    );
    assert_eq!(param_status, 400);
    assert_eq!(param_body["error"]["code"], "parameter_unknown");
    assert_eq!(param_body["error"]["param"], "emali");
}

#[tokio::test]
async fn parameters_and_endpoints_tollgate_never_uses_are_refused_in_stripes_error_shape() {
    let (standin, client) = started().await;
    let subscription = subscribed(&standin, &client, "acct_unused", "pro_monthly").await;
    let base = standin.spawn().await.unwrap();
    let http = reqwest::Client::new();

    let email = http.post(format!("{base}v1/customers")).form(&[("email", "a@example.com")]).send().await.unwrap();
    let quantity = http
        .post(format!("{base}v1/subscriptions/{}", subscription.id))
        .form(&[("items[0][id]", subscription.items.data[0].id.as_str()), ("items[0][quantity]", "2")])
        .send()
        .await
        .unwrap();
    let retrieve = http.get(format!("{base}v1/subscriptions/{}", subscription.id)).send().await.unwrap();

    let (email_status, email_body) = (email.status().as_u16(), email.json::<Value>().await.unwrap());
    assert_eq!(email_status, 400);
    assert_eq!(email_body["error"]["code"], "parameter_unknown");
    assert_eq!(email_body["error"]["param"], "email");
    let (quantity_status, quantity_body) = (quantity.status().as_u16(), quantity.json::<Value>().await.unwrap());
    assert_eq!(quantity_status, 400);
    assert_eq!(quantity_body["error"]["param"], "items[0][quantity]");
    assert_eq!(retrieve.status().as_u16(), 404);
    let retrieve_body: Value = retrieve.json().await.unwrap();
    assert!(retrieve_body["error"]["message"].as_str().unwrap().starts_with("Unrecognized request URL (GET: "));
    assert_eq!(ListCustomer::new().send(&client).await.unwrap().data.len(), 1, "a refused create creates nothing");
}

#[tokio::test]
async fn prices_are_listed_by_lookup_key() {
    let (standin, _client) = started().await;
    let base = standin.spawn().await.unwrap();

    let body = reqwest::Client::new()
        .get(format!("{base}v1/prices?lookup_keys[]=pro_monthly&lookup_keys[]=team_yearly&active=true"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    let prices: List<Price> = serde_json::from_str(&body).expect("a list of prices");
    let mut keys: Vec<String> = prices.data.iter().filter_map(|p| p.lookup_key.clone()).collect();
    keys.sort();
    assert_eq!(keys, vec!["pro_monthly", "team_yearly"]);
    let team = prices.data.iter().find(|p| p.id.as_str() == "price_team_yearly").unwrap();
    assert_eq!(team.unit_amount, Some(99_000));
    assert_eq!(team.recurring.as_ref().unwrap().interval, RecurringInterval::Year);
    assert_eq!(team.product.id().as_str(), "prod_team");
    let product: Product = typed(&standin, "prod_team");
    assert_eq!(product.name, "Team");
}

/// A catalogue other than `plans.toml`: one tier, two prices in euros.
const SOLO_CATALOGUE: &str = r#"
[metrics.api_calls]
unit = "call"

[tiers.free]
name = "Free"
api_calls = 10
requests_per_minute = 1

[tiers.solo]
name = "Solo"
trial_days = 7
features = ["exports"]
api_calls = 500
requests_per_minute = 5

[[prices]]
lookup_key = "solo_monthly"
tier = "solo"
interval = "month"
amount = 500
currency = "eur"

[[prices]]
lookup_key = "solo_yearly"
tier = "solo"
interval = "year"
amount = 5000
currency = "eur"
"#;

#[tokio::test]
async fn a_stand_in_from_another_catalogue_lists_that_catalogues_prices_over_http() {
    let catalogue = tollgate::domain::plans::Catalogue::parse(SOLO_CATALOGUE).expect("a valid catalogue");
    let standin = StandIn::from_catalogue(&catalogue);
    let base = standin.spawn().await.unwrap();

    let body =
        reqwest::Client::new().get(format!("{base}v1/prices?limit=100")).send().await.unwrap().text().await.unwrap();

    let prices: List<Price> = serde_json::from_str(&body).expect("a list of prices");
    let mut listed: Vec<(String, Option<i64>, String, RecurringInterval, String)> = prices
        .data
        .iter()
        .map(|p| {
            (
                p.lookup_key.clone().unwrap(),
                p.unit_amount,
                p.currency.to_string(),
                p.recurring.as_ref().unwrap().interval.clone(),
                p.product.id().to_string(),
            )
        })
        .collect();
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        listed,
        vec![
            ("solo_monthly".into(), Some(500), "eur".into(), RecurringInterval::Month, "prod_solo".into()),
            ("solo_yearly".into(), Some(5_000), "eur".into(), RecurringInterval::Year, "prod_solo".into()),
        ]
    );
}

#[tokio::test]
async fn a_stand_in_from_another_catalogue_subscribes_only_to_its_prices() {
    let catalogue = tollgate::domain::plans::Catalogue::parse(SOLO_CATALOGUE).expect("a valid catalogue");
    let standin = StandIn::from_catalogue(&catalogue);
    let base = standin.spawn().await.unwrap();
    let client = ClientBuilder::new("sk_test_standin").url(base).build().unwrap();
    let customer = customer(&client, "solo@example.com").await;

    let subscription = standin.create_subscription(customer.id.as_str(), "solo_monthly", None).unwrap();

    assert_eq!(subscription["items"]["data"][0]["price"]["id"], "price_solo_monthly");
    assert_eq!(subscription["items"]["data"][0]["price"]["product"], "prod_solo");
    assert!(matches!(
        standin.create_subscription(customer.id.as_str(), "pro_monthly", None),
        Err(StandInError::NotFound(_))
    ));
}

#[tokio::test]
async fn the_default_stand_in_sells_every_price_and_credit_pack_of_plans_toml() {
    let standin = StandIn::new();
    let base = standin.spawn().await.unwrap();
    let catalogue = tollgate::domain::plans::Catalogue::builtin().unwrap();

    let prices: List<Price> = reqwest::get(format!("{base}v1/prices?limit=100")).await.unwrap().json().await.unwrap();

    let mut listed: Vec<(String, Option<i64>, PriceType)> =
        prices.data.iter().map(|p| (p.lookup_key.clone().unwrap(), p.unit_amount, p.type_.clone())).collect();
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    let cents = |amount: u64| Some(i64::try_from(amount).unwrap());
    let plans = catalogue.prices().iter().map(|p| (p.lookup_key.clone(), cents(p.amount), PriceType::Recurring));
    let packs = catalogue.credit_packs().iter().map(|p| (p.lookup_key.clone(), cents(p.amount), PriceType::OneTime));
    let mut expected: Vec<(String, Option<i64>, PriceType)> = plans.chain(packs).collect();
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!catalogue.credit_packs().is_empty(), "plans.toml sells credit packs");
    assert_eq!(listed, expected);
}

#[tokio::test]
async fn the_router_serves_under_the_dev_servers_stripe_prefix() {
    let standin = StandIn::new();
    let app = axum::Router::new().nest("/stripe", standin.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = ClientBuilder::new("sk_test_standin").url(format!("http://{address}/stripe/")).build().unwrap();

    let created = customer(&client, "nested@example.com").await;

    assert_eq!(standin.requests()[0].path, "/v1/customers");
    let missing = stripe_error(CancelSubscription::new("sub_nope").send(&client).await);
    assert_eq!(missing.1, 404);
    assert!(created.id.as_str().starts_with("cus_"));
}

#[tokio::test]
async fn every_recorded_event_parses_as_a_webhook_event() {
    let (standin, client) = started().await;
    let subscription = subscribed(&standin, &client, "acct_events", "pro_monthly").await;
    let mut line_item = CreateCheckoutSessionLineItems::new();
    line_item.price = Some("price_team_monthly".into());
    line_item.quantity = Some(1);
    let session = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Subscription)
        .customer(subscription.customer.id().as_str())
        .line_items(vec![line_item])
        .send(&client)
        .await
        .unwrap();
    standin.complete_checkout_session(session.id.as_str()).unwrap();
    let mut item = UpdateSubscriptionItems::new();
    item.id = Some(subscription.items.data[0].id.to_string());
    item.price = Some("price_pro_yearly".into());
    UpdateSubscription::new(subscription.id.clone()).items(vec![item]).send(&client).await.unwrap();
    UpdateSubscription::new(subscription.id.clone()).cancel_at_period_end(true).send(&client).await.unwrap();
    CancelSubscription::new(subscription.id.clone()).send(&client).await.unwrap();

    let events = standin.events();

    let mut kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(
        kinds,
        vec![
            "checkout.session.completed",
            "customer.created",
            "customer.subscription.created",
            "customer.subscription.deleted",
            "customer.subscription.updated",
            // Without a trial, Checkout pays the first period's invoice.
            "invoice.created",
            "invoice.finalized",
            "invoice.paid",
            "invoice.payment_succeeded",
        ]
    );
    for event in &events {
        let parsed = Webhook::insecure(&event.to_string())
            .unwrap_or_else(|error| panic!("{} does not parse: {error:?}", event["type"]));
        assert_eq!(parsed.id.as_str(), event["id"].as_str().unwrap());
        assert!(!matches!(parsed.data.object, EventObject::Unknown(_)), "{} is unknown", event["type"]);
    }
    let listed = ListEvent::new().limit(100).send(&client).await.unwrap();
    assert_eq!(listed.data.len(), events.len());
}

// ----- Billing Meter events

fn usage(customer: &str, value: &str) -> HashMap<String, String> {
    HashMap::from([("stripe_customer_id".to_owned(), customer.to_owned()), ("value".to_owned(), value.to_owned())])
}

#[tokio::test]
async fn meter_events_are_summed_per_customer_over_the_requested_window() {
    let (standin, client) = started().await;
    let meter = standin.create_meter("api_calls");
    let meter_id = meter["id"].as_str().unwrap().to_owned();
    let (alice, bob) = (customer(&client, "acct_alice").await, customer(&client, "acct_bob").await);
    for (who, value, at) in
        [(&alice, "25", NOW - 120), (&alice, "5", NOW - 60), (&bob, "7", NOW - 60), (&alice, "9", NOW)]
    {
        CreateBillingMeterEvent::new("api_calls", usage(who.id.as_str(), value))
            .timestamp(at)
            .send(&client)
            .await
            .unwrap();
    }
    CreateBillingMeterEvent::new("other_metric", usage(alice.id.as_str(), "1000")).send(&client).await.unwrap();

    let summaries = ListIdBillingMeterEventSummary::new(meter_id.as_str(), alice.id.as_str(), NOW, NOW - 120)
        .send(&client)
        .await
        .unwrap();

    assert_eq!(summaries.data.len(), 1);
    let summary = &summaries.data[0];
    assert_eq!(summary.aggregated_value, 30.0, "alice's two events in [start, end), not bob's nor the later one");
    assert_eq!((summary.start_time, summary.end_time), (NOW - 120, NOW));
    assert_eq!(summary.meter, meter_id);
    let request = standin.requests().into_iter().find(|r| r.path == "/v1/billing/meter_events").unwrap();
    assert_eq!(request.field("event_name"), Some("api_calls"));
    assert_eq!(request.field("payload[stripe_customer_id]"), Some(alice.id.as_str()));
    assert_eq!(request.field("payload[value]"), Some("25"));
    assert_eq!(request.field("timestamp"), Some((NOW - 120).to_string().as_str()));
}

#[tokio::test]
async fn a_meter_event_identifier_counts_once() {
    let (standin, client) = started().await;
    let meter = standin.create_meter("api_calls");
    let buyer = customer(&client, "acct_meter").await;
    let report = CreateBillingMeterEvent::new("api_calls", usage(buyer.id.as_str(), "10")).identifier("usage-acct-1");

    let first = report.send(&client).await.unwrap();
    let again = stripe_error(report.send(&client).await);

    assert_eq!(first.identifier, "usage-acct-1");
    assert_eq!(first.timestamp, NOW);
    assert_eq!(again.1, 400);
    assert_eq!(again.0.param.as_deref(), Some("identifier"));
    let summaries =
        ListIdBillingMeterEventSummary::new(meter["id"].as_str().unwrap(), buyer.id.as_str(), NOW + 60, NOW)
            .send(&client)
            .await
            .unwrap();
    assert_eq!(summaries.data[0].aggregated_value, 10.0);
}

#[tokio::test]
async fn meter_events_outside_stripes_time_window_or_without_a_payload_are_refused() {
    let (standin, client) = started().await;
    let base = standin.spawn().await.unwrap();
    let buyer = customer(&client, "acct_late_usage").await;

    let too_old = stripe_error(
        CreateBillingMeterEvent::new("api_calls", usage(buyer.id.as_str(), "1"))
            .timestamp(NOW - 36 * DAY)
            .send(&client)
            .await,
    );
    let too_new = stripe_error(
        CreateBillingMeterEvent::new("api_calls", usage(buyer.id.as_str(), "1"))
            .timestamp(NOW + 600)
            .send(&client)
            .await,
    );
    let no_payload = reqwest::Client::new()
        .post(format!("{base}v1/billing/meter_events"))
        .form(&[("event_name", "api_calls")])
        .send()
        .await
        .unwrap();
    let unknown_meter = stripe_error(
        ListIdBillingMeterEventSummary::new("mtr_test_missing", buyer.id.as_str(), NOW, NOW - 60).send(&client).await,
    );

    assert_eq!((too_old.1, too_old.0.param.as_deref()), (400, Some("timestamp")));
    assert_eq!((too_new.1, too_new.0.param.as_deref()), (400, Some("timestamp")));
    assert_eq!(no_payload.status().as_u16(), 400);
    let body: Value = no_payload.json().await.unwrap();
    assert_eq!(body["error"]["code"], "parameter_missing");
    assert_eq!(body["error"]["param"], "payload");
    assert_eq!(unknown_meter.1, 404);
    assert_eq!(unknown_meter.0.code, Some(ApiErrorsCode::ResourceMissing));
}

// ----- triggers: the state Stripe would reach and the events it would send

const ACCOUNT: &str = "acct_trigger";
/// 2026-09-21 14:13:20 UTC plus one calendar month: 2026-10-21, and then 2026-11-21.
const A_MONTH_LATER: i64 = NOW + 30 * DAY;
const TWO_MONTHS_LATER: i64 = NOW + 61 * DAY;

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().expect("a type")).collect()
}

/// Every event must parse as async-stripe's typed webhook event.
fn assert_typed(events: &[Value]) {
    for event in events {
        let parsed = Webhook::insecure(&event.to_string())
            .unwrap_or_else(|error| panic!("{} does not parse: {error:?}", event["type"]));
        assert_eq!(parsed.id.as_str(), event["id"].as_str().unwrap());
        assert!(!matches!(parsed.data.object, EventObject::Unknown(_)), "{} is not typed", event["type"]);
    }
}

/// Triggers `spec`, checking that the events returned are the ones recorded last, in order, and
/// that they parse.
fn triggered(standin: &StandIn, spec: &TriggerSpec) -> Vec<Value> {
    let before = standin.events().len();
    let events = standin.trigger(spec).unwrap_or_else(|error| panic!("{} failed: {error}", spec.event));
    assert_eq!(standin.events()[before..], events[..], "the events returned are the events recorded");
    assert_typed(&events);
    events
}

fn object_id<'a>(events: &'a [Value], kind: &str) -> &'a str {
    let event = events.iter().find(|e| e["type"] == kind).unwrap_or_else(|| panic!("no {kind} in {:?}", kinds(events)));
    event["data"]["object"]["id"].as_str().expect("an object id")
}

fn account_subscription(standin: &StandIn, events: &[Value]) -> Subscription {
    typed(standin, object_id(events, "customer.subscription.created"))
}

fn invoice(standin: &StandIn, events: &[Value], kind: &str) -> Invoice {
    typed(standin, object_id(events, kind))
}

fn subscribed_through_checkout(standin: &StandIn) -> Subscription {
    let events = triggered(standin, &TriggerSpec::new("checkout.session.completed", ACCOUNT));
    account_subscription(standin, &events)
}

#[tokio::test]
async fn checkout_completed_alone_creates_the_customer_and_a_trialing_subscription_for_the_account() {
    let (standin, client) = started().await;

    let events = triggered(&standin, &TriggerSpec::new("checkout.session.completed", ACCOUNT));

    assert_eq!(kinds(&events), vec!["customer.created", "customer.subscription.created", "checkout.session.completed"]);
    let subscription = account_subscription(&standin, &events);
    assert_eq!(subscription.status, SubscriptionStatus::Trialing);
    assert_eq!(subscription.trial_end, Some(NOW + 14 * DAY));
    assert_eq!(subscription.metadata["tollgate_account_id"], ACCOUNT);
    assert_eq!(subscription.items.data[0].price.lookup_key.as_deref(), Some("pro_monthly"));
    let customer: Customer = typed(&standin, subscription.customer.id());
    let live = ListCustomer::new().send(&client).await.unwrap();
    assert!(live.data.iter().any(|c| c.id == customer.id), "the customer is live");
    assert_eq!(customer.id.as_str(), object_id(&events, "customer.created"));
    assert_eq!(customer.metadata.unwrap()["tollgate_account_id"], ACCOUNT);
    let session = typed::<CheckoutSession>(&standin, object_id(&events, "checkout.session.completed"));
    assert_eq!(session.status, Some(CheckoutSessionStatus::Complete));
    assert_eq!(session.client_reference_id.as_deref(), Some(ACCOUNT));
    assert_eq!(session.metadata.unwrap()["tollgate_account_id"], ACCOUNT);
    assert_eq!(session.customer.unwrap().id().as_str(), customer.id.as_str());
    assert_eq!(session.subscription.unwrap().id().as_str(), subscription.id.as_str());
    assert_eq!(session.payment_status, CheckoutSessionPaymentStatus::NoPaymentRequired);
}

#[tokio::test]
async fn checkout_completed_reuses_the_accounts_customer_and_enterprise_yearly_has_no_trial() {
    let (standin, client) = started().await;
    let metadata = HashMap::from([("tollgate_account_id".to_owned(), ACCOUNT.to_owned())]);
    let existing = CreateCustomer::new().metadata(metadata).send(&client).await.unwrap();
    let spec = TriggerSpec::new("checkout.session.completed", ACCOUNT).plan("enterprise").interval("year");

    let events = triggered(&standin, &spec);

    assert_eq!(
        kinds(&events),
        vec![
            "customer.subscription.created",
            "invoice.created",
            "invoice.finalized",
            "invoice.paid",
            "invoice.payment_succeeded",
            "checkout.session.completed"
        ],
        "without a trial the first period's invoice is paid on the hosted page"
    );
    let subscription = account_subscription(&standin, &events);
    assert_eq!(subscription.customer.id().as_str(), existing.id.as_str());
    assert_eq!(subscription.status, SubscriptionStatus::Active);
    assert_eq!(subscription.trial_end, None);
    assert_eq!(subscription.items.data[0].price.lookup_key.as_deref(), Some("enterprise_yearly"));
    assert_eq!(subscription.items.data[0].current_period_end, NOW + 365 * DAY);
    assert_eq!(events[5]["data"]["object"]["payment_status"], "paid");
}

#[tokio::test]
async fn a_plan_change_moves_the_live_subscription_to_the_new_price() {
    let (standin, _client) = started().await;
    let subscription = subscribed_through_checkout(&standin);

    let events = triggered(&standin, &TriggerSpec::new("customer.subscription.updated", ACCOUNT).plan("team"));

    assert_eq!(kinds(&events), vec!["customer.subscription.updated"]);
    assert!(events[0]["data"]["previous_attributes"]["items"].is_object(), "the old items are the previous attributes");
    let updated = typed::<Subscription>(&standin, subscription.id.clone());
    assert_eq!(updated.items.data[0].price.lookup_key.as_deref(), Some("team_monthly"));
    assert_eq!(updated.items.data[0].id, subscription.items.data[0].id);
    assert_eq!(updated.status, SubscriptionStatus::Trialing);
    assert_eq!(events[0]["request"]["id"].as_str().map(|id| id.starts_with("req_")), Some(true));
}

#[tokio::test]
async fn an_update_without_a_plan_changes_only_metadata() {
    let (standin, _client) = started().await;
    let subscription = subscribed_through_checkout(&standin);

    let events = triggered(&standin, &TriggerSpec::new("customer.subscription.updated", ACCOUNT));

    assert_eq!(kinds(&events), vec!["customer.subscription.updated"]);
    let previous = events[0]["data"]["previous_attributes"].as_object().unwrap();
    assert_eq!(previous.keys().collect::<Vec<_>>(), vec!["metadata"]);
    let updated = typed::<Subscription>(&standin, subscription.id.clone());
    assert_eq!(updated.items.data[0].price.lookup_key.as_deref(), Some("pro_monthly"));
    assert_eq!(updated.metadata["tollgate_account_id"], ACCOUNT);
}

#[tokio::test]
async fn subscription_deleted_cancels_the_live_subscription_now() {
    let (standin, _client) = started().await;
    let subscription = subscribed_through_checkout(&standin);

    let events = triggered(&standin, &TriggerSpec::new("customer.subscription.deleted", ACCOUNT));

    assert_eq!(kinds(&events), vec!["customer.subscription.deleted"]);
    let canceled = typed::<Subscription>(&standin, subscription.id.clone());
    assert_eq!(canceled.status, SubscriptionStatus::Canceled);
    assert_eq!((canceled.canceled_at, canceled.ended_at), (Some(NOW), Some(NOW)));
}

#[tokio::test]
async fn an_account_without_a_subscription_is_subscribed_before_the_change() {
    let (standin, _client) = started().await;

    let events = triggered(&standin, &TriggerSpec::new("customer.subscription.deleted", ACCOUNT).plan("team"));

    assert_eq!(
        kinds(&events),
        vec!["customer.created", "customer.subscription.created", "customer.subscription.deleted"]
    );
    let subscription = account_subscription(&standin, &events);
    assert_eq!(subscription.status, SubscriptionStatus::Canceled);
    assert_eq!(subscription.items.data[0].price.lookup_key.as_deref(), Some("team_monthly"));
    assert_eq!(subscription.metadata["tollgate_account_id"], ACCOUNT);
}

#[tokio::test]
async fn pausing_a_trialing_subscription_ends_its_trial_without_a_payment_method() {
    let (standin, _client) = started().await;
    let subscription = subscribed_through_checkout(&standin);

    let events = triggered(&standin, &TriggerSpec::new("customer.subscription.paused", ACCOUNT));

    assert_eq!(kinds(&events), vec!["customer.subscription.paused", "customer.subscription.updated"]);
    assert_eq!(events[1]["data"]["previous_attributes"]["status"], "trialing");
    let paused = typed::<Subscription>(&standin, subscription.id.clone());
    assert_eq!(paused.status, SubscriptionStatus::Paused);
    assert_eq!(paused.trial_end, Some(NOW));
    let details = paused.status_details.expect("a paused subscription says why");
    assert_eq!(
        details.paused.subscription.type_,
        SubscriptionsResourcePausedStatusDetailsSubscriptionType::TrialEndWithoutPaymentMethod
    );
    assert_eq!(details.paused.transitioned_at, NOW);
    let again = standin.trigger(&TriggerSpec::new("customer.subscription.paused", ACCOUNT));
    assert_eq!(again, Err(StandInError::Invalid(format!("Subscription {} is already paused.", subscription.id))));
}

#[tokio::test]
async fn resuming_a_paused_subscription_makes_it_active_for_a_new_period() {
    let (standin, _client) = started().await;
    let subscription = subscribed_through_checkout(&standin);
    triggered(&standin, &TriggerSpec::new("customer.subscription.paused", ACCOUNT));
    standin.set_clock(A_MONTH_LATER);

    let events = triggered(&standin, &TriggerSpec::new("customer.subscription.resumed", ACCOUNT));

    assert_eq!(kinds(&events), vec!["customer.subscription.resumed", "customer.subscription.updated"]);
    let resumed = typed::<Subscription>(&standin, subscription.id.clone());
    assert_eq!(resumed.status, SubscriptionStatus::Active);
    assert_eq!(resumed.status_details, None);
    assert_eq!(resumed.billing_cycle_anchor, A_MONTH_LATER);
    assert_eq!(resumed.items.data[0].current_period_start, A_MONTH_LATER);
    assert_eq!(resumed.items.data[0].current_period_end, TWO_MONTHS_LATER);
}

#[tokio::test]
async fn resuming_a_subscription_that_is_not_paused_pauses_it_first() {
    let (standin, _client) = started().await;
    triggered(&standin, &TriggerSpec::new("checkout.session.completed", ACCOUNT).plan("enterprise"));

    let events = triggered(&standin, &TriggerSpec::new("customer.subscription.resumed", ACCOUNT));

    assert_eq!(
        kinds(&events),
        vec![
            "customer.subscription.paused",
            "customer.subscription.updated",
            "customer.subscription.resumed",
            "customer.subscription.updated",
        ]
    );
    let paused = &events[0]["data"]["object"];
    assert_eq!(paused["status_details"]["paused"]["subscription"]["type"], "pause_requested");
    let resumed: Subscription = typed(&standin, object_id(&events, "customer.subscription.resumed"));
    assert_eq!(resumed.status, SubscriptionStatus::Active);
}

#[tokio::test]
async fn trial_will_end_brings_the_trial_end_to_three_days_from_now() {
    let (standin, _client) = started().await;
    let subscription = subscribed_through_checkout(&standin);

    let events = triggered(&standin, &TriggerSpec::new("customer.subscription.trial_will_end", ACCOUNT));

    assert_eq!(kinds(&events), vec!["customer.subscription.trial_will_end"]);
    let trialing = typed::<Subscription>(&standin, subscription.id.clone());
    assert_eq!(trialing.status, SubscriptionStatus::Trialing);
    assert_eq!(trialing.trial_end, Some(NOW + 3 * DAY));
    assert_eq!(trialing.items.data[0].current_period_end, NOW + 3 * DAY);
    assert_eq!(events[0]["data"]["object"]["trial_end"], NOW + 3 * DAY);
}

#[tokio::test]
async fn trial_will_end_needs_a_trial_and_a_refused_trigger_changes_nothing() {
    let (standin, client) = started().await;

    let without_trial =
        standin.trigger(&TriggerSpec::new("customer.subscription.trial_will_end", ACCOUNT).plan("enterprise"));

    assert_eq!(
        without_trial,
        Err(StandInError::Invalid("Plan 'enterprise' has no trial, so it never sends trial_will_end.".into()))
    );
    assert!(standin.events().is_empty(), "the customer made on the way is undone");
    assert!(ListCustomer::new().send(&client).await.unwrap().data.is_empty());
    triggered(&standin, &TriggerSpec::new("checkout.session.completed", ACCOUNT).plan("enterprise"));
    let active = standin.trigger(&TriggerSpec::new("customer.subscription.trial_will_end", ACCOUNT));
    assert!(matches!(active, Err(StandInError::Invalid(message)) if message.contains("is active, not trialing")));
}

#[tokio::test]
async fn invoice_paid_ends_the_trial_and_pays_the_first_period() {
    let (standin, _client) = started().await;
    let subscription = subscribed_through_checkout(&standin);

    let events = triggered(&standin, &TriggerSpec::new("invoice.paid", ACCOUNT));

    assert_eq!(
        kinds(&events),
        vec![
            "customer.subscription.updated",
            "invoice.created",
            "invoice.finalized",
            "invoice.paid",
            "invoice.payment_succeeded",
        ]
    );
    let active = typed::<Subscription>(&standin, subscription.id.clone());
    assert_eq!(active.status, SubscriptionStatus::Active);
    assert_eq!(active.trial_end, Some(NOW));
    assert_eq!(
        (active.items.data[0].current_period_start, active.items.data[0].current_period_end),
        (NOW, A_MONTH_LATER)
    );
    let paid = invoice(&standin, &events, "invoice.paid");
    assert_eq!(active.latest_invoice.unwrap().id().as_ref(), paid.id.as_ref());
    assert_eq!(paid.status, Some(InvoiceStatus::Paid));
    assert_eq!((paid.amount_due, paid.amount_paid, paid.amount_remaining), (2_900, 2_900, 0));
    assert_eq!((paid.attempt_count, paid.attempted), (1, true));
    assert_eq!(paid.billing_reason, Some(InvoiceBillingReason::SubscriptionCycle));
    assert_eq!(paid.customer.unwrap().id().as_str(), subscription.customer.id().as_str());
    let parent = paid.parent.unwrap().subscription_details.unwrap();
    assert_eq!(parent.subscription.id().as_str(), subscription.id.as_str());
    assert_eq!(parent.metadata.unwrap()["tollgate_account_id"], ACCOUNT);
    let line = &paid.lines.data[0];
    assert_eq!((line.period.start, line.period.end), (NOW, A_MONTH_LATER));
    assert_eq!(line.amount, 2_900);
    assert_eq!(paid.status_transitions.paid_at, Some(NOW));
    assert!(paid.number.is_some());
    assert_eq!(events[1]["data"]["object"]["status"], "draft");
    assert_eq!(events[2]["data"]["object"]["status"], "open");
    assert!(events[2]["data"]["object"].get("subscription").is_none(), "the current API has no invoice.subscription");
}

#[tokio::test]
async fn invoice_payment_failed_leaves_the_invoice_open_and_the_subscription_past_due() {
    let (standin, _client) = started().await;
    let subscription = subscribed_through_checkout(&standin);

    let events = triggered(&standin, &TriggerSpec::new("invoice.payment_failed", ACCOUNT));

    assert_eq!(
        kinds(&events),
        vec![
            "customer.subscription.updated",
            "invoice.created",
            "invoice.finalized",
            "invoice.payment_failed",
            "customer.subscription.updated",
        ]
    );
    assert_eq!(events[4]["data"]["previous_attributes"], json!({ "status": "active" }));
    let past_due = typed::<Subscription>(&standin, subscription.id.clone());
    assert_eq!(past_due.status, SubscriptionStatus::PastDue);
    let open = invoice(&standin, &events, "invoice.payment_failed");
    assert_eq!(open.status, Some(InvoiceStatus::Open));
    assert_eq!((open.attempt_count, open.attempted, open.amount_paid, open.amount_remaining), (1, true, 0, 2_900));
    assert_eq!(open.next_payment_attempt, Some(NOW + 3 * DAY));
}

#[tokio::test]
async fn paying_after_a_failure_pays_the_open_invoice_and_reactivates_the_subscription() {
    let (standin, _client) = started().await;
    let subscription = subscribed_through_checkout(&standin);
    let failed = triggered(&standin, &TriggerSpec::new("invoice.payment_failed", ACCOUNT));

    let events = triggered(&standin, &TriggerSpec::new("invoice.paid", ACCOUNT));

    assert_eq!(kinds(&events), vec!["invoice.paid", "invoice.payment_succeeded", "customer.subscription.updated"]);
    let paid = invoice(&standin, &events, "invoice.paid");
    assert_eq!(paid.id.as_ref().unwrap().as_str(), object_id(&failed, "invoice.payment_failed"));
    assert_eq!((paid.status, paid.attempt_count), (Some(InvoiceStatus::Paid), 2));
    let active = typed::<Subscription>(&standin, subscription.id.clone());
    assert_eq!(active.status, SubscriptionStatus::Active);
}

#[tokio::test]
async fn invoice_payment_action_required_waits_for_the_customer_with_the_subscription_past_due() {
    let (standin, _client) = started().await;
    let subscription = subscribed_through_checkout(&standin);

    let events = triggered(&standin, &TriggerSpec::new("invoice.payment_action_required", ACCOUNT));

    assert_eq!(kinds(&events)[3..], ["invoice.payment_action_required", "customer.subscription.updated"]);
    let open = invoice(&standin, &events, "invoice.payment_action_required");
    assert_eq!((open.status, open.attempt_count, open.next_payment_attempt), (Some(InvoiceStatus::Open), 1, None));
    let past_due = typed::<Subscription>(&standin, subscription.id.clone());
    assert_eq!(past_due.status, SubscriptionStatus::PastDue);
}

#[tokio::test]
async fn invoice_finalized_renews_into_the_next_period_without_attempting_payment() {
    let (standin, _client) = started().await;
    let subscription = subscribed_through_checkout(&standin);
    triggered(&standin, &TriggerSpec::new("invoice.paid", ACCOUNT));

    let events = triggered(&standin, &TriggerSpec::new("invoice.finalized", ACCOUNT));

    assert_eq!(kinds(&events), vec!["customer.subscription.updated", "invoice.created", "invoice.finalized"]);
    let renewed = typed::<Subscription>(&standin, subscription.id.clone());
    assert_eq!(renewed.status, SubscriptionStatus::Active);
    let item = &renewed.items.data[0];
    assert_eq!((item.current_period_start, item.current_period_end), (A_MONTH_LATER, TWO_MONTHS_LATER));
    let open = invoice(&standin, &events, "invoice.finalized");
    assert_eq!((open.status, open.attempt_count, open.attempted), (Some(InvoiceStatus::Open), 0, false));
    assert_eq!(open.billing_reason, Some(InvoiceBillingReason::SubscriptionCycle));
    assert_eq!((open.period_start, open.period_end), (NOW, A_MONTH_LATER));
    assert_eq!((open.lines.data[0].period.start, open.lines.data[0].period.end), (A_MONTH_LATER, TWO_MONTHS_LATER));
    assert_eq!(open.status_transitions.finalized_at, Some(NOW));
}

#[tokio::test]
async fn an_invoice_for_an_account_without_anything_subscribes_it_first() {
    let (standin, _client) = started().await;

    let events = triggered(&standin, &TriggerSpec::new("invoice.paid", ACCOUNT).plan("enterprise"));

    assert_eq!(
        kinds(&events),
        vec![
            "customer.created",
            "customer.subscription.created",
            "invoice.created",
            "invoice.finalized",
            "invoice.paid",
            "invoice.payment_succeeded",
        ]
    );
    let paid = invoice(&standin, &events, "invoice.paid");
    assert_eq!(paid.billing_reason, Some(InvoiceBillingReason::SubscriptionCreate));
    assert_eq!(paid.amount_paid, 29_900);
    assert_eq!((paid.lines.data[0].period.start, paid.lines.data[0].period.end), (NOW, A_MONTH_LATER));
}

#[tokio::test]
async fn a_paused_subscription_gets_no_invoice() {
    let (standin, _client) = started().await;
    triggered(&standin, &TriggerSpec::new("customer.subscription.paused", ACCOUNT));
    let recorded = standin.events().len();

    let refused = standin.trigger(&TriggerSpec::new("invoice.paid", ACCOUNT));

    assert!(matches!(refused, Err(StandInError::Invalid(message)) if message.contains("is paused")));
    assert_eq!(standin.events().len(), recorded);
}

#[tokio::test]
async fn a_dispute_names_the_accounts_paid_charge_which_is_retrievable() {
    let (standin, client) = started().await;
    let subscription = subscribed_through_checkout(&standin);

    let events = triggered(&standin, &TriggerSpec::new("charge.dispute.created", ACCOUNT));

    assert_eq!(kinds(&events).last(), Some(&"charge.dispute.created"));
    assert_eq!(kinds(&events)[..5].last(), Some(&"invoice.payment_succeeded"), "the disputed payment is made first");
    let dispute = typed::<Dispute>(&standin, object_id(&events, "charge.dispute.created"));
    assert_eq!(dispute.status, DisputeStatus::NeedsResponse);
    assert_eq!(dispute.created, NOW);
    assert_eq!(dispute.evidence_details.due_by, Some(NOW + 7 * DAY));
    let charge =
        RetrieveCharge::new(dispute.charge.id().clone()).send(&client).await.expect("the charge is retrievable");
    assert_eq!(charge.customer.unwrap().id().as_str(), subscription.customer.id().as_str());
    assert_eq!((charge.amount, dispute.amount), (2_900, 2_900));
    assert_eq!(charge.status, ChargeStatus::Succeeded);
    assert!(charge.paid && charge.captured && charge.disputed);
    let paid = invoice(&standin, &events, "invoice.paid");
    assert_eq!(paid.amount_paid, charge.amount);
}

#[tokio::test]
async fn closing_a_dispute_records_its_outcome() {
    let (standin, _client) = started().await;
    let opened = triggered(&standin, &TriggerSpec::new("charge.dispute.created", ACCOUNT));

    let lost = triggered(&standin, &TriggerSpec::new("charge.dispute.closed", ACCOUNT).outcome("lost"));
    let won = triggered(&standin, &TriggerSpec::new("charge.dispute.closed", ACCOUNT));

    assert_eq!(kinds(&lost), vec!["charge.dispute.closed"]);
    let dispute = typed::<Dispute>(&standin, object_id(&opened, "charge.dispute.created"));
    assert_eq!(dispute.status, DisputeStatus::Lost);
    assert!(dispute.evidence_details.has_evidence);
    assert_eq!(kinds(&won)[kinds(&won).len() - 2..], ["charge.dispute.created", "charge.dispute.closed"]);
    let second = typed::<Dispute>(&standin, object_id(&won, "charge.dispute.closed"));
    assert_eq!(second.status, DisputeStatus::Won);
    assert_ne!(second.charge.id(), dispute.charge.id(), "a new dispute needs an undisputed charge");
}

#[tokio::test]
async fn a_refund_returns_the_whole_charge() {
    let (standin, client) = started().await;
    let paid = triggered(&standin, &TriggerSpec::new("invoice.paid", ACCOUNT));

    let events = triggered(&standin, &TriggerSpec::new("charge.refunded", ACCOUNT));

    assert_eq!(kinds(&events), vec!["charge.refunded"]);
    let charge = RetrieveCharge::new(object_id(&events, "charge.refunded")).send(&client).await.unwrap();
    assert_eq!(charge.amount, invoice(&standin, &paid, "invoice.paid").amount_paid);
    assert_eq!(charge.amount_refunded, charge.amount);
    assert!(charge.refunded);
    let refunds = charge.refunds.expect("the charge lists its refund");
    assert_eq!(refunds.data.len(), 1);
    assert_eq!(refunds.data[0].amount, charge.amount);
    assert_eq!(events[0]["data"]["previous_attributes"]["amount_refunded"], 0);
    assert_eq!(events[0]["data"]["previous_attributes"]["refunded"], false);
}

/// The completed payment-mode session of a pack purchase's events.
fn purchase(events: &[Value]) -> &Value {
    let event = events.iter().find(|e| e["type"] == "checkout.session.completed").expect("a completed session");
    &event["data"]["object"]
}

#[tokio::test]
async fn buying_a_pack_creates_the_customer_and_a_paid_payment_mode_session_with_the_packs_metadata() {
    let (standin, client) = started().await;

    let events = triggered(&standin, &TriggerSpec::new("checkout.session.completed", "acct_x").pack("credits_1000"));

    assert_eq!(kinds(&events), vec!["customer.created", "checkout.session.completed"]);
    let session = purchase(&events);
    assert_eq!(session["mode"], "payment");
    assert_eq!(session["status"], "complete");
    assert_eq!(session["payment_status"], "paid");
    assert_eq!(session["amount_total"], 1_000);
    assert_eq!(session["currency"], "usd");
    assert_eq!(session["subscription"], Value::Null);
    assert_eq!(session["client_reference_id"], "acct_x");
    assert_eq!(session["metadata"], json!({ "tollgate_account_id": "acct_x", "tollgate_pack": "credits_1000" }));
    assert_eq!(session["customer"], events[0]["data"]["object"]["id"]);
    assert_eq!(events[0]["data"]["object"]["metadata"]["tollgate_account_id"], "acct_x");
    let payment_intent = session["payment_intent"].as_str().expect("a payment intent");
    let intent: stripe_shared::PaymentIntent = typed(&standin, payment_intent);
    let charge = RetrieveCharge::new(intent.latest_charge.unwrap().id().clone()).send(&client).await.unwrap();
    assert_eq!(charge.amount, 1_000);
    assert_eq!(charge.payment_intent.unwrap().id().as_str(), payment_intent);
    assert!(ListSubscription::new().send(&client).await.unwrap().data.is_empty(), "a pack subscribes to nothing");
}

#[tokio::test]
async fn a_second_purchase_makes_a_second_session_for_the_same_customer() {
    let (standin, _client) = started().await;
    let buy = TriggerSpec::new("checkout.session.completed", ACCOUNT).pack("credits_10000");
    let first = triggered(&standin, &buy);

    let second = triggered(&standin, &buy);

    assert_eq!(kinds(&second), vec!["checkout.session.completed"], "the account's customer is reused");
    let (first, second) = (purchase(&first), purchase(&second));
    assert_ne!(first["id"], second["id"]);
    assert_ne!(first["payment_intent"], second["payment_intent"]);
    assert_eq!(first["customer"], second["customer"]);
    assert_eq!(second["amount_total"], 8_000);
    assert_eq!(second["metadata"]["tollgate_pack"], "credits_10000");
}

#[tokio::test]
async fn refunding_a_pack_returns_the_whole_charge_of_its_last_purchase() {
    let (standin, client) = started().await;
    let buy = TriggerSpec::new("checkout.session.completed", ACCOUNT).pack("credits_1000");
    triggered(&standin, &buy);
    let last = triggered(&standin, &buy);
    triggered(&standin, &TriggerSpec::new("checkout.session.completed", ACCOUNT).pack("credits_10000"));

    let events = triggered(&standin, &TriggerSpec::new("charge.refunded", ACCOUNT).pack("credits_1000"));

    assert_eq!(kinds(&events), vec!["charge.refunded"]);
    let refunded = &events[0]["data"]["object"];
    assert_eq!(refunded["payment_intent"], purchase(&last)["payment_intent"]);
    assert_eq!(refunded["customer"], purchase(&last)["customer"]);
    assert_eq!((&refunded["refunded"], &refunded["amount_refunded"]), (&json!(true), &json!(1_000)));
    assert_eq!(events[0]["data"]["previous_attributes"]["refunded"], false);
    let charge = RetrieveCharge::new(object_id(&events, "charge.refunded")).send(&client).await.unwrap();
    let refunds = charge.refunds.expect("the charge lists its refund");
    assert_eq!(refunds.data.len(), 1);
    assert_eq!(refunds.data[0].amount, 1_000);
    assert_eq!(
        refunds.data[0].payment_intent.as_ref().map(|pi| pi.id().to_string()),
        refunded["payment_intent"].as_str().map(str::to_owned)
    );
}

#[tokio::test]
async fn refunding_a_pack_never_bought_buys_it_first() {
    let (standin, _client) = started().await;

    let events = triggered(&standin, &TriggerSpec::new("charge.refunded", ACCOUNT).pack("credits_1000"));

    assert_eq!(kinds(&events), vec!["customer.created", "checkout.session.completed", "charge.refunded"]);
    assert_eq!(events[2]["data"]["object"]["payment_intent"], purchase(&events)["payment_intent"]);
}

#[tokio::test]
async fn a_plan_refund_leaves_pack_purchases_alone() {
    let (standin, _client) = started().await;
    let paid = triggered(&standin, &TriggerSpec::new("invoice.paid", ACCOUNT));
    let bought = triggered(&standin, &TriggerSpec::new("checkout.session.completed", ACCOUNT).pack("credits_1000"));

    let events = triggered(&standin, &TriggerSpec::new("charge.refunded", ACCOUNT));

    assert_eq!(kinds(&events), vec!["charge.refunded"]);
    let refunded = &events[0]["data"]["object"];
    assert_eq!(refunded["amount"], invoice(&standin, &paid, "invoice.paid").amount_paid);
    assert_ne!(refunded["payment_intent"], purchase(&bought)["payment_intent"]);
}

#[tokio::test]
async fn an_unknown_pack_is_refused_naming_the_known_ones_and_changes_nothing() {
    let (standin, _client) = started().await;

    let refused = standin.trigger(&TriggerSpec::new("checkout.session.completed", ACCOUNT).pack("credits_5"));

    let Err(StandInError::Invalid(message)) = refused else { panic!("expected Invalid, got {refused:?}") };
    assert!(message.contains("Unknown credit pack 'credits_5'"), "{message}");
    assert!(message.contains("credits_1000, credits_10000"), "{message}");
    assert!(standin.events().is_empty());
    assert!(standin.trigger(&TriggerSpec::new("charge.refunded", ACCOUNT).pack("credits_5")).is_err());
}

#[tokio::test]
async fn customer_deleted_cancels_the_subscription_and_deletes_the_accounts_customer() {
    let (standin, client) = started().await;
    let subscription = subscribed_through_checkout(&standin);

    let events = triggered(&standin, &TriggerSpec::new("customer.deleted", ACCOUNT));

    assert_eq!(kinds(&events), vec!["customer.subscription.deleted", "customer.deleted"]);
    let live = ListCustomer::new().limit(100).send(&client).await.unwrap();
    assert!(live.data.iter().all(|c| c.id != *subscription.customer.id()), "a deleted customer is no longer listed");
    let canceled = typed::<Subscription>(&standin, subscription.id.clone());
    assert_eq!(canceled.status, SubscriptionStatus::Canceled);
}

#[tokio::test]
async fn customer_deleted_for_an_account_without_a_customer_fails_clearly() {
    let (standin, _client) = started().await;

    let refused = standin.trigger(&TriggerSpec::new("customer.deleted", "acct_nobody"));

    let Err(StandInError::NotFound(message)) = refused else { panic!("expected NotFound, got {refused:?}") };
    assert!(message.contains("Account 'acct_nobody' has no customer"), "{message}");
    assert!(message.contains("nothing to delete"), "{message}");
    assert!(standin.events().is_empty());
}

#[tokio::test]
async fn the_entitlement_summary_lists_the_features_of_the_accounts_plan() {
    let (standin, _client) = started().await;
    triggered(&standin, &TriggerSpec::new("checkout.session.completed", ACCOUNT).plan("team"));

    let events = triggered(&standin, &TriggerSpec::new("entitlements.active_entitlement_summary.updated", ACCOUNT));

    assert_eq!(kinds(&events), vec!["entitlements.active_entitlement_summary.updated"]);
    let summary = &events[0]["data"]["object"];
    let features: Vec<&str> =
        summary["entitlements"]["data"].as_array().unwrap().iter().map(|e| e["lookup_key"].as_str().unwrap()).collect();
    assert_eq!(features, vec!["priority_support", "websocket_streaming"]);
    assert_eq!(summary["customer"], standin.events()[0]["data"]["object"]["id"]);
    assert_eq!(events[0]["data"]["previous_attributes"]["entitlements"]["data"], json!([]));
    let parsed = Webhook::insecure(&events[0].to_string()).unwrap();
    let EventObject::EntitlementsActiveEntitlementSummaryUpdated(typed) = parsed.data.object else {
        panic!("the summary is typed");
    };
    assert_eq!(typed.entitlements.data.len(), 2);
}

#[tokio::test]
async fn every_trigger_records_events_that_parse_as_typed_webhook_events() {
    let (standin, _client) = started().await;

    for (n, event) in TRIGGER_EVENTS.iter().enumerate() {
        let account = format!("acct_{n}");
        if *event == "customer.deleted" {
            triggered(&standin, &TriggerSpec::new("customer.created", &account));
        }
        let events = triggered(&standin, &TriggerSpec::new(event, &account));
        assert!(kinds(&events).contains(event), "{event} records {:?}", kinds(&events));
    }

    let mut recorded: Vec<String> = standin.events().iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect();
    recorded.sort_unstable();
    recorded.dedup();
    for event in TRIGGER_EVENTS {
        assert!(recorded.iter().any(|kind| kind == event), "{event} was recorded");
    }
    assert_typed(&standin.events());
}

#[tokio::test]
async fn the_trigger_route_answers_the_recorded_events() {
    let (standin, _client) = started().await;
    let base = standin.spawn().await.unwrap();

    let response = reqwest::Client::new()
        .post(format!("{base}_tollgate/trigger"))
        .json(&json!({ "event": "checkout.session.completed", "account": ACCOUNT, "plan": "team", "interval": "year" }))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["events"], json!(standin.events()));
    assert_eq!(kinds(body["events"].as_array().unwrap()).len(), 3);
    assert!(standin.requests().is_empty(), "the control route is not a Stripe API request");
}

#[tokio::test]
async fn bad_trigger_requests_get_stripes_error_shape_and_change_nothing() {
    let (standin, _client) = started().await;
    let base = standin.spawn().await.unwrap();
    let http = reqwest::Client::new();
    let url = format!("{base}_tollgate/trigger");
    let refusals = [
        (json!({ "event": "invoice.upcoming", "account": ACCOUNT }), 400, Some("event")),
        (json!({ "event": "invoice.paid", "account": ACCOUNT, "plan": "gold" }), 400, Some("plan")),
        (json!({ "event": "invoice.paid", "account": ACCOUNT, "interval": "week" }), 400, Some("interval")),
        (json!({ "event": "invoice.paid", "account": ACCOUNT, "outcome": "won" }), 400, Some("outcome")),
        (json!({ "event": "charge.dispute.closed", "account": ACCOUNT, "outcome": "draw" }), 400, Some("outcome")),
        (json!({ "event": "invoice.paid", "account": ACCOUNT, "pack": "credits_1000" }), 400, Some("pack")),
        (json!({ "event": "charge.refunded", "account": ACCOUNT, "pack": "credits_5" }), 400, Some("pack")),
        (
            json!({ "event": "checkout.session.completed", "account": ACCOUNT, "pack": "credits_1000", "plan": "team" }),
            400,
            Some("pack"),
        ),
        (json!({ "event": "invoice.paid", "account": "" }), 400, Some("account")),
        (json!({ "event": "invoice.paid", "acount": ACCOUNT }), 400, None),
        (json!({ "event": "customer.deleted", "account": ACCOUNT }), 404, Some("account")),
    ];

    for (body, status, param) in refusals {
        let response = http.post(&url).json(&body).send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{body}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["type"], "invalid_request_error", "{body}");
        assert!(answer["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
        assert_eq!(answer["error"]["param"].as_str(), param, "{body}");
    }
    let malformed = http.post(&url).body("{not json").send().await.unwrap();

    assert_eq!(malformed.status().as_u16(), 400);
    assert!(standin.events().is_empty());
}

#[tokio::test]
async fn a_paid_invoice_is_listed_by_its_payment_intent() {
    let (standin, client) = started().await;
    let paid = triggered(&standin, &TriggerSpec::new("invoice.paid", ACCOUNT));
    triggered(&standin, &TriggerSpec::new("invoice.paid", "acct_other"));
    let invoice_id = object_id(&paid, "invoice.paid").to_owned();
    let by_invoice = ListInvoicePayment::new().invoice(invoice_id.as_str()).send(&client).await.unwrap();
    let payment_intent = by_invoice.data[0].payment.payment_intent.as_ref().expect("paid through a payment intent");
    let mut payment = ListInvoicePaymentPayment::new(ListInvoicePaymentPaymentType::PaymentIntent);
    payment.payment_intent = Some(payment_intent.id().to_string());

    let listed = ListInvoicePayment::new().payment(payment).send(&client).await.unwrap();

    assert_eq!(listed.data.len(), 1);
    let record = &listed.data[0];
    assert_eq!(record.id, by_invoice.data[0].id);
    assert_eq!(record.invoice.id().as_ref().map(|id| id.as_str()), Some(invoice_id.as_str()));
    assert_eq!((record.amount_paid, record.amount_requested), (Some(2_900), 2_900));
    assert_eq!(record.status, "paid");
    assert!(record.is_default);
    assert_eq!(record.status_transitions.paid_at, Some(NOW));
    let request = standin.requests().last().cloned().unwrap();
    assert_eq!(request.path, "/v1/invoice_payments");
    assert!(
        request.query.contains("payment%5Btype%5D=payment_intent")
            || request.query.contains("payment[type]=payment_intent")
    );
    let all = ListInvoicePayment::new().send(&client).await.unwrap();
    assert_eq!(all.data.len(), 2, "one payment per paid invoice");
}

/// The stand-in selling the test catalogue, its `api_calls` reported to the meter `metered_calls`.
async fn started_with_a_meter() -> (StandIn, Client) {
    let text = CATALOGUE.replacen("unit = \"call\"\n", "unit = \"call\"\nevent_name = \"metered_calls\"\n", 1);
    let standin = StandIn::from_catalogue(&tollgate::domain::plans::Catalogue::parse(&text).unwrap());
    standin.set_clock(NOW);
    let base = standin.spawn().await.expect("the stand-in serves");
    (standin, ClientBuilder::new("sk_test_standin").url(base).build().expect("a client"))
}

#[tokio::test]
async fn the_catalogues_meters_are_listed_and_an_event_is_cancelled_once_within_24_hours() {
    use stripe_billing::billing_meter::ListBillingMeter;
    use stripe_billing::billing_meter_event_adjustment::{
        CreateBillingMeterEventAdjustment, CreateBillingMeterEventAdjustmentCancel,
    };
    let (standin, client) = started_with_a_meter().await;
    let buyer = customer(&client, "acct_cancel").await;
    let cancel = |identifier: &str| {
        CreateBillingMeterEventAdjustment::new("metered_calls", stripe_billing::BillingMeterEventAdjustmentType::Cancel)
            .cancel(CreateBillingMeterEventAdjustmentCancel { identifier: Some(identifier.to_owned()) })
    };
    for (identifier, value) in [("e1", "10"), ("e2", "5")] {
        CreateBillingMeterEvent::new("metered_calls", usage(buyer.id.as_str(), value))
            .identifier(identifier)
            .send(&client)
            .await
            .unwrap();
    }

    let meters = ListBillingMeter::new().send(&client).await.unwrap();
    let meter = meters.data.iter().find(|m| m.event_name == "metered_calls").expect("the catalogue's meter");
    let cancelled = cancel("e1").send(&client).await.unwrap();
    let twice = stripe_error(cancel("e1").send(&client).await);
    let unknown = stripe_error(cancel("never").send(&client).await);
    let summary = |end: i64| ListIdBillingMeterEventSummary::new(meter.id.clone(), buyer.id.as_str(), end, NOW);
    let after_cancel = summary(NOW + 60).send(&client).await.unwrap();
    standin.set_clock(NOW + DAY + 1);
    let too_late = stripe_error(cancel("e2").send(&client).await);

    assert_eq!(meters.data.len(), 1);
    assert_eq!(cancelled.cancel.and_then(|c| c.identifier).as_deref(), Some("e1"));
    assert_eq!(after_cancel.data[0].aggregated_value, 5.0, "a cancelled event is not summed");
    assert_eq!((twice.1, unknown.1, too_late.1), (400, 400, 400));
    assert!(too_late.0.message.unwrap_or_default().contains("within 24 hours"));
}

#[tokio::test]
async fn a_lost_answer_was_carried_out_and_its_identifier_is_refused_again_as_stripe_does() {
    let (standin, client) = started_with_a_meter().await;
    let buyer = customer(&client, "acct_lost").await;
    let report = CreateBillingMeterEvent::new("metered_calls", usage(buyer.id.as_str(), "7")).identifier("lost-1");
    standin.lose_answers_to("/v1/billing/meter_events", 1);

    let lost = stripe_error(report.send(&client).await);
    let again = stripe_error(report.send(&client).await);

    assert_eq!(lost.1, 500);
    assert_eq!(again.1, 400);
    assert_eq!(again.0.message.as_deref(), Some("An event already exists with identifier lost-1."));
    let events = standin.requests().iter().filter(|r| r.path == "/v1/billing/meter_events").count();
    assert_eq!(events, 2, "the lost answer and the repeat");
}

#[tokio::test]
async fn an_event_is_retrieved_by_id_and_an_unknown_one_is_resource_missing() {
    let (standin, client) = started().await;
    let created = customer(&client, "acct_event").await;
    standin.create_subscription(created.id.as_str(), "pro_monthly", None).unwrap();
    let recorded = standin.events().into_iter().find(|e| e["type"] == "customer.subscription.created").unwrap();
    let id = recorded["id"].as_str().unwrap();

    let event = stripe_core::event::RetrieveEvent::new(id).send(&client).await.unwrap();
    let missing = stripe_core::event::RetrieveEvent::new("evt_nowhere").send(&client).await;

    assert_eq!((event.id.as_str(), event.type_.as_str()), (id, "customer.subscription.created"));
    assert_eq!(event.created, recorded["created"].as_i64().unwrap());
    match missing {
        Err(StripeError::Stripe(error, 404)) => {
            assert_eq!(error.code.map(|c| c.to_string()).as_deref(), Some("resource_missing"))
        }
        other => panic!("expected 404 resource_missing: {other:?}"),
    }
}
