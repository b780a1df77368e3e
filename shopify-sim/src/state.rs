//! The simulator's memory: which shops have the app installed, every access and refresh token
//! issued, per-shop counters of token-endpoint calls, a bounded log of what happened, and a
//! bounded log of every Flow request attempt the simulator made toward the app.
//!
//! Everything here is synchronous and lives behind one mutex in [`crate::Shared`]; handlers lock,
//! decide, and unlock without awaiting, so the lock is never held across I/O. Time is passed in
//! (`now`) rather than read here, which keeps each decision a pure function of state and time.
//!
//! Token rules modelled (reference app-platform.md §2):
//! - a token exchange issues a fresh access token (and, when expiring, a refresh token);
//!   earlier tokens of the shop stay valid until they expire;
//! - a refresh rotates: new access token + new refresh token; the used refresh token keeps
//!   working until its replacement is first used (Shopify's 2026-08-28 rule), at most
//!   [`PREVIOUS_REFRESH_TOKEN_GRACE`] after its first use and never past its own expiry;
//! - uninstalling revokes every token of the shop.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::admin::ShopAdmin;
use crate::error::SimError;
use crate::flow::FlowDeliveryResult;

/// How long a rotated-away refresh token may still be used while its replacement is unused.
pub const PREVIOUS_REFRESH_TOKEN_GRACE: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Log entries kept; older ones are dropped so a long-running demo does not grow without bound.
const LOG_CAPACITY: usize = 10_000;

/// A shop known to the simulator (installed now or in the past).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShopInfo {
    /// `{handle}.myshopify.com`.
    pub shop: String,
    /// Numeric shop id, derived from the domain (stable across simulator instances).
    pub id: u64,
    pub name: String,
    pub email: String,
    /// Scopes granted to the app; reported comma-joined in token responses.
    pub scopes: Vec<String>,
    pub installed: bool,
    pub installed_at: DateTime<Utc>,
    pub uninstalled_at: Option<DateTime<Utc>>,
}

/// Calls to `/admin/oauth/access_token` attributed to one shop.
///
/// `exchanges` and `refreshes` count successful calls of each grant; `failed` counts refused
/// calls of any grant (attributed by the shop in the token, else by `X-Shopify-Shop-Domain`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCalls {
    pub exchanges: u64,
    pub refreshes: u64,
    pub failed: u64,
}

/// One thing the simulator did or refused, for `GET /_sim/log` and [`crate::Sim::log`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub at: DateTime<Utc>,
    /// `token_exchange`, `refresh_token`, `oauth` (unknown grant), `admin_graphql`, `webhook`.
    pub event: String,
    pub shop: Option<String>,
    /// `ok`, an OAuth error code, `401`, or a webhook attempt's HTTP status / error.
    pub outcome: String,
}

/// Which grant a token-endpoint call used, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GrantKind {
    Exchange,
    Refresh,
    Other,
}

impl GrantKind {
    fn event(self) -> &'static str {
        match self {
            GrantKind::Exchange => "token_exchange",
            GrantKind::Refresh => "refresh_token",
            GrantKind::Other => "oauth",
        }
    }
}

/// What one successful exchange or refresh handed out.
#[derive(Debug, Clone)]
pub(crate) struct IssuedTokens {
    pub access_token: String,
    pub scope: String,
    /// Present for expiring offline tokens.
    pub expiring: Option<ExpiringPart>,
}

#[derive(Debug, Clone)]
pub(crate) struct ExpiringPart {
    pub expires_in: u64,
    pub refresh_token: String,
    pub refresh_token_expires_in: u64,
}

/// Token lifetimes, fixed at spawn from [`crate::SimConfig`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lifetimes {
    pub access: Duration,
    pub refresh: Duration,
    pub previous_refresh_grace: Duration,
}

#[derive(Debug)]
struct AccessTokenRecord {
    shop: String,
    /// `None` for legacy non-expiring offline tokens.
    expires_at: Option<DateTime<Utc>>,
    revoked: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefreshStatus {
    Live,
    /// A token issued from it has been used: it is dead for good.
    Superseded,
    Revoked,
}

#[derive(Debug)]
struct RefreshTokenRecord {
    shop: String,
    expires_at: DateTime<Utc>,
    /// The refresh token this one replaced; superseded when this one is first used.
    parent: Option<String>,
    /// First successful use; starts the grace period of this (now previous) token.
    first_used_at: Option<DateTime<Utc>>,
    status: RefreshStatus,
}

/// All mutable simulator state.
#[derive(Debug)]
pub(crate) struct State {
    lifetimes: Lifetimes,
    shops: HashMap<String, ShopInfo>,
    access_tokens: HashMap<String, AccessTokenRecord>,
    refresh_tokens: HashMap<String, RefreshTokenRecord>,
    calls: HashMap<String, TokenCalls>,
    log: VecDeque<LogEntry>,
    /// Artificial delay before a refresh is processed, to widen race windows in tests.
    pub refresh_latency: Duration,
    /// Admin API data, throttle and faults per shop (created on first use).
    admin: HashMap<String, ShopAdmin>,
    /// Every Flow action / lifecycle attempt, oldest first (bounded like `log`).
    flow_deliveries: VecDeque<FlowDeliveryResult>,
}

impl State {
    pub fn new(lifetimes: Lifetimes, refresh_latency: Duration) -> Self {
        State {
            lifetimes,
            shops: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            calls: HashMap::new(),
            log: VecDeque::new(),
            refresh_latency,
            admin: HashMap::new(),
            flow_deliveries: VecDeque::new(),
        }
    }

    // ---- shops -------------------------------------------------------------------------------

    /// Installs (or reinstalls, or updates the scopes of) the app on `shop`.
    /// Tokens revoked by an earlier uninstall stay revoked.
    pub fn install(&mut self, shop: &str, scopes: Vec<String>, now: DateTime<Utc>) -> ShopInfo {
        let info = self
            .shops
            .entry(shop.to_owned())
            .or_insert_with(|| new_shop(shop, now));
        if !info.installed {
            info.installed = true;
            info.installed_at = now;
            info.uninstalled_at = None;
        }
        info.scopes = scopes;
        info.clone()
    }

    /// Uninstalls the app from `shop` and revokes all its tokens. `None` if the shop is unknown.
    pub fn uninstall(&mut self, shop: &str, now: DateTime<Utc>) -> Option<ShopInfo> {
        let info = self.shops.get_mut(shop)?;
        if info.installed {
            info.installed = false;
            info.uninstalled_at = Some(now);
        }
        let info = info.clone();
        for t in self.access_tokens.values_mut().filter(|t| t.shop == shop) {
            t.revoked = true;
        }
        self.revoke_refresh_tokens(shop);
        Some(info)
    }

    pub fn shop(&self, shop: &str) -> Option<&ShopInfo> {
        self.shops.get(shop)
    }

    fn installed_shop(&self, shop: &str) -> Option<&ShopInfo> {
        self.shops.get(shop).filter(|s| s.installed)
    }

    // ---- issuing -----------------------------------------------------------------------------

    /// Issues a new offline access token (with a refresh token when `expiring`) for an
    /// installed shop.
    pub fn issue(
        &mut self,
        shop: &str,
        expiring: bool,
        now: DateTime<Utc>,
    ) -> Result<IssuedTokens, SimError> {
        self.issue_with_parent(shop, expiring, None, now)
    }

    fn issue_with_parent(
        &mut self,
        shop: &str,
        expiring: bool,
        parent: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<IssuedTokens, SimError> {
        let scope = self
            .installed_shop(shop)
            .ok_or_else(|| {
                SimError::AppNotInstalled(format!("the app is not installed on {shop}"))
            })?
            .scopes
            .join(",");
        let access_token = format!("shpat_{}", random_hex());
        let lifetimes = self.lifetimes;
        let expiring = expiring.then(|| {
            let refresh_token = format!("shprt_{}", random_hex());
            self.refresh_tokens.insert(
                refresh_token.clone(),
                RefreshTokenRecord {
                    shop: shop.to_owned(),
                    expires_at: after(now, lifetimes.refresh),
                    parent,
                    first_used_at: None,
                    status: RefreshStatus::Live,
                },
            );
            ExpiringPart {
                expires_in: lifetimes.access.as_secs(),
                refresh_token,
                refresh_token_expires_in: lifetimes.refresh.as_secs(),
            }
        });
        self.access_tokens.insert(
            access_token.clone(),
            AccessTokenRecord {
                shop: shop.to_owned(),
                expires_at: expiring.is_some().then(|| after(now, lifetimes.access)),
                revoked: false,
            },
        );
        Ok(IssuedTokens {
            access_token,
            scope,
            expiring,
        })
    }

    /// Rotates `refresh_token`: validates it, issues a new pair, and applies the grace rule.
    /// `header_shop` is the `X-Shopify-Shop-Domain` the request was sent to, if any.
    pub fn refresh(
        &mut self,
        refresh_token: &str,
        header_shop: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<IssuedTokens, SimError> {
        let grace = self.lifetimes.previous_refresh_grace;
        let record = self
            .refresh_tokens
            .get(refresh_token)
            .ok_or_else(|| SimError::InvalidGrant("unknown refresh token".into()))?;
        let shop = record.shop.clone();
        if header_shop.is_some_and(|h| h != shop) {
            return Err(SimError::InvalidGrant(
                "the refresh token belongs to another shop".into(),
            ));
        }
        match record.status {
            RefreshStatus::Revoked => {
                return Err(SimError::InvalidGrant(
                    "the refresh token has been revoked".into(),
                ))
            }
            RefreshStatus::Superseded => {
                return Err(SimError::InvalidGrant(
                    "the refresh token was rotated and its replacement has been used".into(),
                ))
            }
            RefreshStatus::Live => {}
        }
        if now >= record.expires_at {
            return Err(SimError::InvalidGrant(
                "the refresh token has expired".into(),
            ));
        }
        if record
            .first_used_at
            .is_some_and(|used| now >= after(used, grace))
        {
            return Err(SimError::InvalidGrant(
                "the previous refresh token's grace period has ended".into(),
            ));
        }
        if self.installed_shop(&shop).is_none() {
            return Err(SimError::InvalidGrant(format!(
                "the app is not installed on {shop}"
            )));
        }

        let issued = self.issue_with_parent(&shop, true, Some(refresh_token.to_owned()), now)?;
        // Using this token is "first use of the replacement" for its parent: the parent dies.
        let parent = self.refresh_tokens.get_mut(refresh_token).and_then(|r| {
            r.first_used_at.get_or_insert(now);
            r.parent.clone()
        });
        if let Some(parent) = parent.and_then(|p| self.refresh_tokens.get_mut(&p)) {
            if parent.status == RefreshStatus::Live {
                parent.status = RefreshStatus::Superseded;
            }
        }
        Ok(issued)
    }

    /// Replaces a legacy non-expiring token by an expiring pair (one-way migration, §2.1).
    pub fn migrate_non_expiring(
        &mut self,
        access_token: &str,
        header_shop: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<IssuedTokens, SimError> {
        let shop = match self.access_tokens.get(access_token) {
            Some(t) if !t.revoked && t.expires_at.is_none() => t.shop.clone(),
            _ => {
                return Err(SimError::InvalidSubjectToken(
                    "subject_token is not a valid non-expiring offline access token".into(),
                ))
            }
        };
        if header_shop.is_some_and(|h| h != shop) {
            return Err(SimError::InvalidRequest(
                "the access token belongs to another shop".into(),
            ));
        }
        let issued = self.issue(&shop, true, now)?;
        if let Some(old) = self.access_tokens.get_mut(access_token) {
            old.revoked = true;
        }
        Ok(issued)
    }

    // ---- validity and revocation -------------------------------------------------------------

    /// The shop an access token is valid for right now, if it is valid at all.
    pub fn access_token_shop(&self, token: &str, now: DateTime<Utc>) -> Option<&str> {
        let t = self.access_tokens.get(token)?;
        let live = !t.revoked && t.expires_at.is_none_or(|e| now < e);
        (live && self.installed_shop(&t.shop).is_some()).then_some(t.shop.as_str())
    }

    /// The shop a refresh token was issued to (valid or not), to attribute failed calls.
    pub fn refresh_token_shop(&self, token: &str) -> Option<&str> {
        self.refresh_tokens.get(token).map(|r| r.shop.as_str())
    }

    /// Makes every unrevoked access token of `shop` expire now. Returns how many were live.
    pub fn expire_access_tokens(&mut self, shop: &str, now: DateTime<Utc>) -> usize {
        let mut n = 0;
        for t in self.access_tokens.values_mut() {
            if t.shop == shop && !t.revoked && t.expires_at.is_none_or(|e| now < e) {
                t.expires_at = Some(now);
                n += 1;
            }
        }
        n
    }

    /// Revokes every refresh token of `shop`. Returns how many were not revoked yet.
    pub fn revoke_refresh_tokens(&mut self, shop: &str) -> usize {
        let mut n = 0;
        for r in self.refresh_tokens.values_mut() {
            if r.shop == shop && r.status != RefreshStatus::Revoked {
                r.status = RefreshStatus::Revoked;
                n += 1;
            }
        }
        n
    }

    /// The shop an access token was issued to, valid or not (to attribute faults to a shop).
    pub fn token_owner(&self, token: &str) -> Option<&str> {
        self.access_tokens.get(token).map(|t| t.shop.as_str())
    }

    // ---- Admin API data ----------------------------------------------------------------------

    /// The Admin API side of `shop`, created empty on first use (seeding may precede install).
    pub fn admin(&mut self, shop: &str) -> &mut ShopAdmin {
        self.admin
            .entry(shop.to_owned())
            .or_insert_with(ShopAdmin::new)
    }

    /// Read-only view of the Admin API side of `shop`, if it was ever used.
    pub fn admin_ref(&self, shop: &str) -> Option<&ShopAdmin> {
        self.admin.get(shop)
    }

    // ---- counting and logging ----------------------------------------------------------------

    /// Counts a token-endpoint call and logs it.
    pub fn record_token_call(
        &mut self,
        shop: Option<&str>,
        kind: GrantKind,
        outcome: Result<(), &SimError>,
        now: DateTime<Utc>,
    ) {
        if let Some(shop) = shop {
            let calls = self.calls.entry(shop.to_owned()).or_default();
            match (kind, outcome) {
                (_, Err(_)) => calls.failed += 1,
                (GrantKind::Exchange, Ok(())) => calls.exchanges += 1,
                (GrantKind::Refresh, Ok(())) => calls.refreshes += 1,
                (GrantKind::Other, Ok(())) => {}
            }
        }
        let outcome = match outcome {
            Ok(()) => "ok".to_owned(),
            Err(e) => e.oauth_code().unwrap_or("error").to_owned(),
        };
        self.push_log(kind.event(), shop, outcome, now);
    }

    pub fn token_calls(&self, shop: &str) -> TokenCalls {
        self.calls.get(shop).copied().unwrap_or_default()
    }

    pub fn push_log(
        &mut self,
        event: &str,
        shop: Option<&str>,
        outcome: String,
        now: DateTime<Utc>,
    ) {
        if self.log.len() == LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(LogEntry {
            at: now,
            event: event.to_owned(),
            shop: shop.map(str::to_owned),
            outcome,
        });
    }

    pub fn log(&self) -> Vec<LogEntry> {
        self.log.iter().cloned().collect()
    }

    pub fn push_flow_delivery(&mut self, result: FlowDeliveryResult) {
        if self.flow_deliveries.len() == LOG_CAPACITY {
            self.flow_deliveries.pop_front();
        }
        self.flow_deliveries.push_back(result);
    }

    pub fn flow_deliveries(&self) -> Vec<FlowDeliveryResult> {
        self.flow_deliveries.iter().cloned().collect()
    }
}

/// Numeric id of a shop, derived from its domain (FNV-1a, folded into 11 digits) so the same
/// shop has the same id in every simulator instance and in every payload built for it.
pub fn shop_id_for(shop: &str) -> u64 {
    10_000_000_000 + fnv1a(shop.as_bytes()) % 90_000_000_000
}

/// Id of the app installation on a shop (the `id` of `app/scopes_update`), derived like
/// [`shop_id_for`] but distinct from it.
pub fn app_installation_id_for(shop: &str) -> u64 {
    10_000_000_000 + fnv1a(format!("app-installation:{shop}").as_bytes()) % 90_000_000_000
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The shop's handle: `keel-demo` for `keel-demo.myshopify.com`.
pub fn shop_handle(shop: &str) -> &str {
    shop.split('.').next().unwrap_or(shop)
}

/// `Keel Demo` for `keel-demo.myshopify.com`.
pub fn shop_display_name(shop: &str) -> String {
    shop_handle(shop)
        .split(['-', '_'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn new_shop(shop: &str, now: DateTime<Utc>) -> ShopInfo {
    ShopInfo {
        shop: shop.to_owned(),
        id: shop_id_for(shop),
        name: shop_display_name(shop),
        email: format!("owner@{}.example", shop_handle(shop)),
        scopes: Vec::new(),
        installed: false,
        installed_at: now,
        uninstalled_at: None,
    }
}

/// `now + d`, saturating instead of panicking on absurd configured lifetimes.
pub(crate) fn after(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// 32 lowercase hex digits (128 random bits), the shape of Shopify's token suffixes.
fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}
