//! The DynamoDB adapter of [`UsageStore`]: a consumption is one `TransactWriteItems` of its
//! idempotency record (only if new), the per-minute window (only if it has room) and the
//! metric's counter (only if it stays within the limit); the cancellation reasons say which
//! condition refused it.

use super::{DynamoStore, IS_NEW, Keyed, REQUEST_RECORD_TTL, meter, n, to_item};
use crate::domain::model::AccountId;
use crate::domain::usage::Window;
use crate::ports::StoreError;
use crate::ports::keys;
use crate::ports::usage::{Consumed, Consumption, Refunded, Tally, UsageRecord, UsageStore};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem};
use std::collections::HashMap;

/// Guards a counter: the quantity still fits (`:room` is the limit less the quantity).
const FITS: &str = "attribute_not_exists(used) OR used <= :room";
/// Guards a refund's counter: it holds at least the quantity.
const HOLDS: &str = "used >= :quantity";

/// Usage counters are kept about 13 months (for the history).
const COUNTER_TTL: i64 = 400 * 86_400;

/// A whole non-negative number attribute `name` of `item`; absent reads as 0.
fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Result<u64, StoreError> {
    match item.get(name) {
        None => Ok(0),
        Some(AttributeValue::N(raw)) => {
            raw.parse().map_err(|_| StoreError::Corrupt(format!("`{name}` is not a whole number: {raw}")))
        }
        Some(_) => Err(StoreError::Corrupt(format!("`{name}` is not a number"))),
    }
}

/// A usage counter item's count.
pub(super) fn counted(item: &HashMap<String, AttributeValue>) -> Result<u64, StoreError> {
    number(item, "used")
}

impl DynamoStore {
    fn counter_key(account: &AccountId, metric: &str, window: &Window) -> (String, String) {
        (keys::account(account), keys::usage(metric, window.start))
    }
}

#[async_trait]
impl UsageStore for DynamoStore {
    async fn consume(&self, c: &Consumption<'_>) -> Result<Consumed, StoreError> {
        let record = c.record;
        let window = &record.window;
        let Some(room) = c.limit.map_or(Some(None), |limit| limit.checked_sub(record.quantity).map(Some)) else {
            // More than the whole limit: nothing can be written, so only a replay is possible.
            return Ok(match self.usage_record(c.account, c.key).await? {
                Some(earlier) => Consumed::Replayed(earlier),
                None => Consumed::QuotaExceeded(
                    self.tally(c.account, &record.metric, window, c.rate.map(|l| l.window(c.now_ms).start_ms)).await?,
                ),
            });
        };
        let mut keyed = Keyed::new(keys::usage_request(c.account, c.key), keys::IDEMPOTENCY, record);
        keyed.expires_at = Some(record.at.saturating_add(REQUEST_RECORD_TTL));
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(to_item(&keyed)?))
            .condition_expression(IS_NEW)
            .build()
            .expect("table, item and condition are set");
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        let rate_window = c.rate.map(|limit| (limit, limit.window(c.now_ms)));
        let tally = || self.tally(c.account, &record.metric, window, rate_window.map(|(_, w)| w.start_ms));
        if let Some((limit, rate)) = rate_window {
            // The per-minute limit: the same conditional update as any rate window's.
            items.push(TransactWriteItem::builder().update(self.rate_window(c.account, "usage", limit, rate)).build());
        }
        // A metered counter is listed as due for the sync's meter report (the index's key
        // is written once: later consumptions leave it as it is).
        // `metered` says whether the counter is paid usage (a refund may list any counter).
        let set_due = if c.metered {
            ", #due = :due, metered = :metered, behind_since = if_not_exists(behind_since, :at)"
        } else {
            ", metered = :metered"
        };
        let (pk, sk) = Self::counter_key(c.account, &record.metric, window);
        let mut counter = self
            .update(pk, sk)
            .update_expression(format!("ADD used :quantity SET window_end = :end, expires_at = :expires{set_due}"))
            .expression_attribute_values(":quantity", n(record.quantity))
            .expression_attribute_values(":end", n(window.end))
            .expression_attribute_values(":metered", AttributeValue::Bool(c.metered))
            .expression_attribute_values(":expires", n(window.end.saturating_add(COUNTER_TTL)));
        if let Some(room) = room {
            counter = counter.condition_expression(FITS).expression_attribute_values(":room", n(room));
        }
        if c.metered {
            counter = counter
                .expression_attribute_names("#due", meter::DUE_ATTRIBUTE)
                .expression_attribute_values(":due", AttributeValue::S(meter::DUE.to_owned()))
                .expression_attribute_values(":at", n(record.at));
        }
        items
            .push(TransactWriteItem::builder().update(counter.build().expect("table, key and update are set")).build());
        let counter_at = items.len().saturating_sub(1);

        match self.transact(items, "usage").await? {
            Ok(()) => Ok(Consumed::Counted(tally().await?)),
            Err(failed) if failed.first() == Some(&true) => match self.usage_record(c.account, c.key).await? {
                Some(earlier) => Ok(Consumed::Replayed(earlier)),
                // Refunded and expired between the two reads: decide again.
                None => Err(StoreError::Conflict("usage record changed")),
            },
            Err(failed) if rate_window.is_some() && failed.get(1) == Some(&true) => {
                let (_, rate) = rate_window.expect("checked");
                Ok(Consumed::RateLimited { retry_after_ms: rate.retry_after_ms(c.now_ms) })
            }
            Err(failed) if failed.get(counter_at) == Some(&true) => Ok(Consumed::QuotaExceeded(tally().await?)),
            Err(_) => Err(StoreError::Conflict("usage")),
        }
    }

    async fn mark_threshold(
        &self,
        account: &AccountId,
        metric: &str,
        window: &Window,
        pct: u8,
    ) -> Result<bool, StoreError> {
        let mut marker = Keyed::new(keys::account(account), &keys::usage_alert(metric, window.start, pct), ());
        marker.expires_at = Some(window.end.saturating_add(COUNTER_TTL));
        let put = self
            .client
            .put_item()
            .table_name(self.table())
            .set_item(Some(to_item(&marker)?))
            .condition_expression(IS_NEW)
            .send()
            .await;
        match put.map_err(|e| super::classify(e, "threshold marked")) {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(other) => Err(other),
        }
    }

    async fn usage_record(&self, account: &AccountId, key: &str) -> Result<Option<UsageRecord>, StoreError> {
        self.get(keys::usage_request(account, key), keys::IDEMPOTENCY).await
    }

    async fn refund(&self, account: &AccountId, key: &str) -> Result<Refunded, StoreError> {
        let Some(record) = self.usage_record(account, key).await? else { return Ok(Refunded::Unknown) };
        if record.refunded {
            return Ok(Refunded::AlreadyRefunded(record));
        }
        let (pk, sk) = Self::counter_key(account, &record.metric, &record.window);
        let give_back = self
            .update(pk, sk)
            // Listed as due again, so units already reported to a meter are cancelled or
            // recorded as drift by the sync (an unmetered counter is settled at once).
            .update_expression("ADD used :minus SET #due = :due")
            .condition_expression(HOLDS)
            .expression_attribute_names("#due", meter::DUE_ATTRIBUTE)
            .expression_attribute_values(":due", AttributeValue::S(meter::DUE.to_owned()))
            .expression_attribute_values(":minus", AttributeValue::N(format!("-{}", record.quantity)))
            .expression_attribute_values(":quantity", n(record.quantity))
            .build()
            .expect("table, key and update are set");
        let items = vec![
            self.refund_mark(keys::usage_request(account, key)),
            TransactWriteItem::builder().update(give_back).build(),
        ];
        match self.transact(items, "refund").await? {
            Ok(()) => Ok(Refunded::Refunded(UsageRecord { refunded: true, ..record })),
            Err(failed) if failed.first() == Some(&true) => {
                Ok(Refunded::AlreadyRefunded(UsageRecord { refunded: true, ..record }))
            }
            Err(_) => Err(StoreError::Corrupt("a usage counter holds less than a consumption it recorded".into())),
        }
    }

    async fn tally(
        &self,
        account: &AccountId,
        metric: &str,
        window: &Window,
        rate_window_ms: Option<i64>,
    ) -> Result<Tally, StoreError> {
        let counter = Self::counter_key(account, metric, window);
        let rate = rate_window_ms.map(|start| (keys::account(account), keys::rate("usage", start)));
        let key = |(pk, sk): &(String, String)| {
            HashMap::from([
                ("pk".to_owned(), AttributeValue::S(pk.clone())),
                ("sk".to_owned(), AttributeValue::S(sk.clone())),
            ])
        };
        let wanted = KeysAndAttributes::builder()
            .set_keys(Some(std::iter::once(&counter).chain(rate.as_ref()).map(key).collect()))
            .consistent_read(true)
            .build()
            .expect("keys are set");
        let out = self
            .client
            .batch_get_item()
            .request_items(self.table(), wanted)
            .send()
            .await
            .map_err(|e| super::classify(e, "tally"))?;
        if out.unprocessed_keys.as_ref().is_some_and(|u| !u.is_empty()) {
            return Err(StoreError::Throttled("usage tally not read in full".into()));
        }
        let mut tally = Tally::default();
        for item in out.responses.unwrap_or_default().remove(self.table()).unwrap_or_default() {
            let sk = match item.get("sk") {
                Some(AttributeValue::S(sk)) => sk.as_str(),
                _ => continue,
            };
            if rate.as_ref().is_some_and(|(_, rate_sk)| rate_sk == sk) {
                tally.requests = number(&item, "count")?;
            } else {
                tally.used = counted(&item)?;
            }
        }
        Ok(tally)
    }
}
