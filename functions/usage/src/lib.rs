//! `usage`: metering. Customer credentials read and check: `GET /usage` and `POST /usage/check`
//! on the JWT routes, the same under `/api/...` behind the API key authorizer (scope
//! `usage:read`). The operator (the product's backend, `/operator/...` behind `AWS_IAM`) makes
//! every write that changes a count or a balance: consume, check and refund usage, batches of
//! consumptions, consume and refund credits, manual grants, and reads an account for support.

mod handler;

pub use handler::{Deps, handle, wire};
