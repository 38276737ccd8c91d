//! `ops`: operations on a bad day, on the operator route set (`AWS_IAM`). Lists the events that
//! failed (`GET /operator/events/failed`), replays one from Stripe through the worker's own
//! path (`POST /operator/events/{event_id}/replay`), and moves a dead-letter queue's messages
//! back to their queue (`POST /operator/queues/{queue}/redrive`). The runbook in
//! `docs/deploy.md` uses them through `tollgate-dev`.

mod handler;

pub use handler::{REDRIVE_BUDGET, handle, wire};
