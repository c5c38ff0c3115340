//! What every tile set offers: its layers and zoom range for TileJSON, a data version for
//! caches, and a way to render one tile.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use thiserror::Error;

use super::encode::EncodeError;
use super::tile_id::TileId;
use crate::grid::code::Level;
use crate::report::Channel;
use crate::store::query::ReportFilter;

/// Which reports a report-based tile (heat, report points) shows, and for whom.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TileFilter {
    /// Reported at or after (default: 30 days before now).
    pub from: Option<DateTime<Utc>>,
    /// Reported before (default: now).
    pub to: Option<DateTime<Utc>>,
    /// Category ids or class prefixes such as `matter:06`.
    pub categories: Vec<String>,
    /// Only this channel.
    pub channel: Option<Channel>,
    /// For KPI tiles: the grid level to show (default: chosen from the zoom).
    pub level: Option<Level>,
    /// Whether the reader is anonymous: aggregates then hide cells with few reports.
    pub public: bool,
}

impl TileFilter {
    /// The time window: the given bounds, else the last 30 days up to `now`.
    pub fn window(&self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let to = self.to.unwrap_or(now);
        (self.from.unwrap_or(to - chrono::Duration::days(30)), to)
    }

    /// The reports this filter selects as of `now`, within `bbox` (west, south, east, north)
    /// when given.
    pub fn reports(&self, now: DateTime<Utc>, bbox: Option<[f64; 4]>) -> ReportFilter {
        let (from, to) = self.window(now);
        ReportFilter {
            categories: self.categories.clone(),
            channel: self.channel,
            from: Some(from),
            to: Some(to),
            bbox,
            ..ReportFilter::default()
        }
    }

    /// The filter as a cache key. A window relative to now is keyed by the current minute, so
    /// its tiles roll forward even when no report arrives.
    pub fn cache_key(&self, now: DateTime<Utc>) -> String {
        let relative = self.from.is_none() || self.to.is_none();
        format!(
            "{:?}|{:?}|{}|{:?}|{:?}|{}|{}",
            self.from.map(|t| t.timestamp_millis()),
            self.to.map(|t| t.timestamp_millis()),
            self.categories.join(","),
            self.channel.map(Channel::name),
            self.level.map(Level::name),
            self.public,
            if relative { now.timestamp() / 60 } else { 0 },
        )
    }
}

/// Extent of every tile, in tile units per side (MVT's customary 4096).
pub const EXTENT: u32 = 4096;

/// Tile units kept around each tile so that lines and fills join seamlessly across tiles.
pub const BUFFER: u32 = 64;

/// One layer of a tile set, as TileJSON 3.0 `vector_layers` describes it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LayerInfo {
    /// Layer name inside the tiles.
    pub id: String,
    /// What the layer shows.
    pub description: String,
    /// Property names and what they hold.
    pub fields: BTreeMap<String, String>,
    /// First zoom with features in this layer.
    pub minzoom: u8,
    /// Last zoom with features in this layer.
    pub maxzoom: u8,
}

impl LayerInfo {
    /// A layer description from name, text, zoom band and `(field, meaning)` pairs.
    pub fn new(id: &str, description: &str, zooms: (u8, u8), fields: &[(&str, &str)]) -> Self {
        Self {
            id: id.to_string(),
            description: description.to_string(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            minzoom: zooms.0,
            maxzoom: zooms.1,
        }
    }
}

/// Why a tile could not be made.
#[derive(Debug, Error)]
pub enum TileError {
    /// Encoding failed.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// Reading the data behind the tile failed.
    #[error("cannot read the data for the tile: {0}")]
    Data(String),
}

/// A named collection of layers served as XYZ vector tiles.
pub trait TileSet: Send + Sync {
    /// The name in URLs: `/tiles/{name}/{z}/{x}/{y}.mvt`.
    fn name(&self) -> &str;
    /// What the tile set shows, for TileJSON.
    fn description(&self) -> &str;
    /// The layers, for TileJSON's `vector_layers`.
    fn layers(&self) -> Vec<LayerInfo>;
    /// First and last zoom served; other zooms are 404.
    fn zooms(&self) -> (u8, u8);
    /// West, south, east, north of the data, in degrees.
    fn bounds(&self) -> [f64; 4];
    /// Whether the tiles may be read without a key (when the server allows public reading).
    fn is_public(&self) -> bool;
    /// A number that changes whenever the data behind any tile changes.
    fn version(&self) -> u64;
    /// Whether tiles depend on a [`TileFilter`] (report-based sets); others refuse filters.
    fn takes_filters(&self) -> bool {
        false
    }
    /// The encoded tile, or an empty vector when no feature touches it.
    fn render(&self, tile: TileId, filter: &TileFilter) -> Result<Vec<u8>, TileError>;
}
