//! Fixed-window rate limits: at most `limit` events in each window of `window_ms`, windows
//! aligned to the Unix epoch (a 60 s window is a UTC minute). Each window is one counter item
//! taken with one conditional write (`count < limit`), so any number of parallel takers on any
//! number of instances is decided exactly: never more than `limit` allowed, never a refusal
//! for lack of a slot. (A sliding log needs a read and a retried write, which is not exact
//! under contention.) Expiry is the window's end, decided here, since TTL deletion is late.

/// A limit: `limit` events in each window of `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub limit: usize,
    pub window_ms: i64,
}

/// One window of a limit, `[start_ms, end_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Window {
    /// Milliseconds from `now_ms` until the window ends (at least 1).
    pub fn retry_after_ms(&self, now_ms: i64) -> i64 {
        self.end_ms.saturating_sub(now_ms).max(1)
    }
}

impl Limit {
    /// The window `now_ms` falls in. A non-positive `window_ms` is read as 1 ms.
    pub fn window(&self, now_ms: i64) -> Window {
        let length = self.window_ms.max(1);
        let start_ms = now_ms.saturating_sub(now_ms.rem_euclid(length));
        Window { start_ms, end_ms: start_ms.saturating_add(length) }
    }

    /// The limit as a DynamoDB number (`usize` always fits in `u64`).
    pub fn max(&self) -> u64 {
        u64::try_from(self.limit).unwrap_or(u64::MAX)
    }
}

/// Whole seconds to wait, rounded up, at least 1 (for `Retry-After`).
pub fn retry_after_seconds(retry_after_ms: i64) -> u64 {
    u64::try_from(retry_after_ms.saturating_add(999) / 1000).unwrap_or(1).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIVE_A_MINUTE: Limit = Limit { limit: 5, window_ms: 60_000 };

    #[test]
    fn windows_are_aligned_minutes() {
        let w = FIVE_A_MINUTE.window(125_000);

        assert_eq!(w, Window { start_ms: 120_000, end_ms: 180_000 });
        assert_eq!(w.retry_after_ms(125_000), 55_000);
        assert_eq!(FIVE_A_MINUTE.window(120_000), w, "a window includes its start");
        assert_eq!(FIVE_A_MINUTE.window(179_999), w);
        assert_eq!(FIVE_A_MINUTE.window(180_000).start_ms, 180_000, "and excludes its end");
    }

    #[test]
    fn extreme_clocks_do_not_overflow() {
        for now in [i64::MIN, -1, 0, i64::MAX] {
            let w = FIVE_A_MINUTE.window(now);

            assert!(w.start_ms <= now && (now < w.end_ms || w.end_ms == i64::MAX), "{now}: {w:?}");
            assert!(w.retry_after_ms(now) >= 1);
        }
        assert_eq!(Limit { limit: 1, window_ms: 0 }.window(7), Window { start_ms: 7, end_ms: 8 });
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_seconds(50_000), 50);
        assert_eq!(retry_after_seconds(1), 1);
        assert_eq!(retry_after_seconds(0), 1);
        assert_eq!(retry_after_seconds(i64::MAX), i64::MAX as u64 / 1000);
        assert_eq!(retry_after_seconds(i64::MIN), 1);
    }
}
