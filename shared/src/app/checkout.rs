//! The account's writes to Stripe: a subscription Checkout Session (customer created once,
//! one session per request within its reuse window, a rate limit per account, trial days only
//! for an account that never subscribed), a customer portal session, a plan change with
//! proration, a cancellation, and the deletion of the account's billing data.

use crate::app::Settings;
use crate::app::refresh::{Refreshed, Snapshot, refresh};
use crate::app::retire::{customer_key, retire};
use crate::domain::entitlements;
use crate::domain::entitlements::SubscriptionView;
use crate::domain::model::{AccountId, Interval, Projection};
use crate::domain::plans::{FREE, Price};
use crate::domain::projection::current;
use crate::domain::ratelimit::Limit;
use crate::domain::redirect::Redirects;
use crate::ports::StoreError;
use crate::ports::accounts::{Account, AccountStore, Retirement};
use crate::ports::api_keys::ApiKeyStore;
use crate::ports::billing::{Billing, BillingError, CheckoutRequest};
use crate::ports::checkouts::{CheckoutStore, PendingCheckout};
use crate::ports::rate::{RateLimitStore, RateOutcome};
use crate::ports::subscriptions::{AccountState, SubscriptionStore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A repeat of the same checkout request within this many seconds gets the same session.
pub const CHECKOUT_REUSE_SECONDS: i64 = 600;

/// What the checkout use cases need.
pub struct CheckoutDeps<S, B> {
    pub store: S,
    pub billing: B,
    pub settings: Settings,
    pub redirects: Redirects,
    /// New Checkout Sessions per account in any 60 seconds.
    pub checkout_limit: Limit,
    /// How long a new Checkout Session can be paid (`CHECKOUT_SESSION_TTL_SECONDS`).
    pub session_ttl_seconds: i64,
}

/// Why a checkout use case refused or failed. The HTTP mapping is in [`crate::edge::http`].
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    /// A required field of the request is missing.
    #[error("{}", .0.requirement())]
    Missing(Field),
    #[error("`interval` must be month or year")]
    UnknownInterval,
    #[error("{0}")]
    UnknownPlan(String),
    #[error("{0}")]
    UnknownPack(String),
    /// A redirect URL is outside the allow-list (the field's name).
    #[error("`{0}` must be on an allowed origin")]
    RedirectNotAllowed(&'static str),
    #[error("the account already has a subscription: manage it with POST /portal or POST /subscription/change")]
    SubscriptionExists,
    #[error("the account has no Stripe customer yet: start with POST /checkout")]
    NoCustomer,
    #[error("{0}")]
    NoSubscription(&'static str),
    #[error("the subscription is already on that plan and interval")]
    SamePlan,
    #[error("the Stripe customer is linked to another account")]
    CustomerConflict,
    /// Too many new sessions; retry after this many milliseconds.
    #[error("too many checkout sessions")]
    RateLimited { retry_after_ms: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Billing(#[from] BillingError),
}

/// The required fields of the checkout requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Plan,
    Pack,
    Interval,
    AtPeriodEnd,
}

impl Field {
    /// What the caller must send.
    pub fn requirement(self) -> &'static str {
        match self {
            Self::Plan => "`plan` is required",
            Self::Pack => "`pack` is required",
            Self::Interval => "`interval` is required (month or year)",
            Self::AtPeriodEnd => "`at_period_end` (true or false) is required",
        }
    }
}

/// The body of `POST /checkout` and `POST /subscription/change`.
#[derive(Debug, Default, Deserialize)]
pub struct PlanRequest {
    pub plan: Option<String>,
    pub interval: Option<String>,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
}

/// The body of `POST /credits/checkout`.
#[derive(Debug, Default, Deserialize)]
pub struct PackRequest {
    pub pack: Option<String>,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
}

/// The body of `POST /portal`.
#[derive(Debug, Default, Deserialize)]
pub struct PortalRequest {
    pub return_url: Option<String>,
}

/// The body of `POST /subscription/cancel`.
#[derive(Debug, Default, Deserialize)]
pub struct CancelRequest {
    pub at_period_end: Option<bool>,
}

/// A Checkout Session to send the buyer to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionAnswer {
    pub url: String,
    pub session_id: String,
    /// When the session expires (Unix seconds): it cannot be paid after.
    pub expires_at: i64,
}

impl SessionAnswer {
    /// The answer of a reservation whose session was made.
    fn of(pending: &PendingCheckout) -> Option<Self> {
        Some(Self {
            url: pending.url.clone()?,
            session_id: pending.session_id.clone()?,
            expires_at: pending.expires_at.unwrap_or(pending.valid_until),
        })
    }
}

/// A customer portal session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PortalAnswer {
    pub url: String,
}

/// What `DELETE /account` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Deleted {
    pub account_id: AccountId,
    pub deleted: bool,
    pub canceled_subscriptions: u32,
    /// Everything the deletion removes is gone; `false`: the rest (a large account's ledger,
    /// invoices) is deleted by repeating the request, and no read shows any of it meanwhile.
    pub complete: bool,
}

/// The paid price for a requested plan and interval.
pub(crate) fn paid_price<'c>(settings: &'c Settings, body: &PlanRequest) -> Result<&'c Price, CheckoutError> {
    let catalogue = settings.catalogue;
    let plan = body.plan.as_deref().ok_or(CheckoutError::Missing(Field::Plan))?;
    let interval = body.interval.as_deref().ok_or(CheckoutError::Missing(Field::Interval))?;
    let interval = Interval::parse(interval).ok_or(CheckoutError::UnknownInterval)?;
    if plan == FREE || catalogue.tier(plan).is_none() {
        return Err(CheckoutError::UnknownPlan("`plan` must be one of the paid plans".into()));
    }
    catalogue
        .price(plan, interval)
        .ok_or_else(|| CheckoutError::UnknownPlan(format!("plan {plan} has no {} price", interval.as_str())))
}

fn redirect(
    redirects: &Redirects,
    given: Option<String>,
    default: &str,
    field: &'static str,
) -> Result<String, CheckoutError> {
    let url = given.unwrap_or_else(|| default.to_owned());
    if redirects.allowed.allows(&url) { Ok(url) } else { Err(CheckoutError::RedirectNotAllowed(field)) }
}

/// `POST /checkout`: a subscription Checkout Session for the plan, or the pending one for the
/// same request.
pub async fn checkout<S, B>(
    deps: &CheckoutDeps<S, B>,
    account: &AccountId,
    body: PlanRequest,
) -> Result<SessionAnswer, CheckoutError>
where
    S: AccountStore + SubscriptionStore + CheckoutStore + RateLimitStore,
    B: Billing,
{
    let price = paid_price(&deps.settings, &body)?;
    let success_url = redirect(&deps.redirects, body.success_url, &deps.redirects.success_url, "success_url")?;
    let cancel_url = redirect(&deps.redirects, body.cancel_url, &deps.redirects.cancel_url, "cancel_url")?;
    let state = deps.store.state(account).await?;
    if state.subscription.as_ref().is_some_and(|p| p.status.is_live()) {
        return Err(CheckoutError::SubscriptionExists);
    }
    let request_key = hex::encode(&Sha256::digest(format!("{}|{success_url}|{cancel_url}", price.lookup_key))[..16]);
    let pending = reserve_or_join(deps, account, &request_key, true).await?;
    if let Some(answer) = SessionAnswer::of(&pending) {
        return Ok(answer);
    }

    let customer_id = ensure_customer(deps, account, &state).await?;
    // Stripe, not the projection, says whether the customer subscribes already: a payment
    // whose webhook has not arrived (or waits behind others) must not allow a second one.
    let snapshot = Snapshot::read(&deps.billing, &deps.settings, &customer_id).await?;
    if snapshot.subscriptions.iter().any(|s| s.status.is_live()) {
        if let Err(err) = refresh(&deps.store, &deps.settings, account, &customer_id, &snapshot).await {
            tracing::warn!(error = %err, "could not record the subscription checkout found");
        }
        return Err(CheckoutError::SubscriptionExists);
    }
    // A trial only for an account that never had a subscription, here or in Stripe.
    let trial_days = match state.trial_available() && snapshot.subscriptions.is_empty() {
        true => deps.settings.catalogue.tier(&price.tier).and_then(|t| t.trial_days),
        false => None,
    };
    let request = CheckoutRequest {
        account: account.clone(),
        customer_id,
        price_lookup_key: price.lookup_key.clone(),
        trial_days,
        success_url,
        cancel_url,
        pack: None,
        expires_at: session_expiry(deps, &pending),
    };
    let answer = open_session(deps, account, pending, &request, "checkout").await?;
    // One subscription session at a time: the account's others can no longer be paid. The new
    // session is answered whatever happens here: should both be paid, the worker ends the
    // newer subscription and refunds it.
    let others = |other: &PendingCheckout| other.plan && other.session_id.as_deref() != Some(&answer.session_id);
    if let Err(err) = expire_sessions(deps, account, others).await {
        tracing::warn!(error = %err, "could not expire the account's earlier checkout sessions");
    }
    Ok(answer)
}

/// Creates the Checkout Session of `request` for the reservation `pending` (its nonce in the
/// idempotency key, after `key_prefix`) and records it on the reservation, so a repeated
/// request answers it.
async fn open_session<S, B>(
    deps: &CheckoutDeps<S, B>,
    account: &AccountId,
    pending: PendingCheckout,
    request: &CheckoutRequest,
    key_prefix: &str,
) -> Result<SessionAnswer, CheckoutError>
where
    S: CheckoutStore,
    B: Billing,
{
    let key = format!("{key_prefix}-{account}-{}", pending.nonce);
    let session = deps.billing.create_checkout_session(request, &key).await?;
    let done = PendingCheckout {
        session_id: Some(session.id.clone()),
        url: Some(session.url.clone()),
        expires_at: Some(session.expires_at),
        ..pending
    };
    if let Err(err) = deps.store.complete_checkout(account, &done).await {
        // The session exists and is answered; unrecorded, a repeat would only make another.
        tracing::warn!(error = %err, "could not record the checkout session");
    }
    Ok(SessionAnswer { url: session.url, session_id: session.id, expires_at: session.expires_at })
}

/// When the reservation's session expires: fixed when it was reserved (a retried create sends
/// the same), else the setting from now.
fn session_expiry<S, B>(deps: &CheckoutDeps<S, B>, pending: &PendingCheckout) -> i64 {
    pending.expires_at.unwrap_or_else(|| deps.settings.clock.now().saturating_add(deps.session_ttl_seconds))
}

/// Expires in Stripe the session of every reservation of the account that `which` picks and
/// releases the reservation, so that none of them can be paid or handed out again.
async fn expire_sessions<S, B>(
    deps: &CheckoutDeps<S, B>,
    account: &AccountId,
    which: impl Fn(&PendingCheckout) -> bool,
) -> Result<(), CheckoutError>
where
    S: CheckoutStore,
    B: Billing,
{
    let now = deps.settings.clock.now();
    for pending in deps.store.pending_checkouts(account).await?.into_iter().filter(|p| which(p)) {
        let Some(session) = pending.session_id.as_deref() else { continue };
        if pending.expires_at.is_some_and(|at| at <= now) {
            continue;
        }
        deps.billing.expire_checkout_session(session, &format!("expire-{session}")).await?;
        let released = PendingCheckout { valid_until: now, expires_at: Some(now), ..pending.clone() };
        if let Err(err) = deps.store.complete_checkout(account, &released).await {
            tracing::warn!(error = %err, "could not release an expired session's reservation");
        }
    }
    Ok(())
}

/// `POST /credits/checkout`: a payment-mode Checkout Session for a credit pack, or the pending
/// one for the same request; the same allow-list, rate window and reuse as `POST /checkout`.
/// The worker grants the pack when the session is paid.
pub async fn buy_pack<S, B>(
    deps: &CheckoutDeps<S, B>,
    account: &AccountId,
    body: PackRequest,
) -> Result<SessionAnswer, CheckoutError>
where
    S: AccountStore + SubscriptionStore + CheckoutStore + RateLimitStore,
    B: Billing,
{
    let id = body.pack.ok_or(CheckoutError::Missing(Field::Pack))?;
    let catalogue = deps.settings.catalogue;
    let pack = catalogue.credit_pack(&id).ok_or_else(|| {
        let known: Vec<&str> = catalogue.credit_packs().iter().map(|p| p.id.as_str()).collect();
        CheckoutError::UnknownPack(format!("`pack` must be one of: {}", known.join(", ")))
    })?;
    let success_url = redirect(&deps.redirects, body.success_url, &deps.redirects.success_url, "success_url")?;
    let cancel_url = redirect(&deps.redirects, body.cancel_url, &deps.redirects.cancel_url, "cancel_url")?;
    let request_key = hex::encode(&Sha256::digest(format!("pack|{}|{success_url}|{cancel_url}", pack.id))[..16]);
    let pending = reserve_or_join(deps, account, &request_key, false).await?;
    if let Some(answer) = SessionAnswer::of(&pending) {
        return Ok(answer);
    }
    let state = deps.store.state(account).await?;
    let customer_id = ensure_customer(deps, account, &state).await?;
    let request = CheckoutRequest {
        account: account.clone(),
        customer_id,
        price_lookup_key: pack.lookup_key.clone(),
        trial_days: None,
        success_url,
        cancel_url,
        pack: Some(pack.id.clone()),
        expires_at: session_expiry(deps, &pending),
    };
    open_session(deps, account, pending, &request, "pack").await
}

/// The reservation for this checkout request: an unexpired one (a repeat, or a racing twin:
/// no new session, not counted), or a new one that took a slot in the rate window.
async fn reserve_or_join<S, B>(
    deps: &CheckoutDeps<S, B>,
    account: &AccountId,
    request_key: &str,
    plan: bool,
) -> Result<PendingCheckout, CheckoutError>
where
    S: CheckoutStore + RateLimitStore,
{
    let now_ms = deps.settings.clock.now_ms();
    let now = now_ms.div_euclid(1000);
    for _ in 0..3 {
        if let Some(pending) = deps.store.pending_checkout(account, request_key, now).await? {
            return Ok(pending);
        }
        // The session is reused while it is young, and never up to its expiry.
        let expires_at = now.saturating_add(deps.session_ttl_seconds);
        let ours = PendingCheckout {
            request_key: request_key.to_owned(),
            nonce: uuid::Uuid::new_v4().simple().to_string(),
            session_id: None,
            url: None,
            valid_until: now
                .saturating_add(CHECKOUT_REUSE_SECONDS)
                .min(expires_at.saturating_sub(CHECKOUT_REUSE_SECONDS)),
            expires_at: Some(expires_at),
            plan,
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
                return Err(CheckoutError::RateLimited { retry_after_ms });
            }
        }
    }
    Err(CheckoutError::RateLimited { retry_after_ms: 1000 })
}

/// The account's Stripe customer, created once: the create carries a key derived from the
/// account (and how many customers it retired), so racing requests get one customer from
/// Stripe, and the conditional link decides which request records it (the others read the
/// winner's).
async fn ensure_customer<S, B>(
    deps: &CheckoutDeps<S, B>,
    account: &AccountId,
    state: &AccountState,
) -> Result<String, CheckoutError>
where
    S: AccountStore,
    B: Billing,
{
    if let Some(existing) = &state.profile {
        return Ok(existing.customer_id.clone());
    }
    let customer_id = deps.billing.create_customer(account, &customer_key(account, &state.tombstone)).await?;
    let link = Account {
        account_id: account.clone(),
        customer_id: customer_id.clone(),
        created_at: deps.settings.clock.now(),
    };
    match deps.store.link_customer(&link).await {
        Ok(()) => Ok(customer_id),
        Err(StoreError::Conflict(_)) => {
            deps.store.account(account).await?.map(|a| a.customer_id).ok_or(CheckoutError::CustomerConflict)
        }
        Err(err) => Err(err.into()),
    }
}

/// `POST /portal`: a customer portal session.
pub async fn portal<S, B>(
    deps: &CheckoutDeps<S, B>,
    account: &AccountId,
    body: PortalRequest,
) -> Result<PortalAnswer, CheckoutError>
where
    S: AccountStore,
    B: Billing,
{
    let return_url = redirect(&deps.redirects, body.return_url, &deps.redirects.return_url, "return_url")?;
    let profile = deps.store.account(account).await?.ok_or(CheckoutError::NoCustomer)?;
    let key = format!("portal-{account}-{}", uuid::Uuid::new_v4().simple());
    let url = deps.billing.create_portal_session(&profile.customer_id, &return_url, &key).await?;
    Ok(PortalAnswer { url })
}

/// The live projection, or `NoSubscription`.
async fn live_projection<S: SubscriptionStore>(store: &S, account: &AccountId) -> Result<Projection, CheckoutError> {
    match store.subscription(account).await? {
        Some(p) if p.status.is_live() && p.subscription_id.is_some() => Ok(p),
        _ => Err(CheckoutError::NoSubscription("the account has no live subscription: start with POST /checkout")),
    }
}

/// Writes the projection Stripe's answer implies (a newer one, from the webhook, may win) and
/// answers the subscription view of it.
async fn record<S, B>(
    deps: &CheckoutDeps<S, B>,
    previous: &Projection,
    remote: crate::domain::snapshot::RemoteSubscription,
) -> Result<SubscriptionView, CheckoutError>
where
    S: SubscriptionStore,
{
    let snapshot = Snapshot::of(remote, &deps.settings);
    let next =
        match refresh(&deps.store, &deps.settings, &previous.account_id, &previous.customer_id, &snapshot).await? {
            Refreshed::Written(next) | Refreshed::Unchanged(next) | Refreshed::Stale(next) => next,
            Refreshed::NoSubscription => previous.clone(),
        };
    Ok(view(&deps.settings, &next))
}

fn view(settings: &Settings, projection: &Projection) -> SubscriptionView {
    entitlements::subscription(settings.catalogue, &projection.account_id, Some(projection), settings.clock.now())
}

/// `POST /subscription/change`: moves the live subscription to another plan or interval,
/// prorating.
pub async fn change<S, B>(
    deps: &CheckoutDeps<S, B>,
    account: &AccountId,
    body: PlanRequest,
) -> Result<SubscriptionView, CheckoutError>
where
    S: SubscriptionStore,
    B: Billing,
{
    let price = paid_price(&deps.settings, &body)?;
    let projection = live_projection(&deps.store, account).await?;
    if projection.price_lookup_key.as_deref() == Some(price.lookup_key.as_str()) {
        return Err(CheckoutError::SamePlan);
    }
    let subscriptions = deps.billing.subscriptions(&projection.customer_id).await?;
    let remote = current(&subscriptions)
        .filter(|s| s.status.is_live())
        .ok_or(CheckoutError::NoSubscription("Stripe has no live subscription for this account"))?;
    let item = remote
        .plan_item(deps.settings.catalogue)
        .ok_or(CheckoutError::NoSubscription("the subscription has no item to change"))?;
    let key = format!(
        "change-{}-{}-{}-{}",
        remote.id,
        item.price_lookup_key.as_deref().unwrap_or("none"),
        price.lookup_key,
        projection.version
    );
    let changed = deps.billing.change_price(&remote.id, &item.id, &price.lookup_key, &key).await?;
    record(deps, &projection, changed).await
}

/// `POST /subscription/cancel`: at the period's end, or at once.
pub async fn cancel<S, B>(
    deps: &CheckoutDeps<S, B>,
    account: &AccountId,
    body: CancelRequest,
) -> Result<SubscriptionView, CheckoutError>
where
    S: SubscriptionStore,
    B: Billing,
{
    let at_period_end = body.at_period_end.ok_or(CheckoutError::Missing(Field::AtPeriodEnd))?;
    let projection = live_projection(&deps.store, account).await?;
    if at_period_end && projection.cancel_at_period_end {
        return Ok(view(&deps.settings, &projection));
    }
    let subscription = projection.subscription_id.clone().unwrap_or_default();
    let key = format!("cancel-{subscription}-{at_period_end}-{}", projection.version);
    let canceled = deps.billing.cancel(&subscription, at_period_end, &key).await?;
    record(deps, &projection, canceled).await
}

/// `DELETE /account`: cancels every live subscription in Stripe at once, then revokes and
/// deletes every API key of the account, then retires it, keeping a tombstone (see
/// [`retire`]): from then on no read shows its billing data. What the deletion removes is then
/// deleted in pages until `deadline` ([`purge`]); `complete` says whether all of it went. A
/// repeat goes on with what is left. Idempotent.
pub async fn delete_account<S, B>(
    deps: &CheckoutDeps<S, B>,
    account: &AccountId,
    deadline: &dyn crate::app::Deadline,
) -> Result<Deleted, CheckoutError>
where
    S: AccountStore + SubscriptionStore + ApiKeyStore + CheckoutStore,
    B: Billing,
{
    let state = deps.store.state(account).await?;
    let customer = state.profile.map(|p| p.customer_id).or(state.subscription.map(|p| p.customer_id));
    // No session opened before may be paid after: every one is expired first, packs included.
    // Should one still be paid (Stripe unreachable here), the worker ends what it bought.
    if let Err(err) = expire_sessions(deps, account, |_| true).await {
        tracing::warn!(error = %err, "could not expire the deleted account's checkout sessions");
    }
    let mut canceled: u32 = 0;
    let mut had_subscription = false;
    if let Some(customer) = &customer {
        let subscriptions = deps.billing.subscriptions(customer).await?;
        had_subscription = !subscriptions.is_empty();
        for sub in subscriptions.iter().filter(|s| s.status.is_live()) {
            match deps.billing.cancel(&sub.id, false, &format!("delete-account-{}", sub.id)).await {
                Ok(_) => canceled = canceled.saturating_add(1),
                Err(BillingError::NotFound) => {}
                Err(err) => return Err(err.into()),
            }
        }
    }
    // API keys go first: none may keep working for an account being deleted.
    let keys = deps.store.delete_api_keys(account).await?;
    tracing::info!(account = %account, keys, "api keys of the deleted account revoked and deleted");
    let retirement = Retirement::AccountDeleted;
    let tombstone =
        retire(&deps.store, &deps.settings, account, customer.as_deref(), retirement, had_subscription).await?;
    let complete = match crate::ports::accounts::Forgotten::of(&tombstone) {
        Some(forgotten) => {
            let complete = crate::app::retire::purge(&deps.store, account, forgotten, deadline).await?;
            // What is left, the sync finishes if the owner never asks again.
            if complete {
                deps.store.purge_done(account).await?;
            } else {
                deps.store.owe_purge(account, forgotten).await?;
            }
            complete
        }
        None => true,
    };
    Ok(Deleted { account_id: account.clone(), deleted: true, canceled_subscriptions: canceled, complete })
}
