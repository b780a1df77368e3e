//! The Admin GraphQL client against the simulator: every operation Keel uses, the cost
//! throttle, retries through faults with each mutation applied exactly once, and the 401 rule.

use crate::support::db::Backend;
use crate::support::TestKeel;
use keel::shopify::admin::operations::{
    AutomaticAppDiscount, CombinesWith, DiscountMetafield, MetafieldInput, FLOW_PAYLOAD_LIMIT,
};
use keel::shopify::admin::{AdminClient, AdminError, RetryPolicy};
use keel::shopify::domain::DomainPolicy;
use keel::shopify::{Endpoint, Gid, ShopDomain};
use rust_decimal::Decimal;
use serde_json::json;
use shopify_sim::{DropFault, ErrorFault, Faults, Plan, RateLimitFault, Seed, ThrottleConfig};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

const SHOP: &str = "admin-shop.myshopify.com";

fn shop() -> ShopDomain {
    ShopDomain::parse(SHOP, DomainPolicy::MyShopifyOnly).unwrap()
}

fn gid(kind: &str, id: u64) -> Gid {
    Gid::new(kind, id)
}

/// Keel installed on a shop seeded with the simulator's demo fixture.
async fn seeded() -> TestKeel {
    let keel = TestKeel::spawn(Backend::Sqlite).await;
    keel.install(SHOP).await;
    let fixture = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shopify-sim/fixtures/keel-demo.json"
    ))
    .unwrap();
    keel.sim.seed(SHOP, Seed::from_json(&fixture).unwrap());
    keel
}

/// A client with its own retry policy, sharing Keel's tokens.
fn client(keel: &TestKeel, policy: RetryPolicy) -> AdminClient {
    let endpoint = Endpoint::new(
        Some(url::Url::parse(keel.sim.origin()).unwrap()),
        Duration::from_secs(10),
    )
    .unwrap();
    AdminClient::new(endpoint, keel.state.access.clone(), policy)
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc)
}

#[tokio::test]
async fn customer_order_and_inventory_reads_parse_shopify_shapes() {
    let keel = seeded().await;
    let admin = &keel.state.admin;

    let ada = admin
        .customer(&shop(), &gid("Customer", 7410000001))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ada.tags, ["VIP", "newsletter"]);
    assert_eq!(ada.vip_tier.as_deref(), Some("Gold"));
    assert_eq!(ada.email.as_deref(), Some("ada.quill@example.com"));
    let chiara = admin
        .customer(&shop(), &gid("Customer", 7410000003))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(chiara.number_of_orders, 14);
    assert_eq!(
        chiara.amount_spent.amount,
        Decimal::from_str("2310.40").unwrap()
    );
    assert_eq!(chiara.vip_tier, None);
    assert_eq!(
        admin.customer(&shop(), &gid("Customer", 1)).await.unwrap(),
        None
    );

    let order = admin
        .order(&shop(), &gid("Order", 5820000001))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(order.name, "#1001");
    assert_eq!(order.customer, Some(gid("Customer", 7410000001)));
    assert_eq!(order.total.amount, Decimal::from_str("184.00").unwrap());
    assert_eq!(order.fulfillments.len(), 1);
    assert_eq!(
        order.fulfillments[0].display_status.as_deref(),
        Some("DELIVERED")
    );
    assert!(order.fulfillments[0]
        .delivered_at
        .as_deref()
        .unwrap()
        .starts_with("2026-11-07T11:02:00"));

    let tote = admin
        .variant_inventory(&shop(), &gid("ProductVariant", 4470000001))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tote.product, gid("Product", 3350000001));
    let mut levels: Vec<i64> = tote.levels.iter().map(|l| l.available).collect();
    levels.sort();
    assert_eq!(levels, [4, 31]);
    assert_eq!(tote.inventory_quantity, Some(35));

    let info = admin.shop_info(&shop()).await.unwrap();
    assert_eq!(
        (info.myshopify_domain.as_str(), info.currency_code.as_str()),
        (SHOP, "USD")
    );
}

#[tokio::test]
async fn paginated_reconciliation_reads_follow_every_page() {
    let keel = seeded().await;
    // Enough customers with the tag to need several pages.
    let many: Vec<_> = (0..120)
        .map(|i| json!({"id": 9_000_000 + i, "tags": ["VIP"]}))
        .collect();
    keel.sim.seed(
        SHOP,
        Seed::from_json(&json!({"customers": many}).to_string()).unwrap(),
    );
    let admin = &keel.state.admin;

    let vips = admin.customers_with_tag(&shop(), "VIP").await.unwrap();
    assert_eq!(
        vips.len(),
        122,
        "2 from the fixture + 120 seeded, over 3 pages"
    );

    let late = admin
        .unfulfilled_orders_older_than(&shop(), 1, now())
        .await
        .unwrap();
    let names: Vec<&str> = late.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["#1003", "#1004"]);

    let from = now() - chrono::Duration::days(30);
    let delivered = admin
        .orders_delivered_between(&shop(), from, now())
        .await
        .unwrap();
    assert_eq!(
        delivered
            .iter()
            .map(|o| o.name.as_str())
            .collect::<Vec<_>>(),
        ["#1001"]
    );

    let low = admin.variants_below(&shop(), 6).await.unwrap();
    assert_eq!(
        low.iter().map(|v| v.id.clone()).collect::<Vec<_>>(),
        [gid("ProductVariant", 4470000003)]
    );
}

#[tokio::test]
async fn tags_and_metafields_are_written_and_metafields_batched_by_25() {
    let keel = seeded().await;
    let admin = &keel.state.admin;
    let bruno = gid("Customer", 7410000002);
    admin
        .tags_add(&shop(), &bruno, &["VIP".into(), "Keel".into()])
        .await
        .unwrap();
    admin
        .tags_add(&shop(), &bruno, &["VIP".into()])
        .await
        .unwrap();
    admin
        .tags_remove(&shop(), &bruno, &["Keel".into()])
        .await
        .unwrap();
    assert_eq!(keel.sim.customer_tags(SHOP, 7410000002).unwrap(), ["VIP"]);

    let unknown = admin
        .tags_add(&shop(), &gid("Customer", 1), &["x".into()])
        .await
        .unwrap_err();
    assert!(
        matches!(unknown, AdminError::UserErrors(ref e) if !e.is_empty()),
        "{unknown:?}"
    );

    let before = keel.sim.mutation_log(SHOP).len();
    let fields: Vec<MetafieldInput> = (0..30)
        .map(|i| MetafieldInput {
            owner_id: bruno.clone(),
            namespace: None,
            key: format!("note_{i:02}"),
            kind: "single_line_text_field".into(),
            value: format!("value {i}"),
        })
        .collect();
    admin.metafields_set(&shop(), &fields).await.unwrap();
    assert_eq!(
        keel.sim.mutation_log(SHOP).len() - before,
        2,
        "30 metafields in two calls of at most 25"
    );
    let stored = keel
        .sim
        .metafield(SHOP, &bruno.to_string(), "$app", "note_29")
        .unwrap();
    assert_eq!(stored.value, "value 29");
}

#[tokio::test]
async fn flow_trigger_payloads_over_shopifys_limit_are_refused_before_sending() {
    let keel = seeded().await;
    let admin = &keel.state.admin;
    admin
        .flow_trigger_receive(
            &shop(),
            "vip-customer-qualified",
            &json!({"customer_id": 7410000001u64, "tier": "Gold"}),
            "k-1",
        )
        .await
        .unwrap();
    assert_eq!(keel.sim.flow_triggers(SHOP).len(), 1);
    let big = json!({"note": "x".repeat(FLOW_PAYLOAD_LIMIT)});
    let before = keel.sim.mutation_log(SHOP).len();
    let err = admin
        .flow_trigger_receive(&shop(), "vip-customer-qualified", &big, "k-2")
        .await
        .unwrap_err();
    assert!(
        matches!(err, AdminError::Invalid(ref m) if m.contains("50000")),
        "{err}"
    );
    assert_eq!(
        keel.sim.mutation_log(SHOP).len(),
        before,
        "nothing was sent"
    );
    let unknown = admin
        .flow_trigger_receive(&shop(), "no-such-trigger", &json!({}), "k-3")
        .await
        .unwrap_err();
    assert!(matches!(unknown, AdminError::UserErrors(_)), "{unknown:?}");
}

#[tokio::test]
async fn automatic_app_discount_is_created_once_per_key_and_updated() {
    let keel = seeded().await;
    let admin = &keel.state.admin;
    let discount = AutomaticAppDiscount {
        title: "VIP pricing".into(),
        function_handle: "vip-discount".into(),
        discount_classes: vec!["PRODUCT".into(), "SHIPPING".into()],
        combines_with: CombinesWith {
            order_discounts: true,
            ..CombinesWith::default()
        },
        starts_at: "2026-11-01T00:00:00Z".into(),
        ends_at: None,
        metafields: vec![DiscountMetafield {
            namespace: "$app:vip".into(),
            key: "config".into(),
            kind: "json".into(),
            value: r#"{"tiers":[]}"#.into(),
        }],
    };
    let before = keel.sim.discounts(SHOP).len();
    let created = admin
        .discount_automatic_app_create(&shop(), &discount, "job-7-create")
        .await
        .unwrap();
    let again = admin
        .discount_automatic_app_create(&shop(), &discount, "job-7-create")
        .await
        .unwrap();
    assert_eq!(
        created.discount_id, again.discount_id,
        "a retry with the same key creates nothing new"
    );
    assert_eq!(keel.sim.discounts(SHOP).len(), before + 1);

    let renamed = AutomaticAppDiscount {
        title: "VIP pricing 2".into(),
        ..discount
    };
    let updated = admin
        .discount_automatic_app_update(&shop(), &created.discount_id, &renamed.clone().into())
        .await
        .unwrap();
    assert_eq!(updated.title, "VIP pricing 2");
    let found = admin
        .app_discounts(&shop(), "title:'VIP pricing 2'")
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].config.as_deref(), Some(r#"{"tiers":[]}"#));

    let bad = AutomaticAppDiscount {
        function_handle: "not-deployed".into(),
        ..renamed
    };
    assert!(matches!(
        admin
            .discount_automatic_app_create(&shop(), &bad, "job-8")
            .await,
        Err(AdminError::UserErrors(_))
    ));
}

/// A shop whose bucket holds only 100 points, restoring 100/s.
fn small_bucket(keel: &TestKeel) {
    keel.sim.set_throttle(
        SHOP,
        ThrottleConfig {
            plan: Plan::Standard,
            maximum_available: Some(100.0),
            currently_available: Some(100.0),
        },
    );
}

/// 40 concurrent tagsAdd (400 points) against the small bucket.
async fn burst(keel: &TestKeel, admin: Arc<AdminClient>) {
    let tasks: Vec<_> = (0..40u64)
        .map(|i| {
            let admin = admin.clone();
            tokio::spawn(async move {
                admin
                    .tags_add(&shop(), &gid("Customer", 7410000002), &[format!("t{i}")])
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(
        keel.sim.customer_tags(SHOP, 7410000002).unwrap().len(),
        40,
        "every mutation applied"
    );
}

#[tokio::test]
async fn with_the_throttle_no_request_is_refused_for_cost() {
    let keel = seeded().await;
    small_bucket(&keel);
    let admin = Arc::new(client(&keel, RetryPolicy::default()));
    // The client learns the shop's bucket from its first answer, as it does in production.
    admin.shop_info(&shop()).await.unwrap();
    burst(&keel, admin).await;
    assert_eq!(keel.sim.throttle_refusals(SHOP), 0);
}

#[tokio::test]
async fn without_the_throttle_many_requests_are_refused_but_retried() {
    let keel = seeded().await;
    // A patient caller: without the client bucket the 40 callers race for every restored point.
    let patient = RetryPolicy {
        max_throttled: 1000,
        deadline: Duration::from_secs(60),
        ..RetryPolicy::default()
    };
    small_bucket(&keel);
    let admin = Arc::new(client(&keel, patient).without_client_throttle());
    burst(&keel, admin).await;
    assert!(
        keel.sim.throttle_refusals(SHOP) >= 10,
        "refusals: {}",
        keel.sim.throttle_refusals(SHOP)
    );
}

#[tokio::test]
async fn faults_are_survived_and_each_trigger_fires_exactly_once() {
    let keel = seeded().await;
    let admin = client(
        &keel,
        RetryPolicy {
            max_attempts: 12,
            ..RetryPolicy::default()
        },
    );
    keel.sim.set_faults(
        SHOP,
        Faults {
            errors: Some(ErrorFault {
                statuses: vec![500, 502, 503],
                rate: 0.3,
                times: Some(6),
            }),
            too_many_requests: Some(RateLimitFault {
                retry_after_secs: 1,
                rate: 0.2,
                times: Some(2),
            }),
            drop_connection: Some(DropFault {
                rate: 0.3,
                times: Some(6),
                after_apply: true,
            }),
            seed: 42,
            ..Faults::default()
        },
    );
    for i in 0..30 {
        admin
            .flow_trigger_receive(
                &shop(),
                "order-delayed",
                &json!({"order_id": i}),
                &format!("job-{i}-trigger"),
            )
            .await
            .unwrap();
    }
    let fired = keel.sim.flow_triggers(SHOP);
    let mut ids: Vec<i64> = fired
        .iter()
        .map(|f| f.payload["order_id"].as_i64().unwrap())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        (0..30).collect::<Vec<_>>(),
        "each trigger exactly once despite dropped answers"
    );
    // Every injected fault was actually served (the counted faults are used up).
    let left = keel.sim.faults(SHOP);
    assert_eq!(left.errors.and_then(|e| e.times), Some(0), "all 5xx served");
    assert_eq!(
        left.too_many_requests.and_then(|t| t.times),
        Some(0),
        "all 429s served"
    );
    assert_eq!(
        left.drop_connection.and_then(|d| d.times),
        Some(0),
        "all drops served"
    );
}

#[tokio::test]
async fn a_second_401_marks_the_shop_for_reauthorisation() {
    let keel = seeded().await;
    keel.sim.set_faults(
        SHOP,
        Faults {
            expired_token: true,
            ..Faults::default()
        },
    );
    let err = keel.state.admin.shop_info(&shop()).await.unwrap_err();
    assert!(matches!(err, AdminError::Unauthorized), "{err:?}");
    assert_eq!(
        keel.sim.token_calls(SHOP).refreshes,
        1,
        "refreshed once before giving up"
    );
    assert!(
        keel.state
            .store
            .shop(SHOP)
            .await
            .unwrap()
            .unwrap()
            .needs_reauth
    );
    // Until the merchant opens Keel again, calls fail fast without touching Shopify.
    keel.sim.clear_faults(SHOP);
    assert!(matches!(
        keel.state.admin.shop_info(&shop()).await,
        Err(AdminError::Token(_))
    ));
}
