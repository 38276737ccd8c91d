//! The DynamoDB adapter of [`MeterStore`]: the meter fields live on the usage counter item
//! itself (`reported`, `pending`, `last`, `revision`, `settlement`), and a due counter carries
//! `meter_due`, the key of the sparse index [`DUE_INDEX`] (keys only: a consumption that finds
//! the counter already due writes nothing to the index).

use super::{DynamoStore, classify, from_item, n, to_item};
use crate::domain::model::AccountId;
use crate::ports::StoreError;
use crate::ports::keys;
use crate::ports::meter::{CounterKey, DuePage, MeterCounter, MeterReport, MeterStore, Settlement};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Deserialize;
use std::collections::HashMap;

/// The sparse global secondary index of due counters (the template's `due` index).
pub const DUE_INDEX: &str = "due";
/// The index's partition key attribute, and its one value.
pub(super) const DUE_ATTRIBUTE: &str = "meter_due";
pub(super) const DUE: &str = "DUE";

/// Separates the partition and sort key in a page cursor (neither key holds it).
const CURSOR_SEPARATOR: char = '\u{1f}';

#[derive(Deserialize)]
struct CounterItem {
    #[serde(default)]
    used: u64,
    #[serde(default)]
    window_end: i64,
    #[serde(default)]
    reported: u64,
    #[serde(default)]
    pending: Option<MeterReport>,
    #[serde(default)]
    last: Option<MeterReport>,
    #[serde(default)]
    revision: u32,
    #[serde(default)]
    meter_due: Option<String>,
    /// Absent on a counter stored before only paid usage was metered: reported, as then.
    #[serde(default)]
    metered: Option<bool>,
    #[serde(default)]
    behind_since: Option<i64>,
    #[serde(default)]
    settlement: Option<Settlement>,
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A map attribute holding `value`.
fn map<T: serde::Serialize>(value: &T) -> Result<AttributeValue, StoreError> {
    Ok(AttributeValue::M(to_item(value)?))
}

/// The condition that a number attribute holds `value` (absent reads as 0).
fn holds(attribute: &str, placeholder: &str, value: u64) -> String {
    if value == 0 {
        format!("(attribute_not_exists({attribute}) OR {attribute} = {placeholder})")
    } else {
        format!("{attribute} = {placeholder}")
    }
}

impl DynamoStore {
    fn counter_update(
        &self,
        key: &CounterKey,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(self.table())
            .key("pk", s(keys::account(&key.account)))
            .key("sk", s(keys::usage(&key.metric, key.window_start)))
    }

    /// Sends a conditional update: `false` when its condition failed.
    async fn conditional(
        &self,
        update: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
    ) -> Result<bool, StoreError> {
        match update.send().await.map_err(|e| classify(e, "meter counter changed")) {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(err) => Err(err),
        }
    }
}

fn parse_key(item: &HashMap<String, AttributeValue>) -> Option<CounterKey> {
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.as_str()),
        _ => None,
    };
    let account = AccountId::parse(text("pk")?.strip_prefix("ACCOUNT#")?).ok()?;
    let (metric, window_start) = keys::parse_usage(text("sk")?)?;
    Some(CounterKey { account, metric: metric.to_owned(), window_start })
}

#[async_trait]
impl MeterStore for DynamoStore {
    async fn due_counters(&self, limit: usize, after: Option<&str>) -> Result<DuePage, StoreError> {
        let start = match after {
            None => None,
            Some(cursor) => {
                let (pk, sk) = cursor
                    .split_once(CURSOR_SEPARATOR)
                    .ok_or_else(|| StoreError::Corrupt("a due-counter cursor without its sort key".into()))?;
                Some(HashMap::from([
                    (DUE_ATTRIBUTE.to_owned(), s(DUE)),
                    ("pk".to_owned(), s(pk)),
                    ("sk".to_owned(), s(sk)),
                ]))
            }
        };
        let out = self
            .client
            .query()
            .table_name(self.table())
            .index_name(DUE_INDEX)
            .key_condition_expression("#due = :due")
            .expression_attribute_names("#due", DUE_ATTRIBUTE)
            .expression_attribute_values(":due", s(DUE))
            .limit(i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| classify(e, "due counters"))?;
        let (counters, cursors) = out
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(|item| {
                let key = parse_key(item)?;
                let cursor = format!(
                    "{}{CURSOR_SEPARATOR}{}",
                    keys::account(&key.account),
                    keys::usage(&key.metric, key.window_start)
                );
                Some((key, cursor))
            })
            .unzip();
        let next = out.last_evaluated_key.and_then(|last| match (last.get("pk"), last.get("sk")) {
            (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) => Some(format!("{pk}{CURSOR_SEPARATOR}{sk}")),
            _ => None,
        });
        Ok(DuePage { counters, cursors, next })
    }

    async fn meter_counter(&self, key: &CounterKey) -> Result<Option<MeterCounter>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(self.table())
            .key("pk", s(keys::account(&key.account)))
            .key("sk", s(keys::usage(&key.metric, key.window_start)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify(e, "meter counter"))?;
        let Some(item) = out.item else { return Ok(None) };
        let item: CounterItem = from_item(item)?;
        Ok(Some(MeterCounter {
            key: key.clone(),
            window_end: item.window_end,
            used: item.used,
            reported: item.reported,
            pending: item.pending,
            last: item.last,
            revision: item.revision,
            due: item.meter_due.is_some(),
            metered: item.metered.unwrap_or(true),
            behind_since: item.behind_since,
            settlement: item.settlement,
        }))
    }

    async fn record_report(&self, key: &CounterKey, revision: u32, report: &MeterReport) -> Result<bool, StoreError> {
        let condition = format!(
            "attribute_exists(pk) AND attribute_not_exists(pending) AND {} AND {}",
            holds("reported", ":from", report.from),
            holds("revision", ":revision", revision.into()),
        );
        let update = self
            .counter_update(key)
            .update_expression("SET pending = :report")
            .condition_expression(condition)
            .expression_attribute_values(":report", map(report)?)
            .expression_attribute_values(":from", n(report.from))
            .expression_attribute_values(":revision", n(revision));
        self.conditional(update).await
    }

    async fn confirm_report(&self, key: &CounterKey, report: &MeterReport) -> Result<bool, StoreError> {
        // Up to date when the counter still holds what the report read; otherwise the units
        // after it were counted after the report read the counter.
        let confirm = |up_to_date: bool| -> Result<_, StoreError> {
            let (set_behind, condition) = if up_to_date {
                (" REMOVE pending, behind_since", "pending.identifier = :identifier AND used = :to")
            } else {
                (", behind_since = :recorded REMOVE pending", "pending.identifier = :identifier")
            };
            let update = self
                .counter_update(key)
                .update_expression(format!("SET reported = :to, #last = :report{set_behind}"))
                .condition_expression(condition)
                .expression_attribute_names("#last", "last")
                .expression_attribute_values(":to", n(report.to))
                .expression_attribute_values(":report", map(report)?)
                .expression_attribute_values(":identifier", s(&report.identifier));
            Ok(if up_to_date { update } else { update.expression_attribute_values(":recorded", n(report.recorded_at)) })
        };
        Ok(self.conditional(confirm(true)?).await? || self.conditional(confirm(false)?).await?)
    }

    async fn abandon_report(&self, key: &CounterKey, pending: &MeterReport) -> Result<bool, StoreError> {
        let update = self
            .counter_update(key)
            .update_expression(
                "SET revision = if_not_exists(revision, :zero) + :one, abandoned = :report REMOVE pending",
            )
            .condition_expression("pending.identifier = :identifier")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":report", map(pending)?)
            .expression_attribute_values(":identifier", s(&pending.identifier));
        self.conditional(update).await
    }

    async fn cancel_report(&self, key: &CounterKey, last: &MeterReport) -> Result<bool, StoreError> {
        let update = self
            .counter_update(key)
            .update_expression("SET reported = :from, revision = if_not_exists(revision, :zero) + :one REMOVE #last")
            .condition_expression("attribute_not_exists(pending) AND #last.identifier = :identifier")
            .expression_attribute_names("#last", "last")
            .expression_attribute_values(":from", n(last.from))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":identifier", s(&last.identifier));
        self.conditional(update).await
    }

    async fn settle(
        &self,
        key: &CounterKey,
        used: u64,
        reported: u64,
        settlement: &Settlement,
    ) -> Result<bool, StoreError> {
        // A failure may leave its pending report (kept for whoever looks into it).
        let pending =
            if matches!(settlement, Settlement::Failed { .. }) { "" } else { "attribute_not_exists(pending) AND " };
        let condition =
            format!("{pending}{} AND {}", holds("used", ":used", used), holds("reported", ":reported", reported));
        let update = self
            .counter_update(key)
            .update_expression("SET settlement = :settlement REMOVE #due")
            .condition_expression(format!("attribute_exists(#due) AND {condition}"))
            .expression_attribute_names("#due", DUE_ATTRIBUTE)
            .expression_attribute_values(":settlement", map(settlement)?)
            .expression_attribute_values(":used", n(used))
            .expression_attribute_values(":reported", n(reported));
        self.conditional(update).await
    }
}
