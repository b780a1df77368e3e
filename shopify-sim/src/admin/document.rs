//! A parsed request ready to run: the chosen operation, its variables (with defaults), and
//! validation against [`super::schema`]; argument values and field collection are
//! [`crate::graphql`]'s, with this schema's type conditions. Errors are shaped like Shopify's (graphql-ruby's): `message`, `locations`,
//! `path`, `extensions.code`.

use async_graphql_parser::types::{
    BaseType, ExecutableDocument, Field, OperationDefinition, OperationType, Selection,
    SelectionSet,
};
use async_graphql_parser::{Pos, Positioned};
use async_graphql_value::Value as GqlValue;
use serde_json::{json, Map, Value};

use super::schema::{self, Kind};
use crate::graphql::Selections;

/// Shopify's page-size limit for `first`/`last` on connections.
pub(crate) const MAX_PAGE_SIZE: u64 = 250;

/// One entry of a response's `errors`.
#[derive(Debug, Clone)]
pub(crate) struct GqlError {
    pub message: String,
    pub locations: Vec<Pos>,
    pub path: Option<Vec<Value>>,
    pub extensions: Option<Value>,
}

impl GqlError {
    pub fn new(message: impl Into<String>) -> Self {
        GqlError {
            message: message.into(),
            locations: Vec::new(),
            path: None,
            extensions: None,
        }
    }

    pub fn at(mut self, pos: Pos) -> Self {
        self.locations.push(pos);
        self
    }

    pub fn path(mut self, path: Vec<Value>) -> Self {
        self.path = Some(path);
        self
    }

    pub fn code(mut self, extensions: Value) -> Self {
        self.extensions = Some(extensions);
        self
    }

    pub fn to_json(&self) -> Value {
        let mut e = Map::new();
        e.insert("message".into(), json!(self.message));
        if !self.locations.is_empty() {
            let locs: Vec<Value> = self
                .locations
                .iter()
                .map(|p| json!({ "line": p.line, "column": p.column }))
                .collect();
            e.insert("locations".into(), Value::Array(locs));
        }
        if let Some(p) = &self.path {
            e.insert("path".into(), Value::Array(p.clone()));
        }
        if let Some(x) = &self.extensions {
            e.insert("extensions".into(), x.clone());
        }
        Value::Object(e)
    }
}

/// The operation to run and everything needed to read its arguments.
pub(crate) struct Prepared<'d> {
    pub op: &'d OperationDefinition,
    /// `query Customer` / `mutation` — graphql-ruby's first path element in validation errors.
    pub label: String,
    /// The document with the operation's variables: argument values and field collection.
    pub selections: Selections<'d>,
}

impl<'d> Prepared<'d> {
    /// Picks the operation (by `operationName` when there are several) and applies variable
    /// defaults; refuses missing non-null variables as graphql-ruby does.
    pub fn new(
        doc: &'d ExecutableDocument,
        operation_name: Option<&str>,
        variables: Option<Value>,
    ) -> Result<Prepared<'d>, GqlError> {
        let mut ops = doc.operations.iter();
        let (name, op) = match operation_name {
            Some(wanted) => doc
                .operations
                .iter()
                .find(|(n, _)| n.is_some_and(|n| n.as_str() == wanted))
                .ok_or_else(|| GqlError::new(format!("No operation named \"{wanted}\"")))?,
            None => {
                let first = ops
                    .next()
                    .ok_or_else(|| GqlError::new("No operations in query document"))?;
                if ops.next().is_some() {
                    return Err(GqlError::new(
                        "An operation name is required when the document has several operations",
                    ));
                }
                first
            }
        };
        let op = &op.node;
        let kind = match op.ty {
            OperationType::Query => "query",
            OperationType::Mutation => "mutation",
            OperationType::Subscription => {
                return Err(GqlError::new("Subscriptions are not supported"))
            }
        };
        let label = match name {
            Some(n) => format!("{kind} {n}"),
            None => kind.to_owned(),
        };
        let provided = match variables {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        let mut vars = Map::new();
        for def in &op.variable_definitions {
            let var_name = def.node.name.node.as_str();
            let value = match provided.get(var_name) {
                Some(v) => Some(v.clone()),
                None => def
                    .node
                    .default_value()
                    .and_then(|d| d.clone().into_json().ok()),
            };
            let ty = &def.node.var_type.node;
            if !ty.nullable && value.as_ref().is_none_or(Value::is_null) {
                return Err(GqlError::new(format!(
                    "Variable ${var_name} of type {ty} was provided invalid value"
                ))
                .at(def.pos)
                .code(json!({
                    "value": null,
                    "problems": [{ "path": [], "explanation": "Expected value to not be null" }]
                })));
            }
            if let (Some(v), BaseType::Named(n)) = (&value, &ty.base) {
                // Int variables must be numbers: `first: "10"` is a client bug Shopify refuses.
                if n.as_str() == "Int" && !v.is_null() && !v.is_i64() && !v.is_u64() {
                    return Err(GqlError::new(format!(
                        "Variable ${var_name} of type {ty} was provided invalid value"
                    ))
                    .at(def.pos));
                }
            }
            if let Some(v) = value {
                vars.insert(var_name.to_owned(), v);
            }
        }
        Ok(Prepared {
            op,
            label,
            selections: Selections::new(doc, vars, schema::satisfies),
        })
    }

    pub fn root_type(&self) -> &'static str {
        match self.op.ty {
            OperationType::Mutation => schema::MUTATION_ROOT,
            _ => schema::QUERY_ROOT,
        }
    }

    pub fn is_mutation(&self) -> bool {
        self.op.ty == OperationType::Mutation
    }

    /// The page size of a connection or sized list: `first`, else `last`.
    pub fn page_size(&self, field: &Field) -> Result<Option<u64>, GqlError> {
        let args = self.selections.args(field);
        let size = args
            .get("first")
            .filter(|v| !v.is_null())
            .or_else(|| args.get("last").filter(|v| !v.is_null()));
        match size {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                GqlError::new(format!(
                    "Argument 'first' on Field '{}' has an invalid value ({v}). Expected type 'Int'.",
                    field.name.node
                ))
            }),
        }
    }

    /// Validates the whole operation against the schema subset: unknown fields, arguments,
    /// types and fragments, selections on scalars / missing selections on objects, and page
    /// sizes. Returns every error found, like Shopify's static validation.
    pub fn validate(&self) -> Vec<GqlError> {
        let mut errors = Vec::new();
        let mut path = vec![self.label.clone()];
        self.validate_set(
            &self.op.selection_set.node,
            self.root_type(),
            &mut path,
            &mut errors,
            &mut Vec::new(),
        );
        errors
    }

    fn validate_set(
        &self,
        set: &'d SelectionSet,
        ty: &str,
        path: &mut Vec<String>,
        errors: &mut Vec<GqlError>,
        fragment_stack: &mut Vec<&'d str>,
    ) {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    self.validate_field(field, ty, path, errors, fragment_stack)
                }
                Selection::InlineFragment(frag) => {
                    let cond = frag
                        .node
                        .type_condition
                        .as_ref()
                        .map(|c| c.node.on.node.as_str());
                    if let Some(c) = cond {
                        if !schema::type_exists(c) {
                            errors.push(
                                GqlError::new(format!(
                                    "No such type {c}, so it can't be a fragment condition"
                                ))
                                .at(item.pos)
                                .path(path_json(path, &format!("... on {c}")))
                                .code(json!({ "code": "undefinedType", "typeName": c })),
                            );
                            continue;
                        }
                    }
                    let scope = cond.unwrap_or(ty);
                    path.push(format!("... on {scope}"));
                    self.validate_set(
                        &frag.node.selection_set.node,
                        scope,
                        path,
                        errors,
                        fragment_stack,
                    );
                    path.pop();
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    let Some(frag) = self.selections.doc.fragments.get(name) else {
                        errors.push(
                            GqlError::new(format!("Fragment {name} was used, but not defined"))
                                .at(item.pos)
                                .path(path_json(path, &format!("... {name}")))
                                .code(
                                    json!({ "code": "useAndDefineFragment", "fragmentName": name }),
                                ),
                        );
                        continue;
                    };
                    if fragment_stack.contains(&name) {
                        errors.push(
                            GqlError::new(format!("Fragment {name} contains an infinite loop"))
                                .at(item.pos)
                                .code(json!({ "code": "infiniteLoop", "fragmentName": name })),
                        );
                        continue;
                    }
                    let cond = frag.node.type_condition.node.on.node.as_str();
                    if !schema::type_exists(cond) {
                        errors.push(
                            GqlError::new(format!(
                                "No such type {cond}, so it can't be a fragment condition"
                            ))
                            .at(frag.pos)
                            .code(json!({ "code": "undefinedType", "typeName": cond })),
                        );
                        continue;
                    }
                    fragment_stack.push(name);
                    path.push(format!("... {name}"));
                    self.validate_set(
                        &frag.node.selection_set.node,
                        cond,
                        path,
                        errors,
                        fragment_stack,
                    );
                    path.pop();
                    fragment_stack.pop();
                }
            }
        }
    }

    fn validate_field(
        &self,
        field: &'d Positioned<Field>,
        ty: &str,
        path: &mut Vec<String>,
        errors: &mut Vec<GqlError>,
        fragment_stack: &mut Vec<&'d str>,
    ) {
        let name = field.node.name.node.as_str();
        let key = field.node.response_key().node.as_str();
        let Some(def) = schema::field(ty, name) else {
            errors.push(
                GqlError::new(format!("Field '{name}' doesn't exist on type '{ty}'"))
                    .at(field.pos)
                    .path(path_json(path, key))
                    .code(json!({ "code": "undefinedField", "typeName": ty, "fieldName": name })),
            );
            return;
        };
        for (arg, value) in &field.node.arguments {
            if !def.args.contains(&arg.node.as_str()) {
                errors.push(
                    GqlError::new(format!(
                        "Field '{name}' doesn't accept argument '{}'",
                        arg.node
                    ))
                    .at(arg.pos)
                    .path(path_json(path, key))
                    .code(json!({
                        "code": "argumentNotAccepted",
                        "name": name,
                        "typeName": "Field",
                        "argumentName": arg.node.as_str(),
                    })),
                );
            }
            if let GqlValue::Variable(v) = &value.node {
                let declared = self
                    .op
                    .variable_definitions
                    .iter()
                    .any(|d| d.node.name.node.as_str() == v.as_str());
                if !declared {
                    errors.push(
                        GqlError::new(format!(
                            "Variable ${v} is used by {} but not declared",
                            self.label
                        ))
                        .at(value.pos)
                        .code(json!({ "code": "variableNotDefined", "variableName": v.as_str() })),
                    );
                }
            }
        }
        let has_selection = !field.node.selection_set.node.items.is_empty();
        let child = schema::kind_type(def.kind);
        match child {
            None if has_selection => errors.push(
                GqlError::new(format!(
                    "Selections can't be made on scalars (field '{name}' returns a scalar but has selections)"
                ))
                .at(field.pos)
                .path(path_json(path, key))
                .code(json!({ "code": "selectionMismatch", "nodeName": format!("field '{name}'") })),
            ),
            Some(t) if !has_selection => errors.push(
                GqlError::new(format!(
                    "Field must have selections (field '{name}' returns {t} but has no selections. Did you mean '{name} {{ ... }}'?)"
                ))
                .at(field.pos)
                .path(path_json(path, key))
                .code(json!({ "code": "selectionMismatch", "nodeName": format!("field '{name}'") })),
            ),
            _ => {}
        }
        if matches!(def.kind, Kind::Connection(_) | Kind::SizedList(_)) {
            match self.page_size(&field.node) {
                Err(e) => errors.push(e.at(field.pos).path(path_json(path, key))),
                Ok(None) => errors.push(
                    GqlError::new("you must provide one of first or last")
                        .at(field.pos)
                        .path(path_json(path, key)),
                ),
                // The page-size cap's wording is not on shopify.dev; the limit (250) is.
                Ok(Some(n)) if n > MAX_PAGE_SIZE => errors.push(
                    GqlError::new(format!(
                        "The first argument of '{name}' is {n}, which exceeds the maximum page size of {MAX_PAGE_SIZE}"
                    ))
                    .at(field.pos)
                    .path(path_json(path, key))
                    .code(json!({ "code": "MAX_PAGE_SIZE_EXCEEDED", "maxPageSize": MAX_PAGE_SIZE })),
                ),
                Ok(Some(_)) => {}
            }
        }
        if let Some(t) = child {
            if has_selection {
                path.push(key.to_owned());
                self.validate_set(
                    &field.node.selection_set.node,
                    t,
                    path,
                    errors,
                    fragment_stack,
                );
                path.pop();
            }
        }
    }
}

fn path_json(path: &[String], last: &str) -> Vec<Value> {
    path.iter()
        .map(|p| json!(p))
        .chain(std::iter::once(json!(last)))
        .collect()
}
