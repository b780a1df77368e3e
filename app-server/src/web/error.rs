//! The one mapping from failures to HTTP responses. Bodies are `{"error": code, "message":
//! sentence}`: a stable snake_case code for programs, a sentence a person can act on. 5xx
//! bodies never carry internal details (those are logged); retryable conditions answer 503 so
//! Shopify and Flow try again.

use crate::access::AccessError;
use crate::ops::vip::VipError;
use crate::shopify::oauth::OAuthError;
use crate::store::StoreError;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// Tells App Bridge to fetch a new session token and retry once.
pub const RETRY_INVALID_SESSION: &str = "X-Shopify-Retry-Invalid-Session-Request";

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// 401 for an invalid session token: App Bridge retries with a fresh one.
    pub retry_session: bool,
    /// Each problem of a refused input (422), so a form can show them all at once; answered as
    /// `"problems": [{"path", "message"}]` when not empty.
    pub problems: Vec<Problem>,
}

/// One problem of a refused input: where (a JSON path, empty for the whole input) and what.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_session: false,
            problems: Vec::new(),
        }
    }

    pub fn invalid_session(why: impl std::fmt::Display) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "invalid_session_token",
            message: format!("{why}; App Bridge will retry with a new session token"),
            retry_session: true,
            problems: Vec::new(),
        }
    }

    pub fn internal(context: &str, err: &dyn std::error::Error) -> Self {
        tracing::error!(error = %crate::errors::error_chain(err), "{context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Keel hit an unexpected error; it has been logged",
        )
    }

    pub fn unavailable(context: &str, err: &dyn std::error::Error) -> Self {
        tracing::warn!(error = %crate::errors::error_chain(err), "{context}");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Keel is temporarily unavailable; try again shortly",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({"error": self.code, "message": self.message});
        if !self.problems.is_empty() {
            body["problems"] = serde_json::json!(self.problems);
        }
        let body = Json(body);
        let mut response = (self.status, body).into_response();
        if self.retry_session {
            response
                .headers_mut()
                .insert(RETRY_INVALID_SESSION, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => ApiError::unavailable("database unavailable", &e),
            _ => ApiError::internal("database error", &e),
        }
    }
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::InvalidSessionToken => ApiError::invalid_session("Shopify refused the session token"),
            AccessError::NotInstalled => ApiError::new(
                StatusCode::FORBIDDEN,
                "not_installed",
                "Keel is not installed on this shop; install it from the Shopify admin",
            ),
            AccessError::NeedsReauth => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "needs_reauthorization",
                "Shopify no longer accepts Keel's access for this shop; open Keel from the Shopify admin to re-authorise it",
            ),
            AccessError::RefreshBusy => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "refresh_in_progress",
                "Keel is renewing this shop's access; try again in a few seconds",
            ),
            AccessError::OAuth(ref o) if o.is_transient() => ApiError::unavailable("Shopify token endpoint unavailable", &e),
            AccessError::Store(s) => s.into(),
            AccessError::OAuth(OAuthError::Refused { .. }) | AccessError::OAuth(_) | AccessError::Secrets(_) => {
                ApiError::internal("access failure", &e)
            }
        }
    }
}

impl From<VipError> for ApiError {
    fn from(e: VipError) -> Self {
        match e {
            VipError::Invalid(errors) => {
                let count = errors.0.len();
                let mut err = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_settings",
                    format!(
                        "the VIP settings have {count} problem{}; nothing was saved",
                        if count == 1 { "" } else { "s" }
                    ),
                );
                err.problems = errors
                    .0
                    .into_iter()
                    .map(|e| Problem {
                        path: e.path,
                        message: e.problem,
                    })
                    .collect();
                err
            }
            VipError::UnknownShop => ApiError::new(
                StatusCode::FORBIDDEN,
                "not_installed",
                "Keel is not installed on this shop; install it from the Shopify admin",
            ),
            VipError::Store(s) => s.into(),
            VipError::SyncBusy | VipError::StoredInvalid(_) | VipError::Shopify(_) => {
                ApiError::internal("VIP settings", &e)
            }
        }
    }
}
