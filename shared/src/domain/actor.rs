//! Who made a write that changes a count or a balance: the operator (the product backend's IAM
//! principal ARN from the request context; locally the development name), Tollgate itself
//! (plan grants, expiries), or a Stripe event (its effect). Kept on every usage record, ledger
//! entry and grant, shown on operator reads only: an ARN names the AWS account and role.

/// The actor of what Tollgate writes by itself.
pub const TOLLGATE: &str = "tollgate";

/// The actor of a Stripe event's effect.
pub fn stripe_event(event_id: &str) -> String {
    format!("stripe:{event_id}")
}
