//! `POST /webhooks`: verification, dedupe, durable queueing, and every bad input answered
//! clearly with nothing stored.

use crate::on_both_backends;
use crate::support::{TestKeel, API_SECRET};
use keel::store::JobCounts;
use shopify_sim::webhooks::payloads;
use shopify_sim::WebhookDelivery;

const SHOP: &str = "webhook-shop.myshopify.com";

fn sign(body: &[u8]) -> String {
    keel::shopify::hmac::sign_body(API_SECRET.as_bytes(), body)
}

/// A raw request with every Shopify header, for the bad-input cases the simulator would not send.
fn raw(keel: &TestKeel, body: Vec<u8>, hmac: Option<String>) -> reqwest::RequestBuilder {
    let mut r = keel
        .http
        .post(keel.webhook_url())
        .header("Content-Type", "application/json")
        .header("X-Shopify-Topic", "app/uninstalled")
        .header("X-Shopify-Shop-Domain", SHOP)
        .header("X-Shopify-API-Version", "2026-10")
        .header("X-Shopify-Webhook-Id", uuid::Uuid::new_v4().to_string())
        .header("X-Shopify-Event-Id", uuid::Uuid::new_v4().to_string());
    if let Some(h) = hmac {
        r = r.header("X-Shopify-Hmac-Sha256", h);
    }
    r.body(body)
}

async fn assert_nothing_stored(keel: &TestKeel) {
    let store = &keel.state.store;
    assert!(
        store.receipts(SHOP, 100).await.unwrap().is_empty(),
        "no receipt may be stored"
    );
    assert_eq!(
        store.job_counts().await.unwrap(),
        JobCounts::default(),
        "no job may be queued"
    );
}

fn uninstalled(shop: &str) -> WebhookDelivery {
    WebhookDelivery::app_uninstalled(shop)
}

on_both_backends! {
    async fn signed_uninstall_is_acknowledged_queued_and_applied_by_its_job(backend: Backend) {
        let keel = TestKeel::spawn(backend).await;
        keel.install(SHOP).await;
        let results = keel.sim.send_webhook(&keel.webhook_url(), uninstalled(SHOP)).await;
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].status, Some(200));
        // Acknowledged before processing: the shop is still installed until the job runs.
        assert!(keel.state.store.shop(SHOP).await.unwrap().unwrap().installed);
        assert_eq!(keel.state.store.job_counts().await.unwrap().queued, 1);

        assert_eq!(keel.drain_jobs().await, 1);
        let shop = keel.state.store.shop(SHOP).await.unwrap().unwrap();
        assert!(!shop.installed);
        assert!(shop.uninstalled_at.is_some());
        assert!(keel.state.store.token(SHOP).await.unwrap().is_none(), "tokens are deleted on uninstall");
        let receipts = keel.state.store.receipts(SHOP, 10).await.unwrap();
        assert_eq!(receipts.len(), 1);
        assert_eq!(receipts[0].status, "done");
    }

    async fn sequential_duplicates_answer_200_and_have_one_effect(backend: Backend) {
        let keel = TestKeel::spawn(backend).await;
        keel.install(SHOP).await;
        let mut delivery = uninstalled(SHOP);
        delivery.duplicates = 3;
        let results = keel.sim.send_webhook(&keel.webhook_url(), delivery).await;
        assert_eq!(results.len(), 4);
        assert!(results.iter().all(|r| r.status == Some(200)), "{results:?}");
        assert_eq!(keel.state.store.receipts(SHOP, 10).await.unwrap().len(), 1);
        let counts = keel.state.store.job_counts().await.unwrap();
        assert_eq!(counts.queued, 1, "one job for four copies");
        assert_eq!(keel.drain_jobs().await, 1);
    }

    async fn concurrent_duplicates_are_stored_once(backend: Backend) {
        let keel = TestKeel::spawn(backend).await;
        keel.install(SHOP).await;
        let mut delivery = uninstalled(SHOP);
        delivery.duplicates = 19;
        delivery.concurrent = true;
        let results = keel.sim.send_webhook(&keel.webhook_url(), delivery).await;
        assert_eq!(results.len(), 20);
        assert!(results.iter().all(|r| r.status == Some(200)), "{results:?}");
        assert_eq!(keel.state.store.receipts(SHOP, 50).await.unwrap().len(), 1);
        assert_eq!(keel.state.store.job_counts().await.unwrap().queued, 1);
    }

    async fn same_event_delivered_with_new_webhook_ids_is_a_duplicate(backend: Backend) {
        let keel = TestKeel::spawn(backend).await;
        keel.install(SHOP).await;
        let event = uuid::Uuid::new_v4().to_string();
        for _ in 0..2 {
            let mut d = uninstalled(SHOP);
            d.event_id = Some(event.clone());
            d.webhook_id = Some(uuid::Uuid::new_v4().to_string());
            let r = keel.sim.send_webhook(&keel.webhook_url(), d).await;
            assert_eq!(r[0].status, Some(200));
        }
        assert_eq!(keel.state.store.job_counts().await.unwrap().queued, 1);
    }

    async fn wrong_or_missing_signature_is_401_and_stores_nothing(backend: Backend) {
        let keel = TestKeel::spawn(backend).await;
        let body = payloads::app_uninstalled(SHOP).to_string().into_bytes();
        let wrong = keel::shopify::hmac::sign_body(b"not-the-secret", &body);
        let r = raw(&keel, body.clone(), Some(wrong)).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let text = r.text().await.unwrap();
        assert!(text.contains("does not match"), "{text}");
        let r = raw(&keel, body.clone(), None).send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert!(r.text().await.unwrap().contains("missing"));
        // The simulator signing with another key is refused the same way.
        let mut d = uninstalled(SHOP);
        d.secret = Some("another-apps-secret".into());
        assert_eq!(keel.sim.send_webhook(&keel.webhook_url(), d).await[0].status, Some(401));
        assert_nothing_stored(&keel).await;
    }

    async fn non_post_is_405(backend: Backend) {
        let keel = TestKeel::spawn(backend).await;
        for method in [reqwest::Method::GET, reqwest::Method::PUT, reqwest::Method::DELETE] {
            let r = keel.http.request(method.clone(), keel.webhook_url()).send().await.unwrap();
            assert_eq!(r.status(), 405, "{method}");
        }
        assert_nothing_stored(&keel).await;
    }

    async fn body_over_one_mebibyte_is_413_and_stores_nothing(backend: Backend) {
        let keel = TestKeel::spawn(backend).await;
        let mut body = br#"{"pad":""#.to_vec();
        body.extend(std::iter::repeat_n(b'x', 1024 * 1024));
        body.extend(br#""}"#);
        let hmac = sign(&body);
        let r = raw(&keel, body, Some(hmac)).send().await.unwrap();
        assert_eq!(r.status(), 413);
        assert_nothing_stored(&keel).await;
    }

    async fn signed_invalid_json_is_400_naming_the_problem(backend: Backend) {
        let keel = TestKeel::spawn(backend).await;
        keel.install(SHOP).await;
        let body = br#"{"id": 1,"#.to_vec();
        let hmac = sign(&body);
        let r = raw(&keel, body, Some(hmac)).send().await.unwrap();
        assert_eq!(r.status(), 400);
        let json: serde_json::Value = r.json().await.unwrap();
        assert_eq!(json["error"], "invalid_json");
        assert!(json["message"].as_str().unwrap().contains("not valid JSON"), "{json}");
        assert_nothing_stored(&keel).await;
    }

    async fn missing_topic_header_is_400(backend: Backend) {
        let keel = TestKeel::spawn(backend).await;
        let body = br#"{"id":1}"#.to_vec();
        let r = keel
            .http
            .post(keel.webhook_url())
            .header("X-Shopify-Hmac-Sha256", sign(&body))
            .header("X-Shopify-Shop-Domain", SHOP)
            .header("X-Shopify-Webhook-Id", "w-1")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert!(r.text().await.unwrap().contains("X-Shopify-Topic"));
        assert_nothing_stored(&keel).await;
    }

    async fn webhook_for_an_unknown_shop_is_200_recorded_as_ignored_without_payload(backend: Backend) {
        let keel = TestKeel::spawn(backend).await;
        let results = keel.sim.send_webhook(&keel.webhook_url(), uninstalled(SHOP)).await;
        assert_eq!(results[0].status, Some(200));
        let receipts = keel.state.store.receipts(SHOP, 10).await.unwrap();
        assert_eq!(receipts.len(), 1);
        assert_eq!(receipts[0].status, "ignored");
        assert_eq!(receipts[0].payload, None);
        assert_eq!(keel.state.store.job_counts().await.unwrap(), JobCounts::default());
        assert!(keel.state.store.shop(SHOP).await.unwrap().is_none(), "no shop is created by a webhook");
    }

    async fn previous_secret_is_accepted_during_rotation(backend: Backend) {
        let keel = TestKeel::spawn_with(backend, |c| {
            c.api_secret_old = Some(keel::config::Secret::new("the-old-secret"));
        })
        .await;
        keel.install(SHOP).await;
        let mut d = uninstalled(SHOP);
        d.secret = Some("the-old-secret".into());
        assert_eq!(keel.sim.send_webhook(&keel.webhook_url(), d).await[0].status, Some(200));
        assert_eq!(keel.state.store.job_counts().await.unwrap().queued, 1);
    }

    async fn late_uninstall_after_a_reinstall_changes_nothing(backend: Backend) {
        let keel = TestKeel::spawn(backend).await;
        keel.install(SHOP).await;
        // Shopify: the merchant uninstalls, then reinstalls; the uninstall webhook is slow.
        let uninstalled_at = keel.clock.now() + chrono::Duration::seconds(1);
        keel.sim.uninstall_shop(SHOP);
        keel.sim.install_shop(SHOP, ["read_customers", "write_customers"]);
        // Keel learns its old token is dead and obtains a new one.
        keel.clock.advance(chrono::Duration::seconds(5));
        keel.state.store.mark_needs_reauth(SHOP, keel.clock.now()).await.unwrap();
        assert_eq!(keel.get_shop(&keel.session_token(SHOP)).await.status(), 200);
        // Only now does the uninstall arrive: what counts is when it happened.
        keel.clock.advance(chrono::Duration::seconds(5));
        let mut late = uninstalled(SHOP);
        late.triggered_at = Some(uninstalled_at);
        assert_eq!(keel.sim.send_webhook(&keel.webhook_url(), late).await[0].status, Some(200));
        keel.drain_jobs().await;
        let shop = keel.state.store.shop(SHOP).await.unwrap().unwrap();
        assert!(shop.installed, "a stale uninstall must not undo the reinstall");
        assert!(keel.state.store.token(SHOP).await.unwrap().is_some());
    }

    async fn scopes_update_stores_the_scopes_the_merchant_granted_now(backend: Backend) {
        let keel = TestKeel::spawn(backend).await;
        keel.install(SHOP).await;
        let d = WebhookDelivery::app_scopes_update(SHOP, &["read_customers", "write_customers"], &["read_customers", "read_orders"]);
        assert_eq!(keel.sim.send_webhook(&keel.webhook_url(), d).await[0].status, Some(200));
        keel.drain_jobs().await;
        assert_eq!(keel.state.store.shop(SHOP).await.unwrap().unwrap().scopes, "read_customers,read_orders");
        let r = keel.get_shop(&keel.session_token(SHOP)).await;
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["scopes"], serde_json::json!(["read_customers", "read_orders"]));
    }
}
