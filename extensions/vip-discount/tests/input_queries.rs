//! The input queries stay within Shopify's query rules: at most 3000 bytes without comments, a
//! calculated cost of at most 30, and variables that cannot fail a run when the configuration
//! metafield lacks them. (typegen already checks every field against schema.graphql when the
//! crate compiles.) The TOML names exactly these queries and the Rust exports.

use std::collections::BTreeMap;
use std::path::PathBuf;

use graphql_parser::query::{
    parse_query, Definition, Document, OperationDefinition, Selection, SelectionSet, TypeCondition,
};
use graphql_parser::schema::{self, parse_schema, TypeDefinition};

const QUERIES: [(&str, &str); 2] = [
    (
        "cart.lines.discounts.generate.run",
        "src/cart_lines_discounts_generate_run.graphql",
    ),
    (
        "cart.delivery-options.discounts.generate.run",
        "src/cart_delivery_options_discounts_generate_run.graphql",
    ),
];
const MAX_QUERY_BYTES: usize = 3000;
const MAX_QUERY_COST: u32 = 30;

fn read(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Field name → type name (list and non-null wrappers removed), per object or interface type.
fn field_types(schema_text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let document = parse_schema::<String>(schema_text).expect("schema parses");
    let mut types = BTreeMap::new();
    for definition in document.definitions {
        let (name, fields) = match definition {
            schema::Definition::TypeDefinition(TypeDefinition::Object(t)) => (t.name, t.fields),
            schema::Definition::TypeDefinition(TypeDefinition::Interface(t)) => (t.name, t.fields),
            _ => continue,
        };
        let fields = fields
            .into_iter()
            .map(|f| (f.name, base_type(&f.field_type)))
            .collect();
        types.insert(name, fields);
    }
    types
}

fn base_type(t: &schema::Type<'_, String>) -> String {
    match t {
        schema::Type::NamedType(name) => name.clone(),
        schema::Type::ListType(inner) | schema::Type::NonNullType(inner) => base_type(inner),
    }
}

/// Shopify's cost table: `__typename` 0; a field returning `Metafield` 3 (its fields free);
/// `hasAnyTag`, `hasTags`, `inAnyCollection`, `inCollections` 3; every other leaf 1.
fn cost(
    types: &BTreeMap<String, BTreeMap<String, String>>,
    fragments: &BTreeMap<String, (String, SelectionSet<'_, String>)>,
    parent: &str,
    selections: &SelectionSet<'_, String>,
) -> u32 {
    let mut total = 0;
    for selection in &selections.items {
        match selection {
            Selection::Field(field) if field.name == "__typename" => {}
            Selection::Field(field) => {
                let field_type = types
                    .get(parent)
                    .and_then(|fields| fields.get(&field.name))
                    .unwrap_or_else(|| panic!("{parent}.{} is not in schema.graphql", field.name));
                if field_type == "Metafield"
                    || ["hasAnyTag", "hasTags", "inAnyCollection", "inCollections"]
                        .contains(&field.name.as_str())
                {
                    total += 3;
                } else if field.selection_set.items.is_empty() {
                    total += 1;
                } else {
                    total += cost(types, fragments, field_type, &field.selection_set);
                }
            }
            Selection::InlineFragment(fragment) => {
                let on = match &fragment.type_condition {
                    Some(TypeCondition::On(name)) => name.as_str(),
                    None => parent,
                };
                total += cost(types, fragments, on, &fragment.selection_set);
            }
            Selection::FragmentSpread(spread) => {
                let (on, selection_set) = &fragments[&spread.fragment_name];
                total += cost(types, fragments, on, selection_set);
            }
        }
    }
    total
}

/// The query text without `#` comments (which Shopify does not count), outside string literals.
fn without_comments(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut in_string = false;
        let mut kept = String::new();
        for c in line.chars() {
            match c {
                '"' => in_string = !in_string,
                '#' if !in_string => break,
                _ => {}
            }
            kept.push(c);
        }
        let kept = kept.trim();
        if !kept.is_empty() {
            out.push_str(kept);
            out.push('\n');
        }
    }
    out
}

fn query_cost(schema_text: &str, document: &Document<'_, String>) -> u32 {
    let types = field_types(schema_text);
    let mut fragments = BTreeMap::new();
    let mut operation = None;
    for definition in &document.definitions {
        match definition {
            Definition::Fragment(fragment) => {
                let TypeCondition::On(on) = &fragment.type_condition;
                fragments.insert(
                    fragment.name.clone(),
                    (on.clone(), fragment.selection_set.clone()),
                );
            }
            Definition::Operation(OperationDefinition::Query(query)) => operation = Some(query),
            Definition::Operation(_) => panic!("only a query is expected"),
        }
    }
    let query = operation.expect("one query");
    cost(&types, &fragments, "Input", &query.selection_set)
}

#[test]
fn input_queries_are_within_shopifys_size_and_cost_limits() {
    let schema_text = read("schema.graphql");
    for (target, path) in QUERIES {
        let text = read(path);
        let bytes = without_comments(&text).len();
        assert!(
            bytes <= MAX_QUERY_BYTES,
            "{target}: {bytes} bytes > {MAX_QUERY_BYTES}"
        );
        let document = parse_query::<String>(&text).expect("query parses");
        let cost = query_cost(&schema_text, &document);
        eprintln!("{target}: {bytes} bytes, cost {cost}");
        assert!(
            cost <= MAX_QUERY_COST,
            "{target}: cost {cost} > {MAX_QUERY_COST}"
        );
    }
}

#[test]
fn the_cost_table_is_applied_as_shopify_documents_it() {
    // 1 (discountClasses) + 3 (metafield) + 3 (hasAnyTag) + 1 (line id) + 0 (__typename) + 1 (isGiftCard)
    let query = r#"query Input($t: [String!] = []) {
        discount { discountClasses metafield(namespace: "a", key: "b") { jsonValue value } }
        cart { buyerIdentity { customer { hasAnyTag(tags: $t) } }
               lines { id merchandise { __typename ... on ProductVariant { product { isGiftCard } } } } }
    }"#;
    let document = parse_query::<String>(query).expect("parses");
    assert_eq!(query_cost(&read("schema.graphql"), &document), 9);
}

#[test]
fn variables_are_optional_with_defaults_so_a_missing_setting_cannot_fail_the_run() {
    for (target, path) in QUERIES {
        let text = read(path);
        let document = parse_query::<String>(&text).expect("query parses");
        for definition in &document.definitions {
            if let Definition::Operation(OperationDefinition::Query(query)) = definition {
                let names: Vec<&str> = query
                    .variable_definitions
                    .iter()
                    .map(|v| v.name.as_str())
                    .collect();
                assert_eq!(names, ["vipTags", "excludedTags"], "{target}");
                for variable in &query.variable_definitions {
                    assert!(
                        !matches!(variable.var_type, graphql_parser::query::Type::NonNullType(_)),
                        "{target}: ${} must be nullable: a required variable missing from the metafield fails the run",
                        variable.name
                    );
                    assert!(
                        variable.default_value.is_some(),
                        "{target}: ${} needs a default",
                        variable.name
                    );
                }
            }
        }
    }
}

#[test]
fn the_extension_toml_names_these_queries_and_exports() {
    let toml = read("shopify.extension.toml");
    for (target, path) in QUERIES {
        let export = path.trim_start_matches("src/").trim_end_matches(".graphql");
        let block = toml
            .split("[[extensions.targeting]]")
            .find(|block| block.contains(&format!("target = \"{target}\"")))
            .unwrap_or_else(|| panic!("no [[extensions.targeting]] for {target}"));
        assert!(
            block.contains(&format!("input_query = \"{path}\"")),
            "{target}"
        );
        assert!(
            block.contains(&format!("export = \"{export}\"")),
            "{target}"
        );
        // The Rust function of that name is what `#[shopify_function]` exports.
        assert!(
            read("src/main.rs").contains(&format!("fn {export}(")),
            "{export}"
        );
    }
    // The query variables come from the configuration metafield the Function reads.
    assert!(toml.contains("namespace = \"$app:vip\"") && toml.contains("key = \"config\""));
    for (_, path) in QUERIES {
        assert!(read(path).contains(r#"metafield(namespace: "$app:vip", key: "config")"#));
    }
}
