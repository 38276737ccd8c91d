//! The billing projection the product reads, and the small value types around it.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The product's own account identifier, taken from the caller's verified identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct AccountId(String);

/// Why a string cannot be an account id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("account id must be 1 to 128 characters of letters, digits and -_.:@|")]
pub struct InvalidAccountId;

impl AccountId {
    /// Validates an account id: non-empty, at most 128 characters, no `#` (the key separator)
    /// and nothing outside a conservative set, so it can never forge another item's key.
    /// What [`AccountId::parse`] accepts, as a regular expression (the API's contract).
    pub const PATTERN: &'static str = "^[A-Za-z0-9._:@|-]{1,128}$";

    pub fn parse(raw: &str) -> Result<Self, InvalidAccountId> {
        let ok = !raw.is_empty()
            && raw.len() <= 128
            && raw.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:@|".contains(c));
        if ok { Ok(Self(raw.to_owned())) } else { Err(InvalidAccountId) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Billing interval of a price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    Month,
    Year,
}

impl Interval {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Month => "month",
            Self::Year => "year",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "month" => Some(Self::Month),
            "year" => Some(Self::Year),
            _ => None,
        }
    }
}

/// Stripe's subscription statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    Incomplete,
    IncompleteExpired,
    Trialing,
    Active,
    PastDue,
    Canceled,
    Unpaid,
    Paused,
}

impl SubscriptionStatus {
    pub const ALL: [Self; 8] = [
        Self::Incomplete,
        Self::IncompleteExpired,
        Self::Trialing,
        Self::Active,
        Self::PastDue,
        Self::Canceled,
        Self::Unpaid,
        Self::Paused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Incomplete => "incomplete",
            Self::IncompleteExpired => "incomplete_expired",
            Self::Trialing => "trialing",
            Self::Active => "active",
            Self::PastDue => "past_due",
            Self::Canceled => "canceled",
            Self::Unpaid => "unpaid",
            Self::Paused => "paused",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// A live subscription still bills or may bill again; a new checkout must not start
    /// beside it (the customer changes plan instead).
    pub fn is_live(self) -> bool {
        !matches!(self, Self::Canceled | Self::IncompleteExpired)
    }
}

/// What Tollgate knows about an account's subscription: the projection of Stripe's state
/// that every read is answered from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Projection {
    pub account_id: AccountId,
    pub customer_id: String,
    pub subscription_id: Option<String>,
    pub status: SubscriptionStatus,
    /// Tier id from the plan catalogue (`pro`, `team`, ...).
    pub plan: String,
    pub price_lookup_key: Option<String>,
    pub interval: Option<Interval>,
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
    /// Stripe's `billing_cycle_anchor`: the usage windows' monthly steps start from it.
    #[serde(default)]
    pub billing_cycle_anchor: Option<i64>,
    /// Where the usage window in progress began (`domain::usage`'s rule); `None` before the
    /// first one was kept.
    #[serde(default)]
    pub window_origin: Option<WindowOrigin>,
    pub trial_end: Option<i64>,
    pub cancel_at_period_end: bool,
    /// Unix seconds until which a `past_due` subscription keeps access.
    pub grace_until: Option<i64>,
    /// Open disputes (their ids); any open dispute revokes access.
    #[serde(default)]
    pub open_disputes: Vec<String>,
    /// Set when the current period was refunded in full: the account drops to Free.
    #[serde(default)]
    pub refunded_period_end: Option<i64>,
    /// Stripe entitlement lookup keys, when Stripe sent them.
    #[serde(default)]
    pub entitlements: Vec<String>,
    /// When the Stripe state behind this projection was read, in Unix milliseconds. A write
    /// only lands if it is newer than what is stored.
    pub version: i64,
}

/// Where the usage window in progress began, kept in the projection (`domain::usage`'s rule): it runs from `start` to the
/// schedule's first boundary after `after` (both Unix seconds), and windows follow the
/// schedule from there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowOrigin {
    pub start: i64,
    pub after: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_id_rejects_key_separators_and_empty() {
        assert!(AccountId::parse("acct_42").is_ok());
        assert!(AccountId::parse("user@example.com").is_ok());
        assert_eq!(AccountId::parse(""), Err(InvalidAccountId));
        assert_eq!(AccountId::parse("a#SUBSCRIPTION"), Err(InvalidAccountId));
        assert_eq!(AccountId::parse(&"a".repeat(129)), Err(InvalidAccountId));
    }

    #[test]
    fn status_round_trips_through_its_stripe_name() {
        for status in SubscriptionStatus::ALL {
            assert_eq!(SubscriptionStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(SubscriptionStatus::parse("bogus"), None);
    }
}
