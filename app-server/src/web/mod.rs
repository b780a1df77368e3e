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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
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
                .map(MatchedPath::as_str);
            let request_id = req
                .headers()
                .get(&REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            tracing::info_span!(
                "request",
                method = %req.method(),
                route = route.unwrap_or("unmatched"),
                request_id,
                shop = tracing::field::Empty,
            )
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(
            REQUEST_ID,
            RequestIds::new(state.instance_id.clone()),
        ))
        .with_state(state)
}

/// Request ids for requests that arrive without one: the process's instance id and a counter,
/// e.g. `web-1-3f9a1c2e-1b`. Unique within a process run and distinct across runs and replicas,
/// which is all log correlation needs; a v4 UUID per request cost a `getrandom` system call on
/// every webhook.
#[derive(Clone)]
struct RequestIds {
    prefix: Arc<str>,
    next: Arc<AtomicU64>,
}

impl RequestIds {
    fn new(prefix: Arc<str>) -> Self {
        Self {
            prefix,
            next: Arc::new(AtomicU64::new(1)),
        }
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{n:x}", self.prefix);
        axum::http::HeaderValue::from_maybe_shared(axum::body::Bytes::from(id))
            .ok()
            .map(RequestId::new)
    }
}
