//! Reading `plans.toml`: the raw TOML shapes, then one step per section, in the order their
//! rules depend on each other (metrics, usage alerts, tiers, prices, credits, credit packs).
//! Every refusal names the line of the value it is about.

use super::{Catalogue, CreditRules, DEFAULT_ALERT_THRESHOLDS, FREE, Limits, Metric, PlanError, Price, Tier};
use crate::domain::credits::{CreditPack, DrawOrder};
use crate::domain::model::Interval;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;

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

/// The catalogue's text, to name the line of a refused value.
struct Text<'a>(&'a str);

impl Text<'_> {
    fn invalid(&self, span: Range<usize>, message: String) -> PlanError {
        let line = self.0[..span.start.min(self.0.len())].matches('\n').count().saturating_add(1);
        PlanError::Invalid { line, message }
    }
}

/// Parses and validates a whole catalogue.
pub(super) fn catalogue(text: &str) -> Result<Catalogue, PlanError> {
    let raw: RawCatalogue = toml::from_str(text).map_err(|e| PlanError::Syntax(e.to_string()))?;
    let text = Text(text);
    let metrics = metrics(&text, raw.metrics)?;
    let alert_thresholds = alert_thresholds(&text, raw.usage)?;
    let tiers = tiers(&text, raw.tiers, &metrics)?;
    let prices = prices(&text, raw.prices, &tiers)?;
    let credits = credit_rules(&text, raw.credits)?;
    let packs = packs(&text, raw.credit_packs, &prices)?;
    let features = tiers.values().flat_map(|t| t.features.iter().cloned()).collect();
    Ok(Catalogue { tiers, prices, features, metrics, alert_thresholds, credits, packs })
}

/// `[metrics.<name>]`: names, and the meter event names they are reported under.
fn metrics(text: &Text, raw: BTreeMap<Spanned<String>, RawMetric>) -> Result<BTreeMap<String, Metric>, PlanError> {
    let mut metrics = BTreeMap::new();
    for (name, raw_metric) in raw {
        let span = name.span();
        let name = name.into_inner();
        if !is_name(&name) {
            return Err(text.invalid(span, format!("metric `{name}` must be lowercase letters, digits and _")));
        }
        if let Some(event_name) = &raw_metric.event_name
            && !is_meter_event_name(event_name)
        {
            return Err(text.invalid(
                span,
                format!("metric `{name}`: event_name must be 1 to 100 letters, digits, `_`, `-` or `.`"),
            ));
        }
        metrics.insert(name.clone(), Metric { name, unit: raw_metric.unit, event_name: raw_metric.event_name });
    }
    Ok(metrics)
}

/// `[usage] alert_thresholds`: percentages, sorted and without repeats.
fn alert_thresholds(text: &Text, raw: Option<RawUsage>) -> Result<Vec<u8>, PlanError> {
    let Some(usage) = raw else { return Ok(DEFAULT_ALERT_THRESHOLDS.to_vec()) };
    let span = usage.alert_thresholds.span();
    let mut thresholds = usage
        .alert_thresholds
        .into_inner()
        .into_iter()
        .map(|t| u8::try_from(t).ok().filter(|t| (1..=100).contains(t)))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| text.invalid(span, "usage.alert_thresholds must be percentages from 1 to 100".into()))?;
    thresholds.sort_unstable();
    thresholds.dedup();
    Ok(thresholds)
}

/// `[tiers.<id>]`: each tier, with a limit for every declared metric; `free` is required.
fn tiers(
    text: &Text,
    raw: BTreeMap<Spanned<String>, RawTier>,
    metrics: &BTreeMap<String, Metric>,
) -> Result<BTreeMap<String, Tier>, PlanError> {
    let mut tiers = BTreeMap::new();
    for (id, raw_tier) in raw {
        let tier = tier(text, id, raw_tier, metrics)?;
        tiers.insert(tier.id.clone(), tier);
    }
    if !tiers.contains_key(FREE) {
        return Err(PlanError::Missing(format!("the tier `{FREE}` is required")));
    }
    Ok(tiers)
}

fn tier(text: &Text, id: Spanned<String>, raw: RawTier, metrics: &BTreeMap<String, Metric>) -> Result<Tier, PlanError> {
    let id_span = id.span();
    let id = id.into_inner();
    if !is_name(&id) {
        return Err(text.invalid(id_span, format!("tier id `{id}` must be lowercase letters, digits and _")));
    }
    let trial_days = match raw.trial_days {
        None => None,
        Some(days) => Some(
            u32::try_from(*days.get_ref())
                .ok()
                .filter(|d| (1..=730).contains(d))
                .ok_or_else(|| text.invalid(days.span(), format!("tier `{id}`: trial_days must be 1 to 730")))?,
        ),
    };
    let credits = match raw.credits {
        None => 0,
        Some(c) => u64::try_from(*c.get_ref())
            .map_err(|_| text.invalid(c.span(), format!("tier `{id}`: credits must not be negative")))?,
    };
    let limit = |field: &str, raw: Spanned<RawLimit>| -> Result<Option<u64>, PlanError> {
        let span = raw.span();
        match raw.into_inner() {
            RawLimit::Count(n) => u64::try_from(n)
                .map(Some)
                .map_err(|_| text.invalid(span, format!("tier `{id}`: {field} must not be negative"))),
            RawLimit::Word(w) if w == "unlimited" => Ok(None),
            RawLimit::Word(w) => {
                Err(text.invalid(span, format!("tier `{id}`: {field} must be a count or \"unlimited\", not `{w}`")))
            }
        }
    };
    let mut usage = BTreeMap::new();
    for (metric, raw_limit) in raw.usage {
        // The key's own line: the first line after the tier's header that sets it.
        let from = id_span.start.min(text.0.len());
        let at = text.0[from..].find(&format!("\n{metric}")).map_or(from, |i| from.saturating_add(i).saturating_add(1));
        let raw_limit = Spanned::new(at..at, raw_limit);
        if !metrics.contains_key(&metric) {
            return Err(text.invalid(
                raw_limit.span(),
                format!("tier `{id}`: `{metric}` is neither a tier field nor a metric declared in [metrics]"),
            ));
        }
        let value = limit(&metric, raw_limit)?;
        usage.insert(metric, value);
    }
    if let Some(missing) = metrics.keys().find(|m| !usage.contains_key(*m)) {
        return Err(text.invalid(id_span, format!("tier `{id}` sets no limit for metric `{missing}`")));
    }
    let limits = Limits { requests_per_minute: limit("requests_per_minute", raw.requests_per_minute)?, usage };
    Ok(Tier { id, name: raw.name, trial_days, features: raw.features.into_iter().collect(), credits, limits })
}

/// `[[prices]]`: unique lookup keys, each buying a paid tier, one price per tier and interval.
fn prices(text: &Text, raw: Vec<RawPrice>, tiers: &BTreeMap<String, Tier>) -> Result<Vec<Price>, PlanError> {
    let mut prices: Vec<Price> = Vec::new();
    for raw_price in raw {
        let key_span = raw_price.lookup_key.span();
        let lookup_key = raw_price.lookup_key.into_inner();
        if prices.iter().any(|p| p.lookup_key == lookup_key) {
            return Err(text.invalid(key_span, format!("duplicate price `{lookup_key}`")));
        }
        let tier_span = raw_price.tier.span();
        let tier = raw_price.tier.into_inner();
        if !tiers.contains_key(&tier) {
            return Err(text.invalid(tier_span, format!("price `{lookup_key}` names unknown tier `{tier}`")));
        }
        if tier == FREE {
            return Err(text.invalid(tier_span, format!("price `{lookup_key}`: the free tier has no price")));
        }
        let interval_span = raw_price.interval.span();
        let interval = Interval::parse(raw_price.interval.get_ref()).ok_or_else(|| {
            text.invalid(interval_span, format!("price `{lookup_key}`: interval must be month or year"))
        })?;
        if prices.iter().any(|p| p.tier == tier && p.interval == interval) {
            return Err(text.invalid(key_span, format!("tier `{tier}` has two {} prices", interval.as_str())));
        }
        let amount_span = raw_price.amount.span();
        let amount = u64::try_from(*raw_price.amount.get_ref())
            .map_err(|_| text.invalid(amount_span, format!("price `{lookup_key}`: amount must not be negative")))?;
        prices.push(Price { lookup_key, tier, interval, amount, currency: raw_price.currency });
    }
    Ok(prices)
}

/// `[credits]`: the cost of each credit event, the draw order and the low-balance line.
fn credit_rules(text: &Text, raw: Option<RawCredits>) -> Result<CreditRules, PlanError> {
    let Some(raw) = raw else { return Ok(CreditRules::default()) };
    let mut costs = BTreeMap::new();
    for (event, cost) in raw.costs {
        let span = event.span();
        let event = event.into_inner();
        if !is_name(&event) {
            return Err(text.invalid(span, format!("credit event `{event}` must be lowercase letters, digits and _")));
        }
        let cost = u64::try_from(*cost.get_ref())
            .ok()
            .filter(|c| (1..=1_000_000).contains(c))
            .ok_or_else(|| text.invalid(cost.span(), format!("credit cost of `{event}` must be 1 to 1000000")))?;
        costs.insert(event, cost);
    }
    let draw_order = match raw.draw_order {
        None => DrawOrder::default(),
        Some(order) => match order.get_ref().as_str() {
            "purchased_first" => DrawOrder::PurchasedFirst,
            "soonest_expiring" => DrawOrder::SoonestExpiring,
            _ => {
                return Err(
                    text.invalid(order.span(), "credits.draw_order must be purchased_first or soonest_expiring".into())
                );
            }
        },
    };
    let low_balance = match raw.low_balance {
        None => 0,
        Some(low) => u64::try_from(*low.get_ref())
            .map_err(|_| text.invalid(low.span(), "credits.low_balance must not be negative".into()))?,
    };
    Ok(CreditRules { costs, draw_order, low_balance })
}

/// `[[credit_packs]]`: unique ids, lookup keys no price uses, credits and amounts in range.
fn packs(text: &Text, raw: Vec<RawPack>, prices: &[Price]) -> Result<Vec<CreditPack>, PlanError> {
    let mut packs: Vec<CreditPack> = Vec::new();
    for raw_pack in raw {
        let id_span = raw_pack.id.span();
        let id = raw_pack.id.into_inner();
        if !is_name(&id) || packs.iter().any(|p| p.id == id) {
            return Err(
                text.invalid(id_span, format!("credit pack `{id}`: ids are unique lowercase letters, digits and _"))
            );
        }
        let key_span = raw_pack.lookup_key.span();
        let lookup_key = raw_pack.lookup_key.into_inner();
        if prices.iter().any(|p| p.lookup_key == lookup_key) || packs.iter().any(|p| p.lookup_key == lookup_key) {
            return Err(text.invalid(key_span, format!("duplicate price `{lookup_key}`")));
        }
        let credits = u64::try_from(*raw_pack.credits.get_ref())
            .ok()
            .filter(|c| (1..=1_000_000_000).contains(c))
            .ok_or_else(|| {
                text.invalid(raw_pack.credits.span(), format!("credit pack `{id}`: credits must be 1 to 1000000000"))
            })?;
        let amount = u64::try_from(*raw_pack.amount.get_ref()).map_err(|_| {
            text.invalid(raw_pack.amount.span(), format!("credit pack `{id}`: amount must not be negative"))
        })?;
        packs.push(CreditPack { id, credits, lookup_key, amount, currency: raw_pack.currency });
    }
    Ok(packs)
}
