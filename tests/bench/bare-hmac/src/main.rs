//! The benchmark's baseline: an axum handler that verifies a webhook's HMAC with Keel's own
//! check and stores nothing. Keel's `/webhooks` is measured against it in the same run.
//!
//! Usage: `bench-bare-hmac PORT SECRET`

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use keel::shopify::hmac::body_signature_valid;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args
        .next()
        .ok_or("usage: bench-bare-hmac PORT SECRET")?
        .parse()?;
    let secret: Arc<str> = args
        .next()
        .ok_or("usage: bench-bare-hmac PORT SECRET")?
        .into();
    let app = Router::new().route(
        "/webhooks",
        post(move |headers: HeaderMap, body: Bytes| {
            let secret = secret.clone();
            async move {
                let sig = headers
                    .get("x-shopify-hmac-sha256")
                    .and_then(|v| v.to_str().ok());
                if body_signature_valid(&[secret.as_bytes()], &body, sig) {
                    StatusCode::OK
                } else {
                    StatusCode::UNAUTHORIZED
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
