//! Webhook deliveries as Shopify sends them: the headers (both the `X-Shopify-*` family and the
//! un-prefixed names of event deliveries), which topics Keel handles, and the payloads of the
//! topics handled so far. Verification of the signature is `super::hmac`.

use axum::http::HeaderMap;
use serde::Deserialize;

/// The headers of one delivery, before the body is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryHeaders {
    pub topic: String,
    pub hmac: String,
    pub shop_domain: String,
    pub webhook_id: String,
    pub event_id: Option<String>,
    pub api_version: Option<String>,
    pub triggered_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {0} header is missing")]
pub struct MissingHeader(pub &'static str);

/// One header under both names: `X-Shopify-*` (webhooks) and the un-prefixed form of event
/// deliveries. Static pairs: this runs seven times per delivery on the webhook hot path.
fn header<'a>(headers: &'a HeaderMap, (prefixed, plain): (&str, &str)) -> Option<&'a str> {
    headers
        .get(prefixed)
        .or_else(|| headers.get(plain))
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

const HMAC: (&str, &str) = ("x-shopify-hmac-sha256", "shopify-hmac-sha256");
const TOPIC: (&str, &str) = ("x-shopify-topic", "shopify-topic");
const SHOP_DOMAIN: (&str, &str) = ("x-shopify-shop-domain", "shopify-shop-domain");
const WEBHOOK_ID: (&str, &str) = ("x-shopify-webhook-id", "shopify-webhook-id");
const EVENT_ID: (&str, &str) = ("x-shopify-event-id", "shopify-event-id");
const PAYLOAD_VERSION: (&str, &str) = ("x-shopify-api-version", "shopify-api-version");
const TRIGGERED_AT: (&str, &str) = ("x-shopify-triggered-at", "shopify-triggered-at");

impl DeliveryHeaders {
    /// The signature header alone: checked before anything else is looked at.
    pub fn hmac(headers: &HeaderMap) -> Option<&str> {
        header(headers, HMAC)
    }

    pub fn parse(headers: &HeaderMap) -> Result<Self, MissingHeader> {
        Ok(Self {
            hmac: header(headers, HMAC)
                .ok_or(MissingHeader("X-Shopify-Hmac-Sha256"))?
                .to_owned(),
            topic: header(headers, TOPIC)
                .ok_or(MissingHeader("X-Shopify-Topic"))?
                .to_owned(),
            shop_domain: header(headers, SHOP_DOMAIN)
                .ok_or(MissingHeader("X-Shopify-Shop-Domain"))?
                .to_owned(),
            webhook_id: header(headers, WEBHOOK_ID)
                .ok_or(MissingHeader("X-Shopify-Webhook-Id"))?
                .to_owned(),
            event_id: header(headers, EVENT_ID).map(str::to_owned),
            api_version: header(headers, PAYLOAD_VERSION).map(str::to_owned),
            triggered_at: header(headers, TRIGGERED_AT).map(str::to_owned),
        })
    }

    /// Shopify's "ignore duplicates" guidance keys on the event id (the same event may reach
    /// several subscriptions); deliveries without one fall back to the delivery id, which is the
    /// same on every retry.
    pub fn dedupe_key(&self) -> String {
        match &self.event_id {
            Some(event) => format!("event:{}:{event}", self.topic),
            None => format!("webhook:{}", self.webhook_id),
        }
    }
}

/// The topics Keel handles. Anything else is acknowledged (so Shopify stops) and logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    AppUninstalled,
    AppScopesUpdate,
    CustomersDataRequest,
    CustomersRedact,
    ShopRedact,
}

impl Topic {
    pub const ALL: [Topic; 5] = [
        Topic::AppUninstalled,
        Topic::AppScopesUpdate,
        Topic::CustomersDataRequest,
        Topic::CustomersRedact,
        Topic::ShopRedact,
    ];

    pub fn parse(raw: &str) -> Option<Topic> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Topic::AppUninstalled => "app/uninstalled",
            Topic::AppScopesUpdate => "app/scopes_update",
            Topic::CustomersDataRequest => "customers/data_request",
            Topic::CustomersRedact => "customers/redact",
            Topic::ShopRedact => "shop/redact",
        }
    }

    /// The mandatory privacy topics: they must be honoured after uninstall too.
    pub fn is_compliance(self) -> bool {
        matches!(
            self,
            Topic::CustomersDataRequest | Topic::CustomersRedact | Topic::ShopRedact
        )
    }
}

/// The customer block of the privacy payloads. Shopify may send only the email.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Default)]
pub struct PayloadCustomer {
    #[serde(default)]
    pub id: Option<i64>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct DataRequestId {
    pub id: i64,
}

/// `customers/data_request`
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct CustomersDataRequest {
    pub shop_id: i64,
    pub shop_domain: String,
    pub customer: PayloadCustomer,
    #[serde(default)]
    pub orders_requested: Vec<i64>,
    #[serde(default)]
    pub data_request: Option<DataRequestId>,
}

/// `customers/redact`
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct CustomersRedact {
    pub shop_id: i64,
    pub shop_domain: String,
    pub customer: PayloadCustomer,
    #[serde(default)]
    pub orders_to_redact: Vec<i64>,
}

/// `shop/redact`
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ShopRedact {
    pub shop_id: i64,
    pub shop_domain: String,
}

/// `app/scopes_update`
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ScopesUpdate {
    #[serde(default)]
    pub previous: Vec<String>,
    pub current: Vec<String>,
}

/// The customer a payload is about, for any topic (used at ingest so redaction can find it).
pub fn payload_customer(topic: &str, body: &serde_json::Value) -> PayloadCustomer {
    let block = match topic {
        "customers/data_request" | "customers/redact" => body.get("customer"),
        t if t.starts_with("customers/") => Some(body),
        t if t.starts_with("orders/") => body.get("customer"),
        _ => None,
    };
    let Some(block) = block else {
        return PayloadCustomer::default();
    };
    PayloadCustomer {
        id: block.get("id").and_then(serde_json::Value::as_i64),
        email: block
            .get("email")
            .and_then(|e| e.as_str())
            .map(str::to_owned),
        phone: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn both_header_families_are_read_and_event_id_drives_dedupe() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-shopify-topic",
            HeaderValue::from_static("app/uninstalled"),
        );
        h.insert("x-shopify-hmac-sha256", HeaderValue::from_static("abc="));
        h.insert(
            "shopify-shop-domain",
            HeaderValue::from_static("a.myshopify.com"),
        );
        h.insert("x-shopify-webhook-id", HeaderValue::from_static("w1"));
        let d = DeliveryHeaders::parse(&h).unwrap();
        assert_eq!(d.shop_domain, "a.myshopify.com");
        assert_eq!(d.dedupe_key(), "webhook:w1");
        h.insert("x-shopify-event-id", HeaderValue::from_static("e1"));
        assert_eq!(
            DeliveryHeaders::parse(&h).unwrap().dedupe_key(),
            "event:app/uninstalled:e1"
        );
        h.remove("x-shopify-webhook-id");
        assert_eq!(
            DeliveryHeaders::parse(&h).unwrap_err(),
            MissingHeader("X-Shopify-Webhook-Id")
        );
    }

    #[test]
    fn privacy_payloads_parse_with_large_ids_and_email_only_customers() {
        let p: CustomersRedact = serde_json::from_str(
            r#"{"shop_id":954889,"shop_domain":"a.myshopify.com","customer":{"email":"x@example.com"},"orders_to_redact":[9007199254740993]}"#,
        )
        .unwrap();
        assert_eq!(p.customer.id, None);
        assert_eq!(p.orders_to_redact, [9007199254740993]);
    }
}
