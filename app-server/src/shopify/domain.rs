//! Shop domains and the embedded `host` parameter, validated before they are used in any URL,
//! header or CSP. Only the sanitised value ever leaves this module.

use base64::Engine as _;
use std::fmt;

/// A validated, lowercase shop domain such as `keel-dev.myshopify.com`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShopDomain(String);

/// Which shop domains are acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainPolicy {
    /// Only `{name}.myshopify.com` (production).
    MyShopifyOnly,
    /// Any plain DNS-style host name: when every Shopify call goes to the simulator.
    AnyHost,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a shop domain (expected something like your-store.myshopify.com)")]
pub struct InvalidShopDomain(pub String);

impl ShopDomain {
    pub fn parse(raw: &str, policy: DomainPolicy) -> Result<Self, InvalidShopDomain> {
        let lowered = raw.trim().trim_end_matches('/').to_ascii_lowercase();
        let candidate = lowered
            .strip_prefix("https://")
            .or_else(|| lowered.strip_prefix("http://"))
            .unwrap_or(&lowered);
        let ok = match policy {
            DomainPolicy::MyShopifyOnly => candidate
                .strip_suffix(".myshopify.com")
                .is_some_and(is_store_name),
            DomainPolicy::AnyHost => {
                candidate.len() <= 253
                    && !candidate.is_empty()
                    && candidate.split('.').all(is_label)
            }
        };
        if ok {
            Ok(Self(candidate.to_owned()))
        } else {
            Err(InvalidShopDomain(raw.chars().take(100).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The store handle, `keel-dev` for `keel-dev.myshopify.com`.
    pub fn store_name(&self) -> &str {
        self.0.split('.').next().unwrap_or(&self.0)
    }
}

impl fmt::Display for ShopDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ShopDomain {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// `^[a-z0-9][a-z0-9-]*$`
fn is_store_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Decode and check the embedded `host` parameter (unpadded base64 of e.g.
/// `admin.shopify.com/store/keel-dev`). Returns the decoded value.
pub fn decode_host(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty()
        || !raw
            .trim_end_matches('=')
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(raw.trim_end_matches('='))
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let url = url::Url::parse(&format!("https://{decoded}")).ok()?;
    let hostname = url.host_str()?;
    const ALLOWED: [&str; 5] = [
        ".myshopify.com",
        ".shopify.com",
        ".myshopify.io",
        ".spin.dev",
        ".shop.dev",
    ];
    ALLOWED
        .iter()
        .any(|suffix| hostname.ends_with(suffix) || hostname == &suffix[1..])
        .then_some(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn myshopify_domains_are_accepted_and_normalised() {
        let d = ShopDomain::parse(
            "HTTPS://Keel-Dev.myshopify.com/",
            DomainPolicy::MyShopifyOnly,
        )
        .unwrap();
        assert_eq!(d.as_str(), "keel-dev.myshopify.com");
        assert_eq!(d.store_name(), "keel-dev");
    }

    #[test]
    fn anything_else_is_refused_in_production() {
        for bad in [
            "evil.com",
            "keel.myshopify.com.evil.com",
            "-keel.myshopify.com",
            "ke_el.myshopify.com",
            "keel.myshopify.com/admin",
            "",
            ".myshopify.com",
            "a b.myshopify.com",
            "keel.myshopify.com?x=1",
        ] {
            assert!(
                ShopDomain::parse(bad, DomainPolicy::MyShopifyOnly).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn simulator_mode_accepts_plain_hosts_but_not_urls_with_paths() {
        assert!(ShopDomain::parse("shop-1.sim.local", DomainPolicy::AnyHost).is_ok());
        assert!(ShopDomain::parse("shop-1.sim.local/x", DomainPolicy::AnyHost).is_err());
        assert!(ShopDomain::parse("a..b", DomainPolicy::AnyHost).is_err());
    }

    #[test]
    fn host_parameter_decodes_padding_indifferently_and_must_be_shopify() {
        assert_eq!(
            decode_host("YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvbmV3LWRhbm9qYQ").as_deref(),
            Some("admin.shopify.com/store/new-danoja")
        );
        assert_eq!(
            decode_host("YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvbmV3LWRhbm9qYQ==").as_deref(),
            Some("admin.shopify.com/store/new-danoja")
        );
        let evil = base64::engine::general_purpose::STANDARD_NO_PAD.encode("evil.com/store/x");
        assert_eq!(decode_host(&evil), None);
        assert_eq!(decode_host("not base64!"), None);
    }
}
