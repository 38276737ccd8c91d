//! Usage windows and quotas (no I/O): the window an account's usage counts in, and what a
//! metric's counter answers.
//!
//! Quotas are monthly, and an account's windows tile time: they never overlap and leave no gap.
//! - A live subscription counts in monthly windows from its `billing_cycle_anchor`, the day
//!   clamped as Stripe clamps it: for a monthly price exactly Stripe's periods (anchor Jan 31:
//!   [Jan 31, Feb 28), [Feb 28, Mar 31), [Mar 31, Apr 30)), for a yearly price the same monthly
//!   steps within the year.
//! - An account without a live subscription counts in UTC calendar months.
//! - The window in progress is kept when the schedule changes ([`WindowOrigin`]): a plan change
//!   keeps everything; an interval change (Stripe moves the anchor to the change) lets the window
//!   in progress run until the new schedule's first boundary after the change; starting or ending
//!   a subscription closes the window in progress at that instant and opens the next.

use crate::domain::model::Projection;
use crate::domain::model::SubscriptionStatus::Trialing;
pub use crate::domain::model::WindowOrigin;
use serde::{Deserialize, Serialize};
use time::{Date, Month, OffsetDateTime};

/// A usage window, `[start, end)` in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start: i64,
    pub end: i64,
}

/// Largest quantity one request may consume.
pub const MAX_QUANTITY: u64 = 1_000_000;

/// `timestamp` moved by `months` calendar months, keeping the time of day and clamping the day
/// to the end of a shorter month (Stripe's rule for monthly periods). Saturates outside the
/// calendar's range.
pub fn add_months(timestamp: i64, months: i64) -> i64 {
    let Ok(at) = OffsetDateTime::from_unix_timestamp(timestamp) else { return timestamp };
    let index =
        i64::from(at.year()).saturating_mul(12).saturating_add(i64::from(u8::from(at.month())).saturating_sub(1));
    let index = index.saturating_add(months);
    let (year, month) = (index.div_euclid(12), index.rem_euclid(12));
    let (Ok(year), Ok(month)) =
        (i32::try_from(year), Month::try_from(u8::try_from(month.saturating_add(1)).unwrap_or(1)))
    else {
        return if months < 0 { i64::MIN } else { i64::MAX };
    };
    let day = at.day().min(time::util::days_in_month(month, year));
    match Date::from_calendar_date(year, month, day) {
        Ok(date) => date.with_time(at.time()).assume_utc().unix_timestamp(),
        Err(_) => {
            if months < 0 {
                i64::MIN
            } else {
                i64::MAX
            }
        }
    }
}

/// The boundaries an account's windows follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Schedule {
    /// Monthly from a billing cycle anchor, the day clamped.
    Anchored(i64),
    /// UTC calendar months.
    Calendar,
}

impl Schedule {
    fn of(projection: Option<&Projection>) -> Self {
        match projection.filter(|p| p.status.is_live()) {
            // Stored before anchors were kept: a trial's anchor is its end (as in Stripe),
            // another's its period's start.
            Some(live) => match live
                .billing_cycle_anchor
                .or(live.trial_end.filter(|_| live.status == Trialing))
                .or(live.current_period_start)
            {
                Some(anchor) => Self::Anchored(anchor),
                None => Self::Calendar,
            },
            None => Self::Calendar,
        }
    }

    /// The schedule's window holding `at`.
    fn holding(self, at: i64) -> Window {
        match self {
            Self::Anchored(anchor) => monthly_from(anchor, at),
            Self::Calendar => calendar_month(at),
        }
    }

    /// The schedule's first boundary after `at`.
    fn boundary_after(self, at: i64) -> i64 {
        self.holding(at).end
    }
}

/// The monthly window from `anchor` that `now` falls in (the calendar month when the two are
/// too far apart for the calendar, which only hostile times are).
fn monthly_from(anchor: i64, now: i64) -> Window {
    // Whole months between the two, as a first guess (a mean month), then the one around it
    // that holds `now`.
    let guess = now.saturating_sub(anchor).div_euclid(2_629_746);
    (guess.saturating_sub(2)..=guess.saturating_add(2))
        .map(|k| Window { start: add_months(anchor, k), end: add_months(anchor, k.saturating_add(1)) })
        .find(|w| w.start <= now && now < w.end)
        .unwrap_or_else(|| calendar_month(now))
}

/// The UTC calendar month `now` falls in.
fn calendar_month(now: i64) -> Window {
    let Ok(at) = OffsetDateTime::from_unix_timestamp(now) else {
        return Window { start: now, end: now.saturating_add(1) };
    };
    let first = at.date().replace_day(1).map(|d| d.midnight().assume_utc().unix_timestamp()).unwrap_or(now);
    Window { start: first, end: add_months(first, 1) }
}

/// The window usage counts in at `now` for an account with `projection` (see the module's
/// rule): the window in progress since the projection's [`WindowOrigin`] until the schedule's
/// first boundary after it, then the schedule's windows.
pub fn window(projection: Option<&Projection>, now: i64) -> Window {
    let schedule = Schedule::of(projection);
    let origin = projection.and_then(|p| p.window_origin).or_else(|| {
        // A projection stored before origins were kept: its period's start.
        projection
            .filter(|p| p.status.is_live())
            .and_then(|p| p.current_period_start)
            .map(|start| WindowOrigin { start, after: start })
    });
    match origin.filter(|o| o.start <= now) {
        Some(origin) => {
            let first_end = schedule.boundary_after(origin.after.max(origin.start));
            if now < first_end { Window { start: origin.start, end: first_end } } else { schedule.holding(now) }
        }
        None => schedule.holding(now),
    }
}

/// The origin of the window in progress for a projection `next` that replaces `previous`.
/// From Stripe's state alone wherever it can be, so that any delivery order of the events
/// gives the projection in-order delivery gives: a subscription's windows start at its
/// creation (`started`, closing the window in progress then), an ended one's Free windows at its
/// end (`ended`). Only an interval change needs what was projected before: Stripe moves the
/// anchor to the change, and the window in progress at the change (by the previous anchor)
/// runs on until the new schedule's first boundary after the change, or after its own end when
/// that comes later (never cut shorter). When the state before the change was never projected
/// (every event of it arrived after), windows follow the new anchor from its creation.
pub fn origin_after(
    previous: Option<&Projection>,
    next: &Projection,
    started: i64,
    ended: i64,
) -> Option<WindowOrigin> {
    if !next.status.is_live() {
        return Some(WindowOrigin { start: ended, after: ended });
    }
    let same = previous.filter(|p| p.status.is_live() && p.subscription_id == next.subscription_id);
    let created = WindowOrigin { start: started, after: started };
    match same {
        Some(previous)
            if previous.billing_cycle_anchor != next.billing_cycle_anchor && next.billing_cycle_anchor.is_some() =>
        {
            let change = next.billing_cycle_anchor.unwrap_or(started);
            let in_progress = window(Some(previous), change);
            Some(WindowOrigin { start: in_progress.start, after: change.max(in_progress.end.saturating_sub(1)) })
        }
        Some(previous) => Some(previous.window_origin.unwrap_or(created)),
        None => Some(created),
    }
}

/// A metric's count in a window against its limit (`None`: unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Counted {
    pub used: u64,
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
}

impl Counted {
    pub fn new(used: u64, limit: Option<u64>) -> Self {
        Self { used, limit, remaining: limit.map(|l| l.saturating_sub(used)) }
    }

    /// Whether `quantity` more fits.
    pub fn allows(&self, quantity: u64) -> bool {
        self.limit.is_none_or(|limit| self.used.saturating_add(quantity) <= limit)
    }
}

/// Every metric of the plan in the current usage window (`GET /usage`, and the usage part of
/// `GET /subscription`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageReport {
    pub period_start: i64,
    pub period_end: i64,
    pub metrics: std::collections::BTreeMap<String, Counted>,
}

/// One limit as the rate-limit headers tell it: `quota` in `window_secs`, `remaining` of it,
/// and the seconds until it resets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `minute` for the per-minute request limit; the metric's name for its quota.
    pub name: String,
    pub quota: u64,
    pub remaining: u64,
    pub reset_secs: u64,
    pub window_secs: u64,
}

impl Policy {
    /// The per-minute request limit of `requests_per_minute`, with `requests` counted in the
    /// window that ends at `end_ms`.
    pub fn minute(requests_per_minute: u64, requests: u64, end_ms: i64, now_ms: i64) -> Self {
        Self {
            name: "minute".to_owned(),
            quota: requests_per_minute,
            remaining: requests_per_minute.saturating_sub(requests),
            reset_secs: crate::domain::ratelimit::retry_after_seconds(end_ms.saturating_sub(now_ms)),
            window_secs: 60,
        }
    }

    /// The quota of `metric` in `window`, as `counted` stands at `now` (`None` when unlimited).
    pub fn quota(metric: &str, counted: &Counted, window: Window, now: i64) -> Option<Self> {
        let quota = counted.limit?;
        let seconds = |from: i64, to: i64| u64::try_from(to.saturating_sub(from)).unwrap_or_default();
        Some(Self {
            name: metric.to_owned(),
            quota,
            remaining: counted.remaining.unwrap_or_default(),
            reset_secs: seconds(now, window.end).max(1),
            window_secs: seconds(window.start, window.end),
        })
    }
}

/// The tighter of the policies, as the older `RateLimit-Limit/Remaining/Reset` headers tell
/// one: the least remaining, then the soonest reset.
pub fn tightest(policies: &[Policy]) -> Option<&Policy> {
    policies.iter().min_by_key(|p| (p.remaining, p.reset_secs))
}

/// The alert thresholds (percentages of `limit`) a count of `used` has reached.
pub fn reached(thresholds: &[u8], limit: Option<u64>, used: u64) -> Vec<u8> {
    crossed(thresholds, limit, 0, used)
}

/// The alert thresholds (percentages of `limit`) that consuming from `before` to `after`
/// crosses.
pub fn crossed(thresholds: &[u8], limit: Option<u64>, before: u64, after: u64) -> Vec<u8> {
    let Some(limit) = limit.filter(|l| *l > 0) else { return vec![] };
    let at = |pct: u8| u128::from(limit).saturating_mul(u128::from(pct)).div_ceil(100);
    thresholds.iter().copied().filter(|pct| u128::from(before) < at(*pct) && at(*pct) <= u128::from(after)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::SubscriptionStatus;
    use proptest::prelude::*;

    proptest! {
        /// Any time from 1970 to 2200, any anchor in that range: the window holds the time and
        /// is one calendar month long.
        #[test]
        fn every_window_holds_now_and_is_a_month_long(now in 0i64..7_258_118_400, anchor in 0i64..7_258_118_400) {
            for w in [window(None, now), monthly_from(anchor, now)] {
                prop_assert!(w.start <= now && now < w.end, "{w:?} {now}");
                prop_assert!((28 * 86_400..=31 * 86_400).contains(&(w.end - w.start)), "{w:?}");
            }
        }
    }

    fn utc(y: i32, m: u8, d: u8) -> i64 {
        Date::from_calendar_date(y, Month::try_from(m).unwrap(), d).unwrap().midnight().assume_utc().unix_timestamp()
    }

    fn subscribed(start: i64) -> Projection {
        Projection {
            status: SubscriptionStatus::Active,
            current_period_start: Some(start),
            current_period_end: Some(add_months(start, 12)),
            ..crate::testing::projection("acct_1")
        }
    }

    #[test]
    fn months_clamp_to_the_end_of_shorter_months() {
        assert_eq!(add_months(utc(2026, 1, 31), 1), utc(2026, 2, 28));
        assert_eq!(add_months(utc(2026, 1, 31), 2), utc(2026, 3, 31), "from the anchor, not the last window");
        assert_eq!(add_months(utc(2028, 2, 29), 12), utc(2029, 2, 28));
        assert_eq!(add_months(utc(2026, 3, 15), -3), utc(2025, 12, 15));
    }

    #[test]
    fn no_subscription_counts_in_the_calendar_month() {
        let w = window(None, utc(2026, 11, 29) + 3_600);

        assert_eq!(w, Window { start: utc(2026, 11, 1), end: utc(2026, 12, 1) });
    }

    #[test]
    fn a_yearly_subscription_counts_in_monthly_windows_from_its_anchor() {
        let p = subscribed(utc(2026, 1, 31) + 600);

        let w = window(Some(&p), utc(2026, 3, 5));

        assert_eq!(w, Window { start: utc(2026, 2, 28) + 600, end: utc(2026, 3, 31) + 600 });
        assert_eq!(
            window(Some(&p), utc(2026, 3, 31) + 600).start,
            utc(2026, 3, 31) + 600,
            "a window includes its start"
        );
    }

    #[test]
    fn a_trial_shorter_than_a_month_ends_its_window_with_the_trial() {
        let start = utc(2026, 11, 20);
        let trial = Projection {
            status: SubscriptionStatus::Trialing,
            current_period_start: Some(start),
            current_period_end: Some(start + 14 * 86_400),
            // Stripe anchors a trialing subscription's cycle at the trial's end.
            billing_cycle_anchor: Some(start + 14 * 86_400),
            trial_end: Some(start + 14 * 86_400),
            ..crate::testing::projection("acct_1")
        };
        let paid = Projection {
            status: SubscriptionStatus::Active,
            current_period_start: Some(start + 14 * 86_400),
            current_period_end: Some(add_months(start + 14 * 86_400, 1)),
            ..trial.clone()
        };

        assert_eq!(window(Some(&trial), start + 86_400), Window { start, end: start + 14 * 86_400 });
        assert_eq!(
            window(Some(&paid), start + 15 * 86_400),
            Window { start: start + 14 * 86_400, end: add_months(start + 14 * 86_400, 1) },
            "the paid period opens the next window"
        );
        let stale = window(Some(&trial), start + 20 * 86_400);
        assert!(stale.start <= start + 20 * 86_400 && start + 20 * 86_400 < stale.end, "a stale period end is ignored");
    }

    #[test]
    fn an_ended_subscription_counts_in_the_calendar_month() {
        let p = Projection { status: SubscriptionStatus::Canceled, ..subscribed(utc(2026, 1, 10)) };

        assert_eq!(window(Some(&p), utc(2026, 3, 5)).start, utc(2026, 3, 1));
    }

    #[test]
    fn extreme_times_do_not_panic() {
        for t in [i64::MIN, i64::MAX, 0, -1] {
            let w = window(None, t);
            let m = window(Some(&subscribed(0)), t);
            assert!(w.start <= w.end && m.start <= m.end, "{t}");
            let _ = add_months(t, i64::MAX);
            let _ = add_months(t, i64::MIN);
        }
    }

    #[test]
    fn quotas_allow_up_to_the_limit_and_alerts_fire_once_per_threshold() {
        let c = Counted::new(90, Some(100));

        assert_eq!(c.remaining, Some(10));
        assert!(c.allows(10) && !c.allows(11));
        assert!(Counted::new(u64::MAX, None).allows(u64::MAX));
        assert_eq!(crossed(&[80, 100], Some(100), 79, 80), [80]);
        assert_eq!(crossed(&[80, 100], Some(100), 70, 100), [80, 100]);
        assert!(crossed(&[80, 100], Some(100), 80, 90).is_empty());
        assert!(crossed(&[80, 100], None, 0, u64::MAX).is_empty());
        assert_eq!(crossed(&[80], Some(3), 2, 3), [80], "80% of 3 rounds up to 3");
    }

    #[test]
    fn the_tightest_policy_has_the_least_left_then_the_soonest_reset() {
        let month = Window { start: 0, end: 30 * 86_400 };
        let minute = Policy::minute(10, 4, 60_000, 15_500);
        let quota = Policy::quota("api_calls", &Counted::new(97, Some(100)), month, 86_400).unwrap();

        assert_eq!((minute.remaining, minute.reset_secs, minute.window_secs), (6, 45, 60));
        assert_eq!((quota.remaining, quota.reset_secs, quota.window_secs), (3, 29 * 86_400, 30 * 86_400));
        assert_eq!(tightest(&[minute.clone(), quota.clone()]), Some(&quota));
        let spent = Policy::minute(10, 10, 60_000, 15_500);
        assert_eq!(tightest(&[quota.clone(), spent.clone()]), Some(&spent));
        assert_eq!(Policy::quota("api_calls", &Counted::new(5, None), month, 0), None, "unlimited has no policy");
        assert_eq!(Policy::minute(10, 99, i64::MIN, i64::MAX).remaining, 0, "no overflow on hostile numbers");
    }
}
