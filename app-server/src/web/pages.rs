//! The HTML Keel serves. Every page loads App Bridge from Shopify's CDN first (it must never be
//! bundled) and carries the app's client id. Every HTML response gets a per-shop CSP
//! `frame-ancestors`, so only the shop's admin can frame Keel.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

pub const APP_BRIDGE_SRC: &str = "https://cdn.shopify.com/shopifycloud/app-bridge.js";
pub const POLARIS_SRC: &str = "https://cdn.shopify.com/shopifycloud/polaris.js";

/// `frame-ancestors` for the shop's admin, or only Shopify's unified admin when the shop is
/// unknown (App Bridge-only pages are still framed there).
pub fn csp(shop: Option<&str>) -> String {
    match shop {
        Some(shop) => format!("frame-ancestors https://{shop} https://admin.shopify.com;"),
        None => "frame-ancestors https://admin.shopify.com;".to_owned(),
    }
}

/// An HTML response with the CSP header.
pub fn respond(markup: Markup, shop: Option<&str>) -> Response {
    let mut response = markup.into_response();
    if let Ok(value) = HeaderValue::from_str(&csp(shop)) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// Only App Bridge: it re-bootstraps the app (missing shop/host) or, on the bounce page,
/// fetches a session token and reloads `shopify-reload`.
pub fn app_bridge_only(client_id: &str) -> Markup {
    html! {
        (DOCTYPE)
        html {
            head {
                meta charset="utf-8";
                script data-api-key=(client_id) src=(APP_BRIDGE_SRC) {}
            }
            body {}
        }
    }
}

/// A short page with one sentence, for a request Keel refuses.
pub fn message(client_id: &str, title: &str, sentence: &str) -> Markup {
    html! {
        (DOCTYPE)
        html {
            head {
                meta charset="utf-8";
                script data-api-key=(client_id) src=(APP_BRIDGE_SRC) {}
                title { "Keel — " (title) }
            }
            body { h1 { (title) } p { (sentence) } }
        }
    }
}

/// The embedded admin's home. The dashboard, activity log, customers, VIPs and settings pages
/// come with the admin issue; this shell shows the shop's standing from `/api/shop`.
pub fn home(client_id: &str, shop: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="shopify-api-key" content=(client_id);
                script src=(APP_BRIDGE_SRC) {}
                script src=(POLARIS_SRC) {}
                link rel="preconnect" href="https://cdn.shopify.com/";
                title { "Keel" }
            }
            body {
                s-page heading="Keel" {
                    s-section heading="Your store" {
                        p { "Shop: " strong { (shop) } }
                        p id="keel-status" { "Checking Keel's access…" }
                    }
                }
                script {
                    (maud::PreEscaped(r#"
(async () => {
  const el = document.getElementById('keel-status');
  try {
    const r = await fetch('/api/shop');
    const s = await r.json();
    el.textContent = r.ok
      ? `Installed with scopes ${s.scopes.join(', ')}; access renews automatically.`
      : s.message;
  } catch (e) { el.textContent = 'Keel could not be reached.'; }
})();
"#))
                }
            }
        }
    }
}
