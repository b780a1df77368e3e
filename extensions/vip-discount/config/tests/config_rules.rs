//! The configuration rules as the app server sees them: JSON text in, settings or every problem out.

use serde_json::json;
use vip_config::{AppliesTo, Decimal, VipConfig, MAX_CONFIG_BYTES};

fn parse(value: serde_json::Value) -> Result<VipConfig, Vec<String>> {
    VipConfig::from_json(&&value).map_err(|errors| errors.0.iter().map(|e| e.to_string()).collect())
}

fn d(text: &str) -> Decimal {
    Decimal::parse(text).unwrap()
}

fn gold_and_silver() -> serde_json::Value {
    json!({
        "vipTags": ["VIP"],
        "excludedTags": ["no-vip"],
        "tagTier": "Silver",
        "tiers": [
            {"name": "Gold", "percentage": "15", "cap": "50.00", "minimumSubtotal": "100",
             "shipping": {"percentage": "100"}, "message": "VIP Gold — 15% off"},
            {"name": "Silver", "percentage": "10", "appliesTo": "ORDER_SUBTOTAL"}
        ]
    })
}

#[test]
fn a_complete_configuration_reads_into_typed_settings() {
    let config = parse(gold_and_silver()).unwrap();
    assert_eq!(config.vip_tags, ["VIP"]);
    assert_eq!(config.excluded_tags, ["no-vip"]);
    let gold = config.tier("gold").unwrap();
    assert_eq!(gold.percentage, d("15"));
    assert_eq!(gold.cap, Some(d("50")));
    assert_eq!(gold.minimum_subtotal, Some(d("100")));
    assert_eq!(gold.applies_to, AppliesTo::Lines);
    assert_eq!(gold.shipping.as_ref().unwrap().percentage, d("100"));
    assert_eq!(gold.message(), "VIP Gold — 15% off");
    let silver = config.tier(" SILVER ").unwrap();
    assert_eq!(silver.applies_to, AppliesTo::OrderSubtotal);
    assert_eq!(silver.message(), "VIP Silver — 10% off");
}

#[test]
fn round_trips_through_the_metafield_value() {
    let config = parse(gold_and_silver()).unwrap();
    let text = config.to_metafield_value().unwrap();
    assert_eq!(VipConfig::from_metafield_value(&text).unwrap(), config);
    // Decimals travel as strings, never as JSON numbers.
    assert!(text.contains(r#""percentage":"15""#), "{text}");
    assert!(text.contains(r#""cap":"50""#), "{text}");
}

#[test]
fn serde_uses_the_same_parser_and_reports_its_errors() {
    let config: VipConfig = serde_json::from_value(gold_and_silver()).unwrap();
    assert_eq!(config.tiers.len(), 2);
    let error = serde_json::from_value::<VipConfig>(json!({"tiers": []})).unwrap_err();
    assert!(error.to_string().contains("at least one tier"), "{error}");
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let errors = parse(json!({
        "vipTags": "VIP",
        "tiers": [
            {"name": "Gold", "percentage": 15},
            {"percentage": "10", "appliesTo": "EVERYTHING"},
            {"name": "Bronze", "percentage": "5", "cap": "ten"}
        ]
    }))
    .unwrap_err();
    assert_eq!(
        errors,
        [
            "vipTags: must be a list of tags",
            "tiers[0].percentage: must be a decimal written as a string, like \"12.5\"",
            "tiers[1].name: a tier needs a name",
            "tiers[1].appliesTo: must be \"LINES\" or \"ORDER_SUBTOTAL\"",
            "tiers[2].cap: must be a decimal written as a string, like \"12.5\"",
        ]
    );
}

#[test]
fn empty_or_non_object_configurations_are_refused() {
    assert_eq!(
        parse(json!({})).unwrap_err(),
        ["tiers: at least one tier is required"]
    );
    assert_eq!(
        parse(json!([1, 2])).unwrap_err(),
        ["the configuration must be a JSON object"]
    );
    assert_eq!(
        parse(json!({"tiers": {"name": "Gold"}})).unwrap_err(),
        ["tiers: must be a list of tiers"]
    );
}

#[test]
fn value_rules_are_checked_once_the_shape_is_right() {
    let errors = parse(json!({
        "tagTier": "Platinum",
        "tiers": [
            {"name": "Gold", "percentage": "120"},
            {"name": "gold", "percentage": "10"},
            {"name": "Zero", "percentage": "0"},
            {"name": "Capped", "percentage": "5", "cap": "0", "minimumSubtotal": "-1"},
            {"name": "Ship", "shipping": {"percentage": "0"}}
        ]
    }))
    .unwrap_err();
    assert_eq!(
        errors,
        [
            "tiers[0].percentage: must be between 0 and 100",
            "tiers[1].name: another tier is already named \"gold\"",
            "tiers[2]: a tier must give a percentage off or a shipping benefit",
            "tiers[3].minimumSubtotal: must not be negative",
            "tiers[3].cap: must be more than 0",
            "tiers[4].shipping.percentage: must be more than 0 and at most 100",
            "tagTier: \"Platinum\" is not one of the tiers",
        ]
    );
}

#[test]
fn a_shipping_only_tier_needs_no_percentage() {
    let config =
        parse(json!({"tiers": [{"name": "Ship", "shipping": {"percentage": "100"}}]})).unwrap();
    let tier = &config.tiers[0];
    assert!(tier.percentage.is_zero());
    assert_eq!(
        tier.shipping.as_ref().unwrap().message(&tier.name),
        "VIP Ship — free shipping"
    );
}

#[test]
fn tag_lists_respect_shopifys_variable_limit() {
    let tags: Vec<String> = (0..101).map(|i| format!("tag-{i}")).collect();
    let errors =
        parse(json!({"vipTags": tags, "tiers": [{"name": "A", "percentage": "1"}]})).unwrap_err();
    assert_eq!(
        errors,
        ["vipTags: at most 100 tags (Shopify's limit for a list variable)"]
    );
    let errors =
        parse(json!({"excludedTags": ["ok", " "], "tiers": [{"name": "A", "percentage": "1"}]}))
            .unwrap_err();
    assert_eq!(errors, ["excludedTags[1]: a tag cannot be blank"]);
}

#[test]
fn the_metafield_value_must_fit_what_shopify_passes_to_functions() {
    let mut config = parse(gold_and_silver()).unwrap();
    config.excluded_tags = (0..100).map(|i| format!("{i:0>120}")).collect();
    let error = config.to_metafield_value().unwrap_err();
    assert!(
        error.to_string().contains(&MAX_CONFIG_BYTES.to_string()),
        "{error}"
    );
}

#[test]
fn buyers_get_their_metafield_tier_else_the_tag_tier() {
    let config = parse(gold_and_silver()).unwrap();
    let name = |tier: Option<&vip_config::Tier>| tier.map(|t| t.name.clone());
    assert_eq!(
        name(config.tier_for_buyer(Some("Gold"), false)),
        Some("Gold".into())
    );
    assert_eq!(
        name(config.tier_for_buyer(Some("gold "), true)),
        Some("Gold".into())
    );
    assert_eq!(
        name(config.tier_for_buyer(None, true)),
        Some("Silver".into())
    );
    // A tier that no longer exists falls back to the tags, then to nothing.
    assert_eq!(
        name(config.tier_for_buyer(Some("Diamond"), true)),
        Some("Silver".into())
    );
    assert_eq!(name(config.tier_for_buyer(Some("Diamond"), false)), None);
    assert_eq!(name(config.tier_for_buyer(None, false)), None);

    let mut no_tag_tier = config.clone();
    no_tag_tier.tag_tier = None;
    assert_eq!(
        name(no_tag_tier.tier_for_buyer(None, true)),
        Some("Gold".into())
    );
}
