//! The cart lines: which may get the VIP price (one pass over `lines`), and, when a tier's
//! minimum or cap depends on it, how much they add up to (as few `amounts` as that takes).
//!
//! This is where a large cart's instructions go. The Function API decodes every value it walks
//! past (each line's whole selection is decoded before the next line can be found), so the input
//! queries keep per-line selections minimal, and the reading here adds as little as it can:
//!
//! - entries are read by position (`get_at_index`), which skips the provider's name comparisons.
//!   That is safe whatever order the members arrive in, because each object read here is either
//!   single-entry (`merchandise`, `cost`, `subtotalAmount`, an `amounts` element), told apart by
//!   type (a line's `id` is its only string, `merchandise` its only object), or read symmetrically
//!   (a product is eligible when *both* `isGiftCard` and `excluded` are false);
//! - every call into the Function API costs a couple of hundred instructions beyond the decoding
//!   it causes, so each line is entered once, at the member the query puts last (which decodes the
//!   ones before it), and the rest is read from what is already decoded;
//! - a line's ID is read only when it will be output;
//! - amounts come from the parallel `amounts` list, which runs that need no amount never decode,
//!   and are read in cart order only until the tier's outcome is certain (see [`settle`]).
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
    /// Which lines are eligible, one flag per line, for [`settle`].
    pub eligibility: bool,
}

#[derive(Debug, Default)]
pub struct Scan {
    pub eligible: usize,
    pub eligible_ids: Vec<String>,
    pub ineligible_ids: Vec<String>,
    /// Per line, in cart order; empty unless [`Want::eligibility`].
    pub eligibility: Vec<bool>,
}

/// Why the lines could not be read; the caller gives no discount.
#[derive(Debug, PartialEq, Eq)]
pub enum ScanError {
    /// `lines` (or `amounts`) is not a list, or the two differ in length.
    NotLists,
    /// A line is not `{id, merchandise}` / `{merchandise}`.
    BadLine { line: usize },
    /// A line's `cost.subtotalAmount.amount` is missing, not a decimal, or negative.
    BadAmount { line: usize },
    /// An amount does not fit Keel's decimals.
    Overflow,
    /// The lines add up to more than the cart's subtotal, which they never do in Shopify's input.
    MoreThanSubtotal,
}

/// For the log line (written by hand: a derived `Debug` would bloat the wasm).
impl core::fmt::Display for ScanError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ScanError::NotLists => {
                f.write_str("the cart's lines and amounts are not lists of the same length")
            }
            ScanError::BadLine { line } => write!(f, "cart line {line} has an unexpected shape"),
            ScanError::BadAmount { line } => write!(f, "cart line {line} has no usable amount"),
            ScanError::Overflow => f.write_str("the cart's amounts overflow"),
            ScanError::MoreThanSubtotal => {
                f.write_str("the cart's lines add up to more than its subtotal")
            }
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
/// `raw_input` is the run's whole input; the lines are its `cart.lines`.
pub fn scan(raw_input: &Value, want: Want) -> Result<Scan, ScanError> {
    let lines = cart_list(raw_input, "lines");
    let len = list_len(&lines).ok_or(ScanError::NotLists)?;
    let mut scan = Scan {
        eligible_ids: Vec::with_capacity(if want.eligible_ids { len } else { 0 }),
        eligibility: Vec::with_capacity(if want.eligibility { len } else { 0 }),
        ..Scan::default()
    };
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
        }
        if want.eligibility {
            scan.eligibility.push(eligible);
        }
    }
    Ok(scan)
}

/// Narrows down the eligible lines' subtotal until `decide(at_least, at_most)` — told the range it
/// is known to lie in — returns true. Reads the lines' amounts (the `amounts` alias of
/// `raw_input`'s cart) in cart order, after [`scan`] has told which lines are eligible
/// ([`Want::eligibility`]): an eligible amount raises `at_least`, an ineligible one lowers
/// `at_most`, which starts at the cart's subtotal. After the last amount, `decide` gets the exact
/// eligible subtotal at both ends (the eligible amounts' sum, whatever the cart's subtotal says).
///
/// The Function API decodes the list only as far as it is read, so a cap that the first few
/// eligible lines already pass — the usual case in a large cart — costs a few amounts, not a walk
/// over every line's. The cart's subtotal is an upper bound because, in a Discount Function's
/// input, it is what the lines add up to: `CartCost.subtotalAmount` is the amount "before taxes
/// and cart-level discounts", `CartLineCost.subtotalAmount` a line's cost "before applying any
/// discounts" (Shopify's schema), and no line-level discount is applied yet when the Discount
/// Functions that decide them run. Should the lines ever add up to more, the run stops with
/// [`ScanError::MoreThanSubtotal`] rather than trust either number.
pub fn settle(
    raw_input: &Value,
    scan: &Scan,
    cart_subtotal: Decimal,
    decide: &mut dyn FnMut(Decimal, Decimal) -> bool,
) -> Result<(), ScanError> {
    let len = scan.eligibility.len();
    let amounts = cart_list(raw_input, "amounts");
    if list_len(&amounts) != Some(len) {
        return Err(ScanError::NotLists);
    }
    let mut at_least = Decimal::ZERO;
    let mut at_most = cart_subtotal;
    for (index, &eligible) in scan.eligibility.iter().enumerate() {
        let amount = line_amount(&amounts.get_at_index(index))
            .filter(|amount| !amount.is_negative())
            .ok_or(ScanError::BadAmount { line: index })?;
        if eligible {
            at_least = at_least.checked_add(amount).ok_or(ScanError::Overflow)?;
        } else {
            at_most = at_most.checked_sub(amount).ok_or(ScanError::Overflow)?;
        }
        if at_most < at_least {
            return Err(ScanError::MoreThanSubtotal);
        }
        if index + 1 < len && decide(at_least, at_most) {
            return Ok(());
        }
    }
    decide(at_least, at_least);
    Ok(())
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

/// `{cost: {subtotalAmount: {amount: "12.99"}}}` → 12.99. Each level is single-entry, so it is
/// entered at index 0 without asking its length; anything else ends in a Function API error or a
/// non-string, which is `None`.
fn line_amount(element: &Value) -> Option<Decimal> {
    let amount = element.get_at_index(0).get_at_index(0).get_at_index(0);
    Decimal::parse(&amount.as_string()?)
}
