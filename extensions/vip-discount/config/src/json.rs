//! A read-only view of a JSON value, so one parser serves both sides of the configuration.
//!
//! The app server holds `serde_json::Value`s; the Function holds the Function API's lazily decoded
//! input values and must not link serde. Both implement [`JsonView`], and
//! [`VipConfig::from_json`](crate::VipConfig::from_json) is written once against it — the settings
//! Keel accepts are exactly the settings the Function understands.

/// What the configuration parser needs from a JSON value.
pub trait JsonView: Sized {
    /// The member `key` of an object. `None` when the member is missing or `null`, or when this
    /// value is not an object.
    fn member(&self, key: &str) -> Option<Self>;

    fn is_object(&self) -> bool;

    /// The string, when this value is one.
    fn as_string(&self) -> Option<String>;

    /// The elements, when this value is an array.
    fn elements(&self) -> Option<Vec<Self>>;
}

#[cfg(feature = "serde")]
impl JsonView for &serde_json::Value {
    fn member(&self, key: &str) -> Option<Self> {
        match self.get(key) {
            Some(serde_json::Value::Null) | None => None,
            Some(value) => Some(value),
        }
    }

    fn is_object(&self) -> bool {
        serde_json::Value::is_object(self)
    }

    fn as_string(&self) -> Option<String> {
        self.as_str().map(str::to_owned)
    }

    fn elements(&self) -> Option<Vec<Self>> {
        self.as_array().map(|items| items.iter().collect())
    }
}
