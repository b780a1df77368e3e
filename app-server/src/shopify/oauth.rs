//! Shopify's token endpoint (`POST /admin/oauth/access_token`): token exchange of a session
//! token for an expiring offline token, and refresh of that token. Responses are parsed with our
//! own structs because Shopify's omit `token_type`, which generic OAuth2 clients require.

use super::{Endpoint, ShopDomain};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
const OFFLINE_TOKEN: &str = "urn:shopify:params:oauth:token-type:offline-access-token";

/// A token pair as Shopify returned it, with lifetimes turned into instants.
#[derive(Clone, PartialEq, Eq)]
pub struct OfflineToken {
    pub access_token: String,
    pub scope: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub refresh_token: Option<String>,
    pub refresh_token_expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for OfflineToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OfflineToken")
            .field("scope", &self.scope)
            .field("expires_at", &self.expires_at)
            .field("refresh_token_expires_at", &self.refresh_token_expires_at)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The session token was refused (expired or invalid): the client should retry with a new one.
    #[error("Shopify refused the session token")]
    InvalidSubjectToken,
    /// The shop has uninstalled the app.
    #[error("the app is not installed on this shop")]
    AppNotInstalled,
    /// The refresh token is expired, revoked or superseded: the shop must re-authorise.
    #[error("Shopify refused the refresh token")]
    InvalidGrant,
    #[error("Shopify answered {status} with error {code:?}")]
    Refused { status: u16, code: String },
    #[error("Shopify's token endpoint is unreachable or failed")]
    Transport(#[source] reqwest::Error),
    #[error("Shopify's token endpoint answered {status}")]
    Server { status: u16 },
    #[error("Shopify's token response is malformed")]
    Malformed(#[source] reqwest::Error),
}

impl OAuthError {
    /// Worth retrying later (network trouble, Shopify 5xx).
    pub fn is_transient(&self) -> bool {
        matches!(self, OAuthError::Transport(_) | OAuthError::Server { .. })
    }
}

#[derive(Serialize)]
struct ExchangeRequest<'a> {
    client_id: &'a str,
    client_secret: &'a str,
    grant_type: &'a str,
    subject_token: &'a str,
    subject_token_type: &'a str,
    requested_token_type: &'a str,
    /// The string "1": an expiring offline token with a refresh token.
    expiring: &'a str,
}

#[derive(Serialize)]
struct RefreshRequest<'a> {
    client_id: &'a str,
    client_secret: &'a str,
    grant_type: &'a str,
    refresh_token: &'a str,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    refresh_token_expires_in: Option<i64>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    #[serde(default)]
    error: String,
}

/// The app's credentials for the token endpoint.
#[derive(Clone)]
pub struct AppCredentials {
    pub client_id: String,
    pub client_secret: String,
}

/// Exchange a verified session token for an expiring offline token.
pub async fn exchange(
    endpoint: &Endpoint,
    creds: &AppCredentials,
    shop: &ShopDomain,
    session_token: &str,
    now: DateTime<Utc>,
) -> Result<OfflineToken, OAuthError> {
    let body = ExchangeRequest {
        client_id: &creds.client_id,
        client_secret: &creds.client_secret,
        grant_type: TOKEN_EXCHANGE,
        subject_token: session_token,
        subject_token_type: ID_TOKEN,
        requested_token_type: OFFLINE_TOKEN,
        expiring: "1",
    };
    send(endpoint, shop, &body, now).await
}

/// Refresh an expiring offline token. The refresh token rotates: store the returned one.
pub async fn refresh(
    endpoint: &Endpoint,
    creds: &AppCredentials,
    shop: &ShopDomain,
    refresh_token: &str,
    now: DateTime<Utc>,
) -> Result<OfflineToken, OAuthError> {
    let body = RefreshRequest {
        client_id: &creds.client_id,
        client_secret: &creds.client_secret,
        grant_type: "refresh_token",
        refresh_token,
    };
    send(endpoint, shop, &body, now).await
}

async fn send<B: Serialize>(
    endpoint: &Endpoint,
    shop: &ShopDomain,
    body: &B,
    now: DateTime<Utc>,
) -> Result<OfflineToken, OAuthError> {
    let response = endpoint
        .post(shop, "/admin/oauth/access_token")
        .header(reqwest::header::ACCEPT, "application/json")
        .json(body)
        .send()
        .await
        .map_err(OAuthError::Transport)?;
    let status = response.status();
    if status.is_success() {
        let t: TokenResponse = response.json().await.map_err(OAuthError::Malformed)?;
        return Ok(OfflineToken {
            access_token: t.access_token,
            scope: t.scope,
            expires_at: t.expires_in.map(|s| now + Duration::seconds(s)),
            refresh_token: t.refresh_token,
            refresh_token_expires_at: t
                .refresh_token_expires_in
                .map(|s| now + Duration::seconds(s)),
        });
    }
    if status.is_server_error() || status.as_u16() == 429 {
        return Err(OAuthError::Server {
            status: status.as_u16(),
        });
    }
    let code = response
        .json::<ErrorResponse>()
        .await
        .map(|e| e.error)
        .unwrap_or_default();
    Err(match code.as_str() {
        "invalid_subject_token" => OAuthError::InvalidSubjectToken,
        "app_not_installed" => OAuthError::AppNotInstalled,
        "invalid_grant" => OAuthError::InvalidGrant,
        _ => OAuthError::Refused {
            status: status.as_u16(),
            code,
        },
    })
}
