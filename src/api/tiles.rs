//! `/tiles`: vector tiles (MVT 2.1) and their TileJSON 3.0 documents.
//!
//! Tiles are cached already compressed; a request costs a cache lookup and a copy-free body.
//! Conditional requests (`If-None-Match`) get 304, empty tiles 204, zooms outside a tile set's
//! range 404 and impossible addresses 400 with a JSON error naming the part at fault.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::extract::{QueryParams, parse_category_list, parse_channel};
use crate::tiles::cache::{EncodedTile, Encoding, TileCache, negotiate};
use crate::tiles::tilejson::{TileJson, tilejson};
use crate::tiles::{TileFilter, TileId, TileSet};

/// The tile sets a server offers, with their cache.
pub struct TileService {
    sets: ArcSwap<HashMap<String, Arc<dyn TileSet>>>,
    cache: TileCache,
}

fn by_name(sets: Vec<Arc<dyn TileSet>>) -> HashMap<String, Arc<dyn TileSet>> {
    sets.into_iter()
        .map(|s| (s.name().to_string(), s))
        .collect()
}

impl TileService {
    /// A service over `sets`, caching up to `cache_bytes` of tiles.
    pub fn new(sets: Vec<Arc<dyn TileSet>>, cache_bytes: u64) -> Self {
        Self {
            sets: ArcSwap::from_pointee(by_name(sets)),
            cache: TileCache::new(cache_bytes),
        }
    }

    /// Serves `sets` from now on (a new grid version). Cached tiles of the old sets are not
    /// served again: their keys hold the old sets' versions.
    pub fn replace_sets(&self, sets: Vec<Arc<dyn TileSet>>) {
        self.sets.store(Arc::new(by_name(sets)));
    }

    /// The tile set called `name`.
    pub fn set(&self, name: &str) -> Option<Arc<dyn TileSet>> {
        self.sets.load().get(name).cloned()
    }

    /// Names of every tile set, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.sets.load().keys().cloned().collect();
        v.sort_unstable();
        v
    }

    /// The tile cache.
    pub fn cache(&self) -> &TileCache {
        &self.cache
    }
}

const MVT: &str = "application/vnd.mapbox-vector-tile";

fn find_set(state: &AppState, name: &str) -> Result<Arc<dyn TileSet>, ApiError> {
    state.tiles.set(name).ok_or_else(|| {
        ApiError::not_found(format!(
            "no tile set {name:?}; there are: {}",
            state.tiles.names().join(", ")
        ))
        .at("tileset")
    })
}

/// Who may read `set`: public sets when the server reads publicly, any key otherwise.
fn authorize(state: &AppState, caller: &Caller, set: &dyn TileSet) -> Result<(), ApiError> {
    if set.is_public() {
        caller.may_read_public(state)
    } else {
        caller.key().map(|_| ())
    }
}

/// The URL prefix clients reach this server at: the configured base URL, else what the
/// request's proxy headers or Host say.
pub(crate) fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(b) = &state.config.base_url {
        return b.trim_end_matches('/').to_string();
    }
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').next().unwrap_or("").trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let proto = get("x-forwarded-proto").unwrap_or_else(|| "http".into());
    let host = get("x-forwarded-host")
        .or_else(|| get("host"))
        .unwrap_or_else(|| state.config.listen.clone());
    let prefix = get("x-forwarded-prefix").unwrap_or_default();
    format!("{proto}://{host}{}", prefix.trim_end_matches('/'))
}

/// List the tile sets with their TileJSON URLs.
#[utoipa::path(get, path = "/tiles", tag = "tiles",
    responses((status = 200, description = "tile set names and TileJSON URLs", body = Object)))]
pub async fn index(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Json<serde_json::Value> {
    let base = base_url(&state, &headers);
    Json(serde_json::Value::Array(
        state
            .tiles
            .names()
            .into_iter()
            .map(|n| serde_json::json!({"name": n, "tilejson": format!("{base}/tiles/{n}")}))
            .collect(),
    ))
}

/// TileJSON 3.0 of a tile set (`/tiles/grids` or `/tiles/grids.json`). Query parameters are
/// passed on to the tile URLs.
#[utoipa::path(get, path = "/tiles/{tileset}", tag = "tiles",
    params(("tileset" = String, Path, description = "grids, heat or reports; or grids.json...")),
    responses((status = 200, body = TileJson), (status = 404, body = ErrorBody)))]
pub async fn tilejson_doc(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    Path(tileset): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let name = tileset.strip_suffix(".json").unwrap_or(&tileset);
    let set = find_set(&state, name)?;
    authorize(&state, &caller, set.as_ref())?;
    let doc = tilejson(
        set.as_ref(),
        &base_url(&state, &headers),
        query.as_deref().unwrap_or(""),
    );
    let mut resp = Json(doc).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(resp)
}

/// Splits `12.mvt` into the row and checks the format.
fn strip_format(y: &str) -> Result<&str, ApiError> {
    match y.rsplit_once('.') {
        None => Ok(y),
        Some((row, "mvt" | "pbf")) => Ok(row),
        Some((_, other)) => Err(ApiError::invalid(
            "format",
            format!("tiles come as .mvt or .pbf, not .{other}"),
        )),
    }
}

fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag.trim_start_matches("W/"))
}

fn tile_response(tile: &EncodedTile, encoding: Encoding, headers: &HeaderMap) -> Response {
    let mut builder = Response::builder()
        .header(header::ETAG, tile.etag())
        .header(header::VARY, "accept-encoding")
        .header(header::CACHE_CONTROL, "no-cache");
    if if_none_match(headers, tile.etag()) {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(axum::body::Body::empty())
            .unwrap_or_default();
    }
    if tile.is_empty() {
        return builder
            .status(StatusCode::NO_CONTENT)
            .body(axum::body::Body::empty())
            .unwrap_or_default();
    }
    builder = builder.header(header::CONTENT_TYPE, MVT);
    match encoding {
        Encoding::Identity => {}
        Encoding::Gzip => builder = builder.header(header::CONTENT_ENCODING, "gzip"),
        Encoding::Brotli => builder = builder.header(header::CONTENT_ENCODING, "br"),
    }
    builder
        .body(axum::body::Body::from(tile.body(encoding)))
        .unwrap_or_default()
}

/// Filters of report-based tile sets (`heat`, `reports`); the `grids` tiles take none.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TileQuery {
    /// Reported at or after (RFC 3339; default: 30 days before `to`).
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// Reported before (RFC 3339; default: now).
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// Categories or class prefixes, separated by commas: `matter:06,component:01001`.
    pub category: Option<String>,
    /// Intake channel: app, hotline_12345, police_110, patrol, video_ai or iot.
    pub channel: Option<String>,
    /// KPI tiles: the grid level (district, 1, 2 or 3; default: from the zoom).
    pub level: Option<String>,
    /// The grid version the client pinned the URL to (the `grids` event of `/api/v1/events`
    /// announces new ones), so caches never mix tiles of two versions; not otherwise used.
    pub v: Option<String>,
}

/// A KPI level: district, 1, 2 or 3.
pub(super) fn parse_kpi_level(s: &str) -> Result<crate::Level, ApiError> {
    use crate::Level;
    [Level::District, Level::One, Level::Two, Level::Three]
        .into_iter()
        .find(|l| l.name() == s)
        .ok_or_else(|| ApiError::invalid("level", "one of district, 1, 2, 3"))
}

fn tile_filter(set: &dyn TileSet, q: TileQuery, caller: &Caller) -> Result<TileFilter, ApiError> {
    let given = q.from.is_some()
        || q.to.is_some()
        || q.category.is_some()
        || q.channel.is_some()
        || q.level.is_some();
    if given && !set.takes_filters() {
        return Err(ApiError::invalid(
            "query",
            format!("{} tiles take no filters", set.name()),
        ));
    }
    if let (Some(f), Some(t)) = (q.from, q.to)
        && f >= t
    {
        return Err(ApiError::invalid("from", "from must be before to"));
    }
    let categories = parse_category_list(q.category.as_deref())?;
    Ok(TileFilter {
        from: q.from,
        to: q.to,
        categories,
        channel: q.channel.as_deref().map(parse_channel).transpose()?,
        level: q.level.as_deref().map(parse_kpi_level).transpose()?,
        public: matches!(caller, Caller::Anonymous),
    })
}

/// One vector tile (MVT 2.1), compressed as the client accepts (brotli or gzip).
#[utoipa::path(get, path = "/tiles/{tileset}/{z}/{x}/{y}", tag = "tiles",
    params(("tileset" = String, Path, description = "grids, heat or reports"),
        ("z" = String, Path, description = "zoom"),
        ("x" = String, Path, description = "column"),
        ("y" = String, Path, description = "row with extension: 3251.mvt or 3251.pbf"),
        TileQuery),
    responses((status = 200, description = "the tile", content_type = "application/vnd.mapbox-vector-tile"),
        (status = 204, description = "no feature in this tile"),
        (status = 304, description = "unchanged since the ETag sent in If-None-Match"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn tile(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    Path((tileset, z, x, y)): Path<(String, String, String, String)>,
    QueryParams(query): QueryParams<TileQuery>,
) -> Result<Response, ApiError> {
    let set = find_set(&state, &tileset)?;
    authorize(&state, &caller, set.as_ref())?;
    let filter = tile_filter(set.as_ref(), query, &caller)?;
    let id = TileId::parse(&z, &x, strip_format(&y)?)
        .map_err(|e| ApiError::invalid(e.part(), e.to_string()))?;
    let (min, max) = set.zooms();
    if id.z < min || id.z > max {
        return Err(ApiError::not_found(format!(
            "tile set {tileset} has zooms {min} to {max}; zoom {} is not served (clients overzoom)",
            id.z
        ))
        .at("z"));
    }
    let tile = state
        .tiles
        .cache()
        .get(set, id, filter)
        .await
        .map_err(|e| ApiError::internal("rendering a tile", &e))?;
    let encoding = negotiate(
        headers
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok()),
    );
    if encoding == Encoding::Brotli && !tile.has_brotli() && !tile.is_empty() {
        let t = Arc::clone(&tile);
        tokio::task::spawn_blocking(move || {
            t.body(Encoding::Brotli);
        })
        .await
        .map_err(|e| ApiError::internal("compressing a tile", &e))?;
    }
    Ok(tile_response(&tile, encoding, &headers))
}
