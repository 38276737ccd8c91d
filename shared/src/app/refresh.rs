//! Refreshing an account's projection from Stripe: read the customer's subscriptions (a
//! snapshot, versioned by when it was read), project them, and write the projection only if
//! nothing newer is stored. The worker commits the projection in its event transaction; the
//! sync and checkout write it on its own with [`refresh`].

use crate::app::Settings;
use crate::domain::model::{AccountId, Projection};
use crate::domain::projection::{Context, project};
use crate::domain::snapshot::RemoteSubscription;
use crate::ports::StoreError;
use crate::ports::billing::{Billing, BillingError};
use crate::ports::subscriptions::SubscriptionStore;

/// Stripe's subscriptions of one customer, and when they were read (Unix ms): the version of
/// every projection made from them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub subscriptions: Vec<RemoteSubscription>,
    pub read_at_ms: i64,
}

impl Snapshot {
    /// Reads every subscription of `customer` (`status=all`) now.
    pub async fn read<B: Billing>(billing: &B, settings: &Settings, customer: &str) -> Result<Self, BillingError> {
        let subscriptions = billing.subscriptions(customer).await?;
        Ok(Self { subscriptions, read_at_ms: settings.clock.now_ms() })
    }

    /// A snapshot of one subscription as Stripe just answered it (after a change or a cancel).
    pub fn of(subscription: RemoteSubscription, settings: &Settings) -> Self {
        Self { subscriptions: vec![subscription], read_at_ms: settings.clock.now_ms() }
    }
}

/// The projection `snapshot` implies for `account`, and the one stored before it. The new one
/// is `None` when the customer has no subscription at all.
pub async fn projection<S: SubscriptionStore>(
    store: &S,
    settings: &Settings,
    account: &AccountId,
    customer: &str,
    snapshot: &Snapshot,
) -> Result<(Option<Projection>, Option<Projection>), StoreError> {
    let previous = store.subscription(account).await?;
    let ctx = Context {
        catalogue: settings.catalogue,
        version: snapshot.read_at_ms,
        now: settings.clock.now(),
        grace_days: settings.grace_days,
    };
    let next = project(account, customer, &snapshot.subscriptions, previous.as_ref(), ctx);
    Ok((next, previous))
}

/// What [`refresh`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refreshed {
    /// The projection differed from the stored one and was written.
    Written(Projection),
    /// Stripe's state equals the stored one: nothing written.
    Unchanged(Projection),
    /// A newer projection was stored meanwhile (by a webhook): it stays. Carries the one this
    /// snapshot implied.
    Stale(Projection),
    /// The customer has no subscription: nothing to project.
    NoSubscription,
}

/// Projects `snapshot` and writes it if it differs from the stored state and nothing newer is
/// stored.
pub async fn refresh<S: SubscriptionStore>(
    store: &S,
    settings: &Settings,
    account: &AccountId,
    customer: &str,
    snapshot: &Snapshot,
) -> Result<Refreshed, StoreError> {
    let (next, previous) = projection(store, settings, account, customer, snapshot).await?;
    let Some(next) = next else { return Ok(Refreshed::NoSubscription) };
    if previous.as_ref().is_some_and(|p| !differs(p, &next)) {
        return Ok(Refreshed::Unchanged(next));
    }
    match store.put_subscription(&next).await {
        Ok(()) => Ok(Refreshed::Written(next)),
        Err(StoreError::Conflict(_)) => Ok(Refreshed::Stale(next)),
        Err(err) => Err(err),
    }
}

/// Whether two projections differ in Stripe's state (facts and version aside).
pub fn differs(stored: &Projection, fresh: &Projection) -> bool {
    let state = |p: &Projection| {
        (
            p.subscription_id.clone(),
            p.status,
            p.plan.clone(),
            p.price_lookup_key.clone(),
            p.interval,
            p.current_period_start,
            p.current_period_end,
            p.trial_end,
            p.cancel_at_period_end,
        )
    };
    state(stored) != state(fresh)
}
