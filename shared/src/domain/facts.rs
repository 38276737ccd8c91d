//! Facts: what Tollgate learns from event payloads rather than from Stripe's current state (a
//! dispute opened or closed, a refund, a failed or a paid invoice). Facts are stored apart
//! from the versioned state and combined when the projection is read.
//!
//! Each rule is order-independent: applying the same facts in any order, with duplicates,
//! gives the same result. A closed dispute leaves a tombstone so that a late "opened" cannot
//! reopen it; a paid invoice leaves a watermark so that an older failure cannot restart grace.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The facts recorded for one account.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Facts {
    #[serde(default)]
    pub open_disputes: BTreeSet<String>,
    /// Disputes closed in the merchant's favour: never reopened by a late event.
    #[serde(default)]
    pub won_disputes: BTreeSet<String>,
    /// When a full refund was issued, and the period end it refunded.
    pub refunded_at: Option<i64>,
    pub refunded_period_end: Option<i64>,
    /// Failed payments after the newest paid invoice (older ones are settled and dropped).
    #[serde(default)]
    pub unsettled_failures: BTreeSet<i64>,
    /// The first unsettled failure plus the grace period.
    pub grace_until: Option<i64>,
    /// The newest paid invoice: failures and refunds before it are settled.
    #[serde(default)]
    pub settled_at: i64,
    /// Stripe's active entitlements (lookup keys) and when Stripe sent them.
    #[serde(default)]
    pub entitlements: Vec<String>,
    #[serde(default)]
    pub entitlements_at: i64,
    /// Optimistic-concurrency revision of the stored item.
    #[serde(default)]
    pub rev: i64,
}

/// One fact from an event; `at` is the event's `created` (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    DisputeOpened {
        id: String,
    },
    DisputeClosed {
        id: String,
        won: bool,
    },
    /// A full refund of the current period (`period_end` from the state at hand).
    FullRefund {
        at: i64,
        period_end: Option<i64>,
    },
    PaymentFailed {
        at: i64,
    },
    InvoicePaid {
        at: i64,
    },
    Entitlements {
        at: i64,
        lookup_keys: Vec<String>,
    },
}

impl Facts {
    /// Applies one fact; `grace_days` is how long a failed payment keeps access.
    pub fn apply(&mut self, fact: &Fact, grace_days: u32) {
        match fact {
            Fact::DisputeOpened { id } => {
                if !self.won_disputes.contains(id) {
                    self.open_disputes.insert(id.clone());
                }
            }
            Fact::DisputeClosed { id, won: true } => {
                self.open_disputes.remove(id);
                self.won_disputes.insert(id.clone());
            }
            Fact::DisputeClosed { id, won: false } => {
                // Lost: the money went back to the customer, access stays revoked.
                if !self.won_disputes.contains(id) {
                    self.open_disputes.insert(id.clone());
                }
            }
            Fact::FullRefund { at, period_end } => {
                if *at >= self.settled_at && self.refunded_at.is_none_or(|r| *at >= r) {
                    self.refunded_at = Some(*at);
                    self.refunded_period_end = *period_end;
                }
            }
            Fact::PaymentFailed { at } => {
                if *at > self.settled_at {
                    self.unsettled_failures.insert(*at);
                }
            }
            Fact::InvoicePaid { at } => {
                self.settled_at = self.settled_at.max(*at);
                let settled = self.settled_at;
                self.unsettled_failures.retain(|f| *f > settled);
                if self.refunded_at.is_some_and(|r| r < self.settled_at) {
                    self.refunded_at = None;
                    self.refunded_period_end = None;
                }
            }
            Fact::Entitlements { at, lookup_keys } => {
                if *at >= self.entitlements_at {
                    self.entitlements_at = *at;
                    self.entitlements = lookup_keys.clone();
                }
            }
        }
        self.grace_until =
            self.unsettled_failures.first().map(|first| crate::domain::access::grace_end(*first, grace_days));
    }

    /// Whether any fact was ever recorded (an empty item need not be written).
    pub fn is_empty(&self) -> bool {
        *self == Self { rev: self.rev, ..Self::default() }
    }
}

/// What stays of an account once its billing data is deleted (`DELETE /account`) or its
/// Stripe customer is (`customer.deleted`): only what prevents abuse, and no personal data.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Tombstone {
    /// The account has had a subscription: no trial is offered again.
    #[serde(default)]
    pub trial_used: bool,
    /// Disputes open or lost when the data went: they stay in the access decision.
    #[serde(default)]
    pub disputes: BTreeSet<String>,
    /// When `DELETE /account` last ran; `None` when only Stripe deleted a customer.
    #[serde(default)]
    pub deleted_at: Option<i64>,
    /// How many Stripe customers the account was unlinked from: the next customer is created
    /// under a new idempotency key (the old key would answer the old customer).
    #[serde(default)]
    pub customers_retired: u32,
}

impl Tombstone {
    /// Whether nothing is kept (no item need be written).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::access::DAY;
    use proptest::prelude::*;

    fn applied(facts: &[Fact]) -> Facts {
        let mut f = Facts::default();
        for fact in facts {
            f.apply(fact, 3);
        }
        f
    }

    #[test]
    fn won_dispute_closed_before_it_opened_stays_closed() {
        let open = Fact::DisputeOpened { id: "dp_1".into() };
        let won = Fact::DisputeClosed { id: "dp_1".into(), won: true };

        assert_eq!(applied(&[won.clone(), open.clone()]), applied(&[open, won]));
        assert!(applied(&[Fact::DisputeClosed { id: "dp_1".into(), won: true }]).open_disputes.is_empty());
    }

    #[test]
    fn lost_dispute_keeps_access_revoked() {
        let f = applied(&[
            Fact::DisputeOpened { id: "dp_1".into() },
            Fact::DisputeClosed { id: "dp_1".into(), won: false },
        ]);

        assert!(f.open_disputes.contains("dp_1"));
    }

    #[test]
    fn grace_runs_from_the_first_unsettled_failure() {
        let f = applied(&[Fact::PaymentFailed { at: 200 }, Fact::PaymentFailed { at: 100 }]);
        let paid = applied(&[Fact::PaymentFailed { at: 100 }, Fact::InvoicePaid { at: 150 }]);
        let late_old_failure = applied(&[Fact::InvoicePaid { at: 150 }, Fact::PaymentFailed { at: 100 }]);

        assert_eq!(f.grace_until, Some(100 + 3 * DAY));
        assert_eq!(paid.grace_until, None);
        assert_eq!(late_old_failure, paid);
    }

    #[test]
    fn paid_invoice_after_a_refund_clears_it() {
        let f = applied(&[Fact::FullRefund { at: 100, period_end: Some(500) }, Fact::InvoicePaid { at: 200 }]);

        assert_eq!(f.refunded_period_end, None);
    }

    fn fact() -> impl Strategy<Value = Fact> {
        let id = prop_oneof![Just("dp_1".to_owned()), Just("dp_2".to_owned())];
        prop_oneof![
            id.clone().prop_map(|id| Fact::DisputeOpened { id }),
            (id, any::<bool>()).prop_map(|(id, won)| Fact::DisputeClosed { id, won }),
            (0i64..50).prop_map(|at| Fact::PaymentFailed { at }),
            (0i64..50).prop_map(|at| Fact::InvoicePaid { at }),
        ]
    }

    proptest! {
        /// Disputes, failures and payments give the same facts in any order.
        #[test]
        fn facts_do_not_depend_on_order(facts in prop::collection::vec(fact(), 0..12), seed in any::<u64>()) {
            let mut shuffled = facts.clone();
            let mut state = seed;
            for i in (1..shuffled.len()).rev() {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                shuffled.swap(i, (state >> 33) as usize % (i + 1));
            }
            // Lost and won closes of one dispute conflict: Stripe closes a dispute once.
            let closes: Vec<_> = facts.iter().filter_map(|f| match f { Fact::DisputeClosed { id, won } => Some((id.clone(), *won)), _ => None }).collect();
            prop_assume!(closes.iter().all(|(id, won)| closes.iter().all(|(i2, w2)| i2 != id || w2 == won)));

            prop_assert_eq!(applied(&facts), applied(&shuffled));
        }
    }
}
