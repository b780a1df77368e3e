//! App lifecycle events. Uninstall stops everything Keel does for the shop except the privacy
//! work Shopify still requires of it (redaction arrives about 48 hours after uninstall).

use super::OpsError;
use crate::store::{DynStore, Timestamp};

/// Job kinds that must still run after the shop uninstalled.
pub const SURVIVES_UNINSTALL: [&str; 3] = [
    "webhook/customers/data_request",
    "webhook/customers/redact",
    "webhook/shop/redact",
];

/// Mark the shop uninstalled as of `at` (when Shopify says it happened), delete its tokens and
/// cancel its pending work. A late delivery that predates a reinstall changes nothing.
pub async fn uninstall(
    store: &DynStore,
    shop: &str,
    at: Timestamp,
    now: Timestamp,
) -> Result<bool, OpsError> {
    let applied = store
        .uninstall_shop(shop, at, &SURVIVES_UNINSTALL, now)
        .await?;
    if applied {
        tracing::info!(
            shop,
            "shop uninstalled; tokens deleted and pending jobs cancelled"
        );
    } else {
        tracing::info!(
            shop,
            "uninstall ignored: shop unknown, already uninstalled or reinstalled since"
        );
    }
    Ok(applied)
}

/// Store the scopes the merchant granted now.
pub async fn scopes_updated(
    store: &DynStore,
    shop: &str,
    current: &[String],
    now: Timestamp,
) -> Result<(), OpsError> {
    store.set_scopes(shop, &current.join(","), now).await?;
    Ok(())
}
