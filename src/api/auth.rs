//! Who is calling: API keys (sent as `Authorization: Bearer <key>` or `X-API-Key: <key>`),
//! their roles and per-key rate limits. Anonymous callers are limited per client address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::AppState;
use super::error::ApiError;
use crate::store::keys::{ApiKey, Role};

/// A key that may be used, with its rate limiter.
pub struct Principal {
    /// The key.
    pub key: ApiKey,
    limiter: DefaultDirectRateLimiter,
}

/// The keys in force, by the hash of their secret.
pub struct KeyRing {
    by_hash: RwLock<HashMap<String, Arc<Principal>>>,
    default_rate: u32,
    anonymous: DefaultKeyedRateLimiter<IpAddr>,
    /// Tiles come in bursts of dozens per map view, so they have their own allowance.
    anonymous_tiles: DefaultKeyedRateLimiter<IpAddr>,
}

fn quota(per_sec: u32) -> Quota {
    let n = NonZeroU32::new(per_sec.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(n).allow_burst(n)
}

impl KeyRing {
    /// A ring of `keys` (revoked ones are left out), with request rates per second for keys
    /// that set none and for clients without a key (other requests, and tiles).
    pub fn new(
        keys: Vec<ApiKey>,
        default_rate: u32,
        anonymous_rate: u32,
        anonymous_tile_rate: u32,
    ) -> Self {
        let ring = KeyRing {
            by_hash: RwLock::new(HashMap::new()),
            default_rate,
            anonymous: RateLimiter::keyed(quota(anonymous_rate)),
            anonymous_tiles: RateLimiter::keyed(quota(anonymous_tile_rate)),
        };
        ring.replace(keys);
        ring
    }

    /// Replaces the keys in force (after a key is created or revoked).
    pub fn replace(&self, keys: Vec<ApiKey>) {
        let map = keys
            .into_iter()
            .filter(|k| k.revoked_at.is_none())
            .map(|k| {
                let limiter =
                    RateLimiter::direct(quota(k.rate_per_sec.unwrap_or(self.default_rate)));
                (
                    k.hash().to_string(),
                    Arc::new(Principal { key: k, limiter }),
                )
            })
            .collect();
        *self
            .by_hash
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = map;
    }

    fn find(&self, secret: &str) -> Option<Arc<Principal>> {
        let hash = ApiKey::hash_secret(secret);
        self.by_hash
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&hash)
            .cloned()
    }

    /// Forgets idle anonymous clients (called periodically to bound memory).
    pub fn prune(&self) {
        self.anonymous.retain_recent();
        self.anonymous_tiles.retain_recent();
    }
}

fn wait_seconds(not_until: &governor::NotUntil<governor::clock::QuantaInstant>) -> u64 {
    not_until
        .wait_time_from(DefaultClock::default().now())
        .as_secs()
        .max(1)
}

/// The caller of a request: a key, or anonymous.
#[derive(Clone)]
pub enum Caller {
    /// No key was sent.
    Anonymous,
    /// A valid key.
    Key(Arc<Principal>),
}

impl Caller {
    /// The key, or 401.
    pub fn key(&self) -> Result<&ApiKey, ApiError> {
        match self {
            Caller::Key(p) => Ok(&p.key),
            Caller::Anonymous => Err(ApiError::unauthorized(
                "this needs an API key (Authorization: Bearer <key> or X-API-Key: <key>)",
            )),
        }
    }

    /// The key if it has one of `roles`; 401 without a key, 403 with another role.
    pub fn require(&self, roles: &[Role], what: &str) -> Result<&ApiKey, ApiError> {
        let key = self.key()?;
        if key.role == Role::Admin || roles.contains(&key.role) {
            Ok(key)
        } else {
            Err(ApiError::forbidden(format!(
                "a {} key may not {what}",
                key.role.name()
            )))
        }
    }

    /// Permission to read analytical data: anyone when public reading is on, else any key.
    pub fn may_read_public(&self, state: &AppState) -> Result<(), ApiError> {
        if state.config.public_read {
            Ok(())
        } else {
            self.key().map(|_| ())
        }
    }

    /// The fewest reports a place must hold for this caller to see its count: the configured
    /// privacy threshold k for anonymous readers, 1 for any key.
    pub fn min_count(&self, state: &AppState) -> u64 {
        match self {
            Caller::Anonymous => state.config.tiles.privacy_k,
            Caller::Key(_) => 1,
        }
    }

    /// The actor name recorded in histories.
    pub fn actor(&self) -> String {
        match self {
            Caller::Key(p) => format!("{} ({})", p.key.name, p.key.id),
            Caller::Anonymous => "anonymous".into(),
        }
    }
}

fn presented_secret(parts: &Parts) -> Option<&str> {
    if let Some(v) = parts.headers.get(header::AUTHORIZATION) {
        let v = v.to_str().ok()?;
        return v.strip_prefix("Bearer ").map(str::trim);
    }
    parts.headers.get("x-api-key")?.to_str().ok().map(str::trim)
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let sent = parts.headers.contains_key(header::AUTHORIZATION)
            || parts.headers.contains_key("x-api-key");
        match presented_secret(parts) {
            Some(secret) => {
                let p = state
                    .keys
                    .find(secret)
                    .ok_or_else(|| ApiError::unauthorized("unknown or revoked API key"))?;
                p.limiter
                    .check()
                    .map_err(|n| ApiError::rate_limited(wait_seconds(&n)))?;
                Ok(Caller::Key(p))
            }
            None if sent => Err(ApiError::unauthorized(
                "malformed credentials: use Authorization: Bearer <key> or X-API-Key: <key>",
            )),
            None => {
                let ip = parts
                    .extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |c| c.0.ip());
                let limiter = if parts.uri.path().starts_with("/tiles/") {
                    &state.keys.anonymous_tiles
                } else {
                    &state.keys.anonymous
                };
                limiter
                    .check_key(&ip)
                    .map_err(|n| ApiError::rate_limited(wait_seconds(&n)))?;
                Ok(Caller::Anonymous)
            }
        }
    }
}
