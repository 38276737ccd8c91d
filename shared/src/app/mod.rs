//! The application: one module per use case, each a set of plain async functions over the
//! ports (`store`, `billing`, `queue`, `notify`). Function crates parse their trigger's input,
//! call one of these and map the result; nothing here sees an AWS or Stripe type.
//!
//! - [`refresh`]: an account's projection from a snapshot of its Stripe subscriptions, written
//!   under the version condition (worker, sync and checkout share it).
//! - [`events`]: applying one Stripe event exactly once, and a batch of queued ones.
//! - [`sync`]: the scheduled replay of missed events and reconciliation.
//! - [`checkout`]: Checkout, portal, plan change, cancellation and account deletion.
//! - [`read`]: the subscription and entitlements reads, the usage history and the billing summary.
//! - [`invoices`]: the account's invoices (projection, backfill, `GET /invoices`).
//! - [`meters`]: usage reported to Stripe Billing Meters (run by the sync).
//! - [`keys`]: API keys (create, list, revoke, rotate) and the authorizer's decision.
//! - [`grants`]: the operator's manual and promotional credit grants.
//! - [`operator`]: the operator's support read of one account.
//! - [`ops`]: operations on a bad day: failed events listed and replayed, dead letters redriven.

pub mod adopt;
pub mod checkout;
pub mod credits;
pub mod events;
pub mod grants;
pub mod invoices;
pub mod keys;
pub mod meters;
pub mod operator;
pub mod ops;
pub mod read;
pub mod refresh;
pub mod retire;
pub mod sync;
pub mod usage;

use crate::domain::plans::{Catalogue, PlanError};
use crate::ports::clock::Clock;
use std::sync::Arc;

/// What the use cases read besides their ports.
#[derive(Clone)]
pub struct Settings {
    pub catalogue: &'static Catalogue,
    pub clock: Arc<dyn Clock>,
    /// How long a failed payment keeps access (`GRACE_DAYS`).
    pub grace_days: u32,
}

impl Settings {
    /// Production settings: the built-in catalogue and `clock` (the system clock in Lambda;
    /// the local stack's clock locally).
    pub fn new(grace_days: u32, clock: Arc<dyn Clock>) -> Result<Self, PlanError> {
        Ok(Self { catalogue: Catalogue::builtin()?, clock, grace_days })
    }
}

/// When a run must stop starting new work, so it can finish what it started and record it
/// before its function is killed.
pub trait Deadline: Send + Sync {
    fn expired(&self) -> bool;
}

/// No deadline (local runs, tests).
pub struct Never;

impl Deadline for Never {
    fn expired(&self) -> bool {
        false
    }
}

/// A wall-clock deadline: the invocation's end less a margin.
pub struct Before(Option<std::time::SystemTime>);

impl Before {
    /// Expires at `at`.
    pub fn at(at: std::time::SystemTime) -> Self {
        Self(Some(at))
    }

    /// Expires `margin` before an invocation's `deadline`. A context without a deadline (the
    /// epoch: a local or test invocation) never expires.
    pub fn margin_before(deadline: std::time::SystemTime, margin: std::time::Duration) -> Self {
        match deadline {
            std::time::UNIX_EPOCH => Self(None),
            deadline => Self(Some(deadline.checked_sub(margin).unwrap_or(std::time::UNIX_EPOCH))),
        }
    }
}

impl Deadline for Before {
    fn expired(&self) -> bool {
        self.0.is_some_and(|at| std::time::SystemTime::now() >= at)
    }
}
