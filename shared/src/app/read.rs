//! The reads of the `subscription` function: the projection with its access decision, or the
//! entitlements alone, from one consistent read of the account's state items; the usage
//! history from that same read; the billing summary from it and one read of the newest
//! invoices (zero Stripe calls, at most two DynamoDB requests).

use crate::app::Settings;
use crate::domain::access::{Access, decide_account};
use crate::domain::entitlements;
use crate::domain::entitlements::{EntitlementsView, SubscriptionView};
use crate::domain::model::AccountId;
use crate::domain::usage::UsageReport;
use crate::ports::StoreError;
use crate::ports::subscriptions::{AccountState, SubscriptionStore};
use serde::Serialize;

/// The answer of `GET /subscription`: the subscription with its access decision, and this
/// period's usage of every metric.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubscriptionRead {
    #[serde(flatten)]
    pub subscription: SubscriptionView,
    pub usage: UsageReport,
    /// The credit balance (a plan grant still owed for this window counted in).
    pub credits: crate::domain::credits::Balance,
}

fn access(settings: &Settings, state: &AccountState) -> Access {
    decide_account(state.subscription.as_ref(), !state.disputes().is_empty(), settings.clock.now())
}

/// `GET /subscription`: plan, status, access decision with its reason, features, limits,
/// this period's usage and the credit balance, from one read.
pub async fn subscription<S: SubscriptionStore>(
    store: &S,
    settings: &Settings,
    account: &AccountId,
) -> Result<SubscriptionRead, StoreError> {
    let state = store.state(account).await?;
    let access = access(settings, &state);
    Ok(SubscriptionRead {
        subscription: entitlements::subscription_with(settings.catalogue, account, state.subscription.as_ref(), access),
        usage: crate::app::usage::report(settings, &state),
        credits: crate::app::credits::balance_of(settings, &state),
    })
}

/// `GET /entitlements`: plan, access, features and limits.
pub async fn entitlements<S: SubscriptionStore>(
    store: &S,
    settings: &Settings,
    account: &AccountId,
) -> Result<EntitlementsView, StoreError> {
    let state = store.state(account).await?;
    Ok(entitlements::entitlements_with(settings.catalogue, account, access(settings, &state)))
}

/// Usage windows `GET /usage/history` answers when the caller does not say.
pub const DEFAULT_PERIODS: usize = 12;
/// Most usage windows one answer holds (counters are kept about 13 months).
pub const MAX_PERIODS: usize = 13;

/// The query of `GET /usage/history`, as sent.
#[derive(Debug, Default, serde::Deserialize)]
pub struct HistoryQuery {
    pub periods: Option<String>,
}

/// One usage window and every metric's total in it: final for a past window, so far for the
/// current one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsagePeriod {
    pub start: i64,
    pub end: i64,
    pub current: bool,
    pub metrics: std::collections::BTreeMap<String, u64>,
}

/// `GET /usage/history`: the current window and up to `periods - 1` earlier ones that counted
/// anything, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageHistory {
    pub periods: Vec<UsagePeriod>,
}

/// The usage windows of `state` at `now`: the current one, then every other window that
/// counted anything, by its start, newest first, at most `periods` in all. The current window
/// is the one usage counts in now (DESIGN.md "Usage windows"); another window is known by its
/// counters' start, and ends where the next window starts or a month after its start,
/// whichever is first (a subscription started or ended closes the window in progress).
pub fn history(settings: &Settings, state: &AccountState, periods: usize) -> UsageHistory {
    let now = settings.clock.now();
    let current = crate::domain::usage::window(state.subscription.as_ref(), now);
    let mut names: std::collections::BTreeSet<String> = settings.catalogue.metrics().map(|m| m.name.clone()).collect();
    names.extend(state.usage.iter().map(|c| c.metric.clone()));
    let mut starts: Vec<i64> = state.usage.iter().map(|c| c.window_start).filter(|s| *s != current.start).collect();
    starts.sort_unstable_by(|a, b| b.cmp(a));
    starts.dedup();
    let mut boundaries: Vec<i64> = starts.iter().copied().chain([current.start]).collect();
    boundaries.sort_unstable();
    let period = |start: i64, end: i64, is_current: bool| UsagePeriod {
        start,
        end,
        current: is_current,
        metrics: names.iter().map(|name| (name.clone(), state.used(name, start))).collect(),
    };
    let mut answer = vec![period(current.start, current.end, true)];
    for start in starts.into_iter().take(periods.saturating_sub(1)) {
        let next = boundaries.iter().copied().find(|b| *b > start).unwrap_or(i64::MAX);
        let end = next.min(crate::domain::usage::add_months(start, 1));
        answer.push(period(start, end, false));
    }
    UsageHistory { periods: answer }
}

/// `GET /usage/history?periods=`: [`history`] from one read of the account's state. `periods`
/// is 1 to [`MAX_PERIODS`], [`DEFAULT_PERIODS`] when absent.
pub async fn usage_history<S: SubscriptionStore>(
    store: &S,
    settings: &Settings,
    account: &AccountId,
    query: HistoryQuery,
) -> Result<UsageHistory, crate::app::invoices::ReadError> {
    let periods = match query.periods.as_deref() {
        None => DEFAULT_PERIODS,
        Some(raw) => raw.parse::<usize>().ok().filter(|p| (1..=MAX_PERIODS).contains(p)).ok_or_else(|| {
            crate::app::invoices::ReadError::invalid(
                "invalid_periods",
                format!("`periods` must be an integer from 1 to {MAX_PERIODS}"),
            )
        })?,
    };
    let state = store.state(account).await?;
    Ok(history(settings, &state, periods))
}

/// What renews, when, for how much (the price's amount in `plans.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Renewal {
    pub at: i64,
    pub plan: String,
    pub interval: Option<crate::domain::model::Interval>,
    /// In the currency's smallest unit; `null` when the price is not in the catalogue.
    pub amount: Option<u64>,
    pub currency: Option<String>,
}

/// A payment the customer must act on: the invoice and where to pay it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PaymentAction {
    pub invoice_id: String,
    pub amount_due: i64,
    pub currency: String,
    pub hosted_invoice_url: Option<String>,
}

/// `GET /billing/summary`: everything a billing page shows, in one answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BillingSummary {
    pub plan: String,
    pub status: Option<crate::domain::model::SubscriptionStatus>,
    pub access: crate::domain::entitlements::AccessView,
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
    pub cancel_at_period_end: bool,
    pub trial_end: Option<i64>,
    pub grace_until: Option<i64>,
    /// `null` when nothing renews (no live subscription, or it ends with its period).
    pub renewal: Option<Renewal>,
    pub usage: UsageReport,
    pub credits: crate::domain::credits::Balance,
    pub latest_invoice: Option<crate::domain::invoices::InvoiceView>,
    pub payment_action_required: bool,
    pub payment_action: Option<PaymentAction>,
}

/// Invoices the summary reads (one `Query`): the latest, and the newest one needing action
/// among them.
const SUMMARY_INVOICES: usize = 10;

/// `GET /billing/summary`: plan and access, period, renewal, usage, credits, the latest
/// invoice and any payment awaiting the customer, from two DynamoDB requests made together:
/// the account's state read and one read of its newest invoices.
pub async fn billing_summary<S: SubscriptionStore + crate::ports::invoices::InvoiceStore>(
    store: &S,
    settings: &Settings,
    account: &AccountId,
) -> Result<BillingSummary, StoreError> {
    let (state, invoices) = tokio::join!(store.state(account), store.invoices(account, SUMMARY_INVOICES, None));
    let state = state?;
    let invoices = invoices?.forgetting(crate::ports::accounts::Forgotten::of(&state.tombstone)).invoices;
    let access = access(settings, &state);
    let projection = state.subscription.as_ref();
    let renews = projection.filter(|p| {
        !p.cancel_at_period_end
            && matches!(
                p.status,
                crate::domain::model::SubscriptionStatus::Active
                    | crate::domain::model::SubscriptionStatus::Trialing
                    | crate::domain::model::SubscriptionStatus::PastDue
            )
    });
    let renewal = renews.and_then(|p| {
        let price = p.price_lookup_key.as_deref().and_then(|key| settings.catalogue.price_by_lookup_key(key));
        Some(Renewal {
            at: p.current_period_end?,
            plan: p.plan.clone(),
            interval: p.interval,
            amount: price.map(|price| price.amount),
            currency: price.map(|price| price.currency.clone()),
        })
    });
    let payment_action = invoices.iter().find(|i| i.needs_payment_action()).map(|i| PaymentAction {
        invoice_id: i.id.clone(),
        amount_due: i.amount_due,
        currency: i.currency.clone(),
        hosted_invoice_url: i.hosted_invoice_url.clone(),
    });
    Ok(BillingSummary {
        access: crate::domain::entitlements::AccessView { allowed: access.allowed, reason: access.reason },
        plan: access.plan.clone(),
        status: projection.map(|p| p.status),
        current_period_start: projection.and_then(|p| p.current_period_start),
        current_period_end: projection.and_then(|p| p.current_period_end),
        cancel_at_period_end: projection.is_some_and(|p| p.cancel_at_period_end),
        trial_end: projection.and_then(|p| p.trial_end),
        grace_until: projection.and_then(|p| p.grace_until),
        renewal,
        usage: crate::app::usage::report(settings, &state),
        credits: crate::app::credits::balance_of(settings, &state),
        latest_invoice: invoices.first().map(crate::domain::invoices::InvoiceView::from),
        payment_action_required: payment_action.is_some(),
        payment_action,
    })
}
