//! The one pass over the cart lines: which lines may get the VIP price, and what the others add
//! up to.
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
//! - every call into the Function API costs a couple of hundred instructions beyond the decoding
//!   it causes, so each line is entered once, at the member the query puts last (which decodes the
//!   ones before it), and the rest is read from what is already decoded;
//! - a line's ID is read only when it will be output, its amount only when it is ineligible and
//!   the caller needs the ineligible lines' total — from the parallel `amounts` list, which other
//!   runs never decode. The eligible lines' total is the cart's subtotal minus that (see
//!   [`crate::lines`]), so eligible lines, usually most of a cart, never need their amounts.
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
    /// Sum of the ineligible lines' subtotals (the cart's subtotal minus it is the eligible one).
    pub ineligible_subtotal: bool,
}

#[derive(Debug, Default)]
pub struct Scan {
    pub eligible: usize,
    pub eligible_ids: Vec<String>,
    pub ineligible_ids: Vec<String>,
    /// Zero unless [`Want::ineligible_subtotal`].
    pub ineligible_subtotal: Decimal,
}

impl Scan {
    /// The eligible lines' subtotal: the cart's minus the ineligible lines' (read with
    /// [`Want::ineligible_subtotal`]); `None` when that would be negative or overflows.
    ///
    /// Exact because, in a Discount Function's input, the cart's subtotal is the sum of its lines'
    /// subtotals: `CartCost.subtotalAmount` is the amount "before taxes and cart-level discounts"
    /// and `CartLineCost.subtotalAmount` a line's cost "before applying any discounts" (Shopify's
    /// schema), and no discount is applied yet when Discount Functions run — they are what
    /// decides this cart's discounts, concurrently and unaware of each other — so no line-level
    /// discount separates the two. A cart whose ineligible lines add up to more than its subtotal
    /// contradicts that; the caller then gives nothing rather than a guess.
    pub fn eligible_subtotal(&self, cart_subtotal: Decimal) -> Option<Decimal> {
        cart_subtotal
            .checked_sub(self.ineligible_subtotal)
            .filter(|eligible| !eligible.is_negative())
    }
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

/// For the log line (written by hand: a derived `Debug` would bloat the wasm).
impl core::fmt::Display for ScanError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ScanError::NotLists => {
                f.write_str("lines and amounts are not lists of the same length")
            }
            ScanError::BadLine { line } => write!(f, "line {line} has an unexpected shape"),
            ScanError::BadAmount { line } => write!(f, "line {line} has no decimal amount"),
            ScanError::Overflow => f.write_str("the subtotal overflows"),
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
/// [`Want::ineligible_subtotal`] is set — until then the Function API never decodes them, and
/// then only as far as the last ineligible line.
pub fn scan(raw_input: &Value, want: Want) -> Result<Scan, ScanError> {
    let lines = cart_list(raw_input, "lines");
    let len = list_len(&lines).ok_or(ScanError::NotLists)?;
    let mut scan = Scan {
        eligible_ids: Vec::with_capacity(if want.eligible_ids { len } else { 0 }),
        ..Scan::default()
    };
    // Positions of the ineligible lines whose amounts are needed. The amounts are read after the
    // loop: looking `amounts` up any earlier would make the Function API decode every line still
    // ahead in one go, and the loop would then pay a call per value on top of that.
    let mut amounts_at = Vec::new();
    // Every line has the members of the query's selection, so how many is read once: `{id,
    // merchandise}` for the lines target, `{merchandise}` for the delivery one.
    let selects_id = match len {
        0 => return Ok(scan),
        _ => match lines.get_at_index(0).obj_len() {
            Some(1) => false,
            Some(2) => true,
            _ => return Err(ScanError::BadLine { line: 0 }),
        },
    };
    for index in 0..len {
        let line = lines.get_at_index(index);
        let (merchandise, members, id_at) = merchandise_of(&line, selects_id);
        // `{product: {isGiftCard, excluded}}` for a catalog variant, `{}` for anything else.
        let eligible = members == Some(1) && product_is_eligible(&merchandise.get_at_index(0));
        let keep_id = if eligible {
            want.eligible_ids
        } else {
            want.ineligible_ids
        };
        if keep_id {
            let id = id_at
                .and_then(|at| line.get_at_index(at).as_string())
                .ok_or(ScanError::BadLine { line: index })?;
            if eligible {
                scan.eligible_ids.push(id);
            } else {
                scan.ineligible_ids.push(id);
            }
        }
        if eligible {
            scan.eligible += 1;
        } else if want.ineligible_subtotal {
            amounts_at.push(index);
        }
    }
    if !amounts_at.is_empty() {
        let amounts = cart_list(raw_input, "amounts");
        if list_len(&amounts) != Some(len) {
            return Err(ScanError::NotLists);
        }
        for index in amounts_at {
            let amount = line_amount(&amounts.get_at_index(index))
                .ok_or(ScanError::BadAmount { line: index })?;
            scan.ineligible_subtotal = scan
                .ineligible_subtotal
                .checked_add(amount)
                .ok_or(ScanError::Overflow)?;
        }
    }
    Ok(scan)
}

/// A line's `merchandise` (its only object), how many members that has (`None` when it is not
/// an object), and the position of the line's `id` (its only other entry, when selected).
///
/// Reading a value's kind or length costs about a hundred instructions in the Function API's
/// client, so each value is asked once. With an ID, the second entry is read first: in the
/// query's order (`id`, `merchandise`) that one call decodes the whole line, and the ID is then
/// read from what is already decoded.
fn merchandise_of(line: &Value, selects_id: bool) -> (Value, Option<usize>, Option<usize>) {
    if !selects_id {
        let merchandise = line.get_at_index(0);
        return (merchandise, merchandise.obj_len(), None);
    }
    let second = line.get_at_index(1);
    if let Some(members) = second.obj_len() {
        return (second, Some(members), Some(0));
    }
    let first = line.get_at_index(0);
    match first.obj_len() {
        Some(members) => (first, Some(members), Some(1)),
        // No object at all: not eligible; the ID is the string the query puts first.
        None => (second, None, Some(0)),
    }
}

/// Both flags of `{isGiftCard, excluded}` are false. Read symmetrically, so their order does not
/// matter; the second first, because reaching it decodes the first, which is then read without
/// decoding. A product of another shape yields Function API errors here, which are not `false`.
fn product_is_eligible(product: &Value) -> bool {
    product.get_at_index(1).as_bool() == Some(false)
        && product.get_at_index(0).as_bool() == Some(false)
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
