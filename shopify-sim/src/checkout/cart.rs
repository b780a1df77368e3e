//! The checkout a `POST /_sim/checkout` describes, resolved against the shop's seeded data:
//! lines priced from their variants (in the cart's currency), the buyer with their metafields,
//! one delivery group for the lines that ship.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::Deserialize;

use crate::data::{gid, parse_gid, Customer, Metafield, Product, ShopData, Variant};

/// Price of the one delivery option when the request names none, in the shop's currency.
pub const DEFAULT_SHIPPING_PRICE: &str = "10.00";

/// Body of `POST /_sim/checkout`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    pub shop: String,
    /// The logged-in customer's GID; absent for a guest.
    #[serde(default)]
    pub customer: Option<String>,
    pub lines: Vec<CheckoutLine>,
    /// The cart's (presentment) currency; the shop's currency when absent.
    #[serde(default)]
    pub currency: Option<String>,
    /// Shop currency → cart currency (`Input.presentmentCurrencyRate`); needed when `currency`
    /// differs from the shop's, `"1.0"` otherwise.
    #[serde(default)]
    pub presentment_currency_rate: Option<String>,
    /// Price of the delivery option in the shop's currency ([`DEFAULT_SHIPPING_PRICE`] when
    /// absent).
    #[serde(default)]
    pub shipping_price: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckoutLine {
    /// A `ProductVariant` GID of a seeded product.
    pub variant: String,
    pub quantity: u64,
}

pub(crate) struct Buyer {
    pub customer: Customer,
    /// The customer's metafields (namespaces resolved).
    pub metafields: Vec<Metafield>,
    pub number_of_orders: u64,
    /// In the cart's currency.
    pub amount_spent: Decimal,
}

pub(crate) struct Line {
    /// `gid://shopify/CartLine/{n}`, numbered from 1 in request order.
    pub id: String,
    pub quantity: u64,
    /// In the cart's currency.
    pub unit_price: Decimal,
    pub product: Product,
    pub variant: Variant,
    pub product_metafields: Vec<Metafield>,
    pub variant_metafields: Vec<Metafield>,
}

impl Line {
    pub fn subtotal(&self) -> Decimal {
        self.unit_price * Decimal::from(self.quantity)
    }

    /// Gift cards are delivered by email.
    pub fn requires_shipping(&self) -> bool {
        !self.product.gift_card
    }
}

pub(crate) struct DeliveryOption {
    pub handle: String,
    pub title: String,
    pub price: Decimal,
}

pub(crate) struct DeliveryGroup {
    pub id: String,
    pub line_ids: Vec<String>,
    /// The first is the selected one.
    pub options: Vec<DeliveryOption>,
}

pub(crate) struct Cart {
    pub currency: String,
    pub rate: Decimal,
    pub buyer: Option<Buyer>,
    pub lines: Vec<Line>,
    pub delivery_groups: Vec<DeliveryGroup>,
}

impl Cart {
    /// Lines before discounts.
    pub fn subtotal(&self) -> Decimal {
        self.lines.iter().map(Line::subtotal).sum()
    }

    /// Resolves `request` against the shop's data; `Err` names what the request got wrong.
    pub fn resolve(data: &ShopData, request: &CheckoutRequest) -> Result<Cart, String> {
        let currency = request
            .currency
            .clone()
            .unwrap_or_else(|| data.currency.clone());
        let rate = match &request.presentment_currency_rate {
            Some(r) => parse_amount(r, "presentment_currency_rate")?,
            None if currency.eq_ignore_ascii_case(&data.currency) => Decimal::ONE,
            None => {
                return Err(format!(
                    "the cart is in {currency} and the shop in {}: give presentment_currency_rate",
                    data.currency
                ))
            }
        };
        if rate <= Decimal::ZERO {
            return Err("presentment_currency_rate must be more than 0".into());
        }
        let convert = |amount: Decimal| money(amount * rate);
        let metafields_of = |owner: &str| -> Vec<Metafield> {
            data.metafields_of(owner).into_iter().cloned().collect()
        };
        if request.lines.is_empty() {
            return Err("a checkout needs at least one line".into());
        }
        let mut lines = Vec::with_capacity(request.lines.len());
        for (i, l) in request.lines.iter().enumerate() {
            let id = match parse_gid(&l.variant) {
                Some(("ProductVariant", id)) => id,
                _ => {
                    return Err(format!(
                        "lines[{i}].variant {:?} is not a ProductVariant GID",
                        l.variant
                    ))
                }
            };
            let (product, variant) = data.variant(id).ok_or_else(|| {
                format!(
                    "lines[{i}].variant {} is not a variant of the shop",
                    l.variant
                )
            })?;
            if l.quantity == 0 {
                return Err(format!("lines[{i}].quantity must be at least 1"));
            }
            let price = parse_amount(variant.price.as_deref().unwrap_or("0"), "variant price")?;
            lines.push(Line {
                id: format!("gid://shopify/CartLine/{}", i + 1),
                quantity: l.quantity,
                unit_price: convert(price),
                product_metafields: metafields_of(&gid("Product", product.id)),
                variant_metafields: metafields_of(&gid("ProductVariant", variant.id)),
                product: product.clone(),
                variant: variant.clone(),
            });
        }
        let buyer = match &request.customer {
            None => None,
            Some(raw) => {
                let id = match parse_gid(raw) {
                    Some(("Customer", id)) => id,
                    _ => return Err(format!("customer {raw:?} is not a Customer GID")),
                };
                let customer = data
                    .customers
                    .get(&id)
                    .ok_or_else(|| format!("customer {raw} is not a customer of the shop"))?;
                let spent = parse_amount(&data.amount_spent(customer), "amount spent")?;
                Some(Buyer {
                    metafields: metafields_of(raw),
                    number_of_orders: data.number_of_orders(customer),
                    amount_spent: convert(spent),
                    customer: customer.clone(),
                })
            }
        };
        let shipping = parse_amount(
            request
                .shipping_price
                .as_deref()
                .unwrap_or(DEFAULT_SHIPPING_PRICE),
            "shipping_price",
        )?;
        let shipped: Vec<String> = lines
            .iter()
            .filter(|l| l.requires_shipping())
            .map(|l| l.id.clone())
            .collect();
        let delivery_groups = if shipped.is_empty() {
            Vec::new()
        } else {
            vec![DeliveryGroup {
                id: "gid://shopify/CartDeliveryGroup/1".into(),
                line_ids: shipped,
                options: vec![DeliveryOption {
                    handle: "standard".into(),
                    title: "Standard".into(),
                    price: convert(shipping),
                }],
            }]
        };
        Ok(Cart {
            currency,
            rate,
            buyer,
            lines,
            delivery_groups,
        })
    }
}

fn parse_amount(raw: &str, what: &str) -> Result<Decimal, String> {
    raw.trim()
        .parse::<Decimal>()
        .map_err(|_| format!("{what} {raw:?} is not a decimal amount"))
}

/// Money as the simulated checkout keeps it: two decimals, half away from zero.
pub(crate) fn money(amount: Decimal) -> Decimal {
    amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// `"12.50"`.
pub(crate) fn format_money(amount: Decimal) -> String {
    let mut m = money(amount);
    m.rescale(2);
    m.to_string()
}
