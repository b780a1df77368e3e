//! Persistence: one [`Store`] interface with a SQLite backend (`sqlite.rs`, the embedded default)
//! and a PostgreSQL backend (`postgres.rs`, for several replicas). SQL is written per backend; the
//! conformance suite in `tests/it/store_conformance.rs` runs against both so they cannot drift.
//!
//! The store knows rows, transactions and time values handed to it; it never reads the clock,
//! never sees a plaintext token (callers encrypt), and knows nothing of HTTP or Shopify's JSON.
//! Every multi-row write happens in one transaction.

mod postgres;
mod rows;
mod sqlite;
mod sqlite_batch;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

pub type Timestamp = DateTime<Utc>;

/// A driver's error (sqlx, or rusqlite for SQLite's webhook batch writer), kept as the source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Errors of the persistence layer. The edge maps `Unavailable` to 503 (retryable) and the rest
/// to 500; `Conflict` is for unique violations a caller did not expect.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database is unavailable")]
    Unavailable(#[source] BoxError),
    #[error("a row with the same key already exists")]
    Conflict(#[source] BoxError),
    #[error("database error")]
    Database(#[source] BoxError),
    #[error("migrations failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

/// A shop as Keel knows it. A shop row exists from the first token exchange until `shop/redact`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shop {
    pub domain: String,
    pub installed: bool,
    /// Granted scopes, comma-separated as Shopify sends them.
    pub scopes: String,
    pub installed_at: Option<Timestamp>,
    pub uninstalled_at: Option<Timestamp>,
    /// Set when Shopify refused the stored token twice or refused a refresh: the next admin open
    /// must exchange a new token.
    pub needs_reauth: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// An offline token pair to store. Token fields are ciphertexts (see `crate::secrets`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    pub access_token: Vec<u8>,
    /// `None` for a legacy non-expiring token.
    pub access_expires_at: Option<Timestamp>,
    pub refresh_token: Option<Vec<u8>>,
    pub refresh_expires_at: Option<Timestamp>,
    pub scope: String,
}

/// The stored offline token of a shop. `version` grows by one on every write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub token: NewToken,
    pub version: i64,
    pub updated_at: Timestamp,
}

/// Outcome of trying to become the one refresher of a shop's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshClaim {
    /// This caller holds the refresh lease until the given time; here is the token to refresh.
    Claimed(TokenRecord),
    /// Another caller (in this process or another replica) holds an unexpired lease.
    Busy,
    /// The shop has no stored token (never installed, uninstalled or redacted).
    NoToken,
}

/// Who a compliance request is about. Shopify may send only the email; match on id, else email.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomerRef {
    pub id: Option<i64>,
    /// Lowercased.
    pub email: Option<String>,
}

/// What a webhook needs from its shop to be processed rather than recorded as ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShopRequirement {
    /// The shop row must exist (compliance topics: they arrive after uninstall too).
    Known,
    /// The shop must exist and be installed.
    Installed,
}

/// A verified webhook delivery to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    pub shop: String,
    pub topic: String,
    /// `event:<X-Shopify-Event-Id>` when present, else `webhook:<X-Shopify-Webhook-Id>`.
    /// Unique per shop: a second delivery with the same key is a duplicate.
    pub dedupe_key: String,
    pub webhook_id: String,
    pub event_id: Option<String>,
    pub api_version: Option<String>,
    pub triggered_at: Option<String>,
    /// The raw JSON body. Not stored for ignored deliveries.
    pub payload: String,
    /// The customer the payload is about, if any, so redaction can find it.
    pub customer: CustomerRef,
    pub requires: ShopRequirement,
}

/// The kind of the job that processes a webhook receipt of `topic`, e.g.
/// `webhook/app/uninstalled`. The SQLite backend builds the same string in SQL when it promotes
/// receipts to jobs (`'webhook/' || topic`); the conformance tests hold both to this.
pub fn webhook_job_kind(topic: &str) -> String {
    format!("webhook/{topic}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreReason {
    UnknownShop,
    ShopUninstalled,
}

impl IgnoreReason {
    pub fn as_str(self) -> &'static str {
        match self {
            IgnoreReason::UnknownShop => "unknown_shop",
            IgnoreReason::ShopUninstalled => "shop_uninstalled",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookRecorded {
    /// Stored as `queued`: durable, and its job exists or will exist before any job operation
    /// can miss it (see [`Store::record_webhooks`]).
    Queued { receipt_id: i64 },
    /// A receipt with the same (shop, dedupe_key) exists: nothing was written.
    Duplicate { receipt_id: i64 },
    /// Recorded (without payload) and deliberately not processed.
    Ignored {
        receipt_id: i64,
        reason: IgnoreReason,
    },
}

/// A stored receipt (webhook deliveries now; Flow action runs later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub id: i64,
    pub shop: String,
    pub source: String,
    pub topic: String,
    pub dedupe_key: String,
    /// `queued`, `done`, `failed`, `ignored` or `redacted`.
    pub status: String,
    pub payload: Option<String>,
    pub customer: CustomerRef,
    /// When Shopify says the event happened (`X-Shopify-Triggered-At`, as sent).
    pub triggered_at: Option<String>,
    pub received_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub shop: Option<String>,
    pub kind: String,
    /// JSON. Never customer data: jobs point at receipts, which redaction scrubs.
    pub payload: String,
    pub receipt_id: Option<i64>,
    pub run_at: Timestamp,
    pub max_attempts: i32,
}

/// A claimed job. `attempt` counts this attempt (1 for the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: i64,
    pub shop: Option<String>,
    pub kind: String,
    pub payload: String,
    pub receipt_id: Option<i64>,
    pub attempt: i32,
    pub max_attempts: i32,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JobCounts {
    /// Queued, whether due now or later.
    pub queued: i64,
    /// Claimed with an unexpired or expired lease.
    pub running: i64,
    pub done: i64,
    /// Out of attempts; shown in the activity log for replay.
    pub dead: i64,
    pub cancelled: i64,
}

/// One assembled `customers/data_request` answer, kept for the merchant.
#[derive(Debug, Clone, PartialEq)]
pub struct DataExport {
    pub id: i64,
    pub shop: String,
    pub customer: CustomerRef,
    pub data_request_id: Option<i64>,
    pub report: serde_json::Value,
    pub created_at: Timestamp,
}

/// Everything Keel holds about one customer of one shop.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CustomerData {
    /// Receipts whose payload is about the customer (payload included).
    pub receipts: Vec<Receipt>,
    pub exports: Vec<DataExport>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RedactCounts {
    pub receipts: u64,
    pub exports: u64,
    pub jobs: u64,
    pub tokens: u64,
    pub shops: u64,
    /// VIP discount settings rows (0 or 1).
    pub settings: u64,
}

/// Where a shop's VIP settings stand with the shop's automatic discount on Shopify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncStatus {
    /// The latest version is not on Shopify yet; its sync job is queued or running.
    Pending,
    /// The discount carries the latest version.
    Synced,
    /// The sync of the latest version gave up; `sync_error` says why.
    Failed,
}

impl SyncStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncStatus::Pending => "pending",
            SyncStatus::Synced => "synced",
            SyncStatus::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<SyncStatus> {
        match raw {
            "pending" => Some(SyncStatus::Pending),
            "synced" => Some(SyncStatus::Synced),
            "failed" => Some(SyncStatus::Failed),
            _ => None,
        }
    }
}

/// A shop's VIP discount settings and the state of their sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipSettings {
    pub shop: String,
    /// The configuration as written to the discount's metafield (JSON text). The store does not
    /// read it; callers validate it before saving.
    pub config: String,
    /// Grows by one on every save (1 for the first).
    pub version: i64,
    /// The job that syncs `version`. A sync job with another id was superseded by a later save.
    pub sync_job_id: Option<i64>,
    pub sync_status: SyncStatus,
    pub sync_error: Option<String>,
    /// The shop's automatic discount (a `DiscountAutomaticNode` GID) once created or found.
    pub discount_id: Option<String>,
    /// The version the discount on Shopify carries.
    pub synced_version: Option<i64>,
    pub synced_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Outcome of trying to become the one syncer of a shop's VIP discount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VipSyncClaim {
    /// This holder has the lease until the given time; here are the settings as they are now.
    Claimed(VipSettings),
    /// Another holder has an unexpired lease.
    Busy,
    /// The shop has no VIP settings (never saved, or erased by `shop/redact`).
    NoSettings,
}

/// What a sync did, recorded by [`Store::finish_vip_sync`] as it releases the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VipSyncOutcome {
    /// Nothing to record (a superseded job, or one that found nothing to do).
    Released,
    /// Shopify's discount now carries `version`.
    Synced { version: i64, discount_id: String },
    /// The sync of `version` did not happen. `gave_up`: no retry follows, so the state becomes
    /// `failed`; otherwise it stays `pending` with `error` as the reason of the retry.
    /// `discount_id`: a discount found or created on the way, to remember even so.
    Failed {
        version: i64,
        error: String,
        gave_up: bool,
        discount_id: Option<String>,
    },
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The backend's name, `sqlite` or `postgres`, for logs and `/readyz`.
    fn backend(&self) -> &'static str;
    /// Whether concurrent `record_webhooks` calls are merged into shared transactions by the
    /// store itself (SQLite's single writer thread does), so callers may send each delivery as
    /// it comes instead of gathering batches first (see `jobs::intake`).
    fn groups_webhook_commits(&self) -> bool {
        false
    }
    /// A trivial round trip.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Apply pending migrations of this backend's folder.
    async fn migrate(&self) -> Result<(), StoreError>;
    /// True when every migration the binary knows is applied (and none failed).
    async fn migrations_current(&self) -> Result<bool, StoreError>;

    // ---- shops and tokens ----
    /// Upsert the shop as installed (clearing `uninstalled_at` and `needs_reauth`, setting
    /// `installed_at` when it was not installed, `scopes` = token scope) and store the token,
    /// in one transaction. Returns the stored token (version bumped).
    async fn install_shop(
        &self,
        shop: &str,
        token: &NewToken,
        now: Timestamp,
    ) -> Result<TokenRecord, StoreError>;
    async fn shop(&self, shop: &str) -> Result<Option<Shop>, StoreError>;
    async fn token(&self, shop: &str) -> Result<Option<TokenRecord>, StoreError>;
    /// Take the shop's refresh lease for `holder` until `lease_until` if nobody holds an
    /// unexpired one. Atomic across processes sharing the database.
    async fn claim_token_refresh(
        &self,
        shop: &str,
        holder: &str,
        lease_until: Timestamp,
        now: Timestamp,
    ) -> Result<RefreshClaim, StoreError>;
    /// Release `holder`'s lease, storing `new` when given (version bumped), in one statement
    /// or transaction. Returns false, writing nothing, when `holder` no longer holds the lease.
    async fn finish_token_refresh(
        &self,
        shop: &str,
        holder: &str,
        new: Option<&NewToken>,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Delete the stored token and mark the shop as needing re-authorisation.
    async fn mark_needs_reauth(&self, shop: &str, now: Timestamp) -> Result<(), StoreError>;
    async fn set_scopes(
        &self,
        shop: &str,
        scopes: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// In one transaction: mark the shop uninstalled at `at`, delete its token, cancel its queued
    /// jobs except those whose kind is in `keep_kinds`, and mark a pending VIP settings sync whose
    /// job was so cancelled as failed (the settings stay until `shop/redact`, so a reinstalled
    /// shop finds them and can save them again). Does nothing and returns false when the
    /// shop is unknown, already uninstalled, or was (re)installed after `at` (a late webhook must
    /// not undo a reinstall).
    async fn uninstall_shop(
        &self,
        shop: &str,
        at: Timestamp,
        keep_kinds: &[&str],
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    // ---- webhook receipts ----
    /// Record a batch of verified deliveries. Each item is handled as if alone, in order, all in
    /// one transaction (group commit): a duplicate key answers `Duplicate` and writes nothing; a
    /// shop not meeting `requires` gets an `ignored` receipt without payload and no job; otherwise
    /// a `queued` receipt is inserted, which gets exactly one job of kind [`webhook_job_kind`],
    /// due at its `received_at`, with the webhook attempt budget. Concurrent calls with the same
    /// key yield exactly one non-duplicate outcome.
    ///
    /// PostgreSQL inserts that job in the same transaction. SQLite, whose single writer is the
    /// limit of the webhook path, inserts only the receipt and creates the jobs later, in bulk:
    /// when a `claim_job` finds no job to claim, and at the start of `uninstall_shop` and
    /// `redact_shop` (which promote every queued webhook receipt recorded since the last
    /// promotion, in their own transaction); `job_counts` / `next_job_due` count those receipts as
    /// queued jobs. Either way no job
    /// operation can tell the difference, and a crash loses nothing: the receipt is the durable
    /// record until its job exists. A receipt redacted before its promotion gets no job; its job
    /// would have found nothing left to do.
    async fn record_webhooks(
        &self,
        batch: Vec<NewWebhook>,
        now: Timestamp,
    ) -> Result<Vec<WebhookRecorded>, StoreError>;
    async fn receipt(&self, id: i64) -> Result<Option<Receipt>, StoreError>;
    async fn set_receipt_status(
        &self,
        id: i64,
        status: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// Receipts of a shop, newest first (tests and the activity log).
    async fn receipts(&self, shop: &str, limit: i64) -> Result<Vec<Receipt>, StoreError>;

    // ---- jobs ----
    async fn enqueue_job(&self, job: &NewJob, now: Timestamp) -> Result<i64, StoreError>;
    /// Claim the oldest due job: queued with `run_at <= now`, or running with an expired lease.
    /// Sets the lease, increments attempts. Concurrent claimers never get the same job.
    async fn claim_job(
        &self,
        worker: &str,
        lease_until: Timestamp,
        now: Timestamp,
    ) -> Result<Option<Job>, StoreError>;
    /// Mark done. False if `worker` no longer holds the job's lease (it was reclaimed).
    async fn complete_job(&self, id: i64, worker: &str, now: Timestamp)
        -> Result<bool, StoreError>;
    /// Back to queued at `run_at`, recording `error`.
    async fn retry_job(
        &self,
        id: i64,
        worker: &str,
        run_at: Timestamp,
        error: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Out of attempts or permanently failed: `dead`, recording `error`.
    async fn bury_job(
        &self,
        id: i64,
        worker: &str,
        error: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    async fn job_counts(&self) -> Result<JobCounts, StoreError>;
    /// The earliest `run_at` among queued jobs, so a worker knows how long it may sleep.
    async fn next_job_due(&self) -> Result<Option<Timestamp>, StoreError>;

    // ---- compliance ----
    async fn customer_data(
        &self,
        shop: &str,
        customer: &CustomerRef,
    ) -> Result<CustomerData, StoreError>;
    async fn save_data_export(
        &self,
        shop: &str,
        customer: &CustomerRef,
        data_request_id: Option<i64>,
        report: &serde_json::Value,
        now: Timestamp,
    ) -> Result<i64, StoreError>;
    async fn data_exports(&self, shop: &str) -> Result<Vec<DataExport>, StoreError>;
    /// Erase the customer's data: delete their exports, scrub the payload of every receipt about
    /// them (status `redacted`, payload and customer columns cleared), in one transaction.
    async fn redact_customer(
        &self,
        shop: &str,
        customer: &CustomerRef,
        now: Timestamp,
    ) -> Result<RedactCounts, StoreError>;
    /// Erase every row of the shop in every table, in one transaction, except the receipt and job
    /// identified by `keep_receipt` (the running `shop/redact` itself, whose payload is scrubbed).
    async fn redact_shop(
        &self,
        shop: &str,
        keep_receipt: Option<i64>,
    ) -> Result<RedactCounts, StoreError>;

    // ---- VIP discount settings ----
    /// The shop's VIP settings, `None` when never saved.
    async fn vip_settings(&self, shop: &str) -> Result<Option<VipSettings>, StoreError>;
    /// In one transaction: store `config` as the shop's VIP settings (version + 1, status
    /// `pending`, error cleared), enqueue `job` and make it the settings' sync job. Returns the
    /// saved settings, or `None` — writing nothing — when the shop is unknown. The discount id
    /// and the synced version are kept: they describe what is on Shopify.
    async fn save_vip_settings(
        &self,
        shop: &str,
        config: &str,
        job: &NewJob,
        now: Timestamp,
    ) -> Result<Option<VipSettings>, StoreError>;
    /// Take the shop's sync lease for `holder` until `lease_until` if nobody holds an unexpired
    /// one (the same holder may take it again). Atomic across processes.
    async fn claim_vip_sync(
        &self,
        shop: &str,
        holder: &str,
        lease_until: Timestamp,
        now: Timestamp,
    ) -> Result<VipSyncClaim, StoreError>;
    /// Record `outcome` and release `holder`'s lease, in one statement. The discount id and the
    /// synced version are recorded whatever the settings' version now is (they describe Shopify);
    /// the status and error only when the outcome is about the latest version, so a superseded
    /// sync never overwrites a newer save's state. Returns false, writing nothing, when `holder`
    /// no longer holds the lease.
    async fn finish_vip_sync(
        &self,
        shop: &str,
        holder: &str,
        outcome: &VipSyncOutcome,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
}

pub type DynStore = Arc<dyn Store>;

/// Open the store named by a database URL: `postgres://…`/`postgresql://…` → PostgreSQL,
/// `sqlite:…` → SQLite (file created if missing, WAL mode). Migrations are not applied here.
pub async fn connect(url: &str, max_connections: u32) -> Result<DynStore, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(
            PostgresStore::connect(url, max_connections).await?,
        ))
    } else {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    }
}
