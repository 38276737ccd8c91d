//! The request handler, generic over its store so tests and the local stack call it directly.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use std::sync::Arc;
use tollgate::clock::{Clock, SystemClock};
use tollgate::config::IdentityConfig;
use tollgate::entitlements;
use tollgate::http::{ApiError, account_id, json};
use tollgate::plans::{Catalogue, PlanError};
use tollgate::store::SubscriptionStore;

/// What the handler needs.
pub struct Deps<S> {
    pub store: S,
    pub catalogue: &'static Catalogue,
    pub clock: Arc<dyn Clock>,
    pub identity: IdentityConfig,
}

impl<S> Deps<S> {
    /// Production dependencies: the built-in catalogue and the system clock.
    pub fn new(store: S, identity: IdentityConfig) -> Result<Self, PlanError> {
        Ok(Self { store, catalogue: Catalogue::builtin()?, clock: Arc::new(SystemClock), identity })
    }
}

enum Route {
    Subscription,
    Entitlements,
}

fn route(req: &Request) -> Result<Route, ApiError> {
    let route = match req.uri().path().trim_end_matches('/') {
        "/subscription" => Route::Subscription,
        "/entitlements" => Route::Entitlements,
        _ => return Err(ApiError::not_found()),
    };
    if req.method() != Method::GET {
        return Err(ApiError::method_not_allowed());
    }
    Ok(route)
}

/// Answers one request; errors become their JSON error response, never a Lambda failure.
pub async fn handle<S: SubscriptionStore>(deps: &Deps<S>, req: Request) -> Result<Response<Body>, Error> {
    Ok(answer(deps, &req).await.unwrap_or_else(ApiError::into_response))
}

async fn answer<S: SubscriptionStore>(deps: &Deps<S>, req: &Request) -> Result<Response<Body>, ApiError> {
    let route = route(req)?;
    let account = account_id(req, &deps.identity.claim)?;
    let projection = deps.store.subscription(&account).await?;
    let now = deps.clock.now();
    Ok(match route {
        Route::Subscription => {
            json(StatusCode::OK, &entitlements::subscription(deps.catalogue, &account, projection.as_ref(), now))
        }
        Route::Entitlements => {
            json(StatusCode::OK, &entitlements::entitlements(deps.catalogue, &account, projection.as_ref(), now))
        }
    })
}
