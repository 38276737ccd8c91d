//! Cold start of Tollgate's release binaries: serves a local Lambda Runtime API on 127.0.0.1,
//! execs a function's binary with the environment Lambda would give it (region, static
//! credentials, the function's configuration, every endpoint on 127.0.0.1) and times exec to
//! the first answered invocation, `RUNS` times per function; prints p50/p95 and writes JSON.
//!
//! Each function gets an invocation it answers without I/O where it has one (a request without
//! identity, a signed event of a type the intake ignores, an empty SQS batch), so the figure is
//! init plus the runtime's first round trip, not a database's latency. The sync has none: its
//! figure ends at its first AWS request, which the harness receives (every AWS endpoint points
//! at it) and answers with a 500. Any AWS request is counted, and one made before the runtime
//! asked for its first invocation would be an init-time network call (reported).
//!
//! Usage: coldstart OUT.json BIN_DIR RUNS [function ...]   (`hello-lambda` is the baseline)

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

const WEBHOOK_SECRET: &str = "whsec_coldstart_bench_only";
const DEFAULT_FUNCTIONS: &[&str] = &[
    "hello-lambda",
    "hello-lambda-current-thread",
    "authorizer",
    "checkout",
    "keys",
    "ops",
    "subscription",
    "sync",
    "usage",
    "webhook-intake",
    "webhook-worker",
];

/// What the harness saw from the child.
#[derive(Debug)]
enum Seen {
    /// The runtime fetched the invocation.
    Next,
    /// The invocation's answer (`response` or `error`) and its body.
    Answer(&'static str, Bytes),
    /// An outbound request (any other path: every AWS and Stripe endpoint points here), with its
    /// `X-Amz-Target` if any.
    Aws(String),
    /// `/runtime/init/error`.
    InitError(Bytes),
}

struct Harness {
    /// The invocation to hand out once: (request id, event).
    pending: Mutex<Option<(String, Bytes)>>,
    seen: mpsc::UnboundedSender<(Instant, Seen)>,
}

type Shared = Arc<Harness>;

async fn next(State(h): State<Shared>) -> Response {
    let invocation = h.pending.lock().map(|mut p| p.take()).unwrap_or(None);
    let Some((id, event)) = invocation else {
        // Later polls wait until the child is killed.
        return std::future::pending::<Response>().await;
    };
    let _ = h.seen.send((Instant::now(), Seen::Next));
    let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + Duration::from_secs(900);
    (
        [
            ("lambda-runtime-aws-request-id", id),
            ("lambda-runtime-deadline-ms", deadline.as_millis().to_string()),
            ("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:000000000000:function:bench".to_owned()),
            ("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000;Sampled=0".to_owned()),
            ("content-type", "application/json".to_owned()),
        ],
        event,
    )
        .into_response()
}

async fn answer(State(h): State<Shared>, Path((_id, kind)): Path<(String, String)>, body: Bytes) -> StatusCode {
    let kind = if kind == "response" { "response" } else { "error" };
    let _ = h.seen.send((Instant::now(), Seen::Answer(kind, body)));
    StatusCode::ACCEPTED
}

async fn init_error(State(h): State<Shared>, body: Bytes) -> StatusCode {
    let _ = h.seen.send((Instant::now(), Seen::InitError(body)));
    StatusCode::ACCEPTED
}

async fn aws(State(h): State<Shared>, headers: HeaderMap) -> StatusCode {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("?").to_owned();
    let _ = h.seen.send((Instant::now(), Seen::Aws(target)));
    StatusCode::INTERNAL_SERVER_ERROR
}

fn read_event(root: &std::path::Path, file: &str) -> Result<Value> {
    let text = std::fs::read_to_string(root.join("events").join(file)).with_context(|| format!("events/{file}"))?;
    Ok(serde_json::from_str(&text)?)
}

/// The invocation each function gets, and what it shows.
fn event_for(root: &std::path::Path, function: &str) -> Result<(Value, &'static str)> {
    let without_identity = |file: &str| -> Result<Value> {
        let mut event = read_event(root, file)?;
        if let Some(context) = event["requestContext"].as_object_mut() {
            context.remove("authorizer");
        }
        if let Some(headers) = event["headers"].as_object_mut() {
            headers.retain(|k, _| !k.eq_ignore_ascii_case("authorization") && !k.starts_with("x-tollgate"));
        }
        Ok(event)
    };
    Ok(match function {
        "hello-lambda" | "hello-lambda-current-thread" => {
            (read_event(root, "apigw-get-subscription.json")?, "GET, 200 hello")
        }
        "checkout" => (without_identity("apigw-post-checkout.json")?, "POST /checkout without identity"),
        "keys" => (without_identity("apigw-post-api-keys.json")?, "POST /api-keys without identity"),
        "subscription" => (without_identity("apigw-get-subscription.json")?, "GET /subscription without identity"),
        "usage" => (
            without_identity("apigw-post-operator-usage.json")?,
            "POST /operator/accounts/{account_id}/usage without identity",
        ),
        "authorizer" => {
            let mut event = read_event(root, "apigw-authorizer-request.json")?;
            if let Some(headers) = event["headers"].as_object_mut() {
                headers.retain(|k, _| !k.eq_ignore_ascii_case("authorization"));
            }
            event["identitySource"] = json!([]);
            (event, "request without an API key")
        }
        "webhook-intake" => {
            let mut event = read_event(root, "function-url-stripe-webhook.json")?;
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
            let body = json!({
                "id": "evt_coldstart", "object": "event", "type": "customer.created", "created": now,
                "livemode": false, "data": {"object": {"id": "cus_coldstart", "object": "customer"}}
            })
            .to_string();
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(WEBHOOK_SECRET.as_bytes())?;
            mac.update(format!("{now}.{body}").as_bytes());
            let header = format!("t={now},v1={}", hex::encode(mac.finalize().into_bytes()));
            event["body"] = body.into();
            event["isBase64Encoded"] = false.into();
            event["headers"]["stripe-signature"] = header.into();
            (event, "signed event of an ignored type (verified, not enqueued)")
        }
        "webhook-worker" => (json!({"Records": []}), "empty SQS batch"),
        "ops" => {
            let mut event = without_identity("apigw-post-operator-usage.json")?;
            event["rawPath"] = "/operator/events/failed".into();
            event["requestContext"]["http"]["path"] = "/operator/events/failed".into();
            event["requestContext"]["http"]["method"] = "GET".into();
            event["body"] = Value::Null;
            (event, "GET /operator/events/failed without identity")
        }
        "sync" => (json!({"mode": "replay"}), "scheduled replay, timed to its first AWS request"),
        other => bail!("no invocation defined for {other}"),
    })
}

fn environment(function: &str, runtime_api: &str) -> Vec<(String, String)> {
    let local = "http://127.0.0.1:".to_owned() + runtime_api.rsplit(':').next().unwrap_or("9");
    [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_owned()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
        // Static, fake credentials: the SDK never needs to look further (no IMDS, no profile).
        ("AWS_ACCESS_KEY_ID", "AKIDCOLDSTARTBENCH".into()),
        ("AWS_SECRET_ACCESS_KEY", "coldstart-bench-not-a-secret".into()),
        ("AWS_ENDPOINT_URL", local.clone()),
        ("AWS_LAMBDA_FUNCTION_NAME", function.into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "coldstart".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function}")),
        ("TABLE_NAME", "tollgate-coldstart".into()),
        ("EVENTS_QUEUE_URL", format!("{local}/000000000000/events.fifo")),
        ("NOTIFICATIONS_QUEUE_URL", format!("{local}/000000000000/notifications")),
        ("EVENTS_DEAD_LETTER_QUEUE_URL", format!("{local}/000000000000/events-dlq.fifo")),
        ("NOTIFICATIONS_DEAD_LETTER_QUEUE_URL", format!("{local}/000000000000/notifications-dlq.fifo")),
        ("STRIPE_SECRET_KEY", "sk_test_coldstart_bench_only".into()),
        ("STRIPE_API_BASE", format!("{local}/stripe/")),
        ("ALLOWED_REDIRECT_ORIGINS", "https://app.example.com".into()),
        ("DEFAULT_SUCCESS_URL", "https://app.example.com/ok".into()),
        ("DEFAULT_CANCEL_URL", "https://app.example.com/cancel".into()),
        ("DEFAULT_RETURN_URL", "https://app.example.com/billing".into()),
        ("STRIPE_WEBHOOK_SECRETS", WEBHOOK_SECRET.into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .chain(std::env::vars().filter(|(k, _)| k.starts_with("SSL_CERT_") || k == "PATH"))
    .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

struct Run {
    millis: f64,
    answer: String,
    aws_calls: usize,
    aws_before_next: usize,
}

async fn once(
    harness: &Shared,
    seen: &mut mpsc::UnboundedReceiver<(Instant, Seen)>,
    binary: &std::path::Path,
    env: &[(String, String)],
    event: &Value,
    ends_at_aws: bool,
    run: usize,
) -> Result<Run> {
    while seen.try_recv().is_ok() {}
    *harness.pending.lock().map_err(|_| anyhow::anyhow!("poisoned"))? =
        Some((format!("coldstart-{run}"), Bytes::from(event.to_string())));
    let start = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("exec {}", binary.display()))?;
    let (mut fetched, mut aws_calls, mut aws_before_next) = (false, 0, 0);
    let outcome = loop {
        let Ok(Some((at, what))) = tokio::time::timeout(Duration::from_secs(20), seen.recv()).await else {
            break None;
        };
        match what {
            Seen::Next => fetched = true,
            Seen::Aws(target) => {
                aws_calls += 1;
                aws_before_next += usize::from(!fetched);
                if ends_at_aws {
                    break Some((at, format!("outbound request {target}")));
                }
            }
            Seen::Answer(kind, body) => {
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let status = body.get("statusCode").or_else(|| body.get("isAuthorized")).cloned();
                let detail = match (kind, status) {
                    ("response", Some(s)) => format!("response {s}"),
                    ("response", None) => "response".to_owned(),
                    _ => format!("error {}", body.get("errorType").cloned().unwrap_or(Value::Null)),
                };
                break Some((at, detail));
            }
            Seen::InitError(body) => break Some((at, format!("init error {}", String::from_utf8_lossy(&body)))),
        }
    };
    let _ = child.kill().await;
    let Some((at, answer)) = outcome else { bail!("{}: no answer within 20 s", binary.display()) };
    Ok(Run { millis: at.duration_since(start).as_secs_f64() * 1000.0, answer, aws_calls, aws_before_next })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, out, bin_dir, runs, functions @ ..] = args.as_slice() else {
        bail!("usage: coldstart OUT.json BIN_DIR RUNS [function ...]");
    };
    let runs: usize = runs.parse().context("RUNS")?;
    let functions: Vec<&str> =
        if functions.is_empty() { DEFAULT_FUNCTIONS.to_vec() } else { functions.iter().map(String::as_str).collect() };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");

    let (tx, mut seen) = mpsc::unbounded_channel();
    let harness = Arc::new(Harness { pending: Mutex::new(None), seen: tx });
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/{kind}", post(answer))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .fallback(aws)
        .with_state(harness.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let runtime_api = listener.local_addr()?.to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut report = serde_json::Map::new();
    for function in functions {
        let binary = std::path::Path::new(bin_dir).join(function);
        let (event, invocation) = event_for(&root, function)?;
        let env = environment(function, &runtime_api);
        let mut times = Vec::with_capacity(runs);
        let mut answers = std::collections::BTreeMap::<String, usize>::new();
        let (mut aws_calls, mut aws_before_next) = (0, 0);
        // One unmeasured run first: the binary's pages in the file cache, as on a warm host.
        once(&harness, &mut seen, &binary, &env, &event, function == "sync", 0).await?;
        for run in 1..=runs {
            let r = once(&harness, &mut seen, &binary, &env, &event, function == "sync", run).await?;
            times.push(r.millis);
            *answers.entry(r.answer).or_default() += 1;
            aws_calls += r.aws_calls;
            aws_before_next += r.aws_before_next;
        }
        times.sort_by(f64::total_cmp);
        let (p50, p95) = (percentile(&times, 50.0), percentile(&times, 95.0));
        println!(
            "{function:<16} p50 {p50:>7.2} ms  p95 {p95:>7.2} ms  min {:>7.2}  max {:>7.2}  ({invocation}: {answers:?}; AWS requests {aws_calls}, before the first invocation {aws_before_next})",
            times[0],
            times[times.len() - 1]
        );
        report.insert(
            function.to_owned(),
            json!({
                "runs": runs, "p50_ms": p50, "p95_ms": p95, "min_ms": times[0], "max_ms": times[times.len() - 1],
                "invocation": invocation, "answers": answers, "aws_requests": aws_calls,
                "aws_requests_before_first_invocation": aws_before_next, "times_ms": times,
            }),
        );
    }
    std::fs::write(out, serde_json::to_string_pretty(&Value::Object(report))? + "\n")?;
    Ok(())
}
