//! Benchmark: how close Keel's Admin client runs to Shopify's restore rate.
//!
//! Drains N `tagsAdd` mutations (default 10,000) for one shop on the Standard plan (100
//! points/s, 2000-point bucket) against shopify-sim, from 16 concurrent callers sharing the
//! shop's bucket, and reports points per second as a fraction of the restore rate (target ≥ 0.9)
//! and the THROTTLED answers received. Then drains two shops at once and reports each shop's
//! rate, to show one shop's drain does not slow the other's.
//!
//!   cargo bench -p keel --bench admin_drain
//!   BENCH_MUTATIONS=3000 cargo bench -p keel --bench admin_drain   # shorter
//!
//! At 10 points a mutation and 100 points/s, 10,000 mutations take about 16 minutes: the
//! restore rate, not Keel, sets the pace; the result is a ratio against it.

use async_trait::async_trait;
use keel::shopify::admin::{AdminClient, RetryPolicy, Token, TokenError, TokenSource};
use keel::shopify::domain::DomainPolicy;
use keel::shopify::{Endpoint, Gid, ShopDomain};
use serde_json::json;
use shopify_sim::{Plan, Seed, Sim, SimConfig, ThrottleConfig};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CUSTOMERS: u64 = 100;
const CALLERS: usize = 16;

/// The simulator's non-expiring token for each shop.
struct Tokens(std::collections::HashMap<String, String>);

#[async_trait]
impl TokenSource for Tokens {
    async fn token(&self, shop: &ShopDomain) -> Result<Token, TokenError> {
        self.0
            .get(shop.as_str())
            .map(|t| Token {
                value: t.clone(),
                version: 1,
            })
            .ok_or(TokenError::NotInstalled)
    }
    async fn refresh_after_unauthorized(
        &self,
        _: &ShopDomain,
        _: &Token,
    ) -> Result<Token, TokenError> {
        Err(TokenError::NeedsReauthorization)
    }
    async fn needs_reauthorization(&self, _: &ShopDomain) {}
}

struct Drain {
    shop: String,
    mutations: usize,
    elapsed: Duration,
    cost: f64,
    refusals: u64,
    maximum: f64,
}

impl Drain {
    fn points_per_sec(&self) -> f64 {
        self.mutations as f64 * self.cost / self.elapsed.as_secs_f64()
    }
    /// Excluding the bucket that was full at the start: the sustained rate.
    fn sustained(&self) -> f64 {
        ((self.mutations as f64 * self.cost) - self.maximum).max(0.0) / self.elapsed.as_secs_f64()
    }
}

async fn drain(sim: &Sim, admin: Arc<AdminClient>, shop: &str, mutations: usize) -> Drain {
    let domain = ShopDomain::parse(shop, DomainPolicy::MyShopifyOnly).expect("shop domain");
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (admin, next, domain) = (admin.clone(), next.clone(), domain.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= mutations {
                        break;
                    }
                    let customer = Gid::new("Customer", 1_000 + (i as u64 % CUSTOMERS));
                    admin
                        .tags_add(&domain, &customer, &[format!("bench-{i}")])
                        .await
                        .expect("tagsAdd");
                }
            })
        })
        .collect();
    for c in callers {
        c.await.expect("caller");
    }
    let elapsed = started.elapsed();
    Drain {
        shop: shop.to_owned(),
        mutations,
        elapsed,
        cost: admin.learned_cost("TagsAdd").unwrap_or(10.0),
        refusals: sim.throttle_refusals(shop),
        maximum: sim.throttle_status(shop).maximum_available,
    }
}

fn report(title: &str, drains: &[Drain]) {
    println!("\n{title}");
    println!(
        "{:<24}{:>10}{:>9}{:>10}{:>12}{:>14}{:>11}",
        "shop", "mutations", "seconds", "points/s", "sustained/s", "sust.÷restore", "THROTTLED"
    );
    for d in drains {
        println!(
            "{:<24}{:>10}{:>9.1}{:>10.1}{:>12.1}{:>14.2}{:>11}",
            d.shop,
            d.mutations,
            d.elapsed.as_secs_f64(),
            d.points_per_sec(),
            d.sustained(),
            d.sustained() / Plan::Standard.restore_rate(),
            d.refusals
        );
    }
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("BENCH_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let sim = Sim::spawn(SimConfig::default()).await;
    let shops = [
        "drain-a.myshopify.com",
        "drain-b.myshopify.com",
        "drain-c.myshopify.com",
    ];
    let customers: Vec<_> = (0..CUSTOMERS).map(|i| json!({"id": 1_000 + i})).collect();
    let seed = json!({ "customers": customers }).to_string();
    let mut tokens = std::collections::HashMap::new();
    for shop in shops {
        sim.install_shop(shop, ["write_customers"]);
        sim.seed(shop, Seed::from_json(&seed).expect("seed"));
        sim.set_throttle(
            shop,
            ThrottleConfig {
                plan: Plan::Standard,
                maximum_available: None,
                currently_available: None,
            },
        );
        let token = sim
            .issue_offline_token(shop, false)
            .expect("token")
            .access_token;
        tokens.insert(shop.to_owned(), token);
    }
    let endpoint = Endpoint::new(
        Some(url::Url::parse(sim.origin()).expect("origin")),
        Duration::from_secs(10),
    )
    .expect("client");
    let policy = RetryPolicy {
        deadline: Duration::from_secs(600),
        ..RetryPolicy::default()
    };
    let admin = Arc::new(AdminClient::new(endpoint, Arc::new(Tokens(tokens)), policy));

    println!("Draining {n} tagsAdd for one Standard shop (100 points/s, 2000-point bucket), {CALLERS} concurrent callers…");
    let one = drain(&sim, admin.clone(), shops[0], n).await;
    report("One shop", &[one]);

    let m = (n / 5).max(500);
    println!("\nDraining {m} tagsAdd for each of two shops at once…");
    let (b, c) = tokio::join!(
        drain(&sim, admin.clone(), shops[1], m),
        drain(&sim, admin.clone(), shops[2], m)
    );
    report(
        "Two shops at once (each has its own bucket; neither should slow the other)",
        &[b, c],
    );
    println!("\nTarget: sustained points/s ÷ restore rate ≥ 0.90. 'points/s' includes the full bucket at the start; 'sustained' subtracts it.");
}
