//! Workers: claim a due job under a lease, run it outside any transaction, then complete,
//! retry (with backoff) or bury it. A worker that dies leaves its lease to expire, after which
//! another worker claims the job again; handlers are idempotent so that is safe.

use super::{vip, webhook, JobError};
use crate::app::AppState;
use crate::backoff;
use crate::store::{Job, StoreError};
use chrono::Duration;
use std::time::Duration as StdDuration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long a claimed job is ours. Longer than [`JOB_TIMEOUT`], so a running job is never
/// claimed twice while its first attempt can still be working.
pub const LEASE: Duration = Duration::seconds(90);
/// The longest one attempt may take (Shopify calls inside have their own 10 s timeouts).
pub const JOB_TIMEOUT: StdDuration = StdDuration::from_secs(60);
/// How often an idle worker looks for due jobs without being woken (scheduled retries, jobs
/// enqueued by another replica).
const POLL: StdDuration = StdDuration::from_secs(1);

pub struct Workers {
    handles: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Wait for every worker to finish its in-flight job and stop.
    pub async fn join(self) {
        for h in self.handles {
            let _ = h.await;
        }
    }
}

pub fn spawn_workers(state: &AppState, count: usize, shutdown: CancellationToken) -> Workers {
    let handles = (0..count)
        .map(|i| {
            let state = state.clone();
            let shutdown = shutdown.clone();
            let name = format!("{}-w{i}", state.instance_id);
            tokio::spawn(async move { worker_loop(state, name, shutdown).await })
        })
        .collect();
    Workers { handles }
}

async fn worker_loop(state: AppState, name: String, shutdown: CancellationToken) {
    tracing::debug!(worker = %name, "worker started");
    while !shutdown.is_cancelled() {
        // Register for wake-ups before looking, so a job queued between the look and the wait
        // is not missed.
        let ready = state.jobs_ready.notified();
        tokio::pin!(ready);
        ready.as_mut().enable();
        match run_one(&state, &name).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(worker = %name, error = %crate::errors::error_chain(&e), "claiming a job failed")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = &mut ready => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
    tracing::debug!(worker = %name, "worker stopped");
}

/// Run jobs until none is due now; returns how many ran. Tests use this instead of workers
/// (with a controlled clock) so they never sleep.
pub async fn run_until_idle(state: &AppState) -> Result<usize, StoreError> {
    let mut ran = 0;
    while run_one(state, "drain").await? {
        ran += 1;
    }
    Ok(ran)
}

/// Claim and run one due job. False when none is due.
pub async fn run_one(state: &AppState, worker: &str) -> Result<bool, StoreError> {
    let now = state.clock.now();
    let Some(job) = state.store.claim_job(worker, now + LEASE, now).await? else {
        return Ok(false);
    };
    let span = tracing::info_span!("job", job_id = job.id, kind = %job.kind, attempt = job.attempt, shop = job.shop.as_deref().unwrap_or(""));
    let _enter = span.enter();
    let started = std::time::Instant::now();
    // A job whose leases kept expiring (its worker died each time) has used up its attempts.
    let outcome = if job.attempt > job.max_attempts {
        Err(JobError::Permanent(format!(
            "gave up after {} attempts whose workers did not finish",
            job.max_attempts
        )))
    } else {
        execute(state, &job).await
    };
    let now = state.clock.now();
    let elapsed_ms = started.elapsed().as_millis() as u64;
    match outcome {
        Ok(()) => {
            if !state.store.complete_job(job.id, worker, now).await? {
                tracing::warn!(elapsed_ms, "job finished after its lease was taken over");
            } else {
                tracing::info!(elapsed_ms, outcome = "done", "job attempt");
            }
        }
        Err(JobError::Retryable(why)) if job.attempt < job.max_attempts => {
            let delay = backoff::delay(job.attempt as u32, None, &mut rand::thread_rng());
            let run_at = now + Duration::from_std(delay).unwrap_or(Duration::hours(1));
            state
                .store
                .retry_job(job.id, worker, run_at, &why, now)
                .await?;
            tracing::warn!(elapsed_ms, outcome = "retry", error = %why, retry_in_ms = delay.as_millis() as u64, "job attempt");
        }
        Err(JobError::Retryable(why) | JobError::Permanent(why)) => {
            state.store.bury_job(job.id, worker, &why, now).await?;
            tracing::error!(elapsed_ms, outcome = "dead", error = %why, "job attempt");
        }
    }
    Ok(true)
}

async fn execute(state: &AppState, job: &Job) -> Result<(), JobError> {
    let task = {
        let state = state.clone();
        let job = job.clone();
        // A panicking handler must not take the worker down: run it as its own task.
        tokio::spawn(async move {
            match job.kind.as_str() {
                kind if kind.starts_with("webhook/") => webhook::run(&state, &job).await,
                crate::ops::vip::SYNC_JOB_KIND => vip::run(&state, &job).await,
                other => Err(JobError::Permanent(format!(
                    "no handler for job kind {other:?}"
                ))),
            }
        })
    };
    match tokio::time::timeout(JOB_TIMEOUT, task).await {
        Err(_) => Err(JobError::Retryable(format!(
            "timed out after {JOB_TIMEOUT:?}"
        ))),
        Ok(Err(join)) if join.is_panic() => Err(JobError::Permanent("the handler panicked".into())),
        Ok(Err(_)) => Err(JobError::Retryable("the handler was cancelled".into())),
        Ok(Ok(result)) => result,
    }
}
