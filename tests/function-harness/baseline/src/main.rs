//! The logic of Shopify's Rust discount template (10 % off the order and 20 % off the most
//! expensive line, for the classes the discount has), written for `shopify_function` 2.3 the
//! way the crate's own examples are. The benchmark runs it beside Keel's Function on the same
//! carts, so the ratio it reports does not depend on the harness matching Shopify's runner.
//! Keel's schema subset has every type this needs.

use shopify_function::prelude::*;
use shopify_function::Result;

#[typegen("../../../extensions/vip-discount/schema.graphql", enums_as_str = ["CurrencyCode"])]
pub mod schema {
    #[query("src/cart_lines_discounts_generate_run.graphql")]
    pub mod cart_lines_discounts_generate_run {}
}

#[shopify_function]
fn cart_lines_discounts_generate_run(
    input: schema::cart_lines_discounts_generate_run::Input,
) -> Result<schema::CartLinesDiscountsGenerateRunResult> {
    let max_cart_line = input
        .cart()
        .lines()
        .iter()
        .max_by(|a, b| {
            a.cost()
                .subtotal_amount()
                .amount()
                .partial_cmp(b.cost().subtotal_amount().amount())
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .ok_or("No cart lines found")?;
    let classes = input.discount().discount_classes();
    let has_order = classes.contains(&schema::DiscountClass::Order);
    let has_product = classes.contains(&schema::DiscountClass::Product);
    if !has_order && !has_product {
        return Ok(schema::CartLinesDiscountsGenerateRunResult { operations: vec![] });
    }
    let mut operations = vec![];
    if has_order {
        operations.push(schema::CartOperation::OrderDiscountsAdd(
            schema::OrderDiscountsAddOperation {
                selection_strategy: schema::OrderDiscountSelectionStrategy::First,
                candidates: vec![schema::OrderDiscountCandidate {
                    targets: vec![schema::OrderDiscountCandidateTarget::OrderSubtotal(
                        schema::OrderSubtotalTarget {
                            excluded_cart_line_ids: vec![],
                        },
                    )],
                    message: Some("10% OFF ORDER".to_string()),
                    value: schema::OrderDiscountCandidateValue::Percentage(schema::Percentage {
                        value: Decimal(10.0),
                    }),
                    conditions: None,
                    associated_discount_code: None,
                }],
            },
        ));
    }
    if has_product {
        operations.push(schema::CartOperation::ProductDiscountsAdd(
            schema::ProductDiscountsAddOperation {
                selection_strategy: schema::ProductDiscountSelectionStrategy::First,
                candidates: vec![schema::ProductDiscountCandidate {
                    targets: vec![schema::ProductDiscountCandidateTarget::CartLine(
                        schema::CartLineTarget {
                            id: max_cart_line.id().clone(),
                            quantity: None,
                        },
                    )],
                    message: Some("20% OFF PRODUCT".to_string()),
                    value: schema::ProductDiscountCandidateValue::Percentage(schema::Percentage {
                        value: Decimal(20.0),
                    }),
                    associated_discount_code: None,
                }],
            },
        ));
    }
    Ok(schema::CartLinesDiscountsGenerateRunResult { operations })
}

fn main() {
    log!("Please invoke a named export.");
    std::process::abort()
}
