//! The embedded entry. Shopify's admin loads `GET /?embedded=1&hmac&host&id_token&shop&…` in an
//! iframe. Keel validates shop and host, checks the query signature, verifies the session token,
//! exchanges it for an offline token on the first load, and answers with CSP-framed HTML.
//!
//! Answers, as Shopify's embedded stack expects:
//! - shop/host missing or invalid → 200 App Bridge-only page (App Bridge re-bootstraps);
//! - `embedded` ≠ 1 → 302 to the app inside the admin;
//! - query signature present but wrong or stale → 401 page (unless this is App Bridge's bounce
//!   reload, whose new `id_token` the original signature cannot cover);
//! - no or invalid `id_token` → 302 to the bounce page `/auth/session-token`;
//! - otherwise → the app.

use super::{auth, pages};
use crate::access::AccessError;
use crate::app::AppState;
use crate::shopify::domain::decode_host;
use crate::shopify::{hmac, ShopDomain};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(entry))
        .route("/auth/session-token", get(bounce))
}

fn param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The query without `id_token`, for the bounce redirect.
fn without_id_token(query: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k != "id_token"))
        .finish()
}

async fn entry(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let client_id = state.config.api_key.as_str();
    let shop = param(&query, "shop").and_then(|s| ShopDomain::parse(&s, state.domain_policy).ok());
    let host = param(&query, "host").and_then(|h| decode_host(&h));
    let (Some(shop), Some(host)) = (shop, host) else {
        return pages::respond(pages::app_bridge_only(client_id), None);
    };
    if param(&query, "embedded").as_deref() != Some("1") {
        return found(&format!("https://{host}/apps/{client_id}"));
    }
    let bounce_reload = headers.contains_key("x-shopify-bounce");
    if param(&query, "hmac").is_some() && !bounce_reload {
        if let Err(why) = hmac::query_valid(
            &state.config.signing_secrets(),
            &query,
            state.clock.now().timestamp(),
        ) {
            tracing::warn!(shop = %shop, reason = %why, "embedded load with a bad query signature");
            let page = pages::message(client_id, "Link expired", "This link's signature is invalid or expired. Open Keel again from your Shopify admin.");
            return (
                StatusCode::UNAUTHORIZED,
                pages::respond(page, Some(shop.as_str())),
            )
                .into_response();
        }
    }
    let session = match param(&query, "id_token").map(|t| auth::verify(&state, &t)) {
        Some(Ok(session)) if session.shop == shop => session,
        _ => return to_bounce(&state, &query),
    };
    match state.access.ensure_installed(&session).await {
        Ok(()) => pages::respond(pages::home(client_id, shop.as_str()), Some(shop.as_str())),
        Err(AccessError::InvalidSessionToken) => to_bounce(&state, &query),
        Err(AccessError::NotInstalled) => {
            let page = pages::message(client_id, "Not installed", "Keel is not installed on this store. Install it from the Shopify App Store, then open it again.");
            (
                StatusCode::FORBIDDEN,
                pages::respond(page, Some(shop.as_str())),
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!(shop = %shop, error = %crate::errors::error_chain(&e), "embedded load failed");
            let page = pages::message(
                client_id,
                "Try again",
                "Keel could not reach Shopify just now. Reload the page in a moment.",
            );
            (
                StatusCode::SERVICE_UNAVAILABLE,
                pages::respond(page, Some(shop.as_str())),
            )
                .into_response()
        }
    }
}

/// 302 to the bounce page, which App Bridge turns into a reload with a fresh `id_token`.
/// The reload target is always Keel's own URL (never a caller-supplied one).
fn to_bounce(state: &AppState, query: &str) -> Response {
    let rest = without_id_token(query);
    let app = state.config.app_url.as_str().trim_end_matches('/');
    let reload = format!("{app}/?{rest}");
    let target = format!(
        "/auth/session-token?{rest}&{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("shopify-reload", &reload)
            .finish()
    );
    found(&target)
}

/// 302 Found, as Shopify's libraries answer (axum's `Redirect::to` is 303).
fn found(location: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location.to_owned())]).into_response()
}

/// `GET /auth/session-token`: App Bridge alone; it reloads `shopify-reload` with a new token.
async fn bounce(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let shop = param(&query, "shop").and_then(|s| ShopDomain::parse(&s, state.domain_policy).ok());
    let mut response = pages::respond(
        pages::app_bridge_only(&state.config.api_key),
        shop.as_ref().map(|s| s.as_str()),
    );
    // The bounce page must never be cached: each visit needs a fresh token.
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}
