//! `authorizer`: the API Gateway HTTP API Lambda authorizer (REQUEST type, payload 2.0,
//! simple responses) of the `/api/...` routes. It accepts `Authorization: Bearer tg_...`,
//! checks the key (one consistent `GetItem`), its expiry, revocation and the route's scope,
//! and answers the account id, tier and scopes in the context.

mod handler;

pub use handler::{Deps, SimpleResponse, handle, wire};
