//! The PostgreSQL backend, for several `keel serve` replicas sharing one database.
//!
//! Owns the pool, the server version check, PostgreSQL's SQL for every `Store` method and the
//! mapping of PostgreSQL errors to [`StoreError`]. Times are stored as bigint unix milliseconds
//! handed in by the caller, never `now()`, so the app's clock (a test's manual clock) governs
//! leases, schedules and expiries exactly as on SQLite.
//!
//! Concurrency is row locks, not a single writer: job claims use `FOR UPDATE SKIP LOCKED`, the
//! refresh lease is a conditional update, and receipts deduplicate on their unique key (each
//! batch inserting in key order, so batches never deadlock). Writes that touch a shop's row and
//! its token lock the `shops` row first, so they queue rather than deadlock.

use super::rows::{
    admit, into_customer_data, job_counts, migrations_match, millis, opt_time, store_error,
    Admission, BatchPlan, ExportRow, JobRow, Lease, LeaseRow, ReceiptRow, ShopRow, TokenRow,
    VipSettingsRow, VipSyncRecord, EXPORT_COLUMNS, JOB_COLUMNS, PAUSED_SHOPS_EXCLUDED,
    RECEIPT_COLUMNS, REFRESH_LEASE, TOKEN_COLUMNS, UNINSTALLED_BEFORE_SYNC, VIP_SETTINGS_COLUMNS,
    VIP_SYNC_LEASE, WEBHOOK_JOB_MAX_ATTEMPTS,
};
use super::{
    webhook_job_kind, CustomerData, CustomerRef, DataExport, IgnoreReason, Job, JobCounts, NewJob,
    NewToken, NewWebhook, Receipt, RedactCounts, RefreshClaim, Shop, Store, StoreError, Timestamp,
    TokenRecord, VipSettings, VipSyncClaim, VipSyncOutcome, WebhookRecorded,
};
use async_trait::async_trait;
use sqlx::error::DatabaseError;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder, Transaction};
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: Migrator = sqlx::migrate!("../migrations/postgres");

/// `server_version_num` of the oldest supported server (13.0).
const MIN_SERVER_VERSION: i32 = 130_000;
/// How long a caller waits for a pooled connection before the store answers `Unavailable`
/// (a 503 that Shopify and Flow retry).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connect with at most `max_connections` pooled connections and refuse servers older than
    /// PostgreSQL 13. Migrations are not run.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(db_error)?
            .application_name("keel");
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(db_error)?;
        let (number, version): (i32, String) = sqlx::query_as(
            "select current_setting('server_version_num')::int, current_setting('server_version')",
        )
        .fetch_one(&pool)
        .await
        .map_err(db_error)?;
        if number < MIN_SERVER_VERSION {
            pool.close().await;
            return Err(StoreError::Database(
                sqlx::Error::Configuration(
                    format!(
                    "Keel needs PostgreSQL 13 or newer, and this server runs PostgreSQL {version}"
                )
                    .into(),
                )
                .into(),
            ));
        }
        Ok(Self { pool })
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.map_err(db_error)
    }
}

/// The one mapping of PostgreSQL errors. Besides pool and I/O failures, the server's own
/// "try again" answers are `Unavailable`: serialization failures and deadlocks (class 40),
/// lost connections (08), too many connections (53300) and shutdowns (57P01-57P03).
fn db_error(e: sqlx::Error) -> StoreError {
    store_error(e, is_transient)
}

fn is_transient(d: &dyn DatabaseError) -> bool {
    d.code().is_some_and(|sqlstate| {
        sqlstate.starts_with("40")
            || sqlstate.starts_with("08")
            || matches!(&*sqlstate, "53300" | "57P01" | "57P02" | "57P03")
    })
}

/// Run `sql`, a delete of one shop's rows (the shop is `$1`), in the caller's transaction;
/// answers how many rows went.
async fn delete_shop_rows(
    tx: &mut Transaction<'static, Postgres>,
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
const ABOUT_CUSTOMER: &str = "shop = $1 and (customer_id = $2 or customer_email = $3)";

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    #[tracing::instrument(skip_all)]
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("select 1")
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn migrations_current(&self) -> Result<bool, StoreError> {
        let table: bool = sqlx::query_scalar("select to_regclass('_sqlx_migrations') is not null")
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        let applied: Vec<(i64, Vec<u8>, bool)> = if table {
            sqlx::query_as("select version, checksum, success from _sqlx_migrations")
                .fetch_all(&self.pool)
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
        let mut tx = self.begin().await?;
        // `authorized_at` moves on every install, even of an installed shop: a token exchange
        // proves the app was installed at that moment, so an older uninstall webhook still in
        // the queue must not undo it (see `uninstall_shop`).
        let version: i64 = sqlx::query_scalar(
            "insert into shops (domain, installed, scopes, installed_at, authorized_at, needs_reauth, token_version, created_at, updated_at)
             values ($1, true, $2, $3, $3, false, 1, $3, $3)
             on conflict (domain) do update set
                 installed = true,
                 scopes = excluded.scopes,
                 installed_at = case when shops.installed then shops.installed_at else excluded.installed_at end,
                 authorized_at = excluded.authorized_at,
                 uninstalled_at = null,
                 needs_reauth = false,
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
             values ($1, $2, $3, $4, $5, $6, $7, $8, $8)
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
             from shops where domain = $1",
        )
        .bind(shop)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        row.map(ShopRow::into_shop).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn token(&self, shop: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row: Option<TokenRow> = sqlx::query_as(&format!(
            "select {TOKEN_COLUMNS} from shop_tokens where shop = $1"
        ))
        .bind(shop)
        .fetch_optional(&self.pool)
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
        let mut tx = self.begin().await?;
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
                 where shop = $1 and refresh_holder = $2",
            )
            .bind(shop)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
            return Ok(done.rows_affected() > 0);
        };
        let mut tx = self.begin().await?;
        let version: Option<i64> = sqlx::query_scalar(
            "update shops set token_version = token_version + 1, updated_at = $3
             where domain = $1 and exists (select 1 from shop_tokens where shop = $1 and refresh_holder = $2)
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
                 access_token = $3, access_expires_at = $4, refresh_token = $5, refresh_expires_at = $6,
                 scope = $7, version = $8, refresh_holder = null, refresh_lease_until = null, updated_at = $9
             where shop = $1 and refresh_holder = $2",
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
        let mut tx = self.begin().await?;
        sqlx::query("update shops set needs_reauth = true, updated_at = $2 where domain = $1")
            .bind(shop)
            .bind(millis(now))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        delete_shop_rows(&mut tx, "delete from shop_tokens where shop = $1", shop).await?;
        tx.commit().await.map_err(db_error)
    }

    #[tracing::instrument(skip_all)]
    async fn set_scopes(
        &self,
        shop: &str,
        scopes: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("update shops set scopes = $2, updated_at = $3 where domain = $1")
            .bind(shop)
            .bind(scopes)
            .bind(millis(now))
            .execute(&self.pool)
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
        let mut tx = self.begin().await?;
        // `authorized_at` is the latest token exchange: if it is newer than the uninstall, the
        // merchant reinstalled after it (possibly before Keel processed this uninstall).
        let done = sqlx::query(
            "update shops set installed = false, uninstalled_at = $2, updated_at = $3
             where domain = $1 and installed and coalesce(authorized_at, installed_at, 0) <= $2",
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
        delete_shop_rows(&mut tx, "delete from shop_tokens where shop = $1", shop).await?;
        sqlx::query(
            "update jobs set status = 'cancelled', locked_by = null, locked_until = null, finished_at = $2, updated_at = $2
             where shop = $1 and status = 'queued' and kind <> all($3)",
        )
        .bind(shop)
        .bind(millis(now))
        .bind(keep_kinds)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        // A save whose sync job was just cancelled will not reach Shopify: say so.
        sqlx::query(
            "update vip_settings set sync_status = 'failed', sync_error = $2, updated_at = $3
             where shop = $1 and sync_status = 'pending'
               and sync_job_id in (select id from jobs where shop = $1 and status = 'cancelled')",
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
        record_webhooks_batch(self, &batch, now).await
    }

    #[tracing::instrument(skip_all)]
    async fn receipt(&self, id: i64) -> Result<Option<Receipt>, StoreError> {
        let row: Option<ReceiptRow> = sqlx::query_as(&format!(
            "select {RECEIPT_COLUMNS} from receipts where id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
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
        sqlx::query("update receipts set status = $2, updated_at = $3 where id = $1")
            .bind(id)
            .bind(status)
            .bind(millis(now))
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn receipts(&self, shop: &str, limit: i64) -> Result<Vec<Receipt>, StoreError> {
        let rows: Vec<ReceiptRow> = sqlx::query_as(&format!(
            "select {RECEIPT_COLUMNS} from receipts where shop = $1 order by received_at desc, id desc limit $2"
        ))
        .bind(shop)
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.into_iter().map(ReceiptRow::into_receipt).collect()
    }

    #[tracing::instrument(skip_all)]
    async fn enqueue_job(&self, job: &NewJob, now: Timestamp) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "insert into jobs (shop, kind, payload, receipt_id, status, attempts, max_attempts, run_at, created_at, updated_at)
             values ($1, $2, $3, $4, 'queued', 0, $5, $6, $7, $7)
             returning id",
        )
        .bind(&job.shop)
        .bind(&job.kind)
        .bind(&job.payload)
        .bind(job.receipt_id)
        .bind(job.max_attempts)
        .bind(millis(job.run_at))
        .bind(millis(now))
        .fetch_one(&self.pool)
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
        // The claim is one statement, so its transaction is as short as it gets: lock the oldest
        // due row nobody else is locking, set the lease, commit. The job then runs outside any
        // transaction. A row another claimer took and committed meanwhile fails the re-check
        // under its new version and the scan moves on to the next one.
        // Oldest first by run_at: a job whose lease expired has waited since its run_at too. A
        // running job was due when claimed, so `run_at <= now` holds for every candidate and
        // bounds the index scan when nothing is due.
        let row: Option<JobRow> = sqlx::query_as(&format!(
            "with next as (
                 select id as next_id from jobs
                 where status in ('queued', 'running') and run_at <= $3
                   and (status = 'queued' or locked_until <= $3)
                   and {PAUSED_SHOPS_EXCLUDED}
                 order by run_at, id
                 limit 1
                 for update skip locked
             )
             update jobs set status = 'running', locked_by = $1, locked_until = $2, attempts = attempts + 1, updated_at = $3
             from next
             where jobs.id = next.next_id
             returning {JOB_COLUMNS}"
        ))
        .bind(worker)
        .bind(millis(lease_until))
        .bind(millis(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        row.map(JobRow::into_job).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn complete_job(
        &self,
        id: i64,
        worker: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "update jobs set status = 'done', locked_until = null, finished_at = $3, updated_at = $3
             where id = $1 and status = 'running' and locked_by = $2",
        )
        .bind(id)
        .bind(worker)
        .bind(millis(now))
        .execute(&self.pool)
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
            "update jobs set status = 'queued', run_at = $3, last_error = $4, locked_by = null, locked_until = null, updated_at = $5
             where id = $1 and status = 'running' and locked_by = $2",
        )
        .bind(id)
        .bind(worker)
        .bind(millis(run_at))
        .bind(error)
        .bind(millis(now))
        .execute(&self.pool)
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
            "update jobs set status = 'dead', last_error = $3, locked_until = null, finished_at = $4, updated_at = $4
             where id = $1 and status = 'running' and locked_by = $2",
        )
        .bind(id)
        .bind(worker)
        .bind(error)
        .bind(millis(now))
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }

    #[tracing::instrument(skip_all)]
    async fn job_counts(&self) -> Result<JobCounts, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("select status, count(*) from jobs group by status")
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
        job_counts(rows)
    }

    #[tracing::instrument(skip_all)]
    async fn next_job_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let due: Option<i64> =
            sqlx::query_scalar("select min(run_at) from jobs where status = 'queued'")
                .fetch_one(&self.pool)
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
        // One snapshot for receipts and exports.
        let mut tx = self.begin().await?;
        sqlx::query("set transaction isolation level repeatable read, read only")
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
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
             values ($1, $2, $3, $4, $5, $6, $6)
             returning id",
        )
        .bind(shop)
        .bind(customer.id)
        .bind(&customer.email)
        .bind(data_request_id)
        .bind(Json(report))
        .bind(millis(now))
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)
    }

    #[tracing::instrument(skip_all)]
    async fn data_exports(&self, shop: &str) -> Result<Vec<DataExport>, StoreError> {
        let rows: Vec<ExportRow> = sqlx::query_as(&format!(
            "select {EXPORT_COLUMNS} from data_exports where shop = $1 order by created_at desc, id desc"
        ))
        .bind(shop)
        .fetch_all(&self.pool)
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
        let mut tx = self.begin().await?;
        let exports = sqlx::query(&format!("delete from data_exports where {ABOUT_CUSTOMER}"))
            .bind(shop)
            .bind(customer.id)
            .bind(&customer.email)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        let receipts = sqlx::query(&format!(
            "update receipts set status = 'redacted', payload = null, customer_id = null, customer_email = null, updated_at = $4
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
        let mut tx = self.begin().await?;
        // The shop's row first, as every write touching a shop and its token does, so a
        // concurrent install or uninstall queues behind this instead of deadlocking with it.
        sqlx::query("select 1 from shops where domain = $1 for update")
            .bind(shop)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
        // Jobs first: they reference receipts. A job belongs to the shop by its own column or by
        // its receipt's.
        let jobs = sqlx::query(
            "delete from jobs
             where (shop = $1 or receipt_id in (select id from receipts where shop = $1))
               and ($2::bigint is null or receipt_id is distinct from $2)",
        )
        .bind(shop)
        .bind(keep_receipt)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let exports =
            delete_shop_rows(&mut tx, "delete from data_exports where shop = $1", shop).await?;
        let tokens =
            delete_shop_rows(&mut tx, "delete from shop_tokens where shop = $1", shop).await?;
        let settings =
            delete_shop_rows(&mut tx, "delete from vip_settings where shop = $1", shop).await?;
        let receipts = sqlx::query(
            "delete from receipts where shop = $1 and ($2::bigint is null or id <> $2)",
        )
        .bind(shop)
        .bind(keep_receipt)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        // The kept receipt stays as proof the request was honoured, with nothing of the shop's
        // data in it. Its updated_at moves when its job marks it done.
        sqlx::query(
            "update receipts set payload = null, customer_id = null, customer_email = null where id = $2 and shop = $1",
        )
        .bind(shop)
        .bind(keep_receipt)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let shops = delete_shop_rows(&mut tx, "delete from shops where domain = $1", shop).await?;
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
            "select {VIP_SETTINGS_COLUMNS} from vip_settings where shop = $1"
        ))
        .bind(shop)
        .fetch_optional(&self.pool)
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
        let mut tx = self.begin().await?;
        // The shop's row first, as every write touching a shop does: a concurrent shop/redact
        // queues behind this save (or this save finds the shop gone), never half of each.
        let known = sqlx::query("select 1 from shops where domain = $1 for update")
            .bind(shop)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?
            .is_some();
        if !known {
            return Ok(None);
        }
        let job_id: i64 = sqlx::query_scalar(
            "insert into jobs (shop, kind, payload, receipt_id, status, attempts, max_attempts, run_at, created_at, updated_at)
             values ($1, $2, $3, $4, 'queued', 0, $5, $6, $7, $7)
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
             values ($1, $2, 1, $3, 'pending', null, $4, $4)
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
        let mut tx = self.begin().await?;
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
                 discount_id = coalesce($3::text, discount_id),
                 synced_version = case when $6::boolean and (synced_version is null or $4::bigint >= synced_version)
                                       then $4::bigint else synced_version end,
                 synced_at = case when $6::boolean and (synced_version is null or $4::bigint >= synced_version)
                                  then $7 else synced_at end,
                 sync_status = case when $4::bigint = version and $5::text is not null then $5::text else sync_status end,
                 sync_error = case when $4::bigint = version and $5::text is not null then $8::text else sync_error end,
                 updated_at = $7
             where shop = $1 and sync_holder = $2",
        )
        .bind(shop)
        .bind(holder)
        .bind(r.discount_id)
        .bind(r.version)
        .bind(r.status)
        .bind(r.synced)
        .bind(millis(now))
        .bind(r.error)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }
}

/// Takes a per-shop lease (see [`LeaseRow`]) inside the caller's transaction.
async fn claim_lease<R>(
    tx: &mut Transaction<'static, Postgres>,
    lease: &LeaseRow,
    shop: &str,
    holder: &str,
    lease_until: Timestamp,
    now: Timestamp,
) -> Result<Lease<R>, StoreError>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    let row: Option<R> = sqlx::query_as(&lease.claim_sql('$'))
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
    let exists: bool = sqlx::query_scalar(&lease.exists_sql('$'))
        .bind(shop)
        .fetch_one(&mut **tx)
        .await
        .map_err(db_error)?;
    Ok(if exists { Lease::Busy } else { Lease::Missing })
}

// Read committed: a concurrent copy of a delivery waits on the unique key until the first
// copy's transaction ends, then finds its committed receipt (or inserts if it rolled back).
// Rows are inserted in (shop, key) order, so two batches holding copies of the same
// deliveries never wait on each other in a cycle.
async fn record_webhooks_batch(
    store: &PostgresStore,
    batch: &[NewWebhook],
    now: Timestamp,
) -> Result<Vec<WebhookRecorded>, StoreError> {
    use std::collections::HashMap;
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let now = millis(now);
    // A handful of statements per batch, not per delivery: this is the webhook hot path,
    // and each statement is a round trip to the database.
    let plan = BatchPlan::new(batch, true);
    let mut tx = store.begin().await?;

    let mut shops: Vec<&str> = batch.iter().map(|w| w.shop.as_str()).collect();
    shops.sort_unstable();
    shops.dedup();
    let mut q =
        QueryBuilder::<Postgres>::new("select domain, installed from shops where domain in (");
    let mut list = q.separated(", ");
    for shop in &shops {
        list.push_bind(*shop);
    }
    q.push(")");
    let installed: HashMap<String, bool> = q
        .build_query_as::<(String, bool)>()
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?
        .into_iter()
        .collect();

    let admissions: Vec<(usize, Admission)> = plan
        .firsts
        .iter()
        .map(|&i| (i, admit(&batch[i], installed.get(&batch[i].shop).copied())))
        .collect();
    let mut q = QueryBuilder::<Postgres>::new(
    "insert into receipts (shop, source, topic, dedupe_key, webhook_id, event_id, api_version, triggered_at,
                           status, ignore_reason, payload, customer_id, customer_email, received_at, updated_at) ",
);
    q.push_values(&admissions, |mut row, (i, a)| {
        let w = &batch[*i];
        row.push_bind(&w.shop)
            .push("'webhook'")
            .push_bind(&w.topic)
            .push_bind(&w.dedupe_key)
            .push_bind(&w.webhook_id)
            .push_bind(&w.event_id)
            .push_bind(&w.api_version)
            .push_bind(&w.triggered_at)
            .push_bind(a.status)
            .push_bind(a.ignored.map(IgnoreReason::as_str))
            .push_bind(a.payload)
            .push_bind(a.customer.id)
            .push_bind(&a.customer.email)
            .push_bind(now)
            .push_bind(now);
    });
    q.push(" on conflict (shop, dedupe_key) do nothing returning id, shop, dedupe_key");
    let returned: HashMap<(String, String), i64> = q
        .build_query_as::<(i64, String, String)>()
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(|(id, shop, key)| ((shop, key), id))
        .collect();

    let (mut inserted, mut existing, mut ignored) =
        (HashMap::new(), HashMap::new(), HashMap::new());
    for (i, a) in &admissions {
        let w = &batch[*i];
        match returned.get(&(w.shop.clone(), w.dedupe_key.clone())) {
            Some(&id) => {
                inserted.insert(*i, id);
                if let Some(reason) = a.ignored {
                    ignored.insert(*i, reason);
                }
            }
            // Stored by an earlier batch: a duplicate (rare, so one lookup each is fine).
            None => {
                let id: i64 = sqlx::query_scalar(
                    "select id from receipts where shop = $1 and dedupe_key = $2",
                )
                .bind(&w.shop)
                .bind(&w.dedupe_key)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_error)?;
                existing.insert(*i, id);
            }
        }
    }

    let queued: Vec<(usize, i64)> = admissions
        .iter()
        .filter(|(i, a)| a.ignored.is_none() && inserted.contains_key(i))
        .map(|(i, _)| (*i, inserted[i]))
        .collect();
    if !queued.is_empty() {
        let mut q = QueryBuilder::<Postgres>::new(
        "insert into jobs (shop, kind, payload, receipt_id, status, attempts, max_attempts, run_at, created_at, updated_at) ",
    );
        q.push_values(&queued, |mut row, (i, receipt_id)| {
            let w = &batch[*i];
            row.push_bind(&w.shop)
                .push_bind(webhook_job_kind(&w.topic))
                .push("'{}'")
                .push_bind(*receipt_id)
                .push("'queued'")
                .push("0")
                .push_bind(WEBHOOK_JOB_MAX_ATTEMPTS)
                .push_bind(now)
                .push_bind(now)
                .push_bind(now);
        });
        q.build().execute(&mut *tx).await.map_err(db_error)?;
    }
    tx.commit().await.map_err(db_error)?;
    plan.outcomes(&inserted, &existing, &ignored)
}
