//! The stateful Admin GraphQL fake over real HTTP: Keel's own operation documents (read from
//! `app-server/src/shopify/admin/operations/` at test time), generic GraphQL features, cost and
//! throttling, `@idempotent`, faults, userErrors and Flow's payload limit.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use shopify_sim::{
    DropFault, ErrorFault, Faults, Plan, RateLimitFault, Seed, Sim, ThrottleConfig, API_VERSION,
    INVALID_ACCESS_TOKEN_MESSAGE, MAINTENANCE_MESSAGE,
};

use super::{control, http, sim, StatusCode, SHOP};

const ADA: u64 = 7410000001;
const BRUNO: u64 = 7410000002;
const ADA_GID: &str = "gid://shopify/Customer/7410000001";
const BRUNO_GID: &str = "gid://shopify/Customer/7410000002";

fn fixture() -> Seed {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/keel-demo.json");
    let text = std::fs::read_to_string(path).expect("fixture readable");
    Seed::from_json(&text).expect("fixture parses")
}

/// Keel's operation document `name`.graphql, as the Admin client sends it.
fn operation(name: &str) -> String {
    let path = format!(
        "{}/../app-server/src/shopify/admin/operations/{name}.graphql",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A simulator with the demo fixture seeded and an offline token for [`SHOP`].
async fn seeded() -> (Sim, String) {
    let sim = sim().await;
    sim.seed(SHOP, fixture());
    let token = sim
        .issue_offline_token(SHOP, true)
        .expect("installed")
        .access_token;
    (sim, token)
}

async fn send(
    sim: &Sim,
    token: &str,
    query: &str,
    variables: Value,
) -> reqwest::Result<reqwest::Response> {
    http()
        .post(format!(
            "{}/admin/api/{API_VERSION}/graphql.json",
            sim.origin()
        ))
        .header("X-Shopify-Shop-Domain", SHOP)
        .header("X-Shopify-Access-Token", token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
}

async fn gql(sim: &Sim, token: &str, query: &str, variables: Value) -> (StatusCode, Value) {
    let response = send(sim, token, query, variables)
        .await
        .expect("admin API reachable");
    let status = response.status();
    (status, response.json().await.expect("JSON body"))
}

/// Runs a query that must succeed; returns `data` and `extensions.cost`.
async fn ok(sim: &Sim, token: &str, query: &str, variables: Value) -> (Value, Value) {
    let (status, body) = gql(sim, token, query, variables).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("errors").is_none(), "unexpected errors: {body}");
    (body["data"].clone(), body["extensions"]["cost"].clone())
}

fn requested(cost: &Value) -> u64 {
    cost["requestedQueryCost"]
        .as_u64()
        .expect("requestedQueryCost")
}

// ---- Keel's documents ----------------------------------------------------------------------------

#[tokio::test]
async fn keel_read_documents_return_shopifys_shapes() {
    let (sim, token) = seeded().await;

    let (data, _) = ok(&sim, &token, &operation("shop"), json!({})).await;
    assert_eq!(data["shop"]["myshopifyDomain"], SHOP);
    assert_eq!(data["shop"]["currencyCode"], "USD");
    assert!(data["shop"]["id"]
        .as_str()
        .unwrap()
        .starts_with("gid://shopify/Shop/"));

    let (data, cost) = ok(
        &sim,
        &token,
        &operation("customer"),
        json!({ "id": ADA_GID }),
    )
    .await;
    assert_eq!(
        data["customer"],
        json!({
            "id": ADA_GID,
            "tags": ["VIP", "newsletter"],
            "numberOfOrders": "2",
            "amountSpent": { "amount": "284.0", "currencyCode": "USD" },
            "defaultEmailAddress": { "emailAddress": "ada.quill@example.com", "marketingState": "SUBSCRIBED" },
            "vipTier": { "value": "Gold" },
            "suppressedUntil": null,
            "openIssues": null,
        })
    );
    // Actual cost counts what came back: customer, amountSpent, defaultEmailAddress, vipTier.
    assert_eq!(cost["actualQueryCost"], 4);
    let (data, _) = ok(
        &sim,
        &token,
        &operation("customer"),
        json!({ "id": "gid://shopify/Customer/1" }),
    )
    .await;
    assert_eq!(data["customer"], Value::Null);

    // Pagination with opaque cursors over a `tag:` search.
    let customers_page = operation("customers_page");
    let (data, _) = ok(
        &sim,
        &token,
        &customers_page,
        json!({ "first": 1, "query": "tag:VIP" }),
    )
    .await;
    let page = &data["customers"];
    assert_eq!(page["edges"][0]["node"]["id"], ADA_GID);
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let cursor = page["pageInfo"]["endCursor"].as_str().unwrap().to_owned();
    assert_eq!(page["edges"][0]["cursor"], cursor.as_str());
    let (data, _) = ok(
        &sim,
        &token,
        &customers_page,
        json!({ "first": 1, "after": cursor, "query": "tag:VIP" }),
    )
    .await;
    let page = &data["customers"];
    assert_eq!(
        page["edges"][0]["node"]["id"],
        "gid://shopify/Customer/7410000003"
    );
    assert_eq!(page["edges"][0]["node"]["numberOfOrders"], "14");
    assert_eq!(page["edges"][0]["node"]["amountSpent"]["amount"], "2310.4");
    assert_eq!(page["pageInfo"]["hasNextPage"], false);
    let (data, _) = ok(
        &sim,
        &token,
        &customers_page,
        json!({ "first": 10, "query": "updated_at:>=2026-11-01 -tag:VIP" }),
    )
    .await;
    let ids: Vec<&str> = data["customers"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [BRUNO_GID, "gid://shopify/Customer/7410000004"]);

    let (data, _) = ok(
        &sim,
        &token,
        &operation("order"),
        json!({ "id": "gid://shopify/Order/5820000001" }),
    )
    .await;
    let order = &data["order"];
    assert_eq!(order["name"], "#1001");
    assert_eq!(order["displayFulfillmentStatus"], "FULFILLED");
    assert_eq!(order["displayFinancialStatus"], "PAID");
    assert_eq!(order["customer"]["id"], ADA_GID);
    assert_eq!(
        order["totalPriceSet"]["shopMoney"],
        json!({ "amount": "184.0", "currencyCode": "USD" })
    );
    assert_eq!(order["cancelledAt"], Value::Null);
    assert_eq!(
        order["fulfillments"],
        json!([{
            "id": "gid://shopify/Fulfillment/6610000001",
            "status": "SUCCESS",
            "displayStatus": "DELIVERED",
            "createdAt": "2026-11-04T09:00:00Z",
            "inTransitAt": "2026-11-04T17:30:00Z",
            "deliveredAt": "2026-11-07T11:02:00Z",
            "estimatedDeliveryAt": "2026-11-07T00:00:00Z",
        }])
    );
    assert_eq!(order["delay"], Value::Null);

    let orders_page = operation("orders_page");
    let (data, _) = ok(
        &sim,
        &token,
        &orders_page,
        json!({ "first": 10, "query": "fulfillment_status:unfulfilled created_at:<2026-11-20" }),
    )
    .await;
    let names: Vec<&str> = data["orders"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["#1003"]);
    let (data, _) = ok(&sim, &token, &orders_page, json!({ "first": 10 })).await;
    let edges = data["orders"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 4);
    assert_eq!(
        edges[1]["node"]["fulfillments"][0]["displayStatus"],
        "IN_TRANSIT"
    );
    assert_eq!(
        edges[1]["node"]["fulfillments"][0]["deliveredAt"],
        Value::Null
    );

    let (data, _) = ok(
        &sim,
        &token,
        &operation("variant_inventory"),
        json!({ "id": "gid://shopify/ProductVariant/4470000001" }),
    )
    .await;
    let v = &data["productVariant"];
    assert_eq!(v["sku"], "TOTE-NAT");
    assert_eq!(v["inventoryQuantity"], 35);
    assert_eq!(
        v["product"],
        json!({ "id": "gid://shopify/Product/3350000001", "title": "Canvas Tote" })
    );
    assert_eq!(
        v["inventoryItem"]["id"],
        "gid://shopify/InventoryItem/8880000001"
    );
    let levels = v["inventoryItem"]["inventoryLevels"]["edges"]
        .as_array()
        .unwrap();
    assert_eq!(levels.len(), 2);
    assert_eq!(
        levels[0]["node"]["location"]["name"],
        "Harbour Street Warehouse"
    );
    assert_eq!(
        levels[0]["node"]["quantities"],
        json!([{ "name": "available", "quantity": 31 }])
    );

    let (data, _) = ok(
        &sim,
        &token,
        &operation("variants_page"),
        json!({ "first": 10, "query": "inventory_quantity:<10" }),
    )
    .await;
    let skus: Vec<&str> = data["productVariants"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["sku"].as_str().unwrap())
        .collect();
    assert_eq!(skus, ["TOTE-BLK", "APRON-SLT"]);

    let (data, _) = ok(
        &sim,
        &token,
        &operation("discount_nodes"),
        json!({ "first": 10 }),
    )
    .await;
    let node = &data["discountNodes"]["edges"][0]["node"];
    assert_eq!(node["id"], "gid://shopify/DiscountAutomaticNode/1190000001");
    assert_eq!(
        node["discount"],
        json!({ "__typename": "DiscountAutomaticApp", "title": "VIP pricing", "status": "ACTIVE", "discountClasses": ["PRODUCT"] })
    );
    assert!(node["config"]["value"]
        .as_str()
        .unwrap()
        .contains("\"Gold\":15"));
}

#[tokio::test]
async fn keel_mutation_documents_apply_once_and_answer_like_shopify() {
    let (sim, token) = seeded().await;

    let (data, cost) = ok(
        &sim,
        &token,
        &operation("tags_add"),
        json!({ "id": BRUNO_GID, "tags": ["VIP", "Gold"] }),
    )
    .await;
    assert_eq!(
        data["tagsAdd"],
        json!({ "node": { "id": BRUNO_GID }, "userErrors": [] })
    );
    assert_eq!(
        (requested(&cost), cost["actualQueryCost"].as_u64()),
        (10, Some(10))
    );
    // Re-adding is a no-op (case-insensitive), but still an accepted call.
    ok(
        &sim,
        &token,
        &operation("tags_add"),
        json!({ "id": BRUNO_GID, "tags": ["vip"] }),
    )
    .await;
    assert_eq!(sim.customer_tags(SHOP, BRUNO).unwrap(), ["VIP", "Gold"]);
    let (data, _) = ok(
        &sim,
        &token,
        &operation("tags_remove"),
        json!({ "id": BRUNO_GID, "tags": ["Gold"] }),
    )
    .await;
    assert_eq!(data["tagsRemove"]["userErrors"], json!([]));
    assert_eq!(sim.customer_tags(SHOP, BRUNO).unwrap(), ["VIP"]);
    let (data, _) = ok(
        &sim,
        &token,
        &operation("tags_add"),
        json!({ "id": "gid://shopify/Customer/404", "tags": ["VIP"] }),
    )
    .await;
    assert_eq!(data["tagsAdd"]["node"], Value::Null);
    assert_eq!(data["tagsAdd"]["userErrors"][0]["field"], json!(["id"]));
    // Products and orders take tags too.
    ok(
        &sim,
        &token,
        &operation("tags_add"),
        json!({ "id": "gid://shopify/Order/5820000002", "tags": "late, flagged" }),
    )
    .await;
    assert_eq!(
        sim.order(SHOP, 5820000002).unwrap().tags,
        ["late", "flagged"]
    );

    let (data, _) = ok(
        &sim,
        &token,
        &operation("metafields_set"),
        json!({ "metafields": [
            { "ownerId": BRUNO_GID, "namespace": "$app", "key": "vip_tier", "type": "single_line_text_field", "value": "Silver" },
            { "ownerId": "gid://shopify/Order/5820000002", "namespace": "$app", "key": "delay", "type": "number_integer", "value": "3" }
        ] }),
    )
    .await;
    let set = &data["metafieldsSet"];
    assert_eq!(set["userErrors"], json!([]));
    assert_eq!(
        set["metafields"][0]["namespace"],
        "app--keel-test-client-id"
    );
    assert_eq!(set["metafields"][0]["value"], "Silver");
    assert!(set["metafields"][0]["id"]
        .as_str()
        .unwrap()
        .starts_with("gid://shopify/Metafield/"));
    assert_eq!(
        sim.metafield(SHOP, BRUNO_GID, "$app", "vip_tier")
            .unwrap()
            .value,
        "Silver"
    );
    let (data, _) = ok(
        &sim,
        &token,
        &operation("order"),
        json!({ "id": "gid://shopify/Order/5820000002" }),
    )
    .await;
    assert_eq!(data["order"]["delay"]["value"], "3");

    let payload = json!({ "customer_id": BRUNO, "Tier name": "Silver" });
    let (data, _) = ok(&sim, &token, &operation("flow_trigger_receive"), json!({ "handle": "vip-customer-qualified", "payload": payload, "idempotencyKey": "flow-1" })).await;
    assert_eq!(data["flowTriggerReceive"]["userErrors"], json!([]));
    let triggers = sim.flow_triggers(SHOP);
    assert_eq!(triggers.len(), 1);
    assert_eq!(
        (triggers[0].shop.as_str(), triggers[0].handle.as_str()),
        (SHOP, "vip-customer-qualified")
    );
    assert_eq!(triggers[0].payload, payload);

    let discount = json!({
        "title": "VIP pricing 2", "functionHandle": "vip-discount", "discountClasses": ["PRODUCT", "SHIPPING"],
        "combinesWith": { "orderDiscounts": true, "productDiscounts": false, "shippingDiscounts": false },
        "startsAt": "2026-11-01T00:00:00Z",
        "metafields": [{ "namespace": "$app:vip", "key": "config", "type": "json", "value": "{\"minOrders\":2}" }]
    });
    let (data, _) = ok(
        &sim,
        &token,
        &operation("discount_automatic_app_create"),
        json!({ "discount": discount, "idempotencyKey": "create-1" }),
    )
    .await;
    let created = &data["discountAutomaticAppCreate"];
    assert_eq!(created["userErrors"], json!([]));
    assert_eq!(created["automaticAppDiscount"]["title"], "VIP pricing 2");
    assert_eq!(created["automaticAppDiscount"]["status"], "ACTIVE");
    let id = created["automaticAppDiscount"]["discountId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        id.starts_with("gid://shopify/DiscountAutomaticNode/"),
        "{id}"
    );
    assert_eq!(
        sim.metafield(SHOP, &id, "$app:vip", "config")
            .unwrap()
            .value,
        "{\"minOrders\":2}"
    );

    let (data, _) = ok(
        &sim,
        &token,
        &operation("discount_automatic_app_update"),
        json!({ "id": id, "discount": { "title": "VIP pricing (winter)", "endsAt": "2027-03-01T00:00:00Z" } }),
    )
    .await;
    assert_eq!(
        data["discountAutomaticAppUpdate"]["automaticAppDiscount"]["title"],
        "VIP pricing (winter)"
    );
    let stored = sim
        .discounts(SHOP)
        .into_iter()
        .find(|d| d.gid() == id)
        .unwrap();
    assert_eq!(stored.discount_classes, ["PRODUCT", "SHIPPING"]);
    assert_eq!(stored.function_handle, "vip-discount");

    let log: Vec<String> = sim
        .mutation_log(SHOP)
        .into_iter()
        .map(|m| m.mutation)
        .collect();
    assert_eq!(
        log,
        [
            "tagsAdd",
            "tagsAdd",
            "tagsRemove",
            "tagsAdd",
            "metafieldsSet",
            "flowTriggerReceive",
            "discountAutomaticAppCreate",
            "discountAutomaticAppUpdate"
        ],
        "refused calls (unknown id) are not logged"
    );
}

// ---- generic GraphQL -----------------------------------------------------------------------------

#[tokio::test]
async fn aliases_fragments_directives_and_typename_are_evaluated_generally() {
    let (sim, token) = seeded().await;
    let query = r#"
        query Two($a: ID!, $b: ID!, $withTags: Boolean = false) {
          first: customer(id: $a) { ...Who __typename }
          second: customer(id: $b) {
            ... on Customer { email }
            ...Who
            tags @include(if: $withTags)
            spent: amountSpent { value: amount }
          }
          nodes: discountNodes(first: 5, query: "status:active") {
            nodes { discount { __typename ... on DiscountCodeBasic { title } ... on DiscountAutomaticApp { startsAt endsAt } } }
          }
        }
        fragment Who on Customer { id tier: metafield(key: "vip_tier") { value type } }
    "#;
    let (data, cost) = ok(&sim, &token, query, json!({ "a": ADA_GID, "b": BRUNO_GID })).await;
    assert_eq!(
        data,
        json!({
            "first": { "id": ADA_GID, "tier": { "value": "Gold", "type": "single_line_text_field" }, "__typename": "Customer" },
            "second": { "email": "bruno.lark@example.com", "id": BRUNO_GID, "tier": null, "spent": { "value": "42.0" } },
            "nodes": { "nodes": [{ "discount": { "__typename": "DiscountAutomaticApp", "startsAt": "2026-11-01T00:00:00Z", "endsAt": null } }] },
        })
    );
    // 2 customers × (1 + metafield 1) + amountSpent 1 + discountNodes (2 + 5 × (1 + discount 1)).
    assert_eq!(requested(&cost), 2 + 2 + 1 + 12);
    // Operation choice by name.
    let doc = "query A { shop { name } } query B { shop { id } }";
    let response = http()
        .post(format!(
            "{}/admin/api/{API_VERSION}/graphql.json",
            sim.origin()
        ))
        .header("X-Shopify-Access-Token", &token)
        .json(&json!({ "query": doc, "operationName": "B" }))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert!(body["data"]["shop"]["id"].is_string(), "{body}");
}

#[tokio::test]
async fn invalid_documents_get_shopify_shaped_errors_with_status_200() {
    let (sim, token) = seeded().await;
    let (status, body) = gql(
        &sim,
        &token,
        "query Q($id: ID!) {\n  customer(id: $id) {\n    id\n    loyalty\n  }\n}",
        json!({ "id": ADA_GID }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.get("data").is_none());
    let e = &body["errors"][0];
    assert_eq!(
        e["message"],
        "Field 'loyalty' doesn't exist on type 'Customer'"
    );
    assert_eq!(e["locations"], json!([{ "line": 4, "column": 5 }]));
    assert_eq!(e["path"], json!(["query Q", "customer", "loyalty"]));
    assert_eq!(
        e["extensions"],
        json!({ "code": "undefinedField", "typeName": "Customer", "fieldName": "loyalty" })
    );

    let (status, body) = gql(
        &sim,
        &token,
        "{ customers(first: 251) { nodes { id } } }",
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("250"),
        "{body}"
    );
    let (_, body) = gql(&sim, &token, "{ customers { nodes { id } } }", json!({})).await;
    assert_eq!(
        body["errors"][0]["message"],
        "you must provide one of first or last"
    );
    let (_, body) = gql(
        &sim,
        &token,
        "{ customer(id: \"gid://shopify/Customer/1\", foo: 1) { id } }",
        json!({}),
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "argumentNotAccepted"
    );
    let (_, body) = gql(&sim, &token, "{ shop { name }", json!({})).await;
    assert!(
        body["errors"][0]["locations"][0]["line"].is_number(),
        "{body}"
    );
    let (_, body) = gql(
        &sim,
        &token,
        "query Q($id: ID!) { customer(id: $id) { id } }",
        json!({}),
    )
    .await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("$id"),
        "{body}"
    );
    let (_, body) = gql(&sim, &token, "{ shop { ...Missing } }", json!({})).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "useAndDefineFragment"
    );
}

// ---- cost ----------------------------------------------------------------------------------------

/// Requested costs of Keel's documents against the numbers Shopify documents for comparable
/// queries. Sources:
/// - [RL] shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits, "Cost calculation": scalar
///   and enum 0, object 1, connection sized by `first` (2 + first × node), mutation 10;
/// - [BLOG] Shopify Engineering, "Rate limiting GraphQL APIs by calculating query complexity":
///   `shop { id name … }` costs 1; a connection costs "two points plus the number of objects";
///   `products(first: 10) { … variants(first: 5) { … } }` style nesting multiplies (82 points for
///   10 × 5 with one scalar per node); mutations cost 10.
#[tokio::test]
async fn requested_costs_of_keel_documents_are_within_ten_percent_of_shopifys_numbers() {
    let (sim, token) = seeded().await;
    let sim_cost = |doc: String, vars: Value| {
        let (sim, token) = (sim.clone(), token.clone());
        async move {
            let (status, body) = gql(&sim, &token, &doc, vars).await;
            assert_eq!(status, StatusCode::OK);
            requested(&body["extensions"]["cost"])
        }
    };
    // (what, simulator's number, Shopify's number for the comparable query, why comparable)
    let cases = [
        ("shop {…} [BLOG]", sim_cost("{ shop { id name } }".into(), json!({})).await, 1),
        ("connection of 50 objects [BLOG]", sim_cost("{ customers(first: 50) { edges { node { id } } } }".into(), json!({})).await, 52),
        ("10 × 5 nested connection [RL]", sim_cost("{ orders(first: 10) { edges { node { id lineItems(first: 5) { edges { node { title } } } } } } }".into(), json!({})).await, 82),
        ("shop.graphql: one object [BLOG]", sim_cost(operation("shop"), json!({})).await, 1),
        ("customer.graphql: customer + 2 money/email objects + 3 metafields [RL]", sim_cost(operation("customer"), json!({ "id": ADA_GID })).await, 6),
        ("customers_page.graphql first 50: 2 + 50 × (node + amountSpent) [RL]", sim_cost(operation("customers_page"), json!({ "first": 50 })).await, 102),
        ("order.graphql: 5 objects + fulfillments(first: 10) list [RL]", sim_cost(operation("order"), json!({ "id": "gid://shopify/Order/5820000001" })).await, 17),
        ("orders_page.graphql first 50 [RL]", sim_cost(operation("orders_page"), json!({ "first": 50 })).await, 702),
        ("variant_inventory.graphql: inventoryLevels(first: 50) [RL]", sim_cost(operation("variant_inventory"), json!({ "id": "gid://shopify/ProductVariant/4470000001" })).await, 155),
        ("variants_page.graphql first 50 [RL]", sim_cost(operation("variants_page"), json!({ "first": 50 })).await, 102),
        ("discount_nodes.graphql first 50 [RL]", sim_cost(operation("discount_nodes"), json!({ "first": 50 })).await, 152),
        ("tags_add.graphql: mutation [BLOG]", sim_cost(operation("tags_add"), json!({ "id": BRUNO_GID, "tags": ["x"] })).await, 10),
        ("metafields_set.graphql: mutation [BLOG]", sim_cost(operation("metafields_set"), json!({ "metafields": [] })).await, 10),
        ("flow_trigger_receive.graphql: mutation [BLOG]", sim_cost(operation("flow_trigger_receive"), json!({ "handle": "order-delayed", "payload": {}, "idempotencyKey": "cost-1" })).await, 10),
    ];
    for (what, got, shopify) in cases {
        let diff = (got as f64 - shopify as f64).abs() / shopify as f64;
        assert!(diff <= 0.10, "{what}: simulator {got}, Shopify {shopify}");
    }
}

#[tokio::test]
async fn queries_over_the_single_query_limit_are_refused_before_execution() {
    let (sim, token) = seeded().await;
    let (status, body) = gql(
        &sim,
        &token,
        &operation("orders_page"),
        json!({ "first": 100 }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.get("data").is_none());
    assert_eq!(body["errors"][0]["extensions"]["code"], "MAX_COST_EXCEEDED");
    assert_eq!(body["errors"][0]["extensions"]["cost"], 1402);
    assert_eq!(body["extensions"]["cost"]["requestedQueryCost"], 1402);
    assert_eq!(sim.throttle_status(SHOP).currently_available, 2000.0);
}

// ---- throttling ----------------------------------------------------------------------------------

#[tokio::test]
async fn the_bucket_refuses_over_budget_queries_and_refills_at_the_plan_rate() {
    let (sim, token) = seeded().await;
    let page = operation("customers_page"); // requested 2 + 50 × 2 = 102
    let (_, cost) = ok(&sim, &token, &page, json!({ "first": 50 })).await;
    // 4 customers came back: actual 2 + 4 × 2 = 10, and 92 points were refunded.
    assert_eq!(
        (requested(&cost), cost["actualQueryCost"].as_u64()),
        (102, Some(10))
    );
    let status = &cost["throttleStatus"];
    assert_eq!(status["maximumAvailable"], 2000.0);
    assert_eq!(status["restoreRate"], 100.0);
    assert!(
        status["currentlyAvailable"].as_f64().unwrap() >= 1990.0,
        "{status}"
    );

    sim.set_throttle(
        SHOP,
        ThrottleConfig {
            plan: Plan::Standard,
            maximum_available: None,
            currently_available: Some(50.0),
        },
    );
    let (status, body) = gql(&sim, &token, &page, json!({ "first": 50 })).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.get("data").is_none());
    assert_eq!(
        body["errors"],
        json!([{ "message": "Throttled", "extensions": { "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits" } }])
    );
    let cost = &body["extensions"]["cost"];
    assert_eq!(cost["requestedQueryCost"], 102);
    assert_eq!(cost["actualQueryCost"], Value::Null);
    let available = cost["throttleStatus"]["currentlyAvailable"]
        .as_f64()
        .unwrap();
    assert!((50.0..60.0).contains(&available), "{available}");
    assert_eq!(sim.throttle_refusals(SHOP), 1);

    // Wait as Shopify's clients do: (requested − available) / restoreRate.
    tokio::time::sleep(Duration::from_secs_f64((102.0 - available) / 100.0 + 0.05)).await;
    ok(&sim, &token, &page, json!({ "first": 50 })).await;
    assert_eq!(sim.throttle_refusals(SHOP), 1);

    // Restore rates per plan.
    for (plan, rate) in [
        (Plan::Standard, 100.0),
        (Plan::Advanced, 200.0),
        (Plan::Plus, 1000.0),
        (Plan::Enterprise, 2000.0),
    ] {
        sim.set_throttle(
            SHOP,
            ThrottleConfig {
                plan,
                maximum_available: Some(100_000.0),
                currently_available: Some(0.0),
            },
        );
        let started = Instant::now();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let elapsed = started.elapsed().as_secs_f64();
        let status = sim.throttle_status(SHOP);
        assert_eq!(status.restore_rate, rate);
        let expected = rate * elapsed;
        assert!(
            (status.currently_available - expected).abs() <= rate * 0.1 + 1.0,
            "{plan:?}: {} after {elapsed} s",
            status.currently_available
        );
    }
    // The default bucket of a plan is 20 s of restore; control API shows the same.
    sim.set_throttle(
        SHOP,
        ThrottleConfig {
            plan: Plan::Plus,
            ..ThrottleConfig::default()
        },
    );
    let (_, body) = control(&sim, Method::GET, &format!("/shops/{SHOP}/throttle"), None).await;
    assert_eq!(body["maximumAvailable"], 20_000.0);
    assert_eq!(body["restoreRate"], 1000.0);
    assert_eq!(body["refusals"], 1);
    let (_, body) = control(
        &sim,
        Method::PUT,
        &format!("/shops/{SHOP}/throttle"),
        Some(json!({ "plan": "standard", "maximum_available": 500.0 })),
    )
    .await;
    assert_eq!(
        (body["maximumAvailable"].as_f64(), body["plan"].as_str()),
        (Some(500.0), Some("standard"))
    );
}

// ---- @idempotent ---------------------------------------------------------------------------------

#[tokio::test]
async fn idempotent_mutations_apply_once_and_replay_the_first_result() {
    let (sim, token) = seeded().await;
    let create = r#"mutation C($d: DiscountAutomaticAppInput!, $key: String!) {
        discountAutomaticAppCreate(automaticAppDiscount: $d) @idempotent(key: $key) {
          automaticAppDiscount { discountId title } userErrors { field message }
        }
    }"#;
    let vars = json!({ "key": "9d7a3c1e-0b5f-4e4a-8f51-2f0e6c1d7a11", "d": { "title": "Once", "functionHandle": "vip-discount", "startsAt": "2026-11-01T00:00:00Z" } });
    let (first, _) = ok(&sim, &token, create, vars.clone()).await;
    let (second, _) = ok(&sim, &token, create, vars).await;
    assert_eq!(first, second);
    assert_eq!(
        sim.discounts(SHOP)
            .iter()
            .filter(|d| d.title == "Once")
            .count(),
        1
    );
    let log = sim.mutation_log(SHOP);
    assert_eq!(log.len(), 1);
    assert_eq!(
        log[0].idempotency_key.as_deref(),
        Some("9d7a3c1e-0b5f-4e4a-8f51-2f0e6c1d7a11")
    );

    // A different key is a different operation.
    let (third, _) = ok(&sim, &token, create, json!({ "key": "other", "d": { "title": "Once", "functionHandle": "vip-discount", "startsAt": "2026-11-01T00:00:00Z" } })).await;
    assert_ne!(third, first);
    assert_eq!(sim.mutation_log(SHOP).len(), 2);
}

// ---- faults --------------------------------------------------------------------------------------

const TAG_BRUNO: &str = r#"mutation T($key: String!) { tagsAdd(id: "gid://shopify/Customer/7410000002", tags: ["Faulty"]) @idempotent(key: $key) { node { id } userErrors { field message } } }"#;

/// Keel-like client loop: retries 5xx, 429 and connection errors with the same idempotency key.
async fn retrying(sim: &Sim, token: &str, query: &str, vars: Value) -> (u32, Value) {
    for attempt in 1..=10 {
        match send(sim, token, query, vars.clone()).await {
            Ok(r) if r.status().is_success() => return (attempt, r.json().await.unwrap()),
            Ok(r) => assert!(
                r.status().is_server_error() || r.status() == StatusCode::TOO_MANY_REQUESTS,
                "{}",
                r.status()
            ),
            Err(e) => assert!(e.is_request() || e.is_connect() || e.is_body(), "{e}"),
        }
    }
    panic!("no success in 10 attempts");
}

#[tokio::test]
async fn server_errors_are_decided_before_applying_and_are_survivable() {
    let (sim, token) = seeded().await;
    sim.set_faults(
        SHOP,
        Faults {
            errors: Some(ErrorFault {
                statuses: vec![500, 502, 503],
                rate: 1.0,
                times: Some(3),
            }),
            seed: 7,
            ..Faults::default()
        },
    );
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let r = send(&sim, &token, TAG_BRUNO, json!({ "key": "k1" }))
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert!(
        statuses.iter().all(|s| [500, 502, 503].contains(s)),
        "{statuses:?}"
    );
    assert!(
        sim.mutation_log(SHOP).is_empty(),
        "nothing applied behind an error status"
    );
    let (attempts, body) = retrying(&sim, &token, TAG_BRUNO, json!({ "key": "k1" })).await;
    assert_eq!(attempts, 1);
    assert_eq!(body["data"]["tagsAdd"]["node"]["id"], BRUNO_GID);
    assert_eq!(sim.mutation_log(SHOP).len(), 1);

    // A rate: reproducible with the same seed.
    let pattern = |seed| {
        let sim = sim.clone();
        let token = token.clone();
        async move {
            sim.set_faults(
                SHOP,
                Faults {
                    errors: Some(ErrorFault {
                        statuses: vec![503],
                        rate: 0.5,
                        times: None,
                    }),
                    seed,
                    ..Faults::default()
                },
            );
            let mut v = Vec::new();
            for _ in 0..12 {
                v.push(
                    send(&sim, &token, "{ shop { id } }", json!({}))
                        .await
                        .unwrap()
                        .status()
                        .as_u16(),
                );
            }
            v
        }
    };
    let a = pattern(42).await;
    assert_eq!(a, pattern(42).await);
    assert!(a.contains(&503) && a.contains(&200), "{a:?}");
    sim.clear_faults(SHOP);
}

#[tokio::test]
async fn too_many_requests_carry_retry_after_and_latency_delays_calls() {
    let (sim, token) = seeded().await;
    sim.set_faults(
        SHOP,
        Faults {
            too_many_requests: Some(RateLimitFault {
                retry_after_secs: 3,
                rate: 1.0,
                times: Some(1),
            }),
            ..Faults::default()
        },
    );
    let r = send(&sim, &token, "{ shop { id } }", json!({}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "3");
    let r = send(&sim, &token, "{ shop { id } }", json!({}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    sim.set_faults(
        SHOP,
        Faults {
            latency_ms: 250,
            ..Faults::default()
        },
    );
    let started = Instant::now();
    ok(&sim, &token, "{ shop { id } }", json!({})).await;
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn dropped_connections_are_connection_errors_and_idempotency_keys_prevent_double_application()
{
    let (sim, token) = seeded().await;
    // Dropped before applying: nothing happened.
    sim.set_faults(
        SHOP,
        Faults {
            drop_connection: Some(DropFault {
                rate: 1.0,
                times: Some(1),
                after_apply: false,
            }),
            ..Faults::default()
        },
    );
    let e = send(&sim, &token, TAG_BRUNO, json!({ "key": "drop-1" }))
        .await
        .unwrap_err();
    assert!(e.is_request() && !e.is_timeout(), "{e:?}");
    assert!(sim.mutation_log(SHOP).is_empty());

    // Dropped after applying: the client cannot know; its retry with the same key must not
    // apply the mutation again.
    sim.set_faults(
        SHOP,
        Faults {
            drop_connection: Some(DropFault {
                rate: 1.0,
                times: Some(2),
                after_apply: true,
            }),
            ..Faults::default()
        },
    );
    let (attempts, body) = retrying(&sim, &token, TAG_BRUNO, json!({ "key": "drop-2" })).await;
    assert_eq!(attempts, 3);
    assert_eq!(body["data"]["tagsAdd"]["userErrors"], json!([]));
    let log = sim.mutation_log(SHOP);
    assert_eq!(log.len(), 1, "applied exactly once: {log:?}");
    assert_eq!(log[0].idempotency_key.as_deref(), Some("drop-2"));
    assert_eq!(sim.customer_tags(SHOP, BRUNO).unwrap(), ["Faulty"]);

    // Without a key, the same fault double-applies a non-idempotent mutation: the reason keys exist.
    sim.set_faults(
        SHOP,
        Faults {
            drop_connection: Some(DropFault {
                rate: 1.0,
                times: Some(1),
                after_apply: true,
            }),
            ..Faults::default()
        },
    );
    let create = r#"mutation { discountAutomaticAppCreate(automaticAppDiscount: {title: "Dup", functionHandle: "vip-discount", startsAt: "2026-11-01T00:00:00Z"}) { userErrors { message } } }"#;
    retrying(&sim, &token, create, json!({})).await;
    assert_eq!(
        sim.discounts(SHOP)
            .iter()
            .filter(|d| d.title == "Dup")
            .count(),
        2
    );
}

#[tokio::test]
async fn expired_token_and_maintenance_faults_answer_like_shopify_until_cleared() {
    let (sim, token) = seeded().await;
    sim.set_faults(
        SHOP,
        Faults {
            expired_token: true,
            ..Faults::default()
        },
    );
    let (status, body) = gql(&sim, &token, "{ shop { id } }", json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, json!({ "errors": INVALID_ACCESS_TOKEN_MESSAGE }));

    let until = chrono::Utc::now() + chrono::TimeDelta::hours(1);
    let (status, _) = control(
        &sim,
        Method::PUT,
        &format!("/shops/{SHOP}/faults"),
        Some(json!({ "maintenance_until": until })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let r = send(&sim, &token, "{ shop { id } }", json!({}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({ "errors": MAINTENANCE_MESSAGE })
    );
    let (_, faults) = control(&sim, Method::GET, &format!("/shops/{SHOP}/faults"), None).await;
    assert!(faults["maintenance_until"].is_string());

    // A window in the past is over.
    sim.set_faults(
        SHOP,
        Faults {
            maintenance_until: Some(chrono::Utc::now() - chrono::TimeDelta::seconds(1)),
            ..Faults::default()
        },
    );
    ok(&sim, &token, "{ shop { id } }", json!({})).await;
    sim.set_faults(
        SHOP,
        Faults {
            maintenance_until: Some(until),
            ..Faults::default()
        },
    );
    let (status, _) = control(&sim, Method::DELETE, &format!("/shops/{SHOP}/faults"), None).await;
    assert_eq!(status, StatusCode::OK);
    ok(&sim, &token, "{ shop { id } }", json!({})).await;
}

// ---- userErrors ----------------------------------------------------------------------------------

#[tokio::test]
async fn user_errors_follow_the_documented_rules_and_change_nothing() {
    let (sim, token) = seeded().await;
    let set = operation("metafields_set");
    let mf = |key: &str| json!({ "ownerId": ADA_GID, "namespace": "$app", "key": key, "type": "single_line_text_field", "value": "x" });
    let user_errors = |body: &Value| body["metafieldsSet"]["userErrors"].clone();

    let too_many: Vec<Value> = (0..26).map(|i| mf(&format!("k{i:02}"))).collect();
    let (data, _) = ok(&sim, &token, &set, json!({ "metafields": too_many })).await;
    assert_eq!(user_errors(&data)[0]["field"], json!(["metafields"]));
    assert_eq!(data["metafieldsSet"]["metafields"], Value::Null);

    // Atomic: the valid first input is not written because the second is invalid.
    let (data, _) = ok(
        &sim,
        &token,
        &set,
        json!({ "metafields": [mf("fine_key"), mf("k")] }),
    )
    .await;
    let errs = user_errors(&data);
    assert_eq!(errs[0]["field"], json!(["metafields", "1", "key"]));
    assert_eq!(errs[0]["code"], "TOO_SHORT");
    assert_eq!(errs[0]["elementIndex"], 1);
    assert!(sim.metafield(SHOP, ADA_GID, "$app", "fine_key").is_none());

    let (data, _) = ok(&sim, &token, &set, json!({ "metafields": [{ "ownerId": ADA_GID, "namespace": "ab", "key": "kk", "type": "boolean", "value": "true" }] })).await;
    assert_eq!(
        user_errors(&data)[0]["field"],
        json!(["metafields", "0", "namespace"])
    );
    let (data, _) = ok(
        &sim,
        &token,
        &set,
        json!({ "metafields": [{ "ownerId": ADA_GID, "key": "no_type", "value": "x" }] }),
    )
    .await;
    assert_eq!(
        user_errors(&data)[0]["field"],
        json!(["metafields", "0", "type"])
    );
    let (data, _) = ok(&sim, &token, &set, json!({ "metafields": [{ "ownerId": ADA_GID, "key": "count", "type": "number_integer", "value": "many" }] })).await;
    assert_eq!(user_errors(&data)[0]["code"], "INVALID_VALUE");
    // An existing metafield stands in for a definition: type may be omitted.
    let (data, _) = ok(
        &sim,
        &token,
        &set,
        json!({ "metafields": [{ "ownerId": ADA_GID, "key": "vip_tier", "value": "Platinum" }] }),
    )
    .await;
    assert_eq!(user_errors(&data), json!([]));
    // compareDigest: null = must not exist; stale digests are refused.
    let (data, _) = ok(&sim, &token, &set, json!({ "metafields": [{ "ownerId": ADA_GID, "key": "vip_tier", "value": "Gold", "compareDigest": null }] })).await;
    assert_eq!(user_errors(&data)[0]["code"], "STALE_OBJECT");
    let digest = sim
        .metafield(SHOP, ADA_GID, "$app", "vip_tier")
        .unwrap()
        .compare_digest();
    let (data, _) = ok(&sim, &token, &set, json!({ "metafields": [{ "ownerId": ADA_GID, "key": "vip_tier", "value": "Gold", "compareDigest": digest }] })).await;
    assert_eq!(user_errors(&data), json!([]));
    let (data, _) = ok(&sim, &token, &set, json!({ "metafields": [{ "ownerId": ADA_GID, "key": "vip_tier", "value": "Silver", "compareDigest": digest }] })).await;
    assert_eq!(user_errors(&data)[0]["code"], "STALE_OBJECT");
    assert_eq!(
        sim.metafield(SHOP, ADA_GID, "$app", "vip_tier")
            .unwrap()
            .value,
        "Gold"
    );

    let create = operation("discount_automatic_app_create");
    let (data, _) = ok(&sim, &token, &create, json!({ "discount": { "title": "", "functionHandle": "vip-discount", "startsAt": "2026-11-01T00:00:00Z" }, "idempotencyKey": "d1" })).await;
    assert_eq!(
        data["discountAutomaticAppCreate"]["userErrors"][0]["field"],
        json!(["automaticAppDiscount", "title"])
    );
    assert_eq!(
        data["discountAutomaticAppCreate"]["automaticAppDiscount"],
        Value::Null
    );
    let (data, _) = ok(&sim, &token, &create, json!({ "discount": { "title": "X", "functionHandle": "not-deployed", "startsAt": "2026-11-01T00:00:00Z" }, "idempotencyKey": "d2" })).await;
    assert_eq!(
        data["discountAutomaticAppCreate"]["userErrors"][0]["field"],
        json!(["automaticAppDiscount", "functionHandle"])
    );
    let (data, _) = ok(
        &sim,
        &token,
        &operation("discount_automatic_app_update"),
        json!({ "id": "gid://shopify/DiscountAutomaticNode/1", "discount": { "title": "X" } }),
    )
    .await;
    assert_eq!(
        data["discountAutomaticAppUpdate"]["userErrors"][0]["field"],
        json!(["id"])
    );
    assert_eq!(sim.discounts(SHOP).len(), 1);

    let (status, body) = gql(
        &sim,
        &token,
        "mutation { tagsAdd(tags: [\"x\"]) { userErrors { message } } }",
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "missingRequiredArguments"
    );
    assert!(sim
        .mutation_log(SHOP)
        .iter()
        .all(|m| m.mutation == "metafieldsSet"));
}

#[tokio::test]
async fn flow_trigger_receive_enforces_handles_and_the_50000_byte_limit() {
    let (sim, token) = seeded().await;
    let doc = operation("flow_trigger_receive");
    // {"p":"…"} is 8 bytes of JSON around the string.
    let sized = |n: usize| json!({ "p": "x".repeat(n - 8) });
    assert_eq!(serde_json::to_vec(&sized(50_000)).unwrap().len(), 50_000);

    let (data, _) = ok(
        &sim,
        &token,
        &doc,
        json!({ "handle": "order-delayed", "payload": sized(50_000), "idempotencyKey": "f1" }),
    )
    .await;
    assert_eq!(data["flowTriggerReceive"]["userErrors"], json!([]));
    let (data, _) = ok(
        &sim,
        &token,
        &doc,
        json!({ "handle": "order-delayed", "payload": sized(50_001), "idempotencyKey": "f2" }),
    )
    .await;
    assert_eq!(
        data["flowTriggerReceive"]["userErrors"],
        json!([{ "field": ["body"], "message": "Errors validating schema:\n  Properties size exceeds the limit of 50000 bytes.\n" }])
    );
    let (data, _) = ok(
        &sim,
        &token,
        &doc,
        json!({ "handle": "app--1--vip", "payload": {}, "idempotencyKey": "f3" }),
    )
    .await;
    assert_eq!(
        data["flowTriggerReceive"]["userErrors"][0]["message"],
        "Errors validating schema:\n  Invalid handle 'app--1--vip'.\n"
    );
    let (data, _) = ok(
        &sim,
        &token,
        &doc,
        json!({ "handle": "", "payload": {}, "idempotencyKey": "f4" }),
    )
    .await;
    assert_eq!(
        data["flowTriggerReceive"]["userErrors"][0]["field"],
        json!(["handle"])
    );

    let triggers = sim.flow_triggers(SHOP);
    assert_eq!(triggers.len(), 1);
    assert_eq!(triggers[0].payload_bytes, 50_000);
    let (_, body) = control(
        &sim,
        Method::GET,
        &format!("/shops/{SHOP}/flow-triggers"),
        None,
    )
    .await;
    assert_eq!(body.as_array().unwrap().len(), 1);
}

// ---- control API ---------------------------------------------------------------------------------

#[tokio::test]
async fn the_control_api_seeds_and_exposes_shop_state() {
    let sim = sim().await;
    let token = sim.issue_offline_token(SHOP, true).unwrap().access_token;
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/keel-demo.json"
    ))
    .unwrap();
    let fixture: Value = serde_json::from_str(&text).unwrap();
    let (status, summary) = control(
        &sim,
        Method::POST,
        &format!("/shops/{SHOP}/seed"),
        Some(fixture),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            summary["customers"].as_u64(),
            summary["orders"].as_u64(),
            summary["variants"].as_u64()
        ),
        (Some(4), Some(4), Some(3))
    );
    let (status, _) = control(
        &sim,
        Method::POST,
        &format!("/shops/{SHOP}/seed"),
        Some(json!({ "customerz": [] })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    ok(
        &sim,
        &token,
        &operation("tags_add"),
        json!({ "id": ADA_GID, "tags": ["Seen"] }),
    )
    .await;
    let (_, data) = control(&sim, Method::GET, &format!("/shops/{SHOP}/data"), None).await;
    let ada = data["customers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == ADA)
        .unwrap();
    assert_eq!(ada["tags"], json!(["VIP", "newsletter", "Seen"]));
    let (_, log) = control(&sim, Method::GET, &format!("/shops/{SHOP}/mutations"), None).await;
    assert_eq!(log[0]["mutation"], "tagsAdd");
    assert_eq!(log[0]["arguments"]["id"], ADA_GID);
    let (_, mfs) = control(
        &sim,
        Method::GET,
        &format!("/shops/{SHOP}/metafields?owner={ADA_GID}"),
        None,
    )
    .await;
    assert_eq!(mfs[0]["namespace"], "app--keel-test-client-id");
}
