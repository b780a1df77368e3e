//! Shopify Flow's side toward the app (reference flow.md §3 and §6): action execution requests
//! and trigger lifecycle callbacks, built with the documented body fields, signed like webhooks
//! (`X-Shopify-Hmac-Sha256` = base64 HMAC-SHA256 of the exact body bytes under the client
//! secret), POSTed, and — for actions — resent the way Flow resends.
//!
//! Flow's answer handling for actions (§3.3): only 200 is success (its `return_value` is kept);
//! 202 means "not finished" and the *same* body with the *same* `action_run_id` is resent later;
//! 429 (after `Retry-After`), 5xx and no answer within the deadline are resent too; every other
//! code is a permanent failure whose body text the merchant sees. Flow spreads resends over up to
//! 36 hours; here the waits are compressed to [`FlowActionRequest::resend_delay`] and a capped
//! `Retry-After` so tests stay fast — the receiver can only observe the unchanged body and id.
//!
//! Lifecycle callbacks (§6) are sent once per copy: Flow documents no resend, only that a non-2xx
//! or late answer stops the merchant from enabling the workflow.
//!
//! Every attempt is recorded in the simulator's Flow delivery log ([`crate::Sim::flow_deliveries`],
//! `GET /_sim/flow/deliveries`) as it happens, so a test can watch resends in progress. The HTTP
//! plumbing (one POST with a deadline, signed headers, copies in sequence or at once) is the
//! webhook sender's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::{Serialize, Serializer};
use serde_json::{json, Value};

use crate::signing::webhook_signature;
use crate::state::shop_id_for;
use crate::webhooks::{fan_out, json_headers, millis, post_once, transport_error};
use crate::Shared;

/// Flow's deadline for an action's answer (flow.md §3.3; an older page said 30 s).
pub const FLOW_ACTION_TIMEOUT: Duration = Duration::from_secs(10);
/// Flow's deadline for a lifecycle callback's 2xx (flow.md §6).
pub const FLOW_LIFECYCLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Default wait before resending after 202, 5xx, a 429 without `Retry-After`, or no answer.
pub const DEFAULT_FLOW_RESEND_DELAY: Duration = Duration::from_millis(50);
/// Default number of resends after the first attempt of each copy.
pub const DEFAULT_FLOW_MAX_RESENDS: usize = 5;
/// Default ceiling on an honoured `Retry-After` (Flow accepts up to an hour; tests cannot wait).
pub const DEFAULT_FLOW_RETRY_AFTER_CAP: Duration = Duration::from_secs(2);

/// The header carrying the signature, as Flow names it.
const HMAC_HEADER: &str = "x-shopify-hmac-sha256";

/// One action run to execute on the app's `runtime_url`, and how to (mis)behave doing it.
///
/// Build with [`FlowActionRequest::new`], then adjust with struct update syntax:
/// `FlowActionRequest { duplicates: 2, concurrent: true, ..FlowActionRequest::new(shop, handle, props) }`.
#[derive(Debug, Clone)]
pub struct FlowActionRequest {
    /// The shop's `{handle}.myshopify.com`; sent as `shopify_domain`, and its id as `shop_id`.
    pub shop: String,
    /// The action extension's handle (`handle` in the body).
    pub handle: String,
    /// `properties`: field keys and reference keys (`customer_id`, …) with their values.
    pub properties: Value,
    /// `action_run_id`, identical on every copy and resend; a new UUID from `new`.
    pub action_run_id: String,
    /// `action_definition_id` (legacy; the docs example is the action's title); the handle when
    /// `None`.
    pub action_definition_id: Option<String>,
    /// Top-level `step_reference` (*probable* in flow.md), sent only when set.
    pub step_reference: Option<String>,
    /// Send `shop_id` as a JSON number instead of the docs example's string.
    pub numeric_shop_id: bool,
    /// Extra copies with the same body and `action_run_id` (Flow's duplicate runs).
    pub duplicates: usize,
    /// Send all copies at once instead of one after another.
    pub concurrent: bool,
    /// Signing key; the app's client secret when `None` (set it for bad-signature tests).
    pub secret: Option<String>,
    /// Per-attempt deadline (Flow: 10 s).
    pub timeout: Duration,
    /// Resends of each copy after its first attempt while the answer is 202, 429, 5xx or none.
    pub max_resends: usize,
    /// Wait before a resend (compressed stand-in for Flow's increasing intervals).
    pub resend_delay: Duration,
    /// Ceiling on the wait a 429's `Retry-After` asks for.
    pub retry_after_cap: Duration,
}

impl FlowActionRequest {
    /// A run of action `handle` on `shop` with `properties`, a fresh `action_run_id` and Flow's
    /// defaults (10 s deadline) plus test-friendly resend timing.
    pub fn new(shop: &str, handle: &str, properties: Value) -> Self {
        FlowActionRequest {
            shop: shop.to_owned(),
            handle: handle.to_owned(),
            properties,
            action_run_id: uuid::Uuid::new_v4().to_string(),
            action_definition_id: None,
            step_reference: None,
            numeric_shop_id: false,
            duplicates: 0,
            concurrent: false,
            secret: None,
            timeout: FLOW_ACTION_TIMEOUT,
            max_resends: DEFAULT_FLOW_MAX_RESENDS,
            resend_delay: DEFAULT_FLOW_RESEND_DELAY,
            retry_after_cap: DEFAULT_FLOW_RETRY_AFTER_CAP,
        }
    }

    /// The JSON body Flow sends (flow.md §3.1).
    pub fn body(&self) -> Value {
        let mut body = json!({
            "shop_id": shop_id_value(&self.shop, self.numeric_shop_id),
            "shopify_domain": self.shop,
            "action_run_id": self.action_run_id,
            "action_definition_id": self.action_definition_id.as_deref().unwrap_or(&self.handle),
            "handle": self.handle,
            "properties": self.properties,
        });
        if let Some(step) = &self.step_reference {
            body["step_reference"] = json!(step);
        }
        body
    }
}

/// One lifecycle callback: whether any enabled workflow of the shop uses a trigger (flow.md §6).
#[derive(Debug, Clone)]
pub struct LifecycleEvent {
    pub shop: String,
    /// `flow_trigger_definition_id`. Which value Flow sends for CLI-managed triggers is
    /// unconfirmed (the docs example is the trigger's title); pass the handle or the title.
    pub flow_trigger_definition_id: String,
    /// `has_enabled_flow`: true when a workflow using the trigger is enabled.
    pub has_enabled_flow: bool,
    /// `timestamp`; now when `None` (set it to test "newer wins").
    pub timestamp: Option<DateTime<Utc>>,
    /// Send `shop_id` as a JSON number instead of the docs example's string.
    pub numeric_shop_id: bool,
    /// Extra copies of the same body.
    pub duplicates: usize,
    /// Send all copies at once.
    pub concurrent: bool,
    /// Signing key; the app's client secret when `None`.
    pub secret: Option<String>,
    /// Per-attempt deadline (Flow: 5 s).
    pub timeout: Duration,
}

impl LifecycleEvent {
    pub fn new(shop: &str, flow_trigger_definition_id: &str, has_enabled_flow: bool) -> Self {
        LifecycleEvent {
            shop: shop.to_owned(),
            flow_trigger_definition_id: flow_trigger_definition_id.to_owned(),
            has_enabled_flow,
            timestamp: None,
            numeric_shop_id: false,
            duplicates: 0,
            concurrent: false,
            secret: None,
            timeout: FLOW_LIFECYCLE_TIMEOUT,
        }
    }

    /// The JSON body Flow sends at `timestamp` (flow.md §6).
    pub fn body(&self, timestamp: DateTime<Utc>) -> Value {
        json!({
            "flow_trigger_definition_id": self.flow_trigger_definition_id,
            "has_enabled_flow": self.has_enabled_flow,
            "shop_id": shop_id_value(&self.shop, self.numeric_shop_id),
            "shopify_domain": self.shop,
            "timestamp": timestamp.to_rfc3339_opts(SecondsFormat::Millis, true),
        })
    }
}

/// The docs example sends the id as a string; another Shopify source used a number.
fn shop_id_value(shop: &str, numeric: bool) -> Value {
    let id = shop_id_for(shop);
    if numeric {
        json!(id)
    } else {
        json!(id.to_string())
    }
}

/// Which Flow request an attempt belonged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowDeliveryKind {
    Action,
    Lifecycle,
}

/// How Flow reads one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowOutcome {
    /// Action: 200. Lifecycle: any 2xx.
    Succeeded,
    /// Action: 202 — not finished; resent unless `max_resends` is used up.
    Pending,
    /// Action: 429, 5xx or no answer — resent unless `max_resends` is used up.
    Retry,
    /// Anything else: the run (or the enable) fails; not resent.
    Failed,
}

/// One HTTP attempt of one copy of a Flow request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowDeliveryResult {
    pub kind: FlowDeliveryKind,
    pub shop: String,
    /// The action's handle, or the lifecycle's `flow_trigger_definition_id`.
    pub handle: String,
    /// Actions only.
    pub action_run_id: Option<String>,
    /// 0 for the original, 1.. for duplicates.
    pub copy: usize,
    /// 0 for the first attempt, 1.. for resends.
    pub resend: usize,
    pub sent_at: DateTime<Utc>,
    /// HTTP status, when an answer arrived.
    pub status: Option<u16>,
    /// Transport failure (connect error, timeout), when no answer arrived.
    pub error: Option<String>,
    pub outcome: FlowOutcome,
    /// `return_value` of a 200 answer's JSON body, if any.
    pub return_value: Option<Value>,
    /// The body text of a failing answer: what the merchant is shown.
    pub message: Option<String>,
    /// The wait before the resend that follows this attempt; `None` when none follows.
    #[serde(rename = "resend_after_ms", serialize_with = "opt_millis")]
    pub resend_after: Option<Duration>,
    #[serde(rename = "elapsed_ms", serialize_with = "millis")]
    pub elapsed: Duration,
}

impl FlowDeliveryResult {
    pub fn is_success(&self) -> bool {
        self.outcome == FlowOutcome::Succeeded
    }
}

fn opt_millis<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => millis(d, s),
        None => s.serialize_none(),
    }
}

/// What every copy and resend of one request shares.
struct Prepared {
    kind: FlowDeliveryKind,
    url: String,
    shop: String,
    handle: String,
    action_run_id: Option<String>,
    /// Exactly the bytes signed and sent, every time.
    body: Bytes,
    /// `Err` when a header could not be built; every copy then records that error.
    headers: Result<HeaderMap, String>,
    timeout: Duration,
    max_resends: usize,
    resend_delay: Duration,
    retry_after_cap: Duration,
}

/// Executes `request` against `target`; one result per attempt, ordered by copy, then resend.
pub(crate) async fn send_action(
    shared: &Arc<Shared>,
    target: &str,
    request: FlowActionRequest,
) -> Vec<FlowDeliveryResult> {
    let body = Bytes::from(request.body().to_string());
    let prepared = Prepared {
        kind: FlowDeliveryKind::Action,
        url: target.to_owned(),
        headers: signed_headers(shared, request.secret.as_deref(), &body),
        body,
        shop: request.shop,
        handle: request.handle,
        action_run_id: Some(request.action_run_id),
        timeout: request.timeout,
        max_resends: request.max_resends,
        resend_delay: request.resend_delay,
        retry_after_cap: request.retry_after_cap,
    };
    deliver(shared, prepared, request.duplicates, request.concurrent).await
}

/// Sends `event` to `target`; one result per copy.
pub(crate) async fn send_lifecycle(
    shared: &Arc<Shared>,
    target: &str,
    event: LifecycleEvent,
) -> Vec<FlowDeliveryResult> {
    let timestamp = event.timestamp.unwrap_or_else(Utc::now);
    let body = Bytes::from(event.body(timestamp).to_string());
    let prepared = Prepared {
        kind: FlowDeliveryKind::Lifecycle,
        url: target.to_owned(),
        headers: signed_headers(shared, event.secret.as_deref(), &body),
        body,
        shop: event.shop,
        handle: event.flow_trigger_definition_id,
        action_run_id: None,
        timeout: event.timeout,
        max_resends: 0,
        resend_delay: Duration::ZERO,
        retry_after_cap: Duration::ZERO,
    };
    deliver(shared, prepared, event.duplicates, event.concurrent).await
}

/// Flow sends only the signature and a JSON content type; the webhook headers
/// (`X-Shopify-Shop-Domain`, `X-Shopify-Topic`) are deliberately absent, because flow.md says
/// they are not reliably present and the app must take the shop from the signed body.
fn signed_headers(shared: &Shared, secret: Option<&str>, body: &[u8]) -> Result<HeaderMap, String> {
    let secret = secret.unwrap_or(&shared.config.api_secret);
    json_headers(&[(HMAC_HEADER, &webhook_signature(secret, body))])
}

async fn deliver(
    shared: &Arc<Shared>,
    prepared: Prepared,
    duplicates: usize,
    concurrent: bool,
) -> Vec<FlowDeliveryResult> {
    let prepared = Arc::new(prepared);
    let mut results = fan_out(duplicates.saturating_add(1), concurrent, |copy| {
        deliver_copy(shared.clone(), prepared.clone(), copy)
    })
    .await;
    results.sort_by_key(|r| (r.copy, r.resend));
    results
}

async fn deliver_copy(
    shared: Arc<Shared>,
    prepared: Arc<Prepared>,
    copy: usize,
) -> Vec<FlowDeliveryResult> {
    let mut results = Vec::new();
    for resend in 0..=prepared.max_resends {
        let sent_at = Utc::now();
        let started = Instant::now();
        let answer = match &prepared.headers {
            Ok(headers) => attempt(&shared.http, &prepared, headers.clone()).await,
            Err(e) => Answer::failed(None, e.clone()),
        };
        let wait = match answer.outcome {
            FlowOutcome::Pending | FlowOutcome::Retry if resend < prepared.max_resends => Some(
                answer
                    .retry_after
                    .map_or(prepared.resend_delay, |ra| ra.min(prepared.retry_after_cap)),
            ),
            _ => None,
        };
        let result = FlowDeliveryResult {
            kind: prepared.kind,
            shop: prepared.shop.clone(),
            handle: prepared.handle.clone(),
            action_run_id: prepared.action_run_id.clone(),
            copy,
            resend,
            sent_at,
            status: answer.status,
            error: answer.error,
            outcome: answer.outcome,
            return_value: answer.return_value,
            message: answer.message,
            resend_after: wait,
            elapsed: started.elapsed(),
        };
        record(&shared, &result);
        results.push(result);
        match wait {
            Some(wait) => tokio::time::sleep(wait).await,
            None => break,
        }
    }
    results
}

/// One answer as Flow reads it.
struct Answer {
    status: Option<u16>,
    error: Option<String>,
    outcome: FlowOutcome,
    return_value: Option<Value>,
    message: Option<String>,
    retry_after: Option<Duration>,
}

impl Answer {
    fn failed(status: Option<u16>, error: String) -> Self {
        Answer {
            status,
            error: Some(error),
            outcome: FlowOutcome::Failed,
            return_value: None,
            message: None,
            retry_after: None,
        }
    }
}

async fn attempt(client: &reqwest::Client, prepared: &Prepared, headers: HeaderMap) -> Answer {
    let no_answer = |error: String| Answer {
        status: None,
        error: Some(error),
        // Flow resends an action that got no answer in time; a lifecycle enable just fails.
        outcome: match prepared.kind {
            FlowDeliveryKind::Action => FlowOutcome::Retry,
            FlowDeliveryKind::Lifecycle => FlowOutcome::Failed,
        },
        return_value: None,
        message: None,
        retry_after: None,
    };
    let response = match post_once(
        client,
        &prepared.url,
        headers,
        prepared.body.clone(),
        prepared.timeout,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return no_answer(e),
    };
    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers());
    // The body is part of the answer (return value, merchant message): reading it counts against
    // the same deadline, and a body cut off counts as no answer.
    let text = match response.text().await {
        Ok(t) => t,
        Err(e) => return no_answer(transport_error(&e, prepared.timeout)),
    };
    let outcome = match (prepared.kind, status) {
        (FlowDeliveryKind::Action, 200) | (FlowDeliveryKind::Lifecycle, 200..=299) => {
            FlowOutcome::Succeeded
        }
        (FlowDeliveryKind::Action, 202) => FlowOutcome::Pending,
        (FlowDeliveryKind::Action, 429 | 500..=599) => FlowOutcome::Retry,
        // Other 4xx are permanent by documentation; 1xx/3xx/other 2xx are treated as failures
        // without resend (unconfirmed in flow.md, the conservative reading).
        _ => FlowOutcome::Failed,
    };
    let return_value = match outcome {
        FlowOutcome::Succeeded => serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|mut v| v.get_mut("return_value").map(Value::take)),
        _ => None,
    };
    Answer {
        status: Some(status),
        error: None,
        outcome,
        return_value,
        message: (outcome != FlowOutcome::Succeeded && !text.is_empty()).then_some(text),
        retry_after: (status == 429).then_some(retry_after).flatten(),
    }
}

/// `Retry-After` in seconds (the form flow.md documents); anything else is ignored.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

fn record(shared: &Shared, result: &FlowDeliveryResult) {
    let event = match result.kind {
        FlowDeliveryKind::Action => "flow_action",
        FlowDeliveryKind::Lifecycle => "flow_lifecycle",
    };
    let answer = match (result.status, &result.error) {
        (Some(s), _) => s.to_string(),
        (None, Some(e)) => e.clone(),
        (None, None) => "unknown".to_owned(),
    };
    let mut state = shared.state();
    state.push_log(
        event,
        Some(&result.shop),
        format!("{} {answer}", result.handle),
        result.sent_at,
    );
    state.push_flow_delivery(result.clone());
}
