//! A snapshot of a customer's subscriptions as Stripe holds them, in plain types: what the
//! projection is built from (the `Billing` port reads it, the domain projects it).

use crate::domain::model::{Interval, SubscriptionStatus};
use crate::domain::plans::Catalogue;

/// A subscription as Stripe holds it now, reduced to what the projection needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSubscription {
    pub id: String,
    pub customer_id: String,
    pub status: SubscriptionStatus,
    /// Every item: the plan's, and any add-ons (see [`RemoteSubscription::plan_item`]).
    pub items: Vec<RemoteItem>,
    pub trial_end: Option<i64>,
    pub cancel_at_period_end: bool,
    pub created: i64,
    /// Stripe's `billing_cycle_anchor`: where its periods step from (the day clamped).
    pub billing_cycle_anchor: Option<i64>,
    /// When it ended (canceled or expired), if it did.
    pub ended_at: Option<i64>,
    /// The account id Tollgate put in the subscription's metadata, if any.
    pub account_hint: Option<String>,
    /// The newest invoice the subscription made: the one that paid its current period.
    pub latest_invoice: Option<String>,
}

/// One item of a subscription: a price, and the billing period it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteItem {
    pub id: String,
    /// Stripe's price id (what a price without a catalogue lookup key is reported by).
    pub price_id: String,
    pub price_lookup_key: Option<String>,
    pub interval: Option<Interval>,
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
}

impl RemoteSubscription {
    /// The item that carries the plan: the first whose price is in the catalogue (add-ons
    /// are not the plan), else the first item.
    pub fn plan_item(&self, catalogue: &Catalogue) -> Option<&RemoteItem> {
        let in_catalogue = |item: &&RemoteItem| {
            item.price_lookup_key.as_deref().is_some_and(|key| catalogue.price_by_lookup_key(key).is_some())
        };
        self.items.iter().find(in_catalogue).or_else(|| self.items.first())
    }
}
