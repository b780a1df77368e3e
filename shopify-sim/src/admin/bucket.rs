//! The per-shop leaky bucket behind cost-based throttling (reference app-platform.md §7.3,
//! summarising shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits):
//!
//! - one bucket per app × store; it refills continuously at the plan's restore rate
//!   (Standard 100 points/s, Advanced 200, Plus 1000, Enterprise 2000);
//! - its size is reported as `maximumAvailable` (2000 at 100 points/s on current shops, i.e. 20×
//!   the restore rate — the size is not on the current page, so it is configurable here);
//! - a query is refused (THROTTLED) when its *requested* cost exceeds what is available; otherwise
//!   the requested cost is taken before execution and `requested − actual` is refunded after
//!   (the "call limit" page: "the bucket is refunded the difference between the requested cost
//!   and the actual cost").
//!
//! Time is tokio's `Instant`, so the bucket follows the real clock (and a paused tokio clock in
//! tests that pause it).

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// A shop's Shopify plan, which sets the restore rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    #[default]
    Standard,
    Advanced,
    Plus,
    Enterprise,
}

impl Plan {
    /// Points per second (rate-limits page, "Plan | Rate limit" table).
    pub fn restore_rate(self) -> f64 {
        match self {
            Plan::Standard => 100.0,
            Plan::Advanced => 200.0,
            Plan::Plus => 1000.0,
            Plan::Enterprise => 2000.0,
        }
    }

    /// Default bucket size: 20 seconds of restore, which gives the 2000 points Shopify reports
    /// for Standard shops.
    pub fn default_maximum(self) -> f64 {
        self.restore_rate() * 20.0
    }
}

/// Throttle settings of a shop, as set through [`crate::Sim::set_throttle`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleConfig {
    #[serde(default)]
    pub plan: Plan,
    /// Bucket size; default [`Plan::default_maximum`].
    #[serde(default)]
    pub maximum_available: Option<f64>,
    /// Sets the bucket's current content (clamped to the maximum), e.g. to start a test nearly
    /// empty; default: full.
    #[serde(default)]
    pub currently_available: Option<f64>,
}

/// `extensions.cost.throttleStatus`, plus the refusals count tests assert on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThrottleStatus {
    pub maximum_available: f64,
    pub currently_available: f64,
    pub restore_rate: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    pub plan: Plan,
    maximum: f64,
    available: f64,
    updated: Instant,
}

impl Default for Bucket {
    fn default() -> Self {
        Bucket::new(ThrottleConfig::default(), Instant::now())
    }
}

impl Bucket {
    pub fn new(config: ThrottleConfig, now: Instant) -> Self {
        let maximum = config
            .maximum_available
            .unwrap_or_else(|| config.plan.default_maximum())
            .max(0.0);
        Bucket {
            plan: config.plan,
            maximum,
            available: config
                .currently_available
                .unwrap_or(maximum)
                .clamp(0.0, maximum),
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.available = (self.available + elapsed * self.plan.restore_rate()).min(self.maximum);
        self.updated = now;
    }

    /// Takes `cost` points, or reports that they are not available (nothing taken).
    pub fn try_take(&mut self, cost: u64, now: Instant) -> bool {
        self.refill(now);
        let cost = cost as f64;
        if cost > self.available {
            return false;
        }
        self.available -= cost;
        true
    }

    /// Gives back points charged but not used.
    pub fn refund(&mut self, points: u64, now: Instant) {
        self.refill(now);
        self.available = (self.available + points as f64).min(self.maximum);
    }

    pub fn status(&mut self, now: Instant) -> ThrottleStatus {
        self.refill(now);
        ThrottleStatus {
            maximum_available: self.maximum,
            // Shopify reports whole points (as floats).
            currently_available: self.available.floor(),
            restore_rate: self.plan.restore_rate(),
        }
    }
}
