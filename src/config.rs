//! Server configuration: embedded defaults, overridden by a TOML file, overridden by
//! environment variables. `GRIDSCOPE_LISTEN=0.0.0.0:8080` sets `listen`;
//! `GRIDSCOPE_LIMITS__BODY_BYTES=1048576` sets `[limits] body_bytes` (sections joined by `__`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::report::DeadlineRules;

/// Everything `gridscope serve` can be told.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: String,
    /// The DuckDB file (created if missing).
    pub database: PathBuf,
    /// Directory of grid files to serve; empty: the Zhengzhou demo city, generated (or reused
    /// from `demo_dir`) on start.
    pub grids: Option<PathBuf>,
    /// Where the demo city is written and reused from.
    pub demo_dir: PathBuf,
    /// Divide the demo city's counts by this (a small city for quick trials and tests).
    pub demo_scale_down: usize,
    /// Reports in the demo history loaded on the first start on the demo city (into an empty
    /// database; divided by `demo_scale_down`); 0 for none.
    pub demo_history: u64,
    /// On the demo city, new reports added per second while serving (so the map wall moves);
    /// 0 for none.
    pub demo_live_per_sec: f64,
    /// Public URL of this server as clients see it (behind a reverse proxy); used in links.
    pub base_url: Option<String>,
    /// Whether tiles, aggregates, grids and categories may be read without a key.
    pub public_read: bool,
    /// Whether Open311 `GET requests` may be read without a key (GeoReport clients often send
    /// none); reporter keys always see only their own.
    pub open311_public_requests: bool,
    /// Where the first admin key is written when the database has none.
    pub admin_key_file: PathBuf,
    /// Request limits.
    pub limits: Limits,
    /// Assignment settings.
    pub assign: AssignSettings,
    /// Deadlines per category and the working calendar.
    pub deadlines: DeadlineRules,
    /// Storage settings.
    pub store: StoreSettings,
    /// Vector tiles.
    pub tiles: TileSettings,
    /// Logging.
    pub log: LogSettings,
    /// The map wall page.
    pub wall: WallSettings,
}

/// The map wall page (`/`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WallSettings {
    /// The title across the top of the wall.
    pub title: String,
    /// Where a read-only key for the wall is written on the first start (the server logs the
    /// wall's URL with it); empty: none is made.
    pub key_file: PathBuf,
    /// A basemap under the grids, where a site has one: an XYZ raster tile URL template
    /// (`{z}/{x}/{y}`, e.g. a 天地图 WMTS URL with its key). None by default: the wall needs no
    /// network beyond this server.
    pub basemap_url: Option<String>,
    /// Attribution shown for the basemap.
    pub basemap_attribution: Option<String>,
}

impl Default for WallSettings {
    fn default() -> Self {
        Self {
            title: "郑州市网格化治理 · 一屏观全域".into(),
            key_file: "gridscope-wall.key".into(),
            basemap_url: None,
            basemap_attribution: None,
        }
    }
}

/// Vector tile settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TileSettings {
    /// Memory for cached tiles (raw and compressed), in MiB.
    pub cache_mb: u64,
    /// Heat tiles for anonymous readers leave out cells with fewer reports than this.
    pub privacy_k: u64,
    /// Report-based tiles (heat, report points) pick up new reports at most this often, in
    /// milliseconds.
    pub refresh_ms: u64,
}

impl Default for TileSettings {
    fn default() -> Self {
        Self {
            cache_mb: 256,
            privacy_k: 5,
            refresh_ms: 1_000,
        }
    }
}

/// Request limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request body in bytes.
    pub body_bytes: usize,
    /// Most points or reports in one batch request.
    pub batch_size: usize,
    /// Longest time a request may take, in seconds.
    pub request_timeout_s: u64,
    /// Requests per second per key, unless the key sets its own.
    pub rate_per_sec: u32,
    /// Requests per second per client address without a key.
    pub anonymous_rate_per_sec: u32,
    /// Tile requests per second per client address without a key (a map view loads dozens
    /// of tiles at once).
    pub anonymous_tile_rate_per_sec: u32,
    /// Largest page of a listing.
    pub max_page: usize,
}

/// Assignment settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AssignSettings {
    /// Points within this many metres of a level-3 grid snap to it.
    pub snap_tolerance_m: f64,
    /// Points farther than this many km outside the city's bounding box are refused as
    /// outside the service area (almost always a wrong coordinate system).
    pub service_area_margin_km: f64,
}

/// Storage settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// Most writes in one group commit.
    pub max_batch: usize,
    /// Fold the write-ahead log into the database file as soon as the writer is idle, once
    /// the log has reached this many MiB. A commit waits for a checkpoint of its table, so
    /// checkpoints are kept to pauses in the writes and kept small (about 0.1 s for 16 MiB).
    pub checkpoint_idle_wal_mb: u64,
    /// Fold it at this many MiB even while writes are flowing (a sustained stream of reports
    /// then pauses for the checkpoint: about 1.4 s for 256 MiB). Bounds the log, and the
    /// replay of it at the next start.
    pub checkpoint_wal_mb: u64,
    /// Threads DuckDB may run one statement on. The server answers many requests at once,
    /// each statement on its own thread, so 1 (the default) already keeps every core busy;
    /// more lets a single large query finish sooner on an idle machine, but a statement whose
    /// work went to DuckDB's shared workers has its own thread spin while it waits, taking a
    /// core from the other requests and from the writer.
    pub query_threads: usize,
}

/// Logging.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `gridscope=debug,tower_http=info`.
    pub filter: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            database: "gridscope.duckdb".into(),
            grids: None,
            demo_dir: "demo-out".into(),
            demo_scale_down: 1,
            demo_history: 5_000_000,
            demo_live_per_sec: 1.0,
            base_url: None,
            public_read: true,
            open311_public_requests: false,
            admin_key_file: "gridscope-admin.key".into(),
            limits: Limits::default(),
            assign: AssignSettings::default(),
            deadlines: DeadlineRules::default(),
            store: StoreSettings::default(),
            tiles: TileSettings::default(),
            log: LogSettings::default(),
            wall: WallSettings::default(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_bytes: 64 << 20,
            batch_size: 100_000,
            request_timeout_s: 60,
            rate_per_sec: 100_000,
            anonymous_rate_per_sec: 1_000,
            anonymous_tile_rate_per_sec: 100_000,
            max_page: 1_000,
        }
    }
}

impl Default for AssignSettings {
    fn default() -> Self {
        Self {
            snap_tolerance_m: 50.0,
            service_area_margin_km: 50.0,
        }
    }
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            max_batch: 4096,
            checkpoint_idle_wal_mb: 16,
            checkpoint_wal_mb: 256,
            query_threads: 1,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: "text".into(),
            filter: "info".into(),
        }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown keys or wrong types.
    #[error("{origin}: {message}")]
    Invalid {
        /// The file or `environment`.
        origin: String,
        /// What was wrong.
        message: String,
    },
}

/// `GRIDSCOPE_*` variables that are not server settings: the test and benchmark scripts' own
/// (the Python oracles' interpreter and virtualenv, a tile list for a benchmark, snapshot
/// rewriting). The server passes over them without warning.
const TOOLING_VARS: [&str; 4] = ["PYTHON", "VENV", "TILE_LIST", "UPDATE_SNAPSHOTS"];

impl Config {
    /// Loads defaults, then `file` (if any), then `GRIDSCOPE_*` variables from `env`. Returns
    /// the configuration and warnings about variables that name no setting (they are ignored:
    /// other tools share the prefix). Unknown keys in the file are errors.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Config, Vec<String>), ConfigError> {
        let mut table = toml::Table::new();
        let mut origin = "defaults".to_string();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            table = text
                .parse()
                .map_err(|e: toml::de::Error| ConfigError::Invalid {
                    origin: path.display().to_string(),
                    message: e.to_string(),
                })?;
            origin = path.display().to_string();
            deserialize(&table, &origin)?;
        }
        let mut warnings = Vec::new();
        let mut vars: Vec<(String, String)> = env.into_iter().collect();
        vars.sort();
        for (name, value) in vars {
            let Some(key) = name.strip_prefix("GRIDSCOPE_") else {
                continue;
            };
            if key == "CONFIG" || TOOLING_VARS.contains(&key) {
                continue;
            }
            let path: Vec<String> = key.split("__").map(str::to_ascii_lowercase).collect();
            let mut candidate = table.clone();
            set_path(&mut candidate, &path, env_value(&value));
            match deserialize(&candidate, "environment") {
                Err(ConfigError::Invalid { message, .. }) if message.contains("unknown field") => {
                    warnings.push(format!("{name} names no setting; ignored"));
                }
                _ => {
                    table = candidate;
                    origin = format!("{origin} with {name}");
                }
            }
        }
        Ok((deserialize(&table, &origin)?, warnings))
    }
}

fn deserialize(table: &toml::Table, origin: &str) -> Result<Config, ConfigError> {
    toml::Value::Table(table.clone())
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::Invalid {
            origin: origin.to_string(),
            message: e.to_string(),
        })
}

/// A variable's value as TOML when it parses as a scalar (numbers, booleans), else a string.
fn env_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    match path {
        [] => {}
        [last] => {
            table.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(t) = entry {
                set_path(t, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_file_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gridscope.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:9000\"\n[limits]\nbatch_size = 10\n",
        )
        .unwrap();
        let env = [
            ("GRIDSCOPE_LIMITS__BATCH_SIZE".to_string(), "20".to_string()),
            ("GRIDSCOPE_PUBLIC_READ".to_string(), "false".to_string()),
            ("HOME".to_string(), "/root".to_string()),
        ];
        let (c, warnings) = Config::load(Some(&file), env).unwrap();
        assert_eq!(c.listen, "0.0.0.0:9000");
        assert_eq!(c.limits.batch_size, 20);
        assert!(!c.public_read);
        assert_eq!(c.limits.max_page, Limits::default().max_page);
        assert!(warnings.is_empty());
    }

    #[test]
    fn unknown_settings_warn_from_the_environment_and_fail_from_a_file() {
        let env = [
            ("GRIDSCOPE_LISTN".to_string(), "x".to_string()),
            (
                "GRIDSCOPE_PYTHON".to_string(),
                "/usr/bin/python3".to_string(),
            ),
        ];
        let (c, warnings) = Config::load(None, env).unwrap();
        assert_eq!(c.listen, Config::default().listen);
        assert_eq!(warnings, ["GRIDSCOPE_LISTN names no setting; ignored"]);
        let env = [(
            "GRIDSCOPE_LIMITS__BATCH_SIZE".to_string(),
            "many".to_string(),
        )];
        assert!(Config::load(None, env).is_err());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gridscope.toml");
        std::fs::write(&file, "listn = \"x\"\n").unwrap();
        let e = Config::load(Some(&file), []).unwrap_err().to_string();
        assert!(e.contains("listn"), "{e}");
    }
}
