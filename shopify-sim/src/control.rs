//! The `/_sim` control API: the same operations as [`crate::Sim`]'s methods, as JSON over HTTP,
//! for the demo and for tests written in other languages. Nothing here exists on Shopify.
//!
//! | Method and path | Body / query | Answer |
//! |---|---|---|
//! | `GET /_sim/health` | | `{"status":"ok","api_key":…,"api_version":…}` |
//! | `POST /_sim/shops` | `{"shop", "scopes": [..] or "a,b"}` | [`crate::ShopInfo`] |
//! | `GET /_sim/shops/{shop}` | | [`crate::ShopInfo`] or 404 |
//! | `POST /_sim/shops/{shop}/uninstall` | optional `{"notify": url}` (sends `app/uninstalled`) | `{"shop": ShopInfo, "deliveries": [..]}` |
//! | `POST /_sim/shops/{shop}/expire-access-tokens` | | `{"expired": n}` |
//! | `POST /_sim/shops/{shop}/revoke-refresh-tokens` | | `{"revoked": n}` |
//! | `GET /_sim/shops/{shop}/token-calls` | | [`crate::TokenCalls`] |
//! | `POST /_sim/shops/{shop}/offline-token` | optional `{"expiring": bool}` (default true) | token response, as the OAuth endpoint |
//! | `POST /_sim/access-tokens/validity` | `{"access_token"}` | `{"valid": bool}` |
//! | `PUT /_sim/refresh-latency` | `{"ms": n}` | `{"ms": n}` |
//! | `GET /_sim/session-token?shop=…` | + any [`crate::SessionTokenOptions`] field | `{"token": …}` |
//! | `POST /_sim/webhooks` | see [`WebhookRequest`] | `{"results": [DeliveryResult…]}` |
//! | `GET /_sim/log` | | `[LogEntry…]` |
//! | `POST /_sim/flow/actions` | see [`FlowActionControl`] | `{"action_run_id", "results": [FlowDeliveryResult…]}` |
//! | `POST /_sim/flow/lifecycle` | see [`LifecycleControl`] | `{"results": [FlowDeliveryResult…]}` |
//! | `GET /_sim/flow/deliveries` | | `[FlowDeliveryResult…]` (every attempt, oldest first) |
//! | `POST /_sim/shops/{shop}/seed` | [`crate::Seed`] | [`crate::SeedSummary`] |
//! | `GET /_sim/shops/{shop}/data` | | `{customers, orders, products, locations, inventory_levels, discounts, metafields}` |
//! | `GET /_sim/shops/{shop}/metafields?owner=GID` | | `[Metafield…]` |
//! | `GET /_sim/shops/{shop}/mutations` | | `[MutationRecord…]` |
//! | `GET /_sim/shops/{shop}/flow-triggers` | | `[FlowTriggerRecord…]` |
//! | `GET /_sim/shops/{shop}/throttle` | | `{plan, maximumAvailable, currentlyAvailable, restoreRate, refusals}` |
//! | `PUT /_sim/shops/{shop}/throttle` | [`crate::ThrottleConfig`] | as `GET` |
//! | `GET /_sim/shops/{shop}/faults` | | [`crate::Faults`] |
//! | `PUT /_sim/shops/{shop}/faults` | [`crate::Faults`] | [`crate::Faults`] |
//! | `DELETE /_sim/shops/{shop}/faults` | | `{}` (faults cleared) |
//! | `POST /_sim/checkout` | [`crate::CheckoutRequest`] | [`crate::CheckoutAnswer`] (see `checkout`) |

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::admin::bucket::{Bucket, ThrottleConfig};
use crate::checkout::{CheckoutAnswer, CheckoutRequest};
use crate::data::{FlowTriggerRecord, Metafield, MutationRecord};
use crate::error::SimError;
use crate::faults::{FaultState, Faults};
use crate::flow::{self, FlowActionRequest, FlowDeliveryResult, LifecycleEvent};
use crate::oauth::AccessTokenResponse;
use crate::seed::{self, Seed, SeedSummary};
use crate::session_token::{self, SessionTokenOptions};
use crate::state::{LogEntry, ShopInfo, TokenCalls};
use crate::webhooks::{self, payloads, WebhookDelivery, SHOPIFY_WEBHOOK_TIMEOUT};
use crate::{Shared, API_VERSION};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_sim/health", get(health))
        .route("/_sim/shops", post(install))
        .route("/_sim/shops/{shop}", get(shop))
        .route("/_sim/shops/{shop}/uninstall", post(uninstall))
        .route(
            "/_sim/shops/{shop}/expire-access-tokens",
            post(expire_access_tokens),
        )
        .route(
            "/_sim/shops/{shop}/revoke-refresh-tokens",
            post(revoke_refresh_tokens),
        )
        .route("/_sim/shops/{shop}/token-calls", get(token_calls))
        .route("/_sim/shops/{shop}/offline-token", post(offline_token))
        .route("/_sim/access-tokens/validity", post(access_token_validity))
        .route("/_sim/refresh-latency", put(refresh_latency))
        .route("/_sim/session-token", get(session_token))
        .route("/_sim/webhooks", post(send_webhook))
        .route("/_sim/log", get(log))
        .route("/_sim/flow/actions", post(send_flow_action))
        .route("/_sim/flow/lifecycle", post(send_lifecycle))
        .route("/_sim/flow/deliveries", get(flow_deliveries))
        .route("/_sim/shops/{shop}/seed", post(seed))
        .route("/_sim/shops/{shop}/data", get(shop_data))
        .route("/_sim/shops/{shop}/metafields", get(metafields))
        .route("/_sim/shops/{shop}/mutations", get(mutations))
        .route("/_sim/shops/{shop}/flow-triggers", get(flow_triggers))
        .route(
            "/_sim/shops/{shop}/throttle",
            get(throttle).put(set_throttle),
        )
        .route(
            "/_sim/shops/{shop}/faults",
            get(faults).put(set_faults).delete(clear_faults),
        )
        .route("/_sim/checkout", post(checkout))
}

async fn checkout(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> Result<Json<CheckoutAnswer>, SimError> {
    let request: CheckoutRequest = parse(&body)?;
    Ok(Json(crate::checkout::checkout(&shared, request).await?))
}

/// Merges a seed into a shop's data (used by [`crate::Sim::seed`] and `--seed` too).
pub(crate) fn seed_shop(shared: &Shared, shop: &str, seed: Seed) -> SeedSummary {
    let shop_gid = crate::data::gid("Shop", crate::state::shop_id_for(shop));
    let mut state = shared.state();
    seed::apply(
        &mut state.admin(shop).data,
        seed,
        &shop_gid,
        &shared.config.api_key,
        Utc::now(),
    )
}

async fn seed(
    State(shared): State<Arc<Shared>>,
    Path(shop): Path<String>,
    body: Bytes,
) -> Result<Json<SeedSummary>, SimError> {
    let seed: Seed = parse(&body)?;
    Ok(Json(seed_shop(&shared, &shop, seed)))
}

async fn shop_data(State(shared): State<Arc<Shared>>, Path(shop): Path<String>) -> Json<Value> {
    let state = shared.state();
    let Some(admin) = state.admin_ref(&shop) else {
        return Json(json!({}));
    };
    let d = &admin.data;
    Json(json!({
        "currency": d.currency,
        "customers": d.customers.values().collect::<Vec<_>>(),
        "orders": d.orders.values().collect::<Vec<_>>(),
        "products": d.products.values().collect::<Vec<_>>(),
        "locations": d.locations.values().collect::<Vec<_>>(),
        "inventory_levels": d.inventory.values().collect::<Vec<_>>(),
        "discounts": d.discounts.values().collect::<Vec<_>>(),
        "metafields": d.metafields.values().collect::<Vec<_>>(),
    }))
}

#[derive(Debug, Deserialize)]
struct OwnerParam {
    owner: String,
}

async fn metafields(
    State(shared): State<Arc<Shared>>,
    Path(shop): Path<String>,
    owner: Result<Query<OwnerParam>, QueryRejection>,
) -> Result<Json<Vec<Metafield>>, SimError> {
    let Query(OwnerParam { owner }) =
        owner.map_err(|e| SimError::BadControlRequest(e.body_text()))?;
    let state = shared.state();
    Ok(Json(state.admin_ref(&shop).map_or_else(Vec::new, |a| {
        a.data.metafields_of(&owner).into_iter().cloned().collect()
    })))
}

async fn mutations(
    State(shared): State<Arc<Shared>>,
    Path(shop): Path<String>,
) -> Json<Vec<MutationRecord>> {
    let state = shared.state();
    Json(
        state
            .admin_ref(&shop)
            .map_or_else(Vec::new, |a| a.data.mutation_log.clone()),
    )
}

async fn flow_triggers(
    State(shared): State<Arc<Shared>>,
    Path(shop): Path<String>,
) -> Json<Vec<FlowTriggerRecord>> {
    let state = shared.state();
    Json(
        state
            .admin_ref(&shop)
            .map_or_else(Vec::new, |a| a.data.flow_triggers.clone()),
    )
}

fn throttle_json(shared: &Shared, shop: &str) -> Value {
    let mut state = shared.state();
    let admin = state.admin(shop);
    let status = admin.bucket.status(tokio::time::Instant::now());
    json!({
        "plan": admin.bucket.plan,
        "maximumAvailable": status.maximum_available,
        "currentlyAvailable": status.currently_available,
        "restoreRate": status.restore_rate,
        "refusals": admin.throttled,
    })
}

async fn throttle(State(shared): State<Arc<Shared>>, Path(shop): Path<String>) -> Json<Value> {
    Json(throttle_json(&shared, &shop))
}

async fn set_throttle(
    State(shared): State<Arc<Shared>>,
    Path(shop): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, SimError> {
    let config: ThrottleConfig = parse_optional(&body)?;
    shared.state().admin(&shop).bucket = Bucket::new(config, tokio::time::Instant::now());
    Ok(Json(throttle_json(&shared, &shop)))
}

async fn faults(State(shared): State<Arc<Shared>>, Path(shop): Path<String>) -> Json<Faults> {
    Json(shared.state().admin(&shop).faults.faults.clone())
}

async fn set_faults(
    State(shared): State<Arc<Shared>>,
    Path(shop): Path<String>,
    body: Bytes,
) -> Result<Json<Faults>, SimError> {
    let faults: Faults = parse_optional(&body)?;
    shared.state().admin(&shop).faults = FaultState::new(faults.clone());
    Ok(Json(faults))
}

async fn clear_faults(State(shared): State<Arc<Shared>>, Path(shop): Path<String>) -> Json<Value> {
    shared.state().admin(&shop).faults = FaultState::default();
    Json(json!({}))
}

async fn health(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "api_key": shared.config.api_key,
        "api_version": API_VERSION,
    }))
}

/// Scopes as a list or as Shopify's comma-joined string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Scopes {
    List(Vec<String>),
    Joined(String),
}

impl Default for Scopes {
    fn default() -> Self {
        Scopes::List(Vec::new())
    }
}

impl Scopes {
    fn into_vec(self) -> Vec<String> {
        match self {
            Scopes::List(v) => v,
            Scopes::Joined(s) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct InstallRequest {
    shop: String,
    #[serde(default)]
    scopes: Scopes,
}

async fn install(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> Result<Json<ShopInfo>, SimError> {
    let request: InstallRequest = parse(&body)?;
    let info = shared
        .state()
        .install(&request.shop, request.scopes.into_vec(), Utc::now());
    Ok(Json(info))
}

async fn shop(
    State(shared): State<Arc<Shared>>,
    Path(shop): Path<String>,
) -> Result<Json<ShopInfo>, SimError> {
    shared
        .state()
        .shop(&shop)
        .cloned()
        .map(Json)
        .ok_or_else(|| unknown_shop(&shop))
}

#[derive(Debug, Default, Deserialize)]
struct UninstallRequest {
    /// Where to send `app/uninstalled` after revoking, as Shopify would.
    notify: Option<String>,
}

async fn uninstall(
    State(shared): State<Arc<Shared>>,
    Path(shop): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, SimError> {
    let request: UninstallRequest = parse_optional(&body)?;
    let info = shared
        .state()
        .uninstall(&shop, Utc::now())
        .ok_or_else(|| unknown_shop(&shop))?;
    let deliveries = match request.notify {
        Some(target) => {
            webhooks::send(&shared, &target, WebhookDelivery::app_uninstalled(&shop)).await
        }
        None => Vec::new(),
    };
    Ok(Json(json!({ "shop": info, "deliveries": deliveries })))
}

async fn expire_access_tokens(
    State(shared): State<Arc<Shared>>,
    Path(shop): Path<String>,
) -> Json<Value> {
    let expired = shared.state().expire_access_tokens(&shop, Utc::now());
    Json(json!({ "expired": expired }))
}

async fn revoke_refresh_tokens(
    State(shared): State<Arc<Shared>>,
    Path(shop): Path<String>,
) -> Json<Value> {
    let revoked = shared.state().revoke_refresh_tokens(&shop);
    Json(json!({ "revoked": revoked }))
}

async fn token_calls(
    State(shared): State<Arc<Shared>>,
    Path(shop): Path<String>,
) -> Json<TokenCalls> {
    Json(shared.state().token_calls(&shop))
}

#[derive(Debug, Deserialize)]
struct OfflineTokenRequest {
    #[serde(default = "yes")]
    expiring: bool,
}

impl Default for OfflineTokenRequest {
    fn default() -> Self {
        OfflineTokenRequest { expiring: true }
    }
}

fn yes() -> bool {
    true
}

async fn offline_token(
    State(shared): State<Arc<Shared>>,
    Path(shop): Path<String>,
    body: Bytes,
) -> Result<Json<AccessTokenResponse>, SimError> {
    let request: OfflineTokenRequest = parse_optional(&body)?;
    let issued = shared.state().issue(&shop, request.expiring, Utc::now())?;
    Ok(Json(issued.into()))
}

#[derive(Debug, Deserialize)]
struct ValidityRequest {
    access_token: String,
}

async fn access_token_validity(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> Result<Json<Value>, SimError> {
    let request: ValidityRequest = parse(&body)?;
    let valid = shared
        .state()
        .access_token_shop(&request.access_token, Utc::now())
        .is_some();
    Ok(Json(json!({ "valid": valid })))
}

#[derive(Debug, Deserialize)]
struct LatencyRequest {
    ms: u64,
}

async fn refresh_latency(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> Result<Json<Value>, SimError> {
    let request: LatencyRequest = parse(&body)?;
    shared.state().refresh_latency = Duration::from_millis(request.ms);
    Ok(Json(json!({ "ms": request.ms })))
}

#[derive(Debug, Deserialize)]
struct ShopParam {
    shop: String,
}

async fn session_token(
    State(shared): State<Arc<Shared>>,
    shop: Result<Query<ShopParam>, QueryRejection>,
    options: Result<Query<SessionTokenOptions>, QueryRejection>,
) -> Result<Json<Value>, SimError> {
    let bad = |e: QueryRejection| SimError::BadControlRequest(e.body_text());
    let Query(ShopParam { shop }) = shop.map_err(bad)?;
    let Query(options) = options.map_err(bad)?;
    let token = session_token::mint(
        &shared.config.api_key,
        &shared.config.api_secret,
        &shop,
        &options,
        Utc::now().timestamp(),
    );
    Ok(Json(json!({ "token": token })))
}

/// Body of `POST /_sim/webhooks`; mirrors [`WebhookDelivery`].
#[derive(Debug, Deserialize)]
pub(crate) struct WebhookRequest {
    target: String,
    shop: String,
    topic: String,
    /// JSON payload; when absent (and no `body`), `app/uninstalled` and `shop/redact` get their
    /// standard payload.
    payload: Option<Value>,
    /// Raw body text, sent byte for byte (takes precedence over `payload`).
    body: Option<String>,
    #[serde(default)]
    duplicates: usize,
    #[serde(default)]
    concurrent: bool,
    secret: Option<String>,
    retry_until_success: Option<usize>,
    timeout_ms: Option<u64>,
    webhook_id: Option<String>,
    event_id: Option<String>,
    api_version: Option<String>,
    triggered_at: Option<DateTime<Utc>>,
    subscription_name: Option<String>,
}

async fn send_webhook(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> Result<Json<Value>, SimError> {
    let r: WebhookRequest = parse(&body)?;
    let base = match (r.body, r.payload) {
        (Some(raw), _) => WebhookDelivery::raw(&r.shop, &r.topic, raw),
        (None, Some(payload)) => WebhookDelivery::new(&r.shop, &r.topic, &payload),
        (None, None) => match r.topic.as_str() {
            "app/uninstalled" => WebhookDelivery::app_uninstalled(&r.shop),
            "shop/redact" => {
                WebhookDelivery::new(&r.shop, &r.topic, &payloads::shop_redact(&r.shop))
            }
            other => {
                return Err(SimError::BadControlRequest(format!(
                    "topic {other} has no default payload; give `payload` or `body`"
                )))
            }
        },
    };
    let delivery = WebhookDelivery {
        api_version: r.api_version.unwrap_or_else(|| API_VERSION.to_owned()),
        webhook_id: r.webhook_id,
        event_id: r.event_id,
        triggered_at: r.triggered_at,
        subscription_name: r.subscription_name,
        duplicates: r.duplicates,
        concurrent: r.concurrent,
        secret: r.secret,
        retry_until_success: r.retry_until_success,
        timeout: r
            .timeout_ms
            .map_or(SHOPIFY_WEBHOOK_TIMEOUT, Duration::from_millis),
        ..base
    };
    let results = webhooks::send(&shared, &r.target, delivery).await;
    Ok(Json(json!({ "results": results })))
}

/// Body of `POST /_sim/flow/actions`; mirrors [`FlowActionRequest`] (durations in ms).
#[derive(Debug, Deserialize)]
pub(crate) struct FlowActionControl {
    target: String,
    shop: String,
    handle: String,
    #[serde(default = "empty_object")]
    properties: Value,
    /// A new UUID when absent.
    action_run_id: Option<String>,
    action_definition_id: Option<String>,
    step_reference: Option<String>,
    #[serde(default)]
    numeric_shop_id: bool,
    #[serde(default)]
    duplicates: usize,
    #[serde(default)]
    concurrent: bool,
    secret: Option<String>,
    timeout_ms: Option<u64>,
    max_resends: Option<usize>,
    resend_delay_ms: Option<u64>,
    retry_after_cap_ms: Option<u64>,
}

fn empty_object() -> Value {
    json!({})
}

async fn send_flow_action(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> Result<Json<Value>, SimError> {
    let r: FlowActionControl = parse(&body)?;
    let mut base = FlowActionRequest::new(&r.shop, &r.handle, r.properties);
    if let Some(id) = r.action_run_id {
        base.action_run_id = id;
    }
    let request = FlowActionRequest {
        action_definition_id: r.action_definition_id,
        step_reference: r.step_reference,
        numeric_shop_id: r.numeric_shop_id,
        duplicates: r.duplicates,
        concurrent: r.concurrent,
        secret: r.secret,
        timeout: r.timeout_ms.map_or(base.timeout, Duration::from_millis),
        max_resends: r.max_resends.unwrap_or(base.max_resends),
        resend_delay: r
            .resend_delay_ms
            .map_or(base.resend_delay, Duration::from_millis),
        retry_after_cap: r
            .retry_after_cap_ms
            .map_or(base.retry_after_cap, Duration::from_millis),
        ..base
    };
    let action_run_id = request.action_run_id.clone();
    let results = flow::send_action(&shared, &r.target, request).await;
    Ok(Json(
        json!({ "action_run_id": action_run_id, "results": results }),
    ))
}

/// Body of `POST /_sim/flow/lifecycle`; mirrors [`LifecycleEvent`] (durations in ms).
#[derive(Debug, Deserialize)]
pub(crate) struct LifecycleControl {
    target: String,
    shop: String,
    /// Also accepted as `handle`, the name callers reach for first.
    #[serde(alias = "handle")]
    flow_trigger_definition_id: String,
    has_enabled_flow: bool,
    timestamp: Option<DateTime<Utc>>,
    #[serde(default)]
    numeric_shop_id: bool,
    #[serde(default)]
    duplicates: usize,
    #[serde(default)]
    concurrent: bool,
    secret: Option<String>,
    timeout_ms: Option<u64>,
}

async fn send_lifecycle(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> Result<Json<Value>, SimError> {
    let r: LifecycleControl = parse(&body)?;
    let base = LifecycleEvent::new(&r.shop, &r.flow_trigger_definition_id, r.has_enabled_flow);
    let event = LifecycleEvent {
        timestamp: r.timestamp,
        numeric_shop_id: r.numeric_shop_id,
        duplicates: r.duplicates,
        concurrent: r.concurrent,
        secret: r.secret,
        timeout: r.timeout_ms.map_or(base.timeout, Duration::from_millis),
        ..base
    };
    let results = flow::send_lifecycle(&shared, &r.target, event).await;
    Ok(Json(json!({ "results": results })))
}

async fn flow_deliveries(State(shared): State<Arc<Shared>>) -> Json<Vec<FlowDeliveryResult>> {
    Json(shared.state().flow_deliveries())
}

async fn log(State(shared): State<Arc<Shared>>) -> Json<Vec<LogEntry>> {
    Json(shared.state().log())
}

fn unknown_shop(shop: &str) -> SimError {
    SimError::NotFound(format!("unknown shop {shop}"))
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, SimError> {
    serde_json::from_slice(body).map_err(|e| SimError::BadControlRequest(e.to_string()))
}

/// Like [`parse`], but an empty body means "all defaults".
fn parse_optional<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, SimError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse(body)
    }
}
