//! `webhook-worker`: consumes the FIFO queue of verified Stripe events and applies each to the
//! projection exactly once, in any delivery order (see `handler`).

pub mod event;
mod handler;

pub use handler::{Deps, Outcome, Record, Snapshots, WorkerError, account_for, apply, handle, process};
