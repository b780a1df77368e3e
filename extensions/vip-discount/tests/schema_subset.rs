//! Keel's `schema.graphql` is a faithful subset of Shopify's Discount Function API schema: every
//! type, field, argument, default, directive and enum value it declares exists in Shopify's
//! published schema with the same type. Input objects (the Function's output) and unions carry
//! every member Shopify's do, so the generated Rust types can express any valid result.
//!
//! Shopify's file is read at test time from `shared/reference/` beside the repository; re-run this
//! against the newer file before raising `api_version`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use graphql_parser::schema::{
    parse_schema, Definition, Directive, Document, InputValue, TypeDefinition,
};

const SHOPIFY_SCHEMA: &str = "../../../shared/reference/shopify-discount-function-schema.graphql";

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read {}: {error} (Shopify's schema is expected in shared/reference/ beside the repository)",
            path.display()
        )
    })
}

struct Schema<'a> {
    types: BTreeMap<String, TypeDefinition<'a, String>>,
    directives: BTreeMap<String, graphql_parser::schema::DirectiveDefinition<'a, String>>,
    roots: Vec<(String, Option<String>)>,
}

fn index<'a>(document: Document<'a, String>) -> Schema<'a> {
    let mut schema = Schema {
        types: BTreeMap::new(),
        directives: BTreeMap::new(),
        roots: Vec::new(),
    };
    for definition in document.definitions {
        match definition {
            Definition::TypeDefinition(definition) => {
                let name = type_name(&definition).to_owned();
                assert!(
                    schema.types.insert(name.clone(), definition).is_none(),
                    "{name} defined twice"
                );
            }
            Definition::DirectiveDefinition(directive) => {
                schema.directives.insert(directive.name.clone(), directive);
            }
            Definition::SchemaDefinition(root) => {
                schema.roots.push(("query".into(), root.query));
                schema.roots.push(("mutation".into(), root.mutation));
            }
            Definition::TypeExtension(_) => panic!("type extensions are not expected"),
        }
    }
    schema
}

fn type_name<'a, 'b>(definition: &'b TypeDefinition<'a, String>) -> &'b str {
    match definition {
        TypeDefinition::Scalar(t) => &t.name,
        TypeDefinition::Object(t) => &t.name,
        TypeDefinition::Interface(t) => &t.name,
        TypeDefinition::Union(t) => &t.name,
        TypeDefinition::Enum(t) => &t.name,
        TypeDefinition::InputObject(t) => &t.name,
    }
}

fn directives(directives: &[Directive<'_, String>]) -> Vec<String> {
    let mut rendered: Vec<String> = directives.iter().map(|d| d.to_string()).collect();
    rendered.sort();
    rendered
}

/// `name: Type = default @directives`, which must match exactly.
fn signature(value: &InputValue<'_, String>) -> String {
    format!(
        "{}: {}{} {:?}",
        value.name,
        value.value_type,
        value
            .default_value
            .as_ref()
            .map(|v| format!(" = {v}"))
            .unwrap_or_default(),
        directives(&value.directives)
    )
}

fn arguments(values: &[InputValue<'_, String>]) -> BTreeMap<String, String> {
    values
        .iter()
        .map(|v| (v.name.clone(), signature(v)))
        .collect()
}

/// Every difference between Keel's subset and Shopify's schema.
fn differences(keel: &Schema<'_>, shopify: &Schema<'_>) -> Vec<String> {
    let mut problems = Vec::new();
    for (root, name) in &keel.roots {
        if !shopify.roots.contains(&(root.clone(), name.clone())) {
            problems.push(format!("schema {root}: {name:?} is not Shopify's"));
        }
    }
    for (name, directive) in &keel.directives {
        match shopify.directives.get(name) {
            None => problems.push(format!("directive @{name} is not in Shopify's schema")),
            Some(theirs) => {
                if arguments(&directive.arguments) != arguments(&theirs.arguments)
                    || directive.locations != theirs.locations
                {
                    problems.push(format!("directive @{name} differs from Shopify's"));
                }
            }
        }
    }
    for (name, ours) in &keel.types {
        let Some(theirs) = shopify.types.get(name) else {
            problems.push(format!("type {name} is not in Shopify's schema"));
            continue;
        };
        match (ours, theirs) {
            (TypeDefinition::Scalar(_), TypeDefinition::Scalar(_)) => {}
            (TypeDefinition::Object(ours), TypeDefinition::Object(theirs)) => {
                for interface in &ours.implements_interfaces {
                    if !theirs.implements_interfaces.contains(interface) {
                        problems.push(format!(
                            "{name} does not implement {interface} in Shopify's schema"
                        ));
                    }
                }
                compare_fields(name, &ours.fields, &theirs.fields, &mut problems);
            }
            (TypeDefinition::Interface(ours), TypeDefinition::Interface(theirs)) => {
                compare_fields(name, &ours.fields, &theirs.fields, &mut problems);
            }
            (TypeDefinition::Union(ours), TypeDefinition::Union(theirs)) => {
                let mut a = ours.types.clone();
                let mut b = theirs.types.clone();
                a.sort();
                b.sort();
                if a != b {
                    problems.push(format!("union {name} = {a:?}, Shopify's = {b:?}"));
                }
            }
            (TypeDefinition::Enum(ours), TypeDefinition::Enum(theirs)) => {
                let values = |e: &graphql_parser::schema::EnumType<'_, String>| -> BTreeMap<String, Vec<String>> {
                    e.values.iter().map(|v| (v.name.clone(), directives(&v.directives))).collect()
                };
                if values(ours) != values(theirs) {
                    problems.push(format!("enum {name} has other values than Shopify's"));
                }
            }
            (TypeDefinition::InputObject(ours), TypeDefinition::InputObject(theirs)) => {
                if directives(&ours.directives) != directives(&theirs.directives) {
                    problems.push(format!("input {name} has other directives than Shopify's"));
                }
                let ours = arguments(&ours.fields);
                let theirs = arguments(&theirs.fields);
                if ours != theirs {
                    problems.push(format!(
                        "input {name} differs from Shopify's: Keel {:?}, Shopify {:?}",
                        ours.values().collect::<Vec<_>>(),
                        theirs.values().collect::<Vec<_>>()
                    ));
                }
            }
            _ => problems.push(format!(
                "{name} is a different kind of type in Shopify's schema"
            )),
        }
    }
    problems
}

fn compare_fields(
    type_name: &str,
    ours: &[graphql_parser::schema::Field<'_, String>],
    theirs: &[graphql_parser::schema::Field<'_, String>],
    problems: &mut Vec<String>,
) {
    for field in ours {
        let Some(their) = theirs.iter().find(|f| f.name == field.name) else {
            problems.push(format!(
                "{type_name}.{} is not in Shopify's schema",
                field.name
            ));
            continue;
        };
        if field.field_type.to_string() != their.field_type.to_string() {
            problems.push(format!(
                "{type_name}.{}: {} but Shopify's is {}",
                field.name, field.field_type, their.field_type
            ));
        }
        if arguments(&field.arguments) != arguments(&their.arguments) {
            problems.push(format!(
                "{type_name}.{} has other arguments than Shopify's",
                field.name
            ));
        }
        if directives(&field.directives) != directives(&their.directives) {
            problems.push(format!(
                "{type_name}.{} has other directives than Shopify's",
                field.name
            ));
        }
    }
}

#[test]
fn keels_schema_is_a_faithful_subset_of_shopifys() {
    let keel_text = read(manifest_dir().join("schema.graphql"));
    let shopify_text = read(manifest_dir().join(SHOPIFY_SCHEMA));
    let keel = index(parse_schema::<String>(&keel_text).expect("Keel's schema parses"));
    let shopify = index(parse_schema::<String>(&shopify_text).expect("Shopify's schema parses"));
    assert!(keel.types.len() > 40, "Keel's schema looks truncated");
    let problems = differences(&keel, &shopify);
    assert!(
        problems.is_empty(),
        "schema.graphql differs from Shopify's:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_check_catches_a_changed_type_a_missing_field_and_an_incomplete_output() {
    let shopify_text = read(manifest_dir().join(SHOPIFY_SCHEMA));
    let shopify = index(parse_schema::<String>(&shopify_text).expect("Shopify's schema parses"));
    let broken = r#"
        type Cart { lines: [CartLine] }
        type CartLine { id: ID! invented: Boolean! }
        input Percentage { value: Float! }
        input CartOperation @oneOf { productDiscountsAdd: ProductDiscountsAddOperation }
        enum DiscountClass { ORDER PRODUCT }
    "#;
    let keel = index(parse_schema::<String>(broken).expect("parses"));
    let problems = differences(&keel, &shopify).join("\n");
    assert!(
        problems.contains("Cart.lines: [CartLine] but Shopify's is [CartLine!]!"),
        "{problems}"
    );
    assert!(
        problems.contains("CartLine.invented is not in Shopify's schema"),
        "{problems}"
    );
    assert!(problems.contains("input Percentage differs"), "{problems}");
    assert!(
        problems.contains("input CartOperation differs"),
        "{problems}"
    );
    assert!(
        problems.contains("enum DiscountClass has other values"),
        "{problems}"
    );
}

#[test]
fn the_schema_declares_the_api_version_of_the_extension() {
    let schema = read(manifest_dir().join("schema.graphql"));
    let toml = read(manifest_dir().join("shopify.extension.toml"));
    let version = schema
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("# api_version: "))
        .expect("schema.graphql starts with `# api_version: `");
    assert!(
        toml.contains(&format!("api_version = \"{version}\"")),
        "shopify.extension.toml must use api_version {version}"
    );
}
