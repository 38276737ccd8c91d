//! The application: one module per use case, each a set of plain async functions over the
//! ports (`store`, `billing`, `queue`, `notify`). Function crates parse their trigger's input,
//! call one of these and map the result; nothing here sees an AWS or Stripe type.
//!
//! - [`refresh`]: an account's projection from a snapshot of its Stripe subscriptions, written
//!   under the version condition (worker, sync and checkout share it).
//! - [`events`]: applying one Stripe event exactly once, and a batch of queued ones.
//! - [`sync`]: the scheduled replay of missed events and reconciliation.
//! - [`checkout`]: Checkout, portal, plan change, cancellation and account deletion.
//! - [`read`]: the subscription and entitlements reads.

pub mod checkout;
pub mod events;
pub mod read;
pub mod refresh;
pub mod sync;
pub mod wire;

use crate::clock::{Clock, SystemClock};
use crate::plans::{Catalogue, PlanError};
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
    /// Production settings: the built-in catalogue and the system clock.
    pub fn new(grace_days: u32) -> Result<Self, PlanError> {
        Ok(Self { catalogue: Catalogue::builtin()?, clock: Arc::new(SystemClock), grace_days })
    }
}
