//! Keel: Shopify Flow actions and triggers, a VIP checkout Function, and the embedded admin that
//! shows what the automation did.
//!
//! Dependencies point one way: `web` and `flow` (edges) → `ops` (decisions) → `store` and
//! `shopify` (effects). `main.rs` only parses the command line and calls into `cli`.

/// Getting a usable offline token for a shop: encrypted storage, exchange, single-flight refresh.
pub mod access;
/// The application state shared by handlers and workers.
pub mod app;
/// Exponential backoff with jitter, shared by job retries and Shopify calls.
pub mod backoff;
/// The `keel` subcommands (`serve`, `migrate`, `rotate-key`), one file each.
pub mod cli;
/// Time as the app sees it; tests move it by hand.
pub mod clock;
/// Configuration from the environment, validated all at once.
pub mod config;
/// Error helpers shared by every layer (an error with its sources on one line).
pub mod errors;
/// The durable job queue and its workers.
pub mod jobs;
/// Decisions: what a webhook or action means for a shop's data.
pub mod ops;
/// AES-256-GCM sealing of secrets at rest and key handling.
pub mod secrets;
/// Shopify's wire formats: HMACs, session tokens, OAuth token endpoint, webhook headers.
pub mod shopify;
/// Persistence behind one `Store` interface.
pub mod store;
/// Logging set-up.
pub mod telemetry;
/// HTTP routes, extractors, pages.
pub mod web;

pub use app::{serve, AppState};
