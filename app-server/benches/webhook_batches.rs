//! Benchmark: the store's side of `POST /webhooks` alone — how long one group-commit batch of
//! signed deliveries takes to become durable, per delivery, for several batch sizes, on SQLite
//! (and PostgreSQL when `BENCH_DATABASE_URL` is set). That is the receipt alone on SQLite, whose
//! jobs are created later in bulk by the next claim, and the receipt with its job on PostgreSQL
//! (see `Store::record_webhooks`).
//!
//!   cargo bench -p keel --bench webhook_batches
//!   BENCH_DATABASE_URL=postgres://… cargo bench -p keel --bench webhook_batches
//!
//! tests/bench/webhooks.sh measures the whole HTTP path against a bare handler; this isolates
//! the single writer, which sets the ceiling of that path, so a change to the schema or the
//! batch writer can be judged without wrk's noise. The baseline in the same run is a batch of
//! one (a transaction per delivery), reported as the speed-up batching gives.

use keel::store::{CustomerRef, NewToken, NewWebhook, ShopRequirement, WebhookRecorded};
use std::time::{Duration, Instant};

const SHOP: &str = "bench-shop.myshopify.com";
/// Deliveries written per batch size (after a warm-up of the same size).
const DELIVERIES: usize = 20_000;

fn delivery(n: usize) -> NewWebhook {
    NewWebhook {
        shop: SHOP.into(),
        topic: "app/scopes_update".into(),
        dedupe_key: format!("event:app/scopes_update:{n}"),
        webhook_id: format!("w-{n}"),
        event_id: Some(n.to_string()),
        api_version: Some("2026-10".into()),
        triggered_at: Some("2026-11-23T10:00:00.000Z".into()),
        payload: r#"{"id":548380009,"previous":["read_customers"],"current":["read_customers","write_customers"],"updated_at":"2026-11-23T10:00:00.000Z"}"#.into(),
        customer: CustomerRef::default(),
        requires: ShopRequirement::Installed,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("keel-bench-batches-{}", std::process::id()));
    let url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}/keel.db", dir.display()));
    let store = keel::store::connect(&url, 8).await?;
    store.migrate().await?;
    let now = chrono::Utc::now();
    let token = NewToken {
        access_token: b"sealed".to_vec(),
        access_expires_at: None,
        refresh_token: None,
        refresh_expires_at: None,
        scope: "read_customers".into(),
    };
    store.install_shop(SHOP, &token, now).await?;

    // Unique keys across the whole run (and across runs on a kept PostgreSQL database).
    let mut next = now.timestamp_micros() as usize;
    println!(
        "Webhook batches on {}: µs per delivery (acknowledgeable: committed and queued)",
        store.backend()
    );
    println!("{:>6}{:>14}{:>14}", "batch", "µs/delivery", "deliveries/s");
    let mut single = None;
    for size in [1usize, 8, 32, 64, 256] {
        let mut run = |count: usize| {
            let batches: Vec<Vec<NewWebhook>> = (0..count / size)
                .map(|_| {
                    (0..size)
                        .map(|_| {
                            next += 1;
                            delivery(next)
                        })
                        .collect()
                })
                .collect();
            batches
        };
        for batch in run(DELIVERIES / 10) {
            store.record_webhooks(batch, now).await?;
        }
        let batches = run(DELIVERIES);
        let written: usize = batches.iter().map(Vec::len).sum();
        let started = Instant::now();
        for batch in batches {
            let outcomes = store.record_webhooks(batch, now).await?;
            if !outcomes
                .iter()
                .all(|o| matches!(o, WebhookRecorded::Queued { .. }))
            {
                return Err(format!("a delivery was not queued: {outcomes:?}").into());
            }
        }
        let per = started.elapsed().as_secs_f64() * 1e6 / written as f64;
        let base = *single.get_or_insert(per);
        println!(
            "{size:>6}{per:>14.1}{:>14.0}   {:.1}x a transaction per delivery",
            1e6 / per,
            base / per
        );
    }

    // The other half of the queue's cost: a worker claiming and completing every job recorded
    // above. On SQLite that includes creating the jobs (in bulk, at the claims); on PostgreSQL
    // they were written with the receipts.
    let queued = store.job_counts().await?.queued;
    let started = Instant::now();
    let lease = now + chrono::Duration::minutes(10);
    let mut claimed = 0i64;
    while let Some(job) = store.claim_job("bench", lease, now).await? {
        store.complete_job(job.id, "bench", now).await?;
        claimed += 1;
    }
    if claimed != queued {
        return Err(format!("claimed {claimed} jobs of {queued} queued").into());
    }
    println!(
        "then claimed and completed one by one: {:.1} µs per job ({claimed} jobs)",
        started.elapsed().as_secs_f64() * 1e6 / claimed as f64
    );
    drop(store);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
