//! Assembling Keel: the shared [`AppState`], start-up (database, migrations, key), and
//! [`serve`]: the HTTP server and the job workers under one shutdown signal.

use crate::access::Access;
use crate::clock::{DynClock, SystemClock};
use crate::config::{Config, EncryptionKey, ShopifyOrigin};
use crate::jobs::{self, Intake};
use crate::secrets::{self, Cipher, SecretsError};
use crate::shopify::admin::{AdminClient, RetryPolicy};
use crate::shopify::domain::DomainPolicy;
use crate::shopify::oauth::AppCredentials;
use crate::shopify::Endpoint;
use crate::store::{self, DynStore, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Every Shopify call's end-to-end timeout.
pub const SHOPIFY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for in-flight requests and jobs before leaving the rest to lease
/// expiry.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

/// Shared by every handler and worker; cheap to clone (one reference count: axum clones the
/// state for every request, and a dozen separate `Arc`s made that a visible cost on webhook
/// bursts).
#[derive(Clone)]
pub struct AppState(Arc<AppContext>);

impl std::ops::Deref for AppState {
    type Target = AppContext;

    fn deref(&self) -> &AppContext {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct AppContext {
    pub config: Arc<Config>,
    pub store: DynStore,
    pub clock: DynClock,
    pub access: Arc<Access>,
    /// The one way to call Shopify's Admin API (throttled, retried, tokens from `access`).
    pub admin: Arc<AdminClient>,
    pub intake: Intake,
    /// Notified when new jobs are committed, so idle workers wake at once.
    pub jobs_ready: Arc<Notify>,
    pub domain_policy: DomainPolicy,
    /// Identifies this process (worker names, refresh leases).
    pub instance_id: Arc<str>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    #[error("cannot load the encryption key: {0}")]
    Key(#[from] SecretsError),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("cannot listen: {0}")]
    Io(#[from] std::io::Error),
}

impl AppState {
    /// Connect and migrate the database, load the key, wire the services.
    pub async fn build(config: Config, clock: DynClock) -> Result<AppState, StartError> {
        if let store_url @ crate::config::Database::Sqlite { .. } = &config.database {
            ensure_sqlite_parent(store_url.url())?;
        }
        let store = store::connect(config.database.url(), 10).await?;
        store.migrate().await?;
        Self::with_store(config, clock, store)
    }

    /// Wire the services around an already migrated store.
    pub fn with_store(
        config: Config,
        clock: DynClock,
        store: DynStore,
    ) -> Result<AppState, StartError> {
        let key = match &config.encryption_key {
            EncryptionKey::Given(key) => *key,
            EncryptionKey::LocalFile(path) => secrets::load_or_create_key_file(path)?,
        };
        let origin = match &config.shopify_origin {
            ShopifyOrigin::PerShop => None,
            ShopifyOrigin::Fixed(url) => Some(url.clone()),
        };
        let domain_policy = if origin.is_some() {
            DomainPolicy::AnyHost
        } else {
            DomainPolicy::MyShopifyOnly
        };
        let endpoint = Endpoint::new(origin, SHOPIFY_TIMEOUT)?;
        let creds = AppCredentials {
            client_id: config.api_key.clone(),
            client_secret: config.api_secret.expose().to_owned(),
        };
        let access = Arc::new(Access::new(
            store.clone(),
            Cipher::new(&key),
            endpoint.clone(),
            creds,
            clock.clone(),
        ));
        let admin = Arc::new(AdminClient::new(
            endpoint,
            access.clone(),
            RetryPolicy::default(),
        ));
        let jobs_ready = Arc::new(Notify::new());
        let intake = Intake::spawn(store.clone(), clock.clone(), jobs_ready.clone());
        Ok(AppState(Arc::new(AppContext {
            config: Arc::new(config),
            store,
            clock,
            access,
            admin,
            intake,
            jobs_ready,
            domain_policy,
            instance_id: format!(
                "{}-{}",
                hostname(),
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            )
            .into(),
        })))
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "keel".into())
}

/// Create the directory of a `sqlite:` file URL so the first run works from an empty checkout.
fn ensure_sqlite_parent(url: &str) -> Result<(), std::io::Error> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    match std::path::Path::new(path).parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir),
        _ => Ok(()),
    }
}

/// Run Keel on the given listeners with the system clock until `shutdown` fires.
pub async fn serve(
    config: Config,
    listeners: Vec<TcpListener>,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    let workers = config.workers;
    let state = AppState::build(config, Arc::new(SystemClock)).await?;
    run(state, listeners, workers, shutdown).await
}

/// Serve HTTP on every listener and run `workers` job workers until `shutdown`; then stop
/// accepting, let in-flight requests and jobs finish (bounded by [`SHUTDOWN_GRACE`]).
pub async fn run(
    state: AppState,
    listeners: Vec<TcpListener>,
    workers: usize,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    let router = crate::web::router(state.clone());
    let worker_stop = CancellationToken::new();
    let workers = jobs::spawn_workers(&state, workers, worker_stop.clone());
    let mut servers = tokio::task::JoinSet::new();
    for listener in listeners {
        tracing::info!(addr = %listener.local_addr()?, backend = state.store.backend(), "keel listening");
        let router = router.clone();
        let shutdown = shutdown.clone();
        servers.spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { shutdown.cancelled().await })
                .await
        });
    }
    shutdown.cancelled().await;
    tracing::info!("shutting down: finishing in-flight requests and jobs");
    worker_stop.cancel();
    let drain = async {
        while let Some(result) = servers.join_next().await {
            if let Ok(Err(e)) = result {
                tracing::warn!(error = %e, "server stopped with an error");
            }
        }
        workers.join().await;
    };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tracing::warn!(
            "shutdown grace period over; unfinished jobs will be retried after their lease"
        );
    }
    Ok(())
}
