//! What running a parsed GraphQL document needs whatever the schema: argument values with the
//! operation's variables substituted, `@skip`/`@include`, and field collection (GraphQL's
//! CollectFields: fragments applied by type, repeated response keys merged). Shared by the Admin
//! API executor (`admin::document`) and the Function input builder (`checkout::input`); each
//! passes its own schema's notion of which types satisfy a type condition.

use std::collections::HashSet;

use async_graphql_parser::types::{Directive, ExecutableDocument, Field, Selection, SelectionSet};
use async_graphql_parser::Positioned;
use async_graphql_value::Value as GqlValue;
use serde_json::{Map, Value};

/// A field after collection: its response key and the merged sub-selections of every
/// occurrence of that key.
pub(crate) struct Collected<'d> {
    pub key: &'d str,
    pub field: &'d Positioned<Field>,
    pub sets: Vec<&'d SelectionSet>,
}

/// A document bound to its operation's variable values.
pub(crate) struct Selections<'d> {
    pub doc: &'d ExecutableDocument,
    pub variables: Map<String, Value>,
    /// Whether an object of the first (concrete) type matches the type condition named second.
    satisfies: fn(&str, &str) -> bool,
}

impl<'d> Selections<'d> {
    pub fn new(
        doc: &'d ExecutableDocument,
        variables: Map<String, Value>,
        satisfies: fn(&str, &str) -> bool,
    ) -> Self {
        Selections {
            doc,
            variables,
            satisfies,
        }
    }

    /// A GraphQL value (possibly containing variables) as JSON; an absent variable is null.
    pub fn value(&self, v: &GqlValue) -> Value {
        match v {
            GqlValue::Variable(name) => self
                .variables
                .get(name.as_str())
                .cloned()
                .unwrap_or(Value::Null),
            GqlValue::Null | GqlValue::Binary(_) => Value::Null,
            GqlValue::Number(n) => Value::Number(n.clone()),
            GqlValue::String(s) => Value::String(s.clone()),
            GqlValue::Boolean(b) => Value::Bool(*b),
            GqlValue::Enum(e) => Value::String(e.to_string()),
            GqlValue::List(items) => Value::Array(items.iter().map(|i| self.value(i)).collect()),
            GqlValue::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.to_string(), self.value(v)))
                    .collect(),
            ),
        }
    }

    /// All arguments of a field as a JSON object (variables substituted; absent variables
    /// leave the argument out, as GraphQL prescribes).
    pub fn args(&self, field: &Field) -> Map<String, Value> {
        field
            .arguments
            .iter()
            .filter(|(_, value)| match &value.node {
                GqlValue::Variable(v) => self.variables.contains_key(v.as_str()),
                _ => true,
            })
            .map(|(name, value)| (name.node.to_string(), self.value(&value.node)))
            .collect()
    }

    fn included(&self, directives: &[Positioned<Directive>]) -> bool {
        directives.iter().all(|d| {
            let cond = || {
                d.node
                    .arguments
                    .iter()
                    .find(|(n, _)| n.node.as_str() == "if")
                    .and_then(|(_, v)| self.value(&v.node).as_bool())
                    .unwrap_or(false)
            };
            match d.node.name.node.as_str() {
                "skip" => !cond(),
                "include" => cond(),
                _ => true,
            }
        })
    }

    /// Collects the fields that apply to an object of `concrete` type from `sets`, merging
    /// repeated response keys (GraphQL's CollectFields).
    pub fn collect(&self, sets: &[&'d SelectionSet], concrete: &str) -> Vec<Collected<'d>> {
        let mut out: Vec<Collected<'d>> = Vec::new();
        let mut seen_fragments = HashSet::new();
        for set in sets {
            self.collect_into(set, concrete, &mut out, &mut seen_fragments);
        }
        out
    }

    fn collect_into(
        &self,
        set: &'d SelectionSet,
        concrete: &str,
        out: &mut Vec<Collected<'d>>,
        seen: &mut HashSet<&'d str>,
    ) {
        for item in &set.items {
            if !self.included(item.node.directives()) {
                continue;
            }
            match &item.node {
                Selection::Field(field) => {
                    let key = field.node.response_key().node.as_str();
                    match out.iter_mut().find(|c| c.key == key) {
                        Some(c) => c.sets.push(&field.node.selection_set.node),
                        None => out.push(Collected {
                            key,
                            field,
                            sets: vec![&field.node.selection_set.node],
                        }),
                    }
                }
                Selection::InlineFragment(frag) => {
                    let applies = frag
                        .node
                        .type_condition
                        .as_ref()
                        .is_none_or(|c| (self.satisfies)(concrete, c.node.on.node.as_str()));
                    if applies {
                        self.collect_into(&frag.node.selection_set.node, concrete, out, seen);
                    }
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    let Some(frag) = self.doc.fragments.get(name) else {
                        continue;
                    };
                    if seen.insert(name)
                        && (self.satisfies)(
                            concrete,
                            frag.node.type_condition.node.on.node.as_str(),
                        )
                    {
                        self.collect_into(&frag.node.selection_set.node, concrete, out, seen);
                    }
                }
            }
        }
    }
}
