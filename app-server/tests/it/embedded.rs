//! The embedded entry `GET /` and the bounce page, as Shopify's admin loads them.

use crate::on_both_backends;
use crate::support::{TestKeel, API_KEY, API_SECRET};
use base64::Engine as _;

const SHOP: &str = "embedded-shop.myshopify.com";

fn host() -> String {
    base64::engine::general_purpose::STANDARD_NO_PAD.encode("admin.shopify.com/store/embedded-shop")
}

/// The query Shopify's admin sends, signed as Shopify signs it.
fn signed_query(keel: &TestKeel, extra: &[(&str, &str)], id_token: Option<&str>) -> String {
    let timestamp = keel.clock.now().timestamp().to_string();
    let host = host();
    let mut pairs: Vec<(&str, &str)> = vec![
        ("embedded", "1"),
        ("host", &host),
        ("locale", "en"),
        ("shop", SHOP),
        ("timestamp", &timestamp),
    ];
    if let Some(t) = id_token {
        pairs.push(("id_token", t));
    }
    pairs.extend_from_slice(extra);
    let unsigned = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();
    let (message, _) = keel::shopify::hmac::query_message(&unsigned);
    let hmac = keel::shopify::hmac::sign_query_message(API_SECRET.as_bytes(), &message);
    format!("{unsigned}&hmac={hmac}")
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

on_both_backends! {
    async fn first_embedded_load_exchanges_the_token_and_frames_only_the_shop_admin(backend: Backend) {
        let keel = TestKeel::spawn(backend).await;
        keel.sim.install_shop(SHOP, ["read_customers"]);
        let token = keel.session_token(SHOP);
        let r = no_redirects().get(format!("{}/?{}", keel.url, signed_query(&keel, &[], Some(&token)))).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["content-security-policy"],
            format!("frame-ancestors https://{SHOP} https://admin.shopify.com;")
        );
        let html = r.text().await.unwrap();
        assert!(html.contains("https://cdn.shopify.com/shopifycloud/app-bridge.js"));
        assert!(html.contains(API_KEY));
        assert_eq!(keel.sim.token_calls(SHOP).exchanges, 1);
        assert!(keel.state.store.shop(SHOP).await.unwrap().unwrap().installed);
    }

    async fn load_without_id_token_redirects_to_the_bounce_page_with_a_same_origin_reload(backend: Backend) {
        let keel = TestKeel::spawn(backend).await;
        let r = no_redirects().get(format!("{}/?{}", keel.url, signed_query(&keel, &[], None))).send().await.unwrap();
        assert_eq!(r.status(), 302);
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with("/auth/session-token?"), "{location}");
        let reload = form_urlencoded::parse(location.split_once('?').unwrap().1.as_bytes())
            .find(|(k, _)| k == "shopify-reload")
            .map(|(_, v)| v.into_owned())
            .unwrap();
        assert!(reload.starts_with(&format!("{}/?", keel.url)), "{reload}");
        assert!(!reload.contains("id_token"));
        let bounce = no_redirects().get(format!("{}{location}", keel.url)).send().await.unwrap();
        assert_eq!(bounce.status(), 200);
        assert!(bounce.headers()["content-security-policy"].to_str().unwrap().contains(SHOP));
        let html = bounce.text().await.unwrap();
        assert!(html.contains(r#"data-api-key="keel-test-client-id""#), "{html}");
        assert!(keel.state.store.shop(SHOP).await.unwrap().is_none());
    }

    async fn tampered_or_stale_query_signature_is_refused(backend: Backend) {
        let keel = TestKeel::spawn(backend).await;
        keel.sim.install_shop(SHOP, ["read_customers"]);
        let token = keel.session_token(SHOP);
        let tampered = signed_query(&keel, &[], Some(&token)).replace("locale=en", "locale=fr");
        let r = no_redirects().get(format!("{}/?{tampered}", keel.url)).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let stale = signed_query(&keel, &[], Some(&token));
        keel.clock.advance(chrono::Duration::seconds(91));
        let r = no_redirects().get(format!("{}/?{stale}", keel.url)).send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert!(keel.state.store.shop(SHOP).await.unwrap().is_none(), "nothing stored");
        assert_eq!(keel.sim.token_calls(SHOP).exchanges, 0);
    }

    async fn missing_or_invalid_shop_gets_only_app_bridge(backend: Backend) {
        let keel = TestKeel::spawn(backend).await;
        for query in ["".to_owned(), format!("shop=evil.com/x&host={}", host()), format!("shop={SHOP}&host=bm90LXNob3BpZnkuY29t")] {
            let r = no_redirects().get(format!("{}/?{query}", keel.url)).send().await.unwrap();
            assert_eq!(r.status(), 200, "{query}");
            assert_eq!(r.headers()["content-security-policy"], "frame-ancestors https://admin.shopify.com;");
            let html = r.text().await.unwrap();
            assert!(html.contains("app-bridge.js") && !html.contains("keel-status"), "{html}");
        }
    }

    async fn unembedded_load_is_sent_into_the_admin(backend: Backend) {
        let keel = TestKeel::spawn(backend).await;
        let r = no_redirects()
            .get(format!("{}/?shop={SHOP}&host={}&embedded=0", keel.url, host()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302);
        assert_eq!(r.headers()["location"], format!("https://admin.shopify.com/store/embedded-shop/apps/{API_KEY}"));
    }
}
