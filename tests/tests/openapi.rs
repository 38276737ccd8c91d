//! The OpenAPI document (`openapi.json`): it is the one the Rust types make, it documents
//! exactly the routes `template.yaml` declares, the local stack serves it, and what the
//! handlers answer over HTTP, successes and errors, validates against it.

mod common;

use serde_json::{Value, json};
use std::collections::BTreeSet;
use tollgate::edge::openapi::{Route, routes};
use tollgate::edge::webhook::DEV_WEBHOOK_SECRET;
use tollgate_dev::resources::Template;
use tollgate_standin::TriggerSpec;

fn repo_file(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(name)
}

fn committed() -> Value {
    serde_json::from_str(&std::fs::read_to_string(repo_file("openapi.json")).unwrap()).unwrap()
}

#[test]
fn the_committed_document_is_the_one_the_types_make() {
    let text = std::fs::read_to_string(repo_file("openapi.json")).unwrap();

    assert!(text == tollgate::edge::openapi::json(), "openapi.json is stale: run `make openapi` and commit it");
    assert_eq!(committed()["openapi"], "3.1.0");
}

/// The routes a template declares: its HTTP API events, and the webhook intake's function URL.
fn template_routes(template: &Template) -> BTreeSet<Route> {
    let mut declared: BTreeSet<Route> =
        template.routes.iter().map(|r| Route { method: r.method.clone(), path: r.path.clone() }).collect();
    if template.function_urls.iter().any(|binary| binary == "webhook-intake") {
        declared.insert(Route { method: "POST".into(), path: tollgate_dev::server::WEBHOOK_PATH.into() });
    }
    declared
}

#[test]
fn every_route_of_the_template_is_documented_and_nothing_else() {
    let template = Template::load(&repo_file("template.yaml")).unwrap();
    let documented: BTreeSet<Route> = routes().into_iter().collect();
    let in_document: BTreeSet<Route> = committed()["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object().unwrap().keys().map(|method| Route { method: method.to_uppercase(), path: path.clone() })
        })
        .collect();

    let declared = template_routes(&template);
    assert_eq!(
        declared.difference(&documented).collect::<Vec<_>>(),
        Vec::<&Route>::new(),
        "in the template, not documented"
    );
    assert_eq!(
        documented.difference(&declared).collect::<Vec<_>>(),
        Vec::<&Route>::new(),
        "documented, not in the template"
    );
    assert_eq!(in_document, documented);
}

#[test]
fn a_route_added_to_the_template_without_documentation_is_caught() {
    let text = std::fs::read_to_string(repo_file("template.yaml")).unwrap();
    let extra = text.replacen(
        "            Path: /billing/summary\n",
        "            Path: /billing/summary\n\
         \x20       Undocumented:\n\
         \x20         Type: HttpApi\n\
         \x20         Properties:\n\
         \x20           ApiId: !Ref HttpApi\n\
         \x20           Method: GET\n\
         \x20           Path: /billing/secret\n",
        1,
    );
    let template = Template::parse(&extra).unwrap();
    let documented: BTreeSet<Route> = routes().into_iter().collect();

    let missing: Vec<Route> = template_routes(&template).difference(&documented).cloned().collect();

    assert_eq!(missing, [Route { method: "GET".into(), path: "/billing/secret".into() }]);
}

/// What is wrong with `body`, answered with `status` to `method path` (the path as
/// documented, with `{id}`), by the document's schema for that answer; an undocumented status
/// is wrong.
fn violations(document: &Value, method: &str, path: &str, status: u16, body: &Value) -> Vec<String> {
    let pointer =
        format!("/paths/{}/{}/responses/{status}", path.replace('~', "~0").replace('/', "~1"), method.to_lowercase());
    let Some(response) = document.pointer(&pointer) else {
        return vec![format!("{method} {path} {status} is not documented")];
    };
    let Some(schema) = response.pointer("/content/application~1json/schema") else {
        return if body.is_null() { vec![] } else { vec![format!("{method} {path} {status} has no documented body")] };
    };
    let mut root = schema.clone();
    root["components"] = document["components"].clone();
    let validator = jsonschema::draft202012::new(&root).unwrap();
    validator.iter_errors(body).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

fn validate(document: &Value, method: &str, path: &str, status: u16, body: &Value) {
    let errors = violations(document, method, path, status, body);
    assert!(errors.is_empty(), "{method} {path} {status}: {errors:?}\n{body}");
}

#[test]
fn an_answer_that_breaks_its_schema_or_an_undocumented_status_is_caught() {
    let document = committed();
    let error = json!({"error": {"code": "invalid_usage", "message": "quantity must be positive"}});

    let consume = "/operator/accounts/{account_id}/usage";
    assert!(violations(&document, "POST", consume, 400, &error).is_empty());
    assert!(!violations(&document, "POST", consume, 400, &json!({"error": {"code": 7}})).is_empty());
    assert!(!violations(&document, "GET", "/subscription", 200, &json!({})).is_empty(), "required fields");
    assert!(!violations(&document, "GET", "/plans", 418, &error).is_empty(), "an undocumented status");
    let usage = json!({"metric": "api_calls", "used": "3", "period_start": 0, "period_end": 1});
    assert!(!violations(&document, "POST", consume, 200, &usage).is_empty(), "a count as a string");
}

struct Caller {
    base: String,
    document: Value,
    checked: std::sync::Mutex<BTreeSet<(String, String, u16)>>,
}

impl Caller {
    /// Calls `method path` (`route`: its documented form) as `account` (or with the header
    /// `auth`), validates the answer and returns it.
    async fn call(&self, method: &str, route: &str, path: &str, who: Who<'_>, body: Option<Value>) -> (u16, Value) {
        let mut request = reqwest::Client::new().request(method.parse().unwrap(), format!("{}{path}", self.base));
        request = match who {
            Who::Account(account) => request.header("x-tollgate-account", account),
            Who::Key(key) => request.header("authorization", format!("Bearer {key}")),
            Who::Operator(name) => request.header("x-tollgate-operator", name),
            Who::Nobody => request,
        };
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body: Value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() };
        validate(&self.document, method, route, status, &body);
        self.checked.lock().unwrap().insert((method.to_owned(), route.to_owned(), status));
        (status, body)
    }
}

#[derive(Clone, Copy)]
enum Who<'a> {
    Account(&'a str),
    Key(&'a str),
    /// The operator (IAM), as the local runner's development header names it.
    Operator(&'a str),
    Nobody,
}

#[tokio::test]
async fn the_local_stack_serves_the_document_and_every_route_answers_by_it() {
    let stack = common::serve_stack("openapi").await;
    let served: Value = reqwest::get(format!("{}/openapi.json", stack.base)).await.unwrap().json().await.unwrap();
    assert_eq!(served, committed(), "GET /openapi.json serves the committed document");
    let c = Caller { base: stack.base.clone(), document: committed(), checked: Default::default() };
    let a = Who::Account("acct_openapi");
    let back = format!("{}/back", stack.base);

    // Before any subscription: reads, a checkout, errors.
    c.call("GET", "/plans", "/plans", Who::Nobody, None).await;
    for path in
        ["/subscription", "/entitlements", "/credits", "/invoices", "/usage/history", "/billing/summary", "/usage"]
    {
        assert_eq!(c.call("GET", path, path, a, None).await.0, 200, "{path}");
    }
    assert_eq!(c.call("GET", "/subscription", "/subscription", Who::Nobody, None).await.0, 401);
    assert_eq!(c.call("GET", "/invoices", "/invoices?limit=0", a, None).await.0, 400);
    let plan = json!({"plan": "pro", "interval": "month", "success_url": back, "cancel_url": back});
    assert_eq!(c.call("POST", "/checkout", "/checkout", a, Some(plan.clone())).await.0, 200);
    assert_eq!(c.call("POST", "/checkout", "/checkout", a, Some(json!({"plan": "gold"}))).await.0, 400);

    // Subscribed, then every write.
    let spec = TriggerSpec::new("checkout.session.completed", "acct_openapi");
    tollgate_dev::trigger::trigger(&stack.base, DEV_WEBHOOK_SECRET, &spec, false).await.unwrap();
    stack.drain().await;
    let o = Who::Operator("openapi-backend");
    let op = |sub: &str| {
        (format!("/operator/accounts/{{account_id}}{sub}"), format!("/operator/accounts/acct_openapi{sub}"))
    };
    let usage = json!({"metric": "api_calls", "quantity": 3, "idempotency_key": "u1"});
    let (route, path) = op("/usage");
    assert_eq!(c.call("POST", &route, &path, o, Some(usage.clone())).await.0, 200);
    assert_eq!(c.call("POST", "/usage/check", "/usage/check", a, Some(usage.clone())).await.0, 200);
    let (route, path) = op("/usage/check");
    assert_eq!(c.call("POST", &route, &path, o, Some(usage)).await.0, 200);
    let (route, path) = op("/usage/refund");
    assert_eq!(c.call("POST", &route, &path, o, Some(json!({"idempotency_key": "u1"}))).await.0, 200);
    assert_eq!(c.call("POST", &route, &path, o, Some(json!({"idempotency_key": "none"}))).await.0, 404);
    let bad = json!({"metric": "api_calls", "quantity": -1, "idempotency_key": "u2"});
    let (route, path) = op("/usage");
    assert_eq!(c.call("POST", &route, &path, o, Some(bad)).await.0, 400);
    let records = json!({"records": [{"account_id": "acct_openapi", "metric": "api_calls", "quantity": 1, "idempotency_key": "b1"}]});
    assert_eq!(c.call("POST", "/operator/usage/batch", "/operator/usage/batch", o, Some(records)).await.0, 200);
    let (route, path) = op("/credits/grants");
    let grant = json!({"credits": 10, "reason": "openapi", "idempotency_key": "g1"});
    assert_eq!(c.call("POST", &route, &path, o, Some(grant)).await.0, 201);
    let consume = json!({"event": "api_call_basic", "quantity": 2, "idempotency_key": "c1"});
    let (route, path) = op("/credits/consume");
    assert_eq!(c.call("POST", &route, &path, o, Some(consume)).await.0, 200);
    let huge = json!({"event": "ai_inference", "quantity": 1_000_000, "idempotency_key": "c2"});
    assert_eq!(c.call("POST", &route, &path, o, Some(huge)).await.0, 402);
    let (route, path) = op("/credits/refund");
    assert_eq!(c.call("POST", &route, &path, o, Some(json!({"idempotency_key": "c1"}))).await.0, 200);
    let (route, path) = op("");
    assert_eq!(c.call("GET", &route, &path, o, None).await.0, 200);
    assert_eq!(c.call("GET", &route, "/operator/accounts/bad%23id", o, None).await.0, 400);
    // Operations on a bad day.
    assert_eq!(c.call("GET", "/operator/events/failed", "/operator/events/failed", o, None).await.0, 200);
    assert_eq!(c.call("GET", "/operator/events/failed", "/operator/events/failed?limit=0", o, None).await.0, 400);
    let handled = stack.standin.events().last().unwrap()["id"].as_str().unwrap().to_owned();
    let replay = "/operator/events/{event_id}/replay";
    assert_eq!(c.call("POST", replay, &format!("/operator/events/{handled}/replay"), o, None).await.0, 200);
    assert_eq!(c.call("POST", replay, "/operator/events/evt_nowhere/replay", o, None).await.0, 404);
    assert_eq!(c.call("POST", replay, "/operator/events/cus_1/replay", o, None).await.0, 400);
    let redrive = "/operator/queues/{queue}/redrive";
    assert_eq!(c.call("POST", redrive, "/operator/queues/notifications/redrive", o, None).await.0, 200);
    assert_eq!(c.call("POST", redrive, "/operator/queues/mail/redrive", o, None).await.0, 404);
    let adoption = "/operator/adoption";
    assert_eq!(c.call("GET", adoption, adoption, o, None).await.0, 200);
    assert_eq!(c.call("POST", adoption, adoption, o, Some(json!({"metadata_key": "user_id"}))).await.0, 202);
    assert_eq!(c.call("POST", adoption, adoption, o, Some(json!({}))).await.0, 409);
    assert_eq!(c.call("POST", adoption, adoption, o, Some(json!({"map": [["cus_1", "a#b"]]}))).await.0, 400);
    assert_eq!(c.call("GET", adoption, adoption, o, None).await.1["state"], "running");
    let pack = json!({"pack": "credits_1000", "success_url": back, "cancel_url": back});
    assert_eq!(c.call("POST", "/credits/checkout", "/credits/checkout", a, Some(pack)).await.0, 200);
    assert_eq!(c.call("POST", "/portal", "/portal", a, Some(json!({"return_url": back}))).await.0, 200);
    let team = json!({"plan": "team", "interval": "month"});
    assert_eq!(c.call("POST", "/subscription/change", "/subscription/change", a, Some(team)).await.0, 200);
    for path in ["/subscription", "/credits", "/invoices", "/usage/history", "/billing/summary"] {
        assert_eq!(c.call("GET", path, path, a, None).await.0, 200, "{path}");
    }

    // API keys, and the /api routes with one.
    let (status, created) = c
        .call(
            "POST",
            "/api-keys",
            "/api-keys",
            a,
            Some(json!({"name": "ci", "scopes": ["usage:read", "subscription:read"]})),
        )
        .await;
    assert_eq!(status, 201);
    let (key, id) = (created["key"].as_str().unwrap().to_owned(), created["id"].as_str().unwrap().to_owned());
    assert_eq!(c.call("GET", "/api-keys", "/api-keys", a, None).await.0, 200);
    let k = Who::Key(&key);
    for path in ["/api/subscription", "/api/credits", "/api/invoices", "/api/usage"] {
        assert_eq!(c.call("GET", path, path, k, None).await.0, 200, "{path}");
    }
    let usage = json!({"metric": "api_calls", "quantity": 1, "idempotency_key": "k1"});
    assert_eq!(c.call("POST", "/api/usage/check", "/api/usage/check", k, Some(usage)).await.0, 200);
    let rotate = format!("/api-keys/{id}/rotate");
    let (status, rotated) = c.call("POST", "/api-keys/{id}/rotate", &rotate, a, Some(json!({}))).await;
    assert_eq!(status, 201);
    let new_id = rotated["id"].as_str().unwrap().to_owned();
    assert_eq!(c.call("DELETE", "/api-keys/{id}", &format!("/api-keys/{new_id}"), a, None).await.0, 200);
    assert_eq!(c.call("DELETE", "/api-keys/{id}", "/api-keys/key_unknown", a, None).await.0, 404);

    // The webhook intake (a redelivery of an event Stripe sent, then one unsigned), then the
    // end of the account.
    let event = stack.standin.events().last().unwrap().to_string();
    let now = tollgate::ports::clock::Clock::now(&tollgate::ports::clock::SystemClock);
    let signature = tollgate::testing::signature_header(&event, DEV_WEBHOOK_SECRET, now);
    let response = reqwest::Client::new()
        .post(format!("{}/webhooks/stripe", stack.base))
        .header("Stripe-Signature", signature)
        .body(event)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let ack: Value = response.json().await.unwrap();
    validate(&c.document, "POST", "/webhooks/stripe", status, &ack);
    assert_eq!((status, &ack["received"]), (200, &json!(true)));
    let (status, _) = c.call("POST", "/webhooks/stripe", "/webhooks/stripe", Who::Nobody, Some(json!({}))).await;
    assert_eq!(status, 400, "no signature");
    let at_end = json!({"at_period_end": true});
    assert_eq!(c.call("POST", "/subscription/cancel", "/subscription/cancel", a, Some(at_end)).await.0, 200);
    assert_eq!(c.call("DELETE", "/account", "/account", a, None).await.0, 200);

    let checked = c.checked.lock().unwrap();
    let covered: BTreeSet<Route> =
        checked.iter().map(|(method, path, _)| Route { method: method.clone(), path: path.clone() }).collect();
    let missing: Vec<Route> = routes().into_iter().filter(|r| !covered.contains(r)).collect();
    assert_eq!(missing, Vec::<Route>::new(), "every documented route answered and was validated");
}
