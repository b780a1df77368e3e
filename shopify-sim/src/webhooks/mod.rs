//! Webhook deliveries as Shopify makes them (reference app-platform.md §5): the exact body bytes
//! signed with `base64(HMAC-SHA256(secret, body))`, Shopify's headers, a 5 s deadline, redirects
//! treated as failures, and the misbehaviours apps must survive on demand — duplicates (same
//! webhook and event ids), concurrent copies, retries of the same payload, wrong signatures.
//!
//! Retries here are immediate; Shopify spreads its 8 retries over 4 hours, which only matters to
//! the receiver through the unchanged ids and body, and those are kept.
//!
//! The outbound plumbing — one POST with a deadline ([`post_once`]), signed JSON headers
//! ([`json_headers`]), copies sent one by one or all at once ([`fan_out`]) — is shared with
//! `crate::flow`, which plays Flow's side with the same signature.

pub mod payloads;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, USER_AGENT};
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::signing::webhook_signature;
use crate::{Shared, API_VERSION};

pub use payloads::ComplianceCustomer;

/// Shopify's deadline for a 2xx answer.
pub const SHOPIFY_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// One webhook to deliver, and how to (mis)behave while delivering it.
///
/// Build with [`WebhookDelivery::new`] or a topic helper, then adjust fields with struct update
/// syntax: `WebhookDelivery { duplicates: 3, concurrent: true, ..WebhookDelivery::shop_redact(shop) }`.
#[derive(Debug, Clone)]
pub struct WebhookDelivery {
    pub shop: String,
    pub topic: String,
    /// Exactly the bytes sent and signed.
    pub body: Vec<u8>,
    /// `X-Shopify-API-Version`.
    pub api_version: String,
    /// `X-Shopify-Webhook-Id`; a new UUID per call when `None` (shared by copies and retries).
    pub webhook_id: Option<String>,
    /// `X-Shopify-Event-Id`; a new UUID per call when `None` (shared by copies and retries).
    pub event_id: Option<String>,
    /// `X-Shopify-Triggered-At`; now when `None`.
    pub triggered_at: Option<DateTime<Utc>>,
    /// `X-Shopify-Name` (the subscription name), sent only when set.
    pub subscription_name: Option<String>,
    /// Extra copies of the same delivery (same ids, same body).
    pub duplicates: usize,
    /// Send all copies at once instead of one after another.
    pub concurrent: bool,
    /// Signing key; the app's client secret when `None` (set it for bad-signature tests).
    pub secret: Option<String>,
    /// Re-send each copy up to this many more times while the answer is not 2xx or times out.
    pub retry_until_success: Option<usize>,
    /// Per-attempt deadline.
    pub timeout: Duration,
}

impl WebhookDelivery {
    /// A delivery of `payload` serialized as compact JSON.
    pub fn new(shop: &str, topic: &str, payload: &Value) -> Self {
        Self::raw(shop, topic, payload.to_string())
    }

    /// A delivery of exactly these body bytes.
    pub fn raw(shop: &str, topic: &str, body: impl Into<Vec<u8>>) -> Self {
        WebhookDelivery {
            shop: shop.to_owned(),
            topic: topic.to_owned(),
            body: body.into(),
            api_version: API_VERSION.to_owned(),
            webhook_id: None,
            event_id: None,
            triggered_at: None,
            subscription_name: None,
            duplicates: 0,
            concurrent: false,
            secret: None,
            retry_until_success: None,
            timeout: SHOPIFY_WEBHOOK_TIMEOUT,
        }
    }

    /// `app/uninstalled` with the shop object as payload.
    pub fn app_uninstalled(shop: &str) -> Self {
        Self::new(shop, "app/uninstalled", &payloads::app_uninstalled(shop))
    }

    /// `app/scopes_update` from `previous` to `current`, updated now.
    pub fn app_scopes_update(shop: &str, previous: &[&str], current: &[&str]) -> Self {
        let payload = payloads::app_scopes_update(shop, previous, current, Utc::now());
        Self::new(shop, "app/scopes_update", &payload)
    }

    /// `customers/data_request`.
    pub fn customers_data_request(
        shop: &str,
        customer: &ComplianceCustomer,
        orders_requested: &[u64],
        data_request_id: u64,
    ) -> Self {
        let payload =
            payloads::customers_data_request(shop, customer, orders_requested, data_request_id);
        Self::new(shop, "customers/data_request", &payload)
    }

    /// `customers/redact`.
    pub fn customers_redact(
        shop: &str,
        customer: &ComplianceCustomer,
        orders_to_redact: &[u64],
    ) -> Self {
        let payload = payloads::customers_redact(shop, customer, orders_to_redact);
        Self::new(shop, "customers/redact", &payload)
    }

    /// `shop/redact`.
    pub fn shop_redact(shop: &str) -> Self {
        Self::new(shop, "shop/redact", &payloads::shop_redact(shop))
    }
}

/// The outcome of one HTTP attempt of one copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryResult {
    /// 0 for the original, 1.. for duplicates.
    pub copy: usize,
    /// 0 for the first attempt, 1.. for retries.
    pub attempt: usize,
    pub webhook_id: String,
    pub event_id: String,
    /// HTTP status, when an answer arrived.
    pub status: Option<u16>,
    /// Transport failure (connect error, timeout), when no answer arrived.
    pub error: Option<String>,
    #[serde(rename = "elapsed_ms", serialize_with = "millis")]
    pub elapsed: Duration,
}

impl DeliveryResult {
    /// Shopify counts only 2xx as delivered (redirects are not followed).
    pub fn is_success(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Serializes a duration as whole milliseconds (`elapsed_ms`).
pub(crate) fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What every copy and attempt of one delivery shares.
struct Prepared {
    url: String,
    headers: HeaderMap,
    body: Bytes,
    webhook_id: String,
    event_id: String,
    timeout: Duration,
    retries: usize,
}

/// Delivers `delivery` to `target`, returning one result per attempt, ordered by copy and attempt.
pub(crate) async fn send(
    shared: &Arc<Shared>,
    target: &str,
    delivery: WebhookDelivery,
) -> Vec<DeliveryResult> {
    let secret = delivery
        .secret
        .clone()
        .unwrap_or_else(|| shared.config.api_secret.clone());
    let webhook_id = delivery
        .webhook_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let event_id = delivery
        .event_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let triggered_at = delivery.triggered_at.unwrap_or_else(Utc::now);
    let copies = delivery.duplicates.saturating_add(1);

    let headers = match build_headers(&delivery, &secret, &webhook_id, &event_id, triggered_at) {
        Ok(h) => h,
        Err(e) => {
            return (0..copies)
                .map(|copy| DeliveryResult {
                    copy,
                    attempt: 0,
                    webhook_id: webhook_id.clone(),
                    event_id: event_id.clone(),
                    status: None,
                    error: Some(e.clone()),
                    elapsed: Duration::ZERO,
                })
                .collect()
        }
    };
    let prepared = Arc::new(Prepared {
        url: target.to_owned(),
        headers,
        body: Bytes::from(delivery.body),
        webhook_id,
        event_id,
        timeout: delivery.timeout,
        retries: delivery.retry_until_success.unwrap_or(0),
    });

    let mut results = fan_out(copies, delivery.concurrent, |copy| {
        deliver_copy(shared.http.clone(), prepared.clone(), copy)
    })
    .await;
    results.sort_by_key(|r| (r.copy, r.attempt));

    let now = Utc::now();
    let mut state = shared.state();
    for r in &results {
        let outcome = match (r.status, &r.error) {
            (Some(s), _) => s.to_string(),
            (None, Some(e)) => e.clone(),
            (None, None) => "unknown".to_owned(),
        };
        state.push_log(
            "webhook",
            Some(&delivery.shop),
            format!("{} {}", delivery.topic, outcome),
            now,
        );
    }
    results
}

fn build_headers(
    delivery: &WebhookDelivery,
    secret: &str,
    webhook_id: &str,
    event_id: &str,
    triggered_at: DateTime<Utc>,
) -> Result<HeaderMap, String> {
    let signature = webhook_signature(secret, &delivery.body);
    let triggered_at = triggered_at.to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut pairs: Vec<(&str, &str)> = vec![
        ("x-shopify-topic", &delivery.topic),
        ("x-shopify-hmac-sha256", &signature),
        ("x-shopify-shop-domain", &delivery.shop),
        ("x-shopify-api-version", &delivery.api_version),
        ("x-shopify-webhook-id", webhook_id),
        ("x-shopify-event-id", event_id),
        ("x-shopify-triggered-at", &triggered_at),
    ];
    if let Some(name) = &delivery.subscription_name {
        pairs.push(("x-shopify-name", name));
    }
    let mut headers = json_headers(&pairs)?;
    headers.insert(USER_AGENT, HeaderValue::from_static("Shopify-Captain-Hook"));
    Ok(headers)
}

/// `Content-Type: application/json` plus `pairs` (lower-case static names). A value that is not
/// a valid header value is reported as text, which callers record as the attempt's error instead
/// of failing the whole call.
pub(crate) fn json_headers(pairs: &[(&'static str, &str)]) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for &(name, value) in pairs {
        let value = HeaderValue::from_str(value)
            .map_err(|_| format!("{name} value {value:?} is not a valid header value"))?;
        headers.insert(HeaderName::from_static(name), value);
    }
    Ok(headers)
}

/// Runs `deliver(copy)` for copies `0..copies`, one after another or all at once, and collects
/// their results (in completion order when concurrent; callers sort).
pub(crate) async fn fan_out<R, F, Fut>(copies: usize, concurrent: bool, deliver: F) -> Vec<R>
where
    R: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Vec<R>> + Send + 'static,
{
    let mut results = Vec::new();
    if concurrent {
        // Spawned, not joined in place: copies must really overlap on the receiver's side.
        let mut tasks = tokio::task::JoinSet::new();
        for copy in 0..copies {
            tasks.spawn(deliver(copy));
        }
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(r) => results.extend(r),
                Err(e) => tracing::warn!(error = %e, "delivery task failed"),
            }
        }
    } else {
        for copy in 0..copies {
            results.extend(deliver(copy).await);
        }
    }
    results
}

/// One POST of `body` with `headers`, answered within `timeout` (connect, headers and — for
/// callers that read it — the response body). A missing answer becomes its error text.
pub(crate) async fn post_once(
    client: &reqwest::Client,
    url: &str,
    headers: HeaderMap,
    body: Bytes,
    timeout: Duration,
) -> Result<reqwest::Response, String> {
    client
        .post(url)
        .headers(headers)
        .body(body)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| transport_error(&e, timeout))
}

/// The text recorded for a request that got no (complete) answer.
pub(crate) fn transport_error(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        format!("timed out after {timeout:?}")
    } else {
        error_chain(e)
    }
}

async fn deliver_copy(
    client: reqwest::Client,
    prepared: Arc<Prepared>,
    copy: usize,
) -> Vec<DeliveryResult> {
    let mut results = Vec::new();
    for attempt in 0..=prepared.retries {
        let started = Instant::now();
        let answer = post_once(
            &client,
            &prepared.url,
            prepared.headers.clone(),
            prepared.body.clone(),
            prepared.timeout,
        )
        .await;
        let (status, error) = match answer {
            Ok(response) => (Some(response.status().as_u16()), None),
            Err(e) => (None, Some(e)),
        };
        let result = DeliveryResult {
            copy,
            attempt,
            webhook_id: prepared.webhook_id.clone(),
            event_id: prepared.event_id.clone(),
            status,
            error,
            elapsed: started.elapsed(),
        };
        let delivered = result.is_success();
        results.push(result);
        if delivered {
            break;
        }
    }
    results
}

/// `e: cause: cause…` — reqwest's own message omits the interesting part (refused, reset…).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
