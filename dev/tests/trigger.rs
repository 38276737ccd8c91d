//! `tollgate-dev trigger`'s client side against a stand-in stack: the Stripe stand-in nested
//! under `/stripe` and a fake intake at `POST /webhooks/stripe` that records what it receives.
//! Deliveries must be the recorded events byte for byte, signed so that async-stripe's own
//! verification accepts them; every failure must say why.

use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;
use stripe_webhook::Webhook;
use tollgate::edge::webhook::DEV_WEBHOOK_SECRET;
use tollgate_dev::trigger::{Delivery, signing_secret, trigger};
use tollgate_standin::{StandIn, TriggerSpec};

const SECRET: &str = "whsec_trigger_test_secret";
const ACCOUNT: &str = "acct_trigger_client";

/// One request the fake intake received.
#[derive(Debug, Clone)]
struct Received {
    body: Bytes,
    signature: Option<String>,
    content_type: Option<String>,
}

#[derive(Clone)]
struct Intake {
    answer: StatusCode,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Intake {
    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

async fn receive(State(intake): State<Intake>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let received = Received { body, signature: header("stripe-signature"), content_type: header("content-type") };
    intake.received.lock().unwrap_or_else(PoisonError::into_inner).push(received);
    intake.answer
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(async move { axum::serve(listener, router).await.expect("the stack serves") });
    format!("http://{address}")
}

/// A stack whose intake answers `answer`; returns its base URL.
async fn stack(answer: StatusCode) -> (String, StandIn, Intake) {
    let standin = StandIn::new();
    let intake = Intake { answer, received: Arc::default() };
    let router = Router::new()
        .route("/webhooks/stripe", post(receive))
        .with_state(intake.clone())
        .nest("/stripe", standin.router());
    (serve(router).await, standin, intake)
}

fn types(deliveries: &[Delivery]) -> Vec<&str> {
    deliveries.iter().map(|d| d.event_type.as_str()).collect()
}

#[tokio::test]
async fn every_event_is_delivered_byte_for_byte_and_signed_with_the_secret() {
    let (base, standin, intake) = stack(StatusCode::OK).await;
    let spec = TriggerSpec::new("checkout.session.completed", ACCOUNT);

    let deliveries = trigger(&base, SECRET, &spec, false).await.expect("the trigger succeeds");

    assert_eq!(
        types(&deliveries),
        vec!["customer.created", "customer.subscription.created", "checkout.session.completed"]
    );
    assert!(deliveries.iter().all(|d| d.status == Some(200)));
    let recorded = standin.events();
    let received = intake.received();
    assert_eq!(received.len(), recorded.len());
    for ((delivery, event), request) in deliveries.iter().zip(&recorded).zip(&received) {
        assert_eq!(request.body, event.to_string().into_bytes(), "the body is the recorded event, byte for byte");
        assert_eq!(delivery.event_id, event["id"].as_str().unwrap());
        let body = std::str::from_utf8(&request.body).unwrap();
        let signature = request.signature.as_deref().expect("a Stripe-Signature header");
        assert!(signature.starts_with("t=") && signature.contains(",v1="), "{signature}");
        let verified = Webhook::construct_event(body, signature, SECRET).expect("async-stripe verifies the signature");
        assert_eq!(verified.id.as_str(), delivery.event_id);
        assert!(Webhook::construct_event(body, signature, "whsec_another_secret").is_err());
        assert_eq!(request.content_type.as_deref(), Some("application/json; charset=utf-8"));
    }
    assert!(deliveries[0].line().contains("customer.created"));
    assert!(deliveries[0].line().ends_with("HTTP 200"));
}

#[tokio::test]
async fn a_pack_purchase_and_its_refund_are_delivered_signed() {
    let (base, standin, intake) = stack(StatusCode::OK).await;
    let buy = TriggerSpec::new("checkout.session.completed", ACCOUNT).pack("credits_1000");
    let refund = TriggerSpec::new("charge.refunded", ACCOUNT).pack("credits_1000");

    let bought = trigger(&base, SECRET, &buy, false).await.expect("the purchase is triggered");
    let refunded = trigger(&base, SECRET, &refund, false).await.expect("the refund is triggered");

    assert_eq!(types(&bought), vec!["customer.created", "checkout.session.completed"]);
    assert_eq!(types(&refunded), vec!["charge.refunded"]);
    let received = intake.received();
    assert_eq!(received.len(), 3);
    let events: Vec<Value> = received
        .iter()
        .map(|request| {
            let body = std::str::from_utf8(&request.body).unwrap();
            Webhook::construct_event(body, request.signature.as_deref().unwrap(), SECRET).expect("signed");
            serde_json::from_str(body).unwrap()
        })
        .collect();
    let session = &events[1]["data"]["object"];
    assert_eq!(session["mode"], "payment");
    assert_eq!(session["payment_status"], "paid");
    assert_eq!(session["metadata"]["tollgate_pack"], "credits_1000");
    assert_eq!(session["metadata"]["tollgate_account_id"], ACCOUNT);
    let charge = &events[2]["data"]["object"];
    assert_eq!(charge["payment_intent"], session["payment_intent"]);
    assert_eq!(charge["customer"], session["customer"]);
    assert_eq!(charge["refunded"], true);
    assert_eq!(standin.events().len(), 3);
}

#[tokio::test]
async fn an_unknown_pack_is_refused_with_the_known_ones_and_nothing_is_sent() {
    let (base, standin, intake) = stack(StatusCode::OK).await;
    let spec = TriggerSpec::new("checkout.session.completed", ACCOUNT).pack("credits_7");

    let error = trigger(&base, SECRET, &spec, false).await.unwrap_err();

    let message = error.to_string();
    assert!(message.contains("the Stripe stand-in refused to trigger checkout.session.completed"), "{message}");
    assert!(message.contains("Unknown credit pack 'credits_7'"), "{message}");
    assert!(message.contains("credits_1000"), "{message}");
    assert!(intake.received().is_empty());
    assert!(standin.events().is_empty());
}

#[tokio::test]
async fn skip_delivery_records_the_events_without_sending_them() {
    let (base, _standin, intake) = stack(StatusCode::OK).await;
    let spec = TriggerSpec::new("invoice.payment_failed", ACCOUNT);

    let deliveries = trigger(&base, SECRET, &spec, true).await.expect("the trigger succeeds");

    assert!(intake.received().is_empty(), "nothing is delivered");
    assert!(deliveries.iter().all(|d| d.status.is_none()));
    assert!(types(&deliveries).contains(&"invoice.payment_failed"));
    let listed: Value = reqwest::get(format!("{base}/stripe/v1/events?limit=100")).await.unwrap().json().await.unwrap();
    let mut listed_ids: Vec<&str> =
        listed["data"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
    listed_ids.reverse();
    let delivered_ids: Vec<&str> = deliveries.iter().map(|d| d.event_id.as_str()).collect();
    assert_eq!(listed_ids, delivered_ids, "GET /v1/events lists the missed events, newest first");
}

#[tokio::test]
async fn an_intake_answering_500_makes_the_trigger_fail_after_trying_every_event() {
    let (base, standin, intake) = stack(StatusCode::INTERNAL_SERVER_ERROR).await;
    let spec = TriggerSpec::new("checkout.session.completed", ACCOUNT);

    let error = trigger(&base, SECRET, &spec, false).await.expect_err("a 500 is a failed delivery");

    let message = format!("{error:#}");
    assert!(message.contains("3 of 3 events were not accepted"), "{message}");
    assert!(message.contains("checkout.session.completed"), "{message}");
    assert!(message.contains("HTTP 500"), "{message}");
    assert_eq!(intake.received().len(), 3);
    assert_eq!(standin.events().len(), 3, "the events stay recorded, as missed deliveries");
}

#[tokio::test]
async fn a_closed_port_says_the_local_stack_is_not_running_and_how_to_start_it() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);

    let error = trigger(&base, SECRET, &TriggerSpec::new("invoice.paid", ACCOUNT), false).await.unwrap_err();

    let message = error.to_string();
    assert!(message.contains(&format!("the local stack is not running at {base}")), "{message}");
    assert!(message.contains("make dev"), "{message}");
}

#[tokio::test]
async fn a_refusal_by_the_stand_in_is_reported_with_its_reason_and_nothing_is_sent() {
    let (base, standin, intake) = stack(StatusCode::OK).await;

    let error = trigger(&base, SECRET, &TriggerSpec::new("customer.deleted", "acct_unknown"), false).await.unwrap_err();

    let message = error.to_string();
    assert!(message.contains("the Stripe stand-in refused to trigger customer.deleted"), "{message}");
    assert!(message.contains("HTTP 404"), "{message}");
    assert!(message.contains("nothing to delete"), "{message}");
    assert!(intake.received().is_empty());
    assert!(standin.events().is_empty());
}

#[tokio::test]
async fn a_stack_without_the_stand_in_is_explained() {
    let base = serve(Router::new().route("/webhooks/stripe", post(|| async { StatusCode::OK }))).await;

    let error = trigger(&base, SECRET, &TriggerSpec::new("invoice.paid", ACCOUNT), false).await.unwrap_err();

    let message = error.to_string();
    assert!(message.contains("serves no Stripe stand-in"), "{message}");
    assert!(message.contains("STRIPE_SECRET_KEY"), "{message}");
}

#[test]
fn the_signing_secret_is_the_first_configured_one_else_the_development_secret() {
    assert_eq!(signing_secret(Some("whsec_new, whsec_old")), "whsec_new");
    assert_eq!(signing_secret(Some(" , whsec_only")), "whsec_only");
    assert_eq!(signing_secret(Some("")), DEV_WEBHOOK_SECRET);
    assert_eq!(signing_secret(None), DEV_WEBHOOK_SECRET);
    assert_eq!(DEV_WEBHOOK_SECRET, "whsec_tollgate_local_development");
}
