//! The row types both backends decode into, and their conversions to the store's types.
//!
//! `#[derive(sqlx::FromRow)]` is generic over the row type, and every column decodes to the same
//! Rust type on SQLite and PostgreSQL (times are bigint unix milliseconds in both schemas, tokens
//! are blob/bytea, reports text/jsonb read through `Json`), so one struct serves both. Beside the
//! rows live the other pieces of plain Rust the backends share: time conversions, the skeleton of
//! the error mapping, and the rules that must not differ between them. SQL stays in the backends.

use super::{
    CustomerData, CustomerRef, DataExport, IgnoreReason, Job, JobCounts, NewToken, NewWebhook,
    Receipt, Shop, ShopRequirement, StoreError, SyncStatus, Timestamp, TokenRecord, VipSettings,
    VipSyncOutcome, WebhookRecorded,
};
use chrono::DateTime;
use sqlx::error::DatabaseError;
use sqlx::migrate::Migrator;
use sqlx::types::Json;

/// Attempts a webhook's job gets before it is buried for an operator to replay. With the
/// job retry backoff (2 s doubling, capped at an hour) this spans about four hours.
/// One constant, so both backends give the same number.
pub(super) const WEBHOOK_JOB_MAX_ATTEMPTS: i32 = 15;

/// A per-shop lease held in a row: the token refresh (`shop_tokens.refresh_*`) and the VIP
/// discount sync (`vip_settings.sync_*`). Each backend takes one with `claim_lease`: a single
/// conditional update, so of two concurrent claimers the second re-checks the row under the
/// first's lease and finds it taken; the same holder may claim again (a retried call).
pub(super) struct LeaseRow {
    pub table: &'static str,
    /// `<prefix>_holder` and `<prefix>_lease_until` hold the lease.
    pub prefix: &'static str,
    /// What the claim returns of the row.
    pub columns: &'static str,
}

pub(super) const REFRESH_LEASE: LeaseRow = LeaseRow {
    table: "shop_tokens",
    prefix: "refresh",
    columns: TOKEN_COLUMNS,
};

pub(super) const VIP_SYNC_LEASE: LeaseRow = LeaseRow {
    table: "vip_settings",
    prefix: "sync",
    columns: VIP_SETTINGS_COLUMNS,
};

pub(super) enum Lease<R> {
    Claimed(R),
    /// Someone else holds it and it has not expired.
    Busy,
    /// The shop has no such row.
    Missing,
}

impl LeaseRow {
    /// The claim's statement, with `$n` or `?n` placeholders (1 shop, 2 holder, 3 until, 4 now).
    pub(super) fn claim_sql(&self, p: char) -> String {
        let LeaseRow {
            table,
            prefix,
            columns,
        } = self;
        format!(
            "update {table} set {prefix}_holder = {p}2, {prefix}_lease_until = {p}3
             where shop = {p}1
               and ({prefix}_holder is null or {prefix}_holder = {p}2
                    or {prefix}_lease_until is null or {prefix}_lease_until <= {p}4)
             returning {columns}"
        )
    }

    pub(super) fn exists_sql(&self, p: char) -> String {
        format!(
            "select exists (select 1 from {} where shop = {p}1)",
            self.table
        )
    }
}

/// The mapping of sqlx errors both backends build theirs on: a unique violation is `Conflict`;
/// pool, I/O and TLS failures are `Unavailable` (SQLite never raises the TLS one), and so is a
/// database error that the backend's `transient` says is worth retrying; the rest is `Database`.
pub(super) fn store_error(e: sqlx::Error, transient: fn(&dyn DatabaseError) -> bool) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(e.into()),
        sqlx::Error::Database(d) if transient(d.as_ref()) => StoreError::Unavailable(e.into()),
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.into()),
        _ => StoreError::Database(e.into()),
    }
}

pub(super) fn millis(t: Timestamp) -> i64 {
    t.timestamp_millis()
}

pub(super) fn time(ms: i64) -> Result<Timestamp, StoreError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::Corrupt(format!("time of {ms} ms is out of range")))
}

pub(super) fn opt_time(ms: Option<i64>) -> Result<Option<Timestamp>, StoreError> {
    ms.map(time).transpose()
}

#[derive(sqlx::FromRow)]
pub(super) struct ShopRow {
    domain: String,
    installed: bool,
    scopes: String,
    installed_at: Option<i64>,
    uninstalled_at: Option<i64>,
    needs_reauth: bool,
    created_at: i64,
    updated_at: i64,
}

impl ShopRow {
    pub(super) fn into_shop(self) -> Result<Shop, StoreError> {
        Ok(Shop {
            domain: self.domain,
            installed: self.installed,
            scopes: self.scopes,
            installed_at: opt_time(self.installed_at)?,
            uninstalled_at: opt_time(self.uninstalled_at)?,
            needs_reauth: self.needs_reauth,
            created_at: time(self.created_at)?,
            updated_at: time(self.updated_at)?,
        })
    }
}

/// The columns a [`TokenRow`] decodes, for both backends' `select` and `returning` lists.
pub(super) const TOKEN_COLUMNS: &str =
    "access_token, access_expires_at, refresh_token, refresh_expires_at, scope, version, updated_at";

#[derive(sqlx::FromRow)]
pub(super) struct TokenRow {
    access_token: Vec<u8>,
    access_expires_at: Option<i64>,
    refresh_token: Option<Vec<u8>>,
    refresh_expires_at: Option<i64>,
    scope: String,
    version: i64,
    updated_at: i64,
}

impl TokenRow {
    pub(super) fn into_record(self) -> Result<TokenRecord, StoreError> {
        Ok(TokenRecord {
            token: NewToken {
                access_token: self.access_token,
                access_expires_at: opt_time(self.access_expires_at)?,
                refresh_token: self.refresh_token,
                refresh_expires_at: opt_time(self.refresh_expires_at)?,
                scope: self.scope,
            },
            version: self.version,
            updated_at: time(self.updated_at)?,
        })
    }
}

/// The columns a [`ReceiptRow`] decodes.
pub(super) const RECEIPT_COLUMNS: &str =
    "id, shop, source, topic, dedupe_key, status, payload, customer_id, customer_email, triggered_at, received_at";

#[derive(sqlx::FromRow)]
pub(super) struct ReceiptRow {
    id: i64,
    shop: String,
    source: String,
    topic: String,
    dedupe_key: String,
    status: String,
    payload: Option<String>,
    customer_id: Option<i64>,
    customer_email: Option<String>,
    triggered_at: Option<String>,
    received_at: i64,
}

impl ReceiptRow {
    pub(super) fn into_receipt(self) -> Result<Receipt, StoreError> {
        Ok(Receipt {
            id: self.id,
            shop: self.shop,
            source: self.source,
            topic: self.topic,
            dedupe_key: self.dedupe_key,
            status: self.status,
            payload: self.payload,
            customer: CustomerRef {
                id: self.customer_id,
                email: self.customer_email,
            },
            triggered_at: self.triggered_at,
            received_at: time(self.received_at)?,
        })
    }
}

/// The columns a [`JobRow`] decodes.
pub(super) const JOB_COLUMNS: &str =
    "id, shop, kind, payload, receipt_id, attempts, max_attempts, created_at";

#[derive(sqlx::FromRow)]
pub(super) struct JobRow {
    id: i64,
    shop: Option<String>,
    kind: String,
    payload: String,
    receipt_id: Option<i64>,
    attempts: i32,
    max_attempts: i32,
    created_at: i64,
}

impl JobRow {
    pub(super) fn into_job(self) -> Result<Job, StoreError> {
        Ok(Job {
            id: self.id,
            shop: self.shop,
            kind: self.kind,
            payload: self.payload,
            receipt_id: self.receipt_id,
            attempt: self.attempts,
            max_attempts: self.max_attempts,
            created_at: time(self.created_at)?,
        })
    }
}

/// The columns an [`ExportRow`] decodes.
pub(super) const EXPORT_COLUMNS: &str =
    "id, shop, customer_id, customer_email, data_request_id, report, created_at";

#[derive(sqlx::FromRow)]
pub(super) struct ExportRow {
    id: i64,
    shop: String,
    customer_id: Option<i64>,
    customer_email: Option<String>,
    data_request_id: Option<i64>,
    report: Json<serde_json::Value>,
    created_at: i64,
}

impl ExportRow {
    pub(super) fn into_export(self) -> Result<DataExport, StoreError> {
        Ok(DataExport {
            id: self.id,
            shop: self.shop,
            customer: CustomerRef {
                id: self.customer_id,
                email: self.customer_email,
            },
            data_request_id: self.data_request_id,
            report: self.report.0,
            created_at: time(self.created_at)?,
        })
    }
}

/// The columns a [`VipSettingsRow`] decodes.
pub(super) const VIP_SETTINGS_COLUMNS: &str = "shop, config, version, sync_job_id, sync_status, sync_error, discount_id, synced_version, synced_at, created_at, updated_at";

#[derive(sqlx::FromRow)]
pub(super) struct VipSettingsRow {
    shop: String,
    config: String,
    version: i64,
    sync_job_id: Option<i64>,
    sync_status: String,
    sync_error: Option<String>,
    discount_id: Option<String>,
    synced_version: Option<i64>,
    synced_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl VipSettingsRow {
    pub(super) fn into_settings(self) -> Result<VipSettings, StoreError> {
        Ok(VipSettings {
            sync_status: SyncStatus::parse(&self.sync_status).ok_or_else(|| {
                StoreError::Corrupt(format!("sync status {:?} is unknown", self.sync_status))
            })?,
            shop: self.shop,
            config: self.config,
            version: self.version,
            sync_job_id: self.sync_job_id,
            sync_error: self.sync_error,
            discount_id: self.discount_id,
            synced_version: self.synced_version,
            synced_at: opt_time(self.synced_at)?,
            created_at: time(self.created_at)?,
            updated_at: time(self.updated_at)?,
        })
    }
}

/// Why a pending VIP sync stopped when the shop uninstalled (its job was cancelled), shown to
/// the merchant by `GET /api/settings`.
pub(super) const UNINSTALLED_BEFORE_SYNC: &str =
    "Keel was uninstalled before the discount was updated; save the settings again to update it";

/// The columns [`Store::finish_vip_sync`](super::Store::finish_vip_sync) writes, from its
/// outcome, so both backends record the same thing.
pub(super) struct VipSyncRecord<'a> {
    /// The version the outcome is about; `None` for a release that records nothing.
    pub version: Option<i64>,
    /// The status to set when `version` is still the latest.
    pub status: Option<&'static str>,
    pub error: Option<&'a str>,
    pub discount_id: Option<&'a str>,
    /// Shopify's discount now carries `version`.
    pub synced: bool,
}

impl<'a> VipSyncRecord<'a> {
    pub(super) fn of(outcome: &'a VipSyncOutcome) -> VipSyncRecord<'a> {
        match outcome {
            VipSyncOutcome::Released => VipSyncRecord {
                version: None,
                status: None,
                error: None,
                discount_id: None,
                synced: false,
            },
            VipSyncOutcome::Synced {
                version,
                discount_id,
            } => VipSyncRecord {
                version: Some(*version),
                status: Some(SyncStatus::Synced.as_str()),
                error: None,
                discount_id: Some(discount_id),
                synced: true,
            },
            VipSyncOutcome::Failed {
                version,
                error,
                gave_up,
                discount_id,
            } => VipSyncRecord {
                version: Some(*version),
                status: Some(if *gave_up {
                    SyncStatus::Failed.as_str()
                } else {
                    SyncStatus::Pending.as_str()
                }),
                error: Some(error),
                discount_id: discount_id.as_deref(),
                synced: false,
            },
        }
    }
}

/// A customer's receipts and exports, read in one snapshot, as [`CustomerData`].
pub(super) fn into_customer_data(
    receipts: Vec<ReceiptRow>,
    exports: Vec<ExportRow>,
) -> Result<CustomerData, StoreError> {
    Ok(CustomerData {
        receipts: receipts
            .into_iter()
            .map(ReceiptRow::into_receipt)
            .collect::<Result<_, _>>()?,
        exports: exports
            .into_iter()
            .map(ExportRow::into_export)
            .collect::<Result<_, _>>()?,
    })
}

/// What a delivery's receipt holds, decided by the state of its shop.
pub(super) struct Admission<'a> {
    /// Why the delivery is recorded but not processed; `None` when it gets a job.
    pub ignored: Option<IgnoreReason>,
    pub status: &'static str,
    pub payload: Option<&'a str>,
    pub customer: &'a CustomerRef,
}

/// Nobody: the customer of an ignored receipt.
static NO_CUSTOMER: CustomerRef = CustomerRef {
    id: None,
    email: None,
};

/// Admit `w` given whether its shop is installed (`None`: no such shop). An ignored delivery
/// keeps neither its payload nor its customer.
pub(super) fn admit(w: &NewWebhook, installed: Option<bool>) -> Admission<'_> {
    let ignored = match (installed, w.requires) {
        (None, _) => Some(IgnoreReason::UnknownShop),
        (Some(false), ShopRequirement::Installed) => Some(IgnoreReason::ShopUninstalled),
        (Some(_), _) => None,
    };
    match ignored {
        Some(_) => Admission {
            ignored,
            status: "ignored",
            payload: None,
            customer: &NO_CUSTOMER,
        },
        None => Admission {
            ignored,
            status: "queued",
            payload: Some(w.payload.as_str()),
            customer: &w.customer,
        },
    }
}

/// Every migration the binary knows is applied with the same checksum, and none failed.
pub(super) fn migrations_match(migrator: &Migrator, applied: &[(i64, Vec<u8>, bool)]) -> bool {
    applied.iter().all(|(_, _, success)| *success)
        && migrator
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .all(|m| {
                applied.iter().any(|(version, checksum, _)| {
                    *version == m.version && checksum.as_slice() == &*m.checksum
                })
            })
}

/// Counts of `select status, count(*) from jobs group by status`.
pub(super) fn job_counts(rows: Vec<(String, i64)>) -> Result<JobCounts, StoreError> {
    let mut counts = JobCounts::default();
    for (status, n) in rows {
        match status.as_str() {
            "queued" => counts.queued += n,
            "running" => counts.running += n,
            "done" => counts.done += n,
            "dead" => counts.dead += n,
            "cancelled" => counts.cancelled += n,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "job status {other:?} is unknown"
                )))
            }
        }
    }
    Ok(counts)
}

/// The claim filter that stops a shop's work while it needs re-authorisation: Shopify refused
/// its token twice, so any job calling the Admin API would only fail and burn its attempts.
/// The jobs stay queued and become claimable when the shop re-authorises (`install_shop`
/// clears the flag). Webhook jobs are exempt: they record what Shopify told Keel and call
/// nothing (the privacy duties must be met whatever the token's state).
pub(super) const PAUSED_SHOPS_EXCLUDED: &str = "(shop is null or kind like 'webhook/%'
                        or not exists (select 1 from shops s where s.domain = jobs.shop and s.needs_reauth))";

/// How one batch of deliveries is written with a few statements instead of a few per delivery:
/// the first copy of each (shop, dedupe key) in the batch carries the insert; later copies in
/// the same batch are its duplicates.
pub(super) struct BatchPlan {
    /// Indices of the first copy of each key, in the order they are inserted.
    pub firsts: Vec<usize>,
    /// For every item, the index of the first copy of its key (itself for a first copy).
    pub first_of: Vec<usize>,
}

impl BatchPlan {
    /// `sorted`: insert in (shop, key) order, so concurrent batches take row locks in one global
    /// order and cannot deadlock (PostgreSQL); otherwise arrival order.
    pub fn new(batch: &[NewWebhook], sorted: bool) -> BatchPlan {
        let mut seen: std::collections::HashMap<(&str, &str), usize> =
            std::collections::HashMap::with_capacity(batch.len());
        let mut firsts = Vec::with_capacity(batch.len());
        let first_of = batch
            .iter()
            .enumerate()
            .map(|(i, w)| {
                *seen
                    .entry((w.shop.as_str(), w.dedupe_key.as_str()))
                    .or_insert_with(|| {
                        firsts.push(i);
                        i
                    })
            })
            .collect();
        if sorted {
            firsts.sort_by(|&a, &b| {
                (&batch[a].shop, &batch[a].dedupe_key).cmp(&(&batch[b].shop, &batch[b].dedupe_key))
            });
        }
        BatchPlan { firsts, first_of }
    }

    /// Every item's outcome from what the statements returned: `inserted` receipt ids by
    /// first-copy index, `existing` ids of keys already stored before this batch, and each first
    /// copy's ignore reason.
    pub fn outcomes(
        &self,
        inserted: &std::collections::HashMap<usize, i64>,
        existing: &std::collections::HashMap<usize, i64>,
        ignored: &std::collections::HashMap<usize, IgnoreReason>,
    ) -> Result<Vec<WebhookRecorded>, StoreError> {
        let missing = || StoreError::Corrupt("a webhook of the batch was not recorded".into());
        self.first_of
            .iter()
            .enumerate()
            .map(|(i, &first)| {
                if let Some(&receipt_id) = existing.get(&first) {
                    return Ok(WebhookRecorded::Duplicate { receipt_id });
                }
                let receipt_id = *inserted.get(&first).ok_or_else(missing)?;
                Ok(if i != first {
                    WebhookRecorded::Duplicate { receipt_id }
                } else if let Some(&reason) = ignored.get(&i) {
                    WebhookRecorded::Ignored { receipt_id, reason }
                } else {
                    WebhookRecorded::Queued { receipt_id }
                })
            })
            .collect()
    }
}
