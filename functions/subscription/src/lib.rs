//! `subscription`: answers `GET /subscription` and `GET /entitlements` from the DynamoDB
//! projection alone (zero Stripe calls).

mod handler;

pub use handler::{Deps, handle, wire};
