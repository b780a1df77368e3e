//! Every way a simulated Shopify endpoint can refuse a request, and the one place where each
//! refusal becomes the HTTP status and body Shopify would send.
//!
//! Handlers return `Result<_, SimError>`; nothing else in the crate builds an error response, so
//! the wire shapes (OAuth's `{"error","error_description"}`, the Admin API's `{"errors": …}`, the
//! control API's `{"error": …}`) stay consistent and are easy to audit against the reference.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Body of Shopify's Admin API 401 (missing, unknown, expired or revoked access token).
pub const INVALID_ACCESS_TOKEN_MESSAGE: &str =
    "[API] Invalid API key or access token (unrecognized login or wrong password)";

/// Body text of the maintenance-window 503.
pub const MAINTENANCE_MESSAGE: &str = "This shop is unavailable due to scheduled maintenance";

/// A refusal by one of the simulated endpoints, or a failure to start the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// OAuth: malformed body, missing or unsupported parameter, shop header mismatch.
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// OAuth: `client_id`/`client_secret` do not match the configured app.
    #[error("invalid_client: {0}")]
    InvalidClient(String),
    /// OAuth: a `grant_type` Shopify does not offer to embedded apps.
    #[error("unsupported_grant_type: {0}")]
    UnsupportedGrantType(String),
    /// Token exchange: the session token (or migrated access token) is invalid or expired.
    #[error("invalid_subject_token: {0}")]
    InvalidSubjectToken(String),
    /// Token exchange: the shop never installed the app, or uninstalled it.
    #[error("app_not_installed: {0}")]
    AppNotInstalled(String),
    /// Refresh: the refresh token is unknown, expired, superseded or revoked.
    #[error("invalid_grant: {0}")]
    InvalidGrant(String),
    /// Admin API: missing, unknown, expired or revoked `X-Shopify-Access-Token`.
    #[error("invalid API key or access token")]
    InvalidAccessToken,
    /// Admin API: the body is not JSON with a string `query`.
    #[error("required parameter missing or invalid: query")]
    MissingQuery,
    /// Admin API: the version segment is not `YYYY-MM` or `unstable`.
    #[error("unknown Admin API version {0:?}")]
    UnknownApiVersion(String),
    /// Fault: the shop is in a maintenance window.
    #[error("shop under maintenance")]
    Maintenance,
    /// Fault: rate limited at the HTTP level (429 with `Retry-After`).
    #[error("too many requests; retry after {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    /// Fault: an injected server error (500, 502, 503, …).
    #[error("injected HTTP {0}")]
    InjectedStatus(u16),
    /// Startup: the `--seed` fixture could not be read or parsed.
    #[error("could not load seed file {path}: {reason}")]
    Seed { path: String, reason: String },
    /// Control API: the request could not be understood.
    #[error("bad control request: {0}")]
    BadControlRequest(String),
    /// Control API: the named shop does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// Checkout: the Function could not be loaded or run (its input query asks for something
    /// the simulator does not provide, the wasm does not build, the harness failed).
    #[error("the VIP discount Function is unavailable: {0}")]
    FunctionUnavailable(String),
    /// Startup: the listening socket could not be bound.
    #[error("could not bind {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// Startup: the HTTP client used to deliver webhooks could not be built.
    #[error("could not build the webhook HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
}

impl SimError {
    /// The OAuth `error` code, for the OAuth variants (also used in the request log).
    pub fn oauth_code(&self) -> Option<&'static str> {
        match self {
            SimError::InvalidRequest(_) => Some("invalid_request"),
            SimError::InvalidClient(_) => Some("invalid_client"),
            SimError::UnsupportedGrantType(_) => Some("unsupported_grant_type"),
            SimError::InvalidSubjectToken(_) => Some("invalid_subject_token"),
            SimError::AppNotInstalled(_) => Some("app_not_installed"),
            SimError::InvalidGrant(_) => Some("invalid_grant"),
            _ => None,
        }
    }
}

impl IntoResponse for SimError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            // OAuth 2.0 error responses (RFC 6749 §5.2): always 400 with `error` and a
            // human-readable `error_description`.
            SimError::InvalidRequest(d)
            | SimError::InvalidClient(d)
            | SimError::UnsupportedGrantType(d)
            | SimError::InvalidSubjectToken(d)
            | SimError::AppNotInstalled(d)
            | SimError::InvalidGrant(d) => (
                StatusCode::BAD_REQUEST,
                json!({ "error": self.oauth_code(), "error_description": d }),
            ),
            // The Admin API reports authentication failures as a plain string under `errors`.
            SimError::InvalidAccessToken => (
                StatusCode::UNAUTHORIZED,
                json!({ "errors": INVALID_ACCESS_TOKEN_MESSAGE }),
            ),
            SimError::MissingQuery => (
                StatusCode::BAD_REQUEST,
                json!({ "errors": { "query": "Required parameter missing or invalid" } }),
            ),
            SimError::UnknownApiVersion(_) => {
                (StatusCode::NOT_FOUND, json!({ "errors": "Not Found" }))
            }
            SimError::BadControlRequest(d) => (StatusCode::BAD_REQUEST, json!({ "error": d })),
            SimError::NotFound(d) => (StatusCode::NOT_FOUND, json!({ "error": d })),
            // Shopify's maintenance answer is not documented; a 503 with a JSON `errors`
            // string and `Retry-After` is what clients must handle either way.
            SimError::Maintenance => {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, "60")],
                    Json(json!({ "errors": MAINTENANCE_MESSAGE })),
                )
                    .into_response()
            }
            // The body of Shopify's REST 429; GraphQL clients only look at the status and header.
            SimError::TooManyRequests { retry_after_secs } => {
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, retry_after_secs.to_string())],
                    Json(json!({ "errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service." })),
                )
                    .into_response()
            }
            SimError::InjectedStatus(code) => {
                let status =
                    StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let reason = status.canonical_reason().unwrap_or("Error");
                (status, json!({ "errors": reason }))
            }
            SimError::Bind { .. }
            | SimError::HttpClient(_)
            | SimError::Seed { .. }
            | SimError::FunctionUnavailable(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({ "error": self.to_string() }),
            ),
        };
        (status, Json(body)).into_response()
    }
}
