//! Group commit for incoming webhooks. Shopify wants a 2xx within 5 s, and Keel must not answer
//! before the delivery is durable. One transaction per delivery would cap throughput at the
//! database's commit rate (SQLite has a single writer), so concurrent deliveries are gathered
//! into one transaction: a request waits only for the commit that includes it, never for a
//! timer. Under light load a batch is one delivery; under heavy load commits amortise. Up to
//! [`IN_FLIGHT`] batches are handed to the store at once, each answered as soon as it commits.
//!
//! A store that merges concurrent calls itself ([`Store::groups_webhook_commits`], SQLite's
//! writer thread) gets each delivery straight from its request instead: gathering them here
//! first only added a task hop and a channel per batch on the way in and out (measured with
//! tests/bench/webhooks.sh: about 3 µs of CPU per request, 10% of the throughput).

use crate::clock::DynClock;
use crate::store::{DynStore, NewWebhook, Store, Timestamp, WebhookRecorded};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Notify, Semaphore};
use tokio::task::JoinSet;

/// The most deliveries one transaction takes.
const MAX_BATCH: usize = 256;
/// Requests waiting for a commit before new ones are pushed back (bounded memory).
const QUEUE_DEPTH: usize = 4096;
/// Batches handed to the store at once. With one, the single SQLite writer sat idle for each
/// batch's round trip to this task and back, about as long as the commit itself (measured with
/// tests/bench/webhooks.sh). With several, the next batches are already waiting when a commit
/// ends, and the SQLite writer merges whatever waits into its next transaction
/// (`store::sqlite_batch`); PostgreSQL commits them concurrently.
const IN_FLIGHT: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The delivery was not stored; answering 5xx makes Shopify retry it.
    #[error("the delivery could not be stored: {0}")]
    NotStored(String),
    #[error("Keel is shutting down")]
    ShuttingDown,
}

type Reply = oneshot::Sender<Result<WebhookRecorded, IntakeError>>;

/// Handle to the intake; cheap to clone.
#[derive(Clone)]
pub struct Intake {
    route: Route,
}

#[derive(Clone)]
enum Route {
    /// To the committing task, which gathers batches.
    Batching(mpsc::Sender<(NewWebhook, Reply)>),
    /// Straight to a store that groups concurrent calls into transactions itself.
    Direct {
        store: DynStore,
        clock: DynClock,
        jobs_ready: Arc<Notify>,
    },
}

impl Intake {
    /// Start the committing task, unless the store groups commits itself. `jobs_ready` is
    /// notified after each commit that queued work.
    pub fn spawn(store: DynStore, clock: DynClock, jobs_ready: Arc<Notify>) -> Intake {
        if store.groups_webhook_commits() {
            return Intake {
                route: Route::Direct {
                    store,
                    clock,
                    jobs_ready,
                },
            };
        }
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(commit_loop(store, clock, jobs_ready, rx));
        Intake {
            route: Route::Batching(tx),
        }
    }

    /// Store one delivery durably, queued for its job, and say what happened.
    pub async fn record(&self, webhook: NewWebhook) -> Result<WebhookRecorded, IntakeError> {
        match &self.route {
            Route::Batching(tx) => {
                let (reply, answer) = oneshot::channel();
                tx.send((webhook, reply))
                    .await
                    .map_err(|_| IntakeError::ShuttingDown)?;
                answer.await.map_err(|_| IntakeError::ShuttingDown)?
            }
            Route::Direct {
                store,
                clock,
                jobs_ready,
            } => {
                let (reply, answer) = oneshot::channel();
                commit(
                    store.as_ref(),
                    clock.now(),
                    vec![webhook],
                    vec![reply],
                    jobs_ready,
                )
                .await;
                answer.await.map_err(|_| IntakeError::ShuttingDown)?
            }
        }
    }
}

async fn commit_loop(
    store: DynStore,
    clock: DynClock,
    jobs_ready: Arc<Notify>,
    mut rx: mpsc::Receiver<(NewWebhook, Reply)>,
) {
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut commits = JoinSet::new();
    loop {
        // Wait for a free slot first: deliveries arriving meanwhile join the next batch.
        let Ok(slot) = in_flight.clone().acquire_owned().await else {
            break;
        };
        // Ends when every `Intake` handle is dropped and the queue is drained.
        let Some((first, reply)) = rx.recv().await else {
            break;
        };
        let mut items = Vec::with_capacity(MAX_BATCH);
        let mut replies = Vec::with_capacity(MAX_BATCH);
        items.push(first);
        replies.push(reply);
        while items.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok((w, r)) => {
                    items.push(w);
                    replies.push(r);
                }
                Err(_) => break,
            }
        }
        let (store, clock, jobs_ready) = (store.clone(), clock.clone(), jobs_ready.clone());
        commits.spawn(async move {
            commit(store.as_ref(), clock.now(), items, replies, &jobs_ready).await;
            drop(slot);
        });
        // Reap finished commits so the set does not grow.
        while commits.try_join_next().is_some() {}
    }
    // Shutdown: every delivery already taken from the queue still gets its answer.
    while commits.join_next().await.is_some() {}
}

/// Writes one batch and answers each of its requests.
async fn commit(
    store: &dyn Store,
    now: Timestamp,
    items: Vec<NewWebhook>,
    replies: Vec<Reply>,
    jobs_ready: &Notify,
) {
    let started = std::time::Instant::now();
    let size = items.len();
    let result = store.record_webhooks(items, now).await;
    tracing::debug!(
        batch = size,
        elapsed_us = started.elapsed().as_micros() as u64,
        "webhook batch written"
    );
    match result {
        Ok(outcomes) if outcomes.len() == replies.len() => {
            let queued = outcomes
                .iter()
                .any(|o| matches!(o, WebhookRecorded::Queued { .. }));
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                // The requester may have gone away (client timeout); the row is stored anyway.
                let _ = reply.send(Ok(outcome));
            }
            if queued {
                jobs_ready.notify_waiters();
            }
        }
        Ok(outcomes) => {
            let why = format!(
                "store returned {} outcomes for {} deliveries",
                outcomes.len(),
                replies.len()
            );
            tracing::error!("{why}");
            for reply in replies {
                let _ = reply.send(Err(IntakeError::NotStored(why.clone())));
            }
        }
        Err(e) => {
            let why = crate::errors::error_chain(&e);
            tracing::error!(error = %why, batch = size, "webhook batch not stored");
            for reply in replies {
                let _ = reply.send(Err(IntakeError::NotStored(why.clone())));
            }
        }
    }
}
