//! App Bridge session tokens (ID tokens): minting them as the Shopify admin does, with knobs to
//! mint broken ones for negative tests, and verifying them as the token-exchange grant does
//! (reference app-platform.md §3.1–3.2).
//!
//! Minting is hand-rolled (header, claims, HMAC) so that deliberately wrong tokens — other
//! algorithm, `alg: none`, garbage — can be produced; verification uses `jsonwebtoken`, an
//! independent implementation, so the two check each other.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::signing::{hmac_sha256, hmac_sha512};

/// Lifetime Shopify gives session tokens.
pub const SESSION_TOKEN_LIFETIME_SECS: i64 = 60;

/// Clock-skew allowance on `exp`/`nbf`, as Shopify's libraries use.
pub const SESSION_TOKEN_LEEWAY_SECS: u64 = 10;

/// The claims of a session token, exactly as App Bridge issues them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionTokenClaims {
    /// `https://{shop}/admin`.
    pub iss: String,
    /// `https://{shop}` — the shop the token is for.
    pub dest: String,
    /// The app's client id.
    pub aud: String,
    /// Staff user id.
    pub sub: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    /// UUID.
    pub jti: String,
    /// User + app session id.
    pub sid: String,
}

/// How the token is signed; everything but [`SigningAlgorithm::Hs256`] yields a token Shopify
/// (and Keel) must reject.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SigningAlgorithm {
    /// What Shopify uses.
    #[default]
    Hs256,
    /// A correctly signed token with the wrong algorithm.
    Hs512,
    /// `{"alg":"none"}` and an empty signature.
    None,
    /// Not a JWT at all.
    Garbage,
}

/// Overrides for [`crate::Sim::session_token`]; the default mints a valid token.
/// Also the query of `GET /_sim/session-token` (all fields optional there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionTokenOptions {
    /// Staff user id (`sub`).
    pub sub: String,
    /// `sid`; a random 64-hex value when `None`.
    pub sid: Option<String>,
    /// `exp` relative to now (default 60; negative for an expired token).
    pub exp_in_secs: i64,
    /// `nbf` relative to now (default 0; positive for a not-yet-valid token).
    pub nbf_offset_secs: i64,
    /// `iat` relative to now (default 0).
    pub iat_offset_secs: i64,
    /// `aud`; the configured client id when `None`.
    pub audience: Option<String>,
    /// Signing key; the configured client secret when `None`.
    pub secret: Option<String>,
    pub algorithm: SigningAlgorithm,
    /// `dest`; `https://{shop}` when `None`.
    pub dest: Option<String>,
    /// `iss`; `https://{shop}/admin` when `None`.
    pub iss: Option<String>,
}

impl Default for SessionTokenOptions {
    fn default() -> Self {
        SessionTokenOptions {
            sub: "40620294219".to_owned(),
            sid: None,
            exp_in_secs: SESSION_TOKEN_LIFETIME_SECS,
            nbf_offset_secs: 0,
            iat_offset_secs: 0,
            audience: None,
            secret: None,
            algorithm: SigningAlgorithm::Hs256,
            dest: None,
            iss: None,
        }
    }
}

/// Mints a session token for `shop` at `now` (Unix seconds).
pub(crate) fn mint(
    api_key: &str,
    api_secret: &str,
    shop: &str,
    options: &SessionTokenOptions,
    now: i64,
) -> String {
    let claims = SessionTokenClaims {
        iss: options
            .iss
            .clone()
            .unwrap_or_else(|| format!("https://{shop}/admin")),
        dest: options
            .dest
            .clone()
            .unwrap_or_else(|| format!("https://{shop}")),
        aud: options
            .audience
            .clone()
            .unwrap_or_else(|| api_key.to_owned()),
        sub: options.sub.clone(),
        exp: now.saturating_add(options.exp_in_secs),
        nbf: now.saturating_add(options.nbf_offset_secs),
        iat: now.saturating_add(options.iat_offset_secs),
        jti: uuid::Uuid::new_v4().to_string(),
        sid: options
            .sid
            .clone()
            .unwrap_or_else(|| hex::encode(rand::random::<[u8; 32]>())),
    };
    let secret = options.secret.as_deref().unwrap_or(api_secret).as_bytes();
    let alg = match options.algorithm {
        SigningAlgorithm::Garbage => return "this.is-not-a.jwt".to_owned(),
        SigningAlgorithm::Hs256 => "HS256",
        SigningAlgorithm::Hs512 => "HS512",
        SigningAlgorithm::None => "none",
    };
    let header = json!({ "alg": alg, "typ": "JWT" }).to_string();
    // Serializing a struct of strings and integers cannot fail; the fallback keeps this
    // infallible without an `expect` (and would make an obviously broken token).
    let claims = serde_json::to_string(&claims).unwrap_or_default();
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = match options.algorithm {
        SigningAlgorithm::Hs256 => hmac_sha256(secret, signing_input.as_bytes()),
        SigningAlgorithm::Hs512 => hmac_sha512(secret, signing_input.as_bytes()),
        SigningAlgorithm::None | SigningAlgorithm::Garbage => Vec::new(),
    };
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// Verifies a session token as Shopify's token-exchange grant does: HS256 with the client
/// secret, `aud` = client id, `exp`/`nbf` with 10 s leeway. Returns a description on failure.
pub(crate) fn verify(
    token: &str,
    api_key: &str,
    api_secret: &str,
) -> Result<SessionTokenClaims, String> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = SESSION_TOKEN_LEEWAY_SECS;
    validation.validate_nbf = true;
    validation.set_audience(&[api_key]);
    validation.set_required_spec_claims(&["exp", "nbf", "aud"]);
    jsonwebtoken::decode::<SessionTokenClaims>(
        token,
        &DecodingKey::from_secret(api_secret.as_bytes()),
        &validation,
    )
    .map(|data| data.claims)
    .map_err(|e| format!("session token rejected: {e}"))
}

/// The shop a session token is for: the host of its `dest` claim.
pub(crate) fn shop_from_dest(dest: &str) -> Option<&str> {
    let rest = dest.strip_prefix("https://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    (!host.is_empty() && !host.contains(['@', ':'])).then_some(host)
}
