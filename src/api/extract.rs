//! Request extractors whose failures are [`ApiError`]s naming the field at fault, instead of
//! axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::grid::code::GridCode;

/// Reads a body completely, mapping an oversized body to 413.
pub async fn body_bytes(req: Request) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, &()).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is larger than this server accepts",
            )
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", e.body_text())
        }
    })
}

/// Parses JSON, naming the path of a wrong or missing field (`location.lat`, `[3].category`).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Tracking the path costs on every value; only a body that fails needs it, so a failed
    // parse is repeated with tracking to say where it went wrong.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.to_string();
        use serde_json::error::Category;
        match inner.classify() {
            Category::Syntax | Category::Eof | Category::Io => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("the body is not valid JSON: {msg}"),
            ),
            Category::Data => {
                let code = if msg.starts_with("missing field") {
                    "missing_field"
                } else {
                    "invalid_field"
                };
                let field = match (path.as_str(), missing_field_name(&msg)) {
                    (".", Some(name)) => Some(name.to_string()),
                    (p, Some(name)) if msg.starts_with("missing") => Some(format!("{p}.{name}")),
                    (".", None) => None,
                    (p, _) => Some(p.to_string()),
                };
                let e = ApiError::new(StatusCode::BAD_REQUEST, code, msg);
                match field {
                    Some(f) => e.at(f),
                    None => e,
                }
            }
        }
    })
}

/// The field a serde message names: `missing field `x`` or `unknown field `x``.
fn missing_field_name(msg: &str) -> Option<&str> {
    let rest = msg
        .strip_prefix("missing field `")
        .or_else(|| msg.strip_prefix("unknown field `"))?;
    rest.split('`').next()
}

/// Parses an optional `grid` parameter: a grid code at any level.
pub fn parse_grid(raw: Option<&str>) -> Result<Option<GridCode>, ApiError> {
    raw.map(|g| GridCode::parse(g).map_err(|e| ApiError::invalid("grid", e.to_string())))
        .transpose()
}

/// Parses a `bbox` parameter: `west,south,east,north`, four finite numbers in that order.
pub fn parse_bbox(raw: &str) -> Result<[f64; 4], ApiError> {
    let v: Vec<f64> = raw
        .split(',')
        .map(|x| x.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| ApiError::invalid("bbox", "four numbers: west,south,east,north"))?;
    match v.as_slice() {
        &[w, s, e, n] if w < e && s < n && v.iter().all(|x| x.is_finite()) => Ok([w, s, e, n]),
        _ => Err(ApiError::invalid(
            "bbox",
            "four finite numbers west,south,east,north with west < east and south < north",
        )),
    }
}

/// A JSON request body (requires `Content-Type: application/json`).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct.starts_with("application/json") && !ct.ends_with("+json") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("expected Content-Type: application/json, got {ct:?}"),
            ));
        }
        let bytes = body_bytes(req).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Query parameters, with the parameter at fault named.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(QueryParams)
            .map_err(|e| {
                let path = e.path().to_string();
                let msg = e.into_inner().to_string();
                let field = match (path.as_str(), missing_field_name(&msg)) {
                    (_, Some(name)) => name.to_string(),
                    (p, None) => p.to_string(),
                };
                let code = if msg.starts_with("missing field") {
                    "missing_field"
                } else {
                    "invalid_field"
                };
                ApiError::new(StatusCode::BAD_REQUEST, code, format!("query: {msg}")).at(field)
            })
    }
}

/// A category filter: a category (`matter:06002`) or a class prefix (`matter:06`).
pub fn parse_category_prefix(c: &str) -> Result<String, ApiError> {
    let (kind, code) = c.split_once(':').unwrap_or(("", ""));
    let ok = matches!(kind, "matter" | "component")
        && (1..=5).contains(&code.len())
        && code.bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(c.to_string())
    } else {
        Err(ApiError::invalid(
            "category",
            "a category (matter:06002) or a class prefix (matter:06)",
        ))
    }
}

/// A comma-separated list of category filters (absent: none).
pub fn parse_category_list(list: Option<&str>) -> Result<Vec<String>, ApiError> {
    list.map(|c| {
        c.split(',')
            .map(|p| parse_category_prefix(p.trim()))
            .collect()
    })
    .transpose()
    .map(Option::unwrap_or_default)
}

/// An intake channel filter.
pub fn parse_channel(c: &str) -> Result<crate::report::Channel, ApiError> {
    c.parse()
        .map_err(|e: crate::report::model::UnknownName| ApiError::invalid("channel", e.to_string()))
}
