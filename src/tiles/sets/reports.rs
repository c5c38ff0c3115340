//! The `reports` tile set: one point per report at high zooms, with its category, status, age
//! and whether it is overdue. Reports are not public: these tiles need a key.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use mvt::Tile;

use super::ThrottledVersion;
use crate::store::Store;
use crate::store::query::points;
use crate::tiles::clip::TileFrame;
use crate::tiles::encode::{LayerBuilder, Prop};
use crate::tiles::layer::{BUFFER, EXTENT, LayerInfo, TileError, TileFilter, TileSet};
use crate::tiles::tile_id::{TileId, lon_lat_to_world};

/// First and last zoom served.
pub const ZOOMS: (u8, u8) = (14, 18);

/// Most points in one tile (newest first); a tile with more shows the newest.
pub const MAX_POINTS: usize = 20_000;

/// The `reports` tile set over a store's reports.
pub struct ReportTiles {
    version: ThrottledVersion,
    bounds: [f64; 4],
}

impl ReportTiles {
    /// Points of the reports in `store`, over `bounds`; new reports show within `refresh`.
    pub fn new(store: Arc<Store>, bounds: [f64; 4], refresh: Duration) -> Self {
        Self {
            version: ThrottledVersion::new(store, refresh),
            bounds,
        }
    }
}

impl TileSet for ReportTiles {
    fn name(&self) -> &str {
        "reports"
    }

    fn description(&self) -> &str {
        "report points (high zooms only; needs a key); filters: from, to, category, channel; \
         default window: the last 30 days"
    }

    fn layers(&self) -> Vec<LayerInfo> {
        vec![LayerInfo::new(
            "reports",
            "one point per report",
            ZOOMS,
            &[
                ("category", "GB/T 47678.5 category, e.g. matter:06002"),
                (
                    "status",
                    "reported, accepted, rejected, dispatched, handled or closed",
                ),
                ("age_h", "hours since it was reported"),
                ("overdue", "open past its deadline"),
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
        false
    }

    fn version(&self) -> u64 {
        self.version.get()
    }

    fn takes_filters(&self) -> bool {
        true
    }

    fn render(&self, tile: TileId, filter: &TileFilter) -> Result<Vec<u8>, TileError> {
        let now = Utc::now();
        let query = filter.reports(now, Some(tile.lon_lat_bounds()));
        let mut found = self
            .version
            .store()
            .read(|c| points(c, &query, MAX_POINTS))
            .map_err(|e| TileError::Data(e.to_string()))?;
        found.sort_unstable_by_key(|p| p.id.0);
        let frame = TileFrame::new(tile, EXTENT, BUFFER);
        let extent = f64::from(EXTENT);
        let mut out = Tile::new(EXTENT);
        let mut layer = LayerBuilder::new(&out, "reports");
        for p in found {
            let [x, y] = frame.project_f64(lon_lat_to_world(p.lon, p.lat));
            // Each point belongs to the one tile it falls in.
            if !(0.0..extent).contains(&x) || !(0.0..extent).contains(&y) {
                continue;
            }
            let age_h = (now - p.reported_at).num_minutes() as f64 / 60.0;
            layer.point(
                p.id.0 as u64,
                [x.floor() as i32, y.floor() as i32],
                &[
                    ("category", Prop::Str(&p.category)),
                    ("status", Prop::Str(&p.status)),
                    ("age_h", Prop::Double((age_h * 10.0).round() / 10.0)),
                    ("overdue", Prop::Bool(p.overdue)),
                ],
            )?;
        }
        layer.finish(&mut out)?;
        Ok(crate::tiles::encode::tile_bytes(&out)?)
    }
}
