//! The stand-in's retry schedule of failed subscription payments, a setting as Stripe's
//! "Manage failed payments" is ([`super::StandIn::set_dunning`]).

/// What a subscription becomes when every retry of its invoice has failed (Stripe's
/// subscription setting "if all retries for a payment fail").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AfterRetries {
    /// Canceled (`customer.subscription.deleted`, reason `payment_failed`): Stripe's default.
    #[default]
    Canceled,
    /// `unpaid`: it stays, issuing no further invoices, until its open invoice is paid.
    Unpaid,
}

/// The stand-in's retry schedule for failed subscription payments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dunning {
    /// Days after the attempt before that each retry comes (Stripe's default: 3, 5, 7).
    pub retry_days: Vec<u32>,
    pub after_retries: AfterRetries,
}

impl Default for Dunning {
    fn default() -> Self {
        Self { retry_days: vec![3, 5, 7], after_retries: AfterRetries::Canceled }
    }
}
