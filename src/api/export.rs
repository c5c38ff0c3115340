//! `/api/v1/export`: files for analysts, for any filter. Reports (points), heat (H3 cells with
//! report counts) and KPIs (grid polygons of one level with their governance KPIs), each as
//! GeoParquet, CSV or GeoJSON, written to a temporary file and streamed from it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::extract::{QueryParams, parse_bbox, parse_category_list, parse_channel, parse_grid};
use super::reports::parse_statuses;
use super::stats::{known_grid, window_between};
use super::tiles::parse_kpi_level;
use crate::Level;
use crate::export::aggregates::{heat_table, kpi_table};
use crate::export::{FeatureTable, FileFormat};
use crate::grid::code::GridCode;
use crate::stats::kpi::per_grid;
use crate::store::keys::Role;
use crate::store::query::{ReportFilter, export, h3_counts};
use crate::store::record::H3_RESOLUTIONS;

/// A temporary file removed when dropped.
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn temp_path(ext: &str) -> std::path::PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "gridscope-export-{}-{}.{ext}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// What an export holds. Each parameter names the exports it applies to; any other is refused.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// All: a grid code at any level. Reports and heat: the reports inside it; KPIs: the grids
    /// inside it.
    pub grid: Option<String>,
    /// Reports: a status, or several separated by commas.
    pub status: Option<String>,
    /// All: categories or class prefixes, comma-separated (`matter:06,component:01001`).
    pub category: Option<String>,
    /// All: intake channel.
    pub channel: Option<String>,
    /// All: reported at or after (RFC 3339). Heat and KPIs default to 30 days before `to`;
    /// reports to all time.
    pub from: Option<DateTime<Utc>>,
    /// All: reported before (RFC 3339). Heat and KPIs default to now, rounded up to the minute.
    pub to: Option<DateTime<Utc>>,
    /// Reports and heat: `west,south,east,north` in WGS84.
    pub bbox: Option<String>,
    /// Reports: only open reports past their deadline (true) or the others (false).
    pub overdue: Option<bool>,
    /// Heat: the H3 resolution, 6 to 10 (default 8).
    pub res: Option<u8>,
    /// KPIs: the grid level, `district`, `1`, `2` or `3` (default: the level below `grid`, or
    /// districts).
    pub level: Option<String>,
}

/// The kinds of export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Reports,
    Heat,
    Kpi,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Reports => "reports",
            Kind::Heat => "heat",
            Kind::Kpi => "kpi",
        }
    }
}

/// The kind and format a file name asks for.
fn parse_file(file: &str) -> Result<(Kind, FileFormat), ApiError> {
    let parsed = file.split_once('.').and_then(|(stem, ext)| {
        let kind = match stem {
            "reports" => Kind::Reports,
            "heat" => Kind::Heat,
            "kpi" => Kind::Kpi,
            _ => return None,
        };
        Some((kind, FileFormat::from_extension(ext)?))
    });
    parsed.ok_or_else(|| {
        ApiError::not_found(format!(
            "no export {file:?}; there are reports, heat and kpi, each as .parquet, .csv or .geojson"
        ))
    })
}

/// 400 when a parameter that does not apply to `kind` was given.
fn refuse_others(q: &ExportQuery, kind: Kind) -> Result<(), ApiError> {
    let given = [
        ("status", q.status.is_some(), [Kind::Reports].as_slice()),
        ("overdue", q.overdue.is_some(), &[Kind::Reports]),
        ("bbox", q.bbox.is_some(), &[Kind::Reports, Kind::Heat]),
        ("res", q.res.is_some(), &[Kind::Heat]),
        ("level", q.level.is_some(), &[Kind::Kpi]),
    ];
    match given
        .iter()
        .find(|(_, set, kinds)| *set && !kinds.contains(&kind))
    {
        Some((field, _, kinds)) => {
            let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
            Err(ApiError::invalid(
                *field,
                format!("applies to {} exports only", names.join(" and ")),
            ))
        }
        None => Ok(()),
    }
}

/// The report filter of a query (window left to the caller).
fn filter_of(q: &ExportQuery) -> Result<ReportFilter, ApiError> {
    Ok(ReportFilter {
        grid: parse_grid(q.grid.as_deref())?,
        status: q
            .status
            .as_deref()
            .map(parse_statuses)
            .transpose()?
            .unwrap_or_default(),
        categories: parse_category_list(q.category.as_deref())?,
        channel: q.channel.as_deref().map(parse_channel).transpose()?,
        from: q.from,
        to: q.to,
        bbox: q.bbox.as_deref().map(parse_bbox).transpose()?,
        overdue: q.overdue,
        ..ReportFilter::default()
    })
}

/// Reports, heat or KPIs as a file: `reports.parquet`, `heat.geojson`, `kpi.csv`...
///
/// - **reports** (points, oldest first, with their grid chain, lifecycle times and H3 cell):
///   needs an operator, analyst or admin key.
/// - **heat**: one H3 cell per row with its hexagon and number of reports, for the window.
/// - **kpi**: one grid of a level per row with its polygon, area, KPI counts and rates (结案率,
///   按期结案率, 满意率...; definitions as in `/api/v1/stats/kpi`), for the window.
///
/// Heat and KPIs are readable as the other aggregates are; anonymous readers get no numbers for
/// cells or grids with fewer than k reports. Parquet files are GeoParquet 1.0 (WKB geometry,
/// WGS84) that DuckDB, GeoPandas, GDAL and Spark read; CSV carries the geometry as WKT in a
/// `wkt` column (reports keep `lon` and `lat`); GeoJSON is an RFC 7946 FeatureCollection.
#[utoipa::path(get, path = "/api/v1/export/{file}", tag = "stats",
    params(("file" = String, Path,
        description = "reports, heat or kpi, then .parquet, .csv or .geojson"), ExportQuery),
    responses((status = 200, description = "the file", content_type = "application/vnd.apache.parquet"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn file(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(file): Path<String>,
    QueryParams(q): QueryParams<ExportQuery>,
) -> Result<Response, ApiError> {
    let (kind, format) = parse_file(&file)?;
    match kind {
        Kind::Reports => {
            caller.require(&[Role::Operator, Role::Analyst], "export reports")?;
        }
        Kind::Heat | Kind::Kpi => caller.may_read_public(&state)?,
    }
    refuse_others(&q, kind)?;
    let mut filter = filter_of(&q)?;
    known_grid(&state, filter.grid.as_ref())?;
    let k = caller.min_count(&state);
    if kind != Kind::Reports {
        let (from, to) = window_between(q.from, q.to, Utc::now())?;
        (filter.from, filter.to) = (Some(from), Some(to));
    }
    let tmp = TempFile(temp_path(format.extension()));
    let path = tmp.0.clone();
    let rows = match kind {
        Kind::Reports => {
            state
                .store
                .read_async(move |c| export(c, &filter, format, &path))
                .await?
        }
        Kind::Heat => {
            let res = q.res.unwrap_or(8);
            if !H3_RESOLUTIONS.contains(&res) {
                return Err(ApiError::invalid("res", "an H3 resolution from 6 to 10"));
            }
            let counts = state
                .store
                .read_async(move |c| h3_counts(c, &filter, res, k))
                .await?;
            write_table(move || heat_table(&counts, res), format, path).await?
        }
        Kind::Kpi => {
            let grids = state.in_force();
            let (level, ids) = kpi_grids(grids.set(), filter.grid.as_ref(), q.level.as_deref())?;
            let now = Utc::now();
            let counts = state
                .store
                .read_async(move |c| per_grid(c, level, &filter, now))
                .await?;
            let table = move || kpi_table(grids.set(), &ids, &counts, k);
            write_table(table, format, path).await?
        }
    };
    let opened = tokio::fs::File::open(&tmp.0)
        .await
        .map_err(|e| ApiError::internal("reading an export", &e))?;
    // The file's name can go now: the open handle keeps its data until the stream ends.
    drop(tmp);
    let stream = tokio_util::io::ReaderStream::with_capacity(opened, 1 << 16);
    Response::builder()
        .header(header::CONTENT_TYPE, format.mime())
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file}\""),
        )
        .header("x-gridscope-rows", rows.to_string())
        .body(Body::from_stream(stream))
        .map_err(|e| ApiError::internal("building the response", &e))
}

/// The level of a KPI export and its grids (inside `parent` when given), in code order.
fn kpi_grids(
    set: &crate::GridSet,
    parent: Option<&GridCode>,
    level: Option<&str>,
) -> Result<(Level, Vec<crate::GridId>), ApiError> {
    let parent = parent.and_then(|code| set.id_of(code));
    let level = match (level, parent) {
        (Some(l), _) => parse_kpi_level(l)?,
        (None, None) => Level::District,
        (None, Some(p)) => set
            .grid(p)
            .level()
            .child()
            .filter(|l| *l != Level::Micro)
            .ok_or_else(|| {
                ApiError::invalid(
                    "grid",
                    "a grid with children (district, 1 or 2), or a level",
                )
            })?,
    };
    let mut ids = set.ids_within(level, parent);
    ids.retain(|&id| Some(id) != parent);
    if let (Some(p), true) = (parent, ids.is_empty()) {
        return Err(ApiError::invalid(
            "level",
            format!(
                "{} is a grid of level {}: no grids of level {} inside it",
                set.grid(p).code,
                set.grid(p).level().name(),
                level.name()
            ),
        ));
    }
    Ok((level, ids))
}

/// Builds a table and writes it to `path` off the async workers; returns the row count.
async fn write_table(
    build: impl FnOnce() -> FeatureTable + Send + 'static,
    format: FileFormat,
    path: std::path::PathBuf,
) -> Result<u64, ApiError> {
    tokio::task::spawn_blocking(move || build().write(format, &path))
        .await
        .map_err(|e| ApiError::internal("writing an export", &e))?
        .map_err(|e| ApiError::internal("writing an export", &e))
}
