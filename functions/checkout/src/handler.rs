//! The request handler, generic over its store and its Stripe port so that tests and the
//! local stack call it directly.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tollgate::billing::{Billing, BillingError, CheckoutRequest};
use tollgate::clock::{Clock, SystemClock};
use tollgate::config::{CheckoutConfig, IdentityConfig, RedirectConfig};
use tollgate::entitlements;
use tollgate::http::{ApiError, account_id, json, json_body};
use tollgate::model::{AccountId, Interval, Projection};
use tollgate::plans::{Catalogue, FREE, PlanError, Price};
use tollgate::projection::{Context, current, project};
use tollgate::ratelimit::{Limit, retry_after_seconds};
use tollgate::store::{
    Account, AccountStore, CheckoutStore, PendingCheckout, RateOutcome, StoreError, SubscriptionStore,
};

/// A repeat of the same checkout request within this many seconds gets the same session.
pub const CHECKOUT_REUSE_SECONDS: i64 = 600;

/// What the handler needs.
pub struct Deps<S, B> {
    pub store: S,
    pub billing: B,
    pub catalogue: &'static Catalogue,
    pub clock: Arc<dyn Clock>,
    pub identity: IdentityConfig,
    pub redirects: RedirectConfig,
    /// New Checkout Sessions per account in any 60 seconds.
    pub checkout_limit: Limit,
    /// Grace days, for a `past_due` projection rewritten after a change or cancellation.
    pub grace_days: u32,
}

impl<S, B> Deps<S, B> {
    /// Production dependencies: the built-in catalogue and the system clock.
    pub fn new(store: S, billing: B, config: &CheckoutConfig) -> Result<Self, PlanError> {
        Ok(Self {
            store,
            billing,
            catalogue: Catalogue::builtin()?,
            clock: Arc::new(SystemClock),
            identity: config.identity.clone(),
            redirects: config.redirects.clone(),
            checkout_limit: Limit { limit: config.sessions_per_minute, window_ms: 60_000 },
            grace_days: config.grace_days,
        })
    }
}

enum Route {
    Checkout,
    Portal,
    Change,
    Cancel,
    DeleteAccount,
}

fn route(req: &Request) -> Result<Route, ApiError> {
    let (route, method) = match req.uri().path().trim_end_matches('/') {
        "/checkout" => (Route::Checkout, Method::POST),
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
    S: AccountStore + SubscriptionStore + CheckoutStore,
    B: Billing,
{
    Ok(answer(deps, &req).await.unwrap_or_else(ApiError::into_response))
}

async fn answer<S, B>(deps: &Deps<S, B>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: AccountStore + SubscriptionStore + CheckoutStore,
    B: Billing,
{
    let route = route(req)?;
    let account = account_id(req, &deps.identity.claim)?;
    match route {
        Route::Checkout => checkout(deps, &account, json_body(req)?).await,
        Route::Portal => portal(deps, &account, json_body(req)?).await,
        Route::Change => change(deps, &account, json_body(req)?).await,
        Route::Cancel => cancel(deps, &account, json_body(req)?).await,
        Route::DeleteAccount => delete_account(deps, &account).await,
    }
}

#[derive(Debug, Deserialize)]
struct PlanBody {
    plan: Option<String>,
    interval: Option<String>,
    success_url: Option<String>,
    cancel_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PortalBody {
    return_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CancelBody {
    at_period_end: Option<bool>,
}

/// The paid price for a requested plan and interval.
fn paid_price<'c>(catalogue: &'c Catalogue, body: &PlanBody) -> Result<&'c Price, ApiError> {
    let plan = body.plan.as_deref().ok_or_else(|| ApiError::bad_request("missing_plan", "`plan` is required"))?;
    let interval = body
        .interval
        .as_deref()
        .ok_or_else(|| ApiError::bad_request("missing_interval", "`interval` is required (month or year)"))?;
    let interval = Interval::parse(interval)
        .ok_or_else(|| ApiError::bad_request("unknown_interval", "`interval` must be month or year"))?;
    if plan == FREE || catalogue.tier(plan).is_none() {
        return Err(ApiError::bad_request("unknown_plan", "`plan` must be one of the paid plans"));
    }
    catalogue
        .price(plan, interval)
        .ok_or_else(|| ApiError::bad_request("unknown_plan", format!("plan {plan} has no {} price", interval.as_str())))
}

fn redirect(redirects: &RedirectConfig, given: Option<String>, default: &str, field: &str) -> Result<String, ApiError> {
    let url = given.unwrap_or_else(|| default.to_owned());
    if redirects.allowed.allows(&url) {
        Ok(url)
    } else {
        Err(ApiError::bad_request("redirect_not_allowed", format!("`{field}` must be on an allowed origin")))
    }
}

fn live(projection: Option<&Projection>) -> Option<&Projection> {
    projection.filter(|p| p.status.is_live())
}

async fn checkout<S, B>(deps: &Deps<S, B>, account: &AccountId, body: PlanBody) -> Result<Response<Body>, ApiError>
where
    S: AccountStore + SubscriptionStore + CheckoutStore,
    B: Billing,
{
    let price = paid_price(deps.catalogue, &body)?;
    let success_url = redirect(&deps.redirects, body.success_url, &deps.redirects.success_url, "success_url")?;
    let cancel_url = redirect(&deps.redirects, body.cancel_url, &deps.redirects.cancel_url, "cancel_url")?;
    let projection = deps.store.subscription(account).await?;
    if live(projection.as_ref()).is_some() {
        return Err(ApiError::conflict(
            "subscription_exists",
            "the account already has a subscription: manage it with POST /portal or POST /subscription/change",
        ));
    }
    let request_key = hex::encode(&Sha256::digest(format!("{}|{success_url}|{cancel_url}", price.lookup_key))[..16]);
    let pending = reserve_or_join(deps, account, &request_key).await?;
    if let (Some(id), Some(url)) = (&pending.session_id, &pending.url) {
        return Ok(session_response(id, url));
    }

    let customer_id = ensure_customer(deps, account).await?;
    let trial_days = match projection {
        None => deps.catalogue.tier(&price.tier).and_then(|t| t.trial_days),
        Some(_) => None,
    };
    let request = CheckoutRequest {
        account: account.clone(),
        customer_id,
        price_lookup_key: price.lookup_key.clone(),
        trial_days,
        success_url,
        cancel_url,
    };
    let session =
        deps.billing.create_checkout_session(&request, &format!("checkout-{account}-{}", pending.nonce)).await?;
    let done = PendingCheckout { session_id: Some(session.id.clone()), url: Some(session.url.clone()), ..pending };
    if let Err(err) = deps.store.complete_checkout(account, &done).await {
        // The session exists and is answered; unrecorded, a repeat would only make another.
        tracing::warn!(error = %err, "could not record the checkout session");
    }
    Ok(session_response(&session.id, &session.url))
}

fn session_response(session_id: &str, url: &str) -> Response<Body> {
    json(StatusCode::OK, &serde_json::json!({ "url": url, "session_id": session_id }))
}

/// The reservation for this checkout request: an unexpired one (a repeat, or a racing twin:
/// no new session, not counted), or a new one that took a slot in the rate window.
async fn reserve_or_join<S, B>(
    deps: &Deps<S, B>,
    account: &AccountId,
    request_key: &str,
) -> Result<PendingCheckout, ApiError>
where
    S: CheckoutStore,
{
    let now_ms = deps.clock.now_ms();
    let now = now_ms.div_euclid(1000);
    for _ in 0..3 {
        if let Some(pending) = deps.store.pending_checkout(account, request_key, now).await? {
            return Ok(pending);
        }
        let ours = PendingCheckout {
            request_key: request_key.to_owned(),
            nonce: uuid::Uuid::new_v4().simple().to_string(),
            session_id: None,
            url: None,
            valid_until: now + CHECKOUT_REUSE_SECONDS,
        };
        match deps.store.reserve_checkout(account, &ours, now).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => continue,
            Err(err) => return Err(err.into()),
        }
        match deps.store.take_rate(account, "checkout", deps.checkout_limit, now_ms).await? {
            RateOutcome::Allowed => return Ok(ours),
            RateOutcome::Limited { retry_after_ms } => {
                // A refused request leaves no reservation behind for a repeat to join.
                let released = PendingCheckout { valid_until: now, ..ours };
                if let Err(err) = deps.store.complete_checkout(account, &released).await {
                    tracing::warn!(error = %err, "could not release a refused checkout reservation");
                }
                return Err(ApiError::too_many_requests(retry_after_seconds(retry_after_ms)));
            }
        }
    }
    Err(ApiError::too_many_requests(1))
}

/// The account's Stripe customer, created once: the create carries a key derived from the
/// account, so racing requests get one customer from Stripe, and the conditional link decides
/// which request records it (the others read the winner's).
async fn ensure_customer<S, B>(deps: &Deps<S, B>, account: &AccountId) -> Result<String, ApiError>
where
    S: AccountStore,
    B: Billing,
{
    if let Some(existing) = deps.store.account(account).await? {
        return Ok(existing.customer_id);
    }
    let customer_id = deps.billing.create_customer(account, &format!("customer-{account}")).await?;
    let link = Account { account_id: account.clone(), customer_id: customer_id.clone(), created_at: deps.clock.now() };
    match deps.store.link_customer(&link).await {
        Ok(()) => Ok(customer_id),
        Err(StoreError::Conflict(_)) => {
            deps.store.account(account).await?.map(|a| a.customer_id).ok_or_else(|| {
                ApiError::conflict("customer_conflict", "the Stripe customer is linked to another account")
            })
        }
        Err(err) => Err(err.into()),
    }
}

async fn portal<S, B>(deps: &Deps<S, B>, account: &AccountId, body: PortalBody) -> Result<Response<Body>, ApiError>
where
    S: AccountStore,
    B: Billing,
{
    let return_url = redirect(&deps.redirects, body.return_url, &deps.redirects.return_url, "return_url")?;
    let Some(profile) = deps.store.account(account).await? else {
        return Err(ApiError::conflict(
            "no_customer",
            "the account has no Stripe customer yet: start with POST /checkout",
        ));
    };
    let key = format!("portal-{account}-{}", uuid::Uuid::new_v4().simple());
    let url = deps.billing.create_portal_session(&profile.customer_id, &return_url, &key).await?;
    Ok(json(StatusCode::OK, &serde_json::json!({ "url": url })))
}

/// The live projection, or 409.
async fn live_projection<S: SubscriptionStore>(store: &S, account: &AccountId) -> Result<Projection, ApiError> {
    match store.subscription(account).await? {
        Some(p) if p.status.is_live() && p.subscription_id.is_some() => Ok(p),
        _ => Err(ApiError::conflict(
            "no_subscription",
            "the account has no live subscription: start with POST /checkout",
        )),
    }
}

/// Writes the projection Stripe's answer implies (a newer one, from the webhook, may win).
async fn record<S, B>(
    deps: &Deps<S, B>,
    previous: &Projection,
    remote: tollgate::billing::RemoteSubscription,
) -> Result<Projection, ApiError>
where
    S: SubscriptionStore,
{
    let ctx = Context {
        catalogue: deps.catalogue,
        version: deps.clock.now_ms(),
        now: deps.clock.now(),
        grace_days: deps.grace_days,
    };
    let next = project(&previous.account_id, &previous.customer_id, &[remote], Some(previous), ctx)
        .unwrap_or_else(|| previous.clone());
    match deps.store.put_subscription(&next).await {
        Ok(()) | Err(StoreError::Conflict(_)) => Ok(next),
        Err(err) => Err(err.into()),
    }
}

fn view<S, B>(deps: &Deps<S, B>, projection: &Projection) -> Response<Body> {
    let view = entitlements::subscription(deps.catalogue, &projection.account_id, Some(projection), deps.clock.now());
    json(StatusCode::OK, &view)
}

async fn change<S, B>(deps: &Deps<S, B>, account: &AccountId, body: PlanBody) -> Result<Response<Body>, ApiError>
where
    S: SubscriptionStore,
    B: Billing,
{
    let price = paid_price(deps.catalogue, &body)?;
    let projection = live_projection(&deps.store, account).await?;
    if projection.price_lookup_key.as_deref() == Some(price.lookup_key.as_str()) {
        return Err(ApiError::conflict("same_plan", "the subscription is already on that plan and interval"));
    }
    let subscriptions = deps.billing.subscriptions(&projection.customer_id).await?;
    let remote = current(&subscriptions)
        .filter(|s| s.status.is_live())
        .ok_or_else(|| ApiError::conflict("no_subscription", "Stripe has no live subscription for this account"))?;
    let item = remote
        .item_id
        .as_deref()
        .ok_or_else(|| ApiError::conflict("no_subscription", "the subscription has no item to change"))?;
    let key = format!(
        "change-{}-{}-{}-{}",
        remote.id,
        remote.price_lookup_key.as_deref().unwrap_or("none"),
        price.lookup_key,
        projection.version
    );
    let changed = deps.billing.change_price(&remote.id, item, &price.lookup_key, &key).await?;
    let next = record(deps, &projection, changed).await?;
    Ok(view(deps, &next))
}

async fn cancel<S, B>(deps: &Deps<S, B>, account: &AccountId, body: CancelBody) -> Result<Response<Body>, ApiError>
where
    S: SubscriptionStore,
    B: Billing,
{
    let at_period_end = body
        .at_period_end
        .ok_or_else(|| ApiError::bad_request("missing_at_period_end", "`at_period_end` (true or false) is required"))?;
    let projection = live_projection(&deps.store, account).await?;
    if at_period_end && projection.cancel_at_period_end {
        return Ok(view(deps, &projection));
    }
    let subscription = projection.subscription_id.clone().unwrap_or_default();
    let key = format!("cancel-{subscription}-{at_period_end}-{}", projection.version);
    let canceled = deps.billing.cancel(&subscription, at_period_end, &key).await?;
    let next = record(deps, &projection, canceled).await?;
    Ok(view(deps, &next))
}

async fn delete_account<S, B>(deps: &Deps<S, B>, account: &AccountId) -> Result<Response<Body>, ApiError>
where
    S: AccountStore + SubscriptionStore + CheckoutStore,
    B: Billing,
{
    let profile = deps.store.account(account).await?;
    let projection = deps.store.subscription(account).await?;
    let customer = profile.map(|p| p.customer_id).or(projection.map(|p| p.customer_id));
    let mut canceled = 0;
    if let Some(customer) = &customer {
        for sub in deps.billing.subscriptions(customer).await?.iter().filter(|s| s.status.is_live()) {
            match deps.billing.cancel(&sub.id, false, &format!("delete-account-{}", sub.id)).await {
                Ok(_) => canceled += 1,
                Err(BillingError::NotFound) => {}
                Err(err) => return Err(err.into()),
            }
        }
    }
    deps.store.delete_account_data(account, customer.as_deref()).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "account_id": account, "deleted": true, "canceled_subscriptions": canceled }),
    ))
}
