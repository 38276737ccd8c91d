//! The record of processed Stripe events, written together with their effects (exactly once).

use super::StoreError;
use crate::domain::facts::Facts;
use crate::domain::model::{AccountId, Projection};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A Stripe event Tollgate has handled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessedEvent {
    pub event_id: String,
    pub event_type: String,
    /// Stripe's `created`, Unix seconds.
    pub created: i64,
    /// What handling it did, e.g. `applied`, `stale`, `ignored`.
    pub outcome: String,
    pub processed_at: i64,
}

/// An event that could not be processed: a message that can never be (it does not parse) and
/// was passed over, an event that kept failing in the sync and was passed over, or an event
/// the worker failed to apply for a cause that may pass (it is retried, then dead-lettered).
/// Kept for the operator (`GET /operator/events/failed`) until the event applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedEvent {
    /// The event id, or `message:<SQS message id>` when the body names none.
    pub id: String,
    pub event_type: Option<String>,
    /// Why it failed (no payload, no secret).
    pub error: String,
    pub failed_at: i64,
    /// Where it failed: `worker` or `sync`.
    pub source: String,
}

/// A page of recorded failures, the latest first, and the sort key to go on after.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FailurePage {
    pub failures: Vec<FailedEvent>,
    /// The sort key of the page's last failure, when more follow.
    pub next: Option<String>,
}

/// What an event changes for one account, committed with its record.
#[derive(Debug, Clone, Copy)]
pub struct Effect<'a> {
    pub account: &'a AccountId,
    /// The customer the event is about: it must still be linked to `account` when the effect
    /// commits (or, when `retired`, still retired from it), so nothing about a retired
    /// customer but its disputes lands after the retirement.
    pub customer: &'a str,
    /// The customer is retired from `account`: the effect carries facts only.
    pub retired: bool,
    pub projection: Option<&'a Projection>,
    pub facts: Option<&'a Facts>,
}

/// What `EventLog::apply` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// The event was new: its record and its effect were committed together.
    Applied,
    /// The event was new but its projection was older than the stored one: the event is
    /// recorded as processed and the projection left alone.
    Stale,
    /// The customer is no longer linked to the account (deleted meanwhile): the event is
    /// recorded with no effect.
    Unlinked,
    /// The event had been processed before: nothing was written.
    Duplicate,
}

/// The record of processed Stripe events, written together with their effects.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Records `event` and writes its `effect` (if any) in one transaction: the record only if
    /// the event is new, the projection only if newer than the stored one, the facts only if
    /// their revision is still `facts.rev` (they are stored as `rev + 1`), and either only if
    /// the effect's customer is still linked to its account. When only the projection's
    /// condition fails, the record and facts are written without it (`Stale`); when the link
    /// is gone, the record alone (`Unlinked`). A duplicate writes nothing. `Conflict` when the
    /// facts changed meanwhile (nothing written; process the event again). Records expire
    /// after `EVENT_RECORD_TTL_DAYS` (past Stripe's 30-day retention, so a replay can never
    /// apply an event twice).
    async fn apply(&self, event: &ProcessedEvent, effect: Option<Effect<'_>>) -> Result<ApplyOutcome, StoreError>;

    /// The record of an event, if it was processed.
    async fn processed(&self, event_id: &str) -> Result<Option<ProcessedEvent>, StoreError>;

    /// Records that an event failed (passed over as unprocessable, or failed for a cause that
    /// may pass), overwriting an earlier record of the same id: by id, and in the list of
    /// failures by the time it failed (its earlier place there is removed). Expires as
    /// processed-event records do.
    async fn record_failure(&self, failure: &FailedEvent) -> Result<(), StoreError>;

    /// The failure recorded for `id`, if any.
    async fn failure(&self, id: &str) -> Result<Option<FailedEvent>, StoreError>;

    /// Up to `limit` recorded failures, the latest first (by when they failed, then id), after
    /// `after` (a previous page's `next`): one consistent `Query`.
    async fn failures(&self, limit: usize, after: Option<&str>) -> Result<FailurePage, StoreError>;

    /// Forgets the failure recorded for `id` (its event was applied since), by id and in the
    /// list. Nothing recorded: nothing to do.
    async fn resolve_failure(&self, id: &str) -> Result<(), StoreError>;
}

/// Processed-event records live this long: past Stripe's 30-day event retention.
pub const EVENT_RECORD_TTL_DAYS: i64 = 35;

/// When a record written at `at` (Unix seconds) expires.
pub fn record_expiry(at: i64) -> i64 {
    at.saturating_add(EVENT_RECORD_TTL_DAYS.saturating_mul(crate::domain::access::DAY))
}
