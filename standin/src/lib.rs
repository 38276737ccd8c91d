//! `tollgate-standin`: Tollgate's local Stripe stand-in, an in-process fake of exactly the parts
//! of Stripe's HTTP API that Tollgate calls (`shared/src/billing/stripe.rs`: customers create,
//! Checkout and billing portal sessions create, subscriptions list/update/cancel, prices by
//! lookup key, charges retrieve, events list), answering with objects built from Stripe's
//! official fixtures and keeping real state. Its prices and products are a plan catalogue's
//! ([`StandIn::new`]: `plans.toml`; [`StandIn::from_catalogue`]: any other): a recurring price
//! per plan price and a one-time price per credit pack.
//!
//! It serves the local stack (`tollgate-dev up` nests [`StandIn::router`] under `/stripe`) and
//! tests that assert the exact requests Stripe would receive ([`StandIn::requests`]);
//! [`test_billing`] points Tollgate's `StripeBilling` at it. [`StandIn::trigger`] (and its
//! route [`TRIGGER_PATH`], which `tollgate-dev trigger` calls) makes the changes Stripe makes on
//! its own (invoices, payments, disputes, refunds, trials ending) and records the events they
//! cause; [`StandIn::object`] reads any object it holds. It also serves what Tollgate's next
//! features call: invoice payments by payment intent and Billing Meter events with their
//! summaries (meters from [`StandIn::create_meter`]). Checkout sells plans in `subscription`
//! mode and credit packs in `payment` mode.
//! Behaviour follows Stripe's: form-encoded bracket parameters, unknown parameters rejected
//! (any Tollgate does not send counts as unknown), lists newest first with cursor pagination,
//! replayed answers for a repeated `Idempotency-Key`, and Stripe's error shape. Injected faults
//! ([`StandIn::fail_next`]) act before idempotency, like a rejection at Stripe's edge: they are
//! never saved as a key's first answer, so a retry with the same key reaches the API.

mod allowed;
mod billing;
mod calendar;
mod clockwork;
mod dunning;
mod error;
mod list;
mod objects;
mod pages;
mod params;
mod routes;
mod state;
mod trigger;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::Value;
use tollgate::domain::plans::Catalogue;

pub use self::dunning::{AfterRetries, Dunning};
use self::error::ApiError;
use self::params::Params;
use self::state::{Saved, State, SubscriptionRequest};
pub use self::trigger::{DEFAULT_INTERVAL, DEFAULT_PLAN, PACK_METADATA_KEY, TRIGGER_EVENTS, TriggerSpec};

/// The stand-in's control route (under the router's prefix): `POST` a [`TriggerSpec`] as JSON,
/// get `{"events": [...]}`, the events recorded, oldest first.
pub const TRIGGER_PATH: &str = "/_tollgate/trigger";

/// The control route that pays an open Checkout Session as its customer would
/// (`POST /_tollgate/checkout_sessions/{id}/complete`), answering `{"events": [...]}` as the
/// trigger route does; `tollgate-dev pay` calls it and delivers the events.
pub const PAY_PATH: &str = "/_tollgate/checkout_sessions/{id}/complete";

/// The control route that makes an account's card decline or pay from now on
/// (`POST /_tollgate/customers/{account}/card` with `{"behaviour": "decline" | "pay"}`), for
/// the renewals and retries the clock plays; `tollgate-dev card` calls it.
pub const CARD_PATH: &str = "/_tollgate/customers/{account}/card";

/// What an account's card does when the stand-in's machinery charges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CardBehaviour {
    /// Every payment succeeds (the default).
    Pay,
    /// Every payment is declined.
    Decline,
}

/// One request the stand-in received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// Path from `/v1` on, e.g. `/v1/customers`.
    pub path: String,
    /// Raw query string, empty when there is none.
    pub query: String,
    /// The form body's pairs, decoded, in the order sent.
    pub form: Vec<(String, String)>,
    pub idempotency_key: Option<String>,
    pub stripe_version: Option<String>,
}

impl RecordedRequest {
    /// The value of form field `key` (e.g. `line_items[0][price]`), the last when repeated.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.form.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Why a state manipulation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StandInError {
    /// No object has that id (or lookup key).
    NotFound(String),
    /// The object exists but cannot make that change.
    Invalid(String),
}

impl fmt::Display for StandInError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound(message) => write!(f, "not found: {message}"),
            Self::Invalid(message) => write!(f, "invalid: {message}"),
        }
    }
}

impl std::error::Error for StandInError {}

impl From<ApiError> for StandInError {
    fn from(error: ApiError) -> Self {
        if error.status == 404 { Self::NotFound(error.message) } else { Self::Invalid(error.message) }
    }
}

/// Where the events a hosted page's action records go (the local stack: signed to its
/// webhook intake); awaited before the page moves on.
pub type Delivery = Arc<dyn Fn(Vec<Value>) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Shared, cloneable handle to the stand-in's state.
#[derive(Clone)]
pub struct StandIn {
    state: Arc<Mutex<State>>,
    delivery: Arc<Mutex<Option<Delivery>>>,
}

impl Default for StandIn {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for StandIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StandIn").finish_non_exhaustive()
    }
}

impl StandIn {
    /// A stand-in selling the built-in plan catalogue (`plans.toml`) and holding nothing else.
    ///
    /// # Panics
    /// When the built-in catalogue does not validate (`cargo test -p tollgate` catches that first).
    pub fn new() -> Self {
        Self::from_catalogue(Catalogue::builtin().expect("the built-in plans.toml is valid"))
    }

    /// A stand-in selling `catalogue`'s prices: one recurring Stripe price per catalogue price
    /// (id `price_<lookup_key>`), one product per tier (id `prod_<tier>`, named as the tier),
    /// one one-time price per credit pack (id `price_<lookup_key>`) and its product (id
    /// `prod_pack_<pack id>`, named `<credits> credits`), and the tiers' trial days and
    /// features for [`StandIn::trigger`].
    pub fn from_catalogue(catalogue: &Catalogue) -> Self {
        Self { state: Arc::new(Mutex::new(State::new(catalogue))), delivery: Arc::new(Mutex::new(None)) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Serves the hosted pages (Checkout, the portal, invoices) under `base`, e.g.
    /// `http://127.0.0.1:3000/stripe`: the `url`s the API answers from now on start with it.
    pub fn set_public_base(&self, base: &str) {
        self.lock().public_base = base.trim_end_matches('/').to_owned();
    }

    /// Where the events of a hosted page's action go (the local stack's intake); without one
    /// they are only recorded (`GET /v1/events` lists them, a sync replays them).
    pub fn set_delivery(&self, delivery: Delivery) {
        *self.delivery.lock().unwrap_or_else(PoisonError::into_inner) = Some(delivery);
    }

    async fn deliver(&self, events: Vec<Value>) {
        let delivery = self.delivery.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if let Some(delivery) = delivery
            && !events.is_empty()
        {
            delivery(events).await;
        }
    }

    /// An axum router serving `/v1/...` and the control route [`TRIGGER_PATH`]; the caller
    /// nests it (e.g. `.nest("/stripe", standin.router())`).
    pub fn router(&self) -> Router {
        Router::new()
            .route(TRIGGER_PATH, post(handle_trigger))
            .route(PAY_PATH, post(handle_pay))
            .route(CARD_PATH, post(handle_card))
            .route("/checkout/{id}", get(pages::show_checkout).post(pages::submit_checkout))
            .route("/checkout/{id}/authenticate", post(pages::authenticate))
            .route("/billing_portal/{id}", get(pages::show_portal).post(pages::act_in_portal))
            .route("/invoices/{id}", get(pages::show_invoice))
            .route("/invoices/{id}/pdf", get(pages::invoice_pdf))
            .route("/v1", any(handle))
            .route("/v1/{*rest}", any(handle))
            .fallback(handle)
            .with_state(self.clone())
    }

    /// Serves the router on `127.0.0.1:0` in a background task and returns the base URL to
    /// give async-stripe, e.g. `http://127.0.0.1:PORT/`.
    pub async fn spawn(&self) -> std::io::Result<String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let router = self.router();
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::error!(%error, "Stripe stand-in stopped serving");
            }
        });
        Ok(format!("http://{address}/"))
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Makes the next `n` requests fail with `status` and a Stripe error body (429:
    /// `rate_limit`; 5xx: `api_error`).
    pub fn fail_next(&self, n: usize, status: u16) {
        self.lock().faults.extend(std::iter::repeat_n(status, n));
    }

    /// Makes the next `n` requests whose path ends with `suffix` (e.g. `/expire`) fail with
    /// `status`, as [`StandIn::fail_next`] does for any request.
    pub fn fail_path(&self, suffix: &str, n: usize, status: u16) {
        self.lock().path_faults.push((suffix.to_owned(), n, status));
    }

    /// Carries out the next `n` requests to `path` (e.g. `/v1/billing/meter_events`; replays
    /// of an idempotent one included), then answers each 500 as if the connection died after
    /// Stripe acted.
    pub fn lose_answers_to(&self, path: &str, n: usize) {
        self.lock().lost_answers = (path.to_owned(), n);
    }

    /// Makes every API request wait `latency` before it is answered (a slow Stripe);
    /// `Duration::ZERO` (the default) answers at once.
    pub fn set_latency(&self, latency: std::time::Duration) {
        self.lock().latency = latency;
    }

    /// The stand-in's "now" for `created`, period and trial timestamps (default: system time).
    pub fn set_clock(&self, unix_seconds: i64) {
        self.lock().set_clock(unix_seconds);
    }

    /// Makes the stand-in read its time from `clock` (the local stack's, so that objects and
    /// events are made at the stack's time).
    pub fn follow(&self, clock: Arc<dyn tollgate::ports::clock::Clock>) {
        self.lock().follow(clock);
    }

    /// The earliest moment at which Stripe's machinery has something to do (a trial's notice
    /// or end, a renewal, a payment attempt, a cancellation at a period's end, a Checkout
    /// Session's expiry), if anything is scheduled; it may already have passed.
    pub fn next_due(&self) -> Option<i64> {
        self.lock().next_due()
    }

    /// Performs, oldest first, everything due at or before the stand-in's time, as Stripe's
    /// test clocks do when they advance; returns the events recorded on the way, oldest first.
    /// The local stack moves its clock to each [`StandIn::next_due`] in turn and plays it.
    pub fn play_due(&self) -> Vec<Value> {
        self.lock().play_due()
    }

    /// Makes `account`'s customers' cards decline, or pay, every payment the stand-in's
    /// machinery attempts from now on (renewals and retries; triggers decide their own outcome).
    pub fn set_card(&self, account: &str, behaviour: CardBehaviour) {
        let mut state = self.lock();
        match behaviour {
            CardBehaviour::Decline => state.declining.insert(account.to_owned()),
            CardBehaviour::Pay => state.declining.remove(account),
        };
    }

    /// Sets the retry schedule of failed subscription payments (default: [`Dunning::default`]).
    pub fn set_dunning(&self, dunning: Dunning) {
        self.lock().dunning = dunning;
    }

    /// The object with id `id`, whatever its kind (customer, Checkout Session, subscription,
    /// invoice, charge, payment intent, dispute, price, product, event), as the API would
    /// render it; for tests and for inspecting what a trigger made, since the API serves only
    /// what Tollgate calls.
    pub fn object(&self, id: &str) -> Option<Value> {
        self.lock().object(id)
    }

    /// Creates an active Billing Meter summing the `value` of the meter events named
    /// `event_name` per customer (`stripe_customer_id`), as a dashboard or setup script does
    /// before Tollgate reports usage; returns it (its `id` lists the event summaries).
    pub fn create_meter(&self, event_name: &str) -> Value {
        self.lock().create_meter(event_name)
    }

    /// Every event recorded, oldest first (`GET /v1/events` lists them newest first).
    pub fn events(&self) -> Vec<Value> {
        self.lock().events.iter().map(|e| e.value.clone()).collect()
    }

    /// Completes an open Checkout session as if the customer paid: creates the customer if
    /// the session had none (recording `customer.created`). In subscription mode it creates the
    /// subscription (trialing when the session set a trial, else active) and records
    /// `customer.subscription.created`; in payment mode the customer pays `amount_total` by
    /// card: a succeeded payment intent (`pi_...`, the session's `payment_intent`) whose
    /// `latest_charge` is a succeeded charge (`ch_...`). Then records
    /// `checkout.session.completed`; returns the completed session.
    pub fn complete_checkout_session(&self, session_id: &str) -> Result<Value, StandInError> {
        Ok(self.lock().complete_checkout_session(session_id)?)
    }

    /// Subscribes `customer` to the price with `price_lookup_key` (trialing for `trial_days`
    /// when given) and records `customer.subscription.created`.
    pub fn create_subscription(
        &self,
        customer: &str,
        price_lookup_key: &str,
        trial_days: Option<u32>,
    ) -> Result<Value, StandInError> {
        let mut state = self.lock();
        if state.live_customer(customer).is_none() {
            return Err(StandInError::NotFound(format!("No such customer: '{customer}'")));
        }
        let price = state
            .price_by_lookup_key(price_lookup_key)
            .cloned()
            .ok_or_else(|| StandInError::NotFound(format!("No price with lookup key '{price_lookup_key}'")))?;
        let now = state.now();
        let request = SubscriptionRequest {
            items: vec![(price, 1)],
            trial_end: trial_days.map(|days| now + i64::from(days) * 86_400),
            metadata: serde_json::json!({}),
        };
        Ok(state.create_subscription(customer, request))
    }

    /// Sells a monthly price the catalogue does not have (of a product Tollgate never made, as
    /// an account adopted later may), with `lookup_key`; returns it. [`StandIn::create_subscription`]
    /// subscribes a customer to it.
    pub fn add_foreign_price(&self, lookup_key: &str, amount: u64) -> Value {
        let mut state = self.lock();
        let spec = tollgate::domain::plans::Price {
            lookup_key: lookup_key.to_owned(),
            tier: format!("foreign_{lookup_key}"),
            interval: tollgate::domain::model::Interval::Month,
            amount,
            currency: "usd".to_owned(),
        };
        let now = state.now();
        let price = objects::price(&spec, now);
        let product =
            objects::product(&objects::product_id(&spec.tier), lookup_key, &objects::price_id(lookup_key), now);
        state.prices.push(price.clone());
        state.products.push(product);
        price
    }

    /// Moves the stand-in to the state `spec.event` implies, as `stripe trigger` does in test
    /// mode: makes what the event needs and the account lacks (customer, subscription, paid
    /// invoice, open dispute), performs the change, and records every event Stripe would send
    /// on the way. Returns those events, oldest first; on error nothing changed.
    pub fn trigger(&self, spec: &TriggerSpec) -> Result<Vec<Value>, StandInError> {
        Ok(trigger::run(&mut self.lock(), spec)?)
    }

    fn respond_to_trigger(&self, body: &Bytes) -> Response {
        let mut state = self.lock();
        let request_id = state.new_id("req_", 14);
        let result = serde_json::from_slice::<TriggerSpec>(body)
            .map_err(|error| {
                ApiError::invalid_state(format!(
                    "Invalid trigger request ({error}). Expected a JSON object with \"event\" and \
                     \"account\", and optionally \"plan\", \"interval\", \"outcome\" and \"pack\"."
                ))
            })
            .and_then(|spec| trigger::run(&mut state, &spec));
        match result {
            Ok(events) => answer(200, &serde_json::json!({ "events": events }), &request_id, false),
            Err(error) => answer(error.status, &error.body(), &request_id, false),
        }
    }

    /// Pays the open session `id` and answers the events that made (Stripe's error shape for a
    /// session that is not open or has expired).
    fn respond_to_pay(&self, id: &str) -> Response {
        let mut state = self.lock();
        let request_id = state.new_id("req_", 14);
        let mark = state.events.len();
        match state.complete_checkout_session(id) {
            Ok(_) => {
                let events: Vec<Value> = state.events[mark..].iter().map(|e| e.value.clone()).collect();
                answer(200, &serde_json::json!({ "events": events }), &request_id, false)
            }
            Err(error) => answer(error.status, &error.body(), &request_id, false),
        }
    }

    /// Sets an account's card behaviour from a JSON body `{"behaviour": "decline" | "pay"}`.
    fn respond_to_card(&self, account: &str, body: &Bytes) -> Response {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct CardRequest {
            behaviour: CardBehaviour,
        }
        let request_id = self.lock().new_id("req_", 14);
        if account.trim().is_empty() || account.len() > 500 {
            let error = ApiError::invalid_value("account", "account must be 1 to 500 characters (a metadata value).");
            return answer(error.status, &error.body(), &request_id, false);
        }
        match serde_json::from_slice::<CardRequest>(body) {
            Ok(request) => {
                self.set_card(account, request.behaviour);
                let body = serde_json::json!({ "account": account, "behaviour": request.behaviour });
                answer(200, &body, &request_id, false)
            }
            Err(_) => {
                let error = ApiError::invalid_value(
                    "behaviour",
                    "Expected a JSON object {\"behaviour\": \"decline\"} or {\"behaviour\": \"pay\"}.",
                );
                answer(error.status, &error.body(), &request_id, false)
            }
        }
    }

    fn respond(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Response {
        let response = self.carry_out(method, uri, headers, body);
        let mut state = self.lock();
        let (lost_path, lost) = &mut state.lost_answers;
        if *lost == 0 || *lost_path != api_path(uri.path()) {
            return response;
        }
        *lost -= 1;
        let request_id = state.new_id("req_", 14);
        let error = ApiError::injected(500);
        answer(error.status, &error.body(), &request_id, false)
    }

    fn carry_out(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Response {
        let path = api_path(uri.path());
        let query = uri.query().unwrap_or_default().to_owned();
        let header_text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let idempotency_key = header_text("idempotency-key");
        let form = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body);
        let query_pairs = serde_urlencoded::from_str::<Vec<(String, String)>>(&query);

        let mut state = self.lock();
        state.requests.push(RecordedRequest {
            method: method.as_str().to_owned(),
            path: path.clone(),
            query: query.clone(),
            form: form.clone().unwrap_or_default(),
            idempotency_key: idempotency_key.clone(),
            stripe_version: header_text("stripe-version"),
        });
        let request_id = state.new_id("req_", 14);
        if let Some(status) = state.faults.pop_front() {
            let error = ApiError::injected(status);
            return answer(error.status, &error.body(), &request_id, false);
        }
        if let Some(fault) =
            state.path_faults.iter_mut().find(|(suffix, n, _)| *n > 0 && path.ends_with(suffix.as_str()))
        {
            fault.1 -= 1;
            let error = ApiError::injected(fault.2);
            return answer(error.status, &error.body(), &request_id, false);
        }
        let (Ok(form), Ok(query_pairs)) = (form, query_pairs) else {
            let error = ApiError::invalid_state("Invalid request: the body or query could not be decoded.");
            return answer(error.status, &error.body(), &request_id, false);
        };

        let idempotent = (*method == Method::POST).then_some(idempotency_key.as_deref()).flatten();
        let mut sorted = form.clone();
        sorted.sort();
        let fingerprint = format!("{method} {path} {}", serde_urlencoded::to_string(&sorted).unwrap_or_default());
        if let Some(key) = idempotent {
            if key.len() > 255 {
                let error = ApiError::invalid_state("Idempotency-Key must be at most 255 characters long.");
                return answer(error.status, &error.body(), &request_id, false);
            }
            if let Some(saved) = state.idempotency.get(key) {
                if saved.fingerprint == fingerprint {
                    return answer(saved.status, &saved.body, &saved.request_id, true);
                }
                let error = ApiError::idempotency_mismatch(key);
                return answer(error.status, &error.body(), &request_id, false);
            }
        }

        let mut pairs = query_pairs;
        pairs.extend(form);
        let params = Params::from_pairs(&pairs);
        state.cause = Some((request_id.clone(), idempotency_key.clone()));
        let result = routes::dispatch(&mut state, method.as_str(), &path, &params);
        state.cause = None;
        let (status, body) = match result {
            Ok(body) => (200, body),
            Err(error) => (error.status, error.body()),
        };
        if let Some(key) = idempotent
            && status == 200
        {
            state.idempotency.insert(
                key.to_owned(),
                Saved { fingerprint, status, body: body.clone(), request_id: request_id.clone() },
            );
        }
        answer(status, &body, &request_id, false)
    }
}

/// The path from `/v1` on, whatever prefix the router was nested under.
fn api_path(path: &str) -> String {
    if path == "/v1" || path.starts_with("/v1/") {
        return path.to_owned();
    }
    match path.find("/v1/") {
        Some(start) => path[start..].to_owned(),
        None => path.to_owned(),
    }
}

fn answer(status: u16, body: &Value, request_id: &str, replayed: bool) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("request-id", value);
    }
    if replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

async fn handle_trigger(AxumState(standin): AxumState<StandIn>, body: Bytes) -> Response {
    standin.respond_to_trigger(&body)
}

async fn handle_pay(
    AxumState(standin): AxumState<StandIn>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    standin.respond_to_pay(&id)
}

async fn handle_card(
    AxumState(standin): AxumState<StandIn>,
    axum::extract::Path(account): axum::extract::Path<String>,
    body: Bytes,
) -> Response {
    standin.respond_to_card(&account, &body)
}

async fn handle(
    AxumState(standin): AxumState<StandIn>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let latency = standin.lock().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    standin.respond(&method, &uri, &headers, &body)
}

/// A `StripeBilling` for tests: pointed at a stand-in's base URL (from `spawn`), retrying with
/// millisecond delays so retry paths run fast.
pub fn test_billing(base: &str) -> tollgate::adapters::stripe::StripeBilling {
    let config = tollgate::adapters::stripe::StripeConfig {
        secret_key: "sk_test_tollgate".into(),
        api_base: Some(base.to_owned()),
        timeout: std::time::Duration::from_secs(5),
        max_retries: 2,
    };
    let fast = tollgate::adapters::stripe::retry::RetryPolicy {
        max_retries: 2,
        base_delay: std::time::Duration::from_millis(1),
        max_delay: std::time::Duration::from_millis(5),
    };
    tollgate::adapters::stripe::StripeBilling::new(&config).expect("a valid test configuration").with_retry(fast)
}
