//! The local stack's clock: one for every function and the Stripe stand-in. It runs at the wall
//! clock's pace from wherever it was last set, and only moves forward (`set`, `advance`), so
//! the stack's time can be taken to a renewal, a trial's end or an expiry and tested over HTTP
//! (`GET`/`POST /_dev/clock`, `tollgate-dev clock`). With real Stripe (`STRIPE_SECRET_KEY` set)
//! it cannot move: Stripe's own time would not follow. A deployed function never has it.

use std::sync::atomic::{AtomicI64, Ordering};
use tollgate::ports::clock::{Clock, SystemClock};

/// Why the clock did not move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    /// Time only moves forward.
    #[error("the clock only moves forward: {requested} is before the stack's time {now}")]
    Backwards { requested: i64, now: i64 },
    /// The stack talks to real Stripe, whose time does not move with it.
    #[error("the clock is fixed to the system clock while STRIPE_SECRET_KEY is set (real Stripe)")]
    Fixed,
}

/// The stack's time: the wall clock plus an offset that only grows.
#[derive(Debug, Default)]
pub struct StackClock {
    /// Milliseconds added to the wall clock.
    offset_ms: AtomicI64,
    /// Moves are refused (real Stripe).
    fixed: bool,
}

impl StackClock {
    /// A clock at the wall clock's time, movable unless `fixed`.
    pub fn new(fixed: bool) -> Self {
        Self { offset_ms: AtomicI64::new(0), fixed }
    }

    /// Sets the time to `at` (Unix seconds), which must not be before the stack's time.
    pub fn set(&self, at: i64) -> Result<i64, ClockError> {
        let now = self.now();
        if at < now {
            return Err(ClockError::Backwards { requested: at, now });
        }
        self.advance(at.saturating_sub(now))
    }

    /// Moves the time forward by `seconds` (not negative); answers the new time.
    pub fn advance(&self, seconds: i64) -> Result<i64, ClockError> {
        if self.fixed {
            return Err(ClockError::Fixed);
        }
        if seconds < 0 {
            let now = self.now();
            return Err(ClockError::Backwards { requested: now.saturating_add(seconds), now });
        }
        self.offset_ms.fetch_add(seconds.saturating_mul(1000), Ordering::SeqCst);
        Ok(self.now())
    }
}

impl Clock for StackClock {
    fn now_ms(&self) -> i64 {
        SystemClock.now_ms().saturating_add(self.offset_ms.load(Ordering::SeqCst))
    }
}

/// A duration as `tollgate-dev clock advance` takes it: `30d`, `12h`, `90m`, `45s` or seconds.
pub fn parse_duration(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    let (number, unit) = match raw.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&raw[..i], c),
        _ => (raw, 's'),
    };
    let unit = match unit {
        'd' => 86_400,
        'h' => 3_600,
        'm' => 60,
        's' => 1,
        _ => return None,
    };
    number.parse::<i64>().ok().filter(|n| *n >= 0)?.checked_mul(unit)
}

/// A time as `tollgate-dev clock set` takes it: RFC 3339 (`2027-01-31T12:00:00Z`) or Unix seconds.
pub fn parse_time(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    if let Ok(seconds) = raw.parse::<i64>() {
        return Some(seconds);
    }
    time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339).ok().map(|t| t.unix_timestamp())
}

/// A Unix time as RFC 3339.
pub fn iso(at: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_moves_forward_only_and_runs_on_from_where_it_was_set() {
        let clock = StackClock::new(false);
        let start = clock.now();

        let advanced = clock.advance(30 * 86_400).unwrap();
        let set = clock.set(advanced + 3_600).unwrap();
        let back = clock.set(start);
        let negative = clock.advance(-1);

        assert!((advanced - start - 30 * 86_400).abs() <= 1, "{start} -> {advanced}");
        assert!((set - advanced - 3_600).abs() <= 1);
        assert!(matches!(back, Err(ClockError::Backwards { .. })), "{back:?}");
        assert!(matches!(negative, Err(ClockError::Backwards { .. })));
        assert!(clock.now() >= set, "the clock runs on");
    }

    #[test]
    fn a_clock_fixed_to_real_stripe_does_not_move() {
        let clock = StackClock::new(true);

        assert_eq!(clock.advance(60), Err(ClockError::Fixed));
        assert_eq!(clock.set(clock.now() + 60), Err(ClockError::Fixed));
    }

    #[test]
    fn durations_and_times_parse_as_the_cli_takes_them() {
        assert_eq!(parse_duration("30d"), Some(30 * 86_400));
        assert_eq!(parse_duration("12h"), Some(12 * 3_600));
        assert_eq!(parse_duration("90m"), Some(5_400));
        assert_eq!(parse_duration("45"), Some(45));
        assert_eq!(parse_duration("-5"), None);
        assert_eq!(parse_duration("3w"), None);
        assert_eq!(parse_time("2027-01-31T12:00:00Z"), Some(1_801_396_800));
        assert_eq!(parse_time("1801396800"), Some(1_801_396_800));
        assert_eq!(parse_time("tomorrow"), None);
        assert_eq!(iso(1_801_396_800), "2027-01-31T12:00:00Z");
    }
}
