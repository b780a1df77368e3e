//! Configuration, read from the environment once at start-up. Nothing outside this module reads
//! environment variables. [`Config::from_env`] checks every variable and every cross-field rule
//! and reports all problems at once, one line each, naming the variable and what it expects.
//!
//! The Shopify CLI (`shopify app dev`) passes SHOPIFY_API_KEY, SHOPIFY_API_SECRET, SCOPES, PORT,
//! BACKEND_PORT and HOST/APP_URL to the web process; production sets SHOPIFY_APP_URL itself.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use url::Url;

/// Every variable Keel reads, with what it expects. `keel --help` prints this table.
pub const VARIABLES: &[(&str, &str)] = &[
    ("SHOPIFY_API_KEY", "required: the app's client id (Partner Dashboard / `shopify app env show`)"),
    ("SHOPIFY_API_SECRET", "required: the app's client secret; signs webhooks, session tokens and Flow requests"),
    ("SHOPIFY_API_SECRET_OLD", "optional: the previous client secret, still accepted during a secret rotation"),
    ("SHOPIFY_APP_URL", "required (or APP_URL / HOST as set by the Shopify CLI): the public https URL of the app"),
    ("SCOPES", "optional: comma-separated access scopes, e.g. read_customers,write_customers"),
    ("PORT", "optional, default 8081: the port to listen on"),
    ("BACKEND_PORT", "optional: a second port the Shopify CLI sends its test webhooks to"),
    ("KEEL_BIND", "optional, default 0.0.0.0: the address to listen on"),
    ("DATABASE_URL", "optional, default sqlite://keel-data/keel.db: sqlite:… (embedded) or postgres://… (several replicas)"),
    ("KEEL_DATA_DIR", "optional, default ./keel-data: where the SQLite file and the local encryption key live"),
    ("KEEL_ENCRYPTION_KEY", "32 bytes as 64 hex digits or base64; required with PostgreSQL, generated into KEEL_DATA_DIR for local SQLite"),
    ("KEEL_SHOPIFY_ORIGIN", "optional: send every Shopify call to this origin instead (the shopify-sim simulator), e.g. http://127.0.0.1:9100"),
    ("KEEL_WORKERS", "optional, default 2: job workers in this process (0 = serve HTTP only)"),
    ("KEEL_LOG_FORMAT", "optional, default human: `human` or `json`"),
    ("RUST_LOG", "optional, default info: log filter, e.g. keel=debug,info"),
];

/// Where Keel sends Shopify calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShopifyOrigin {
    /// `https://{shop}` — the real Shopify.
    PerShop,
    /// One origin for every shop (the simulator). Shop domains need not end in `.myshopify.com`.
    Fixed(Url),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    Sqlite { url: String },
    Postgres { url: String },
}

impl Database {
    pub fn url(&self) -> &str {
        match self {
            Database::Sqlite { url } | Database::Postgres { url } => url,
        }
    }
}

/// Where the AES-256-GCM key for tokens at rest comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum EncryptionKey {
    Given([u8; 32]),
    /// Local/dev mode: generated once into this file (mode 0600) and reused.
    LocalFile(PathBuf),
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncryptionKey::Given(_) => f.write_str("Given(<redacted>)"),
            EncryptionKey::LocalFile(p) => f.debug_tuple("LocalFile").field(p).finish(),
        }
    }
}

/// A secret string that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub api_key: String,
    pub api_secret: Secret,
    pub api_secret_old: Option<Secret>,
    pub app_url: Url,
    pub scopes: Vec<String>,
    pub bind: IpAddr,
    pub port: u16,
    pub backend_port: Option<u16>,
    pub database: Database,
    pub data_dir: PathBuf,
    pub encryption_key: EncryptionKey,
    pub shopify_origin: ShopifyOrigin,
    pub workers: usize,
    pub log_format: LogFormat,
}

/// Every problem found, one line each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, line) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    pub fn from_env() -> Result<Config, ConfigErrors> {
        Self::from_vars(&std::env::vars().collect())
    }

    /// The same rules over an explicit map, so they are testable without touching the process
    /// environment.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Config, ConfigErrors> {
        let get = |name: &str| vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let mut problems = Vec::new();

        let api_key = match get("SHOPIFY_API_KEY") {
            Some(v) => v.to_owned(),
            None => {
                problems
                    .push("SHOPIFY_API_KEY is missing: set it to the app's client id".to_owned());
                String::new()
            }
        };
        let api_secret = match get("SHOPIFY_API_SECRET") {
            Some(v) => Secret::new(v),
            None => {
                problems.push(
                    "SHOPIFY_API_SECRET is missing: set it to the app's client secret".to_owned(),
                );
                Secret::new("")
            }
        };
        let api_secret_old = get("SHOPIFY_API_SECRET_OLD").map(Secret::new);

        let app_url = match ["SHOPIFY_APP_URL", "APP_URL", "HOST"]
            .iter()
            .find_map(|name| get(name).map(|v| (*name, v)))
        {
            None => {
                problems.push("SHOPIFY_APP_URL is missing: set it to the app's public https URL (the Shopify CLI sets APP_URL/HOST)".to_owned());
                None
            }
            Some((name, raw)) => match parse_app_url(raw) {
                Ok(url) => Some(url),
                Err(why) => {
                    problems.push(format!("{name} is invalid ({raw:?}): {why}"));
                    None
                }
            },
        };

        let scopes = match get("SCOPES") {
            None => Vec::new(),
            Some(raw) => {
                let scopes: Vec<String> = raw
                    .split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect();
                if let Some(bad) = scopes
                    .iter()
                    .find(|s| !s.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
                {
                    problems.push(format!("SCOPES is invalid: {bad:?} is not a scope name (expected e.g. read_customers,write_customers)"));
                }
                scopes
            }
        };

        let port = parse_port(get("PORT"), "PORT", &mut problems).unwrap_or(8081);
        let backend_port = parse_port(get("BACKEND_PORT"), "BACKEND_PORT", &mut problems);
        let bind = match get("KEEL_BIND") {
            None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Some(raw) => raw.parse().unwrap_or_else(|_| {
                problems.push(format!("KEEL_BIND is invalid ({raw:?}): expected an IP address such as 127.0.0.1 or 0.0.0.0"));
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            }),
        };

        let (database, data_dir) = parse_database(&get, &mut problems);
        let encryption_key = match get("KEEL_ENCRYPTION_KEY") {
            Some(raw) => match crate::secrets::parse_key(raw) {
                Ok(key) => EncryptionKey::Given(key),
                Err(why) => {
                    problems.push(format!("KEEL_ENCRYPTION_KEY is invalid: {why}"));
                    EncryptionKey::Given([0; 32])
                }
            },
            None => {
                if matches!(database, Database::Postgres { .. }) {
                    problems.push("KEEL_ENCRYPTION_KEY is missing: it is required with PostgreSQL so every replica seals tokens with the same key (32 bytes as 64 hex digits or base64; e.g. `openssl rand -hex 32`)".to_owned());
                }
                EncryptionKey::LocalFile(data_dir.join("encryption.key"))
            }
        };

        let shopify_origin = match get("KEEL_SHOPIFY_ORIGIN") {
            None => ShopifyOrigin::PerShop,
            Some(raw) => match Url::parse(raw) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                    ShopifyOrigin::Fixed(url)
                }
                _ => {
                    problems.push(format!("KEEL_SHOPIFY_ORIGIN is invalid ({raw:?}): expected an origin such as http://127.0.0.1:9100"));
                    ShopifyOrigin::PerShop
                }
            },
        };

        let workers = match get("KEEL_WORKERS") {
            None => 2,
            Some(raw) => match raw.parse::<usize>() {
                Ok(n) if n <= 64 => n,
                _ => {
                    problems.push(format!(
                        "KEEL_WORKERS is invalid ({raw:?}): expected a number from 0 to 64"
                    ));
                    2
                }
            },
        };

        let log_format = match get("KEEL_LOG_FORMAT") {
            None | Some("human") => LogFormat::Human,
            Some("json") => LogFormat::Json,
            Some(raw) => {
                problems.push(format!(
                    "KEEL_LOG_FORMAT is invalid ({raw:?}): expected `human` or `json`"
                ));
                LogFormat::Human
            }
        };

        match (problems.is_empty(), app_url) {
            (true, Some(app_url)) => Ok(Config {
                api_key,
                api_secret,
                api_secret_old,
                app_url,
                scopes,
                bind,
                port,
                backend_port,
                database,
                data_dir,
                encryption_key,
                shopify_origin,
                workers,
                log_format,
            }),
            _ => Err(ConfigErrors(problems)),
        }
    }

    /// A configuration for tests and the demo: simulator origin, SQLite or the given database,
    /// a fixed key, no workers unless asked.
    pub fn for_local(
        api_key: &str,
        api_secret: &str,
        database_url: &str,
        shopify_origin: Option<Url>,
    ) -> Config {
        let database = if database_url.starts_with("postgres") {
            Database::Postgres {
                url: database_url.to_owned(),
            }
        } else {
            Database::Sqlite {
                url: database_url.to_owned(),
            }
        };
        Config {
            api_key: api_key.to_owned(),
            api_secret: Secret::new(api_secret),
            api_secret_old: None,
            app_url: Url::parse("http://127.0.0.1:8081")
                .unwrap_or_else(|_| unreachable!("literal URL")),
            scopes: vec!["read_customers".into(), "write_customers".into()],
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            backend_port: None,
            database,
            data_dir: PathBuf::from("keel-data"),
            encryption_key: EncryptionKey::Given([7; 32]),
            shopify_origin: shopify_origin.map_or(ShopifyOrigin::PerShop, ShopifyOrigin::Fixed),
            workers: 0,
            log_format: LogFormat::Human,
        }
    }

    /// The secrets Shopify may sign with: the current one first, then the previous one during a
    /// rotation. Without allocating: this runs on every webhook.
    pub fn signing_secrets(&self) -> SigningSecrets<'_> {
        let current = self.api_secret.expose().as_bytes();
        match &self.api_secret_old {
            Some(old) => SigningSecrets {
                keys: [current, old.expose().as_bytes()],
                len: 2,
            },
            None => SigningSecrets {
                keys: [current, &[]],
                len: 1,
            },
        }
    }
}

/// DATABASE_URL and KEEL_DATA_DIR, shared by `serve` and `migrate`.
fn parse_database<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
    problems: &mut Vec<String>,
) -> (Database, PathBuf) {
    let data_dir = PathBuf::from(get("KEEL_DATA_DIR").unwrap_or("keel-data"));
    let database = match get("DATABASE_URL") {
        None => Database::Sqlite {
            url: format!("sqlite://{}", data_dir.join("keel.db").display()),
        },
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            if Url::parse(url).is_err() {
                problems.push(
                    "DATABASE_URL is invalid: expected postgres://user:password@host:port/database"
                        .to_owned(),
                );
            }
            Database::Postgres {
                url: url.to_owned(),
            }
        }
        Some(url) if url.starts_with("sqlite:") => Database::Sqlite {
            url: url.to_owned(),
        },
        Some(_) => {
            problems
                .push("DATABASE_URL is invalid: expected sqlite:<path> or postgres://…".to_owned());
            Database::Sqlite { url: String::new() }
        }
    };
    (database, data_dir)
}

/// Only the database settings, for `keel migrate`.
pub fn database_from_env() -> Result<(Database, PathBuf), ConfigErrors> {
    let vars: HashMap<String, String> = std::env::vars().collect();
    let get = |name: &str| vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let mut problems = Vec::new();
    let parsed = parse_database(&get, &mut problems);
    if problems.is_empty() {
        Ok(parsed)
    } else {
        Err(ConfigErrors(problems))
    }
}

fn parse_port(raw: Option<&str>, name: &str, problems: &mut Vec<String>) -> Option<u16> {
    let raw = raw?;
    match raw.parse::<u16>() {
        Ok(p) => Some(p),
        Err(_) => {
            problems.push(format!(
                "{name} is invalid ({raw:?}): expected a port number from 0 to 65535"
            ));
            None
        }
    }
}

/// The app URL must be https, except on loopback for local development.
fn parse_app_url(raw: &str) -> Result<Url, &'static str> {
    // The CLI's HOST is sometimes a bare host name.
    let with_scheme = if raw.contains("://") {
        raw.to_owned()
    } else {
        format!("https://{raw}")
    };
    let mut url =
        Url::parse(&with_scheme).map_err(|_| "expected a URL such as https://keel.example.com")?;
    let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    if url.scheme() != "https" && !(local && url.scheme() == "http") {
        return Err("expected an https URL (http is accepted only for localhost)");
    }
    // Normalise: no trailing slash, no query, so joins are predictable.
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

/// See [`Config::signing_secrets`]; derefs to a slice of one or two keys.
pub struct SigningSecrets<'a> {
    keys: [&'a [u8]; 2],
    len: usize,
}

impl<'a> std::ops::Deref for SigningSecrets<'a> {
    type Target = [&'a [u8]];

    fn deref(&self) -> &[&'a [u8]] {
        &self.keys[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_missing_required_variable_is_reported_on_its_own_line() {
        let err = Config::from_vars(&vars(&[])).unwrap_err();
        let text = err.to_string();
        assert!(
            text.lines()
                .any(|l| l.starts_with("SHOPIFY_API_KEY is missing")),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with("SHOPIFY_API_SECRET is missing")),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with("SHOPIFY_APP_URL is missing")),
            "{text}"
        );
        assert_eq!(text.lines().count(), 3, "{text}");
    }

    #[test]
    fn malformed_values_name_the_variable_and_what_it_expects() {
        let err = Config::from_vars(&vars(&[
            ("SHOPIFY_API_KEY", "k"),
            ("SHOPIFY_API_SECRET", "s"),
            ("SHOPIFY_APP_URL", "http://keel.example.com"),
            ("PORT", "eighty"),
            ("DATABASE_URL", "mysql://x"),
            ("KEEL_ENCRYPTION_KEY", "short"),
            ("KEEL_LOG_FORMAT", "xml"),
        ]))
        .unwrap_err();
        let names: Vec<&str> = err
            .0
            .iter()
            .map(|l| l.split(' ').next().unwrap_or(""))
            .collect();
        assert_eq!(
            names,
            [
                "SHOPIFY_APP_URL",
                "PORT",
                "DATABASE_URL",
                "KEEL_ENCRYPTION_KEY",
                "KEEL_LOG_FORMAT"
            ]
        );
    }

    #[test]
    fn postgres_requires_an_explicit_encryption_key() {
        let err = Config::from_vars(&vars(&[
            ("SHOPIFY_API_KEY", "k"),
            ("SHOPIFY_API_SECRET", "s"),
            ("SHOPIFY_APP_URL", "https://keel.example.com/"),
            ("DATABASE_URL", "postgres://u@localhost/keel"),
        ]))
        .unwrap_err();
        assert!(
            err.0[0].starts_with("KEEL_ENCRYPTION_KEY is missing"),
            "{err}"
        );
    }

    #[test]
    fn cli_host_variable_and_defaults_make_a_valid_local_config() {
        let config = Config::from_vars(&vars(&[
            ("SHOPIFY_API_KEY", "k"),
            ("SHOPIFY_API_SECRET", "s"),
            ("HOST", "https://xyz.trycloudflare.com/"),
            ("SCOPES", "read_customers, write_customers"),
            ("PORT", "3000"),
        ]))
        .unwrap();
        assert_eq!(config.app_url.as_str(), "https://xyz.trycloudflare.com/");
        assert_eq!(config.scopes, ["read_customers", "write_customers"]);
        assert_eq!(config.port, 3000);
        assert!(matches!(config.database, Database::Sqlite { .. }));
        assert!(matches!(config.encryption_key, EncryptionKey::LocalFile(_)));
        assert_eq!(format!("{:?}", config.api_secret), "<redacted>");
    }
}
