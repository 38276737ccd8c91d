//! The in-memory [`MeterStore`]: the meter fields of each counter beside its count; one lock
//! is one conditional write.

use super::MemoryStore;
use crate::ports::StoreError;
use crate::ports::meter::{CounterKey, DuePage, MeterCounter, MeterReport, MeterStore, Settlement};
use async_trait::async_trait;

/// A counter's meter fields (the DynamoDB item's attributes beside `used`).
#[derive(Debug, Clone, Default)]
pub(super) struct MeterFields {
    pub(super) window_end: i64,
    pub(super) due: bool,
    pub(super) metered: bool,
    pub(super) behind_since: Option<i64>,
    reported: u64,
    pending: Option<MeterReport>,
    last: Option<MeterReport>,
    revision: u32,
    settlement: Option<Settlement>,
}

/// The counter key a due-page cursor names.
fn parse_cursor(cursor: &str) -> Result<(crate::domain::model::AccountId, String, i64), StoreError> {
    let corrupt = || StoreError::Corrupt("a due-counter cursor this store did not give".into());
    let mut parts = cursor.split('\u{1f}');
    let (Some(account), Some(metric), Some(start), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(corrupt());
    };
    let account = crate::domain::model::AccountId::parse(account).map_err(|_| corrupt())?;
    Ok((account, metric.to_owned(), start.parse().map_err(|_| corrupt())?))
}

fn id(key: &CounterKey) -> (crate::domain::model::AccountId, String, i64) {
    (key.account.clone(), key.metric.clone(), key.window_start)
}

impl MemoryStore {
    /// Changes the counter's meter fields with `change` if it exists and `holds` them.
    fn change_meter(
        &self,
        key: &CounterKey,
        holds: impl FnOnce(u64, &MeterFields) -> bool,
        change: impl FnOnce(&mut MeterFields),
    ) -> bool {
        let mut tables = self.lock();
        let Some(used) = tables.usage.get(&id(key)).copied() else { return false };
        let fields = tables.meters.entry(id(key)).or_default();
        if !holds(used, fields) {
            return false;
        }
        change(fields);
        true
    }
}

#[async_trait]
impl MeterStore for MemoryStore {
    async fn due_counters(&self, limit: usize, after: Option<&str>) -> Result<DuePage, StoreError> {
        use std::ops::Bound;
        let tables = self.lock();
        let start = match after {
            None => Bound::Unbounded,
            Some(cursor) => Bound::Excluded(parse_cursor(cursor)?),
        };
        let limit = limit.max(1);
        let mut due = tables.meters.range((start, Bound::Unbounded)).filter(|(_, fields)| fields.due).map(
            |((account, metric, start), _)| CounterKey {
                account: account.clone(),
                metric: metric.clone(),
                window_start: *start,
            },
        );
        let counters: Vec<CounterKey> = due.by_ref().take(limit).collect();
        let cursors: Vec<String> =
            counters.iter().map(|k| format!("{}\u{1f}{}\u{1f}{}", k.account, k.metric, k.window_start)).collect();
        let next = due.next().is_some().then(|| cursors.last().cloned()).flatten();
        Ok(DuePage { counters, cursors, next })
    }

    async fn meter_counter(&self, key: &CounterKey) -> Result<Option<MeterCounter>, StoreError> {
        let tables = self.lock();
        let Some(used) = tables.usage.get(&id(key)).copied() else { return Ok(None) };
        let fields = tables.meters.get(&id(key)).cloned().unwrap_or_default();
        Ok(Some(MeterCounter {
            key: key.clone(),
            window_end: fields.window_end,
            used,
            reported: fields.reported,
            pending: fields.pending,
            last: fields.last,
            revision: fields.revision,
            due: fields.due,
            metered: fields.metered,
            behind_since: fields.behind_since,
            settlement: fields.settlement,
        }))
    }

    async fn record_report(&self, key: &CounterKey, revision: u32, report: &MeterReport) -> Result<bool, StoreError> {
        Ok(self.change_meter(
            key,
            |_, f| f.pending.is_none() && f.reported == report.from && f.revision == revision,
            |f| f.pending = Some(report.clone()),
        ))
    }

    async fn confirm_report(&self, key: &CounterKey, report: &MeterReport) -> Result<bool, StoreError> {
        Ok(self.change_meter(
            key,
            |_, f| f.pending.as_ref().is_some_and(|p| p.identifier == report.identifier),
            |f| {
                f.reported = report.to;
                f.last = Some(report.clone());
                f.pending = None;
            },
        ) && {
            let mut tables = self.lock();
            let used = tables.usage.get(&id(key)).copied().unwrap_or_default();
            if let Some(f) = tables.meters.get_mut(&id(key)) {
                f.behind_since = (used > report.to).then_some(report.recorded_at);
            }
            true
        })
    }

    async fn abandon_report(&self, key: &CounterKey, pending: &MeterReport) -> Result<bool, StoreError> {
        Ok(self.change_meter(
            key,
            |_, f| f.pending.as_ref().is_some_and(|p| p.identifier == pending.identifier),
            |f| {
                f.pending = None;
                f.revision = f.revision.saturating_add(1);
            },
        ))
    }

    async fn cancel_report(&self, key: &CounterKey, last: &MeterReport) -> Result<bool, StoreError> {
        Ok(self.change_meter(
            key,
            |_, f| f.pending.is_none() && f.last.as_ref().is_some_and(|l| l.identifier == last.identifier),
            |f| {
                f.reported = last.from;
                f.revision = f.revision.saturating_add(1);
                f.last = None;
            },
        ))
    }

    async fn settle(
        &self,
        key: &CounterKey,
        used: u64,
        reported: u64,
        settlement: &Settlement,
    ) -> Result<bool, StoreError> {
        Ok(self.change_meter(
            key,
            |now_used, f| {
                f.due
                    && (f.pending.is_none() || matches!(settlement, Settlement::Failed { .. }))
                    && now_used == used
                    && f.reported == reported
            },
            |f| {
                f.due = false;
                f.settlement = Some(settlement.clone());
            },
        ))
    }
}
