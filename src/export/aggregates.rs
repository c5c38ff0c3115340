//! Aggregates as feature tables: H3 heat cells with their report counts, and grids of one level
//! with their governance KPIs, for choropleths and further analysis in a GIS.

use std::collections::HashMap;

use duckdb::types::Value;
use h3o::CellIndex;

use super::{ColumnType, FeatureTable};
use crate::grid::model::{GridId, GridSet};
use crate::measure::area_m2;
use crate::stats::kpi::KpiCounts;

/// One row per H3 cell of resolution `res`: its index (hex), resolution and number of reports,
/// with the cell's hexagon (or pentagon) as geometry. Counts are of the caller's choosing
/// (already filtered and privacy-suppressed); cells come out in index order.
pub fn heat_table(counts: &[(u64, u64)], res: u8) -> FeatureTable {
    let mut table = FeatureTable::new(vec![
        ("h3", ColumnType::Text),
        ("resolution", ColumnType::BigInt),
        ("reports", ColumnType::BigInt),
    ]);
    let mut sorted = counts.to_vec();
    sorted.sort_unstable();
    for (cell, count) in sorted {
        let Ok(index) = CellIndex::try_from(cell) else {
            continue;
        };
        let mut ring: Vec<geo::Coord<f64>> = index
            .boundary()
            .iter()
            .map(|v| geo::coord! { x: v.lng(), y: v.lat() })
            .collect();
        if let Some(&first) = ring.first() {
            ring.push(first);
        }
        table.push(
            vec![
                Value::Text(index.to_string()),
                Value::BigInt(i64::from(res)),
                Value::BigInt(count as i64),
            ],
            geo::Polygon::new(geo::LineString(ring), Vec::new()),
        );
    }
    table
}

/// The KPI columns of [`kpi_table`], after the grid's code, name, level, parent and area.
const KPI_COLUMNS: [&str; 17] = [
    "reports",
    "accepted",
    "due",
    "closed",
    "closed_on_time",
    "rated",
    "satisfied",
    "reworked",
    "extended",
    "overdue",
    "acceptance_rate",
    "closure_rate",
    "on_time_rate",
    "satisfaction_rate",
    "rework_rate",
    "extension_rate",
    "per_km2",
];

/// One row per grid in `ids`: code, name, level, parent code and area in km², then its KPI
/// counts and rates from `counts` (keyed by grid code; a grid without reports has zero counts
/// and no rates), with the grid's boundary as geometry. A grid with fewer than `k` reports (but
/// some) has no numbers at all, so no single report can be singled out in public aggregates.
pub fn kpi_table(
    grids: &GridSet,
    ids: &[GridId],
    counts: &HashMap<String, KpiCounts>,
    k: u64,
) -> FeatureTable {
    let mut columns = vec![
        ("code", ColumnType::Text),
        ("name", ColumnType::Text),
        ("level", ColumnType::Text),
        ("parent", ColumnType::Text),
        ("area_km2", ColumnType::Double),
    ];
    columns.extend(KPI_COLUMNS.iter().map(|&name| {
        let kind = if name.ends_with("_rate") || name == "per_km2" {
            ColumnType::Double
        } else {
            ColumnType::BigInt
        };
        (name, kind)
    }));
    let mut table = FeatureTable::new(columns);
    for &id in ids {
        let g = grids.grid(id);
        let area_km2 = area_m2(&g.geometry) / 1e6;
        let mut row = vec![
            Value::Text(g.code.as_str().to_string()),
            Value::Text(g.name.to_string()),
            Value::Text(g.level().name().to_string()),
            grids.parent(id).map_or(Value::Null, |p| {
                Value::Text(grids.grid(p).code.as_str().to_string())
            }),
            Value::Double((area_km2 * 1e4).round() / 1e4),
        ];
        let c = counts.get(g.code.as_str()).copied().unwrap_or_default();
        if c.reports > 0 && c.reports < k {
            row.extend(KPI_COLUMNS.iter().map(|_| Value::Null));
        } else {
            let int = |n: u64| Value::BigInt(n as i64);
            let rate = |r: Option<f64>| r.map_or(Value::Null, Value::Double);
            row.extend([
                int(c.reports),
                int(c.accepted),
                int(c.due),
                int(c.closed),
                int(c.closed_on_time),
                int(c.rated),
                int(c.satisfied),
                int(c.reworked),
                int(c.extended),
                int(c.overdue),
                rate(c.acceptance_rate()),
                rate(c.closure_rate()),
                rate(c.on_time_rate()),
                rate(c.satisfaction_rate()),
                rate(c.rework_rate()),
                rate(c.extension_rate()),
                rate((area_km2 > 0.0).then(|| c.reports as f64 / area_km2)),
            ]);
        }
        table.push(row, g.geometry.clone());
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::FileFormat;

    #[test]
    fn heat_cells_are_closed_hexagons_around_their_centres() {
        let cell = h3o::LatLng::new(34.7466, 113.6254)
            .map(|ll| ll.to_cell(h3o::Resolution::Nine))
            .map(u64::from)
            .unwrap_or_default();
        let table = heat_table(&[(cell, 7), (0, 1)], 9);
        assert_eq!(table.len(), 1, "an invalid index is skipped");
        let (values, geometry) = &table.rows[0];
        assert_eq!(values[2], Value::BigInt(7));
        let geo::Geometry::Polygon(p) = geometry else {
            panic!("not a polygon: {geometry:?}");
        };
        assert_eq!(p.exterior().0.len(), 7);
        assert!(p.exterior().is_closed());
        use geo::Contains;
        assert!(p.contains(&geo::point!(x: 113.6254, y: 34.7466)));
    }

    #[test]
    fn every_format_writes_every_row() {
        let cells: Vec<(u64, u64)> = [113.60, 113.62, 113.64]
            .iter()
            .filter_map(|&lon| h3o::LatLng::new(34.75, lon).ok())
            .map(|ll| (u64::from(ll.to_cell(h3o::Resolution::Eight)), 3))
            .collect();
        let table = heat_table(&cells, 8);
        let dir =
            std::env::temp_dir().join(format!("gridscope-export-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for format in [FileFormat::GeoJson, FileFormat::Csv, FileFormat::Parquet] {
            let path = dir.join(format!("heat.{}", format.extension()));
            assert_eq!(table.write(format, &path).unwrap(), 3, "{format:?}");
            assert!(std::fs::metadata(&path).unwrap().len() > 100);
        }
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("heat.geojson")).unwrap()).unwrap();
        assert_eq!(json["features"].as_array().map(Vec::len), Some(3));
        assert_eq!(json["features"][0]["geometry"]["type"], "Polygon");
        let csv = std::fs::read_to_string(dir.join("heat.csv")).unwrap();
        assert!(csv.starts_with("h3,resolution,reports,wkt\n"), "{csv}");
        assert!(csv.contains("POLYGON (("), "{csv}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
