//! `POST /admin/api/{version}/graphql.json`: the Admin GraphQL API (reference app-platform.md §7).
//!
//! This slice authenticates exactly like Shopify (401 body and all) and answers one query,
//! `{ shop { … } }`, recognised by its token sequence; anything else gets a GraphQL-shaped error.
//! Every data response carries `extensions.cost` in Shopify's shape, with fixed numbers for now.
//!
//! Planned growth: a real GraphQL parser feeding resolvers over a stateful store, and a
//! per-shop leaky bucket behind [`QueryCost`] (THROTTLED responses). The request/auth part
//! ([`graphql`]) and the execution part ([`execute`]) are kept apart for that.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::error::SimError;
use crate::state::ShopInfo;
use crate::{header_str, Shared, ACCESS_TOKEN_HEADER, SHOP_DOMAIN_HEADER};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/admin/api/{version}/graphql.json", post(graphql))
}

#[derive(Debug, Deserialize)]
struct GraphQlRequest {
    query: String,
    #[serde(default)]
    #[allow(dead_code)] // Read once queries take arguments.
    variables: Option<Value>,
}

async fn graphql(
    State(shared): State<Arc<Shared>>,
    Path(version): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, SimError> {
    if !is_api_version(&version) {
        return Err(SimError::UnknownApiVersion(version));
    }
    let now = chrono::Utc::now();
    // Authentication comes before the body is looked at, as on Shopify.
    let shop = {
        let mut state = shared.state();
        let token = header_str(&headers, ACCESS_TOKEN_HEADER).unwrap_or_default();
        let addressed = header_str(&headers, SHOP_DOMAIN_HEADER);
        let shop = state
            .access_token_shop(token, now)
            .filter(|owner| addressed.is_none_or(|a| a == *owner))
            .and_then(|owner| state.shop(owner))
            .cloned();
        let outcome = if shop.is_some() { "ok" } else { "401" };
        let logged_shop = shop.as_ref().map(|s| s.shop.as_str()).or(addressed);
        state.push_log("admin_graphql", logged_shop, outcome.to_owned(), now);
        shop.ok_or(SimError::InvalidAccessToken)?
    };
    let request: GraphQlRequest =
        serde_json::from_slice(&body).map_err(|_| SimError::MissingQuery)?;
    Ok(Json(execute(&shop, &request.query)))
}

/// `YYYY-MM` or `unstable`. Unsupported-but-well-formed versions fall forward on Shopify, so they
/// are accepted; malformed ones are a client bug and get a 404.
fn is_api_version(v: &str) -> bool {
    let b = v.as_bytes();
    v == "unstable"
        || (b.len() == 7
            && b[4] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || c.is_ascii_digit()))
}

/// Fields of `Shop` this slice can resolve.
fn shop_field(shop: &ShopInfo, field: &str) -> Option<Value> {
    Some(match field {
        "id" => json!(format!("gid://shopify/Shop/{}", shop.id)),
        "name" => json!(shop.name),
        "email" => json!(shop.email),
        "myshopifyDomain" => json!(shop.shop),
        "__typename" => json!("Shop"),
        _ => return None,
    })
}

/// Executes `query` for `shop` and builds the full response body.
fn execute(shop: &ShopInfo, query: &str) -> Value {
    let Some(fields) = shop_selection(query) else {
        return json!({ "errors": [{
            "message": "shopify-sim does not simulate this query yet (only `{ shop { id name email myshopifyDomain } }`)"
        }] });
    };
    let mut data = Map::new();
    for field in &fields {
        match shop_field(shop, field) {
            Some(v) => {
                data.insert(field.clone(), v);
            }
            None => {
                return json!({ "errors": [{
                    "message": format!("Field '{field}' doesn't exist on type 'Shop'"),
                    "path": ["query", "shop", field],
                    "extensions": { "code": "undefinedField", "typeName": "Shop", "fieldName": field }
                }] });
            }
        }
    }
    json!({
        "data": { "shop": Value::Object(data) },
        "extensions": { "cost": QueryCost::fixed().to_json() },
    })
}

/// The field names of `[query [Name]] { shop { f1 f2 … } }`, or `None` for any other document.
/// A token comparison, not a parser: enough to recognise the one query this slice answers.
fn shop_selection(query: &str) -> Option<Vec<String>> {
    let tokens = tokenize(query);
    let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let mut rest = tokens.as_slice();
    if let ["query", tail @ ..] = rest {
        rest = match tail {
            [name, tail @ ..] if is_name(name) => tail, // operation name
            _ => tail,
        };
    }
    let ["{", "shop", "{", fields @ .., "}", "}"] = rest else {
        return None;
    };
    (!fields.is_empty() && fields.iter().all(|f| is_name(f)))
        .then(|| fields.iter().map(|f| (*f).to_owned()).collect())
}

/// Splits a GraphQL document into names and punctuators, skipping whitespace, commas and
/// comments (string literals do not occur in the queries this slice accepts).
fn tokenize(query: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = query.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() || c == ',' || c == '\u{feff}' => {}
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' || c == '\r' {
                        break;
                    }
                }
            }
            c if c == '_' || c.is_ascii_alphanumeric() => {
                let mut name = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n == '_' || n.is_ascii_alphanumeric() {
                        name.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(name);
            }
            other => tokens.push(other.to_string()),
        }
    }
    tokens
}

fn is_name(s: &str) -> bool {
    s.starts_with(|c: char| c == '_' || c.is_ascii_alphabetic())
}

/// The `extensions.cost` block of a response.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct QueryCost {
    pub requested: u32,
    pub actual: Option<u32>,
    pub maximum_available: f64,
    pub currently_available: f64,
    pub restore_rate: f64,
}

impl QueryCost {
    /// Fixed numbers until the throttle is simulated: a one-point query against a Standard
    /// plan's bucket (2000 points, 100/s).
    pub fn fixed() -> Self {
        QueryCost {
            requested: 1,
            actual: Some(1),
            maximum_available: 2000.0,
            currently_available: 1999.0,
            restore_rate: 100.0,
        }
    }

    pub fn to_json(self) -> Value {
        json!({
            "requestedQueryCost": self.requested,
            "actualQueryCost": self.actual,
            "throttleStatus": {
                "maximumAvailable": self.maximum_available,
                "currentlyAvailable": self.currently_available,
                "restoreRate": self.restore_rate,
            }
        })
    }
}
