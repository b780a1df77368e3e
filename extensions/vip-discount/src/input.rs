//! Reading the Function's input beyond what the generated types do well: the raw value of a run
//! (for the per-line loop), exact decimals, and Keel's configuration through [`JsonView`].
//!
//! The generated accessors decode on first use and `unwrap` a failed decode, so every custom
//! scalar here deserializes infallibly and carries "not what we expected" as a value instead.

use shopify_function::wasm_api::{read, Deserialize, Serialize, Value};
use vip_config::{Decimal, JsonView};

/// A target's input: the generated, typed view plus the raw value it was read from.
///
/// The typed view serves the few fields read once (buyer, discount, currency, delivery groups).
/// The cart lines are read through `raw` by position ([`crate::lines_scan`]), which keeps the
/// per-line cost — the bulk of a large cart's instructions — close to the provider's own work.
pub struct Run<T> {
    pub typed: T,
    pub raw: Value,
}

impl<T: Deserialize> Deserialize for Run<T> {
    fn deserialize(value: &Value) -> Result<Self, read::Error> {
        Ok(Run {
            typed: T::deserialize(value)?,
            raw: *value,
        })
    }
}

/// A `JSON` scalar left undecoded until Keel reads it through [`JsonView`] (the generated
/// `JsonValue` would copy every member into maps first).
#[derive(Clone, Copy)]
pub struct RawJson(pub Value);

impl Deserialize for RawJson {
    fn deserialize(value: &Value) -> Result<Self, read::Error> {
        Ok(RawJson(*value))
    }
}

impl JsonView for RawJson {
    fn member(&self, key: &str) -> Option<Self> {
        if !self.0.is_obj() {
            return None;
        }
        let member = self.0.get_obj_prop(key);
        if member.is_null() || member.as_error().is_some() {
            None
        } else {
            Some(RawJson(member))
        }
    }

    fn is_object(&self) -> bool {
        self.0.is_obj()
    }

    fn as_string(&self) -> Option<String> {
        self.0.as_string()
    }

    fn elements(&self) -> Option<Vec<Self>> {
        if !self.0.is_array() {
            return None;
        }
        let len = self.0.array_len()?;
        Some((0..len).map(|i| RawJson(self.0.get_at_index(i))).collect())
    }
}

/// A `Decimal` scalar parsed exactly (never through `f64`); `None` when Shopify sent something
/// that is not a decimal.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExactDecimal(pub Option<Decimal>);

impl Deserialize for ExactDecimal {
    fn deserialize(value: &Value) -> Result<Self, read::Error> {
        Ok(ExactDecimal(
            value.as_string().as_deref().and_then(Decimal::parse),
        ))
    }
}

/// A `Decimal` in the output, already formatted ("15", "45.00"), written as Shopify's string form.
#[derive(Clone, Debug, PartialEq)]
pub struct DecimalText(pub String);

impl Serialize for DecimalText {
    fn serialize(
        &self,
        context: &mut shopify_function::wasm_api::Context,
    ) -> Result<(), shopify_function::wasm_api::write::Error> {
        context.write_utf8_str(&self.0)
    }
}

impl Deserialize for DecimalText {
    fn deserialize(value: &Value) -> Result<Self, read::Error> {
        value
            .as_string()
            .map(DecimalText)
            .ok_or(read::Error::InvalidType)
    }
}

impl From<Decimal> for DecimalText {
    fn from(value: Decimal) -> Self {
        DecimalText(value.to_string())
    }
}
