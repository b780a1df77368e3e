//! When to try again: exponential backoff with ±20 % jitter, a ceiling, and respect for a
//! server's `Retry-After` hint. Pure, so it is tested without time passing. Job retries use
//! [`delay`] (seconds to an hour); in-process retries of Shopify calls use [`Policy`] with a
//! sub-second base.

use rand::Rng;
use std::time::Duration;

/// A backoff schedule: `base × 2^(attempt-1)`, clamped to `[base, ceiling]`, ±20 % jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub base: Duration,
    pub ceiling: Duration,
}

/// Job retries: a job's failure is usually an outage that takes a while.
pub const JOBS: Policy = Policy {
    base: Duration::from_secs(2),
    ceiling: Duration::from_secs(60 * 60),
};
/// In-process retries of one Shopify call (5xx, dropped connections): short, since a caller waits.
pub const SHOPIFY_CALLS: Policy = Policy {
    base: Duration::from_millis(250),
    ceiling: Duration::from_secs(8),
};

pub const BASE: Duration = JOBS.base;
pub const CEILING: Duration = JOBS.ceiling;

impl Policy {
    /// Delay before attempt `attempt + 1`, given that attempt `attempt` (1-based) just failed.
    /// A `hint` (e.g. Retry-After) is honoured but clamped to [base, ceiling].
    pub fn delay(&self, attempt: u32, hint: Option<Duration>, rng: &mut impl Rng) -> Duration {
        let exp = self
            .base
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(20)));
        let base = hint.unwrap_or(exp).clamp(self.base, self.ceiling);
        // Jitter spreads retries of calls that failed together (one outage) over time.
        let factor = rng.gen_range(0.8..=1.2);
        base.mul_f64(factor).min(self.ceiling)
    }
}

/// The job schedule ([`JOBS`]).
pub fn delay(attempt: u32, hint: Option<Duration>, rng: &mut impl Rng) -> Duration {
    JOBS.delay(attempt, hint, rng)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn delays_grow_exponentially_within_jitter_and_stop_at_the_ceiling() {
        let mut rng = StdRng::seed_from_u64(7);
        for attempt in 1..=30u32 {
            let d = delay(attempt, None, &mut rng);
            let nominal = BASE.as_secs_f64() * 2f64.powi(attempt as i32 - 1);
            let nominal = nominal.min(CEILING.as_secs_f64());
            assert!(
                d.as_secs_f64() >= nominal * 0.8 - 1e-9,
                "attempt {attempt}: {d:?}"
            );
            assert!(d <= CEILING, "attempt {attempt}: {d:?}");
            assert!(
                d.as_secs_f64() <= nominal * 1.2 + 1e-9,
                "attempt {attempt}: {d:?}"
            );
        }
    }

    #[test]
    fn retry_after_hint_is_clamped() {
        let mut rng = StdRng::seed_from_u64(1);
        assert!(delay(1, Some(Duration::from_millis(1)), &mut rng) >= BASE.mul_f64(0.8));
        assert!(delay(1, Some(Duration::from_secs(100_000)), &mut rng) <= CEILING);
        let d = delay(9, Some(Duration::from_secs(30)), &mut rng);
        assert!((24.0..=36.0).contains(&d.as_secs_f64()), "{d:?}");
    }

    #[test]
    fn jitter_actually_varies() {
        let mut rng = StdRng::seed_from_u64(3);
        let a: Vec<_> = (0..10).map(|_| delay(3, None, &mut rng)).collect();
        assert!(a.windows(2).any(|w| w[0] != w[1]));
    }
}
