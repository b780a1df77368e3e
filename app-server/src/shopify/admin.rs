//! The Admin GraphQL API, first slice: one authenticated POST with typed failures. The
//! Admin-client issue grows this into the cost-aware, retrying client; callers already go
//! through [`crate::access`] so a 401 refreshes the token once.

use super::{Endpoint, ShopDomain, API_VERSION};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// HTTP 401: the token is invalid, expired or revoked.
    #[error("Shopify refused the access token")]
    Unauthorized,
    #[error("Shopify answered {status}")]
    Status { status: u16 },
    #[error("the Admin API is unreachable")]
    Transport(#[source] reqwest::Error),
    #[error("the Admin API answered with GraphQL errors: {0}")]
    GraphQl(String),
    #[error("the Admin API response is malformed")]
    Malformed(#[source] reqwest::Error),
}

/// POST a GraphQL document; returns `data` when there are no top-level errors.
pub async fn graphql(
    endpoint: &Endpoint,
    shop: &ShopDomain,
    access_token: &str,
    query: &str,
    variables: Value,
) -> Result<Value, AdminError> {
    let response = endpoint
        .post(shop, &format!("/admin/api/{API_VERSION}/graphql.json"))
        .header("X-Shopify-Access-Token", access_token)
        .json(&serde_json::json!({ "query": query, "variables": variables }))
        .send()
        .await
        .map_err(AdminError::Transport)?;
    match response.status().as_u16() {
        401 => return Err(AdminError::Unauthorized),
        200..=299 => {}
        status => return Err(AdminError::Status { status }),
    }
    let body: Value = response.json().await.map_err(AdminError::Malformed)?;
    if let Some(errors) = body.get("errors").filter(|e| !e.is_null()) {
        return Err(AdminError::GraphQl(errors.to_string()));
    }
    Ok(body.get("data").cloned().unwrap_or(Value::Null))
}
