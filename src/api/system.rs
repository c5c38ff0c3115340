//! Operational endpoints: health, Prometheus metrics, the category list and the OpenAPI
//! document.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;

/// Health of the server.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
    /// Version of gridscope.
    pub version: &'static str,
    /// Grids loaded.
    pub grids: usize,
    /// Reports stored.
    pub reports: i64,
}

/// Is the server up, with its grids and storage?
#[utoipa::path(get, path = "/health", tag = "system", responses((status = 200, body = Health)))]
pub async fn health(State(state): State<Arc<AppState>>) -> Result<Json<Health>, ApiError> {
    let (reports, _) = state.store.read_async(crate::store::query::counts).await?;
    Ok(Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        grids: state.in_force().set().len(),
        reports,
    }))
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// One category with its time limit.
#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryInfo {
    /// Id, e.g. `matter:06002`.
    pub id: String,
    /// Major class name.
    pub major_name: String,
    /// Class name.
    pub name: String,
    /// Time limit in working hours.
    pub limit_hours: f64,
}

/// The GB/T 47678.5 categories reports may name, with their time limits.
#[utoipa::path(get, path = "/api/v1/categories", tag = "reports",
    responses((status = 200, body = Vec<CategoryInfo>)))]
pub async fn categories(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Vec<CategoryInfo>>, ApiError> {
    caller.may_read_public(&state)?;
    Ok(Json(
        state
            .catalog
            .classes()
            .iter()
            .map(|c| CategoryInfo {
                id: c.id.to_string(),
                major_name: c.major_name.clone(),
                name: c.name.clone(),
                limit_hours: state.rules.limit_minutes(c.id) as f64 / 60.0,
            })
            .collect(),
    ))
}

/// The OpenAPI 3 document of this API.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "system",
    responses((status = 200, description = "OpenAPI 3.1 document", body = Object)))]
pub async fn openapi(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    Json(state.openapi.clone())
}
