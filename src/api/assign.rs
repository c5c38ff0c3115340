//! `/api/v1/assign`: which grid is responsible for a point, one at a time or in batches.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::answer::JsonAnswer;
use super::auth::Caller;
use super::error::{ApiError, coord_error};
use super::extract::{JsonBody, QueryParams, body_bytes, parse_json};
use super::grid_version::GridsInForce;
use crate::assign::view::{AssignmentView, FLAT_COLUMNS};
use crate::coords::{Crs, Wgs84Point};
use crate::store::keys::Role;

/// A location as a client sends it.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationInput {
    /// Longitude in `crs`.
    #[schema(example = 113.6607)]
    pub lon: f64,
    /// Latitude in `crs`.
    #[schema(example = 34.7486)]
    pub lat: f64,
    /// Coordinate system: wgs84 (default), gcj02, bd09 or cgcs2000.
    #[serde(default)]
    #[schema(value_type = String, example = "gcj02")]
    pub crs: Crs,
}

/// Query form of [`LocationInput`].
#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LocationQuery {
    /// Longitude in `crs`.
    pub lon: f64,
    /// Latitude in `crs`.
    pub lat: f64,
    /// Coordinate system: wgs84 (default), gcj02, bd09 or cgcs2000.
    pub crs: Option<String>,
}

/// A point with its assignment.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssignResponse {
    /// The point in WGS84.
    pub location: [f64; 2],
    /// Whether the point lay on a boundary between grids (resolved by the documented rule:
    /// the grid whose code sorts first).
    pub boundary: bool,
    /// The assignment.
    #[serde(flatten)]
    pub assignment: AssignmentView,
}

impl GridsInForce {
    /// Converts and checks a location, naming `field` in errors.
    pub fn locate(&self, loc: &LocationInput, field: &str) -> Result<Wgs84Point, ApiError> {
        let p = loc
            .crs
            .to_wgs84(loc.lon, loc.lat)
            .map_err(|e| coord_error(field, &e))?;
        let [w, s, e, n] = self.service_area;
        if p.lon() < w || p.lon() > e || p.lat() < s || p.lat() > n {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "outside_service_area",
                format!(
                    "({}, {}) in {} is far outside the city (served area {w:.3},{s:.3} to {e:.3},{n:.3}); \
                     check the coordinate system and the order of longitude and latitude",
                    loc.lon, loc.lat, loc.crs
                ),
            )
            .at(field));
        }
        Ok(p)
    }

    /// Assigns a located point and spells the answer out.
    pub fn assign_point(&self, p: Wgs84Point) -> AssignResponse {
        self.answer(p, &self.assigner.assign(p))
    }

    /// Spells out the assignment of a point.
    pub fn answer(&self, p: Wgs84Point, a: &crate::Assignment) -> AssignResponse {
        AssignResponse {
            location: [p.lon(), p.lat()],
            boundary: a.method == crate::Method::Boundary,
            assignment: self.assigner.view(a),
        }
    }
}

fn may_assign(caller: &Caller) -> Result<(), ApiError> {
    caller
        .require(
            &[Role::Reporter, Role::Operator, Role::Analyst],
            "assign points",
        )
        .map(|_| ())
}

/// Assign one point (query form, handy for links and load tests).
#[utoipa::path(get, path = "/api/v1/assign", tag = "assign",
    params(LocationQuery),
    responses((status = 200, body = AssignResponse), (status = 400, body = super::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn assign_get(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    QueryParams(q): QueryParams<LocationQuery>,
) -> Result<JsonAnswer<AssignResponse>, ApiError> {
    may_assign(&caller)?;
    let crs = match q.crs.as_deref() {
        None => Crs::Wgs84,
        Some(s) => s.parse().map_err(|e| coord_error("", &e).at("crs"))?,
    };
    let loc = LocationInput {
        lon: q.lon,
        lat: q.lat,
        crs,
    };
    let grids = state.in_force();
    let p = grids.locate(&loc, "location")?;
    Ok(JsonAnswer(grids.assign_point(p)))
}

/// Assign one point.
#[utoipa::path(post, path = "/api/v1/assign", tag = "assign",
    request_body = LocationInput,
    responses((status = 200, body = AssignResponse), (status = 400, body = super::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn assign_post(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    JsonBody(loc): JsonBody<LocationInput>,
) -> Result<JsonAnswer<AssignResponse>, ApiError> {
    may_assign(&caller)?;
    let grids = state.in_force();
    let p = grids.locate(&loc, "location")?;
    Ok(JsonAnswer(grids.assign_point(p)))
}

/// One point of a batch, with an optional id echoed back.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchPoint {
    /// The caller's id for the point, echoed in the answer.
    #[serde(default)]
    pub id: Option<String>,
    /// Longitude.
    pub lon: f64,
    /// Latitude.
    pub lat: f64,
    /// Coordinate system (default wgs84).
    #[serde(default)]
    #[schema(value_type = String)]
    pub crs: Crs,
}

/// One answer of a batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchAnswer {
    /// The caller's id, if given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The assignment.
    #[serde(flatten)]
    pub result: AssignResponse,
}

/// The body format of a batch, from its Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchFormat {
    /// A JSON array.
    Json,
    /// One JSON object per line.
    Ndjson,
    /// CSV with a header row.
    Csv,
}

impl BatchFormat {
    /// How a record is named in errors: `line 3` (NDJSON, 1-based), `row 4` (CSV, counting the
    /// header) or `[2]` (JSON).
    pub fn record_name(self, index: usize) -> String {
        match self {
            BatchFormat::Ndjson => format!("line {}", index + 1),
            BatchFormat::Csv => format!("row {}", index + 2),
            BatchFormat::Json => format!("[{index}]"),
        }
    }
}

/// Reads the batch format from the request's Content-Type (415 for anything else).
pub fn batch_format(req: &Request) -> Result<BatchFormat, ApiError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    match mime {
        "application/json" => Ok(BatchFormat::Json),
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" => {
            Ok(BatchFormat::Ndjson)
        }
        "text/csv" => Ok(BatchFormat::Csv),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "batch bodies are application/json (an array), application/x-ndjson or text/csv; got {ct:?}"
            ),
        )),
    }
}

/// 413 for a batch over the configured size.
pub fn batch_too_large(max: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "batch_too_large",
        format!("a batch may hold at most {max} records"),
    )
}

/// Parses a batch body of records in any [`BatchFormat`], naming the record at fault
/// (`[3].lat` for JSON, `line 4: ...` for NDJSON, `row 4: ...` for CSV).
pub fn parse_batch<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    format: BatchFormat,
    max: usize,
) -> Result<Vec<T>, ApiError> {
    let too_many = || batch_too_large(max);
    let items: Vec<T> = match format {
        BatchFormat::Json => parse_json(bytes)?,
        BatchFormat::Ndjson => {
            let mut out = Vec::new();
            for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                if out.len() >= max {
                    return Err(too_many());
                }
                let item =
                    parse_json(line).map_err(|e| e.prefix_field(&format!("line {}", i + 1)))?;
                out.push(item);
            }
            out
        }
        BatchFormat::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .trim(csv::Trim::All)
                .from_reader(bytes);
            let mut out = Vec::new();
            for (i, row) in reader.deserialize::<T>().enumerate() {
                if out.len() >= max {
                    return Err(too_many());
                }
                let row = row.map_err(|e| {
                    ApiError::invalid(format!("row {}", i + 2), format!("CSV: {e}"))
                })?;
                out.push(row);
            }
            out
        }
    };
    if items.len() > max {
        return Err(too_many());
    }
    if items.is_empty() {
        return Err(ApiError::invalid("body", "the batch is empty"));
    }
    Ok(items)
}

/// Assign a batch of points: a JSON array, NDJSON or CSV (`id,lon,lat,crs`); CSV in, CSV out.
#[utoipa::path(post, path = "/api/v1/assign/batch", tag = "assign",
    request_body(content = Vec<BatchPoint>, description = "JSON array, NDJSON or CSV with columns id,lon,lat,crs",
        content_type = "application/json"),
    responses((status = 200, body = Vec<BatchAnswer>), (status = 400, body = super::error::ErrorBody),
        (status = 413, body = super::error::ErrorBody), (status = 415, body = super::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn assign_batch(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    req: Request,
) -> Result<Response, ApiError> {
    may_assign(&caller)?;
    let format = batch_format(&req)?;
    let bytes = body_bytes(req).await?;
    let max = state.config.limits.batch_size;
    let grids = state.in_force();
    tokio::task::spawn_blocking(move || -> Result<Response, ApiError> {
        let points: Vec<BatchPoint> = parse_batch(&bytes, format, max)?;
        let mut located = Vec::with_capacity(points.len());
        for (i, bp) in points.iter().enumerate() {
            let loc = LocationInput {
                lon: bp.lon,
                lat: bp.lat,
                crs: bp.crs,
            };
            located.push(grids.locate(&loc, &format.record_name(i))?);
        }
        let assignments = grids.assigner.assign_batch(&located);
        if format == BatchFormat::Csv {
            let mut w = csv::Writer::from_writer(Vec::new());
            let mut header = vec!["id", "lon", "lat"];
            header.extend(FLAT_COLUMNS);
            let io = |e: csv::Error| ApiError::internal("writing CSV", &e);
            w.write_record(&header).map_err(io)?;
            for ((bp, p), a) in points.iter().zip(&located).zip(&assignments) {
                let mut rec = vec![
                    bp.id.clone().unwrap_or_default(),
                    format!("{:.7}", p.lon()),
                    format!("{:.7}", p.lat()),
                ];
                rec.extend(grids.assigner.view(a).flat());
                w.write_record(&rec).map_err(io)?;
            }
            let body = w
                .into_inner()
                .map_err(|e| ApiError::internal("writing CSV", &e))?;
            return Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response());
        }
        let answers: Vec<BatchAnswer> = points
            .into_iter()
            .zip(&located)
            .zip(&assignments)
            .map(|((bp, p), a)| BatchAnswer {
                id: bp.id,
                result: grids.answer(*p, a),
            })
            .collect();
        Ok(Json(answers).into_response())
    })
    .await
    .map_err(|e| ApiError::internal("batch assignment", &e))?
}
