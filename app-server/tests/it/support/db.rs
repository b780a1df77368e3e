//! A fresh database per test: a SQLite file in a temporary directory, or a new PostgreSQL
//! database `keel_test_<uuid>` on the throwaway cluster named by `KEEL_TEST_POSTGRES_URL`
//! (the README's test command starts that cluster). Tests are never skipped: without the
//! variable, a PostgreSQL test panics and says what to run.
//!
//! Besides the store, a `TestDb` answers raw questions about its rows, so tests can check what
//! was really written rather than only what the store reports.

use keel::store::{self, DynStore};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::{Connection, PgConnection, PgPool, SqlitePool};
use tempfile::TempDir;

/// Connections per pool a test opens; many tests run at once against one cluster.
const TEST_POOL_SIZE: u32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestDb {
    backend: Backend,
    url: String,
    /// Keeps the SQLite file's directory alive as long as the test holds the database.
    _dir: Option<TempDir>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => TestDb::sqlite().await,
            Backend::Postgres => TestDb::postgres().await,
        }
    }

    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("a temporary directory for the SQLite file");
        // A subdirectory that does not exist yet: connecting must create it, as for keel-data/.
        let url = format!(
            "sqlite://{}",
            dir.path().join("data").join("keel.db").display()
        );
        TestDb {
            backend: Backend::Sqlite,
            url,
            _dir: Some(dir),
        }
    }

    pub async fn postgres() -> TestDb {
        let admin_url = std::env::var("KEEL_TEST_POSTGRES_URL").unwrap_or_else(|_| {
            panic!(
                "KEEL_TEST_POSTGRES_URL is not set: run the tests with the README's test command, which \
                 starts a throwaway PostgreSQL cluster and sets it (tests are never skipped)"
            )
        });
        let name = format!("keel_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!("cannot reach the test cluster at KEEL_TEST_POSTGRES_URL: {e}")
        });
        sqlx::query(&format!("create database {name}"))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let _ = admin.close().await;
        let mut url = url::Url::parse(&admin_url).expect("KEEL_TEST_POSTGRES_URL is a URL");
        url.set_path(&format!("/{name}"));
        TestDb {
            backend: Backend::Postgres,
            url: url.to_string(),
            _dir: None,
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// A new store on this database, connected and migrated. Call twice for two "replicas".
    pub async fn store(&self) -> DynStore {
        let store = self.connect().await;
        store.migrate().await.expect("migrations apply");
        store
    }

    /// A new store on this database, connected but not migrated.
    pub async fn connect(&self) -> DynStore {
        store::connect(&self.url, TEST_POOL_SIZE)
            .await
            .expect("the store connects")
    }

    /// A raw pool beside the store, for asserting on rows.
    pub async fn raw(&self) -> RawDb {
        match self.backend {
            Backend::Sqlite => RawDb::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect(&self.url)
                    .await
                    .expect("raw SQLite pool"),
            ),
            Backend::Postgres => RawDb::Postgres(
                PgPoolOptions::new()
                    .max_connections(1)
                    .connect(&self.url)
                    .await
                    .expect("raw PostgreSQL pool"),
            ),
        }
    }
}

/// Direct access to the test database. SQL here must be valid on both backends; `$1`-style
/// parameters work on both.
pub enum RawDb {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl RawDb {
    /// `select count(*) from {table} where {column} = $1`.
    pub async fn count(&self, table: &str, column: &str, value: &str) -> i64 {
        let sql = format!("select count(*) from {table} where {column} = $1");
        match self {
            RawDb::Sqlite(p) => sqlx::query_scalar(&sql).bind(value).fetch_one(p).await,
            RawDb::Postgres(p) => sqlx::query_scalar(&sql).bind(value).fetch_one(p).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Rows of every Keel table that belong to `shop`, as (table, count), including jobs that
    /// belong to it only through their receipt.
    pub async fn rows_of_shop(&self, shop: &str) -> Vec<(&'static str, i64)> {
        vec![
            ("shops", self.count("shops", "domain", shop).await),
            ("shop_tokens", self.count("shop_tokens", "shop", shop).await),
            ("receipts", self.count("receipts", "shop", shop).await),
            (
                "jobs",
                self.count(
                    "jobs",
                    "coalesce(shop, (select r.shop from receipts r where r.id = jobs.receipt_id))",
                    shop,
                )
                .await,
            ),
            (
                "data_exports",
                self.count("data_exports", "shop", shop).await,
            ),
            (
                "vip_settings",
                self.count("vip_settings", "shop", shop).await,
            ),
        ]
    }

    /// One text column of one row by id, e.g. a job's `status` or `last_error`.
    pub async fn text(&self, table: &str, column: &str, id: i64) -> Option<String> {
        let sql = format!("select {column} from {table} where id = $1");
        match self {
            RawDb::Sqlite(p) => sqlx::query_scalar(&sql).bind(id).fetch_one(p).await,
            RawDb::Postgres(p) => sqlx::query_scalar(&sql).bind(id).fetch_one(p).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// One bigint column of one row by id, e.g. a job's `run_at` or `attempts` (cast to bigint).
    pub async fn int(&self, table: &str, column: &str, id: i64) -> Option<i64> {
        let sql = format!("select cast({column} as bigint) from {table} where id = $1");
        match self {
            RawDb::Sqlite(p) => sqlx::query_scalar(&sql).bind(id).fetch_one(p).await,
            RawDb::Postgres(p) => sqlx::query_scalar(&sql).bind(id).fetch_one(p).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The statuses of the jobs pointing at a receipt, oldest first.
    pub async fn job_statuses_of_receipt(&self, receipt_id: i64) -> Vec<String> {
        let sql = "select status from jobs where receipt_id = $1 order by id";
        match self {
            RawDb::Sqlite(p) => sqlx::query_scalar(sql).bind(receipt_id).fetch_all(p).await,
            RawDb::Postgres(p) => sqlx::query_scalar(sql).bind(receipt_id).fetch_all(p).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub async fn close(self) {
        match self {
            RawDb::Sqlite(p) => p.close().await,
            RawDb::Postgres(p) => p.close().await,
        }
    }
}
