//! The VIP discount from Keel's side, end to end: `GET`/`PUT /api/settings` (session token,
//! validation with the Function's own types, nothing half-written), the sync job that creates the
//! shop's automatic discount once and updates that same discount afterwards, and checkouts in
//! shopify-sim priced by the Function's wasm with the settings Keel stored on the discount.

use crate::on_both_backends;
use crate::support::db::Backend;
use crate::support::TestKeel;
use keel::shopify::admin::operations::MetafieldInput;
use keel::shopify::domain::DomainPolicy;
use keel::shopify::{Gid, ShopDomain};
use keel::store::SyncStatus;
use serde_json::{json, Value};
use shopify_sim::{CheckoutAnswer, CheckoutLine, CheckoutRequest, Seed};

const SHOP: &str = "vip-shop.myshopify.com";
const ADA: u64 = 7410000001;
const TOTE: &str = "gid://shopify/ProductVariant/4470000001";
const MUG: &str = "gid://shopify/ProductVariant/4470000010";

/// Gold: 15 % off eligible lines and free shipping; Silver: 10 % for customers tagged VIP.
fn config_v1() -> Value {
    json!({
        "vipTags": ["VIP"],
        "excludedTags": ["no-vip"],
        "tagTier": "Silver",
        "tiers": [
            {"name": "Gold", "percentage": "15", "shipping": {"percentage": "100"},
             "message": "Gold members save 15%"},
            {"name": "Silver", "percentage": "10"}
        ]
    })
}

/// The merchant raises Gold to 20 % and drops the shipping benefit.
fn config_v2() -> Value {
    json!({
        "vipTags": ["VIP"],
        "excludedTags": ["no-vip"],
        "tiers": [
            {"name": "Gold", "percentage": "20", "message": "Gold members save 20%"},
            {"name": "Silver", "percentage": "10"}
        ]
    })
}

/// Keel installed on a shop with a tote (42.00), a mug tagged `no-vip` (20.00) and Ada, who has
/// no VIP tier yet.
async fn keel_with_shop(backend: Backend) -> TestKeel {
    let keel = TestKeel::spawn(backend).await;
    keel.install(SHOP).await;
    let seed = json!({
        "products": [
            {"id": 3350000001u64, "title": "Canvas Tote", "tags": ["bags"],
             "variants": [{"id": 4470000001u64, "title": "Natural", "price": "42.00"}]},
            {"id": 3350000010u64, "title": "Clearance Mug", "tags": ["no-vip"],
             "variants": [{"id": 4470000010u64, "title": "Default Title", "price": "20.00"}]}
        ],
        "customers": [{"id": ADA, "email": "ada@example.com", "tags": []}]
    });
    keel.sim
        .seed(SHOP, Seed::from_json(&seed.to_string()).unwrap());
    keel
}

fn shop() -> ShopDomain {
    ShopDomain::parse(SHOP, DomainPolicy::AnyHost).unwrap()
}

async fn put(keel: &TestKeel, body: &Value) -> (u16, Value) {
    let response = keel
        .put_settings(&keel.session_token(SHOP), &body.to_string())
        .await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn get(keel: &TestKeel) -> Value {
    let response = keel.get_settings(&keel.session_token(SHOP)).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn checkout(keel: &TestKeel, customer: Option<u64>) -> CheckoutAnswer {
    keel.sim
        .checkout(CheckoutRequest {
            shop: SHOP.into(),
            customer: customer.map(|id| format!("gid://shopify/Customer/{id}")),
            lines: vec![
                CheckoutLine {
                    variant: TOTE.into(),
                    quantity: 2,
                },
                CheckoutLine {
                    variant: MUG.into(),
                    quantity: 1,
                },
            ],
            currency: None,
            presentment_currency_rate: None,
            shipping_price: None,
        })
        .await
        .expect("the simulator prices the checkout")
}

/// (class, message, amount) of each discount applied.
fn applied(answer: &CheckoutAnswer) -> Vec<(String, String, String)> {
    answer
        .discounts
        .iter()
        .map(|d| {
            (
                d.class.clone(),
                d.message.clone().unwrap_or_default(),
                d.amount.clone(),
            )
        })
        .collect()
}

fn d(class: &str, message: &str, amount: &str) -> (String, String, String) {
    (class.into(), message.into(), amount.into())
}

/// The config metafield on the sim's discount, as JSON.
fn discount_config(keel: &TestKeel, discount_id: &str) -> Value {
    let m = keel
        .sim
        .metafield(SHOP, discount_id, "$app:vip", "config")
        .expect("the discount carries the configuration metafield");
    assert_eq!(m.kind, "json");
    serde_json::from_str(&m.value).unwrap()
}

fn mutations(keel: &TestKeel, name: &str) -> usize {
    keel.sim
        .mutation_log(SHOP)
        .iter()
        .filter(|m| m.mutation == name)
        .count()
}

on_both_backends! {
    async fn saved_settings_become_the_discount_a_vip_sees_at_checkout_and_updates_reach_the_same_discount(backend: Backend) {
        let keel = keel_with_shop(backend).await;
        let before = get(&keel).await;
        assert_eq!(before["config"], Value::Null);
        assert_eq!((before["version"].as_i64(), before["sync"]["status"].as_str()), (Some(0), Some("not_configured")));

        // Save: stored and queued, not yet on Shopify.
        let (status, saved) = put(&keel, &config_v1()).await;
        assert_eq!(status, 200, "{saved}");
        assert_eq!((saved["version"].as_i64(), saved["sync"]["status"].as_str()), (Some(1), Some("pending")));
        assert_eq!(saved["config"]["tiers"][0]["percentage"], "15");
        assert!(keel.sim.discounts(SHOP).is_empty());

        assert_eq!(keel.drain_jobs().await, 1);
        let synced = get(&keel).await;
        assert_eq!(synced["sync"]["status"], "synced", "{synced}");
        assert_eq!(synced["sync"]["synced_version"], 1);
        let discount_id = synced["discount_id"].as_str().expect("the discount id is stored").to_owned();

        // The simulator holds Keel's discount: the Function, classes from the tiers, the config.
        let discounts = keel.sim.discounts(SHOP);
        assert_eq!(discounts.len(), 1);
        assert_eq!(discounts[0].gid(), discount_id);
        assert_eq!(discounts[0].function_handle, "vip-discount");
        assert_eq!(discounts[0].discount_classes, ["PRODUCT", "SHIPPING"]);
        assert_eq!(discount_config(&keel, &discount_id), saved["config"]);

        // Ada becomes Gold (as the Tag VIP action will do), through the Admin client.
        keel.state.admin.metafields_set(&shop(), &[MetafieldInput {
            owner_id: Gid::new("Customer", ADA),
            namespace: None,
            key: "vip_tier".into(),
            kind: "single_line_text_field".into(),
            value: "Gold".into(),
        }]).await.unwrap();

        // Totes 84.00 (mug excluded by tag): 15 % = 12.60, and free shipping.
        let ada = checkout(&keel, Some(ADA)).await;
        assert_eq!(applied(&ada), [
            d("PRODUCT", "Gold members save 15%", "12.60"),
            d("SHIPPING", "VIP Gold — free shipping", "10.00"),
        ], "{ada:#?}");
        assert_eq!(ada.discounts[0].discount_id, discount_id);
        assert_eq!((ada.subtotal.as_str(), ada.total.as_str()), ("91.40", "91.40"));
        let guest = checkout(&keel, None).await;
        assert!(guest.discounts.is_empty(), "{:#?}", guest.discounts);
        assert_eq!(guest.total, "114.00");

        // The merchant changes the settings: the same discount carries them.
        let (status, saved) = put(&keel, &config_v2()).await;
        assert_eq!(status, 200, "{saved}");
        assert_eq!((saved["version"].as_i64(), saved["sync"]["status"].as_str()), (Some(2), Some("pending")));
        assert_eq!(saved["discount_id"], discount_id.as_str(), "the discount is known while the update is pending");
        assert_eq!(keel.drain_jobs().await, 1);
        let synced = get(&keel).await;
        assert_eq!((synced["sync"]["status"].as_str(), synced["sync"]["synced_version"].as_i64()), (Some("synced"), Some(2)));
        assert_eq!(synced["discount_id"], discount_id.as_str());
        let discounts = keel.sim.discounts(SHOP);
        assert_eq!(discounts.len(), 1, "updated, not created again");
        assert_eq!(discounts[0].discount_classes, ["PRODUCT"], "no tier has shipping any more");
        assert_eq!(discount_config(&keel, &discount_id), saved["config"]);
        assert_eq!((mutations(&keel, "discountAutomaticAppCreate"), mutations(&keel, "discountAutomaticAppUpdate")), (1, 1));

        let ada = checkout(&keel, Some(ADA)).await;
        assert_eq!(applied(&ada), [d("PRODUCT", "Gold members save 20%", "16.80")], "{ada:#?}");
        assert_eq!(ada.total, "97.20");
        assert!(checkout(&keel, None).await.discounts.is_empty());
        assert_eq!(keel.state.store.job_counts().await.unwrap().dead, 0);
    }

    async fn invalid_settings_are_refused_with_every_problem_and_nothing_is_stored(backend: Backend) {
        let keel = keel_with_shop(backend).await;
        let (status, body) = put(&keel, &json!({
            "vipTags": ["VIP", ""],
            "tiers": [
                {"name": "Gold", "percentage": "150"},
                {"name": "gold", "percentage": "10", "cap": "0"}
            ]
        })).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"], "invalid_settings");
        let problems: Vec<(String, String)> = body["problems"].as_array().unwrap().iter()
            .map(|p| (p["path"].as_str().unwrap().to_owned(), p["message"].as_str().unwrap().to_owned()))
            .collect();
        let paths: Vec<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["vipTags[1]", "tiers[0].percentage", "tiers[1].cap", "tiers[1].name"], "{problems:?}");
        assert!(problems.iter().all(|(_, m)| !m.is_empty()));

        // Shape problems too, each with its path.
        let (status, body) = put(&keel, &json!({"tiers": [{"percentage": 15}], "vipTags": "VIP"})).await;
        assert_eq!(status, 422, "{body}");
        let paths: Vec<&str> = body["problems"].as_array().unwrap().iter().map(|p| p["path"].as_str().unwrap()).collect();
        assert_eq!(paths, ["vipTags", "tiers[0].name", "tiers[0].percentage"], "{body}");

        let (status, body) = put(&keel, &json!([1, 2])).await;
        assert_eq!((status, body["problems"][0]["path"].as_str()), (422, Some("")), "{body}");

        assert!(keel.state.store.vip_settings(SHOP).await.unwrap().is_none());
        assert_eq!(keel.state.store.job_counts().await.unwrap().queued, 0);
        let raw = keel.db.raw().await;
        assert_eq!(raw.count("vip_settings", "shop", SHOP).await, 0);
        assert_eq!(raw.count("jobs", "shop", SHOP).await, 0);
        raw.close().await;
        assert_eq!(get(&keel).await["sync"]["status"], "not_configured");
    }
}

#[tokio::test]
async fn settings_need_a_valid_session_token() {
    let keel = keel_with_shop(Backend::Sqlite).await;
    let url = format!("{}/api/settings", keel.url);
    let body = config_v1().to_string();
    let forged = keel
        .session_token("vip-shop.myshopify.com")
        .replace('.', "x.");
    for (what, token) in [
        ("no token", None),
        ("bad token", Some(forged.as_str())),
        ("garbage", Some("not-a-jwt")),
    ] {
        for method in [reqwest::Method::GET, reqwest::Method::PUT] {
            let mut request = keel.http.request(method.clone(), &url).body(body.clone());
            if let Some(t) = token {
                request = request.bearer_auth(t);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{method} with {what}");
            assert_eq!(
                response
                    .headers()
                    .get("x-shopify-retry-invalid-session-request")
                    .map(|v| v.to_str().unwrap()),
                Some("1"),
                "{method} with {what}"
            );
        }
    }
    assert!(keel.state.store.vip_settings(SHOP).await.unwrap().is_none());
}

#[tokio::test]
async fn malformed_or_oversized_bodies_are_refused_and_store_nothing() {
    let keel = keel_with_shop(Backend::Sqlite).await;
    let token = keel.session_token(SHOP);
    let response = keel
        .put_settings(&token, r#"{"tiers": [{"name": "Gold""#)
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_json");

    let huge = format!(r#"{{"tiers": [], "padding": "{}"}}"#, "x".repeat(70 * 1024));
    let response = keel.put_settings(&token, &huge).await;
    assert_eq!(response.status(), 413);

    // Valid JSON whose canonical form is over what Shopify hands a Function (10,000 bytes).
    let tags: Vec<String> = (0..100)
        .map(|i| format!("{i}-{}", "t".repeat(120)))
        .collect();
    let (status, body) = put(
        &keel,
        &json!({"vipTags": tags, "tiers": [{"name": "Gold", "percentage": "5"}]}),
    )
    .await;
    assert_eq!(status, 422, "{body}");

    assert!(keel.state.store.vip_settings(SHOP).await.unwrap().is_none());
    assert_eq!(keel.state.store.job_counts().await.unwrap().queued, 0);
}

#[tokio::test]
async fn a_sync_job_run_twice_or_after_losing_the_discount_id_leaves_one_discount() {
    let keel = keel_with_shop(Backend::Sqlite).await;
    let (status, _) = put(&keel, &config_v1()).await;
    assert_eq!(status, 200);
    let now = keel.clock.now();
    let job = keel
        .state
        .store
        .claim_job("test", now + chrono::Duration::seconds(90), now)
        .await
        .unwrap()
        .expect("the sync job is queued");
    assert_eq!(job.kind, "vip/sync-discount");

    // The same job twice, as when its worker dies after Shopify answered.
    keel::jobs::vip::run(&keel.state, &job).await.unwrap();
    keel::jobs::vip::run(&keel.state, &job).await.unwrap();
    assert_eq!(keel.sim.discounts(SHOP).len(), 1);
    assert_eq!(mutations(&keel, "discountAutomaticAppCreate"), 1);
    let id = keel
        .state
        .store
        .vip_settings(SHOP)
        .await
        .unwrap()
        .unwrap()
        .discount_id
        .unwrap();

    // A crash between Shopify's answer and storing the id: the id is lost, the job runs again.
    let raw = keel.db.raw().await;
    if let crate::support::db::RawDb::Sqlite(pool) = &raw {
        sqlx::query("update vip_settings set discount_id = null, sync_status = 'pending'")
            .execute(pool)
            .await
            .unwrap();
    }
    raw.close().await;
    keel::jobs::vip::run(&keel.state, &job).await.unwrap();
    assert_eq!(
        keel.sim.discounts(SHOP).len(),
        1,
        "found, not created again"
    );
    assert_eq!(mutations(&keel, "discountAutomaticAppCreate"), 1);
    let settings = keel.state.store.vip_settings(SHOP).await.unwrap().unwrap();
    assert_eq!(
        (settings.discount_id.as_deref(), settings.sync_status),
        (Some(id.as_str()), SyncStatus::Synced)
    );
    assert!(keel
        .state
        .store
        .complete_job(job.id, "test", keel.clock.now())
        .await
        .unwrap());
}

#[tokio::test]
async fn a_superseded_sync_job_leaves_the_newer_settings_to_their_own_job() {
    let keel = keel_with_shop(Backend::Sqlite).await;
    assert_eq!(put(&keel, &config_v1()).await.0, 200);
    let (_, newer) = put(&keel, &config_v2()).await;
    assert_eq!(keel.drain_jobs().await, 2);
    // Only the newer settings went to Shopify, once.
    assert_eq!(mutations(&keel, "discountAutomaticAppCreate"), 1);
    assert_eq!(mutations(&keel, "discountAutomaticAppUpdate"), 0);
    let settings = get(&keel).await;
    assert_eq!(
        (
            settings["sync"]["status"].as_str(),
            settings["sync"]["synced_version"].as_i64()
        ),
        (Some("synced"), Some(2))
    );
    let id = settings["discount_id"].as_str().unwrap().to_owned();
    assert_eq!(discount_config(&keel, &id), newer["config"]);
    assert_eq!(keel.state.store.job_counts().await.unwrap().dead, 0);
}

#[tokio::test]
async fn shopify_user_errors_fail_the_sync_and_show_in_the_settings() {
    let keel = keel_with_shop(Backend::Sqlite).await;
    // The app's deployed Functions do not include vip-discount: Shopify refuses the discount.
    keel.sim.seed(
        SHOP,
        Seed {
            function_handles: vec!["another-function".into()],
            ..Seed::default()
        },
    );
    assert_eq!(put(&keel, &config_v1()).await.0, 200);
    keel.drain_jobs().await;
    let settings = get(&keel).await;
    assert_eq!(settings["sync"]["status"], "failed", "{settings}");
    let error = settings["sync"]["error"].as_str().unwrap();
    assert!(error.contains("Function not found"), "{error}");
    assert_eq!(settings["discount_id"], Value::Null);
    assert!(keel.sim.discounts(SHOP).is_empty());
    assert_eq!(
        keel.state.store.job_counts().await.unwrap().dead,
        1,
        "no retry can change Shopify's answer"
    );

    // Saving again (after the merchant fixes the deployment) syncs.
    keel.sim.seed(
        SHOP,
        Seed {
            function_handles: vec!["vip-discount".into()],
            ..Seed::default()
        },
    );
    assert_eq!(put(&keel, &config_v1()).await.0, 200);
    keel.drain_jobs().await;
    let settings = get(&keel).await;
    assert_eq!(
        (
            settings["sync"]["status"].as_str(),
            settings["sync"]["error"].as_str()
        ),
        (Some("synced"), None)
    );
}
