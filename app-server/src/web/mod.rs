//! HTTP: one router per surface, merged and layered once here. Handlers are thin: extract,
//! call `access`/`ops`/the intake, map the result.

/// `GET /api/*`: the embedded admin's JSON API.
pub mod api;
/// Session-token authentication for `/api/*`.
pub mod auth;
/// The embedded entry `GET /` and the session-token bounce page.
pub mod embedded;
/// `ApiError`: the one mapping from failures to HTTP responses.
pub mod error;
/// `GET /healthz`, `GET /readyz`.
pub mod health;
/// The HTML of Keel's pages.
pub mod pages;
/// `GET`/`PUT /api/settings`: the VIP discount settings.
pub mod settings;
/// `POST /webhooks`.
pub mod webhooks;

use crate::app::AppState;
use axum::extract::{MatchedPath, Request};
use axum::http::HeaderName;
use axum::Router;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use error::ApiError;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(health::router())
        .merge(embedded::router())
        .merge(api::router())
        .merge(webhooks::router())
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map(|p| p.as_str().to_owned());
            let request_id = req
                .headers()
                .get(&REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            tracing::info_span!(
                "request",
                method = %req.method(),
                route = route.as_deref().unwrap_or("unmatched"),
                request_id,
                shop = tracing::field::Empty,
            )
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}
