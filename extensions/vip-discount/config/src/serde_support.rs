//! serde for the app server (feature `serde`): the configuration as the metafield's JSON.
//!
//! Reading goes through [`VipConfig::from_json`], the same parser the Function runs, so a
//! configuration the app accepts is one the Function accepts. Decimals are written as strings.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Map, Value};

use crate::{
    ConfigError, ConfigErrors, Decimal, ShippingBenefit, Tier, VipConfig, MAX_CONFIG_BYTES,
};

impl VipConfig {
    /// The configuration as the JSON object stored in the discount's metafield.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("vipTags".into(), json!(self.vip_tags));
        object.insert("excludedTags".into(), json!(self.excluded_tags));
        if let Some(tag_tier) = &self.tag_tier {
            object.insert("tagTier".into(), json!(tag_tier));
        }
        object.insert(
            "tiers".into(),
            Value::Array(self.tiers.iter().map(Tier::to_json).collect()),
        );
        Value::Object(object)
    }

    /// The metafield value to write: validated, serialized, and small enough that Shopify will
    /// hand it to the Function (values over [`MAX_CONFIG_BYTES`] are silently withheld).
    pub fn to_metafield_value(&self) -> Result<String, ConfigErrors> {
        self.validate()?;
        let text = self.to_json().to_string();
        if text.len() > MAX_CONFIG_BYTES {
            return Err(ConfigErrors(vec![ConfigError {
                path: String::new(),
                problem: format!(
                    "the configuration is {} bytes; Shopify only passes up to {MAX_CONFIG_BYTES} to the Function",
                    text.len()
                ),
            }]));
        }
        Ok(text)
    }

    /// Parses a metafield value (the JSON text).
    pub fn from_metafield_value(text: &str) -> Result<VipConfig, ConfigErrors> {
        let value: Value = serde_json::from_str(text).map_err(|error| {
            ConfigErrors(vec![ConfigError {
                path: String::new(),
                problem: format!("not JSON: {error}"),
            }])
        })?;
        VipConfig::from_json(&&value)
    }
}

impl Tier {
    fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("name".into(), json!(self.name));
        object.insert("percentage".into(), json!(self.percentage.to_string()));
        object.insert("appliesTo".into(), json!(self.applies_to.as_str()));
        if let Some(minimum) = self.minimum_subtotal {
            object.insert("minimumSubtotal".into(), json!(minimum.to_string()));
        }
        if let Some(cap) = self.cap {
            object.insert("cap".into(), json!(cap.to_string()));
        }
        if let Some(shipping) = &self.shipping {
            object.insert("shipping".into(), shipping.to_json());
        }
        if let Some(message) = &self.message {
            object.insert("message".into(), json!(message));
        }
        Value::Object(object)
    }
}

impl ShippingBenefit {
    fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("percentage".into(), json!(self.percentage.to_string()));
        if let Some(message) = &self.message {
            object.insert("message".into(), json!(message));
        }
        Value::Object(object)
    }
}

impl Serialize for VipConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for VipConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        VipConfig::from_json(&&value).map_err(D::Error::custom)
    }
}

impl Serialize for Decimal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Decimal::parse(&text)
            .ok_or_else(|| D::Error::custom(format!("{text:?} is not a decimal like \"12.5\"")))
    }
}
