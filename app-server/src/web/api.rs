//! The embedded admin's JSON API under `/api` (`/api/shop` here, `/api/settings` in
//! [`super::settings`]). Every route authenticates with [`SessionAuth`]
//! and answers cross-origin requests as App Bridge expects (`OPTIONS` → 204 with the CORS
//! headers; the same headers on every answer).

use super::auth::SessionAuth;
use super::{settings, ApiError};
use crate::app::AppState;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/shop", get(shop))
        .route(
            "/api/settings",
            get(settings::get)
                .put(settings::put)
                .layer(DefaultBodyLimit::max(settings::MAX_BODY)),
        )
        .layer(middleware::from_fn(cors))
}

/// `GET /api/shop`: the shop this session is for, and Keel's standing with it. The first call
/// after install (or after Shopify revoked access) exchanges the session token for a token.
#[derive(Debug, Serialize)]
pub struct ShopStatus {
    pub shop: String,
    pub installed: bool,
    pub scopes: Vec<String>,
    pub installed_at: Option<String>,
    pub token_expires_at: Option<String>,
    pub needs_reauthorization: bool,
}

async fn shop(
    State(state): State<AppState>,
    SessionAuth(session): SessionAuth,
) -> Result<Json<ShopStatus>, ApiError> {
    state.access.ensure_installed(&session).await?;
    let domain = session.shop.as_str();
    let shop = state.store.shop(domain).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "not_installed",
            "Keel is not installed on this shop; install it from the Shopify admin",
        )
    })?;
    let token = state.store.token(domain).await?;
    Ok(Json(ShopStatus {
        shop: shop.domain,
        installed: shop.installed,
        scopes: shop
            .scopes
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        installed_at: shop.installed_at.map(|t| t.to_rfc3339()),
        token_expires_at: token
            .and_then(|t| t.token.access_expires_at)
            .map(|t| t.to_rfc3339()),
        needs_reauthorization: shop.needs_reauth,
    }))
}

async fn cors(request: Request, next: Next) -> Response {
    let mut response = if request.method() == Method::OPTIONS {
        let mut r = StatusCode::NO_CONTENT.into_response();
        r.headers_mut().insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("7200"),
        );
        r
    } else {
        next.run(request).await
    };
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, PUT, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("X-Shopify-API-Request-Failure-Reauthorize-Url"),
    );
    response
}
