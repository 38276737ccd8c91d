//! `requests OUT.json`: what each of Tollgate's operations costs in AWS and Stripe requests,
//! run through the functions' real handlers (wired by their own `wire` from the local stack's
//! configuration) against the local DynamoDB/SQS server with fresh resources and the Stripe
//! stand-in, with DynamoDB and SQS clients whose requests `tollgate::testing::RequestLog`
//! records. For each operation: requests by API, DynamoDB capacity units by
//! `tollgate::testing::capacity` (the local server reports none), SQS requests as billed (64 KB
//! chunks), Stripe calls (the requests the stand-in received), and the cost per million at the
//! prices in [`PRICES`]. Run it under `scripts/with-moto.sh PORT` (bench/run.sh's `requests`).

use anyhow::{Context as _, Result, anyhow, bail};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::MessageSystemAttributeName;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tollgate::adapters::dynamo::DynamoStore;
use tollgate::adapters::sqs::SqsEventQueue;
use tollgate::adapters::sqs::SqsNotifier;
use tollgate::adapters::stripe::StripeBilling;
use tollgate::app::events::EventDeps;
use tollgate::app::keys::{CreateRequest, KeysDeps, create};
use tollgate::domain::model::AccountId;
use tollgate::edge::webhook::DEV_WEBHOOK_SECRET;
use tollgate::ports::clock::{Clock, SystemClock};
use tollgate::testing::{ItemKey, Request, RequestLog, counted_client, counted_sqs_client, item_sizes};
use tollgate_dev::env::LocalEnv;
use tollgate_dev::resources::{Resources, Template, template_path};
use tollgate_standin::{StandIn, TriggerSpec};

/// Published us-east-1 prices used for the cost columns (USD), and where they come from.
/// DynamoDB: on-demand, Standard table class, after the 1 November 2024 price cut. SQS: both
/// of Tollgate's queues are FIFO (`template.yaml`); standard is listed for comparison. Lambda:
/// arm64 requests; the GB-second price is stated, the duration is left to the CPU figures.
const PRICES: Prices = Prices {
    dynamodb_per_million_rru: 0.125,
    dynamodb_per_million_wru: 0.625,
    sqs_fifo_per_million: 0.50,
    sqs_standard_per_million: 0.40,
    lambda_per_million_requests: 0.20,
    lambda_arm64_per_gb_second: 0.000_013_333_4,
};

struct Prices {
    dynamodb_per_million_rru: f64,
    dynamodb_per_million_wru: f64,
    sqs_fifo_per_million: f64,
    sqs_standard_per_million: f64,
    lambda_per_million_requests: f64,
    lambda_arm64_per_gb_second: f64,
}

fn prices_json() -> Value {
    json!({
        "region": "us-east-1",
        "dynamodb_on_demand_per_million_read_request_units": PRICES.dynamodb_per_million_rru,
        "dynamodb_on_demand_per_million_write_request_units": PRICES.dynamodb_per_million_wru,
        "sqs_fifo_per_million_requests": PRICES.sqs_fifo_per_million,
        "sqs_standard_per_million_requests": PRICES.sqs_standard_per_million,
        "lambda_per_million_requests": PRICES.lambda_per_million_requests,
        "lambda_arm64_per_gb_second": PRICES.lambda_arm64_per_gb_second,
        "as_of": "DynamoDB: on-demand prices in effect since 2024-11-01 (the 50% on-demand cut), as quoted by airbyte.com's DynamoDB pricing guide (2025-07-21); SQS: cloudburn.io (2026-03-14) and factualminds.com (2026-06-13), 'us-east-1, June 2026'; Lambda arm64: cloudchipr.com's Lambda pricing guide (2024) and AWS's Lambda pricing page (no date on the page). The AWS pricing pages themselves render their figures with JavaScript and could not be read from the search tool's stored copies; these are the figures those secondary sources quote for aws.amazon.com/{dynamodb,sqs,lambda}/pricing.",
        "sources": [
            "https://aws.amazon.com/dynamodb/pricing/on-demand/",
            "https://airbyte.com/data-engineering-resources/dynamodb-pricing",
            "https://aws.amazon.com/sqs/pricing/",
            "https://cloudburn.io/blog/amazon-sqs-pricing",
            "https://www.factualminds.com/blog/amazon-sqs-pricing-64kb-rule-fifo-vs-standard/",
            "https://aws.amazon.com/lambda/pricing/",
            "https://cloudchipr.com/blog/aws-lambda-pricing"
        ],
        "free_tiers_ignored": true
    })
}

const METHOD: &str = "Requests: every request a DynamoDB or SQS client of the handler sent, recorded by an SDK interceptor (tollgate::testing::RequestLog), one per call whatever the retries. \
Read units: from the items each read returned (the typed GetItemOutput, QueryOutput, BatchGetItemOutput), by tollgate::testing::capacity's rules: GetItem per item, Query as one read of the page's total size, BatchGetItem item by item (a requested key with no item counts as an empty item), halved when eventually consistent; no request here uses a projection or a filter, so what is returned is what is read. \
Write units: PutItem from the item in the typed input; UpdateItem, DeleteItem and each item of TransactWriteItems (ConditionCheck included) from the larger of the item's size before the operation and after it, both read with an uncounted consistent Scan of the table around the operation (and a put's own size); a transaction's items at twice. A write whose condition failed is priced the same way. \
SQS: requests as billed, one per 64 KB chunk of each message's body and attributes. Stripe: the requests the local Stripe stand-in received during the operation. \
Webhook events: the intake (function URL) handler, then the worker's handler on the message the intake enqueued, one message per batch (the worst case: in Lambda a batch of up to 10 shares one invocation and one Stripe read per customer); the Lambda event source mapping's ReceiveMessage and DeleteMessageBatch calls on the events queue are not the handler's and are listed apart as esm_sqs_requests (one receive and one delete per batch of one).";

/// An account whose webhook events are measured, from its checkout to its deletion.
const WEBHOOK_ACCOUNT: &str = "acct_bench";
/// An account with a live subscription, invoices and usage, for the reads and metering.
const READER: &str = "acct_reader";

/// The triggers of the measured webhook sequence, in order: every event kind the worker
/// handles that the stand-in can make on one account's life.
fn sequence() -> Vec<TriggerSpec> {
    let on = |event: &str| TriggerSpec::new(event, WEBHOOK_ACCOUNT);
    vec![
        on("checkout.session.completed"),
        on("customer.subscription.updated").plan("team"),
        on("customer.subscription.trial_will_end"),
        on("invoice.finalized"),
        on("invoice.paid"),
        on("invoice.payment_succeeded"),
        on("invoice.payment_failed"),
        on("invoice.payment_action_required"),
        on("invoice.marked_uncollectible"),
        on("invoice.voided"),
        on("entitlements.active_entitlement_summary.updated"),
        on("charge.dispute.created"),
        on("charge.dispute.closed"),
        on("charge.refunded"),
        on("checkout.session.async_payment_succeeded"),
        on("checkout.session.async_payment_failed"),
        on("checkout.session.expired"),
        on("customer.subscription.paused"),
        on("customer.subscription.resumed"),
        on("customer.subscription.deleted"),
        on("customer.deleted"),
    ]
}

#[tokio::main]
async fn main() -> Result<()> {
    let out = std::env::args().nth(1).context("usage: requests OUT.json")?;
    let bench = Bench::start().await?;
    let mut operations = Vec::new();
    let mut notes = Vec::new();

    // The reader: subscribed, with invoices (not measured).
    for spec in [TriggerSpec::new("checkout.session.completed", READER), TriggerSpec::new("invoice.paid", READER)] {
        for event in bench.standin.trigger(&spec).map_err(|e| anyhow!("{e:?}"))? {
            bench.deliver(&event).await?;
        }
    }

    // Every webhook event of one account's life, each through the intake then the worker.
    let mut by_type: BTreeMap<String, (Value, f64, usize)> = BTreeMap::new();
    let mut applied = None;
    for spec in sequence() {
        let events = match bench.standin.trigger(&spec) {
            Ok(events) => events,
            Err(err) => {
                notes.push(format!("trigger {} failed on the stand-in: {err:?}", spec.event));
                continue;
            }
        };
        for event in events {
            let event_type = event["type"].as_str().unwrap_or_default().to_owned();
            let measured = bench.webhook(&event).await?;
            if applied.is_none() && event_type == "invoice.paid" {
                applied = Some(event.clone());
            }
            let cost = measured["cost_per_million_usd"]["total"].as_f64().unwrap_or(0.0);
            let entry = by_type.entry(event_type).or_insert((Value::Null, -1.0, 0));
            entry.2 += 1;
            if cost > entry.1 {
                (entry.0, entry.1) = (measured, cost);
            }
        }
    }
    for (event_type, (mut measured, _, seen)) in by_type {
        measured["deliveries_seen"] = json!(seen);
        measured["figures_from"] = json!("the most expensive delivery of this type in the sequence");
        let ignored = measured["parts"]["intake"]["ignored"].as_bool().unwrap_or(false);
        measured["name"] = json!(if ignored {
            format!("webhook {event_type} (ignored type)")
        } else {
            format!("webhook {event_type}")
        });
        operations.push(measured);
    }

    // A duplicate delivery of an applied event: the intake enqueues it again (the FIFO queue
    // drops it within its 5-minute deduplication window); after that window, or on a
    // redelivery, the worker gets it again.
    let applied = applied.context("the sequence applied no invoice.paid")?;
    let mut duplicate = bench.webhook_parts(&applied, true).await?;
    duplicate["name"] = json!("webhook duplicate delivery (an applied invoice.paid, again)");
    operations.push(duplicate);

    // Reads, the authorizer and metering on the reader's account.
    operations.extend(bench.reads_and_usage().await?);

    let document = json!({
        "generated_by": "bench/requests (cargo run -p tollgate-requests -- OUT.json, under scripts/with-moto.sh)",
        "method": METHOD,
        "prices": prices_json(),
        "notes": notes,
        "operations": operations,
    });
    std::fs::write(&out, serde_json::to_string_pretty(&document)?).with_context(|| format!("writing {out}"))?;
    eprintln!("wrote {out}: {} operations", document["operations"].as_array().map_or(0, Vec::len));
    Ok(())
}

/// The handlers, their counted clients, and what measures them.
struct Bench {
    ddb: RequestLog,
    sqs: RequestLog,
    standin: StandIn,
    plain: aws_sdk_dynamodb::Client,
    plain_sqs: aws_sdk_sqs::Client,
    resources: Resources,
    intake: webhook_intake::Deps<SqsEventQueue>,
    worker: EventDeps<DynamoStore, StripeBilling, SqsNotifier>,
    subscription: subscription::Deps<DynamoStore>,
    usage: usage::Deps<DynamoStore, SqsNotifier>,
    authorizer: authorizer::Deps<DynamoStore>,
    uncounted: DynamoStore,
}

/// What a measured stretch started from.
struct Mark {
    sizes: BTreeMap<ItemKey, u64>,
    stripe: usize,
}

impl Bench {
    async fn start() -> Result<Self> {
        let aws = tollgate_dev::local::require_server().await?;
        let prefix = format!("bench-req-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let template = Template::load(&template_path())?;
        let plain = tollgate::adapters::aws::dynamodb(&aws);
        let plain_sqs = tollgate::adapters::aws::sqs(&aws);
        let resources = template.create(&plain, &plain_sqs, &prefix).await?;

        // The stand-in where the local stack serves it (LocalEnv points Stripe there).
        let standin = StandIn::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let router = axum::Router::new().nest("/stripe", standin.router());
        tokio::spawn(async move { axum::serve(listener, router).await });
        let env = LocalEnv::new(&base, &resources)?;

        // Each function wired by its own `wire`, then given counted clients.
        let (ddb, sqs) = (RequestLog::default(), RequestLog::default());
        let counted = counted_client(plain.config(), &ddb);
        let counted_sqs = counted_sqs_client(plain_sqs.config(), &sqs);
        let store = DynamoStore::new(counted, resources.table.clone());
        let events_url = resources.queue("EventsQueue")?.url.clone();
        let notifications_url = resources.queue("NotificationsQueue")?.url.clone();
        let notifier = || SqsNotifier::new(counted_sqs.clone(), notifications_url.clone());
        let wired = |what: &str, e: lambda_http::Error| anyhow!("{what}: {e}");

        let mut intake = webhook_intake::wire(&env, &aws, std::sync::Arc::new(tollgate::ports::clock::SystemClock))
            .map_err(|e| wired("webhook-intake", e))?;
        intake.queue = SqsEventQueue::new(counted_sqs.clone(), events_url);
        let mut worker = webhook_worker::wire(&env, &aws, std::sync::Arc::new(tollgate::ports::clock::SystemClock))
            .map_err(|e| wired("webhook-worker", e))?;
        (worker.store, worker.notifier) = (store.clone(), notifier());
        let mut subscription = subscription::wire(&env, &aws, std::sync::Arc::new(tollgate::ports::clock::SystemClock))
            .map_err(|e| wired("subscription", e))?;
        subscription.store = store.clone();
        let mut usage = usage::wire(&env, &aws, std::sync::Arc::new(tollgate::ports::clock::SystemClock))
            .map_err(|e| wired("usage", e))?;
        (usage.usage.store, usage.usage.notifier) = (store.clone(), notifier());
        let mut authorizer = authorizer::wire(&env, &aws, std::sync::Arc::new(tollgate::ports::clock::SystemClock))
            .map_err(|e| wired("authorizer", e))?;
        authorizer.store = store;
        let uncounted = DynamoStore::new(plain.clone(), resources.table.clone());
        Ok(Self {
            ddb,
            sqs,
            standin,
            plain,
            plain_sqs,
            resources,
            intake,
            worker,
            subscription,
            usage,
            authorizer,
            uncounted,
        })
    }

    async fn mark(&self) -> Result<Mark> {
        self.ddb.take_requests();
        self.sqs.take_requests();
        let sizes = item_sizes(&self.plain, &self.resources.table).await.map_err(|e| anyhow!("{e}"))?;
        Ok(Mark { sizes, stripe: self.standin.requests().len() })
    }

    /// What happened since `mark`.
    async fn measure(&self, mark: Mark) -> Result<Value> {
        let ddb = self.ddb.take_requests();
        let sqs = self.sqs.take_requests();
        let stripe: Vec<String> =
            self.standin.requests().iter().skip(mark.stripe).map(|r| format!("{} {}", r.method, r.path)).collect();
        let after = item_sizes(&self.plain, &self.resources.table).await.map_err(|e| anyhow!("{e}"))?;
        let size = |sizes: &BTreeMap<ItemKey, u64>| {
            let sizes = sizes.clone();
            move |key: &ItemKey| sizes.get(key).copied().unwrap_or(0)
        };
        let detail: Vec<Value> = ddb
            .iter()
            .map(|r| {
                json!({
                    "operation": r.operation,
                    "succeeded": r.succeeded,
                    "consistent": r.consistent,
                    "items_read": r.read_sizes.len(),
                    "item_bytes_read": r.read_sizes,
                    "items_written": r.writes.len(),
                    "read_units": r.read_units(),
                    "write_units": r.write_units(size(&mark.sizes), size(&after)),
                })
            })
            .collect();
        let read_units = detail.iter().filter_map(|d| d["read_units"].as_f64()).fold(0.0, |a, b| a + b);
        let write_units: u64 = detail.iter().filter_map(|d| d["write_units"].as_u64()).sum();
        let billed: u64 = sqs.iter().map(Request::sqs_billed_requests).sum();
        Ok(json!({
            "dynamodb": {
                "requests": by_name(&ddb),
                "sequence": ddb.iter().map(|r| r.operation.clone()).collect::<Vec<_>>(),
                "count": ddb.len(),
                "read_units": read_units,
                "write_units": write_units,
                "detail": detail,
            },
            "sqs": {
                "requests": by_name(&sqs),
                "count": sqs.len(),
                "billed_requests": billed,
                "message_bytes": sqs.iter().flat_map(|r| r.message_bytes.clone()).collect::<Vec<_>>(),
            },
            "stripe_calls": stripe.len(),
            "stripe_requests": stripe,
        }))
    }

    /// Delivers `event` through the intake and the worker, unmeasured.
    async fn deliver(&self, event: &Value) -> Result<()> {
        let response = webhook_intake::handle(&self.intake, signed(event)?).await.map_err(|e| anyhow!("{e}"))?;
        if !response.status().is_success() {
            bail!("the intake refused {}: {}", event["id"], response.status());
        }
        if let Some(message) = self.receive().await? {
            self.work(message).await?;
        }
        Ok(())
    }

    /// One webhook event through the intake and then the worker, measured.
    async fn webhook(&self, event: &Value) -> Result<Value> {
        self.webhook_parts(event, false).await
    }

    /// As [`Bench::webhook`]; with `redeliver`, the worker gets the event's body again even
    /// when the queue deduplicated the intake's send (a duplicate after the FIFO window).
    async fn webhook_parts(&self, event: &Value, redeliver: bool) -> Result<Value> {
        let mark = self.mark().await?;
        let response = webhook_intake::handle(&self.intake, signed(event)?).await.map_err(|e| anyhow!("{e}"))?;
        let status = response.status().as_u16();
        let ignored = serde_json::from_slice::<Value>(response.body().as_ref())
            .ok()
            .and_then(|b| b["ignored"].as_bool())
            .unwrap_or(false);
        let mut intake = self.measure(mark).await?;
        intake["status"] = json!(status);
        intake["ignored"] = json!(ignored);
        let mut message = self.receive().await?;
        if redeliver && message.is_none() {
            message = Some(self.message_for(event));
        }
        let worker = match message {
            Some(message) => {
                let mark = self.mark().await?;
                let failed = self.work(message).await?;
                let mut worker = self.measure(mark).await?;
                worker["failed"] = json!(failed);
                worker["esm_sqs_requests"] = json!({"ReceiveMessage": 1, "DeleteMessageBatch": 1});
                Some(worker)
            }
            None => None,
        };
        let mut parts = vec![("intake", intake)];
        if let Some(worker) = worker {
            parts.push(("worker", worker));
        }
        Ok(operation("webhook", &parts, Some(event)))
    }

    /// The next message on the events queue (uncounted: in Lambda the event source mapping
    /// receives it), deleted from the queue.
    async fn receive(&self) -> Result<Option<SqsMessage>> {
        let url = &self.resources.queue("EventsQueue")?.url;
        let received = self
            .plain_sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(1)
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
            .send()
            .await?;
        let Some(message) = received.messages().first() else { return Ok(None) };
        if let Some(handle) = message.receipt_handle() {
            self.plain_sqs.delete_message().queue_url(url).receipt_handle(handle).send().await?;
        }
        let mut lambda = SqsMessage::default();
        lambda.message_id = message.message_id().map(str::to_owned);
        lambda.body = message.body().map(str::to_owned);
        let group = message.attributes().and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId)).cloned();
        lambda.attributes = group.map(|g| HashMap::from([("MessageGroupId".to_owned(), g)])).unwrap_or_default();
        Ok(Some(lambda))
    }

    /// The message the queue would deliver for `event` again.
    fn message_for(&self, event: &Value) -> SqsMessage {
        let mut message = SqsMessage::default();
        message.message_id = Some(uuid::Uuid::new_v4().to_string());
        message.body = Some(event.to_string());
        let customer = event["data"]["object"]["customer"].as_str().unwrap_or_default().to_owned();
        message.attributes = HashMap::from([("MessageGroupId".to_owned(), customer)]);
        message
    }

    /// The worker's handler on a batch of `message`; answers whether it reported it failed.
    async fn work(&self, message: SqsMessage) -> Result<bool> {
        let mut batch = SqsEvent::default();
        batch.records = vec![message];
        let event = lambda_runtime::LambdaEvent::new(batch, lambda_runtime::Context::default());
        let response = webhook_worker::handle(&self.worker, event).await.map_err(|e| anyhow!("{e}"))?;
        Ok(!response.batch_item_failures.is_empty())
    }

    async fn reads_and_usage(&self) -> Result<Vec<Value>> {
        let mut operations = Vec::new();
        let reader = AccountId::parse(READER).map_err(|e| anyhow!("{e:?}"))?;
        let keys = KeysDeps {
            store: self.uncounted.clone(),
            clock: Arc::new(SystemClock),
            mode: tollgate::domain::apikeys::Mode::Test,
            max_active: 10,
        };
        let request = CreateRequest {
            name: Some("bench".into()),
            scopes: Some(vec!["usage:read".into(), "subscription:read".into()]),
            expires_at: None,
        };
        let key = create(&keys, &reader, request).await.map_err(|e| anyhow!("{e}"))?.key;

        // Usage first, so the reads have a counter to show. One unmeasured consumption opens
        // the window's counter: the measured one is a steady-state decision.
        self.http(usage_call(&self.usage, operator("/usage", &consume(1, "warm"))?)).await?;
        let body = consume(1, "job-1");
        operations.push(
            self.http_op(
                "POST /operator/accounts/{account_id}/usage (a consumption)",
                usage_call(&self.usage, operator("/usage", &body)?),
            )
            .await?,
        );
        operations.push(
            self.http_op(
                "POST /operator/accounts/{account_id}/usage replayed (same idempotency key)",
                usage_call(&self.usage, operator("/usage", &body)?),
            )
            .await?,
        );
        // The largest quantity a request may ask for: over the plan's monthly quota.
        let over = consume(tollgate::domain::usage::MAX_QUANTITY, "job-over");
        operations.push(
            self.http_op(
                "POST /operator/accounts/{account_id}/usage refused (over quota)",
                usage_call(&self.usage, operator("/usage", &over)?),
            )
            .await?,
        );

        for path in ["/subscription", "/billing/summary", "/invoices", "/usage/history"] {
            let name = format!("GET {path}");
            operations.push(self.http_op(&name, read_call(&self.subscription, jwt("GET", path, "")?)).await?);
        }

        // The authorizer on a valid key: its first use (which records `last_used_at`, at most
        // once a minute per key), again within the minute; then the read it lets through.
        let mut decision = None;
        for name in ["authorizer (valid API key, first use in the minute)", "authorizer (valid API key, again)"] {
            let mark = self.mark().await?;
            let decided =
                authorizer::handle(&self.authorizer, authorizer_request(&key)?).await.map_err(|e| anyhow!("{e}"))?;
            let mut measured = self.measure(mark).await?;
            measured["authorized"] = json!(decided.is_authorized);
            operations.push(operation(name, &[("authorizer", measured)], None));
            decision = Some(decided);
        }
        let decision = decision.context("the authorizer ran")?;
        let context = serde_json::to_value(&decision.context)?;
        let api = api_subscription(context)?;
        operations.push(
            self.http_op("GET /api/subscription (behind the authorizer)", read_call(&self.subscription, api)).await?,
        );
        Ok(operations)
    }

    async fn http(&self, call: impl Future<Output = Result<lambda_http::Response<lambda_http::Body>>>) -> Result<u16> {
        Ok(call.await?.status().as_u16())
    }

    async fn http_op(
        &self,
        name: &str,
        call: impl Future<Output = Result<lambda_http::Response<lambda_http::Body>>>,
    ) -> Result<Value> {
        let mark = self.mark().await?;
        let status = self.http(call).await?;
        let mut measured = self.measure(mark).await?;
        measured["status"] = json!(status);
        Ok(operation(name, &[("handler", measured)], None))
    }
}

async fn usage_call(
    deps: &usage::Deps<DynamoStore, SqsNotifier>,
    request: lambda_http::Request,
) -> Result<lambda_http::Response<lambda_http::Body>> {
    usage::handle(deps, request).await.map_err(|e| anyhow!("{e}"))
}

async fn read_call(
    deps: &subscription::Deps<DynamoStore>,
    request: lambda_http::Request,
) -> Result<lambda_http::Response<lambda_http::Body>> {
    subscription::handle(deps, request).await.map_err(|e| anyhow!("{e}"))
}

/// Count of each operation name in `requests`.
fn by_name(requests: &[Request]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for request in requests {
        *counts.entry(request.operation.clone()).or_insert(0) += 1;
    }
    counts
}

/// One operation of the output: its parts (one per Lambda invocation), their total, and its
/// cost per million at [`PRICES`].
fn operation(name: &str, parts: &[(&str, Value)], event: Option<&Value>) -> Value {
    let sum = |path: &[&str]| -> f64 {
        parts
            .iter()
            .map(|(_, part)| path.iter().fold(part, |v, key| &v[*key]).as_f64().unwrap_or(0.0))
            .fold(0.0, |a, b| a + b)
    };
    let mut ddb_requests: BTreeMap<String, u64> = BTreeMap::new();
    let mut sqs_requests: BTreeMap<String, u64> = BTreeMap::new();
    for (_, part) in parts {
        for (into, service) in [(&mut ddb_requests, "dynamodb"), (&mut sqs_requests, "sqs")] {
            for (api, count) in part[service]["requests"].as_object().into_iter().flatten() {
                *into.entry(api.clone()).or_insert(0) += count.as_u64().unwrap_or(0);
            }
        }
    }
    let read_units = sum(&["dynamodb", "read_units"]);
    let write_units = sum(&["dynamodb", "write_units"]);
    let sqs_billed = sum(&["sqs", "billed_requests"]);
    let esm = parts.iter().filter(|(_, p)| !p["esm_sqs_requests"].is_null()).count() as f64 * 2.0;
    let invocations = parts.len() as f64;
    let cost = json!({
        "dynamodb_reads": read_units * PRICES.dynamodb_per_million_rru,
        "dynamodb_writes": write_units * PRICES.dynamodb_per_million_wru,
        "sqs": sqs_billed * PRICES.sqs_fifo_per_million,
        "sqs_event_source_mapping": esm * PRICES.sqs_fifo_per_million,
        "lambda_requests": invocations * PRICES.lambda_per_million_requests,
        "total": read_units * PRICES.dynamodb_per_million_rru
            + write_units * PRICES.dynamodb_per_million_wru
            + (sqs_billed + esm) * PRICES.sqs_fifo_per_million
            + invocations * PRICES.lambda_per_million_requests,
    });
    let mut value = json!({
        "name": name,
        "parts": parts.iter().map(|(n, p)| ((*n).to_owned(), p.clone())).collect::<serde_json::Map<_, _>>(),
        "total": {
            "dynamodb_requests": ddb_requests,
            "dynamodb_request_count": ddb_requests.values().sum::<u64>(),
            "read_units": read_units,
            "write_units": write_units,
            "sqs_requests": sqs_requests,
            "sqs_billed_requests": sqs_billed,
            "sqs_event_source_mapping_requests": esm,
            "stripe_calls": sum(&["stripe_calls"]),
            "lambda_invocations": invocations,
        },
        "cost_per_million_usd": cost,
    });
    if let Some(event) = event {
        value["event_type"] = event["type"].clone();
        value["event_id"] = event["id"].clone();
        value["event_bytes"] = json!(event.to_string().len());
    }
    value
}

fn events_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

fn sample(name: &str) -> Result<Value> {
    let path = events_dir().join(name);
    let raw = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(serde_json::from_str(&raw)?)
}

/// The function URL request Stripe would send for `event`, signed now.
fn signed(event: &Value) -> Result<lambda_http::Request> {
    let body = event.to_string();
    let header = tollgate::testing::signature_header(&body, DEV_WEBHOOK_SECRET, SystemClock.now());
    let mut request = sample("function-url-stripe-webhook.json")?;
    request["headers"]["stripe-signature"] = json!(header);
    request["headers"]["content-length"] = json!(body.len().to_string());
    request["body"] = json!(body);
    lambda_http::request::from_str(&request.to_string()).map_err(|e| anyhow!("{e}"))
}

/// `POST /operator/accounts/{reader}<sub>` with `body` as API Gateway passes it from the
/// operator route set (the sample's IAM principal).
fn operator(sub: &str, body: &str) -> Result<lambda_http::Request> {
    let mut event = sample("apigw-post-operator-usage.json")?;
    let path = format!("/operator/accounts/{READER}{sub}");
    event["rawPath"] = path.clone().into();
    event["requestContext"]["http"]["path"] = path.into();
    event["body"] = body.into();
    lambda_http::request::from_str(&event.to_string()).map_err(|e| anyhow!("{e}"))
}

/// `method path` with `body` as API Gateway passes it with a verified JWT of the reader.
fn jwt(method: &str, path: &str, body: &str) -> Result<lambda_http::Request> {
    let mut event = sample("apigw-post-usage-check.json")?;
    event["rawPath"] = path.into();
    event["routeKey"] = format!("{method} {path}").into();
    event["requestContext"]["http"]["method"] = method.into();
    event["requestContext"]["http"]["path"] = path.into();
    event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = READER.into();
    event["body"] = body.into();
    lambda_http::request::from_str(&event.to_string()).map_err(|e| anyhow!("{e}"))
}

/// `GET /api/subscription` as API Gateway passes it after the authorizer granted `context`.
fn api_subscription(context: Value) -> Result<lambda_http::Request> {
    let mut event = sample("apigw-get-api-subscription.json")?;
    event["requestContext"]["authorizer"] = json!({ "lambda": context });
    lambda_http::request::from_str(&event.to_string()).map_err(|e| anyhow!("{e}"))
}

fn authorizer_request(key: &str) -> Result<aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request> {
    let mut event = sample("apigw-authorizer-request.json")?;
    event["routeKey"] = "GET /api/subscription".into();
    event["headers"]["authorization"] = format!("Bearer {key}").into();
    event["identitySource"] = json!([format!("Bearer {key}")]);
    Ok(serde_json::from_value(event)?)
}

fn consume(quantity: u64, key: &str) -> String {
    json!({"metric": "api_calls", "quantity": quantity, "idempotency_key": key}).to_string()
}
