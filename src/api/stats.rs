//! `/api/v1/stats`: governance KPIs for any grid and time window, with period-over-period
//! comparison. Answers are cached per query and data version, so a repeated question costs a
//! lookup until a report changes.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Duration, DurationRound, Months, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::extract::{QueryParams, parse_category_list, parse_channel, parse_grid};
use crate::grid::code::GridCode;
use crate::measure::area_m2;
use crate::stats::kpi::{Grouping, KpiCounts, KpiSummary, grouped, summary};
use crate::store::query::ReportFilter;

/// Which reports the statistics cover, and how to group them.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct KpiQuery {
    /// Grid code at any level (district, 1, 2, 3, micro, exclusive); default: the whole city.
    pub grid: Option<String>,
    /// Reported at or after (RFC 3339; default: 30 days before `to`).
    pub from: Option<DateTime<Utc>>,
    /// Reported before (RFC 3339; default: now, rounded up to the minute).
    pub to: Option<DateTime<Utc>>,
    /// Categories or class prefixes, comma-separated: `matter:06,component:01001`.
    pub category: Option<String>,
    /// Intake channel.
    pub channel: Option<String>,
    /// Series: `hour`, `day`, `week` or `month` (local time). Breakdowns: `category`, `major`
    /// or `channel`. Rankings: the KPI to rank by (`reports`, `closure_rate`,
    /// `on_time_rate`, `satisfaction_rate`, `overdue`...).
    pub by: Option<String>,
    /// Rankings: `desc` (default, best first for rates) or `asc`.
    pub order: Option<String>,
    /// Rankings: how many (default 10, at most 1000).
    pub limit: Option<usize>,
}

/// KPIs of one area and window.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpiAnswer {
    /// The area: a grid's code, name, level and area, or the city.
    #[schema(value_type = Object)]
    pub area: Value,
    /// The window (from inclusive, to exclusive).
    #[schema(value_type = Object)]
    pub window: Value,
    /// The KPIs in the window.
    pub current: KpiSummary,
    /// Reports per km² in the window.
    pub per_km2: Option<f64>,
    /// 环比: the window of the same length just before (without times to close).
    pub previous_period: KpiSummary,
    /// 同比: the same window a year earlier (without times to close).
    pub year_ago: KpiSummary,
}

/// The window asked for: `to` defaults to now rounded up to the minute, `from` to 30 days
/// before it.
fn window(q: &KpiQuery, now: DateTime<Utc>) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    window_between(q.from, q.to, now)
}

/// The window from `from` to `to`, with the defaults of [`window`].
pub(super) fn window_between(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let to = match to {
        Some(t) => t,
        // Rounded up, so the answer is the same all minute long and includes this minute.
        None => now.duration_trunc(Duration::minutes(1)).unwrap_or(now) + Duration::minutes(1),
    };
    let from = from.unwrap_or(to - Duration::days(30));
    if from >= to {
        return Err(ApiError::invalid("from", "from must be before to"));
    }
    Ok((from, to))
}

/// 404 unless `grid` (when given) is a grid in force.
pub(super) fn known_grid(state: &AppState, grid: Option<&GridCode>) -> Result<(), ApiError> {
    match grid {
        Some(code) if state.in_force().set().id_of(code).is_none() => {
            Err(ApiError::not_found(format!("no grid with code {code}")).at("grid"))
        }
        _ => Ok(()),
    }
}

/// The area asked for, described: a grid with its area in km², or the whole city.
pub(super) fn area(state: &AppState, grid: Option<&GridCode>) -> Result<Value, ApiError> {
    let grids = state.in_force();
    let set = grids.set();
    Ok(match grid {
        Some(code) => {
            let id = set.id_of(code).ok_or_else(|| {
                ApiError::not_found(format!("no grid with code {code}")).at("grid")
            })?;
            let g = set.grid(id);
            serde_json::json!({
                "code": g.code.as_str(), "name": g.name, "level": g.level(),
                "area_km2": (area_m2(&g.geometry) / 1e4).round() / 100.0,
            })
        }
        None => {
            let km2: f64 = set
                .ids_at(crate::Level::District)
                .map(|id| area_m2(&set.grid(id).geometry) / 1e6)
                .sum();
            serde_json::json!({"code": "city", "name": "全市", "level": "city", "area_km2": km2.round()})
        }
    })
}

fn filter_of(q: &KpiQuery) -> Result<(ReportFilter, Option<GridCode>), ApiError> {
    let grid = parse_grid(q.grid.as_deref())?;
    let categories = parse_category_list(q.category.as_deref())?;
    Ok((
        ReportFilter {
            grid: grid.clone(),
            categories,
            channel: q.channel.as_deref().map(parse_channel).transpose()?,
            ..ReportFilter::default()
        },
        grid,
    ))
}

/// Governance KPIs (结案率, 按期结案率, 满意率, 立案率, 返工率, 延期率, overdue, time to close,
/// reports per km²) for a grid at any level and a time window, with 环比 and 同比.
///
/// Definitions, over the reports reported in the window: **due** = accepted and closed or past
/// their deadline; **结案率** = closed / due; **按期结案率** = closed no later than their
/// deadline / due; **满意率** = rated satisfied or basically satisfied / rated; **立案率** =
/// accepted / reports; **返工率** = reworked / closed; **延期率** = extended / accepted;
/// **overdue** = open past their deadline now. A rate with nothing to divide by is null.
#[utoipa::path(get, path = "/api/v1/stats/kpi", tag = "stats",
    params(KpiQuery),
    responses((status = 200, body = KpiAnswer), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn kpi(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    QueryParams(q): QueryParams<KpiQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.may_read_public(&state)?;
    if q.by.is_some() || q.order.is_some() || q.limit.is_some() {
        return Err(ApiError::invalid(
            "by",
            "by, order and limit belong to series, breakdowns and rankings",
        ));
    }
    let (filter, grid) = filter_of(&q)?;
    let now = Utc::now();
    let (from, to) = window(&q, now)?;
    known_grid(&state, grid.as_ref())?;
    let key = format!("{q:?}|{from}|{to}|{}", state.store.data_version());
    if let Some(hit) = state.stats_cache.get(&key).await {
        return Ok(Json((*hit).clone()));
    }
    let area = area(&state, grid.as_ref())?;
    let span = to - from;
    let year = |t: DateTime<Utc>| t.checked_sub_months(Months::new(12)).unwrap_or(t);
    let windows = [(from, to), (from - span, from), (year(from), year(to))];
    // The three windows run at once, each on its own connection: one scan's worth of waiting.
    let answers =
        futures_util::future::try_join_all(windows.iter().enumerate().map(|(i, &(f, t))| {
            let w = ReportFilter {
                from: Some(f),
                to: Some(t),
                ..filter.clone()
            };
            state.store.read_async(move |c| summary(c, &w, now, i == 0))
        }))
        .await?;
    let km2 = area["area_km2"].as_f64().unwrap_or(0.0);
    let answer = KpiAnswer {
        per_km2: (km2 > 0.0)
            .then(|| (answers[0].counts.reports as f64 / km2 * 100.0).round() / 100.0),
        area,
        window: serde_json::json!({"from": from, "to": to}),
        current: answers[0],
        previous_period: answers[1],
        year_ago: answers[2],
    };
    let value =
        serde_json::to_value(&answer).map_err(|e| ApiError::internal("encoding KPIs", &e))?;
    state.stats_cache.insert(key, Arc::new(value.clone())).await;
    Ok(Json(value))
}

/// One group's KPIs in a series, breakdown or ranking.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpiRow {
    /// The group: a time bucket's start, a category, class or channel, or a grid code.
    pub key: String,
    /// A readable name where there is one (category, class or grid names).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The KPIs of the group.
    pub kpis: KpiSummary,
}

/// Runs a grouped KPI query for `q`, cached like the others.
async fn grouped_rows(
    state: &Arc<AppState>,
    q: &KpiQuery,
    by: Grouping,
    filter: ReportFilter,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
) -> Result<Vec<KpiRow>, ApiError> {
    let key = format!("{q:?}|{from}|{to}|{by:?}|{}", state.store.data_version());
    if let Some(hit) = state.stats_cache.get(&key).await {
        return serde_json::from_value::<Vec<(String, KpiCounts)>>((*hit).clone())
            .map(|rows| name_rows(state, by, rows))
            .map_err(|e| ApiError::internal("reading a cached answer", &e));
    }
    let now = Utc::now();
    let filter = ReportFilter {
        from: Some(from),
        to: Some(to),
        ..filter
    };
    let mut rows: Vec<(String, KpiCounts)> = state
        .store
        .read_async(move |c| grouped(c, by, &filter, now))
        .await?
        .into_iter()
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let cached = serde_json::to_value(&rows).map_err(|e| ApiError::internal("caching", &e))?;
    state.stats_cache.insert(key, Arc::new(cached)).await;
    Ok(name_rows(state, by, rows))
}

fn name_rows(state: &AppState, by: Grouping, rows: Vec<(String, KpiCounts)>) -> Vec<KpiRow> {
    let grids = state.in_force();
    let set = grids.set();
    rows.into_iter()
        .map(|(key, counts)| {
            let name = match by {
                Grouping::Grid(_) => GridCode::parse(&key)
                    .ok()
                    .and_then(|c| set.id_of(&c))
                    .map(|id| set.grid(id).name.to_string()),
                Grouping::Category => key
                    .parse()
                    .ok()
                    .and_then(|id| state.catalog.get(id))
                    .map(|c| c.name.clone()),
                Grouping::MajorClass => state
                    .catalog
                    .classes()
                    .iter()
                    .find(|c| c.id.to_string().starts_with(&key))
                    .map(|c| c.major_name.clone()),
                Grouping::Channel | Grouping::Time(_) => None,
            };
            KpiRow {
                key,
                name,
                kpis: KpiSummary::from(counts),
            }
        })
        .collect()
}

/// KPIs over time: one row per `hour`, `day`, `week` or `month` (local time, UTC+8) of the
/// window, oldest first; buckets without reports are left out.
#[utoipa::path(get, path = "/api/v1/stats/series", tag = "stats",
    params(KpiQuery),
    responses((status = 200, body = Vec<KpiRow>), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn series(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    QueryParams(q): QueryParams<KpiQuery>,
) -> Result<Json<Vec<KpiRow>>, ApiError> {
    caller.may_read_public(&state)?;
    let bucket = match q.by.as_deref().unwrap_or("day") {
        "hour" => "hour",
        "day" => "day",
        "week" => "week",
        "month" => "month",
        _ => return Err(ApiError::invalid("by", "one of hour, day, week, month")),
    };
    let (filter, grid) = filter_of(&q)?;
    known_grid(&state, grid.as_ref())?;
    let w = window(&q, Utc::now())?;
    Ok(Json(
        grouped_rows(&state, &q, Grouping::Time(bucket), filter, w).await?,
    ))
}

/// KPIs per category, major class or channel, busiest first.
#[utoipa::path(get, path = "/api/v1/stats/breakdown", tag = "stats",
    params(KpiQuery),
    responses((status = 200, body = Vec<KpiRow>), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn breakdown(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    QueryParams(q): QueryParams<KpiQuery>,
) -> Result<Json<Vec<KpiRow>>, ApiError> {
    caller.may_read_public(&state)?;
    let by = match q.by.as_deref().unwrap_or("major") {
        "category" => Grouping::Category,
        "major" => Grouping::MajorClass,
        "channel" => Grouping::Channel,
        _ => return Err(ApiError::invalid("by", "one of category, major, channel")),
    };
    let (filter, grid) = filter_of(&q)?;
    known_grid(&state, grid.as_ref())?;
    let w = window(&q, Utc::now())?;
    let mut rows = grouped_rows(&state, &q, by, filter, w).await?;
    rows.sort_by_key(|r| std::cmp::Reverse(r.kpis.counts.reports));
    Ok(Json(rows))
}

/// The value a ranking sorts by.
fn rank_value(by: &str, k: &KpiSummary) -> Option<Option<f64>> {
    Some(match by {
        "reports" => Some(k.counts.reports as f64),
        "overdue" => Some(k.counts.overdue as f64),
        "closure_rate" => k.closure_rate,
        "on_time_rate" => k.on_time_rate,
        "satisfaction_rate" => k.satisfaction_rate,
        "acceptance_rate" => k.acceptance_rate,
        "rework_rate" => k.rework_rate,
        "extension_rate" => k.extension_rate,
        _ => return None,
    })
}

/// The children of a grid (or the districts of the city) ranked by a KPI: top or bottom N.
/// Children without reports rank with zero counts and no rates; grids without a value for the
/// KPI come last.
#[utoipa::path(get, path = "/api/v1/stats/ranking", tag = "stats",
    params(KpiQuery),
    responses((status = 200, body = Vec<KpiRow>), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn ranking(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    QueryParams(q): QueryParams<KpiQuery>,
) -> Result<Json<Vec<KpiRow>>, ApiError> {
    caller.may_read_public(&state)?;
    let by = q.by.clone().unwrap_or_else(|| "closure_rate".into());
    if rank_value(&by, &KpiSummary::default()).is_none() {
        return Err(ApiError::invalid(
            "by",
            "one of reports, overdue, closure_rate, on_time_rate, satisfaction_rate, acceptance_rate, rework_rate, extension_rate",
        ));
    }
    let ascending = match q.order.as_deref().unwrap_or("desc") {
        "asc" => true,
        "desc" => false,
        _ => return Err(ApiError::invalid("order", "asc or desc")),
    };
    let limit = q.limit.unwrap_or(10).clamp(1, 1000);
    let (filter, grid) = filter_of(&q)?;
    known_grid(&state, grid.as_ref())?;
    let level = match &grid {
        None => crate::Level::District,
        Some(g) => match g.level().child() {
            Some(l) if l != crate::Level::Micro || g.level() == crate::Level::Three => l,
            _ => {
                return Err(ApiError::invalid(
                    "grid",
                    "a grid with children: district, 1, 2 or 3",
                ));
            }
        },
    };
    let w = window(&q, Utc::now())?;
    let found = grouped_rows(&state, &q, Grouping::Grid(level), filter, w).await?;
    let grids = state.in_force();
    let set = grids.set();
    let children: Vec<crate::GridId> = match &grid {
        None => set.ids_at(crate::Level::District).collect(),
        Some(g) => set
            .id_of(g)
            .map(|id| set.children(id).to_vec())
            .unwrap_or_default(),
    };
    let mut by_code: std::collections::HashMap<String, KpiRow> =
        found.into_iter().map(|r| (r.key.clone(), r)).collect();
    let mut rows: Vec<KpiRow> = children
        .into_iter()
        .map(|id| {
            let g = set.grid(id);
            by_code.remove(g.code.as_str()).unwrap_or_else(|| KpiRow {
                key: g.code.as_str().to_string(),
                name: Some(g.name.to_string()),
                kpis: KpiSummary::default(),
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        let (va, vb) = (
            rank_value(&by, &a.kpis).flatten(),
            rank_value(&by, &b.kpis).flatten(),
        );
        match (va, vb) {
            (Some(x), Some(y)) => {
                let o = x.total_cmp(&y);
                if ascending { o } else { o.reverse() }
            }
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.key.cmp(&b.key),
        }
        .then_with(|| a.key.cmp(&b.key))
    });
    rows.truncate(limit);
    Ok(Json(rows))
}
