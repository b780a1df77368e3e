//! The Admin GraphQL API: the one way Keel calls Shopify's Admin API.
//!
//! - Endpoint `{origin}/admin/api/2026-10/graphql.json` (version pinned in [`API_VERSION`]).
//! - Cost-aware throttling per shop ([`throttle`]): wait before sending, never be refused.
//! - Retries with exponential backoff and jitter, bounded in attempts and total time: THROTTLED
//!   (inside an HTTP 200), 429 (honouring Retry-After), 5xx and connection errors. Everything
//!   else (GraphQL errors, `userErrors`) becomes a typed error a caller can show.
//! - Tokens come from a [`TokenSource`]: a 401 refreshes the token once and retries; a second
//!   401 tells the source the shop needs re-authorisation.
//! - Mutations that are not naturally idempotent carry `@idempotent(key:)` with a key derived
//!   from Keel's own job id, so a retry after a lost answer is not applied twice.

pub mod operations;
pub mod throttle;

use super::{Endpoint, ShopDomain, API_VERSION};
use crate::backoff;
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use throttle::{Throttle, ThrottleStatus};

/// A plaintext access token and the stored version it came from.
#[derive(Clone)]
pub struct Token {
    pub value: String,
    pub version: i64,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("Keel is not installed on this shop")]
    NotInstalled,
    #[error("the shop must open Keel again to re-authorise it")]
    NeedsReauthorization,
    #[error("no token could be obtained: {0}")]
    Unavailable(String),
}

/// Where the client gets tokens; implemented by `crate::access::Access`.
#[async_trait]
pub trait TokenSource: Send + Sync + 'static {
    async fn token(&self, shop: &ShopDomain) -> Result<Token, TokenError>;
    /// Shopify refused `used` with 401: a new token, unless one already replaced it.
    async fn refresh_after_unauthorized(
        &self,
        shop: &ShopDomain,
        used: &Token,
    ) -> Result<Token, TokenError>;
    /// Shopify refused a fresh token too: the shop must re-authorise; stop its work.
    async fn needs_reauthorization(&self, shop: &ShopDomain);
}

/// A `userErrors` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct UserError {
    #[serde(default)]
    pub field: Option<Vec<String>>,
    pub message: String,
    #[serde(default)]
    pub code: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// HTTP 401 twice: the shop must re-authorise.
    #[error("Shopify refused Keel's access to this shop; open Keel from the Shopify admin to re-authorise it")]
    Unauthorized,
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The business rule said no; the messages are Shopify's, for the merchant.
    #[error("Shopify refused the change: {}", .0.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join("; "))]
    UserErrors(Vec<UserError>),
    /// A query or scope problem (not retried).
    #[error("Shopify answered with GraphQL errors: {0}")]
    GraphQl(String),
    /// 402/403/404/423 and other answers that retrying will not change.
    #[error("Shopify answered HTTP {status}")]
    Status { status: u16 },
    /// Retries exhausted on throttling, 429, 5xx or connection errors.
    #[error("Shopify stayed unavailable after {attempts} attempts: {last}")]
    Unavailable { attempts: u32, last: String },
    #[error("Shopify's answer did not have the expected shape: {0}")]
    Malformed(String),
    #[error("{0}")]
    Invalid(String),
}

impl AdminError {
    /// Worth retrying later as a job (not now in-process: that budget is spent).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            AdminError::Unavailable { .. } | AdminError::Token(TokenError::Unavailable(_))
        )
    }
}

/// How hard one call tries before giving up.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts for 429, 5xx and connection errors.
    pub max_attempts: u32,
    /// THROTTLED answers tolerated (each one waits for the reported restore time).
    pub max_throttled: u32,
    /// Wall time for the whole call, retries included.
    pub deadline: Duration,
    pub backoff: backoff::Policy,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            max_throttled: 20,
            deadline: Duration::from_secs(45),
            backoff: backoff::SHOPIFY_CALLS,
        }
    }
}

/// One GraphQL request.
#[derive(Debug, Clone)]
pub struct Request {
    pub name: &'static str,
    pub document: String,
    pub variables: Value,
    /// What Keel expects Shopify to charge as `requestedQueryCost`, reserved before sending.
    pub estimated_cost: f64,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    errors: Option<Value>,
    #[serde(default)]
    extensions: Option<Extensions>,
}

#[derive(Deserialize)]
struct Extensions {
    cost: Option<Cost>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cost {
    #[serde(default)]
    requested_query_cost: Option<f64>,
    #[serde(default)]
    actual_query_cost: Option<f64>,
    throttle_status: ThrottleStatus,
}

/// The outcome of one HTTP attempt, before retry decisions.
enum Attempt {
    Data(Value),
    Throttled { wait: Duration },
    Retry { why: String, hint: Option<Duration> },
    Unauthorized,
    Fail(AdminError),
}

pub struct AdminClient {
    endpoint: Endpoint,
    tokens: Arc<dyn TokenSource>,
    throttle: Throttle,
    policy: RetryPolicy,
    /// The `requestedQueryCost` Shopify last reported per operation: reserving that (rather than
    /// a hand estimate) is what keeps Keel from being refused.
    learned_costs: std::sync::Mutex<std::collections::HashMap<&'static str, f64>>,
    /// Off only to measure what the throttle saves (tests, benchmarks).
    client_throttle: bool,
}

impl AdminClient {
    pub fn new(endpoint: Endpoint, tokens: Arc<dyn TokenSource>, policy: RetryPolicy) -> Self {
        Self {
            endpoint,
            tokens,
            throttle: Throttle::default(),
            policy,
            learned_costs: Default::default(),
            client_throttle: true,
        }
    }

    /// Without the client-side bucket: every call is sent at once and Shopify's THROTTLED
    /// answers are the only brake. For measuring the throttle, never for production.
    pub fn without_client_throttle(mut self) -> Self {
        self.client_throttle = false;
        self
    }

    /// The `requestedQueryCost` Shopify last reported for an operation.
    pub fn learned_cost(&self, operation: &str) -> Option<f64> {
        self.learned_costs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(operation)
            .copied()
    }

    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    /// Send `request` for `shop`, with throttling, retries and the 401 rule; returns `data`.
    pub async fn execute(&self, shop: &ShopDomain, request: &Request) -> Result<Value, AdminError> {
        let started = tokio::time::Instant::now();
        let mut token = self.tokens.token(shop).await?;
        let mut refreshed = false;
        let (mut failures, mut throttled) = (0u32, 0u32);
        loop {
            match self.attempt(shop, &token, request).await {
                Attempt::Data(data) => return Ok(data),
                Attempt::Fail(e) => return Err(e),
                Attempt::Unauthorized if !refreshed => {
                    refreshed = true;
                    token = self.tokens.refresh_after_unauthorized(shop, &token).await?;
                    continue;
                }
                Attempt::Unauthorized => {
                    self.tokens.needs_reauthorization(shop).await;
                    return Err(AdminError::Unauthorized);
                }
                Attempt::Throttled { wait } => {
                    throttled += 1;
                    tracing::warn!(shop = %shop, operation = request.name, wait_ms = wait.as_millis() as u64, "throttled by Shopify");
                    if throttled > self.policy.max_throttled
                        || started.elapsed() + wait > self.policy.deadline
                    {
                        return Err(AdminError::Unavailable {
                            attempts: failures + throttled,
                            last: "THROTTLED".into(),
                        });
                    }
                    // With the client throttle the corrected bucket makes the next reserve wait;
                    // without it, wait as Shopify says (with jitter, as every caller heard the
                    // same number).
                    if !self.client_throttle {
                        let jitter = rand::Rng::gen_range(&mut rand::thread_rng(), 1.0..1.5);
                        tokio::time::sleep(wait.mul_f64(jitter)).await;
                    }
                }
                Attempt::Retry { why, hint } => {
                    failures += 1;
                    let delay = self
                        .policy
                        .backoff
                        .delay(failures, hint, &mut rand::thread_rng());
                    tracing::warn!(shop = %shop, operation = request.name, attempt = failures, error = %why, retry_in_ms = delay.as_millis() as u64, "Shopify call failed");
                    if failures >= self.policy.max_attempts
                        || started.elapsed() + delay > self.policy.deadline
                    {
                        return Err(AdminError::Unavailable {
                            attempts: failures + throttled,
                            last: why,
                        });
                    }
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    async fn attempt(&self, shop: &ShopDomain, token: &Token, request: &Request) -> Attempt {
        let learned = self
            .learned_costs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(request.name)
            .copied();
        let cost = if self.client_throttle {
            learned.unwrap_or(request.estimated_cost)
        } else {
            0.0
        };
        let reservation = self.throttle.reserve(shop.as_str(), cost).await;
        let sent = self
            .endpoint
            .post(shop, &format!("/admin/api/{API_VERSION}/graphql.json"))
            .header("X-Shopify-Access-Token", &token.value)
            .json(&serde_json::json!({ "query": request.document, "variables": request.variables }))
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                reservation.cancel().await;
                return Attempt::Retry {
                    why: format!("connection: {}", crate::errors::error_chain(&e)),
                    hint: None,
                };
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(Duration::from_secs_f64);
        match status {
            200..=299 => {}
            401 => {
                reservation.cancel().await;
                return Attempt::Unauthorized;
            }
            429 | 500..=599 => {
                reservation.cancel().await;
                return Attempt::Retry {
                    why: format!("HTTP {status}"),
                    hint: retry_after,
                };
            }
            _ => {
                reservation.cancel().await;
                return Attempt::Fail(AdminError::Status { status });
            }
        }
        let body: Envelope = match response.json().await {
            Ok(b) => b,
            Err(e) => {
                // A body cut off mid-way is a dropped connection, not a malformed answer.
                reservation.cancel().await;
                return Attempt::Retry {
                    why: format!("reading the answer: {}", crate::errors::error_chain(&e)),
                    hint: None,
                };
            }
        };
        let cost = body.extensions.and_then(|e| e.cost);
        if let Some(requested) = cost.as_ref().and_then(|c| c.requested_query_cost) {
            self.learned_costs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(request.name, requested);
        }
        let status_report = cost.as_ref().map(|c| c.throttle_status);
        let throttled = body.errors.as_ref().is_some_and(is_throttled);
        reservation
            .settle(
                cost.as_ref().and_then(|c| c.actual_query_cost),
                status_report,
            )
            .await;
        if throttled {
            let wait = match &cost {
                Some(c) => {
                    let requested = c.requested_query_cost.unwrap_or(request.estimated_cost);
                    let missing = (requested - c.throttle_status.currently_available).max(0.0);
                    Duration::from_secs_f64(missing / c.throttle_status.restore_rate.max(1.0))
                }
                None => Duration::from_secs(1),
            };
            return Attempt::Throttled { wait };
        }
        if let Some(errors) = body
            .errors
            .filter(|e| !e.is_null() && e.as_array().is_none_or(|a| !a.is_empty()))
        {
            return Attempt::Fail(AdminError::GraphQl(errors.to_string()));
        }
        match body.data {
            Some(data) => Attempt::Data(data),
            None => Attempt::Fail(AdminError::Malformed("no data and no errors".into())),
        }
    }
}

fn is_throttled(errors: &Value) -> bool {
    errors.as_array().is_some_and(|a| {
        a.iter()
            .any(|e| e.pointer("/extensions/code").and_then(Value::as_str) == Some("THROTTLED"))
    })
}
