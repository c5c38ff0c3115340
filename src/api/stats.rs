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
use super::extract::{QueryParams, parse_category_list, parse_channel};
use crate::grid::code::GridCode;
use crate::measure::area_m2;
use crate::stats::kpi::{KpiSummary, summary};
use crate::store::query::ReportFilter;

/// Which reports the KPIs cover.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct KpiQuery {
    /// Grid code at any level (district, 1, 2, 3, micro, exclusive); default: the whole city.
    pub grid: Option<String>,
    /// Reported at or after (RFC 3339; default: 30 days before `to`).
    pub from: Option<DateTime<Utc>>,
    /// Reported before (RFC 3339; default: now, to the minute).
    pub to: Option<DateTime<Utc>>,
    /// Categories or class prefixes, comma-separated: `matter:06,component:01001`.
    pub category: Option<String>,
    /// Intake channel.
    pub channel: Option<String>,
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
    /// 环比: the window of the same length just before.
    pub previous_period: KpiSummary,
    /// 同比: the same window a year earlier.
    pub year_ago: KpiSummary,
}

fn filter_of(q: &KpiQuery) -> Result<(ReportFilter, Option<GridCode>), ApiError> {
    let grid = q
        .grid
        .as_deref()
        .map(|g| GridCode::parse(g).map_err(|e| ApiError::invalid("grid", e.to_string())))
        .transpose()?;
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
    let (filter, grid) = filter_of(&q)?;
    let now = Utc::now();
    let to = match q.to {
        Some(t) => t,
        None => now.duration_trunc(Duration::minutes(1)).unwrap_or(now),
    };
    let from = q.from.unwrap_or(to - Duration::days(30));
    if from >= to {
        return Err(ApiError::invalid("from", "from must be before to"));
    }
    let set = state.assigner.grids();
    let area = match &grid {
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
    };
    let key = format!("{q:?}|{from}|{to}|{}", state.store.data_version());
    if let Some(hit) = state.stats_cache.get(&key).await {
        return Ok(Json((*hit).clone()));
    }
    let span = to - from;
    let year = |t: DateTime<Utc>| t.checked_sub_months(Months::new(12)).unwrap_or(t);
    let windows = [(from, to), (from - span, from), (year(from), year(to))];
    let answers = state
        .store
        .read_async(move |c| {
            windows
                .iter()
                .map(|&(f, t)| {
                    let w = ReportFilter {
                        from: Some(f),
                        to: Some(t),
                        ..filter.clone()
                    };
                    summary(c, &w, now)
                })
                .collect::<Result<Vec<_>, _>>()
        })
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
