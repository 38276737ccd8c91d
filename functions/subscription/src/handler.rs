//! The request handler, generic over its store so tests and the local stack call it directly.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use std::sync::Arc;
use tollgate::adapters::aws::SdkConfig;
use tollgate::adapters::dynamo::DynamoStore;
use tollgate::app::{Settings, credits, invoices, read};
use tollgate::domain::apikeys::Scope;
use tollgate::edge::config::{IdentityConfig, Source, SubscriptionConfig};
use tollgate::edge::http::identity::{account_id, api_key_account};
use tollgate::edge::http::{ApiError, cacheable, json, query};
use tollgate::ports::clock::Clock;
use tollgate::ports::credits::CreditStore;
use tollgate::ports::invoices::InvoiceStore;
use tollgate::ports::subscriptions::SubscriptionStore;

/// How long a client or CDN may reuse the pricing table without asking, in seconds.
const PLANS_MAX_AGE: u32 = 300;

/// What the handler needs.
pub struct Deps<S> {
    pub store: S,
    pub settings: Settings,
    pub identity: IdentityConfig,
}

/// The production dependencies, from the function's configuration in `src`.
pub fn wire(src: &impl Source, aws: &SdkConfig, clock: Arc<dyn Clock>) -> Result<Deps<DynamoStore>, Error> {
    let config = SubscriptionConfig::load(src)?;
    // Grace is decided at the time of the read from the stored `grace_until`; this function
    // computes none, so it takes no GRACE_DAYS.
    let settings = Settings::new(0, clock)?;
    Ok(Deps { store: tollgate::edge::wire::store(aws, &config.table_name), settings, identity: config.identity })
}

enum Route {
    /// `GET /plans`, public.
    Plans,
    Subscription,
    Entitlements,
    Credits,
    Invoices,
    UsageHistory,
    BillingSummary,
    /// `GET /api/subscription`, behind the API key authorizer.
    ApiSubscription,
    /// `GET /api/credits`, behind the API key authorizer.
    ApiCredits,
    /// `GET /api/invoices`, behind the API key authorizer.
    ApiInvoices,
}

fn route(req: &Request) -> Result<Route, ApiError> {
    let route = match req.uri().path().trim_end_matches('/') {
        "/subscription" => Route::Subscription,
        "/entitlements" => Route::Entitlements,
        "/credits" => Route::Credits,
        "/invoices" => Route::Invoices,
        "/usage/history" => Route::UsageHistory,
        "/billing/summary" => Route::BillingSummary,
        "/api/invoices" => Route::ApiInvoices,
        "/plans" => Route::Plans,
        "/api/subscription" => Route::ApiSubscription,
        "/api/credits" => Route::ApiCredits,
        _ => return Err(ApiError::not_found()),
    };
    if req.method() != Method::GET {
        return Err(ApiError::method_not_allowed());
    }
    Ok(route)
}

/// Answers one request; errors become their JSON error response, never a Lambda failure.
pub async fn handle<S: SubscriptionStore + CreditStore + InvoiceStore>(
    deps: &Deps<S>,
    req: Request,
) -> Result<Response<Body>, Error> {
    Ok(answer(deps, &req).await.unwrap_or_else(ApiError::into_response))
}

async fn answer<S: SubscriptionStore + CreditStore + InvoiceStore>(
    deps: &Deps<S>,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let route = route(req)?;
    // Each route set has its one authorizer: the API key's context on `/api/...`, the JWT
    // claim elsewhere; the pricing table has none.
    let account = match route {
        Route::Plans => return Ok(plans(&deps.settings, req)),
        Route::ApiSubscription => api_key_account(req, Scope::SubscriptionRead)?,
        Route::ApiCredits => api_key_account(req, Scope::UsageRead)?,
        Route::ApiInvoices => api_key_account(req, Scope::SubscriptionRead)?,
        Route::Subscription
        | Route::Entitlements
        | Route::Credits
        | Route::Invoices
        | Route::UsageHistory
        | Route::BillingSummary => account_id(req, &deps.identity.claim)?,
    };
    Ok(match route {
        Route::Plans => plans(&deps.settings, req),
        Route::Subscription | Route::ApiSubscription => {
            json(StatusCode::OK, &read::subscription(&deps.store, &deps.settings, &account).await?)
        }
        Route::Entitlements => json(StatusCode::OK, &read::entitlements(&deps.store, &deps.settings, &account).await?),
        Route::Credits | Route::ApiCredits => {
            let query = query(req, "invalid_credits")?;
            json(
                StatusCode::OK,
                &credits::credits(&deps.store, &deps.settings, &account, query, credits::Reader::Customer).await?,
            )
        }
        Route::Invoices | Route::ApiInvoices => {
            let query = query(req, "invalid_invoices")?;
            json(StatusCode::OK, &invoices::list(&deps.store, &account, query).await?)
        }
        Route::UsageHistory => {
            let query = query(req, "invalid_usage_history")?;
            json(StatusCode::OK, &read::usage_history(&deps.store, &deps.settings, &account, query).await?)
        }
        Route::BillingSummary => {
            json(StatusCode::OK, &read::billing_summary(&deps.store, &deps.settings, &account).await?)
        }
    })
}

/// `GET /plans`: the pricing table, cacheable (see [`tollgate::edge::http::cacheable`]).
fn plans(settings: &Settings, req: &Request) -> Response<Body> {
    cacheable(req, json(StatusCode::OK, &tollgate::domain::entitlements::pricing(settings.catalogue)), PLANS_MAX_AGE)
}
