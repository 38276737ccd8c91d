//! Tollgate's core, grouped by layer; dependencies point down this list, never up (held by
//! `tests/tests/layering.rs`):
//!
//! - [`edge`]: what the functions share at their edge: HTTP mapping, the OpenAPI document,
//!   webhook verification, configuration, and the wiring of use cases onto real adapters.
//! - [`adapters`]: the ports on DynamoDB, SQS and Stripe; the only code that sees an AWS or
//!   Stripe type.
//! - [`app`]: the use cases, plain async functions over the ports.
//! - [`ports`]: one trait per aggregate with its records and `///` contracts.
//! - [`domain`]: plain types and rules, no I/O.
//! - [`testing`] (feature `testing`): the in-memory doubles and test instrumentation.
//!
//! No unchecked arithmetic: numbers from payloads, Stripe and clocks can be anything, so every
//! operation that could overflow, wrap or divide by zero is checked or saturating (tests aside).

#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

pub mod adapters;
pub mod app;
pub mod domain;
pub mod edge;
pub mod ports;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
