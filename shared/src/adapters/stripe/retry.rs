//! Exponential backoff with jitter for Stripe calls: retried on 429, 5xx and connection
//! errors only, always with the same idempotency key (async-stripe's own strategies either send
//! once or invent a new key per try, and retry some 4xx).

use crate::ports::billing::BillingError;
use std::future::Future;
use std::time::Duration;
use stripe::StripeError;

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
        self.longest_delay(attempt).mul_f64(jitter.clamp(0.5, 1.0))
    }

    /// The delay before retry number `attempt` at full jitter: `base * 2^attempt`, capped.
    fn longest_delay(&self, attempt: u32) -> Duration {
        let exp = self.base_delay.saturating_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX));
        exp.min(self.max_delay)
    }

    /// The longest one call can take when every attempt runs into `per_attempt` (the client's
    /// per-attempt timeout) and every backoff is at its maximum: `(max_retries + 1) *
    /// per_attempt` plus each retry's longest delay. Saturates at `Duration::MAX`.
    pub fn worst_case(&self, per_attempt: Duration) -> Duration {
        // From retry 32 on the doubling factor saturates, so every later delay equals that one.
        const GROWING: u32 = 32;
        let attempts = per_attempt.saturating_mul(self.max_retries).saturating_add(per_attempt);
        let growing = (0..self.max_retries.min(GROWING)).map(|retry| self.longest_delay(retry));
        let flat = self.longest_delay(GROWING).saturating_mul(self.max_retries.saturating_sub(GROWING));
        growing.fold(attempts.saturating_add(flat), Duration::saturating_add)
    }
}

/// A jitter factor in [0.5, 1.0] from the clock's low bits; good enough to spread retries.
pub fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    0.5 + f64::from(nanos % 1000) / 2000.0
}

/// Whether a failure is worth another attempt: rate limits, Stripe's 5xx, and failures to
/// reach Stripe at all. Never other 4xx: they would fail the same way again.
fn retryable(err: &StripeError) -> bool {
    match err {
        StripeError::Stripe(_, status) => *status == 429 || *status >= 500,
        StripeError::ClientError(_) | StripeError::Timeout => true,
        StripeError::JSONDeserialize(_) | StripeError::ConfigError(_) => false,
    }
}

fn to_billing_error(err: StripeError) -> BillingError {
    match err {
        StripeError::Stripe(api, 404) => {
            tracing::info!(code = ?api.code, "stripe: not found");
            BillingError::NotFound
        }
        StripeError::Stripe(_, 429) => BillingError::RateLimited,
        StripeError::Stripe(api, status) if status < 500 => BillingError::Rejected {
            code: api.code.map(|c| c.as_str().to_owned()),
            message: api.message.unwrap_or_else(|| "Stripe rejected the request".into()),
        },
        StripeError::Stripe(_, status) => BillingError::Unavailable(format!("Stripe answered {status}")),
        StripeError::Timeout => BillingError::Unavailable("Stripe timed out".into()),
        StripeError::ClientError(_) => BillingError::Unavailable("Stripe could not be reached".into()),
        StripeError::JSONDeserialize(e) => BillingError::Unavailable(format!("unreadable Stripe answer: {e}")),
        StripeError::ConfigError(_) => BillingError::Unavailable("invalid Stripe client configuration".into()),
    }
}

/// Runs `attempt` until it succeeds or fails for good, sleeping `policy`'s backoff between.
pub(super) async fn retrying<T, F, Fut>(policy: RetryPolicy, attempt: F) -> Result<T, BillingError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, StripeError>>,
{
    let mut retries = 0;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(err) if retryable(&err) && retries < policy.max_retries => {
                let delay = policy.delay(retries, jitter());
                tracing::warn!(
                    retry = retries.saturating_add(1),
                    delay_ms = delay.as_millis() as u64,
                    "stripe call failed; retrying"
                );
                tokio::time::sleep(delay).await;
                retries = retries.saturating_add(1);
            }
            Err(err) => return Err(to_billing_error(err)),
        }
    }
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
    fn worst_case_is_every_attempt_timing_out_plus_every_full_delay() {
        let policy = RetryPolicy::default();

        // 4 attempts of 10 s, then 250 + 500 + 1000 ms of backoff.
        assert_eq!(policy.worst_case(Duration::from_secs(10)), Duration::from_millis(41_750));
        let once = RetryPolicy { max_retries: 0, ..policy };
        assert_eq!(once.worst_case(Duration::from_secs(2)), Duration::from_secs(2));
        // Past the cap every delay is `max_delay`: 6 attempts of 1 s, 250 + 500 + 1000 + 2000
        // + 4000 ms.
        let patient = RetryPolicy { max_retries: 5, ..policy };
        assert_eq!(patient.worst_case(Duration::from_secs(1)), Duration::from_millis(13_750));
    }

    #[test]
    fn worst_case_is_the_slowest_schedule_delay_computes() {
        for max_retries in 0..40 {
            let policy = RetryPolicy { max_retries, ..RetryPolicy::default() };
            let per_attempt = Duration::from_millis(1500);
            let slowest = (0..max_retries)
                .map(|retry| policy.delay(retry, 1.0))
                .fold(per_attempt * (max_retries + 1), |total, delay| total + delay);

            assert_eq!(policy.worst_case(per_attempt), slowest, "{max_retries} retries");
        }
    }

    #[test]
    fn worst_case_saturates_instead_of_overflowing() {
        let endless = RetryPolicy { max_retries: u32::MAX, ..RetryPolicy::default() };
        let huge = RetryPolicy { max_retries: 3, base_delay: Duration::MAX, max_delay: Duration::MAX };

        // 2^32 attempts of 1 s; 250 + 500 + 1000 + 2000 ms, then 4 s for each retry left.
        let all_retries = Duration::from_secs(u64::from(u32::MAX) + 1)
            + Duration::from_millis(3750)
            + Duration::from_secs(4) * (u32::MAX - 4);
        assert_eq!(endless.worst_case(Duration::from_secs(1)), all_retries);
        assert_eq!(endless.worst_case(Duration::MAX), Duration::MAX);
        assert_eq!(huge.worst_case(Duration::ZERO), Duration::MAX);
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
