//! `usage`: metering. `POST /usage` (consume once per idempotency key), `POST /usage/check`
//! (the same decision, consuming nothing), `POST /usage/refund` and `GET /usage` on JWT
//! routes, and the same under `/api/...` behind the API key authorizer; credits:
//! `POST /credits/consume` (and `/api/credits/consume`) and `POST /credits/refund`.

mod handler;

pub use handler::{Deps, handle, wire};
