//! The `kpi` tile set: grid polygons of one level with their governance KPIs as properties,
//! for choropleths (结案率, 按期结案率, 满意率, overdue, reports per km²).
//!
//! The level follows the zoom (districts up to 8, streets 9–10, communities 11–12, level-3
//! grids from 13) unless `level` is given. KPIs are computed once per level, filter and data
//! version for the whole city, not per tile; anonymous readers see no numbers for grids with
//! fewer than k reports.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use mvt::Tile;

use super::{GridTiles, ThrottledVersion};
use crate::grid::code::Level;
use crate::measure::area_m2;
use crate::stats::kpi::{KpiCounts, per_grid};
use crate::store::Store;
use crate::tiles::encode::Prop;
use crate::tiles::layer::{EXTENT, LayerInfo, TileError, TileFilter, TileSet};
use crate::tiles::tile_id::TileId;

/// First and last zoom served.
pub const ZOOMS: (u8, u8) = (0, 18);

/// How many KPI tables (level × filter × version) are kept.
const KEPT: usize = 8;

/// The level shown at zoom `z` when none is asked for.
pub fn level_for_zoom(z: u8) -> Level {
    match z {
        0..=8 => Level::District,
        9..=10 => Level::One,
        11..=12 => Level::Two,
        _ => Level::Three,
    }
}

type KpiTable = Arc<HashMap<String, KpiCounts>>;

/// The `kpi` tile set.
pub struct KpiTiles {
    grids: Arc<GridTiles>,
    version: ThrottledVersion,
    privacy_k: u64,
    areas_km2: HashMap<String, f64>,
    tables: Mutex<Vec<(String, KpiTable)>>,
}

impl KpiTiles {
    /// KPI choropleths of `grids` over the reports in `store`.
    pub fn new(
        grids: Arc<GridTiles>,
        store: Arc<Store>,
        privacy_k: u64,
        refresh: Duration,
    ) -> Self {
        let areas_km2 = grids
            .grids()
            .grids()
            .iter()
            .map(|g| (g.code.as_str().to_string(), area_m2(&g.geometry) / 1e6))
            .collect();
        Self {
            grids,
            version: ThrottledVersion::new(store, refresh),
            privacy_k: privacy_k.max(1),
            areas_km2,
            tables: Mutex::new(Vec::new()),
        }
    }

    /// KPIs per grid of `level` for `filter`, computed once per data version.
    fn table(&self, level: Level, filter: &TileFilter) -> Result<KpiTable, TileError> {
        let now = Utc::now();
        let key = format!(
            "{}|{}|{}",
            level.name(),
            filter.cache_key(now),
            self.version.get()
        );
        let mut tables = self
            .tables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, t)) = tables.iter().find(|(k, _)| *k == key) {
            return Ok(Arc::clone(t));
        }
        let query = filter.reports(now, None);
        let table: KpiTable = Arc::new(
            self.version
                .store()
                .read(|c| per_grid(c, level, &query, now))
                .map_err(|e| TileError::Data(e.to_string()))?,
        );
        if tables.len() >= KEPT {
            tables.remove(0);
        }
        tables.push((key, Arc::clone(&table)));
        Ok(table)
    }
}

const FIELDS: [(&str, &str); 10] = [
    ("code", "grid code"),
    ("name", "grid name"),
    ("level", "district, 1, 2 or 3"),
    ("reports", "reports in the window"),
    ("per_km2", "reports per km²"),
    (
        "closure_rate",
        "结案率: closed / due (0–1; absent when nothing is due)",
    ),
    ("on_time_rate", "按期结案率: closed on time / due (0–1)"),
    (
        "satisfaction_rate",
        "满意率: satisfied or basically satisfied / rated (0–1)",
    ),
    ("overdue", "open past their deadline now"),
    ("parent", "code of the parent grid"),
];

impl TileSet for KpiTiles {
    fn name(&self) -> &str {
        "kpi"
    }

    fn description(&self) -> &str {
        "grids with their KPIs for choropleths; the level follows the zoom unless level= is \
         given; filters: from, to, category, channel, level; default window: the last 30 days"
    }

    fn layers(&self) -> Vec<LayerInfo> {
        vec![LayerInfo::new(
            "kpi",
            "grids of one level with KPIs",
            ZOOMS,
            &FIELDS,
        )]
    }

    fn zooms(&self) -> (u8, u8) {
        ZOOMS
    }

    fn bounds(&self) -> [f64; 4] {
        self.grids.bounds()
    }

    fn is_public(&self) -> bool {
        true
    }

    fn version(&self) -> u64 {
        self.version.get() ^ self.grids.version().rotate_left(17)
    }

    fn takes_filters(&self) -> bool {
        true
    }

    fn render(&self, tile: TileId, filter: &TileFilter) -> Result<Vec<u8>, TileError> {
        let level = filter.level.unwrap_or_else(|| level_for_zoom(tile.z));
        let table = self.table(level, filter)?;
        let k = if filter.public { self.privacy_k } else { 1 };
        let mut out = Tile::new(EXTENT);
        self.grids
            .render_level(level, "kpi", tile, &mut out, &|code, props| {
                let c = table.get(code.as_str()).copied().unwrap_or_default();
                if c.reports > 0 && c.reports < k {
                    return;
                }
                props.push(("reports", Prop::Int(c.reports as i64)));
                props.push(("overdue", Prop::Int(c.overdue as i64)));
                if let Some(a) = self.areas_km2.get(code.as_str()).filter(|a| **a > 0.0) {
                    props.push((
                        "per_km2",
                        Prop::Double((c.reports as f64 / a * 100.0).round() / 100.0),
                    ));
                }
                let rates = [
                    ("closure_rate", c.closure_rate()),
                    ("on_time_rate", c.on_time_rate()),
                    ("satisfaction_rate", c.satisfaction_rate()),
                ];
                for (name, rate) in rates {
                    if let Some(r) = rate {
                        props.push((name, Prop::Double((r * 10_000.0).round() / 10_000.0)));
                    }
                }
            })?;
        Ok(crate::tiles::encode::tile_bytes(&out)?)
    }
}
