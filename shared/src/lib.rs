//! Tollgate's core: the billing domain (plans, access decision, projection), the ports the
//! functions depend on, and their adapters for DynamoDB, SQS and Stripe.
//!
//! Domain modules (`model`, `plans`, `access`, `clock`) are plain Rust over plain types. Ports
//! (`store`, `queue`, `billing`) are traits; their adapters live beside them and are the only
//! places that see an AWS or Stripe type.
//!
//! No unchecked arithmetic: numbers from payloads, Stripe and clocks can be anything, so every
//! operation that could overflow, wrap or divide by zero is checked or saturating (tests aside).

#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

pub mod access;
pub mod apikeys;
pub mod app;
pub mod aws;
pub mod billing;
pub mod clock;
pub mod config;
pub mod credits;
pub mod entitlements;
pub mod events;
pub mod facts;
pub mod http;
pub mod invoices;
pub mod metrics;
pub mod model;
pub mod notify;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod plans;
pub mod projection;
pub mod queue;
pub mod ratelimit;
pub mod redirect;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod usage;
pub mod webhook;

pub use access::{Access, Reason, decide};
pub use clock::{Clock, SystemClock};
pub use model::{AccountId, Interval, Projection, SubscriptionStatus};
pub use plans::Catalogue;
