//! Turns a stored webhook delivery into the `ops` call it stands for. The receipt is read again
//! at run time: if redaction scrubbed it meanwhile, there is nothing left to do.

use super::JobError;
use crate::app::AppState;
use crate::ops;
use crate::shopify::webhooks::{
    CustomersDataRequest, CustomersRedact, PayloadCustomer, ScopesUpdate, Topic,
};
use crate::store::{CustomerRef, Job};
use serde::de::DeserializeOwned;

pub async fn run(state: &AppState, job: &Job) -> Result<(), JobError> {
    let receipt_id = job
        .receipt_id
        .ok_or_else(|| JobError::Permanent("webhook job without a receipt".into()))?;
    let Some(receipt) = state.store.receipt(receipt_id).await? else {
        return Ok(()); // erased by shop/redact
    };
    let Some(payload) = receipt.payload.as_deref() else {
        return Ok(()); // scrubbed by customers/redact
    };
    let topic = Topic::parse(&receipt.topic)
        .ok_or_else(|| JobError::Permanent(format!("no handler for topic {:?}", receipt.topic)))?;
    let store = &state.store;
    let shop = receipt.shop.as_str();
    let now = state.clock.now();
    let mut mark_done = true;
    match topic {
        Topic::AppUninstalled => {
            // When the uninstall happened, not when its (possibly late) delivery arrived.
            let at = receipt
                .triggered_at
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map_or(receipt.received_at, |t| t.with_timezone(&chrono::Utc));
            ops::install::uninstall(store, shop, at, now).await?;
        }
        Topic::AppScopesUpdate => {
            let p: ScopesUpdate = parse(payload)?;
            ops::install::scopes_updated(store, shop, &p.current, now).await?;
        }
        Topic::CustomersDataRequest => {
            let p: CustomersDataRequest = parse(payload)?;
            let customer = customer_ref(&p.customer)?;
            ops::privacy::customer_data_request(
                store,
                shop,
                &customer,
                p.data_request.map(|d| d.id),
                now,
            )
            .await?;
        }
        Topic::CustomersRedact => {
            let p: CustomersRedact = parse(payload)?;
            let customer = customer_ref(&p.customer)?;
            ops::privacy::redact_customer(store, shop, &customer, now).await?;
            // This receipt was about the customer too and is now scrubbed; leave it so.
            mark_done = false;
        }
        Topic::ShopRedact => {
            ops::privacy::redact_shop(store, shop, Some(receipt.id)).await?;
        }
    }
    if mark_done {
        store
            .set_receipt_status(receipt.id, "done", state.clock.now())
            .await?;
    }
    Ok(())
}

fn parse<T: DeserializeOwned>(payload: &str) -> Result<T, JobError> {
    serde_json::from_str(payload)
        .map_err(|e| JobError::Permanent(format!("payload does not match the topic: {e}")))
}

fn customer_ref(c: &PayloadCustomer) -> Result<CustomerRef, JobError> {
    let r = CustomerRef {
        id: c.id,
        email: c
            .email
            .as_ref()
            .map(|e| e.trim().to_lowercase())
            .filter(|e| !e.is_empty()),
    };
    if r.id.is_none() && r.email.is_none() {
        return Err(JobError::Permanent(
            "the payload names no customer (neither id nor email)".into(),
        ));
    }
    Ok(r)
}
