//! Shopify's wire formats and nothing else: HMAC signatures (webhooks, Flow, query strings),
//! session tokens, shop and host validation, the OAuth token endpoint, webhook headers and
//! payloads. This module knows nothing of VIPs, delays or Keel's storage.

/// The Admin API version Keel is built and tested against, for calls and webhook payloads.
pub const API_VERSION: &str = "2026-10";

pub mod admin;
pub mod domain;
pub mod endpoint;
pub mod gid;
pub mod hmac;
pub mod oauth;
pub mod session_token;
pub mod webhooks;

pub use domain::ShopDomain;
pub use endpoint::Endpoint;
pub use gid::Gid;
