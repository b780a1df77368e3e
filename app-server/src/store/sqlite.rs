//! The SQLite backend: Keel's embedded default, one file (plus its WAL) under `./keel-data/`.
//!
//! Owns the connection set-up (WAL, busy timeout, foreign keys), SQLite's SQL for every `Store`
//! method and the mapping of SQLite errors to [`StoreError`]. Times are stored as unix
//! milliseconds handed in by the caller; nothing here reads a clock.
//!
//! SQLite allows one writer at a time, so this store keeps two pools: readers, and a writer pool
//! of exactly one connection (see [`SqliteStore::connect`]).

use super::rows::{
    into_customer_data, job_counts, migrations_match, millis, opt_time, store_error, ExportRow,
    JobRow, Lease, LeaseRow, ReceiptRow, ShopRow, TokenRow, VipSettingsRow, VipSyncRecord,
    EXPORT_COLUMNS, JOB_COLUMNS, PAUSED_SHOPS_EXCLUDED, RECEIPT_COLUMNS, REFRESH_LEASE,
    TOKEN_COLUMNS, UNINSTALLED_BEFORE_SYNC, VIP_SETTINGS_COLUMNS, VIP_SYNC_LEASE,
    WEBHOOK_JOB_MAX_ATTEMPTS,
};
use super::sqlite_batch::BatchWriter;
use super::{
    CustomerData, CustomerRef, DataExport, Job, JobCounts, NewJob, NewToken, NewWebhook, Receipt,
    RedactCounts, RefreshClaim, Shop, Store, StoreError, Timestamp, TokenRecord, VipSettings,
    VipSyncClaim, VipSyncOutcome, WebhookRecorded,
};
use async_trait::async_trait;
use sqlx::error::DatabaseError;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::types::Json;
use sqlx::{ConnectOptions, Connection, Sqlite, SqliteConnection, Transaction};
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: Migrator = sqlx::migrate!("../migrations/sqlite");

/// Readers never block each other or the writer in WAL mode; a few cover the admin pages and
/// workers without holding many file descriptors.
const READERS: u32 = 4;
/// How long SQLite itself waits for another process's write lock before answering SQLITE_BUSY.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a caller waits for a pooled connection before the store answers `Unavailable`
/// (a 503 that Shopify and Flow retry). Writes queue here, behind the one writer connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct SqliteStore {
    readers: SqlitePool,
    /// The only connection that writes. Writers queue fairly in the pool instead of spinning in
    /// SQLite's busy handler, and a deferred transaction can never find, when it first writes,
    /// that another connection of ours committed since it read (SQLITE_BUSY_SNAPSHOT, which
    /// no busy timeout retries). Multi-statement writes still say `BEGIN IMMEDIATE`, so a second
    /// process on the same file (`keel migrate` beside `keel serve`, a test's second store) waits
    /// for the write lock up front rather than failing halfway through a transaction.
    ///
    /// Held directly, not in a pool: a pool returns a connection on drop through a spawned task,
    /// so under load the next transaction waited for the runtime to schedule that task (measured
    /// as most of a webhook batch's time). A fair async mutex hands it straight to the next writer.
    writer: tokio::sync::Mutex<SqliteConnection>,
    /// Webhook batches, written on a thread of their own (see `sqlite_batch`).
    batches: BatchWriter,
}

impl SqliteStore {
    /// Open (creating if missing) the database at `url`, e.g. `sqlite:///abs/path/keel.db` or
    /// `sqlite:keel-data/keel.db`. The file's directory is created too. Migrations are not run.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(db_error)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL mode NORMAL syncs at checkpoints, not at each commit: a committed
            // transaction survives a crash of the process (kill -9), and only an OS crash or
            // power loss can roll back the last commits. That is the durability Keel needs for
            // the embedded case; several replicas use PostgreSQL.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        if let Some(dir) = options.get_filename().parent() {
            if !dir.as_os_str().is_empty() {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| StoreError::Unavailable(e.into()))?;
            }
        }
        // The writer connects first: it creates the file and switches it to WAL before any
        // reader opens it.
        let writer = tokio::sync::Mutex::new(options.connect().await.map_err(db_error)?);
        // After sqlx's connection exists: it created the file and switched it to WAL.
        let batches = BatchWriter::open(options.get_filename())?;
        let readers = SqlitePoolOptions::new()
            .max_connections(READERS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(db_error)?;
        Ok(Self {
            readers,
            writer,
            batches,
        })
    }

    /// The writer connection, or `Unavailable` after [`ACQUIRE_TIMEOUT`] of queueing.
    async fn write_conn(
        &self,
    ) -> Result<tokio::sync::MutexGuard<'_, SqliteConnection>, StoreError> {
        tokio::time::timeout(ACQUIRE_TIMEOUT, self.writer.lock())
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolTimedOut.into()))
    }
}

/// The one mapping of SQLite errors. Busy/locked (another process held the write lock for the
/// whole busy timeout) and I/O failures are worth retrying, so they are `Unavailable` too.
fn db_error(e: sqlx::Error) -> StoreError {
    store_error(e, is_transient)
}

fn is_transient(d: &dyn DatabaseError) -> bool {
    // Extended result codes carry the primary code in their low byte.
    let primary = d
        .code()
        .and_then(|c| c.parse::<i32>().ok())
        .map(|c| c & 0xff);
    // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN
    matches!(primary, Some(5 | 6 | 10 | 13 | 14))
}

/// Run `sql`, a delete of one shop's rows (the shop is `?1`), in the caller's transaction;
/// answers how many rows went.
async fn delete_shop_rows(
    tx: &mut Transaction<'_, Sqlite>,
    sql: &str,
    shop: &str,
) -> Result<u64, StoreError> {
    let done = sqlx::query(sql)
        .bind(shop)
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    Ok(done.rows_affected())
}

/// Which receipts and exports are about a customer: the same id or the same (lowercased) email.
/// A reference with neither matches nothing, since `= null` is never true.
const ABOUT_CUSTOMER: &str = "shop = ?1 and (customer_id = ?2 or customer_email = ?3)";

/// Queued webhook receipts not yet promoted to jobs (see `promote_webhooks`).
const UNPROMOTED_WEBHOOKS: &str = "from receipts
     where id > (select promoted_through from webhook_promotion where id = 1)
       and source = 'webhook' and status = 'queued'";

/// The most receipt ids one promotion covers, so a claim after a long backlog (workers stopped
/// while deliveries kept arriving) holds the write lock for milliseconds, not seconds, while
/// webhook batches wait behind it.
const PROMOTE_AT_MOST: i64 = 4096;

/// Gives every queued webhook receipt recorded since the last promotion its job, in receipt
/// order, in the caller's write transaction: all of them if `all`, else [`PROMOTE_AT_MOST`]
/// receipt ids at a time until some jobs were created. Answers how many jobs were created.
///
/// The webhook batch writer stores only receipts, to keep the single writer's work per delivery
/// small (see migrations/sqlite/0003_webhook_promotion.sql for why the mark is sound). The job is
/// the one PostgreSQL writes beside the receipt: kind `webhook/<topic>` (as
/// [`super::webhook_job_kind`]), created and due when the delivery arrived, with the webhook
/// attempt budget.
async fn promote_webhooks(tx: &mut Transaction<'_, Sqlite>, all: bool) -> Result<u64, StoreError> {
    let mut promoted = 0;
    loop {
        let (through, newest): (i64, i64) = sqlx::query_as(
            "select promoted_through, (select coalesce(max(id), 0) from receipts)
             from webhook_promotion where id = 1",
        )
        .fetch_one(&mut **tx)
        .await
        .map_err(db_error)?;
        if newest <= through {
            return Ok(promoted);
        }
        let upto = newest.min(through + PROMOTE_AT_MOST);
        let done = sqlx::query(
            "insert into jobs (shop, kind, payload, receipt_id, status, attempts, max_attempts, run_at, created_at, updated_at)
             select shop, 'webhook/' || topic, '{}', id, 'queued', 0, ?3, received_at, received_at, received_at
             from receipts
             where id > ?1 and id <= ?2 and source = 'webhook' and status = 'queued'
             order by id",
        )
        .bind(through)
        .bind(upto)
        .bind(WEBHOOK_JOB_MAX_ATTEMPTS)
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
        sqlx::query("update webhook_promotion set promoted_through = ?1 where id = 1")
            .bind(upto)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
        promoted += done.rows_affected();
        if !all && promoted > 0 {
            return Ok(promoted);
        }
    }
}

/// Claims the oldest due job, if any. One statement on the one writer connection: no two
/// claimers can pick the same row. Oldest first by run_at: a job whose lease expired has waited
/// since its run_at too. A running job was due when claimed, so `run_at <= now` holds for every
/// candidate and bounds the index scan when nothing is due.
async fn claim_due(
    writer: &mut SqliteConnection,
    worker: &str,
    lease_until: Timestamp,
    now: Timestamp,
) -> Result<Option<Job>, StoreError> {
    let row: Option<JobRow> = sqlx::query_as(&format!(
        "update jobs set status = 'running', locked_by = ?1, locked_until = ?2, attempts = attempts + 1, updated_at = ?3
         where id = (
             select id from jobs
             where status in ('queued', 'running') and run_at <= ?3
               and (status = 'queued' or locked_until <= ?3)
               and {PAUSED_SHOPS_EXCLUDED}
             order by run_at, id
             limit 1
         )
         returning {JOB_COLUMNS}"
    ))
    .bind(worker)
    .bind(millis(lease_until))
    .bind(millis(now))
    .fetch_optional(writer)
    .await
    .map_err(db_error)?;
    row.map(JobRow::into_job).transpose()
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    /// The batch writer thread merges every request waiting for it into its next transaction.
    fn groups_webhook_commits(&self) -> bool {
        true
    }

    #[tracing::instrument(skip_all)]
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("select 1")
            .execute(&self.readers)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run_direct(&mut *self.write_conn().await?).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn migrations_current(&self) -> Result<bool, StoreError> {
        let table: bool = sqlx::query_scalar(
            "select exists (select 1 from sqlite_master where type = 'table' and name = '_sqlx_migrations')",
        )
        .fetch_one(&self.readers)
        .await
        .map_err(db_error)?;
        let applied: Vec<(i64, Vec<u8>, bool)> = if table {
            sqlx::query_as("select version, checksum, success from _sqlx_migrations")
                .fetch_all(&self.readers)
                .await
                .map_err(db_error)?
        } else {
            Vec::new()
        };
        Ok(migrations_match(&MIGRATOR, &applied))
    }

    #[tracing::instrument(skip_all)]
    async fn install_shop(
        &self,
        shop: &str,
        token: &NewToken,
        now: Timestamp,
    ) -> Result<TokenRecord, StoreError> {
        let mut writer = self.write_conn().await?;
        let mut tx = begin_immediate(&mut writer).await?;
        // `authorized_at` moves on every install, even of an installed shop: a token exchange
        // proves the app was installed at that moment, so an older uninstall webhook still in
        // the queue must not undo it (see `uninstall_shop`).
        let version: i64 = sqlx::query_scalar(
            "insert into shops (domain, installed, scopes, installed_at, authorized_at, needs_reauth, token_version, created_at, updated_at)
             values (?1, 1, ?2, ?3, ?3, 0, 1, ?3, ?3)
             on conflict (domain) do update set
                 installed = 1,
                 scopes = excluded.scopes,
                 installed_at = case when shops.installed then shops.installed_at else excluded.installed_at end,
                 authorized_at = excluded.authorized_at,
                 uninstalled_at = null,
                 needs_reauth = 0,
                 token_version = shops.token_version + 1,
                 updated_at = excluded.updated_at
             returning token_version",
        )
        .bind(shop)
        .bind(&token.scope)
        .bind(millis(now))
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
        // A fresh token ends any refresh in flight: that refresher's `finish` will find the
        // lease gone and discard its result.
        let row: TokenRow = sqlx::query_as(&format!(
            "insert into shop_tokens (shop, access_token, access_expires_at, refresh_token, refresh_expires_at, scope, version, created_at, updated_at)
             values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
             on conflict (shop) do update set
                 access_token = excluded.access_token,
                 access_expires_at = excluded.access_expires_at,
                 refresh_token = excluded.refresh_token,
                 refresh_expires_at = excluded.refresh_expires_at,
                 scope = excluded.scope,
                 version = excluded.version,
                 refresh_holder = null,
                 refresh_lease_until = null,
                 updated_at = excluded.updated_at
             returning {TOKEN_COLUMNS}"
        ))
        .bind(shop)
        .bind(&token.access_token)
        .bind(token.access_expires_at.map(millis))
        .bind(&token.refresh_token)
        .bind(token.refresh_expires_at.map(millis))
        .bind(&token.scope)
        .bind(version)
        .bind(millis(now))
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        row.into_record()
    }

    #[tracing::instrument(skip_all)]
    async fn shop(&self, shop: &str) -> Result<Option<Shop>, StoreError> {
        let row: Option<ShopRow> = sqlx::query_as(
            "select domain, installed, scopes, installed_at, uninstalled_at, needs_reauth, created_at, updated_at
             from shops where domain = ?1",
        )
        .bind(shop)
        .fetch_optional(&self.readers)
        .await
        .map_err(db_error)?;
        row.map(ShopRow::into_shop).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn token(&self, shop: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row: Option<TokenRow> = sqlx::query_as(&format!(
            "select {TOKEN_COLUMNS} from shop_tokens where shop = ?1"
        ))
        .bind(shop)
        .fetch_optional(&self.readers)
        .await
        .map_err(db_error)?;
        row.map(TokenRow::into_record).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn claim_token_refresh(
        &self,
        shop: &str,
        holder: &str,
        lease_until: Timestamp,
        now: Timestamp,
    ) -> Result<RefreshClaim, StoreError> {
        let mut writer = self.write_conn().await?;
        let mut tx = begin_immediate(&mut writer).await?;
        let claim =
            match claim_lease::<TokenRow>(&mut tx, &REFRESH_LEASE, shop, holder, lease_until, now)
                .await?
            {
                Lease::Claimed(row) => RefreshClaim::Claimed(row.into_record()?),
                Lease::Busy => RefreshClaim::Busy,
                Lease::Missing => RefreshClaim::NoToken,
            };
        tx.commit().await.map_err(db_error)?;
        Ok(claim)
    }

    #[tracing::instrument(skip_all)]
    async fn finish_token_refresh(
        &self,
        shop: &str,
        holder: &str,
        new: Option<&NewToken>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let Some(new) = new else {
            let done = sqlx::query(
                "update shop_tokens set refresh_holder = null, refresh_lease_until = null
                 where shop = ?1 and refresh_holder = ?2",
            )
            .bind(shop)
            .bind(holder)
            .execute(&mut *self.write_conn().await?)
            .await
            .map_err(db_error)?;
            return Ok(done.rows_affected() > 0);
        };
        let mut writer = self.write_conn().await?;
        let mut tx = begin_immediate(&mut writer).await?;
        let version: Option<i64> = sqlx::query_scalar(
            "update shops set token_version = token_version + 1, updated_at = ?3
             where domain = ?1 and exists (select 1 from shop_tokens where shop = ?1 and refresh_holder = ?2)
             returning token_version",
        )
        .bind(shop)
        .bind(holder)
        .bind(millis(now))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        let Some(version) = version else {
            return Ok(false);
        };
        sqlx::query(
            "update shop_tokens set
                 access_token = ?3, access_expires_at = ?4, refresh_token = ?5, refresh_expires_at = ?6,
                 scope = ?7, version = ?8, refresh_holder = null, refresh_lease_until = null, updated_at = ?9
             where shop = ?1 and refresh_holder = ?2",
        )
        .bind(shop)
        .bind(holder)
        .bind(&new.access_token)
        .bind(new.access_expires_at.map(millis))
        .bind(&new.refresh_token)
        .bind(new.refresh_expires_at.map(millis))
        .bind(&new.scope)
        .bind(version)
        .bind(millis(now))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }

    #[tracing::instrument(skip_all)]
    async fn mark_needs_reauth(&self, shop: &str, now: Timestamp) -> Result<(), StoreError> {
        let mut writer = self.write_conn().await?;
        let mut tx = begin_immediate(&mut writer).await?;
        sqlx::query("update shops set needs_reauth = 1, updated_at = ?2 where domain = ?1")
            .bind(shop)
            .bind(millis(now))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        delete_shop_rows(&mut tx, "delete from shop_tokens where shop = ?1", shop).await?;
        tx.commit().await.map_err(db_error)
    }

    #[tracing::instrument(skip_all)]
    async fn set_scopes(
        &self,
        shop: &str,
        scopes: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("update shops set scopes = ?2, updated_at = ?3 where domain = ?1")
            .bind(shop)
            .bind(scopes)
            .bind(millis(now))
            .execute(&mut *self.write_conn().await?)
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }

    #[tracing::instrument(skip_all)]
    async fn uninstall_shop(
        &self,
        shop: &str,
        at: Timestamp,
        keep_kinds: &[&str],
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let keep =
            serde_json::to_string(keep_kinds).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut writer = self.write_conn().await?;
        let mut tx = begin_immediate(&mut writer).await?;
        // `authorized_at` is the latest token exchange: if it is newer than the uninstall, the
        // merchant reinstalled after it (possibly before Keel processed this uninstall).
        let done = sqlx::query(
            "update shops set installed = 0, uninstalled_at = ?2, updated_at = ?3
             where domain = ?1 and installed and coalesce(authorized_at, installed_at, 0) <= ?2",
        )
        .bind(shop)
        .bind(millis(at))
        .bind(millis(now))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        // The shop's deliveries still waiting for their jobs are cancelled (or kept) like the rest.
        promote_webhooks(&mut tx, true).await?;
        delete_shop_rows(&mut tx, "delete from shop_tokens where shop = ?1", shop).await?;
        sqlx::query(
            "update jobs set status = 'cancelled', locked_by = null, locked_until = null, finished_at = ?2, updated_at = ?2
             where shop = ?1 and status = 'queued' and kind not in (select value from json_each(?3))",
        )
        .bind(shop)
        .bind(millis(now))
        .bind(keep)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        // A save whose sync job was just cancelled will not reach Shopify: say so.
        sqlx::query(
            "update vip_settings set sync_status = 'failed', sync_error = ?2, updated_at = ?3
             where shop = ?1 and sync_status = 'pending'
               and sync_job_id in (select id from jobs where shop = ?1 and status = 'cancelled')",
        )
        .bind(shop)
        .bind(UNINSTALLED_BEFORE_SYNC)
        .bind(millis(now))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }

    #[tracing::instrument(skip_all, fields(batch = batch.len()))]
    async fn record_webhooks(
        &self,
        batch: Vec<NewWebhook>,
        now: Timestamp,
    ) -> Result<Vec<WebhookRecorded>, StoreError> {
        self.batches.record(batch, millis(now)).await
    }

    #[tracing::instrument(skip_all)]
    async fn receipt(&self, id: i64) -> Result<Option<Receipt>, StoreError> {
        let row: Option<ReceiptRow> = sqlx::query_as(&format!(
            "select {RECEIPT_COLUMNS} from receipts where id = ?1"
        ))
        .bind(id)
        .fetch_optional(&self.readers)
        .await
        .map_err(db_error)?;
        row.map(ReceiptRow::into_receipt).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn set_receipt_status(
        &self,
        id: i64,
        status: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query("update receipts set status = ?2, updated_at = ?3 where id = ?1")
            .bind(id)
            .bind(status)
            .bind(millis(now))
            .execute(&mut *self.write_conn().await?)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn receipts(&self, shop: &str, limit: i64) -> Result<Vec<Receipt>, StoreError> {
        let rows: Vec<ReceiptRow> = sqlx::query_as(&format!(
            "select {RECEIPT_COLUMNS} from receipts where shop = ?1 order by received_at desc, id desc limit ?2"
        ))
        .bind(shop)
        .bind(limit.max(0))
        .fetch_all(&self.readers)
        .await
        .map_err(db_error)?;
        rows.into_iter().map(ReceiptRow::into_receipt).collect()
    }

    #[tracing::instrument(skip_all)]
    async fn enqueue_job(&self, job: &NewJob, now: Timestamp) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "insert into jobs (shop, kind, payload, receipt_id, status, attempts, max_attempts, run_at, created_at, updated_at)
             values (?1, ?2, ?3, ?4, 'queued', 0, ?5, ?6, ?7, ?7)
             returning id",
        )
        .bind(&job.shop)
        .bind(&job.kind)
        .bind(&job.payload)
        .bind(job.receipt_id)
        .bind(job.max_attempts)
        .bind(millis(job.run_at))
        .bind(millis(now))
        .fetch_one(&mut *self.write_conn().await?)
        .await
        .map_err(db_error)
    }

    #[tracing::instrument(skip_all)]
    async fn claim_job(
        &self,
        worker: &str,
        lease_until: Timestamp,
        now: Timestamp,
    ) -> Result<Option<Job>, StoreError> {
        let mut writer = self.write_conn().await?;
        if let Some(job) = claim_due(&mut writer, worker, lease_until, now).await? {
            return Ok(Some(job));
        }
        // Nothing claimable among the jobs: deliveries acknowledged since the last promotion may
        // be waiting for theirs. Checking only here keeps a claim one statement while jobs are
        // available; the waiting deliveries are claimed once those run out.
        let pending: bool =
            sqlx::query_scalar(&format!("select exists (select 1 {UNPROMOTED_WEBHOOKS})"))
                .fetch_one(&mut *writer)
                .await
                .map_err(db_error)?;
        if !pending {
            return Ok(None);
        }
        let mut tx = begin_immediate(&mut writer).await?;
        promote_webhooks(&mut tx, false).await?;
        tx.commit().await.map_err(db_error)?;
        claim_due(&mut writer, worker, lease_until, now).await
    }

    #[tracing::instrument(skip_all)]
    async fn complete_job(
        &self,
        id: i64,
        worker: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "update jobs set status = 'done', locked_until = null, finished_at = ?3, updated_at = ?3
             where id = ?1 and status = 'running' and locked_by = ?2",
        )
        .bind(id)
        .bind(worker)
        .bind(millis(now))
        .execute(&mut *self.write_conn().await?)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }

    #[tracing::instrument(skip_all)]
    async fn retry_job(
        &self,
        id: i64,
        worker: &str,
        run_at: Timestamp,
        error: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "update jobs set status = 'queued', run_at = ?3, last_error = ?4, locked_by = null, locked_until = null, updated_at = ?5
             where id = ?1 and status = 'running' and locked_by = ?2",
        )
        .bind(id)
        .bind(worker)
        .bind(millis(run_at))
        .bind(error)
        .bind(millis(now))
        .execute(&mut *self.write_conn().await?)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }

    #[tracing::instrument(skip_all)]
    async fn bury_job(
        &self,
        id: i64,
        worker: &str,
        error: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "update jobs set status = 'dead', last_error = ?3, locked_until = null, finished_at = ?4, updated_at = ?4
             where id = ?1 and status = 'running' and locked_by = ?2",
        )
        .bind(id)
        .bind(worker)
        .bind(error)
        .bind(millis(now))
        .execute(&mut *self.write_conn().await?)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }

    #[tracing::instrument(skip_all)]
    async fn job_counts(&self) -> Result<JobCounts, StoreError> {
        // One statement, so one snapshot: a receipt promoted meanwhile is counted once.
        let rows: Vec<(String, i64)> = sqlx::query_as(&format!(
            "select status, count(*) from jobs group by status
             union all
             select 'queued', count(*) {UNPROMOTED_WEBHOOKS}"
        ))
        .fetch_all(&self.readers)
        .await
        .map_err(db_error)?;
        job_counts(rows)
    }

    #[tracing::instrument(skip_all)]
    async fn next_job_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let due: Option<i64> = sqlx::query_scalar(&format!(
            "select min(due) from (
                 select min(run_at) as due from jobs where status = 'queued'
                 union all
                 select min(received_at) {UNPROMOTED_WEBHOOKS})"
        ))
        .fetch_one(&self.readers)
        .await
        .map_err(db_error)?;
        opt_time(due)
    }

    #[tracing::instrument(skip_all)]
    async fn customer_data(
        &self,
        shop: &str,
        customer: &CustomerRef,
    ) -> Result<CustomerData, StoreError> {
        // One read transaction, so receipts and exports come from the same snapshot.
        let mut tx = self.readers.begin().await.map_err(db_error)?;
        let receipts: Vec<ReceiptRow> = sqlx::query_as(&format!(
            "select {RECEIPT_COLUMNS} from receipts where {ABOUT_CUSTOMER} order by received_at, id"
        ))
        .bind(shop)
        .bind(customer.id)
        .bind(&customer.email)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
        let exports: Vec<ExportRow> = sqlx::query_as(&format!(
            "select {EXPORT_COLUMNS} from data_exports where {ABOUT_CUSTOMER} order by created_at, id"
        ))
        .bind(shop)
        .bind(customer.id)
        .bind(&customer.email)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        into_customer_data(receipts, exports)
    }

    #[tracing::instrument(skip_all)]
    async fn save_data_export(
        &self,
        shop: &str,
        customer: &CustomerRef,
        data_request_id: Option<i64>,
        report: &serde_json::Value,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "insert into data_exports (shop, customer_id, customer_email, data_request_id, report, created_at, updated_at)
             values (?1, ?2, ?3, ?4, ?5, ?6, ?6)
             returning id",
        )
        .bind(shop)
        .bind(customer.id)
        .bind(&customer.email)
        .bind(data_request_id)
        .bind(Json(report))
        .bind(millis(now))
        .fetch_one(&mut *self.write_conn().await?)
        .await
        .map_err(db_error)
    }

    #[tracing::instrument(skip_all)]
    async fn data_exports(&self, shop: &str) -> Result<Vec<DataExport>, StoreError> {
        let rows: Vec<ExportRow> = sqlx::query_as(&format!(
            "select {EXPORT_COLUMNS} from data_exports where shop = ?1 order by created_at desc, id desc"
        ))
        .bind(shop)
        .fetch_all(&self.readers)
        .await
        .map_err(db_error)?;
        rows.into_iter().map(ExportRow::into_export).collect()
    }

    #[tracing::instrument(skip_all)]
    async fn redact_customer(
        &self,
        shop: &str,
        customer: &CustomerRef,
        now: Timestamp,
    ) -> Result<RedactCounts, StoreError> {
        let mut writer = self.write_conn().await?;
        let mut tx = begin_immediate(&mut writer).await?;
        let exports = sqlx::query(&format!("delete from data_exports where {ABOUT_CUSTOMER}"))
            .bind(shop)
            .bind(customer.id)
            .bind(&customer.email)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        let receipts = sqlx::query(&format!(
            "update receipts set status = 'redacted', payload = null, customer_id = null, customer_email = null, updated_at = ?4
             where {ABOUT_CUSTOMER}"
        ))
        .bind(shop)
        .bind(customer.id)
        .bind(&customer.email)
        .bind(millis(now))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(RedactCounts {
            receipts: receipts.rows_affected(),
            exports: exports.rows_affected(),
            ..RedactCounts::default()
        })
    }

    #[tracing::instrument(skip_all)]
    async fn redact_shop(
        &self,
        shop: &str,
        keep_receipt: Option<i64>,
    ) -> Result<RedactCounts, StoreError> {
        let mut writer = self.write_conn().await?;
        let mut tx = begin_immediate(&mut writer).await?;
        // Promoted first, so the count of erased jobs does not depend on when the last claim ran.
        promote_webhooks(&mut tx, true).await?;
        // Jobs first: they reference receipts. A job belongs to the shop by its own column or by
        // its receipt's.
        let jobs = sqlx::query(
            "delete from jobs
             where (shop = ?1 or receipt_id in (select id from receipts where shop = ?1))
               and (?2 is null or receipt_id is not ?2)",
        )
        .bind(shop)
        .bind(keep_receipt)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let exports =
            delete_shop_rows(&mut tx, "delete from data_exports where shop = ?1", shop).await?;
        let tokens =
            delete_shop_rows(&mut tx, "delete from shop_tokens where shop = ?1", shop).await?;
        let settings =
            delete_shop_rows(&mut tx, "delete from vip_settings where shop = ?1", shop).await?;
        let receipts =
            sqlx::query("delete from receipts where shop = ?1 and (?2 is null or id <> ?2)")
                .bind(shop)
                .bind(keep_receipt)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        // The kept receipt stays as proof the request was honoured, with nothing of the shop's
        // data in it. Its updated_at moves when its job marks it done.
        sqlx::query(
            "update receipts set payload = null, customer_id = null, customer_email = null where id = ?2 and shop = ?1",
        )
        .bind(shop)
        .bind(keep_receipt)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let shops = delete_shop_rows(&mut tx, "delete from shops where domain = ?1", shop).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(RedactCounts {
            receipts: receipts.rows_affected(),
            exports,
            jobs: jobs.rows_affected(),
            tokens,
            shops,
            settings,
        })
    }

    #[tracing::instrument(skip_all)]
    async fn vip_settings(&self, shop: &str) -> Result<Option<VipSettings>, StoreError> {
        let row: Option<VipSettingsRow> = sqlx::query_as(&format!(
            "select {VIP_SETTINGS_COLUMNS} from vip_settings where shop = ?1"
        ))
        .bind(shop)
        .fetch_optional(&self.readers)
        .await
        .map_err(db_error)?;
        row.map(VipSettingsRow::into_settings).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn save_vip_settings(
        &self,
        shop: &str,
        config: &str,
        job: &NewJob,
        now: Timestamp,
    ) -> Result<Option<VipSettings>, StoreError> {
        let mut writer = self.write_conn().await?;
        let mut tx = begin_immediate(&mut writer).await?;
        let known: bool =
            sqlx::query_scalar("select exists (select 1 from shops where domain = ?1)")
                .bind(shop)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_error)?;
        if !known {
            return Ok(None);
        }
        let job_id: i64 = sqlx::query_scalar(
            "insert into jobs (shop, kind, payload, receipt_id, status, attempts, max_attempts, run_at, created_at, updated_at)
             values (?1, ?2, ?3, ?4, 'queued', 0, ?5, ?6, ?7, ?7)
             returning id",
        )
        .bind(&job.shop)
        .bind(&job.kind)
        .bind(&job.payload)
        .bind(job.receipt_id)
        .bind(job.max_attempts)
        .bind(millis(job.run_at))
        .bind(millis(now))
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
        let row: VipSettingsRow = sqlx::query_as(&format!(
            "insert into vip_settings (shop, config, version, sync_job_id, sync_status, sync_error, created_at, updated_at)
             values (?1, ?2, 1, ?3, 'pending', null, ?4, ?4)
             on conflict (shop) do update set
                 config = excluded.config,
                 version = vip_settings.version + 1,
                 sync_job_id = excluded.sync_job_id,
                 sync_status = 'pending',
                 sync_error = null,
                 updated_at = excluded.updated_at
             returning {VIP_SETTINGS_COLUMNS}"
        ))
        .bind(shop)
        .bind(config)
        .bind(job_id)
        .bind(millis(now))
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        row.into_settings().map(Some)
    }

    #[tracing::instrument(skip_all)]
    async fn claim_vip_sync(
        &self,
        shop: &str,
        holder: &str,
        lease_until: Timestamp,
        now: Timestamp,
    ) -> Result<VipSyncClaim, StoreError> {
        let mut writer = self.write_conn().await?;
        let mut tx = begin_immediate(&mut writer).await?;
        let claim = match claim_lease::<VipSettingsRow>(
            &mut tx,
            &VIP_SYNC_LEASE,
            shop,
            holder,
            lease_until,
            now,
        )
        .await?
        {
            Lease::Claimed(row) => VipSyncClaim::Claimed(row.into_settings()?),
            Lease::Busy => VipSyncClaim::Busy,
            Lease::Missing => VipSyncClaim::NoSettings,
        };
        tx.commit().await.map_err(db_error)?;
        Ok(claim)
    }

    #[tracing::instrument(skip_all)]
    async fn finish_vip_sync(
        &self,
        shop: &str,
        holder: &str,
        outcome: &VipSyncOutcome,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let r = VipSyncRecord::of(outcome);
        // Status and error only for the latest version; what Shopify carries in any case.
        let done = sqlx::query(
            "update vip_settings set
                 sync_holder = null, sync_lease_until = null,
                 discount_id = coalesce(?3, discount_id),
                 synced_version = case when ?6 and (synced_version is null or ?4 >= synced_version)
                                       then ?4 else synced_version end,
                 synced_at = case when ?6 and (synced_version is null or ?4 >= synced_version)
                                  then ?7 else synced_at end,
                 sync_status = case when ?4 = version and ?5 is not null then ?5 else sync_status end,
                 sync_error = case when ?4 = version and ?5 is not null then ?8 else sync_error end,
                 updated_at = ?7
             where shop = ?1 and sync_holder = ?2",
        )
        .bind(shop)
        .bind(holder)
        .bind(r.discount_id)
        .bind(r.version)
        .bind(r.status)
        .bind(r.synced)
        .bind(millis(now))
        .bind(r.error)
        .execute(&mut *self.write_conn().await?)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }
}

/// Takes a per-shop lease (see [`LeaseRow`]) inside the caller's transaction.
async fn claim_lease<R>(
    tx: &mut Transaction<'_, Sqlite>,
    lease: &LeaseRow,
    shop: &str,
    holder: &str,
    lease_until: Timestamp,
    now: Timestamp,
) -> Result<Lease<R>, StoreError>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
{
    let row: Option<R> = sqlx::query_as(&lease.claim_sql('?'))
        .bind(shop)
        .bind(holder)
        .bind(millis(lease_until))
        .bind(millis(now))
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_error)?;
    if let Some(row) = row {
        return Ok(Lease::Claimed(row));
    }
    let exists: bool = sqlx::query_scalar(&lease.exists_sql('?'))
        .bind(shop)
        .fetch_one(&mut **tx)
        .await
        .map_err(db_error)?;
    Ok(if exists { Lease::Busy } else { Lease::Missing })
}

/// `BEGIN IMMEDIATE`: take the write lock up front, so a second process on the same file makes
/// this wait (busy timeout) rather than fail halfway through.
async fn begin_immediate(
    conn: &mut SqliteConnection,
) -> Result<Transaction<'_, Sqlite>, StoreError> {
    conn.begin_with("BEGIN IMMEDIATE").await.map_err(db_error)
}
