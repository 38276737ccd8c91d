//! CPU and peak memory per warm invocation of each function's release binary (issue 14, part 2
//! and part 4's peak RSS): for each function, a fresh table and queues on the local DynamoDB/SQS
//! server (moto), the Stripe stand-in, an account seeded through the real local stack (an
//! enterprise subscription delivered as signed webhooks, an API key made by `POST /api-keys`),
//! then the release binary run twice under a local Lambda Runtime API:
//!
//! - run A: exec, one invocation, kill;
//! - run B: exec, one invocation of the same kind, then `N` more, kill.
//!
//! The kernel's accounting of each child (`wait4`'s `rusage`: user + system CPU time of every
//! thread) gives the CPU per warm invocation as
//! `(cpu(B) - cpu(A)) / N`: init and the first invocation cancel out, and time spent waiting on
//! moto or the stand-in is not CPU time, so it is not counted. Peak RSS is run B's `VmHWM`.
//!
//! Every invocation does its real work: the read and the keys list query DynamoDB, the usage
//! call consumes quota (idempotency keys all distinct), the authorizer checks a real key, the
//! intake verifies and enqueues distinct events, the worker applies a stream of plan changes,
//! checkout creates a customer and a session for a new account each time, the sync replays.
//!
//! Usage: warm OUT.json BIN_DIR N [function ...]    (moto on MOTO_PORT, default 4801)

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tollgate::edge::config::{Source, vars};
use tollgate::edge::webhook::DEV_WEBHOOK_SECRET;
use tollgate_dev::env::LocalEnv;
use tollgate_dev::resources::{Resources, Template};
use tollgate_dev::server::{App, router};
use tollgate_standin::{StandIn, TriggerSpec};

const FUNCTIONS: &[&str] =
    &["authorizer", "checkout", "keys", "ops", "subscription", "sync", "usage", "webhook-intake", "webhook-worker"];
const ACCOUNT: &str = "acct_warm";
/// Every setting a function reads, taken from the local stack's configuration.
const SETTINGS: &[&str] = &[
    vars::TABLE_NAME,
    vars::EVENTS_QUEUE_URL,
    vars::NOTIFICATIONS_QUEUE_URL,
    vars::EVENTS_DEAD_LETTER_QUEUE_URL,
    vars::NOTIFICATIONS_DEAD_LETTER_QUEUE_URL,
    vars::IDENTITY_CLAIM,
    vars::GRACE_DAYS,
    vars::STRIPE_SECRET_KEY,
    vars::STRIPE_API_BASE,
    vars::STRIPE_TIMEOUT_MS,
    vars::STRIPE_MAX_RETRIES,
    vars::ALLOWED_REDIRECT_ORIGINS,
    vars::DEFAULT_SUCCESS_URL,
    vars::DEFAULT_CANCEL_URL,
    vars::DEFAULT_RETURN_URL,
    vars::CHECKOUT_SESSIONS_PER_MINUTE,
    vars::STRIPE_WEBHOOK_SECRETS,
    vars::STRIPE_LIVEMODE,
    vars::API_KEYS_PER_ACCOUNT,
];

// ---------------------------------------------------------------------------------------------
// The Lambda Runtime API

enum Seen {
    Next(Instant),
    Answer(Instant, bool, Bytes),
    InitError(Bytes),
}

struct Runtime {
    queue: Mutex<VecDeque<(String, Bytes)>>,
    seen: mpsc::UnboundedSender<Seen>,
}

async fn next(State(rt): State<Arc<Runtime>>) -> Response {
    let invocation = rt.queue.lock().map(|mut q| q.pop_front()).unwrap_or(None);
    let Some((id, event)) = invocation else {
        return std::future::pending::<Response>().await;
    };
    let _ = rt.seen.send(Seen::Next(Instant::now()));
    let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + Duration::from_secs(900);
    (
        [
            ("lambda-runtime-aws-request-id", id),
            ("lambda-runtime-deadline-ms", deadline.as_millis().to_string()),
            ("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:000000000000:function:warm".to_owned()),
            ("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000;Sampled=0".to_owned()),
            ("content-type", "application/json".to_owned()),
        ],
        event,
    )
        .into_response()
}

async fn answer(State(rt): State<Arc<Runtime>>, Path((_id, kind)): Path<(String, String)>, body: Bytes) -> StatusCode {
    let _ = rt.seen.send(Seen::Answer(Instant::now(), kind == "response", body));
    StatusCode::ACCEPTED
}

async fn init_error(State(rt): State<Arc<Runtime>>, body: Bytes) -> StatusCode {
    let _ = rt.seen.send(Seen::InitError(body));
    StatusCode::ACCEPTED
}

/// What one run of a binary cost, by the kernel's accounting, and what it answered.
struct Measured {
    cpu_us: f64,
    max_rss_kb: i64,
    answers: BTreeMap<String, usize>,
    latencies_ms: Vec<f64>,
}

/// What an answer shows: the HTTP status, the authorizer's decision, a batch's failures.
fn describe(ok: bool, body: &[u8]) -> String {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if !ok {
        return format!("error {}", body.get("errorType").cloned().unwrap_or(Value::Null));
    }
    if let Some(status) = body.get("statusCode") {
        return format!("status {status}");
    }
    if let Some(authorized) = body.get("isAuthorized") {
        return format!("authorized {authorized}");
    }
    if let Some(failures) = body.get("batchItemFailures").and_then(Value::as_array) {
        return format!("batch failures {}", failures.len());
    }
    "response".to_owned()
}

async fn run_binary(
    rt: &Arc<Runtime>,
    seen: &mut mpsc::UnboundedReceiver<Seen>,
    binary: &std::path::Path,
    env: &[(String, String)],
    events: &[Value],
) -> Result<Measured> {
    while seen.try_recv().is_ok() {}
    {
        let mut queue = rt.queue.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        queue.clear();
        queue.extend(events.iter().enumerate().map(|(i, e)| (format!("warm-{i}"), Bytes::from(e.to_string()))));
    }
    let child = std::process::Command::new(binary)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("exec {}", binary.display()))?;
    let pid = i32::try_from(child.id())?;
    let mut answers = BTreeMap::<String, usize>::new();
    let mut latencies_ms = Vec::with_capacity(events.len());
    let mut started = None;
    let mut failure = None;
    while latencies_ms.len() < events.len() {
        match tokio::time::timeout(Duration::from_secs(60), seen.recv()).await {
            Ok(Some(Seen::Next(at))) => started = Some(at),
            Ok(Some(Seen::Answer(at, ok, body))) => {
                let since = started.take().map_or(0.0, |s| at.duration_since(s).as_secs_f64() * 1000.0);
                latencies_ms.push(since);
                *answers.entry(describe(ok, &body)).or_default() += 1;
            }
            Ok(Some(Seen::InitError(body))) => {
                failure = Some(format!("init error: {}", String::from_utf8_lossy(&body)));
                break;
            }
            Ok(None) | Err(_) => {
                failure = Some(format!("no answer within 60 s after {} invocations", latencies_ms.len()));
                break;
            }
        }
    }
    // The peak resident set of the function's own memory, read before the kill: `wait4`'s
    // `ru_maxrss` would not do, since exec folds the spawning process's resident set (this
    // harness's, shared with the child until exec) into it.
    let max_rss_kb = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse::<i64>().ok()
        })
        .unwrap_or(-1);
    // SAFETY: plain syscalls on the child's pid, which this process owns and has not reaped.
    let usage = tokio::task::spawn_blocking(move || {
        let mut status = 0;
        let mut usage = unsafe { std::mem::zeroed::<libc::rusage>() };
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::wait4(pid, &mut status, 0, &mut usage);
        }
        drop(child);
        usage
    })
    .await?;
    if let Some(failure) = failure {
        bail!("{}: {failure}", binary.display());
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    Ok(Measured { cpu_us: seconds(usage.ru_utime) + seconds(usage.ru_stime), max_rss_kb, answers, latencies_ms })
}

// ---------------------------------------------------------------------------------------------
// The local stack each function's run works against

struct Stack {
    base: String,
    port: u16,
    resources: Resources,
    local: LocalEnv,
    standin: StandIn,
    server: tokio::task::JoinHandle<()>,
}

async fn stack(aws: &tollgate::adapters::aws::SdkConfig, template: &Template, prefix: &str) -> Result<Stack> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let base = format!("http://127.0.0.1:{port}");
    let resources =
        template.create(&tollgate::adapters::aws::dynamodb(aws), &tollgate::adapters::aws::sqs(aws), prefix).await?;
    let local = LocalEnv::new(&base, &resources)?;
    let standin = StandIn::new();
    let app = Arc::new(App::new(aws, template, &local)?);
    let events_url = resources.queue("EventsQueue")?.url.clone();
    let worker =
        tokio::spawn(tollgate_dev::worker::run(Arc::clone(&app), tollgate::adapters::aws::sqs(aws), events_url));
    let routes = router(app, Some(standin.router()));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, routes).await;
    });

    // The account: an enterprise subscription (no rate limit, no quota: every usage call below
    // is a consume, not a refusal), delivered to the local intake and applied by its worker.
    let spec = trigger_spec("checkout.session.completed", Some("enterprise"));
    tollgate_dev::trigger::trigger(&base, DEV_WEBHOOK_SECRET, &spec, false).await?;
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let read = client.get(format!("{base}/subscription")).header("x-tollgate-account", ACCOUNT).send().await?;
        let body = read.text().await.unwrap_or_default();
        if body.contains("enterprise") {
            break;
        }
        if Instant::now() > deadline {
            bail!("the seeded subscription was not applied within 30 s: {body}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The local worker stops here: what the functions do from now on is theirs alone.
    worker.abort();
    Ok(Stack { base, port, resources, local, standin, server })
}

fn trigger_spec(event: &str, plan: Option<&str>) -> TriggerSpec {
    TriggerSpec {
        event: event.to_owned(),
        account: ACCOUNT.to_owned(),
        plan: plan.map(str::to_owned),
        interval: None,
        outcome: None,
        pack: None,
        metadata_key: None,
    }
}

/// The environment Lambda would give the function: the local stack's settings, region, static
/// credentials, the local server as every AWS endpoint.
fn environment(function: &str, stack: &Stack, moto: &str, runtime_api: &str) -> Vec<(String, String)> {
    let settings = SETTINGS.iter().filter_map(|name| stack.local.get(name).map(|value| ((*name).to_owned(), value)));
    let lambda = [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        ("AWS_ENDPOINT_URL", moto.to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", function.to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "warm".to_owned()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function}")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v));
    settings.chain(lambda).chain(std::env::vars().filter(|(k, _)| k == "PATH")).collect()
}

// ---------------------------------------------------------------------------------------------
// The invocations

fn read_event(file: &str) -> Result<Value> {
    let path = tollgate_dev::moto::repo_root().join("events").join(file);
    Ok(serde_json::from_str(&std::fs::read_to_string(&path).with_context(|| path.display().to_string())?)?)
}

/// An API Gateway request from `file`, as `method path` with `body`, by `account`'s verified JWT.
fn api_request(file: &str, method: &str, path: &str, body: Option<String>, account: &str) -> Result<Value> {
    let mut event = read_event(file)?;
    event["rawPath"] = path.into();
    event["routeKey"] = format!("{method} {path}").into();
    event["requestContext"]["http"]["method"] = method.into();
    event["requestContext"]["http"]["path"] = path.into();
    event["requestContext"]["authorizer"] = json!({"jwt": {"claims": {"sub": account}, "scopes": null}});
    event["body"] = body.map_or(Value::Null, Value::from);
    event["isBase64Encoded"] = false.into();
    if let Some(headers) = event["headers"].as_object_mut() {
        headers.retain(|k, _| !k.starts_with("x-tollgate"));
    }
    Ok(event)
}

/// `POST path` with `body` as API Gateway passes it from the operator route set (the sample's
/// IAM principal).
fn operator_request(path: &str, body: String) -> Result<Value> {
    let mut event = read_event("apigw-post-operator-usage.json")?;
    event["rawPath"] = path.into();
    event["requestContext"]["http"]["path"] = path.into();
    event["body"] = body.into();
    Ok(event)
}

/// `count` Stripe events of plan changes on the seeded subscription, in the order Stripe made them.
fn plan_changes(stack: &Stack, count: usize) -> Result<Vec<Value>> {
    let mut events = Vec::with_capacity(count);
    let mut tiers = ["team", "enterprise"].into_iter().cycle();
    while events.len() < count {
        let spec = trigger_spec("customer.subscription.updated", tiers.next());
        events.extend(stack.standin.trigger(&spec).map_err(|e| anyhow::anyhow!("stand-in: {e}"))?);
    }
    events.truncate(count);
    Ok(events)
}

fn sign(body: &str) -> Result<String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(DEV_WEBHOOK_SECRET.as_bytes())?;
    mac.update(format!("{now}.{body}").as_bytes());
    Ok(format!("t={now},v1={}", hex::encode(mac.finalize().into_bytes())))
}

/// `count` invocations of `function`, each doing its real work, and what they are.
async fn invocations(function: &str, stack: &Stack, count: usize) -> Result<(Vec<Value>, &'static str)> {
    Ok(match function {
        "subscription" => {
            let event = api_request("apigw-get-subscription.json", "GET", "/subscription", None, ACCOUNT)?;
            (vec![event; count], "GET /subscription of a subscribed account (1 DynamoDB Query)")
        }
        "ops" => {
            let mut event = operator_request("/operator/events/failed", String::new())?;
            event["requestContext"]["http"]["method"] = "GET".into();
            event["body"] = Value::Null;
            (vec![event; count], "GET /operator/events/failed (1 DynamoDB Query)")
        }
        "keys" => {
            let event = api_request("apigw-post-api-keys.json", "GET", "/api-keys", None, ACCOUNT)?;
            (vec![event; count], "GET /api-keys of an account with one key")
        }
        "usage" => {
            let events = (0..count)
                .map(|i| {
                    let body = json!({"metric": "api_calls", "quantity": 1, "idempotency_key": format!("warm-{i}")});
                    operator_request(&format!("/operator/accounts/{ACCOUNT}/usage"), body.to_string())
                })
                .collect::<Result<_>>()?;
            (
                events,
                "POST /operator/accounts/{account_id}/usage consuming 1 api_call, each with its own idempotency key",
            )
        }
        "checkout" => {
            // The default success and cancel pages (the local stack's own), which are allowed.
            let body = Some(json!({"plan": "pro", "interval": "month"}).to_string());
            let events = (0..count)
                .map(|i| {
                    api_request(
                        "apigw-post-checkout.json",
                        "POST",
                        "/checkout",
                        body.clone(),
                        &format!("acct_warm_{i}"),
                    )
                })
                .collect::<Result<_>>()?;
            (events, "POST /checkout for a new account each (a Stripe customer and a session from the stand-in)")
        }
        "authorizer" => {
            let made = tollgate_dev::keys::create_key(&tollgate_dev::keys::CreateKey {
                port: stack.port,
                account: ACCOUNT.to_owned(),
                name: "warm".to_owned(),
                scopes: Vec::new(),
                expires_at: None,
            })
            .await?;
            let key = made["key"].as_str().context("POST /api-keys answered no key")?;
            let mut event = read_event("apigw-authorizer-request.json")?;
            event["headers"]["authorization"] = format!("Bearer {key}").into();
            event["identitySource"] = json!([format!("Bearer {key}")]);
            (
                vec![event; count],
                "a request with a valid API key (a GetItem and a Query; a write on the key's first use in a minute)",
            )
        }
        "webhook-intake" => {
            let template = read_event("function-url-stripe-webhook.json")?;
            let events = plan_changes(stack, count)?
                .into_iter()
                .map(|stripe_event| {
                    let body = stripe_event.to_string();
                    let mut event = template.clone();
                    event["headers"]["stripe-signature"] = sign(&body)?.into();
                    event["body"] = body.into();
                    event["isBase64Encoded"] = false.into();
                    Ok(event)
                })
                .collect::<Result<_>>()?;
            (events, "a signed Stripe event each (plan changes and their invoices), verified and sent to SQS")
        }
        "webhook-worker" => {
            let template = read_event("sqs-batch.json")?["Records"][0].clone();
            let events = plan_changes(stack, count)?
                .into_iter()
                .enumerate()
                .map(|(i, stripe_event)| {
                    let mut record = template.clone();
                    record["messageId"] = format!("warm-{i}").into();
                    record["attributes"]["MessageDeduplicationId"] = stripe_event["id"].clone();
                    record["attributes"]["MessageGroupId"] = "warm".into();
                    record["body"] = stripe_event.to_string().into();
                    json!({"Records": [record]})
                })
                .collect();
            (events, "an SQS batch of one Stripe event each (plan changes and their invoices), applied")
        }
        "sync" => (vec![json!({"mode": "replay"}); count], "a scheduled replay (nothing missed)"),
        other => bail!("no invocations defined for {other}"),
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied().unwrap_or(f64::NAN)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, out, bin_dir, n, functions @ ..] = args.as_slice() else {
        bail!("usage: warm OUT.json BIN_DIR N [function ...]");
    };
    let n: usize = n.parse().context("N")?;
    let functions: Vec<&str> =
        if functions.is_empty() { FUNCTIONS.to_vec() } else { functions.iter().map(String::as_str).collect() };
    let moto_port = std::env::var("MOTO_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(4801);
    let moto = tollgate_dev::moto::Moto::start(moto_port).await?;
    let aws = tollgate_dev::local::sdk_config(&moto.endpoint).await;
    let template = Template::load(&tollgate_dev::resources::template_path())?;

    let (tx, mut seen) = mpsc::unbounded_channel();
    let rt = Arc::new(Runtime { queue: Mutex::new(VecDeque::new()), seen: tx });
    let api = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/{kind}", post(answer))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(Arc::clone(&rt));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let runtime_api = listener.local_addr()?.to_string();
    tokio::spawn(async move { axum::serve(listener, api).await });

    let mut report = serde_json::Map::new();
    for function in functions {
        let binary = std::path::Path::new(bin_dir).join(function);
        let stack = stack(&aws, &template, &format!("warm-{function}-{}", std::process::id())).await?;
        let env = environment(function, &stack, &moto.endpoint, &runtime_api);
        let (mut events, invocation) = invocations(function, &stack, n + 2).await?;
        let measured = events.split_off(1);
        let one = run_binary(&rt, &mut seen, &binary, &env, &events).await?;
        let many = run_binary(&rt, &mut seen, &binary, &env, &measured).await?;
        let cpu_us = (many.cpu_us - one.cpu_us) / n as f64;
        let mut latencies = many.latencies_ms[1..].to_vec();
        latencies.sort_by(f64::total_cmp);
        let (p50, p95) = (percentile(&latencies, 50.0), percentile(&latencies, 95.0));
        println!(
            "{function:<16} CPU {cpu_us:>8.1} us/invocation  peak RSS {:>6.1} MB (one invocation: {:.1} MB)  wall p50 {p50:.2} ms p95 {p95:.2} ms  {:?}",
            many.max_rss_kb as f64 / 1024.0,
            one.max_rss_kb as f64 / 1024.0,
            many.answers
        );
        report.insert(
            function.to_owned(),
            json!({
                "invocations": n, "invocation": invocation,
                "cpu_us_per_invocation": cpu_us,
                "cpu_ms_one_invocation_run": one.cpu_us / 1000.0,
                "cpu_ms_many_invocations_run": many.cpu_us / 1000.0,
                "peak_rss_mb": many.max_rss_kb as f64 / 1024.0,
                "peak_rss_mb_one_invocation": one.max_rss_kb as f64 / 1024.0,
                "wall_p50_ms": p50, "wall_p95_ms": p95,
                "answers": many.answers, "table": stack.resources.table,
            }),
        );
        stack.server.abort();
        let _ = stack.base;
    }
    moto.stop().await?;
    std::fs::write(out, serde_json::to_string_pretty(&Value::Object(report))? + "\n")?;
    Ok(())
}
