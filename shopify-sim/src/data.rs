//! The shop's business data as the Admin API sees it: customers, orders (line items,
//! fulfillments), products with variants and inventory levels per location, metafields,
//! automatic app discounts — plus the logs tests read to prove effects ("applied exactly once").
//!
//! Entities are stored the way they are seeded: REST-style snake_case fields and numeric ids
//! (as in Shopify's webhook payloads, reference `shopify-samples/webhooks`), so one JSON fixture
//! can both seed the simulator and resemble what Keel receives in webhooks. The GraphQL layer
//! (`admin::executor`) maps them to the 2026-10 GraphQL names and GIDs.
//!
//! Metafields live in one map keyed by (owner GID, namespace, key) instead of on each owner, so
//! `metafieldsSet` can validate and apply a batch spanning several owners atomically.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A customer (REST field names; `orders_count` / `total_spent` are derived from the seeded
/// orders when absent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub id: u64,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default, deserialize_with = "tags")]
    pub tags: Vec<String>,
    #[serde(default, alias = "number_of_orders")]
    pub orders_count: Option<u64>,
    /// Decimal string, e.g. `"5230.50"`.
    #[serde(default, alias = "amount_spent")]
    pub total_spent: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub email_marketing_consent: Option<EmailMarketingConsent>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
    /// Only read when seeding; moved into the shop's metafield store.
    #[serde(default, skip_serializing)]
    pub metafields: Vec<MetafieldSeed>,
}

/// REST `email_marketing_consent`: `state` is `subscribed`, `not_subscribed`, `pending`, …
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailMarketingConsent {
    pub state: String,
    #[serde(default)]
    pub opt_in_level: Option<String>,
    #[serde(default)]
    pub consent_updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: u64,
    /// `#1001`.
    pub name: String,
    #[serde(default)]
    pub customer_id: Option<u64>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub processed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub cancelled_at: Option<DateTime<Utc>>,
    /// REST `financial_status`: `paid`, `pending`, `refunded`, …
    #[serde(default)]
    pub financial_status: Option<String>,
    /// REST `fulfillment_status`: `null`, `partial`, `fulfilled`, `restocked`; derived from the
    /// fulfillments when absent.
    #[serde(default)]
    pub fulfillment_status: Option<String>,
    /// Decimal string.
    #[serde(default = "zero_amount")]
    pub total_price: String,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default, deserialize_with = "tags")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub line_items: Vec<LineItem>,
    #[serde(default)]
    pub fulfillments: Vec<Fulfillment>,
    #[serde(default, skip_serializing)]
    pub metafields: Vec<MetafieldSeed>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineItem {
    pub id: u64,
    pub title: String,
    #[serde(default = "one")]
    pub quantity: u64,
    #[serde(default)]
    pub sku: Option<String>,
    #[serde(default)]
    pub variant_id: Option<u64>,
    #[serde(default)]
    pub price: Option<String>,
}

/// REST fulfillment plus the delivery timestamps GraphQL exposes (`in_transit_at`,
/// `delivered_at`, `estimated_delivery_at`), which REST only implies through events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fulfillment {
    pub id: u64,
    /// REST `status`: `success`, `cancelled`, `error`, `failure`, `open`, `pending`.
    #[serde(default = "success")]
    pub status: String,
    /// REST `shipment_status`: `label_printed`, `in_transit`, `out_for_delivery`,
    /// `attempted_delivery`, `delivered`, `failure`, …
    #[serde(default)]
    pub shipment_status: Option<String>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub in_transit_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub delivered_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub estimated_delivery_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub tracking_company: Option<String>,
    #[serde(default)]
    pub tracking_number: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub id: u64,
    pub title: String,
    #[serde(default, deserialize_with = "tags")]
    pub tags: Vec<String>,
    /// A gift card product (GraphQL `Product.isGiftCard`): never discounted, never shipped.
    #[serde(default)]
    pub gift_card: bool,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub variants: Vec<Variant>,
    #[serde(default, skip_serializing)]
    pub metafields: Vec<MetafieldSeed>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    pub id: u64,
    #[serde(default = "default_title")]
    pub title: String,
    #[serde(default)]
    pub sku: Option<String>,
    #[serde(default)]
    pub price: Option<String>,
    /// Defaults to the variant id (one inventory item per variant, as on Shopify).
    #[serde(default)]
    pub inventory_item_id: Option<u64>,
    /// Used only when no inventory level is seeded for the variant's item.
    #[serde(default)]
    pub inventory_quantity: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    pub id: u64,
    pub name: String,
}

/// REST `inventory_levels/*` shape: the `available` quantity of an item at a location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryLevel {
    pub inventory_item_id: u64,
    pub location_id: u64,
    pub available: i64,
    #[serde(default)]
    pub on_hand: Option<i64>,
}

/// A metafield as seeded on an entity (namespace may be `$app` / `$app:sub`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetafieldSeed {
    pub namespace: String,
    pub key: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

/// A stored metafield.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metafield {
    pub id: u64,
    /// GID of the owner, e.g. `gid://shopify/Customer/1`.
    pub owner_id: String,
    /// Resolved namespace (`app--{client_id}` for `$app`).
    pub namespace: String,
    pub key: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Metafield {
    /// Opaque digest for `compareDigest` optimistic concurrency: changes whenever the value or
    /// type changes. (Shopify's digest is opaque too; clients only echo it back.)
    pub fn compare_digest(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.kind.as_bytes());
        h.update([0]);
        h.update(self.value.as_bytes());
        hex::encode(h.finalize())
    }

    pub fn gid(&self) -> String {
        format!("gid://shopify/Metafield/{}", self.id)
    }

    /// GraphQL `ownerType`, from the owner GID's type segment.
    pub fn owner_type(&self) -> &'static str {
        match gid_type(&self.owner_id) {
            Some("Customer") => "CUSTOMER",
            Some("Order") => "ORDER",
            Some("Product") => "PRODUCT",
            Some("ProductVariant") => "PRODUCTVARIANT",
            Some("DiscountAutomaticNode") => "DISCOUNT",
            Some("Shop") => "SHOP",
            _ => "UNKNOWN",
        }
    }
}

/// `combinesWith` of a discount.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CombinesWith {
    #[serde(default)]
    pub order_discounts: bool,
    #[serde(default)]
    pub product_discounts: bool,
    #[serde(default)]
    pub shipping_discounts: bool,
}

/// An automatic app discount (`DiscountAutomaticApp` behind `DiscountAutomaticNode/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Discount {
    pub id: u64,
    pub title: String,
    pub function_handle: String,
    /// `ORDER`, `PRODUCT`, `SHIPPING`.
    #[serde(default)]
    pub discount_classes: Vec<String>,
    #[serde(default)]
    pub combines_with: CombinesWith,
    pub starts_at: DateTime<Utc>,
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing)]
    pub metafields: Vec<MetafieldSeed>,
}

impl Discount {
    pub fn gid(&self) -> String {
        format!("gid://shopify/DiscountAutomaticNode/{}", self.id)
    }

    /// `DiscountStatus`: derived from the dates, as Shopify does.
    pub fn status(&self, now: DateTime<Utc>) -> &'static str {
        if self.ends_at.is_some_and(|e| e <= now) {
            "EXPIRED"
        } else if self.starts_at > now {
            "SCHEDULED"
        } else {
            "ACTIVE"
        }
    }
}

/// One accepted mutation (a root mutation field that applied without `userErrors`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MutationRecord {
    /// 1-based, per shop.
    pub seq: u64,
    pub at: DateTime<Utc>,
    /// Root field name, e.g. `tagsAdd`.
    pub mutation: String,
    /// Arguments after variable substitution.
    pub arguments: Value,
    /// The `@idempotent(key:)` it ran under, if any.
    pub idempotency_key: Option<String>,
}

/// One accepted `flowTriggerReceive`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowTriggerRecord {
    pub at: DateTime<Utc>,
    pub shop: String,
    pub handle: String,
    pub payload: Value,
    /// Size of the payload as compact JSON, the number Flow's 50,000-byte limit applies to.
    pub payload_bytes: usize,
}

/// Everything one shop holds.
#[derive(Debug, Clone, Default)]
pub(crate) struct ShopData {
    pub currency: String,
    pub customers: BTreeMap<u64, Customer>,
    pub orders: BTreeMap<u64, Order>,
    pub products: BTreeMap<u64, Product>,
    pub locations: BTreeMap<u64, Location>,
    /// Keyed by (inventory item id, location id).
    pub inventory: BTreeMap<(u64, u64), InventoryLevel>,
    pub discounts: BTreeMap<u64, Discount>,
    /// Keyed by (owner GID, resolved namespace, key).
    pub metafields: BTreeMap<(String, String, String), Metafield>,
    /// Flow trigger handles deployed for the app; empty = accept any handle.
    pub flow_trigger_handles: Vec<String>,
    /// Function handles deployed for the app; empty = accept any handle.
    pub function_handles: Vec<String>,
    pub mutation_log: Vec<MutationRecord>,
    pub flow_triggers: Vec<FlowTriggerRecord>,
    next_id: u64,
}

impl ShopData {
    pub fn new() -> Self {
        ShopData {
            currency: "USD".to_owned(),
            // Far above hand-written fixture ids, so generated ids never collide with them.
            next_id: 900_000_000_000,
            ..ShopData::default()
        }
    }

    /// A fresh id for a created entity (metafield, discount).
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn log_mutation(
        &mut self,
        mutation: &str,
        arguments: Value,
        idempotency_key: Option<String>,
        now: DateTime<Utc>,
    ) {
        let seq = self.mutation_log.len() as u64 + 1;
        self.mutation_log.push(MutationRecord {
            seq,
            at: now,
            mutation: mutation.to_owned(),
            arguments,
            idempotency_key,
        });
    }

    /// Orders of a customer, for derived `numberOfOrders` / `amountSpent`.
    pub fn orders_of(&self, customer_id: u64) -> impl Iterator<Item = &Order> {
        self.orders
            .values()
            .filter(move |o| o.customer_id == Some(customer_id) && o.cancelled_at.is_none())
    }

    pub fn number_of_orders(&self, c: &Customer) -> u64 {
        c.orders_count
            .unwrap_or_else(|| self.orders_of(c.id).count() as u64)
    }

    pub fn amount_spent(&self, c: &Customer) -> String {
        if let Some(s) = &c.total_spent {
            return s.clone();
        }
        // Sum in cents to avoid float drift; amounts are decimal strings.
        let cents: i64 = self
            .orders_of(c.id)
            .map(|o| decimal_cents(&o.total_price))
            .sum();
        format_cents(cents)
    }

    pub fn currency_of(&self, explicit: Option<&String>) -> String {
        explicit.cloned().unwrap_or_else(|| self.currency.clone())
    }

    /// The variant with this id, with its product.
    pub fn variant(&self, id: u64) -> Option<(&Product, &Variant)> {
        self.products
            .values()
            .find_map(|p| p.variants.iter().find(|v| v.id == id).map(|v| (p, v)))
    }

    pub fn inventory_levels(&self, item_id: u64) -> Vec<&InventoryLevel> {
        self.inventory
            .range((item_id, 0)..=(item_id, u64::MAX))
            .map(|(_, l)| l)
            .collect()
    }

    /// Sum of `available` over locations, else the seeded `inventory_quantity`.
    pub fn inventory_quantity(&self, v: &Variant) -> i64 {
        let levels = self.inventory_levels(inventory_item_id(v));
        if levels.is_empty() {
            v.inventory_quantity.unwrap_or(0)
        } else {
            levels.iter().map(|l| l.available).sum()
        }
    }

    pub fn metafield(&self, owner: &str, namespace: &str, key: &str) -> Option<&Metafield> {
        self.metafields
            .get(&(owner.to_owned(), namespace.to_owned(), key.to_owned()))
    }

    pub fn metafields_of(&self, owner: &str) -> Vec<&Metafield> {
        self.metafields
            .values()
            .filter(|m| m.owner_id == owner)
            .collect()
    }

    /// Whether a GID names an entity that exists in this shop.
    pub fn owner_exists(&self, gid: &str) -> bool {
        let Some((ty, id)) = parse_gid(gid) else {
            return false;
        };
        match ty {
            "Customer" => self.customers.contains_key(&id),
            "Order" => self.orders.contains_key(&id),
            "Product" => self.products.contains_key(&id),
            "ProductVariant" => self.variant(id).is_some(),
            "DiscountAutomaticNode" => self.discounts.contains_key(&id),
            _ => false,
        }
    }

    /// Inserts or replaces a metafield, keeping its id and `created_at` on replace.
    pub fn put_metafield(
        &mut self,
        owner: String,
        namespace: String,
        key: String,
        kind: String,
        value: String,
        now: DateTime<Utc>,
    ) -> Metafield {
        let k = (owner.clone(), namespace.clone(), key.clone());
        let (id, created_at) = match self.metafields.get(&k) {
            Some(m) => (m.id, m.created_at),
            None => (self.next_id(), now),
        };
        let m = Metafield {
            id,
            owner_id: owner,
            namespace,
            key,
            kind,
            value,
            created_at,
            updated_at: now,
        };
        self.metafields.insert(k, m.clone());
        m
    }
}

pub fn inventory_item_id(v: &Variant) -> u64 {
    v.inventory_item_id.unwrap_or(v.id)
}

/// `gid://shopify/{Type}/{id}` → (Type, id).
pub fn parse_gid(gid: &str) -> Option<(&str, u64)> {
    let rest = gid.strip_prefix("gid://shopify/")?;
    let (ty, id) = rest.split_once('/')?;
    // Some GIDs carry query parameters (`?inventory_item_id=…`); the id ends before them.
    let id = id.split('?').next()?;
    Some((ty, id.parse().ok()?))
}

pub fn gid_type(gid: &str) -> Option<&str> {
    parse_gid(gid).map(|(t, _)| t)
}

pub fn gid(ty: &str, id: u64) -> String {
    format!("gid://shopify/{ty}/{id}")
}

/// Resolves the `$app` shorthand (reference app-platform.md §7.5): `$app` → `app--{client_id}`,
/// `$app:foo` → `app--{client_id}--foo`; other namespaces are returned as they are.
pub fn resolve_namespace(namespace: &str, client_id: &str) -> String {
    match namespace.strip_prefix("$app") {
        Some("") => format!("app--{client_id}"),
        Some(sub) => match sub.strip_prefix(':') {
            Some(sub) => format!("app--{client_id}--{sub}"),
            None => namespace.to_owned(),
        },
        None => namespace.to_owned(),
    }
}

/// Adds tags not present yet (case-insensitively, as Shopify compares tags); returns whether
/// anything changed.
pub fn add_tags(tags: &mut Vec<String>, new: &[String]) -> bool {
    let mut changed = false;
    for t in new {
        if !tags.iter().any(|x| x.eq_ignore_ascii_case(t)) {
            tags.push(t.clone());
            changed = true;
        }
    }
    changed
}

pub fn remove_tags(tags: &mut Vec<String>, gone: &[String]) -> bool {
    let before = tags.len();
    tags.retain(|x| !gone.iter().any(|g| g.eq_ignore_ascii_case(x)));
    before != tags.len()
}

/// Splits Shopify's comma-joined tag strings (`"VIP, Gold"`), trimming and dropping blanks.
pub fn split_tags<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    items
        .into_iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Tags as a JSON list or as REST's comma-joined string.
fn tags<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Tags {
        List(Vec<String>),
        Joined(String),
        Null(()),
    }
    Ok(match Tags::deserialize(d)? {
        Tags::List(v) => split_tags(v.iter().map(String::as_str)),
        Tags::Joined(s) => split_tags([s.as_str()]),
        Tags::Null(()) => Vec::new(),
    })
}

/// `"12.5"` → 1250. Unparseable amounts count as zero (fixtures are ours; this is a sum).
pub fn decimal_cents(s: &str) -> i64 {
    let (neg, s) = match s.trim().strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.trim()),
    };
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let whole: i64 = whole.parse().unwrap_or(0);
    let frac: String = frac.chars().chain("00".chars()).take(2).collect();
    let cents = whole * 100 + frac.parse::<i64>().unwrap_or(0);
    if neg {
        -cents
    } else {
        cents
    }
}

pub fn format_cents(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.abs();
    format!("{sign}{}.{:02}", c / 100, c % 100)
}

/// Shopify's `Decimal` strings drop trailing zeros after one decimal (`"5230.5"`, `"10.0"`).
pub fn shopify_decimal(s: &str) -> String {
    let formatted = format_cents(decimal_cents(s));
    match formatted.strip_suffix('0') {
        Some(t) if !t.ends_with('.') => t.to_owned(),
        _ => formatted,
    }
}

fn zero_amount() -> String {
    "0.00".to_owned()
}
fn one() -> u64 {
    1
}
fn success() -> String {
    "success".to_owned()
}
fn default_title() -> String {
    "Default Title".to_owned()
}
