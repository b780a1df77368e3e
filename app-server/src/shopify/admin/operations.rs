//! The Admin API operations Keel uses, typed: each sends one of the documents in
//! `operations/*.graphql` and parses Shopify's answer into Keel's types. Money and counts that
//! Shopify sends as strings (`Decimal`, `UnsignedInt64`) are parsed here, never assumed numeric.

use super::{AdminClient, AdminError, Request, UserError};
use crate::shopify::{Gid, ShopDomain};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::str::FromStr;

/// Shopify's limit on a `flowTriggerReceive` payload (flow.md §5.2).
pub const FLOW_PAYLOAD_LIMIT: usize = 50_000;
/// Shopify's limit on metafields per `metafieldsSet` call.
pub const METAFIELDS_PER_CALL: usize = 25;
/// Page size for reconciliation reads.
pub const PAGE_SIZE: u32 = 50;

const SHOP: &str = include_str!("operations/shop.graphql");
const CUSTOMER: &str = include_str!("operations/customer.graphql");
const ORDER: &str = include_str!("operations/order.graphql");
const VARIANT_INVENTORY: &str = include_str!("operations/variant_inventory.graphql");
const ORDERS_PAGE: &str = include_str!("operations/orders_page.graphql");
const CUSTOMERS_PAGE: &str = include_str!("operations/customers_page.graphql");
const VARIANTS_PAGE: &str = include_str!("operations/variants_page.graphql");
const TAGS_ADD: &str = include_str!("operations/tags_add.graphql");
const TAGS_REMOVE: &str = include_str!("operations/tags_remove.graphql");
const METAFIELDS_SET: &str = include_str!("operations/metafields_set.graphql");
const FLOW_TRIGGER_RECEIVE: &str = include_str!("operations/flow_trigger_receive.graphql");
const DISCOUNT_CREATE: &str = include_str!("operations/discount_automatic_app_create.graphql");
const DISCOUNT_UPDATE: &str = include_str!("operations/discount_automatic_app_update.graphql");
const DISCOUNT_NODES: &str = include_str!("operations/discount_nodes.graphql");

/// An amount of money, parsed from Shopify's decimal string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Money {
    pub amount: Decimal,
    pub currency_code: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MoneyWire {
    amount: String,
    currency_code: String,
}

impl TryFrom<MoneyWire> for Money {
    type Error = AdminError;
    fn try_from(w: MoneyWire) -> Result<Self, AdminError> {
        Ok(Money {
            amount: Decimal::from_str(&w.amount).map_err(|_| {
                AdminError::Malformed(format!("amount {:?} is not a decimal", w.amount))
            })?,
            currency_code: w.currency_code,
        })
    }
}

fn parse_count(raw: &str, what: &str) -> Result<u64, AdminError> {
    raw.parse()
        .map_err(|_| AdminError::Malformed(format!("{what} {raw:?} is not a count")))
}

fn decode<T: serde::de::DeserializeOwned>(data: Value, what: &str) -> Result<T, AdminError> {
    serde_json::from_value(data).map_err(|e| AdminError::Malformed(format!("{what}: {e}")))
}

fn check_user_errors(errors: Vec<UserError>) -> Result<(), AdminError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AdminError::UserErrors(errors))
    }
}

#[derive(Deserialize)]
struct MetafieldValue {
    value: String,
}

// ---- shop ----------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShopInfo {
    pub id: Gid,
    pub name: String,
    pub myshopify_domain: String,
    pub currency_code: String,
}

// ---- customers -----------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub id: Gid,
    pub tags: Vec<String>,
    pub number_of_orders: u64,
    pub amount_spent: Money,
    pub email: Option<String>,
    pub marketing_state: Option<String>,
    pub vip_tier: Option<String>,
    pub suppressed_until: Option<String>,
    pub open_issues: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CustomerWire {
    id: Gid,
    #[serde(default)]
    tags: Vec<String>,
    number_of_orders: String,
    amount_spent: MoneyWire,
    default_email_address: Option<EmailWire>,
    vip_tier: Option<MetafieldValue>,
    suppressed_until: Option<MetafieldValue>,
    open_issues: Option<MetafieldValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EmailWire {
    email_address: Option<String>,
    marketing_state: Option<String>,
}

impl TryFrom<CustomerWire> for Customer {
    type Error = AdminError;
    fn try_from(w: CustomerWire) -> Result<Self, AdminError> {
        Ok(Customer {
            number_of_orders: parse_count(&w.number_of_orders, "numberOfOrders")?,
            amount_spent: w.amount_spent.try_into()?,
            email: w
                .default_email_address
                .as_ref()
                .and_then(|e| e.email_address.clone()),
            marketing_state: w.default_email_address.and_then(|e| e.marketing_state),
            vip_tier: w.vip_tier.map(|m| m.value),
            suppressed_until: w.suppressed_until.map(|m| m.value),
            open_issues: w.open_issues.map(|m| m.value),
            id: w.id,
            tags: w.tags,
        })
    }
}

/// A customer in a paginated read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerSummary {
    pub id: Gid,
    pub tags: Vec<String>,
    pub number_of_orders: u64,
    pub amount_spent: Money,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CustomerSummaryWire {
    id: Gid,
    #[serde(default)]
    tags: Vec<String>,
    number_of_orders: String,
    amount_spent: MoneyWire,
}

// ---- orders --------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fulfillment {
    pub id: Gid,
    #[serde(default)]
    pub status: Option<String>,
    /// Open set (`DELIVERED`, `IN_TRANSIT`, `DELAYED`, …): kept as Shopify's string.
    #[serde(default)]
    pub display_status: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub in_transit_at: Option<String>,
    #[serde(default)]
    pub delivered_at: Option<String>,
    #[serde(default)]
    pub estimated_delivery_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: Gid,
    pub name: String,
    pub created_at: String,
    pub processed_at: Option<String>,
    pub cancelled_at: Option<String>,
    pub display_fulfillment_status: String,
    pub display_financial_status: Option<String>,
    pub customer: Option<Gid>,
    pub total: Money,
    pub fulfillments: Vec<Fulfillment>,
    pub delay: Option<String>,
}

#[derive(Deserialize)]
struct IdOnly {
    id: Gid,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShopMoneyWire {
    shop_money: MoneyWire,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderWire {
    id: Gid,
    name: String,
    created_at: String,
    processed_at: Option<String>,
    cancelled_at: Option<String>,
    display_fulfillment_status: String,
    display_financial_status: Option<String>,
    customer: Option<IdOnly>,
    total_price_set: ShopMoneyWire,
    #[serde(default)]
    fulfillments: Vec<Fulfillment>,
    delay: Option<MetafieldValue>,
}

/// An order in a paginated read.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderSummary {
    pub id: Gid,
    pub name: String,
    pub created_at: String,
    pub display_fulfillment_status: String,
    #[serde(default, deserialize_with = "customer_id")]
    pub customer: Option<Gid>,
    #[serde(default)]
    pub fulfillments: Vec<Fulfillment>,
}

fn customer_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Gid>, D::Error> {
    Ok(Option::<IdOnly>::deserialize(d)?.map(|c| c.id))
}

// ---- inventory -----------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryLevel {
    pub location: Gid,
    pub location_name: String,
    pub available: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantInventory {
    pub id: Gid,
    pub sku: Option<String>,
    pub title: String,
    pub product: Gid,
    pub product_title: String,
    pub inventory_quantity: Option<i64>,
    pub levels: Vec<InventoryLevel>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VariantWire {
    id: Gid,
    sku: Option<String>,
    title: String,
    inventory_quantity: Option<i64>,
    product: ProductRef,
    inventory_item: Option<InventoryItemWire>,
}

#[derive(Deserialize)]
struct ProductRef {
    id: Gid,
    title: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InventoryItemWire {
    inventory_levels: Connection<LevelWire>,
}

#[derive(Deserialize)]
struct LevelWire {
    location: LocationWire,
    quantities: Vec<QuantityWire>,
}

#[derive(Deserialize)]
struct LocationWire {
    id: Gid,
    name: String,
}

#[derive(Deserialize)]
struct QuantityWire {
    name: String,
    quantity: i64,
}

/// A variant in a paginated read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantSummary {
    pub id: Gid,
    pub sku: Option<String>,
    pub inventory_quantity: Option<i64>,
    pub product: Gid,
    pub product_title: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VariantSummaryWire {
    id: Gid,
    sku: Option<String>,
    inventory_quantity: Option<i64>,
    product: ProductRef,
}

// ---- connections ---------------------------------------------------------------------------

#[derive(Deserialize)]
struct Connection<T> {
    edges: Vec<Edge<T>>,
    #[serde(rename = "pageInfo")]
    page_info: Option<PageInfo>,
}

#[derive(Deserialize)]
struct Edge<T> {
    node: T,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

/// One page of a paginated read; `next` is the cursor of the following page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

impl<T> Connection<T> {
    fn into_page<U>(self, f: impl Fn(T) -> Result<U, AdminError>) -> Result<Page<U>, AdminError> {
        let next = self
            .page_info
            .filter(|p| p.has_next_page)
            .and_then(|p| p.end_cursor);
        Ok(Page {
            items: self
                .edges
                .into_iter()
                .map(|e| f(e.node))
                .collect::<Result<_, _>>()?,
            next,
        })
    }
}

// ---- mutations -----------------------------------------------------------------------------

/// One metafield to write (`MetafieldsSetInput`). `namespace: None` means the app's own (`$app`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetafieldInput {
    pub owner_id: Gid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub key: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

/// `DiscountAutomaticAppInput`: the VIP discount, driven by the Function with `function_handle`
/// and configured by a JSON metafield on the discount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AutomaticAppDiscount {
    pub title: String,
    pub function_handle: String,
    pub discount_classes: Vec<String>,
    pub combines_with: CombinesWith,
    pub starts_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
    pub metafields: Vec<DiscountMetafield>,
}

/// The fields of `DiscountAutomaticAppInput` an update changes; `None` leaves a field as it is
/// on Shopify (a title the merchant edited, the original start date).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AutomaticAppDiscountUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_handle: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discount_classes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub combines_with: Option<CombinesWith>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
    /// Set (created or replaced) by key; metafields not listed are left alone.
    pub metafields: Vec<DiscountMetafield>,
}

impl From<AutomaticAppDiscount> for AutomaticAppDiscountUpdate {
    /// Every field of a full input.
    fn from(d: AutomaticAppDiscount) -> Self {
        AutomaticAppDiscountUpdate {
            title: Some(d.title),
            function_handle: Some(d.function_handle),
            discount_classes: Some(d.discount_classes),
            combines_with: Some(d.combines_with),
            starts_at: Some(d.starts_at),
            ends_at: d.ends_at,
            metafields: d.metafields,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CombinesWith {
    pub order_discounts: bool,
    pub product_discounts: bool,
    pub shipping_discounts: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiscountMetafield {
    pub namespace: String,
    pub key: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedDiscount {
    pub discount_id: Gid,
    pub title: String,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppDiscount {
    pub id: Gid,
    pub title: String,
    pub status: String,
    pub discount_classes: Vec<String>,
    pub config: Option<String>,
}

/// A stable `@idempotent` key for one mutation of one job: the same on every retry of the job.
pub fn idempotency_key(job_id: i64, step: &str) -> String {
    format!("keel-job-{job_id}-{step}")
}

impl AdminClient {
    async fn run(
        &self,
        shop: &ShopDomain,
        name: &'static str,
        document: &str,
        variables: Value,
        cost: f64,
    ) -> Result<Value, AdminError> {
        self.execute(
            shop,
            &Request {
                name,
                document: document.to_owned(),
                variables,
                estimated_cost: cost,
            },
        )
        .await
    }

    pub async fn shop_info(&self, shop: &ShopDomain) -> Result<ShopInfo, AdminError> {
        let mut data = self.run(shop, "Shop", SHOP, json!({}), 1.0).await?;
        decode(data["shop"].take(), "shop")
    }

    /// `None` when Shopify knows no such customer.
    pub async fn customer(
        &self,
        shop: &ShopDomain,
        id: &Gid,
    ) -> Result<Option<Customer>, AdminError> {
        let mut data = self
            .run(shop, "Customer", CUSTOMER, json!({ "id": id }), 6.0)
            .await?;
        let wire: Option<CustomerWire> = decode(data["customer"].take(), "customer")?;
        wire.map(Customer::try_from).transpose()
    }

    pub async fn order(&self, shop: &ShopDomain, id: &Gid) -> Result<Option<Order>, AdminError> {
        let mut data = self
            .run(shop, "Order", ORDER, json!({ "id": id }), 15.0)
            .await?;
        let Some(w): Option<OrderWire> = decode(data["order"].take(), "order")? else {
            return Ok(None);
        };
        Ok(Some(Order {
            total: w.total_price_set.shop_money.try_into()?,
            customer: w.customer.map(|c| c.id),
            delay: w.delay.map(|m| m.value),
            id: w.id,
            name: w.name,
            created_at: w.created_at,
            processed_at: w.processed_at,
            cancelled_at: w.cancelled_at,
            display_fulfillment_status: w.display_fulfillment_status,
            display_financial_status: w.display_financial_status,
            fulfillments: w.fulfillments,
        }))
    }

    pub async fn variant_inventory(
        &self,
        shop: &ShopDomain,
        id: &Gid,
    ) -> Result<Option<VariantInventory>, AdminError> {
        let mut data = self
            .run(
                shop,
                "VariantInventory",
                VARIANT_INVENTORY,
                json!({ "id": id }),
                105.0,
            )
            .await?;
        let Some(w): Option<VariantWire> = decode(data["productVariant"].take(), "productVariant")?
        else {
            return Ok(None);
        };
        let levels = match w.inventory_item {
            None => Vec::new(),
            Some(item) => {
                item.inventory_levels
                    .into_page(|l| {
                        Ok(InventoryLevel {
                            available: l
                                .quantities
                                .iter()
                                .find(|q| q.name == "available")
                                .map_or(0, |q| q.quantity),
                            location: l.location.id,
                            location_name: l.location.name,
                        })
                    })?
                    .items
            }
        };
        Ok(Some(VariantInventory {
            id: w.id,
            sku: w.sku,
            title: w.title,
            product: w.product.id,
            product_title: w.product.title,
            inventory_quantity: w.inventory_quantity,
            levels,
        }))
    }

    /// One page of orders matching Shopify's search `query`, oldest first.
    pub async fn orders_page(
        &self,
        shop: &ShopDomain,
        query: &str,
        after: Option<&str>,
    ) -> Result<Page<OrderSummary>, AdminError> {
        let vars = json!({ "first": PAGE_SIZE, "after": after, "query": query });
        let mut data = self
            .run(
                shop,
                "OrdersPage",
                ORDERS_PAGE,
                vars,
                2.0 + PAGE_SIZE as f64 * 13.0,
            )
            .await?;
        let conn: Connection<OrderSummary> = decode(data["orders"].take(), "orders")?;
        conn.into_page(Ok)
    }

    pub async fn customers_page(
        &self,
        shop: &ShopDomain,
        query: &str,
        after: Option<&str>,
    ) -> Result<Page<CustomerSummary>, AdminError> {
        let vars = json!({ "first": PAGE_SIZE, "after": after, "query": query });
        let mut data = self
            .run(
                shop,
                "CustomersPage",
                CUSTOMERS_PAGE,
                vars,
                2.0 + PAGE_SIZE as f64 * 2.0,
            )
            .await?;
        let conn: Connection<CustomerSummaryWire> = decode(data["customers"].take(), "customers")?;
        conn.into_page(|w| {
            Ok(CustomerSummary {
                number_of_orders: parse_count(&w.number_of_orders, "numberOfOrders")?,
                amount_spent: w.amount_spent.try_into()?,
                id: w.id,
                tags: w.tags,
            })
        })
    }

    pub async fn variants_page(
        &self,
        shop: &ShopDomain,
        query: &str,
        after: Option<&str>,
    ) -> Result<Page<VariantSummary>, AdminError> {
        let vars = json!({ "first": PAGE_SIZE, "after": after, "query": query });
        let mut data = self
            .run(
                shop,
                "VariantsPage",
                VARIANTS_PAGE,
                vars,
                2.0 + PAGE_SIZE as f64 * 2.0,
            )
            .await?;
        let conn: Connection<VariantSummaryWire> =
            decode(data["productVariants"].take(), "productVariants")?;
        conn.into_page(|w| {
            Ok(VariantSummary {
                id: w.id,
                sku: w.sku,
                inventory_quantity: w.inventory_quantity,
                product: w.product.id,
                product_title: w.product.title,
            })
        })
    }

    /// Every page of a paginated read, following cursors.
    pub async fn all_pages<T, F, Fut>(&self, mut fetch: F) -> Result<Vec<T>, AdminError>
    where
        F: FnMut(Option<String>) -> Fut,
        Fut: std::future::Future<Output = Result<Page<T>, AdminError>>,
    {
        let mut items = Vec::new();
        let mut cursor = None;
        loop {
            let page = fetch(cursor.take()).await?;
            items.extend(page.items);
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(items),
            }
        }
    }

    /// Unfulfilled orders created more than `days` days before `now`.
    pub async fn unfulfilled_orders_older_than(
        &self,
        shop: &ShopDomain,
        days: i64,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<OrderSummary>, AdminError> {
        let before = (now - chrono::Duration::days(days)).format("%Y-%m-%dT%H:%M:%SZ");
        let query = format!("fulfillment_status:unfulfilled created_at:<{before}");
        self.all_pages(|after| {
            let query = query.clone();
            async move { self.orders_page(shop, &query, after.as_deref()).await }
        })
        .await
    }

    /// Orders with a fulfillment delivered in `[from, to)`.
    pub async fn orders_delivered_between(
        &self,
        shop: &ShopDomain,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<OrderSummary>, AdminError> {
        // Search narrows to orders touched since `from`; the delivery window is checked on the
        // fulfillments themselves, since search has no delivery-date filter.
        let query = format!("updated_at:>={}", from.format("%Y-%m-%dT%H:%M:%SZ"));
        let orders = self
            .all_pages(|after| {
                let query = query.clone();
                async move { self.orders_page(shop, &query, after.as_deref()).await }
            })
            .await?;
        Ok(orders
            .into_iter()
            .filter(|o| {
                o.fulfillments.iter().any(|f| {
                    f.delivered_at
                        .as_deref()
                        .and_then(|d| chrono::DateTime::parse_from_rfc3339(d).ok())
                        .is_some_and(|d| d >= from && d < to)
                })
            })
            .collect())
    }

    pub async fn customers_with_tag(
        &self,
        shop: &ShopDomain,
        tag: &str,
    ) -> Result<Vec<CustomerSummary>, AdminError> {
        let query = format!("tag:{}", search_value(tag));
        self.all_pages(|after| {
            let query = query.clone();
            async move { self.customers_page(shop, &query, after.as_deref()).await }
        })
        .await
    }

    pub async fn variants_below(
        &self,
        shop: &ShopDomain,
        threshold: i64,
    ) -> Result<Vec<VariantSummary>, AdminError> {
        let query = format!("inventory_quantity:<{threshold}");
        self.all_pages(|after| {
            let query = query.clone();
            async move { self.variants_page(shop, &query, after.as_deref()).await }
        })
        .await
    }

    /// Add tags (re-adding is a no-op at Shopify, so retries are safe).
    pub async fn tags_add(
        &self,
        shop: &ShopDomain,
        id: &Gid,
        tags: &[String],
    ) -> Result<(), AdminError> {
        self.tags(shop, "TagsAdd", TAGS_ADD, "tagsAdd", id, tags)
            .await
    }

    pub async fn tags_remove(
        &self,
        shop: &ShopDomain,
        id: &Gid,
        tags: &[String],
    ) -> Result<(), AdminError> {
        self.tags(shop, "TagsRemove", TAGS_REMOVE, "tagsRemove", id, tags)
            .await
    }

    async fn tags(
        &self,
        shop: &ShopDomain,
        name: &'static str,
        doc: &str,
        field: &str,
        id: &Gid,
        tags: &[String],
    ) -> Result<(), AdminError> {
        let mut data = self
            .run(shop, name, doc, json!({ "id": id, "tags": tags }), 10.0)
            .await?;
        let errors: Vec<UserError> = decode(data[field]["userErrors"].take(), "userErrors")?;
        check_user_errors(errors)
    }

    /// Write metafields, at most 25 per call (each call is atomic at Shopify). Naturally
    /// idempotent: the same values written twice are the same state.
    pub async fn metafields_set(
        &self,
        shop: &ShopDomain,
        metafields: &[MetafieldInput],
    ) -> Result<(), AdminError> {
        for batch in metafields.chunks(METAFIELDS_PER_CALL) {
            let mut data = self
                .run(
                    shop,
                    "MetafieldsSet",
                    METAFIELDS_SET,
                    json!({ "metafields": batch }),
                    10.0,
                )
                .await?;
            let errors: Vec<UserError> =
                decode(data["metafieldsSet"]["userErrors"].take(), "userErrors")?;
            check_user_errors(errors)?;
        }
        Ok(())
    }

    /// Fire a Flow trigger. The payload is checked against Shopify's 50,000-byte limit before
    /// sending; `idempotency_key` makes a retry after a lost answer fire it once.
    pub async fn flow_trigger_receive(
        &self,
        shop: &ShopDomain,
        handle: &str,
        payload: &Value,
        idempotency_key: &str,
    ) -> Result<(), AdminError> {
        let size = serde_json::to_vec(payload)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size > FLOW_PAYLOAD_LIMIT {
            return Err(AdminError::Invalid(format!(
                "the trigger payload is {size} bytes; Shopify accepts at most {FLOW_PAYLOAD_LIMIT}"
            )));
        }
        let vars =
            json!({ "handle": handle, "payload": payload, "idempotencyKey": idempotency_key });
        let mut data = self
            .run(shop, "FlowTriggerReceive", FLOW_TRIGGER_RECEIVE, vars, 10.0)
            .await?;
        let errors: Vec<UserError> = decode(
            data["flowTriggerReceive"]["userErrors"].take(),
            "userErrors",
        )?;
        check_user_errors(errors)
    }

    /// Create the automatic app discount. Not naturally idempotent: the key makes a retried
    /// call return the first result.
    pub async fn discount_automatic_app_create(
        &self,
        shop: &ShopDomain,
        discount: &AutomaticAppDiscount,
        idempotency_key: &str,
    ) -> Result<CreatedDiscount, AdminError> {
        let vars = json!({ "discount": discount, "idempotencyKey": idempotency_key });
        let mut data = self
            .run(
                shop,
                "DiscountAutomaticAppCreate",
                DISCOUNT_CREATE,
                vars,
                10.0,
            )
            .await?;
        self.discount_result(data["discountAutomaticAppCreate"].take())
    }

    /// Change the fields `changes` sets. Naturally idempotent: the same changes twice leave the
    /// discount as once.
    pub async fn discount_automatic_app_update(
        &self,
        shop: &ShopDomain,
        id: &Gid,
        changes: &AutomaticAppDiscountUpdate,
    ) -> Result<CreatedDiscount, AdminError> {
        let vars = json!({ "id": id, "discount": changes });
        let mut data = self
            .run(
                shop,
                "DiscountAutomaticAppUpdate",
                DISCOUNT_UPDATE,
                vars,
                10.0,
            )
            .await?;
        self.discount_result(data["discountAutomaticAppUpdate"].take())
    }

    fn discount_result(&self, mut payload: Value) -> Result<CreatedDiscount, AdminError> {
        let errors: Vec<UserError> = decode(payload["userErrors"].take(), "userErrors")?;
        check_user_errors(errors)?;
        decode(
            payload["automaticAppDiscount"].take(),
            "automaticAppDiscount",
        )
    }

    /// Automatic app discounts matching a search (e.g. `title:'VIP pricing'`).
    pub async fn app_discounts(
        &self,
        shop: &ShopDomain,
        query: &str,
    ) -> Result<Vec<AppDiscount>, AdminError> {
        #[derive(Deserialize)]
        struct Node {
            id: Gid,
            discount: Value,
            config: Option<MetafieldValue>,
        }
        let mut data = self
            .run(
                shop,
                "DiscountNodes",
                DISCOUNT_NODES,
                json!({ "first": 25, "query": query }),
                2.0 + 25.0 * 3.0,
            )
            .await?;
        let conn: Connection<Node> = decode(data["discountNodes"].take(), "discountNodes")?;
        Ok(conn
            .edges
            .into_iter()
            .filter(|e| e.node.discount["__typename"] == "DiscountAutomaticApp")
            .map(|e| AppDiscount {
                title: e.node.discount["title"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                status: e.node.discount["status"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                discount_classes: e.node.discount["discountClasses"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|c| c.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                config: e.node.config.map(|m| m.value),
                id: e.node.id,
            })
            .collect())
    }
}

/// A value for Shopify's search syntax: quoted when it has spaces or quotes.
fn search_value(raw: &str) -> String {
    if raw
        .chars()
        .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
    {
        raw.to_owned()
    } else {
        format!("'{}'", raw.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_and_counts_arriving_as_strings_are_parsed_exactly() {
        let m: Money = MoneyWire {
            amount: "1234567890.12".into(),
            currency_code: "EUR".into(),
        }
        .try_into()
        .unwrap();
        assert_eq!(m.amount.to_string(), "1234567890.12");
        assert!(Money::try_from(MoneyWire {
            amount: "12,5".into(),
            currency_code: "EUR".into()
        })
        .is_err());
        assert_eq!(parse_count("18446744073709551615", "n").unwrap(), u64::MAX);
        assert!(parse_count("-1", "n").is_err());
    }

    #[test]
    fn search_values_with_spaces_are_quoted() {
        assert_eq!(search_value("VIP"), "VIP");
        assert_eq!(search_value("VIP Gold"), "'VIP Gold'");
        assert_eq!(search_value("it's"), "'it\\'s'");
    }
}
