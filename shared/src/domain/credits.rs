//! Credits (no I/O): grants, the balance they make at a time, the order a cost is drawn from
//! them, and the plan's grant for a usage window.
//!
//! A grant is `purchased` (never expires) or `subscription` (granted for one usage window,
//! expiring at its end). An expired grant stops counting the moment it expires: the balance is
//! computed at the time of the read, so no job is needed to make it right.

use serde::{Deserialize, Serialize};

/// What kind of credits a grant holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum GrantKind {
    /// Bought (a credit pack) or granted by hand: never expire.
    Purchased,
    /// The plan's credits for one usage window: expire at its end.
    Subscription,
}

/// The order a cost is drawn from an account's grants (`plans.toml`, `[credits] draw_order`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DrawOrder {
    /// Purchased credits first, then subscription credits soonest-expiring first.
    #[default]
    PurchasedFirst,
    /// Soonest-expiring first (subscription credits before purchased ones, which never expire).
    SoonestExpiring,
}

/// A grant of credits and what is left of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Deterministic for grants that must happen once (a window's plan credits, a pack's
    /// session), so a repeated grant is the same item.
    pub id: String,
    pub kind: GrantKind,
    /// Where it came from: `plan:<tier>`, `checkout:<session>`, `manual:<note>`.
    pub source: String,
    pub credits: u64,
    pub remaining: u64,
    pub granted_at: i64,
    /// Unix seconds; `None` never expires. (Stored as `ends_at`: `expires_at` is the table's
    /// TTL attribute.)
    #[serde(rename = "ends_at", default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// The Stripe PaymentIntent that paid a pack: a full refund of it removes what is left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<String>,
    /// The grant was reversed (a refunded or lost pack): it never takes credits back, not even
    /// a refund of a consumption drawn from it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reversed: bool,
    /// While a dispute on the pack's payment is open: what was left of it when the dispute
    /// opened (plus what refunds gave back since), held out of the balance until it closes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frozen: Option<u64>,
    /// A dispute on the pack's payment closed: a dispute event arriving late changes nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dispute_closed: bool,
    /// Who granted it ([`crate::domain::actor`]); `None` on grants stored before actors were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

impl Grant {
    /// Whether the grant counts at `now`.
    pub fn live(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|end| now < end)
    }
}

/// What one draw takes from one grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draw {
    pub grant: String,
    pub credits: u64,
}

/// The balance at `now`: what is left of every live grant, in all and by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Balance {
    pub balance: u64,
    pub purchased: u64,
    pub subscription: u64,
}

/// The balance `grants` make at `now`.
pub fn balance(grants: &[Grant], now: i64) -> Balance {
    let mut b = Balance::default();
    for g in grants.iter().filter(|g| g.live(now)) {
        match g.kind {
            GrantKind::Purchased => b.purchased = b.purchased.saturating_add(g.remaining),
            GrantKind::Subscription => b.subscription = b.subscription.saturating_add(g.remaining),
        }
    }
    b.balance = b.purchased.saturating_add(b.subscription);
    b
}

/// The draws that pay `cost` from the live grants in `order`, or `None` when the balance is
/// short (nothing is drawn then).
pub fn draws(grants: &[Grant], cost: u64, order: DrawOrder, now: i64) -> Option<Vec<Draw>> {
    let mut live: Vec<&Grant> = grants.iter().filter(|g| g.live(now) && g.remaining > 0).collect();
    let expiry = |g: &Grant| g.expires_at.unwrap_or(i64::MAX);
    match order {
        DrawOrder::PurchasedFirst => live.sort_by_key(|g| (g.kind, expiry(g), g.granted_at, g.id.clone())),
        DrawOrder::SoonestExpiring => live.sort_by_key(|g| (expiry(g), g.granted_at, g.id.clone())),
    }
    let mut left = cost;
    let mut taken = Vec::new();
    for grant in live {
        if left == 0 {
            break;
        }
        let take = left.min(grant.remaining);
        taken.push(Draw { grant: grant.id.clone(), credits: take });
        left = left.saturating_sub(take);
    }
    (left == 0).then_some(taken)
}

/// A credit pack: `credits` bought once with a one-time Stripe price (`[[credit_packs]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditPack {
    pub id: String,
    pub credits: u64,
    /// The one-time Stripe price's lookup key.
    pub lookup_key: String,
    pub amount: u64,
    pub currency: String,
}

/// The grant of credit pack `pack` bought with Checkout Session `session` (paid by
/// `payment`): its id is the session's, so the paid session is granted once however often its
/// events arrive.
pub fn pack_grant(pack: &CreditPack, session: &str, payment: Option<&str>, now: i64, actor: String) -> Grant {
    Grant {
        frozen: None,
        dispute_closed: false,
        reversed: false,
        id: format!("pack-{session}"),
        kind: GrantKind::Purchased,
        source: format!("checkout:{session}"),
        credits: pack.credits,
        remaining: pack.credits,
        granted_at: now,
        expires_at: None,
        payment: payment.map(str::to_owned),
        actor: Some(actor),
    }
}

/// The id of the plan's grant for the window that starts at `window_start`, on `tier`: one per
/// window and tier, so a repeated grant is the same item and an upgrade's difference is granted
/// once.
pub fn plan_grant_id(window_start: i64, nth: usize) -> String {
    format!("plan-{window_start}-{nth}")
}

/// The plan grant owed for a window `[start, end)` on `tier` with `credits` per window, given
/// what the window's `earlier` plan grants hold: the difference after an upgrade, the whole
/// amount at first, nothing when the plan grants no more (a downgrade grants nothing). Its id
/// is the window's next in sequence (`plan-<window start>-<n>`), so two first operations that
/// race write one grant between them and the loser computes again from it: a window's plan
/// grants never total more than its highest tier's credits.
pub fn plan_grant(
    tier: &str,
    credits: u64,
    earlier: &[&Grant],
    window: crate::domain::usage::Window,
    now: i64,
) -> Option<Grant> {
    let granted: u64 = earlier.iter().map(|g| g.credits).sum();
    let owed = credits.checked_sub(granted).filter(|owed| *owed > 0)?;
    Some(Grant {
        frozen: None,
        dispute_closed: false,
        reversed: false,
        id: plan_grant_id(window.start, earlier.len().saturating_add(1)),
        kind: GrantKind::Subscription,
        source: format!("plan:{tier}"),
        credits: owed,
        remaining: owed,
        granted_at: now,
        expires_at: Some(window.end),
        payment: None,
        actor: Some(crate::domain::actor::TOLLGATE.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(id: &str, kind: GrantKind, remaining: u64, expires_at: Option<i64>) -> Grant {
        Grant {
            frozen: None,
            dispute_closed: false,
            reversed: false,
            actor: None,
            id: id.into(),
            kind,
            source: "test".into(),
            credits: remaining,
            remaining,
            granted_at: 0,
            expires_at,
            payment: None,
        }
    }

    #[test]
    fn purchased_credits_are_drawn_first_by_default_and_last_when_expiry_decides() {
        let grants =
            [grant("sub", GrantKind::Subscription, 10, Some(100)), grant("pack", GrantKind::Purchased, 5, None)];

        let purchased_first = draws(&grants, 7, DrawOrder::PurchasedFirst, 50).unwrap();
        let soonest = draws(&grants, 7, DrawOrder::SoonestExpiring, 50).unwrap();

        assert_eq!(
            purchased_first,
            [Draw { grant: "pack".into(), credits: 5 }, Draw { grant: "sub".into(), credits: 2 }]
        );
        assert_eq!(soonest, [Draw { grant: "sub".into(), credits: 7 }]);
    }

    #[test]
    fn expired_grants_stop_counting_the_moment_they_expire() {
        let grants =
            [grant("sub", GrantKind::Subscription, 10, Some(100)), grant("pack", GrantKind::Purchased, 5, None)];

        assert_eq!(balance(&grants, 99), Balance { balance: 15, purchased: 5, subscription: 10 });
        assert_eq!(balance(&grants, 100), Balance { balance: 5, purchased: 5, subscription: 0 });
        assert_eq!(draws(&grants, 6, DrawOrder::PurchasedFirst, 100), None, "short: nothing is drawn");
    }

    #[test]
    fn a_windows_plan_grant_is_its_difference_once_and_nothing_after_a_downgrade() {
        let window = crate::domain::usage::Window { start: 1_000, end: 2_000 };

        let first = plan_grant("pro", 1_000, &[], window, 1_100).unwrap();
        let upgrade = plan_grant("team", 5_000, &[&first], window, 1_200).unwrap();

        assert_eq!((first.id.as_str(), first.credits, first.expires_at), ("plan-1000-1", 1_000, Some(2_000)));
        assert_eq!(
            (upgrade.id.as_str(), upgrade.credits, upgrade.source.as_str()),
            ("plan-1000-2", 4_000, "plan:team")
        );
        assert_eq!(
            plan_grant("pro", 1_000, &[&first, &upgrade], window, 1_300),
            None,
            "a downgrade grants nothing back"
        );
        assert_eq!(plan_grant("free", 0, &[], window, 1_300), None);
    }

    #[test]
    fn huge_numbers_saturate() {
        let grants =
            [grant("a", GrantKind::Purchased, u64::MAX, None), grant("b", GrantKind::Purchased, u64::MAX, None)];

        assert_eq!(balance(&grants, 0).balance, u64::MAX);
        assert_eq!(draws(&grants, u64::MAX, DrawOrder::PurchasedFirst, 0).unwrap().len(), 1);
    }
}
