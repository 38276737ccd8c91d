//! Ending an account's link to its Stripe customer: on `DELETE /account`, and when Stripe
//! deletes the customer. What goes and what stays is DESIGN.md's account-partition table; the
//! tombstone keeps only what prevents abuse (a trial already used, open or lost disputes,
//! how many customers were retired), no personal data.

use crate::app::Deadline;
use crate::app::Settings;
use crate::domain::facts::Tombstone;
use crate::domain::model::AccountId;
use crate::ports::StoreError;
use crate::ports::accounts::{AccountStore, Forgotten, Retirement};
use crate::ports::subscriptions::SubscriptionStore;

/// Retires `customer` from `account` (see [`Retirement`]) and answers the tombstone kept.
/// `had_subscription` is whether Stripe lists any subscription of the customer (the trial is
/// used even when the projection never saw it). Idempotent: a second run finds nothing more to
/// retire and keeps the same tombstone.
pub async fn retire<S: AccountStore + SubscriptionStore>(
    store: &S,
    settings: &Settings,
    account: &AccountId,
    customer: Option<&str>,
    retirement: Retirement,
    had_subscription: bool,
) -> Result<Tombstone, StoreError> {
    let state = store.state(account).await?;
    let mut tombstone = state.tombstone.clone();
    tombstone.trial_used |= had_subscription || state.subscription.is_some();
    tombstone.disputes.extend(state.facts.open_disputes.iter().cloned());
    if state.profile.as_ref().is_some_and(|p| Some(p.customer_id.as_str()) == customer) {
        tombstone.customers_retired = tombstone.customers_retired.saturating_add(1);
    }
    if retirement == Retirement::AccountDeleted {
        tombstone.deleted_at = Some(settings.clock.now());
    }
    store.retire(account, customer, retirement, &tombstone).await?;
    Ok(tombstone)
}

/// Items one purge page deletes at most (40 `BatchWriteItem`s of 25, 4 at once).
pub const PURGE_PAGE: usize = 1000;

/// Deletes what the account's deletion forgets (`forgotten`, from the tombstone [`retire`]
/// answered), a page at a time, until none is left (`true`) or `deadline` comes (`false`: a
/// repeat goes on from what is left).
pub async fn purge<S: AccountStore>(
    store: &S,
    account: &AccountId,
    forgotten: Forgotten,
    deadline: &dyn Deadline,
) -> Result<bool, StoreError> {
    loop {
        if deadline.expired() {
            return Ok(false);
        }
        if store.purge(account, forgotten, PURGE_PAGE).await? == 0 {
            return Ok(true);
        }
    }
}

/// Deletions noted at once by [`finish_owed_purges`].
const OWED_PAGE: usize = 25;

/// Finishes the purges of deletions whose requests stopped with items left (the sync runs it,
/// so a deletion completes whether or not its owner asks again), until none is owed or
/// `deadline` comes. Answers how many deletions it completed.
pub async fn finish_owed_purges<S: AccountStore>(store: &S, deadline: &dyn Deadline) -> Result<u64, StoreError> {
    let mut finished: u64 = 0;
    loop {
        let owed = store.owed_purges(OWED_PAGE).await?;
        if owed.is_empty() {
            return Ok(finished);
        }
        for (account, forgotten) in owed {
            if !purge(store, &account, forgotten, deadline).await? {
                return Ok(finished);
            }
            store.purge_done(&account).await?;
            finished = finished.saturating_add(1);
        }
    }
}

/// The idempotency key that creates the account's next Stripe customer: a new one after every
/// retirement, since Stripe would answer a reused key with the retired customer.
pub fn customer_key(account: &AccountId, tombstone: &Tombstone) -> String {
    match tombstone.customers_retired {
        0 => format!("customer-{account}"),
        n => format!("customer-{account}-{n}"),
    }
}
