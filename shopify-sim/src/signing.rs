//! HMAC signing shared by session tokens (HS256/HS512 JWT signatures) and webhooks
//! (`X-Shopify-Hmac-Sha256`).

use base64::Engine;
use hmac::digest::core_api::BlockSizeUser;
use hmac::digest::{Digest, Key, KeyInit};
use hmac::{Mac, SimpleHmac};

/// HMAC-SHA256 of `data` under `key`.
pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::<sha2::Sha256>(key, data)
}

/// HMAC-SHA512 of `data` under `key` (only used to mint wrong-algorithm session tokens).
pub(crate) fn hmac_sha512(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::<sha2::Sha512>(key, data)
}

/// `base64(HMAC-SHA256(secret, body))`, the value of `X-Shopify-Hmac-Sha256`.
pub(crate) fn webhook_signature(secret: &str, body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(hmac_sha256(secret.as_bytes(), body))
}

/// HMAC per RFC 2104. The key is brought to the digest's block size here (hashed when longer,
/// zero-padded when shorter — exactly what HMAC itself does), so the infallible fixed-size
/// constructor can be used instead of `new_from_slice`, whose error case cannot happen but would
/// otherwise need an `expect` on a request path.
fn hmac<D: Digest + BlockSizeUser + Clone>(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut block = Key::<SimpleHmac<D>>::default();
    if key.len() > block.len() {
        let hashed = D::digest(key);
        let n = hashed.len().min(block.len());
        block[..n].copy_from_slice(&hashed[..n]);
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut mac = <SimpleHmac<D> as KeyInit>::new(&block);
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}
