//! `GET /api/settings` and `PUT /api/settings`: the shop's VIP discount settings, as the JSON
//! object the discount's `$app:vip`/`config` metafield holds, and where their sync to Shopify
//! stands. Session-token authenticated like the rest of `/api`.
//!
//! `PUT` answers 200 once the settings and their sync job are stored together (the sync runs
//! in a job, so a crash after the answer still syncs); 400 for a body that is not JSON, 413 over
//! [`MAX_BODY`], 422 with every problem (JSON path and sentence) when the configuration breaks
//! a rule — and then nothing is stored.

use super::auth::SessionAuth;
use super::ApiError;
use crate::app::AppState;
use crate::ops::vip;
use crate::store::VipSettings;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

/// A configuration is at most 10,000 bytes as Shopify passes it to the Function; a body this
/// size leaves room for whitespace and is still refused before it is buffered whole.
pub const MAX_BODY: usize = 64 * 1024;

/// The answer of both methods.
#[derive(Debug, Serialize)]
pub struct SettingsAnswer {
    pub shop: String,
    /// The saved configuration (metafield format), `null` until the first save.
    pub config: Option<serde_json::Value>,
    /// 0 until the first save, then one more per save.
    pub version: i64,
    pub updated_at: Option<String>,
    /// The shop's automatic discount on Shopify once created.
    pub discount_id: Option<String>,
    pub sync: SyncAnswer,
}

#[derive(Debug, Serialize)]
pub struct SyncAnswer {
    /// `not_configured`, `pending`, `synced` or `failed`.
    pub status: &'static str,
    /// Why the latest version is not on Shopify (failed, or being retried).
    pub error: Option<String>,
    /// The version the discount on Shopify carries.
    pub synced_version: Option<i64>,
    pub synced_at: Option<String>,
}

pub async fn get(
    State(state): State<AppState>,
    SessionAuth(session): SessionAuth,
) -> Result<Json<SettingsAnswer>, ApiError> {
    state.access.ensure_installed(&session).await?;
    let shop = session.shop.as_str();
    let settings = vip::settings(&state.store, shop).await?;
    Ok(Json(answer(shop, settings)?))
}

pub async fn put(
    State(state): State<AppState>,
    SessionAuth(session): SessionAuth,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<SettingsAnswer>, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the settings are larger than {} KiB", MAX_BODY / 1024),
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "unreadable_body",
                "the request body could not be read",
            )
        }
    })?;
    let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    // The sync job calls Shopify with the shop's token: make sure there is one.
    state.access.ensure_installed(&session).await?;
    let shop = session.shop.as_str();
    let saved = vip::save(&state.store, shop, &value, state.clock.now()).await?;
    state.jobs_ready.notify_waiters();
    Ok(Json(answer(shop, Some(saved))?))
}

fn answer(shop: &str, settings: Option<VipSettings>) -> Result<SettingsAnswer, ApiError> {
    let Some(s) = settings else {
        return Ok(SettingsAnswer {
            shop: shop.to_owned(),
            config: None,
            version: 0,
            updated_at: None,
            discount_id: None,
            sync: SyncAnswer {
                status: "not_configured",
                error: None,
                synced_version: None,
                synced_at: None,
            },
        });
    };
    // Keel wrote this text itself after validating it.
    let config = serde_json::from_str(&s.config)
        .map_err(|e| ApiError::internal("stored VIP settings are not JSON", &e))?;
    Ok(SettingsAnswer {
        shop: shop.to_owned(),
        config: Some(config),
        version: s.version,
        updated_at: Some(s.updated_at.to_rfc3339()),
        discount_id: s.discount_id,
        sync: SyncAnswer {
            status: s.sync_status.as_str(),
            error: s.sync_error,
            synced_version: s.synced_version,
            synced_at: s.synced_at.map(|t| t.to_rfc3339()),
        },
    })
}
