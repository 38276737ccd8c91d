//! `subscription`: answers `GET /subscription` and `GET /entitlements` from the DynamoDB
//! projection alone (one read, zero Stripe calls).

mod handler;

pub use handler::{Deps, handle};
