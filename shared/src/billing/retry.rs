//! Exponential backoff with jitter for Stripe calls: retried on 429, 5xx and connection
//! errors only, always with the same idempotency key (async-stripe's own strategies either send
//! once or invent a new key per try, and retry some 4xx).

use std::time::Duration;

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts after the first.
    pub max_retries: u32,
    /// The first delay; each next one doubles, up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_retries: 3, base_delay: Duration::from_millis(250), max_delay: Duration::from_secs(4) }
    }
}

impl RetryPolicy {
    /// The delay before retry number `attempt` (0-based): `base * 2^attempt`, capped, then
    /// scaled by `jitter` in [0.5, 1.0] so that many clients do not retry in lockstep.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let exp = self.base_delay.saturating_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX));
        exp.min(self.max_delay).mul_f64(jitter.clamp(0.5, 1.0))
    }
}

/// A jitter factor in [0.5, 1.0] from the clock's low bits; good enough to spread retries.
pub fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    0.5 + f64::from(nanos % 1000) / 2000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_then_cap() {
        let policy =
            RetryPolicy { max_retries: 10, base_delay: Duration::from_millis(100), max_delay: Duration::from_secs(1) };

        let delays: Vec<_> = (0..6).map(|a| policy.delay(a, 1.0).as_millis()).collect();

        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(policy.delay(40, 1.0), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_within_half_to_full() {
        let policy = RetryPolicy::default();

        assert_eq!(policy.delay(0, 0.5), Duration::from_millis(125));
        assert_eq!(policy.delay(0, 0.1), Duration::from_millis(125));
        let j = jitter();
        assert!((0.5..=1.0).contains(&j));
    }
}
