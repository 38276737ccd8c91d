//! API Gateway and the function URL as the local stack plays them ([`App`]): every HTTP
//! function's real handler under the routes `template.yaml` declares (its `HttpApi` events; the
//! function URL at [`WEBHOOK_PATH`]). Each function is built by its own `wire` from its real
//! `Config::load`, given the local values ([`LocalEnv`]), so a setting that would fail in
//! Lambda fails here too. Requests are turned into the API Gateway events the handlers get in
//! Lambda. On the JWT routes the caller's identity comes from the development header
//! `x-tollgate-account`, which only this runner reads (it becomes the JWT claim API Gateway's
//! authorizer would have verified, and the header itself is removed); on the routes of a
//! Lambda authorizer (`/api/...`) it comes from that authorizer, run on the request's
//! `Authorization` header as API Gateway runs it ([`crate::authorize`]).
//! On the `AWS_IAM` (operator) routes the IAM principal comes from the development header
//! `x-tollgate-operator` (without it: API Gateway's `403 {"message":"Forbidden"}`); it too is
//! removed from every request. A route or method the template does not declare answers API
//! Gateway's `404 {"message":"Not Found"}`.

use crate::authorize::{AuthorizerHandler, authorize, authorizer_function};
use crate::clock::StackClock;
use crate::env::LocalEnv;
use crate::resources::{Resources, Template};
use anyhow::{Context, bail};
use axum::body::Body as AxumBody;
use axum::extract::{Request as AxumRequest, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response as AxumResponse};
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tollgate::adapters::dynamo::DynamoStore;
use tollgate::adapters::sqs::SqsEventQueue;
use tollgate::adapters::sqs::SqsNotifier;
use tollgate::adapters::stripe::StripeBilling;
use tollgate::app::events::EventDeps;
use tollgate::app::sync::SyncDeps;
use tollgate::edge::config::{IdentityConfig, Source, vars};
use tollgate::ports::clock::{Clock, SystemClock};
use tollgate_standin::StandIn;

/// The development identity header, honoured by this runner only.
pub const ACCOUNT_HEADER: &str = "x-tollgate-account";

/// The development operator header: on the `AWS_IAM` routes only, the name of the IAM
/// principal API Gateway would have verified from a SigV4 signature. Honoured by this runner
/// only, and removed from every request before its handler.
pub const OPERATOR_HEADER: &str = "x-tollgate-operator";

/// Where the local stack serves the function URL of the webhook intake.
pub const WEBHOOK_PATH: &str = "/webhooks/stripe";

/// The largest body the runner passes on; handlers enforce their own, smaller limits.
const MAX_FORWARDED_BODY: usize = 1024 * 1024;

type Answer = Pin<Box<dyn Future<Output = Result<lambda_http::Response<Body>, lambda_http::Error>> + Send>>;

/// One HTTP function's handler, as the runner calls it.
pub type HttpHandler = Arc<dyn Fn(lambda_http::Request) -> Answer + Send + Sync>;

/// Wraps a function crate's `wire` and `handle` into an [`HttpHandler`].
macro_rules! http_function {
    ($krate:ident, $src:expr, $aws:expr, $clock:expr) => {{
        let deps = Arc::new(
            $krate::wire($src, $aws, Arc::clone($clock)).map_err(|e| anyhow::anyhow!("{}: {e}", stringify!($krate)))?,
        );
        let handler: HttpHandler = Arc::new(move |req| {
            let deps = Arc::clone(&deps);
            Box::pin(async move { $krate::handle(&deps, req).await })
        });
        handler
    }};
}

/// The HTTP function whose binary is `binary`, its use cases on `clock`.
fn http_function(
    binary: &str,
    src: &LocalEnv,
    aws: &aws_config::SdkConfig,
    clock: &Arc<dyn Clock>,
) -> anyhow::Result<HttpHandler> {
    Ok(match binary {
        "subscription" => http_function!(subscription, src, aws, clock),
        "checkout" => http_function!(checkout, src, aws, clock),
        "keys" => http_function!(keys, src, aws, clock),
        "usage" => http_function!(usage, src, aws, clock),
        "ops" => http_function!(ops, src, aws, clock),
        "webhook-intake" => http_function!(webhook_intake, src, aws, clock),
        other => bail!("template.yaml routes to {other}, which the local runner does not know"),
    })
}

/// One route of the HTTP API: its method, its function, and its Lambda authorizer (`None`:
/// the JWT authorizer, whose claim the development header stands in for).
#[derive(Clone)]
struct Route {
    method: String,
    handler: HttpHandler,
    authorizer: Option<AuthorizerHandler>,
    /// No authorizer at all: no identity reaches the handler.
    public: bool,
    /// API Gateway's `AWS_IAM`: only a SigV4-signed IAM principal gets through.
    iam: bool,
}

/// Everything the local stack serves.
pub struct App {
    pub store: DynamoStore,
    pub events_queue: SqsEventQueue,
    pub identity: IdentityConfig,
    /// Path -> the functions serving it, by method (`ANY` matches every method).
    routes: BTreeMap<String, Vec<Route>>,
    pub worker: EventDeps<DynamoStore, StripeBilling, SqsNotifier>,
    pub sync: SyncDeps<DynamoStore, StripeBilling, SqsNotifier>,
    /// The stack's clock (`App::new`); `None` for an app on the system clock.
    pub clock: Option<Arc<StackClock>>,
    /// The Stripe stand-in on the stack's clock (`App::new` without `STRIPE_SECRET_KEY`): the
    /// router nests it under `/stripe`, and clock moves play its time ([`crate::travel`]).
    pub standin: Option<StandIn>,
    /// Clock moves run the sync once per stack-time day crossed and once at the end
    /// (`up --sync-every`); off: the sync runs only when asked.
    pub sync_follows_clock: bool,
    pub sqs: aws_sdk_sqs::Client,
    pub events_url: String,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub table: String,
    /// The secret the local intake verifies with (its first), to sign deliveries of clock moves.
    pub(crate) signing_secret: String,
    /// The HTTP API's CORS configuration with its origins (`ALLOWED_REDIRECT_ORIGINS`).
    cors: Option<LocalCors>,
}

/// CORS as API Gateway plays it for the template's `CorsConfiguration`: the origins are those
/// of `ALLOWED_REDIRECT_ORIGINS` (the template's `!Split` of `AllowedRedirectOrigins`); the local
/// development identity headers are allowed too (a page on another local origin sends them).
#[derive(Debug, Clone)]
struct LocalCors {
    origins: Vec<String>,
    methods: String,
    headers: Vec<String>,
    max_age: u64,
}

impl LocalCors {
    fn new(template: &crate::resources::Cors, origins: Option<String>) -> Self {
        let mut headers = template.headers.clone();
        headers.extend([ACCOUNT_HEADER.to_owned(), OPERATOR_HEADER.to_owned()]);
        Self {
            origins: origins
                .unwrap_or_default()
                .split(',')
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty())
                .collect(),
            methods: template.methods.join(","),
            headers,
            max_age: template.max_age,
        }
    }

    /// The request's origin, when it is one of the allowed.
    fn allowed(&self, headers: &axum::http::HeaderMap) -> Option<String> {
        let origin = headers.get(axum::http::header::ORIGIN)?.to_str().ok()?;
        self.origins.iter().any(|o| o == origin).then(|| origin.to_owned())
    }

    /// The answer to a preflight: 204, with the CORS headers when the origin, the method and
    /// every header asked for are allowed (without them the browser refuses the request).
    fn preflight(&self, headers: &axum::http::HeaderMap) -> AxumResponse {
        use axum::http::header::{ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD};
        let method = headers.get(ACCESS_CONTROL_REQUEST_METHOD).and_then(|m| m.to_str().ok()).unwrap_or_default();
        let asked = headers.get(ACCESS_CONTROL_REQUEST_HEADERS).and_then(|h| h.to_str().ok()).unwrap_or_default();
        let headers_ok = asked
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .all(|h| self.headers.contains(&h));
        let method_ok = self.methods.split(',').any(|m| m.eq_ignore_ascii_case(method));
        let mut response = StatusCode::NO_CONTENT.into_response();
        if let Some(origin) = self.allowed(headers).filter(|_| method_ok && headers_ok) {
            let answer = response.headers_mut();
            let value = |v: &str| axum::http::HeaderValue::from_str(v).ok();
            use axum::http::header;
            for (name, v) in [
                (header::ACCESS_CONTROL_ALLOW_ORIGIN, value(&origin)),
                (header::ACCESS_CONTROL_ALLOW_METHODS, value(&self.methods)),
                (header::ACCESS_CONTROL_ALLOW_HEADERS, value(&self.headers.join(","))),
                (header::ACCESS_CONTROL_MAX_AGE, value(&self.max_age.to_string())),
                (header::VARY, value("origin")),
            ] {
                if let Some(v) = v {
                    answer.insert(name, v);
                }
            }
        }
        response
    }
}

impl App {
    /// Wires every function of `template` for the local resources and values, every one (and
    /// the authorizers) on one [`StackClock`] that `/_dev/clock` moves; fixed with real Stripe.
    pub fn new(aws: &aws_config::SdkConfig, template: &Template, src: &LocalEnv) -> anyhow::Result<Self> {
        let stack = Arc::new(StackClock::new(!src.uses_standin()));
        let clock: Arc<dyn Clock> = Arc::clone(&stack) as Arc<dyn Clock>;
        let mut app = Self::build(aws, template, src, &clock, clock.clone())?;
        app.clock = Some(stack);
        if src.uses_standin() {
            let standin = StandIn::new();
            standin.follow(clock);
            app.standin = Some(standin);
        }
        Ok(app)
    }

    /// As [`App::new`] on the system clock, with the Lambda authorizers deciding on the time
    /// of `clock` (tests move it to expire keys); no stack clock.
    pub fn with_clock(
        aws: &aws_config::SdkConfig,
        template: &Template,
        src: &LocalEnv,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        Self::build(aws, template, src, &(Arc::new(SystemClock) as Arc<dyn Clock>), clock)
    }

    /// Every function of `template` on `functions`, the authorizers on `authorizers`.
    fn build(
        aws: &aws_config::SdkConfig,
        template: &Template,
        src: &LocalEnv,
        functions: &Arc<dyn Clock>,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let mut authorizers: HashMap<String, AuthorizerHandler> = HashMap::new();
        let mut handlers: HashMap<String, HttpHandler> = HashMap::new();
        let mut handler = |binary: &str| -> anyhow::Result<HttpHandler> {
            if let Some(existing) = handlers.get(binary) {
                return Ok(Arc::clone(existing));
            }
            let made = http_function(binary, src, aws, functions)?;
            handlers.insert(binary.to_owned(), Arc::clone(&made));
            Ok(made)
        };
        let mut routes: BTreeMap<String, Vec<Route>> = BTreeMap::new();
        for route in &template.routes {
            let authorizer = match &route.authorizer {
                Some(binary) => Some(match authorizers.get(binary) {
                    Some(existing) => Arc::clone(existing),
                    None => {
                        let made = authorizer_function(binary, src, aws, Arc::clone(&clock))?;
                        authorizers.insert(binary.clone(), Arc::clone(&made));
                        made
                    }
                }),
                None => None,
            };
            let handler = handler(&route.binary)?;
            routes.entry(route.path.clone()).or_default().push(Route {
                method: route.method.clone(),
                handler,
                authorizer,
                public: route.public,
                iam: route.iam,
            });
        }
        for binary in &template.function_urls {
            // A function URL: its function authenticates the caller (Stripe's signature).
            let route = Route {
                method: "ANY".to_owned(),
                handler: handler(binary)?,
                authorizer: None,
                public: true,
                iam: false,
            };
            routes.entry(WEBHOOK_PATH.to_owned()).or_default().push(route);
        }
        let table = src.get(vars::TABLE_NAME).context(vars::TABLE_NAME)?;
        let store = tollgate::edge::wire::store(aws, &table);
        let events_url = src.get(vars::EVENTS_QUEUE_URL).context(vars::EVENTS_QUEUE_URL)?;
        let sqs = tollgate::adapters::aws::sqs(aws);
        let events_queue = SqsEventQueue::new(sqs.clone(), events_url.clone());
        let signing_secret = crate::trigger::signing_secret(src.get(vars::STRIPE_WEBHOOK_SECRETS).as_deref());
        let worker = webhook_worker::wire(src, aws, Arc::clone(functions))
            .map_err(|e| anyhow::anyhow!("webhook-worker: {e}"))?;
        let mut sync = sync::wire(src, aws, Arc::clone(functions)).map_err(|e| anyhow::anyhow!("sync: {e}"))?;
        sync.pacing = std::time::Duration::from_millis(50);
        Ok(Self {
            store,
            events_queue,
            identity: IdentityConfig::load(src),
            routes,
            worker,
            sync,
            clock: None,
            standin: None,
            sync_follows_clock: false,
            sqs,
            events_url,
            dynamodb: tollgate::adapters::aws::dynamodb(aws),
            table,
            signing_secret,
            cors: template.cors.as_ref().map(|cors| LocalCors::new(cors, src.get(vars::ALLOWED_REDIRECT_ORIGINS))),
        })
    }

    /// The app for `resources` as `tollgate-dev up` wires it, serving at `base`.
    pub fn local(aws: &aws_config::SdkConfig, resources: &Resources, base: &str) -> anyhow::Result<Self> {
        Self::local_with_clock(aws, resources, base, Arc::new(SystemClock))
    }

    /// As [`App::local`], with the Lambda authorizers on `clock`.
    pub fn local_with_clock(
        aws: &aws_config::SdkConfig,
        resources: &Resources,
        base: &str,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let template = Template::load(&crate::resources::template_path())?;
        Self::with_clock(aws, &template, &LocalEnv::new(base, resources)?, clock)
    }

    /// Every path the template declares (and the function URL's).
    pub(crate) fn paths(&self) -> impl Iterator<Item = &String> {
        self.routes.keys()
    }

    /// The route declaring `method` on `path`; `None` for a method the template does not
    /// declare there (API Gateway answers it 404, as any undeclared route).
    fn route(&self, path: &str, method: &str) -> Option<Route> {
        self.routes.get(path)?.iter().find(|r| r.method == method || r.method == "ANY").cloned()
    }
}

/// API Gateway's own answer to a route it does not declare.
pub(crate) async fn not_found() -> AxumResponse {
    (StatusCode::NOT_FOUND, axum::Json(serde_json::json!({"message": "Not Found"}))).into_response()
}

/// API Gateway's own answer to an `AWS_IAM` route without a valid signature.
fn forbidden() -> AxumResponse {
    (StatusCode::FORBIDDEN, axum::Json(serde_json::json!({"message": "Forbidden"}))).into_response()
}

/// Serves `req` on the declared route `path` as a request from outside would be (the clock's
/// deliveries to the intake use it).
pub async fn serve(app: Arc<App>, path: &str, req: AxumRequest) -> AxumResponse {
    dispatch(State(app), path.to_owned(), req).await
}

/// Hands the request to the function the template routes it to, through the route's Lambda
/// authorizer if it has one, as API Gateway would; with the API's CORS configuration, answers
/// a preflight itself and adds the allowed origin to every answer.
pub(crate) async fn dispatch(State(app): State<Arc<App>>, path: String, req: AxumRequest) -> AxumResponse {
    let Some(cors) = app.cors.clone() else { return route_request(app, path, req).await };
    let preflight = req.method() == axum::http::Method::OPTIONS
        && req.headers().contains_key(axum::http::header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        return cors.preflight(req.headers());
    }
    let origin = cors.allowed(req.headers());
    let mut response = route_request(app, path, req).await;
    if let Some(origin) = origin.and_then(|o| axum::http::HeaderValue::from_str(&o).ok()) {
        response.headers_mut().insert(axum::http::header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        response.headers_mut().insert(axum::http::header::VARY, axum::http::HeaderValue::from_static("origin"));
    }
    response
}

async fn route_request(app: Arc<App>, path: String, req: AxumRequest) -> AxumResponse {
    let Some(route) = app.route(&path, req.method().as_str()) else { return not_found().await };
    let (mut parts, body) = req.into_parts();
    // Removed on every route; only a JWT route takes the account, only an IAM route the
    // operator.
    let account = parts.headers.remove(ACCOUNT_HEADER).and_then(|v| v.to_str().ok().map(str::to_owned));
    let operator = parts.headers.remove(OPERATOR_HEADER).and_then(|v| v.to_str().ok().map(str::to_owned));
    let mut context = request_context(&parts);
    if route.iam {
        let Some(operator) = operator.filter(|name| !name.is_empty()) else { return forbidden() };
        context["authorizer"] = serde_json::json!({ "iam": {
            "accessKey": "local",
            "accountId": "local",
            "callerId": operator,
            "principalOrgId": null,
            "userArn": operator,
            "userId": operator,
        } });
    }
    match &route.authorizer {
        Some(authorizer) => {
            let route_key = format!("{} {path}", route.method);
            match authorize(authorizer, &route_key, &parts, &context).await {
                Ok(granted) => context["authorizer"] = serde_json::json!({ "lambda": granted }),
                Err(response) => return response,
            }
        }
        None if route.public || route.iam => {}
        None => {
            if let Some(account) = account {
                context["authorizer"] = serde_json::json!({ "jwt": { "claims": { &app.identity.claim: account } } });
            }
        }
    }
    let req = match axum_to_lambda(AxumRequest::from_parts(parts, body), context).await {
        Ok(req) => req,
        Err(response) => return response,
    };
    match (route.handler)(req).await {
        Ok(response) => lambda_to_axum(response),
        Err(err) => {
            tracing::error!(error = %err, "handler failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The API Gateway request context (payload 2.0) of a local request, without an authorizer.
fn request_context(parts: &axum::http::request::Parts) -> serde_json::Value {
    serde_json::json!({
        "requestId": uuid::Uuid::new_v4().to_string(),
        "stage": "$default",
        "http": { "method": parts.method.as_str(), "path": parts.uri.path(), "sourceIp": "127.0.0.1" },
    })
}

/// Turns a local HTTP request into the API Gateway (HTTP API, payload 2.0) request a handler
/// receives in Lambda, with `context` (its authorizer's part included) as its request context.
pub async fn axum_to_lambda(
    req: AxumRequest,
    context: serde_json::Value,
) -> Result<lambda_http::Request, AxumResponse> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORWARDED_BODY).await.map_err(|_| {
        lambda_to_axum(
            tollgate::edge::http::ApiError::new(
                lambda_http::http::StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "request body too large",
            )
            .into_response(),
        )
    })?;
    let context = serde_json::from_value(context).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())?;
    let query: HashMap<String, Vec<String>> = parts
        .uri
        .query()
        .map(|q| {
            serde_urlencoded::from_str::<Vec<(String, String)>>(q).unwrap_or_default().into_iter().fold(
                HashMap::new(),
                |mut map: HashMap<String, Vec<String>>, (k, v)| {
                    map.entry(k).or_default().push(v);
                    map
                },
            )
        })
        .unwrap_or_default();
    let body = if bytes.is_empty() {
        Body::Empty
    } else {
        match String::from_utf8(bytes.to_vec()) {
            Ok(text) => Body::Text(text),
            Err(raw) => Body::Binary(raw.into_bytes()),
        }
    };
    Ok(lambda_http::Request::from_parts(parts, body)
        .with_request_context(RequestContext::ApiGatewayV2(context))
        .with_query_string_parameters(query))
}

/// Turns a handler's response into the local server's.
pub fn lambda_to_axum(response: lambda_http::Response<Body>) -> AxumResponse {
    let (parts, body) = response.into_parts();
    let body = match body {
        Body::Empty => AxumBody::empty(),
        Body::Text(text) => AxumBody::from(text),
        Body::Binary(bytes) => AxumBody::from(bytes),
        _ => AxumBody::empty(),
    };
    AxumResponse::from_parts(parts, body)
}
