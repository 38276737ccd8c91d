//! The billing domain: plain types and rules, no I/O. Nothing here depends on another layer.

pub mod access;
pub mod actor;
pub mod adoption;
pub mod apikeys;
pub mod credits;
pub mod entitlements;
pub mod events;
pub mod facts;
pub mod invoices;
pub mod model;
pub mod notifications;
pub mod number;
pub mod plans;
pub mod projection;
pub mod ratelimit;
pub mod redirect;
pub mod snapshot;
pub mod usage;
