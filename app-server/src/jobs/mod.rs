//! Background work: the durable queue (rows in the store), the workers that claim and run jobs
//! under a lease, retry with backoff and jitter, and the group-commit intake for webhooks.
//!
//! Contract: a job may run more than once (a worker can die after the effect and before
//! `complete_job`), so every handler is idempotent. A job whose lease expires is claimed again.

pub mod intake;
pub mod vip;
pub mod webhook;
pub mod worker;

pub use intake::Intake;
pub use worker::{run_until_idle, spawn_workers, Workers};

/// How a job attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Try again later (network, 5xx, database unavailable).
    #[error("{0}")]
    Retryable(String),
    /// Retrying cannot help (malformed payload, a bug): bury it for an operator to replay.
    #[error("{0}")]
    Permanent(String),
}

impl From<crate::store::StoreError> for JobError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Corrupt(why) => JobError::Permanent(why),
            other => JobError::Retryable(error_chain(&other)),
        }
    }
}

impl From<crate::ops::OpsError> for JobError {
    fn from(e: crate::ops::OpsError) -> Self {
        match e {
            crate::ops::OpsError::Store(s) => s.into(),
        }
    }
}

use crate::errors::error_chain;
