//! Sliding-window rate limits: at most `limit` events in any `window`. The window's
//! timestamps live in one DynamoDB item written under an optimistic condition, so every
//! Lambda instance shares it; expiry is decided here, in code, since TTL deletion is late.

/// A limit: `limit` events in any `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub limit: usize,
    pub window_ms: i64,
}

/// The outcome of asking for one more event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed: store these timestamps (the live ones plus now).
    Allowed(Vec<i64>),
    /// Refused: the oldest live event leaves the window in `retry_after_ms`.
    Limited { retry_after_ms: i64 },
}

/// Decides whether one more event may happen at `now_ms`, given the timestamps recorded.
pub fn decide(stamps: &[i64], now_ms: i64, limit: Limit) -> Decision {
    let mut live: Vec<i64> = stamps.iter().copied().filter(|t| now_ms - t < limit.window_ms).collect();
    live.sort_unstable();
    if live.len() >= limit.limit {
        let oldest_that_must_leave = live[live.len() - limit.limit];
        return Decision::Limited { retry_after_ms: oldest_that_must_leave + limit.window_ms - now_ms };
    }
    live.push(now_ms);
    Decision::Allowed(live)
}

/// Whole seconds to wait, rounded up, at least 1 (for `Retry-After`).
pub fn retry_after_seconds(retry_after_ms: i64) -> u64 {
    u64::try_from((retry_after_ms + 999) / 1000).unwrap_or(1).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIVE_A_MINUTE: Limit = Limit { limit: 5, window_ms: 60_000 };

    #[test]
    fn sixth_in_a_minute_is_refused_until_the_first_leaves() {
        let mut stamps = vec![];
        for t in [0, 1_000, 2_000, 3_000, 4_000] {
            match decide(&stamps, t, FIVE_A_MINUTE) {
                Decision::Allowed(next) => stamps = next,
                other => panic!("{other:?}"),
            }
        }

        let sixth = decide(&stamps, 10_000, FIVE_A_MINUTE);
        let later = decide(&stamps, 60_000, FIVE_A_MINUTE);

        assert_eq!(sixth, Decision::Limited { retry_after_ms: 50_000 });
        assert_eq!(later, Decision::Allowed(vec![1_000, 2_000, 3_000, 4_000, 60_000]));
    }

    #[test]
    fn no_burst_across_a_window_edge() {
        // Five at 59 s: a fixed per-minute bucket would allow five more at 61 s.
        let stamps = vec![59_000; 5];

        assert!(matches!(decide(&stamps, 61_000, FIVE_A_MINUTE), Decision::Limited { .. }));
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_seconds(50_000), 50);
        assert_eq!(retry_after_seconds(1), 1);
        assert_eq!(retry_after_seconds(0), 1);
    }
}
