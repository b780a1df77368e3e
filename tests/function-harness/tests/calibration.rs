//! The harness counts like Shopify's function-runner: the logic of Shopify's Rust discount
//! template (`baseline/`), run here on carts of 3, 200 and 500 lines, lands within a few percent
//! of what function-runner 9.2.1 measured for Shopify's template (48,681 / 1,176,105 / 2,869,562
//! instructions; 1152 / 1344 / 1536 KiB). The baseline is Keel's rewrite of that logic, not
//! Shopify's file, so the band is ±8 % rather than exact.

use function_harness::artifacts::{artifacts, template_baseline};
use function_harness::Harness;
use vip_fixtures::cart::generated_lines;
use vip_fixtures::Json;

fn template_input(lines: usize) -> Json {
    let lines = generated_lines(lines).into_iter().map(|line| {
        Json::object([
            ("id", Json::str(line.id)),
            (
                "cost",
                Json::object([(
                    "subtotalAmount",
                    Json::object([("amount", Json::str(line.amount))]),
                )]),
            ),
        ])
    });
    Json::object([
        ("cart", Json::object([("lines", Json::array(lines))])),
        (
            "discount",
            Json::object([(
                "discountClasses",
                Json::array([Json::str("ORDER"), Json::str("PRODUCT")]),
            )]),
        ),
    ])
}

#[test]
fn the_template_costs_here_what_shopifys_runner_measured() {
    let provider = artifacts().expect("provider built");
    let baseline = template_baseline().expect("template baseline built");
    let harness = Harness::new(
        &std::fs::read(baseline).expect("baseline wasm"),
        &std::fs::read(&provider.provider_wasm).expect("provider wasm"),
    )
    .expect("modules compile");
    for (lines, shopify_instructions, shopify_memory_kib) in [
        (3, 48_681u64, 1152u64),
        (200, 1_176_105, 1344),
        (500, 2_869_562, 1536),
    ] {
        let run = harness
            .run("cart_lines_discounts_generate_run", &template_input(lines))
            .expect("runs");
        assert!(run.trap.is_none(), "{}", run.logs);
        let ratio = run.instructions as f64 / shopify_instructions as f64;
        eprintln!(
            "{lines} lines: {} instructions ({ratio:.3} of function-runner's), {} KiB",
            run.instructions,
            run.memory_bytes / 1024
        );
        assert!(
            (0.92..=1.08).contains(&ratio),
            "{lines} lines: ratio {ratio:.3}"
        );
        assert_eq!(
            run.memory_bytes / 1024,
            shopify_memory_kib,
            "{lines} lines: peak memory"
        );
    }
}
