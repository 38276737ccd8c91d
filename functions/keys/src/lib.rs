//! `keys`: the account's API keys, on JWT routes. `POST /api-keys` (a new key, shown once),
//! `GET /api-keys`, `DELETE /api-keys/{id}` (revoke) and `POST /api-keys/{id}/rotate` (a
//! successor, the old key valid for an optional overlap).

mod handler;

pub use handler::{Deps, handle, wire};
