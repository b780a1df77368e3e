//! Session tokens, token exchange and refresh against the simulator.

use crate::on_both_backends;
use crate::support::TestKeel;
use keel::AppState;
use shopify_sim::SessionTokenOptions;
use std::sync::Arc;

const SHOP: &str = "auth-shop.myshopify.com";
const RETRY: &str = "x-shopify-retry-invalid-session-request";

async fn assert_refused_and_nothing_stored(keel: &TestKeel, token: &str) {
    let r = keel.get_shop(token).await;
    assert_eq!(r.status(), 401, "token {token:.20}…");
    assert_eq!(
        r.headers().get(RETRY).and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_session_token");
    assert!(
        keel.state.store.shop(SHOP).await.unwrap().is_none(),
        "nothing may be stored"
    );
    assert_eq!(
        keel.sim.token_calls(SHOP).exchanges,
        0,
        "no exchange with a bad token"
    );
}

on_both_backends! {
    async fn first_api_call_exchanges_the_session_token_for_an_expiring_offline_token(backend: Backend) {
        let keel = TestKeel::spawn(backend).await;
        keel.sim.install_shop(SHOP, ["read_customers", "write_customers"]);
        let r = keel.get_shop(&keel.session_token(SHOP)).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()), Some("*"));
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["shop"], SHOP);
        assert_eq!(body["installed"], true);
        assert_eq!(body["scopes"], serde_json::json!(["read_customers", "write_customers"]));
        assert!(body["token_expires_at"].is_string(), "{body}");
        assert_eq!(keel.sim.token_calls(SHOP).exchanges, 1);

        // Tokens are sealed at rest: the stored bytes are not the token the simulator issued.
        let rec = keel.state.store.token(SHOP).await.unwrap().unwrap();
        let access = keel.state.access.access_token(&shop()).await.unwrap();
        assert!(access.token.starts_with("shpat_"));
        assert!(keel.sim.access_token_is_valid(&access.token));
        assert!(!rec.token.access_token.windows(access.token.len()).any(|w| w == access.token.as_bytes()));
        assert!(rec.token.refresh_token.is_some());

        // Later calls reuse the stored token.
        assert_eq!(keel.get_shop(&keel.session_token(SHOP)).await.status(), 200);
        assert_eq!(keel.sim.token_calls(SHOP).exchanges, 1);
    }

    async fn expired_future_wrong_audience_wrong_signature_and_malformed_tokens_are_401(backend: Backend) {
        let keel = TestKeel::spawn(backend).await;
        keel.sim.install_shop(SHOP, ["read_customers"]);
        let opts = |f: fn(&mut SessionTokenOptions)| {
            let mut o = SessionTokenOptions::default();
            f(&mut o);
            keel.sim.session_token(SHOP, o)
        };
        let expired = opts(|o| { o.exp_in_secs = -120; o.nbf_offset_secs = -180; o.iat_offset_secs = -180; });
        let future = opts(|o| { o.nbf_offset_secs = 120; o.iat_offset_secs = 120; o.exp_in_secs = 180; });
        let wrong_aud = opts(|o| o.audience = Some("another-app".into()));
        let wrong_sig = opts(|o| o.secret = Some("not-our-secret".into()));
        for token in [expired, future, wrong_aud, wrong_sig, "garbage".to_owned(), "a.b.c".to_owned()] {
            assert_refused_and_nothing_stored(&keel, &token).await;
        }
        // No Authorization header at all.
        let r = keel.http.get(format!("{}/api/shop", keel.url)).send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers().get(RETRY).and_then(|v| v.to_str().ok()), Some("1"));
    }

    async fn api_preflight_answers_204_with_cors_headers(backend: Backend) {
        let keel = TestKeel::spawn(backend).await;
        let r = keel.http.request(reqwest::Method::OPTIONS, format!("{}/api/shop", keel.url)).send().await.unwrap();
        assert_eq!(r.status(), 204);
        assert_eq!(r.headers()["access-control-allow-headers"], "Authorization, Content-Type");
        assert_eq!(r.headers()["access-control-max-age"], "7200");
    }

    async fn uninstalled_shop_gets_403_not_installed(backend: Backend) {
        let keel = TestKeel::spawn(backend).await;
        let r = keel.get_shop(&keel.session_token(SHOP)).await;
        assert_eq!(r.status(), 403);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "not_installed");
        assert!(keel.state.store.shop(SHOP).await.unwrap().is_none());
    }

    async fn token_expiring_within_five_minutes_is_refreshed_and_rotated(backend: Backend) {
        let keel = TestKeel::spawn(backend).await;
        keel.install(SHOP).await;
        let before = keel.state.store.token(SHOP).await.unwrap().unwrap();
        let first = keel.state.access.access_token(&shop()).await.unwrap();
        assert_eq!(keel.sim.token_calls(SHOP).refreshes, 0, "a fresh token is not refreshed");

        keel.clock.advance(chrono::Duration::minutes(56));
        let second = keel.state.access.access_token(&shop()).await.unwrap();
        assert_eq!(keel.sim.token_calls(SHOP).refreshes, 1);
        assert_ne!(first.token, second.token);
        assert!(keel.sim.access_token_is_valid(&second.token));
        let after = keel.state.store.token(SHOP).await.unwrap().unwrap();
        assert!(after.version > before.version);
        assert_ne!(after.token.refresh_token, before.token.refresh_token, "the rotated refresh token is stored");
        // The refreshed token is used from now on, without another refresh.
        keel.state.access.access_token(&shop()).await.unwrap();
        assert_eq!(keel.sim.token_calls(SHOP).refreshes, 1);
    }

    async fn concurrent_refreshes_in_one_process_make_one_call_and_keep_the_token(backend: Backend) {
        let keel = TestKeel::spawn(backend).await;
        keel.install(SHOP).await;
        keel.sim.set_refresh_latency(std::time::Duration::from_millis(300));
        keel.clock.advance(chrono::Duration::minutes(57));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let access = keel.state.access.clone();
                tokio::spawn(async move { access.access_token(&shop()).await.map(|t| t.token) })
            })
            .collect();
        let mut tokens = Vec::new();
        for t in tasks {
            tokens.push(t.await.unwrap().unwrap());
        }
        assert_eq!(keel.sim.token_calls(SHOP).refreshes, 1, "single flight");
        assert!(tokens.windows(2).all(|w| w[0] == w[1]));
        assert!(keel.sim.access_token_is_valid(&tokens[0]));
        // The stored refresh token still works: a later refresh succeeds.
        keel.clock.advance(chrono::Duration::minutes(57));
        let later = keel.state.access.access_token(&shop()).await.unwrap();
        assert!(keel.sim.access_token_is_valid(&later.token));
        assert_eq!(keel.sim.token_calls(SHOP).refreshes, 2);
    }

    async fn two_replicas_refreshing_at_once_make_one_call_and_keep_the_token(backend: Backend) {
        let keel = TestKeel::spawn(backend).await;
        keel.install(SHOP).await;
        // A second replica: its own state and connections, the same database and clock.
        let other = AppState::with_store(
            (*keel.state.config).clone(),
            Arc::new(keel.clock.clone()),
            keel.db.store().await,
        )
        .unwrap();
        keel.sim.set_refresh_latency(std::time::Duration::from_millis(300));
        keel.clock.advance(chrono::Duration::minutes(57));
        let a = keel.state.access.clone();
        let b = other.access.clone();
        let (ta, tb) = tokio::join!(
            async move { a.access_token(&shop()).await.map(|t| t.token) },
            async move { b.access_token(&shop()).await.map(|t| t.token) },
        );
        let (ta, tb) = (ta.unwrap(), tb.unwrap());
        assert_eq!(keel.sim.token_calls(SHOP).refreshes, 1, "one refresh across replicas");
        assert_eq!(ta, tb);
        assert!(keel.sim.access_token_is_valid(&ta));
        keel.clock.advance(chrono::Duration::minutes(57));
        assert!(keel.sim.access_token_is_valid(&other.access.access_token(&shop()).await.unwrap().token));
    }

    async fn admin_call_refused_with_401_refreshes_once_and_succeeds(backend: Backend) {
        let keel = TestKeel::spawn(backend).await;
        keel.install(SHOP).await;
        keel.sim.expire_access_tokens(SHOP);
        let info = keel.state.admin.shop_info(&shop()).await.unwrap();
        assert_eq!(info.myshopify_domain, SHOP);
        assert_eq!(keel.sim.token_calls(SHOP).refreshes, 1);
    }

    async fn refused_refresh_marks_the_shop_for_reauthorisation_and_the_next_open_repairs_it(backend: Backend) {
        let keel = TestKeel::spawn(backend).await;
        keel.install(SHOP).await;
        keel.sim.revoke_refresh_tokens(SHOP);
        keel.clock.advance(chrono::Duration::minutes(58));
        let err = keel.state.access.access_token(&shop()).await.unwrap_err();
        assert!(matches!(err, keel::access::AccessError::NeedsReauth), "{err:?}");
        assert!(keel.state.store.shop(SHOP).await.unwrap().unwrap().needs_reauth);
        // Opening the app exchanges a new token (back at wall-clock time, which the
        // simulator's token endpoint also uses).
        keel.clock.set(chrono::Utc::now());
        let r = keel.get_shop(&keel.session_token(SHOP)).await;
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["needs_reauthorization"], false);
        assert!(keel.sim.access_token_is_valid(&keel.state.access.access_token(&shop()).await.unwrap().token));
    }
}

fn shop() -> keel::shopify::ShopDomain {
    keel::shopify::ShopDomain::parse(SHOP, keel::shopify::domain::DomainPolicy::MyShopifyOnly)
        .unwrap()
}
