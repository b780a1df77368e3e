//! What a tier is worth on a given cart: the minimum-subtotal check and the choice between the
//! tier's percentage and its cap, in the cart's (presentment) currency.
//!
//! Caps and minimums are configured in the shop's currency; Shopify hands the Function the
//! shop→presentment rate (`presentmentCurrencyRate`) and expects fixed amounts in the presentment
//! currency. Converted amounts are rounded to that currency's minor unit, half up, as Shopify's
//! own money arithmetic does.

use crate::currency::round_to_currency;
use crate::{Decimal, Tier};

/// The cart's currency and how to get there from the shop's.
#[derive(Clone, Copy, Debug)]
pub struct CartCurrency<'a> {
    /// Shop currency → presentment currency (`Input.presentmentCurrencyRate`).
    pub rate: Decimal,
    /// ISO code of the presentment currency (the cart's `MoneyV2.currencyCode`).
    pub code: &'a str,
}

impl CartCurrency<'_> {
    /// A shop-currency amount in the cart's currency, rounded to its minor unit.
    pub fn from_shop(&self, shop_amount: Decimal) -> Option<Decimal> {
        round_to_currency(shop_amount.checked_mul(self.rate)?, self.code)
    }

    /// `amount` written with exactly the currency's decimals ("45.00", "7506", "12.345").
    pub fn format(&self, amount: Decimal) -> Option<String> {
        amount.to_fixed(crate::currency::minor_units(self.code))
    }
}

/// The value of a line or order discount candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscountValue {
    /// Percent off each target (0–100).
    Percentage(Decimal),
    /// A fixed amount in the cart's currency, spread over the targets by Shopify.
    FixedAmount(Decimal),
}

/// Why a tier gives nothing on this cart (beyond "not VIP", which is decided earlier).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoDiscount {
    /// The tier has no percentage (a shipping-only tier).
    NoPercentage,
    /// The eligible lines add up to less than the tier's minimum.
    BelowMinimum,
    /// An amount could not be computed (overflow); giving nothing is the safe answer.
    Arithmetic,
}

/// A tier's terms in one cart's currency: its minimum and cap converted (and rounded) once, so
/// that many candidate subtotals can be weighed without converting again (each conversion costs
/// the Function a few thousand instructions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CartTerms {
    /// Percent off, as configured.
    pub percentage: Decimal,
    /// The tier's minimum subtotal, in the cart's currency.
    pub minimum: Option<Decimal>,
    /// The tier's cap, in the cart's currency.
    pub cap: Option<Decimal>,
}

impl Tier {
    /// Whether the eligible subtotal (cart currency, before discounts) reaches the tier's minimum.
    /// Tiers without a minimum always qualify.
    pub fn meets_minimum(
        &self,
        eligible_subtotal: Decimal,
        currency: &CartCurrency<'_>,
    ) -> Result<bool, NoDiscount> {
        match self.minimum_subtotal {
            None => Ok(true),
            Some(minimum) => {
                let minimum = currency.from_shop(minimum).ok_or(NoDiscount::Arithmetic)?;
                Ok(eligible_subtotal >= minimum)
            }
        }
    }

    /// The tier's minimum and cap in `currency`; [`NoDiscount::Arithmetic`] when one does not
    /// convert.
    pub fn cart_terms(&self, currency: &CartCurrency<'_>) -> Result<CartTerms, NoDiscount> {
        let convert = |amount: Option<Decimal>| match amount {
            None => Ok(None),
            Some(amount) => currency
                .from_shop(amount)
                .map(Some)
                .ok_or(NoDiscount::Arithmetic),
        };
        Ok(CartTerms {
            percentage: self.percentage,
            minimum: convert(self.minimum_subtotal)?,
            cap: convert(self.cap)?,
        })
    }

    /// The discount on the eligible lines. `eligible_subtotal` (cart currency) is only read when
    /// the tier has a minimum or a cap ([`Tier::needs_subtotal`]); pass zero otherwise.
    ///
    /// With a cap, the percentage stands while it takes off no more than the cap; above that the
    /// discount becomes the cap as a fixed amount, so the buyer sees exactly the cap.
    pub fn lines_value(
        &self,
        eligible_subtotal: Decimal,
        currency: &CartCurrency<'_>,
    ) -> Result<DiscountValue, NoDiscount> {
        if self.percentage.is_zero() {
            return Err(NoDiscount::NoPercentage);
        }
        self.cart_terms(currency)?.lines_value(eligible_subtotal)
    }
}

impl CartTerms {
    /// Whether `eligible_subtotal` reaches the minimum (always, without one).
    pub fn meets_minimum(&self, eligible_subtotal: Decimal) -> bool {
        self.minimum
            .is_none_or(|minimum| eligible_subtotal >= minimum)
    }

    /// [`Tier::lines_value`] in these terms.
    pub fn lines_value(&self, eligible_subtotal: Decimal) -> Result<DiscountValue, NoDiscount> {
        if self.percentage.is_zero() {
            return Err(NoDiscount::NoPercentage);
        }
        if !self.meets_minimum(eligible_subtotal) {
            return Err(NoDiscount::BelowMinimum);
        }
        if let Some(cap) = self.cap {
            let off = eligible_subtotal
                .percent(self.percentage)
                .ok_or(NoDiscount::Arithmetic)?;
            if off > cap {
                return Ok(DiscountValue::FixedAmount(cap));
            }
        }
        Ok(DiscountValue::Percentage(self.percentage))
    }

    /// [`CartTerms::lines_value`] for an eligible subtotal known only to lie within
    /// `at_least..=at_most` — the cart's subtotal bounds it from above before any line is read,
    /// and every line amount read narrows the range. `Some` once every subtotal in the range gives
    /// the same result, `None` while it depends on where in the range the subtotal is.
    ///
    /// Comparing the two ends is enough because the value only ever steps up as the subtotal
    /// grows: nothing below the minimum, then the percentage, then (past the cap) the cap — the
    /// percentage is never negative (validation keeps it in 0–100).
    pub fn lines_value_between(
        &self,
        at_least: Decimal,
        at_most: Decimal,
    ) -> Option<Result<DiscountValue, NoDiscount>> {
        let low = self.lines_value(at_least);
        (low == self.lines_value(at_most)).then_some(low)
    }

    /// [`CartTerms::meets_minimum`] for an eligible subtotal within `at_least..=at_most`: `Some`
    /// once both ends agree.
    pub fn meets_minimum_between(&self, at_least: Decimal, at_most: Decimal) -> Option<bool> {
        let low = self.meets_minimum(at_least);
        (low == self.meets_minimum(at_most)).then_some(low)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AppliesTo;

    fn d(text: &str) -> Decimal {
        Decimal::parse(text).unwrap()
    }

    fn tier(percentage: &str, minimum: Option<&str>, cap: Option<&str>) -> Tier {
        Tier {
            name: "Gold".into(),
            percentage: d(percentage),
            applies_to: AppliesTo::Lines,
            minimum_subtotal: minimum.map(d),
            cap: cap.map(d),
            shipping: None,
            message: None,
        }
    }

    const USD: CartCurrency<'static> = CartCurrency {
        rate: Decimal::from_int(1),
        code: "USD",
    };

    #[test]
    fn percentage_stands_while_under_the_cap() {
        let gold = tier("15", None, Some("50"));
        // 15% of 300 = 45 <= 50
        assert_eq!(
            gold.lines_value(d("300"), &USD),
            Ok(DiscountValue::Percentage(d("15")))
        );
        // exactly the cap: still the percentage
        assert_eq!(
            gold.lines_value(d("333.33"), &USD),
            Ok(DiscountValue::Percentage(d("15")))
        );
    }

    #[test]
    fn cap_replaces_the_percentage_once_it_would_take_more() {
        let gold = tier("15", None, Some("50"));
        assert_eq!(
            gold.lines_value(d("400"), &USD),
            Ok(DiscountValue::FixedAmount(d("50")))
        );
    }

    #[test]
    fn cap_and_minimum_convert_to_the_cart_currency_and_round_to_it() {
        let gold = tier("15", Some("100"), Some("50"));
        let yen = CartCurrency {
            rate: d("150.123"),
            code: "JPY",
        };
        // cap 50 USD = 7506.15 JPY -> 7506; minimum 100 USD = 15012.3 -> 15012
        assert_eq!(
            gold.lines_value(d("60000"), &yen),
            Ok(DiscountValue::FixedAmount(d("7506")))
        );
        assert_eq!(
            gold.lines_value(d("15011"), &yen),
            Err(NoDiscount::BelowMinimum)
        );
        assert_eq!(
            gold.lines_value(d("15012"), &yen),
            Ok(DiscountValue::Percentage(d("15")))
        );
        let dinar = CartCurrency {
            rate: d("0.30799"),
            code: "KWD",
        };
        // cap 50 USD = 15.3995 KWD -> 15.400
        assert_eq!(
            gold.lines_value(d("1000"), &dinar),
            Ok(DiscountValue::FixedAmount(d("15.4")))
        );
        assert_eq!(dinar.format(d("15.4")).as_deref(), Some("15.400"));
    }

    #[test]
    fn minimum_is_inclusive() {
        let gold = tier("10", Some("100"), None);
        assert_eq!(
            gold.lines_value(d("99.99"), &USD),
            Err(NoDiscount::BelowMinimum)
        );
        assert_eq!(
            gold.lines_value(d("100.00"), &USD),
            Ok(DiscountValue::Percentage(d("10")))
        );
    }

    #[test]
    fn a_range_of_subtotals_decides_only_what_all_of_it_shares() {
        let capped = tier("15", None, Some("50")).cart_terms(&USD).unwrap();
        // Anything up to 300 takes off at most 45: the percentage, whatever the eligible lines.
        assert_eq!(
            capped.lines_value_between(Decimal::ZERO, d("300")),
            Some(Ok(DiscountValue::Percentage(d("15"))))
        );
        // Up to 400 the cap may or may not be passed; from 340 on it always is (51 > 50).
        assert_eq!(capped.lines_value_between(d("100"), d("400")), None);
        assert_eq!(
            capped.lines_value_between(d("340"), d("400")),
            Some(Ok(DiscountValue::FixedAmount(d("50"))))
        );
        // Exactly the cap is still the percentage.
        assert_eq!(
            capped.lines_value_between(d("333.33"), d("333.33")),
            Some(Ok(DiscountValue::Percentage(d("15"))))
        );

        let with_minimum = tier("10", Some("100"), None).cart_terms(&USD).unwrap();
        assert_eq!(
            with_minimum.lines_value_between(Decimal::ZERO, d("99.99")),
            Some(Err(NoDiscount::BelowMinimum))
        );
        assert_eq!(
            with_minimum.lines_value_between(Decimal::ZERO, d("100")),
            None
        );
        assert_eq!(
            with_minimum.lines_value_between(d("100"), d("5000")),
            Some(Ok(DiscountValue::Percentage(d("10"))))
        );
        assert_eq!(
            with_minimum.meets_minimum_between(d("20"), d("99")),
            Some(false)
        );
        assert_eq!(with_minimum.meets_minimum_between(d("20"), d("120")), None);
        assert_eq!(
            with_minimum.meets_minimum_between(d("100"), d("120")),
            Some(true)
        );

        let plain = tier("5", None, None).cart_terms(&USD).unwrap();
        assert_eq!(
            plain.meets_minimum_between(Decimal::ZERO, d("1")),
            Some(true)
        );
        assert_eq!(
            plain.lines_value_between(Decimal::ZERO, d("1000000")),
            Some(Ok(DiscountValue::Percentage(d("5"))))
        );
    }

    #[test]
    fn cart_terms_are_the_tier_converted_once() {
        let yen = CartCurrency {
            rate: d("150.123"),
            code: "JPY",
        };
        let terms = tier("15", Some("100"), Some("50"))
            .cart_terms(&yen)
            .unwrap();
        assert_eq!(terms.minimum, Some(d("15012")));
        assert_eq!(terms.cap, Some(d("7506")));
        assert_eq!(
            terms.lines_value(d("60000")),
            tier("15", Some("100"), Some("50")).lines_value(d("60000"), &yen)
        );
        let absurd = CartCurrency {
            rate: Decimal::new(i64::MAX / 10, 0).unwrap(),
            code: "USD",
        };
        assert_eq!(
            tier("15", None, Some("50")).cart_terms(&absurd),
            Err(NoDiscount::Arithmetic)
        );
    }

    #[test]
    fn shipping_only_tier_has_no_line_value() {
        let mut shipping_only = tier("0", None, None);
        shipping_only.shipping = Some(crate::ShippingBenefit {
            percentage: d("100"),
            message: None,
        });
        assert_eq!(
            shipping_only.lines_value(d("10"), &USD),
            Err(NoDiscount::NoPercentage)
        );
    }

    #[test]
    fn absurd_rates_give_nothing_instead_of_overflowing() {
        let gold = tier("15", None, Some("50"));
        let absurd = CartCurrency {
            rate: Decimal::new(i64::MAX / 10, 0).unwrap(),
            code: "USD",
        };
        assert_eq!(
            gold.lines_value(d("10"), &absurd),
            Err(NoDiscount::Arithmetic)
        );
    }
}
