//! The `webhook-intake` handler, called directly with the function URL event from `events/`
//! and an in-memory queue; signatures cross-checked against Stripe's official libraries.

use lambda_http::http::{HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, Response};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tollgate::edge::webhook::{DEV_WEBHOOK_SECRET, MAX_WEBHOOK_BODY_BYTES, WebhookRejection, WebhookSecrets, verify};
use tollgate::ports::queue::{EventQueue, QueueError, QueuedMessage};
use tollgate::testing::{FixedClock, signature_header};
use webhook_intake::{Deps, handle};

/// The `t=` of the sample event's signature.
const SIGNED_AT: i64 = 1_795_273_200;
const SAMPLE_EVENT_ID: &str = "evt_1SqT7kB7WZ01zgkWm3VbQe8R";
const SAMPLE_CUSTOMER: &str = "cus_QXg1o8vcGmoR32";

/// Records what it accepted; can be told to fail, or to hold each message until released.
#[derive(Default)]
struct MemoryQueue {
    messages: Mutex<Vec<QueuedMessage>>,
    failing: AtomicBool,
    gate: Option<Arc<Notify>>,
}

impl MemoryQueue {
    fn failing() -> Self {
        Self { failing: AtomicBool::new(true), ..Self::default() }
    }

    fn gated(gate: Arc<Notify>) -> Self {
        Self { gate: Some(gate), ..Self::default() }
    }

    fn messages(&self) -> Vec<QueuedMessage> {
        self.messages.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl EventQueue for MemoryQueue {
    async fn enqueue(&self, message: &QueuedMessage) -> Result<(), QueueError> {
        if let Some(gate) = &self.gate {
            gate.notified().await;
        }
        if self.failing.load(Ordering::SeqCst) {
            return Err(QueueError::Unavailable("connection refused".into()));
        }
        self.messages.lock().unwrap().push(message.clone());
        Ok(())
    }
}

fn deps_with(queue: MemoryQueue, secrets: &str, livemode: bool) -> Deps<MemoryQueue> {
    Deps {
        queue,
        secrets: WebhookSecrets::parse(secrets).unwrap(),
        livemode,
        clock: Arc::new(FixedClock::at(SIGNED_AT + 1)),
    }
}

fn deps(queue: MemoryQueue) -> Deps<MemoryQueue> {
    deps_with(queue, DEV_WEBHOOK_SECRET, false)
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sample_json() -> serde_json::Value {
    let raw = std::fs::read_to_string(root().join("events/function-url-stripe-webhook.json")).unwrap();
    serde_json::from_str(&raw).unwrap()
}

/// The sample function URL event, as delivered.
fn sample() -> Request {
    lambda_http::request::from_str(&sample_json().to_string()).unwrap()
}

/// The sample event's body, the exact bytes Stripe signed.
fn sample_payload() -> String {
    sample_json()["body"].as_str().unwrap().to_owned()
}

/// The sample request with another body and `Stripe-Signature` header (None: no header).
fn delivery(body: impl Into<Body>, signature: Option<&str>) -> Request {
    let mut req = sample().map(|_| body.into());
    req.headers_mut().remove("stripe-signature");
    if let Some(signature) = signature {
        req.headers_mut().insert("stripe-signature", HeaderValue::from_str(signature).unwrap());
    }
    req
}

fn signed(payload: &str) -> Request {
    delivery(payload.to_owned(), Some(&signature_header(payload, DEV_WEBHOOK_SECRET, SIGNED_AT)))
}

fn body(response: &Response<Body>) -> serde_json::Value {
    serde_json::from_slice(response.body().as_ref()).unwrap()
}

fn assert_refused(deps: &Deps<MemoryQueue>, response: &Response<Body>, status: StatusCode, code: &str) {
    assert_eq!(response.status(), status);
    assert_eq!(body(response)["error"]["code"], code);
    assert!(body(response)["error"]["message"].is_string());
    assert!(deps.queue.messages().is_empty(), "nothing may be enqueued on a {code}");
}

#[tokio::test]
async fn sample_event_is_verified_and_enqueued_once_in_its_customer_group() {
    let deps = deps(MemoryQueue::default());

    let response = handle(&deps, sample()).await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(&response), serde_json::json!({"received": true}));
    assert_eq!(
        deps.queue.messages(),
        [QueuedMessage { dedup_id: SAMPLE_EVENT_ID.into(), group: SAMPLE_CUSTOMER.into(), body: sample_payload() }]
    );
}

#[tokio::test]
async fn answer_waits_until_the_queue_has_accepted_the_event() {
    let gate = Arc::new(Notify::new());
    let deps = deps(MemoryQueue::gated(gate.clone()));
    let mut answer = std::pin::pin!(handle(&deps, sample()));

    let early = tokio::time::timeout(Duration::from_millis(100), &mut answer).await;
    gate.notify_one();
    let response = answer.await.unwrap();

    assert!(early.is_err(), "the handler answered before the queue accepted the message");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(deps.queue.messages().len(), 1);
}

#[tokio::test]
async fn delivery_without_a_signature_is_400_missing_signature() {
    let deps = deps(MemoryQueue::default());

    let response = handle(&deps, delivery(sample_payload(), None)).await.unwrap();

    assert_refused(&deps, &response, StatusCode::BAD_REQUEST, "missing_signature");
}

#[tokio::test]
async fn signature_header_without_t_or_v1_is_400_malformed_signature() {
    let deps = deps(MemoryQueue::default());
    let header = signature_header(&sample_payload(), DEV_WEBHOOK_SECRET, SIGNED_AT);
    let (t, v1) = header.split_once(',').unwrap();

    for bad in [v1, t, "v1", "t=yesterday,v1=abc"] {
        let response = handle(&deps, delivery(sample_payload(), Some(bad))).await.unwrap();

        assert_refused(&deps, &response, StatusCode::BAD_REQUEST, "malformed_signature");
    }
}

#[tokio::test]
async fn tampered_body_is_400_bad_signature() {
    let deps = deps(MemoryQueue::default());
    let header = signature_header(&sample_payload(), DEV_WEBHOOK_SECRET, SIGNED_AT);
    let tampered = sample_payload().replace(SAMPLE_CUSTOMER, "cus_attacker0000001");

    let response = handle(&deps, delivery(tampered, Some(&header))).await.unwrap();

    assert_refused(&deps, &response, StatusCode::BAD_REQUEST, "bad_signature");
}

#[tokio::test]
async fn event_signed_with_an_unknown_secret_is_400_bad_signature() {
    let deps = deps(MemoryQueue::default());
    let header = signature_header(&sample_payload(), "whsec_not_ours", SIGNED_AT);

    let response = handle(&deps, delivery(sample_payload(), Some(&header))).await.unwrap();

    assert_refused(&deps, &response, StatusCode::BAD_REQUEST, "bad_signature");
}

#[tokio::test]
async fn stale_signature_is_rejected_with_400() {
    let deps = deps(MemoryQueue::default());
    let clock = FixedClock::at(SIGNED_AT);
    let deps = Deps { clock: Arc::new(clock.clone()), ..deps };

    clock.set(SIGNED_AT + 301);
    let late = handle(&deps, sample()).await.unwrap();
    clock.set(SIGNED_AT - 301);
    let early = handle(&deps, sample()).await.unwrap();

    assert_refused(&deps, &late, StatusCode::BAD_REQUEST, "stale_timestamp");
    assert_refused(&deps, &early, StatusCode::BAD_REQUEST, "stale_timestamp");
}

#[tokio::test]
async fn body_that_is_not_utf8_is_400_body_not_utf8() {
    let deps = deps(MemoryQueue::default());
    let header = signature_header(&sample_payload(), DEV_WEBHOOK_SECRET, SIGNED_AT);
    let mut bytes = sample_payload().into_bytes();
    bytes[10] = 0xff;

    let response = handle(&deps, delivery(Body::Binary(bytes), Some(&header))).await.unwrap();

    assert_refused(&deps, &response, StatusCode::BAD_REQUEST, "body_not_utf8");
}

#[tokio::test]
async fn signed_body_that_is_not_a_stripe_event_is_400_malformed_json() {
    let deps = deps(MemoryQueue::default());
    let mut no_object: serde_json::Value = serde_json::from_str(&sample_payload()).unwrap();
    no_object["data"].as_object_mut().unwrap().remove("object");
    let mut no_id: serde_json::Value = serde_json::from_str(&sample_payload()).unwrap();
    no_id.as_object_mut().unwrap().remove("id");

    for payload in
        ["{\"id\": \"evt_1\",".to_owned(), "\"just a string\"".to_owned(), no_object.to_string(), no_id.to_string()]
    {
        let response = handle(&deps, signed(&payload)).await.unwrap();

        assert_refused(&deps, &response, StatusCode::BAD_REQUEST, "malformed_json");
    }
}

#[tokio::test]
async fn test_mode_event_at_a_live_endpoint_is_400_wrong_livemode() {
    let deps = deps_with(MemoryQueue::default(), DEV_WEBHOOK_SECRET, true);

    let response = handle(&deps, sample()).await.unwrap();

    assert_refused(&deps, &response, StatusCode::BAD_REQUEST, "wrong_livemode");
}

#[tokio::test]
async fn body_over_512_kib_is_413_body_too_large() {
    let deps = deps(MemoryQueue::default());
    let payload = format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_WEBHOOK_BODY_BYTES));

    let response = handle(&deps, signed(&payload)).await.unwrap();

    assert_eq!(MAX_WEBHOOK_BODY_BYTES, 512 * 1024);
    assert_refused(&deps, &response, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
}

#[tokio::test]
async fn methods_other_than_post_are_405_with_allow_post() {
    let deps = deps(MemoryQueue::default());

    for method in [Method::GET, Method::PUT, Method::DELETE, Method::PATCH, Method::HEAD, Method::OPTIONS] {
        let mut req = sample();
        *req.method_mut() = method.clone();

        let response = handle(&deps, req).await.unwrap();

        assert_refused(&deps, &response, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
        assert_eq!(response.headers().get("allow").and_then(|v| v.to_str().ok()), Some("POST"), "{method}");
    }
}

#[tokio::test]
async fn unknown_event_type_is_acknowledged_as_ignored_and_not_enqueued() {
    let deps = deps(MemoryQueue::default());
    let payload =
        sample_payload().replace("\"type\":\"customer.subscription.updated\"", "\"type\":\"customer.created\"");

    let response = handle(&deps, signed(&payload)).await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(&response), serde_json::json!({"received": true, "ignored": true}));
    assert!(deps.queue.messages().is_empty());
}

#[tokio::test]
async fn queue_failure_is_503_so_that_stripe_retries() {
    let deps = deps(MemoryQueue::failing());

    let response = handle(&deps, sample()).await.unwrap();

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = body(&response);
    assert_eq!(body["error"]["code"], "queue_unavailable");
    assert!(!body.to_string().contains("connection refused"));
}

#[tokio::test]
async fn event_signed_with_the_second_of_two_secrets_verifies() {
    let deps = deps_with(MemoryQueue::default(), "whsec_rolled_out_old, whsec_rolled_in_new", false);
    let payload = sample_payload();
    let header = signature_header(&payload, "whsec_rolled_in_new", SIGNED_AT);

    let response = handle(&deps, delivery(payload, Some(&header))).await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(deps.queue.messages().len(), 1);
}

#[tokio::test]
async fn header_with_two_v1_values_verifies_when_one_matches() {
    let deps = deps(MemoryQueue::default());
    let payload = sample_payload();
    let other = signature_header(&payload, "whsec_someone_else", SIGNED_AT);
    let ours = signature_header(&payload, DEV_WEBHOOK_SECRET, SIGNED_AT);
    let v1 = |header: &str| header.split_once(",v1=").unwrap().1.to_owned();
    let header = format!("t={SIGNED_AT},v1={},v1={}", v1(&other), v1(&ours));

    let response = handle(&deps, delivery(payload, Some(&header))).await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(deps.queue.messages().len(), 1);
}

/// Each vector verifies at its timestamp, and is refused 301 s later and under another secret.
fn check_vectors(file: &Path) {
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let vectors = doc["vectors"].as_array().unwrap();
    assert!(!vectors.is_empty(), "{} holds no vectors", file.display());
    let wrong = WebhookSecrets::parse("whsec_not_the_signing_secret").unwrap();
    for vector in vectors {
        let library = vector["library"].as_str().unwrap();
        let payload_file = vector["payload_file"].as_str().unwrap();
        let secrets = WebhookSecrets::parse(vector["secret"].as_str().unwrap()).unwrap();
        let timestamp = vector["timestamp"].as_i64().unwrap();
        let header = vector["header"].as_str().unwrap();
        let payload = std::fs::read(root().join(payload_file)).unwrap();
        let case = format!("{library} {payload_file} {}", vector["secret"]);

        let accepted = verify(&payload, Some(header), &secrets, false, timestamp);
        let late = verify(&payload, Some(header), &secrets, false, timestamp + 301);
        let foreign = verify(&payload, Some(header), &wrong, false, timestamp);

        assert_eq!(accepted.map(|e| e.payload.into_bytes()), Ok(payload), "{case}");
        assert_eq!(late.unwrap_err(), WebhookRejection::StaleTimestamp, "{case}");
        assert_eq!(foreign.unwrap_err(), WebhookRejection::BadSignature, "{case}");
    }
    for library in ["stripe-python", "stripe-node"] {
        assert!(vectors.iter().any(|v| v["library"].as_str().unwrap().starts_with(library)), "no {library} vector");
    }
}

#[test]
fn official_library_vectors_verify_at_their_timestamp_only() {
    check_vectors(&root().join("events/signature-vectors.json"));
}

/// Hostile input, generated: random and extreme signature headers and bodies, and signed events
/// whose numbers and ids are extreme. The intake never panics and answers 2xx or 4xx; whatever
/// it accepts, the worker's parser reads and the worker's path applies without panicking.
mod hostile {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};
    use tollgate::app::events::{EventDeps, Snapshots, apply};
    use tollgate::domain::events::{Incoming, KINDS};
    use tollgate::testing::{FakeBilling, MemoryStore, Outbox, settings};

    fn extreme_number() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(json!(i64::MIN)),
            Just(json!(i64::MAX)),
            Just(json!(u64::MAX)),
            Just(json!(-1)),
            Just(json!(0)),
            Just(json!(1e308)),
            Just(json!(-0.5)),
            Just(json!("12")),
            Just(Value::Null),
            any::<i64>().prop_map(|n| json!(n)),
        ]
    }

    fn id_like() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(json!("cus_1")),
            Just(json!("")),
            Just(json!("cus_\u{0}\n#")),
            Just(json!("c".repeat(300))),
            Just(json!({"id": "cus_2"})),
            Just(json!(42)),
            "[ -~]{0,40}".prop_map(|s| json!(s)),
        ]
    }

    /// A Stripe-like event with extreme values where Tollgate reads numbers and ids.
    fn event() -> impl Strategy<Value = Value> {
        let kind = prop_oneof![
            (0..KINDS.len()).prop_map(|i| KINDS[i].event_type.to_owned()),
            "[a-z._]{0,30}".prop_map(|s| s),
        ];
        (
            kind,
            prop_oneof![3 => Just(json!("evt_h1")), 1 => id_like()],
            prop_oneof![1 => Just(json!(SIGNED_AT)), 2 => extreme_number()],
            prop_oneof![4 => Just(json!(false)), 1 => Just(json!(true)), 1 => Just(json!("false")), 1 => Just(Value::Null)],
            (id_like(), id_like(), extreme_number(), extreme_number(), extreme_number(), extreme_number()),
        )
            .prop_map(|(kind, id, created, livemode, (object_id, customer, amount, end, attempts, trial))| {
                json!({
                    "id": id, "object": "event", "type": kind, "created": created, "livemode": livemode,
                    "data": {"object": {
                        "id": object_id, "customer": customer, "charge": "ch_1", "payment_intent": "pi_1",
                        "amount": amount, "amount_refunded": amount, "refunded": true, "status": "lost",
                        "current_period_end": end, "attempt_count": attempts, "trial_end": trial,
                        "metadata": {"tollgate_account_id": "acct_hostile"},
                        "refunds": {"data": [{"id": customer}]},
                        "entitlements": {"data": [{"lookup_key": object_id}]}
                    }}
                })
            })
    }

    fn header(payload: String) -> impl Strategy<Value = Option<String>> {
        let signed = move |t: i64| signature_header(&payload, DEV_WEBHOOK_SECRET, t);
        prop_oneof![
            1 => Just(None),
            1 => "[ -~]{0,80}".prop_map(Some),
            6 => Just(Some(signed(SIGNED_AT))),
            2 => prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(0), Just(-1), any::<i64>()].prop_map(move |t| Some(signed(t))),
            1 => "[0-9-]{1,25}".prop_map(|t| Some(format!("t={t},v1=00"))),
        ]
    }

    fn delivery_case() -> impl Strategy<Value = (String, Option<String>)> {
        let body = prop_oneof![
            3 => event().prop_map(|e| e.to_string()),
            1 => "\\PC{0,200}".prop_map(|s| s),
            1 => Just("{\"id\": \"evt_1\", \"id\": \"evt_2\", \"type\": \"invoice.paid\", \"created\": 1, \"livemode\": false, \"data\": {\"object\": {}}}".to_owned()),
        ];
        body.prop_flat_map(|body| (Just(body.clone()), header(body)))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn the_intake_answers_every_delivery_and_the_worker_processes_what_it_accepts(
            (body, signature) in delivery_case()
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
            runtime.block_on(async {
                let deps = deps(MemoryQueue::default());
                let mut req = delivery(body.clone(), None);
                if let Some(value) = signature.as_deref().and_then(|s| HeaderValue::from_str(s).ok()) {
                    req.headers_mut().insert("stripe-signature", value);
                }

                let response = handle(&deps, req).await.unwrap();

                let status = response.status();
                assert!(status.is_success() || status.is_client_error(), "{status} for {body}");
                for message in deps.queue.messages() {
                    let parsed = Incoming::parse(&message.body);
                    assert!(parsed.is_ok(), "accepted but unreadable by the worker: {parsed:?} {}", message.body);
                    let clock = FixedClock::at(SIGNED_AT + 1);
                    let worker = EventDeps {
                        store: MemoryStore::new(),
                        billing: FakeBilling::new(),
                        notifier: Outbox::default(),
                        settings: settings(&clock),
                    };
                    let applied = apply(&worker, &message.body, &mut Snapshots::new()).await;
                    assert!(applied.as_ref().is_ok(), "the worker failed on what the intake accepted: {applied:?} {}", message.body);
                }
            });
        }
    }
}
