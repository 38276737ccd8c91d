//! `tollgate-dev`: Tollgate's local stack. It starts the local DynamoDB/SQS server, creates the
//! table and queues from `template.yaml`, serves every function's real handler under the HTTP
//! API's paths, and serves the Stripe stand-in (`tollgate-standin`) when no test key is given.
//! `trigger` drives the stand-in and sends the local intake signed Stripe events, as
//! `stripe trigger` does; `create-key` makes an API key for an account.

pub mod authorize;
pub mod clock;
pub mod env;
pub mod gateway;
pub mod keys;
pub mod local;
pub mod moto;
pub mod ops;
pub mod resources;
pub mod server;
pub mod travel;
pub mod trigger;
pub mod up;
pub mod worker;
