//! Shopify global ids (`gid://shopify/Customer/123`). Keel keeps GIDs everywhere inside; a
//! numeric id (as in REST-shaped webhook payloads) becomes a GID at the edge with its type.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gid {
    kind: String,
    id: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a Shopify id (expected gid://shopify/Type/123)")]
pub struct InvalidGid(pub String);

impl Gid {
    /// `kind` is Shopify's type name (`Customer`, `Order`, `ProductVariant`, …).
    pub fn new(kind: &str, id: u64) -> Self {
        Self {
            kind: kind.to_owned(),
            id,
        }
    }

    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The numeric id, for the APIs and payloads that want numbers.
    pub fn numeric(&self) -> u64 {
        self.id
    }

    /// Parse and check the type.
    pub fn parse_kind(raw: &str, kind: &str) -> Result<Self, InvalidGid> {
        let gid: Gid = raw.parse()?;
        if gid.kind == kind {
            Ok(gid)
        } else {
            Err(InvalidGid(raw.to_owned()))
        }
    }
}

impl FromStr for Gid {
    type Err = InvalidGid;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidGid(raw.chars().take(100).collect());
        let rest = raw.strip_prefix("gid://shopify/").ok_or_else(bad)?;
        // Some GIDs carry a query (`?session=…`); the id is before it.
        let rest = rest.split('?').next().unwrap_or(rest);
        let (kind, id) = rest.split_once('/').ok_or_else(bad)?;
        if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(bad());
        }
        let id = id.parse::<u64>().map_err(|_| bad())?;
        Ok(Gid {
            kind: kind.to_owned(),
            id,
        })
    }
}

impl fmt::Display for Gid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "gid://shopify/{}/{}", self.kind, self.id)
    }
}

impl serde::Serialize for Gid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Gid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gids_round_trip_with_ids_beyond_f64_precision() {
        let g: Gid = "gid://shopify/Customer/9007199254740993".parse().unwrap();
        assert_eq!(g.kind(), "Customer");
        assert_eq!(g.numeric(), 9007199254740993);
        assert_eq!(g.to_string(), "gid://shopify/Customer/9007199254740993");
        assert_eq!(
            Gid::new("Order", 450789469).to_string(),
            "gid://shopify/Order/450789469"
        );
        let json = serde_json::to_string(&g).unwrap();
        assert_eq!(serde_json::from_str::<Gid>(&json).unwrap(), g);
    }

    #[test]
    fn malformed_or_mistyped_gids_are_refused() {
        for bad in [
            "123",
            "gid://shopify/Customer",
            "gid://shopify/Customer/x",
            "gid://other/Customer/1",
            "gid://shopify//1",
            "gid://shopify/Cu stomer/1",
        ] {
            assert!(bad.parse::<Gid>().is_err(), "{bad}");
        }
        assert!(Gid::parse_kind("gid://shopify/Order/1", "Customer").is_err());
        assert_eq!(
            "gid://shopify/Customer/7?x=1"
                .parse::<Gid>()
                .unwrap()
                .numeric(),
            7
        );
    }
}
