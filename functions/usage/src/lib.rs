//! `usage`: metering. `POST /usage` (consume once per idempotency key), `POST /usage/check`
//! (the same decision, consuming nothing), `POST /usage/refund` and `GET /usage` on JWT
//! routes, and the same under `/api/...` behind the API key authorizer.

mod handler;

pub use handler::{Deps, handle, wire};
