//! The one pass over the cart lines: which lines may get the VIP price, and what they add up to.
//!
//! This loop is where a large cart's instructions go, so it reads the raw input with property
//! names interned once per run (no copy of the name into the provider per access), reads each
//! field at most once, and only reads what the caller asked for (a line's ID only when it will be
//! output, its amount only when a minimum or cap needs the subtotal). The property names mirror
//! the `lines` selection of both input queries; a renamed field there fails the fixture tests.

use shopify_function::wasm_api::{InternedStringId, Value};
use vip_config::Decimal;

/// What the caller needs from the lines.
#[derive(Clone, Copy, Debug, Default)]
pub struct Want {
    /// IDs of eligible lines (targets of a product discount).
    pub eligible_ids: bool,
    /// IDs of ineligible lines (excluded from an order-subtotal discount).
    pub ineligible_ids: bool,
    /// Sum of the eligible lines' subtotals (for a minimum or a cap).
    pub subtotal: bool,
}

#[derive(Debug, Default)]
pub struct Scan {
    pub eligible: usize,
    pub eligible_ids: Vec<String>,
    pub ineligible_ids: Vec<String>,
    /// Zero unless [`Want::subtotal`].
    pub eligible_subtotal: Decimal,
}

/// Why the lines could not be read; the caller gives no discount.
#[derive(Debug, PartialEq, Eq)]
pub enum ScanError {
    NotAList,
    /// A line's `cost.subtotalAmount.amount` was missing or not a decimal.
    BadAmount { line: usize },
    /// A line's `id` was missing.
    MissingId { line: usize },
    /// The eligible subtotal does not fit Keel's decimals.
    Overflow,
}

/// Property names read per line, interned once.
struct Keys {
    id: InternedStringId,
    cost: InternedStringId,
    subtotal_amount: InternedStringId,
    amount: InternedStringId,
    merchandise: InternedStringId,
    product: InternedStringId,
    is_gift_card: InternedStringId,
    excluded: InternedStringId,
}

impl Keys {
    fn intern(value: &Value) -> Keys {
        Keys {
            id: value.intern_utf8_str("id"),
            cost: value.intern_utf8_str("cost"),
            subtotal_amount: value.intern_utf8_str("subtotalAmount"),
            amount: value.intern_utf8_str("amount"),
            merchandise: value.intern_utf8_str("merchandise"),
            product: value.intern_utf8_str("product"),
            is_gift_card: value.intern_utf8_str("isGiftCard"),
            excluded: value.intern_utf8_str("excluded"),
        }
    }
}

/// The raw `cart.lines` of a run's input.
pub fn cart_lines(raw_input: &Value) -> Value {
    let cart = raw_input.intern_utf8_str("cart");
    let lines = raw_input.intern_utf8_str("lines");
    raw_input
        .get_interned_obj_prop(cart)
        .get_interned_obj_prop(lines)
}

/// Reads the lines once. A line is eligible when it sells a catalog product that is neither a
/// gift card nor tagged with one of the excluded tags (the query's `excluded` alias); custom items
/// are never eligible — they have no product tags to exclude them by.
pub fn scan(lines: &Value, want: Want) -> Result<Scan, ScanError> {
    let len = match lines.array_len() {
        Some(len) if lines.is_array() => len,
        _ => return Err(ScanError::NotAList),
    };
    let keys = Keys::intern(lines);
    let mut scan = Scan {
        eligible_ids: Vec::with_capacity(if want.eligible_ids { len } else { 0 }),
        ..Scan::default()
    };
    for index in 0..len {
        let line = lines.get_at_index(index);
        let product = line
            .get_interned_obj_prop(keys.merchandise)
            .get_interned_obj_prop(keys.product);
        let eligible = product.is_obj()
            && product.get_interned_obj_prop(keys.is_gift_card).as_bool() == Some(false)
            && product.get_interned_obj_prop(keys.excluded).as_bool() == Some(false);
        if eligible {
            scan.eligible += 1;
            if want.subtotal {
                let amount = line
                    .get_interned_obj_prop(keys.cost)
                    .get_interned_obj_prop(keys.subtotal_amount)
                    .get_interned_obj_prop(keys.amount)
                    .as_string()
                    .as_deref()
                    .and_then(Decimal::parse)
                    .ok_or(ScanError::BadAmount { line: index })?;
                scan.eligible_subtotal = scan
                    .eligible_subtotal
                    .checked_add(amount)
                    .ok_or(ScanError::Overflow)?;
            }
        }
        let keep_id = if eligible {
            want.eligible_ids
        } else {
            want.ineligible_ids
        };
        if keep_id {
            let id = line
                .get_interned_obj_prop(keys.id)
                .as_string()
                .ok_or(ScanError::MissingId { line: index })?;
            if eligible {
                scan.eligible_ids.push(id);
            } else {
                scan.ineligible_ids.push(id);
            }
        }
    }
    Ok(scan)
}
