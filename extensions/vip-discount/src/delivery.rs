//! `cart.delivery-options.discounts.generate.run`: free or discounted shipping on every delivery
//! group for VIP tiers that have a shipping benefit.
//!
//! Same early exits as the lines target (buyer, SHIPPING class, configuration, tier). The lines are
//! read only when the tier has a minimum subtotal, which counts the same eligible lines as the
//! line discount does.

use shopify_function::prelude::log;
use shopify_function::Result;
use vip_config::CartCurrency;

use crate::input::Run;
use crate::lines_scan::{self, Want};
use crate::schema::{self, delivery_run};
use crate::vip::{self, Buyer};

type Output = schema::CartDeliveryOptionsDiscountsGenerateRunResult;

fn no_discount() -> Result<Output> {
    Ok(Output { operations: vec![] })
}

pub fn run(input: Run<delivery_run::Input>) -> Result<Output> {
    let typed = &input.typed;
    let Some(customer) = typed.buyer().buyer_identity().and_then(|b| b.customer()) else {
        return no_discount();
    };
    let buyer = Buyer {
        tier_name: customer.vip_tier().map(|m| m.value().as_str()),
        has_vip_tag: *customer.has_vip_tag(),
    };
    if !buyer.may_be_vip() {
        return no_discount();
    }

    if !typed
        .discount()
        .discount_classes()
        .contains(&schema::DiscountClass::Shipping)
    {
        return no_discount();
    }

    let metafield = typed.discount().metafield().map(|m| *m.json_value());
    let Some(config) = vip::load_config(metafield) else {
        return no_discount();
    };
    let Some(tier) = vip::tier_for(&config, &buyer) else {
        return no_discount();
    };
    let Some(shipping) = &tier.shipping else {
        return no_discount();
    };

    if tier.minimum_subtotal.is_some() {
        let Some(rate) = typed.presentment_currency_rate().0 else {
            log!("vip-discount: presentmentCurrencyRate is not a decimal; no VIP shipping");
            return no_discount();
        };
        let currency = CartCurrency {
            rate,
            code: typed.cart().cost().subtotal_amount().currency_code(),
        };
        let want = Want {
            subtotal: true,
            ..Want::default()
        };
        let scan = match lines_scan::scan(&input.raw, want) {
            Ok(scan) => scan,
            Err(error) => {
                log!(
                    "vip-discount: cart lines unreadable ({}); no VIP shipping",
                    error.describe()
                );
                return no_discount();
            }
        };
        match tier.meets_minimum(scan.eligible_subtotal, &currency) {
            Ok(true) => {}
            Ok(false) => return no_discount(),
            Err(_) => {
                log!("vip-discount: amounts out of range; no VIP shipping");
                return no_discount();
            }
        }
    }

    let targets: Vec<_> = typed
        .cart()
        .delivery_groups()
        .iter()
        .map(|group| {
            schema::DeliveryDiscountCandidateTarget::DeliveryGroup(schema::DeliveryGroupTarget {
                id: group.id().clone(),
            })
        })
        .collect();
    if targets.is_empty() {
        return no_discount();
    }
    Ok(Output {
        operations: vec![schema::DeliveryOperation::DeliveryDiscountsAdd(
            schema::DeliveryDiscountsAddOperation {
                candidates: vec![schema::DeliveryDiscountCandidate {
                    associated_discount_code: None,
                    message: Some(shipping.message(&tier.name)),
                    targets,
                    value: schema::DeliveryDiscountCandidateValue::Percentage(schema::Percentage {
                        value: shipping.percentage.into(),
                    }),
                }],
                selection_strategy: schema::DeliveryDiscountSelectionStrategy::All,
            },
        )],
    })
}
