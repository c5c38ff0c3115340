//! `/api/v1/keys`: API keys, for admins.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::extract::JsonBody;
use crate::grid::code::GridCode;
use crate::store::keys::{self, ApiKey, NewKey, Role};

/// A new key with its secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    /// The key's record.
    #[serde(flatten)]
    pub key: ApiKey,
    /// The secret to send as `Authorization: Bearer <secret>`; not stored, not shown again.
    pub secret: String,
}

/// Create a key.
#[utoipa::path(post, path = "/api/v1/keys", tag = "keys", request_body = NewKey,
    responses((status = 201, body = CreatedKey), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    JsonBody(new): JsonBody<NewKey>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    caller.require(&[Role::Admin], "manage keys")?;
    if new.name.trim().is_empty() || new.name.len() > 200 {
        return Err(ApiError::invalid("name", "1 to 200 bytes"));
    }
    match (&new.role, &new.scope) {
        (_, Some(scope)) => {
            GridCode::parse(scope).map_err(|e| ApiError::invalid("scope", e.to_string()))?;
        }
        (Role::Operator, None) => {}
        _ => {}
    }
    if new.rate_per_sec == Some(0) {
        return Err(ApiError::invalid("rate_per_sec", "at least 1"));
    }
    let (key, secret) = state
        .store
        .read_async(move |conn| keys::create(conn, &new))
        .await?;
    state.reload_keys().await?;
    Ok((StatusCode::CREATED, Json(CreatedKey { key, secret })))
}

/// List keys (without secrets).
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys",
    responses((status = 200, body = Vec<ApiKey>), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Vec<ApiKey>>, ApiError> {
    caller.require(&[Role::Admin], "manage keys")?;
    Ok(Json(state.store.read_async(keys::all).await?))
}

/// Revoke a key.
#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "keys",
    params(("id" = String, Path, description = "Key id")),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn revoke(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(&[Role::Admin], "manage keys")?;
    let id2 = id.clone();
    if !state
        .store
        .read_async(move |conn| keys::revoke(conn, &id2))
        .await?
    {
        return Err(ApiError::not_found(format!("no active key with id {id}")));
    }
    state.reload_keys().await?;
    Ok(StatusCode::NO_CONTENT)
}
