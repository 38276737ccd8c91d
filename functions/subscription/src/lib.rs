//! `subscription`: answers every read: `GET /subscription`, `/entitlements`, `/credits`,
//! `/invoices`, `/usage/history` and `/billing/summary` (JWT), `GET /api/subscription`,
//! `/api/credits` and `/api/invoices` (API key, through the authorizer), from DynamoDB alone
//! (zero Stripe calls), and `GET /plans` (public) from the catalogue.

mod handler;

pub use handler::{Deps, handle, wire};
