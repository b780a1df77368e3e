//! Keel's VIP discount, a Shopify Discount Function (`shopify_function` 2.3,
//! `wasm32-unknown-unknown`) with one exported function per target of shopify.extension.toml:
//!
//! - [`cart_lines_discounts_generate_run`] ([`lines`]): the tier's percentage, or its cap, off the
//!   eligible lines or the order subtotal;
//! - [`cart_delivery_options_discounts_generate_run`] ([`delivery`]): the tier's free or
//!   discounted shipping.
//!
//! Who is VIP ([`vip`]) and what a tier is worth come from Keel's configuration, read from the
//! discount's metafield by the `vip-config` crate the app server validates settings with. The
//! cart lines are read in one pass ([`lines_scan`]); [`input`] holds the readers the generated
//! types lack. The wasm build allocates with a bump allocator ([`alloc`]).
//!
//! Nothing here panics on a bad configuration: the run returns no operations and logs why. That
//! is also why the configuration is not deserialized with `shopify_function`'s derive: generated
//! accessors `unwrap` their decode, so a setting of the wrong type would trap the run. Instead the
//! metafield's JSON is left undecoded ([`input::RawJson`]) and read by `vip-config`'s parser, the
//! same one the app server runs — through the Function API's own values, without serde.

use shopify_function::prelude::*;
use shopify_function::Result;

#[cfg(target_family = "wasm")]
mod alloc;
mod delivery;
mod input;
mod lines;
mod lines_scan;
mod vip;

// Every `Decimal` Keel reads or writes is mapped to an exact type (see `input`) instead of the
// crate's default `f64` wrapper, and the configuration metafield is left undecoded until Keel reads
// it. `enums_as_str` must name only enums the schema has: the crate's default list also names
// LanguageCode and CountryCode, which Keel's subset leaves out, and typegen rejects a name it
// cannot find. The typed views are used for what is read once (buyer, discount, cart currency,
// delivery groups); the lines are read from the raw input by `lines_scan`.
#[typegen("schema.graphql", enums_as_str = ["CurrencyCode"], custom_scalar_overrides = {
    "Percentage.value" => super::input::DecimalText,
    "FixedAmount.amount" => super::input::DecimalText,
    "ProductDiscountCandidateFixedAmount.amount" => super::input::DecimalText,
    "CartLineMinimumSubtotal.minimumAmount" => super::input::DecimalText,
    "OrderMinimumSubtotal.minimumAmount" => super::input::DecimalText,
})]
pub mod schema {
    #[query("src/cart_lines_discounts_generate_run.graphql", custom_scalar_overrides = {
        "Input.discount.metafield.jsonValue" => super::input::RawJson,
        "Input.presentmentCurrencyRate" => super::input::ExactDecimal,
        "Input.cart.cost.subtotalAmount.amount" => super::input::ExactDecimal,
        "Input.cart.amounts.cost.subtotalAmount.amount" => super::input::ExactDecimal,
    })]
    pub mod lines_run {}

    #[query("src/cart_delivery_options_discounts_generate_run.graphql", custom_scalar_overrides = {
        "Input.discount.metafield.jsonValue" => super::input::RawJson,
        "Input.presentmentCurrencyRate" => super::input::ExactDecimal,
        "Input.cart.cost.subtotalAmount.amount" => super::input::ExactDecimal,
        "Input.cart.amounts.cost.subtotalAmount.amount" => super::input::ExactDecimal,
    })]
    pub mod delivery_run {}
}

#[cfg(target_family = "wasm")]
#[global_allocator]
static ALLOCATOR: alloc::BumpAllocator = alloc::BumpAllocator::new();

#[shopify_function]
fn cart_lines_discounts_generate_run(
    input: input::Run<schema::lines_run::Input>,
) -> Result<schema::CartLinesDiscountsGenerateRunResult> {
    lines::run(input)
}

#[shopify_function]
fn cart_delivery_options_discounts_generate_run(
    input: input::Run<schema::delivery_run::Input>,
) -> Result<schema::CartDeliveryOptionsDiscountsGenerateRunResult> {
    delivery::run(input)
}

fn main() {
    log!("vip-discount: invoke a named export (see shopify.extension.toml)");
    std::process::abort()
}

#[cfg(test)]
mod tests;
