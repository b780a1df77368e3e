//! shopify-sim: a stateful local stand-in for Shopify that Keel's tests and demo talk to over
//! real HTTP. Point Keel at it with `KEEL_SHOPIFY_ORIGIN={sim.origin()}`; Keel then calls
//! `{origin}/admin/oauth/access_token` and `{origin}/admin/api/2026-10/graphql.json` with
//! `X-Shopify-Shop-Domain: {shop}` standing in for the shop's host name.
//!
//! Modules (protocol facts: `reference/app-platform.md` §2, §3, §5, §7):
//! - `state` — installed shops, issued tokens, call counters, the request log;
//! - `oauth` — the token endpoint (token exchange, refresh with rotation);
//! - `session_token` — minting App Bridge session tokens, verifying them for the exchange;
//! - [`webhooks`] — signing and delivering webhooks, standard payloads;
//! - `flow` — playing Flow toward the app: signed action requests with Flow's resend rules
//!   ([`FlowActionRequest`]) and trigger lifecycle callbacks ([`LifecycleEvent`])
//!   (`reference/flow.md` §3, §6);
//! - `graphql` — argument values and field collection of a parsed document, shared by `admin`
//!   and `checkout`;
//! - `admin` — the Admin GraphQL endpoint: schema subset, parser-driven executor, cost and the
//!   per-shop leaky bucket, mutations with `@idempotent`, `query:` search;
//! - `data` / [`Seed`] — the shop's customers, orders, products, inventory, metafields and
//!   discounts, and the logs of accepted mutations and Flow triggers;
//! - `faults` — 5xx, 429, latency, dropped connections, expired tokens, maintenance;
//! - `server` — the accept loop (it can drop a connection without answering);
//! - `checkout` — a buyer's checkout priced by the VIP discount Function's wasm, run as Shopify
//!   runs it ([`Sim::checkout`], `POST /_sim/checkout`);
//! - `control` — the `/_sim` HTTP API mirroring [`Sim`]'s methods;
//! - `error` — every refusal and its HTTP response.
//!
//! Tests hold a [`Sim`] and drive it through its methods; the demo runs the `shopify-sim`
//! binary and drives it through `/_sim`. The simulator uses real time (`Utc::now`): Keel's tests
//! control Keel's clock, not Shopify's.

mod admin;
mod checkout;
mod control;
mod data;
mod error;
mod faults;
mod flow;
mod graphql;
mod oauth;
mod seed;
mod server;
mod session_token;
mod signing;
mod state;
pub mod webhooks;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::Router;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use admin::bucket::{Plan, ThrottleConfig, ThrottleStatus};
pub use checkout::{
    AppliedDiscount, CheckoutAnswer, CheckoutLine, CheckoutRequest, FunctionRun, LineAnswer,
    ShippingAnswer, DEFAULT_SHIPPING_PRICE,
};
pub use data::{
    resolve_namespace, CombinesWith, Customer, Discount, EmailMarketingConsent, FlowTriggerRecord,
    Fulfillment, InventoryLevel, LineItem, Location, Metafield, MetafieldSeed, MutationRecord,
    Order, Product, Variant,
};
pub use error::{SimError, INVALID_ACCESS_TOKEN_MESSAGE, MAINTENANCE_MESSAGE};
pub use faults::{DropFault, ErrorFault, Faults, RateLimitFault};
pub use flow::{
    FlowActionRequest, FlowDeliveryKind, FlowDeliveryResult, FlowOutcome, LifecycleEvent,
    DEFAULT_FLOW_MAX_RESENDS, DEFAULT_FLOW_RESEND_DELAY, DEFAULT_FLOW_RETRY_AFTER_CAP,
    FLOW_ACTION_TIMEOUT, FLOW_LIFECYCLE_TIMEOUT,
};
pub use oauth::{
    AccessTokenResponse, GRANT_REFRESH_TOKEN, GRANT_TOKEN_EXCHANGE, SUBJECT_TOKEN_TYPE_ID_TOKEN,
    TOKEN_TYPE_OFFLINE, TOKEN_TYPE_ONLINE,
};
pub use seed::{Seed, SeedSummary};
pub use session_token::{
    SessionTokenClaims, SessionTokenOptions, SigningAlgorithm, SESSION_TOKEN_LEEWAY_SECS,
    SESSION_TOKEN_LIFETIME_SECS,
};
pub use state::{shop_id_for, LogEntry, ShopInfo, TokenCalls, PREVIOUS_REFRESH_TOKEN_GRACE};
pub use webhooks::{ComplianceCustomer, DeliveryResult, WebhookDelivery, SHOPIFY_WEBHOOK_TIMEOUT};

/// The Admin API and webhook version Keel pins.
pub const API_VERSION: &str = "2026-10";
/// Demo client id (`SHOPIFY_API_KEY`).
pub const DEFAULT_API_KEY: &str = "keel-test-client-id";
/// Demo client secret (`SHOPIFY_API_SECRET`).
pub const DEFAULT_API_SECRET: &str = "keel-test-client-secret";
/// Names the shop a request is for (on Shopify, the host name does).
pub const SHOP_DOMAIN_HEADER: &str = "x-shopify-shop-domain";
/// Carries the access token on Admin API calls.
pub const ACCESS_TOKEN_HEADER: &str = "x-shopify-access-token";

/// How a simulator is set up. `Default` gives the demo app and Shopify's real lifetimes.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The app's client id.
    pub api_key: String,
    /// The app's client secret: signs session tokens and webhooks, authenticates token calls.
    pub api_secret: String,
    /// Lifetime of expiring offline access tokens (Shopify: 3600 s).
    pub access_token_ttl: Duration,
    /// Lifetime of refresh tokens (Shopify: 90 days).
    pub refresh_token_ttl: Duration,
    /// How long a rotated-away refresh token keeps working after its first use while its
    /// replacement is unused (Shopify: up to 30 days).
    pub previous_refresh_token_grace: Duration,
    /// Artificial delay of every refresh-token call (changeable later with
    /// [`Sim::set_refresh_latency`]).
    pub refresh_latency: Duration,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            api_key: DEFAULT_API_KEY.to_owned(),
            api_secret: DEFAULT_API_SECRET.to_owned(),
            access_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(90 * 24 * 60 * 60),
            previous_refresh_token_grace: PREVIOUS_REFRESH_TOKEN_GRACE,
            refresh_latency: Duration::ZERO,
            port: 0,
        }
    }
}

/// What the HTTP handlers share: fixed configuration, the mutable state, the outbound client.
pub(crate) struct Shared {
    pub config: SimConfig,
    state: Mutex<state::State>,
    /// Delivers webhooks: no redirects followed (a redirect is a failed delivery), 1 s connect.
    pub http: reqwest::Client,
    /// The VIP discount Function, loaded by the first checkout.
    pub function: tokio::sync::OnceCell<Arc<checkout::function::Deployment>>,
}

impl Shared {
    /// Locks the state. A panic elsewhere while holding the lock leaves the state consistent
    /// enough for a simulator (every mutation is a few field writes), so poisoning is ignored.
    pub fn state(&self) -> MutexGuard<'_, state::State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running simulator. Cheap to clone; the server stops when the last clone is dropped or on
/// [`Sim::shutdown`].
#[derive(Clone)]
pub struct Sim {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    addr: SocketAddr,
    origin: String,
    /// Dropping the handle (with the last `Sim`) drops `stop`, which also stops the server.
    server: Mutex<Option<ServerHandle>>,
}

struct ServerHandle {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("origin", &self.inner.origin)
            .finish_non_exhaustive()
    }
}

impl Sim {
    /// Starts a simulator on 127.0.0.1 (port from `config`, normally 0) in a tokio task.
    ///
    /// # Panics
    /// If the loopback socket cannot be bound; use [`Sim::try_spawn`] to handle that.
    pub async fn spawn(config: SimConfig) -> Sim {
        match Sim::try_spawn(config).await {
            Ok(sim) => sim,
            Err(e) => panic!("shopify-sim failed to start: {e}"),
        }
    }

    /// Starts a simulator, reporting bind failures.
    pub async fn try_spawn(config: SimConfig) -> Result<Sim, SimError> {
        let requested = SocketAddr::from((Ipv4Addr::LOCALHOST, config.port));
        let listener = tokio::net::TcpListener::bind(requested)
            .await
            .map_err(|source| SimError::Bind {
                addr: requested,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            addr: requested,
            source,
        })?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(1))
            .build()
            .map_err(SimError::HttpClient)?;
        let lifetimes = state::Lifetimes {
            access: config.access_token_ttl,
            refresh: config.refresh_token_ttl,
            previous_refresh_grace: config.previous_refresh_token_grace,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state::State::new(lifetimes, config.refresh_latency)),
            config,
            http,
            function: tokio::sync::OnceCell::new(),
        });

        let app = router(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            // `stopped` resolves on `send` and on drop of the sender alike.
            server::serve(listener, app, stopped).await;
        });
        tracing::debug!(%addr, "shopify-sim listening");
        Ok(Sim {
            inner: Arc::new(Inner {
                shared,
                addr,
                origin: format!("http://{addr}"),
                server: Mutex::new(Some(ServerHandle { stop, task })),
            }),
        })
    }

    /// Stops the server (for every clone) and waits for in-flight requests to finish.
    pub async fn shutdown(&self) {
        let handle = self
            .inner
            .server
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            let _ = handle.stop.send(());
            if let Err(e) = handle.task.await {
                tracing::warn!(error = %e, "shopify-sim server task ended abnormally");
            }
        }
    }

    /// `http://127.0.0.1:PORT`, the value for `KEEL_SHOPIFY_ORIGIN`.
    pub fn origin(&self) -> &str {
        &self.inner.origin
    }

    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    pub fn api_key(&self) -> &str {
        &self.shared().config.api_key
    }

    pub fn api_secret(&self) -> &str {
        &self.shared().config.api_secret
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    // ---- shops and tokens --------------------------------------------------------------------

    /// Installs the app on `shop` with `scopes` (reinstalls, or updates the scopes).
    pub fn install_shop<S: AsRef<str>>(
        &self,
        shop: &str,
        scopes: impl IntoIterator<Item = S>,
    ) -> ShopInfo {
        let scopes = scopes.into_iter().map(|s| s.as_ref().to_owned()).collect();
        self.shared()
            .state()
            .install(shop, scopes, chrono::Utc::now())
    }

    /// Uninstalls the app from `shop`, revoking all its tokens (Admin calls then get 401,
    /// refreshes `invalid_grant`, exchanges `app_not_installed`). `None` for an unknown shop.
    /// Does not send `app/uninstalled`; use [`WebhookDelivery::app_uninstalled`] for that.
    pub fn uninstall_shop(&self, shop: &str) -> Option<ShopInfo> {
        self.shared().state().uninstall(shop, chrono::Utc::now())
    }

    pub fn shop(&self, shop: &str) -> Option<ShopInfo> {
        self.shared().state().shop(shop).cloned()
    }

    /// Makes every access token of `shop` expire now; returns how many were live.
    pub fn expire_access_tokens(&self, shop: &str) -> usize {
        self.shared()
            .state()
            .expire_access_tokens(shop, chrono::Utc::now())
    }

    /// Revokes every refresh token of `shop`; returns how many were not yet revoked.
    pub fn revoke_refresh_tokens(&self, shop: &str) -> usize {
        self.shared().state().revoke_refresh_tokens(shop)
    }

    /// Token-endpoint calls attributed to `shop` so far.
    pub fn token_calls(&self, shop: &str) -> TokenCalls {
        self.shared().state().token_calls(shop)
    }

    /// Whether the Admin API would accept this access token right now.
    pub fn access_token_is_valid(&self, access_token: &str) -> bool {
        self.shared()
            .state()
            .access_token_shop(access_token, chrono::Utc::now())
            .is_some()
    }

    /// Delays every subsequent refresh-token call by `latency`.
    pub fn set_refresh_latency(&self, latency: Duration) {
        self.shared().state().refresh_latency = latency;
    }

    /// Issues an offline token directly, without a token-endpoint call (not counted): for
    /// seeding Keel's store with a token the simulator knows.
    pub fn issue_offline_token(
        &self,
        shop: &str,
        expiring: bool,
    ) -> Result<AccessTokenResponse, SimError> {
        self.shared()
            .state()
            .issue(shop, expiring, chrono::Utc::now())
            .map(Into::into)
    }

    /// Everything the simulator did or refused, oldest first (bounded).
    pub fn log(&self) -> Vec<LogEntry> {
        self.shared().state().log()
    }

    // ---- session tokens and webhooks ---------------------------------------------------------

    /// Mints an App Bridge session token for `shop` (which need not be installed).
    pub fn session_token(&self, shop: &str, options: SessionTokenOptions) -> String {
        let config = &self.shared().config;
        session_token::mint(
            &config.api_key,
            &config.api_secret,
            shop,
            &options,
            chrono::Utc::now().timestamp(),
        )
    }

    /// Delivers a webhook to `target_url` as Shopify would; one result per HTTP attempt,
    /// ordered by copy, then attempt.
    pub async fn send_webhook(
        &self,
        target_url: &str,
        delivery: WebhookDelivery,
    ) -> Vec<DeliveryResult> {
        webhooks::send(self.shared(), target_url, delivery).await
    }

    // ---- Flow toward the app -----------------------------------------------------------------

    /// Executes a Flow action run against the app's `runtime_url` as Flow would: signed body,
    /// resends of the same body and `action_run_id` on 202, 429, 5xx and timeouts. One result
    /// per HTTP attempt, ordered by copy, then resend; each copy's last result is its outcome.
    pub async fn send_flow_action(
        &self,
        target_url: &str,
        request: FlowActionRequest,
    ) -> Vec<FlowDeliveryResult> {
        flow::send_action(self.shared(), target_url, request).await
    }

    /// Sends a signed trigger lifecycle callback; one result per copy (Flow does not resend).
    pub async fn send_lifecycle(
        &self,
        target_url: &str,
        event: LifecycleEvent,
    ) -> Vec<FlowDeliveryResult> {
        flow::send_lifecycle(self.shared(), target_url, event).await
    }

    /// Every Flow action and lifecycle attempt so far, oldest first (bounded).
    pub fn flow_deliveries(&self) -> Vec<FlowDeliveryResult> {
        self.shared().state().flow_deliveries()
    }

    /// A buyer checks out: the shop's active VIP discounts run the Function on the cart (see
    /// `POST /_sim/checkout`). The first call builds and compiles the Function's wasm.
    pub async fn checkout(&self, request: CheckoutRequest) -> Result<CheckoutAnswer, SimError> {
        checkout::checkout(self.shared(), request).await
    }
}

impl Sim {
    // ---- Admin API data ----------------------------------------------------------------------

    fn with_admin<R>(&self, shop: &str, f: impl FnOnce(&mut admin::ShopAdmin) -> R) -> R {
        f(self.shared().state().admin(shop))
    }

    /// Merges `seed` into `shop`'s data (the shop need not be installed yet).
    pub fn seed(&self, shop: &str, seed: Seed) -> SeedSummary {
        control::seed_shop(self.shared(), shop, seed)
    }

    pub fn customer(&self, shop: &str, id: u64) -> Option<Customer> {
        self.with_admin(shop, |a| a.data.customers.get(&id).cloned())
    }

    /// The customer's tags, in the order they were added.
    pub fn customer_tags(&self, shop: &str, id: u64) -> Option<Vec<String>> {
        self.customer(shop, id).map(|c| c.tags)
    }

    pub fn order(&self, shop: &str, id: u64) -> Option<Order> {
        self.with_admin(shop, |a| a.data.orders.get(&id).cloned())
    }

    pub fn product(&self, shop: &str, id: u64) -> Option<Product> {
        self.with_admin(shop, |a| a.data.products.get(&id).cloned())
    }

    /// One metafield of `owner` (a GID); `namespace` may use the `$app` shorthand.
    pub fn metafield(
        &self,
        shop: &str,
        owner: &str,
        namespace: &str,
        key: &str,
    ) -> Option<Metafield> {
        let ns = resolve_namespace(namespace, self.api_key());
        self.with_admin(shop, |a| a.data.metafield(owner, &ns, key).cloned())
    }

    /// Every metafield of `owner` (a GID).
    pub fn metafields(&self, shop: &str, owner: &str) -> Vec<Metafield> {
        self.with_admin(shop, |a| {
            a.data.metafields_of(owner).into_iter().cloned().collect()
        })
    }

    pub fn discounts(&self, shop: &str) -> Vec<Discount> {
        self.with_admin(shop, |a| a.data.discounts.values().cloned().collect())
    }

    /// Every mutation the shop accepted, oldest first (`@idempotent` repeats are not in it).
    pub fn mutation_log(&self, shop: &str) -> Vec<MutationRecord> {
        self.with_admin(shop, |a| a.data.mutation_log.clone())
    }

    /// Every `flowTriggerReceive` the shop accepted, oldest first.
    pub fn flow_triggers(&self, shop: &str) -> Vec<FlowTriggerRecord> {
        self.with_admin(shop, |a| a.data.flow_triggers.clone())
    }

    /// The shop's bucket right now, as `extensions.cost.throttleStatus` would report it.
    pub fn throttle_status(&self, shop: &str) -> ThrottleStatus {
        self.with_admin(shop, |a| a.bucket.status(tokio::time::Instant::now()))
    }

    /// How many calls of the shop were refused with THROTTLED.
    pub fn throttle_refusals(&self, shop: &str) -> u64 {
        self.with_admin(shop, |a| a.throttled)
    }

    /// Sets the shop's plan and bucket (resets the bucket).
    pub fn set_throttle(&self, shop: &str, config: ThrottleConfig) {
        self.with_admin(shop, |a| {
            a.bucket = admin::bucket::Bucket::new(config, tokio::time::Instant::now());
        });
    }

    /// Replaces the shop's faults; `Faults::default()` clears them.
    pub fn set_faults(&self, shop: &str, faults: Faults) {
        self.with_admin(shop, |a| a.faults = faults::FaultState::new(faults));
    }

    pub fn clear_faults(&self, shop: &str) {
        self.set_faults(shop, Faults::default());
    }

    /// The shop's faults, with counted ones as far as they are used up.
    pub fn faults(&self, shop: &str) -> Faults {
        self.with_admin(shop, |a| a.faults.faults.clone())
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .merge(oauth::routes())
        .merge(admin::routes())
        .merge(control::routes())
        .fallback(not_found)
        .with_state(shared)
}

/// Shopify's answer to an unknown path.
async fn not_found() -> axum::response::Response {
    (
        axum::http::StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({ "errors": "Not Found" })),
    )
        .into_response()
}

/// A header's value, if present and visible ASCII.
pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
