//! Checkout Sessions requested and not yet expired, per account and request.

use super::StoreError;
use crate::domain::model::AccountId;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A Checkout Session requested (or being requested) for one account, plan, interval and
/// redirect URLs. Its `nonce` is the Stripe idempotency key's unique part: every request that
/// finds the same reservation sends the same key, so Stripe answers them all with one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCheckout {
    /// What the request was (plan, interval, URLs), hashed.
    pub request_key: String,
    pub nonce: String,
    pub session_id: Option<String>,
    pub url: Option<String>,
    /// Unix seconds; a reservation past it is free to be replaced.
    pub valid_until: i64,
    /// When its session expires in Stripe (Unix seconds), fixed when reserved so a retried
    /// create sends the same; `None` on reservations made before sessions had one.
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// A subscription's session (not a credit pack's): opening one expires the account's others.
    #[serde(default)]
    pub plan: bool,
}

/// Checkout Sessions requested and not yet expired, per account and request.
#[async_trait]
pub trait CheckoutStore: Send + Sync {
    /// The pending checkout for `request_key`, if one exists that has not expired at `now`.
    async fn pending_checkout(
        &self,
        account: &AccountId,
        request_key: &str,
        now: i64,
    ) -> Result<Option<PendingCheckout>, StoreError>;

    /// Reserves `pending.request_key`: written only if no unexpired reservation exists at
    /// `now`. `Conflict` when one does (another request got there first).
    async fn reserve_checkout(
        &self,
        account: &AccountId,
        pending: &PendingCheckout,
        now: i64,
    ) -> Result<(), StoreError>;

    /// Every reservation of the account, whatever its validity (the sessions to expire).
    async fn pending_checkouts(&self, account: &AccountId) -> Result<Vec<PendingCheckout>, StoreError>;

    /// Stores the session created for a reservation, if the reservation is still `nonce`'s.
    /// `Conflict` when another request replaced it.
    async fn complete_checkout(&self, account: &AccountId, pending: &PendingCheckout) -> Result<(), StoreError>;
}
