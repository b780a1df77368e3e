//! The mutations of the subset (reference app-platform.md §7.4–7.6, flow.md §5.2). Each one
//! validates its whole input first and changes nothing when it reports `userErrors` (Shopify's
//! `metafieldsSet` is documented atomic; the others touch one resource). A mutation that applied
//! is appended to the shop's mutation log by the caller.
//!
//! Results are owned [`Payload`]s, so an `@idempotent` repeat can return the first result.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::document::GqlError;
use crate::data::{
    add_tags, parse_gid, remove_tags, resolve_namespace, split_tags, CombinesWith, Discount,
    FlowTriggerRecord, Metafield, ShopData,
};

/// Flow's limit on a trigger payload (flow.md §5.2, observed on a live shop).
pub(crate) const FLOW_PAYLOAD_LIMIT: usize = 50_000;
/// `metafieldsSet` accepts at most this many metafields per call.
pub(crate) const METAFIELDS_PER_CALL: usize = 25;

/// One `userErrors` entry; which fields exist depends on `typename`.
#[derive(Debug, Clone)]
pub(crate) struct UserError {
    pub typename: &'static str,
    pub field: Vec<String>,
    pub message: String,
    pub code: Option<&'static str>,
    pub element_index: Option<usize>,
}

/// The result object of a root mutation field.
#[derive(Debug, Clone)]
pub(crate) struct Payload {
    pub typename: &'static str,
    /// `tagsAdd.node`: the GID of the tagged resource.
    pub node: Option<String>,
    pub metafields: Option<Vec<Metafield>>,
    pub discount: Option<Discount>,
    pub user_errors: Vec<UserError>,
}

impl Payload {
    fn new(typename: &'static str) -> Self {
        Payload {
            typename,
            node: None,
            metafields: None,
            discount: None,
            user_errors: Vec::new(),
        }
    }

    pub fn accepted(&self) -> bool {
        self.user_errors.is_empty()
    }
}

pub(crate) struct Ctx<'a> {
    pub shop: &'a str,
    pub shop_gid: &'a str,
    pub client_id: &'a str,
    pub now: DateTime<Utc>,
}

/// Runs root mutation field `name`. `Err` is a top-level GraphQL error (missing arguments),
/// which leaves the state untouched.
pub(crate) fn run(
    data: &mut ShopData,
    ctx: &Ctx<'_>,
    name: &str,
    args: &Map<String, Value>,
) -> Result<Payload, GqlError> {
    match name {
        "tagsAdd" => tags(data, ctx, args, true),
        "tagsRemove" => tags(data, ctx, args, false),
        "metafieldsSet" => metafields_set(data, ctx, args),
        "flowTriggerReceive" => Ok(flow_trigger_receive(data, ctx, args)),
        "discountAutomaticAppCreate" => discount_create(data, ctx, args),
        "discountAutomaticAppUpdate" => discount_update(data, ctx, args),
        other => Err(GqlError::new(format!(
            "Field '{other}' doesn't exist on type 'Mutation'"
        ))),
    }
}

fn required<'v>(
    args: &'v Map<String, Value>,
    field: &str,
    names: &[&str],
) -> Result<&'v Value, GqlError> {
    names
        .iter()
        .find_map(|n| args.get(*n).filter(|v| !v.is_null()))
        .ok_or_else(|| {
            GqlError::new(format!(
                "Field '{field}' is missing required arguments: {}",
                names.join(", ")
            ))
            .code(serde_json::json!({
                "code": "missingRequiredArguments",
                "className": "Field",
                "name": field,
                "arguments": names.join(", "),
            }))
        })
}

fn user_error(typename: &'static str, field: &[&str], message: impl Into<String>) -> UserError {
    UserError {
        typename,
        field: field.iter().map(|s| (*s).to_owned()).collect(),
        message: message.into(),
        code: None,
        element_index: None,
    }
}

// ---- tags --------------------------------------------------------------------------------------

fn tags(
    data: &mut ShopData,
    ctx: &Ctx<'_>,
    args: &Map<String, Value>,
    add: bool,
) -> Result<Payload, GqlError> {
    let field = if add { "tagsAdd" } else { "tagsRemove" };
    let id = required(args, field, &["id"])?
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let tags_value = required(args, field, &["tags"])?;
    // `[String!]!`, but Shopify also takes one comma-joined string.
    let list: Vec<&str> = match tags_value {
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        Value::String(s) => vec![s.as_str()],
        _ => Vec::new(),
    };
    let tags = split_tags(list);
    let mut payload = Payload::new(if add {
        "TagsAddPayload"
    } else {
        "TagsRemovePayload"
    });
    let apply = |t: &mut Vec<String>| {
        if add {
            add_tags(t, &tags)
        } else {
            remove_tags(t, &tags)
        }
    };
    let changed = match parse_gid(&id) {
        Some(("Customer", n)) => data.customers.get_mut(&n).map(|c| {
            let changed = apply(&mut c.tags);
            if changed {
                c.updated_at = Some(ctx.now);
            }
            changed
        }),
        Some(("Order", n)) => data.orders.get_mut(&n).map(|o| {
            let changed = apply(&mut o.tags);
            if changed {
                o.updated_at = Some(ctx.now);
            }
            changed
        }),
        Some(("Product", n)) => data.products.get_mut(&n).map(|p| {
            let changed = apply(&mut p.tags);
            if changed {
                p.updated_at = Some(ctx.now);
            }
            changed
        }),
        _ => None,
    };
    match changed {
        Some(_) => payload.node = Some(id),
        None => {
            let what = parse_gid(&id).map_or("Resource", |(t, _)| t);
            payload.user_errors.push(user_error(
                "UserError",
                &["id"],
                format!("{what} does not exist"),
            ));
        }
    }
    Ok(payload)
}

// ---- metafields --------------------------------------------------------------------------------

/// Types a metafield may have without a definition (shopify.dev "Metafield types"; subset).
const METAFIELD_TYPES: &[&str] = &[
    "boolean",
    "color",
    "date",
    "date_time",
    "dimension",
    "id",
    "json",
    "link",
    "money",
    "multi_line_text_field",
    "number_decimal",
    "number_integer",
    "rating",
    "rich_text_field",
    "single_line_text_field",
    "url",
    "volume",
    "weight",
    "customer_reference",
    "order_reference",
    "product_reference",
    "variant_reference",
];

fn valid_type(t: &str) -> bool {
    METAFIELD_TYPES.contains(&t.strip_prefix("list.").unwrap_or(t))
}

/// Whether `value` is acceptable for `kind` (the checks Shopify applies that Keel can trip).
fn valid_value(kind: &str, value: &str) -> bool {
    match kind {
        "number_integer" => value.trim().parse::<i64>().is_ok(),
        "number_decimal" => value.trim().parse::<f64>().is_ok(),
        "boolean" => matches!(value, "true" | "false"),
        "date" => chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").is_ok(),
        "date_time" => DateTime::parse_from_rfc3339(value).is_ok(),
        k if k == "json" || k.starts_with("list.") => serde_json::from_str::<Value>(value).is_ok(),
        _ => true,
    }
}

/// One validated metafield write.
struct MetafieldWrite {
    owner: String,
    namespace: String,
    key: String,
    kind: String,
    value: String,
}

/// Where a metafield input sits, for its userErrors: the field path to it, its `elementIndex`
/// and the userError type of the mutation.
struct Site {
    prefix: Vec<String>,
    index: Option<usize>,
    typename: &'static str,
}

/// Validates one `MetafieldsSetInput`-like object (`owner_override` for inputs without
/// `ownerId`, like a discount's metafields).
fn check_metafield(
    data: &ShopData,
    ctx: &Ctx<'_>,
    input: &Value,
    owner_override: Option<&str>,
    site: &Site,
    errors: &mut Vec<UserError>,
) -> Option<MetafieldWrite> {
    let before = errors.len();
    let Site {
        prefix,
        index,
        typename,
    } = site;
    let (index, typename) = (*index, *typename);
    let get = |k: &str| input.get(k).and_then(Value::as_str);
    let mut err = |field: &str, message: String, code: &'static str| {
        let mut path = prefix.to_vec();
        path.push(field.to_owned());
        errors.push(UserError {
            typename,
            field: path,
            message,
            code: Some(code),
            element_index: index,
        });
    };
    let owner = owner_override
        .map(str::to_owned)
        .or_else(|| get("ownerId").map(str::to_owned));
    match &owner {
        None => err("ownerId", "Owner can't be blank".into(), "BLANK"),
        Some(o) if !data.owner_exists(o) && o != ctx.shop_gid => {
            err("ownerId", "Owner does not exist.".into(), "INVALID")
        }
        _ => {}
    }
    let raw_ns = get("namespace").unwrap_or("$app");
    if raw_ns.len() < 3 {
        err(
            "namespace",
            "Namespace is too short (minimum is 3 characters)".into(),
            "TOO_SHORT",
        );
    } else if raw_ns.len() > 255 {
        err(
            "namespace",
            "Namespace is too long (maximum is 255 characters)".into(),
            "TOO_LONG",
        );
    } else if !raw_ns
        .strip_prefix("$app")
        .map_or(raw_ns, |rest| rest.strip_prefix(':').unwrap_or(rest))
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        err(
            "namespace",
            "Namespace contains invalid characters.".into(),
            "INVALID",
        );
    }
    let key = get("key").unwrap_or_default();
    if key.len() < 2 {
        err(
            "key",
            "Key is too short (minimum is 2 characters)".into(),
            "TOO_SHORT",
        );
    } else if key.len() > 64 {
        err(
            "key",
            "Key is too long (maximum is 64 characters)".into(),
            "TOO_LONG",
        );
    } else if !key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        err("key", "Key contains invalid characters.".into(), "INVALID");
    }
    let namespace = resolve_namespace(raw_ns, ctx.client_id);
    let existing = owner
        .as_deref()
        .and_then(|o| data.metafield(o, &namespace, key));
    // Without a definition the type is required; an existing metafield stands in for one.
    let kind = match (get("type"), existing) {
        (Some(t), _) => Some(t.to_owned()),
        (None, Some(m)) => Some(m.kind.clone()),
        (None, None) => {
            err("type", "Type can't be blank".into(), "BLANK");
            None
        }
    };
    if let Some(k) = &kind {
        if !valid_type(k) {
            err(
                "type",
                format!("Type '{k}' is not a valid type"),
                "INVALID_TYPE",
            );
        }
    }
    let value = match input.get("value") {
        Some(Value::String(v)) => Some(v.clone()),
        _ => {
            err("value", "Value can't be blank".into(), "BLANK");
            None
        }
    };
    if let (Some(k), Some(v)) = (&kind, &value) {
        if valid_type(k) && !valid_value(k, v) {
            err(
                "value",
                format!("Value is invalid for type '{k}'"),
                "INVALID_VALUE",
            );
        }
    }
    // compareDigest: absent = no check; null = must not exist yet; string = must match.
    if let Some(digest) = input.as_object().and_then(|o| o.get("compareDigest")) {
        let current = existing.map(Metafield::compare_digest);
        let ok = match digest {
            Value::Null => current.is_none(),
            Value::String(d) => current.as_deref() == Some(d.as_str()),
            _ => false,
        };
        if !ok {
            err(
                "compareDigest",
                "The resource has been updated since it was loaded. Try again with an updated `compareDigest` value.".into(),
                "STALE_OBJECT",
            );
        }
    }
    (errors.len() == before).then(|| MetafieldWrite {
        owner: owner.unwrap_or_default(),
        namespace,
        key: key.to_owned(),
        kind: kind.unwrap_or_default(),
        value: value.unwrap_or_default(),
    })
}

fn metafields_set(
    data: &mut ShopData,
    ctx: &Ctx<'_>,
    args: &Map<String, Value>,
) -> Result<Payload, GqlError> {
    let inputs = required(args, "metafieldsSet", &["metafields"])?;
    let inputs: Vec<Value> = match inputs {
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    let mut payload = Payload::new("MetafieldsSetPayload");
    if inputs.len() > METAFIELDS_PER_CALL {
        payload.user_errors.push(UserError {
            typename: "MetafieldsSetUserError",
            field: vec!["metafields".into()],
            message: format!(
                "Exceeded the maximum metafields input limit of {METAFIELDS_PER_CALL}."
            ),
            code: Some("LESS_THAN_OR_EQUAL_TO"),
            element_index: None,
        });
        return Ok(payload);
    }
    let mut writes = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let prefix = vec!["metafields".to_owned(), i.to_string()];
        let site = Site {
            prefix,
            index: Some(i),
            typename: "MetafieldsSetUserError",
        };
        if let Some(w) = check_metafield(data, ctx, input, None, &site, &mut payload.user_errors) {
            writes.push(w);
        }
    }
    // Atomic: one invalid input and nothing is written.
    if !payload.user_errors.is_empty() {
        return Ok(payload);
    }
    let written = writes
        .into_iter()
        .map(|w| data.put_metafield(w.owner, w.namespace, w.key, w.kind, w.value, ctx.now))
        .collect();
    payload.metafields = Some(written);
    Ok(payload)
}

// ---- Flow --------------------------------------------------------------------------------------

/// flow.md §5.2: messages as observed on a live shop.
fn flow_trigger_receive(data: &mut ShopData, ctx: &Ctx<'_>, args: &Map<String, Value>) -> Payload {
    let mut payload = Payload::new("FlowTriggerReceivePayload");
    let handle = args
        .get("handle")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let body_given = args.get("body").is_some_and(|b| !b.is_null());
    let trigger_payload = args.get("payload").filter(|p| !p.is_null());
    if body_given && (!handle.is_empty() || trigger_payload.is_some()) {
        payload.user_errors.push(user_error(
            "UserError",
            &["body"],
            "Cannot use `handle` and `payload` arguments with `body` argument",
        ));
        return payload;
    }
    let Some(trigger_payload) = trigger_payload.filter(|_| !handle.is_empty()) else {
        payload.user_errors.push(user_error(
            "UserError",
            &["handle"],
            "`handle` and `payload` arguments are required",
        ));
        return payload;
    };
    if !data.flow_trigger_handles.is_empty()
        && !data.flow_trigger_handles.iter().any(|h| h == handle)
    {
        payload.user_errors.push(user_error(
            "UserError",
            &["body"],
            format!("Errors validating schema:\n  Invalid handle '{handle}'.\n"),
        ));
        return payload;
    }
    let size = serde_json::to_vec(trigger_payload).map_or(usize::MAX, |b| b.len());
    if size > FLOW_PAYLOAD_LIMIT {
        payload.user_errors.push(user_error(
            "UserError",
            &["body"],
            format!(
                "Errors validating schema:\n  Properties size exceeds the limit of {FLOW_PAYLOAD_LIMIT} bytes.\n"
            ),
        ));
        return payload;
    }
    data.flow_triggers.push(FlowTriggerRecord {
        at: ctx.now,
        shop: ctx.shop.to_owned(),
        handle: handle.to_owned(),
        payload: trigger_payload.clone(),
        payload_bytes: size,
    });
    payload
}

// ---- discounts ---------------------------------------------------------------------------------

const DISCOUNT_CLASSES: &[&str] = &["ORDER", "PRODUCT", "SHIPPING"];

fn parse_time(v: Option<&Value>) -> Result<Option<DateTime<Utc>>, ()> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|d| Some(d.with_timezone(&Utc)))
            .map_err(|_| ()),
        Some(_) => Err(()),
    }
}

/// Validates a `DiscountAutomaticAppInput` and applies it to `discount` (a fresh default for
/// create). Returns the metafield writes to make if everything is valid.
fn apply_discount_input(
    data: &ShopData,
    ctx: &Ctx<'_>,
    input: &Value,
    discount: &mut Discount,
    creating: bool,
    errors: &mut Vec<UserError>,
) -> Vec<MetafieldWrite> {
    let mut err = |field: &str, message: &str, code: &'static str| {
        errors.push(UserError {
            typename: "DiscountUserError",
            field: vec!["automaticAppDiscount".into(), field.into()],
            message: message.into(),
            code: Some(code),
            element_index: None,
        });
    };
    if let Some(t) = input.get("title").and_then(Value::as_str) {
        discount.title = t.to_owned();
    }
    if discount.title.trim().is_empty() && (creating || input.get("title").is_some()) {
        err("title", "Title can't be blank", "BLANK");
    }
    let handle = input
        .get("functionHandle")
        .or_else(|| input.get("functionId"))
        .and_then(Value::as_str);
    match handle {
        Some(h)
            if !data.function_handles.is_empty()
                && !data.function_handles.iter().any(|x| x == h) =>
        {
            err("functionHandle", "Function not found.", "INVALID");
        }
        Some(h) => discount.function_handle = h.to_owned(),
        None if creating => err("functionHandle", "Function handle can't be blank", "BLANK"),
        None => {}
    }
    if let Some(classes) = input.get("discountClasses").and_then(Value::as_array) {
        let classes: Vec<String> = classes
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        if classes
            .iter()
            .all(|c| DISCOUNT_CLASSES.contains(&c.as_str()))
        {
            discount.discount_classes = classes;
        } else {
            err(
                "discountClasses",
                "Discount classes must be ORDER, PRODUCT or SHIPPING",
                "INVALID",
            );
        }
    }
    if let Some(c) = input.get("combinesWith").filter(|c| !c.is_null()) {
        match serde_json::from_value::<CombinesWith>(c.clone()) {
            Ok(c) => discount.combines_with = c,
            Err(_) => err("combinesWith", "Combines with is invalid", "INVALID"),
        }
    }
    match parse_time(input.get("startsAt")) {
        Ok(Some(t)) => discount.starts_at = t,
        Ok(None) if creating => err("startsAt", "Starts at can't be blank", "BLANK"),
        Ok(None) => {}
        Err(()) => err("startsAt", "Starts at is invalid", "INVALID"),
    }
    match parse_time(input.get("endsAt")) {
        Ok(t) if input.get("endsAt").is_some() => discount.ends_at = t,
        Ok(_) => {}
        Err(()) => err("endsAt", "Ends at is invalid", "INVALID"),
    }
    if discount.ends_at.is_some_and(|e| e <= discount.starts_at) {
        err("endsAt", "Ends at needs to be after starts_at", "INVALID");
    }
    let mut writes = Vec::new();
    if let Some(mfs) = input.get("metafields").and_then(Value::as_array) {
        let owner = discount.gid();
        for (i, m) in mfs.iter().enumerate() {
            let prefix = vec![
                "automaticAppDiscount".to_owned(),
                "metafields".to_owned(),
                i.to_string(),
            ];
            let site = Site {
                prefix,
                index: None,
                typename: "DiscountUserError",
            };
            if let Some(w) = check_metafield(data, ctx, m, Some(&owner), &site, errors) {
                writes.push(w);
            }
        }
    }
    writes
}

fn discount_create(
    data: &mut ShopData,
    ctx: &Ctx<'_>,
    args: &Map<String, Value>,
) -> Result<Payload, GqlError> {
    let input = required(
        args,
        "discountAutomaticAppCreate",
        &["automaticAppDiscount"],
    )?
    .clone();
    let mut payload = Payload::new("DiscountAutomaticAppCreatePayload");
    // The id is only taken when the discount is stored; until then the owner check of the
    // discount's own metafields must pass, so it is registered provisionally below.
    let id = data.next_id();
    let mut discount = Discount {
        id,
        title: String::new(),
        function_handle: String::new(),
        discount_classes: Vec::new(),
        combines_with: CombinesWith::default(),
        starts_at: ctx.now,
        ends_at: None,
        metafields: Vec::new(),
    };
    data.discounts.insert(id, discount.clone());
    let writes = apply_discount_input(
        data,
        ctx,
        &input,
        &mut discount,
        true,
        &mut payload.user_errors,
    );
    if !payload.user_errors.is_empty() {
        data.discounts.remove(&id);
        return Ok(payload);
    }
    data.discounts.insert(id, discount.clone());
    for w in writes {
        data.put_metafield(w.owner, w.namespace, w.key, w.kind, w.value, ctx.now);
    }
    payload.discount = Some(discount);
    Ok(payload)
}

fn discount_update(
    data: &mut ShopData,
    ctx: &Ctx<'_>,
    args: &Map<String, Value>,
) -> Result<Payload, GqlError> {
    let id = required(args, "discountAutomaticAppUpdate", &["id"])?
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let input = required(
        args,
        "discountAutomaticAppUpdate",
        &["automaticAppDiscount"],
    )?
    .clone();
    let mut payload = Payload::new("DiscountAutomaticAppUpdatePayload");
    let existing = match parse_gid(&id) {
        Some(("DiscountAutomaticNode" | "DiscountAutomaticApp" | "DiscountNode", n)) => {
            data.discounts.get(&n).cloned()
        }
        _ => None,
    };
    let Some(mut discount) = existing else {
        payload.user_errors.push(UserError {
            typename: "DiscountUserError",
            field: vec!["id".into()],
            message: "Discount does not exist".into(),
            code: Some("INVALID"),
            element_index: None,
        });
        return Ok(payload);
    };
    let writes = apply_discount_input(
        data,
        ctx,
        &input,
        &mut discount,
        false,
        &mut payload.user_errors,
    );
    if !payload.user_errors.is_empty() {
        return Ok(payload);
    }
    data.discounts.insert(discount.id, discount.clone());
    for w in writes {
        data.put_metafield(w.owner, w.namespace, w.key, w.kind, w.value, ctx.now);
    }
    payload.discount = Some(discount);
    Ok(payload)
}
