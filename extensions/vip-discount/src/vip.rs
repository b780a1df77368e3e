//! Who is VIP on a run, and with which tier — the part both targets share.
//!
//! A buyer can only be VIP when logged in, with either Keel's `vip_tier` metafield set or one of the
//! configured VIP tags (`hasAnyTag($vipTags)`, evaluated by Shopify). That is decided before the
//! configuration is even read, so guests and ordinary customers cost next to nothing. Problems with
//! the configuration are logged once per run and mean "no discount", never a failed run.

use shopify_function::prelude::log;
use vip_config::{Tier, VipConfig};

use crate::input::RawJson;

/// What a run would have given, for the log line of a run that gives nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Benefit {
    Discount,
    Shipping,
}

/// Logs why the run gives nothing, as one line ("vip-discount: {reason}; no VIP {benefit}").
/// Every such line goes through here, so both targets share their texts and the formatting code
/// (the wasm's size is budgeted).
#[inline(never)]
pub fn skipped(benefit: Benefit, reason: core::fmt::Arguments<'_>) {
    let benefit = match benefit {
        Benefit::Discount => "discount",
        Benefit::Shipping => "shipping",
    };
    log!("vip-discount: {reason}; no VIP {benefit}");
}

/// What the input says about the buyer.
#[derive(Clone, Copy, Debug)]
pub struct Buyer<'a> {
    /// The customer's `vip_tier` metafield, when set.
    pub tier_name: Option<&'a str>,
    /// Whether the customer has any of the configured VIP tags.
    pub has_vip_tag: bool,
}

impl Buyer<'_> {
    /// False for every buyer who cannot get a tier, whatever the configuration says.
    pub fn may_be_vip(&self) -> bool {
        self.tier_name.is_some() || self.has_vip_tag
    }
}

/// Reads the discount's configuration metafield; `None` (and a log line) when it is missing or
/// does not pass [`VipConfig::from_json`].
pub fn load_config(metafield_json: Option<RawJson>) -> Option<VipConfig> {
    let Some(json) = metafield_json else {
        skipped(
            Benefit::Discount,
            format_args!("the discount has no $app:vip/config metafield"),
        );
        return None;
    };
    match VipConfig::from_json(&json) {
        Ok(config) => Some(config),
        Err(errors) => {
            // Logs are capped at 1 kB per run: the first problem and a count is what fits.
            let more = errors.0.len().saturating_sub(1);
            match errors.first() {
                Some(first) if more > 0 => {
                    skipped(
                        Benefit::Discount,
                        format_args!("configuration rejected ({first}; {more} more problems)"),
                    );
                }
                Some(first) => {
                    skipped(
                        Benefit::Discount,
                        format_args!("configuration rejected ({first})"),
                    );
                }
                None => skipped(Benefit::Discount, format_args!("configuration rejected")),
            }
            None
        }
    }
}

/// The buyer's tier under `config`, logging when the customer's metafield names a tier that the
/// configuration no longer has (a common result of renaming tiers).
pub fn tier_for<'c>(config: &'c VipConfig, buyer: &Buyer<'_>) -> Option<&'c Tier> {
    let tier = config.tier_for_buyer(buyer.tier_name, buyer.has_vip_tag);
    if let (Some(name), None) = (buyer.tier_name, &tier) {
        skipped(
            Benefit::Discount,
            format_args!("the customer's VIP tier \"{name}\" is not configured"),
        );
    }
    tier
}
