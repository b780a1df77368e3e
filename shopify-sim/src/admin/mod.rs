//! `POST /admin/api/{version}/graphql.json`: the Admin GraphQL API (reference app-platform.md §7)
//! over a stateful fake of the subset Keel uses.
//!
//! One call goes through, in order:
//! 1. faults of the addressed shop ([`crate::faults`]): latency, then maintenance / 401 / 429 /
//!    5xx / dropped connection, all decided before anything is applied;
//! 2. authentication, exactly like Shopify (401 body and all);
//! 3. parsing ([`async_graphql_parser`]), operation choice and variables, validation against
//!    [`schema`] — errors come back as HTTP 200 `{"errors": …}`, as on Shopify;
//! 4. requested cost ([`cost`]): over 1000 → `MAX_COST_EXCEEDED`; more than the shop's
//!    [`bucket`] holds → `THROTTLED` (counted per shop);
//! 5. execution ([`executor`], [`mutations`]), with `@idempotent(key:)` replay and the mutation
//!    log, then the refund of `requested − actual` and `extensions.cost` on the answer.
//!
//! Steps 3–5 run under the state lock without awaiting, so each call is atomic with respect to
//! the others (Shopify serialises writes to a resource; this is stricter, which is fine here).

pub(crate) mod bucket;
pub(crate) mod cost;
pub(crate) mod document;
pub(crate) mod executor;
pub(crate) mod mutations;
pub(crate) mod schema;
pub(crate) mod search;

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql_parser::types::ExecutableDocument;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::time::Instant;

use self::bucket::{Bucket, ThrottleStatus};
use self::document::{GqlError, Prepared};
use self::executor::{Executor, Obj};
use self::mutations::Payload;
use crate::data::ShopData;
use crate::error::SimError;
use crate::faults::{Decision, FaultState};
use crate::server::ConnectionKill;
use crate::state::ShopInfo;
use crate::{header_str, Shared, ACCESS_TOKEN_HEADER, SHOP_DOMAIN_HEADER};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/admin/api/{version}/graphql.json", post(graphql))
}

/// Everything the Admin API keeps per shop besides installation and tokens.
#[derive(Debug)]
pub(crate) struct ShopAdmin {
    pub data: ShopData,
    pub bucket: Bucket,
    pub faults: FaultState,
    /// `@idempotent` results by key (reference §7.7: a repeat returns the original result).
    pub idempotent: HashMap<String, Payload>,
    /// Calls refused with THROTTLED.
    pub throttled: u64,
}

impl ShopAdmin {
    pub fn new() -> Self {
        ShopAdmin {
            data: ShopData::new(),
            bucket: Bucket::default(),
            faults: FaultState::default(),
            idempotent: HashMap::new(),
            throttled: 0,
        }
    }
}

#[derive(Debug, Deserialize)]
struct GraphQlRequest {
    query: String,
    #[serde(default)]
    variables: Option<Value>,
    #[serde(default, rename = "operationName")]
    operation_name: Option<String>,
}

async fn graphql(
    State(shared): State<Arc<Shared>>,
    Path(version): Path<String>,
    kill: Option<Extension<ConnectionKill>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, SimError> {
    if !is_api_version(&version) {
        return Err(SimError::UnknownApiVersion(version));
    }
    let token = header_str(&headers, ACCESS_TOKEN_HEADER).unwrap_or_default();
    let addressed = header_str(&headers, SHOP_DOMAIN_HEADER);

    // 1. Faults, decided before anything is looked at or applied.
    let (decision, latency) = {
        let mut state = shared.state();
        let target = state
            .token_owner(token)
            .map(str::to_owned)
            .or_else(|| addressed.map(str::to_owned));
        match target {
            Some(shop) => {
                let faults = &mut state.admin(&shop).faults;
                (faults.decide(Utc::now()), faults.latency())
            }
            None => (Decision::Proceed, std::time::Duration::ZERO),
        }
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match decision {
        Decision::Maintenance => return Err(SimError::Maintenance),
        Decision::ExpiredToken => return Err(SimError::InvalidAccessToken),
        Decision::TooManyRequests { retry_after_secs } => {
            return Err(SimError::TooManyRequests { retry_after_secs })
        }
        Decision::Status(status) => return Err(SimError::InjectedStatus(status)),
        Decision::DropBefore => return Err(drop_connection(kill.as_ref()).await),
        Decision::Proceed | Decision::DropAfterApply => {}
    }

    // 2. Authentication comes before the body is looked at, as on Shopify.
    let now = Utc::now();
    let shop = {
        let mut state = shared.state();
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

    // 3–5.
    let answer = run(&shared, &shop, request, now);
    if decision == Decision::DropAfterApply {
        return Err(drop_connection(kill.as_ref()).await);
    }
    Ok(Json(answer).into_response())
}

/// Closes the connection without a response and never returns; without a connection handle
/// (not served by [`crate::server`]) it degrades to a 502.
async fn drop_connection(kill: Option<&Extension<ConnectionKill>>) -> SimError {
    match kill {
        Some(Extension(k)) => {
            k.kill();
            std::future::pending::<()>().await;
            SimError::InjectedStatus(502)
        }
        None => SimError::InjectedStatus(502),
    }
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

/// `extensions.cost` in Shopify's shape.
pub(crate) fn cost_json(requested: u64, actual: Option<u64>, status: ThrottleStatus) -> Value {
    json!({
        "requestedQueryCost": requested,
        "actualQueryCost": actual,
        "throttleStatus": status,
    })
}

fn errors_body(errors: &[GqlError], cost: Value) -> Value {
    let errors: Vec<Value> = errors.iter().map(GqlError::to_json).collect();
    json!({ "errors": errors, "extensions": { "cost": cost } })
}

/// Parses, validates, charges and executes one request for `shop`.
fn run(shared: &Shared, shop: &ShopInfo, request: GraphQlRequest, now: DateTime<Utc>) -> Value {
    let client_id = shared.config.api_key.as_str();
    let free = |shared: &Shared| {
        let mut state = shared.state();
        let status = state.admin(&shop.shop).bucket.status(Instant::now());
        cost_json(0, Some(0), status)
    };
    let doc: ExecutableDocument = match async_graphql_parser::parse_query(&request.query) {
        Ok(doc) => doc,
        Err(e) => {
            let mut err = GqlError::new(e.to_string());
            for p in e.positions() {
                err = err.at(p);
            }
            return errors_body(&[err], free(shared));
        }
    };
    let prep = match Prepared::new(&doc, request.operation_name.as_deref(), request.variables) {
        Ok(p) => p,
        Err(e) => return errors_body(&[e], free(shared)),
    };
    let errors = prep.validate();
    if !errors.is_empty() {
        return errors_body(&errors, free(shared));
    }
    let requested = match cost::requested(&prep) {
        Ok(c) => c,
        Err(e) => return errors_body(&[e], free(shared)),
    };

    let mut state = shared.state();
    let admin = state.admin(&shop.shop);
    let clock = Instant::now();
    if requested > cost::MAX_QUERY_COST {
        // Shopify's wording for the single-query limit.
        let message = format!(
            "Query cost is {requested}, which exceeds the single query max cost limit ({}).\n\nSee https://shopify.dev/concepts/about-apis/rate-limits for more information on how the\ncost of a query is calculated.\n\nTo query larger amounts of data with fewer limits, bulk operations should be used instead.\nSee https://shopify.dev/tutorials/perform-bulk-operations-with-admin-api for usage details.\n",
            cost::MAX_QUERY_COST
        );
        let err = GqlError::new(message).code(json!({
            "code": "MAX_COST_EXCEEDED",
            "cost": requested,
            "maxCost": cost::MAX_QUERY_COST,
        }));
        return errors_body(
            &[err],
            cost_json(requested, None, admin.bucket.status(clock)),
        );
    }
    if !admin.bucket.try_take(requested, clock) {
        admin.throttled += 1;
        let err = GqlError::new("Throttled").code(json!({
            "code": "THROTTLED",
            "documentation": "https://shopify.dev/api/usage/rate-limits",
        }));
        return errors_body(
            &[err],
            cost_json(requested, None, admin.bucket.status(clock)),
        );
    }

    let (data, errors, actual) = if prep.is_mutation() {
        execute_mutation(&prep, admin, shop, client_id, now)
    } else {
        let mut ex = Executor::new(&prep, &admin.data, shop, client_id, now);
        let data = ex.complete(&Obj::QueryRoot, &[&prep.op.selection_set.node]);
        (data, ex.errors, ex.actual)
    };
    admin.bucket.refund(requested.saturating_sub(actual), clock);
    let status = admin.bucket.status(clock);
    let mut body = Map::new();
    body.insert("data".into(), data);
    if !errors.is_empty() {
        body.insert(
            "errors".into(),
            Value::Array(errors.iter().map(GqlError::to_json).collect()),
        );
    }
    body.insert(
        "extensions".into(),
        json!({ "cost": cost_json(requested, Some(actual), status) }),
    );
    Value::Object(body)
}

/// Runs the root mutation fields in order (GraphQL executes mutations serially).
fn execute_mutation(
    prep: &Prepared<'_>,
    admin: &mut ShopAdmin,
    shop: &ShopInfo,
    client_id: &str,
    now: DateTime<Utc>,
) -> (Value, Vec<GqlError>, u64) {
    let shop_gid = crate::data::gid("Shop", shop.id);
    let ctx = mutations::Ctx {
        shop: &shop.shop,
        shop_gid: &shop_gid,
        client_id,
        now,
    };
    let mut out = Map::new();
    let mut errors = Vec::new();
    let mut actual = 0;
    for c in prep
        .selections
        .collect(&[&prep.op.selection_set.node], schema::MUTATION_ROOT)
    {
        let name = c.field.node.name.node.as_str();
        if name == "__typename" {
            out.insert(c.key.to_owned(), json!(schema::MUTATION_ROOT));
            continue;
        }
        actual += cost::MUTATION_COST;
        let path = vec![json!(c.key)];
        match run_root_mutation(prep, admin, &ctx, &c.field.node) {
            Ok(payload) => {
                let mut ex =
                    Executor::new(prep, &admin.data, shop, client_id, now).with_path(c.key);
                ex.counting = false;
                let v = ex.complete(&Obj::Payload(&payload), &c.sets);
                errors.extend(ex.errors);
                out.insert(c.key.to_owned(), v);
            }
            Err(e) => {
                errors.push(e.at(c.field.pos).path(path));
                out.insert(c.key.to_owned(), Value::Null);
            }
        }
    }
    (Value::Object(out), errors, actual)
}

/// One root mutation field, answered from the idempotency store when its `@idempotent` key was
/// seen before; an accepted one is logged for tests to inspect.
fn run_root_mutation(
    prep: &Prepared<'_>,
    admin: &mut ShopAdmin,
    ctx: &mutations::Ctx<'_>,
    field: &async_graphql_parser::types::Field,
) -> Result<mutations::Payload, GqlError> {
    let name = field.name.node.as_str();
    let args = prep.selections.args(field);
    let key = idempotency_key(prep, field)?;
    if let Some(stored) = key.as_ref().and_then(|k| admin.idempotent.get(k)) {
        return Ok(stored.clone());
    }
    let payload = mutations::run(&mut admin.data, ctx, name, &args)?;
    if payload.accepted() {
        admin
            .data
            .log_mutation(name, Value::Object(args), key.clone(), ctx.now);
    }
    if let Some(k) = key {
        admin.idempotent.insert(k, payload.clone());
    }
    Ok(payload)
}

/// The key of an `@idempotent(key: …)` directive on a mutation field, if present.
fn idempotency_key(
    prep: &Prepared<'_>,
    field: &async_graphql_parser::types::Field,
) -> Result<Option<String>, GqlError> {
    let Some(d) = field
        .directives
        .iter()
        .find(|d| d.node.name.node.as_str() == "idempotent")
    else {
        return Ok(None);
    };
    let key = d
        .node
        .arguments
        .iter()
        .find(|(n, _)| n.node.as_str() == "key")
        .map(|(_, v)| prep.selections.value(&v.node));
    match key {
        Some(Value::String(k)) if !k.is_empty() => Ok(Some(k)),
        _ => Err(
            GqlError::new("Directive 'idempotent' requires a non-empty 'key' argument")
                .at(d.pos)
                .code(json!({ "code": "missingRequiredArguments" })),
        ),
    }
}
