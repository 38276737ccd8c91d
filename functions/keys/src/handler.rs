//! The request handler: routes, takes the caller's account from the verified JWT claim,
//! parses the body, calls one key use case of the core ([`tollgate::app::keys`]) and maps its
//! answer or error to HTTP. The answers that carry a new key are marked `no-store`.

use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Error, Request, Response};
use std::sync::Arc;
use tollgate::adapters::aws::SdkConfig;
use tollgate::adapters::dynamo::DynamoStore;
use tollgate::app::keys;
use tollgate::app::keys::KeysDeps;
use tollgate::edge::config::{IdentityConfig, KeysConfig, Source};
use tollgate::edge::http::identity::account_id;
use tollgate::edge::http::{ApiError, json, json_body};
use tollgate::ports::api_keys::ApiKeyStore;
use tollgate::ports::clock::Clock;

/// What the handler needs.
pub struct Deps<S> {
    pub keys: KeysDeps<S>,
    pub identity: IdentityConfig,
}

/// The production dependencies, from the function's configuration in `src`.
pub fn wire(src: &impl Source, aws: &SdkConfig, clock: Arc<dyn Clock>) -> Result<Deps<DynamoStore>, Error> {
    let config = KeysConfig::load(src)?;
    let keys = KeysDeps {
        store: tollgate::edge::wire::store(aws, &config.table_name),
        clock,
        mode: config.mode,
        max_active: config.max_active,
    };
    Ok(Deps { keys, identity: config.identity })
}

enum Route<'a> {
    Create,
    List,
    Revoke(&'a str),
    Rotate(&'a str),
}

fn route(req: &Request) -> Result<Route<'_>, ApiError> {
    let segments: Vec<&str> = req.uri().path().trim_matches('/').split('/').collect();
    let (route, method) = match segments.as_slice() {
        ["api-keys"] if req.method() == Method::GET => (Route::List, Method::GET),
        ["api-keys"] => (Route::Create, Method::POST),
        ["api-keys", id] => (Route::Revoke(id), Method::DELETE),
        ["api-keys", id, "rotate"] => (Route::Rotate(id), Method::POST),
        _ => return Err(ApiError::not_found()),
    };
    if req.method() != method {
        return Err(ApiError::method_not_allowed());
    }
    Ok(route)
}

/// Answers one request; errors become their JSON error response, never a Lambda failure.
pub async fn handle<S: ApiKeyStore>(deps: &Deps<S>, req: Request) -> Result<Response<Body>, Error> {
    Ok(answer(deps, &req).await.unwrap_or_else(ApiError::into_response))
}

/// A new key's answer: 201, never cached.
fn issued<T: serde::Serialize>(value: &T) -> Response<Body> {
    let mut response = json(StatusCode::CREATED, value);
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn answer<S: ApiKeyStore>(deps: &Deps<S>, req: &Request) -> Result<Response<Body>, ApiError> {
    let route = route(req)?;
    let account = account_id(req, &deps.identity.claim)?;
    let app = &deps.keys;
    Ok(match route {
        Route::Create => issued(&keys::create(app, &account, json_body(req)?).await?),
        Route::List => json(StatusCode::OK, &keys::list(app, &account).await?),
        Route::Revoke(id) => json(StatusCode::OK, &keys::revoke(app, &account, id).await?),
        Route::Rotate(id) => issued(&keys::rotate(app, &account, id, json_body(req)?).await?),
    })
}
