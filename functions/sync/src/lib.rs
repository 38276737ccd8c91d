//! `sync`: Tollgate's safety net for webhooks that never arrived. On a schedule it replays
//! Stripe's event list from a stored cursor through the webhook worker's own `apply` (exactly
//! once, so replays of applied events are harmless), reconciles every subscription when asked
//! or when the cursor is unusable, stops itself before its deadline, and records how it ended.

mod run;

pub use run::{Before, DEADLINE_MARGIN, Deadline, Deps, Mode, Never, SyncError, handle, run};
