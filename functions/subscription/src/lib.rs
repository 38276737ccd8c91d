//! `subscription`: answers `GET /subscription` and `GET /entitlements` (JWT), and
//! `GET /api/subscription` (API key, through the authorizer), from the DynamoDB projection
//! alone (zero Stripe calls).

mod handler;

pub use handler::{Deps, handle, wire};
