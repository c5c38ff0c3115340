//! The `heat` tile set: H3 hexagons with the number of reports in each, at a resolution chosen
//! from the zoom, for any time window, category or channel. Anonymous readers do not see cells
//! with fewer than k reports (k is configurable), so no single household's report shows.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use h3o::{CellIndex, Resolution};
use mvt::Tile;

use super::ThrottledVersion;
use crate::store::Store;
use crate::store::query::h3_counts;
use crate::tiles::clip::{PolygonClipper, TileFrame};
use crate::tiles::encode::{LayerBuilder, Prop};
use crate::tiles::layer::{BUFFER, EXTENT, LayerInfo, TileError, TileFilter, TileSet};
use crate::tiles::tile_id::{TileId, lon_lat_to_world};

/// First and last zoom served.
pub const ZOOMS: (u8, u8) = (5, 18);

/// The H3 resolution shown at zoom `z`: hexagons a few dozen to a few hundred tile units wide.
pub fn resolution_for_zoom(z: u8) -> u8 {
    match z {
        0..=8 => 6,
        9..=10 => 7,
        11..=12 => 8,
        13..=14 => 9,
        _ => 10,
    }
}

/// The `heat` tile set over a store's reports.
pub struct HeatTiles {
    version: ThrottledVersion,
    bounds: [f64; 4],
    privacy_k: u64,
}

impl HeatTiles {
    /// Heat of the reports in `store`, over `bounds`; anonymous readers see only cells with at
    /// least `privacy_k` reports; new reports show within `refresh`.
    pub fn new(store: Arc<Store>, bounds: [f64; 4], privacy_k: u64, refresh: Duration) -> Self {
        Self {
            version: ThrottledVersion::new(store, refresh),
            bounds,
            privacy_k: privacy_k.max(1),
        }
    }
}

/// Degrees of margin around a tile so that hexagons centred just outside it are counted.
fn margin_deg(res: u8) -> f64 {
    Resolution::try_from(res).map_or(0.05, |r| r.edge_length_km() * 2.5 / 111.0)
}

impl TileSet for HeatTiles {
    fn name(&self) -> &str {
        "heat"
    }

    fn description(&self) -> &str {
        "H3 hexagons with report counts (resolution 6 at zoom 8 and below to 10 from zoom 15); \
         filters: from, to, category, channel; default window: the last 30 days"
    }

    fn layers(&self) -> Vec<LayerInfo> {
        vec![LayerInfo::new(
            "heat",
            "reports per H3 cell",
            ZOOMS,
            &[
                ("cell", "H3 cell index (hexadecimal)"),
                ("count", "reports in the cell and window"),
                ("res", "H3 resolution"),
            ],
        )]
    }

    fn zooms(&self) -> (u8, u8) {
        ZOOMS
    }

    fn bounds(&self) -> [f64; 4] {
        self.bounds
    }

    fn is_public(&self) -> bool {
        true
    }

    fn version(&self) -> u64 {
        self.version.get()
    }

    fn takes_filters(&self) -> bool {
        true
    }

    fn render(&self, tile: TileId, filter: &TileFilter) -> Result<Vec<u8>, TileError> {
        let res = resolution_for_zoom(tile.z);
        let [w, s, e, n] = tile.lon_lat_bounds();
        let m = margin_deg(res);
        let query = filter.reports(Utc::now(), Some([w - m * 1.3, s - m, e + m * 1.3, n + m]));
        let min_count = if filter.public { self.privacy_k } else { 1 };
        let mut counts = self
            .version
            .store()
            .read(|c| h3_counts(c, &query, res, min_count))
            .map_err(|e| TileError::Data(e.to_string()))?;
        counts.sort_unstable();
        let frame = TileFrame::new(tile, EXTENT, BUFFER);
        let (lo, hi) = frame.limits();
        let mut out = Tile::new(EXTENT);
        let mut layer = LayerBuilder::new(&out, "heat");
        let mut clipper = PolygonClipper::default();
        let mut ring: Vec<[f64; 2]> = Vec::with_capacity(7);
        for (cell, count) in counts {
            let Ok(index) = CellIndex::try_from(cell) else {
                continue;
            };
            ring.clear();
            for v in index.boundary().iter() {
                ring.push(frame.project_f64(lon_lat_to_world(v.lng(), v.lat())));
            }
            // H3 boundaries run counter-clockwise on the map; exteriors here run clockwise.
            ring.reverse();
            clipper.begin();
            clipper.add_ring(&ring, lo, hi);
            let shapes = clipper.finish();
            let name = index.to_string();
            layer.polygon(
                cell,
                &shapes,
                &[
                    ("cell", Prop::Str(&name)),
                    ("count", Prop::Int(count as i64)),
                    ("res", Prop::Int(i64::from(res))),
                ],
            )?;
        }
        layer.finish(&mut out)?;
        Ok(crate::tiles::encode::tile_bytes(&out)?)
    }
}
