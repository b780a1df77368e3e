//! Re-exports Shopify's Function API provider so that building this crate as a `cdylib` for
//! `wasm32-unknown-unknown` yields the provider module (`memory`, `initialize`, `finalize`,
//! `_shopify_function_alloc` and the `_`-prefixed API functions) the harness links Functions to.

pub use shopify_function_provider;
