//! Native tests: every fixture of `vip-fixtures` through `run_function_with_input` (the same
//! generated (de)serialization as the wasm, linked against the provider natively), plus inputs
//! Shopify should never send but the Function must survive.
//!
//! Logs are only visible to the wasm harness (tests/function-harness), which runs the same
//! fixtures and also checks each fixture's log line and Shopify's resource limits.

use super::*;
use shopify_function::run_function_with_input;
use shopify_function::wasm_api::{Context, Serialize};
use vip_fixtures::{scenarios, Buyer, Cart, Json, LineKind, Scenario, Target};

/// The output as JSON, through the same `Serialize` the wasm export uses.
fn output_json<T: Serialize>(output: &T) -> serde_json::Value {
    let mut context = Context::new_with_input(serde_json::json!({}));
    output.serialize(&mut context).expect("serializable output");
    context
        .finalize_output_and_return()
        .expect("complete output")
}

fn run(target: Target, input: &str) -> serde_json::Value {
    match target {
        Target::Lines => output_json(
            &run_function_with_input(cart_lines_discounts_generate_run, input)
                .expect("the lines target never fails"),
        ),
        Target::Delivery => output_json(
            &run_function_with_input(cart_delivery_options_discounts_generate_run, input)
                .expect("the delivery target never fails"),
        ),
    }
}

fn check(name: &str) {
    let scenario: Scenario = scenarios::all()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no fixture named {name}"));
    let output = run(scenario.target, &scenario.input().to_text());
    assert_eq!(
        output,
        scenario.expected.to_value(),
        "fixture {name}: output differs"
    );
}

/// One test per fixture, so a failure names the behaviour that broke.
macro_rules! fixture_tests {
    ($($name:ident),* $(,)?) => {
        $( #[test] fn $name() { check(stringify!($name)); } )*
        const FIXTURE_TESTS: &[&str] = &[$(stringify!($name)),*];
    };
}

fixture_tests!(
    guest,
    no_buyer_identity,
    customer_without_tier,
    tier_gold,
    tier_silver,
    tier_bronze_order_subtotal,
    tag_only_vip,
    tier_not_configured,
    all_lines_excluded,
    gift_cards_only,
    gift_card_and_custom_item_skipped,
    minimum_subtotal_not_met,
    cap_reached,
    cap_not_reached_without_ineligible_lines,
    minimum_missed_by_the_whole_cart,
    currency_eur_cap,
    currency_jpy_cap,
    currency_kwd_cap,
    currency_jpy_minimum_not_met,
    lines_1_vip,
    lines_3_vip,
    lines_3_vip_cap_open,
    lines_3_vip_no_cap,
    lines_3_vip_order,
    lines_3_vip_order_capped,
    lines_3_non_vip,
    lines_200_vip,
    lines_200_vip_cap_open,
    lines_200_vip_no_cap,
    lines_200_vip_order,
    lines_200_vip_order_capped,
    lines_200_non_vip,
    lines_500_vip,
    lines_500_vip_cap_open,
    lines_500_vip_no_cap,
    lines_500_vip_order,
    lines_500_vip_order_capped,
    lines_500_non_vip,
    config_missing,
    config_empty,
    config_malformed,
    config_not_an_object,
    shipping_only_discount_gives_no_line_discount,
    order_tier_without_order_class,
    delivery_guest,
    delivery_customer_without_tier,
    delivery_gold_free_shipping,
    delivery_silver_discounted_shipping,
    delivery_tag_only_vip,
    delivery_minimum_subtotal_not_met,
    delivery_currency_jpy_minimum_met,
    delivery_tier_without_shipping,
    delivery_without_shipping_class,
    delivery_config_malformed,
    delivery_200_vip,
    delivery_500_vip,
);

#[test]
fn every_fixture_has_a_native_test() {
    for scenario in scenarios::all() {
        assert!(
            FIXTURE_TESTS.contains(&scenario.name.as_str()),
            "fixture {} has no native test: add it to fixture_tests!",
            scenario.name
        );
    }
}

/// A Gold VIP's lines input with a field of the second element of `cart.<list>` replaced.
fn gold_input_with(list: &str, path: &[&str], value: Json) -> String {
    let cart = Cart::new()
        .buyer(Buyer::with_tier("Gold"))
        .with_lines(&[("10.00", LineKind::Product), ("20.00", LineKind::Product)]);
    let mut input = cart.input(Target::Lines).to_value();
    let mut node = &mut input["cart"][list][1];
    for key in path {
        node = &mut node[*key];
    }
    *node = value.to_value();
    input.to_string()
}

/// Gold (15 %, cap 50) on an eligible 300.00 and an excluded 100.00: the cart's subtotal leaves the
/// cap open, so the excluded line's amount is read.
fn gold_cap_open_input() -> serde_json::Value {
    Cart::new()
        .buyer(Buyer::with_tier("Gold"))
        .with_lines(&[
            ("300.00", LineKind::Product),
            ("100.00", LineKind::ExcludedProduct),
        ])
        .input(Target::Lines)
        .to_value()
}

#[test]
fn an_amount_that_is_not_a_decimal_gives_no_discount_instead_of_trapping() {
    for amount in [serde_json::json!(100.0), serde_json::json!("1e2")] {
        let mut input = gold_cap_open_input();
        input["cart"]["amounts"][1]["cost"]["subtotalAmount"]["amount"] = amount;
        assert_eq!(run(Target::Lines, &input.to_string()), scenarios_nothing());
    }
}

#[test]
fn amounts_that_do_not_match_the_lines_give_no_discount() {
    let mut input = gold_cap_open_input();
    input["cart"]["amounts"] = serde_json::json!([]);
    assert_eq!(run(Target::Lines, &input.to_string()), scenarios_nothing());
}

#[test]
fn lines_adding_up_to_more_than_the_cart_subtotal_give_no_discount() {
    // Shopify's cart subtotal is what its lines add up to; a cart contradicting that is not
    // trusted either way.
    let mut input = gold_cap_open_input();
    input["cart"]["cost"]["subtotalAmount"]["amount"] = serde_json::json!("399.99");
    assert_eq!(run(Target::Lines, &input.to_string()), scenarios_nothing());
}

#[test]
fn a_cart_subtotal_that_is_not_a_decimal_only_matters_to_minimums_and_caps() {
    let mut input = gold_cap_open_input();
    input["cart"]["cost"]["subtotalAmount"]["amount"] = serde_json::json!("four hundred");
    assert_eq!(run(Target::Lines, &input.to_string()), scenarios_nothing());
    // Bronze has neither: its order discount does not depend on the subtotal.
    let bronze = scenarios::all()
        .into_iter()
        .find(|s| s.name == "tier_bronze_order_subtotal")
        .expect("fixture exists");
    let mut input = bronze.input().to_value();
    input["cart"]["cost"]["subtotalAmount"]["amount"] = serde_json::json!("four hundred");
    assert_eq!(
        run(Target::Lines, &input.to_string()),
        bronze.expected.to_value()
    );
    let mut input = Cart::new()
        .buyer(Buyer::with_tier("Silver"))
        .with_lines(&[("120.00", LineKind::Product)])
        .input(Target::Delivery)
        .to_value();
    input["cart"]["cost"]["subtotalAmount"]["amount"] = serde_json::json!(120);
    assert_eq!(
        run(Target::Delivery, &input.to_string()),
        scenarios_nothing()
    );
}

/// A Gold cart whose second amount is not a decimal: any result but "no discount" shows the run
/// settled the cap before reading it.
fn gold_input_with_unreadable_second_amount(lines: &[(&str, LineKind)]) -> String {
    let mut input = Cart::new()
        .buyer(Buyer::with_tier("Gold"))
        .with_lines(lines)
        .input(Target::Lines)
        .to_value();
    input["cart"]["amounts"][1]["cost"]["subtotalAmount"]["amount"] = serde_json::json!("n/a");
    input.to_string()
}

#[test]
fn eligible_lines_that_pass_the_cap_settle_it_without_reading_further_amounts() {
    // 15 % of the first line alone is 60.00, over the 50.00 cap, whatever comes after it.
    let input = gold_input_with_unreadable_second_amount(&[
        ("400.00", LineKind::Product),
        ("30.00", LineKind::Product),
        ("20.00", LineKind::GiftCard),
    ]);
    let output = run(Target::Lines, &input);
    assert_eq!(
        output["operations"][0]["productDiscountsAdd"]["candidates"][0]["value"],
        serde_json::json!({"fixedAmount": {"amount": "50.00"}})
    );
}

#[test]
fn ineligible_lines_that_bring_the_cart_under_the_cap_settle_it_without_reading_further() {
    // The cart's 400.00 would pass the cap (60.00); without the 100.00 gift card at most 300.00
    // is eligible, 45.00 at 15 %: the percentage, whatever the remaining amounts are.
    let input = gold_input_with_unreadable_second_amount(&[
        ("100.00", LineKind::GiftCard),
        ("250.00", LineKind::Product),
        ("50.00", LineKind::Product),
    ]);
    let output = run(Target::Lines, &input);
    assert_eq!(
        output["operations"][0]["productDiscountsAdd"]["candidates"][0]["value"],
        serde_json::json!({"percentage": {"value": "15"}})
    );
}

#[test]
fn an_open_cap_reads_every_amount_and_uses_the_eligible_lines_sum() {
    // After the first two lines (300.00 eligible, 50.00 excluded) the eligible subtotal is
    // anywhere in 300.00..=350.00 (45.00 to 52.50 off): the last amount decides.
    let cart = Cart::new().buyer(Buyer::with_tier("Gold")).with_lines(&[
        ("300.00", LineKind::Product),
        ("50.00", LineKind::ExcludedProduct),
        ("33.34", LineKind::Product),
    ]);
    let output = run(Target::Lines, &cart.input(Target::Lines).to_text());
    // 333.34 eligible: 50.001 off, just over the cap.
    assert_eq!(
        output["operations"][0]["productDiscountsAdd"]["candidates"][0]["value"],
        serde_json::json!({"fixedAmount": {"amount": "50.00"}})
    );
    let cart = Cart::new().buyer(Buyer::with_tier("Gold")).with_lines(&[
        ("300.00", LineKind::Product),
        ("50.00", LineKind::ExcludedProduct),
        ("33.33", LineKind::Product),
    ]);
    let output = run(Target::Lines, &cart.input(Target::Lines).to_text());
    // 333.33 eligible: 49.9995 off, within the cap.
    assert_eq!(
        output["operations"][0]["productDiscountsAdd"]["candidates"][0]["value"],
        serde_json::json!({"percentage": {"value": "15"}})
    );
}

#[test]
fn a_line_without_an_id_gives_no_discount_instead_of_trapping() {
    let input = gold_input_with("lines", &["id"], Json::Null);
    assert_eq!(run(Target::Lines, &input), scenarios_nothing());
}

#[test]
fn unexpected_merchandise_is_simply_not_eligible() {
    let input = gold_input_with("lines", &["merchandise"], Json::str("surprise"));
    let output = run(Target::Lines, &input);
    let targets = &output["operations"][0]["productDiscountsAdd"]["candidates"][0]["targets"];
    assert_eq!(
        targets,
        &serde_json::json!([{"cartLine": {"id": "gid://shopify/CartLine/1"}}])
    );
}

#[test]
fn a_rate_that_is_not_a_decimal_gives_no_discount() {
    let cart = Cart::new()
        .buyer(Buyer::with_tier("Gold"))
        .with_lines(&[("10.00", LineKind::Product)]);
    let mut input = cart.input(Target::Lines).to_value();
    input["presentmentCurrencyRate"] = serde_json::json!("fast");
    assert_eq!(run(Target::Lines, &input.to_string()), scenarios_nothing());
}

#[test]
fn decimals_are_written_as_exact_strings() {
    let output = run(
        Target::Lines,
        &Cart::new()
            .buyer(Buyer::with_tier("Gold"))
            .with_lines(&[("1000.00", LineKind::Product)])
            .currency("EUR", "0.923456")
            .input(Target::Lines)
            .to_text(),
    );
    // 50 × 0.923456 = 46.1728 → 46.17, written as Shopify's Decimal string, no float artefacts.
    assert_eq!(
        output["operations"][0]["productDiscountsAdd"]["candidates"][0]["value"],
        serde_json::json!({"fixedAmount": {"amount": "46.17"}})
    );
}

fn scenarios_nothing() -> serde_json::Value {
    vip_fixtures::expect::nothing().to_value()
}
