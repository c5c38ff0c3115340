//! API keys: who may call what. A key is shown once when created; only its SHA-256 hash is
//! stored, so a copy of the database does not leak working keys.

use chrono::{DateTime, Utc};
use duckdb::Connection;
use duckdb::types::Value;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::StoreError;
use super::writer::ts;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A reporting app: create reports, assign points, read its own reports.
    Reporter,
    /// An operation centre: lifecycle transitions inside its scope, read everything.
    Operator,
    /// Read everything.
    Analyst,
    /// Everything, including keys and grids.
    Admin,
}

impl Role {
    /// The snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Reporter => "reporter",
            Role::Operator => "operator",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        [Role::Reporter, Role::Operator, Role::Analyst, Role::Admin]
            .into_iter()
            .find(|r| r.name() == s)
    }
}

/// A stored key (without the secret).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiKey {
    /// Public id, shown in histories as the actor.
    pub id: String,
    /// Who holds it, e.g. `郑好拍 app` or `金水区城运中心`.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// For operators: the grid-code prefix of their area (`410105` = 金水区).
    pub scope: Option<String>,
    /// Requests per second allowed (the server default when absent).
    pub rate_per_sec: Option<u32>,
    /// When created.
    pub created_at: DateTime<Utc>,
    /// When revoked; a revoked key is refused.
    pub revoked_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub(crate) hash: String,
}

impl ApiKey {
    /// The SHA-256 of a secret, as stored (lowercase hex).
    pub fn hash_secret(secret: &str) -> String {
        hex(&Sha256::digest(secret.as_bytes()))
    }

    /// The stored hash of this key's secret.
    pub fn hash(&self) -> &str {
        &self.hash
    }
}

/// What to create a key with.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// Who holds it.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// For operators: the grid-code prefix of their area.
    #[serde(default)]
    pub scope: Option<String>,
    /// Requests per second allowed.
    #[serde(default)]
    pub rate_per_sec: Option<u32>,
}

/// Lowercase hex of some bytes.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex(&buf)
}

/// Creates a key; returns it with its secret, which is not stored and cannot be shown again.
pub fn create(conn: &Connection, new: &NewKey) -> Result<(ApiKey, String), StoreError> {
    let id = format!("k{}", random_hex(4));
    let secret = format!("gs_{}", random_hex(24));
    let key = ApiKey {
        id,
        name: new.name.clone(),
        role: new.role,
        scope: new.scope.clone(),
        rate_per_sec: new.rate_per_sec,
        created_at: Utc::now(),
        revoked_at: None,
        hash: ApiKey::hash_secret(&secret),
    };
    conn.execute(
        "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
        duckdb::params![
            key.id,
            key.name,
            key.role.name(),
            key.scope,
            key.hash,
            key.rate_per_sec,
            ts(key.created_at),
        ],
    )?;
    Ok((key, secret))
}

/// Every key, revoked ones included.
pub fn all(conn: &Connection) -> Result<Vec<ApiKey>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, name, role, scope, key_hash, rate_per_sec, created_at, revoked_at \
         FROM api_keys ORDER BY created_at",
    )?;
    let rows = stmt.query_map([], |r| {
        let role: String = r.get(2)?;
        Ok(ApiKey {
            id: r.get(0)?,
            name: r.get(1)?,
            role: Role::parse(&role).unwrap_or(Role::Reporter),
            scope: r.get(3)?,
            hash: r.get(4)?,
            rate_per_sec: r.get(5)?,
            created_at: r.get(6)?,
            revoked_at: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Revokes a key; returns whether it existed.
pub fn revoke(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    let n = conn.execute(
        "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        duckdb::params![ts(Utc::now()), Value::Text(id.to_string())],
    )?;
    Ok(n > 0)
}
