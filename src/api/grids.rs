//! `/api/v1/grids`: grids as GeoJSON, one with its chain and children, or lists by level,
//! parent or bounding box.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use geo::{BoundingRect, Intersects};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::extract::{QueryParams, parse_bbox};
use crate::grid::code::{GridCode, Level};
use crate::grid::model::{GridId, GridSet};
use crate::measure::area_m2;

fn summary(set: &GridSet, id: GridId) -> Value {
    let g = set.grid(id);
    json!({"code": g.code.as_str(), "name": g.name, "level": g.level()})
}

fn feature(set: &GridSet, id: GridId, detail: bool) -> Value {
    let g = set.grid(id);
    let mut props = json!({
        "code": g.code.as_str(),
        "name": g.name,
        "level": g.level(),
        "parent": set.parent(id).map(|p| set.grid(p).code.as_str().to_string()),
        "valid_from": g.validity.from,
        "valid_to": g.validity.to,
        "area_m2": area_m2(&g.geometry).round(),
    });
    if let Some(k) = g.kind {
        props["kind"] = json!(k);
    }
    if detail {
        props["chain"] = Value::Array(set.chain(id).into_iter().map(|c| summary(set, c)).collect());
        props["children"] =
            Value::Array(set.children(id).iter().map(|&c| summary(set, c)).collect());
    }
    let bbox = g
        .geometry
        .bounding_rect()
        .map(|r| json!([r.min().x, r.min().y, r.max().x, r.max().y]));
    json!({
        "type": "Feature",
        "id": g.code.as_str(),
        "bbox": bbox,
        "properties": props,
        "geometry": geojson::Geometry::new(geojson::Value::from(&g.geometry)),
    })
}

/// Read one grid: a GeoJSON Feature with its chain of parents and its children.
#[utoipa::path(get, path = "/api/v1/grids/{code}", tag = "grids",
    params(("code" = String, Path, description = "Grid code, e.g. 410103001001001")),
    responses((status = 200, description = "GeoJSON Feature", body = Object),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(code): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.may_read_public(&state)?;
    let code = GridCode::parse(&code).map_err(|e| ApiError::invalid("code", e.to_string()))?;
    let grids = state.in_force();
    let id = grids
        .set()
        .id_of(&code)
        .ok_or_else(|| ApiError::not_found(format!("no grid with code {code}")))?;
    Ok(Json(feature(grids.set(), id, true)))
}

/// Filters of a grid listing.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GridQuery {
    /// Level: district, 1, 2, 3, micro or exclusive.
    pub level: Option<String>,
    /// Only children of this grid.
    pub parent: Option<String>,
    /// `west,south,east,north` in WGS84: grids intersecting it.
    pub bbox: Option<String>,
    /// At most this many (default 1000, at most 50000).
    pub limit: Option<usize>,
    /// Skip this many (for paging).
    pub offset: Option<usize>,
}

fn parse_level(s: &str) -> Result<Level, ApiError> {
    Level::ALL
        .into_iter()
        .find(|l| {
            l.name() == s
                || serde_json::to_value(l)
                    .ok()
                    .as_ref()
                    .and_then(Value::as_str)
                    == Some(s)
        })
        .ok_or_else(|| ApiError::invalid("level", "one of district, 1, 2, 3, micro, exclusive"))
}

/// List grids by level, parent or bounding box: a GeoJSON FeatureCollection.
#[utoipa::path(get, path = "/api/v1/grids", tag = "grids",
    params(GridQuery),
    responses((status = 200, description = "GeoJSON FeatureCollection", body = Object),
        (status = 400, body = ErrorBody)))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    QueryParams(q): QueryParams<GridQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.may_read_public(&state)?;
    let grids = state.in_force();
    let set = grids.set();
    let level = q.level.as_deref().map(parse_level).transpose()?;
    let parent = match &q.parent {
        Some(p) => {
            let code =
                GridCode::parse(p).map_err(|e| ApiError::invalid("parent", e.to_string()))?;
            Some(
                set.id_of(&code)
                    .ok_or_else(|| ApiError::not_found(format!("no grid with code {code}")))?,
            )
        }
        None => None,
    };
    let bbox = q
        .bbox
        .as_deref()
        .map(parse_bbox)
        .transpose()?
        .map(|[w, s, e, n]| geo::Rect::new(geo::coord! {x: w, y: s}, geo::coord! {x: e, y: n}));
    if level.is_none() && parent.is_none() && bbox.is_none() {
        return Err(ApiError::invalid(
            "level",
            "give at least one of level, parent or bbox",
        ));
    }
    let limit = q.limit.unwrap_or(1000);
    if limit == 0 || limit > 50_000 {
        return Err(ApiError::invalid("limit", "between 1 and 50000"));
    }
    let candidates: Vec<GridId> = match parent {
        Some(p) => set.children(p).to_vec(),
        None => match level {
            Some(l) => set.ids_at(l).collect(),
            None => (0..u32::try_from(set.len()).unwrap_or(u32::MAX)).collect(),
        },
    };
    let features: Vec<Value> = candidates
        .into_iter()
        .filter(|&id| level.is_none_or(|l| set.grid(id).level() == l))
        .filter(|&id| {
            bbox.is_none_or(|b| {
                let g = &set.grid(id).geometry;
                g.bounding_rect().is_some_and(|r| r.intersects(&b)) && g.intersects(&b)
            })
        })
        .skip(q.offset.unwrap_or(0))
        .take(limit)
        .map(|id| feature(set, id, false))
        .collect();
    Ok(Json(
        json!({"type": "FeatureCollection", "features": features}),
    ))
}
