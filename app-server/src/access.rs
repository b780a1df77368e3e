//! A usable offline access token for a shop, whoever asks (admin pages, jobs, Flow actions).
//!
//! - **Install**: on an authenticated admin request, a session token is exchanged for an
//!   expiring offline token when none is stored or the stored one expires within 5 minutes.
//! - **Refresh**: before use when the token expires within 5 minutes, and once after Shopify
//!   answers 401. Shopify rotates the refresh token on every refresh, so two refreshes racing
//!   with the same refresh token could leave the loser's pair stored and the winner's lost.
//!   Refresh is therefore single-flight per shop: an in-process mutex (no polling between tasks
//!   of one replica) plus a lease row in the database (between replicas). The new pair is
//!   written in the statement that releases the lease.
//! - Tokens are sealed with [`Cipher`] before they reach the store; the associated data binds
//!   each ciphertext to its shop and field.

use crate::clock::DynClock;
use crate::secrets::{Cipher, SecretsError};
use crate::shopify::admin::{Token, TokenError, TokenSource};
use crate::shopify::oauth::{self, AppCredentials, OAuthError, OfflineToken};
use crate::shopify::session_token::SessionToken;
use crate::shopify::{Endpoint, ShopDomain};
use crate::store::{DynStore, NewToken, RefreshClaim, StoreError, TokenRecord};
use chrono::Duration;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Refresh (or re-exchange) when the token expires within this window.
pub const REFRESH_MARGIN: Duration = Duration::minutes(5);
/// How long a refresh lease lasts; longer than the token endpoint's request timeout so a
/// lease never expires under a refresher that is still waiting for Shopify.
pub const REFRESH_LEASE: Duration = Duration::seconds(30);
/// How long a caller waits for another replica's refresh before giving up with a retryable error.
const WAIT_FOR_OTHER_REFRESH: std::time::Duration = std::time::Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("Keel is not installed on this shop")]
    NotInstalled,
    #[error("the shop must open Keel again to re-authorise it")]
    NeedsReauth,
    #[error("Shopify refused the session token")]
    InvalidSessionToken,
    #[error("another refresh of this shop's token is still running")]
    RefreshBusy,
    #[error(transparent)]
    OAuth(OAuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
}

/// A plaintext access token with the stored version it came from.
#[derive(Clone)]
pub struct AccessToken {
    pub token: String,
    pub version: i64,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

pub struct Access {
    store: DynStore,
    cipher: Cipher,
    endpoint: Endpoint,
    creds: AppCredentials,
    clock: DynClock,
    /// Identifies this process as a refresh-lease holder.
    holder: String,
    local: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Access {
    pub fn new(
        store: DynStore,
        cipher: Cipher,
        endpoint: Endpoint,
        creds: AppCredentials,
        clock: DynClock,
    ) -> Self {
        Self {
            store,
            cipher,
            endpoint,
            creds,
            clock,
            holder: format!("keel-{}", uuid::Uuid::new_v4().simple()),
            local: Mutex::new(HashMap::new()),
        }
    }

    fn local_lock(&self, shop: &ShopDomain) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.local.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(shop.as_str().to_owned()).or_default().clone()
    }

    fn seal(&self, shop: &ShopDomain, t: &OfflineToken) -> Result<NewToken, SecretsError> {
        Ok(NewToken {
            access_token: self
                .cipher
                .seal(t.access_token.as_bytes(), &format!("{shop}:access"))?,
            access_expires_at: t.expires_at,
            refresh_token: t
                .refresh_token
                .as_ref()
                .map(|r| self.cipher.seal(r.as_bytes(), &format!("{shop}:refresh")))
                .transpose()?,
            refresh_expires_at: t.refresh_token_expires_at,
            scope: t.scope.clone(),
        })
    }

    fn open_access(
        &self,
        shop: &ShopDomain,
        rec: &TokenRecord,
    ) -> Result<AccessToken, SecretsError> {
        Ok(AccessToken {
            token: self
                .cipher
                .open_string(&rec.token.access_token, &format!("{shop}:access"))?,
            version: rec.version,
        })
    }

    fn expiring(&self, rec: &TokenRecord) -> bool {
        rec.token
            .access_expires_at
            .is_some_and(|at| at - self.clock.now() < REFRESH_MARGIN)
    }

    /// On an authenticated admin request: make sure the shop has a fresh token, exchanging the
    /// session token when it has none (first load, reinstall, re-authorisation) or when the
    /// stored one is about to expire.
    pub async fn ensure_installed(&self, session: &SessionToken) -> Result<(), AccessError> {
        let shop = &session.shop;
        if let (Some(s), Some(rec)) = (
            self.store.shop(shop.as_str()).await?,
            self.store.token(shop.as_str()).await?,
        ) {
            if s.installed && !s.needs_reauth && !self.expiring(&rec) {
                return Ok(());
            }
        }
        let lock = self.local_lock(shop);
        let _single_flight = lock.lock().await;
        // Another task of this process may have exchanged while we waited.
        if let (Some(s), Some(rec)) = (
            self.store.shop(shop.as_str()).await?,
            self.store.token(shop.as_str()).await?,
        ) {
            if s.installed && !s.needs_reauth && !self.expiring(&rec) {
                return Ok(());
            }
        }
        let now = self.clock.now();
        let token = oauth::exchange(&self.endpoint, &self.creds, shop, &session.raw, now)
            .await
            .map_err(|e| match e {
                OAuthError::InvalidSubjectToken => AccessError::InvalidSessionToken,
                OAuthError::AppNotInstalled => AccessError::NotInstalled,
                other => AccessError::OAuth(other),
            })?;
        let sealed = self.seal(shop, &token)?;
        self.store.install_shop(shop.as_str(), &sealed, now).await?;
        tracing::info!(shop = %shop, scope = %token.scope, "offline token obtained by token exchange");
        Ok(())
    }

    /// A token to call Shopify with, refreshed first if it expires within 5 minutes.
    pub async fn access_token(&self, shop: &ShopDomain) -> Result<AccessToken, AccessError> {
        let rec = self.current(shop).await?;
        if !self.expiring(&rec) {
            return Ok(self.open_access(shop, &rec)?);
        }
        self.refresh_unless(shop, |rec| !self.expiring(rec)).await
    }

    /// Refresh after Shopify refused `used` with a 401 — unless someone already replaced it.
    pub async fn refresh_after_unauthorized(
        &self,
        shop: &ShopDomain,
        used: &AccessToken,
    ) -> Result<AccessToken, AccessError> {
        let used_version = used.version;
        self.refresh_unless(shop, |rec| rec.version != used_version)
            .await
    }

    async fn current(&self, shop: &ShopDomain) -> Result<TokenRecord, AccessError> {
        match self.store.shop(shop.as_str()).await? {
            None => return Err(AccessError::NotInstalled),
            Some(s) if !s.installed => return Err(AccessError::NotInstalled),
            Some(s) if s.needs_reauth => return Err(AccessError::NeedsReauth),
            Some(_) => {}
        }
        self.store
            .token(shop.as_str())
            .await?
            .ok_or(AccessError::NeedsReauth)
    }

    /// Single-flight refresh. `fresh` says whether a stored token already satisfies the caller
    /// (another task or replica refreshed meanwhile), in which case no call is made.
    async fn refresh_unless(
        &self,
        shop: &ShopDomain,
        fresh: impl Fn(&TokenRecord) -> bool,
    ) -> Result<AccessToken, AccessError> {
        let lock = self.local_lock(shop);
        let _single_flight = lock.lock().await;
        let started = tokio::time::Instant::now();
        loop {
            let rec = self.current(shop).await?;
            if fresh(&rec) {
                return Ok(self.open_access(shop, &rec)?);
            }
            let now = self.clock.now();
            match self
                .store
                .claim_token_refresh(shop.as_str(), &self.holder, now + REFRESH_LEASE, now)
                .await?
            {
                RefreshClaim::NoToken => return Err(AccessError::NeedsReauth),
                RefreshClaim::Busy => {
                    if started.elapsed() > WAIT_FOR_OTHER_REFRESH {
                        return Err(AccessError::RefreshBusy);
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                RefreshClaim::Claimed(rec) => {
                    if fresh(&rec) {
                        self.store
                            .finish_token_refresh(shop.as_str(), &self.holder, None, now)
                            .await?;
                        return Ok(self.open_access(shop, &rec)?);
                    }
                    return self.refresh_claimed(shop, &rec).await;
                }
            }
        }
    }

    async fn refresh_claimed(
        &self,
        shop: &ShopDomain,
        rec: &TokenRecord,
    ) -> Result<AccessToken, AccessError> {
        let now = self.clock.now();
        let release = |new: Option<NewToken>| async move {
            self.store
                .finish_token_refresh(shop.as_str(), &self.holder, new.as_ref(), self.clock.now())
                .await
        };
        let Some(sealed_refresh) = &rec.token.refresh_token else {
            // A legacy non-expiring token cannot be refreshed: only a new exchange helps.
            release(None).await?;
            self.store.mark_needs_reauth(shop.as_str(), now).await?;
            return Err(AccessError::NeedsReauth);
        };
        let refresh_token = self
            .cipher
            .open_string(sealed_refresh, &format!("{shop}:refresh"))?;
        match oauth::refresh(&self.endpoint, &self.creds, shop, &refresh_token, now).await {
            Ok(token) => {
                let sealed = self.seal(shop, &token)?;
                if !release(Some(sealed)).await? {
                    // Our lease expired under us and another holder took over; its write wins.
                    tracing::warn!(shop = %shop, "refresh lease lost; using the other holder's token");
                    return self
                        .current(shop)
                        .await
                        .and_then(|r| Ok(self.open_access(shop, &r)?));
                }
                tracing::info!(shop = %shop, "offline token refreshed");
                let stored = self.current(shop).await?;
                Ok(self.open_access(shop, &stored)?)
            }
            Err(OAuthError::InvalidGrant) => {
                release(None).await?;
                self.store
                    .mark_needs_reauth(shop.as_str(), self.clock.now())
                    .await?;
                tracing::warn!(shop = %shop, "refresh token refused; shop needs re-authorisation");
                Err(AccessError::NeedsReauth)
            }
            Err(e) => {
                release(None).await?;
                Err(AccessError::OAuth(e))
            }
        }
    }
}

/// The Admin client's view of tokens.
#[async_trait::async_trait]
impl TokenSource for Access {
    async fn token(&self, shop: &ShopDomain) -> Result<Token, TokenError> {
        let t = self.access_token(shop).await.map_err(token_error)?;
        Ok(Token {
            value: t.token,
            version: t.version,
        })
    }

    async fn refresh_after_unauthorized(
        &self,
        shop: &ShopDomain,
        used: &Token,
    ) -> Result<Token, TokenError> {
        let used = AccessToken {
            token: used.value.clone(),
            version: used.version,
        };
        let t = Access::refresh_after_unauthorized(self, shop, &used)
            .await
            .map_err(token_error)?;
        Ok(Token {
            value: t.token,
            version: t.version,
        })
    }

    async fn needs_reauthorization(&self, shop: &ShopDomain) {
        tracing::warn!(shop = %shop, "Shopify refused a freshly refreshed token; shop needs re-authorisation");
        if let Err(e) = self
            .store
            .mark_needs_reauth(shop.as_str(), self.clock.now())
            .await
        {
            tracing::error!(shop = %shop, error = %crate::errors::error_chain(&e), "could not mark the shop for re-authorisation");
        }
    }
}

fn token_error(e: AccessError) -> TokenError {
    match e {
        AccessError::NotInstalled => TokenError::NotInstalled,
        AccessError::NeedsReauth => TokenError::NeedsReauthorization,
        other => TokenError::Unavailable(crate::errors::error_chain(&other)),
    }
}
