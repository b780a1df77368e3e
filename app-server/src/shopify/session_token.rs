//! App Bridge session tokens (ID tokens): HS256 JWTs signed with the client secret, 60 s
//! lifetime. Verification follows Shopify's rules: HS256 only, `exp`/`nbf` with 10 s leeway,
//! `aud` = client id, the shop taken from `dest` and validated, and during a secret rotation
//! the previous secret is tried too.

use super::domain::{DomainPolicy, ShopDomain};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// Clock skew tolerated on `exp` and `nbf`, as Shopify's libraries allow.
pub const LEEWAY_SECS: u64 = 10;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub dest: String,
    pub aud: String,
    /// The staff member's id; absent for some token kinds.
    #[serde(default)]
    pub sub: Option<String>,
    pub exp: i64,
    pub nbf: i64,
    #[serde(default)]
    pub iat: Option<i64>,
    #[serde(default)]
    pub jti: Option<String>,
    #[serde(default)]
    pub sid: Option<String>,
}

/// A verified session token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionToken {
    pub shop: ShopDomain,
    pub claims: Claims,
    /// The token as received, needed for token exchange.
    pub raw: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionTokenError {
    #[error("the session token is malformed")]
    Malformed,
    #[error("the session token's signature is invalid")]
    BadSignature,
    #[error("the session token has expired")]
    Expired,
    #[error("the session token is not valid yet")]
    NotYetValid,
    #[error("the session token is for another app")]
    WrongAudience,
    #[error("the session token names no valid shop")]
    BadShop,
}

/// Verify `token` at time `now_unix` against the given secrets (current first).
pub fn verify(
    token: &str,
    client_id: &str,
    secrets: &[&[u8]],
    now_unix: i64,
    policy: DomainPolicy,
) -> Result<SessionToken, SessionTokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| SessionTokenError::Malformed)?;
    if header.alg != Algorithm::HS256 {
        return Err(SessionTokenError::Malformed);
    }
    // Time and audience are checked by hand against the app's clock (jsonwebtoken reads the
    // system clock); jsonwebtoken checks the signature and the claim shapes.
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "nbf", "aud"]);

    let mut last = SessionTokenError::BadSignature;
    for secret in secrets {
        match jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(secret), &validation)
        {
            Ok(data) => return check_claims(data.claims, token, client_id, now_unix, policy),
            Err(e) => {
                last = match e.kind() {
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                        SessionTokenError::BadSignature
                    }
                    _ => SessionTokenError::Malformed,
                };
                if last == SessionTokenError::Malformed {
                    break;
                }
            }
        }
    }
    Err(last)
}

fn check_claims(
    claims: Claims,
    raw: &str,
    client_id: &str,
    now: i64,
    policy: DomainPolicy,
) -> Result<SessionToken, SessionTokenError> {
    let leeway = LEEWAY_SECS as i64;
    if claims.exp + leeway < now {
        return Err(SessionTokenError::Expired);
    }
    if claims.nbf - leeway > now {
        return Err(SessionTokenError::NotYetValid);
    }
    if claims.aud != client_id {
        return Err(SessionTokenError::WrongAudience);
    }
    let dest = url::Url::parse(&claims.dest).map_err(|_| SessionTokenError::BadShop)?;
    let host = dest.host_str().ok_or(SessionTokenError::BadShop)?;
    let shop = ShopDomain::parse(host, policy).map_err(|_| SessionTokenError::BadShop)?;
    // `iss` is the shop's admin URL; a token whose issuer names another shop is forged or broken.
    let iss_host = url::Url::parse(&claims.iss)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned));
    if iss_host.as_deref() != Some(shop.as_str()) {
        return Err(SessionTokenError::BadShop);
    }
    Ok(SessionToken {
        shop,
        claims,
        raw: raw.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn token(secret: &[u8], claims: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    fn claims(exp: i64, nbf: i64) -> serde_json::Value {
        json!({"iss":"https://a.myshopify.com/admin","dest":"https://a.myshopify.com","aud":"client",
               "sub":"42","exp":exp,"nbf":nbf,"iat":nbf,"jti":"j","sid":"s"})
    }

    fn check(t: &str) -> Result<SessionToken, SessionTokenError> {
        verify(
            t,
            "client",
            &[b"secret", b"old"],
            NOW,
            DomainPolicy::MyShopifyOnly,
        )
    }

    #[test]
    fn valid_token_yields_the_shop_from_dest() {
        let t = token(b"secret", claims(NOW + 60, NOW));
        assert_eq!(check(&t).unwrap().shop.as_str(), "a.myshopify.com");
        // the previous secret during rotation
        assert!(check(&token(b"old", claims(NOW + 60, NOW))).is_ok());
    }

    #[test]
    fn leeway_is_ten_seconds_either_side() {
        assert!(check(&token(b"secret", claims(NOW - 10, NOW - 70))).is_ok());
        assert_eq!(
            check(&token(b"secret", claims(NOW - 11, NOW - 71))).unwrap_err(),
            SessionTokenError::Expired
        );
        assert!(check(&token(b"secret", claims(NOW + 70, NOW + 10))).is_ok());
        assert_eq!(
            check(&token(b"secret", claims(NOW + 71, NOW + 11))).unwrap_err(),
            SessionTokenError::NotYetValid
        );
    }

    #[test]
    fn wrong_audience_signature_algorithm_or_shape_is_refused() {
        let mut c = claims(NOW + 60, NOW);
        c["aud"] = json!("someone-else");
        assert_eq!(
            check(&token(b"secret", c)).unwrap_err(),
            SessionTokenError::WrongAudience
        );
        assert_eq!(
            check(&token(b"wrong", claims(NOW + 60, NOW))).unwrap_err(),
            SessionTokenError::BadSignature
        );
        assert_eq!(
            check("not.a.jwt").unwrap_err(),
            SessionTokenError::Malformed
        );
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims(NOW + 60, NOW),
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        assert_eq!(check(&hs512).unwrap_err(), SessionTokenError::Malformed);
        let mut c = claims(NOW + 60, NOW);
        c.as_object_mut().unwrap().remove("nbf");
        assert_eq!(
            check(&token(b"secret", c)).unwrap_err(),
            SessionTokenError::Malformed
        );
    }

    #[test]
    fn dest_must_be_a_valid_shop_matching_iss() {
        let mut c = claims(NOW + 60, NOW);
        c["dest"] = json!("https://evil.com");
        c["iss"] = json!("https://evil.com/admin");
        assert_eq!(
            check(&token(b"secret", c)).unwrap_err(),
            SessionTokenError::BadShop
        );
        let mut c = claims(NOW + 60, NOW);
        c["iss"] = json!("https://b.myshopify.com/admin");
        assert_eq!(
            check(&token(b"secret", c)).unwrap_err(),
            SessionTokenError::BadShop
        );
    }
}
