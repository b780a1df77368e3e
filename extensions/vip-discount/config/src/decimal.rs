//! Exact decimal numbers for money, percentages and exchange rates.
//!
//! Shopify sends every `Decimal` as a string ("19.99", "0.923456"), and a discount that is off by a
//! cent is a support ticket, so Keel never turns these into floats: a [`Decimal`] is an integer
//! count of `10^-scale` units. Every operation is checked and returns `None` instead of
//! overflowing, so a hostile or absurd input yields "no discount", never a trap in the Function.

use core::cmp::Ordering;
use core::fmt;

/// Finest scale Keel keeps (18 decimal places). Products of finer numbers are rounded half up to it.
pub const MAX_SCALE: u8 = 18;

/// An exact decimal: `units × 10^-scale`.
///
/// Equality and ordering compare values, so `1.50 == 1.5`.
#[derive(Clone, Copy, Debug)]
pub struct Decimal {
    units: i128,
    scale: u8,
}

impl Decimal {
    pub const ZERO: Decimal = Decimal { units: 0, scale: 0 };
    pub const HUNDRED: Decimal = Decimal {
        units: 100,
        scale: 0,
    };

    /// `units × 10^-scale`; `None` when `scale` exceeds [`MAX_SCALE`].
    pub const fn new(units: i128, scale: u8) -> Option<Decimal> {
        if scale > MAX_SCALE {
            None
        } else {
            Some(Decimal { units, scale })
        }
    }

    pub const fn from_int(value: i64) -> Decimal {
        Decimal {
            units: value as i128,
            scale: 0,
        }
    }

    /// Parses Shopify's `Decimal` wire format: an optional `-`, digits, an optional `.` and digits
    /// (`"12"`, `"12.50"`, `"-0.5"`, `".5"`). Exponents, `+`, blanks and empty strings are
    /// rejected. More than [`MAX_SCALE`] decimals are rounded half up.
    pub fn parse(text: &str) -> Option<Decimal> {
        let bytes = text.as_bytes();
        let (negative, digits) = match bytes.first() {
            Some(b'-') => (true, &bytes[1..]),
            _ => (false, bytes),
        };
        let mut units: i128 = 0;
        let mut scale: u32 = 0;
        let mut seen_point = false;
        let mut seen_digit = false;
        for &byte in digits {
            match byte {
                b'0'..=b'9' => {
                    seen_digit = true;
                    units = units
                        .checked_mul(10)?
                        .checked_add(i128::from(byte - b'0'))?;
                    if seen_point {
                        scale += 1;
                    }
                }
                b'.' if !seen_point => seen_point = true,
                _ => return None,
            }
        }
        if !seen_digit {
            return None;
        }
        if negative {
            units = -units;
        }
        if scale > u32::from(MAX_SCALE) {
            // Too fine to keep: drop the extra digits with the same rounding as everything else.
            let extra = scale - u32::from(MAX_SCALE);
            let value = round_units(units, extra)?;
            return Some(Decimal {
                units: value,
                scale: MAX_SCALE,
            });
        }
        Some(Decimal {
            units,
            scale: scale as u8,
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
        let scale = self.scale.max(other.scale);
        let a = self.units_at(scale)?;
        let b = other.units_at(scale)?;
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

    /// Exact product, rounded half up to [`MAX_SCALE`] places if it is finer than that.
    pub fn checked_mul(self, other: Decimal) -> Option<Decimal> {
        let units = self.units.checked_mul(other.units)?;
        let scale = u32::from(self.scale) + u32::from(other.scale);
        if scale > u32::from(MAX_SCALE) {
            let units = round_units(units, scale - u32::from(MAX_SCALE))?;
            Some(Decimal {
                units,
                scale: MAX_SCALE,
            })
        } else {
            Some(Decimal {
                units,
                scale: scale as u8,
            })
        }
    }

    /// `self × percent / 100`, exact (dividing by 100 only moves the decimal point).
    pub fn percent(self, percent: Decimal) -> Option<Decimal> {
        let product = self.checked_mul(percent)?;
        if product.scale + 2 <= MAX_SCALE {
            Some(Decimal {
                units: product.units,
                scale: product.scale + 2,
            })
        } else {
            let units = round_units(product.units, u32::from(product.scale + 2 - MAX_SCALE))?;
            Some(Decimal {
                units,
                scale: MAX_SCALE,
            })
        }
    }

    /// Rounds to `places` decimals, half away from zero — the rounding Shopify's `Money` applies
    /// (Ruby `BigDecimal#round`, whose default mode is `ROUND_HALF_UP`). Values already at or
    /// below `places` decimals are returned unchanged.
    pub fn round_dp(self, places: u8) -> Option<Decimal> {
        if self.scale <= places {
            return Some(self);
        }
        let units = round_units(self.units, u32::from(self.scale - places))?;
        Some(Decimal {
            units,
            scale: places,
        })
    }

    /// The value with exactly `places` decimals, rounded half up when it has more:
    /// `fixed(2)` of `45` is `"45.00"`, of `7506.15` with `places = 0` is `"7506"`.
    pub fn to_fixed(self, places: u8) -> Option<String> {
        let rounded = self.round_dp(places)?;
        let units = rounded.units_at(places)?;
        Some(format_units(units, places))
    }

    /// `units` expressed at a finer `scale` (never coarser: callers pass `scale >= self.scale`).
    fn units_at(self, scale: u8) -> Option<i128> {
        debug_assert!(scale >= self.scale);
        self.units
            .checked_mul(pow10(u32::from(scale - self.scale))?)
    }

    /// Integer part and the fraction scaled to 18 digits; both carry the value's sign, so
    /// comparing the pairs compares the values without ever overflowing.
    fn split(self) -> (i128, i128) {
        let one = pow10(u32::from(self.scale)).unwrap_or(1);
        let whole = self.units / one;
        let fraction = self.units % one;
        // fraction < 10^scale and scale <= 18, so this product is below 10^18.
        let fraction = fraction * pow10(u32::from(MAX_SCALE - self.scale)).unwrap_or(1);
        (whole, fraction)
    }
}

/// `10^exp` when it fits in an `i128`.
fn pow10(exp: u32) -> Option<i128> {
    10i128.checked_pow(exp)
}

/// Drops `digits` decimal digits from `units`, rounding half away from zero.
fn round_units(units: i128, digits: u32) -> Option<i128> {
    let divisor = pow10(digits)?;
    let quotient = units / divisor;
    let remainder = units % divisor;
    // |remainder| * 2 >= divisor, written so it cannot overflow.
    if remainder.unsigned_abs() >= divisor.unsigned_abs() - remainder.unsigned_abs() {
        quotient.checked_add(units.signum())
    } else {
        Some(quotient)
    }
}

fn format_units(units: i128, scale: u8) -> String {
    let digits = units.unsigned_abs().to_string();
    let scale = usize::from(scale);
    let mut out = String::with_capacity(digits.len() + scale + 2);
    if units < 0 {
        out.push('-');
    }
    if scale == 0 {
        out.push_str(&digits);
    } else if digits.len() > scale {
        let (whole, fraction) = digits.split_at(digits.len() - scale);
        out.push_str(whole);
        out.push('.');
        out.push_str(fraction);
    } else {
        out.push_str("0.");
        out.extend(core::iter::repeat_n('0', scale - digits.len()));
        out.push_str(&digits);
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
        self.split().cmp(&other.split())
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
    fn overlong_numbers_are_refused_not_wrapped() {
        assert_eq!(Decimal::parse(&"9".repeat(40)), None);
    }

    #[test]
    fn more_than_eighteen_decimals_round_half_up() {
        let rate = d("1.0000000000000000005"); // 19 decimals, last one a 5
        assert_eq!(rate.scale(), MAX_SCALE);
        assert_eq!(rate, d("1.000000000000000001"));
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
    fn multiplication_keeps_every_digit_up_to_eighteen_places() {
        assert_eq!(d("50").checked_mul(d("0.923456")), Some(d("46.1728")));
        let fine = d("0.123456789").checked_mul(d("0.123456789")).unwrap();
        assert_eq!(fine, d("0.015241578750190521"));
        let finer = d("0.0000000001").checked_mul(d("0.0000000015")).unwrap();
        assert_eq!(finer, d("0.000000000000000000")); // 1.5e-19 rounds to 0 at 18 places
        let half = d("0.0000000001").checked_mul(d("0.000000005")).unwrap();
        assert_eq!(half, d("0.000000000000000001")); // 5e-19 rounds half up
    }

    #[test]
    fn overflow_is_none_not_a_panic() {
        let big = Decimal::new(i128::MAX / 2, 0).unwrap();
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
        assert!(d("99999999999999999999") > d("1.000000000000000001"));
    }

    #[test]
    fn fixed_formatting_pads_and_rounds_to_the_currency() {
        assert_eq!(d("45").to_fixed(2).as_deref(), Some("45.00"));
        assert_eq!(d("7506.15").to_fixed(0).as_deref(), Some("7506"));
        assert_eq!(d("13.8518").to_fixed(3).as_deref(), Some("13.852"));
        assert_eq!(d("0.005").to_fixed(2).as_deref(), Some("0.01"));
        assert_eq!(d("-0.05").to_fixed(2).as_deref(), Some("-0.05"));
    }
}
