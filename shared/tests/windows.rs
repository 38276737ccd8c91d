//! The usage-window rule over a subscription's whole life, as a property (no I/O): from any
//! anchor day 1 to 31, any sequence of renewals, plan changes, interval changes, cancellations
//! and new subscriptions over two years, the windows that `usage::window` answers tile time
//! (each starts where the one before ended: no gap, no overlap), a monthly price's windows are
//! Stripe's periods, an interval change never cuts the window in progress short, and the plan
//! grants of a window never exceed the credits of the highest tier held in it.

use proptest::prelude::*;
use tollgate::domain::credits::plan_grant;
use tollgate::domain::model::{AccountId, Interval, Projection, SubscriptionStatus};
use tollgate::domain::plans::Catalogue;
use tollgate::domain::projection::{Context, project};
use tollgate::domain::snapshot::{RemoteItem, RemoteSubscription};
use tollgate::domain::usage::{Window, add_months, window};

const DAY: i64 = 86_400;
/// 2027-01-01T12:00:00Z.
const JAN_1_NOON: i64 = 1_798_804_800;
const TIERS: [&str; 3] = ["pro", "team", "enterprise"];

#[derive(Debug, Clone, Copy)]
enum Op {
    ChangePlan(usize),
    ChangeInterval,
    /// Cancel the live subscription now, or subscribe again when there is none.
    EndOrStart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![(0usize..3).prop_map(Op::ChangePlan), Just(Op::ChangeInterval), Just(Op::EndOrStart)]
}

/// Stripe's subscription, as the test drives it.
#[derive(Debug, Clone)]
struct Stripe {
    serial: u32,
    live: bool,
    tier: usize,
    interval: Interval,
    anchor: i64,
    created: i64,
    ended_at: Option<i64>,
}

impl Stripe {
    fn months(&self) -> i64 {
        if self.interval == Interval::Year { 12 } else { 1 }
    }

    /// Stripe's period holding `at`: steps of the price's interval from the anchor.
    fn period(&self, at: i64) -> (i64, i64) {
        let n = self.months();
        let mut k = (at - self.anchor).div_euclid(28 * DAY * n).max(0);
        while add_months(self.anchor, (k + 1) * n) <= at {
            k += 1;
        }
        while k > 0 && add_months(self.anchor, k * n) > at {
            k -= 1;
        }
        (add_months(self.anchor, k * n), add_months(self.anchor, (k + 1) * n))
    }

    fn remote(&self, at: i64) -> RemoteSubscription {
        let (start, end) = self.period(at);
        let suffix = if self.interval == Interval::Year { "yearly" } else { "monthly" };
        RemoteSubscription {
            id: format!("sub_{}", self.serial),
            customer_id: "cus_1".into(),
            status: if self.live { SubscriptionStatus::Active } else { SubscriptionStatus::Canceled },
            items: vec![RemoteItem {
                id: format!("si_{}", self.serial),
                price_id: format!("price_{}_{suffix}", TIERS[self.tier]),
                price_lookup_key: Some(format!("{}_{suffix}", TIERS[self.tier])),
                interval: Some(self.interval),
                current_period_start: Some(start),
                current_period_end: Some(end),
            }],
            trial_end: None,
            cancel_at_period_end: false,
            created: self.created,
            billing_cycle_anchor: Some(self.anchor),
            ended_at: self.ended_at,
            account_hint: None,
            latest_invoice: None,
        }
    }
}

fn projected(catalogue: &Catalogue, stripe: &Stripe, previous: Option<&Projection>, at: i64) -> Projection {
    let account = AccountId::parse("acct_1").unwrap();
    let ctx = Context { catalogue, version: at * 1000, now: at, grace_days: 3 };
    project(&account, "cus_1", &[stripe.remote(at)], previous, ctx).unwrap()
}

/// One window's plan grants so far, and the most credits of a tier held in it.
#[derive(Debug, Default)]
struct Granted {
    grants: Vec<tollgate::domain::credits::Grant>,
    bound: u64,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn windows_tile_time_and_plan_grants_stay_within_the_highest_tier(
        day in 1i64..=31,
        yearly in any::<bool>(),
        ops in proptest::collection::vec((1i64..70, 0i64..DAY, op()), 1..25),
    ) {
        let catalogue = Catalogue::builtin().unwrap();
        let credits = |tier: usize| catalogue.tier(TIERS[tier]).unwrap().credits;
        let started = JAN_1_NOON + (day - 1) * DAY;
        let horizon = started + 2 * 365 * DAY;
        let mut stripe = Stripe {
            serial: 1,
            live: true,
            tier: 0,
            interval: if yearly { Interval::Year } else { Interval::Month },
            anchor: started,
            created: started,
            ended_at: None,
        };
        // Free before it: the calendar month, closed when the subscription starts.
        let free = window(None, started - 1);
        let mut state = projected(catalogue, &stripe, None, started);
        let mut current = window(Some(&state), started);
        prop_assert_eq!(current.start, started, "starting closes the free window {:?}", free);
        let mut last_change = started;
        // The window kept over an interval change runs past the period; after it, windows are
        // periods again.
        let mut kept_until = started;
        let mut grants = std::collections::BTreeMap::<i64, Granted>::new();
        let mut grant = |w: Window, tier: usize, at: i64| {
            let held = grants.entry(w.start).or_default();
            held.bound = held.bound.max(credits(tier));
            let earlier: Vec<_> = held.grants.iter().collect();
            if let Some(g) = plan_grant(TIERS[tier], credits(tier), &earlier, w, at) {
                held.grants.push(g);
            }
            (held.grants.iter().map(|g| g.credits).sum::<u64>(), held.bound)
        };
        grant(current, stripe.tier, started);

        let mut at = started;
        let mut pending = ops.into_iter().map(|(gap, offset, op)| (gap * DAY + offset, op)).collect::<Vec<_>>().into_iter();
        let mut next_op = pending.next();
        while at < horizon {
            let op_at = next_op.map_or(i64::MAX, |(gap, _)| last_change + gap);
            if current.end <= op_at {
                // The window ends: the next starts right there. Stripe renews at its period's
                // end: re-projected, the window is the same.
                at = current.end;
                if stripe.live {
                    state = projected(catalogue, &stripe, Some(&state), at);
                }
                let next = window(Some(&state), at);
                prop_assert_eq!(next.start, current.end, "no gap, no overlap after {:?}", current);
                prop_assert!(next.start <= at && at < next.end);
                if stripe.live && stripe.interval == Interval::Month && at >= kept_until {
                    let (start, end) = stripe.period(at);
                    prop_assert_eq!((next.start, next.end), (start, end), "a monthly price's window is its period");
                }
                current = next;
                if stripe.live {
                    let (total, bound) = grant(current, stripe.tier, at);
                    prop_assert!(total <= bound);
                }
                continue;
            }
            let (_, op) = next_op.unwrap();
            next_op = pending.next();
            at = op_at;
            last_change = at;
            let before = current;
            match op {
                Op::ChangePlan(tier) if stripe.live => stripe.tier = tier,
                Op::ChangeInterval if stripe.live => {
                    stripe.interval = if stripe.interval == Interval::Year { Interval::Month } else { Interval::Year };
                    stripe.anchor = at;
                    kept_until = add_months(at, 1);
                }
                Op::EndOrStart if stripe.live => {
                    stripe.live = false;
                    stripe.ended_at = Some(at);
                }
                Op::EndOrStart => {
                    kept_until = at;
                    stripe = Stripe { serial: stripe.serial + 1, live: true, anchor: at, created: at, ended_at: None, ..stripe };
                }
                _ => continue,
            }
            state = projected(catalogue, &stripe, Some(&state), at);
            current = window(Some(&state), at);
            prop_assert!(current.start <= at && at < current.end, "{:?} at {}", current, at);
            match op {
                Op::ChangePlan(_) => prop_assert_eq!(current, before, "a plan change keeps the window"),
                Op::ChangeInterval => {
                    prop_assert_eq!(current.start, before.start, "an interval change keeps the window in progress");
                    prop_assert!(current.end >= before.end, "never cut shorter: {:?} -> {:?}", before, current);
                }
                Op::EndOrStart => prop_assert_eq!(current.start, at, "closed at that instant"),
            }
            if stripe.live {
                let (total, bound) = grant(current, stripe.tier, at);
                prop_assert!(total <= bound, "{} granted in {:?}, at most {}", total, current, bound);
            }
        }
    }
}
