//! Requested query cost: the static analysis Shopify runs before executing a query.
//!
//! Rules (reference app-platform.md §7.3, from shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits
//! "Cost calculation" table and the Shopify Engineering post "Rate limiting GraphQL APIs by
//! calculating query complexity"):
//! - scalar and enum fields: 0;
//! - object fields: 1 (plus their selection);
//! - interfaces and unions: the maximum over the possible types' selections;
//! - connections: 2, plus `first` (or `last`) × the cost of one node's selection, where the node
//!   itself counts as an object (1); `edges`, `cursor` and `pageInfo` add nothing. Nested
//!   connections multiply;
//! - plain lists sized by `first` (`Order.fulfillments(first:)`): like connections;
//! - lists of objects without a size (`InventoryLevel.quantities`, `userErrors`): one object;
//! - mutations: 10 per root mutation field, whatever the payload selection;
//! - a query whose requested cost exceeds [`MAX_QUERY_COST`] is refused before execution.
//!
//! The *actual* cost is counted by the executor over what it returns (objects that were null
//! and nodes a connection did not have cost nothing).

use super::document::{GqlError, Prepared};
use super::schema::{self, Kind};
use async_graphql_parser::types::SelectionSet;

/// Single-query limit on requested cost ("A single query … cannot exceed a cost of 1000").
pub(crate) const MAX_QUERY_COST: u64 = 1000;
/// Cost of one root mutation field.
pub(crate) const MUTATION_COST: u64 = 10;
/// Fixed part of a connection (or sized list).
pub(crate) const CONNECTION_BASE: u64 = 2;

/// The requested cost of the prepared operation (validated beforehand).
pub(crate) fn requested(prep: &Prepared<'_>) -> Result<u64, GqlError> {
    if prep.is_mutation() {
        let roots = prep
            .selections
            .collect(&[&prep.op.selection_set.node], schema::MUTATION_ROOT);
        return Ok(roots
            .iter()
            .filter(|c| c.field.node.name.node.as_str() != "__typename")
            .count() as u64
            * MUTATION_COST);
    }
    set_cost(prep, &[&prep.op.selection_set.node], schema::QUERY_ROOT)
}

/// Cost of a selection on an object of (possibly abstract) type `ty`: the maximum over its
/// concrete types.
fn set_cost(
    prep: &Prepared<'_>,
    sets: &[&SelectionSet],
    ty: &'static str,
) -> Result<u64, GqlError> {
    let mut max = 0;
    for concrete in schema::concrete_types(ty) {
        let mut sum = 0u64;
        for c in prep.selections.collect(sets, concrete) {
            let name = c.field.node.name.node.as_str();
            let Some(def) = schema::field(concrete, name) else {
                continue; // __typename is a scalar; others were refused by validation
            };
            let sub: Vec<&SelectionSet> = c.sets.clone();
            sum = sum.saturating_add(match def.kind {
                Kind::Scalar => 0,
                Kind::Object(t) | Kind::List(t) => 1 + set_cost(prep, &sub, t)?,
                Kind::SizedList(t) => {
                    let n = prep.page_size(&c.field.node)?.unwrap_or(0);
                    CONNECTION_BASE + n.saturating_mul(1 + set_cost(prep, &sub, t)?)
                }
                Kind::Connection(node) => {
                    let n = prep.page_size(&c.field.node)?.unwrap_or(0);
                    CONNECTION_BASE + n.saturating_mul(node_cost(prep, &sub, node)?)
                }
            });
        }
        max = max.max(sum);
    }
    Ok(max)
}

/// Cost of one node of a connection: what `edges { node { … } }` and `nodes { … }` select.
fn node_cost(
    prep: &Prepared<'_>,
    sets: &[&SelectionSet],
    node: &'static str,
) -> Result<u64, GqlError> {
    let conn = schema::connection_type(node);
    let mut sum = 0u64;
    for c in prep.selections.collect(sets, conn) {
        match c.field.node.name.node.as_str() {
            "nodes" => sum += 1 + set_cost(prep, &c.sets, node)?,
            "edges" => {
                let edge_sets = c.sets.clone();
                let edge = schema::field(conn, "edges")
                    .and_then(|d| schema::kind_type(d.kind))
                    .unwrap_or("Edge");
                for e in prep.selections.collect(&edge_sets, edge) {
                    if e.field.node.name.node.as_str() == "node" {
                        sum += 1 + set_cost(prep, &e.sets, node)?;
                    }
                }
            }
            _ => {} // pageInfo, __typename
        }
    }
    Ok(sum)
}
