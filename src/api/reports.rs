//! `/api/v1/reports`: create reports (one, or a batch), read one with its history, list with
//! filters and cursor paging, and move reports through their lifecycle.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::assign::{AssignResponse, LocationInput, batch_format, batch_too_large, parse_batch};
use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::extract::{
    JsonBody, QueryParams, body_bytes, parse_bbox, parse_category_prefix, parse_channel, parse_json,
};
use super::grid_version::GridsInForce;
use crate::assign::Assignment;
use crate::coords::Wgs84Point;
use crate::grid::code::GridCode;
use crate::report::intake::{ReportDraft, placement_codes, prepare, prepare_assigned};
use crate::report::{Action, Channel, ReportId, Status};
use crate::store::columns::PreparedReports;
use crate::store::keys::Role;
use crate::store::query::{self, ReportFilter};
use crate::store::record::{HistoryEntry, NewReport, PlacementCodes, RawLocation, ReportRecord};
use crate::store::writer::{ImportChunk, TransitionRequest};

/// Longest description accepted, in characters.
const MAX_DESCRIPTION: usize = 4000;
/// Most photos per report.
const MAX_PHOTOS: usize = 20;

/// A new report.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateReport {
    /// Intake channel: app, hotline_12345, police_110, patrol, video_ai, iot.
    #[schema(value_type = String, example = "app")]
    pub channel: Channel,
    /// GB/T 47678.5 class, `matter:NNNNN` or `component:NNNNN` (see `/api/v1/categories`).
    #[schema(example = "matter:06002")]
    pub category: String,
    /// What is wrong.
    #[serde(default)]
    pub description: String,
    /// Where, with its coordinate system.
    pub location: LocationInput,
    /// The reporting app's own reference (citizen id, ticket number).
    #[serde(default)]
    pub reporter_ref: Option<String>,
    /// Photo URLs (http or https).
    #[serde(default)]
    pub photos: Vec<String>,
    /// When it was reported (RFC 3339); default now. Not in the future.
    #[serde(default)]
    pub reported_at: Option<DateTime<Utc>>,
    /// Makes retries safe: a second request with the same key (from the same API key) returns
    /// the first report instead of creating another. The `Idempotency-Key` header works too.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// The answer to a create.
#[derive(Debug, Serialize, ToSchema)]
pub struct Created {
    /// The report's id.
    pub id: i64,
    /// `reported` for a new report.
    #[schema(value_type = String)]
    pub status: Status,
    /// When handling is due.
    pub deadline: DateTime<Utc>,
    /// Where it was assigned.
    pub assignment: AssignResponse,
    /// True when an earlier request with the same idempotency key created it.
    pub replayed: bool,
}

fn validate(
    state: &AppState,
    grids: &GridsInForce,
    r: CreateReport,
    header_key: Option<String>,
) -> Result<ReportDraft, ApiError> {
    let category = state
        .catalog
        .validate(&r.category)
        .map_err(|e| ApiError::invalid("category", e.to_string()))?;
    let location = grids.locate(&r.location, "location")?;
    if r.description.chars().count() > MAX_DESCRIPTION {
        return Err(ApiError::invalid(
            "description",
            format!("at most {MAX_DESCRIPTION} characters"),
        ));
    }
    if r.photos.len() > MAX_PHOTOS {
        return Err(ApiError::invalid(
            "photos",
            format!("at most {MAX_PHOTOS} photos"),
        ));
    }
    for (i, url) in r.photos.iter().enumerate() {
        let ok = (url.starts_with("https://") || url.starts_with("http://"))
            && url.len() <= 2048
            && !url.chars().any(char::is_whitespace);
        if !ok {
            return Err(ApiError::invalid(
                format!("photos[{i}]"),
                "must be an http(s) URL without spaces, at most 2048 bytes",
            ));
        }
    }
    if let Some(rr) = &r.reporter_ref
        && rr.len() > 200
    {
        return Err(ApiError::invalid("reporter_ref", "at most 200 bytes"));
    }
    if let Some(t) = r.reported_at {
        if t > Utc::now() + Duration::minutes(5) {
            return Err(ApiError::invalid("reported_at", "is in the future"));
        }
        if t < Utc::now() - Duration::days(3650) {
            return Err(ApiError::invalid(
                "reported_at",
                "is more than ten years ago",
            ));
        }
    }
    let idempotency_key = r.idempotency_key.or(header_key);
    if let Some(k) = &idempotency_key
        && (k.is_empty() || k.len() > 200)
    {
        return Err(ApiError::invalid(
            "idempotency_key",
            "must be 1 to 200 bytes",
        ));
    }
    Ok(ReportDraft {
        channel: r.channel,
        category,
        description: r.description,
        reporter_ref: r.reporter_ref,
        photos: r.photos,
        raw: RawLocation {
            lon: r.location.lon,
            lat: r.location.lat,
            crs: r.location.crs,
        },
        location,
        reported_at: r.reported_at,
        idempotency_key,
    })
}

fn may_create(caller: &Caller) -> Result<String, ApiError> {
    caller
        .require(&[Role::Reporter, Role::Operator], "create reports")
        .map(|k| k.id.clone())
}

/// Create a report. Answers 201 once the report is durable (200 when an idempotent retry
/// returns the report created earlier).
#[utoipa::path(post, path = "/api/v1/reports", tag = "reports",
    request_body = CreateReport,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = Created), (status = 200, body = Created, description = "idempotent replay"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateReport>,
) -> Result<Response, ApiError> {
    let creator = may_create(&caller)?;
    let header_key = headers
        .get("idempotency-key")
        .map(|v| {
            v.to_str()
                .map(str::to_string)
                .map_err(|_| ApiError::invalid("Idempotency-Key", "must be visible ASCII"))
        })
        .transpose()?;
    let grids = state.in_force();
    let draft = validate(&state, &grids, body, header_key)?;
    let location = draft.location;
    let (new, assignment) = prepare(&grids.assigner, &state.rules, draft, &creator, Utc::now());
    let deadline = new.deadline;
    let created = state.store.create(vec![new]).await?;
    let c = created
        .first()
        .copied()
        .ok_or_else(|| ApiError::internal("create", &"no outcome"))?;
    metrics::counter!("gridscope_reports_created_total").increment(u64::from(!c.replayed));
    let (status_code, deadline) = if c.replayed {
        let id = c.id;
        let earlier = state
            .store
            .read_async(move |conn| query::report(conn, id))
            .await?
            .ok_or_else(|| ApiError::internal("idempotent replay", &"report vanished"))?;
        (StatusCode::OK, earlier.deadline)
    } else {
        (StatusCode::CREATED, deadline)
    };
    let body = Created {
        id: c.id.0,
        status: Status::Reported,
        deadline,
        assignment: grids.answer(location, &assignment),
        replayed: c.replayed,
    };
    Ok((status_code, Json(body)).into_response())
}

/// The answer to a batch create.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchCreated {
    /// Reports written.
    pub created: usize,
    /// Records that matched an earlier idempotency key.
    pub replayed: usize,
    /// Ids in the order of the input.
    pub ids: Vec<i64>,
}

/// Import a batch of reports (JSON array, NDJSON or CSV). All or nothing: one bad record
/// refuses the batch, naming the record and field.
#[utoipa::path(post, path = "/api/v1/reports/batch", tag = "reports",
    request_body(content = Vec<CreateReport>, description = "JSON array or NDJSON of reports",
        content_type = "application/x-ndjson"),
    responses((status = 201, body = BatchCreated), (status = 400, body = ErrorBody),
        (status = 413, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_batch(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    req: Request,
) -> Result<Response, ApiError> {
    let creator = may_create(&caller)?;
    let format = batch_format(&req)?;
    if format == super::assign::BatchFormat::Csv {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "reports carry nested locations and photo lists: send a JSON array or NDJSON",
        ));
    }
    let bytes = body_bytes(req).await?;
    let max = state.config.limits.batch_size;
    let st = Arc::clone(&state);
    // Chunks go to the writer as soon as they are prepared, inside one transaction: storing
    // one overlaps preparing the next, and a bad record anywhere rolls back everything.
    let import = state.store.begin_import().await?;
    let chunks = import.sender();
    let prepared = tokio::task::spawn_blocking(move || {
        super::import_pool::run(|| {
            prepare_batch(&st, &bytes, format, max, &creator, &mut |prepared| {
                chunks
                    .send(ImportChunk::Reports(prepared))
                    .map_err(|_| ApiError::from(crate::store::StoreError::Closed))
            })
        })
    })
    .await
    .map_err(|e| ApiError::internal("batch", &e))
    .and_then(|r| r);
    if let Err(e) = prepared {
        import.abandon().await;
        return Err(e);
    }
    let created = import.finish().await?;
    let fresh = created.iter().filter(|c| !c.replayed).count();
    metrics::counter!("gridscope_reports_created_total").increment(fresh as u64);
    Ok((
        StatusCode::CREATED,
        Json(BatchCreated {
            created: fresh,
            replayed: created.len() - fresh,
            ids: created.iter().map(|c| c.id.0).collect(),
        }),
    )
        .into_response())
}

/// Records per chunk of a batch import.
const IMPORT_CHUNK: usize = 8192;

/// Records assigned together, in one call of the engine, while preparing a chunk.
const ASSIGN_BLOCK: usize = 512;

/// Parses, validates and prepares a batch on all cores, handing it to `emit` in chunks of
/// [`IMPORT_CHUNK`] with their columns built (NDJSON lines are parsed in parallel too). Building
/// and emitting one chunk overlaps preparing the next, and keeps that work off the single
/// writer thread. The first bad record (in input order) refuses the
/// batch; an error from `emit` (the store went away) stops it.
fn prepare_batch(
    state: &AppState,
    bytes: &[u8],
    format: super::assign::BatchFormat,
    max: usize,
    creator: &str,
    emit: &mut (dyn FnMut(PreparedReports) -> Result<(), ApiError> + Send),
) -> Result<(), ApiError> {
    use rayon::prelude::*;
    let now = Utc::now();
    let grids = state.in_force();
    let one = |i: usize, r: CreateReport| {
        validate(state, &grids, r, None).map_err(|e| e.prefix_field(&format.record_name(i)))
    };
    // Valid records (the first bad one, in input order, refuses the batch) are assigned in
    // blocks, where the engine overlaps the memory reads of many points.
    let place = |drafts: Vec<Result<ReportDraft, ApiError>>| {
        let drafts = drafts.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok(drafts
            .into_par_iter()
            .chunks(ASSIGN_BLOCK)
            .flat_map_iter(|block| {
                let points: Vec<Wgs84Point> = block.iter().map(|d| d.location).collect();
                let mut assigned = Vec::with_capacity(block.len());
                grids.assigner.assign_many(&points, &mut assigned);
                block
                    .into_iter()
                    .zip(assigned)
                    .map(|(d, a)| prepare_assigned(&state.rules, d, a, creator, now))
            })
            .collect())
    };
    // The grids the reports were assigned in name them in the stored columns.
    let mut emit = |chunk: Vec<NewReport<Assignment>>| {
        let codes: Vec<PlacementCodes<'_>> = chunk
            .iter()
            .map(|r| placement_codes(&grids.assigner, &r.placement))
            .collect();
        let prepared = PreparedReports::new(&chunk, &codes, now)
            .map_err(|e| ApiError::internal("batch columns", &e))?;
        emit(prepared)
    };
    // The chunk prepared last, emitted while the next one is prepared.
    let mut pending: Option<Vec<NewReport<Assignment>>> = None;
    match format {
        super::assign::BatchFormat::Ndjson => {
            let lines: Vec<(usize, &[u8])> = bytes
                .split(|&b| b == b'\n')
                .enumerate()
                .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
                .collect();
            if lines.len() > max {
                return Err(batch_too_large(max));
            }
            if lines.is_empty() {
                return Err(ApiError::invalid("body", "the batch is empty"));
            }
            for chunk in lines.chunks(IMPORT_CHUNK) {
                overlapped(&mut pending, &mut emit, || {
                    place(
                        chunk
                            .par_iter()
                            .with_min_len(256)
                            .map(|&(i, line)| {
                                parse_json::<CreateReport>(line)
                                    .map_err(|e| e.prefix_field(&format.record_name(i)))
                                    .and_then(|r| one(i, r))
                            })
                            .collect(),
                    )
                })?;
            }
        }
        _ => {
            let records: Vec<CreateReport> = parse_batch(bytes, format, max)?;
            let mut records = records.into_iter().enumerate().peekable();
            while records.peek().is_some() {
                let chunk: Vec<(usize, CreateReport)> =
                    records.by_ref().take(IMPORT_CHUNK).collect();
                overlapped(&mut pending, &mut emit, || {
                    place(
                        chunk
                            .into_par_iter()
                            .with_min_len(256)
                            .map(|(i, r)| one(i, r))
                            .collect(),
                    )
                })?;
            }
        }
    }
    pending.map_or(Ok(()), emit)
}

/// Prepares one chunk while emitting the one before (`pending`), then leaves this one pending.
fn overlapped<T: Send>(
    pending: &mut Option<Vec<T>>,
    emit: &mut (impl FnMut(Vec<T>) -> Result<(), ApiError> + Send),
    prepare: impl FnOnce() -> Result<Vec<T>, ApiError> + Send,
) -> Result<(), ApiError> {
    let previous = pending.take();
    let (prepared, emitted) = rayon::join(prepare, || previous.map_or(Ok(()), &mut *emit));
    emitted?;
    *pending = Some(prepared?);
    Ok(())
}

fn parse_id(raw: &str) -> Result<ReportId, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|&i| i > 0)
        .map(ReportId)
        .ok_or_else(|| {
            ApiError::invalid(
                "id",
                format!("report ids are positive integers, got {raw:?}"),
            )
        })
}

/// May the caller see this report? Reporter keys see their own only.
fn may_read(caller: &Caller, r: &ReportRecord) -> Result<(), ApiError> {
    let key = caller.key()?;
    if key.role == Role::Reporter && r.created_by != key.id {
        return Err(ApiError::not_found(format!("no report with id {}", r.id)));
    }
    Ok(())
}

/// A report with its full history.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportWithHistory {
    /// The report.
    #[serde(flatten)]
    pub report: ReportRecord,
    /// Every transition, oldest first.
    pub history: Vec<HistoryEntry>,
}

/// Read a report with its full history.
#[utoipa::path(get, path = "/api/v1/reports/{id}", tag = "reports",
    params(("id" = i64, Path, description = "Report id")),
    responses((status = 200, body = ReportWithHistory), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<ReportWithHistory>, ApiError> {
    caller.key()?;
    let id = parse_id(&raw)?;
    let found = state
        .store
        .read_async(move |conn| {
            Ok(match query::report(conn, id)? {
                Some(r) => Some((r, query::history(conn, id)?)),
                None => None,
            })
        })
        .await?;
    let (report, history) =
        found.ok_or_else(|| ApiError::not_found(format!("no report with id {id}")))?;
    may_read(&caller, &report)?;
    Ok(Json(ReportWithHistory { report, history }))
}

/// Filters of a listing.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Grid code at any level (district, level 1/2/3, micro, exclusive).
    pub grid: Option<String>,
    /// Status, or several separated by commas.
    pub status: Option<String>,
    /// A category (`matter:06002`) or a major class (`matter:06`).
    pub category: Option<String>,
    /// Intake channel.
    pub channel: Option<String>,
    /// Reported at or after (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Reported before (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// `west,south,east,north` in WGS84.
    pub bbox: Option<String>,
    /// Only open reports past their deadline (true) or the others (false).
    pub overdue: Option<bool>,
    /// Page size (default 100).
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of reports.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportPage {
    /// Reports, newest first.
    pub reports: Vec<ReportRecord>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Cursors are opaque to clients; this one encodes the last id seen.
fn encode_cursor(id: ReportId) -> String {
    format!("r{:x}", id.0)
}

fn decode_cursor(s: &str) -> Result<ReportId, ApiError> {
    s.strip_prefix('r')
        .and_then(|h| i64::from_str_radix(h, 16).ok())
        .filter(|&i| i > 0)
        .map(ReportId)
        .ok_or_else(|| ApiError::invalid("cursor", "not a cursor this server issued"))
}

/// Statuses separated by commas.
pub(super) fn parse_statuses(list: &str) -> Result<Vec<Status>, ApiError> {
    list.split(',')
        .map(|x| x.trim().parse::<Status>())
        .collect::<Result<_, _>>()
        .map_err(|e| ApiError::invalid("status", e.to_string()))
}

/// The store filter of a listing's query.
pub(super) fn parse_filter(q: &ListQuery) -> Result<ReportFilter, ApiError> {
    let mut f = ReportFilter::default();
    if let Some(g) = &q.grid {
        f.grid = Some(GridCode::parse(g).map_err(|e| ApiError::invalid("grid", e.to_string()))?);
    }
    if let Some(s) = &q.status {
        f.status = parse_statuses(s)?;
    }
    if let Some(c) = &q.category {
        f.categories = vec![parse_category_prefix(c)?];
    }
    f.channel = q.channel.as_deref().map(parse_channel).transpose()?;
    f.from = q.from;
    f.to = q.to;
    f.bbox = q.bbox.as_deref().map(parse_bbox).transpose()?;
    f.overdue = q.overdue;
    Ok(f)
}

/// List reports, newest first, with filters and cursor paging.
#[utoipa::path(get, path = "/api/v1/reports", tag = "reports",
    params(ListQuery),
    responses((status = 200, body = ReportPage), (status = 400, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Json<ReportPage>, ApiError> {
    let key = caller.key()?;
    let mut filter = parse_filter(&q)?;
    if key.role == Role::Reporter {
        filter.created_by = Some(key.id.clone());
    }
    let max = state.config.limits.max_page;
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > max {
        return Err(ApiError::invalid("limit", format!("between 1 and {max}")));
    }
    let before = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let page = state
        .store
        .read_async(move |conn| query::list(conn, &filter, before, limit))
        .await?;
    Ok(Json(ReportPage {
        reports: page.reports,
        next_cursor: page.next.map(encode_cursor),
    }))
}

/// A transition request: the action (with its arguments) and a reason.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TransitionBody {
    /// What to do, e.g. `{"action": "dispatch", "grid": "410105001001001"}`.
    #[serde(flatten)]
    pub action: Action,
    /// Why (required to reject, send back or escalate).
    #[serde(default)]
    pub reason: Option<String>,
}

/// The answer to a transition.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransitionAnswer {
    /// Status before.
    #[schema(value_type = String)]
    pub from: Status,
    /// Status after.
    #[schema(value_type = String)]
    pub to: Status,
    /// The report as it is now.
    pub report: ReportRecord,
}

/// Move a report through its lifecycle. Illegal moves get 409 with the legal ones listed;
/// operators may act only on reports inside their area.
#[utoipa::path(post, path = "/api/v1/reports/{id}/transitions", tag = "reports",
    params(("id" = i64, Path, description = "Report id")),
    request_body = TransitionBody,
    responses((status = 200, body = TransitionAnswer), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn transition(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<TransitionBody>,
) -> Result<Json<TransitionAnswer>, ApiError> {
    let id = parse_id(&raw)?;
    let is_rating = matches!(body.action, Action::Rate { .. });
    let key = if is_rating {
        // The reporting app relays its citizen's rating.
        caller.require(&[Role::Operator, Role::Reporter], "rate reports")?
    } else {
        caller.require(&[Role::Operator], "move reports through their lifecycle")?
    };
    let needs_reason = matches!(
        body.action,
        Action::Reject | Action::SendBack | Action::Escalate
    );
    let reason = body.reason.filter(|r| !r.trim().is_empty());
    if needs_reason && reason.is_none() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing_field",
            format!("{} needs a reason", body.action.kind().name()),
        )
        .at("reason"));
    }
    if reason.as_ref().is_some_and(|r| r.len() > 2000) {
        return Err(ApiError::invalid("reason", "at most 2000 bytes"));
    }
    match &body.action {
        Action::Dispatch { grid: Some(g) } if state.in_force().set().id_of(g).is_none() => {
            return Err(ApiError::invalid("grid", format!("no grid with code {g}")));
        }
        Action::Extend { hours } if !(1..=720).contains(hours) => {
            return Err(ApiError::invalid(
                "hours",
                "between 1 and 720 working hours",
            ));
        }
        _ => {}
    }
    let scope = match key.role {
        Role::Admin => None,
        Role::Reporter => {
            // A reporter may rate only its own reports.
            let r = state
                .store
                .read_async(move |conn| query::report(conn, id))
                .await?
                .ok_or_else(|| ApiError::not_found(format!("no report with id {id}")))?;
            may_read(&caller, &r)?;
            None
        }
        _ => key.scope.clone(),
    };
    let done = state
        .store
        .transition(TransitionRequest {
            id,
            action: body.action,
            actor: caller.actor(),
            reason,
            scope,
            at: Utc::now(),
        })
        .await?;
    let report = state
        .store
        .read_async(move |conn| query::report(conn, id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no report with id {id}")))?;
    Ok(Json(TransitionAnswer {
        from: done.from,
        to: done.to,
        report,
    }))
}
