//! `POST /webhooks`: every subscription's delivery, the topic in the header.
//!
//! Order matters: the signature is checked over the raw bytes before anything is parsed, then
//! headers, JSON and shop are validated, and only then is the delivery stored — receipt and job
//! in one transaction, deduplicated on the event id — and acknowledged. Processing happens in a
//! job, so the answer comes well inside Shopify's 5 s and a crash after it loses nothing.
//!
//! Answers: 200 stored / duplicate / ignored (unknown shop, uninstalled shop, unhandled topic:
//! Shopify must not keep retrying), 401 bad or missing signature, 400 missing header or invalid
//! JSON, 405 not POST, 413 over 1 MiB, 503 not stored (Shopify retries).

use super::ApiError;
use crate::app::AppState;
use crate::jobs::intake::IntakeError;
use crate::shopify::webhooks::{payload_customer, DeliveryHeaders, Topic};
use crate::shopify::{hmac, ShopDomain};
use crate::store::{CustomerRef, NewWebhook, ShopRequirement, WebhookRecorded};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};

/// Shopify's payloads are far smaller; anything larger is refused before it is buffered whole.
pub const MAX_BODY: usize = 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks", post(receive))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Ack>, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the webhook body is larger than 1 MiB",
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "unreadable_body",
                "the webhook body could not be read",
            )
        }
    })?;
    let signature = DeliveryHeaders::hmac(&headers);
    if !hmac::body_signature_valid(&state.config.signing_secrets(), &body, signature) {
        let why = if signature.is_none() {
            "the X-Shopify-Hmac-Sha256 header is missing"
        } else {
            "the X-Shopify-Hmac-Sha256 signature does not match the body"
        };
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid_hmac", why));
    }
    let delivery = DeliveryHeaders::parse(&headers).map_err(|missing| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing_header",
            missing.to_string(),
        )
    })?;
    tracing::Span::current().record("shop", delivery.shop_domain.as_str());
    let customer = payload_customer(&delivery.topic, &body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the webhook body is not valid JSON: {e}"),
        )
    })?;
    let shop = ShopDomain::parse(&delivery.shop_domain, state.domain_policy).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_shop_domain",
            format!("X-Shopify-Shop-Domain: {e}"),
        )
    })?;
    if let Some(version) = delivery
        .api_version
        .as_deref()
        .filter(|v| *v != crate::shopify::API_VERSION)
    {
        tracing::debug!(
            version,
            "payload API version differs from the pinned version"
        );
    }

    let Some(topic) = Topic::parse(&delivery.topic) else {
        // Subscriptions come from shopify.app.toml, so this is configuration drift, not an
        // attack (the signature is valid): acknowledge so Shopify stops, and say so in the log.
        tracing::warn!(topic = %delivery.topic, "webhook for a topic Keel does not handle; acknowledged and dropped");
        return Ok(Json(Ack::ignored(None, "unhandled_topic")));
    };
    let webhook = NewWebhook {
        shop: shop.as_str().to_owned(),
        topic: topic.as_str().to_owned(),
        dedupe_key: delivery.dedupe_key(),
        webhook_id: delivery.webhook_id,
        event_id: delivery.event_id,
        api_version: delivery.api_version,
        triggered_at: delivery.triggered_at,
        // Keep the exact bytes Shopify signed; the job parses them again.
        payload: String::from_utf8_lossy(&body).into_owned(),
        customer: CustomerRef {
            id: customer.id,
            email: customer.email.map(|e| e.trim().to_lowercase()),
        },
        requires: if topic.is_compliance() {
            ShopRequirement::Known
        } else {
            ShopRequirement::Installed
        },
    };
    let outcome = state.intake.record(webhook).await.map_err(|e| match e {
        IntakeError::NotStored(_) | IntakeError::ShuttingDown => {
            ApiError::unavailable("webhook not stored", &e)
        }
    })?;
    Ok(Json(match outcome {
        WebhookRecorded::Queued { receipt_id, .. } => Ack::recorded("queued", receipt_id),
        WebhookRecorded::Duplicate { receipt_id } => Ack::recorded("duplicate", receipt_id),
        WebhookRecorded::Ignored { receipt_id, reason } => {
            Ack::ignored(Some(receipt_id), reason.as_str())
        }
    }))
}

/// The acknowledgement's body: what happened to the delivery. A struct rather than `json!`, so
/// the hot path serializes without building a map.
#[derive(serde::Serialize)]
struct Ack {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    receipt_id: Option<i64>,
}

impl Ack {
    fn recorded(status: &'static str, receipt_id: i64) -> Self {
        Self {
            status,
            reason: None,
            receipt_id: Some(receipt_id),
        }
    }

    fn ignored(receipt_id: Option<i64>, reason: &'static str) -> Self {
        Self {
            status: "ignored",
            reason: Some(reason),
            receipt_id,
        }
    }
}
