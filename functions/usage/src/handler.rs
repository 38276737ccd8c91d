//! The request handler: routes, takes the caller from its route set's identity (the JWT claim
//! on the customer routes, the API key authorizer's context on `/api/...`, the IAM principal
//! on `/operator/...`, whose account is the path's), parses the body, calls one metering use
//! case of the core ([`tollgate::app::usage`], [`tollgate::app::credits`],
//! [`tollgate::app::operator`]) and maps its answer or error to HTTP, with the rate-limit
//! headers of a usage decision. Customer credentials read and check only: every write that
//! changes a count or a balance is on the operator routes.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use std::sync::Arc;
use tollgate::adapters::aws::SdkConfig;
use tollgate::adapters::dynamo::DynamoStore;
use tollgate::adapters::sqs::SqsNotifier;
use tollgate::app::usage::{UsageAnswer, UsageDeps};
use tollgate::app::{credits, operator, usage};
use tollgate::domain::apikeys::Scope;
use tollgate::domain::model::AccountId;
use tollgate::edge::config::{IdentityConfig, Source, UsageConfig};
use tollgate::edge::http::identity::{account_id, api_key_account, operator as operator_arn, path_account};
use tollgate::edge::http::{
    ApiError, BatchAnswer, MAX_BATCH_BODY_BYTES, json, json_body, json_body_within, query, rate_limit_headers,
    with_headers,
};
use tollgate::ports::api_keys::ApiKeyStore;
use tollgate::ports::clock::Clock;
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
pub fn wire(
    src: &impl Source,
    aws: &SdkConfig,
    clock: Arc<dyn Clock>,
) -> Result<Deps<DynamoStore, SqsNotifier>, Error> {
    let config = UsageConfig::load(src)?;
    Ok(Deps { usage: tollgate::edge::wire::usage_deps(&config, aws, clock)?, identity: config.identity })
}

/// What the caller may do, by route set.
enum Route {
    /// `GET /usage`, `GET /api/usage` (`api`: the key route set).
    Report { api: bool },
    /// `POST /usage/check`, `POST /api/usage/check`.
    Check { api: bool },
    /// `/operator/accounts/{account_id}...`: the operator acts for the path's account.
    Operator(AccountId, OperatorRoute),
    /// `POST /operator/usage/batch`.
    Batch,
}

enum OperatorRoute {
    Read,
    Consume,
    Check,
    Refund,
    CreditsConsume,
    CreditsRefund,
    Grant,
}

/// Who is calling: a customer (its account from the JWT or the key's context) or the operator
/// (its IAM principal).
enum Caller {
    Customer(AccountId),
    Operator(String),
}

/// The route of `req`, with its method checked.
fn route(req: &Request) -> Result<Route, ApiError> {
    let path = req.uri().path().trim_end_matches('/');
    let (path, api) = match path.strip_prefix("/api") {
        Some(rest) => (rest, true),
        None => (path, false),
    };
    let (route, method) = match path {
        "/usage" => (Route::Report { api }, Method::GET),
        "/usage/check" => (Route::Check { api }, Method::POST),
        "/operator/usage/batch" if !api => (Route::Batch, Method::POST),
        _ => {
            let rest = path.strip_prefix("/operator/accounts/").filter(|_| !api).ok_or_else(ApiError::not_found)?;
            let (segment, sub) = rest.split_once('/').unwrap_or((rest, ""));
            let (route, method) = match sub {
                "" => (OperatorRoute::Read, Method::GET),
                "usage" => (OperatorRoute::Consume, Method::POST),
                "usage/check" => (OperatorRoute::Check, Method::POST),
                "usage/refund" => (OperatorRoute::Refund, Method::POST),
                "credits/consume" => (OperatorRoute::CreditsConsume, Method::POST),
                "credits/refund" => (OperatorRoute::CreditsRefund, Method::POST),
                "credits/grants" => (OperatorRoute::Grant, Method::POST),
                _ => return Err(ApiError::not_found()),
            };
            if req.method() != method {
                return Err(ApiError::method_not_allowed());
            }
            return Ok(Route::Operator(path_account(segment)?, route));
        }
    };
    if req.method() != method {
        return Err(ApiError::method_not_allowed());
    }
    Ok(route)
}

/// The caller, from the identity of the route set the request came through.
fn caller<S, N>(deps: &Deps<S, N>, req: &Request, route: &Route) -> Result<Caller, ApiError> {
    match route {
        Route::Operator(..) | Route::Batch => operator_arn(req).map(Caller::Operator),
        Route::Report { api: true } | Route::Check { api: true } => {
            api_key_account(req, Scope::UsageRead).map(Caller::Customer)
        }
        Route::Report { api: false } | Route::Check { api: false } => {
            account_id(req, &deps.identity.claim).map(Caller::Customer)
        }
    }
}

/// Answers one request; errors become their JSON error response, never a Lambda failure.
pub async fn handle<S, N>(deps: &Deps<S, N>, req: Request) -> Result<Response<Body>, Error>
where
    S: SubscriptionStore + UsageStore + CreditStore + ApiKeyStore,
    N: Notifier,
{
    Ok(answer(deps, &req).await.unwrap_or_else(ApiError::into_response))
}

/// A usage decision with its rate-limit headers.
fn decision(answer: &UsageAnswer) -> Response<Body> {
    with_headers(json(StatusCode::OK, answer), rate_limit_headers(&answer.policies))
}

async fn answer<S, N>(deps: &Deps<S, N>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: SubscriptionStore + UsageStore + CreditStore + ApiKeyStore,
    N: Notifier,
{
    let route = route(req)?;
    let caller = caller(deps, req, &route)?;
    let app = &deps.usage;
    Ok(match (route, caller) {
        (Route::Report { .. }, Caller::Customer(account)) => {
            json(StatusCode::OK, &usage::usage(&app.store, &app.settings, &account).await?)
        }
        (Route::Check { .. }, Caller::Customer(account)) => {
            decision(&usage::check(app, &account, json_body(req)?).await?)
        }
        (Route::Batch, Caller::Operator(actor)) => {
            let results = usage::batch(app, &actor, json_body_within(req, MAX_BATCH_BODY_BYTES)?).await?;
            json(StatusCode::OK, &BatchAnswer::of(results))
        }
        (Route::Operator(account, route), Caller::Operator(actor)) => match route {
            OperatorRoute::Read => {
                let ledger = query(req, "invalid_credits")?;
                json(StatusCode::OK, &operator::account(&app.store, &app.settings, &account, ledger).await?)
            }
            OperatorRoute::Consume => decision(&usage::consume(app, &account, &actor, json_body(req)?).await?),
            OperatorRoute::Check => decision(&usage::check(app, &account, json_body(req)?).await?),
            OperatorRoute::Refund => json(StatusCode::OK, &usage::refund(app, &account, json_body(req)?).await?),
            OperatorRoute::CreditsConsume => {
                json(StatusCode::OK, &credits::consume(app, &account, &actor, json_body(req)?).await?)
            }
            OperatorRoute::CreditsRefund => {
                json(StatusCode::OK, &credits::refund(app, &account, &actor, json_body(req)?).await?)
            }
            OperatorRoute::Grant => {
                json(StatusCode::CREATED, &tollgate::app::grants::grant(app, &account, &actor, json_body(req)?).await?)
            }
        },
        // `caller` gives each route set its own kind of caller.
        _ => return Err(ApiError::unauthorized()),
    })
}
