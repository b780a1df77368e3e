//! HMAC-SHA256 signatures as Shopify computes them. Webhooks and Flow requests sign the raw body
//! (standard base64 digest); embedded-app and install URLs sign the sorted query string (hex
//! digest). Comparisons are constant-time, and every check accepts a list of secrets so the
//! previous client secret keeps working during a rotation.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::BTreeMap;

type HmacSha256 = Hmac<Sha256>;

/// How far a signed query's `timestamp` may be from now, as Shopify's own library allows.
pub const QUERY_TIMESTAMP_TOLERANCE_SECS: i64 = 90;

fn mac(secret: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail; the fallback keeps the signature
    // infallible without an unwrap.
    HmacSha256::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key size"))
}

/// `base64(HMAC-SHA256(secret, body))`, the value of `X-Shopify-Hmac-Sha256`.
pub fn sign_body(secret: &[u8], body: &[u8]) -> String {
    let mut m = mac(secret);
    m.update(body);
    STANDARD.encode(m.finalize().into_bytes())
}

/// Check a body signature header against each secret. Empty bodies never verify.
pub fn body_signature_valid(secrets: &[&[u8]], body: &[u8], header: Option<&str>) -> bool {
    let (false, Some(header)) = (body.is_empty(), header) else {
        return false;
    };
    let Ok(given) = STANDARD.decode(header.trim()) else {
        return false;
    };
    secrets.iter().any(|secret| {
        let mut m = mac(secret);
        m.update(body);
        m.verify_slice(&given).is_ok()
    })
}

/// The message Shopify signs for a query string: every parameter except `hmac` and `signature`,
/// sorted by key, `k=v` joined by `&`, percent-encoded with spaces as `%20`, repeated keys'
/// values joined by `,`.
pub fn query_message(raw_query: &str) -> (String, Option<String>) {
    let mut given = None;
    let mut params = BTreeMap::<String, Vec<String>>::new();
    for (k, v) in form_urlencoded::parse(raw_query.as_bytes()) {
        match &*k {
            "hmac" => given = Some(v.into_owned()),
            "signature" => {}
            _ => params
                .entry(k.into_owned())
                .or_default()
                .push(v.into_owned()),
        }
    }
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, vs) in &params {
        ser.append_pair(k, &vs.join(","));
    }
    // form_urlencoded writes spaces as '+'; a literal '+' is already %2B, so this is exact.
    (ser.finish().replace('+', "%20"), given)
}

/// Lowercase hex HMAC of a query message.
pub fn sign_query_message(secret: &[u8], message: &str) -> String {
    let mut m = mac(secret);
    m.update(message.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// Why a signed query string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueryHmacError {
    #[error("the hmac parameter is missing")]
    Missing,
    #[error("the hmac does not match")]
    Mismatch,
    #[error("the timestamp is missing or more than 90 seconds from now")]
    Stale,
}

/// Verify the signature only (no timestamp check).
pub fn query_signature_valid(secrets: &[&[u8]], raw_query: &str) -> Result<(), QueryHmacError> {
    let (message, given) = query_message(raw_query);
    let given = given.ok_or(QueryHmacError::Missing)?;
    let given = hex::decode(given.trim()).map_err(|_| QueryHmacError::Mismatch)?;
    let ok = secrets.iter().any(|secret| {
        let mut m = mac(secret);
        m.update(message.as_bytes());
        m.verify_slice(&given).is_ok()
    });
    ok.then_some(()).ok_or(QueryHmacError::Mismatch)
}

/// Verify signature and freshness (`|now - timestamp| <= 90 s`).
pub fn query_valid(
    secrets: &[&[u8]],
    raw_query: &str,
    now_unix: i64,
) -> Result<(), QueryHmacError> {
    query_signature_valid(secrets, raw_query)?;
    let timestamp = form_urlencoded::parse(raw_query.as_bytes())
        .find(|(k, _)| k == "timestamp")
        .and_then(|(_, v)| v.parse::<i64>().ok())
        .ok_or(QueryHmacError::Stale)?;
    if (now_unix - timestamp).abs() > QUERY_TIMESTAMP_TOLERANCE_SECS {
        return Err(QueryHmacError::Stale);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shopify's documented OAuth examples (secret "hush"), with and without `state`.
    const DOC_WITH_STATE: &str = "code=0907a61c0c8d55e99db179b68161bc00&hmac=700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf&shop=some-shop.myshopify.com&state=0.6784241404160823&timestamp=1337178173";
    const DOC_WITHOUT_STATE: &str = "code=0907a61c0c8d55e99db179b68161bc00&hmac=4712bf92ffc2917d15a2f5a273e39f0116667419aa4b6ac0b3baaf26fa3c4d20&shop=some-shop.myshopify.com&timestamp=1337178173";

    #[test]
    fn shopify_documented_query_examples_verify() {
        assert_eq!(query_signature_valid(&[b"hush"], DOC_WITH_STATE), Ok(()));
        assert_eq!(query_signature_valid(&[b"hush"], DOC_WITHOUT_STATE), Ok(()));
        assert_eq!(
            query_signature_valid(&[b"hash"], DOC_WITH_STATE),
            Err(QueryHmacError::Mismatch)
        );
        assert_eq!(
            query_valid(&[b"hush"], DOC_WITH_STATE, 1337178173 + 90),
            Ok(())
        );
        assert_eq!(
            query_valid(&[b"hush"], DOC_WITH_STATE, 1337178173 + 91),
            Err(QueryHmacError::Stale)
        );
    }

    #[test]
    fn query_order_does_not_matter_but_every_value_does() {
        let reordered = "timestamp=1337178173&shop=some-shop.myshopify.com&hmac=700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf&state=0.6784241404160823&code=0907a61c0c8d55e99db179b68161bc00";
        assert_eq!(query_signature_valid(&[b"hush"], reordered), Ok(()));
        let tampered = DOC_WITH_STATE.replace("some-shop", "other-shop");
        assert_eq!(
            query_signature_valid(&[b"hush"], &tampered),
            Err(QueryHmacError::Mismatch)
        );
        assert_eq!(
            query_signature_valid(&[b"hush"], "shop=a&timestamp=1"),
            Err(QueryHmacError::Missing)
        );
    }

    #[test]
    fn spaces_are_signed_as_percent_20_and_repeated_keys_joined_by_commas() {
        let (msg, _) = query_message("b=x%20y&a=1&ids%5B%5D=2&ids%5B%5D=3&hmac=zz");
        assert_eq!(msg, "a=1&b=x%20y&ids%5B%5D=2%2C3");
    }

    #[test]
    fn previous_secret_is_accepted_during_rotation() {
        assert_eq!(
            query_signature_valid(&[b"new-secret", b"hush"], DOC_WITH_STATE),
            Ok(())
        );
        let body = br#"{"id":1}"#;
        let sig = sign_body(b"old", body);
        assert!(body_signature_valid(&[b"new", b"old"], body, Some(&sig)));
        assert!(!body_signature_valid(&[b"new"], body, Some(&sig)));
    }

    #[test]
    fn body_signature_matches_rfc4231_vector_and_rejects_tampering() {
        // RFC 4231 test case 2, base64 of the HMAC-SHA256 digest.
        let sig = sign_body(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(sig, "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=");
        let body = br#"{"shop_id":954889,"shop_domain":"a.myshopify.com"}"#;
        let sig = sign_body(b"secret", body);
        assert!(body_signature_valid(&[b"secret"], body, Some(&sig)));
        assert!(!body_signature_valid(
            &[b"secret"],
            br#"{"shop_id":954880,"shop_domain":"a.myshopify.com"}"#,
            Some(&sig)
        ));
        assert!(!body_signature_valid(&[b"secret"], body, None));
        assert!(!body_signature_valid(
            &[b"secret"],
            b"",
            Some(&sign_body(b"secret", b""))
        ));
        assert!(!body_signature_valid(
            &[b"secret"],
            body,
            Some("not base64!")
        ));
    }
}
