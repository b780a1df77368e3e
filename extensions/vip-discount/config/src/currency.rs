//! How many decimals each currency's amounts carry, and rounding money to them.
//!
//! Shopify keeps every amount at its currency's minor unit: its `Money` type rounds on
//! construction (`value.round(currency.minor_units)`, half up), with minor units taken from
//! `config/currency_iso.yml` of github.com/Shopify/money. Keel rounds the amounts it computes (a
//! converted cap or minimum, a capped discount) the same way so they match what checkout shows.

use crate::Decimal;

/// Currencies without a minor unit (amounts are whole numbers), per Shopify's `money` data.
const ZERO_DECIMALS: &[&str] = &[
    "BIF", "BYR", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "MGA", "MRU", "PYG", "RWF",
    "UGX", "VND", "VUV", "XAF", "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XOF", "XPD",
    "XPF", "XPT", "XTS",
];

/// Currencies with a thousandth minor unit.
const THREE_DECIMALS: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];

/// Decimals of `currency_code` (an ISO 4217 code as Shopify's `CurrencyCode` enum spells it);
/// 2 for every currency not listed otherwise, which is also the safe guess for an unknown code.
pub fn minor_units(currency_code: &str) -> u8 {
    if ZERO_DECIMALS.contains(&currency_code) {
        0
    } else if THREE_DECIMALS.contains(&currency_code) {
        3
    } else if currency_code == "CLF" {
        4
    } else {
        2
    }
}

/// Rounds `amount` to the minor unit of `currency_code`, half up, as Shopify's `Money.new` does.
pub fn round_to_currency(amount: Decimal, currency_code: &str) -> Option<Decimal> {
    amount.round_dp(minor_units(currency_code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_units_follow_shopify_money_data() {
        assert_eq!(minor_units("USD"), 2);
        assert_eq!(minor_units("EUR"), 2);
        assert_eq!(minor_units("JPY"), 0);
        assert_eq!(minor_units("KRW"), 0);
        assert_eq!(minor_units("KWD"), 3);
        assert_eq!(minor_units("BHD"), 3);
        assert_eq!(minor_units("CLF"), 4);
        assert_eq!(minor_units("XXX-unknown"), 2);
    }

    #[test]
    fn rounding_to_currency_is_half_up() {
        let d = |s| Decimal::parse(s).unwrap();
        assert_eq!(round_to_currency(d("7506.5"), "JPY"), Some(d("7507")));
        assert_eq!(round_to_currency(d("46.1728"), "EUR"), Some(d("46.17")));
        assert_eq!(round_to_currency(d("15.3995"), "KWD"), Some(d("15.4")));
        assert_eq!(round_to_currency(d("0.125"), "USD"), Some(d("0.13")));
    }
}
