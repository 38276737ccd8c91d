//! The plan catalogue: which Stripe prices (by lookup key) buy which tier, and what each tier
//! may do (features, monthly quotas of the declared metrics, per-minute rate limits, credits,
//! trial days), and when usage alerts fire.
//!
//! The catalogue is `plans.toml` at the repository root, embedded at build time and parsed
//! once per cold start. Every semantic error names the line it was found on.

use crate::domain::credits::CreditPack;
use crate::domain::model::Interval;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use toml::Spanned;

/// The tier an account without a live subscription gets.
pub const FREE: &str = "free";

const BUILTIN: &str = include_str!("../../../plans.toml");

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCredits {
    #[serde(default)]
    costs: BTreeMap<Spanned<String>, Spanned<i64>>,
    #[serde(default)]
    draw_order: Option<Spanned<String>>,
    #[serde(default)]
    low_balance: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalogue {
    #[serde(default)]
    metrics: BTreeMap<Spanned<String>, RawMetric>,
    #[serde(default)]
    usage: Option<RawUsage>,
    #[serde(default)]
    credits: Option<RawCredits>,
    tiers: BTreeMap<Spanned<String>, RawTier>,
    #[serde(default)]
    prices: Vec<RawPrice>,
    #[serde(default)]
    credit_packs: Vec<RawPack>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPack {
    id: Spanned<String>,
    credits: Spanned<i64>,
    lookup_key: Spanned<String>,
    amount: Spanned<i64>,
    currency: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetric {
    unit: String,
    event_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUsage {
    alert_thresholds: Spanned<Vec<i64>>,
}

/// A tier: its known fields, and one monthly limit per declared metric (`<metric> = <count>`
/// or `"unlimited"`), checked against `[metrics]` by `parse`.
#[derive(Deserialize)]
struct RawTier {
    name: String,
    trial_days: Option<Spanned<i64>>,
    #[serde(default)]
    features: Vec<String>,
    #[serde(default)]
    credits: Option<Spanned<i64>>,
    requests_per_minute: Spanned<RawLimit>,
    /// Spans are lost through `flatten`: `parse` finds each key's line in the text.
    #[serde(flatten)]
    usage: BTreeMap<String, RawLimit>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawLimit {
    Count(i64),
    Word(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrice {
    lookup_key: Spanned<String>,
    tier: Spanned<String>,
    interval: Spanned<String>,
    amount: Spanned<i64>,
    currency: String,
}

/// A tier id, metric or credit event name: lowercase letters, digits and `_`, not empty.
fn is_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A Stripe meter's event name as Tollgate accepts one: 1 to 100 ASCII letters, digits, `_`,
/// `-` or `.`.
fn is_meter_event_name(name: &str) -> bool {
    (1..=100).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
}

impl Catalogue {
    /// The catalogue shipped in the repository, parsed once.
    pub fn builtin() -> Result<&'static Catalogue, PlanError> {
        static CATALOGUE: OnceLock<Result<Catalogue, PlanError>> = OnceLock::new();
        CATALOGUE.get_or_init(|| Catalogue::parse(BUILTIN)).as_ref().map_err(Clone::clone)
    }

    /// Parses and validates a catalogue.
    pub fn parse(text: &str) -> Result<Self, PlanError> {
        let raw: RawCatalogue = toml::from_str(text).map_err(|e| PlanError::Syntax(e.to_string()))?;
        let line =
            |span: std::ops::Range<usize>| text[..span.start.min(text.len())].matches('\n').count().saturating_add(1);
        let invalid = |span, message: String| PlanError::Invalid { line: line(span), message };

        let mut metrics = BTreeMap::new();
        for (name, raw_metric) in raw.metrics {
            let span = name.span();
            let name = name.into_inner();
            if !is_name(&name) {
                return Err(invalid(span, format!("metric `{name}` must be lowercase letters, digits and _")));
            }
            if let Some(event_name) = &raw_metric.event_name
                && !is_meter_event_name(event_name)
            {
                return Err(invalid(
                    span,
                    format!("metric `{name}`: event_name must be 1 to 100 letters, digits, `_`, `-` or `.`"),
                ));
            }
            metrics.insert(name.clone(), Metric { name, unit: raw_metric.unit, event_name: raw_metric.event_name });
        }
        let alert_thresholds = match raw.usage {
            None => DEFAULT_ALERT_THRESHOLDS.to_vec(),
            Some(usage) => {
                let span = usage.alert_thresholds.span();
                let mut thresholds = usage
                    .alert_thresholds
                    .into_inner()
                    .into_iter()
                    .map(|t| u8::try_from(t).ok().filter(|t| (1..=100).contains(t)))
                    .collect::<Option<Vec<u8>>>()
                    .ok_or_else(|| invalid(span, "usage.alert_thresholds must be percentages from 1 to 100".into()))?;
                thresholds.sort_unstable();
                thresholds.dedup();
                thresholds
            }
        };

        let mut tiers = BTreeMap::new();
        for (id, raw_tier) in raw.tiers {
            let id_span = id.span();
            let id = id.into_inner();
            if !is_name(&id) {
                return Err(invalid(id_span, format!("tier id `{id}` must be lowercase letters, digits and _")));
            }
            let trial_days = match raw_tier.trial_days {
                None => None,
                Some(days) => {
                    let span = days.span();
                    let value = u32::try_from(*days.get_ref())
                        .ok()
                        .filter(|d| (1..=730).contains(d))
                        .ok_or_else(|| invalid(span, format!("tier `{id}`: trial_days must be 1 to 730")))?;
                    Some(value)
                }
            };
            let credits = match raw_tier.credits {
                None => 0,
                Some(c) => {
                    let span = c.span();
                    u64::try_from(*c.get_ref())
                        .map_err(|_| invalid(span, format!("tier `{id}`: credits must not be negative")))?
                }
            };
            let limit = |field: &str, raw: Spanned<RawLimit>| -> Result<Option<u64>, PlanError> {
                let span = raw.span();
                match raw.into_inner() {
                    RawLimit::Count(n) => u64::try_from(n)
                        .map(Some)
                        .map_err(|_| invalid(span, format!("tier `{id}`: {field} must not be negative"))),
                    RawLimit::Word(w) if w == "unlimited" => Ok(None),
                    RawLimit::Word(w) => {
                        Err(invalid(span, format!("tier `{id}`: {field} must be a count or \"unlimited\", not `{w}`")))
                    }
                }
            };
            let mut usage = BTreeMap::new();
            for (metric, raw_limit) in raw_tier.usage {
                // The key's own line: the first line after the tier's header that sets it.
                let from = id_span.start.min(text.len());
                let at = text[from..]
                    .find(&format!("\n{metric}"))
                    .map_or(from, |i| from.saturating_add(i).saturating_add(1));
                let raw_limit = Spanned::new(at..at, raw_limit);
                if !metrics.contains_key(&metric) {
                    let span = raw_limit.span();
                    return Err(invalid(
                        span,
                        format!("tier `{id}`: `{metric}` is neither a tier field nor a metric declared in [metrics]"),
                    ));
                }
                let value = limit(&metric, raw_limit)?;
                usage.insert(metric, value);
            }
            if let Some(missing) = metrics.keys().find(|m| !usage.contains_key(*m)) {
                return Err(invalid(id_span, format!("tier `{id}` sets no limit for metric `{missing}`")));
            }
            let limits =
                Limits { requests_per_minute: limit("requests_per_minute", raw_tier.requests_per_minute)?, usage };
            let tier = Tier {
                id: id.clone(),
                name: raw_tier.name,
                trial_days,
                features: raw_tier.features.into_iter().collect(),
                credits,
                limits,
            };
            tiers.insert(id, tier);
        }
        if !tiers.contains_key(FREE) {
            return Err(PlanError::Missing(format!("the tier `{FREE}` is required")));
        }

        let mut prices: Vec<Price> = Vec::new();
        for raw_price in raw.prices {
            let key_span = raw_price.lookup_key.span();
            let lookup_key = raw_price.lookup_key.into_inner();
            if prices.iter().any(|p| p.lookup_key == lookup_key) {
                return Err(invalid(key_span, format!("duplicate price `{lookup_key}`")));
            }
            let tier_span = raw_price.tier.span();
            let tier = raw_price.tier.into_inner();
            if !tiers.contains_key(&tier) {
                return Err(invalid(tier_span, format!("price `{lookup_key}` names unknown tier `{tier}`")));
            }
            if tier == FREE {
                return Err(invalid(tier_span, format!("price `{lookup_key}`: the free tier has no price")));
            }
            let interval_span = raw_price.interval.span();
            let interval = Interval::parse(raw_price.interval.get_ref()).ok_or_else(|| {
                invalid(interval_span, format!("price `{lookup_key}`: interval must be month or year"))
            })?;
            if prices.iter().any(|p| p.tier == tier && p.interval == interval) {
                return Err(invalid(key_span, format!("tier `{tier}` has two {} prices", interval.as_str())));
            }
            let amount_span = raw_price.amount.span();
            let amount = u64::try_from(*raw_price.amount.get_ref())
                .map_err(|_| invalid(amount_span, format!("price `{lookup_key}`: amount must not be negative")))?;
            prices.push(Price { lookup_key, tier, interval, amount, currency: raw_price.currency });
        }

        let features = tiers.values().flat_map(|t| t.features.iter().cloned()).collect();
        let credits = match raw.credits {
            None => CreditRules::default(),
            Some(raw_credits) => {
                let mut costs = BTreeMap::new();
                for (event, cost) in raw_credits.costs {
                    let span = event.span();
                    let event = event.into_inner();
                    if !is_name(&event) {
                        return Err(invalid(
                            span,
                            format!("credit event `{event}` must be lowercase letters, digits and _"),
                        ));
                    }
                    let cost = u64::try_from(*cost.get_ref()).ok().filter(|c| (1..=1_000_000).contains(c)).ok_or_else(
                        || invalid(cost.span(), format!("credit cost of `{event}` must be 1 to 1000000")),
                    )?;
                    costs.insert(event, cost);
                }
                let draw_order = match raw_credits.draw_order {
                    None => crate::domain::credits::DrawOrder::default(),
                    Some(order) => match order.get_ref().as_str() {
                        "purchased_first" => crate::domain::credits::DrawOrder::PurchasedFirst,
                        "soonest_expiring" => crate::domain::credits::DrawOrder::SoonestExpiring,
                        _ => {
                            return Err(invalid(
                                order.span(),
                                "credits.draw_order must be purchased_first or soonest_expiring".into(),
                            ));
                        }
                    },
                };
                let low_balance = match raw_credits.low_balance {
                    None => 0,
                    Some(low) => u64::try_from(*low.get_ref())
                        .map_err(|_| invalid(low.span(), "credits.low_balance must not be negative".into()))?,
                };
                CreditRules { costs, draw_order, low_balance }
            }
        };
        let mut packs: Vec<CreditPack> = Vec::new();
        for raw_pack in raw.credit_packs {
            let id_span = raw_pack.id.span();
            let id = raw_pack.id.into_inner();
            if !is_name(&id) || packs.iter().any(|p| p.id == id) {
                return Err(invalid(
                    id_span,
                    format!("credit pack `{id}`: ids are unique lowercase letters, digits and _"),
                ));
            }
            let key_span = raw_pack.lookup_key.span();
            let lookup_key = raw_pack.lookup_key.into_inner();
            if prices.iter().any(|p| p.lookup_key == lookup_key) || packs.iter().any(|p| p.lookup_key == lookup_key) {
                return Err(invalid(key_span, format!("duplicate price `{lookup_key}`")));
            }
            let credits = u64::try_from(*raw_pack.credits.get_ref())
                .ok()
                .filter(|c| (1..=1_000_000_000).contains(c))
                .ok_or_else(|| {
                invalid(raw_pack.credits.span(), format!("credit pack `{id}`: credits must be 1 to 1000000000"))
            })?;
            let amount = u64::try_from(*raw_pack.amount.get_ref()).map_err(|_| {
                invalid(raw_pack.amount.span(), format!("credit pack `{id}`: amount must not be negative"))
            })?;
            packs.push(CreditPack { id, credits, lookup_key, amount, currency: raw_pack.currency });
        }
        Ok(Self { tiers, prices, features, metrics, alert_thresholds, credits, packs })
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
