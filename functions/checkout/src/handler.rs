//! The request handler: routes, parses the caller's identity and body, calls one checkout use
//! case of the core ([`tollgate::app::checkout`]) and maps its answer or error to HTTP.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, RequestExt, Response};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tollgate::adapters::aws::SdkConfig;
use tollgate::adapters::dynamo::DynamoStore;
use tollgate::adapters::stripe::StripeBilling;
use tollgate::app::Before;
use tollgate::app::checkout;
use tollgate::app::checkout::CheckoutDeps;
use tollgate::edge::config::{CheckoutConfig, IdentityConfig, Source};
use tollgate::edge::http::identity::account_id;
use tollgate::edge::http::{ApiError, json, json_body};
use tollgate::ports::accounts::AccountStore;
use tollgate::ports::api_keys::ApiKeyStore;
use tollgate::ports::billing::Billing;
use tollgate::ports::checkouts::CheckoutStore;
use tollgate::ports::clock::Clock;
use tollgate::ports::rate::RateLimitStore;
use tollgate::ports::subscriptions::SubscriptionStore;

/// What the handler needs.
pub struct Deps<S, B> {
    pub checkout: CheckoutDeps<S, B>,
    pub identity: IdentityConfig,
    /// How long `DELETE /account` works from its start (`ACCOUNT_DELETION_BUDGET_MS`).
    pub deletion_budget: Duration,
}

/// What `DELETE /account` keeps in hand before the invocation's end, to answer.
pub const DELETION_MARGIN: Duration = Duration::from_secs(4);

/// The production dependencies, from the function's configuration in `src`.
pub fn wire(
    src: &impl Source,
    aws: &SdkConfig,
    clock: Arc<dyn Clock>,
) -> Result<Deps<DynamoStore, StripeBilling>, Error> {
    let config = CheckoutConfig::load(src)?;
    Ok(Deps {
        checkout: tollgate::edge::wire::checkout_deps(&config, aws, clock)?,
        identity: config.identity,
        deletion_budget: config.deletion_budget,
    })
}

/// `DELETE /account` stops deleting pages `deletion_budget` after the request started, or
/// [`DELETION_MARGIN`] before the invocation's end if that comes first.
fn deletion_deadline<S, B>(deps: &Deps<S, B>, req: &Request) -> Before {
    let budget = SystemTime::now() + deps.deletion_budget;
    match req.lambda_context_ref().map(|context| context.deadline()) {
        Some(end) if end != UNIX_EPOCH => {
            Before::at(budget.min(end.checked_sub(DELETION_MARGIN).unwrap_or(UNIX_EPOCH)))
        }
        _ => Before::at(budget),
    }
}

enum Route {
    Checkout,
    BuyPack,
    Portal,
    Change,
    Cancel,
    DeleteAccount,
}

fn route(req: &Request) -> Result<Route, ApiError> {
    let (route, method) = match req.uri().path().trim_end_matches('/') {
        "/checkout" => (Route::Checkout, Method::POST),
        "/credits/checkout" => (Route::BuyPack, Method::POST),
        "/portal" => (Route::Portal, Method::POST),
        "/subscription/change" => (Route::Change, Method::POST),
        "/subscription/cancel" => (Route::Cancel, Method::POST),
        "/account" => (Route::DeleteAccount, Method::DELETE),
        _ => return Err(ApiError::not_found()),
    };
    if req.method() != method {
        return Err(ApiError::method_not_allowed());
    }
    Ok(route)
}

/// Answers one request; errors become their JSON error response, never a Lambda failure.
pub async fn handle<S, B>(deps: &Deps<S, B>, req: Request) -> Result<Response<Body>, Error>
where
    S: AccountStore + SubscriptionStore + CheckoutStore + RateLimitStore + ApiKeyStore,
    B: Billing,
{
    Ok(answer(deps, &req).await.unwrap_or_else(ApiError::into_response))
}

async fn answer<S, B>(deps: &Deps<S, B>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: AccountStore + SubscriptionStore + CheckoutStore + RateLimitStore + ApiKeyStore,
    B: Billing,
{
    let route = route(req)?;
    let account = account_id(req, &deps.identity.claim)?;
    let app = &deps.checkout;
    Ok(match route {
        Route::Checkout => json(StatusCode::OK, &checkout::checkout(app, &account, json_body(req)?).await?),
        Route::BuyPack => json(StatusCode::OK, &checkout::buy_pack(app, &account, json_body(req)?).await?),
        Route::Portal => json(StatusCode::OK, &checkout::portal(app, &account, json_body(req)?).await?),
        Route::Change => json(StatusCode::OK, &checkout::change(app, &account, json_body(req)?).await?),
        Route::Cancel => json(StatusCode::OK, &checkout::cancel(app, &account, json_body(req)?).await?),
        Route::DeleteAccount => {
            json(StatusCode::OK, &checkout::delete_account(app, &account, &deletion_deadline(deps, req)).await?)
        }
    })
}
