//! The HTTP API (axum): one module per resource, one error type, one state shared by all
//! handlers. `router` builds the whole application, documented in OpenAPI as it is built, so
//! no route can exist without its documentation.

pub mod answer;
pub mod assign;
pub mod auth;
pub mod error;
pub mod events;
pub mod export;
pub mod extract;
pub mod grid_version;
pub mod grids;
pub mod heat;
pub mod hotspots;
mod import_pool;
pub mod keys;
pub mod open311;
pub mod reports;
mod request_metrics;
pub mod stats;
pub mod system;
pub mod tiles;
pub mod wall;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower::ServiceBuilder;
use tower_http::LatencyUnit;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{Any, CorsLayer};
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::openapi::security::{ApiKey as ApiKeyScheme, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::assign::Assigner;
use crate::config::Config;
use crate::report::{Catalog, DeadlineRules};
use crate::store::{Store, StoreError, keys as key_store};
use crate::tiles::TileSet;
use crate::tiles::sets::{GridTiles, HeatTiles, KpiTiles, ReportTiles};
use arc_swap::ArcSwap;
use auth::KeyRing;
use error::ApiError;
use grid_version::GridsInForce;
use tiles::TileService;

/// Everything a handler may need. Immutable except for the key ring and the grid version in
/// force, which are swapped whole.
pub struct AppState {
    /// The configuration in force.
    pub config: Config,
    /// The grids in force with their assignment engine and tiles; see [`AppState::in_force`].
    pub grids: ArcSwap<GridsInForce>,
    /// Held while a new grid version is built, so reloads run one at a time.
    pub grid_reload: tokio::sync::Mutex<()>,
    /// The category classification.
    pub catalog: Catalog,
    /// Time limits and the working calendar.
    pub rules: Arc<DeadlineRules>,
    /// Reports and keys.
    pub store: Arc<Store>,
    /// API keys in force.
    pub keys: KeyRing,
    /// Prometheus exposition.
    pub metrics: PrometheusHandle,
    /// The OpenAPI document.
    pub openapi: utoipa::openapi::OpenApi,
    /// Vector tile sets and their cache.
    pub tiles: TileService,
    /// Answers of `/api/v1/stats`, keyed by query and data version, bounded by their size.
    pub stats_cache: moka::future::Cache<String, Arc<serde_json::Value>>,
    /// Turns true when the server begins to shut down, so endless responses (the live feed)
    /// end and the shutdown can finish.
    pub closing: tokio::sync::watch::Sender<bool>,
    /// The places of hot-spot analyses (H3 cells or grids covering an area), with their
    /// neighbours, by area and unit.
    pub place_spaces: moka::future::Cache<String, Arc<hotspots::PlaceSpace>>,
}

/// How much memory cached statistics answers may take, roughly (bytes of their JSON).
const STATS_CACHE_BYTES: u64 = 128 << 20;

/// The length of a JSON value's compact text: what a cached answer weighs.
fn json_size(v: &serde_json::Value) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    match serde_json::to_writer(&mut counter, v) {
        Ok(()) => counter.0,
        Err(_) => usize::MAX,
    }
}

/// The process-wide metrics recorder (installed once, shared by every server in a process).
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    0.5, 1.0, 2.5,
                ])
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (embedding); metrics then go there.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// The tile sets over `grids` (the grids in force) and the reports in `store`.
pub(crate) fn tile_sets(
    config: &Config,
    grids: &Arc<GridTiles>,
    store: &Arc<Store>,
) -> Vec<Arc<dyn TileSet>> {
    let bounds = grids.bounds();
    let refresh = Duration::from_millis(config.tiles.refresh_ms);
    vec![
        Arc::clone(grids) as Arc<dyn TileSet>,
        Arc::new(KpiTiles::new(
            Arc::clone(grids),
            Arc::clone(store),
            config.tiles.privacy_k,
            refresh,
        )),
        Arc::new(HeatTiles::new(
            Arc::clone(store),
            bounds,
            config.tiles.privacy_k,
            refresh,
        )),
        Arc::new(ReportTiles::new(Arc::clone(store), bounds, refresh)),
    ]
}

impl AppState {
    /// Assembles the state from its parts; loads the keys from the store.
    /// `rules` are the prepared `config.deadlines`, the same the store's writer uses.
    pub fn new(
        config: Config,
        assigner: Arc<Assigner>,
        rules: Arc<DeadlineRules>,
        store: Arc<Store>,
    ) -> Result<Arc<AppState>, StoreError> {
        let grids = GridsInForce::from_assigner(&config, assigner);
        Self::with_grids(config, grids, rules, store)
    }

    /// Assembles the state over a grid version already built (see [`GridsInForce::build`]).
    pub fn with_grids(
        config: Config,
        grids: GridsInForce,
        rules: Arc<DeadlineRules>,
        store: Arc<Store>,
    ) -> Result<Arc<AppState>, StoreError> {
        let keys = store.read(key_store::all)?;
        let (_, openapi) = routes().split_for_parts();
        Ok(Arc::new(AppState {
            keys: KeyRing::new(
                keys,
                config.limits.rate_per_sec,
                config.limits.anonymous_rate_per_sec,
                config.limits.anonymous_tile_rate_per_sec,
            ),
            tiles: TileService::new(
                tile_sets(&config, &grids.tiles, &store),
                config.tiles.cache_mb << 20,
            ),
            stats_cache: moka::future::Cache::builder()
                .max_capacity(STATS_CACHE_BYTES)
                .weigher(|key: &String, answer: &Arc<serde_json::Value>| {
                    let bytes = key.len() + json_size(answer);
                    u32::try_from(bytes).unwrap_or(u32::MAX)
                })
                .build(),
            closing: tokio::sync::watch::Sender::new(false),
            place_spaces: moka::future::Cache::new(8),
            config,
            grids: ArcSwap::from_pointee(grids),
            grid_reload: tokio::sync::Mutex::new(()),
            catalog: Catalog::embedded(),
            rules,
            store,
            metrics: metrics_handle(),
            openapi,
        }))
    }

    /// The grid version in force: take it once per request, so the whole answer comes from one
    /// version even if a new one is put in force meanwhile.
    pub fn in_force(&self) -> Arc<GridsInForce> {
        self.grids.load_full()
    }

    /// The assignment engine over the grids in force.
    pub fn assigner(&self) -> Arc<Assigner> {
        Arc::clone(&self.grids.load().assigner)
    }

    /// Re-reads the keys from the store (after one is created or revoked).
    pub async fn reload_keys(&self) -> Result<(), ApiError> {
        let keys = self.store.read_async(key_store::all).await?;
        self.keys.replace(keys);
        Ok(())
    }
}

struct SecurityAddon;

impl Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKeyScheme::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An API key; `Authorization: Bearer <key>` works too.",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "gridscope",
        description = "Grid governance (网格化治理) API: assign locations to the responsible grid, \
                       take in reports and move them through their lifecycle, read grids.\n\n\
                       Errors are JSON: `{\"error\": {\"status\", \"code\", \"field\", \"message\"}}`."
    ),
    modifiers(&SecurityAddon),
    tags(
        (name = "assign", description = "Which grid is responsible for a location"),
        (name = "reports", description = "Reports (事件) and their lifecycle"),
        (name = "grids", description = "Grid boundaries and hierarchy"),
        (name = "keys", description = "API keys (admin)"),
        (name = "stats", description = "Governance KPIs (结案率, 按期结案率, 满意率...)"),
        (name = "tiles", description = "Vector tiles (MVT 2.1) and TileJSON 3.0"),
        (name = "open311", description = "Open311 GeoReport v2 compatibility"),
        (name = "system", description = "Health, metrics, this document"),
        (name = "wall", description = "The map wall page 一屏观全域 and its MapLibre styles"),
    )
)]
struct ApiDoc;

/// Every route, with its documentation.
fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(assign::assign_get, assign::assign_post))
        .routes(routes!(assign::assign_batch))
        .routes(routes!(reports::create, reports::list))
        .routes(routes!(reports::create_batch))
        .routes(routes!(reports::get))
        .routes(routes!(reports::transition))
        .routes(routes!(grids::list))
        .routes(routes!(grid_version::current))
        .routes(routes!(grid_version::reload_now))
        .routes(routes!(grids::get))
        .routes(routes!(keys::create, keys::list))
        .routes(routes!(keys::revoke))
        .routes(routes!(system::categories))
        .routes(routes!(system::health))
        .routes(routes!(system::metrics))
        .routes(routes!(system::openapi))
        .routes(routes!(open311::get_root, open311::post_request))
        .routes(routes!(open311::get_item))
        .routes(routes!(export::file))
        .routes(routes!(stats::kpi))
        .routes(routes!(stats::series))
        .routes(routes!(stats::breakdown))
        .routes(routes!(stats::ranking))
        .routes(routes!(heat::heat))
        .routes(routes!(hotspots::hotspots))
        .routes(routes!(hotspots::emerging))
        .routes(routes!(tiles::index))
        .routes(routes!(tiles::tilejson_doc))
        .routes(routes!(tiles::tile))
        .routes(routes!(events::feed))
        .routes(routes!(wall::page))
        .routes(routes!(wall::assets))
        .routes(routes!(wall::style))
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(format!(
        "no such endpoint: {} {}",
        req.method(),
        req.uri().path()
    ))
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
}

async fn timeout_error(err: tower::BoxError) -> ApiError {
    if err.is::<tower::timeout::error::Elapsed>() {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            "the request took longer than this server allows",
        )
    } else {
        ApiError::internal("request", &err)
    }
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the server hit a bug; it has been logged",
    )
    .into_response()
}

/// The whole application.
pub fn router(state: Arc<AppState>) -> Router {
    let (router, _) = routes().split_for_parts();
    let limits = &state.config.limits;
    router
        .route_layer(middleware::from_fn(request_metrics::track))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(
            ServiceBuilder::new()
                .layer(CatchPanicLayer::custom(panic_response))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                        .on_response(
                            DefaultOnResponse::new()
                                .level(Level::INFO)
                                .latency_unit(LatencyUnit::Micros),
                        ),
                )
                .layer(HandleErrorLayer::new(timeout_error))
                .timeout(Duration::from_secs(limits.request_timeout_s.max(1)))
                .layer(
                    CorsLayer::new()
                        .allow_origin(Any)
                        .allow_methods(Any)
                        .allow_headers(Any)
                        // Every request gets the same CORS headers (any origin, method and
                        // header), so answers do not vary with those of the request.
                        .vary([]),
                )
                .layer(DefaultBodyLimit::max(limits.body_bytes)),
        )
        .with_state(state)
}

/// Reloads the grid files whenever the process gets SIGHUP (as daemons re-read their files).
async fn reload_on_hangup(state: Arc<AppState>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        return;
    };
    while hangups.recv().await.is_some() {
        match grid_version::reload(&state).await {
            Ok(o) => {
                tracing::info!(changed = o.changed, version = %o.current.version, took_ms = o.took_ms, "grid files re-read")
            }
            Err(e) => tracing::warn!(error = %e, "new grid version refused; the old one stays"),
        }
    }
}

/// Folds the request durations recorded since the last pass into their histograms, every few
/// seconds. The recorder keeps every sample until then, so without this a server that nobody
/// scrapes would grow by each request it answers.
async fn drain_histograms(metrics: PrometheusHandle) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        metrics.run_upkeep();
    }
}

/// Serves until `shutdown` resolves, then finishes in-flight requests and flushes the store.
pub async fn serve(
    state: Arc<AppState>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let store = Arc::clone(&state.store);
    let pruner = {
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                state.keys.prune();
                grid_version::follow_calendar(&state).await;
            }
        })
    };
    let reloader = tokio::spawn(reload_on_hangup(Arc::clone(&state)));
    let upkeep = tokio::spawn(drain_histograms(state.metrics.clone()));
    let warm = Arc::clone(&state.store);
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        match warm.read(|c| crate::store::query::warm_recent(c, 31)) {
            Ok(n) => tracing::info!(
                reports = n,
                ms = started.elapsed().as_millis() as u64,
                "recent reports read into memory"
            ),
            Err(e) => tracing::warn!(error = %e, "warming up"),
        }
    });
    let closing = state.closing.clone();
    let shutdown = async move {
        shutdown.await;
        closing.send_replace(true);
    };
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    pruner.abort();
    reloader.abort();
    upkeep.abort();
    let flushed = tokio::task::spawn_blocking(move || store.shutdown())
        .await
        .map_err(std::io::Error::other)?;
    if let Err(e) = flushed {
        tracing::error!(error = %e, "flushing the store");
    }
    served
}
