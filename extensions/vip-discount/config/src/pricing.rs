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
        if !self.meets_minimum(eligible_subtotal, currency)? {
            return Err(NoDiscount::BelowMinimum);
        }
        if let Some(cap) = self.cap {
            let cap = currency.from_shop(cap).ok_or(NoDiscount::Arithmetic)?;
            let off = eligible_subtotal
                .percent(self.percentage)
                .ok_or(NoDiscount::Arithmetic)?;
            if off > cap {
                return Ok(DiscountValue::FixedAmount(cap));
            }
        }
        Ok(DiscountValue::Percentage(self.percentage))
    }

    /// [`Tier::lines_value`] when only an upper bound of the eligible subtotal is known, such as
    /// the cart's subtotal (which also counts the ineligible lines): `Some` when the bound already
    /// decides — it is below the minimum, or the percentage of it stays within the cap and there
    /// is no minimum — and `None` when the exact eligible subtotal is needed (also when the bound
    /// is too large to compute with: the exact subtotal then decides, or reports the error).
    ///
    /// Sound because a tier's percentage is never negative (validation keeps it in 0–100), so a
    /// smaller subtotal can only take off less and can only miss a minimum more.
    pub fn lines_value_within(
        &self,
        at_most: Decimal,
        currency: &CartCurrency<'_>,
    ) -> Option<Result<DiscountValue, NoDiscount>> {
        if self.percentage.is_zero() {
            return Some(Err(NoDiscount::NoPercentage));
        }
        if self.minimum_subtotal.is_some() {
            return match self.meets_minimum(at_most, currency) {
                Ok(false) => Some(Err(NoDiscount::BelowMinimum)),
                Ok(true) | Err(_) => None,
            };
        }
        match self.lines_value(at_most, currency) {
            Ok(DiscountValue::Percentage(percentage)) => {
                Some(Ok(DiscountValue::Percentage(percentage)))
            }
            // A smaller subtotal may stay under the cap, or fit where this one overflowed.
            Ok(DiscountValue::FixedAmount(_)) | Err(_) => None,
        }
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
    fn an_upper_bound_decides_only_what_every_smaller_subtotal_shares() {
        let capped = tier("15", None, Some("50"));
        // 15 % of at most 300 is at most 45: under the cap whatever the eligible lines are.
        assert_eq!(
            capped.lines_value_within(d("300"), &USD),
            Some(Ok(DiscountValue::Percentage(d("15"))))
        );
        // 15 % of 400 would pass the cap, but the eligible lines may add up to less.
        assert_eq!(capped.lines_value_within(d("400"), &USD), None);

        let with_minimum = tier("10", Some("100"), None);
        assert_eq!(
            with_minimum.lines_value_within(d("99.99"), &USD),
            Some(Err(NoDiscount::BelowMinimum))
        );
        // The cart reaches the minimum; whether the eligible lines do is still open.
        assert_eq!(with_minimum.lines_value_within(d("100"), &USD), None);

        let plain = tier("5", None, None);
        assert_eq!(
            plain.lines_value_within(d("1000000"), &USD),
            Some(Ok(DiscountValue::Percentage(d("5"))))
        );
        let absurd = CartCurrency {
            rate: Decimal::new(i64::MAX / 10, 0).unwrap(),
            code: "USD",
        };
        assert_eq!(capped.lines_value_within(d("10"), &absurd), None);
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
