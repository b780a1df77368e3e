//! Keel's VIP discount settings, shared by the checkout Function (wasm32) and the app server.
//!
//! - [`config`]: the settings a merchant configures per discount, read from the discount's JSON
//!   metafield and validated.
//! - [`json`]: the [`JsonView`] trait both sides read that JSON through (the Function over the
//!   Function API's values, the app over `serde_json`).
//! - [`decimal`], [`currency`]: exact money arithmetic and Shopify's rounding to minor units.
//! - [`pricing`]: what a tier is worth on a cart (minimum, percentage or cap).
//!
//! No floats and no panics on any input: every failure is a value, so a bad configuration in the
//! Function means "no discount", never a trapped checkout.
//!
//! With the `serde` feature the configuration also (de)serializes with serde, through the same
//! parser.

pub mod config;
pub mod currency;
pub mod decimal;
pub mod json;
pub mod pricing;
#[cfg(feature = "serde")]
mod serde_support;

pub use config::{
    AppliesTo, ConfigError, ConfigErrors, ShippingBenefit, Tier, VipConfig, MAX_CONFIG_BYTES,
    MAX_TAGS, MAX_TIERS,
};
pub use decimal::Decimal;
pub use json::JsonView;
pub use pricing::{CartCurrency, CartTerms, DiscountValue, NoDiscount};
