//! The VIP discount: the settings a merchant saves, and their sync to the shop's automatic
//! discount on Shopify, which runs Keel's checkout Function (`extensions/vip-discount`).
//!
//! - Saving validates the configuration with `vip-config` — the types and parser the Function
//!   runs — stores its canonical form and enqueues the sync job in one transaction, so a save
//!   acknowledged is a save that reaches Shopify, crash or not.
//! - The sync job ([`sync_discount`]) creates the discount once (`discountAutomaticAppCreate`)
//!   and updates that same discount after every later save (`discountAutomaticAppUpdate`), with
//!   the configuration in the discount's `$app:vip`/`config` metafield — also the source of the
//!   Function's input-query variables.
//!
//! Running a sync twice creates one discount: the create carries `@idempotent` with a key from
//! the job id (a retried attempt gets Shopify's first answer), and without a stored discount id
//! Keel first looks for its own discount (`discountNodes`: Keel's title and a `$app:vip` config
//! metafield, a namespace only Keel can write) — the crash between Shopify's answer and storing
//! the id. Syncs of one shop hold a lease, so they never race each other, and a job whose save
//! was superseded by a later one does nothing (the later save's job pushes the newer settings).
//!
//! This module knows the settings' meaning, not HTTP; it acts through the store and the Admin
//! client.

use crate::clock::DynClock;
use crate::shopify::admin::operations::{
    idempotency_key, AutomaticAppDiscount, AutomaticAppDiscountUpdate, CombinesWith,
    DiscountMetafield,
};
use crate::shopify::admin::{AdminClient, AdminError, UserError};
use crate::shopify::{Gid, ShopDomain};
use crate::store::{
    DynStore, NewJob, StoreError, Timestamp, VipSettings, VipSyncClaim, VipSyncOutcome,
};
use chrono::Duration;
use vip_config::{AppliesTo, ConfigErrors, VipConfig};

/// The kind of the job that syncs a shop's settings to its discount.
pub const SYNC_JOB_KIND: &str = "vip/sync-discount";
/// With the job backoff (2 s doubling, capped at an hour) about nine hours of retries: long
/// enough to ride out a Shopify outage, short enough that a merchant sees a failure that day.
pub const SYNC_JOB_MAX_ATTEMPTS: i32 = 12;
/// The title Keel gives the discount it creates (the merchant may rename it in the admin).
pub const DISCOUNT_TITLE: &str = "Keel VIP pricing";
/// The Function's extension handle (`extensions/vip-discount/shopify.extension.toml`).
pub const FUNCTION_HANDLE: &str = "vip-discount";
/// The discount metafield holding the configuration, and the Function's input variables.
pub const CONFIG_NAMESPACE: &str = "$app:vip";
pub const CONFIG_KEY: &str = "config";
/// How long one sync holds the shop's lease: longer than a job attempt may run (60 s), so a
/// live sync is never joined by a second one.
pub const SYNC_LEASE: Duration = Duration::seconds(90);

#[derive(Debug, thiserror::Error)]
pub enum VipError {
    /// The configuration breaks the rules; every problem, each with its JSON path.
    #[error("the VIP settings are invalid: {0}")]
    Invalid(ConfigErrors),
    /// The shop has no row in Keel (never installed, or erased by `shop/redact`).
    #[error("Keel does not know this shop")]
    UnknownShop,
    /// Another sync of the shop's discount holds the lease; try again shortly.
    #[error("another sync of this shop's VIP discount is running")]
    SyncBusy,
    /// Stored settings the current rules refuse (written by an older Keel, or edited by hand).
    #[error("the stored VIP settings are no longer valid: {0}")]
    StoredInvalid(ConfigErrors),
    #[error(transparent)]
    Shopify(#[from] AdminError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl VipError {
    /// Whether a later attempt may succeed (Shopify or the database unavailable, a busy lease).
    pub fn is_transient(&self) -> bool {
        match self {
            VipError::SyncBusy => true,
            VipError::Shopify(e) => e.is_transient(),
            VipError::Store(e) => !matches!(e, StoreError::Corrupt(_)),
            VipError::Invalid(_) | VipError::UnknownShop | VipError::StoredInvalid(_) => false,
        }
    }
}

/// Validates `value` (the metafield's JSON) as the Function will read it. Returns the
/// configuration and its canonical metafield text.
pub fn validate(value: &serde_json::Value) -> Result<(VipConfig, String), VipError> {
    let config = VipConfig::from_json(&value).map_err(VipError::Invalid)?;
    // Also refuses a configuration too large for Shopify to hand to the Function.
    let text = config.to_metafield_value().map_err(VipError::Invalid)?;
    Ok((config, text))
}

/// The shop's settings, `None` when never saved.
pub async fn settings(store: &DynStore, shop: &str) -> Result<Option<VipSettings>, VipError> {
    Ok(store.vip_settings(shop).await?)
}

/// Validates and saves `value` as the shop's settings and queues their sync, in one
/// transaction. Nothing is stored when the configuration is invalid.
pub async fn save(
    store: &DynStore,
    shop: &str,
    value: &serde_json::Value,
    now: Timestamp,
) -> Result<VipSettings, VipError> {
    let (_, text) = validate(value)?;
    let job = NewJob {
        shop: Some(shop.to_owned()),
        kind: SYNC_JOB_KIND.to_owned(),
        // The job finds the settings by shop; which save it syncs is the settings' `sync_job_id`.
        payload: "{}".to_owned(),
        receipt_id: None,
        run_at: now,
        max_attempts: SYNC_JOB_MAX_ATTEMPTS,
    };
    let saved = store
        .save_vip_settings(shop, &text, &job, now)
        .await?
        .ok_or(VipError::UnknownShop)?;
    tracing::info!(
        shop,
        version = saved.version,
        "VIP settings saved; discount sync queued"
    );
    Ok(saved)
}

/// The discount classes the configuration needs: the Function only emits operations for the
/// classes its discount has, and Shopify only applies those.
///
/// PRODUCT when a tier takes a percentage off lines, ORDER when one takes it off the order
/// subtotal, SHIPPING when one has a shipping benefit. A tier of 0 % (shipping only) needs no
/// line or order class.
pub fn discount_classes(config: &VipConfig) -> Vec<String> {
    let off = |applies: AppliesTo| {
        config
            .tiers
            .iter()
            .any(|t| t.applies_to == applies && !t.percentage.is_zero())
    };
    let mut classes = Vec::new();
    if off(AppliesTo::Lines) {
        classes.push("PRODUCT".to_owned());
    }
    if off(AppliesTo::OrderSubtotal) {
        classes.push("ORDER".to_owned());
    }
    if config.tiers.iter().any(|t| t.shipping.is_some()) {
        classes.push("SHIPPING".to_owned());
    }
    classes
}

/// The sync job being run: its id names its save and its `@idempotent` key.
#[derive(Debug, Clone, Copy)]
pub struct SyncJob {
    pub id: i64,
    pub attempt: i32,
    pub max_attempts: i32,
}

/// What a sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Synced {
    /// The discount carries settings `version`.
    Discount {
        discount_id: Gid,
        version: i64,
        created: bool,
    },
    /// A later save replaced this job's; that save's job syncs it.
    Superseded,
    /// The shop's settings are gone (`shop/redact`).
    NoSettings,
}

/// Pushes the shop's latest settings to its automatic discount, creating it the first time.
/// Records the outcome (discount id, synced version, or the failure and whether it is final)
/// before returning; a failure the job will retry leaves the state `pending` with the reason.
pub async fn sync_discount(
    store: &DynStore,
    admin: &AdminClient,
    clock: &DynClock,
    shop: &ShopDomain,
    job: SyncJob,
) -> Result<Synced, VipError> {
    let holder = format!("job-{}", job.id);
    let now = clock.now();
    let settings = match store
        .claim_vip_sync(shop.as_str(), &holder, now + SYNC_LEASE, now)
        .await?
    {
        VipSyncClaim::Claimed(settings) => settings,
        VipSyncClaim::Busy => return Err(VipError::SyncBusy),
        VipSyncClaim::NoSettings => return Ok(Synced::NoSettings),
    };
    if settings.sync_job_id != Some(job.id) {
        release(store, shop, &holder, &VipSyncOutcome::Released, clock).await?;
        tracing::info!(shop = %shop, version = settings.version, "VIP sync superseded by a later save");
        return Ok(Synced::Superseded);
    }
    let mut found = None;
    let pushed = push(admin, shop, &settings, job, clock.now(), &mut found).await;
    let outcome = match &pushed {
        Ok((id, _)) => VipSyncOutcome::Synced {
            version: settings.version,
            discount_id: id.to_string(),
        },
        Err(e) => VipSyncOutcome::Failed {
            version: settings.version,
            error: e.to_string(),
            gave_up: !e.is_transient() || job.attempt >= job.max_attempts,
            discount_id: found.as_ref().map(Gid::to_string),
        },
    };
    release(store, shop, &holder, &outcome, clock).await?;
    let (discount_id, created) = pushed?;
    tracing::info!(shop = %shop, version = settings.version, discount_id = %discount_id, created, "VIP discount synced");
    Ok(Synced::Discount {
        discount_id,
        version: settings.version,
        created,
    })
}

async fn release(
    store: &DynStore,
    shop: &ShopDomain,
    holder: &str,
    outcome: &VipSyncOutcome,
    clock: &DynClock,
) -> Result<(), VipError> {
    if !store
        .finish_vip_sync(shop.as_str(), holder, outcome, clock.now())
        .await?
    {
        // The lease expired and another sync took it; it pushes the latest settings itself.
        tracing::warn!(shop = %shop, "VIP sync finished after its lease was taken over; outcome not recorded");
    }
    Ok(())
}

/// The Shopify side of a sync: update the known discount, else adopt Keel's discount if one
/// exists, else create it. `found` keeps any discount id learnt on the way, for the record even
/// if a later step fails. Returns the discount and whether it was created now.
async fn push(
    admin: &AdminClient,
    shop: &ShopDomain,
    settings: &VipSettings,
    job: SyncJob,
    now: Timestamp,
    found: &mut Option<Gid>,
) -> Result<(Gid, bool), VipError> {
    let config =
        VipConfig::from_metafield_value(&settings.config).map_err(VipError::StoredInvalid)?;
    let metafield = DiscountMetafield {
        namespace: CONFIG_NAMESPACE.to_owned(),
        key: CONFIG_KEY.to_owned(),
        kind: "json".to_owned(),
        value: config
            .to_metafield_value()
            .map_err(VipError::StoredInvalid)?,
    };
    let classes = discount_classes(&config);
    let changes = AutomaticAppDiscountUpdate {
        discount_classes: Some(classes.clone()),
        metafields: vec![metafield.clone()],
        ..AutomaticAppDiscountUpdate::default()
    };

    let known = settings
        .discount_id
        .as_deref()
        .and_then(|id| id.parse::<Gid>().ok());
    if let Some(id) = &known {
        match admin
            .discount_automatic_app_update(shop, id, &changes)
            .await
        {
            Ok(updated) => return Ok((updated.discount_id, false)),
            // Deleted on Shopify (by the merchant, or with the app's data): make a new one.
            Err(AdminError::UserErrors(errors)) if names_missing_discount(&errors) => {
                tracing::warn!(shop = %shop, discount_id = %id, "the VIP discount no longer exists on Shopify; creating it again");
            }
            Err(e) => return Err(e.into()),
        }
    }

    let search = format!("title:'{DISCOUNT_TITLE}'");
    let ours = admin
        .app_discounts(shop, &search)
        .await?
        .into_iter()
        .find(|d| d.config.is_some() && Some(&d.id) != known.as_ref());
    if let Some(existing) = ours {
        *found = Some(existing.id.clone());
        let updated = admin
            .discount_automatic_app_update(shop, &existing.id, &changes)
            .await?;
        return Ok((updated.discount_id, false));
    }

    let discount = AutomaticAppDiscount {
        title: DISCOUNT_TITLE.to_owned(),
        function_handle: FUNCTION_HANDLE.to_owned(),
        discount_classes: classes,
        // VIP prices stack with the store's shipping promotions, not with other price cuts.
        combines_with: CombinesWith {
            order_discounts: false,
            product_discounts: false,
            shipping_discounts: true,
        },
        starts_at: now.to_rfc3339(),
        ends_at: None,
        metafields: vec![metafield],
    };
    let key = idempotency_key(job.id, "vip-discount-create");
    let created = admin
        .discount_automatic_app_create(shop, &discount, &key)
        .await?;
    Ok((created.discount_id, true))
}

/// Shopify's answer to an update of a discount that does not exist: a userError on `id`.
fn names_missing_discount(errors: &[UserError]) -> bool {
    errors
        .iter()
        .any(|e| e.field.as_deref() == Some(&["id".to_owned()][..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn classes(value: serde_json::Value) -> Vec<String> {
        let (config, _) = validate(&value).unwrap();
        discount_classes(&config)
    }

    #[test]
    fn discount_classes_follow_what_the_tiers_give() {
        assert_eq!(
            classes(json!({"tiers": [{"name": "Gold", "percentage": "15"}]})),
            ["PRODUCT"]
        );
        assert_eq!(
            classes(json!({"tiers": [
                {"name": "Gold", "percentage": "15", "shipping": {"percentage": "100"}},
                {"name": "Bronze", "percentage": "5", "appliesTo": "ORDER_SUBTOTAL"}
            ]})),
            ["PRODUCT", "ORDER", "SHIPPING"]
        );
        // A shipping-only tier takes nothing off lines.
        assert_eq!(
            classes(json!({"tiers": [{"name": "Ship", "shipping": {"percentage": "100"}}]})),
            ["SHIPPING"]
        );
    }

    #[test]
    fn validation_reports_every_problem_with_its_path() {
        let Err(VipError::Invalid(errors)) = validate(&json!({
            "vipTags": [""],
            "tiers": [{"name": "Gold", "percentage": "150"}, {"percentage": "5"}]
        })) else {
            panic!("an invalid configuration must be refused");
        };
        let paths: Vec<&str> = errors.0.iter().map(|e| e.path.as_str()).collect();
        assert!(paths.contains(&"tiers[1].name"), "{paths:?}");
        assert!(validate(&json!({"tiers": []})).is_err());
    }
}
