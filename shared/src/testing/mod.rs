//! Test doubles for every crate's tests, behind the `testing` feature (never in a production
//! binary): the in-memory store, a fixed clock, a recording Stripe double, a notification
//! outbox, builders for projections and Stripe subscriptions, and Stripe-signed headers.

#![allow(clippy::arithmetic_side_effects, reason = "test doubles, driven by tests with test values")]

mod billing;
pub mod capacity;
mod memory;
mod requests;

pub use billing::{FakeBilling, SentMeterEvent, remote_item, remote_subscription};
pub use memory::MemoryStore;
pub use requests::{
    ItemKey, KEY_ATTRIBUTES, Request, RequestLog, SQS_CHUNK_BYTES, Write, counted_client, counted_sqs_client, item_key,
    item_sizes,
};

use crate::domain::model::{AccountId, Interval, Projection, SubscriptionStatus};
use crate::domain::notifications::Notification;
use crate::ports::clock::Clock;
use crate::ports::notifier::Notifier;
use crate::ports::queue::QueueError;
use async_trait::async_trait;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// A clock that stands still until moved; clones share the same time.
#[derive(Debug, Clone, Default)]
pub struct FixedClock(Arc<AtomicI64>);

impl FixedClock {
    /// A clock reading `unix_seconds`.
    pub fn at(unix_seconds: i64) -> Self {
        Self(Arc::new(AtomicI64::new(unix_seconds * 1000)))
    }

    /// Sets the time to `unix_seconds`.
    pub fn set(&self, unix_seconds: i64) {
        self.0.store(unix_seconds * 1000, Ordering::SeqCst);
    }

    /// Moves the time forward by `seconds`.
    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds * 1000, Ordering::SeqCst);
    }

    /// Moves the time forward by `ms` milliseconds.
    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A notifier that keeps what it was given.
#[derive(Debug, Clone, Default)]
pub struct Outbox(Arc<Mutex<Vec<Notification>>>);

impl Outbox {
    /// Every notification sent so far, in order.
    pub fn sent(&self) -> Vec<Notification> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

#[async_trait]
impl Notifier for Outbox {
    async fn notify(&self, notification: &Notification) -> Result<(), QueueError> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(notification.clone());
        Ok(())
    }
}

/// A projection of `account` on a `pro` monthly subscription, active, version 1: change the
/// fields a test is about with struct update syntax.
pub fn projection(account: &str) -> Projection {
    Projection {
        billing_cycle_anchor: None,
        window_origin: None,
        account_id: AccountId::parse(account).expect("a valid test account id"),
        customer_id: format!("cus_{account}"),
        subscription_id: Some(format!("sub_{account}")),
        status: SubscriptionStatus::Active,
        plan: "pro".into(),
        price_lookup_key: Some("pro_monthly".into()),
        interval: Some(Interval::Month),
        current_period_start: None,
        current_period_end: None,
        trial_end: None,
        cancel_at_period_end: false,
        grace_until: None,
        open_disputes: vec![],
        refunded_period_end: None,
        entitlements: vec![],
        version: 1,
    }
}

/// A deadline that expires after `n` checks: a run cut off partway.
pub struct After(std::sync::atomic::AtomicUsize);

impl After {
    pub fn checks(n: usize) -> Self {
        Self(std::sync::atomic::AtomicUsize::new(n))
    }
}

impl crate::app::Deadline for After {
    fn expired(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.0.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_err()
    }
}

/// Settings for tests: the built-in catalogue, `clock`, and 3 grace days.
pub fn settings(clock: &FixedClock) -> crate::app::Settings {
    crate::app::Settings {
        catalogue: crate::domain::plans::Catalogue::builtin().expect("the built-in catalogue is valid"),
        clock: Arc::new(clock.clone()),
        grace_days: 3,
    }
}

/// A `Stripe-Signature` header for `payload` signed with `secret` at `timestamp`, made by
/// async-stripe's test-header generator.
pub fn signature_header(payload: &str, secret: &str, timestamp: i64) -> String {
    stripe_webhook::Webhook::generate_test_header(payload, secret, Some(timestamp))
}

/// Stores `projection` as checkout and the worker leave it: its account linked to its customer
/// (if not yet), then the projection written (effects land only on linked customers).
pub async fn subscribed<S: crate::ports::accounts::AccountStore + crate::ports::subscriptions::SubscriptionStore>(
    store: &S,
    projection: &crate::domain::model::Projection,
) {
    let link = crate::ports::accounts::Account {
        account_id: projection.account_id.clone(),
        customer_id: projection.customer_id.clone(),
        created_at: 0,
    };
    if store.account_for_customer(&link.customer_id).await.expect("store").is_none() {
        store.link_customer(&link).await.expect("linking the projection's customer");
    }
    store.put_subscription(projection).await.expect("writing the projection");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_clock_clones_share_one_time() {
        let clock = FixedClock::at(1_700_000_000);
        let other = clock.clone();

        other.advance(90);

        assert_eq!(clock.now(), 1_700_000_090);
        assert_eq!(clock.now_ms(), 1_700_000_090_000);
    }
}
