//! The sync's bookkeeping: its cursor over Stripe's event list and how its last run ended.

use super::StoreError;
use crate::domain::adoption::{Adoption, Sorted};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Where the sync stands. The replay's position: the `created` second it reached and the ids
/// already handed over from that second (events of one second are listed again and
/// deduplicated, so none is skipped). Stripe lists events newest first, so the replay walks
/// down the list to the oldest page holding anything new (`scan_marks`), then hands pages
/// over oldest first, climbing back up the marks. Every field but `created` defaults, so a
/// cursor saved before a field existed still reads.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SyncCursor {
    pub created: i64,
    #[serde(default)]
    pub ids_at_created: Vec<String>,
    /// The `starting_after` of each page the walk down the list found below the newest, in
    /// the order found: each names the oldest event of the page above it.
    #[serde(default)]
    pub scan_marks: Vec<String>,
    /// The walk is over and the replay climbs: every event below the last mark was handed
    /// over, and the page above it is next.
    #[serde(default)]
    pub climbing: bool,
    /// The event the replay is stopped at because applying it failed for a cause that may pass,
    /// and in how many runs in a row it failed; passed over after `sync::MAX_EVENT_TRIES`.
    #[serde(default)]
    pub failing_event: Option<String>,
    #[serde(default)]
    pub failing_tries: u32,
    /// A reconciliation of every subscription is owed (a full run was asked for, or the cursor
    /// was unusable) and runs once the replay has caught up, however many runs that takes.
    #[serde(default)]
    pub reconcile_due: bool,
    /// A reconciliation that stopped at its deadline resumes after this subscription.
    #[serde(default)]
    pub reconcile_after: Option<String>,
}

/// How the last sync run ended; `last_success_at` only moves on a run that finished.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SyncOutcome {
    pub mode: String,
    pub started_at: i64,
    pub finished_at: i64,
    pub last_success_at: Option<i64>,
    pub last_error: Option<String>,
    /// The run stopped at its deadline; the next run resumes from the cursor.
    pub partial: bool,
    pub replayed: u64,
    /// Events passed over as unprocessable (recorded as `FailedEvent`s with source `sync`).
    #[serde(default)]
    pub passed_over: u64,
    pub reconciled: u64,
    pub differed: u64,
    /// Deleted accounts whose items the run finished purging (their requests stopped early).
    #[serde(default)]
    pub purges_finished: u64,
    /// Usage reported to Stripe Billing Meters, drift and failures included.
    #[serde(default)]
    pub meters: crate::ports::meter::MeterOutcome,
    /// The run worked on an adoption (`POST /operator/adoption`).
    #[serde(default)]
    pub adopting: bool,
}

/// The sync's bookkeeping.
#[async_trait]
pub trait SyncStore: Send + Sync {
    /// The saved cursor; `None` before the first run.
    async fn cursor(&self) -> Result<Option<SyncCursor>, StoreError>;
    /// Saves the cursor (unconditionally: one sync runs at a time, by the schedule's
    /// reserved concurrency of 1).
    async fn save_cursor(&self, cursor: &SyncCursor) -> Result<(), StoreError>;
    /// How the last run ended; `None` before the first run.
    async fn outcome(&self) -> Result<Option<SyncOutcome>, StoreError>;
    /// Saves how a run ended (unconditionally, as the cursor).
    async fn save_outcome(&self, outcome: &SyncOutcome) -> Result<(), StoreError>;
    /// Where the meter pass stands; `None` before its first page.
    async fn meter_position(&self) -> Result<Option<crate::ports::meter::MeterPosition>, StoreError>;
    /// Saves where the meter pass stands (unconditionally, as the cursor).
    async fn save_meter_position(&self, position: &crate::ports::meter::MeterPosition) -> Result<(), StoreError>;

    /// The adoption of a Stripe account, running or ended; `None` when none ever started.
    async fn adoption(&self) -> Result<Option<Adoption>, StoreError>;

    /// Stores `adoption` (running) unless one is running: `Conflict` then, and nothing written.
    async fn start_adoption(&self, adoption: &Adoption) -> Result<(), StoreError>;

    /// Saves an adoption's progress or end.
    async fn save_adoption(&self, adoption: &Adoption) -> Result<(), StoreError>;

    /// Stores what the `seq`th customer of adoption `id` came to (again: the same entry).
    async fn save_adoption_entry(&self, id: &str, seq: u64, entry: &Sorted) -> Result<(), StoreError>;

    /// Adoption `id`'s entries, in `seq` order.
    async fn adoption_entries(&self, id: &str) -> Result<Vec<Sorted>, StoreError>;
}
