//! What every tile set offers: its layers and zoom range for TileJSON, a data version for
//! caches, and a way to render one tile.

use std::collections::BTreeMap;

use serde::Serialize;
use thiserror::Error;

use super::encode::EncodeError;
use super::tile_id::TileId;

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
    /// The encoded tile, or an empty vector when no feature touches it.
    fn render(&self, tile: TileId) -> Result<Vec<u8>, TileError>;
}
