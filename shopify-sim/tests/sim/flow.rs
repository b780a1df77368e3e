//! The simulator playing Flow toward an app over real HTTP: action execution requests with Flow's
//! resend rules (flow.md §3) and lifecycle callbacks (§6). Each test runs a small app-side
//! receiver that checks the signature with its own HMAC computation and answers from a script.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use chrono::{TimeZone, Utc};
use reqwest::Method;
use serde_json::{json, Value};
use shopify_sim::{
    shop_id_for, FlowActionRequest, FlowDeliveryKind, FlowOutcome, LifecycleEvent, Sim, SimConfig,
    DEFAULT_API_SECRET, FLOW_ACTION_TIMEOUT, FLOW_LIFECYCLE_TIMEOUT,
};

use super::{control, header, independent_signature, keys, sim, StatusCode, SHOP};

const HANDLE: &str = "tag-vip-customer";
const CUSTOMER: &str = "gid://shopify/Customer/7038514495798";

fn properties() -> Value {
    json!({ "customer_id": CUSTOMER, "tier": "Gold", "notify": true })
}

/// One scripted answer: status, extra headers, body.
type Scripted = (u16, Vec<(&'static str, String)>, String);

/// An app endpoint for Flow: verifies `X-Shopify-Hmac-Sha256` against the default client secret
/// (401 when it does not match), records every request, and answers from `script`, then 200.
#[derive(Clone, Default)]
struct FlowReceiver {
    hits: Arc<Mutex<Vec<Hit>>>,
    script: Arc<Mutex<VecDeque<Scripted>>>,
    /// Hold each request this long before answering.
    delay: Duration,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct Hit {
    headers: HeaderMap,
    body: Bytes,
    signature_valid: bool,
    at: tokio::time::Instant,
}

impl Hit {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

impl FlowReceiver {
    fn scripted(answers: impl IntoIterator<Item = (u16, &'static str)>) -> Self {
        let script = answers
            .into_iter()
            .map(|(status, body)| (status, Vec::new(), body.to_owned()))
            .collect();
        FlowReceiver {
            script: Arc::new(Mutex::new(script)),
            ..Default::default()
        }
    }

    async fn start(self) -> (Self, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!(
            "http://{}/flow/actions/{HANDLE}",
            listener.local_addr().expect("addr")
        );
        let state = self.clone();
        let app = axum::Router::new().fallback(axum::routing::post(
            move |headers: HeaderMap, body: Bytes| {
                let r = state.clone();
                async move { r.handle(headers, body).await }
            },
        ));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("receiver") });
        (self, url)
    }

    async fn handle(&self, headers: HeaderMap, body: Bytes) -> axum::response::Response {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        // Verified independently of the simulator's signing code.
        let signature_valid = !body.is_empty()
            && headers
                .get("x-shopify-hmac-sha256")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|h| h == independent_signature(DEFAULT_API_SECRET, &body));
        self.hits.lock().expect("lock").push(Hit {
            headers,
            body,
            signature_valid,
            at: tokio::time::Instant::now(),
        });
        tokio::time::sleep(self.delay).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if !signature_valid {
            return (StatusCode::UNAUTHORIZED, "invalid signature").into_response();
        }
        let (status, extra, body) = self.script.lock().expect("lock").pop_front().unwrap_or((
            200,
            Vec::new(),
            String::new(),
        ));
        let mut response = (StatusCode::from_u16(status).expect("status"), body).into_response();
        for (name, value) in extra {
            response
                .headers_mut()
                .insert(name, value.parse().expect("header value"));
        }
        response
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().expect("lock").clone()
    }
}

/// Fast resends so a test never waits on Flow's real intervals.
fn quick(request: FlowActionRequest) -> FlowActionRequest {
    FlowActionRequest {
        resend_delay: Duration::from_millis(20),
        ..request
    }
}

#[tokio::test]
async fn action_request_has_flows_body_and_a_signature_over_the_exact_bytes() {
    let sim = sim().await;
    let (receiver, url) = FlowReceiver::default().start().await;
    let request = FlowActionRequest::new(SHOP, HANDLE, properties());
    assert_eq!(request.timeout, FLOW_ACTION_TIMEOUT);
    assert_eq!(FLOW_ACTION_TIMEOUT, Duration::from_secs(10));
    let run_id = request.action_run_id.clone();
    uuid::Uuid::parse_str(&run_id).expect("UUID action_run_id");

    let results = sim.send_flow_action(&url, request).await;
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].outcome, FlowOutcome::Succeeded);
    assert_eq!(results[0].status, Some(200));
    assert_eq!(results[0].return_value, None);

    let hits = receiver.hits();
    assert_eq!(hits.len(), 1);
    let hit = &hits[0];
    assert!(hit.signature_valid);
    assert!(header(&hit.headers, "content-type").starts_with("application/json"));
    // Flow's requests carry no webhook headers: the shop comes from the signed body.
    assert!(hit.headers.get("x-shopify-shop-domain").is_none());
    assert!(hit.headers.get("x-shopify-topic").is_none());
    let body = hit.json();
    assert_eq!(
        keys(&body),
        [
            "action_definition_id",
            "action_run_id",
            "handle",
            "properties",
            "shop_id",
            "shopify_domain"
        ]
    );
    assert_eq!(body["shop_id"], json!(shop_id_for(SHOP).to_string()));
    assert_eq!(body["shopify_domain"], SHOP);
    assert_eq!(body["action_run_id"], json!(run_id));
    assert_eq!(body["action_definition_id"], HANDLE);
    assert_eq!(body["handle"], HANDLE);
    assert_eq!(body["properties"], properties());

    // Optional fields: numeric shop id, a title as definition id, step_reference.
    let (receiver, url) = FlowReceiver::default().start().await;
    let request = FlowActionRequest {
        numeric_shop_id: true,
        action_definition_id: Some("Tag VIP customer".into()),
        step_reference: Some("step-1".into()),
        action_run_id: "run-fixed".into(),
        ..FlowActionRequest::new(SHOP, HANDLE, properties())
    };
    sim.send_flow_action(&url, request).await;
    let body = receiver.hits()[0].json();
    assert_eq!(body["shop_id"], json!(shop_id_for(SHOP)));
    assert_eq!(body["action_definition_id"], "Tag VIP customer");
    assert_eq!(body["step_reference"], "step-1");
    assert_eq!(body["action_run_id"], "run-fixed");
}

#[tokio::test]
async fn accepted_runs_are_resent_with_the_same_payload_until_200_and_its_return_value() {
    let sim = sim().await;
    let (receiver, url) = FlowReceiver::scripted([
        (202, ""),
        (202, ""),
        (
            200,
            r#"{"return_value":{"tags":["VIP"],"alreadyVip":false}}"#,
        ),
    ])
    .start()
    .await;
    let request = FlowActionRequest {
        resend_delay: Duration::from_millis(60),
        ..FlowActionRequest::new(SHOP, HANDLE, properties())
    };
    let run_id = request.action_run_id.clone();
    let results = sim.send_flow_action(&url, request).await;

    assert_eq!(
        results
            .iter()
            .map(|r| (r.copy, r.resend, r.status, r.outcome))
            .collect::<Vec<_>>(),
        [
            (0, 0, Some(202), FlowOutcome::Pending),
            (0, 1, Some(202), FlowOutcome::Pending),
            (0, 2, Some(200), FlowOutcome::Succeeded),
        ]
    );
    let last = results.last().expect("results");
    assert!(last.is_success());
    assert_eq!(
        last.return_value,
        Some(json!({ "tags": ["VIP"], "alreadyVip": false }))
    );
    assert_eq!(results[0].resend_after, Some(Duration::from_millis(60)));
    assert_eq!(last.resend_after, None);
    assert!(results
        .iter()
        .all(|r| r.action_run_id.as_deref() == Some(run_id.as_str())));

    let hits = receiver.hits();
    assert_eq!(hits.len(), 3);
    for hit in &hits {
        assert!(hit.signature_valid);
        assert_eq!(hit.body, hits[0].body, "a resend changed the payload");
        assert_eq!(hit.json()["action_run_id"], json!(run_id));
    }
    for pair in hits.windows(2) {
        assert!(pair[1].at - pair[0].at >= Duration::from_millis(60));
    }

    // The delivery log holds the same attempts.
    let log = sim.flow_deliveries();
    assert_eq!(log, results);
    assert!(log.iter().all(|r| r.kind == FlowDeliveryKind::Action));
}

#[tokio::test]
async fn other_4xx_fail_permanently_with_the_body_as_the_merchant_message() {
    let sim = sim().await;
    let (receiver, url) = FlowReceiver::scripted([(422, "Customer 42 no longer exists")])
        .start()
        .await;
    let results = sim
        .send_flow_action(
            &url,
            quick(FlowActionRequest::new(SHOP, HANDLE, properties())),
        )
        .await;
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].status, Some(422));
    assert_eq!(results[0].outcome, FlowOutcome::Failed);
    assert_eq!(
        results[0].message.as_deref(),
        Some("Customer 42 no longer exists")
    );
    assert_eq!(results[0].resend_after, None);
    assert_eq!(receiver.hits().len(), 1);

    // Only 200 is success: another 2xx fails the run too, without a resend.
    let (receiver, url) = FlowReceiver::scripted([(204, "")]).start().await;
    let results = sim
        .send_flow_action(
            &url,
            quick(FlowActionRequest::new(SHOP, HANDLE, properties())),
        )
        .await;
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].outcome, FlowOutcome::Failed);
    assert_eq!(receiver.hits().len(), 1);
}

#[tokio::test]
async fn server_errors_throttling_and_timeouts_are_resent() {
    let sim = sim().await;

    let (receiver, url) = FlowReceiver::scripted([(503, "database unavailable")])
        .start()
        .await;
    let results = sim
        .send_flow_action(
            &url,
            quick(FlowActionRequest::new(SHOP, HANDLE, properties())),
        )
        .await;
    assert_eq!(
        results
            .iter()
            .map(|r| (r.resend, r.status, r.outcome))
            .collect::<Vec<_>>(),
        [
            (0, Some(503), FlowOutcome::Retry),
            (1, Some(200), FlowOutcome::Succeeded)
        ]
    );
    let hits = receiver.hits();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].body, hits[1].body);

    // 429: Retry-After is honoured up to the cap.
    let receiver = FlowReceiver::default();
    receiver.script.lock().expect("lock").extend([
        (429, vec![("retry-after", "3600".to_owned())], String::new()),
        (429, Vec::new(), String::new()),
    ]);
    let (receiver, url) = receiver.start().await;
    let request = FlowActionRequest {
        retry_after_cap: Duration::from_millis(150),
        ..quick(FlowActionRequest::new(SHOP, HANDLE, properties()))
    };
    let results = sim.send_flow_action(&url, request).await;
    assert_eq!(
        results
            .iter()
            .map(|r| (r.status, r.outcome, r.resend_after))
            .collect::<Vec<_>>(),
        [
            (
                Some(429),
                FlowOutcome::Retry,
                Some(Duration::from_millis(150))
            ),
            // Without Retry-After, the ordinary resend delay.
            (
                Some(429),
                FlowOutcome::Retry,
                Some(Duration::from_millis(20))
            ),
            (Some(200), FlowOutcome::Succeeded, None),
        ]
    );
    let hits = receiver.hits();
    assert!(hits[1].at - hits[0].at >= Duration::from_millis(150));

    // No answer within the deadline: resent, then given up after `max_resends`.
    let (receiver, url) = FlowReceiver {
        delay: Duration::from_millis(300),
        ..Default::default()
    }
    .start()
    .await;
    let request = FlowActionRequest {
        timeout: Duration::from_millis(100),
        max_resends: 1,
        ..quick(FlowActionRequest::new(SHOP, HANDLE, properties()))
    };
    let results = sim.send_flow_action(&url, request).await;
    assert_eq!(results.len(), 2);
    for r in &results {
        assert_eq!(r.status, None);
        assert_eq!(r.outcome, FlowOutcome::Retry);
        assert!(r.error.as_deref().is_some_and(|e| e.contains("timed out")));
    }
    assert_eq!(results[1].resend_after, None, "gave up after max_resends");
    let hits = receiver.hits();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].body, hits[1].body);
}

#[tokio::test]
async fn resends_stop_after_max_resends() {
    let sim = sim().await;
    let (receiver, url) = FlowReceiver::scripted([(202, ""); 10]).start().await;
    let request = FlowActionRequest {
        max_resends: 2,
        ..quick(FlowActionRequest::new(SHOP, HANDLE, properties()))
    };
    let results = sim.send_flow_action(&url, request).await;
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|r| r.outcome == FlowOutcome::Pending));
    assert_eq!(results[2].resend_after, None);
    assert_eq!(receiver.hits().len(), 3);
}

#[tokio::test]
async fn a_wrong_secret_produces_a_signature_the_app_rejects() {
    let sim = sim().await;
    let (receiver, url) = FlowReceiver::default().start().await;
    let request = FlowActionRequest {
        secret: Some("not-the-client-secret".into()),
        ..quick(FlowActionRequest::new(SHOP, HANDLE, properties()))
    };
    let results = sim.send_flow_action(&url, request).await;
    let hits = receiver.hits();
    assert_eq!(hits.len(), 1, "a 401 is permanent");
    assert!(!hits[0].signature_valid);
    assert_eq!(
        header(&hits[0].headers, "x-shopify-hmac-sha256"),
        independent_signature("not-the-client-secret", &hits[0].body)
    );
    assert_eq!(results[0].status, Some(401));
    assert_eq!(results[0].outcome, FlowOutcome::Failed);
    assert_eq!(results[0].message.as_deref(), Some("invalid signature"));
}

#[tokio::test]
async fn duplicate_runs_share_the_action_run_id_and_concurrent_copies_overlap() {
    let sim = sim().await;
    for concurrent in [false, true] {
        let (receiver, url) = FlowReceiver {
            delay: Duration::from_millis(150),
            ..Default::default()
        }
        .start()
        .await;
        let request = FlowActionRequest {
            duplicates: 3,
            concurrent,
            ..FlowActionRequest::new(SHOP, HANDLE, properties())
        };
        let run_id = request.action_run_id.clone();
        let results = sim.send_flow_action(&url, request).await;
        assert_eq!(
            results.iter().map(|r| r.copy).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        assert!(results.iter().all(|r| r.is_success()));

        let hits = receiver.hits();
        assert_eq!(hits.len(), 4);
        for hit in &hits {
            assert!(hit.signature_valid);
            assert_eq!(hit.body, hits[0].body);
            assert_eq!(hit.json()["action_run_id"], json!(run_id));
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
async fn lifecycle_callbacks_carry_flows_fields_and_the_same_signature() {
    let sim = sim().await;
    let (receiver, url) = FlowReceiver::default().start().await;
    let at = Utc
        .with_ymd_and_hms(2026, 9, 1, 10, 15, 30)
        .single()
        .expect("valid time");
    let event = LifecycleEvent {
        timestamp: Some(at),
        ..LifecycleEvent::new(SHOP, "vip-customer-qualified", true)
    };
    assert_eq!(event.timeout, FLOW_LIFECYCLE_TIMEOUT);
    let results = sim.send_lifecycle(&url, event).await;
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].kind, FlowDeliveryKind::Lifecycle);
    assert_eq!(results[0].outcome, FlowOutcome::Succeeded);
    assert_eq!(results[0].action_run_id, None);

    let hits = receiver.hits();
    assert_eq!(hits.len(), 1);
    assert!(hits[0].signature_valid);
    assert_eq!(
        hits[0].json(),
        json!({
            "flow_trigger_definition_id": "vip-customer-qualified",
            "has_enabled_flow": true,
            "shop_id": shop_id_for(SHOP).to_string(),
            "shopify_domain": SHOP,
            "timestamp": "2026-09-01T10:15:30.000Z",
        })
    );

    // A failing answer is not resent (the merchant just cannot enable the workflow); copies
    // carry identical bodies; the timestamp defaults to now.
    let (receiver, url) = FlowReceiver::scripted([(500, "boom")]).start().await;
    let event = LifecycleEvent {
        duplicates: 1,
        numeric_shop_id: true,
        ..LifecycleEvent::new(SHOP, "vip-customer-qualified", false)
    };
    let results = sim.send_lifecycle(&url, event).await;
    assert_eq!(
        results
            .iter()
            .map(|r| (r.copy, r.resend, r.status, r.outcome))
            .collect::<Vec<_>>(),
        [
            (0, 0, Some(500), FlowOutcome::Failed),
            (1, 0, Some(200), FlowOutcome::Succeeded)
        ]
    );
    assert_eq!(results[0].message.as_deref(), Some("boom"));
    let hits = receiver.hits();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].body, hits[1].body);
    let body = hits[0].json();
    assert_eq!(body["has_enabled_flow"], false);
    assert_eq!(body["shop_id"], json!(shop_id_for(SHOP)));
    let sent = chrono::DateTime::parse_from_rfc3339(body["timestamp"].as_str().expect("string"))
        .expect("RFC 3339 timestamp");
    assert!((Utc::now() - sent.with_timezone(&Utc)).num_seconds().abs() < 60);
}

#[tokio::test]
async fn control_api_sends_flow_requests_and_lists_every_attempt() {
    let sim = Sim::spawn(SimConfig::default()).await;
    let (receiver, url) = FlowReceiver::scripted([(202, ""), (200, r#"{"return_value":{"n":1}}"#)])
        .start()
        .await;
    let (status, sent) = control(
        &sim,
        Method::POST,
        "/flow/actions",
        Some(json!({
            "target": url, "shop": SHOP, "handle": HANDLE, "properties": properties(),
            "action_run_id": "run-7", "resend_delay_ms": 10,
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    assert_eq!(sent["action_run_id"], "run-7");
    let results = sent["results"].as_array().expect("results");
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["status"], 202);
    assert_eq!(results[0]["outcome"], "pending");
    assert_eq!(results[0]["resend_after_ms"], 10);
    assert_eq!(results[1]["resend"], 1);
    assert_eq!(results[1]["outcome"], "succeeded");
    assert_eq!(results[1]["return_value"], json!({ "n": 1 }));
    assert!(results[1]["elapsed_ms"].is_u64());
    let hits = receiver.hits();
    assert_eq!(hits.len(), 2);
    assert!(hits.iter().all(|h| h.signature_valid));
    assert_eq!(hits[1].json()["action_run_id"], "run-7");

    let (lifecycle_receiver, lifecycle_url) = FlowReceiver::default().start().await;
    let (status, sent) = control(
        &sim,
        Method::POST,
        "/flow/lifecycle",
        Some(json!({
            "target": lifecycle_url, "shop": SHOP, "handle": "vip-customer-qualified",
            "has_enabled_flow": true, "timestamp": "2026-09-01T10:15:30.123Z",
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    assert_eq!(sent["results"][0]["kind"], "lifecycle");
    assert_eq!(sent["results"][0]["status"], 200);
    let body = lifecycle_receiver.hits()[0].json();
    assert_eq!(body["flow_trigger_definition_id"], "vip-customer-qualified");
    assert_eq!(body["timestamp"], "2026-09-01T10:15:30.123Z");

    let (status, deliveries) = control(&sim, Method::GET, "/flow/deliveries", None).await;
    assert_eq!(status, StatusCode::OK);
    let summary: Vec<(Value, Value, Value)> = deliveries
        .as_array()
        .expect("deliveries")
        .iter()
        .map(|d| (d["kind"].clone(), d["resend"].clone(), d["status"].clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (json!("action"), json!(0), json!(202)),
            (json!("action"), json!(1), json!(200)),
            (json!("lifecycle"), json!(0), json!(200)),
        ]
    );
    assert_eq!(sim.flow_deliveries().len(), 3);
    let events: Vec<String> = sim.log().into_iter().map(|e| e.event).collect();
    assert!(
        events.iter().any(|e| e == "flow_action") && events.iter().any(|e| e == "flow_lifecycle")
    );

    let (status, _) = control(
        &sim,
        Method::POST,
        "/flow/actions",
        Some(json!({ "shop": SHOP })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = control(
        &sim,
        Method::POST,
        "/flow/lifecycle",
        Some(json!({ "target": url, "shop": SHOP, "handle": "x" })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
