//! What `GET /subscription` and `GET /entitlements` answer: the projection, the access
//! decision, and the features and limits of the tier that applies.

use crate::domain::access::{Access, Reason, decide};
use crate::domain::model::{AccountId, Interval, Projection, SubscriptionStatus};
use crate::domain::plans::{Catalogue, Tier};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccessView {
    pub allowed: bool,
    pub reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LimitsView {
    /// Each metric's monthly quota by name (e.g. `api_calls`); `null` is unlimited.
    #[serde(flatten)]
    pub usage: BTreeMap<String, Option<u64>>,
    /// `null` is unlimited.
    pub requests_per_minute: Option<u64>,
    pub credits: u64,
}

/// Features and limits only (`GET /entitlements`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EntitlementsView {
    pub account_id: AccountId,
    pub plan: String,
    pub access: AccessView,
    pub features: BTreeMap<String, bool>,
    pub limits: LimitsView,
}

/// The whole answer of `GET /subscription`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubscriptionView {
    pub account_id: AccountId,
    pub plan: String,
    /// `null` when the account never had a subscription.
    pub status: Option<SubscriptionStatus>,
    pub interval: Option<Interval>,
    pub access: AccessView,
    pub current_period_end: Option<i64>,
    pub cancel_at_period_end: bool,
    pub trial_end: Option<i64>,
    pub grace_until: Option<i64>,
    pub features: BTreeMap<String, bool>,
    pub limits: LimitsView,
}

fn features(catalogue: &Catalogue, tier: &Tier) -> BTreeMap<String, bool> {
    catalogue.features().iter().map(|f| (f.clone(), tier.features.contains(f))).collect()
}

fn limits(tier: &Tier) -> LimitsView {
    LimitsView {
        usage: tier.limits.usage.clone(),
        requests_per_minute: tier.limits.requests_per_minute,
        credits: tier.credits,
    }
}

/// Builds the entitlements for `account` at `now`. A plan the catalogue no longer knows falls
/// back to Free's features, so a catalogue edit can never grant more than it lists.
pub fn entitlements(
    catalogue: &Catalogue,
    account: &AccountId,
    projection: Option<&Projection>,
    now: i64,
) -> EntitlementsView {
    entitlements_with(catalogue, account, decide(projection, now))
}

/// The entitlements of an access decision already made.
pub fn entitlements_with(catalogue: &Catalogue, account: &AccountId, access: Access) -> EntitlementsView {
    let tier = catalogue.tier(&access.plan).unwrap_or_else(|| catalogue.free());
    EntitlementsView {
        account_id: account.clone(),
        plan: tier.id.clone(),
        access: AccessView { allowed: access.allowed, reason: access.reason },
        features: features(catalogue, tier),
        limits: limits(tier),
    }
}

/// Builds the subscription answer for `account` at `now`.
pub fn subscription(
    catalogue: &Catalogue,
    account: &AccountId,
    projection: Option<&Projection>,
    now: i64,
) -> SubscriptionView {
    subscription_with(catalogue, account, projection, decide(projection, now))
}

/// The subscription answer for `projection` and an access decision already made.
pub fn subscription_with(
    catalogue: &Catalogue,
    account: &AccountId,
    projection: Option<&Projection>,
    access: Access,
) -> SubscriptionView {
    let e = entitlements_with(catalogue, account, access);
    SubscriptionView {
        account_id: e.account_id,
        plan: e.plan,
        status: projection.map(|p| p.status),
        interval: projection.and_then(|p| p.interval),
        access: e.access,
        current_period_end: projection.and_then(|p| p.current_period_end),
        cancel_at_period_end: projection.is_some_and(|p| p.cancel_at_period_end),
        trial_end: projection.and_then(|p| p.trial_end),
        grace_until: projection.and_then(|p| p.grace_until),
        features: e.features,
        limits: e.limits,
    }
}

/// One price of a tier, as the pricing table shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PriceView {
    pub interval: Interval,
    pub amount: u64,
    pub currency: String,
    pub lookup_key: String,
}

/// One tier of the pricing table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TierView {
    pub id: String,
    pub name: String,
    pub trial_days: Option<u32>,
    pub features: BTreeMap<String, bool>,
    pub limits: LimitsView,
    pub prices: Vec<PriceView>,
}

/// One credit pack of the pricing table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PackView {
    pub id: String,
    pub credits: u64,
    pub amount: u64,
    pub currency: String,
}

/// `GET /plans`: the catalogue as a pricing table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PricingView {
    /// Free first, then by their cheapest monthly price.
    pub tiers: Vec<TierView>,
    pub credit_packs: Vec<PackView>,
    /// Each metric's unit, by name.
    pub metrics: BTreeMap<String, String>,
    /// What one unit of each credit event costs.
    pub credit_costs: BTreeMap<String, u64>,
}

/// The pricing table of `catalogue` (no I/O: the catalogue is embedded).
pub fn pricing(catalogue: &Catalogue) -> PricingView {
    let mut tiers: Vec<TierView> = catalogue
        .tiers()
        .map(|tier| TierView {
            id: tier.id.clone(),
            name: tier.name.clone(),
            trial_days: tier.trial_days,
            features: features(catalogue, tier),
            limits: limits(tier),
            prices: catalogue
                .prices()
                .iter()
                .filter(|p| p.tier == tier.id)
                .map(|p| PriceView {
                    interval: p.interval,
                    amount: p.amount,
                    currency: p.currency.clone(),
                    lookup_key: p.lookup_key.clone(),
                })
                .collect(),
        })
        .collect();
    let order = |t: &TierView| {
        let monthly = t.prices.iter().filter(|p| p.interval == Interval::Month).map(|p| p.amount).min();
        (t.id != crate::domain::plans::FREE, monthly.unwrap_or(u64::MAX), t.id.clone())
    };
    tiers.sort_by_key(order);
    PricingView {
        tiers,
        credit_packs: catalogue
            .credit_packs()
            .iter()
            .map(|p| PackView { id: p.id.clone(), credits: p.credits, amount: p.amount, currency: p.currency.clone() })
            .collect(),
        metrics: catalogue.metrics().map(|m| (m.name.clone(), m.unit.clone())).collect(),
        credit_costs: catalogue.credits().costs.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_account_reads_free_with_free_limits() {
        let catalogue = Catalogue::builtin().unwrap();
        let account = AccountId::parse("acct_new").unwrap();

        let view = subscription(catalogue, &account, None, 0);

        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["plan"], "free");
        assert_eq!(json["status"], serde_json::Value::Null);
        assert_eq!(json["access"], serde_json::json!({"allowed": true, "reason": "no_subscription"}));
        assert_eq!(json["limits"], serde_json::json!({"api_calls": 100, "requests_per_minute": 10, "credits": 0}));
        assert_eq!(json["features"]["sso"], false);
    }

    #[test]
    fn the_pricing_table_lists_free_first_then_by_monthly_price_with_packs() {
        let view = pricing(Catalogue::builtin().unwrap());

        let ids: Vec<&str> = view.tiers.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["free", "pro", "team", "enterprise"]);
        let pro = &view.tiers[1];
        assert_eq!((pro.trial_days, pro.limits.requests_per_minute, pro.limits.credits), (Some(14), Some(100), 1_000));
        assert_eq!(
            pro.prices.iter().map(|p| (p.interval, p.amount)).collect::<Vec<_>>(),
            [(Interval::Month, 2900), (Interval::Year, 29000)]
        );
        assert!(view.tiers[0].prices.is_empty(), "free has no price");
        assert_eq!(view.credit_packs.len(), 2);
        assert_eq!(view.metrics["api_calls"], "call");
        assert_eq!(view.credit_costs["ai_inference"], 25);
    }
}
