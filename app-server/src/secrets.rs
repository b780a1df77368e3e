//! Sealing secrets at rest (Shopify access and refresh tokens) with AES-256-GCM.
//!
//! A sealed value is `[version=1][12-byte random nonce][ciphertext+tag]`. The associated data
//! binds each ciphertext to its shop and purpose, so a token row copied onto another shop (or an
//! access token pasted into the refresh column) fails to open instead of being used.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use rand::RngCore;
use std::fmt;
use std::path::Path;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("the sealed value is malformed or was sealed with another key")]
    Open,
    #[error("sealing failed")]
    Seal,
    #[error("encryption key file {path}: {source}")]
    KeyFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("encryption key file {path} is invalid: {why}")]
    KeyFileInvalid { path: String, why: String },
}

/// Parse a 32-byte key given as 64 hex digits or as base64 (standard or URL-safe, padded or not).
pub fn parse_key(raw: &str) -> Result<[u8; 32], String> {
    let raw = raw.trim();
    let bytes = if raw.len() == 64 && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(raw).map_err(|e| e.to_string())?
    } else {
        let engines = [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::STANDARD_NO_PAD,
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        engines
            .iter()
            .find_map(|e| e.decode(raw).ok())
            .ok_or("expected 32 bytes as 64 hex digits or base64 (e.g. `openssl rand -hex 32`)")?
    };
    bytes.try_into().map_err(|b: Vec<u8>| {
        format!(
            "expected 32 bytes, got {} (e.g. `openssl rand -hex 32`)",
            b.len()
        )
    })
}

/// Read the local key file, creating it (mode 0600, in a directory created if missing) with a
/// fresh random key on first use. Only for local/dev mode: replicas share a configured key.
pub fn load_or_create_key_file(path: &Path) -> Result<[u8; 32], SecretsError> {
    let shown = path.display().to_string();
    let io = |source| SecretsError::KeyFile {
        path: shown.clone(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => parse_key(&text).map_err(|why| SecretsError::KeyFileInvalid {
            path: shown.clone(),
            why,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let mut key = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut key);
            write_private(path, &hex::encode(key)).map_err(io)?;
            Ok(key)
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    // create_new: two processes starting at once must not overwrite each other's key.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

/// Seals and opens values with one key.
#[derive(Clone)]
pub struct Cipher {
    aead: Aes256Gcm,
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cipher(<key redacted>)")
    }
}

impl Cipher {
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            aead: Aes256Gcm::new(key.into()),
        }
    }

    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<Vec<u8>, SecretsError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .aead
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SecretsError::Seal)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, SecretsError> {
        match sealed {
            [VERSION, rest @ ..] if rest.len() > NONCE_LEN => {
                let (nonce, ct) = rest.split_at(NONCE_LEN);
                self.aead
                    .decrypt(
                        Nonce::from_slice(nonce),
                        Payload {
                            msg: ct,
                            aad: context.as_bytes(),
                        },
                    )
                    .map_err(|_| SecretsError::Open)
            }
            _ => Err(SecretsError::Open),
        }
    }

    pub fn open_string(&self, sealed: &[u8], context: &str) -> Result<String, SecretsError> {
        String::from_utf8(self.open(sealed, context)?).map_err(|_| SecretsError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_token_opens_only_with_the_same_key_and_context() {
        let cipher = Cipher::new(&[1; 32]);
        let sealed = cipher
            .seal(b"shpat_secret", "token:a.myshopify.com:access")
            .unwrap();
        assert!(
            !sealed.windows(12).any(|w| w == b"shpat_secret"),
            "plaintext must not appear"
        );
        assert_eq!(
            cipher
                .open(&sealed, "token:a.myshopify.com:access")
                .unwrap(),
            b"shpat_secret"
        );
        assert!(cipher
            .open(&sealed, "token:b.myshopify.com:access")
            .is_err());
        assert!(Cipher::new(&[2; 32])
            .open(&sealed, "token:a.myshopify.com:access")
            .is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(cipher
            .open(&tampered, "token:a.myshopify.com:access")
            .is_err());
    }

    #[test]
    fn sealing_twice_gives_different_ciphertexts() {
        let cipher = Cipher::new(&[1; 32]);
        assert_ne!(
            cipher.seal(b"x", "c").unwrap(),
            cipher.seal(b"x", "c").unwrap()
        );
    }

    #[test]
    fn keys_parse_from_hex_and_base64_and_reject_wrong_lengths() {
        let hex_key = "00".repeat(31) + "ff";
        assert_eq!(parse_key(&hex_key).unwrap()[31], 0xff);
        let b64 = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
        assert_eq!(parse_key(&b64).unwrap(), [9u8; 32]);
        assert!(parse_key("abcd").is_err());
        assert!(parse_key(&base64::engine::general_purpose::STANDARD.encode([9u8; 16])).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn local_key_file_is_created_once_with_owner_only_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/encryption.key");
        let first = load_or_create_key_file(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load_or_create_key_file(&path).unwrap(), first);
    }
}
