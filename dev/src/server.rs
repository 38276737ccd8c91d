//! The local HTTP server: the routes of [`App`] (every HTTP function, see
//! [`crate::gateway`]), `GET /health`, `GET /openapi.json`, the development routes
//! (`POST /_dev/sync`, `GET`/`POST /_dev/clock`, whose moves [`crate::travel`] plays), and the
//! Stripe stand-in under `/stripe`.

use crate::clock::ClockError;
use crate::travel::{TravelError, Wait};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response as AxumResponse};
use axum::routing::{any, get};
use std::collections::HashMap;
use std::sync::Arc;
use tollgate::app::Never;
use tollgate::app::sync::Mode;
use tollgate::ports::clock::{Clock, SystemClock};
use tollgate_standin::StandIn;

pub use crate::gateway::{ACCOUNT_HEADER, App, OPERATOR_HEADER, WEBHOOK_PATH, serve};
use crate::gateway::{dispatch, not_found};

/// The router of the local stack; `standin` (a Stripe stand-in's router), else the app's own
/// stand-in, is nested under `/stripe`.
pub fn router(app: Arc<App>, standin: Option<Router>) -> Router {
    let standin = standin.or_else(|| app.standin.as_ref().map(StandIn::router));
    let mut router = Router::new()
        .route("/health", get(health))
        .route("/openapi.json", get(openapi))
        .route("/_dev/sync", axum::routing::post(sync_fn))
        .route("/_dev/clock", get(clock_show).post(clock_move))
        .route("/", get(billing_page_index))
        .route("/billing-page/{file}", get(billing_page_file));
    for path in app.paths() {
        let declared = path.clone();
        router = router.route(path, any(move |state, req| dispatch(state, declared, req)));
    }
    let mut router = router.fallback(not_found).with_state(app);
    if let Some(standin) = standin {
        router = router.nest("/stripe", standin);
    }
    router
}

/// Where `examples/billing-page/build.sh` (run by `make dev`) writes the billing page.
fn billing_page_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/billing-page/dist")
}

/// The billing page at `/` (`examples/billing-page`, built on `@tollgate/client`); a page
/// saying how to build it when it is not built.
async fn billing_page_index() -> AxumResponse {
    match tokio::fs::read_to_string(billing_page_dir().join("index.html")).await {
        Ok(html) => axum::response::Html(html).into_response(),
        Err(_) => (
            StatusCode::NOT_FOUND,
            axum::response::Html(
                "<!doctype html><title>Tollgate</title><p>The billing page is not built: run                  <code>examples/billing-page/build.sh</code> (<code>make dev</code> does).</p>",
            ),
        )
            .into_response(),
    }
}

/// The billing page's own files (`app.js`, `style.css`); nothing else is served.
async fn billing_page_file(axum::extract::Path(file): axum::extract::Path<String>) -> AxumResponse {
    let kind = match file.as_str() {
        "app.js" => "text/javascript; charset=utf-8",
        "style.css" => "text/css; charset=utf-8",
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    match tokio::fs::read(billing_page_dir().join(&file)).await {
        Ok(bytes) => ([(axum::http::header::CONTENT_TYPE, kind)], bytes).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The API's OpenAPI 3.1 document (the committed `openapi.json`; a test keeps them equal).
async fn openapi() -> AxumResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], tollgate::edge::openapi::json()).into_response()
}

/// 200 when the table and the events queue both answer, 503 naming the one that did not.
async fn health(State(app): State<Arc<App>>) -> AxumResponse {
    let (table, queue) = tokio::join!(app.store.ping(), app.events_queue.ping());
    let ok = table.is_ok() && queue.is_ok();
    let state = |up: bool| if up { "ok" } else { "unreachable" };
    let sync = match table {
        Ok(()) => tollgate::ports::sync::SyncStore::outcome(&app.store).await.ok().flatten(),
        Err(_) => None,
    };
    let body = serde_json::json!({
        "status": if ok { "ok" } else { "unavailable" },
        "table": state(table.is_ok()),
        "queue": state(queue.is_ok()),
        "sync": sync,
    });
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(body)).into_response()
}

/// Runs one sync now (`?mode=full` for a full reconciliation); local runner only. Answers the
/// recorded outcome, 200 when the run finished or stopped at its deadline, 502 when it failed.
async fn sync_fn(
    State(app): State<Arc<App>>,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> AxumResponse {
    let mode = if query.get("mode").map(String::as_str) == Some("full") { Mode::Full } else { Mode::Replay };
    match tollgate::app::sync::run(&app.sync, mode, &Never).await {
        Ok(outcome) => (StatusCode::OK, axum::Json(serde_json::json!(outcome))).into_response(),
        Err(err) => {
            let outcome = tollgate::ports::sync::SyncStore::outcome(&app.store).await.ok().flatten();
            let body = serde_json::json!({ "error": err.to_string(), "outcome": outcome });
            (StatusCode::BAD_GATEWAY, axum::Json(body)).into_response()
        }
    }
}

/// `{"now": <unix>, "iso": "<RFC 3339>"}` of the stack's clock.
fn clock_body(now: i64) -> AxumResponse {
    axum::Json(serde_json::json!({ "now": now, "iso": crate::clock::iso(now) })).into_response()
}

/// The local runner's own error answer, in Tollgate's error format.
fn dev_error(status: StatusCode, code: &str, message: &str) -> AxumResponse {
    (status, axum::Json(serde_json::json!({ "error": { "code": code, "message": message } }))).into_response()
}

/// `GET /_dev/clock`: the stack's time (local runner only).
async fn clock_show(State(app): State<Arc<App>>) -> AxumResponse {
    match &app.clock {
        Some(clock) => clock_body(clock.now()),
        None => clock_body(SystemClock.now()),
    }
}

/// `POST /_dev/clock` with `{"set": <unix>}` or `{"advance": <seconds>}` (and optionally
/// `"wait": "applied"`): moves the stack's time forward, playing what the Stripe stand-in has
/// due on the way ([`crate::travel`]), and answers the time reached once every event was
/// accepted (or applied). `400 clock_backwards` for a move back, `409 clock_fixed` with real
/// Stripe or on an app without a stack clock, `502 delivery_refused` when the intake refused
/// events, `504 not_applied` when the worker did not apply them in time.
async fn clock_move(State(app): State<Arc<App>>, body: axum::body::Bytes) -> AxumResponse {
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return dev_error(StatusCode::BAD_REQUEST, "malformed_body", "the body is not JSON");
    };
    let Some(clock) = &app.clock else {
        return dev_error(StatusCode::CONFLICT, "clock_fixed", "this stack runs on the system clock");
    };
    let usage = "the body must be {\"set\": <unix seconds>} or {\"advance\": <seconds>}, with \"wait\": \"applied\" or \"accepted\" optionally";
    let wait = match request.get("wait").map(|w| w.as_str()) {
        None | Some(Some("accepted")) => Wait::Accepted,
        Some(Some("applied")) => Wait::Applied,
        Some(_) => return dev_error(StatusCode::BAD_REQUEST, "invalid_clock", usage),
    };
    let known = request.as_object().is_some_and(|o| o.keys().all(|k| ["set", "advance", "wait"].contains(&k.as_str())));
    let now = clock.now();
    let to = match (
        request.get("set").map(serde_json::Value::as_i64),
        request.get("advance").map(serde_json::Value::as_i64),
    ) {
        _ if !known => return dev_error(StatusCode::BAD_REQUEST, "invalid_clock", usage),
        (Some(Some(at)), None) => at,
        (None, Some(Some(seconds))) => now.saturating_add(seconds),
        _ => return dev_error(StatusCode::BAD_REQUEST, "invalid_clock", usage),
    };
    match crate::travel::travel(&app, to, wait).await {
        Ok(now) => clock_body(now),
        Err(TravelError::Clock(err @ ClockError::Backwards { .. })) => {
            dev_error(StatusCode::BAD_REQUEST, "clock_backwards", &err.to_string())
        }
        Err(TravelError::Clock(err @ ClockError::Fixed)) => {
            dev_error(StatusCode::CONFLICT, "clock_fixed", &err.to_string())
        }
        Err(err @ TravelError::NoClock) => dev_error(StatusCode::CONFLICT, "clock_fixed", &err.to_string()),
        Err(err @ TravelError::Refused(_)) => dev_error(StatusCode::BAD_GATEWAY, "delivery_refused", &err.to_string()),
        Err(err @ TravelError::NotApplied(..)) => {
            dev_error(StatusCode::GATEWAY_TIMEOUT, "not_applied", &err.to_string())
        }
    }
}
