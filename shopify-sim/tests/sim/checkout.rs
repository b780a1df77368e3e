//! `POST /_sim/checkout`: the VIP discount Function's wasm prices a cart the way Shopify's
//! checkout runs it — input built from the Function's own input queries, both targets, the
//! discount's classes respected. Expected amounts are worked out by hand from the standard
//! configuration (`vip_fixtures::standard_config`), not by the code under test.

use serde_json::{json, Value};
use shopify_sim::{CheckoutAnswer, Seed, Sim};

use super::{http, sim, StatusCode, SHOP};

const TOTE: &str = "gid://shopify/ProductVariant/4470000001";
const MUG: &str = "gid://shopify/ProductVariant/4470000010";
const GIFT_CARD: &str = "gid://shopify/ProductVariant/4470000020";
const ADA: &str = "gid://shopify/Customer/7410000001";
const BRUNO: &str = "gid://shopify/Customer/7410000002";
const CHIARA: &str = "gid://shopify/Customer/7410000003";
const BEA: &str = "gid://shopify/Customer/7410000005";
const DISCOUNT: &str = "gid://shopify/DiscountAutomaticNode/1190000009";

/// A shop with a tote (42.00), a mug tagged `no-vip` (20.00), a gift card (50.00), customers of
/// each kind, and the VIP discount with `classes` and the standard configuration.
async fn shop_with_discount(classes: &[&str]) -> Sim {
    let sim = sim().await;
    let config = vip_fixtures::standard_config()
        .to_metafield_value()
        .expect("the standard configuration is valid");
    let tier = |name: &str| json!([{"namespace": "$app", "key": "vip_tier", "type": "single_line_text_field", "value": name}]);
    let seed = json!({
        "products": [
            {"id": 3350000001u64, "title": "Canvas Tote", "tags": ["bags"],
             "variants": [{"id": 4470000001u64, "title": "Natural", "price": "42.00"}]},
            {"id": 3350000010u64, "title": "Clearance Mug", "tags": ["No-VIP"],
             "variants": [{"id": 4470000010u64, "title": "Default Title", "price": "20.00"}]},
            {"id": 3350000020u64, "title": "Gift Card", "gift_card": true,
             "variants": [{"id": 4470000020u64, "title": "50", "price": "50.00"}]}
        ],
        "customers": [
            {"id": 7410000001u64, "tags": [], "metafields": tier("Gold")},
            {"id": 7410000002u64, "tags": ["newsletter"]},
            {"id": 7410000003u64, "tags": ["vip"]},
            {"id": 7410000005u64, "tags": [], "metafields": tier("Bronze")}
        ],
        "discounts": [{
            "id": 1190000009u64, "title": "Keel VIP pricing", "function_handle": "vip-discount",
            "discount_classes": classes, "starts_at": "2026-01-01T00:00:00Z",
            "metafields": [{"namespace": "$app:vip", "key": "config", "type": "json", "value": config}]
        }]
    });
    sim.seed(
        SHOP,
        Seed::from_json(&seed.to_string()).expect("seed parses"),
    );
    sim
}

async fn checkout(sim: &Sim, customer: Option<&str>, lines: &[(&str, u64)]) -> CheckoutAnswer {
    let lines = lines
        .iter()
        .map(|(variant, quantity)| shopify_sim::CheckoutLine {
            variant: (*variant).to_owned(),
            quantity: *quantity,
        })
        .collect();
    sim.checkout(shopify_sim::CheckoutRequest {
        shop: SHOP.into(),
        customer: customer.map(str::to_owned),
        lines,
        currency: None,
        presentment_currency_rate: None,
        shipping_price: None,
    })
    .await
    .expect("the checkout is priced")
}

/// (class, message, amount) of every discount applied.
fn applied(answer: &CheckoutAnswer) -> Vec<(String, Option<String>, String)> {
    answer
        .discounts
        .iter()
        .map(|d| (d.class.clone(), d.message.clone(), d.amount.clone()))
        .collect()
}

fn d(class: &str, message: &str, amount: &str) -> (String, Option<String>, String) {
    (class.into(), Some(message.into()), amount.into())
}

#[tokio::test]
async fn a_gold_vip_gets_the_tier_off_eligible_lines_and_free_shipping() {
    let sim = shop_with_discount(&["PRODUCT", "ORDER", "SHIPPING"]).await;
    let answer = checkout(&sim, Some(ADA), &[(TOTE, 2), (MUG, 1), (GIFT_CARD, 1)]).await;
    assert_eq!(
        applied(&answer),
        [
            // 15 % of the totes (84.00); the mug is excluded by tag, the gift card never counts.
            d("PRODUCT", "VIP Gold — 15% off", "12.60"),
            d("SHIPPING", "VIP Gold — free shipping", "10.00"),
        ],
        "{answer:#?}"
    );
    assert_eq!(answer.discounts[0].discount_id, DISCOUNT);
    assert_eq!(answer.discounts[0].targets, ["gid://shopify/CartLine/1"]);
    let line_discounts: Vec<&str> = answer.lines.iter().map(|l| l.discount.as_str()).collect();
    assert_eq!(line_discounts, ["12.60", "0.00", "0.00"]);
    assert_eq!(answer.lines[0].total, "71.40");
    assert_eq!(
        (
            answer.lines_subtotal.as_str(),
            answer.subtotal.as_str(),
            answer.total.as_str()
        ),
        ("154.00", "141.40", "141.40")
    );
    let shipping = answer.shipping.as_ref().unwrap();
    assert_eq!(
        (shipping.price.as_str(), shipping.total.as_str()),
        ("10.00", "0.00")
    );
    assert_eq!(answer.function_runs.len(), 2);
    assert!(
        answer
            .function_runs
            .iter()
            .all(|r| r.error.is_none() && r.rejected.is_empty()),
        "{:#?}",
        answer.function_runs
    );
}

#[tokio::test]
async fn a_guest_and_an_ordinary_customer_get_no_discount() {
    let sim = shop_with_discount(&["PRODUCT", "ORDER", "SHIPPING"]).await;
    for customer in [None, Some(BRUNO)] {
        let answer = checkout(&sim, customer, &[(TOTE, 2), (MUG, 1)]).await;
        assert!(
            answer.discounts.is_empty(),
            "{customer:?}: {:#?}",
            answer.discounts
        );
        assert_eq!(
            (answer.subtotal.as_str(), answer.total.as_str()),
            ("104.00", "114.00"),
            "{customer:?}"
        );
        // The Function ran and decided: not an error, not skipped.
        assert!(answer
            .function_runs
            .iter()
            .all(|r| r.error.is_none() && r.output.is_some()));
    }
}

#[tokio::test]
async fn a_customer_tagged_vip_gets_the_tag_tier_through_the_configs_query_variables() {
    let sim = shop_with_discount(&["PRODUCT", "ORDER", "SHIPPING"]).await;
    // Silver (the tag tier): 10 % from a 100.00 eligible subtotal, half-price shipping.
    let below = checkout(&sim, Some(CHIARA), &[(TOTE, 2), (MUG, 1)]).await;
    assert!(
        below.discounts.is_empty(),
        "84.00 of eligible lines is under the minimum: {:#?}",
        below.discounts
    );
    let answer = checkout(&sim, Some(CHIARA), &[(TOTE, 3), (MUG, 1)]).await;
    assert_eq!(
        applied(&answer),
        [
            d("PRODUCT", "VIP Silver — 10% off", "12.60"),
            d("SHIPPING", "VIP Silver — 50% off shipping", "5.00"),
        ]
    );
    assert_eq!(
        (answer.subtotal.as_str(), answer.total.as_str()),
        ("133.40", "138.40")
    );
}

#[tokio::test]
async fn an_order_subtotal_tier_discounts_the_order_minus_ineligible_lines() {
    let sim = shop_with_discount(&["PRODUCT", "ORDER", "SHIPPING"]).await;
    let answer = checkout(&sim, Some(BEA), &[(TOTE, 2), (MUG, 1), (GIFT_CARD, 1)]).await;
    // 5 % of 84.00 (mug and gift card excluded); Bronze has no shipping benefit.
    assert_eq!(
        applied(&answer),
        [d("ORDER", "VIP Bronze — 5% off", "4.20")]
    );
    assert_eq!(answer.discounts[0].targets.len(), 2, "the excluded lines");
    assert_eq!(
        (answer.subtotal.as_str(), answer.total.as_str()),
        ("149.80", "159.80")
    );
}

#[tokio::test]
async fn only_the_discounts_classes_are_applied() {
    let sim = shop_with_discount(&["PRODUCT"]).await;
    let answer = checkout(&sim, Some(ADA), &[(TOTE, 2)]).await;
    assert_eq!(
        applied(&answer),
        [d("PRODUCT", "VIP Gold — 15% off", "12.60")]
    );
    assert_eq!(answer.shipping.as_ref().unwrap().total, "10.00");
    // A Bronze buyer's order discount needs ORDER, which this discount lacks.
    let bronze = checkout(&sim, Some(BEA), &[(TOTE, 2)]).await;
    assert!(bronze.discounts.is_empty(), "{:#?}", bronze.discounts);
}

#[tokio::test]
async fn checkout_over_http_refuses_unknown_variants_and_shops() {
    let sim = shop_with_discount(&["PRODUCT"]).await;
    let url = format!("{}/_sim/checkout", sim.origin());
    let post = |body: Value| {
        let url = url.clone();
        async move {
            let r = http().post(url).json(&body).send().await.unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let (status, body) =
        post(json!({"shop": SHOP, "customer": ADA, "lines": [{"variant": TOTE, "quantity": 1}]}))
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["discounts"][0]["message"], "VIP Gold — 15% off");
    assert_eq!(body["total"], "45.70");
    let (status, body) = post(json!({"shop": SHOP, "lines": [{"variant": "gid://shopify/ProductVariant/1", "quantity": 1}]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) =
        post(json!({"shop": "nowhere.myshopify.com", "lines": [{"variant": TOTE, "quantity": 1}]}))
            .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
