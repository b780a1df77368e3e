//! Test support: fresh databases per test (SQLite file or PostgreSQL database), Keel spawned on
//! port 0 against its own shopify-sim, a hand-moved clock, and helpers per endpoint.

pub mod db;

use db::{Backend, TestDb};
use keel::clock::ManualClock;
use keel::config::Config;
use keel::AppState;
use shopify_sim::{SessionTokenOptions, Sim, SimConfig};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub const API_KEY: &str = "keel-test-client-id";
pub const API_SECRET: &str = "keel-test-client-secret";

/// Logs only with TEST_LOG=1, so failures stay readable.
pub fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        keel::telemetry::init(keel::config::LogFormat::Human);
    }
}

/// Keel on port 0 with its own database, simulator and clock. No background workers: tests
/// run jobs with [`TestKeel::drain_jobs`], so nothing happens behind their back.
pub struct TestKeel {
    pub url: String,
    pub state: AppState,
    pub sim: Sim,
    pub clock: ManualClock,
    pub db: TestDb,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
}

impl TestKeel {
    pub async fn spawn(backend: Backend) -> TestKeel {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestKeel {
        init_logs();
        let sim = Sim::spawn(SimConfig {
            api_key: API_KEY.into(),
            api_secret: API_SECRET.into(),
            ..SimConfig::default()
        })
        .await;
        let db = TestDb::new(backend).await;
        let store = db.store().await;
        let origin = url::Url::parse(sim.origin()).expect("sim origin");
        let mut config = Config::for_local(API_KEY, API_SECRET, db.url(), Some(origin));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        config.app_url = url::Url::parse(&format!("http://{addr}")).expect("app url");
        tweak(&mut config);
        let clock = ManualClock::starting_now();
        let state = AppState::with_store(config, Arc::new(clock.clone()), store).expect("state");
        let shutdown = CancellationToken::new();
        tokio::spawn(keel::app::run(
            state.clone(),
            vec![listener],
            0,
            shutdown.clone(),
        ));
        TestKeel {
            url: format!("http://{addr}"),
            state,
            sim,
            clock,
            db,
            http: reqwest::Client::new(),
            shutdown,
        }
    }

    pub fn webhook_url(&self) -> String {
        format!("{}/webhooks", self.url)
    }

    /// Run every due job now.
    pub async fn drain_jobs(&self) -> usize {
        keel::jobs::run_until_idle(&self.state)
            .await
            .expect("drain jobs")
    }

    pub fn session_token(&self, shop: &str) -> String {
        // Minted for Keel's clock, which tests move ahead of the wall clock.
        let offset = (self.clock.now() - chrono::Utc::now()).num_seconds();
        let defaults = SessionTokenOptions::default();
        self.sim.session_token(
            shop,
            SessionTokenOptions {
                exp_in_secs: defaults.exp_in_secs + offset,
                nbf_offset_secs: offset,
                iat_offset_secs: offset,
                ..defaults
            },
        )
    }

    /// `GET /api/shop` with a session token.
    pub async fn get_shop(&self, token: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/api/shop", self.url))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET /api/shop")
    }

    /// `GET /api/settings` with a session token.
    pub async fn get_settings(&self, token: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/api/settings", self.url))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET /api/settings")
    }

    /// `PUT /api/settings` with a session token and a raw body.
    pub async fn put_settings(&self, token: &str, body: &str) -> reqwest::Response {
        self.http
            .put(format!("{}/api/settings", self.url))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("PUT /api/settings")
    }

    /// Install the app on `shop` in the simulator and let Keel obtain its token, as the first
    /// open of the embedded app does.
    pub async fn install(&self, shop: &str) {
        self.sim
            .install_shop(shop, ["read_customers", "write_customers"]);
        let response = self.get_shop(&self.session_token(shop)).await;
        assert_eq!(
            response.status(),
            200,
            "install of {shop}: {}",
            response.text().await.unwrap_or_default()
        );
    }
}

impl Drop for TestKeel {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Expand each `async fn name(backend: Backend)` into one test per backend, so the same story
/// runs on SQLite and PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($(async fn $name:ident($backend:ident: Backend) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                async fn story($backend: $crate::support::db::Backend) $body
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn on_sqlite() { story($crate::support::db::Backend::Sqlite).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn on_postgres() { story($crate::support::db::Backend::Postgres).await }
            }
        )*
    };
}
