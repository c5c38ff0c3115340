//! The map wall "一屏观全域": its page and bundled assets (built from `web/` into the binary, so
//! a wall needs no CDN and no internet), and its MapLibre styles (from `styles/`) with tile
//! URLs made absolute for this server and the site's basemap, if it has one.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::tiles::base_url;

mod built {
    include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));
}

/// The styles the wall offers: dark for the wall, light for analysts' desks.
const STYLES: [(&str, &str); 2] = [
    ("dark", include_str!("../../styles/dark.json")),
    ("light", include_str!("../../styles/light.json")),
];

fn asset(path: &str) -> Option<&'static [u8]> {
    built::ASSETS
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, bytes)| *bytes)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("woff2") => "font/woff2",
        _ => "text/plain; charset=utf-8",
    }
}

fn respond(bytes: &'static [u8], path: &str, cache: &'static str) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(content_type(path)),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        bytes,
    )
        .into_response()
}

/// The map wall page (一屏观全域). Open it with `?key=<key>` once to see report points, details
/// and exact locations in the feed; the page keeps the key and drops it from the address.
#[utoipa::path(get, path = "/", tag = "wall",
    responses((status = 200, description = "the map wall page", content_type = "text/html")))]
pub async fn page() -> Response {
    match asset("index.html") {
        Some(bytes) => respond(bytes, "index.html", "no-cache"),
        None => ApiError::not_found("this build has no map wall page").into_response(),
    }
}

/// The wall's scripts and stylesheets (content-hashed names, cached for a year).
#[utoipa::path(get, path = "/assets/{file}", tag = "wall",
    params(("file" = String, Path, description = "a file of the built page")),
    responses((status = 200, description = "the file"), (status = 404, body = ErrorBody)))]
pub async fn assets(Path(file): Path<String>) -> Result<Response, ApiError> {
    let path = format!("assets/{file}");
    asset(&path)
        .map(|bytes| respond(bytes, &path, "public, max-age=31536000, immutable"))
        .ok_or_else(|| ApiError::not_found(format!("no asset {file:?}")).at("file"))
}

/// Makes every source URL absolute on `base` and, when the site has a basemap, puts it under
/// everything but the background.
fn localise(mut style: Value, base: &str, state: &AppState) -> Value {
    if let Some(sources) = style.get_mut("sources").and_then(Value::as_object_mut) {
        for source in sources.values_mut() {
            if let Some(url) = source.get_mut("url")
                && let Some(path) = url.as_str().filter(|u| u.starts_with('/'))
            {
                *url = Value::String(format!("{base}{path}"));
            }
        }
        if let Some(tiles) = &state.config.wall.basemap_url {
            sources.insert(
                "basemap".into(),
                json!({
                    "type": "raster", "tiles": [tiles], "tileSize": 256,
                    "attribution": state.config.wall.basemap_attribution.clone().unwrap_or_default(),
                }),
            );
        }
    }
    if state.config.wall.basemap_url.is_some()
        && let Some(layers) = style.get_mut("layers").and_then(Value::as_array_mut)
    {
        let after_background = layers
            .iter()
            .position(|l| l["type"] != "background")
            .unwrap_or(layers.len());
        layers.insert(
            after_background,
            json!({"id": "basemap", "type": "raster", "source": "basemap",
                   "paint": {"raster-opacity": 0.55}}),
        );
    }
    if let Some(meta) = style.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert(
            "gridscope:title".into(),
            Value::String(state.config.wall.title.clone()),
        );
    }
    style
}

/// A MapLibre style of the wall (`dark.json` for the wall, `light.json` for analysts), with
/// absolute tile URLs for this server: usable as is in MapLibre, Maputnik or QGIS.
#[utoipa::path(get, path = "/styles/{file}", tag = "wall",
    params(("file" = String, Path, description = "`dark.json` or `light.json`")),
    responses((status = 200, description = "MapLibre style JSON", body = Object),
        (status = 404, body = ErrorBody)))]
pub async fn style(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    let name = file.strip_suffix(".json").unwrap_or(&file);
    let text = STYLES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no style {file:?}; there are dark.json and light.json"
            ))
            .at("file")
        })?;
    let style: Value =
        serde_json::from_str(text).map_err(|e| ApiError::internal("the embedded style", &e))?;
    let body = localise(style, &base_url(&state, &headers), &state);
    Ok((
        StatusCode::OK,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))],
        axum::Json(body),
    )
        .into_response())
}
