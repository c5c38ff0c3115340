//! Open311 GeoReport v2 (<https://wiki.open311.org/GeoReport_v2>) for reporting apps and tools
//! that speak it: services (our GB/T 47678.5 categories), creating a request, and reading
//! requests, in JSON and XML. Errors follow the specification's shape
//! (`[{"code": 400, "description": "..."}]`).

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::assign::LocationInput;
use super::auth::Caller;
use super::error::ApiError;
use super::extract::body_bytes;
use crate::coords::Crs;
use crate::grid::code::GridCode;
use crate::report::intake::{ReportDraft, prepare};
use crate::report::{Channel, ReportId};
use crate::store::keys::Role;
use crate::store::query::{self, ReportFilter};
use crate::store::record::{RawLocation, ReportRecord};

/// Response format, from the path's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Xml,
}

/// A GeoReport error: rendered in the requested format with the spec's shape.
struct Open311Error {
    format: Format,
    status: StatusCode,
    description: String,
}

#[derive(Serialize)]
struct ErrorItem {
    code: u16,
    description: String,
}

#[derive(Serialize)]
struct Errors {
    error: Vec<ErrorItem>,
}

impl IntoResponse for Open311Error {
    fn into_response(self) -> Response {
        let item = ErrorItem {
            code: self.status.as_u16(),
            description: self.description,
        };
        let mut resp = match self.format {
            Format::Json => axum::Json(vec![item]).into_response(),
            Format::Xml => xml_response("errors", &Errors { error: vec![item] }),
        };
        *resp.status_mut() = self.status;
        resp
    }
}

impl Open311Error {
    fn new(format: Format, status: StatusCode, description: impl Into<String>) -> Self {
        Self {
            format,
            status,
            description: description.into(),
        }
    }

    fn from_api(format: Format, e: ApiError) -> Self {
        let description = match e.field() {
            Some(f) => format!("{f}: {}", e.message()),
            None => e.message().to_string(),
        };
        Self::new(format, e.status(), description)
    }
}

fn xml_response<T: Serialize>(root: &str, value: &T) -> Response {
    match quick_xml::se::to_string_with_root(root, value) {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/xml; charset=utf-8"),
            )],
            format!("<?xml version=\"1.0\" encoding=\"utf-8\"?>{body}"),
        )
            .into_response(),
        Err(e) => ApiError::internal("writing XML", &e).into_response(),
    }
}

/// Splits `name.json` / `name.xml` into the name and the format.
fn split_format(file: &str) -> Result<(&str, Format), Open311Error> {
    let (name, ext) = file.rsplit_once('.').unwrap_or((file, ""));
    match ext {
        "json" => Ok((name, Format::Json)),
        "xml" => Ok((name, Format::Xml)),
        _ => Err(Open311Error::new(
            Format::Json,
            StatusCode::NOT_FOUND,
            format!("{file}: GeoReport resources end in .json or .xml"),
        )),
    }
}

/// One service (a category).
#[derive(Debug, Serialize, ToSchema)]
pub struct Service {
    /// The category id, e.g. `matter:06002`.
    pub service_code: String,
    /// The category name.
    pub service_name: String,
    /// Major class and name.
    pub description: String,
    /// Always false: no extra attributes are needed.
    pub metadata: bool,
    /// Always `realtime`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Search words.
    pub keywords: String,
    /// The major class.
    pub group: String,
}

#[derive(Serialize)]
struct Services {
    service: Vec<Service>,
}

/// A service definition (no attributes: categories need none).
#[derive(Debug, Serialize)]
struct ServiceDefinition {
    service_code: String,
    attributes: Vec<()>,
}

/// A service request as GeoReport v2 shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceRequest {
    /// Report id.
    pub service_request_id: String,
    /// `open` or `closed`.
    pub status: &'static str,
    /// gridscope's own status and deadline.
    pub status_notes: String,
    /// Category name.
    pub service_name: String,
    /// Category id.
    pub service_code: String,
    /// Description.
    pub description: String,
    /// The responsible grid.
    pub agency_responsible: String,
    /// Notes for the public.
    pub service_notice: String,
    /// When reported.
    pub requested_datetime: String,
    /// Last change.
    pub updated_datetime: String,
    /// Deadline.
    pub expected_datetime: String,
    /// The grid chain, district first.
    pub address: String,
    /// The level-3 grid code.
    pub address_id: String,
    /// Postal code (not known).
    pub zipcode: String,
    /// WGS84 latitude.
    pub lat: f64,
    /// WGS84 longitude.
    pub long: f64,
    /// First photo.
    pub media_url: String,
}

#[derive(Serialize)]
struct ServiceRequests {
    request: Vec<ServiceRequest>,
}

fn grid_name(state: &AppState, code: &str) -> Option<String> {
    let grids = state.in_force();
    let set = grids.set();
    let id = set.id_of(&GridCode::parse(code).ok()?)?;
    Some(set.grid(id).name.to_string())
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn to_service_request(state: &AppState, r: &ReportRecord) -> ServiceRequest {
    let p = &r.placement;
    let address = [&p.district, &p.grid_l1, &p.grid_l2, &p.grid_l3]
        .into_iter()
        .flatten()
        .filter_map(|c| grid_name(state, c))
        .collect::<Vec<_>>()
        .join(" ");
    let category = state.catalog.get(r.category);
    ServiceRequest {
        service_request_id: r.id.to_string(),
        status: if r.status.is_final() {
            "closed"
        } else {
            "open"
        },
        status_notes: format!("{}{}", r.status, if r.overdue { " (overdue)" } else { "" }),
        service_name: category.map(|c| c.name.clone()).unwrap_or_default(),
        service_code: r.category.to_string(),
        description: r.description.clone(),
        agency_responsible: match grid_name(state, &p.responsible) {
            Some(name) => format!("{name} ({})", p.responsible),
            None => p.responsible.to_string(),
        },
        service_notice: String::new(),
        requested_datetime: rfc3339(r.reported_at),
        updated_datetime: rfc3339(r.updated_at),
        expected_datetime: rfc3339(r.deadline),
        address,
        address_id: p.grid_l3.as_deref().unwrap_or_default().to_string(),
        zipcode: String::new(),
        lat: r.lat,
        long: r.lon,
        media_url: r.photos.first().cloned().unwrap_or_default(),
    }
}

/// GeoReport v2 resources at the root: `services.{json,xml}`, `requests.{json,xml}`,
/// `discovery.{json,xml}`.
#[utoipa::path(get, path = "/open311/v2/{file}", tag = "open311",
    params(("file" = String, Path, description = "services.json, services.xml, requests.json, requests.xml, discovery.json"),
        ("service_request_id" = Option<String>, Query, description = "Comma-separated ids"),
        ("service_code" = Option<String>, Query, description = "Comma-separated categories"),
        ("start_date" = Option<String>, Query, description = "W3C datetime"),
        ("end_date" = Option<String>, Query, description = "W3C datetime"),
        ("status" = Option<String>, Query, description = "open, closed or both"),
        ("api_key" = Option<String>, Query, description = "Needed unless requests are public")),
    responses((status = 200, description = "GeoReport v2 list", body = Vec<ServiceRequest>)))]
pub async fn get_root(
    State(state): State<Arc<AppState>>,
    Path(file): Path<String>,
    req: Request,
) -> Response {
    match get_root_inner(state, &file, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn get_root_inner(
    state: Arc<AppState>,
    file: &str,
    req: Request,
) -> Result<Response, Open311Error> {
    let (name, format) = split_format(file)?;
    match name {
        "services" => {
            let services: Vec<Service> = state
                .catalog
                .classes()
                .iter()
                .map(|c| Service {
                    service_code: c.id.to_string(),
                    service_name: c.name.clone(),
                    description: format!("{} · {}", c.major_name, c.name),
                    metadata: false,
                    kind: "realtime",
                    keywords: format!("{},{}", c.major_name, c.name),
                    group: c.major_name.clone(),
                })
                .collect();
            Ok(match format {
                Format::Json => axum::Json(services).into_response(),
                Format::Xml => xml_response("services", &Services { service: services }),
            })
        }
        "discovery" => {
            let base = state.config.base_url.clone().unwrap_or_default();
            let d = serde_json::json!({
                "changeset": "2026-01-01T00:00:00Z",
                "contact": "city operation centre (城运中心)",
                "key_service": "ask the operation centre for an API key",
                "endpoints": [{
                    "specification": "http://wiki.open311.org/GeoReport_v2",
                    "url": format!("{base}/open311/v2"),
                    "changeset": "2026-01-01T00:00:00Z",
                    "type": "production",
                    "formats": ["application/json", "text/xml"],
                }],
            });
            Ok(axum::Json(d).into_response())
        }
        "requests" => list_requests(state, format, req).await,
        _ => Err(Open311Error::new(
            format,
            StatusCode::NOT_FOUND,
            format!("no resource {file}"),
        )),
    }
}

/// Parameters of `GET requests`; others the spec allows (`jurisdiction_id`) are accepted and
/// ignored: gridscope serves one jurisdiction.
#[derive(Deserialize)]
struct RequestsQuery {
    service_request_id: Option<String>,
    service_code: Option<String>,
    start_date: Option<String>,
    end_date: Option<String>,
    status: Option<String>,
    api_key: Option<String>,
}

/// The caller for Open311 reads: a key from the header or `api_key`, or anonymous when
/// requests are public.
async fn open311_reader(
    state: &Arc<AppState>,
    req: Request,
    api_key: Option<&str>,
    format: Format,
) -> Result<Caller, Open311Error> {
    let (mut parts, _) = req.into_parts();
    if let Some(k) = api_key
        && let Ok(v) = HeaderValue::from_str(k)
    {
        parts.headers.insert("x-api-key", v);
    }
    let caller = <Caller as axum::extract::FromRequestParts<Arc<AppState>>>::from_request_parts(
        &mut parts, state,
    )
    .await
    .map_err(|e| Open311Error::from_api(format, e))?;
    if !state.config.open311_public_requests {
        caller
            .key()
            .map_err(|e| Open311Error::from_api(format, e))?;
    }
    Ok(caller)
}

fn parse_date(s: &str, format: Format, field: &str) -> Result<DateTime<Utc>, Open311Error> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| {
            Open311Error::new(
                format,
                StatusCode::BAD_REQUEST,
                format!("{field}: {s:?} is not a W3C datetime such as 2026-01-01T00:00:00Z"),
            )
        })
}

async fn list_requests(
    state: Arc<AppState>,
    format: Format,
    req: Request,
) -> Result<Response, Open311Error> {
    let q: RequestsQuery = serde_urlencoded::from_str(req.uri().query().unwrap_or(""))
        .map_err(|e| Open311Error::new(format, StatusCode::BAD_REQUEST, format!("query: {e}")))?;
    let caller = open311_reader(&state, req, q.api_key.as_deref(), format).await?;
    let bad = |m: String| Open311Error::new(format, StatusCode::BAD_REQUEST, m);
    let mut filter = ReportFilter::default();
    if let Caller::Key(p) = &caller
        && p.key.role == Role::Reporter
    {
        filter.created_by = Some(p.key.id.clone());
    }
    if let Some(ids) = &q.service_request_id {
        filter.ids = ids
            .split(',')
            .map(|s| s.trim().parse::<i64>().map(ReportId))
            .collect::<Result<_, _>>()
            .map_err(|_| bad(format!("service_request_id: {ids:?} is not a list of ids")))?;
    } else {
        let end = q
            .end_date
            .as_deref()
            .map(|s| parse_date(s, format, "end_date"))
            .transpose()?;
        let start = q
            .start_date
            .as_deref()
            .map(|s| parse_date(s, format, "start_date"))
            .transpose()?;
        let end_t = end.unwrap_or_else(Utc::now);
        let start_t = start.unwrap_or(end_t - Duration::days(90));
        if start_t > end_t {
            return Err(bad("start_date is after end_date".into()));
        }
        filter.from = Some(start_t);
        filter.to = end.map(|e| e + Duration::seconds(1));
        if let Some(codes) = &q.service_code {
            for c in codes.split(',') {
                let id = state
                    .catalog
                    .validate(c.trim())
                    .map_err(|e| bad(format!("service_code: {e}")))?;
                filter.categories.push(id.to_string());
            }
        }
        if let Some(st) = &q.status {
            for s in st.split(',') {
                match s.trim() {
                    "open" => filter
                        .status
                        .extend(crate::report::Status::ALL.iter().filter(|s| !s.is_final())),
                    "closed" => filter
                        .status
                        .extend(crate::report::Status::ALL.iter().filter(|s| s.is_final())),
                    other => return Err(bad(format!("status: {other:?} is not open or closed"))),
                }
            }
        }
    }
    let page = state
        .store
        .read_async(move |conn| query::list(conn, &filter, None, 1000))
        .await
        .map_err(|e| Open311Error::from_api(format, e.into()))?;
    let items: Vec<ServiceRequest> = page
        .reports
        .iter()
        .map(|r| to_service_request(&state, r))
        .collect();
    Ok(match format {
        Format::Json => axum::Json(items).into_response(),
        Format::Xml => xml_response("service_requests", &ServiceRequests { request: items }),
    })
}

/// One service's definition (`services/{code}.json`) or one request (`requests/{id}.json`).
#[utoipa::path(get, path = "/open311/v2/{collection}/{file}", tag = "open311",
    params(("collection" = String, Path, description = "services or requests"),
        ("file" = String, Path, description = "{service_code}.json or {service_request_id}.json (or .xml)")),
    responses((status = 200, description = "A service definition, or a one-element list of requests"),
        (status = 404, description = "Unknown service or request")))]
pub async fn get_item(
    State(state): State<Arc<AppState>>,
    Path((collection, file)): Path<(String, String)>,
    req: Request,
) -> Response {
    let result = async {
        let (name, format) = split_format(&file)?;
        match collection.as_str() {
            "services" => {
                let id = state
                    .catalog
                    .validate(name)
                    .map_err(|e| Open311Error::new(format, StatusCode::NOT_FOUND, e.to_string()))?;
                let def = ServiceDefinition {
                    service_code: id.to_string(),
                    attributes: Vec::new(),
                };
                Ok(match format {
                    Format::Json => axum::Json(def).into_response(),
                    Format::Xml => xml_response("service_definition", &def),
                })
            }
            "requests" => {
                let no_request = || {
                    Open311Error::new(format, StatusCode::NOT_FOUND, format!("no request {name}"))
                };
                let id = name
                    .parse::<i64>()
                    .ok()
                    .filter(|&i| i > 0)
                    .map(ReportId)
                    .ok_or_else(no_request)?;
                let api_key: Option<String> = req
                    .uri()
                    .query()
                    .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
                    .and_then(|v| v.into_iter().find(|(k, _)| k == "api_key").map(|(_, v)| v));
                let caller = open311_reader(&state, req, api_key.as_deref(), format).await?;
                let r = state
                    .store
                    .read_async(move |conn| query::report(conn, id))
                    .await
                    .map_err(|e| Open311Error::from_api(format, e.into()))?;
                let r = r
                    .filter(|r| match &caller {
                        Caller::Key(p) => p.key.role != Role::Reporter || p.key.id == r.created_by,
                        Caller::Anonymous => true,
                    })
                    .ok_or_else(no_request)?;
                let items = vec![to_service_request(&state, &r)];
                Ok(match format {
                    Format::Json => axum::Json(items).into_response(),
                    Format::Xml => {
                        xml_response("service_requests", &ServiceRequests { request: items })
                    }
                })
            }
            _ => Err(Open311Error::new(
                format,
                StatusCode::NOT_FOUND,
                format!("no resource {collection}"),
            )),
        }
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The form of `POST requests`. Personal fields the spec allows (`email`, `first_name`,
/// `last_name`, `phone`) are accepted and not stored; `account_id` or `device_id` becomes the
/// reporter reference.
#[derive(Deserialize)]
struct PostForm {
    api_key: Option<String>,
    service_code: Option<String>,
    lat: Option<String>,
    long: Option<String>,
    /// An extension: the coordinate system of lat/long (default wgs84, as the spec says).
    crs: Option<String>,
    description: Option<String>,
    media_url: Option<String>,
    account_id: Option<String>,
    device_id: Option<String>,
    address_string: Option<String>,
}

#[derive(Serialize)]
struct PostAnswer {
    service_request_id: String,
    service_notice: String,
    account_id: String,
}

#[derive(Serialize)]
struct PostAnswers {
    request: Vec<PostAnswer>,
}

/// Create a service request (form-encoded, as GeoReport v2 specifies).
#[utoipa::path(post, path = "/open311/v2/{file}", tag = "open311",
    params(("file" = String, Path, description = "requests.json or requests.xml")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "api_key, service_code, lat, long, description, media_url, account_id..."),
    responses((status = 201, description = "[{service_request_id, service_notice}]"),
        (status = 400, description = "[{code, description}]")))]
pub async fn post_request(
    State(state): State<Arc<AppState>>,
    Path(file): Path<String>,
    req: Request,
) -> Response {
    let result = async {
        let (name, format) = split_format(&file)?;
        if name != "requests" {
            return Err(Open311Error::new(
                format,
                StatusCode::NOT_FOUND,
                format!("cannot POST {file}"),
            ));
        }
        let bad = |m: String| Open311Error::new(format, StatusCode::BAD_REQUEST, m);
        let (mut parts, body) = req.into_parts();
        let bytes = body_bytes(Request::from_parts(parts.clone(), body))
            .await
            .map_err(|e| Open311Error::from_api(format, e))?;
        let form: PostForm =
            serde_urlencoded::from_bytes(&bytes).map_err(|e| bad(format!("form: {e}")))?;
        let key = form.api_key.clone().ok_or_else(|| {
            Open311Error::new(
                format,
                StatusCode::UNAUTHORIZED,
                "api_key: required to create requests",
            )
        })?;
        let v = HeaderValue::from_str(&key).map_err(|_| bad("api_key: not a valid key".into()))?;
        parts.headers.remove(header::AUTHORIZATION);
        parts.headers.insert("x-api-key", v);
        let caller =
            <Caller as axum::extract::FromRequestParts<Arc<AppState>>>::from_request_parts(
                &mut parts, &state,
            )
            .await
            .map_err(|e| Open311Error::from_api(format, e))?;
        let creator = caller
            .require(&[Role::Reporter, Role::Operator], "create reports")
            .map_err(|e| Open311Error::from_api(format, e))?
            .id
            .clone();
        let code = form
            .service_code
            .as_deref()
            .ok_or_else(|| bad("service_code: required".into()))?;
        let category = state
            .catalog
            .validate(code)
            .map_err(|e| bad(format!("service_code: {e}")))?;
        let (Some(lat), Some(long)) = (&form.lat, &form.long) else {
            return Err(bad(format!(
                "lat and long: required (gridscope does not geocode addresses{})",
                form.address_string
                    .as_deref()
                    .map(|a| format!("; got address_string {a:?}"))
                    .unwrap_or_default()
            )));
        };
        let lat: f64 = lat
            .trim()
            .parse()
            .map_err(|_| bad(format!("lat: {lat:?} is not a number")))?;
        let lon: f64 = long
            .trim()
            .parse()
            .map_err(|_| bad(format!("long: {long:?} is not a number")))?;
        let crs: Crs = match &form.crs {
            Some(c) => c
                .parse()
                .map_err(|e: crate::CoordError| bad(format!("crs: {e}")))?,
            None => Crs::Wgs84,
        };
        let loc = LocationInput { lon, lat, crs };
        let grids = state.in_force();
        let location = grids
            .locate(&loc, "location")
            .map_err(|e| Open311Error::from_api(format, e))?;
        let description = form.description.clone().unwrap_or_default();
        if description.chars().count() > 4000 {
            return Err(bad("description: at most 4000 characters".into()));
        }
        let photos = match &form.media_url {
            Some(u) if u.starts_with("http://") || u.starts_with("https://") => vec![u.clone()],
            Some(u) if !u.is_empty() => {
                return Err(bad(format!("media_url: {u:?} is not an http(s) URL")));
            }
            _ => Vec::new(),
        };
        let draft = ReportDraft {
            channel: Channel::App,
            category,
            description,
            reporter_ref: form.account_id.clone().or(form.device_id.clone()),
            photos,
            raw: RawLocation { lon, lat, crs },
            location,
            reported_at: None,
            idempotency_key: None,
        };
        let (new, _) = prepare(&grids.assigner, &state.rules, draft, &creator, Utc::now());
        let deadline = new.deadline;
        let created = state
            .store
            .create(vec![new])
            .await
            .map_err(|e| Open311Error::from_api(format, e.into()))?;
        let id = created.first().map(|c| c.id).ok_or_else(|| {
            Open311Error::new(format, StatusCode::INTERNAL_SERVER_ERROR, "create failed")
        })?;
        metrics::counter!("gridscope_reports_created_total").increment(1);
        let answer = PostAnswer {
            service_request_id: id.to_string(),
            service_notice: format!("due by {}", rfc3339(deadline)),
            account_id: form.account_id.unwrap_or_default(),
        };
        let mut resp = match format {
            Format::Json => axum::Json(vec![answer]).into_response(),
            Format::Xml => xml_response(
                "service_requests",
                &PostAnswers {
                    request: vec![answer],
                },
            ),
        };
        *resp.status_mut() = StatusCode::CREATED;
        Ok(resp)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
