//! The one pass over the cart lines: which lines may get the VIP price, and what they add up to.
//!
//! This loop is where a large cart's instructions go. The Function API decodes every value it
//! walks past (each line's whole selection is decoded before the next line can be found), so the
//! input queries keep per-line selections minimal, and this loop adds as little as it can on top:
//!
//! - entries are read by position (`get_at_index`), which skips the provider's name comparisons.
//!   That is safe whatever order the members arrive in, because each object read here is either
//!   single-entry (`merchandise`, `cost`, `subtotalAmount`, an `amounts` element), told apart by
//!   type (a line's `id` is its only string, `merchandise` its only object), or read symmetrically
//!   (a product is eligible when *both* `isGiftCard` and `excluded` are false);
//! - a line's ID is read only when it will be output, its amount only when a minimum or a cap
//!   needs the subtotal — from the parallel `amounts` list, which other runs never decode.
//!
//! The shapes read here are those of the `lines` and `amounts` selections of both input queries;
//! a change there fails the fixture tests.

use shopify_function::wasm_api::Value;
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
    /// `lines` (or `amounts`) is not a list, or the two differ in length.
    NotLists,
    /// A line is not `{id, merchandise}` / `{merchandise}`.
    BadLine { line: usize },
    /// A line's `cost.subtotalAmount.amount` is missing or not a decimal.
    BadAmount { line: usize },
    /// The eligible subtotal does not fit Keel's decimals.
    Overflow,
}

impl ScanError {
    /// For the log line (kept free of `Debug` formatting, which would bloat the wasm).
    pub fn describe(&self) -> String {
        match self {
            ScanError::NotLists => "lines and amounts are not lists of the same length".into(),
            ScanError::BadLine { line } => format!("line {line} has an unexpected shape"),
            ScanError::BadAmount { line } => format!("line {line} has no decimal amount"),
            ScanError::Overflow => "the subtotal overflows".into(),
        }
    }
}

/// The raw `cart.<list>` of a run's input (`lines`, or the `amounts` alias).
fn cart_list(raw_input: &Value, list: &str) -> Value {
    raw_input.get_obj_prop("cart").get_obj_prop(list)
}

fn list_len(list: &Value) -> Option<usize> {
    if list.is_array() {
        list.array_len()
    } else {
        None
    }
}

/// Reads the lines once. A line is eligible when it sells a catalog product that is neither a
/// gift card nor tagged with one of the excluded tags (the query's `excluded` alias). Custom
/// items are never eligible: they match no fragment (their `merchandise` is `{}`), so there are no
/// tags to exclude them by.
///
/// `raw_input` is the run's whole input: the lines are its `cart.lines`, their amounts the
/// parallel `cart.amounts` (`amounts: lines { cost { … } }`), looked up only when
/// [`Want::subtotal`] is set — until then the Function API never decodes them.
pub fn scan(raw_input: &Value, want: Want) -> Result<Scan, ScanError> {
    let lines = cart_list(raw_input, "lines");
    let len = list_len(&lines).ok_or(ScanError::NotLists)?;
    let amounts = if want.subtotal {
        let amounts = cart_list(raw_input, "amounts");
        if list_len(&amounts) != Some(len) {
            return Err(ScanError::NotLists);
        }
        Some(amounts)
    } else {
        None
    };
    let mut scan = Scan {
        eligible_ids: Vec::with_capacity(if want.eligible_ids { len } else { 0 }),
        ..Scan::default()
    };
    for index in 0..len {
        let line = lines.get_at_index(index);
        let (merchandise, id) = split_line(&line).ok_or(ScanError::BadLine { line: index })?;
        let eligible = sells_eligible_product(&merchandise);
        let keep_id = if eligible {
            want.eligible_ids
        } else {
            want.ineligible_ids
        };
        if keep_id {
            let id = id
                .and_then(|id| id.as_string())
                .ok_or(ScanError::BadLine { line: index })?;
            if eligible {
                scan.eligible_ids.push(id);
            } else {
                scan.ineligible_ids.push(id);
            }
        }
        if eligible {
            scan.eligible += 1;
            if let Some(amounts) = &amounts {
                let amount = line_amount(&amounts.get_at_index(index))
                    .ok_or(ScanError::BadAmount { line: index })?;
                scan.eligible_subtotal = scan
                    .eligible_subtotal
                    .checked_add(amount)
                    .ok_or(ScanError::Overflow)?;
            }
        }
    }
    Ok(scan)
}

/// A line's `merchandise` (its only object) and `id` (its only other entry, when selected).
fn split_line(line: &Value) -> Option<(Value, Option<Value>)> {
    match line.obj_len()? {
        1 => Some((line.get_at_index(0), None)),
        2 => {
            let first = line.get_at_index(0);
            if first.is_obj() {
                Some((first, Some(line.get_at_index(1))))
            } else {
                Some((line.get_at_index(1), Some(first)))
            }
        }
        _ => None,
    }
}

/// `merchandise` is `{product: {isGiftCard, excluded}}` for a catalog variant, `{}` otherwise.
fn sells_eligible_product(merchandise: &Value) -> bool {
    if merchandise.obj_len() != Some(1) {
        return false;
    }
    let product = merchandise.get_at_index(0);
    product.obj_len() == Some(2)
        && product.get_at_index(0).as_bool() == Some(false)
        && product.get_at_index(1).as_bool() == Some(false)
}

/// `{cost: {subtotalAmount: {amount: "12.99"}}}` → 12.99.
fn line_amount(element: &Value) -> Option<Decimal> {
    let mut value = *element;
    for _ in 0..3 {
        if value.obj_len() != Some(1) {
            return None;
        }
        value = value.get_at_index(0);
    }
    Decimal::parse(&value.as_string()?)
}
