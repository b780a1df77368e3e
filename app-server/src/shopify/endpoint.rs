//! Where a Shopify call goes: `https://{shop}{path}` in production, or one fixed origin (the
//! simulator) with the shop named in `X-Shopify-Shop-Domain`, since the simulator cannot tell
//! shops apart by host name.

use super::ShopDomain;
use std::time::Duration;

/// The header that names the shop when calls go to a fixed origin.
pub const SHOP_HEADER: &str = "X-Shopify-Shop-Domain";

#[derive(Debug, Clone)]
pub struct Endpoint {
    http: reqwest::Client,
    origin: Option<url::Url>,
}

impl Endpoint {
    /// `origin`: `None` for the real Shopify, `Some(origin)` for the simulator. Every request
    /// gets `timeout` end to end.
    pub fn new(origin: Option<url::Url>, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("Keel/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http, origin })
    }

    /// A POST to `path` (starting with `/`) on the shop, with the shop header when needed.
    pub fn post(&self, shop: &ShopDomain, path: &str) -> reqwest::RequestBuilder {
        match &self.origin {
            None => self.http.post(format!("https://{shop}{path}")),
            Some(origin) => {
                let base = origin.as_str().trim_end_matches('/');
                self.http
                    .post(format!("{base}{path}"))
                    .header(SHOP_HEADER, shop.as_str())
            }
        }
    }
}
