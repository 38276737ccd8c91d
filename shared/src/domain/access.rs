//! The access decision: may this account use its plan right now, and if not, why.
//!
//! Two kinds of "no": states that owe money or signal fraud (`past_due` beyond its grace
//! period, `unpaid`, an open dispute) keep the plan but refuse access, so the product can
//! ask the customer to pay; states where the subscription ended or never started (`canceled`,
//! `incomplete`, `incomplete_expired`, `paused`, a full refund of the period, no subscription)
//! fall back to the Free tier, which is allowed.

use crate::domain::model::{Projection, SubscriptionStatus};
use crate::domain::plans::FREE;
use serde::Serialize;

/// Seconds in a day, for grace arithmetic.
pub const DAY: i64 = 86_400;

/// Why the decision came out as it did; serialised as the `reason` code the product shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Active,
    Trialing,
    GracePeriod,
    PastDueExpired,
    Unpaid,
    Disputed,
    Refunded,
    Canceled,
    Incomplete,
    IncompleteExpired,
    Paused,
    NoSubscription,
}

/// The decision: the tier whose features and limits apply, whether it may be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub plan: String,
    pub allowed: bool,
    pub reason: Reason,
}

impl Access {
    fn free(reason: Reason) -> Self {
        Self { plan: FREE.to_owned(), allowed: true, reason }
    }

    fn plan(projection: &Projection, allowed: bool, reason: Reason) -> Self {
        Self { plan: projection.plan.clone(), allowed, reason }
    }
}

/// Decides access for an account's projection (or its absence) at `now` (Unix seconds).
pub fn decide(projection: Option<&Projection>, now: i64) -> Access {
    let Some(p) = projection else {
        return Access::free(Reason::NoSubscription);
    };
    let access = undisputed(p, now);
    if p.open_disputes.is_empty() {
        access
    } else {
        // An open dispute refuses access at once, whatever the plan the state gives.
        Access { allowed: false, reason: Reason::Disputed, ..access }
    }
}

/// Decides access for an account whose disputes may also be kept outside its projection (the
/// facts of an account on Free, the tombstone of a deleted one): `disputed` refuses access at
/// once, as an open dispute on the projection does.
pub fn decide_account(projection: Option<&Projection>, disputed: bool, now: i64) -> Access {
    let access = decide(projection, now);
    if disputed { Access { allowed: false, reason: Reason::Disputed, ..access } } else { access }
}

fn undisputed(p: &Projection, now: i64) -> Access {
    if p.refunded_period_end.is_some() && p.refunded_period_end == p.current_period_end {
        return Access::free(Reason::Refunded);
    }
    match p.status {
        SubscriptionStatus::Active => Access::plan(p, true, Reason::Active),
        SubscriptionStatus::Trialing => Access::plan(p, true, Reason::Trialing),
        SubscriptionStatus::PastDue => match p.grace_until {
            Some(until) if now < until => Access::plan(p, true, Reason::GracePeriod),
            _ => Access::plan(p, false, Reason::PastDueExpired),
        },
        SubscriptionStatus::Unpaid => Access::plan(p, false, Reason::Unpaid),
        SubscriptionStatus::Canceled => Access::free(Reason::Canceled),
        SubscriptionStatus::Incomplete => Access::free(Reason::Incomplete),
        SubscriptionStatus::IncompleteExpired => Access::free(Reason::IncompleteExpired),
        SubscriptionStatus::Paused => Access::free(Reason::Paused),
    }
}

/// When a grace period that started at `first_failure` ends (saturating: a hostile timestamp
/// cannot wrap). The one grace rule: the facts' deadline and the state's both come from here.
pub fn grace_end(first_failure: i64, grace_days: u32) -> i64 {
    first_failure.saturating_add(i64::from(grace_days).saturating_mul(DAY))
}

/// The grace deadline for a subscription that is `past_due` now: an existing deadline is
/// kept (the grace period runs from the first failed payment, not the latest), a new one
/// starts at `first_failure`; any other status has none.
pub fn grace_until(
    status: SubscriptionStatus,
    existing: Option<i64>,
    first_failure: i64,
    grace_days: u32,
) -> Option<i64> {
    match status {
        SubscriptionStatus::PastDue => Some(existing.unwrap_or_else(|| grace_end(first_failure, grace_days))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_750_000_000;

    fn projection(status: SubscriptionStatus) -> Projection {
        Projection {
            status,
            customer_id: "cus_1".into(),
            subscription_id: Some("sub_1".into()),
            interval: None,
            current_period_start: Some(NOW - 10 * DAY),
            current_period_end: Some(NOW + 20 * DAY),
            ..crate::testing::projection("acct_1")
        }
    }

    #[derive(Clone, Copy, Debug)]
    enum Grace {
        None,
        Running,
        Expired,
    }

    /// The whole table: every status, with and without a running or expired grace deadline,
    /// with and without an open dispute.
    #[test]
    fn access_decision_table() {
        use Reason as R;
        use SubscriptionStatus as S;
        let expected = |status: S, grace: Grace| -> (&'static str, bool, Reason) {
            match (status, grace) {
                (S::Active, _) => ("pro", true, R::Active),
                (S::Trialing, _) => ("pro", true, R::Trialing),
                (S::PastDue, Grace::Running) => ("pro", true, R::GracePeriod),
                (S::PastDue, Grace::None | Grace::Expired) => ("pro", false, R::PastDueExpired),
                (S::Unpaid, _) => ("pro", false, R::Unpaid),
                (S::Canceled, _) => ("free", true, R::Canceled),
                (S::Incomplete, _) => ("free", true, R::Incomplete),
                (S::IncompleteExpired, _) => ("free", true, R::IncompleteExpired),
                (S::Paused, _) => ("free", true, R::Paused),
            }
        };
        let mut rows = 0;
        for status in S::ALL {
            for grace in [Grace::None, Grace::Running, Grace::Expired] {
                for disputed in [false, true] {
                    let mut p = projection(status);
                    p.grace_until = match grace {
                        Grace::None => None,
                        Grace::Running => Some(NOW + 1),
                        Grace::Expired => Some(NOW),
                    };
                    if disputed {
                        p.open_disputes = vec!["dp_1".into()];
                    }

                    let access = decide(Some(&p), NOW);

                    let (plan, allowed, reason) = match expected(status, grace) {
                        (plan, _, _) if disputed => (plan, false, R::Disputed),
                        undisputed => undisputed,
                    };
                    assert_eq!(
                        access,
                        Access { plan: plan.into(), allowed, reason },
                        "{status:?} grace={grace:?} disputed={disputed}"
                    );
                    rows += 1;
                }
            }
        }
        assert_eq!(rows, 8 * 3 * 2);
    }

    #[test]
    fn no_subscription_is_free_and_allowed() {
        assert_eq!(decide(None, NOW), Access { plan: "free".into(), allowed: true, reason: Reason::NoSubscription });
        assert_eq!(
            decide_account(None, true, NOW),
            Access { plan: "free".into(), allowed: false, reason: Reason::Disputed },
            "a dispute kept after deletion refuses even Free"
        );
    }

    #[test]
    fn full_refund_of_current_period_drops_to_free() {
        let mut p = projection(SubscriptionStatus::Active);
        p.refunded_period_end = p.current_period_end;

        let access = decide(Some(&p), NOW);

        assert_eq!(access, Access { plan: "free".into(), allowed: true, reason: Reason::Refunded });
    }

    #[test]
    fn refund_of_an_earlier_period_does_not_downgrade() {
        let mut p = projection(SubscriptionStatus::Active);
        p.refunded_period_end = Some(NOW - 10 * DAY);

        assert_eq!(decide(Some(&p), NOW).reason, Reason::Active);
    }

    #[test]
    fn grace_runs_from_the_first_failure() {
        let first = grace_until(SubscriptionStatus::PastDue, None, NOW, 3);
        let again = grace_until(SubscriptionStatus::PastDue, first, NOW + DAY, 3);
        let recovered = grace_until(SubscriptionStatus::Active, again, NOW + 2 * DAY, 3);

        assert_eq!(first, Some(NOW + 3 * DAY));
        assert_eq!(again, first);
        assert_eq!(recovered, None);
    }
}
