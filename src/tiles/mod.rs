//! Vector tiles (Mapbox Vector Tile 2.1) of grids, reports, heat and KPIs.
//!
//! | piece | module |
//! |---|---|
//! | tile addresses, Web Mercator, world units | [`tile_id`] |
//! | shared-border topology and per-zoom simplification thresholds | [`topology`] |
//! | projecting, clipping and repairing polygons in tile space | [`clip`] |
//! | writing MVT layers and features | [`encode`] |
//! | the tile set trait and layer descriptions | [`layer`] |
//! | TileJSON 3.0 | [`tilejson`] |
//! | the in-memory cache of compressed tiles, HTTP content negotiation | [`cache`] |
//! | the tile sets: grids, heat (H3), report points | [`sets`] |
//! | reproducible tile lists for benchmarks and checks | [`sample`] |
//! | offline packages (PMTiles) | [`package`] |

pub mod cache;
pub mod clip;
pub mod encode;
pub mod layer;
pub mod package;
pub mod sample;
pub mod sets;
pub mod tile_id;
pub mod tilejson;
pub mod topology;

pub use layer::{LayerInfo, TileError, TileFilter, TileSet};
pub use tile_id::TileId;
