//! The request handler: routes, takes the caller's account from its route set's identity
//! (the JWT claim, or the API key authorizer's context on `/api/...`), parses the body, calls
//! one metering use case of the core ([`tollgate::app::usage`], [`tollgate::app::credits`])
//! and maps its answer or error to HTTP, with the rate-limit headers of a usage decision.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use tollgate::adapters::aws::SdkConfig;
use tollgate::adapters::dynamo::DynamoStore;
use tollgate::adapters::sqs::SqsNotifier;
use tollgate::app::credits;
use tollgate::app::usage;
use tollgate::app::usage::UsageDeps;
use tollgate::domain::apikeys::Scope;
use tollgate::domain::model::AccountId;
use tollgate::edge::config::{IdentityConfig, Source, UsageConfig};
use tollgate::edge::http::{ApiError, account_id, api_key_account, json, json_body, rate_limit_headers, with_headers};
use tollgate::ports::credits::CreditStore;
use tollgate::ports::notifier::Notifier;
use tollgate::ports::subscriptions::SubscriptionStore;
use tollgate::ports::usage::UsageStore;

/// What the handler needs.
pub struct Deps<S, N> {
    pub usage: UsageDeps<S, N>,
    pub identity: IdentityConfig,
}

/// The production dependencies, from the function's configuration in `src`.
pub fn wire(src: &impl Source, aws: &SdkConfig) -> Result<Deps<DynamoStore, SqsNotifier>, Error> {
    let config = UsageConfig::load(src)?;
    Ok(Deps { usage: tollgate::edge::wire::usage_deps(&config, aws)?, identity: config.identity })
}

enum Route {
    Consume,
    Check,
    Refund,
    Report,
    CreditsConsume,
    CreditsRefund,
}

impl Route {
    /// The scope an API key needs for the route.
    fn scope(&self) -> Scope {
        match self {
            Route::Report => Scope::UsageRead,
            Route::Consume | Route::Check | Route::Refund | Route::CreditsConsume | Route::CreditsRefund => {
                Scope::UsageWrite
            }
        }
    }
}

/// The route, and whether it is the API key route set (`/api/...`).
fn route(req: &Request) -> Result<(Route, bool), ApiError> {
    let path = req.uri().path().trim_end_matches('/');
    let (path, api) = match path.strip_prefix("/api") {
        Some(rest) => (rest, true),
        None => (path, false),
    };
    let (route, method) = match path {
        "/usage" if req.method() == Method::GET => (Route::Report, Method::GET),
        "/usage" => (Route::Consume, Method::POST),
        "/usage/check" => (Route::Check, Method::POST),
        "/usage/refund" => (Route::Refund, Method::POST),
        "/credits/consume" => (Route::CreditsConsume, Method::POST),
        // Refunds are for the product's backend (JWT); DESIGN.md's API key routes do not
        // include it.
        "/credits/refund" if !api => (Route::CreditsRefund, Method::POST),
        _ => return Err(ApiError::not_found()),
    };
    if req.method() != method {
        return Err(ApiError::method_not_allowed());
    }
    Ok((route, api))
}

/// Answers one request; errors become their JSON error response, never a Lambda failure.
pub async fn handle<S, N>(deps: &Deps<S, N>, req: Request) -> Result<Response<Body>, Error>
where
    S: SubscriptionStore + UsageStore + CreditStore,
    N: Notifier,
{
    Ok(answer(deps, &req).await.unwrap_or_else(ApiError::into_response))
}

fn caller<S, N>(deps: &Deps<S, N>, req: &Request, route: &Route, api: bool) -> Result<AccountId, ApiError> {
    if api { api_key_account(req, route.scope()) } else { account_id(req, &deps.identity.claim) }
}

async fn answer<S, N>(deps: &Deps<S, N>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: SubscriptionStore + UsageStore + CreditStore,
    N: Notifier,
{
    let (route, api) = route(req)?;
    let account = caller(deps, req, &route, api)?;
    let app = &deps.usage;
    Ok(match route {
        Route::Consume => {
            let answer = usage::consume(app, &account, json_body(req)?).await?;
            with_headers(json(StatusCode::OK, &answer), rate_limit_headers(&answer.policies))
        }
        Route::Check => {
            let answer = usage::check(app, &account, json_body(req)?).await?;
            with_headers(json(StatusCode::OK, &answer), rate_limit_headers(&answer.policies))
        }
        Route::Refund => json(StatusCode::OK, &usage::refund(app, &account, json_body(req)?).await?),
        Route::Report => json(StatusCode::OK, &usage::usage(&app.store, &app.settings, &account).await?),
        Route::CreditsConsume => json(StatusCode::OK, &credits::consume(app, &account, json_body(req)?).await?),
        Route::CreditsRefund => json(StatusCode::OK, &credits::refund(app, &account, json_body(req)?).await?),
    })
}
