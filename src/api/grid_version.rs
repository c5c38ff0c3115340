//! The grid version in force and everything the server builds from it: the assignment engine,
//! the `grids` and `kpi` tile sets and the service area. A new version replaces all of them at
//! once, without a restart, when the grid files change (`POST /api/v1/grids/reload`, or SIGHUP)
//! or when a version's valid-from day comes. Reports already made keep the grids they were
//! assigned to; new reports, tiles and lists follow the new version.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, FixedOffset, NaiveDate, Offset, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use crate::assign::{AssignConfig, Assigner};
use crate::config::Config;
use crate::grid::code::GridCode;
use crate::grid::import::{ImportOptions, ImportOutcome, grid_files_in, import_files};
use crate::grid::model::GridSet;
use crate::store::keys::Role;
use crate::tiles::sets::GridTiles;

/// The grids in force and what is built from them. Replaced whole, never changed in place, so
/// a request that took it sees one consistent version from start to end.
#[derive(Clone)]
pub struct GridsInForce {
    /// Every grid loaded, whatever its validity; the grids in force are chosen from it per day.
    pub loaded: Arc<GridSet>,
    /// The day (China Standard Time) the grids in force were chosen for.
    pub day: NaiveDate,
    /// The assignment engine over the grids in force.
    pub assigner: Arc<Assigner>,
    /// The `grids` tile set of the grids in force (the `kpi` tile set draws the same polygons).
    pub tiles: Arc<GridTiles>,
    /// West, south, east, north of the area where locations are accepted.
    pub service_area: [f64; 4],
    /// When this version was put in force.
    pub since: DateTime<Utc>,
}

/// Today in China Standard Time (UTC+8, no daylight saving), the calendar grids are valid in.
pub fn china_today() -> NaiveDate {
    let china = FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| Utc.fix());
    Utc::now().with_timezone(&china).date_naive()
}

/// The bounding box of `set`, widened by the configured margin: where locations are accepted.
fn service_area(config: &Config, set: &GridSet) -> [f64; 4] {
    let margin_deg = config.assign.service_area_margin_km / 111.0;
    crate::grid::model::bounds(set.grids().iter().map(|g| &g.geometry)).map_or(
        [-180.0, -90.0, 180.0, 90.0],
        |r| {
            [
                r.min().x - margin_deg * 1.3,
                r.min().y - margin_deg,
                r.max().x + margin_deg * 1.3,
                r.max().y + margin_deg,
            ]
        },
    )
}

impl GridsInForce {
    /// Puts `assigner`'s grids in force as they are (all of them, whatever their validity).
    pub fn from_assigner(config: &Config, assigner: Arc<Assigner>) -> Self {
        let set = Arc::clone(assigner.grids());
        Self {
            service_area: service_area(config, &set),
            tiles: Arc::new(GridTiles::build(Arc::clone(&set))),
            loaded: set,
            day: china_today(),
            assigner,
            since: Utc::now(),
        }
    }

    /// Chooses the grids of `loaded` in force on `day` and builds the engine and tiles over
    /// them (seconds for a whole city: run it off the async threads).
    pub fn build(config: &Config, loaded: Arc<GridSet>, day: NaiveDate) -> Self {
        let set = Arc::new(loaded.as_of(day));
        let assign = AssignConfig {
            snap_tolerance_m: config.assign.snap_tolerance_m,
            ..AssignConfig::default()
        };
        let (assigner, tiles) = rayon::join(
            || Arc::new(Assigner::new(Arc::clone(&set), assign)),
            || Arc::new(GridTiles::build(Arc::clone(&set))),
        );
        Self {
            service_area: service_area(config, &set),
            loaded,
            day,
            assigner,
            tiles,
            since: Utc::now(),
        }
    }

    /// The grids in force.
    pub fn set(&self) -> &Arc<GridSet> {
        self.assigner.grids()
    }

    /// A fingerprint of the grids in force (codes, names, boundaries): it changes with every
    /// new version, and tiles' ETags change with it.
    pub fn version(&self) -> u64 {
        crate::tiles::TileSet::version(&*self.tiles)
    }

    /// What a client is told about this version.
    pub fn info(&self) -> GridVersionInfo {
        let mut levels = BTreeMap::new();
        for g in self.set().grids() {
            *levels.entry(g.level().name().to_string()).or_insert(0) += 1;
        }
        GridVersionInfo {
            version: format!("{:016x}", self.version()),
            grids: self.set().len(),
            loaded: self.loaded.len(),
            levels,
            day: self.day,
            since: self.since,
        }
    }
}

/// A grid version, as `/api/v1/grids/version` and a reload tell it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GridVersionInfo {
    /// Fingerprint of the grids in force; tiles' ETags change with it.
    pub version: String,
    /// Grids in force.
    pub grids: usize,
    /// Grids loaded, including versions not in force on `day`.
    pub loaded: usize,
    /// Grids in force per level.
    pub levels: BTreeMap<String, usize>,
    /// The day the grids in force were chosen for (China Standard Time).
    #[schema(value_type = String, format = Date)]
    pub day: NaiveDate,
    /// When this version was put in force.
    pub since: DateTime<Utc>,
}

/// The answer to a reload.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReloadOutcome {
    /// Whether the grids in force changed.
    pub changed: bool,
    /// The version in force after the reload.
    pub current: GridVersionInfo,
    /// The version before.
    pub previous: GridVersionInfo,
    /// Repairs the import made (first 100).
    #[schema(value_type = Vec<Object>)]
    pub repairs: Vec<crate::grid::import::Repair>,
    /// Milliseconds taken to read the files and build the indexes and tiles.
    pub took_ms: u64,
}

/// Why a new grid version was not put in force (the old one stays).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The grid directory could not be listed.
    #[error("cannot list the grid directory {dir}: {source}")]
    Listing {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file could not be read, or features were refused: a partial city is never served.
    #[error(
        "the grid files in {dir} do not import cleanly ({failed} unreadable files, {refused} refused features{first}); run `gridscope import --strict` on them"
    )]
    NotClean {
        /// The directory.
        dir: PathBuf,
        /// Files not read.
        failed: usize,
        /// Features refused.
        refused: usize,
        /// The first problem, as text.
        first: String,
    },
    /// The server stopped while the new version was being built.
    #[error("the reload was interrupted: {0}")]
    Interrupted(String),
    /// The directory holds no grids in force today.
    #[error("no grids in force on {day} in {dir}")]
    Empty {
        /// The directory.
        dir: PathBuf,
        /// The day.
        day: NaiveDate,
    },
}

/// The directory the server reads its grids from: the configured one, else the demo city's.
pub fn grid_dir(config: &Config) -> &Path {
    config.grids.as_deref().unwrap_or(&config.demo_dir)
}

/// Reads every grid file in `dir`.
pub fn read_grid_dir(dir: &Path) -> Result<ImportOutcome, ReloadError> {
    let paths = grid_files_in(dir).map_err(|source| ReloadError::Listing {
        dir: dir.to_path_buf(),
        source,
    })?;
    Ok(import_files(&paths, &ImportOptions::default(), &|_, _| {}))
}

/// Reads every grid file in `dir`, refusing a directory that does not import cleanly: a new
/// version must not drop grids the old one had because one feature was bad.
fn read_clean_grid_dir(dir: &Path) -> Result<(GridSet, ImportOutcome), ReloadError> {
    let mut outcome = read_grid_dir(dir)?;
    if !outcome.failed_files.is_empty() || !outcome.refused.is_empty() {
        let first = outcome
            .failed_files
            .first()
            .map(|f| format!("{}: {}", f.file, f.reason))
            .or_else(|| {
                outcome
                    .refused
                    .first()
                    .map(|r| format!("{} feature {}: {}", r.file, r.feature, r.message))
            })
            .map(|t| format!("; first: {t}"))
            .unwrap_or_default();
        return Err(ReloadError::NotClean {
            dir: dir.to_path_buf(),
            failed: outcome.failed_files.len(),
            refused: outcome.refused.len(),
            first,
        });
    }
    let set = GridSet::new(std::mem::take(&mut outcome.grids));
    Ok((set, outcome))
}

/// Puts `next` in force (the grid and KPI tile sets with it) and returns the version before.
fn swap(state: &AppState, next: GridsInForce) -> Arc<GridsInForce> {
    state
        .tiles
        .replace_sets(super::tile_sets(&state.config, &next.tiles, &state.store));
    let previous = state.grids.swap(Arc::new(next));
    let now = state.grids.load();
    tracing::info!(
        version = %format!("{:016x}", now.version()),
        grids = now.set().len(),
        day = %now.day,
        "grid version in force"
    );
    previous
}

/// Whether two sets hold the same grids: codes, names, kinds, validity, boundaries and
/// resolved parents.
fn same_grids(a: &GridSet, b: &GridSet) -> bool {
    fn parent_code(set: &GridSet, id: crate::GridId) -> Option<&GridCode> {
        set.parent(id).map(|p| &set.grid(p).code)
    }
    a.len() == b.len()
        && a.grids()
            .iter()
            .zip(b.grids())
            .enumerate()
            .all(|(i, (x, y))| {
                let id = i as crate::GridId;
                x.code == y.code
                    && x.name == y.name
                    && x.kind == y.kind
                    && x.validity == y.validity
                    && x.geometry == y.geometry
                    && parent_code(a, id) == parent_code(b, id)
            })
}

/// Re-reads the grid directory and puts what it holds in force, if it differs. One reload runs
/// at a time; the old version serves until the new one is built.
pub async fn reload(state: &Arc<AppState>) -> Result<ReloadOutcome, ReloadError> {
    let _one_at_a_time = state.grid_reload.lock().await;
    let started = Instant::now();
    let dir = grid_dir(&state.config).to_path_buf();
    let worker = Arc::clone(state);
    let built = tokio::task::spawn_blocking(move || {
        let (loaded, outcome) = read_clean_grid_dir(&dir)?;
        let day = china_today();
        let current = worker.grids.load_full();
        let in_force = loaded.as_of(day);
        if in_force.is_empty() {
            return Err(ReloadError::Empty { dir, day });
        }
        if same_grids(&in_force, current.set()) {
            return Ok((None, outcome));
        }
        let next = GridsInForce::build(&worker.config, Arc::new(loaded), day);
        Ok((Some(next), outcome))
    })
    .await
    .map_err(|e| ReloadError::Interrupted(e.to_string()))??;
    let (next, outcome) = built;
    let previous = state.grids.load_full();
    let changed = next.is_some();
    if let Some(next) = next {
        swap(state, next);
    }
    let mut repairs = outcome.repairs;
    repairs.truncate(100);
    Ok(ReloadOutcome {
        changed,
        current: state.grids.load().info(),
        previous: previous.info(),
        repairs,
        took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

/// Puts in force the grids valid today when the day has changed since they were chosen (a
/// version whose valid-from day has come, or one whose valid-to day has passed).
pub async fn follow_calendar(state: &Arc<AppState>) {
    put_in_force_on(state, china_today()).await;
}

/// Puts in force the loaded grids valid on `today`, unless they were chosen for that day
/// already; the engine and tiles are rebuilt only when the grids differ.
pub async fn put_in_force_on(state: &Arc<AppState>, today: NaiveDate) {
    if state.grids.load().day == today {
        return;
    }
    let _one_at_a_time = state.grid_reload.lock().await;
    let current = state.grids.load_full();
    if current.day == today {
        return;
    }
    let worker = Arc::clone(state);
    let next = tokio::task::spawn_blocking(move || {
        let in_force = current.loaded.as_of(today);
        if same_grids(&in_force, current.set()) {
            GridsInForce {
                day: today,
                ..(*current).clone()
            }
        } else {
            GridsInForce::build(&worker.config, Arc::clone(&current.loaded), today)
        }
    })
    .await;
    match next {
        Ok(next) => {
            swap(state, next);
        }
        Err(e) => tracing::error!(error = %e, "choosing the grids in force today"),
    }
}

/// The grid version in force.
#[utoipa::path(get, path = "/api/v1/grids/version", tag = "grids",
    responses((status = 200, body = GridVersionInfo)))]
pub async fn current(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<GridVersionInfo>, ApiError> {
    caller.may_read_public(&state)?;
    Ok(Json(state.grids.load().info()))
}

/// Re-reads the grid files (written by `gridscope import --out`) and puts them in force if
/// they differ from the grids in force: assignment, grid lists and the `grids` and `kpi` tiles
/// follow at once. Files that do not import cleanly are refused and the old version stays.
#[utoipa::path(post, path = "/api/v1/grids/reload", tag = "grids",
    security(("api_key" = [])),
    responses(
        (status = 200, body = ReloadOutcome),
        (status = 403, body = ErrorBody, description = "Not an admin key"),
        (status = 422, body = ErrorBody, description = "The grid files do not import cleanly"),
    ))]
pub async fn reload_now(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<ReloadOutcome>, ApiError> {
    caller.require(&[Role::Admin], "load grid versions")?;
    reload(&state).await.map(Json).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "grid_version_refused",
            e.to_string(),
        )
        .at("grids")
    })
}
