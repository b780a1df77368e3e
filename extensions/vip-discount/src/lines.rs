//! `cart.lines.discounts.generate.run`: the VIP percentage (or its cap) on the eligible lines, as a
//! product discount, or on the order subtotal minus ineligible lines, as an order discount.
//!
//! Exits, in input order so each costs as little as possible: the buyer is a guest or has neither a
//! tier nor a VIP tag (nothing but the buyer is decoded); the discount has neither the PRODUCT nor
//! the ORDER class; the configuration is missing or invalid; the tier is unknown, gives no
//! percentage, or needs a class the discount lacks; the cart's subtotal is below the tier's
//! minimum. Only then are the lines read — their amounts only when the cart's subtotal leaves the
//! minimum or the cap open, and then only as many as it takes to settle them.

use shopify_function::Result;
use vip_config::{AppliesTo, CartCurrency, Decimal, DiscountValue, NoDiscount, Tier};

use crate::input::{DecimalText, Run};
use crate::lines_scan::{self, Want};
use crate::schema::{self, lines_run};
use crate::vip::{self, skipped, Benefit::Discount, Buyer};

type Output = schema::CartLinesDiscountsGenerateRunResult;

fn no_discount() -> Result<Output> {
    Ok(Output { operations: vec![] })
}

pub fn run(input: Run<lines_run::Input>) -> Result<Output> {
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

    let classes = typed.discount().discount_classes();
    let product_class = classes.contains(&schema::DiscountClass::Product);
    let order_class = classes.contains(&schema::DiscountClass::Order);
    if !product_class && !order_class {
        return no_discount();
    }

    let metafield = typed.discount().metafield().map(|m| *m.json_value());
    let Some(config) = vip::load_config(metafield) else {
        return no_discount();
    };
    let Some(tier) = vip::tier_for(&config, &buyer) else {
        return no_discount();
    };
    if tier.percentage.is_zero() {
        return no_discount();
    }
    let class_present = match tier.applies_to {
        AppliesTo::Lines => product_class,
        AppliesTo::OrderSubtotal => order_class,
    };
    if !class_present {
        skipped(
            Discount,
            format_args!(
                "tier \"{}\" applies to {} but the discount lacks that class",
                tier.name,
                tier.applies_to.as_str()
            ),
        );
        return no_discount();
    }

    let Some(rate) = typed.presentment_currency_rate().0 else {
        skipped(
            Discount,
            format_args!("presentmentCurrencyRate is not a decimal"),
        );
        return no_discount();
    };
    let cart_cost = typed.cart().cost().subtotal_amount();
    let currency = CartCurrency {
        rate,
        code: cart_cost.currency_code(),
    };
    // Only a minimum or a cap makes the subtotal matter (zero settles every other tier below).
    let cart_subtotal = if tier.needs_subtotal() {
        let Some(subtotal) = cart_cost.amount().0 else {
            skipped(
                Discount,
                format_args!("the cart's subtotal is not a decimal"),
            );
            return no_discount();
        };
        subtotal
    } else {
        Decimal::ZERO
    };

    // The eligible lines add up to at most the cart's subtotal, which settles most minimums and
    // caps before a single line is read: a cart short of the minimum gets nothing, one whose
    // whole subtotal stays under the cap gets the percentage.
    let Ok(terms) = tier.cart_terms(&currency) else {
        skipped(Discount, format_args!("amounts out of range"));
        return no_discount();
    };
    let mut decided = terms.lines_value_between(Decimal::ZERO, cart_subtotal);
    if let Some(Err(reason)) = decided {
        if reason == NoDiscount::Arithmetic {
            skipped(Discount, format_args!("amounts out of range"));
        }
        return no_discount();
    }
    let want = Want {
        eligible_ids: tier.applies_to == AppliesTo::Lines,
        ineligible_ids: tier.applies_to == AppliesTo::OrderSubtotal,
        eligibility: decided.is_none(),
    };
    let scan = match lines_scan::scan(&input.raw, want) {
        Ok(scan) => scan,
        Err(error) => {
            skipped(Discount, format_args!("{error}"));
            return no_discount();
        }
    };
    if scan.eligible == 0 {
        return no_discount();
    }
    if decided.is_none() {
        let settled = lines_scan::settle(&input.raw, &scan, cart_subtotal, &mut |low, high| {
            decided = terms.lines_value_between(low, high);
            decided.is_some()
        });
        if let Err(error) = settled {
            skipped(Discount, format_args!("{error}"));
            return no_discount();
        }
    }
    let value = match decided {
        Some(Ok(value)) => value,
        Some(Err(NoDiscount::Arithmetic)) | None => {
            skipped(Discount, format_args!("amounts out of range"));
            return no_discount();
        }
        Some(Err(NoDiscount::BelowMinimum | NoDiscount::NoPercentage)) => return no_discount(),
    };
    let Some(operation) = operation(tier, value, &currency, scan) else {
        skipped(Discount, format_args!("amounts out of range"));
        return no_discount();
    };
    Ok(Output {
        operations: vec![operation],
    })
}

fn operation(
    tier: &Tier,
    value: DiscountValue,
    currency: &CartCurrency<'_>,
    scan: lines_scan::Scan,
) -> Option<schema::CartOperation> {
    let message = Some(tier.message());
    Some(match tier.applies_to {
        AppliesTo::Lines => {
            let value = match value {
                DiscountValue::Percentage(percentage) => {
                    schema::ProductDiscountCandidateValue::Percentage(schema::Percentage {
                        value: percentage.into(),
                    })
                }
                DiscountValue::FixedAmount(amount) => {
                    schema::ProductDiscountCandidateValue::FixedAmount(
                        schema::ProductDiscountCandidateFixedAmount {
                            amount: DecimalText(currency.format(amount)?),
                            // The cap is a total for the whole candidate, and Shopify's schema
                            // documents that an omitted `appliesToEachItem` "default value is
                            // `false`, which causes the value to be applied once across the
                            // entitled items" — one candidate over every eligible line then
                            // takes off exactly the cap, however Shopify spreads it.
                            applies_to_each_item: None,
                        },
                    )
                }
            };
            let targets = scan
                .eligible_ids
                .into_iter()
                .map(|id| {
                    schema::ProductDiscountCandidateTarget::CartLine(schema::CartLineTarget {
                        id,
                        quantity: None,
                    })
                })
                .collect();
            schema::CartOperation::ProductDiscountsAdd(schema::ProductDiscountsAddOperation {
                candidates: vec![schema::ProductDiscountCandidate {
                    associated_discount_code: None,
                    message,
                    targets,
                    value,
                }],
                selection_strategy: schema::ProductDiscountSelectionStrategy::First,
            })
        }
        AppliesTo::OrderSubtotal => {
            let value = match value {
                DiscountValue::Percentage(percentage) => {
                    schema::OrderDiscountCandidateValue::Percentage(schema::Percentage {
                        value: percentage.into(),
                    })
                }
                DiscountValue::FixedAmount(amount) => {
                    schema::OrderDiscountCandidateValue::FixedAmount(schema::FixedAmount {
                        amount: DecimalText(currency.format(amount)?),
                    })
                }
            };
            schema::CartOperation::OrderDiscountsAdd(schema::OrderDiscountsAddOperation {
                candidates: vec![schema::OrderDiscountCandidate {
                    associated_discount_code: None,
                    conditions: None,
                    message,
                    targets: vec![schema::OrderDiscountCandidateTarget::OrderSubtotal(
                        schema::OrderSubtotalTarget {
                            excluded_cart_line_ids: scan.ineligible_ids,
                        },
                    )],
                    value,
                }],
                selection_strategy: schema::OrderDiscountSelectionStrategy::First,
            })
        }
    })
}
