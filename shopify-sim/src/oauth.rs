//! `POST /admin/oauth/access_token`: the token endpoint, with the token-exchange and
//! refresh-token grants embedded apps use (reference app-platform.md §2).
//!
//! Parsing and client authentication happen here; what a token is and when it is valid is
//! [`crate::state`]'s business. Every call is counted per shop and grant, successful or not, so
//! tests can assert how many exchanges and refreshes Keel made.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::error::SimError;
use crate::session_token;
use crate::state::{GrantKind, IssuedTokens};
use crate::{header_str, Shared, SHOP_DOMAIN_HEADER};

pub const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const GRANT_REFRESH_TOKEN: &str = "refresh_token";
pub const SUBJECT_TOKEN_TYPE_ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
/// Subject type for migrating a legacy non-expiring token (note the `urn:shopify:` prefix).
pub const TOKEN_TYPE_OFFLINE: &str = "urn:shopify:params:oauth:token-type:offline-access-token";
pub const TOKEN_TYPE_ONLINE: &str = "urn:shopify:params:oauth:token-type:online-access-token";

/// The token endpoint's success body. Optional fields are present only for expiring offline
/// tokens; there is deliberately no `token_type` (Shopify sends none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenResponse {
    pub access_token: String,
    /// Granted scopes, comma-separated.
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_expires_in: Option<u64>,
}

impl From<IssuedTokens> for AccessTokenResponse {
    fn from(t: IssuedTokens) -> Self {
        let (expires_in, refresh_token, refresh_token_expires_in) = match t.expiring {
            Some(e) => (
                Some(e.expires_in),
                Some(e.refresh_token),
                Some(e.refresh_token_expires_in),
            ),
            None => (None, None, None),
        };
        AccessTokenResponse {
            access_token: t.access_token,
            scope: t.scope,
            expires_in,
            refresh_token,
            refresh_token_expires_in,
        }
    }
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/admin/oauth/access_token", post(access_token))
}

/// Parameters of both grants; JSON or form-encoded.
#[derive(Debug, Default, Deserialize)]
struct TokenRequest {
    client_id: Option<String>,
    client_secret: Option<String>,
    grant_type: Option<String>,
    subject_token: Option<String>,
    subject_token_type: Option<String>,
    requested_token_type: Option<String>,
    /// Kept as raw JSON: Shopify's flag is the string `"1"`, and a number is a client bug the
    /// simulator should surface rather than paper over.
    expiring: Option<serde_json::Value>,
    refresh_token: Option<String>,
}

impl TokenRequest {
    fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, SimError> {
        let form = header_str(headers, header::CONTENT_TYPE.as_str())
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        if form {
            let map: serde_json::Map<String, serde_json::Value> = form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
                .collect();
            serde_json::from_value(serde_json::Value::Object(map))
                .map_err(|e| SimError::InvalidRequest(format!("malformed form body: {e}")))
        } else {
            serde_json::from_slice(body)
                .map_err(|e| SimError::InvalidRequest(format!("malformed JSON body: {e}")))
        }
    }

    /// `"1"` → expiring, absent or `"0"` → legacy non-expiring.
    fn expiring(&self) -> Result<bool, SimError> {
        match &self.expiring {
            None => Ok(false),
            Some(serde_json::Value::String(s)) if s == "1" => Ok(true),
            Some(serde_json::Value::String(s)) if s == "0" => Ok(false),
            Some(other) => Err(SimError::InvalidRequest(format!(
                "expiring must be the string \"1\" or \"0\", got {other}"
            ))),
        }
    }
}

async fn access_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header_shop = header_str(&headers, SHOP_DOMAIN_HEADER).map(str::to_owned);
    let parsed = TokenRequest::parse(&headers, &body);
    let kind = match parsed.as_ref().ok().and_then(|r| r.grant_type.as_deref()) {
        Some(GRANT_TOKEN_EXCHANGE) => GrantKind::Exchange,
        Some(GRANT_REFRESH_TOKEN) => GrantKind::Refresh,
        _ => GrantKind::Other,
    };
    if kind == GrantKind::Refresh {
        let latency = shared.state().refresh_latency;
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
    }

    // The shop a failure is charged to: the one the token names, else the one addressed.
    let mut shop = header_shop.clone();
    let result = parsed.and_then(|request| {
        authenticate_client(&shared, &request)?;
        match kind {
            GrantKind::Exchange => exchange(&shared, &request, header_shop.as_deref(), &mut shop),
            GrantKind::Refresh => refresh(&shared, &request, header_shop.as_deref(), &mut shop),
            GrantKind::Other => Err(SimError::UnsupportedGrantType(format!(
                "grant_type {:?} is not supported",
                request.grant_type.as_deref().unwrap_or("")
            ))),
        }
    });

    let now = chrono::Utc::now();
    shared
        .state()
        .record_token_call(shop.as_deref(), kind, result.as_ref().map(|_| ()), now);
    match result {
        Ok(issued) => Json(AccessTokenResponse::from(issued)).into_response(),
        Err(e) => {
            tracing::debug!(shop = shop.as_deref(), error = %e, "token endpoint refused");
            e.into_response()
        }
    }
}

fn authenticate_client(shared: &Shared, request: &TokenRequest) -> Result<(), SimError> {
    let id_ok = request.client_id.as_deref() == Some(shared.config.api_key.as_str());
    let secret_ok = request.client_secret.as_deref() == Some(shared.config.api_secret.as_str());
    if id_ok && secret_ok {
        Ok(())
    } else {
        Err(SimError::InvalidClient(
            "client authentication failed: unknown client_id or wrong client_secret".into(),
        ))
    }
}

fn exchange(
    shared: &Shared,
    request: &TokenRequest,
    header_shop: Option<&str>,
    shop: &mut Option<String>,
) -> Result<IssuedTokens, SimError> {
    match request.requested_token_type.as_deref() {
        Some(TOKEN_TYPE_OFFLINE) => {}
        Some(TOKEN_TYPE_ONLINE) => {
            return Err(SimError::InvalidRequest(
                "online access tokens are not simulated".into(),
            ))
        }
        other => {
            return Err(SimError::InvalidRequest(format!(
                "unsupported requested_token_type {:?}",
                other.unwrap_or("")
            )))
        }
    }
    let expiring = request.expiring()?;
    let subject = request
        .subject_token
        .as_deref()
        .ok_or_else(|| SimError::InvalidRequest("subject_token is required".into()))?;
    let now = chrono::Utc::now();

    match request.subject_token_type.as_deref() {
        Some(SUBJECT_TOKEN_TYPE_ID_TOKEN) => {
            let claims =
                session_token::verify(subject, &shared.config.api_key, &shared.config.api_secret)
                    .map_err(SimError::InvalidSubjectToken)?;
            let token_shop = session_token::shop_from_dest(&claims.dest).ok_or_else(|| {
                SimError::InvalidSubjectToken(format!("dest {:?} names no shop", claims.dest))
            })?;
            *shop = Some(token_shop.to_owned());
            if header_shop.is_some_and(|h| h != token_shop) {
                return Err(SimError::InvalidRequest(format!(
                    "the session token is for {token_shop}, not for the shop addressed"
                )));
            }
            shared.state().issue(token_shop, expiring, now)
        }
        Some(TOKEN_TYPE_OFFLINE) => {
            if !expiring {
                return Err(SimError::InvalidRequest(
                    "migrating an offline token requires expiring=\"1\"".into(),
                ));
            }
            let mut state = shared.state();
            if let Some(owner) = state.access_token_shop(subject, now) {
                *shop = Some(owner.to_owned());
            }
            state.migrate_non_expiring(subject, header_shop, now)
        }
        other => Err(SimError::InvalidRequest(format!(
            "unsupported subject_token_type {:?}",
            other.unwrap_or("")
        ))),
    }
}

fn refresh(
    shared: &Shared,
    request: &TokenRequest,
    header_shop: Option<&str>,
    shop: &mut Option<String>,
) -> Result<IssuedTokens, SimError> {
    let token = request
        .refresh_token
        .as_deref()
        .ok_or_else(|| SimError::InvalidRequest("refresh_token is required".into()))?;
    let mut state = shared.state();
    if let Some(owner) = state.refresh_token_shop(token) {
        *shop = Some(owner.to_owned());
    }
    state.refresh(token, header_shop, chrono::Utc::now())
}
