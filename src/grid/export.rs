//! Writing grids to files a GIS analyst can open (QGIS) and `gridscope import` reads back.

use std::io::Write;

use flatgeobuf::{ColumnType, FgbCrs, FgbWriter, FgbWriterOptions, GeometryType};
use geozero::ColumnValue;

use super::model::{GridId, GridSet};

/// Why grids could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Writing failed.
    #[error("write failed: {0}")]
    Io(#[from] std::io::Error),
    /// The FlatGeobuf encoder failed.
    #[error("FlatGeobuf: {0}")]
    FlatGeobuf(String),
}

const COLUMNS: [&str; 7] = [
    "code",
    "name",
    "level",
    "parent",
    "kind",
    "valid_from",
    "valid_to",
];

fn row(set: &GridSet, id: GridId) -> [String; 7] {
    let g = set.grid(id);
    [
        g.code.to_string(),
        g.name.to_string(),
        g.level().name().to_string(),
        set.parent(id)
            .map(|p| set.grid(p).code.to_string())
            .unwrap_or_default(),
        g.kind.map(|k| k.name().to_string()).unwrap_or_default(),
        g.validity.from.to_string(),
        g.validity.to.map(|d| d.to_string()).unwrap_or_default(),
    ]
}

/// Writes the given grids as a FlatGeobuf file (WGS84, with a spatial index).
pub fn write_flatgeobuf(set: &GridSet, ids: &[GridId], out: impl Write) -> Result<(), ExportError> {
    let fgb_err = |e: &dyn std::fmt::Display| ExportError::FlatGeobuf(e.to_string());
    let mut fgb = FgbWriter::create_with_options(
        "grids",
        GeometryType::MultiPolygon,
        FgbWriterOptions {
            crs: FgbCrs {
                code: 4326,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .map_err(|e| fgb_err(&e))?;
    for name in COLUMNS {
        fgb.add_column(name, ColumnType::String, |_, _| {});
    }
    for &id in ids {
        let values = row(set, id);
        let shape = geo::Geometry::MultiPolygon(set.grid(id).geometry.clone());
        fgb.add_feature_geom(shape, |feat| {
            for (i, (name, value)) in COLUMNS.iter().zip(&values).enumerate() {
                // Writing into the in-memory feature buffer cannot fail for string columns.
                let _ = geozero::PropertyProcessor::property(
                    feat,
                    i,
                    name,
                    &ColumnValue::String(value),
                );
            }
        })
        .map_err(|e| fgb_err(&e))?;
    }
    fgb.write(out).map_err(|e| fgb_err(&e))
}

/// Writes the given grids as an RFC 7946 GeoJSON FeatureCollection, deterministically.
pub fn write_geojson(
    set: &GridSet,
    ids: &[GridId],
    mut out: impl Write,
) -> Result<(), ExportError> {
    writeln!(out, "{{\"type\":\"FeatureCollection\",\"features\":[")?;
    for (n, &id) in ids.iter().enumerate() {
        let values = row(set, id);
        let props: serde_json::Map<String, serde_json::Value> = COLUMNS
            .iter()
            .zip(values)
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v)))
            .collect();
        write!(
            out,
            "{}{{\"type\":\"Feature\",\"properties\":{},\"geometry\":{{\"type\":\"MultiPolygon\",\"coordinates\":[",
            if n == 0 { "" } else { ",\n" },
            serde_json::Value::Object(props)
        )?;
        for (pi, poly) in set.grid(id).geometry.iter().enumerate() {
            write!(out, "{}[", if pi == 0 { "" } else { "," })?;
            for (ri, ring) in std::iter::once(poly.exterior())
                .chain(poly.interiors())
                .enumerate()
            {
                write!(out, "{}[", if ri == 0 { "" } else { "," })?;
                for (ci, c) in ring.0.iter().enumerate() {
                    write!(out, "{}[{},{}]", if ci == 0 { "" } else { "," }, c.x, c.y)?;
                }
                write!(out, "]")?;
            }
            write!(out, "]")?;
        }
        write!(out, "]}}}}")?;
    }
    writeln!(out, "\n]}}")?;
    Ok(())
}

/// The file stem used for a level's grids when a whole set is written.
pub fn level_file_stem(level: crate::grid::code::Level) -> &'static str {
    use crate::grid::code::Level;
    match level {
        Level::District => "districts",
        Level::One => "level1",
        Level::Two => "level2",
        Level::Three => "level3",
        Level::Micro => "micro",
        Level::Exclusive => "exclusive",
    }
}

/// Writes a whole set, one FlatGeobuf file per level (and GeoJSON too when asked), into `dir`.
/// Returns the files written.
pub fn write_levels(
    set: &GridSet,
    dir: &std::path::Path,
    geojson: bool,
) -> Result<Vec<std::path::PathBuf>, ExportError> {
    use crate::grid::code::Level;
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for level in Level::ALL {
        let ids: Vec<GridId> = set.ids_at(level).collect();
        if ids.is_empty() {
            continue;
        }
        let stem = level_file_stem(level);
        let path = dir.join(format!("{stem}.fgb"));
        write_flatgeobuf(
            set,
            &ids,
            std::io::BufWriter::new(std::fs::File::create(&path)?),
        )?;
        written.push(path);
        if geojson {
            let path = dir.join(format!("{stem}.geojson"));
            let mut w = std::io::BufWriter::new(std::fs::File::create(&path)?);
            write_geojson(set, &ids, &mut w)?;
            w.flush()?;
            written.push(path);
        }
    }
    Ok(written)
}
