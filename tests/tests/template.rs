//! `template.yaml` and the workspace agree: every function package is deployed, and every
//! deployed function names a binary the workspace builds. The template's numbers hold
//! together: Stripe's retries fit each function's timeout, the worker's concurrency stays under
//! Stripe's rate limits, every alarm reaches someone, and the API key routes are behind their
//! authorizer, which caches nothing past the revocation bound.

use serde_yaml::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;
use tollgate::adapters::stripe::retry::RetryPolicy;
use tollgate::domain::apikeys::{REVOCATION_BOUND_SECONDS, required_scope};
use tollgate::edge::config::vars;
use tollgate_dev::resources::{Template, template_path};

fn workspace_functions() -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions");
    std::fs::read_dir(dir).unwrap().map(|entry| entry.unwrap().file_name().into_string().unwrap()).collect()
}

#[test]
fn every_function_package_is_in_the_template_and_back() {
    let template = Template::load(&template_path()).unwrap();

    let deployed: BTreeSet<String> = template.functions.iter().map(|(_, binary)| binary.clone()).collect();

    assert_eq!(deployed, workspace_functions());
}

#[test]
fn every_template_function_builds_a_binary_of_its_name() {
    let template = Template::load(&template_path()).unwrap();

    for (logical_id, binary) in &template.functions {
        let package = Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions").join(binary);
        let manifest = std::fs::read_to_string(package.join("Cargo.toml")).unwrap();
        assert!(manifest.contains(&format!("name = \"{binary}\"")), "{logical_id}: package is not named {binary}");
        assert!(package.join("src/main.rs").exists(), "{logical_id}: no src/main.rs");
        let resource = &template.raw["Resources"][logical_id.as_str()];
        assert_eq!(resource["Metadata"]["BuildMethod"].as_str(), Some("rust-cargolambda"), "{logical_id}");
        assert_eq!(
            resource["Properties"]["Runtime"].as_str().or(template.raw["Globals"]["Function"]["Runtime"].as_str()),
            Some("provided.al2023")
        );
    }
}

// ---- Time budgets: Stripe's retries fit each function's timeout ----

/// API Gateway's HTTP API gives an integration 30 s at most (a fixed quota), so checkout must
/// answer within that; its Lambda timeout stays a second under it.
const CHECKOUT_MAX_TIMEOUT: Duration = Duration::from_secs(29);
/// Stripe calls one checkout request makes one after another, at most: find or create the
/// customer, list the customer's subscriptions, resolve the price id by lookup key, create
/// the session, and one spare (`shared/src/app/checkout.rs`).
const CHECKOUT_STRIPE_CALLS: u32 = 5;
/// What a checkout request needs besides Stripe: its DynamoDB reads and writes (profile,
/// rate window, pending session, projection) and the answer.
const CHECKOUT_MARGIN: Duration = Duration::from_secs(4);
/// Stripe calls one worker record makes one after another, at most (`shared/src/app/events.rs`).
const WORKER_STRIPE_CALLS_PER_RECORD: u32 = tollgate::app::events::STRIPE_CALLS_PER_EVENT;
/// Stripe calls one unit of the sync's work makes, at most (`shared/src/app/sync.rs`).
const SYNC_STRIPE_CALLS_PER_UNIT: u32 = tollgate::app::sync::STRIPE_CALLS_PER_UNIT;
/// What the worker needs besides Stripe once it starts its last record: the record's
/// transaction, its notification and the batch's answer. The core's deadline guard starts no
/// record when less than one record's worst case and this are left, so one record must fit.
const WORKER_MARGIN: Duration = Duration::from_secs(5);
/// What the sync needs after a unit of work started just before its deadline
/// (`sync::DEADLINE_MARGIN` before the timeout): saving the cursor and the outcome.
const SYNC_SAVE_MARGIN: Duration = Duration::from_secs(5);
/// AWS: set an SQS event source's visibility timeout to at least six times the function's
/// timeout, so that retries of a throttled or slow batch do not redeliver it early.
const VISIBILITY_PER_WORKER_TIMEOUT: u32 = 6;

fn resource<'a>(template: &'a Template, logical_id: &str) -> &'a Value {
    let resource = &template.raw["Resources"][logical_id];
    assert!(!resource.is_null(), "template has no resource {logical_id}");
    resource
}

/// The tag and value of `!Tag value`, if `v` is tagged.
fn tagged(v: &Value) -> Option<(String, &Value)> {
    match v {
        Value::Tagged(t) => Some((t.tag.to_string().trim_start_matches('!').to_owned(), &t.value)),
        _ => None,
    }
}

/// A number of the template: a literal, a quoted literal, or `!Ref` to a parameter's default.
fn number(template: &Template, v: &Value) -> u64 {
    if let Some((tag, name)) = tagged(v)
        && tag == "Ref"
    {
        let name = name.as_str().expect("!Ref names a parameter");
        let parameter = &template.raw["Parameters"][name];
        assert!(!parameter.is_null(), "!Ref {name} is no parameter");
        return number(template, &parameter["Default"]);
    }
    v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).unwrap_or_else(|| panic!("not a number: {v:?}"))
}

/// A function's `Timeout`, or the `Globals` one.
fn timeout(template: &Template, logical_id: &str) -> Duration {
    let own = &resource(template, logical_id)["Properties"]["Timeout"];
    let value = if own.is_null() { &template.raw["Globals"]["Function"]["Timeout"] } else { own };
    Duration::from_secs(number(template, value))
}

/// A variable of a function's environment, its own or the `Globals` one.
fn env<'a>(template: &'a Template, logical_id: &str, name: &str) -> Option<&'a Value> {
    let own = &resource(template, logical_id)["Properties"]["Environment"]["Variables"][name];
    let global = &template.raw["Globals"]["Function"]["Environment"]["Variables"][name];
    [own, global].into_iter().find(|v| !v.is_null())
}

/// The functions whose environment has the Stripe key: (logical id, binary).
fn stripe_callers(template: &Template) -> Vec<(String, String)> {
    template.functions.iter().filter(|(id, _)| env(template, id, vars::STRIPE_SECRET_KEY).is_some()).cloned().collect()
}

/// The longest one Stripe call of this function can take, by its `STRIPE_TIMEOUT_MS` and
/// `STRIPE_MAX_RETRIES` and the client's backoff ([`RetryPolicy`]).
fn stripe_call_worst_case(template: &Template, logical_id: &str) -> Duration {
    let var = |name| {
        let value = env(template, logical_id, name)
            .unwrap_or_else(|| panic!("{logical_id} calls Stripe but its environment sets no {name}"));
        number(template, value)
    };
    let per_attempt = Duration::from_millis(var(vars::STRIPE_TIMEOUT_MS));
    let max_retries = u32::try_from(var(vars::STRIPE_MAX_RETRIES)).unwrap();
    RetryPolicy { max_retries, ..RetryPolicy::default() }.worst_case(per_attempt)
}

#[test]
fn every_stripe_calling_function_sets_its_stripe_timeout_and_retries() {
    let template = Template::load(&template_path()).unwrap();
    let callers = stripe_callers(&template);

    let binaries: BTreeSet<&str> = callers.iter().map(|(_, binary)| binary.as_str()).collect();
    assert_eq!(binaries, BTreeSet::from(["checkout", "ops", "sync", "webhook-worker"]));
    for (id, _) in &callers {
        for name in [vars::STRIPE_TIMEOUT_MS, vars::STRIPE_MAX_RETRIES] {
            let own = &resource(&template, id)["Properties"]["Environment"]["Variables"][name];
            assert!(!own.is_null(), "{id} calls Stripe but does not set {name} (the defaults outlive its timeout)");
        }
    }
}

#[test]
fn stripe_calls_fit_every_function_timeout() {
    let template = Template::load(&template_path()).unwrap();

    for (id, binary) in stripe_callers(&template) {
        let call = stripe_call_worst_case(&template, &id);
        let timeout = timeout(&template, &id);
        match binary.as_str() {
            "checkout" => {
                assert!(timeout <= CHECKOUT_MAX_TIMEOUT, "{id}: Timeout {timeout:?} outlives API Gateway's 30 s");
                let request = call * CHECKOUT_STRIPE_CALLS + CHECKOUT_MARGIN;
                assert!(
                    request <= timeout,
                    "{id}: {CHECKOUT_STRIPE_CALLS} Stripe calls of {call:?} plus {CHECKOUT_MARGIN:?} take {request:?}, over its Timeout {timeout:?}"
                );
            }
            "ops" => {
                // A replay reads the event, then applies it as the worker does.
                assert!(timeout <= CHECKOUT_MAX_TIMEOUT, "{id}: Timeout {timeout:?} outlives API Gateway's 30 s");
                let replay = call * (1 + WORKER_STRIPE_CALLS_PER_RECORD) + CHECKOUT_MARGIN;
                assert!(
                    replay <= timeout,
                    "{id}: a replay's {} Stripe calls of {call:?} plus {CHECKOUT_MARGIN:?} take {replay:?}, over its Timeout {timeout:?}",
                    1 + WORKER_STRIPE_CALLS_PER_RECORD
                );
                assert!(
                    ops::REDRIVE_BUDGET + CHECKOUT_MARGIN <= timeout,
                    "{id}: a redrive's budget outlives its Timeout"
                );
            }
            "webhook-worker" => {
                let record = call * WORKER_STRIPE_CALLS_PER_RECORD + WORKER_MARGIN;
                let guard = webhook_worker::DEADLINE_MARGIN;
                assert!(
                    record <= guard && guard < timeout,
                    "{id}: one record's {WORKER_STRIPE_CALLS_PER_RECORD} Stripe calls of {call:?} plus {WORKER_MARGIN:?} take {record:?}: the worker stops starting records {guard:?} before its Timeout {timeout:?}, which must cover that and leave time to work"
                );
            }
            "sync" => {
                assert!(sync::DEADLINE_MARGIN < timeout, "{id}: Timeout {timeout:?} leaves the run no time");
                let last_unit = call * SYNC_STRIPE_CALLS_PER_UNIT + SYNC_SAVE_MARGIN;
                assert!(
                    last_unit <= sync::DEADLINE_MARGIN,
                    "{id}: one unit's {SYNC_STRIPE_CALLS_PER_UNIT} Stripe calls of {call:?} plus {SYNC_SAVE_MARGIN:?} to save take {last_unit:?}, over the run's deadline margin {:?}",
                    sync::DEADLINE_MARGIN
                );
            }
            other => panic!("{id} ({other}) calls Stripe, but this test knows no time budget for it"),
        }
    }
}

/// The worker's SQS event source: its `Properties`.
fn worker_event_source(template: &Template) -> &Value {
    let events = resource(template, "WebhookWorkerFunction")["Properties"]["Events"].as_mapping().unwrap();
    let mut sqs = events.values().filter(|e| e["Type"].as_str() == Some("SQS"));
    let source = sqs.next().expect("the worker has an SQS event source");
    assert!(sqs.next().is_none(), "the worker has one SQS event source");
    &source["Properties"]
}

#[test]
fn events_queue_visibility_is_six_worker_timeouts() {
    let template = Template::load(&template_path()).unwrap();
    let (tag, target) = tagged(&worker_event_source(&template)["Queue"]).expect("Queue: !GetAtt <queue>.Arn");
    assert_eq!(tag, "GetAtt");
    let queue_id = target.as_str().unwrap().trim_end_matches(".Arn");
    let queue = template.queues.iter().find(|q| q.logical_id == queue_id).unwrap();

    let visibility = Duration::from_secs(queue.visibility_timeout.expect("VisibilityTimeout").try_into().unwrap());
    let worker = timeout(&template, "WebhookWorkerFunction");

    assert_eq!(queue_id, "EventsQueue");
    assert!(
        visibility >= worker * VISIBILITY_PER_WORKER_TIMEOUT,
        "EventsQueue VisibilityTimeout {visibility:?} is under {VISIBILITY_PER_WORKER_TIMEOUT} x the worker's Timeout {worker:?}"
    );
}

// ---- Concurrency: a burst of events stays under Stripe's rate limits ----

/// Lambda's lower bound for an SQS event source's `MaximumConcurrency`.
const LAMBDA_MIN_MAXIMUM_CONCURRENCY: u64 = 2;
/// Stripe's global rate limit in test mode (sandboxes): 25 requests/s
/// (docs.stripe.com/rate-limits; ../shared/STRIPE-NOTES.md). Live mode allows 100.
const STRIPE_TEST_MODE_REQUESTS_PER_SECOND: u64 = 25;
/// Stripe's default limit per endpoint, in live mode too: 25 requests/s. Nearly every read of
/// the worker is one endpoint, `GET /v1/subscriptions`.
const STRIPE_ENDPOINT_REQUESTS_PER_SECOND: u64 = 25;
/// Stripe reads one worker instance makes per second at most: it handles its batch one record
/// after another, and a record that reads Stripe takes at least about 200 ms (the Stripe round
/// trip and its DynamoDB transaction). Coalescing reads per customer per batch only lowers it.
const WORKER_READS_PER_SECOND: u64 = 5;

#[test]
fn worker_concurrency_is_bounded_under_stripe_rate_limits() {
    let template = Template::load(&template_path()).unwrap();
    let maximum = &worker_event_source(&template)["ScalingConfig"]["MaximumConcurrency"];
    assert!(!maximum.is_null(), "the worker's SQS event source has no ScalingConfig.MaximumConcurrency");
    // The default, and the largest value the template accepts.
    let (default, largest) = match tagged(maximum) {
        Some((tag, name)) if tag == "Ref" => {
            let parameter = &template.raw["Parameters"][name.as_str().unwrap()];
            let min = number(&template, &parameter["MinValue"]);
            assert!(min >= LAMBDA_MIN_MAXIMUM_CONCURRENCY, "MinValue {min} is under Lambda's minimum");
            (number(&template, &parameter["Default"]), number(&template, &parameter["MaxValue"]))
        }
        _ => (number(&template, maximum), number(&template, maximum)),
    };
    // The sync pauses `sync::PACING` between its list calls.
    let sync_reads_per_second = u64::try_from(Duration::from_secs(1).as_millis() / sync::PACING.as_millis()).unwrap();

    assert!(default >= LAMBDA_MIN_MAXIMUM_CONCURRENCY, "MaximumConcurrency {default} is under Lambda's minimum");
    assert!(
        default * WORKER_READS_PER_SECOND + sync_reads_per_second < STRIPE_TEST_MODE_REQUESTS_PER_SECOND,
        "{default} workers ({WORKER_READS_PER_SECOND} reads/s each) and the sync ({sync_reads_per_second}/s) leave checkout nothing of Stripe's test-mode {STRIPE_TEST_MODE_REQUESTS_PER_SECOND}/s"
    );
    assert!(
        largest * WORKER_READS_PER_SECOND <= STRIPE_ENDPOINT_REQUESTS_PER_SECOND,
        "{largest} workers ({WORKER_READS_PER_SECOND} reads/s each) exceed Stripe's {STRIPE_ENDPOINT_REQUESTS_PER_SECOND}/s on listing subscriptions"
    );
}

// ---- Alarms reach someone ----

fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).unwrap()
}

fn alarms(template: &Template) -> Vec<(String, &Value)> {
    let resources = template.raw["Resources"].as_mapping().unwrap();
    resources
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::CloudWatch::Alarm"))
        .map(|(id, r)| (id.as_str().unwrap().to_owned(), &r["Properties"]))
        .collect()
}

#[test]
fn every_alarm_notifies_the_alarm_topic() {
    let template = Template::load(&template_path()).unwrap();
    let topic = yaml("!If [CreateAlarmTopic, !Ref AlarmTopic, !Ref AlarmTopicArn]");

    let all = alarms(&template);
    assert!(!all.is_empty());
    for (id, alarm) in all {
        for actions in ["AlarmActions", "OKActions"] {
            assert_eq!(alarm[actions], Value::Sequence(vec![topic.clone()]), "{id}: {actions}");
        }
    }
    // The stack's own topic exactly when no topic is given, under a key CloudWatch may use:
    // alarms cannot publish to a topic under the AWS-managed alias/aws/sns.
    assert_eq!(template.raw["Parameters"]["AlarmTopicArn"]["Default"].as_str(), Some(""));
    assert_eq!(template.raw["Conditions"]["CreateAlarmTopic"], yaml("!Equals [!Ref AlarmTopicArn, \"\"]"));
    let own = resource(&template, "AlarmTopic");
    assert_eq!(own["Type"].as_str(), Some("AWS::SNS::Topic"));
    assert_eq!(own["Condition"].as_str(), Some("CreateAlarmTopic"));
    assert_eq!(own["Properties"]["KmsMasterKeyId"], yaml("!Ref AlarmTopicKey"));
    let key = resource(&template, "AlarmTopicKey");
    assert_eq!(key["Condition"].as_str(), Some("CreateAlarmTopic"));
    let grants = key["Properties"]["KeyPolicy"]["Statement"].as_sequence().unwrap();
    assert!(
        grants.iter().any(|s| s["Principal"]["Service"].as_str() == Some("cloudwatch.amazonaws.com")
            && s["Action"].as_sequence().is_some_and(|a| a.contains(&yaml("kms:GenerateDataKey*")))),
        "the alarm topic's key does not let CloudWatch publish"
    );
    assert_eq!(template.raw["Outputs"]["AlarmTopicArn"]["Value"], topic);
}

/// The custom metrics' namespace: the worker and the sync emit under `METRICS_NAMESPACE`.
const METRICS_NAMESPACE: &str = "!Sub Tollgate/${AWS::StackName}";

#[test]
fn the_runbook_alarms_watch_what_the_readme_says() {
    let template = Template::load(&template_path()).unwrap();
    let gt = "GreaterThanThreshold";
    // (logical id, namespace, metric, statistic, dimension (name, value), threshold)
    let expected = [
        (
            "EventsDeadLetterAlarm",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "Maximum",
            Some(("QueueName", "!GetAtt EventsDeadLetterQueue.QueueName")),
            0,
        ),
        (
            "NotificationsDeadLetterAlarm",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "Maximum",
            Some(("QueueName", "!GetAtt NotificationsDeadLetterQueue.QueueName")),
            0,
        ),
        (
            "EventsQueueAgeAlarm",
            "AWS/SQS",
            "ApproximateAgeOfOldestMessage",
            "Maximum",
            Some(("QueueName", "!GetAtt EventsQueue.QueueName")),
            15 * 60,
        ),
        (
            "WebhookIntake5xxAlarm",
            "AWS/Lambda",
            "Url5xxCount",
            "Sum",
            Some(("FunctionName", "!Ref WebhookIntakeFunction")),
            0,
        ),
        ("WorkerErrorsAlarm", "AWS/Lambda", "Errors", "Sum", Some(("FunctionName", "!Ref WebhookWorkerFunction")), 0),
        ("SyncErrorsAlarm", "AWS/Lambda", "Errors", "Sum", Some(("FunctionName", "!Ref SyncFunction")), 0),
        ("EventsUnprocessableAlarm", METRICS_NAMESPACE, "EventsUnprocessable", "Sum", None, 0),
        ("MeterReportsFailedAlarm", METRICS_NAMESPACE, "MeterReportsFailed", "Sum", None, 0),
        ("MeterDriftAlarm", METRICS_NAMESPACE, "MeterDrift", "Sum", None, 0),
        ("MeterReportLagAlarm", METRICS_NAMESPACE, "MeterReportLag", "Maximum", None, 3600),
    ];

    for (id, namespace, metric, statistic, dimension, threshold) in expected {
        let alarm = &resource(&template, id)["Properties"];
        assert_eq!(alarm["Namespace"], yaml(namespace), "{id}");
        assert_eq!(alarm["MetricName"].as_str(), Some(metric), "{id}");
        assert_eq!(alarm["Statistic"].as_str(), Some(statistic), "{id}");
        assert_eq!(alarm["ComparisonOperator"].as_str(), Some(gt), "{id}");
        assert_eq!(number(&template, &alarm["Threshold"]), threshold, "{id}");
        let dimensions = match dimension {
            Some((name, value)) => yaml(&format!("[{{Name: {name}, Value: {value}}}]")),
            None => Value::Null,
        };
        assert_eq!(alarm["Dimensions"], dimensions, "{id}");
    }
    let ids: BTreeSet<String> = alarms(&template).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, expected.iter().map(|e| e.0.to_owned()).collect(), "alarms this test does not list");
    for function in ["WebhookWorkerFunction", "SyncFunction"] {
        assert_eq!(env(&template, function, "METRICS_NAMESPACE"), Some(&yaml(METRICS_NAMESPACE)), "{function}");
    }
}

/// The DynamoDB actions each function's store calls need (the adapter's requests: `Query` for
/// the account's state and prefixes; `TransactWriteItems` needs the action of each element,
/// `ConditionCheckItem` included; `UpdateItem` takes a rate window), and nothing more.
const DYNAMODB_ACTIONS: &[(&str, &[&str])] = &[
    // The state (Query); a new window's plan credit grant with its ledger entry (PutItem).
    ("subscription", &["dynamodb:PutItem", "dynamodb:Query"]),
    // The state (Query), the consumption (PutItem and UpdateItem in a transaction; a refund is
    // two UpdateItems), the counts (BatchGetItem), a replayed key's record (GetItem).
    (
        "usage",
        &["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"],
    ),
    // The key (GetItem), the account's state for the tier (Query), last_used_at (UpdateItem).
    ("authorizer", &["dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"]),
    // A key by id (GetItem), the listing (Query), new items (PutItem in a transaction), revoke,
    // rotate and the slot count (UpdateItem).
    ("keys", &["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"]),
    // ... and DELETE /account's purge in pages (BatchWriteItem).
    (
        "checkout",
        &[
            "dynamodb:BatchWriteItem",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:DeleteItem",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
            "dynamodb:ConditionCheckItem",
        ],
    ),
    (
        "webhook-worker",
        &[
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:DeleteItem",
            "dynamodb:Query",
            "dynamodb:ConditionCheckItem",
            // A credit pack's grant reversed on a refund of its charge.
            "dynamodb:UpdateItem",
        ],
    ),
    // The failure list (Query), a replay through the worker's path (as the worker).
    (
        "ops",
        &[
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:DeleteItem",
            "dynamodb:Query",
            "dynamodb:ConditionCheckItem",
            "dynamodb:UpdateItem",
        ],
    ),
    // ... and the deletions it finishes (BatchWriteItem).
    (
        "sync",
        &[
            "dynamodb:BatchWriteItem",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:DeleteItem",
            "dynamodb:Query",
            "dynamodb:ConditionCheckItem",
            // A credit pack's grant reversed on a refund of its charge.
            "dynamodb:UpdateItem",
        ],
    ),
];

#[test]
fn every_function_may_make_exactly_the_dynamodb_calls_its_store_makes() {
    let template = Template::load(&template_path()).unwrap();

    for (id, binary) in &template.functions {
        let list = |v: &Value| v.as_sequence().cloned().unwrap_or_default();
        let granted: BTreeSet<String> = list(&resource(&template, id)["Properties"]["Policies"])
            .iter()
            .flat_map(|p| list(&p["Statement"]))
            .flat_map(|s| list(&s["Action"]))
            .filter_map(|a| a.as_str().map(str::to_owned))
            .filter(|a| a.starts_with("dynamodb:"))
            .collect();
        let needed: BTreeSet<String> = DYNAMODB_ACTIONS
            .iter()
            .find(|(b, _)| b == binary)
            .map(|(_, actions)| actions.iter().map(|a| (*a).to_owned()).collect())
            .unwrap_or_default();
        assert_eq!(granted, needed, "{id} ({binary})");
    }
}

// ---- API keys: the /api routes, their authorizer, its cache ----

/// The binary of the Lambda authorizer of the `/api/...` routes.
const KEY_AUTHORIZER: &str = "authorizer";

#[test]
fn the_api_routes_and_only_they_are_behind_the_key_authorizer_each_with_a_scope() {
    let template = Template::load(&template_path()).unwrap();

    let api: Vec<_> = template.routes.iter().filter(|r| r.path.starts_with("/api/")).collect();
    assert!(!api.is_empty());
    for route in &template.routes {
        let key = format!("{} {}", route.method, route.path);
        if route.path.starts_with("/api/") {
            assert_eq!(route.authorizer.as_deref(), Some(KEY_AUTHORIZER), "{key} must take an API key");
            assert!(required_scope(&key).is_some(), "{key} needs a scope in apikeys::API_ROUTE_SCOPES");
        } else {
            assert_eq!(route.authorizer, None, "{key} stays on the JWT authorizer");
        }
    }
    assert!(template.routes.iter().any(|r| r.binary == "keys" && r.path == "/api-keys" && r.authorizer.is_none()));
}

#[test]
fn each_route_set_has_its_own_authorizer_and_only_the_operator_set_moves_money() {
    let template = Template::load(&template_path()).unwrap();

    for route in &template.routes {
        let key = format!("{} {}", route.method, route.path);
        if route.path.starts_with("/operator/") {
            assert!(route.iam && route.authorizer.is_none() && !route.public, "{key} must be AWS_IAM");
        } else if route.path.starts_with("/api/") {
            assert!(!route.iam && route.authorizer.as_deref() == Some(KEY_AUTHORIZER), "{key} must take an API key");
        } else if PUBLIC_ROUTES.contains(&key.as_str()) {
            assert!(route.public && !route.iam, "{key} is public");
        } else {
            assert!(!route.iam && !route.public && route.authorizer.is_none(), "{key} stays on the JWT authorizer");
        }
    }
    // The customer sets read and check; every write that changes a count or a balance is IAM's.
    let metering: Vec<String> = template
        .routes
        .iter()
        .filter(|r| r.binary == "usage" && r.method != "GET" && !r.path.ends_with("/check"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(metering.len() >= 6, "{metering:?}");
    assert!(metering.iter().all(|route| route.starts_with("POST /operator/")), "{metering:?}");
    assert!(template.raw["Resources"]["HttpApi"]["Properties"]["Auth"]["EnableIamAuthorizer"].as_bool() == Some(true));
    assert_eq!(
        template.raw["Outputs"]["OperatorRoutesArn"]["Value"],
        yaml(r#"!Sub "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${HttpApi}/*/*/operator/*""#)
    );
}

/// The routes API Gateway answers without any authorizer.
const PUBLIC_ROUTES: &[&str] = &["GET /plans"];

#[test]
fn only_the_pricing_table_is_public() {
    let template = Template::load(&template_path()).unwrap();

    let public: Vec<String> =
        template.routes.iter().filter(|r| r.public).map(|r| format!("{} {}", r.method, r.path)).collect();

    assert_eq!(public, PUBLIC_ROUTES, "a public route must be meant to be public");
}

#[test]
fn the_key_authorizer_caches_nothing_past_the_revocation_bound() {
    let template = Template::load(&template_path()).unwrap();
    let authorizers = template.raw["Resources"]["HttpApi"]["Properties"]["Auth"]["Authorizers"].as_mapping().unwrap();
    let function = "!GetAtt AuthorizerFunction.Arn";

    let (name, authorizer) = authorizers
        .iter()
        .find(|(_, a)| a["FunctionArn"] == yaml(function))
        .expect("an HttpApi authorizer runs AuthorizerFunction");
    let identity = &authorizer["Identity"];

    // SAM's default when ReauthorizeEvery is left out is 300 s: it must be set.
    let ttl = identity["ReauthorizeEvery"].as_i64().expect("ReauthorizeEvery is set (SAM defaults to 300 s)");
    assert!(
        (0..=REVOCATION_BOUND_SECONDS).contains(&ttl),
        "{name:?} caches {ttl} s, over the {REVOCATION_BOUND_SECONDS} s bound"
    );
    assert_eq!(identity["Headers"], yaml("[Authorization]"), "{name:?}: a request without the header gets 401");
    assert_eq!(authorizer["EnableSimpleResponses"].as_bool(), Some(true));
    assert_eq!(authorizer["AuthorizerPayloadFormatVersion"].as_str(), Some("2.0"));
    assert_eq!(template.raw["Outputs"]["ApiKeyAuthorizerArn"]["Value"], yaml(function));
}

#[test]
fn no_function_logs_at_trace_where_the_runtime_logs_raw_events() {
    let template = Template::load(&template_path()).unwrap();
    let global = &template.raw["Globals"]["Function"]["LoggingConfig"]["ApplicationLogLevel"];

    for (id, _) in &template.functions {
        let own = &resource(&template, id)["Properties"]["LoggingConfig"]["ApplicationLogLevel"];
        let level = if own.is_null() { global } else { own };
        // lambda_runtime logs each raw event at TRACE: an API key or JWT in its headers.
        assert!(
            level.as_str().is_some_and(|l| !l.eq_ignore_ascii_case("TRACE")),
            "{id}: ApplicationLogLevel {level:?} would log every request's Authorization header"
        );
    }
}

#[test]
fn browsers_on_the_allowed_origins_may_call_every_route_method() {
    let template = Template::load(&template_path()).unwrap();
    let cors = &template.raw["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"];

    assert_eq!(cors["AllowOrigins"], yaml(r#"!Split [",", !Ref AllowedRedirectOrigins]"#));
    let parsed = template.cors.as_ref().expect("the local runner reads the CORS configuration");
    for route in &template.routes {
        assert!(parsed.methods.contains(&route.method), "{} {} is not allowed to browsers", route.method, route.path);
    }
    for header in ["authorization", "content-type"] {
        assert!(parsed.headers.iter().any(|h| h == header), "{header}");
    }
    assert!(
        !parsed.headers.iter().any(|h| h.starts_with("x-tollgate")),
        "the development headers are the local runner's only"
    );
}
