//! Builds a Function's input the way Shopify does: by executing the Function's input query
//! against the checkout. Fields come in query order under their aliases, fragments apply by
//! type, arguments take the query's variables (from the discount's metafield, see
//! [`super::function::Deployment::variables`]), and a field outside the simulated part of the
//! Discount Function API's schema is an error naming it, never a silent `null`.
//!
//! Simulated (Discount Function API 2026-01, `shared/reference/functions.md` §5.2):
//! `Input { cart discount presentmentCurrencyRate triggeringDiscountCode enteredDiscountCodes }`,
//! `Cart { buyerIdentity cost lines deliveryGroups attribute }`, `BuyerIdentity { customer email
//! phone isAuthenticated purchasingCompany }`, `Customer { id email displayName numberOfOrders
//! amountSpent hasAnyTag hasTags metafield }`, `CartLine { id quantity cost merchandise attribute }`,
//! `ProductVariant { id sku title requiresShipping product metafield }`, `Product { id handle title
//! isGiftCard hasAnyTag hasTags metafield }`, `CartDeliveryGroup { id deliveryOptions
//! selectedDeliveryOption cartLines }`, `CartDeliveryOption { handle title cost deliveryMethodType }`,
//! `Discount { discountClasses metafield }`, `MoneyV2`, `Metafield { value jsonValue type }`,
//! `HasTagResponse`, and `__typename` everywhere.

use async_graphql_parser::types::{OperationDefinition, SelectionSet};
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use vip_fixtures::Json;

use super::cart::{Cart, Line};
use crate::data::{Customer, Metafield};
use crate::graphql::Selections;

/// A checkout's data as one discount's Function run sees it.
pub(crate) struct RunContext<'a> {
    pub cart: &'a Cart,
    /// `discount.discountClasses`.
    pub classes: &'a [String],
    /// The discount's metafields.
    pub discount_metafields: &'a [Metafield],
    /// Resolves `$app` namespaces of `metafield(namespace:)` arguments to the app's own.
    pub client_id: &'a str,
}

/// Runs `query` on `ctx` with `variables` (a JSON object; missing ones take the query's
/// defaults). Returns the input in query order.
pub(crate) fn build(
    query: &str,
    variables: &Map<String, Value>,
    ctx: &RunContext<'_>,
) -> Result<Json, String> {
    let doc = async_graphql_parser::parse_query(query)
        .map_err(|e| format!("the Function's input query does not parse: {e}"))?;
    let mut operations = doc.operations.iter();
    let (_, op) = operations
        .next()
        .ok_or("the Function's input query has no operation")?;
    if operations.next().is_some() {
        return Err("the Function's input query has several operations".into());
    }
    let exec = Exec {
        selections: Selections::new(&doc, variable_values(&op.node, variables)?, satisfies),
        ctx,
    };
    exec.object(Node::Input, &[&op.node.selection_set.node])
}

/// The declared variables with values: given, else the default, else null (a required one that
/// ends up null fails the run, as on Shopify).
fn variable_values(
    op: &OperationDefinition,
    given: &Map<String, Value>,
) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for def in &op.variable_definitions {
        let name = def.node.name.node.as_str();
        let value = match given.get(name) {
            Some(v) => v.clone(),
            None => def
                .node
                .default_value()
                .and_then(|d| d.clone().into_json().ok())
                .unwrap_or(Value::Null),
        };
        if value.is_null() && !def.node.var_type.node.nullable {
            return Err(format!(
                "the input query's required variable ${name} has no value (not in the discount's variables metafield)"
            ));
        }
        out.insert(name.to_owned(), value);
    }
    Ok(out)
}

/// An object of the input graph.
#[derive(Clone)]
enum Node<'a> {
    Input,
    Cart,
    BuyerIdentity,
    Customer(&'a Customer),
    CartCost,
    Money(Decimal),
    Line(&'a Line),
    LineCost(&'a Line),
    Variant(&'a Line),
    Product(&'a Line),
    DeliveryGroup(usize),
    DeliveryOption(usize, usize),
    Discount,
    Metafield(&'a Metafield),
    HasTag(String, bool),
}

impl Node<'_> {
    fn typename(&self) -> &'static str {
        match self {
            Node::Input => "Input",
            Node::Cart => "Cart",
            Node::BuyerIdentity => "BuyerIdentity",
            Node::Customer(_) => "Customer",
            Node::CartCost => "CartCost",
            Node::Money(_) => "MoneyV2",
            Node::Line(_) => "CartLine",
            Node::LineCost(_) => "CartLineCost",
            Node::Variant(_) => "ProductVariant",
            Node::Product(_) => "Product",
            Node::DeliveryGroup(_) => "CartDeliveryGroup",
            Node::DeliveryOption(..) => "CartDeliveryOption",
            Node::Discount => "Discount",
            Node::Metafield(_) => "Metafield",
            Node::HasTag(..) => "HasTagResponse",
        }
    }
}

/// What a field resolves to.
enum Out<'a> {
    Leaf(Json),
    One(Option<Node<'a>>),
    Many(Vec<Node<'a>>),
}

struct Exec<'d, 'a> {
    selections: Selections<'d>,
    ctx: &'a RunContext<'a>,
}

impl<'d, 'a> Exec<'d, 'a> {
    fn object(&self, node: Node<'a>, sets: &[&'d SelectionSet]) -> Result<Json, String> {
        let mut members = Vec::new();
        for c in self.selections.collect(sets, node.typename()) {
            let name = c.field.node.name.node.as_str();
            let value = if name == "__typename" {
                Json::str(node.typename())
            } else {
                let args = self.selections.args(&c.field.node);
                match self.resolve(node.clone(), name, &args)? {
                    Out::Leaf(v) => v,
                    Out::One(None) => Json::Null,
                    Out::One(Some(child)) => self.object(child, &c.sets)?,
                    Out::Many(children) => Json::Array(
                        children
                            .into_iter()
                            .map(|child| self.object(child, &c.sets))
                            .collect::<Result<_, _>>()?,
                    ),
                }
            };
            members.push((c.key.to_owned(), value));
        }
        Ok(Json::Object(members))
    }

    fn resolve(
        &self,
        node: Node<'a>,
        field: &str,
        args: &Map<String, Value>,
    ) -> Result<Out<'a>, String> {
        let ctx = self.ctx;
        let cart = ctx.cart;
        let leaf = |v: Json| Ok(Out::Leaf(v));
        let one = |n: Node<'a>| Ok(Out::One(Some(n)));
        match (node, field) {
            (Node::Input, "cart") => one(Node::Cart),
            (Node::Input, "discount") => one(Node::Discount),
            (Node::Input, "presentmentCurrencyRate") => leaf(decimal(cart.rate)),
            (Node::Input, "triggeringDiscountCode") => leaf(Json::Null),
            (Node::Input, "enteredDiscountCodes") => Ok(Out::Many(Vec::new())),

            (Node::Discount, "discountClasses") => {
                leaf(Json::array(ctx.classes.iter().map(Json::str)))
            }
            (Node::Discount, "metafield") => Ok(Out::One(
                self.metafield(ctx.discount_metafields, args)
                    .map(Node::Metafield),
            )),

            (Node::Cart, "buyerIdentity") => Ok(Out::One(
                cart.buyer.is_some().then_some(Node::BuyerIdentity),
            )),
            (Node::Cart, "cost") => one(Node::CartCost),
            (Node::Cart, "lines") => Ok(Out::Many(cart.lines.iter().map(Node::Line).collect())),
            (Node::Cart, "deliveryGroups") => Ok(Out::Many(
                (0..cart.delivery_groups.len())
                    .map(Node::DeliveryGroup)
                    .collect(),
            )),
            (Node::Cart | Node::Line(_), "attribute") => leaf(Json::Null),

            (Node::BuyerIdentity, "customer") => Ok(Out::One(
                cart.buyer.as_ref().map(|b| Node::Customer(&b.customer)),
            )),
            (Node::BuyerIdentity, "email") => leaf(opt_str(
                cart.buyer.as_ref().and_then(|b| b.customer.email.clone()),
            )),
            (Node::BuyerIdentity, "phone") => leaf(Json::Null),
            (Node::BuyerIdentity, "isAuthenticated") => leaf(Json::Bool(cart.buyer.is_some())),
            (Node::BuyerIdentity, "purchasingCompany") => leaf(Json::Null),

            (Node::Customer(c), "id") => leaf(Json::str(crate::data::gid("Customer", c.id))),
            (Node::Customer(c), "email") => leaf(opt_str(c.email.clone())),
            (Node::Customer(c), "displayName") => {
                let name = [c.first_name.as_deref(), c.last_name.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ");
                leaf(Json::str(name))
            }
            (Node::Customer(_), "numberOfOrders") => {
                let count = cart.buyer.as_ref().map_or(0, |b| b.number_of_orders);
                leaf(Json::Int(i64::try_from(count).unwrap_or(i64::MAX)))
            }
            (Node::Customer(_), "amountSpent") => {
                let spent = cart
                    .buyer
                    .as_ref()
                    .map_or(Decimal::ZERO, |b| b.amount_spent);
                one(Node::Money(spent))
            }
            (Node::Customer(c), "hasAnyTag") => leaf(Json::Bool(has_any_tag(&c.tags, args)?)),
            (Node::Customer(c), "hasTags") => Ok(Out::Many(has_tags(&c.tags, args)?)),
            (Node::Customer(_), "metafield") => Ok(Out::One(
                cart.buyer
                    .as_ref()
                    .and_then(|b| self.metafield(&b.metafields, args))
                    .map(Node::Metafield),
            )),

            (Node::CartCost, "subtotalAmount" | "totalAmount") => one(Node::Money(cart.subtotal())),
            (Node::Money(amount), "amount") => leaf(decimal(amount)),
            (Node::Money(_), "currencyCode") => leaf(Json::str(cart.currency.clone())),

            (Node::Line(l), "id") => leaf(Json::str(l.id.clone())),
            (Node::Line(l), "quantity") => {
                leaf(Json::Int(i64::try_from(l.quantity).unwrap_or(i64::MAX)))
            }
            (Node::Line(l), "cost") => one(Node::LineCost(l)),
            (Node::Line(l), "merchandise") => one(Node::Variant(l)),
            (Node::LineCost(l), "amountPerQuantity") => one(Node::Money(l.unit_price)),
            (Node::LineCost(l), "subtotalAmount" | "totalAmount") => one(Node::Money(l.subtotal())),
            (Node::LineCost(_), "compareAtAmountPerQuantity") => Ok(Out::One(None)),

            (Node::Variant(l), "id") => {
                leaf(Json::str(crate::data::gid("ProductVariant", l.variant.id)))
            }
            (Node::Variant(l), "sku") => leaf(opt_str(l.variant.sku.clone())),
            (Node::Variant(l), "title") => leaf(Json::str(l.variant.title.clone())),
            (Node::Variant(l), "requiresShipping") => leaf(Json::Bool(l.requires_shipping())),
            (Node::Variant(l), "product") => one(Node::Product(l)),
            (Node::Variant(l), "metafield") => Ok(Out::One(
                self.metafield(&l.variant_metafields, args)
                    .map(Node::Metafield),
            )),
            (Node::Product(l), "id") => leaf(Json::str(crate::data::gid("Product", l.product.id))),
            (Node::Product(l), "title") => leaf(Json::str(l.product.title.clone())),
            (Node::Product(l), "handle") => leaf(Json::str(handle(&l.product.title))),
            (Node::Product(l), "isGiftCard") => leaf(Json::Bool(l.product.gift_card)),
            (Node::Product(l), "hasAnyTag") => {
                leaf(Json::Bool(has_any_tag(&l.product.tags, args)?))
            }
            (Node::Product(l), "hasTags") => Ok(Out::Many(has_tags(&l.product.tags, args)?)),
            (Node::Product(l), "metafield") => Ok(Out::One(
                self.metafield(&l.product_metafields, args)
                    .map(Node::Metafield),
            )),

            (Node::DeliveryGroup(g), "id") => leaf(Json::str(cart.delivery_groups[g].id.clone())),
            (Node::DeliveryGroup(g), "deliveryOptions") => Ok(Out::Many(
                (0..cart.delivery_groups[g].options.len())
                    .map(|o| Node::DeliveryOption(g, o))
                    .collect(),
            )),
            (Node::DeliveryGroup(g), "selectedDeliveryOption") => Ok(Out::One(
                (!cart.delivery_groups[g].options.is_empty()).then_some(Node::DeliveryOption(g, 0)),
            )),
            (Node::DeliveryGroup(g), "cartLines") => Ok(Out::Many(
                cart.lines
                    .iter()
                    .filter(|l| cart.delivery_groups[g].line_ids.contains(&l.id))
                    .map(Node::Line)
                    .collect(),
            )),
            (Node::DeliveryOption(g, o), field) => {
                let option = &cart.delivery_groups[g].options[o];
                match field {
                    "handle" => leaf(Json::str(option.handle.clone())),
                    "title" => leaf(Json::str(option.title.clone())),
                    "cost" => one(Node::Money(option.price)),
                    "deliveryMethodType" => leaf(Json::str("SHIPPING")),
                    other => Err(unsimulated("CartDeliveryOption", other)),
                }
            }

            (Node::Metafield(m), "value") => leaf(Json::str(m.value.clone())),
            (Node::Metafield(m), "type") => leaf(Json::str(m.kind.clone())),
            (Node::Metafield(m), "jsonValue") => leaf(json_value(m)),
            (Node::HasTag(tag, _), "tag") => leaf(Json::Str(tag)),
            (Node::HasTag(_, has), "hasTag") => leaf(Json::Bool(has)),

            (node, field) => Err(unsimulated(node.typename(), field)),
        }
    }

    /// `metafield(namespace:, key:)` among `metafields` (namespace `$app…` is the app's own).
    fn metafield<'m>(
        &self,
        metafields: &'m [Metafield],
        args: &Map<String, Value>,
    ) -> Option<&'m Metafield> {
        let namespace = args
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or("$app");
        let namespace = crate::data::resolve_namespace(namespace, self.ctx.client_id);
        let key = args.get("key").and_then(Value::as_str)?;
        metafields
            .iter()
            .find(|m| m.namespace == namespace && m.key == key)
    }
}

fn unsimulated(ty: &str, field: &str) -> String {
    format!("the Function's input query asks for {ty}.{field}, which shopify-sim does not simulate")
}

/// Type conditions: the type itself, or the `Merchandise` union a variant belongs to.
fn satisfies(concrete: &str, condition: &str) -> bool {
    concrete == condition
        || (condition == "Merchandise" && matches!(concrete, "ProductVariant" | "CustomProduct"))
}

fn tags_arg(args: &Map<String, Value>) -> Result<Vec<&str>, String> {
    match args.get("tags") {
        Some(Value::Array(items)) => Ok(items.iter().filter_map(Value::as_str).collect()),
        Some(Value::String(one)) => Ok(vec![one.as_str()]),
        // A variable that is null: a required argument without a value fails the run on Shopify.
        _ => Err("hasAnyTag/hasTags needs `tags` (a list of strings)".into()),
    }
}

/// Shopify compares tags without regard to case.
fn has_any_tag(tags: &[String], args: &Map<String, Value>) -> Result<bool, String> {
    let wanted = tags_arg(args)?;
    Ok(wanted
        .iter()
        .any(|w| tags.iter().any(|t| t.eq_ignore_ascii_case(w))))
}

fn has_tags<'a>(tags: &[String], args: &Map<String, Value>) -> Result<Vec<Node<'a>>, String> {
    Ok(tags_arg(args)?
        .into_iter()
        .map(|w| Node::HasTag(w.to_owned(), tags.iter().any(|t| t.eq_ignore_ascii_case(w))))
        .collect())
}

/// Shopify's `Decimal` in Function input: a string with at least one decimal (`"42.0"`).
pub(crate) fn decimal(d: Decimal) -> Json {
    let d = d.normalize();
    let text = if d.scale() == 0 {
        format!("{d}.0")
    } else {
        d.to_string()
    };
    Json::Str(text)
}

fn opt_str(s: Option<String>) -> Json {
    s.map_or(Json::Null, Json::Str)
}

/// `Metafield.jsonValue`: the value as JSON (JSON types parsed, keeping member order).
fn json_value(m: &Metafield) -> Json {
    let parsed = match m.kind.as_str() {
        k if k == "json" || k.starts_with("list.") => Json::parse(&m.value).ok(),
        "number_integer" => m.value.trim().parse::<i64>().ok().map(Json::Int),
        "number_decimal" => m.value.trim().parse::<f64>().ok().map(Json::Float),
        "boolean" => m.value.trim().parse::<bool>().ok().map(Json::Bool),
        _ => None,
    };
    parsed.unwrap_or_else(|| Json::str(m.value.clone()))
}

/// A product handle from its title, as Shopify derives one.
fn handle(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}
