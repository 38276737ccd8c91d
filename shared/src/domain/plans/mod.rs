//! The plan catalogue: which Stripe prices (by lookup key) buy which tier, and what each tier
//! may do (features, monthly quotas of the declared metrics, per-minute rate limits, credits,
//! trial days), and when usage alerts fire.
//!
//! The catalogue is `plans.toml` at the repository root, embedded at build time and parsed
//! once per cold start. Every semantic error names the line it was found on.

use crate::domain::credits::CreditPack;
use crate::domain::model::Interval;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

/// The tier an account without a live subscription gets.
pub const FREE: &str = "free";

mod parse;

const BUILTIN: &str = include_str!("../../../../plans.toml");

/// Why a catalogue was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("plans: {0}")]
    Syntax(String),
    #[error("plans line {line}: {message}")]
    Invalid { line: usize, message: String },
    #[error("plans: {0}")]
    Missing(String),
}

/// A tier's limits; `None` means unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Limits {
    /// Requests per minute (counted per request, not per unit).
    pub requests_per_minute: Option<u64>,
    /// The monthly quota of each declared metric.
    pub usage: BTreeMap<String, Option<u64>>,
}

/// A metered quantity (`[metrics.<name>]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metric {
    pub name: String,
    /// What one unit is, e.g. `call`.
    pub unit: String,
    /// The Stripe Billing Meter's `event_name` this metric is reported to (by the sync), if
    /// it is billed for usage.
    pub event_name: Option<String>,
}

/// Usage alerts sent when less is left than before: default 80% and 100% of a limit.
pub const DEFAULT_ALERT_THRESHOLDS: [u8; 2] = [80, 100];

/// A tier of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    pub id: String,
    pub name: String,
    pub trial_days: Option<u32>,
    pub features: BTreeSet<String>,
    pub credits: u64,
    pub limits: Limits,
}

/// A Stripe price that buys a tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    pub lookup_key: String,
    pub tier: String,
    pub interval: Interval,
    pub amount: u64,
    pub currency: String,
}

/// The validated catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalogue {
    tiers: BTreeMap<String, Tier>,
    prices: Vec<Price>,
    features: BTreeSet<String>,
    metrics: BTreeMap<String, Metric>,
    alert_thresholds: Vec<u8>,
    credits: CreditRules,
    packs: Vec<CreditPack>,
}

/// How credits are spent (`[credits]`): the cost of each event, the order grants are drawn in,
/// and the balance under which a low-balance notification is sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreditRules {
    pub costs: BTreeMap<String, u64>,
    pub draw_order: crate::domain::credits::DrawOrder,
    pub low_balance: u64,
}

impl Catalogue {
    /// The catalogue shipped in the repository, parsed once.
    pub fn builtin() -> Result<&'static Catalogue, PlanError> {
        static CATALOGUE: OnceLock<Result<Catalogue, PlanError>> = OnceLock::new();
        CATALOGUE.get_or_init(|| Catalogue::parse(BUILTIN)).as_ref().map_err(Clone::clone)
    }

    /// Parses and validates a catalogue (see [`parse`] for the rules of each section).
    pub fn parse(text: &str) -> Result<Self, PlanError> {
        parse::catalogue(text)
    }

    /// The tier with this id.
    pub fn tier(&self, id: &str) -> Option<&Tier> {
        self.tiers.get(id)
    }

    /// Every tier, by id.
    pub fn tiers(&self) -> impl Iterator<Item = &Tier> {
        self.tiers.values()
    }

    /// The free tier (always present: `parse` refuses a catalogue without it).
    pub fn free(&self) -> &Tier {
        &self.tiers[FREE]
    }

    /// The price that buys `tier` at `interval`.
    pub fn price(&self, tier: &str, interval: Interval) -> Option<&Price> {
        self.prices.iter().find(|p| p.tier == tier && p.interval == interval)
    }

    /// The price with this Stripe lookup key.
    pub fn price_by_lookup_key(&self, lookup_key: &str) -> Option<&Price> {
        self.prices.iter().find(|p| p.lookup_key == lookup_key)
    }

    /// Every price, in file order.
    pub fn prices(&self) -> &[Price] {
        &self.prices
    }

    /// Every feature flag any tier has, sorted.
    pub fn features(&self) -> &BTreeSet<String> {
        &self.features
    }

    /// The metric with this name.
    pub fn metric(&self, name: &str) -> Option<&Metric> {
        self.metrics.get(name)
    }

    /// Every declared metric, by name.
    pub fn metrics(&self) -> impl Iterator<Item = &Metric> {
        self.metrics.values()
    }

    /// The credit packs, in catalogue order.
    pub fn credit_packs(&self) -> &[CreditPack] {
        &self.packs
    }

    /// The credit pack with this id.
    pub fn credit_pack(&self, id: &str) -> Option<&CreditPack> {
        self.packs.iter().find(|p| p.id == id)
    }

    /// How credits are spent.
    pub fn credits(&self) -> &CreditRules {
        &self.credits
    }

    /// The percentages of a limit at which a usage alert is sent, ascending.
    pub fn alert_thresholds(&self) -> &[u8] {
        &self.alert_thresholds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[metrics.api_calls]
unit = "call"

[tiers.free]
name = "Free"
api_calls = 100
requests_per_minute = 10

[tiers.pro]
name = "Pro"
trial_days = 14
features = ["sso"]
api_calls = 10
requests_per_minute = "unlimited"

[[prices]]
lookup_key = "pro_monthly"
tier = "pro"
interval = "month"
amount = 2900
currency = "usd"
"#;

    #[test]
    fn credit_rules_are_checked() {
        let with = |section: &str| Catalogue::parse(&format!("{MINIMAL}\n{section}"));

        let soonest = with("[credits]\ndraw_order = \"soonest_expiring\"\n[credits.costs]\nx = 3\n").unwrap();
        assert_eq!(soonest.credits().draw_order, crate::domain::credits::DrawOrder::SoonestExpiring);
        assert_eq!(soonest.credits().costs["x"], 3);
        for bad in [
            "[credits]\ndraw_order = \"newest\"\n",
            "[credits]\nlow_balance = -1\n",
            "[credits.costs]\nx = 0\n",
            "[credits.costs]\nx = 1000001\n",
            "[credits.costs]\nBad = 1\n",
            "[[credit_packs]]\nid = \"p\"\ncredits = 0\nlookup_key = \"p\"\namount = 1\ncurrency = \"usd\"\n",
            "[[credit_packs]]\nid = \"p\"\ncredits = 5\nlookup_key = \"pro_monthly\"\namount = 1\ncurrency = \"usd\"\n",
        ] {
            assert!(matches!(with(bad), Err(PlanError::Invalid { .. })), "{bad}");
        }
    }

    #[test]
    fn builtin_catalogue_matches_the_published_plans() {
        let catalogue = Catalogue::builtin().expect("plans.toml is valid");

        let expect = [
            ("free", Some(100), Some(10), None),
            ("pro", Some(10_000), Some(100), Some(14)),
            ("team", Some(100_000), Some(500), Some(14)),
            ("enterprise", None, None, None),
        ];
        for (id, calls, rpm, trial) in expect {
            let tier = catalogue.tier(id).unwrap();
            assert_eq!(tier.limits.usage["api_calls"], calls, "{id}");
            assert_eq!(tier.limits.requests_per_minute, rpm, "{id}");
            assert_eq!(tier.trial_days, trial, "{id}");
        }
        let amounts: Vec<_> = catalogue.prices().iter().map(|p| (p.lookup_key.as_str(), p.amount)).collect();
        assert_eq!(
            amounts,
            [
                ("pro_monthly", 2900),
                ("pro_yearly", 29000),
                ("team_monthly", 9900),
                ("team_yearly", 99000),
                ("enterprise_monthly", 29900),
                ("enterprise_yearly", 299000)
            ]
        );
        let costs: Vec<_> = catalogue.credits().costs.iter().map(|(e, c)| (e.as_str(), *c)).collect();
        assert_eq!(
            costs,
            [("ai_inference", 25), ("api_call_basic", 1), ("api_call_premium", 5), ("storage_gb_month", 10)]
        );
        assert_eq!(catalogue.credits().draw_order, crate::domain::credits::DrawOrder::PurchasedFirst);
        assert_eq!(catalogue.credits().low_balance, 100);
        let packs: Vec<_> = catalogue
            .credit_packs()
            .iter()
            .map(|p| (p.id.as_str(), p.credits, p.lookup_key.as_str(), p.amount))
            .collect();
        assert_eq!(
            packs,
            [("credits_1000", 1_000, "credits_1000", 1000), ("credits_10000", 10_000, "credits_10000", 8000)]
        );
        for tier in ["pro", "team", "enterprise"] {
            assert!(catalogue.price(tier, Interval::Month).is_some(), "{tier} monthly");
            assert!(catalogue.price(tier, Interval::Year).is_some(), "{tier} yearly");
        }
    }

    #[test]
    fn unlimited_is_none_and_features_are_collected() {
        let catalogue = Catalogue::parse(MINIMAL).unwrap();

        let pro = catalogue.tier("pro").unwrap();

        assert_eq!(pro.limits.requests_per_minute, None);
        assert_eq!(catalogue.features().iter().collect::<Vec<_>>(), ["sso"]);
        assert_eq!(catalogue.price_by_lookup_key("pro_monthly").unwrap().tier, "pro");
    }

    #[test]
    fn unknown_tier_is_an_error_naming_its_line() {
        let text = MINIMAL.replace("tier = \"pro\"", "tier = \"gold\"");

        let err = Catalogue::parse(&text).unwrap_err();

        assert_eq!(
            err,
            PlanError::Invalid { line: 19, message: "price `pro_monthly` names unknown tier `gold`".into() }
        );
    }

    #[test]
    fn duplicate_price_is_an_error_naming_its_line() {
        let text = format!(
            "{MINIMAL}\n[[prices]]\nlookup_key = \"pro_monthly\"\ntier = \"pro\"\ninterval = \"year\"\namount = 1\ncurrency = \"usd\"\n"
        );

        let err = Catalogue::parse(&text).unwrap_err();

        assert_eq!(err, PlanError::Invalid { line: 25, message: "duplicate price `pro_monthly`".into() });
    }

    #[test]
    fn negative_limit_is_an_error_naming_its_line() {
        let text = MINIMAL.replace("api_calls = 10\n", "api_calls = -5\n");

        let err = Catalogue::parse(&text).unwrap_err();

        assert_eq!(err, PlanError::Invalid { line: 14, message: "tier `pro`: api_calls must not be negative".into() });
    }

    #[test]
    fn catalogue_without_free_is_refused() {
        let text = MINIMAL.replace("[tiers.free]", "[tiers.basic]");

        assert!(matches!(Catalogue::parse(&text), Err(PlanError::Missing(_))));
    }

    #[test]
    fn unknown_field_is_a_syntax_error_with_position() {
        let text = MINIMAL.replace("name = \"Pro\"", "name = \"Pro\"\ncolour = \"red\"");

        let err = Catalogue::parse(&text).unwrap_err().to_string();

        assert!(err.contains("colour") && err.contains("line"), "{err}");
    }

    #[test]
    fn metrics_are_declared_once_and_limited_by_every_tier() {
        let catalogue = Catalogue::parse(MINIMAL).unwrap();
        let undeclared = MINIMAL.replace("[metrics.api_calls]\nunit = \"call\"\n", "");
        let missing = MINIMAL.replace("api_calls = 10\n", "");

        assert_eq!(catalogue.metric("api_calls").unwrap().unit, "call");
        assert_eq!(catalogue.tier("pro").unwrap().limits.usage["api_calls"], Some(10));
        assert_eq!(catalogue.alert_thresholds(), DEFAULT_ALERT_THRESHOLDS);
        let err = Catalogue::parse(&undeclared).unwrap_err().to_string();
        assert!(err.contains("`api_calls` is neither a tier field nor a metric"), "{err}");
        let err = Catalogue::parse(&missing).unwrap_err().to_string();
        assert!(err.contains("tier `pro` sets no limit for metric `api_calls`"), "{err}");
    }

    #[test]
    fn a_metric_may_name_the_stripe_meter_it_is_reported_to() {
        let metered = MINIMAL.replace("unit = \"call\"\n", "unit = \"call\"\nevent_name = \"api_calls\"\n");
        let bad = MINIMAL.replace("unit = \"call\"\n", "unit = \"call\"\nevent_name = \"api calls!\"\n");

        assert_eq!(Catalogue::parse(MINIMAL).unwrap().metric("api_calls").unwrap().event_name, None);
        assert_eq!(
            Catalogue::parse(&metered).unwrap().metric("api_calls").unwrap().event_name.as_deref(),
            Some("api_calls")
        );
        let err = Catalogue::parse(&bad).unwrap_err().to_string();
        assert!(err.contains("event_name must be"), "{err}");
    }

    #[test]
    fn alert_thresholds_are_percentages() {
        let text = format!("[usage]\nalert_thresholds = [100, 50, 50]\n{MINIMAL}");
        let bad = format!("[usage]\nalert_thresholds = [0, 150]\n{MINIMAL}");

        assert_eq!(Catalogue::parse(&text).unwrap().alert_thresholds(), [50, 100]);
        assert!(Catalogue::parse(&bad).unwrap_err().to_string().contains("percentages"));
    }
}
