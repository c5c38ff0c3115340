//! `/api/v1/stats/heat`: report counts per H3 cell for an area and window, the numbers behind
//! the heat tiles, for legends, charts and analysts' own maps. Cached per query and data
//! version, like the KPIs.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::extract::{QueryParams, parse_bbox, parse_category_list, parse_channel, parse_grid};
use super::stats::{known_grid, window_between};
use crate::store::query::{ReportFilter, h3_counts};
use crate::store::record::H3_RESOLUTIONS;

/// Which reports, counted at which resolution.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HeatQuery {
    /// H3 resolution, 6 to 10 (default 8: about 0.7 km² a cell).
    pub res: Option<u8>,
    /// Grid code at any level: only reports inside it; default: the whole city.
    pub grid: Option<String>,
    /// `west,south,east,north` in WGS84: only reports inside it.
    pub bbox: Option<String>,
    /// Reported at or after (RFC 3339; default: 30 days before `to`).
    pub from: Option<DateTime<Utc>>,
    /// Reported before (RFC 3339; default: now, rounded up to the minute).
    pub to: Option<DateTime<Utc>>,
    /// Categories or class prefixes, comma-separated.
    pub category: Option<String>,
    /// Intake channel.
    pub channel: Option<String>,
}

/// Reports per H3 cell, busiest first: `{"res", "window", "cells", "reports", "max",
/// "features": [{"cell", "count"}]}`. Cells without reports are left out; anonymous readers do
/// not see cells with fewer than `privacy_k` reports (nor count them in the totals).
#[utoipa::path(get, path = "/api/v1/stats/heat", tag = "stats",
    params(HeatQuery),
    responses((status = 200, description = "cells with their report counts", body = Object),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn heat(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    QueryParams(q): QueryParams<HeatQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.may_read_public(&state)?;
    let res = q.res.unwrap_or(8);
    if !H3_RESOLUTIONS.contains(&res) {
        return Err(ApiError::invalid("res", "an H3 resolution from 6 to 10"));
    }
    let grid = parse_grid(q.grid.as_deref())?;
    known_grid(&state, grid.as_ref())?;
    let (from, to) = window_between(q.from, q.to, Utc::now())?;
    let filter = ReportFilter {
        grid,
        bbox: q.bbox.as_deref().map(parse_bbox).transpose()?,
        categories: parse_category_list(q.category.as_deref())?,
        channel: q.channel.as_deref().map(parse_channel).transpose()?,
        from: Some(from),
        to: Some(to),
        ..ReportFilter::default()
    };
    let public = matches!(caller, Caller::Anonymous);
    let key = format!(
        "heat|{q:?}|{from}|{to}|{public}|{}",
        state.store.data_version()
    );
    if let Some(hit) = state.stats_cache.get(&key).await {
        return Ok(Json((*hit).clone()));
    }
    let k = caller.min_count(&state);
    let mut counts = state
        .store
        .read_async(move |c| h3_counts(c, &filter, res, k))
        .await?;
    counts.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let features: Vec<Value> = counts
        .iter()
        .map(|&(cell, n)| json!({"cell": format!("{cell:x}"), "count": n}))
        .collect();
    let answer = json!({
        "res": res,
        "window": {"from": from, "to": to},
        "cells": counts.len(),
        "reports": counts.iter().map(|c| c.1).sum::<u64>(),
        "max": counts.first().map_or(0, |c| c.1),
        "features": features,
    });
    state
        .stats_cache
        .insert(key, Arc::new(answer.clone()))
        .await;
    Ok(Json(answer))
}
