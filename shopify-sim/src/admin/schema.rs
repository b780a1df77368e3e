//! The supported subset of the Admin GraphQL schema (2026-10 names): which fields each type has,
//! what they return, which arguments they take. Validation (`undefinedField`), cost analysis and
//! execution all read this one table, so a field cannot be executable without having a cost.
//!
//! Connections are modelled generically: a field of kind [`Kind::Connection`]`("Customer")`
//! returns `CustomerConnection` with `edges` (`CustomerEdge { cursor node }`), `nodes` and
//! `pageInfo`, as Shopify's Relay-style connections do.

/// What a field returns, as far as cost and execution care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Scalars, enums, `JSON`, and lists of them: cost 0.
    Scalar,
    /// An object, union or interface: cost 1 plus its selection.
    Object(&'static str),
    /// A list of objects without a size argument.
    List(&'static str),
    /// A plain list of objects sized by `first` (e.g. `Order.fulfillments(first:)`).
    SizedList(&'static str),
    /// A Relay connection of this node type, sized by `first`.
    Connection(&'static str),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct FieldDef {
    pub kind: Kind,
    pub args: &'static [&'static str],
}

const fn f(kind: Kind, args: &'static [&'static str]) -> Option<FieldDef> {
    Some(FieldDef { kind, args })
}
const S: Kind = Kind::Scalar;
const NO: &[&str] = &[];
const PAGE: &[&str] = &[
    "first", "after", "last", "before", "query", "sortKey", "reverse",
];
const MF: &[&str] = &["namespace", "key"];
const MFS: &[&str] = &["first", "after", "last", "before", "namespace", "keys"];

pub(crate) const QUERY_ROOT: &str = "QueryRoot";
pub(crate) const MUTATION_ROOT: &str = "Mutation";

/// Union and interface members. Discount members other than `DiscountAutomaticApp` exist so that
/// documents with fragments on them validate; the simulator never returns them.
pub(crate) fn possible_types(ty: &str) -> Option<&'static [&'static str]> {
    Some(match ty {
        "Discount" => &[
            "DiscountAutomaticApp",
            "DiscountAutomaticBasic",
            "DiscountAutomaticBxgy",
            "DiscountAutomaticFreeShipping",
            "DiscountCodeApp",
            "DiscountCodeBasic",
            "DiscountCodeBxgy",
            "DiscountCodeFreeShipping",
        ],
        "Node" => &[
            "Customer",
            "Order",
            "Product",
            "ProductVariant",
            "DiscountAutomaticNode",
            "DiscountNode",
            "Metafield",
            "Location",
            "InventoryItem",
        ],
        "HasMetafields" => &[
            "Customer",
            "Order",
            "Product",
            "ProductVariant",
            "DiscountNode",
            "Shop",
        ],
        _ => return None,
    })
}

/// Whether `ty` is a type of the subset (object, union or interface).
pub(crate) fn type_exists(ty: &str) -> bool {
    possible_types(ty).is_some() || is_object(ty)
}

fn is_object(ty: &str) -> bool {
    const OBJECTS: &[&str] = &[
        QUERY_ROOT,
        MUTATION_ROOT,
        "Shop",
        "Customer",
        "CustomerEmailAddress",
        "MoneyV2",
        "MoneyBag",
        "Order",
        "LineItem",
        "Fulfillment",
        "FulfillmentTrackingInfo",
        "ProductVariant",
        "Product",
        "InventoryItem",
        "InventoryLevel",
        "InventoryQuantity",
        "Location",
        "DiscountNode",
        "DiscountAutomaticNode",
        "DiscountAutomaticApp",
        "DiscountAutomaticBasic",
        "DiscountAutomaticBxgy",
        "DiscountAutomaticFreeShipping",
        "DiscountCodeApp",
        "DiscountCodeBasic",
        "DiscountCodeBxgy",
        "DiscountCodeFreeShipping",
        "DiscountCombinesWith",
        "Metafield",
        "PageInfo",
        "UserError",
        "MetafieldsSetUserError",
        "DiscountUserError",
        "TagsAddPayload",
        "TagsRemovePayload",
        "MetafieldsSetPayload",
        "FlowTriggerReceivePayload",
        "DiscountAutomaticAppCreatePayload",
        "DiscountAutomaticAppUpdatePayload",
    ];
    OBJECTS.contains(&ty) || connection_node(ty).is_some() || edge_node(ty).is_some()
}

/// Whether an object of concrete type `concrete` satisfies the type condition `condition`.
pub(crate) fn satisfies(concrete: &str, condition: &str) -> bool {
    concrete == condition || possible_types(condition).is_some_and(|p| p.contains(&concrete))
}

/// The concrete types an object of (possibly abstract) type `ty` can be.
pub(crate) fn concrete_types(ty: &'static str) -> Vec<&'static str> {
    match possible_types(ty) {
        Some(p) => p.to_vec(),
        None => vec![ty],
    }
}

const CONNECTION_NODES: &[(&str, &str, &str)] = &[
    ("Customer", "CustomerConnection", "CustomerEdge"),
    ("Order", "OrderConnection", "OrderEdge"),
    (
        "ProductVariant",
        "ProductVariantConnection",
        "ProductVariantEdge",
    ),
    ("DiscountNode", "DiscountNodeConnection", "DiscountNodeEdge"),
    ("LineItem", "LineItemConnection", "LineItemEdge"),
    (
        "InventoryLevel",
        "InventoryLevelConnection",
        "InventoryLevelEdge",
    ),
    ("Metafield", "MetafieldConnection", "MetafieldEdge"),
];

pub(crate) fn connection_type(node: &str) -> &'static str {
    CONNECTION_NODES
        .iter()
        .find(|(n, _, _)| *n == node)
        .map_or("Connection", |(_, c, _)| c)
}

pub(crate) fn connection_node(conn: &str) -> Option<&'static str> {
    CONNECTION_NODES
        .iter()
        .find(|(_, c, _)| *c == conn)
        .map(|(n, _, _)| *n)
}

pub(crate) fn edge_node(edge: &str) -> Option<&'static str> {
    CONNECTION_NODES
        .iter()
        .find(|(_, _, e)| *e == edge)
        .map(|(n, _, _)| *n)
}

fn edge_type(node: &str) -> &'static str {
    CONNECTION_NODES
        .iter()
        .find(|(n, _, _)| *n == node)
        .map_or("Edge", |(_, _, e)| e)
}

/// The static type name a field of this kind returns (for `__typename` on abstract fields the
/// executor supplies the concrete one).
pub(crate) fn kind_type(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Scalar => None,
        Kind::Object(t) | Kind::List(t) | Kind::SizedList(t) => Some(t),
        Kind::Connection(n) => Some(connection_type(n)),
    }
}

/// The definition of `ty.name`, if the subset has it.
pub(crate) fn field(ty: &str, name: &str) -> Option<FieldDef> {
    use Kind::{Connection, List, Object, SizedList};
    if name == "__typename" {
        return f(S, NO);
    }
    if let Some(node) = connection_node(ty) {
        return match name {
            "edges" => f(List(edge_type(node)), NO),
            "nodes" => f(List(node), NO),
            "pageInfo" => f(Object("PageInfo"), NO),
            _ => None,
        };
    }
    if let Some(node) = edge_node(ty) {
        return match name {
            "cursor" => f(S, NO),
            "node" => f(Object(node), NO),
            _ => None,
        };
    }
    match (ty, name) {
        (QUERY_ROOT, "shop") => f(Object("Shop"), NO),
        (QUERY_ROOT, "customer") => f(Object("Customer"), &["id"]),
        (QUERY_ROOT, "order") => f(Object("Order"), &["id"]),
        (QUERY_ROOT, "productVariant") => f(Object("ProductVariant"), &["id"]),
        (QUERY_ROOT, "customers") => f(Connection("Customer"), PAGE),
        (QUERY_ROOT, "orders") => f(Connection("Order"), PAGE),
        (QUERY_ROOT, "productVariants") => f(Connection("ProductVariant"), PAGE),
        (QUERY_ROOT, "discountNodes") => f(Connection("DiscountNode"), PAGE),

        (MUTATION_ROOT, "tagsAdd") => f(Object("TagsAddPayload"), &["id", "tags"]),
        (MUTATION_ROOT, "tagsRemove") => f(Object("TagsRemovePayload"), &["id", "tags"]),
        (MUTATION_ROOT, "metafieldsSet") => f(Object("MetafieldsSetPayload"), &["metafields"]),
        (MUTATION_ROOT, "flowTriggerReceive") => f(
            Object("FlowTriggerReceivePayload"),
            &["handle", "payload", "body"],
        ),
        (MUTATION_ROOT, "discountAutomaticAppCreate") => f(
            Object("DiscountAutomaticAppCreatePayload"),
            &["automaticAppDiscount"],
        ),
        (MUTATION_ROOT, "discountAutomaticAppUpdate") => f(
            Object("DiscountAutomaticAppUpdatePayload"),
            &["id", "automaticAppDiscount"],
        ),

        ("Shop", "id" | "name" | "email" | "myshopifyDomain" | "currencyCode") => f(S, NO),
        ("Shop", "metafield") => f(Object("Metafield"), MF),

        (
            "Customer",
            "id" | "email" | "tags" | "numberOfOrders" | "createdAt" | "updatedAt" | "firstName"
            | "lastName" | "displayName",
        ) => f(S, NO),
        ("Customer", "amountSpent") => f(Object("MoneyV2"), NO),
        ("Customer", "defaultEmailAddress") => f(Object("CustomerEmailAddress"), NO),
        ("CustomerEmailAddress", "emailAddress" | "marketingState") => f(S, NO),
        ("MoneyV2", "amount" | "currencyCode") => f(S, NO),
        ("MoneyBag", "shopMoney" | "presentmentMoney") => f(Object("MoneyV2"), NO),

        (
            "Order",
            "id"
            | "name"
            | "email"
            | "createdAt"
            | "updatedAt"
            | "processedAt"
            | "cancelledAt"
            | "displayFulfillmentStatus"
            | "displayFinancialStatus"
            | "tags",
        ) => f(S, NO),
        ("Order", "customer") => f(Object("Customer"), NO),
        ("Order", "totalPriceSet") => f(Object("MoneyBag"), NO),
        ("Order", "lineItems") => f(
            Connection("LineItem"),
            &["first", "after", "last", "before"],
        ),
        ("Order", "fulfillments") => f(SizedList("Fulfillment"), &["first"]),
        ("LineItem", "id" | "title" | "quantity" | "sku") => f(S, NO),
        ("LineItem", "variant") => f(Object("ProductVariant"), NO),
        (
            "Fulfillment",
            "id"
            | "name"
            | "status"
            | "displayStatus"
            | "createdAt"
            | "updatedAt"
            | "inTransitAt"
            | "deliveredAt"
            | "estimatedDeliveryAt",
        ) => f(S, NO),
        ("Fulfillment", "trackingInfo") => f(SizedList("FulfillmentTrackingInfo"), &["first"]),
        ("FulfillmentTrackingInfo", "company" | "number" | "url") => f(S, NO),

        ("ProductVariant", "id" | "sku" | "title" | "price" | "inventoryQuantity") => f(S, NO),
        ("ProductVariant", "product") => f(Object("Product"), NO),
        ("ProductVariant", "inventoryItem") => f(Object("InventoryItem"), NO),
        ("Product", "id" | "title" | "tags" | "createdAt" | "updatedAt") => f(S, NO),
        ("InventoryItem", "id" | "sku") => f(S, NO),
        ("InventoryItem", "inventoryLevels") => f(
            Connection("InventoryLevel"),
            &["first", "after", "last", "before", "query"],
        ),
        ("InventoryLevel", "id") => f(S, NO),
        ("InventoryLevel", "location") => f(Object("Location"), NO),
        ("InventoryLevel", "quantities") => f(List("InventoryQuantity"), &["names"]),
        ("InventoryQuantity", "name" | "quantity") => f(S, NO),
        ("Location", "id" | "name") => f(S, NO),

        ("DiscountNode" | "DiscountAutomaticNode", "id") => f(S, NO),
        ("DiscountNode", "discount") => f(Object("Discount"), NO),
        ("DiscountAutomaticNode", "automaticDiscount") => f(Object("Discount"), NO),
        (
            "DiscountAutomaticApp"
            | "DiscountAutomaticBasic"
            | "DiscountAutomaticBxgy"
            | "DiscountAutomaticFreeShipping"
            | "DiscountCodeApp"
            | "DiscountCodeBasic"
            | "DiscountCodeBxgy"
            | "DiscountCodeFreeShipping",
            "title" | "status" | "startsAt" | "endsAt" | "discountClasses",
        ) => f(S, NO),
        ("DiscountAutomaticApp", "discountId" | "createdAt" | "updatedAt") => f(S, NO),
        ("DiscountAutomaticApp", "combinesWith") => f(Object("DiscountCombinesWith"), NO),
        ("DiscountCombinesWith", "orderDiscounts" | "productDiscounts" | "shippingDiscounts") => {
            f(S, NO)
        }

        (
            "Customer"
            | "Order"
            | "Product"
            | "ProductVariant"
            | "DiscountNode"
            | "DiscountAutomaticNode",
            "metafield",
        ) => f(Object("Metafield"), MF),
        ("Customer" | "Order" | "Product" | "ProductVariant" | "DiscountNode", "metafields") => {
            f(Connection("Metafield"), MFS)
        }
        (
            "Metafield",
            "id" | "namespace" | "key" | "type" | "value" | "compareDigest" | "createdAt"
            | "updatedAt" | "ownerType",
        ) => f(S, NO),

        ("PageInfo", "hasNextPage" | "hasPreviousPage" | "startCursor" | "endCursor") => f(S, NO),
        ("Node", "id") => f(S, NO),

        ("UserError", "field" | "message") => f(S, NO),
        ("MetafieldsSetUserError", "field" | "message" | "code" | "elementIndex") => f(S, NO),
        ("DiscountUserError", "field" | "message" | "code" | "extraInfo") => f(S, NO),
        ("TagsAddPayload" | "TagsRemovePayload", "node") => f(Object("Node"), NO),
        ("TagsAddPayload" | "TagsRemovePayload" | "FlowTriggerReceivePayload", "userErrors") => {
            f(List("UserError"), NO)
        }
        ("MetafieldsSetPayload", "metafields") => f(List("Metafield"), NO),
        ("MetafieldsSetPayload", "userErrors") => f(List("MetafieldsSetUserError"), NO),
        (
            "DiscountAutomaticAppCreatePayload" | "DiscountAutomaticAppUpdatePayload",
            "automaticAppDiscount",
        ) => f(Object("DiscountAutomaticApp"), NO),
        (
            "DiscountAutomaticAppCreatePayload" | "DiscountAutomaticAppUpdatePayload",
            "userErrors",
        ) => f(List("DiscountUserError"), NO),
        _ => None,
    }
}
