//! The VIP discount's release wasm, run as Shopify runs it, on every fixture: the expected output
//! and log line appear, and no run exceeds a Shopify limit (scaled above 200 lines). Also Keel's
//! performance targets and budgets: instruction counts are deterministic for a given build, so
//! they hold as regression thresholds (timings would not).

use std::sync::OnceLock;

use function_harness::report::{run_line, thousands};
use function_harness::{limits, Harness, RunReport};
use vip_fixtures::scenarios::{
    self, non_vip_cart, vip_cap_open_cart, vip_cart, vip_no_cap_cart, vip_order_capped_cart,
    vip_order_cart, Scenario,
};
use vip_fixtures::{Buyer, Cart, Json, LineKind, Target};

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| match Harness::from_artifacts() {
        Ok(harness) => harness,
        Err(error) => panic!("cannot build or load the wasm: {error:#}"),
    })
}

fn run(scenario: &Scenario) -> RunReport {
    match harness().run(scenario.target.export(), &scenario.input()) {
        Ok(report) => report,
        Err(error) => panic!("{}: the harness failed: {error:#}", scenario.name),
    }
}

#[test]
fn every_fixture_gives_its_output_and_log_within_shopifys_limits() {
    let mut failures = Vec::new();
    for scenario in scenarios::all() {
        let report = run(&scenario);
        eprintln!("{}", run_line(&scenario.name, &report));
        if let Some(trap) = &report.trap {
            failures.push(format!(
                "{}: trapped: {trap}\nlogs: {}",
                scenario.name, report.logs
            ));
            continue;
        }
        let output = report.output.as_ref().map(Json::to_value);
        if output != Some(scenario.expected.to_value()) {
            failures.push(format!(
                "{}: output {}\n  expected {}",
                scenario.name,
                report
                    .output
                    .as_ref()
                    .map(Json::to_text)
                    .unwrap_or_default(),
                scenario.expected.to_text()
            ));
        }
        match scenario.log_contains {
            Some(text) if !report.logs.contains(text) => failures.push(format!(
                "{}: log {:?} does not contain {text:?}",
                scenario.name, report.logs
            )),
            None if !report.logs.is_empty() => failures.push(format!(
                "{}: unexpected log {:?}",
                scenario.name, report.logs
            )),
            _ => {}
        }
        for violation in report.limit_violations() {
            failures.push(format!(
                "{}: over Shopify's limit: {violation}",
                scenario.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn binary_is_within_shopifys_limit_and_keels_target() {
    let size = harness().function_bytes;
    eprintln!("vip-discount.wasm: {} bytes", thousands(size));
    assert!(
        size <= limits::BINARY_BYTES,
        "{size} bytes > Shopify's {}",
        limits::BINARY_BYTES
    );
    assert!(
        size < 64 * 1024,
        "{size} bytes: Keel's target is under 64 KiB"
    );
}

#[test]
fn non_vip_exits_before_the_lines_whatever_the_cart_size() {
    let small = run(&non_vip_cart(3)).instructions;
    let large = run(&non_vip_cart(500)).instructions;
    // Keel's target at 200 lines is 25,000; it holds at any size because no line is decoded.
    assert!(
        large < 25_000,
        "{} instructions at 500 lines",
        thousands(large)
    );
    // Only the provider's allocator state (it holds a bigger input) differs: within 5 %.
    assert!(
        large <= small + small / 20,
        "3 lines: {small}, 500 lines: {large}: a non-VIP run must not read the lines"
    );
}

/// Regression budgets for a VIP at 200 lines, per tier shape, about 6 % above what this build
/// measures (tests/bench/function.sh prints the measurements).
///
/// Keel's target of at most half Shopify's template (600,000) is not reachable with Shopify's
/// provider for any shape. It decodes every value it walks past at roughly 280 instructions a
/// value, and deciding one line's eligibility takes eleven values (the line, `id`, `merchandise`,
/// `product`, `isGiftCard`, `excluded`, and the keys): walking 200 such lines costs the provider
/// about 620,000 instructions on its own, and reading each line's flags takes at least four calls
/// into it at about 190 instructions each, before configuration, IDs or output.
#[test]
fn vip_at_200_lines_stays_within_its_budget() {
    let shapes = [
        ("LINES capped", vip_cart(200), 1_340_000),
        (
            "LINES capped, open to the end",
            vip_cap_open_cart(200),
            2_150_000,
        ),
        ("LINES", vip_no_cap_cart(200), 1_285_000),
        ("ORDER_SUBTOTAL", vip_order_cart(200), 990_000),
        (
            "ORDER_SUBTOTAL capped",
            vip_order_capped_cart(200),
            1_060_000,
        ),
    ];
    let mut over = Vec::new();
    for (shape, scenario, budget) in shapes {
        let report = run(&scenario);
        eprintln!(
            "VIP at 200 lines, {shape}: {} instructions (budget {})",
            thousands(report.instructions),
            thousands(budget)
        );
        assert!(report.trap.is_none(), "{shape}: {:?}", report.trap);
        if report.instructions > budget {
            over.push(format!(
                "{shape}: {} > {}",
                thousands(report.instructions),
                thousands(budget)
            ));
        }
    }
    assert!(over.is_empty(), "over budget: {}", over.join("; "));
}

/// The cap of a large cart is usually passed by its first few eligible lines; settling it then
/// must not cost a walk over every line's amount (as summing them all would).
#[test]
fn a_cap_passed_early_costs_little_more_than_no_cap() {
    let capped = run(&vip_cart(200)).instructions;
    let uncapped = run(&vip_no_cap_cart(200)).instructions;
    assert!(
        capped <= uncapped + uncapped / 10,
        "LINES capped {} vs LINES {}",
        thousands(capped),
        thousands(uncapped)
    );
}

#[test]
fn lines_whose_members_arrive_in_another_order_give_the_same_discounts() {
    // Shopify is expected to follow the query's order (`id`, then `merchandise`); the Function
    // reads lines by position, so the other order must not change which lines are targeted or
    // excluded. (Only this harness keeps member order: the native tests' JSON is sorted.)
    for name in [
        "gift_card_and_custom_item_skipped",
        "tier_bronze_order_subtotal",
    ] {
        let scenario = scenarios::all()
            .into_iter()
            .find(|s| s.name == name)
            .expect("fixture exists");
        let mut input = scenario.input();
        let Json::Object(top) = &mut input else {
            panic!("input is an object")
        };
        let (_, cart) = top.iter_mut().find(|(key, _)| key == "cart").expect("cart");
        let Json::Object(cart) = cart else {
            panic!("cart is an object")
        };
        let (_, lines) = cart
            .iter_mut()
            .find(|(key, _)| key == "lines")
            .expect("lines");
        let Json::Array(lines) = lines else {
            panic!("lines is a list")
        };
        for line in lines {
            if let Json::Object(members) = line {
                members.reverse();
            }
        }
        let text = input.to_text();
        assert!(text.find("\"merchandise\"") < text.find("\"gid://shopify/CartLine/1\""));
        let report = harness()
            .run(scenario.target.export(), &input)
            .expect("the harness runs");
        assert_eq!(
            report.output.as_ref().map(Json::to_value),
            Some(scenario.expected.to_value()),
            "{name}: {}",
            report.logs
        );
    }
}

#[test]
fn a_panic_is_reported_as_a_failed_run_with_its_log() {
    // Shopify never sends a string where the schema says Boolean, but if the input broke its
    // contract the generated accessor would panic; the harness must report that as Shopify does.
    let cart = Cart::new()
        .buyer(Buyer::with_tier("Gold"))
        .with_lines(&[("10.00", LineKind::Product)]);
    let mut input = cart.input(Target::Lines).to_value();
    input["buyer"]["buyerIdentity"]["customer"]["hasVipTag"] = serde_json::json!("yes");
    let report = harness()
        .run(Target::Lines.export(), &Json::from_value(&input))
        .expect("the harness survives a trapping Function");
    assert!(report.trap.is_some(), "{report:?}");
    assert!(report.output.is_none());
    assert!(report.logs.contains("panicked"), "{:?}", report.logs);
}
