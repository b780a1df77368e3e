//! Client-side view of each shop's cost bucket, so Keel waits before sending instead of being
//! refused. Shopify meters the Admin GraphQL API per app and shop as a leaky bucket
//! (`maximumAvailable` points, refilled at `restoreRate` points/s) and reports its state in
//! every answer's `extensions.cost.throttleStatus`.
//!
//! - Callers for one shop queue on a fair (FIFO) async lock and reserve their query's cost
//!   before sending; the one at the head sleeps exactly until enough has been restored. Nobody
//!   else wakes early to race for the same points, so there is no thundering herd.
//! - Shops have separate buckets and never wait for each other.
//! - Every answer corrects the estimate downwards to Shopify's `currentlyAvailable` minus the
//!   points still reserved by requests in flight (which Shopify has not deducted yet), so other
//!   replicas' use of the same bucket is seen too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

/// What Shopify reported, from `extensions.cost.throttleStatus`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThrottleStatus {
    pub maximum_available: f64,
    pub currently_available: f64,
    pub restore_rate: f64,
}

/// Until a shop's first answer, assume the smallest plan (Standard: 2000 points, 100/s).
const DEFAULT: ThrottleStatus = ThrottleStatus {
    maximum_available: 2000.0,
    currently_available: 2000.0,
    restore_rate: 100.0,
};

#[derive(Debug)]
struct Bucket {
    maximum: f64,
    available: f64,
    restore_rate: f64,
    at: Instant,
    /// Points reserved by requests sent but not yet answered.
    in_flight: f64,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.available = (self.available + elapsed * self.restore_rate).min(self.maximum);
        self.at = now;
    }
}

/// Per-shop buckets.
#[derive(Debug, Default)]
pub struct Throttle {
    shops: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Bucket>>>>,
}

/// Points reserved for one request; hand it back with what Shopify answered.
#[derive(Debug)]
#[must_use]
pub struct Reservation {
    bucket: Arc<tokio::sync::Mutex<Bucket>>,
    cost: f64,
}

impl Throttle {
    fn bucket(&self, shop: &str) -> Arc<tokio::sync::Mutex<Bucket>> {
        let mut shops = self.shops.lock().unwrap_or_else(|p| p.into_inner());
        shops
            .entry(shop.to_owned())
            .or_insert_with(|| {
                Arc::new(tokio::sync::Mutex::new(Bucket {
                    maximum: DEFAULT.maximum_available,
                    available: DEFAULT.currently_available,
                    restore_rate: DEFAULT.restore_rate,
                    at: Instant::now(),
                    in_flight: 0.0,
                }))
            })
            .clone()
    }

    /// Wait until `cost` points are available for `shop`, then reserve them.
    pub async fn reserve(&self, shop: &str, cost: f64) -> Reservation {
        let bucket = self.bucket(shop);
        {
            // Held while sleeping: the next caller queues behind this one (FIFO), it does not
            // poll for the same points.
            let mut b = bucket.lock().await;
            b.refill(Instant::now());
            // A query larger than the bucket can still run once the bucket is full.
            let needed = cost.min(b.maximum);
            if b.available < needed {
                let wait = (needed - b.available) / b.restore_rate.max(1.0);
                tokio::time::sleep(std::time::Duration::from_secs_f64(wait)).await;
                b.refill(Instant::now());
            }
            b.available -= cost;
            b.in_flight += cost;
        }
        Reservation { bucket, cost }
    }

    /// The current estimate for `shop` (tests and logs).
    pub async fn available(&self, shop: &str) -> f64 {
        let bucket = self.bucket(shop);
        let mut b = bucket.lock().await;
        b.refill(Instant::now());
        b.available
    }
}

impl Reservation {
    /// Settle with Shopify's answer. `actual` is the points Shopify charged (`None` when it
    /// refused the query: then nothing was charged and the whole reservation is returned).
    pub async fn settle(self, actual: Option<f64>, status: Option<ThrottleStatus>) {
        let mut b = self.bucket.lock().await;
        b.in_flight = (b.in_flight - self.cost).max(0.0);
        b.refill(Instant::now());
        // Shopify refunds what it reserved but did not spend; so does the estimate.
        b.available = (b.available + self.cost - actual.unwrap_or(0.0)).min(b.maximum);
        if let Some(s) = status {
            b.maximum = s.maximum_available;
            b.restore_rate = s.restore_rate;
            // Shopify's figure includes this request's charge; the other requests in flight are
            // still to be charged. It only ever lowers the estimate: answers arrive out of
            // order, and an old (higher) figure must not undo newer reservations.
            b.available = b
                .available
                .min(s.currently_available - b.in_flight)
                .min(b.maximum);
        }
    }

    /// Settle a request that never reached Shopify (connection refused): return everything.
    pub async fn cancel(self) {
        self.settle(None, None).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn callers_wait_for_restored_points_in_order() {
        let t = Throttle::default();
        // Drain the assumed 2000-point bucket.
        let r = t.reserve("a", 2000.0).await;
        r.settle(
            Some(2000.0),
            Some(ThrottleStatus {
                maximum_available: 2000.0,
                currently_available: 0.0,
                restore_rate: 100.0,
            }),
        )
        .await;
        let start = Instant::now();
        let r = t.reserve("a", 50.0).await;
        assert!(
            (start.elapsed().as_secs_f64() - 0.5).abs() < 0.01,
            "{:?}",
            start.elapsed()
        );
        r.settle(Some(50.0), None).await;
        // Another shop is not affected.
        let start = Instant::now();
        let _ = t.reserve("b", 100.0).await;
        assert!(start.elapsed().as_secs_f64() < 0.001);
    }

    #[tokio::test(start_paused = true)]
    async fn shopify_report_corrects_the_estimate_minus_requests_in_flight() {
        let t = Throttle::default();
        let first = t.reserve("a", 100.0).await;
        let second = t.reserve("a", 100.0).await;
        first
            .settle(
                Some(10.0),
                Some(ThrottleStatus {
                    maximum_available: 1000.0,
                    currently_available: 990.0,
                    restore_rate: 50.0,
                }),
            )
            .await;
        // 990 reported, 100 still in flight.
        assert!((t.available("a").await - 890.0).abs() < 0.01);
        second.settle(None, None).await;
        assert!((t.available("a").await - 990.0).abs() < 0.01);
    }
}
