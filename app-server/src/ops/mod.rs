//! Decisions: what an event means for a shop's data in Keel. `ops` takes domain values (shop
//! domains, customer references, instants), never HTTP requests or Shopify's JSON, and acts
//! through the store.

/// App lifecycle: uninstall and scope changes.
pub mod install;
/// The privacy duties: customer data requests, customer and shop redaction.
pub mod privacy;
/// The VIP discount: settings, their validation, and their sync to Shopify's discount.
pub mod vip;

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}
