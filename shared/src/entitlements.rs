//! What `GET /subscription` and `GET /entitlements` answer: the projection, the access
//! decision, and the features and limits of the tier that applies.

use crate::access::{Access, Reason, decide};
use crate::model::{AccountId, Interval, Projection, SubscriptionStatus};
use crate::plans::{Catalogue, Tier};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessView {
    pub allowed: bool,
    pub reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
pub struct EntitlementsView {
    pub account_id: AccountId,
    pub plan: String,
    pub access: AccessView,
    pub features: BTreeMap<String, bool>,
    pub limits: LimitsView,
}

/// The whole answer of `GET /subscription`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
}
