//! The reads of the `subscription` function: the projection with its access decision, or the
//! entitlements alone, from the store only (zero Stripe calls).

use crate::app::Settings;
use crate::entitlements::{self, EntitlementsView, SubscriptionView};
use crate::model::AccountId;
use crate::store::{StoreError, SubscriptionStore};

/// `GET /subscription`: plan, status, access decision with its reason, features and limits.
pub async fn subscription<S: SubscriptionStore>(
    store: &S,
    settings: &Settings,
    account: &AccountId,
) -> Result<SubscriptionView, StoreError> {
    let projection = store.subscription(account).await?;
    Ok(entitlements::subscription(settings.catalogue, account, projection.as_ref(), settings.clock.now()))
}

/// `GET /entitlements`: plan, access, features and limits.
pub async fn entitlements<S: SubscriptionStore>(
    store: &S,
    settings: &Settings,
    account: &AccountId,
) -> Result<EntitlementsView, StoreError> {
    let projection = store.subscription(account).await?;
    Ok(entitlements::entitlements(settings.catalogue, account, projection.as_ref(), settings.clock.now()))
}
