//! `cart.delivery-options.discounts.generate.run`: free or discounted shipping on every delivery
//! group for VIP tiers that have a shipping benefit.
//!
//! Same early exits as the lines target (buyer, SHIPPING class, configuration, tier). The lines are
//! read only when the tier has a minimum subtotal that the cart's subtotal reaches; the minimum
//! counts the same eligible lines as the line discount does.

use shopify_function::Result;
use vip_config::{CartCurrency, CartTerms, Decimal};

use crate::input::Run;
use crate::lines_scan::{self, Want};
use crate::schema::{self, delivery_run};
use crate::vip::{self, skipped, Benefit::Shipping, Buyer};

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

    if let Some(minimum) = tier.minimum_subtotal {
        let Some(rate) = typed.presentment_currency_rate().0 else {
            skipped(
                Shipping,
                format_args!("presentmentCurrencyRate is not a decimal"),
            );
            return no_discount();
        };
        let cart_cost = typed.cart().cost().subtotal_amount();
        let currency = CartCurrency {
            rate,
            code: cart_cost.currency_code(),
        };
        let Some(cart_subtotal) = cart_cost.amount().0 else {
            skipped(
                Shipping,
                format_args!("the cart's subtotal is not a decimal"),
            );
            return no_discount();
        };
        let Some(minimum) = currency.from_shop(minimum) else {
            skipped(Shipping, format_args!("amounts out of range"));
            return no_discount();
        };
        // Only the minimum matters here (a cap limits the line discount, not shipping).
        let terms = CartTerms {
            percentage: tier.percentage,
            minimum: Some(minimum),
            cap: None,
        };
        // The eligible lines add up to at most the cart's subtotal: a cart short of the minimum
        // is settled without reading a line.
        let mut meets = terms.meets_minimum_between(Decimal::ZERO, cart_subtotal);
        if meets.is_none() {
            let want = Want {
                eligibility: true,
                ..Want::default()
            };
            let settled = lines_scan::scan(&input.raw, want).and_then(|scan| {
                lines_scan::settle(&input.raw, &scan, cart_subtotal, &mut |low, high| {
                    meets = terms.meets_minimum_between(low, high);
                    meets.is_some()
                })
            });
            if let Err(error) = settled {
                skipped(Shipping, format_args!("{error}"));
                return no_discount();
            }
        }
        if meets != Some(true) {
            return no_discount();
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
