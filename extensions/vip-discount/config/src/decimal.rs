//! Exact decimal numbers for money, percentages and exchange rates.
//!
//! Shopify sends every `Decimal` as a string ("19.99", "0.923456"), and a discount that is off by a
//! cent is a support ticket, so Keel never turns these into floats: a [`Decimal`] is an integer
//! count of `10^-scale` units. Every operation is checked and returns `None` instead of
//! overflowing, so a hostile or absurd input yields "no discount", never a trap in the Function.
//!
//! Units are an `i64` (18 significant digits — a cart of a trillion in any currency, or a rate
//! with 12 decimals, with room to spare) so that the per-line work of the Function (parse, add)
//! stays in native wasm arithmetic; only products and comparisons widen to `i128`.

use core::cmp::Ordering;
use core::fmt;

/// Finest scale Keel keeps (18 decimal places). Finer results are rounded half up to it.
pub const MAX_SCALE: u8 = 18;

/// `10^0 ..= 10^18`.
const POW10: [i64; 19] = {
    let mut table = [1i64; 19];
    let mut i = 1;
    while i < 19 {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

/// An exact decimal: `units × 10^-scale`.
///
/// Equality and ordering compare values, so `1.50 == 1.5`.
#[derive(Clone, Copy, Debug)]
pub struct Decimal {
    units: i64,
    scale: u8,
}

impl Decimal {
    pub const ZERO: Decimal = Decimal { units: 0, scale: 0 };
    pub const HUNDRED: Decimal = Decimal {
        units: 100,
        scale: 0,
    };

    /// `units × 10^-scale`; `None` when `scale` exceeds [`MAX_SCALE`].
    pub const fn new(units: i64, scale: u8) -> Option<Decimal> {
        if scale > MAX_SCALE {
            None
        } else {
            Some(Decimal { units, scale })
        }
    }

    pub const fn from_int(value: i64) -> Decimal {
        Decimal {
            units: value,
            scale: 0,
        }
    }

    /// Parses Shopify's `Decimal` wire format: an optional `-`, digits, an optional `.` and digits
    /// (`"12"`, `"12.50"`, `"-0.5"`, `".5"`). Exponents, `+`, blanks and empty strings are
    /// rejected. Decimals beyond what fits (more than [`MAX_SCALE`], or more than 18 significant
    /// digits in all) are rounded half up; a whole part that does not fit is `None`.
    pub fn parse(text: &str) -> Option<Decimal> {
        let bytes = text.as_bytes();
        let (negative, digits) = match bytes.first() {
            Some(b'-') => (true, &bytes[1..]),
            _ => (false, bytes),
        };
        let mut units: i64 = 0;
        let mut scale: u8 = 0;
        let mut seen_point = false;
        let mut seen_digit = false;
        // Set once a digit no longer fits: the rest only decides the rounding.
        let mut round_up: Option<bool> = None;
        for &byte in digits {
            match byte {
                b'0'..=b'9' => {
                    seen_digit = true;
                    let digit = i64::from(byte - b'0');
                    if round_up.is_some() {
                        if !seen_point {
                            return None; // the whole part does not fit
                        }
                        continue;
                    }
                    let fits = units <= (i64::MAX - 9) / 10 && (!seen_point || scale < MAX_SCALE);
                    if fits {
                        units = units * 10 + digit;
                        if seen_point {
                            scale += 1;
                        }
                    } else if seen_point {
                        round_up = Some(digit >= 5);
                    } else {
                        return None;
                    }
                }
                b'.' if !seen_point => seen_point = true,
                _ => return None,
            }
        }
        if !seen_digit {
            return None;
        }
        if round_up == Some(true) {
            units = units.checked_add(1)?;
        }
        Some(Decimal {
            units: if negative { -units } else { units },
            scale,
        })
    }

    pub fn is_zero(self) -> bool {
        self.units == 0
    }

    pub fn is_negative(self) -> bool {
        self.units < 0
    }

    /// Number of decimal places this value carries (trailing zeros included: `"1.50"` has 2).
    pub fn scale(self) -> u8 {
        self.scale
    }

    pub fn checked_add(self, other: Decimal) -> Option<Decimal> {
        if self.scale == other.scale {
            // The common case (amounts of one currency): native arithmetic only.
            return Some(Decimal {
                units: self.units.checked_add(other.units)?,
                scale: self.scale,
            });
        }
        let scale = self.scale.max(other.scale);
        let a = self
            .units
            .checked_mul(POW10[usize::from(scale - self.scale)])?;
        let b = other
            .units
            .checked_mul(POW10[usize::from(scale - other.scale)])?;
        Some(Decimal {
            units: a.checked_add(b)?,
            scale,
        })
    }

    pub fn checked_sub(self, other: Decimal) -> Option<Decimal> {
        self.checked_add(Decimal {
            units: other.units.checked_neg()?,
            scale: other.scale,
        })
    }

    /// Exact product, rounded half up when it needs more than [`MAX_SCALE`] places or more
    /// digits than fit.
    pub fn checked_mul(self, other: Decimal) -> Option<Decimal> {
        let units = i128::from(self.units) * i128::from(other.units);
        Decimal::from_wide(units, u32::from(self.scale) + u32::from(other.scale))
    }

    /// `self × percent / 100`, exact (dividing by 100 only moves the decimal point).
    pub fn percent(self, percent: Decimal) -> Option<Decimal> {
        let units = i128::from(self.units) * i128::from(percent.units);
        Decimal::from_wide(units, u32::from(self.scale) + u32::from(percent.scale) + 2)
    }

    /// A wide intermediate result brought back into range, dropping decimals (rounded half up)
    /// until it fits.
    fn from_wide(mut units: i128, mut scale: u32) -> Option<Decimal> {
        if scale > u32::from(MAX_SCALE) {
            units = round_wide(units, scale - u32::from(MAX_SCALE))?;
            scale = u32::from(MAX_SCALE);
        }
        while i64::try_from(units).is_err() {
            if scale == 0 {
                return None;
            }
            units = round_wide(units, 1)?;
            scale -= 1;
        }
        Some(Decimal {
            units: i64::try_from(units).ok()?,
            scale: scale as u8,
        })
    }

    /// Rounds to `places` decimals, half away from zero — the rounding Shopify's `Money` applies
    /// (Ruby `BigDecimal#round`, whose default mode is `ROUND_HALF_UP`). Values already at or
    /// below `places` decimals are returned unchanged.
    pub fn round_dp(self, places: u8) -> Option<Decimal> {
        if self.scale <= places {
            return Some(self);
        }
        let divisor = POW10[usize::from(self.scale - places)];
        let quotient = self.units / divisor;
        let remainder = self.units % divisor;
        // |remainder| * 2 >= divisor, written so it cannot overflow.
        let units = if remainder.unsigned_abs() >= divisor.unsigned_abs() - remainder.unsigned_abs()
        {
            quotient + self.units.signum()
        } else {
            quotient
        };
        Some(Decimal {
            units,
            scale: places,
        })
    }

    /// The value with exactly `places` decimals, rounded half up when it has more:
    /// `to_fixed(2)` of `45` is `"45.00"`, `to_fixed(0)` of `7506.15` is `"7506"`.
    pub fn to_fixed(self, places: u8) -> Option<String> {
        if places > MAX_SCALE {
            return None;
        }
        let rounded = self.round_dp(places)?;
        let units = rounded
            .units
            .checked_mul(POW10[usize::from(places - rounded.scale)])?;
        Some(format_units(units, places))
    }

    /// `units` at `scale` (>= `self.scale`), widened so that it cannot overflow.
    fn wide_at(self, scale: u8) -> i128 {
        i128::from(self.units) * i128::from(POW10[usize::from(scale - self.scale)])
    }
}

/// Drops `digits` decimal digits from a wide value, rounding half away from zero (up when the
/// most significant dropped digit is 5 or more).
fn round_wide(units: i128, digits: u32) -> Option<i128> {
    let mut magnitude = units.unsigned_abs();
    let mut last_dropped = 0;
    for _ in 0..digits {
        let (quotient, remainder) = div10(magnitude);
        magnitude = quotient;
        last_dropped = remainder;
    }
    if last_dropped >= 5 {
        magnitude += 1;
    }
    let magnitude = i128::try_from(magnitude).ok()?;
    Some(if units < 0 { -magnitude } else { magnitude })
}

/// `value / 10` and `value % 10` with 64-bit arithmetic only, one 32-bit limb at a time: wasm has
/// no 128-bit division, and the compiler's generic fallback costs a kilobyte of code.
fn div10(value: u128) -> (u128, u64) {
    let mut quotient: u128 = 0;
    let mut remainder: u64 = 0;
    for shift in [96u32, 64, 32, 0] {
        let current = (remainder << 32) | u64::from((value >> shift) as u32);
        quotient |= u128::from(current / 10) << shift;
        remainder = current % 10;
    }
    (quotient, remainder)
}

/// `units` at `scale` in plain decimal notation. Digits are produced by hand rather than through
/// `to_string` and `str::split_at`: the Function links this, and string slicing brings along the
/// standard library's panic formatting for non-character boundaries (kilobytes of wasm).
fn format_units(units: i64, scale: u8) -> String {
    // Least significant first; an `i64` has at most 19 digits.
    let mut reversed = [0u8; 20];
    let mut len = 0;
    let mut magnitude = units.unsigned_abs();
    loop {
        reversed[len] = b'0' + (magnitude % 10) as u8;
        magnitude /= 10;
        len += 1;
        if magnitude == 0 || len == reversed.len() {
            break;
        }
    }
    let digits = &reversed[..len];
    let scale = usize::from(scale);
    let mut out = String::with_capacity(len + scale + 3);
    if units < 0 {
        out.push('-');
    }
    if len > scale {
        digits[scale..]
            .iter()
            .rev()
            .for_each(|&d| out.push(char::from(d)));
    } else {
        out.push('0');
    }
    if scale > 0 {
        out.push('.');
        (len..scale).for_each(|_| out.push('0'));
        digits[..len.min(scale)]
            .iter()
            .rev()
            .for_each(|&d| out.push(char::from(d)));
    }
    out
}

impl Default for Decimal {
    fn default() -> Decimal {
        Decimal::ZERO
    }
}

impl PartialEq for Decimal {
    fn eq(&self, other: &Decimal) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Decimal {}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Decimal) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Decimal) -> Ordering {
        if self.scale == other.scale {
            return self.units.cmp(&other.units);
        }
        let scale = self.scale.max(other.scale);
        self.wide_at(scale).cmp(&other.wide_at(scale))
    }
}

/// The shortest exact form: no trailing zeros, no exponent (`"15"`, `"12.5"`, `"-0.05"`).
impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut units = self.units;
        let mut scale = self.scale;
        while scale > 0 && units % 10 == 0 {
            units /= 10;
            scale -= 1;
        }
        f.write_str(&format_units(units, scale))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        Decimal::parse(text).expect(text)
    }

    #[test]
    fn parses_shopify_decimal_strings_exactly() {
        assert_eq!(d("19.99").to_string(), "19.99");
        assert_eq!(d("100.0").to_string(), "100");
        assert_eq!(d("-0.5").to_string(), "-0.5");
        assert_eq!(d(".5").to_string(), "0.5");
        assert_eq!(d("0.000001").to_string(), "0.000001");
        assert_eq!(d("1.50"), d("1.5"));
        assert_eq!(d("1.50").scale(), 2);
    }

    #[test]
    fn rejects_what_is_not_a_plain_decimal() {
        for text in [
            "", "-", ".", "1e5", "+1", " 1", "1 ", "1.2.3", "1,5", "NaN", "--1", "0x10",
        ] {
            assert_eq!(Decimal::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn whole_parts_too_large_are_refused_not_wrapped() {
        assert_eq!(Decimal::parse(&"9".repeat(19)), None);
        assert_eq!(Decimal::parse(&"9".repeat(40)), None);
        assert!(Decimal::parse(&"9".repeat(18)).is_some());
    }

    #[test]
    fn decimals_beyond_what_fits_round_half_up() {
        let rate = d("1.0000000000000000005"); // 19 decimals, the last a 5
        assert_eq!(rate, d("1.000000000000000001"));
        // 21 significant digits: kept while they fit, rounded on the first digit dropped.
        assert_eq!(d("150.123456789012345678"), d("150.1234567890123457"));
        assert_eq!(d("0.1234567890123456784"), d("0.123456789012345678"));
    }

    #[test]
    fn sums_are_exact_where_floats_are_not() {
        // 0.1 + 0.2 is 0.30000000000000004 in f64.
        assert_eq!(d("0.1").checked_add(d("0.2")), Some(d("0.3")));
        let mut total = Decimal::ZERO;
        for _ in 0..1000 {
            total = total.checked_add(d("0.01")).unwrap();
        }
        assert_eq!(total, d("10"));
        assert_eq!(d("100").checked_add(d("0.005")), Some(d("100.005")));
        assert_eq!(d("10").checked_sub(d("0.01")), Some(d("9.99")));
    }

    #[test]
    fn rounds_half_away_from_zero_like_shopify_money() {
        assert_eq!(d("2.345").round_dp(2), Some(d("2.35")));
        assert_eq!(d("2.344").round_dp(2), Some(d("2.34")));
        assert_eq!(d("2.5").round_dp(0), Some(d("3")));
        assert_eq!(d("3.5").round_dp(0), Some(d("4"))); // not banker's rounding
        assert_eq!(d("-2.345").round_dp(2), Some(d("-2.35")));
        assert_eq!(d("7506.15").round_dp(0), Some(d("7506")));
        assert_eq!(d("1.2").round_dp(3), Some(d("1.2")));
    }

    #[test]
    fn percent_moves_the_point_without_rounding() {
        assert_eq!(d("129.99").percent(d("15")), Some(d("19.4985")));
        assert_eq!(d("10").percent(d("12.5")), Some(d("1.25")));
        assert_eq!(d("0.01").percent(d("1")), Some(d("0.0001")));
    }

    #[test]
    fn multiplication_keeps_every_digit_that_fits() {
        assert_eq!(d("50").checked_mul(d("0.923456")), Some(d("46.1728")));
        let fine = d("0.123456789").checked_mul(d("0.123456789")).unwrap();
        assert_eq!(fine, d("0.015241578750190521"));
        let finer = d("0.0000000001").checked_mul(d("0.0000000015")).unwrap();
        assert_eq!(finer, Decimal::ZERO); // 1.5e-19 rounds to 0 at 18 places
        let half = d("0.0000000001").checked_mul(d("0.000000005")).unwrap();
        assert_eq!(half, d("0.000000000000000001")); // 5e-19 rounds half up
                                                     // Too many digits for 18: the finest decimals are rounded off, the value kept.
                                                     // 123518517518.0185173945 needs 22 digits; 19 fit.
        let big = d("123456789.123456789").checked_mul(d("1000.5")).unwrap();
        assert_eq!(big, d("123518517518.0185174"));
    }

    #[test]
    fn wide_division_by_ten_matches_native() {
        for value in [
            0u128,
            9,
            10,
            12345,
            u64::MAX as u128 * 7 + 3,
            u128::MAX,
            u128::MAX / 3,
        ] {
            assert_eq!(div10(value), (value / 10, (value % 10) as u64), "{value}");
        }
        assert_eq!(round_wide(-12345, 2), Some(-123));
        assert_eq!(round_wide(-12355, 2), Some(-124));
        assert_eq!(round_wide(i128::MAX, 1), Some(i128::MAX / 10 + 1));
    }

    #[test]
    fn overflow_is_none_not_a_panic() {
        let big = Decimal::new(i64::MAX / 2, 0).unwrap();
        assert_eq!(big.checked_add(big).and_then(|x| x.checked_add(big)), None);
        assert_eq!(big.checked_mul(big), None);
        assert_eq!(Decimal::new(1, MAX_SCALE + 1), None);
    }

    #[test]
    fn ordering_compares_values_across_scales_and_signs() {
        assert!(d("10.5") > d("10.49999"));
        assert!(d("-1.5") < d("-1.2"));
        assert!(d("-0.5") < d("0.2"));
        assert!(d("100") == d("100.000"));
        assert!(d("999999999999999999") > d("1.000000000000000001"));
    }

    #[test]
    fn fixed_formatting_pads_and_rounds_to_the_currency() {
        assert_eq!(d("45").to_fixed(2).as_deref(), Some("45.00"));
        assert_eq!(d("7506.15").to_fixed(0).as_deref(), Some("7506"));
        assert_eq!(d("13.8518").to_fixed(3).as_deref(), Some("13.852"));
        assert_eq!(d("0.005").to_fixed(2).as_deref(), Some("0.01"));
        assert_eq!(d("-0.05").to_fixed(2).as_deref(), Some("-0.05"));
        assert_eq!(d("0.5").to_fixed(4).as_deref(), Some("0.5000"));
    }
}
