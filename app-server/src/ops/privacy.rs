//! The mandatory privacy duties. Keel holds customer data only inside stored webhook payloads
//! and the data-request reports themselves; as later features keep more (VIP state, issues),
//! their tables join `Store::customer_data` and `Store::redact_customer`, and these functions
//! stay the one place that answers Shopify.

use super::OpsError;
use crate::store::{CustomerRef, DynStore, RedactCounts, Timestamp};
use serde_json::json;

/// Assemble everything Keel holds about the customer and keep it for the merchant (who must
/// hand it to the customer). Returns the export's id.
pub async fn customer_data_request(
    store: &DynStore,
    shop: &str,
    customer: &CustomerRef,
    data_request_id: Option<i64>,
    now: Timestamp,
) -> Result<i64, OpsError> {
    let held = store.customer_data(shop, customer).await?;
    let receipts: Vec<_> = held
        .receipts
        .iter()
        .map(|r| {
            json!({
                "topic": r.topic,
                "received_at": r.received_at.to_rfc3339(),
                "payload": r.payload.as_deref().and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok()),
            })
        })
        .collect();
    let previous_exports: Vec<_> = held
        .exports
        .iter()
        .map(|e| json!({"id": e.id, "created_at": e.created_at.to_rfc3339()}))
        .collect();
    let report = json!({
        "shop": shop,
        "customer": {"id": customer.id, "email": customer.email},
        "data_request_id": data_request_id,
        "generated_at": now.to_rfc3339(),
        "webhook_payloads": receipts,
        "previous_exports": previous_exports,
    });
    let id = store
        .save_data_export(shop, customer, data_request_id, &report, now)
        .await?;
    tracing::info!(shop, export_id = id, "customer data request assembled");
    Ok(id)
}

/// Erase the customer's data in Keel.
pub async fn redact_customer(
    store: &DynStore,
    shop: &str,
    customer: &CustomerRef,
    now: Timestamp,
) -> Result<RedactCounts, OpsError> {
    let counts = store.redact_customer(shop, customer, now).await?;
    tracing::info!(
        shop,
        receipts = counts.receipts,
        exports = counts.exports,
        "customer redacted"
    );
    Ok(counts)
}

/// Erase everything of the shop, keeping only the scrubbed receipt of this request as proof.
pub async fn redact_shop(
    store: &DynStore,
    shop: &str,
    request_receipt: Option<i64>,
) -> Result<RedactCounts, OpsError> {
    let counts = store.redact_shop(shop, request_receipt).await?;
    tracing::info!(
        shop,
        receipts = counts.receipts,
        jobs = counts.jobs,
        "shop redacted"
    );
    Ok(counts)
}
