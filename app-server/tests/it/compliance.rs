//! The mandatory privacy topics, end to end: data request kept for the merchant, customer and
//! shop redaction with the data really gone from every table.

use crate::on_both_backends;
use crate::support::db::{Backend, TestDb};
use crate::support::TestKeel;
use keel::store::CustomerRef;
use shopify_sim::{ComplianceCustomer, WebhookDelivery};

const SHOP: &str = "privacy-shop.myshopify.com";
const OTHER: &str = "other-shop.myshopify.com";
const EMAIL: &str = "john@example.com";

/// Every table of Keel's schema on both backends.
const TABLES: [&str; 6] = [
    "shops",
    "shop_tokens",
    "receipts",
    "jobs",
    "data_exports",
    "vip_settings",
];

/// Rows anywhere in Keel's tables whose text mentions `needle` (a raw scan, not the store API,
/// so a forgotten column or table shows up).
async fn rows_mentioning(db: &TestDb, needle: &str) -> i64 {
    let like = format!("%{needle}%");
    match db.backend() {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(db.url()).await.unwrap();
            let schema: Vec<String> = sqlx::query_scalar(
                "select name from sqlite_master where type = 'table'
                 and name not in ('_sqlx_migrations', 'sqlite_sequence') order by name",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            // SQLite's webhook promotion mark (one number) is scanned like the rest.
            let tables = [&TABLES[..], &["webhook_promotion"]].concat();
            assert_scans_every_table(schema, &tables);
            let mut total = 0;
            for table in tables {
                let columns: Vec<String> =
                    sqlx::query_scalar(&format!("select name from pragma_table_info('{table}')"))
                        .fetch_all(&pool)
                        .await
                        .unwrap();
                let cond = columns
                    .iter()
                    .map(|c| format!("cast({c} as text) like ?1"))
                    .collect::<Vec<_>>()
                    .join(" or ");
                let n: i64 =
                    sqlx::query_scalar(&format!("select count(*) from {table} where {cond}"))
                        .bind(&like)
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                total += n;
            }
            total
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(db.url()).await.unwrap();
            let schema: Vec<String> = sqlx::query_scalar(
                "select table_name::text from information_schema.tables
                 where table_schema = 'public' and table_name <> '_sqlx_migrations' order by table_name",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            assert_scans_every_table(schema, &TABLES);
            let mut total = 0;
            for table in TABLES {
                let n: i64 = sqlx::query_scalar(&format!(
                    "select count(*) from {table} t where t::text like $1"
                ))
                .bind(&like)
                .fetch_one(&pool)
                .await
                .unwrap();
                total += n;
            }
            total
        }
    }
}

/// A table added by a migration but missing from [`TABLES`] would escape the scan.
fn assert_scans_every_table(schema: Vec<String>, tables: &[&str]) {
    let mut scanned: Vec<&str> = tables.to_vec();
    scanned.sort_unstable();
    assert_eq!(
        schema, scanned,
        "the raw scan must cover every table of the schema"
    );
}

fn john() -> ComplianceCustomer {
    ComplianceCustomer {
        id: Some(191167),
        email: Some(EMAIL.into()),
        phone: Some("555-625-1199".into()),
    }
}

fn someone_else() -> ComplianceCustomer {
    ComplianceCustomer {
        id: Some(5),
        email: Some("someone@else.com".into()),
        phone: None,
    }
}

fn customer() -> CustomerRef {
    CustomerRef {
        id: Some(191167),
        email: Some(EMAIL.into()),
    }
}

on_both_backends! {
    async fn data_request_assembles_what_keel_holds_and_keeps_it_for_the_merchant(backend: Backend) {
        let keel = TestKeel::spawn(backend).await;
        keel.install(SHOP).await;
        let d = WebhookDelivery::customers_data_request(SHOP, &john(), &[299938], 9999);
        assert_eq!(keel.sim.send_webhook(&keel.webhook_url(), d).await[0].status, Some(200));
        keel.drain_jobs().await;
        let exports = keel.state.store.data_exports(SHOP).await.unwrap();
        assert_eq!(exports.len(), 1);
        let report = &exports[0].report;
        assert_eq!(report["customer"]["id"], 191167);
        assert_eq!(report["data_request_id"], 9999);
        let payloads = report["webhook_payloads"].as_array().unwrap();
        assert!(payloads.iter().any(|p| p["topic"] == "customers/data_request"), "{report}");
    }

    async fn customer_redact_erases_the_customer_everywhere_and_only_them(backend: Backend) {
        let keel = TestKeel::spawn(backend).await;
        keel.install(SHOP).await;
        let url = keel.webhook_url();
        keel.sim.send_webhook(&url, WebhookDelivery::customers_data_request(SHOP, &john(), &[299938], 9999)).await;
        keel.sim.send_webhook(&url, WebhookDelivery::customers_data_request(SHOP, &someone_else(), &[], 10000)).await;
        keel.drain_jobs().await;
        assert!(rows_mentioning(&keel.db, EMAIL).await > 0);

        let r = keel.sim.send_webhook(&url, WebhookDelivery::customers_redact(SHOP, &john(), &[299938])).await;
        assert_eq!(r[0].status, Some(200));
        keel.drain_jobs().await;

        assert_eq!(rows_mentioning(&keel.db, EMAIL).await, 0, "no row may still mention the customer");
        assert_eq!(rows_mentioning(&keel.db, "191167").await, 0);
        let held = keel.state.store.customer_data(SHOP, &customer()).await.unwrap();
        assert!(held.receipts.is_empty() && held.exports.is_empty());
        // The other customer's data is untouched.
        assert!(rows_mentioning(&keel.db, "someone@else.com").await > 0);
        assert_eq!(keel.state.store.job_counts().await.unwrap().dead, 0);
    }

    async fn redact_by_email_only_still_finds_the_customer(backend: Backend) {
        let keel = TestKeel::spawn(backend).await;
        keel.install(SHOP).await;
        let url = keel.webhook_url();
        keel.sim.send_webhook(&url, WebhookDelivery::customers_data_request(SHOP, &john(), &[299938], 9999)).await;
        let email_only = ComplianceCustomer { id: None, email: Some(EMAIL.into()), phone: None };
        keel.sim.send_webhook(&url, WebhookDelivery::customers_redact(SHOP, &email_only, &[])).await;
        keel.drain_jobs().await;
        assert_eq!(rows_mentioning(&keel.db, EMAIL).await, 0);
    }

    async fn shop_redact_after_uninstall_erases_the_shop_and_nothing_else(backend: Backend) {
        let keel = TestKeel::spawn(backend).await;
        keel.install(SHOP).await;
        keel.install(OTHER).await;
        let url = keel.webhook_url();
        for shop in [SHOP, OTHER] {
            keel.sim.send_webhook(&url, WebhookDelivery::customers_data_request(shop, &john(), &[299938], 9999)).await;
        }
        // VIP settings, synced to a discount: the shop's too.
        let saved = keel.put_settings(&keel.session_token(SHOP), &serde_json::json!({
            "tiers": [{"name": "Gold", "percentage": "15"}]
        }).to_string()).await;
        assert_eq!(saved.status(), 200);
        keel.sim.send_webhook(&url, WebhookDelivery::app_uninstalled(SHOP)).await;
        keel.drain_jobs().await;
        assert!(keel.state.store.vip_settings(SHOP).await.unwrap().is_some(), "uninstall keeps the settings");
        // Shopify sends shop/redact about 48 hours after uninstall.
        keel.clock.advance(chrono::Duration::hours(48));
        let r = keel.sim.send_webhook(&url, WebhookDelivery::shop_redact(SHOP)).await;
        assert_eq!(r[0].status, Some(200));
        keel.drain_jobs().await;

        assert!(keel.state.store.shop(SHOP).await.unwrap().is_none());
        assert!(keel.state.store.token(SHOP).await.unwrap().is_none());
        assert!(keel.state.store.data_exports(SHOP).await.unwrap().is_empty());
        assert!(keel.state.store.vip_settings(SHOP).await.unwrap().is_none());
        let left = keel.state.store.receipts(SHOP, 100).await.unwrap();
        assert!(left.iter().all(|r| r.topic == "shop/redact" && r.payload.is_none()), "{left:?}");
        assert_eq!(rows_mentioning(&keel.db, SHOP).await, left.len() as i64 + keel_jobs_for(&keel, SHOP).await);
        // The other shop is untouched.
        assert!(keel.state.store.shop(OTHER).await.unwrap().unwrap().installed);
        assert_eq!(keel.state.store.data_exports(OTHER).await.unwrap().len(), 1);
        // A repeated shop/redact for the erased shop is acknowledged and ignored.
        let r = keel.sim.send_webhook(&url, WebhookDelivery::shop_redact(SHOP)).await;
        assert_eq!(r[0].status, Some(200));
        assert_eq!(keel.state.store.job_counts().await.unwrap().queued, 0);
    }
}

/// Jobs rows kept for the shop (the shop/redact job itself).
async fn keel_jobs_for(keel: &TestKeel, shop: &str) -> i64 {
    let like = shop.to_owned();
    match keel.db.backend() {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(keel.db.url()).await.unwrap();
            sqlx::query_scalar("select count(*) from jobs where shop = ?1")
                .bind(like)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(keel.db.url()).await.unwrap();
            sqlx::query_scalar("select count(*) from jobs where shop = $1")
                .bind(like)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    }
}
