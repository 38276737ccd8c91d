//! Building the projection from Stripe's current state (a snapshot of the customer's
//! subscriptions) and the facts Tollgate recorded before (disputes, refunds, grace).
//!
//! State always comes from a snapshot, never from an event payload: the snapshot's `version`
//! is when it was read, so a write of an older snapshot loses (see `SubscriptionStore`).

use crate::domain::access::grace_until;
use crate::domain::facts::{Facts, Tombstone};
use crate::domain::model::{AccountId, Projection, SubscriptionStatus};
use crate::domain::plans::{Catalogue, FREE};
use crate::domain::snapshot::RemoteSubscription;
use crate::domain::usage::origin_after;

/// The subscription that governs the account (Stripe allows several; Tollgate sells one at a
/// time): the newest that grants access (active, trialing, past due), else the newest other
/// live one (incomplete, unpaid, paused), else the newest ended one. A newer `incomplete`
/// subscription never hides a paid one.
pub fn current(subscriptions: &[RemoteSubscription]) -> Option<&RemoteSubscription> {
    use crate::domain::model::SubscriptionStatus as S;
    let rank = |s: &RemoteSubscription| match s.status {
        S::Active | S::Trialing | S::PastDue => 2,
        status if status.is_live() => 1,
        _ => 0,
    };
    subscriptions.iter().max_by(|a, b| (rank(a), a.created, &a.id).cmp(&(rank(b), b.created, &b.id)))
}

/// The subscriptions that should not exist: Tollgate sells one at a time, so of the ones that
/// bill (active, trialing, past due) every one but the oldest (by `created`, then id) is a
/// duplicate (two Checkout Sessions paid before either expired).
pub fn duplicates(subscriptions: &[RemoteSubscription]) -> Vec<&RemoteSubscription> {
    use crate::domain::model::SubscriptionStatus as S;
    let mut billing: Vec<&RemoteSubscription> =
        subscriptions.iter().filter(|s| matches!(s.status, S::Active | S::Trialing | S::PastDue)).collect();
    billing.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
    billing.into_iter().skip(1).collect()
}

/// Inputs besides the snapshot.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub catalogue: &'a Catalogue,
    /// When the snapshot was read, Unix ms: the projection's version.
    pub version: i64,
    /// Now, Unix seconds: when a newly seen failure starts its grace period.
    pub now: i64,
    pub grace_days: u32,
}

/// The projection's state for `account` from its customer's subscriptions. `None` when the
/// customer has no subscription. The fields that facts decide (disputes, refunds,
/// entitlements) are left empty: they are stored apart and combined on every read
/// (`store::merge`). Grace carries over from the previous projection of the same
/// subscription, so it runs from the first time `past_due` was seen.
pub fn project(
    account: &AccountId,
    customer_id: &str,
    subscriptions: &[RemoteSubscription],
    previous: Option<&Projection>,
    ctx: Context<'_>,
) -> Option<Projection> {
    let sub = current(subscriptions)?;
    let item = sub.plan_item(ctx.catalogue);
    let price_lookup_key = item.and_then(|i| i.price_lookup_key.clone());
    let plan = price_lookup_key.as_deref().and_then(|key| ctx.catalogue.price_by_lookup_key(key)).map_or_else(
        || {
            tracing::warn!(subscription = %sub.id, "subscription price is not in the plan catalogue; treated as free");
            FREE.to_owned()
        },
        |price| price.tier.clone(),
    );
    let same = previous.filter(|p| p.subscription_id.as_deref() == Some(sub.id.as_str()));
    let mut next = Projection {
        account_id: account.clone(),
        customer_id: customer_id.to_owned(),
        subscription_id: Some(sub.id.clone()),
        status: sub.status,
        plan,
        price_lookup_key,
        interval: item.and_then(|i| i.interval),
        current_period_start: item.and_then(|i| i.current_period_start),
        current_period_end: item.and_then(|i| i.current_period_end),
        billing_cycle_anchor: sub.billing_cycle_anchor,
        window_origin: None,
        trial_end: sub.trial_end,
        cancel_at_period_end: sub.cancel_at_period_end,
        grace_until: grace_until(sub.status, same.and_then(|p| p.grace_until), ctx.now, ctx.grace_days),
        open_disputes: vec![],
        refunded_period_end: None,
        entitlements: vec![],
        version: ctx.version,
    };
    next.window_origin = origin_after(previous, &next, sub.created, sub.ended_at.unwrap_or(ctx.now));
    Some(next)
}

/// Combines the versioned state with the recorded facts and the tombstone: the facts are
/// authoritative for refunds and entitlements, disputes come from the facts and the
/// tombstone; grace comes from the first unsettled failed payment, or, when no failure was
/// seen, from the state (the snapshot saw `past_due` first).
pub fn merge(mut state: Projection, facts: &Facts, tombstone: &Tombstone) -> Projection {
    state.open_disputes = facts.open_disputes.union(&tombstone.disputes).cloned().collect();
    state.refunded_period_end = facts.refunded_period_end;
    state.entitlements = facts.entitlements.clone();
    state.grace_until = match state.status {
        SubscriptionStatus::PastDue => facts.grace_until.or(state.grace_until),
        _ => None,
    };
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{Interval, SubscriptionStatus as S};

    fn sub(id: &str, status: S, created: i64, key: &str) -> RemoteSubscription {
        crate::testing::remote_subscription(id, "cus_1", status, key, created)
    }

    fn ctx(catalogue: &Catalogue) -> Context<'_> {
        Context { catalogue, version: 5_000, now: 1_000, grace_days: 3 }
    }

    #[test]
    fn live_subscription_wins_over_a_newer_canceled_one() {
        let subs = [sub("sub_old", S::Active, 100, "pro_monthly"), sub("sub_new", S::Canceled, 200, "team_monthly")];

        assert_eq!(current(&subs).unwrap().id, "sub_old");
    }

    #[test]
    fn a_paid_subscription_wins_over_a_newer_incomplete_one() {
        let subs = [sub("sub_paid", S::Active, 100, "pro_monthly"), sub("sub_new", S::Incomplete, 200, "team_monthly")];
        let past_due = [sub("sub_due", S::PastDue, 100, "pro_monthly"), sub("sub_new", S::Unpaid, 200, "team_monthly")];

        assert_eq!(current(&subs).unwrap().id, "sub_paid");
        assert_eq!(current(&past_due).unwrap().id, "sub_due");
    }

    #[test]
    fn the_plan_is_the_item_whose_price_is_in_the_catalogue() {
        let catalogue = Catalogue::builtin().unwrap();
        let account = AccountId::parse("acct_1").unwrap();
        let mut with_addon = sub("s", S::Active, 1, "extra_seats_monthly");
        with_addon.items.push(crate::testing::remote_item("si_plan", "team_yearly", 1));

        let projected = project(&account, "cus_1", &[with_addon], None, ctx(catalogue)).unwrap();

        assert_eq!((projected.plan.as_str(), projected.price_lookup_key.as_deref()), ("team", Some("team_yearly")));
        assert_eq!(projected.interval, Some(Interval::Year));
    }

    #[test]
    fn newest_ended_subscription_when_none_is_live() {
        let subs =
            [sub("sub_a", S::Canceled, 100, "pro_monthly"), sub("sub_b", S::IncompleteExpired, 200, "pro_monthly")];

        assert_eq!(current(&subs).unwrap().id, "sub_b");
        assert!(current(&[]).is_none());
    }

    #[test]
    fn plan_comes_from_the_catalogue_by_lookup_key() {
        let catalogue = Catalogue::builtin().unwrap();
        let account = AccountId::parse("acct_1").unwrap();

        let team = project(&account, "cus_1", &[sub("s", S::Active, 1, "team_yearly")], None, ctx(catalogue)).unwrap();
        let unknown =
            project(&account, "cus_1", &[sub("s", S::Active, 1, "gold_monthly")], None, ctx(catalogue)).unwrap();

        assert_eq!((team.plan.as_str(), team.version), ("team", 5_000));
        assert_eq!(unknown.plan, "free");
    }

    #[test]
    fn grace_starts_once_and_facts_are_left_to_the_read() {
        let catalogue = Catalogue::builtin().unwrap();
        let account = AccountId::parse("acct_1").unwrap();
        let past_due = [sub("s", S::PastDue, 1, "pro_monthly")];
        let mut first = project(&account, "cus_1", &past_due, None, ctx(catalogue)).unwrap();
        first.open_disputes = vec!["dp_1".into()];

        let later = Context { now: 90_000, version: 9_000, ..ctx(catalogue) };
        let second = project(&account, "cus_1", &past_due, Some(&first), later).unwrap();

        assert_eq!(first.grace_until, Some(1_000 + 3 * 86_400));
        assert_eq!(second.grace_until, first.grace_until);
        assert!(second.open_disputes.is_empty(), "facts are combined on read, not copied");
    }
}
