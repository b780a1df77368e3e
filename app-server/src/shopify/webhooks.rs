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

/// Checks that `body` is JSON and finds the customer it is about, for any topic (used at ingest
/// so redaction can find it), in one pass.
///
/// Streaming into a probe that only keeps `id` and `email`, rather than building a
/// `serde_json::Value`: an order payload is kilobytes of nested objects, and the acknowledgement
/// path should not allocate a tree it throws away. Everything else is validated and skipped.
pub fn payload_customer(topic: &str, body: &[u8]) -> Result<PayloadCustomer, serde_json::Error> {
    let probe: probe::Payload = serde_json::from_slice(body)?;
    let block = match topic {
        "customers/data_request" | "customers/redact" => probe.customer,
        t if t.starts_with("customers/") => Some(probe.top),
        t if t.starts_with("orders/") => probe.customer,
        _ => None,
    };
    Ok(block
        .map(|b| PayloadCustomer {
            id: b.id,
            email: b.email,
            phone: None,
        })
        .unwrap_or_default())
}

/// Lenient shapes for [`payload_customer`]: a field of an unexpected type is "absent", never an
/// error, because the payload is already authenticated and only its JSON syntax is checked here.
mod probe {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use serde::Deserialize;
    use std::fmt;

    /// An object's customer fields (`customers/*` payloads are the customer), and its
    /// `customer` member (the other topics).
    #[derive(Default)]
    pub(super) struct Payload {
        pub top: Block,
        pub customer: Option<Block>,
    }

    #[derive(Default)]
    pub(super) struct Block {
        pub id: Option<i64>,
        pub email: Option<String>,
    }

    /// Any JSON value, kept only as far as the probe needs it.
    enum Node {
        Int(i64),
        Text(String),
        Object(Payload),
        Other,
    }

    impl<'de> Deserialize<'de> for Payload {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            // A payload that is not an object has no customer; it is still validated.
            match Node::deserialize(d)? {
                Node::Object(payload) => Ok(payload),
                _ => Ok(Payload::default()),
            }
        }
    }

    impl<'de> Deserialize<'de> for Node {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(NodeVisitor)
        }
    }

    struct NodeVisitor;

    impl<'de> Visitor<'de> for NodeVisitor {
        type Value = Node;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON value")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
            let mut out = Payload::default();
            while let Some(key) = map.next_key::<Key>()? {
                match key {
                    Key::Id => {
                        if let Node::Int(id) = map.next_value()? {
                            out.top.id = Some(id);
                        }
                    }
                    Key::Email => {
                        if let Node::Text(email) = map.next_value()? {
                            out.top.email = Some(email);
                        }
                    }
                    Key::Customer => {
                        if let Node::Object(customer) = map.next_value()? {
                            out.customer = Some(customer.top);
                        }
                    }
                    Key::Other => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(Node::Object(out))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Node, A::Error> {
            IgnoredAny.visit_seq(seq).map(|_| Node::Other)
        }
        fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
            Ok(Node::Int(v))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
            Ok(i64::try_from(v).map_or(Node::Other, Node::Int))
        }
        fn visit_str<E>(self, v: &str) -> Result<Node, E> {
            Ok(Node::Text(v.to_owned()))
        }
        fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
            Ok(Node::Other)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
            Ok(Node::Other)
        }
        fn visit_unit<E>(self) -> Result<Node, E> {
            Ok(Node::Other)
        }
    }

    /// A member name, matched without allocating it.
    enum Key {
        Id,
        Email,
        Customer,
        Other,
    }

    impl<'de> Deserialize<'de> for Key {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = Key;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a member name")
                }
                fn visit_str<E>(self, v: &str) -> Result<Key, E> {
                    Ok(match v {
                        "id" => Key::Id,
                        "email" => Key::Email,
                        "customer" => Key::Customer,
                        _ => Key::Other,
                    })
                }
            }
            d.deserialize_identifier(V)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn customer(topic: &str, body: &str) -> PayloadCustomer {
        payload_customer(topic, body.as_bytes()).unwrap()
    }

    #[test]
    fn payload_customer_is_found_where_each_topic_keeps_it() {
        let redact = r#"{"shop_id":1,"shop_domain":"a.myshopify.com","customer":{"id":7,"email":"a@b.c","phone":"1"},"orders_to_redact":[1,2]}"#;
        assert_eq!(customer("customers/redact", redact).id, Some(7));
        assert_eq!(
            customer("customers/data_request", redact).email.as_deref(),
            Some("a@b.c")
        );
        let order = r#"{"id":99,"email":"order@x.y","line_items":[{"id":1,"customer":{"id":3}}],"customer":{"id":8,"email":"c@d.e","default_address":{"id":5}}}"#;
        let c = customer("orders/create", order);
        assert_eq!((c.id, c.email.as_deref()), (Some(8), Some("c@d.e")));
        let c = customer("customers/update", r#"{"id":12,"email":"top@x.y"}"#);
        assert_eq!((c.id, c.email.as_deref()), (Some(12), Some("top@x.y")));
        // The top-level id of an app payload is the shop's or the app's, not a customer.
        assert_eq!(
            customer("app/uninstalled", r#"{"id":1,"email":"shop@x.y"}"#),
            PayloadCustomer::default()
        );
    }

    #[test]
    fn payload_customer_treats_odd_shapes_as_absent_and_escapes_as_text() {
        assert_eq!(
            customer("orders/create", r#"{"customer":null}"#),
            PayloadCustomer::default()
        );
        assert_eq!(
            customer("orders/create", "[1,2]"),
            PayloadCustomer::default()
        );
        assert_eq!(customer("orders/create", "3"), PayloadCustomer::default());
        let c = customer(
            "customers/redact",
            r#"{"customer":{"id":"gid://shopify/Customer/1","email":"a\u0040b.c","ema\u0069l":"x@y.z"}}"#,
        );
        assert_eq!(c.id, None);
        assert_eq!(c.email.as_deref(), Some("x@y.z"));
    }

    #[test]
    fn payload_customer_rejects_what_is_not_json() {
        for bad in [
            "",
            "{",
            r#"{"customer":{"id":1}"#,
            "{\"a\":1}x",
            "nul",
            r#"{"id":01}"#,
        ] {
            assert!(
                payload_customer("orders/create", bad.as_bytes()).is_err(),
                "{bad:?}"
            );
        }
    }

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
