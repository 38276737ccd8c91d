//! `webhook-worker`: consumes the FIFO queue of verified Stripe events and applies each to the
//! projection exactly once, in any delivery order, through the core's event path.

mod handler;

pub use handler::{DEADLINE_MARGIN, handle, wire};
