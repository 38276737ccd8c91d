//! The reads of the `subscription` function: the projection with its access decision, or the
//! entitlements alone, from one consistent read of the account's state items (zero Stripe
//! calls).

use crate::access::{Access, decide_account};
use crate::app::Settings;
use crate::entitlements::{self, EntitlementsView, SubscriptionView};
use crate::model::AccountId;
use crate::store::{AccountState, StoreError, SubscriptionStore};
use crate::usage::UsageReport;
use serde::Serialize;

/// The answer of `GET /subscription`: the subscription with its access decision, and this
/// period's usage of every metric.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscriptionRead {
    #[serde(flatten)]
    pub subscription: SubscriptionView,
    pub usage: UsageReport,
    /// The credit balance (a plan grant still owed for this window counted in).
    pub credits: crate::credits::Balance,
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
