//! `webhook-intake`: Stripe's deliveries arrive on a Lambda function URL; each is verified on
//! its raw body, checked, and enqueued to the SQS FIFO queue before it is acknowledged.

mod handler;

pub use handler::{Deps, handle, wire};
