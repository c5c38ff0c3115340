//! `/api/v1/stats/hotspots`: where reports cluster (Getis-Ord Gi* over the H3 cells covering an
//! area, or over its grids of one level) and how that clustering moves over time (emerging hot
//! spots). Answers are cached per query and data version, like the KPIs.

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
use super::extract::{QueryParams, parse_category_list, parse_channel, parse_grid};
use super::stats::{area, known_grid, window_between};
use super::tiles::parse_kpi_level;
use crate::Level;
use crate::grid::code::GridCode;
use crate::stats::hotspots::{
    Emerging, GiStar, Pattern, classify, cover, gi_star, neighbours, queen_neighbours,
};
use crate::stats::kpi::grid_column;
use crate::store::query::{ReportFilter, grouped_counts, h3_counts};

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
    /// Run over the grids of this level (`district`, `1`, `2` or `3`) inside the area instead
    /// of H3 cells; neighbours are the grids sharing a border point (queen contiguity).
    pub level: Option<String>,
    /// Every cell, not only the significant (or patterned) ones.
    pub all: Option<bool>,
    /// Emerging hot spots: the length of a time step, `day` or `week` (default).
    pub step: Option<String>,
    /// Emerging hot spots: how many steps, 3 to 52 (default 8).
    pub steps: Option<usize>,
}

/// The places of an analysis.
enum Places {
    /// H3 cells of one resolution.
    Cells { res: u8, cells: Vec<CellIndex> },
    /// Grids of one level: codes and names.
    Grids {
        level: Level,
        codes: Vec<String>,
        names: Vec<String>,
    },
}

/// The places covering an area (H3 cells of one resolution, or grids of one level), with each
/// place's neighbours; kept in [`AppState::place_spaces`] since grids change rarely and
/// covering takes a while.
pub struct PlaceSpace {
    places: Places,
    neighbours: Vec<Vec<u32>>,
}

impl PlaceSpace {
    fn len(&self) -> usize {
        self.neighbours.len()
    }

    /// The JSON fields naming place `i`.
    fn describe(&self, i: usize, into: &mut serde_json::Map<String, Value>) {
        match &self.places {
            Places::Cells { cells, .. } => {
                into.insert("cell".into(), json!(cells[i].to_string()));
            }
            Places::Grids { codes, names, .. } => {
                into.insert("grid".into(), json!(codes[i]));
                into.insert("name".into(), json!(names[i]));
            }
        }
    }

    /// The JSON fields describing the places: `res` and `cells`, or `level` and `grids`.
    fn summary(&self, into: &mut serde_json::Map<String, Value>) {
        match &self.places {
            Places::Cells { res, cells } => {
                into.insert("res".into(), json!(res));
                into.insert("cells".into(), json!(cells.len()));
            }
            Places::Grids { level, codes, .. } => {
                into.insert("level".into(), json!(level.name()));
                into.insert("grids".into(), json!(codes.len()));
            }
        }
    }
}

/// What both analyses need: the places, their neighbours, the filter and the window.
struct Space {
    places: Arc<PlaceSpace>,
    filter: ReportFilter,
    grid: Option<GridCode>,
    window: (DateTime<Utc>, DateTime<Utc>),
}

/// What an analysis runs over.
enum Unit {
    Cells(u8, Resolution),
    Grids(Level),
}

fn unit_of(q: &HotspotQuery) -> Result<Unit, ApiError> {
    match (&q.level, q.res) {
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "res",
            "give res for H3 cells or level for grids, not both",
        )),
        (Some(level), None) => Ok(Unit::Grids(parse_kpi_level(level)?)),
        (None, res) => {
            let res = res.unwrap_or(8);
            let resolution = Resolution::try_from(res)
                .ok()
                .filter(|_| crate::store::record::H3_RESOLUTIONS.contains(&res))
                .ok_or_else(|| ApiError::invalid("res", "an H3 resolution from 6 to 10"))?;
            Ok(Unit::Cells(res, resolution))
        }
    }
}

/// The places of `unit` in the area of `grid` (the city when none), with their neighbours.
fn places_in(
    state: &AppState,
    grid: Option<&GridCode>,
    unit: &Unit,
) -> Result<PlaceSpace, ApiError> {
    let grids = state.in_force();
    let set = grids.set();
    let area = grid.and_then(|code| set.id_of(code));
    match *unit {
        Unit::Cells(res, resolution) => {
            let polygons: Vec<&geo::MultiPolygon<f64>> = match area {
                Some(id) => vec![&set.grid(id).geometry],
                None => set
                    .ids_at(Level::District)
                    .map(|id| &set.grid(id).geometry)
                    .collect(),
            };
            let cells =
                cover(&polygons, resolution).map_err(|e| ApiError::internal("hot spots", &e))?;
            let neighbours = neighbours(&cells);
            Ok(PlaceSpace {
                places: Places::Cells { res, cells },
                neighbours,
            })
        }
        Unit::Grids(level) => {
            let ids = set.ids_within(level, area);
            if ids.is_empty() {
                return Err(ApiError::invalid(
                    "level",
                    format!("no grids of level {} in this area", level.name()),
                ));
            }
            let polygons: Vec<&geo::MultiPolygon<f64>> =
                ids.iter().map(|&id| &set.grid(id).geometry).collect();
            let neighbours = queen_neighbours(&polygons);
            Ok(PlaceSpace {
                places: Places::Grids {
                    level,
                    codes: ids
                        .iter()
                        .map(|&id| set.grid(id).code.as_str().to_string())
                        .collect(),
                    names: ids
                        .iter()
                        .map(|&id| set.grid(id).name.to_string())
                        .collect(),
                },
                neighbours,
            })
        }
    }
}

async fn space(state: &Arc<AppState>, q: &HotspotQuery) -> Result<Space, ApiError> {
    let unit = unit_of(q)?;
    let grid = parse_grid(q.grid.as_deref())?;
    known_grid(state, grid.as_ref())?;
    let window = window_between(q.from, q.to, Utc::now())?;
    let filter = ReportFilter {
        grid: grid.clone(),
        categories: parse_category_list(q.category.as_deref())?,
        channel: q.channel.as_deref().map(parse_channel).transpose()?,
        ..ReportFilter::default()
    };
    let unit_key = match &unit {
        Unit::Cells(res, _) => format!("res{res}"),
        Unit::Grids(level) => format!("level{}", level.name()),
    };
    let cache_key = format!("{grid:?}|{unit_key}|{}", state.in_force().version());
    let places = match state.place_spaces.get(&cache_key).await {
        Some(hit) => hit,
        None => {
            let st = Arc::clone(state);
            let area = grid.clone();
            let computed =
                tokio::task::spawn_blocking(move || places_in(&st, area.as_ref(), &unit))
                    .await
                    .map_err(|e| ApiError::internal("hot spots", &e))??;
            let computed = Arc::new(computed);
            state
                .place_spaces
                .insert(cache_key, Arc::clone(&computed))
                .await;
            computed
        }
    };
    Ok(Space {
        places,
        filter,
        grid,
        window,
    })
}

/// Reports per place of `space` in `[from, to)`, in the order of its places.
fn counts_in(
    conn: &duckdb::Connection,
    space: &PlaceSpace,
    filter: &ReportFilter,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
) -> Result<Vec<f64>, crate::store::StoreError> {
    let window = ReportFilter {
        from: Some(from),
        to: Some(to),
        ..filter.clone()
    };
    match &space.places {
        Places::Cells { res, cells } => {
            let found: HashMap<u64, u64> = h3_counts(conn, &window, *res, 1)?.into_iter().collect();
            Ok(cells
                .iter()
                .map(|c| found.get(&u64::from(*c)).copied().unwrap_or(0) as f64)
                .collect())
        }
        Places::Grids { level, codes, .. } => {
            let column = grid_column(*level).unwrap_or("district");
            let found: HashMap<String, u64> =
                grouped_counts(conn, column, "count(*)", Vec::new(), &window)?
                    .into_iter()
                    .map(|(code, n)| (code, n.first().copied().unwrap_or(0)))
                    .collect();
            Ok(codes
                .iter()
                .map(|c| found.get(c).copied().unwrap_or(0) as f64)
                .collect())
        }
    }
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
/// included). With `level`, the places are the area's grids of that level instead (`grid` and
/// `name` in place of `cell`), neighbours being the grids that share a border point with it. `z` is the standardised Gi*, `p` its two-sided p-value under the normal
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
        places,
        filter,
        grid,
        window,
    } = space;
    // Measured only on a cache miss: a cached answer does not pay for the area.
    let area = area(&state, grid.as_ref())?;
    let c = Arc::clone(&places);
    let values = state
        .store
        .read_async(move |conn| counts_in(conn, &c, &filter, window))
        .await?;
    let gi = gi_star(&values, &places.neighbours);
    let k = caller.min_count(&state);
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
            let mut feature = serde_json::Map::new();
            places.describe(i, &mut feature);
            feature.insert("count".into(), json!((n == 0 || n >= k).then_some(n)));
            feature.insert("z".into(), json!((g.z * 1e4).round() / 1e4));
            feature.insert("p".into(), json!(g.p));
            feature.insert("bin".into(), json!(g.bin));
            Value::Object(feature)
        })
        .collect();
    let mut answer = serde_json::Map::new();
    answer.insert("area".into(), area);
    answer.insert("window".into(), json!({"from": window.0, "to": window.1}));
    places.summary(&mut answer);
    answer.insert("reports".into(), json!(values.iter().sum::<f64>() as u64));
    answer.insert(
        "bins".into(),
        json!({
            "cold_99": bins[0], "cold_95": bins[1], "cold_90": bins[2], "not_significant": bins[3],
            "hot_90": bins[4], "hot_95": bins[5], "hot_99": bins[6],
        }),
    );
    answer.insert("features".into(), Value::Array(features));
    let answer = Value::Object(answer);
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
        places,
        filter,
        grid,
        ..
    } = space;
    let area = area(&state, grid.as_ref())?;
    let c = Arc::clone(&places);
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
                .map(|&win| counts_in(conn, &c, &filter, win))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    let gi: Vec<Vec<GiStar>> = per_step
        .iter()
        .map(|v| gi_star(v, &places.neighbours))
        .collect();
    let mut tally: HashMap<String, usize> = HashMap::new();
    let mut features = Vec::new();
    for i in 0..places.len() {
        let history: Vec<GiStar> = gi.iter().map(|s| s[i]).collect();
        let class: Emerging = classify(&history);
        if class.pattern != Pattern::None {
            let name = format!("{}_{}", class.pattern.name(), class.kind);
            *tally.entry(name).or_default() += 1;
        }
        if q.all.unwrap_or(false) || class.pattern != Pattern::None {
            let mut feature = serde_json::Map::new();
            places.describe(i, &mut feature);
            let fields = json!({
                "kind": class.kind,
                "pattern": class.pattern,
                "trend_z": (class.trend_z * 1e4).round() / 1e4,
                "trend_p": class.trend_p,
                "z": history.iter().map(|g| (g.z * 1e3).round() / 1e3).collect::<Vec<_>>(),
                "bins": history.iter().map(|g| g.bin).collect::<Vec<_>>(),
            });
            if let Value::Object(fields) = fields {
                feature.extend(fields);
            }
            features.push(Value::Object(feature));
        }
    }
    let mut answer = serde_json::Map::new();
    answer.insert("area".into(), area);
    places.summary(&mut answer);
    answer.insert(
        "steps".into(),
        json!(
            windows
                .iter()
                .map(|(f, t)| json!({"from": f, "to": t}))
                .collect::<Vec<_>>()
        ),
    );
    answer.insert("patterns".into(), json!(tally));
    answer.insert("features".into(), Value::Array(features));
    let answer = Value::Object(answer);
    state
        .stats_cache
        .insert(key, Arc::new(answer.clone()))
        .await;
    Ok(Json(answer))
}
