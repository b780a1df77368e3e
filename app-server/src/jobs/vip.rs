//! Runs the VIP discount sync job (`ops::vip::SYNC_JOB_KIND`): which shop, then `ops::vip`.
//! Failures the job may still overcome (Shopify or the database unavailable, another sync
//! holding the shop's lease) are retried with backoff; the rest bury the job, and the reason is
//! already in the settings' sync state for the merchant to see.

use super::JobError;
use crate::app::AppState;
use crate::ops::vip::{self, SyncJob};
use crate::shopify::ShopDomain;
use crate::store::Job;

pub async fn run(state: &AppState, job: &Job) -> Result<(), JobError> {
    let shop = job
        .shop
        .as_deref()
        .ok_or_else(|| JobError::Permanent("VIP sync job without a shop".into()))?;
    let shop = ShopDomain::parse(shop, state.domain_policy)
        .map_err(|e| JobError::Permanent(format!("VIP sync job for an invalid shop: {e}")))?;
    let this = SyncJob {
        id: job.id,
        attempt: job.attempt,
        max_attempts: job.max_attempts,
    };
    match vip::sync_discount(&state.store, &state.admin, &state.clock, &shop, this).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_transient() => Err(JobError::Retryable(e.to_string())),
        Err(e) => Err(JobError::Permanent(e.to_string())),
    }
}
