//! `checkout`: the account's writes to Stripe. `POST /checkout` (a subscription Checkout
//! Session), `POST /portal` (a customer portal session), `POST /subscription/change` (plan
//! change with proration), `POST /subscription/cancel`, and `DELETE /account`.

mod handler;

pub use handler::{DELETION_MARGIN, Deps, handle, wire};
