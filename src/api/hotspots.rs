//! `/api/v1/stats/hotspots`: where reports cluster (Getis-Ord Gi* over the H3 cells covering an
//! area) and how that clustering moves over time (emerging hot spots). Answers are cached per
//! query and data version, like the KPIs.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Duration, Utc};
use h3o::{CellIndex, Resolution};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::extract::{QueryParams, parse_category_list, parse_channel};
use super::stats::{area, known_grid, window_between};
use crate::grid::code::GridCode;
use crate::stats::hotspots::{Emerging, GiStar, Pattern, classify, cover, gi_star, neighbours};
use crate::store::query::{ReportFilter, h3_counts};

/// Which reports, over which cells.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HotspotQuery {
    /// Grid code at any level: the cells whose centres lie in it; default: the whole city.
    pub grid: Option<String>,
    /// Reported at or after (RFC 3339; default: 30 days before `to`). Emerging hot spots:
    /// ignored (the steps end at `to`).
    pub from: Option<DateTime<Utc>>,
    /// Reported before (RFC 3339; default: now, rounded up to the minute).
    pub to: Option<DateTime<Utc>>,
    /// Categories or class prefixes, comma-separated.
    pub category: Option<String>,
    /// Intake channel.
    pub channel: Option<String>,
    /// H3 resolution of the cells, 6 to 10 (default 8: about 0.7 km² a cell).
    pub res: Option<u8>,
    /// Every cell, not only the significant (or patterned) ones.
    pub all: Option<bool>,
    /// Emerging hot spots: the length of a time step, `day` or `week` (default).
    pub step: Option<String>,
    /// Emerging hot spots: how many steps, 3 to 52 (default 8).
    pub steps: Option<usize>,
}

/// The H3 cells covering an area at one resolution, with each cell's neighbours; kept in
/// [`AppState::cell_spaces`] since grids change rarely and covering takes a while.
pub struct CellSpace {
    cells: Vec<CellIndex>,
    neighbours: Vec<Vec<u32>>,
}

/// What both analyses need: the cells, their neighbours, the filter and the window.
struct Space {
    res: u8,
    cells: Arc<CellSpace>,
    filter: ReportFilter,
    grid: Option<GridCode>,
    window: (DateTime<Utc>, DateTime<Utc>),
}

async fn space(state: &Arc<AppState>, q: &HotspotQuery) -> Result<Space, ApiError> {
    let res = q.res.unwrap_or(8);
    let resolution = Resolution::try_from(res)
        .ok()
        .filter(|_| crate::store::record::H3_RESOLUTIONS.contains(&res))
        .ok_or_else(|| ApiError::invalid("res", "an H3 resolution from 6 to 10"))?;
    let grid = q
        .grid
        .as_deref()
        .map(|g| GridCode::parse(g).map_err(|e| ApiError::invalid("grid", e.to_string())))
        .transpose()?;
    known_grid(state, grid.as_ref())?;
    let window = window_between(q.from, q.to, Utc::now())?;
    let filter = ReportFilter {
        grid: grid.clone(),
        categories: parse_category_list(q.category.as_deref())?,
        channel: q.channel.as_deref().map(parse_channel).transpose()?,
        ..ReportFilter::default()
    };
    let cache_key = format!("{grid:?}|{res}|{}", state.assigner.grids().len());
    let cells = match state.cell_spaces.get(&cache_key).await {
        Some(hit) => hit,
        None => {
            let st = Arc::clone(state);
            let grid = grid.clone();
            let computed = tokio::task::spawn_blocking(move || {
                let set = st.assigner.grids();
                let polygons: Vec<&geo::MultiPolygon<f64>> = match &grid {
                    Some(code) => set
                        .id_of(code)
                        .map(|id| &set.grid(id).geometry)
                        .into_iter()
                        .collect(),
                    None => set
                        .ids_at(crate::Level::District)
                        .map(|id| &set.grid(id).geometry)
                        .collect(),
                };
                let cells = cover(&polygons, resolution)?;
                let neighbours = neighbours(&cells);
                Ok::<_, crate::stats::hotspots::CoverError>(CellSpace { cells, neighbours })
            })
            .await
            .map_err(|e| ApiError::internal("hot spots", &e))?
            .map_err(|e| ApiError::internal("hot spots", &e))?;
            let computed = Arc::new(computed);
            state
                .cell_spaces
                .insert(cache_key, Arc::clone(&computed))
                .await;
            computed
        }
    };
    Ok(Space {
        res,
        cells,
        filter,
        grid,
        window,
    })
}

/// Reports per cell of `space` in `[from, to)`, in the order of `space.cells`.
fn counts_in(
    conn: &duckdb::Connection,
    space_cells: &[CellIndex],
    filter: &ReportFilter,
    res: u8,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
) -> Result<Vec<f64>, crate::store::StoreError> {
    let window = ReportFilter {
        from: Some(from),
        to: Some(to),
        ..filter.clone()
    };
    let found: HashMap<u64, u64> = h3_counts(conn, &window, res, 1)?.into_iter().collect();
    Ok(space_cells
        .iter()
        .map(|c| found.get(&u64::from(*c)).copied().unwrap_or(0) as f64)
        .collect())
}

fn cached_key(
    state: &AppState,
    what: &str,
    q: &HotspotQuery,
    window: (DateTime<Utc>, DateTime<Utc>),
) -> String {
    format!(
        "{what}|{q:?}|{}|{}|{}",
        window.0,
        window.1,
        state.store.data_version()
    )
}

/// Getis-Ord Gi* hot and cold spots over the H3 cells covering an area, for a window.
///
/// Each cell's neighbours are the six cells around it (binary weights, the cell itself
/// included). `z` is the standardised Gi*, `p` its two-sided p-value under the normal
/// approximation, `bin` the confidence bin (±3: 99%, ±2: 95%, ±1: 90%). Cells without reports
/// count as zero. By default only significant cells are listed, hottest first; `all=true` lists
/// every cell. Anonymous readers get no count for cells with fewer than `privacy_k` reports.
#[utoipa::path(get, path = "/api/v1/stats/hotspots", tag = "stats",
    params(HotspotQuery),
    responses((status = 200, description = "cells with z, p and bin", body = Object),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn hotspots(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    QueryParams(q): QueryParams<HotspotQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.may_read_public(&state)?;
    if q.step.is_some() || q.steps.is_some() {
        return Err(ApiError::invalid(
            "step",
            "step and steps belong to /api/v1/stats/hotspots/emerging",
        ));
    }
    let space = space(&state, &q).await?;
    let key = cached_key(&state, "gi", &q, space.window);
    let public = matches!(caller, Caller::Anonymous);
    if let Some(hit) = state.stats_cache.get(&format!("{key}|{public}")).await {
        return Ok(Json((*hit).clone()));
    }
    let Space {
        res,
        cells: space_cells,
        filter,
        grid,
        window,
    } = space;
    // Measured only on a cache miss: a cached answer does not pay for the area.
    let area = area(&state, grid.as_ref())?;
    let c = Arc::clone(&space_cells);
    let values = state
        .store
        .read_async(move |conn| counts_in(conn, &c.cells, &filter, res, window))
        .await?;
    let gi = gi_star(&values, &space_cells.neighbours);
    let cells = &space_cells.cells;
    let k = if public {
        state.config.tiles.privacy_k
    } else {
        1
    };
    let mut listed: Vec<(usize, &GiStar)> = gi
        .iter()
        .enumerate()
        .filter(|(_, g)| q.all.unwrap_or(false) || g.bin != 0)
        .collect();
    listed.sort_by(|a, b| b.1.z.total_cmp(&a.1.z));
    let mut bins = [0usize; 7];
    for g in &gi {
        bins[(g.bin + 3) as usize] += 1;
    }
    let features: Vec<Value> = listed
        .into_iter()
        .map(|(i, g)| {
            let n = values[i] as u64;
            json!({
                "cell": cells[i].to_string(),
                "count": (n == 0 || n >= k).then_some(n),
                "z": (g.z * 1e4).round() / 1e4,
                "p": g.p,
                "bin": g.bin,
            })
        })
        .collect();
    let answer = json!({
        "area": area,
        "window": {"from": window.0, "to": window.1},
        "res": res,
        "cells": cells.len(),
        "reports": values.iter().sum::<f64>() as u64,
        "bins": {
            "cold_99": bins[0], "cold_95": bins[1], "cold_90": bins[2], "not_significant": bins[3],
            "hot_90": bins[4], "hot_95": bins[5], "hot_99": bins[6],
        },
        "features": features,
    });
    state
        .stats_cache
        .insert(format!("{key}|{public}"), Arc::new(answer.clone()))
        .await;
    Ok(Json(answer))
}

/// Emerging hot spots: Gi* in each of `steps` time steps ending at `to`, a Mann-Kendall trend
/// of each cell's z-scores, and the cell's class (ArcGIS Pro's definitions): `new`,
/// `consecutive`, `intensifying`, `persistent`, `diminishing`, `sporadic`, `oscillating`,
/// `historical` hot or cold spots. Lists cells with a pattern (or every cell with `all=true`).
#[utoipa::path(get, path = "/api/v1/stats/hotspots/emerging", tag = "stats",
    params(HotspotQuery),
    responses((status = 200, description = "cells with their pattern and trend", body = Object),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn emerging(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    QueryParams(q): QueryParams<HotspotQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.may_read_public(&state)?;
    if q.from.is_some() {
        return Err(ApiError::invalid(
            "from",
            "emerging hot spots run `steps` steps back from `to`; give steps instead",
        ));
    }
    let step = match q.step.as_deref().unwrap_or("week") {
        "day" => Duration::days(1),
        "week" => Duration::weeks(1),
        _ => return Err(ApiError::invalid("step", "day or week")),
    };
    let steps = q.steps.unwrap_or(8);
    if !(3..=52).contains(&steps) {
        return Err(ApiError::invalid("steps", "from 3 to 52"));
    }
    let space = space(&state, &q).await?;
    let end = space.window.1;
    let key = cached_key(&state, "emerging", &q, (end - step * steps as i32, end));
    if let Some(hit) = state.stats_cache.get(&key).await {
        return Ok(Json((*hit).clone()));
    }
    let Space {
        res,
        cells: space_cells,
        filter,
        grid,
        ..
    } = space;
    let area = area(&state, grid.as_ref())?;
    let c = Arc::clone(&space_cells);
    let windows: Vec<(DateTime<Utc>, DateTime<Utc>)> = (0..steps)
        .rev()
        .map(|i| {
            let to = end - step * i as i32;
            (to - step, to)
        })
        .collect();
    let w = windows.clone();
    let per_step = state
        .store
        .read_async(move |conn| {
            w.iter()
                .map(|&win| counts_in(conn, &c.cells, &filter, res, win))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    let gi: Vec<Vec<GiStar>> = per_step
        .iter()
        .map(|v| gi_star(v, &space_cells.neighbours))
        .collect();
    let cells = &space_cells.cells;
    let mut tally: HashMap<String, usize> = HashMap::new();
    let mut features = Vec::new();
    for (i, cell) in cells.iter().enumerate() {
        let history: Vec<GiStar> = gi.iter().map(|s| s[i]).collect();
        let class: Emerging = classify(&history);
        if class.pattern != Pattern::None {
            let name = format!("{}_{}", class.pattern.name(), class.kind);
            *tally.entry(name).or_default() += 1;
        }
        if q.all.unwrap_or(false) || class.pattern != Pattern::None {
            features.push(json!({
                "cell": cell.to_string(),
                "kind": class.kind,
                "pattern": class.pattern,
                "trend_z": (class.trend_z * 1e4).round() / 1e4,
                "trend_p": class.trend_p,
                "z": history.iter().map(|g| (g.z * 1e3).round() / 1e3).collect::<Vec<_>>(),
                "bins": history.iter().map(|g| g.bin).collect::<Vec<_>>(),
            }));
        }
    }
    let answer = json!({
        "area": area,
        "res": res,
        "cells": cells.len(),
        "steps": windows.iter().map(|(f, t)| json!({"from": f, "to": t})).collect::<Vec<_>>(),
        "patterns": tally,
        "features": features,
    });
    state
        .stats_cache
        .insert(key, Arc::new(answer.clone()))
        .await;
    Ok(Json(answer))
}
