//! Faults on demand, per shop: the failure modes of app-platform.md §7.2 that Keel's Admin
//! client must survive. Set with [`crate::Sim::set_faults`] or `PUT /_sim/shops/{shop}/faults`;
//! [`Faults::default`] (or `DELETE`) clears them.
//!
//! Each call to the Admin API draws one [`Decision`] *before* anything is applied, so an error
//! status never hides a half-applied mutation — except [`DropFault::after_apply`], which exists
//! precisely to apply a mutation and then lose the answer, so clients can prove that their
//! idempotency keys prevent double application. Random choices use a per-shop RNG seeded from
//! [`Faults::seed`], so a failing run can be reproduced.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// The faults in force for one shop. All optional; the default is a healthy shop.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Answer with a 5xx status.
    #[serde(default)]
    pub errors: Option<ErrorFault>,
    /// Answer 429 with `Retry-After`.
    #[serde(default)]
    pub too_many_requests: Option<RateLimitFault>,
    /// Added to every Admin API call of the shop, before it is processed.
    #[serde(default)]
    pub latency_ms: u64,
    /// Close the TCP connection without an answer.
    #[serde(default)]
    pub drop_connection: Option<DropFault>,
    /// Every call gets the 401 of an expired or revoked token, whatever the token.
    #[serde(default)]
    pub expired_token: bool,
    /// Every call gets Shopify's maintenance 503 until this time.
    #[serde(default)]
    pub maintenance_until: Option<DateTime<Utc>>,
    /// Seed of the RNG behind the `rate`s (default 0).
    #[serde(default)]
    pub seed: u64,
}

/// 5xx answers: with probability `rate`, for at most `times` calls (unlimited when absent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorFault {
    /// Chosen from uniformly (seeded); 500, 502 and 503 are what Shopify's edge returns.
    pub statuses: Vec<u16>,
    #[serde(default = "always")]
    pub rate: f64,
    #[serde(default)]
    pub times: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitFault {
    /// Value of the `Retry-After` header, in seconds.
    pub retry_after_secs: u64,
    #[serde(default = "always")]
    pub rate: f64,
    #[serde(default)]
    pub times: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropFault {
    #[serde(default = "always")]
    pub rate: f64,
    #[serde(default)]
    pub times: Option<u32>,
    /// Execute the request (apply mutations, charge the bucket), then drop the connection.
    #[serde(default)]
    pub after_apply: bool,
}

fn always() -> f64 {
    1.0
}

/// What to do with one call, decided up front.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Proceed,
    Maintenance,
    ExpiredToken,
    TooManyRequests { retry_after_secs: u64 },
    Status(u16),
    DropBefore,
    DropAfterApply,
}

/// The faults of a shop with their RNG and remaining counts.
#[derive(Debug)]
pub(crate) struct FaultState {
    pub faults: Faults,
    rng: StdRng,
}

impl Default for FaultState {
    fn default() -> Self {
        FaultState::new(Faults::default())
    }
}

impl FaultState {
    pub fn new(faults: Faults) -> Self {
        let rng = StdRng::seed_from_u64(faults.seed);
        FaultState { faults, rng }
    }

    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.faults.latency_ms)
    }

    /// Draws the fate of one call. Counted faults (`times`) are used up as they fire.
    pub fn decide(&mut self, now: DateTime<Utc>) -> Decision {
        let f = &mut self.faults;
        if f.maintenance_until.is_some_and(|until| now < until) {
            return Decision::Maintenance;
        }
        if f.expired_token {
            return Decision::ExpiredToken;
        }
        if let Some(t) = &mut f.too_many_requests {
            if fires(&mut self.rng, t.rate, &mut t.times) {
                return Decision::TooManyRequests {
                    retry_after_secs: t.retry_after_secs,
                };
            }
        }
        if let Some(e) = &mut f.errors {
            if !e.statuses.is_empty() && fires(&mut self.rng, e.rate, &mut e.times) {
                let i = self.rng.gen_range(0..e.statuses.len());
                return Decision::Status(e.statuses[i]);
            }
        }
        if let Some(d) = &mut f.drop_connection {
            let after = d.after_apply;
            if fires(&mut self.rng, d.rate, &mut d.times) {
                return if after {
                    Decision::DropAfterApply
                } else {
                    Decision::DropBefore
                };
            }
        }
        Decision::Proceed
    }
}

/// Whether a fault with this rate and remaining count fires now (and uses one up if so).
fn fires(rng: &mut StdRng, rate: f64, times: &mut Option<u32>) -> bool {
    if *times == Some(0) {
        return false;
    }
    let hit = rate >= 1.0 || (rate > 0.0 && rng.gen_bool(rate.clamp(0.0, 1.0)));
    if hit {
        if let Some(n) = times {
            *n -= 1;
        }
    }
    hit
}
