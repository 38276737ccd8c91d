//! `tollgate-dev trigger`: what `stripe trigger` does, against the local stack. It asks the
//! Stripe stand-in of the running stack (`POST {base}/stripe/_tollgate/trigger`) to reach the
//! state the event implies and record the events Stripe would send, then delivers each event to
//! the local intake (`POST {base}/webhooks/stripe`) byte for byte as recorded, signed as Stripe
//! signs (`Stripe-Signature: t=<now>,v1=<HMAC-SHA256 of "{t}.{body}">`).
//!
//! With `skip_delivery` the events are only recorded: they stay in the stand-in's event list
//! (`GET /stripe/v1/events`) as deliveries Stripe missed, for `tollgate-dev sync` to replay.

use std::error::Error as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use tollgate::edge::webhook::DEV_WEBHOOK_SECRET;

use tollgate_standin::{PAY_PATH, TRIGGER_PATH, TriggerSpec};

/// Where the local stack serves the Stripe stand-in.
pub const STANDIN_PREFIX: &str = "/stripe";
/// Where the local stack serves the webhook intake (the function URL's path).
pub const WEBHOOK_PATH: &str = "/webhooks/stripe";

const TIMEOUT: Duration = Duration::from_secs(30);
/// Stripe's webhook deliveries identify themselves so.
pub(crate) const STRIPE_USER_AGENT: &str = "Stripe/1.0 (+https://stripe.com/docs/webhooks)";
/// How much of a refusing answer's body an error quotes.
const QUOTED_BODY: usize = 300;

/// One event of a trigger and what the intake answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub event_id: String,
    pub event_type: String,
    /// The intake's HTTP status; `None` when the event was not delivered (`skip_delivery`, or
    /// the intake could not be reached).
    pub status: Option<u16>,
}

impl Delivery {
    /// The line `tollgate-dev trigger` prints for it.
    pub fn line(&self) -> String {
        let outcome = self.status.map_or_else(|| "not delivered".to_owned(), |status| format!("HTTP {status}"));
        format!("{:<48} {}  {outcome}", self.event_type, self.event_id)
    }
}

/// The secret events are signed with: the first of `STRIPE_WEBHOOK_SECRETS` (comma-separated),
/// as the local intake reads it, else the local stack's development secret.
pub fn signing_secret(configured: Option<&str>) -> String {
    configured
        .and_then(|secrets| secrets.split(',').map(str::trim).find(|secret| !secret.is_empty()))
        .unwrap_or(DEV_WEBHOOK_SECRET)
        .to_owned()
}

/// Triggers `spec` on the stack at `base` (e.g. `http://127.0.0.1:3000`) and delivers the
/// events signed with `secret` unless `skip_delivery`. Fails, saying why, when the stack is not
/// running, the stand-in refused, or any delivery did not get a 2xx (after trying them all).
pub async fn trigger(base: &str, secret: &str, spec: &TriggerSpec, skip_delivery: bool) -> Result<Vec<Delivery>> {
    trigger_reporting(base, secret, spec, skip_delivery, |_| {}).await
}

/// [`trigger`], calling `report` with each delivery as soon as it is done.
pub async fn trigger_reporting(
    base: &str,
    secret: &str,
    spec: &TriggerSpec,
    skip_delivery: bool,
    mut report: impl FnMut(&Delivery),
) -> Result<Vec<Delivery>> {
    let base = base.trim_end_matches('/');
    let http = reqwest::Client::builder().timeout(TIMEOUT).build().context("building the HTTP client")?;
    let url = format!("{base}{STANDIN_PREFIX}{TRIGGER_PATH}");
    let action = format!("trigger {} for account {}", spec.event, spec.account);
    let events = recorded_events(&http, base, &url, Some(spec), &action).await?;
    deliver_all(&http, base, secret, &events, skip_delivery, &mut report).await
}

/// `tollgate-dev pay`: pays the open Checkout Session `session` in the stand-in (as its
/// customer would on the hosted page) and delivers the events that made, as [`trigger`] does.
/// A session that is not open, or expired on the stack's clock, is refused with Stripe's error.
pub async fn pay(base: &str, secret: &str, session: &str, mut report: impl FnMut(&Delivery)) -> Result<Vec<Delivery>> {
    let base = base.trim_end_matches('/');
    let http = reqwest::Client::builder().timeout(TIMEOUT).build().context("building the HTTP client")?;
    let id: String = session.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    let url = format!("{base}{STANDIN_PREFIX}{}", PAY_PATH.replace("{id}", &id));
    let events = recorded_events(&http, base, &url, None, &format!("pay {id}")).await?;
    deliver_all(&http, base, secret, &events, false, &mut report).await
}

/// Delivers `events` in order (unless `skip_delivery`), reporting each; fails naming every
/// event the intake did not accept.
async fn deliver_all(
    http: &reqwest::Client,
    base: &str,
    secret: &str,
    events: &[Value],
    skip_delivery: bool,
    report: &mut impl FnMut(&Delivery),
) -> Result<Vec<Delivery>> {
    let signed_at = stack_time(http, base).await;

    let mut deliveries = Vec::with_capacity(events.len());
    let mut refused = Vec::new();
    for event in events {
        let event_id = event["id"].as_str().unwrap_or_default().to_owned();
        let event_type = event["type"].as_str().unwrap_or_default().to_owned();
        let status = if skip_delivery {
            None
        } else {
            match deliver(http, base, secret, &event.to_string(), signed_at).await {
                Ok((status, body)) => {
                    if !(200..300).contains(&status) {
                        refused.push(format!("{event_type} {event_id}: HTTP {status}: {}", quote(&body)));
                    }
                    Some(status)
                }
                Err(error) => {
                    refused.push(format!("{event_type} {event_id}: not delivered: {}", chain(&error)));
                    None
                }
            }
        };
        let delivery = Delivery { event_id, event_type, status };
        report(&delivery);
        deliveries.push(delivery);
    }
    if !refused.is_empty() {
        bail!(
            "{} of {} events were not accepted by the local intake at {base}{WEBHOOK_PATH} (they stay in \
             the stand-in's event list, GET {base}{STANDIN_PREFIX}/v1/events):\n  {}",
            refused.len(),
            events.len(),
            refused.join("\n  ")
        );
    }
    Ok(deliveries)
}

/// Asks the stand-in to act at `url` (with `spec`'s body for a trigger); its answer lists the
/// events it recorded. `action` names it in errors.
async fn recorded_events(
    http: &reqwest::Client,
    base: &str,
    url: &str,
    spec: Option<&TriggerSpec>,
    action: &str,
) -> Result<Vec<Value>> {
    let request = match spec {
        Some(spec) => http.post(url).json(spec),
        None => http.post(url),
    };
    let response = request.send().await.map_err(|error| unreachable_stack(base, &error))?;
    let status = response.status();
    let body = response.text().await.with_context(|| format!("reading the answer of {url}"))?;
    let answer: Option<Value> = serde_json::from_str(&body).ok();
    if status.is_success() {
        return answer
            .as_ref()
            .and_then(|answer| answer["events"].as_array().cloned())
            .ok_or_else(|| anyhow!("the Stripe stand-in at {url} answered without an events list: {}", quote(&body)));
    }
    let error = answer.as_ref().map(|answer| &answer["error"]);
    if let Some(message) = error.filter(|e| e["type"].is_string()).and_then(|e| e["message"].as_str()) {
        bail!("the Stripe stand-in refused to {action} (HTTP {}): {message}", status.as_u16());
    }
    if status == reqwest::StatusCode::NOT_FOUND {
        bail!(
            "the local stack at {base} serves no Stripe stand-in at {STANDIN_PREFIX}/ (HTTP 404): it talks to \
             Stripe's test mode when STRIPE_SECRET_KEY is set. Unset it and restart with `make dev`, or use \
             `stripe trigger` against test mode."
        );
    }
    bail!("the Stripe stand-in at {url} answered HTTP {}: {}", status.as_u16(), quote(&body))
}

/// Sends one event's exact bytes to the intake, signed; returns its status and body.
async fn deliver(
    http: &reqwest::Client,
    base: &str,
    secret: &str,
    body: &str,
    signed_at: i64,
) -> reqwest::Result<(u16, String)> {
    let header = stripe_webhook::Webhook::generate_test_header(body, secret, Some(signed_at));
    let response = http
        .post(format!("{base}{WEBHOOK_PATH}"))
        .header("Stripe-Signature", header)
        .header(reqwest::header::CONTENT_TYPE, "application/json; charset=utf-8")
        .header(reqwest::header::USER_AGENT, STRIPE_USER_AGENT)
        .body(body.to_owned())
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await.unwrap_or_default()))
}

fn unreachable_stack(base: &str, error: &reqwest::Error) -> anyhow::Error {
    let why = chain(error);
    if error.is_connect() {
        anyhow!(
            "the local stack is not running at {base} (could not connect: {why}). Start it with `make dev` \
             (or `cargo run -p tollgate-dev -- up`), then trigger again."
        )
    } else {
        anyhow!(
            "could not reach the local stack at {base}: {why}. Is it running? Start it with `make dev` \
             (or `cargo run -p tollgate-dev -- up`)."
        )
    }
}

/// An error and its causes, `: `-separated.
fn chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn quote(body: &str) -> String {
    let body = body.trim();
    match body.char_indices().nth(QUOTED_BODY) {
        Some((cut, _)) => format!("{}...", &body[..cut]),
        None if body.is_empty() => "(empty body)".to_owned(),
        None => body.to_owned(),
    }
}

/// The stack's time (`GET /_dev/clock`), which the intake checks signatures against; the
/// system time when the stack does not say.
async fn stack_time(http: &reqwest::Client, base: &str) -> i64 {
    let answer = async { http.get(format!("{base}/_dev/clock")).send().await.ok()?.json::<Value>().await.ok() };
    answer.await.and_then(|clock| clock["now"].as_i64()).unwrap_or_else(unix_now)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
}

/// Options of the `trigger` command.
#[derive(Debug, Clone)]
pub struct TriggerOptions {
    /// The local stack's port on 127.0.0.1.
    pub port: u16,
    pub spec: TriggerSpec,
    pub skip_delivery: bool,
}

/// `tollgate-dev trigger`: triggers, printing one line per event, signed with the secret the
/// local intake uses (`STRIPE_WEBHOOK_SECRETS`' first, else the development secret).
/// `tollgate-dev pay <session id>` against the stack on `port`: prints each delivery.
pub async fn run_pay(port: u16, session: &str) -> Result<()> {
    let base = format!("http://127.0.0.1:{port}");
    let configured = std::env::var(tollgate::edge::config::vars::STRIPE_WEBHOOK_SECRETS).ok();
    pay(&base, &signing_secret(configured.as_deref()), session, |delivery| println!("{}", delivery.line())).await?;
    Ok(())
}

pub async fn run(options: TriggerOptions) -> Result<()> {
    let base = format!("http://127.0.0.1:{}", options.port);
    let configured = std::env::var(tollgate::edge::config::vars::STRIPE_WEBHOOK_SECRETS).ok();
    let secret = signing_secret(configured.as_deref());
    let deliveries = trigger_reporting(&base, &secret, &options.spec, options.skip_delivery, |delivery| {
        println!("{}", delivery.line())
    })
    .await?;
    if options.skip_delivery {
        println!(
            "{} event(s) recorded, none delivered (missed deliveries): GET {base}{STANDIN_PREFIX}/v1/events lists them.",
            deliveries.len()
        );
    }
    Ok(())
}
