//! shopify-sim over real HTTP: each test spawns its own simulator on port 0 and talks to it with
//! reqwest, as Keel does. Webhook and Flow tests (`sim/flow.rs`) run a small receiver and check
//! signatures with an independent HMAC computation.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use shopify_sim::{
    ComplianceCustomer, SessionTokenClaims, SessionTokenOptions, SigningAlgorithm, Sim, SimConfig,
    TokenCalls, WebhookDelivery, API_VERSION, DEFAULT_API_KEY, DEFAULT_API_SECRET,
    INVALID_ACCESS_TOKEN_MESSAGE,
};

#[path = "sim/admin.rs"]
mod admin;
#[path = "sim/checkout.rs"]
mod checkout;
#[path = "sim/flow.rs"]
mod flow;

const SHOP: &str = "keel-demo.myshopify.com";
const OTHER_SHOP: &str = "other-store.myshopify.com";
const SCOPES: [&str; 2] = ["read_orders", "write_customers"];
const SHOP_QUERY: &str = "{ shop { name myshopifyDomain } }";

// ---- helpers -------------------------------------------------------------------------------------

async fn sim() -> Sim {
    sim_with(SimConfig::default()).await
}

async fn sim_with(config: SimConfig) -> Sim {
    let sim = Sim::spawn(config).await;
    sim.install_shop(SHOP, SCOPES);
    sim
}

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

/// POSTs a JSON body to the token endpoint the way Keel does; returns status and JSON body.
async fn token_call(sim: &Sim, shop: &str, body: Value) -> (StatusCode, Value) {
    let response = http()
        .post(format!("{}/admin/oauth/access_token", sim.origin()))
        .header("X-Shopify-Shop-Domain", shop)
        .header("Accept", "application/json")
        .json(&body)
        .send()
        .await
        .expect("token endpoint reachable");
    let status = response.status();
    (status, response.json().await.expect("JSON body"))
}

fn exchange_body(subject_token: &str, expiring: Option<&str>) -> Value {
    let mut body = json!({
        "client_id": DEFAULT_API_KEY,
        "client_secret": DEFAULT_API_SECRET,
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": subject_token,
        "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
        "requested_token_type": "urn:shopify:params:oauth:token-type:offline-access-token",
    });
    if let Some(e) = expiring {
        body["expiring"] = json!(e);
    }
    body
}

fn refresh_body(refresh_token: &str) -> Value {
    json!({
        "client_id": DEFAULT_API_KEY,
        "client_secret": DEFAULT_API_SECRET,
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
    })
}

/// A successful expiring exchange for `shop`: (access token, refresh token).
async fn exchange_expiring(sim: &Sim, shop: &str) -> (String, String) {
    let token = sim.session_token(shop, SessionTokenOptions::default());
    let (status, body) = token_call(sim, shop, exchange_body(&token, Some("1"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (
        str_field(&body, "access_token"),
        str_field(&body, "refresh_token"),
    )
}

async fn refresh(sim: &Sim, refresh_token: &str) -> (StatusCode, Value) {
    token_call(sim, SHOP, refresh_body(refresh_token)).await
}

fn str_field(v: &Value, name: &str) -> String {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} missing in {v}"))
        .to_owned()
}

fn assert_oauth_error(status: StatusCode, body: &Value, code: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], code, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{body}"
    );
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

async fn graphql(
    sim: &Sim,
    shop: &str,
    access_token: Option<&str>,
    query: &str,
) -> (StatusCode, Value) {
    let mut request = http()
        .post(format!(
            "{}/admin/api/{API_VERSION}/graphql.json",
            sim.origin()
        ))
        .header("X-Shopify-Shop-Domain", shop)
        .json(&json!({ "query": query }));
    if let Some(t) = access_token {
        request = request.header("X-Shopify-Access-Token", t);
    }
    let response = request.send().await.expect("admin API reachable");
    let status = response.status();
    (status, response.json().await.expect("JSON body"))
}

fn assert_unauthorized(status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body, &json!({ "errors": INVALID_ACCESS_TOKEN_MESSAGE }));
}

/// A webhook endpoint recording what it receives.
#[derive(Clone, Default)]
struct Receiver {
    hits: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    /// Answer 500 to this many requests before answering 200.
    fail_first: Arc<AtomicUsize>,
    /// Hold each request this long before answering.
    delay: Duration,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
    redirect: bool,
}

impl Receiver {
    async fn start(self) -> (Self, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/webhooks", listener.local_addr().expect("addr"));
        let state = self.clone();
        let app = axum::Router::new().route(
            "/webhooks",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let r = state.clone();
                async move { r.handle(headers, body).await }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.expect("receiver") });
        (self, url)
    }

    async fn handle(&self, headers: HeaderMap, body: Bytes) -> axum::response::Response {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        self.hits.lock().expect("lock").push((headers, body));
        tokio::time::sleep(self.delay).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if self.redirect {
            return (StatusCode::FOUND, [("location", "/elsewhere")]).into_response();
        }
        let failing = self
            .fail_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        } else {
            StatusCode::OK.into_response()
        }
    }

    fn hits(&self) -> Vec<(HeaderMap, Bytes)> {
        self.hits.lock().expect("lock").clone()
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .unwrap_or_else(|| panic!("header {name} missing"))
        .to_str()
        .expect("ASCII header")
}

/// base64(HMAC-SHA256(secret, body)), computed with the `hmac` crate directly.
fn independent_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

// ---- token exchange ------------------------------------------------------------------------------

#[tokio::test]
async fn token_exchange_issues_expiring_offline_token_with_shopifys_fields() {
    let sim = sim().await;
    let token = sim.session_token(SHOP, SessionTokenOptions::default());
    let (status, body) = token_call(&sim, SHOP, exchange_body(&token, Some("1"))).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        keys(&body),
        [
            "access_token",
            "expires_in",
            "refresh_token",
            "refresh_token_expires_in",
            "scope"
        ]
    );
    let access = str_field(&body, "access_token");
    assert!(
        access.starts_with("shpat_") && access.len() > 20,
        "{access}"
    );
    assert!(str_field(&body, "refresh_token").starts_with("shprt_"));
    assert_eq!(body["scope"], "read_orders,write_customers");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["refresh_token_expires_in"], 7_776_000);
    assert!(sim.access_token_is_valid(&access));
    assert_eq!(
        sim.token_calls(SHOP),
        TokenCalls {
            exchanges: 1,
            refreshes: 0,
            failed: 0
        }
    );
}

#[tokio::test]
async fn token_exchange_without_expiring_flag_issues_only_a_non_expiring_token() {
    let sim = sim().await;
    for expiring in [None, Some("0")] {
        let token = sim.session_token(SHOP, SessionTokenOptions::default());
        let (status, body) = token_call(&sim, SHOP, exchange_body(&token, expiring)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(keys(&body), ["access_token", "scope"]);
        let (status, _) = graphql(
            &sim,
            SHOP,
            Some(&str_field(&body, "access_token")),
            SHOP_QUERY,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(sim.token_calls(SHOP).exchanges, 2);
}

#[tokio::test]
async fn token_exchange_accepts_a_form_encoded_body() {
    let sim = sim().await;
    let token = sim.session_token(SHOP, SessionTokenOptions::default());
    let response = http()
        .post(format!("{}/admin/oauth/access_token", sim.origin()))
        .form(&[
            ("client_id", DEFAULT_API_KEY),
            ("client_secret", DEFAULT_API_SECRET),
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", token.as_str()),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:id_token",
            ),
            (
                "requested_token_type",
                "urn:shopify:params:oauth:token-type:offline-access-token",
            ),
            ("expiring", "1"),
        ])
        .send()
        .await
        .expect("reachable");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("JSON");
    assert!(body["refresh_token"].is_string(), "{body}");
}

#[tokio::test]
async fn token_exchange_rejects_invalid_session_tokens_as_invalid_subject_token() {
    let sim = sim().await;
    let broken = [
        (
            "expired beyond leeway",
            SessionTokenOptions {
                exp_in_secs: -11,
                ..Default::default()
            },
        ),
        (
            "not yet valid beyond leeway",
            SessionTokenOptions {
                nbf_offset_secs: 11,
                ..Default::default()
            },
        ),
        (
            "other audience",
            SessionTokenOptions {
                audience: Some("someone-else".into()),
                ..Default::default()
            },
        ),
        (
            "other secret",
            SessionTokenOptions {
                secret: Some("not-the-secret".into()),
                ..Default::default()
            },
        ),
        (
            "HS512",
            SessionTokenOptions {
                algorithm: SigningAlgorithm::Hs512,
                ..Default::default()
            },
        ),
        (
            "alg none",
            SessionTokenOptions {
                algorithm: SigningAlgorithm::None,
                ..Default::default()
            },
        ),
        (
            "garbage",
            SessionTokenOptions {
                algorithm: SigningAlgorithm::Garbage,
                ..Default::default()
            },
        ),
    ];
    for (why, options) in broken {
        let token = sim.session_token(SHOP, options);
        let (status, body) = token_call(&sim, SHOP, exchange_body(&token, Some("1"))).await;
        assert_eq!(body["error"], "invalid_subject_token", "{why}: {body}");
        assert_oauth_error(status, &body, "invalid_subject_token");
    }
    assert_eq!(
        sim.token_calls(SHOP),
        TokenCalls {
            exchanges: 0,
            refreshes: 0,
            failed: 7
        }
    );

    // Clock skew inside the 10 s leeway is tolerated.
    for options in [
        SessionTokenOptions {
            exp_in_secs: -5,
            ..Default::default()
        },
        SessionTokenOptions {
            nbf_offset_secs: 5,
            iat_offset_secs: 5,
            ..Default::default()
        },
    ] {
        let token = sim.session_token(SHOP, options);
        let (status, body) = token_call(&sim, SHOP, exchange_body(&token, Some("1"))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

#[tokio::test]
async fn token_exchange_for_a_shop_without_the_app_says_app_not_installed() {
    let sim = sim().await;
    let token = sim.session_token(OTHER_SHOP, SessionTokenOptions::default());
    let (status, body) = token_call(&sim, OTHER_SHOP, exchange_body(&token, Some("1"))).await;
    assert_oauth_error(status, &body, "app_not_installed");

    sim.uninstall_shop(SHOP).expect("known shop");
    let token = sim.session_token(SHOP, SessionTokenOptions::default());
    let (status, body) = token_call(&sim, SHOP, exchange_body(&token, Some("1"))).await;
    assert_oauth_error(status, &body, "app_not_installed");
    assert_eq!(sim.token_calls(SHOP).failed, 1);
}

#[tokio::test]
async fn token_endpoint_rejects_wrong_client_credentials_as_invalid_client() {
    let sim = sim().await;
    let token = sim.session_token(SHOP, SessionTokenOptions::default());
    for (field, value) in [("client_secret", "wrong"), ("client_id", "wrong")] {
        let mut body = exchange_body(&token, Some("1"));
        body[field] = json!(value);
        let (status, body) = token_call(&sim, SHOP, body).await;
        assert_oauth_error(status, &body, "invalid_client");
    }
    let (status, body) = token_call(&sim, SHOP, json!({ "grant_type": "refresh_token" })).await;
    assert_oauth_error(status, &body, "invalid_client");
    assert_eq!(
        sim.token_calls(SHOP),
        TokenCalls {
            exchanges: 0,
            refreshes: 0,
            failed: 3
        }
    );
}

#[tokio::test]
async fn token_exchange_refuses_malformed_requests_as_invalid_request() {
    let sim = sim().await;
    sim.install_shop(OTHER_SHOP, ["read_orders"]);
    let token = sim.session_token(SHOP, SessionTokenOptions::default());

    // Session token for one shop, request addressed to another.
    let (status, body) = token_call(&sim, OTHER_SHOP, exchange_body(&token, Some("1"))).await;
    assert_oauth_error(status, &body, "invalid_request");

    // `expiring` must be the string "1", not a number.
    let mut numeric = exchange_body(&token, None);
    numeric["expiring"] = json!(1);
    let (status, body) = token_call(&sim, SHOP, numeric).await;
    assert_oauth_error(status, &body, "invalid_request");

    // Wrong subject / requested token types (note `urn:shopify:` vs `urn:ietf:`).
    let mut wrong_requested = exchange_body(&token, Some("1"));
    wrong_requested["requested_token_type"] =
        json!("urn:ietf:params:oauth:token-type:offline-access-token");
    let (status, body) = token_call(&sim, SHOP, wrong_requested).await;
    assert_oauth_error(status, &body, "invalid_request");
    let mut wrong_subject = exchange_body(&token, Some("1"));
    wrong_subject["subject_token_type"] = json!("urn:ietf:params:oauth:token-type:jwt");
    let (status, body) = token_call(&sim, SHOP, wrong_subject).await;
    assert_oauth_error(status, &body, "invalid_request");

    let mut unknown_grant = exchange_body(&token, Some("1"));
    unknown_grant["grant_type"] = json!("authorization_code");
    let (status, body) = token_call(&sim, SHOP, unknown_grant).await;
    assert_oauth_error(status, &body, "unsupported_grant_type");

    let response = http()
        .post(format!("{}/admin/oauth/access_token", sim.origin()))
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("reachable");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn legacy_non_expiring_token_migrates_one_way_to_an_expiring_pair() {
    let sim = sim().await;
    let legacy = sim
        .issue_offline_token(SHOP, false)
        .expect("installed")
        .access_token;
    let body = json!({
        "client_id": DEFAULT_API_KEY,
        "client_secret": DEFAULT_API_SECRET,
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": legacy,
        "subject_token_type": "urn:shopify:params:oauth:token-type:offline-access-token",
        "requested_token_type": "urn:shopify:params:oauth:token-type:offline-access-token",
        "expiring": "1",
    });
    let (status, migrated) = token_call(&sim, SHOP, body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{migrated}");
    assert!(migrated["refresh_token"].is_string());
    assert!(!sim.access_token_is_valid(&legacy));
    let (status, again) = token_call(&sim, SHOP, body).await;
    assert_oauth_error(status, &again, "invalid_subject_token");
}

// ---- refresh -------------------------------------------------------------------------------------

#[tokio::test]
async fn refresh_rotates_and_the_previous_token_works_until_its_replacement_is_used() {
    let sim = sim().await;
    let (a1, r1) = exchange_expiring(&sim, SHOP).await;

    let (status, first) = refresh(&sim, &r1).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(
        keys(&first),
        [
            "access_token",
            "expires_in",
            "refresh_token",
            "refresh_token_expires_in",
            "scope"
        ]
    );
    let (a2, r2) = (
        str_field(&first, "access_token"),
        str_field(&first, "refresh_token"),
    );
    assert_ne!(a2, a1);
    assert_ne!(r2, r1);
    assert!(sim.access_token_is_valid(&a2));

    // The replacement r2 is unused: r1 still works (e.g. Keel lost the first response).
    let (status, retry) = refresh(&sim, &r1).await;
    assert_eq!(status, StatusCode::OK, "{retry}");

    // First use of r2 ends r1.
    let (status, second) = refresh(&sim, &r2).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let (status, body) = refresh(&sim, &r1).await;
    assert_oauth_error(status, &body, "invalid_grant");

    // r2 in turn stays usable until r3 is used.
    let r3 = str_field(&second, "refresh_token");
    let (status, _) = refresh(&sim, &r2).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = refresh(&sim, &r3).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = refresh(&sim, &r2).await;
    assert_oauth_error(status, &body, "invalid_grant");

    let (status, body) = refresh(&sim, "shprt_unknown").await;
    assert_oauth_error(status, &body, "invalid_grant");
    assert_eq!(
        sim.token_calls(SHOP),
        TokenCalls {
            exchanges: 1,
            refreshes: 5,
            failed: 3
        }
    );
}

#[tokio::test]
async fn uninstall_revokes_every_token_until_a_fresh_exchange_after_reinstall() {
    let sim = sim().await;
    let (access, refresh_token) = exchange_expiring(&sim, SHOP).await;
    let (status, _) = graphql(&sim, SHOP, Some(&access), SHOP_QUERY).await;
    assert_eq!(status, StatusCode::OK);

    sim.uninstall_shop(SHOP).expect("known shop");
    let (status, body) = graphql(&sim, SHOP, Some(&access), SHOP_QUERY).await;
    assert_unauthorized(status, &body);
    let (status, body) = refresh(&sim, &refresh_token).await;
    assert_oauth_error(status, &body, "invalid_grant");
    assert!(!sim.access_token_is_valid(&access));

    sim.install_shop(SHOP, SCOPES);
    let (status, body) = graphql(&sim, SHOP, Some(&access), SHOP_QUERY).await;
    assert_unauthorized(status, &body);
    let (fresh, _) = exchange_expiring(&sim, SHOP).await;
    let (status, _) = graphql(&sim, SHOP, Some(&fresh), SHOP_QUERY).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn expired_access_tokens_and_revoked_refresh_tokens_are_refused() {
    let sim = sim().await;
    let (access, refresh_token) = exchange_expiring(&sim, SHOP).await;
    assert_eq!(sim.expire_access_tokens(SHOP), 1);
    let (status, body) = graphql(&sim, SHOP, Some(&access), SHOP_QUERY).await;
    assert_unauthorized(status, &body);

    let (status, refreshed) = refresh(&sim, &refresh_token).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = graphql(
        &sim,
        SHOP,
        Some(&str_field(&refreshed, "access_token")),
        SHOP_QUERY,
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    assert_eq!(sim.revoke_refresh_tokens(SHOP), 2);
    for token in [refresh_token, str_field(&refreshed, "refresh_token")] {
        let (status, body) = refresh(&sim, &token).await;
        assert_oauth_error(status, &body, "invalid_grant");
    }
}

#[tokio::test]
async fn configured_lifetimes_apply_to_issued_tokens() {
    let sim = sim_with(SimConfig {
        access_token_ttl: Duration::ZERO,
        refresh_token_ttl: Duration::ZERO,
        ..SimConfig::default()
    })
    .await;
    let token = sim.session_token(SHOP, SessionTokenOptions::default());
    let (status, body) = token_call(&sim, SHOP, exchange_body(&token, Some("1"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["expires_in"], 0);
    assert_eq!(body["refresh_token_expires_in"], 0);
    let (status, unauthorized) = graphql(
        &sim,
        SHOP,
        Some(&str_field(&body, "access_token")),
        SHOP_QUERY,
    )
    .await;
    assert_unauthorized(status, &unauthorized);
    let (status, body) = refresh(&sim, &str_field(&body, "refresh_token")).await;
    assert_oauth_error(status, &body, "invalid_grant");
}

#[tokio::test]
async fn refresh_latency_holds_refresh_calls_and_concurrent_refreshes_are_all_counted() {
    let sim = sim().await;
    let (_, refresh_token) = exchange_expiring(&sim, SHOP).await;
    sim.set_refresh_latency(Duration::from_millis(300));

    let started = Instant::now();
    let (a, b) = tokio::join!(refresh(&sim, &refresh_token), refresh(&sim, &refresh_token));
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(a.0, StatusCode::OK, "{}", a.1);
    assert_eq!(b.0, StatusCode::OK, "{}", b.1);
    assert_ne!(a.1["refresh_token"], b.1["refresh_token"]);
    assert_eq!(sim.token_calls(SHOP).refreshes, 2);
}

// ---- Admin GraphQL -------------------------------------------------------------------------------

#[tokio::test]
async fn admin_graphql_requires_a_valid_access_token_of_the_addressed_shop() {
    let sim = sim().await;
    sim.install_shop(OTHER_SHOP, ["read_orders"]);
    let (access, _) = exchange_expiring(&sim, SHOP).await;

    let (status, body) = graphql(&sim, SHOP, None, SHOP_QUERY).await;
    assert_unauthorized(status, &body);
    let (status, body) = graphql(
        &sim,
        SHOP,
        Some("shpat_00000000000000000000000000000000"),
        SHOP_QUERY,
    )
    .await;
    assert_unauthorized(status, &body);
    let (status, body) = graphql(&sim, OTHER_SHOP, Some(&access), SHOP_QUERY).await;
    assert_unauthorized(status, &body);
}

#[tokio::test]
async fn admin_graphql_answers_the_shop_query_with_cost_extensions() {
    let sim = sim().await;
    let (access, _) = exchange_expiring(&sim, SHOP).await;

    for query in [
        SHOP_QUERY,
        "query ShopInfo {\n  shop {\n    name\n    myshopifyDomain\n  }\n}",
    ] {
        let (status, body) = graphql(&sim, SHOP, Some(&access), query).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body["data"],
            json!({ "shop": { "name": "Keel Demo", "myshopifyDomain": SHOP } })
        );
        let cost = &body["extensions"]["cost"];
        assert_eq!(
            keys(cost),
            ["actualQueryCost", "requestedQueryCost", "throttleStatus"]
        );
        assert_eq!(
            keys(&cost["throttleStatus"]),
            ["currentlyAvailable", "maximumAvailable", "restoreRate"]
        );
        assert!(cost["throttleStatus"]["restoreRate"].is_f64());
    }

    let (status, body) = graphql(&sim, SHOP, Some(&access), "{ shop { name plan } }").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["errors"][0]["message"],
        "Field 'plan' doesn't exist on type 'Shop'"
    );
    assert!(body.get("data").is_none());

    let (status, body) = graphql(
        &sim,
        SHOP,
        Some(&access),
        // Outside the simulated subset (orders, customers, … are simulated now).
        "{ products(first: 1) { nodes { id } } }",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["errors"][0]["message"].is_string(), "{body}");

    let response = http()
        .post(format!(
            "{}/admin/api/{API_VERSION}/graphql.json",
            sim.origin()
        ))
        .header("X-Shopify-Access-Token", &access)
        .json(&json!({ "variables": {} }))
        .send()
        .await
        .expect("reachable");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let response = http()
        .post(format!("{}/admin/api/latest/graphql.json", sim.origin()))
        .header("X-Shopify-Access-Token", &access)
        .json(&json!({ "query": SHOP_QUERY }))
        .send()
        .await
        .expect("reachable");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

// ---- session tokens ------------------------------------------------------------------------------

#[tokio::test]
async fn session_tokens_carry_the_documented_claims() {
    let sim = sim().await;
    let token = sim.session_token(SHOP, SessionTokenOptions::default());

    let header = jsonwebtoken::decode_header(&token).expect("JWT header");
    assert_eq!(header.alg, jsonwebtoken::Algorithm::HS256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_audience(&[DEFAULT_API_KEY]);
    validation.validate_nbf = true;
    let claims = jsonwebtoken::decode::<SessionTokenClaims>(
        &token,
        &jsonwebtoken::DecodingKey::from_secret(DEFAULT_API_SECRET.as_bytes()),
        &validation,
    )
    .expect("valid token")
    .claims;
    assert_eq!(claims.iss, format!("https://{SHOP}/admin"));
    assert_eq!(claims.dest, format!("https://{SHOP}"));
    assert_eq!(claims.aud, DEFAULT_API_KEY);
    assert_eq!(claims.exp - claims.iat, 60);
    assert_eq!(claims.nbf, claims.iat);
    assert!((chrono::Utc::now().timestamp() - claims.iat).abs() <= 5);
    uuid::Uuid::parse_str(&claims.jti).expect("jti is a UUID");
    assert!(!claims.sub.is_empty() && !claims.sid.is_empty());

    let response: Value = http()
        .get(format!("{}/_sim/session-token", sim.origin()))
        .query(&[("shop", SHOP), ("exp_in_secs", "-60")])
        .send()
        .await
        .expect("reachable")
        .json()
        .await
        .expect("JSON");
    let expired = str_field(&response, "token");
    let (status, body) = token_call(&sim, SHOP, exchange_body(&expired, Some("1"))).await;
    assert_oauth_error(status, &body, "invalid_subject_token");
}

// ---- webhooks ------------------------------------------------------------------------------------

#[tokio::test]
async fn webhooks_carry_shopify_headers_and_a_signature_over_the_exact_body() {
    let sim = sim().await;
    let (receiver, url) = Receiver::default().start().await;
    // Deliberately non-canonical JSON: the signature must cover these exact bytes.
    let body = "{\"id\": 1,  \"note\":\"caf\u{e9} \\u00e9\"}\n";
    let results = sim
        .send_webhook(
            &url,
            WebhookDelivery {
                subscription_name: Some("orders-main".into()),
                ..WebhookDelivery::raw(SHOP, "orders/create", body)
            },
        )
        .await;
    assert_eq!(results.len(), 1);
    assert!(results[0].is_success(), "{results:?}");

    let hits = receiver.hits();
    let (headers, received) = &hits[0];
    assert_eq!(received.as_ref(), body.as_bytes());
    assert_eq!(
        header(headers, "x-shopify-hmac-sha256"),
        independent_signature(DEFAULT_API_SECRET, body.as_bytes())
    );
    assert_eq!(header(headers, "x-shopify-topic"), "orders/create");
    assert_eq!(header(headers, "x-shopify-shop-domain"), SHOP);
    assert_eq!(header(headers, "x-shopify-api-version"), "2026-10");
    assert_eq!(header(headers, "x-shopify-name"), "orders-main");
    assert_eq!(header(headers, "content-type"), "application/json");
    assert_eq!(
        header(headers, "x-shopify-webhook-id"),
        results[0].webhook_id
    );
    uuid::Uuid::parse_str(header(headers, "x-shopify-webhook-id")).expect("UUID");
    uuid::Uuid::parse_str(header(headers, "x-shopify-event-id")).expect("UUID");
    chrono::DateTime::parse_from_rfc3339(header(headers, "x-shopify-triggered-at"))
        .expect("RFC 3339");
}

#[tokio::test]
async fn webhooks_can_be_signed_with_another_secret_of_any_length() {
    let sim = sim().await;
    let (receiver, url) = Receiver::default().start().await;
    let long_secret = "s".repeat(100); // longer than SHA-256's block: HMAC hashes the key first
    for secret in ["wrong-secret".to_owned(), long_secret] {
        sim.send_webhook(
            &url,
            WebhookDelivery {
                secret: Some(secret.clone()),
                ..WebhookDelivery::shop_redact(SHOP)
            },
        )
        .await;
        let hits = receiver.hits();
        let (headers, body) = hits.last().expect("delivered");
        let signature = header(headers, "x-shopify-hmac-sha256");
        assert_eq!(signature, independent_signature(&secret, body));
        assert_ne!(signature, independent_signature(DEFAULT_API_SECRET, body));
    }
}

#[tokio::test]
async fn duplicate_webhooks_share_ids_and_concurrent_copies_overlap() {
    let sim = sim().await;
    for concurrent in [false, true] {
        let (receiver, url) = Receiver {
            delay: Duration::from_millis(200),
            ..Default::default()
        }
        .start()
        .await;
        let delivery = WebhookDelivery {
            duplicates: 4,
            concurrent,
            event_id: Some("event-42".into()),
            ..WebhookDelivery::app_uninstalled(SHOP)
        };
        let results = sim.send_webhook(&url, delivery).await;
        assert_eq!(results.len(), 5);
        assert!(results.iter().all(|r| r.is_success()));
        assert_eq!(
            results.iter().map(|r| r.copy).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );

        let hits = receiver.hits();
        assert_eq!(hits.len(), 5);
        let first = &hits[0];
        for (headers, body) in &hits {
            assert_eq!(body, &first.1);
            assert_eq!(
                header(headers, "x-shopify-webhook-id"),
                header(&first.0, "x-shopify-webhook-id")
            );
            assert_eq!(header(headers, "x-shopify-event-id"), "event-42");
        }
        let max = receiver.max_in_flight.load(Ordering::SeqCst);
        if concurrent {
            assert!(max > 1, "concurrent copies never overlapped");
        } else {
            assert_eq!(max, 1, "sequential copies overlapped");
        }
    }
}

#[tokio::test]
async fn failed_webhooks_are_retried_with_the_same_body_and_webhook_id() {
    let sim = sim().await;
    let (receiver, url) = Receiver {
        fail_first: Arc::new(AtomicUsize::new(2)),
        ..Default::default()
    }
    .start()
    .await;
    let results = sim
        .send_webhook(
            &url,
            WebhookDelivery {
                retry_until_success: Some(5),
                ..WebhookDelivery::shop_redact(SHOP)
            },
        )
        .await;
    assert_eq!(
        results
            .iter()
            .map(|r| (r.attempt, r.status))
            .collect::<Vec<_>>(),
        [(0, Some(500)), (1, Some(500)), (2, Some(200))]
    );
    let hits = receiver.hits();
    assert_eq!(hits.len(), 3);
    for (headers, body) in &hits {
        assert_eq!(body, &hits[0].1);
        assert_eq!(
            header(headers, "x-shopify-webhook-id"),
            results[0].webhook_id
        );
        assert_eq!(
            header(headers, "x-shopify-hmac-sha256"),
            header(&hits[0].0, "x-shopify-hmac-sha256")
        );
    }

    // Without retries a failure is reported once.
    let (_, url) = Receiver {
        fail_first: Arc::new(AtomicUsize::new(1)),
        ..Default::default()
    }
    .start()
    .await;
    let results = sim
        .send_webhook(&url, WebhookDelivery::shop_redact(SHOP))
        .await;
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].status, Some(500));
}

#[tokio::test]
async fn slow_redirecting_and_unreachable_endpoints_are_failed_deliveries() {
    let sim = sim().await;
    let (_, slow) = Receiver {
        delay: Duration::from_secs(3),
        ..Default::default()
    }
    .start()
    .await;
    let results = sim
        .send_webhook(
            &slow,
            WebhookDelivery {
                timeout: Duration::from_millis(200),
                ..WebhookDelivery::shop_redact(SHOP)
            },
        )
        .await;
    assert_eq!(results[0].status, None);
    assert!(
        results[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("timed out")),
        "{results:?}"
    );

    let (redirecting, url) = Receiver {
        redirect: true,
        ..Default::default()
    }
    .start()
    .await;
    let results = sim
        .send_webhook(
            &url,
            WebhookDelivery {
                retry_until_success: Some(1),
                ..WebhookDelivery::shop_redact(SHOP)
            },
        )
        .await;
    assert_eq!(
        results.iter().map(|r| r.status).collect::<Vec<_>>(),
        [Some(302), Some(302)]
    );
    assert_eq!(redirecting.hits().len(), 2, "redirect must not be followed");

    let results = sim
        .send_webhook(
            "http://127.0.0.1:9/webhooks",
            WebhookDelivery::shop_redact(SHOP),
        )
        .await;
    assert!(
        !results[0].is_success() && results[0].error.is_some(),
        "{results:?}"
    );
}

#[tokio::test]
async fn standard_payloads_have_shopifys_fields() {
    let customer = ComplianceCustomer {
        id: Some(191_167),
        email: Some("john@example.com".into()),
        phone: Some("555-625-1199".into()),
    };
    let body = |d: WebhookDelivery| -> (String, Value) {
        (
            d.topic.clone(),
            serde_json::from_slice(&d.body).expect("JSON payload"),
        )
    };
    let shop_id = shopify_sim::shop_id_for(SHOP);

    let (topic, uninstalled) = body(WebhookDelivery::app_uninstalled(SHOP));
    assert_eq!(topic, "app/uninstalled");
    assert_eq!(uninstalled.as_object().expect("object").len(), 54);
    assert_eq!(uninstalled["id"], shop_id);
    assert_eq!(uninstalled["myshopify_domain"], SHOP);
    for field in [
        "name",
        "email",
        "domain",
        "currency",
        "plan_name",
        "iana_timezone",
        "primary_location_id",
    ] {
        assert!(!uninstalled[field].is_null(), "{field}");
    }

    let (topic, scopes) = body(WebhookDelivery::app_scopes_update(
        SHOP,
        &["read_orders"],
        &SCOPES,
    ));
    assert_eq!(topic, "app/scopes_update");
    assert_eq!(keys(&scopes), ["current", "id", "previous", "updated_at"]);
    assert_eq!(scopes["current"], json!(SCOPES));
    assert!(scopes["id"].is_u64());

    let (topic, request) = body(WebhookDelivery::customers_data_request(
        SHOP,
        &customer,
        &[299_938, 280_263],
        9999,
    ));
    assert_eq!(topic, "customers/data_request");
    assert_eq!(
        keys(&request),
        [
            "customer",
            "data_request",
            "orders_requested",
            "shop_domain",
            "shop_id"
        ]
    );
    assert_eq!(
        request["customer"],
        json!({ "id": 191_167, "email": "john@example.com", "phone": "555-625-1199" })
    );
    assert_eq!(request["data_request"], json!({ "id": 9999 }));
    assert_eq!(request["shop_id"], shop_id);

    let email_only = ComplianceCustomer {
        email: Some("jane@example.com".into()),
        ..Default::default()
    };
    let (topic, redact) = body(WebhookDelivery::customers_redact(
        SHOP,
        &email_only,
        &[299_938],
    ));
    assert_eq!(topic, "customers/redact");
    assert_eq!(
        keys(&redact),
        ["customer", "orders_to_redact", "shop_domain", "shop_id"]
    );
    assert_eq!(redact["customer"], json!({ "email": "jane@example.com" }));

    let (topic, shop_redact) = body(WebhookDelivery::shop_redact(SHOP));
    assert_eq!(topic, "shop/redact");
    assert_eq!(
        shop_redact,
        json!({ "shop_id": shop_id, "shop_domain": SHOP })
    );
}

// ---- control API ---------------------------------------------------------------------------------

async fn control(
    sim: &Sim,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = http().request(method, format!("{}/_sim{path}", sim.origin()));
    if let Some(b) = body {
        request = request.json(&b);
    }
    let response = request.send().await.expect("control API reachable");
    let status = response.status();
    (status, response.json().await.expect("JSON body"))
}

#[tokio::test]
async fn control_api_mirrors_the_rust_api() {
    use reqwest::Method;
    let sim = Sim::spawn(SimConfig::default()).await;

    let (status, health) = control(&sim, Method::GET, "/health", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["status"], "ok");

    let (status, shop) = control(
        &sim,
        Method::POST,
        "/shops",
        Some(json!({ "shop": SHOP, "scopes": "read_orders, write_customers" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{shop}");
    assert_eq!(shop["scopes"], json!(SCOPES));
    assert_eq!(shop["installed"], true);
    assert_eq!(sim.shop(SHOP).expect("installed").scopes, SCOPES);

    let (_, token) = control(
        &sim,
        Method::GET,
        &format!("/session-token?shop={SHOP}"),
        None,
    )
    .await;
    let (status, pair) = token_call(
        &sim,
        SHOP,
        exchange_body(&str_field(&token, "token"), Some("1")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let access = str_field(&pair, "access_token");

    let (_, calls) = control(
        &sim,
        Method::GET,
        &format!("/shops/{SHOP}/token-calls"),
        None,
    )
    .await;
    assert_eq!(
        calls,
        json!({ "exchanges": 1, "refreshes": 0, "failed": 0 })
    );
    let (_, valid) = control(
        &sim,
        Method::POST,
        "/access-tokens/validity",
        Some(json!({ "access_token": access })),
    )
    .await;
    assert_eq!(valid, json!({ "valid": true }));

    let (_, expired) = control(
        &sim,
        Method::POST,
        &format!("/shops/{SHOP}/expire-access-tokens"),
        None,
    )
    .await;
    assert_eq!(expired, json!({ "expired": 1 }));
    assert!(!sim.access_token_is_valid(&access));

    let (_, latency) = control(
        &sim,
        Method::PUT,
        "/refresh-latency",
        Some(json!({ "ms": 50 })),
    )
    .await;
    assert_eq!(latency, json!({ "ms": 50 }));
    let started = Instant::now();
    let (status, _) = refresh(&sim, &str_field(&pair, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(50));

    let (_, revoked) = control(
        &sim,
        Method::POST,
        &format!("/shops/{SHOP}/revoke-refresh-tokens"),
        None,
    )
    .await;
    assert_eq!(revoked, json!({ "revoked": 2 }));

    let (status, seeded) = control(
        &sim,
        Method::POST,
        &format!("/shops/{SHOP}/offline-token"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(sim.access_token_is_valid(&str_field(&seeded, "access_token")));
    assert!(seeded["refresh_token"].is_string());

    let (receiver, url) = Receiver::default().start().await;
    let (status, sent) = control(
        &sim,
        Method::POST,
        "/webhooks",
        Some(json!({ "target": url, "shop": SHOP, "topic": "orders/create", "payload": { "id": 1 }, "duplicates": 2, "concurrent": true })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    assert_eq!(sent["results"].as_array().expect("results").len(), 3);
    assert_eq!(sent["results"][0]["status"], 200);
    assert_eq!(receiver.hits().len(), 3);
    let (headers, body) = &receiver.hits()[0];
    assert_eq!(
        header(headers, "x-shopify-hmac-sha256"),
        independent_signature(DEFAULT_API_SECRET, body)
    );

    let (status, uninstalled) = control(
        &sim,
        Method::POST,
        &format!("/shops/{SHOP}/uninstall"),
        Some(json!({ "notify": url })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(uninstalled["shop"]["installed"], false);
    assert_eq!(uninstalled["deliveries"][0]["status"], 200);
    let hits = receiver.hits();
    let (headers, _) = hits.last().expect("app/uninstalled delivered");
    assert_eq!(header(headers, "x-shopify-topic"), "app/uninstalled");
    assert!(!sim.access_token_is_valid(&str_field(&seeded, "access_token")));

    let (status, _) = control(&sim, Method::GET, "/shops/nope.myshopify.com", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = control(&sim, Method::POST, "/shops", Some(json!({ "scopes": [] }))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (_, log) = control(&sim, Method::GET, "/log", None).await;
    let events: Vec<&str> = log
        .as_array()
        .expect("log")
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert!(
        events.contains(&"token_exchange")
            && events.contains(&"refresh_token")
            && events.contains(&"webhook")
    );
}

// ---- lifecycle -----------------------------------------------------------------------------------

async fn is_serving(origin: &str) -> bool {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
        .get(format!("{origin}/_sim/health"))
        .send()
        .await
        .is_ok()
}

#[tokio::test]
async fn server_stops_on_shutdown_and_when_the_last_handle_drops() {
    let sim = Sim::spawn(SimConfig::default()).await;
    let origin = sim.origin().to_owned();
    let clone = sim.clone();
    assert!(is_serving(&origin).await);
    clone.shutdown().await;
    assert!(!is_serving(&origin).await);

    let sim = Sim::spawn(SimConfig::default()).await;
    let origin = sim.origin().to_owned();
    let clone = sim.clone();
    drop(sim);
    assert!(is_serving(&origin).await, "a clone still holds the server");
    drop(clone);
    let mut stopped = false;
    for _ in 0..100 {
        if !is_serving(&origin).await {
            stopped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        stopped,
        "server still serving after the last handle dropped"
    );
}

#[tokio::test]
async fn binary_prints_its_origin_serves_and_stops_on_sigterm() {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_shopify-sim"))
        .args([
            "--port",
            "0",
            "--shop",
            SHOP,
            "--scopes",
            "read_orders,write_customers",
        ])
        .env("SHOPIFY_API_KEY", "key-from-env")
        .env_remove("SHOPIFY_API_SECRET")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    tokio::io::BufReader::new(stdout)
        .read_line(&mut line)
        .await
        .expect("origin line");
    let origin = line.trim();
    assert!(origin.starts_with("http://127.0.0.1:"), "{origin}");

    let health: Value = http()
        .get(format!("{origin}/_sim/health"))
        .send()
        .await
        .expect("up")
        .json()
        .await
        .expect("JSON");
    assert_eq!(health["api_key"], "key-from-env");
    let shop: Value = http()
        .get(format!("{origin}/_sim/shops/{SHOP}"))
        .send()
        .await
        .expect("up")
        .json()
        .await
        .expect("JSON");
    assert_eq!(shop["scopes"], json!(SCOPES));

    let pid = child.id().expect("running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits after SIGTERM")
        .expect("wait");
    assert!(status.success(), "{status:?}");
}
