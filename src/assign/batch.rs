//! Batch assignment files: points in (CSV or GeoJSON), the same records out with the
//! assignment added. A record that cannot be read is kept and says why, never dropped.

use std::io::Write;
use std::path::Path;

use serde_json::{Map, Value};

use super::view::{AssignmentView, FLAT_COLUMNS};
use crate::coords::{Crs, Wgs84Point};

/// Why a points file could not be processed at all.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not well-formed.
    #[error("{path}: {reason}")]
    Malformed {
        /// The file.
        path: String,
        /// What is wrong, with its position where known.
        reason: String,
    },
}

/// The records of a points file, kept as read so the output can repeat them.
pub enum PointFile {
    /// CSV: header and rows.
    Csv {
        /// Column names.
        headers: Vec<String>,
        /// Rows as text.
        rows: Vec<Vec<String>>,
    },
    /// GeoJSON: the features.
    GeoJson {
        /// Features as read.
        features: Vec<Value>,
    },
}

/// One record's point, or why it has none.
pub type PointResult = Result<Wgs84Point, String>;

fn io(path: &Path) -> impl Fn(std::io::Error) -> BatchError + '_ {
    move |source| BatchError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn is_geojson(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("geojson") || e.eq_ignore_ascii_case("json"))
}

/// Reads points from CSV (columns lon/lng/longitude/x and lat/latitude/y, optional crs) or
/// GeoJSON Point features (optional `crs` property); `default_crs` applies where none is given.
pub fn read_points(
    path: &Path,
    default_crs: Crs,
) -> Result<(PointFile, Vec<PointResult>), BatchError> {
    let malformed = |reason: String| BatchError::Malformed {
        path: path.display().to_string(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(io(path))?;
    if is_geojson(path) {
        let doc: Value = serde_json::from_slice(&bytes).map_err(|e| malformed(e.to_string()))?;
        let features = doc
            .get("features")
            .and_then(Value::as_array)
            .cloned()
            .ok_or_else(|| malformed("expected a FeatureCollection".into()))?;
        let points = features
            .iter()
            .map(|f| {
                let crs = match f.pointer("/properties/crs").and_then(Value::as_str) {
                    Some(s) => s.parse::<Crs>().map_err(|e| e.to_string())?,
                    None => default_crs,
                };
                let c = f
                    .pointer("/geometry/coordinates")
                    .and_then(Value::as_array)
                    .filter(|_| {
                        f.pointer("/geometry/type").and_then(Value::as_str) == Some("Point")
                    })
                    .ok_or("geometry is not a Point")?;
                let (Some(x), Some(y)) = (
                    c.first().and_then(Value::as_f64),
                    c.get(1).and_then(Value::as_f64),
                ) else {
                    return Err("Point coordinates are not numbers".to_string());
                };
                crs.to_wgs84(x, y).map_err(|e| e.to_string())
            })
            .collect();
        return Ok((PointFile::GeoJson { features }, points));
    }
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(bytes.as_slice());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| malformed(e.to_string()))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_string())
        .collect();
    let find = |names: &[&str]| {
        headers
            .iter()
            .position(|h| names.contains(&h.to_ascii_lowercase().as_str()))
    };
    let lon = find(&["lon", "lng", "longitude", "x"])
        .ok_or_else(|| malformed("no lon/lng/longitude/x column".into()))?;
    let lat = find(&["lat", "latitude", "y"])
        .ok_or_else(|| malformed("no lat/latitude/y column".into()))?;
    let crs_col = find(&["crs"]);
    let mut rows = Vec::new();
    let mut points = Vec::new();
    for (i, rec) in reader.byte_records().enumerate() {
        let rec = rec.map_err(|e| malformed(format!("row {}: {e}", i + 2)))?;
        let row: Vec<String> = rec
            .iter()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect();
        let cell = |c: usize| row.get(c).map(|s| s.trim()).unwrap_or("");
        let point = (|| {
            let crs = match crs_col.map(cell).filter(|s| !s.is_empty()) {
                Some(s) => s.parse::<Crs>().map_err(|e| e.to_string())?,
                None => default_crs,
            };
            let x: f64 = cell(lon)
                .parse()
                .map_err(|_| format!("lon {:?} is not a number", cell(lon)))?;
            let y: f64 = cell(lat)
                .parse()
                .map_err(|_| format!("lat {:?} is not a number", cell(lat)))?;
            crs.to_wgs84(x, y).map_err(|e| e.to_string())
        })();
        rows.push(row);
        points.push(point);
    }
    Ok((PointFile::Csv { headers, rows }, points))
}

/// Writes the records with their assignments (or errors) to `path`, CSV or GeoJSON by extension.
pub fn write_results(
    file: &PointFile,
    results: &[Result<AssignmentView, String>],
    path: &Path,
) -> Result<(), BatchError> {
    let out = std::fs::File::create(path).map_err(io(path))?;
    let mut out = std::io::BufWriter::new(out);
    let csv_err = |e: csv::Error| BatchError::Malformed {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    if is_geojson(path) {
        writeln!(out, "{{\"type\":\"FeatureCollection\",\"features\":[").map_err(io(path))?;
        for (i, r) in results.iter().enumerate() {
            let mut feature = match file {
                PointFile::GeoJson { features } => features.get(i).cloned().unwrap_or(Value::Null),
                PointFile::Csv { headers, rows } => {
                    let props: Map<String, Value> = headers
                        .iter()
                        .zip(rows.get(i).into_iter().flatten())
                        .map(|(h, v)| (h.clone(), Value::String(v.clone())))
                        .collect();
                    serde_json::json!({"type": "Feature", "properties": props, "geometry": null})
                }
            };
            let assignment = match r {
                Ok(view) => serde_json::to_value(view).unwrap_or(Value::Null),
                Err(e) => serde_json::json!({ "error": e }),
            };
            if let Some(obj) = feature.as_object_mut() {
                let props = obj
                    .entry("properties")
                    .or_insert_with(|| Value::Object(Map::new()));
                if !props.is_object() {
                    *props = Value::Object(Map::new());
                }
                if let Some(p) = props.as_object_mut() {
                    p.insert("assignment".into(), assignment);
                }
            }
            write!(out, "{}{}", if i == 0 { "" } else { ",\n" }, feature).map_err(io(path))?;
        }
        writeln!(out, "\n]}}").map_err(io(path))?;
        return out.flush().map_err(io(path));
    }
    let mut w = csv::Writer::from_writer(out);
    let (headers, rows): (Vec<String>, Vec<Vec<String>>) = match file {
        PointFile::Csv { headers, rows } => (headers.clone(), rows.clone()),
        PointFile::GeoJson { features } => (
            vec!["lon".into(), "lat".into()],
            features
                .iter()
                .map(|f| {
                    let c = |k: usize| {
                        f.pointer(&format!("/geometry/coordinates/{k}"))
                            .map(Value::to_string)
                            .unwrap_or_default()
                    };
                    vec![c(0), c(1)]
                })
                .collect(),
        ),
    };
    let mut head = headers.clone();
    head.extend(FLAT_COLUMNS.iter().map(|s| s.to_string()));
    head.push("error".into());
    w.write_record(&head).map_err(csv_err)?;
    for (row, r) in rows.iter().zip(results) {
        let mut rec: Vec<String> = row.clone();
        rec.resize(headers.len(), String::new());
        match r {
            Ok(view) => {
                rec.extend(view.flat());
                rec.push(String::new());
            }
            Err(e) => {
                rec.extend(std::iter::repeat_n(String::new(), FLAT_COLUMNS.len()));
                rec.push(e.clone());
            }
        }
        w.write_record(&rec).map_err(csv_err)?;
    }
    w.flush().map_err(io(path))
}
