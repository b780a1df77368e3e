//! Evaluates a validated operation over a shop's data: resolves each collected field on the
//! object at hand (entities are mapped to their GraphQL shape here), paginates connections with
//! opaque cursors, applies `query:` searches and sort keys, and counts the *actual* cost of what
//! it returns (see [`super::cost`] for the rules).

use async_graphql_parser::types::SelectionSet;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use super::document::{GqlError, Prepared};
use super::mutations::{Payload, UserError};
use super::schema::{self, Kind};
use super::search::{Search, SearchValue};
use crate::data::{
    self, gid, inventory_item_id, parse_gid, resolve_namespace, shopify_decimal, CombinesWith,
    Customer, Discount, Fulfillment, InventoryLevel, LineItem, Location, Metafield, Order, Product,
    ShopData, Variant,
};
use crate::graphql::Collected;
use crate::state::ShopInfo;

/// Something a field can return: a reference into the shop's data or a small computed value.
#[derive(Debug, Clone)]
pub(crate) enum Obj<'a> {
    QueryRoot,
    Shop,
    Customer(&'a Customer),
    EmailAddress(&'a Customer),
    Money { amount: String, currency: String },
    MoneyBag { amount: String, currency: String },
    Order(&'a Order),
    LineItem(&'a LineItem),
    Fulfillment(&'a Order, usize),
    Tracking(&'a Fulfillment),
    Variant(&'a Product, &'a Variant),
    Product(&'a Product),
    InventoryItem(&'a Variant),
    InventoryLevel(&'a InventoryLevel),
    Quantity(String, i64),
    Location(&'a Location),
    DiscountNode(&'a Discount),
    DiscountApp(&'a Discount),
    CombinesWith(CombinesWith),
    Metafield(&'a Metafield),
    Connection(Page<'a>),
    Edge(&'static str, String, Box<Obj<'a>>),
    PageInfo(PageInfo),
    Payload(&'a Payload),
    UserError(&'a UserError),
}

#[derive(Debug, Clone)]
pub(crate) struct Page<'a> {
    node: &'static str,
    items: Vec<(String, Obj<'a>)>,
    info: PageInfo,
}

#[derive(Debug, Clone)]
pub(crate) struct PageInfo {
    has_next: bool,
    has_previous: bool,
    start: Option<String>,
    end: Option<String>,
}

impl Obj<'_> {
    pub fn typename(&self) -> &'static str {
        match self {
            Obj::QueryRoot => schema::QUERY_ROOT,
            Obj::Shop => "Shop",
            Obj::Customer(_) => "Customer",
            Obj::EmailAddress(_) => "CustomerEmailAddress",
            Obj::Money { .. } => "MoneyV2",
            Obj::MoneyBag { .. } => "MoneyBag",
            Obj::Order(_) => "Order",
            Obj::LineItem(_) => "LineItem",
            Obj::Fulfillment(..) => "Fulfillment",
            Obj::Tracking(_) => "FulfillmentTrackingInfo",
            Obj::Variant(..) => "ProductVariant",
            Obj::Product(_) => "Product",
            Obj::InventoryItem(_) => "InventoryItem",
            Obj::InventoryLevel(_) => "InventoryLevel",
            Obj::Quantity(..) => "InventoryQuantity",
            Obj::Location(_) => "Location",
            Obj::DiscountNode(_) => "DiscountNode",
            Obj::DiscountApp(_) => "DiscountAutomaticApp",
            Obj::CombinesWith(_) => "DiscountCombinesWith",
            Obj::Metafield(_) => "Metafield",
            Obj::Connection(p) => schema::connection_type(p.node),
            Obj::Edge(edge, ..) => edge,
            Obj::PageInfo(_) => "PageInfo",
            Obj::Payload(p) => p.typename,
            Obj::UserError(e) => e.typename,
        }
    }
}

/// Whether returning an object of this type counts toward the actual cost (connection plumbing
/// does not; the connection itself is charged its base cost).
fn counts(ty: &str) -> bool {
    ty != "PageInfo" && !ty.ends_with("Edge") && !ty.ends_with("Connection")
}

fn ts(d: DateTime<Utc>) -> Value {
    json!(d.to_rfc3339_opts(SecondsFormat::Secs, true))
}

fn ts_opt(d: Option<DateTime<Utc>>) -> Value {
    d.map_or(Value::Null, ts)
}

pub(crate) struct Executor<'a, 'd> {
    prep: &'a Prepared<'d>,
    data: &'a ShopData,
    shop: &'a ShopInfo,
    client_id: &'a str,
    now: DateTime<Utc>,
    /// Actual cost so far.
    pub actual: u64,
    /// Off while rendering mutation payloads (a mutation costs a flat amount).
    pub counting: bool,
    pub errors: Vec<GqlError>,
    path: Vec<Value>,
}

impl<'a, 'd> Executor<'a, 'd> {
    pub fn new(
        prep: &'a Prepared<'d>,
        data: &'a ShopData,
        shop: &'a ShopInfo,
        client_id: &'a str,
        now: DateTime<Utc>,
    ) -> Self {
        Executor {
            prep,
            data,
            shop,
            client_id,
            now,
            actual: 0,
            counting: true,
            errors: Vec::new(),
            path: Vec::new(),
        }
    }

    pub fn with_path(mut self, key: &str) -> Self {
        self.path.push(json!(key));
        self
    }

    /// Completes `obj` with the selection `sets`.
    pub fn complete(&mut self, obj: &Obj<'a>, sets: &[&'d SelectionSet]) -> Value {
        let ty = obj.typename();
        let mut out = Map::new();
        for c in self.prep.selections.collect(sets, ty) {
            self.path.push(json!(c.key));
            let v = match self.resolve(obj, &c) {
                Ok(v) => v,
                Err(e) => {
                    let e = e.at(c.field.pos).path(self.path.clone());
                    self.errors.push(e);
                    Value::Null
                }
            };
            self.path.pop();
            out.insert(c.key.to_owned(), v);
        }
        Value::Object(out)
    }

    fn resolve(&mut self, obj: &Obj<'a>, c: &Collected<'d>) -> Result<Value, GqlError> {
        let ty = obj.typename();
        let name = c.field.node.name.node.as_str();
        if name == "__typename" {
            return Ok(json!(ty));
        }
        let def = schema::field(ty, name)
            .ok_or_else(|| GqlError::new(format!("Field '{name}' doesn't exist on type '{ty}'")))?;
        let args = self.prep.selections.args(&c.field.node);
        match def.kind {
            Kind::Scalar => self.scalar(obj, name, &args),
            Kind::Object(_) => match self.object(obj, name, &args)? {
                None => Ok(Value::Null),
                Some(o) => {
                    if self.counting && counts(o.typename()) {
                        self.actual += 1;
                    }
                    Ok(self.complete(&o, &c.sets))
                }
            },
            Kind::List(_) | Kind::SizedList(_) => {
                let Some(mut items) = self.list(obj, name, &args)? else {
                    return Ok(Value::Null);
                };
                if let Kind::SizedList(_) = def.kind {
                    let n = self.prep.page_size(&c.field.node)?.unwrap_or(0) as usize;
                    items.truncate(n);
                    if self.counting {
                        self.actual += super::cost::CONNECTION_BASE + items.len() as u64;
                    }
                } else if self.counting {
                    let in_connection = matches!(obj, Obj::Connection(_));
                    let counted = items.iter().filter(|i| counts(i.typename())).count() as u64;
                    // Connection nodes each count; a plain unsized list counts as one object.
                    self.actual += if in_connection {
                        counted
                    } else {
                        counted.min(1)
                    };
                }
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    self.path.push(json!(i));
                    out.push(self.complete(item, &c.sets));
                    self.path.pop();
                }
                Ok(Value::Array(out))
            }
            Kind::Connection(node) => {
                let page = self.connection(obj, name, node, &args)?;
                if self.counting {
                    self.actual += super::cost::CONNECTION_BASE;
                }
                Ok(self.complete(&Obj::Connection(page), &c.sets))
            }
        }
    }

    // ---- scalars -------------------------------------------------------------------------------

    fn scalar(
        &self,
        obj: &Obj<'a>,
        name: &str,
        _args: &Map<String, Value>,
    ) -> Result<Value, GqlError> {
        let d = self.data;
        Ok(match (obj, name) {
            (Obj::Shop, "id") => json!(gid("Shop", self.shop.id)),
            (Obj::Shop, "name") => json!(self.shop.name),
            (Obj::Shop, "email") => json!(self.shop.email),
            (Obj::Shop, "myshopifyDomain") => json!(self.shop.shop),
            (Obj::Shop, "currencyCode") => json!(d.currency),

            (Obj::Customer(c), "id") => json!(gid("Customer", c.id)),
            (Obj::Customer(c), "email") => json!(c.email),
            (Obj::Customer(c), "firstName") => json!(c.first_name),
            (Obj::Customer(c), "lastName") => json!(c.last_name),
            (Obj::Customer(c), "displayName") => {
                let parts: Vec<&str> = [c.first_name.as_deref(), c.last_name.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect();
                if parts.is_empty() {
                    json!(c.email.clone().unwrap_or_default())
                } else {
                    json!(parts.join(" "))
                }
            }
            (Obj::Customer(c), "tags") => json!(c.tags),
            // UnsignedInt64 is a JSON string.
            (Obj::Customer(c), "numberOfOrders") => json!(d.number_of_orders(c).to_string()),
            (Obj::Customer(c), "createdAt") => ts_opt(c.created_at),
            (Obj::Customer(c), "updatedAt") => ts_opt(c.updated_at),
            (Obj::EmailAddress(c), "emailAddress") => json!(c.email),
            (Obj::EmailAddress(c), "marketingState") => json!(c
                .email_marketing_consent
                .as_ref()
                .map_or("NOT_SUBSCRIBED".to_owned(), |m| m
                    .state
                    .to_ascii_uppercase())),
            (Obj::Money { amount, .. }, "amount") => json!(amount),
            (Obj::Money { currency, .. }, "currencyCode") => json!(currency),

            (Obj::Order(o), "id") => json!(gid("Order", o.id)),
            (Obj::Order(o), "name") => json!(o.name),
            (Obj::Order(o), "email") => json!(o.email),
            (Obj::Order(o), "createdAt") => ts_opt(o.created_at),
            (Obj::Order(o), "updatedAt") => ts_opt(o.updated_at),
            (Obj::Order(o), "processedAt") => ts_opt(o.processed_at),
            (Obj::Order(o), "cancelledAt") => ts_opt(o.cancelled_at),
            (Obj::Order(o), "tags") => json!(o.tags),
            (Obj::Order(o), "displayFinancialStatus") => {
                json!(o.financial_status.as_ref().map(|s| s.to_ascii_uppercase()))
            }
            (Obj::Order(o), "displayFulfillmentStatus") => json!(display_fulfillment_status(o)),
            (Obj::LineItem(l), "id") => json!(gid("LineItem", l.id)),
            (Obj::LineItem(l), "title") => json!(l.title),
            (Obj::LineItem(l), "quantity") => json!(l.quantity),
            (Obj::LineItem(l), "sku") => json!(l.sku),
            (Obj::Fulfillment(o, i), field) => {
                let f = &o.fulfillments[*i];
                match field {
                    "id" => json!(gid("Fulfillment", f.id)),
                    "name" => json!(format!("{}-F{}", o.name, i + 1)),
                    "status" => json!(f.status.to_ascii_uppercase()),
                    "displayStatus" => json!(fulfillment_display_status(f)),
                    "createdAt" | "updatedAt" => ts_opt(f.created_at),
                    "inTransitAt" => ts_opt(f.in_transit_at),
                    "deliveredAt" => ts_opt(f.delivered_at),
                    "estimatedDeliveryAt" => ts_opt(f.estimated_delivery_at),
                    _ => Value::Null,
                }
            }
            (Obj::Tracking(f), "company") => json!(f.tracking_company),
            (Obj::Tracking(f), "number") => json!(f.tracking_number),
            (Obj::Tracking(_), "url") => Value::Null,

            (Obj::Variant(_, v), "id") => json!(gid("ProductVariant", v.id)),
            (Obj::Variant(_, v), "sku") => json!(v.sku),
            (Obj::Variant(_, v), "title") => json!(v.title),
            (Obj::Variant(_, v), "price") => json!(v.price.as_deref().map(shopify_decimal)),
            (Obj::Variant(_, v), "inventoryQuantity") => json!(d.inventory_quantity(v)),
            (Obj::Product(p), "id") => json!(gid("Product", p.id)),
            (Obj::Product(p), "title") => json!(p.title),
            (Obj::Product(p), "tags") => json!(p.tags),
            (Obj::Product(p), "createdAt") => ts_opt(p.created_at),
            (Obj::Product(p), "updatedAt") => ts_opt(p.updated_at),
            (Obj::InventoryItem(v), "id") => json!(gid("InventoryItem", inventory_item_id(v))),
            (Obj::InventoryItem(v), "sku") => json!(v.sku),
            (Obj::InventoryLevel(l), "id") => json!(format!(
                "gid://shopify/InventoryLevel/{}?inventory_item_id={}",
                l.location_id, l.inventory_item_id
            )),
            (Obj::Quantity(n, _), "name") => json!(n),
            (Obj::Quantity(_, q), "quantity") => json!(q),
            (Obj::Location(l), "id") => json!(gid("Location", l.id)),
            (Obj::Location(l), "name") => json!(l.name),

            (Obj::DiscountNode(x), "id") => json!(x.gid()),
            (Obj::DiscountApp(x), "discountId") => json!(x.gid()),
            (Obj::DiscountApp(x), "title") => json!(x.title),
            (Obj::DiscountApp(x), "status") => json!(x.status(self.now)),
            (Obj::DiscountApp(x), "discountClasses") => json!(x.discount_classes),
            (Obj::DiscountApp(x), "startsAt") => ts(x.starts_at),
            (Obj::DiscountApp(x), "endsAt") => ts_opt(x.ends_at),
            (Obj::CombinesWith(c), "orderDiscounts") => json!(c.order_discounts),
            (Obj::CombinesWith(c), "productDiscounts") => json!(c.product_discounts),
            (Obj::CombinesWith(c), "shippingDiscounts") => json!(c.shipping_discounts),

            (Obj::Metafield(m), "id") => json!(m.gid()),
            (Obj::Metafield(m), "namespace") => json!(m.namespace),
            (Obj::Metafield(m), "key") => json!(m.key),
            (Obj::Metafield(m), "type") => json!(m.kind),
            (Obj::Metafield(m), "value") => json!(m.value),
            (Obj::Metafield(m), "compareDigest") => json!(m.compare_digest()),
            (Obj::Metafield(m), "createdAt") => ts(m.created_at),
            (Obj::Metafield(m), "updatedAt") => ts(m.updated_at),
            (Obj::Metafield(m), "ownerType") => json!(m.owner_type()),

            (Obj::PageInfo(p), "hasNextPage") => json!(p.has_next),
            (Obj::PageInfo(p), "hasPreviousPage") => json!(p.has_previous),
            (Obj::PageInfo(p), "startCursor") => json!(p.start),
            (Obj::PageInfo(p), "endCursor") => json!(p.end),
            (Obj::Edge(_, cursor, _), "cursor") => json!(cursor),

            (Obj::UserError(e), "field") => json!(e.field),
            (Obj::UserError(e), "message") => json!(e.message),
            (Obj::UserError(e), "code") => json!(e.code),
            (Obj::UserError(e), "elementIndex") => json!(e.element_index),
            (Obj::UserError(_), "extraInfo") => Value::Null,
            _ => Value::Null,
        })
    }

    // ---- objects -------------------------------------------------------------------------------

    fn metafield(&self, owner: &str, args: &Map<String, Value>) -> Option<Obj<'a>> {
        // `namespace` is optional and defaults to the app's reserved namespace.
        let ns = args
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or("$app");
        let key = args.get("key").and_then(Value::as_str)?;
        let ns = resolve_namespace(ns, self.client_id);
        self.data.metafield(owner, &ns, key).map(Obj::Metafield)
    }

    fn lookup(&self, gid_str: &str, expected: &str) -> Result<Option<Obj<'a>>, GqlError> {
        let d = self.data;
        let Some((ty, id)) = parse_gid(gid_str) else {
            return Err(
                GqlError::new(format!("Invalid global id '{gid_str}'")).code(
                    json!({ "code": "argumentLiteralsIncompatible", "typeName": "CoercionError" }),
                ),
            );
        };
        Ok(match ty {
            _ if expected != "Node" && ty != expected => None,
            "Customer" => d.customers.get(&id).map(Obj::Customer),
            "Order" => d.orders.get(&id).map(Obj::Order),
            "Product" => d.products.get(&id).map(Obj::Product),
            "ProductVariant" => d.variant(id).map(|(p, v)| Obj::Variant(p, v)),
            _ => None,
        })
    }

    fn object(
        &self,
        obj: &Obj<'a>,
        name: &str,
        args: &Map<String, Value>,
    ) -> Result<Option<Obj<'a>>, GqlError> {
        let d = self.data;
        let id_arg = || args.get("id").and_then(Value::as_str).unwrap_or_default();
        Ok(match (obj, name) {
            (Obj::QueryRoot, "shop") => Some(Obj::Shop),
            (Obj::QueryRoot, "customer") => self.lookup(id_arg(), "Customer")?,
            (Obj::QueryRoot, "order") => self.lookup(id_arg(), "Order")?,
            (Obj::QueryRoot, "productVariant") => self.lookup(id_arg(), "ProductVariant")?,
            (Obj::Shop, "metafield") => self.metafield(&gid("Shop", self.shop.id), args),

            (Obj::Customer(c), "amountSpent") => Some(Obj::Money {
                amount: shopify_decimal(&d.amount_spent(c)),
                currency: d.currency_of(c.currency.as_ref()),
            }),
            (Obj::Customer(c), "defaultEmailAddress") => {
                c.email.as_ref().map(|_| Obj::EmailAddress(c))
            }
            (Obj::Customer(c), "metafield") => self.metafield(&gid("Customer", c.id), args),

            (Obj::Order(o), "customer") => o
                .customer_id
                .and_then(|id| d.customers.get(&id))
                .map(Obj::Customer),
            (Obj::Order(o), "totalPriceSet") => Some(Obj::MoneyBag {
                amount: shopify_decimal(&o.total_price),
                currency: d.currency_of(o.currency.as_ref()),
            }),
            (Obj::Order(o), "metafield") => self.metafield(&gid("Order", o.id), args),
            (Obj::MoneyBag { amount, currency }, "shopMoney" | "presentmentMoney") => {
                Some(Obj::Money {
                    amount: amount.clone(),
                    currency: currency.clone(),
                })
            }
            (Obj::LineItem(l), "variant") => l
                .variant_id
                .and_then(|id| d.variant(id))
                .map(|(p, v)| Obj::Variant(p, v)),

            (Obj::Variant(p, _), "product") => Some(Obj::Product(p)),
            (Obj::Variant(_, v), "inventoryItem") => Some(Obj::InventoryItem(v)),
            (Obj::Variant(_, v), "metafield") => self.metafield(&gid("ProductVariant", v.id), args),
            (Obj::Product(p), "metafield") => self.metafield(&gid("Product", p.id), args),
            (Obj::InventoryLevel(l), "location") => {
                d.locations.get(&l.location_id).map(Obj::Location)
            }

            (Obj::DiscountNode(x), "discount") => Some(Obj::DiscountApp(x)),
            (Obj::DiscountNode(x), "metafield") => self.metafield(&x.gid(), args),
            (Obj::DiscountApp(x), "combinesWith") => Some(Obj::CombinesWith(x.combines_with)),

            (Obj::Connection(p), "pageInfo") => Some(Obj::PageInfo(p.info.clone())),
            (Obj::Edge(_, _, node), "node") => Some((**node).clone()),

            (Obj::Payload(p), "node") => match &p.node {
                Some(id) => self.lookup(id, "Node")?,
                None => None,
            },
            (Obj::Payload(p), "automaticAppDiscount") => p.discount.as_ref().map(Obj::DiscountApp),
            _ => None,
        })
    }

    // ---- lists ---------------------------------------------------------------------------------

    fn list(
        &self,
        obj: &Obj<'a>,
        name: &str,
        args: &Map<String, Value>,
    ) -> Result<Option<Vec<Obj<'a>>>, GqlError> {
        Ok(Some(match (obj, name) {
            (Obj::Connection(p), "nodes") => p.items.iter().map(|(_, o)| o.clone()).collect(),
            (Obj::Connection(p), "edges") => {
                let edge = schema::field(schema::connection_type(p.node), "edges")
                    .and_then(|d| schema::kind_type(d.kind))
                    .unwrap_or("Edge");
                p.items
                    .iter()
                    .map(|(cursor, o)| Obj::Edge(edge, cursor.clone(), Box::new(o.clone())))
                    .collect()
            }
            (Obj::Order(o), "fulfillments") => (0..o.fulfillments.len())
                .map(|i| Obj::Fulfillment(o, i))
                .collect(),
            (Obj::Fulfillment(o, i), "trackingInfo") => {
                let f = &o.fulfillments[*i];
                if f.tracking_number.is_some() || f.tracking_company.is_some() {
                    vec![Obj::Tracking(f)]
                } else {
                    Vec::new()
                }
            }
            (Obj::InventoryLevel(l), "quantities") => {
                let names: Vec<String> = args
                    .get("names")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default();
                names
                    .into_iter()
                    .map(|n| {
                        let q = match n.as_str() {
                            "available" => l.available,
                            "on_hand" => l.on_hand.unwrap_or(l.available),
                            _ => 0,
                        };
                        Obj::Quantity(n, q)
                    })
                    .collect()
            }
            (Obj::Payload(p), "userErrors") => p.user_errors.iter().map(Obj::UserError).collect(),
            (Obj::Payload(p), "metafields") => match &p.metafields {
                Some(m) => m.iter().map(Obj::Metafield).collect(),
                None => return Ok(None),
            },
            _ => Vec::new(),
        }))
    }

    // ---- connections ---------------------------------------------------------------------------

    fn connection(
        &self,
        obj: &Obj<'a>,
        name: &str,
        node: &'static str,
        args: &Map<String, Value>,
    ) -> Result<Page<'a>, GqlError> {
        let d = self.data;
        let search = args
            .get("query")
            .and_then(Value::as_str)
            .map(Search::parse)
            .unwrap_or_default();
        let sort_key = args.get("sortKey").and_then(Value::as_str).unwrap_or("ID");
        let reverse = args
            .get("reverse")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let now = self.now;
        // (id, sort value, object) of every matching item.
        let mut items: Vec<(u64, SortVal, Obj<'a>)> = match (obj, name) {
            (Obj::QueryRoot, "customers") => {
                check_sort_key(
                    name,
                    "CustomerSortKeys",
                    sort_key,
                    &["ID", "CREATED_AT", "UPDATED_AT", "NAME", "RELEVANCE"],
                )?;
                d.customers
                    .values()
                    .filter(|c| search.matches(|f| customer_search(d, c, f)))
                    .map(|c| {
                        let s = match sort_key {
                            "CREATED_AT" => SortVal::time(c.created_at),
                            "UPDATED_AT" => SortVal::time(c.updated_at),
                            "NAME" => SortVal::Text(format!(
                                "{} {}",
                                c.first_name.clone().unwrap_or_default(),
                                c.last_name.clone().unwrap_or_default()
                            )),
                            _ => SortVal::Num(c.id as i64),
                        };
                        (c.id, s, Obj::Customer(c))
                    })
                    .collect()
            }
            (Obj::QueryRoot, "orders") => {
                check_sort_key(
                    name,
                    "OrderSortKeys",
                    sort_key,
                    &[
                        "ID",
                        "CREATED_AT",
                        "UPDATED_AT",
                        "PROCESSED_AT",
                        "ORDER_NUMBER",
                        "TOTAL_PRICE",
                        "RELEVANCE",
                    ],
                )?;
                d.orders
                    .values()
                    .filter(|o| search.matches(|f| order_search(o, f)))
                    .map(|o| {
                        let s = match sort_key {
                            "CREATED_AT" => SortVal::time(o.created_at),
                            "UPDATED_AT" => SortVal::time(o.updated_at),
                            "PROCESSED_AT" => SortVal::time(o.processed_at),
                            "ORDER_NUMBER" => SortVal::Text(o.name.clone()),
                            "TOTAL_PRICE" => SortVal::Num(data::decimal_cents(&o.total_price)),
                            _ => SortVal::Num(o.id as i64),
                        };
                        (o.id, s, Obj::Order(o))
                    })
                    .collect()
            }
            (Obj::QueryRoot, "productVariants") => {
                check_sort_key(
                    name,
                    "ProductVariantSortKeys",
                    sort_key,
                    &["ID", "SKU", "TITLE", "INVENTORY_QUANTITY", "RELEVANCE"],
                )?;
                d.products
                    .values()
                    .flat_map(|p| p.variants.iter().map(move |v| (p, v)))
                    .filter(|(p, v)| search.matches(|f| variant_search(d, p, v, f)))
                    .map(|(p, v)| {
                        let s = match sort_key {
                            "SKU" => SortVal::Text(v.sku.clone().unwrap_or_default()),
                            "TITLE" => SortVal::Text(v.title.clone()),
                            "INVENTORY_QUANTITY" => SortVal::Num(d.inventory_quantity(v)),
                            _ => SortVal::Num(v.id as i64),
                        };
                        (v.id, s, Obj::Variant(p, v))
                    })
                    .collect()
            }
            (Obj::QueryRoot, "discountNodes") => {
                check_sort_key(
                    name,
                    "DiscountSortKeys",
                    sort_key,
                    &[
                        "ID",
                        "CREATED_AT",
                        "UPDATED_AT",
                        "STARTS_AT",
                        "ENDS_AT",
                        "TITLE",
                        "RELEVANCE",
                    ],
                )?;
                d.discounts
                    .values()
                    .filter(|x| search.matches(|f| discount_search(x, now, f)))
                    .map(|x| {
                        let s = match sort_key {
                            "STARTS_AT" | "CREATED_AT" | "UPDATED_AT" => {
                                SortVal::time(Some(x.starts_at))
                            }
                            "ENDS_AT" => SortVal::time(x.ends_at),
                            "TITLE" => SortVal::Text(x.title.clone()),
                            _ => SortVal::Num(x.id as i64),
                        };
                        (x.id, s, Obj::DiscountNode(x))
                    })
                    .collect()
            }
            (Obj::Order(o), "lineItems") => o
                .line_items
                .iter()
                .enumerate()
                .map(|(i, l)| (l.id, SortVal::Num(i as i64), Obj::LineItem(l)))
                .collect(),
            (Obj::InventoryItem(v), "inventoryLevels") => d
                .inventory_levels(inventory_item_id(v))
                .into_iter()
                .map(|l| {
                    (
                        l.location_id,
                        SortVal::Num(l.location_id as i64),
                        Obj::InventoryLevel(l),
                    )
                })
                .collect(),
            (owner, "metafields") => {
                let owner_gid = match owner {
                    Obj::Customer(c) => gid("Customer", c.id),
                    Obj::Order(o) => gid("Order", o.id),
                    Obj::Product(p) => gid("Product", p.id),
                    Obj::Variant(_, v) => gid("ProductVariant", v.id),
                    Obj::DiscountNode(x) => x.gid(),
                    _ => String::new(),
                };
                let ns = args
                    .get("namespace")
                    .and_then(Value::as_str)
                    .map(|n| resolve_namespace(n, self.client_id));
                d.metafields_of(&owner_gid)
                    .into_iter()
                    .filter(|m| ns.as_ref().is_none_or(|n| *n == m.namespace))
                    .map(|m| (m.id, SortVal::Num(m.id as i64), Obj::Metafield(m)))
                    .collect()
            }
            _ => Vec::new(),
        };
        items.sort_by(|a, b| (&a.1, a.0).cmp(&(&b.1, b.0)));
        if reverse {
            items.reverse();
        }
        paginate(node, items, args)
    }
}

fn check_sort_key(
    field: &str,
    type_name: &str,
    key: &str,
    allowed: &[&str],
) -> Result<(), GqlError> {
    if allowed.contains(&key) {
        Ok(())
    } else {
        Err(GqlError::new(format!(
            "Argument 'sortKey' on Field '{field}' has an invalid value ({key}). Expected type '{type_name}'."
        ))
        .code(json!({ "code": "argumentLiteralsIncompatible", "typeName": "Field", "argumentName": "sortKey" })))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum SortVal {
    Num(i64),
    Text(String),
}

impl SortVal {
    fn time(t: Option<DateTime<Utc>>) -> Self {
        SortVal::Num(t.map_or(i64::MIN, |t| t.timestamp_micros()))
    }
}

/// Opaque cursor: base64 of `{"last_id":N}` (the shape of Shopify's cursors).
fn cursor(id: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{{\"last_id\":{id}}}"))
}

fn cursor_id(c: &str) -> Option<u64> {
    let raw = base64::engine::general_purpose::STANDARD.decode(c).ok()?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    v.get("last_id")?.as_u64()
}

fn paginate<'a>(
    node: &'static str,
    items: Vec<(u64, SortVal, Obj<'a>)>,
    args: &Map<String, Value>,
) -> Result<Page<'a>, GqlError> {
    let position = |key: &str| -> Result<Option<usize>, GqlError> {
        match args.get(key).and_then(Value::as_str) {
            None => Ok(None),
            Some(c) => {
                let id = cursor_id(c).ok_or_else(|| {
                    GqlError::new(format!("Invalid cursor for current pagination sort: {c}"))
                })?;
                Ok(Some(items.iter().position(|(i, ..)| *i == id).ok_or_else(
                    || GqlError::new(format!("Invalid cursor for current pagination sort: {c}")),
                )?))
            }
        }
    };
    let start = position("after")?.map_or(0, |p| p + 1);
    let end = position("before")?.unwrap_or(items.len()).max(start);
    let first = args.get("first").and_then(Value::as_u64);
    let last = args.get("last").and_then(Value::as_u64);
    let (from, to) = match (first, last) {
        (Some(n), _) => (start, end.min(start + n as usize)),
        (None, Some(n)) => (end.saturating_sub(n as usize).max(start), end),
        (None, None) => (start, end),
    };
    let has_next = to < end;
    let has_previous = from > 0;
    let page: Vec<(String, Obj<'a>)> = items
        .into_iter()
        .skip(from)
        .take(to - from)
        .map(|(id, _, o)| (cursor(id), o))
        .collect();
    Ok(Page {
        node,
        info: PageInfo {
            has_next,
            has_previous,
            start: page.first().map(|(c, _)| c.clone()),
            end: page.last().map(|(c, _)| c.clone()),
        },
        items: page,
    })
}

// ---- mapping to GraphQL enums ------------------------------------------------------------------

/// `Order.displayFulfillmentStatus` from REST's `fulfillment_status`, else from fulfillments.
pub(crate) fn display_fulfillment_status(o: &Order) -> &'static str {
    match o.fulfillment_status.as_deref() {
        Some("fulfilled") => "FULFILLED",
        Some("partial") => "PARTIALLY_FULFILLED",
        Some("restocked") => "RESTOCKED",
        Some("fulfillment_not_required") => "FULFILLMENT_NOT_REQUIRED",
        _ if o.fulfillments.iter().any(|f| f.status == "success") => "FULFILLED",
        _ => "UNFULFILLED",
    }
}

/// `Fulfillment.displayStatus` from REST's `shipment_status` / `status`.
pub(crate) fn fulfillment_display_status(f: &Fulfillment) -> Value {
    if f.status == "cancelled" {
        return json!("CANCELED");
    }
    match f.shipment_status.as_deref() {
        Some(s) => json!(s.to_ascii_uppercase()),
        None if f.status == "success" => json!("FULFILLED"),
        None => Value::Null,
    }
}

// ---- search fields -----------------------------------------------------------------------------

fn text(s: impl Into<String>) -> SearchValue {
    SearchValue::Text(s.into())
}

fn texts(v: &[String]) -> Vec<SearchValue> {
    v.iter().map(|t| text(t.clone())).collect()
}

fn date(d: Option<DateTime<Utc>>) -> Vec<SearchValue> {
    d.map(SearchValue::Date).into_iter().collect()
}

fn customer_search(d: &ShopData, c: &Customer, field: &str) -> Option<Vec<SearchValue>> {
    Some(match field {
        "" => [c.email.clone(), c.first_name.clone(), c.last_name.clone()]
            .into_iter()
            .flatten()
            .map(text)
            .chain(texts(&c.tags))
            .collect(),
        "tag" | "tags" => texts(&c.tags),
        "email" => c.email.iter().cloned().map(text).collect(),
        "id" => vec![SearchValue::Num(c.id as f64)],
        "created_at" => date(c.created_at),
        "updated_at" => date(c.updated_at),
        "orders_count" | "number_of_orders" => vec![SearchValue::Num(d.number_of_orders(c) as f64)],
        "total_spent" | "amount_spent" => {
            vec![SearchValue::Num(
                data::decimal_cents(&d.amount_spent(c)) as f64 / 100.0,
            )]
        }
        _ => return None,
    })
}

fn order_search(o: &Order, field: &str) -> Option<Vec<SearchValue>> {
    Some(match field {
        "" => [Some(o.name.clone()), o.email.clone()]
            .into_iter()
            .flatten()
            .map(text)
            .collect(),
        "tag" | "tags" => texts(&o.tags),
        "name" => vec![text(o.name.clone()), text(o.name.trim_start_matches('#'))],
        "id" => vec![SearchValue::Num(o.id as f64)],
        "customer_id" => o
            .customer_id
            .map(|c| SearchValue::Num(c as f64))
            .into_iter()
            .collect(),
        "email" => o.email.iter().cloned().map(text).collect(),
        "created_at" => date(o.created_at),
        "updated_at" => date(o.updated_at),
        "processed_at" => date(o.processed_at),
        "financial_status" => o
            .financial_status
            .iter()
            .cloned()
            .map(text)
            .chain([text("any")])
            .collect(),
        "status" => vec![
            text(if o.cancelled_at.is_some() {
                "cancelled"
            } else {
                "open"
            }),
            text("any"),
        ],
        // Shopify's filter values (search syntax docs for orders): `unfulfilled` covers
        // unfulfilled and partially fulfilled orders, `unshipped` only unfulfilled ones.
        "fulfillment_status" => {
            let names: &[&str] = match display_fulfillment_status(o) {
                "UNFULFILLED" => &["unfulfilled", "unshipped", "any"],
                "PARTIALLY_FULFILLED" => &["partial", "unfulfilled", "any"],
                "FULFILLED" => &["fulfilled", "shipped", "any"],
                _ => &["any"],
            };
            names.iter().map(|n| text(*n)).collect()
        }
        _ => return None,
    })
}

fn variant_search(d: &ShopData, p: &Product, v: &Variant, field: &str) -> Option<Vec<SearchValue>> {
    Some(match field {
        "" => [Some(v.title.clone()), v.sku.clone(), Some(p.title.clone())]
            .into_iter()
            .flatten()
            .map(text)
            .collect(),
        "sku" => v.sku.iter().cloned().map(text).collect(),
        "title" => vec![text(v.title.clone())],
        "product_title" => vec![text(p.title.clone())],
        "product_id" => vec![SearchValue::Num(p.id as f64)],
        "id" => vec![SearchValue::Num(v.id as f64)],
        "tag" | "tags" => texts(&p.tags),
        "inventory_quantity" => vec![SearchValue::Num(d.inventory_quantity(v) as f64)],
        _ => return None,
    })
}

fn discount_search(x: &Discount, now: DateTime<Utc>, field: &str) -> Option<Vec<SearchValue>> {
    Some(match field {
        "" | "title" => vec![text(x.title.clone())],
        "status" => vec![text(x.status(now).to_ascii_lowercase())],
        "type" | "discount_type" => vec![text("app")],
        "method" => vec![text("automatic")],
        "starts_at" => date(Some(x.starts_at)),
        "ends_at" => date(x.ends_at),
        "id" => vec![SearchValue::Num(x.id as f64)],
        _ => return None,
    })
}
