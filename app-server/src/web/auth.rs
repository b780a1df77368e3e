//! Session-token authentication for the embedded admin's API. App Bridge adds
//! `Authorization: Bearer <session token>` to every `fetch()` to Keel; a missing or invalid
//! token answers 401 with `X-Shopify-Retry-Invalid-Session-Request: 1`, on which App Bridge
//! fetches a fresh token and retries once.

use super::ApiError;
use crate::app::AppState;
use crate::shopify::session_token::{self, SessionToken};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

/// A request authenticated by a verified session token.
#[derive(Debug, Clone)]
pub struct SessionAuth(pub SessionToken);

impl FromRequestParts<AppState> for SessionAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let raw = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::invalid_session("the Authorization: Bearer session token is missing")
            })?;
        let token = verify(state, raw).map_err(ApiError::invalid_session)?;
        tracing::Span::current().record("shop", token.shop.as_str());
        Ok(SessionAuth(token))
    }
}

/// Verify a session token with the app's clock and secrets.
pub fn verify(
    state: &AppState,
    raw: &str,
) -> Result<SessionToken, session_token::SessionTokenError> {
    session_token::verify(
        raw,
        &state.config.api_key,
        &state.config.signing_secrets(),
        state.clock.now().timestamp(),
        state.domain_policy,
    )
}
