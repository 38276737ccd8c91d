//! The reads of the `subscription` function: the projection with its access decision, or the
//! entitlements alone, from one consistent read of the account's state items (zero Stripe
//! calls).

use crate::access::{Access, decide_account};
use crate::app::Settings;
use crate::entitlements::{self, EntitlementsView, SubscriptionView};
use crate::model::AccountId;
use crate::store::{AccountState, StoreError, SubscriptionStore};

fn access(settings: &Settings, state: &AccountState) -> Access {
    decide_account(state.subscription.as_ref(), !state.disputes().is_empty(), settings.clock.now())
}

/// `GET /subscription`: plan, status, access decision with its reason, features and limits.
pub async fn subscription<S: SubscriptionStore>(
    store: &S,
    settings: &Settings,
    account: &AccountId,
) -> Result<SubscriptionView, StoreError> {
    let state = store.state(account).await?;
    let access = access(settings, &state);
    Ok(entitlements::subscription_with(settings.catalogue, account, state.subscription.as_ref(), access))
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
