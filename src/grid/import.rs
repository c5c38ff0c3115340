//! Reading grid boundaries from GIS files into clean, validated grids.
//!
//! Formats: GeoJSON, FlatGeobuf and Shapefile. Every feature is checked on its way in: broken
//! rings are repaired when that is safe (closing a ring, dropping repeated points, fixing the
//! winding, undoing a tiny self-intersection) and each repair is listed; anything else is
//! refused with the feature and the reason. Nothing here panics on bad input.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

use chrono::NaiveDate;
use geo::algorithm::MakeValid;
use geo::{Area, Coord, LineString, MultiPolygon, Orient, Polygon, Validation, orient::Direction};
use serde::Serialize;
use serde_json::Value;

use super::code::{GridCode, Level};
use super::model::{ExclusiveKind, Grid, Validity};
use crate::coords::{CoordError, Crs};

/// A file format the importer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// RFC 7946 GeoJSON (a FeatureCollection, a Feature or a bare geometry).
    GeoJson,
    /// FlatGeobuf.
    FlatGeobuf,
    /// ESRI Shapefile (.shp with its .dbf beside it).
    Shapefile,
    /// OGC GeoPackage (every feature table in it).
    GeoPackage,
}

impl Format {
    /// Guesses the format from a file name.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "geojson" | "json" => Some(Format::GeoJson),
            "fgb" => Some(Format::FlatGeobuf),
            "shp" => Some(Format::Shapefile),
            "gpkg" => Some(Format::GeoPackage),
            _ => None,
        }
    }
}

/// A file that could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is empty.
    #[error("the file is empty (0 bytes)")]
    Empty,
    /// The file is not well-formed in its format (truncated, corrupt, not UTF-8...).
    #[error("not valid {format}: {reason}")]
    Malformed {
        /// The expected format.
        format: &'static str,
        /// What the parser said, with its position where it gives one.
        reason: String,
    },
    /// The file declares a coordinate system gridscope does not convert.
    #[error(
        "the file declares coordinate system {0:?}; gridscope reads WGS84/CGCS2000 longitude-latitude (GCJ-02 and BD-09 with --crs)"
    )]
    UnsupportedCrs(String),
    /// The file name does not say which format it is.
    #[error("unknown file type for {0} (expected .geojson, .json, .fgb, .shp or .gpkg)")]
    UnknownFormat(String),
    /// One feature could not be converted (only where a single feature is expected).
    #[error("{0}")]
    Feature(FeatureProblem),
}

/// A polygon as read, before any cleaning: rings of raw (x, y) pairs, exterior first.
type RawPolygon = Vec<Vec<[f64; 2]>>;

/// The geometry of a feature as read.
#[derive(Debug, Clone, PartialEq)]
pub enum RawGeometry {
    /// Polygons (a Polygon is one of them).
    Polygons(Vec<RawPolygon>),
    /// No geometry, or an empty one.
    Empty,
    /// A geometry type grids cannot have.
    Unsupported(String),
    /// Coordinates that could not be read as numbers.
    Malformed(String),
}

/// One feature as read from a file.
#[derive(Debug, Clone)]
pub struct RawFeature {
    /// 0-based position in the file.
    pub index: usize,
    /// Properties as text.
    pub properties: BTreeMap<String, String>,
    /// The geometry as read.
    pub geometry: RawGeometry,
}

impl RawFeature {
    /// A property's text, if present and non-empty.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties
            .get(name)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// The first of several property names that is present.
    fn first_property(&self, names: &[&str]) -> Option<&str> {
        names.iter().find_map(|n| self.property(n))
    }
}

/// Reads features from a file of any supported format.
pub fn read_path(path: &Path) -> Result<Vec<RawFeature>, ImportError> {
    let io = |source| ImportError::Io {
        path: path.display().to_string(),
        source,
    };
    let format = Format::from_path(path)
        .ok_or_else(|| ImportError::UnknownFormat(path.display().to_string()))?;
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.len() == 0 {
        return Err(ImportError::Empty);
    }
    match format {
        Format::GeoJson => read_geojson(&std::fs::read(path).map_err(io)?),
        Format::FlatGeobuf => {
            read_flatgeobuf(BufReader::new(std::fs::File::open(path).map_err(io)?))
        }
        Format::Shapefile => read_shapefile(path),
        Format::GeoPackage => read_geopackage(path),
    }
}

/// Reads GeoJSON bytes: a FeatureCollection, a single Feature, or a bare geometry.
pub fn read_geojson(bytes: &[u8]) -> Result<Vec<RawFeature>, ImportError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ImportError::Empty);
    }
    let malformed = |reason: String| ImportError::Malformed {
        format: "GeoJSON",
        reason,
    };
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
    if let Some(name) = doc.pointer("/crs/properties/name").and_then(Value::as_str) {
        let ok = ["4326", "CRS84", "4490", "crs84"]
            .iter()
            .any(|k| name.ends_with(k));
        if !ok {
            return Err(ImportError::UnsupportedCrs(name.to_string()));
        }
    }
    let features: Vec<&Value> = match doc.get("type").and_then(Value::as_str) {
        Some("FeatureCollection") => doc
            .get("features")
            .and_then(Value::as_array)
            .ok_or_else(|| malformed("FeatureCollection without a \"features\" array".into()))?
            .iter()
            .collect(),
        Some("Feature") => vec![&doc],
        Some(_) => return Ok(vec![geojson_feature(0, None, Some(&doc))]),
        None => return Err(malformed("no \"type\" member at the top level".into())),
    };
    Ok(features
        .into_iter()
        .enumerate()
        .map(|(i, f)| geojson_feature(i, f.get("properties"), f.get("geometry")))
        .collect())
}

fn geojson_feature(index: usize, props: Option<&Value>, geometry: Option<&Value>) -> RawFeature {
    let mut properties = BTreeMap::new();
    if let Some(Value::Object(map)) = props {
        for (k, v) in map {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            properties.insert(k.clone(), text);
        }
    }
    let geometry = match geometry {
        None | Some(Value::Null) => RawGeometry::Empty,
        Some(g) => geojson_geometry(g),
    };
    RawFeature {
        index,
        properties,
        geometry,
    }
}

fn geojson_geometry(g: &Value) -> RawGeometry {
    let coords = g.get("coordinates");
    let parse_polygon = |v: &Value| -> Option<RawPolygon> {
        v.as_array()?
            .iter()
            .map(|ring| {
                ring.as_array()?
                    .iter()
                    .map(|p| {
                        let p = p.as_array()?;
                        Some([p.first()?.as_f64()?, p.get(1)?.as_f64()?])
                    })
                    .collect::<Option<Vec<_>>>()
            })
            .collect()
    };
    let polys = match g.get("type").and_then(Value::as_str) {
        Some("Polygon") => coords.and_then(|c| parse_polygon(c).map(|p| vec![p])),
        Some("MultiPolygon") => {
            coords.and_then(|c| c.as_array()?.iter().map(parse_polygon).collect())
        }
        Some(other) => return RawGeometry::Unsupported(other.to_string()),
        None => return RawGeometry::Malformed("geometry without a type".into()),
    };
    match polys {
        None => RawGeometry::Malformed("coordinates are not arrays of [x, y] numbers".into()),
        Some(p) if p.iter().all(|poly| poly.iter().all(Vec::is_empty)) => RawGeometry::Empty,
        Some(p) => RawGeometry::Polygons(p),
    }
}

fn from_geo(shape: geo::Geometry<f64>) -> RawGeometry {
    let poly = |p: &Polygon<f64>| -> RawPolygon {
        std::iter::once(p.exterior())
            .chain(p.interiors())
            .map(|r| r.0.iter().map(|c| [c.x, c.y]).collect())
            .collect()
    };
    match shape {
        geo::Geometry::Polygon(p) => RawGeometry::Polygons(vec![poly(&p)]),
        geo::Geometry::MultiPolygon(mp) if mp.0.is_empty() => RawGeometry::Empty,
        geo::Geometry::MultiPolygon(mp) => RawGeometry::Polygons(mp.iter().map(poly).collect()),
        other => RawGeometry::Unsupported(
            format!("{other:?}")
                .chars()
                .take_while(|c| c.is_alphabetic())
                .collect(),
        ),
    }
}

/// Reads a FlatGeobuf stream.
pub fn read_flatgeobuf<R: Read + Seek>(reader: R) -> Result<Vec<RawFeature>, ImportError> {
    use flatgeobuf::{FallibleStreamingIterator, FeatureProperties, FgbReader};
    use geozero::ToGeo;
    let malformed = |e: &dyn fmt::Display| ImportError::Malformed {
        format: "FlatGeobuf",
        reason: e.to_string(),
    };
    let mut iter = FgbReader::open(reader)
        .map_err(|e| malformed(&e))?
        .select_all()
        .map_err(|e| malformed(&e))?;
    let mut out = Vec::new();
    while let Some(feature) = iter.next().map_err(|e| malformed(&e))? {
        let properties = feature
            .properties()
            .map(|p| p.into_iter().collect())
            .unwrap_or_default();
        let geometry = match feature.to_geo() {
            Ok(g) => from_geo(g),
            Err(e) => RawGeometry::Malformed(e.to_string()),
        };
        out.push(RawFeature {
            index: out.len(),
            properties,
            geometry,
        });
    }
    Ok(out)
}

/// Reads a Shapefile and its attribute table.
pub fn read_shapefile(path: &Path) -> Result<Vec<RawFeature>, ImportError> {
    let malformed = |e: shapefile::Error| ImportError::Malformed {
        format: "Shapefile",
        reason: e.to_string(),
    };
    let mut reader = shapefile::Reader::from_path(path).map_err(malformed)?;
    let mut out = Vec::new();
    for item in reader.iter_shapes_and_records() {
        let (shape, record) = item.map_err(malformed)?;
        let properties = record
            .into_iter()
            .map(|(k, v)| {
                let text = match v {
                    shapefile::dbase::FieldValue::Character(s) => s.unwrap_or_default(),
                    shapefile::dbase::FieldValue::Numeric(Some(n)) if n.fract() == 0.0 => {
                        format!("{n:.0}")
                    }
                    shapefile::dbase::FieldValue::Memo(s) => s,
                    other => other.to_string(),
                };
                (k, text.trim().to_string())
            })
            .collect();
        let geometry = match shape {
            shapefile::Shape::NullShape => RawGeometry::Empty,
            shapefile::Shape::Polygon(p) => match MultiPolygon::<f64>::try_from(p) {
                Ok(mp) => from_geo(geo::Geometry::MultiPolygon(mp)),
                Err(e) => RawGeometry::Malformed(e.to_string()),
            },
            other => RawGeometry::Unsupported(other.shapetype().to_string()),
        };
        out.push(RawFeature {
            index: out.len(),
            properties,
            geometry,
        });
    }
    Ok(out)
}

/// EPSG codes of the coordinate systems a GeoPackage layer may declare: WGS84 and CGCS2000
/// longitude-latitude (the same to within centimetres), or undefined (`--crs` then says).
const GEOPACKAGE_LON_LAT: [i64; 4] = [4326, 4490, 0, -1];

/// Reads every feature table of a GeoPackage (read-only; the file is never changed).
pub fn read_geopackage(path: &Path) -> Result<Vec<RawFeature>, ImportError> {
    use geozero::ToGeo;
    use rusqlite::types::ValueRef;
    let malformed = |e: &dyn fmt::Display| ImportError::Malformed {
        format: "GeoPackage",
        reason: e.to_string(),
    };
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| malformed(&e))?;
    // Feature tables with their geometry column and coordinate system, in the file's order.
    let layers: Vec<(String, String, i64, Option<i64>)> = conn
        .prepare(
            "SELECT c.table_name, g.column_name, g.srs_id, s.organization_coordsys_id \
             FROM gpkg_contents c JOIN gpkg_geometry_columns g ON g.table_name = c.table_name \
             LEFT JOIN gpkg_spatial_ref_sys s ON s.srs_id = g.srs_id \
             WHERE c.data_type = 'features' ORDER BY c.rowid",
        )
        .and_then(|mut stmt| {
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect()
        })
        .map_err(|e| malformed(&format!("no GeoPackage feature tables ({e})")))?;
    if layers.is_empty() {
        return Err(malformed(&"the GeoPackage holds no feature table"));
    }
    let mut out = Vec::new();
    for (table, column, srs_id, epsg) in layers {
        let code = epsg.unwrap_or(srs_id);
        if !GEOPACKAGE_LON_LAT.contains(&code) {
            return Err(ImportError::UnsupportedCrs(format!(
                "EPSG:{code} (layer {table})"
            )));
        }
        let quote = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {}", quote(&table)))
            .map_err(|e| malformed(&e))?;
        let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
        let mut rows = stmt.query([]).map_err(|e| malformed(&e))?;
        while let Some(row) = rows.next().map_err(|e| malformed(&e))? {
            let mut properties = BTreeMap::new();
            let mut geometry = RawGeometry::Empty;
            for (i, name) in names.iter().enumerate() {
                let value = row.get_ref(i).map_err(|e| malformed(&e))?;
                if name == &column {
                    geometry = match value {
                        ValueRef::Blob(b) if !b.is_empty() => {
                            match geozero::wkb::GpkgWkb(b).to_geo() {
                                Ok(g) => from_geo(g),
                                Err(e) => RawGeometry::Malformed(e.to_string()),
                            }
                        }
                        ValueRef::Null | ValueRef::Blob(_) => RawGeometry::Empty,
                        _ => RawGeometry::Malformed("the geometry is not a blob".into()),
                    };
                    continue;
                }
                let text = match value {
                    ValueRef::Null => continue,
                    ValueRef::Integer(n) => n.to_string(),
                    ValueRef::Real(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{x:.0}"),
                    ValueRef::Real(x) => x.to_string(),
                    ValueRef::Text(t) => String::from_utf8_lossy(t).trim().to_string(),
                    ValueRef::Blob(_) => continue,
                };
                properties.insert(name.clone(), text);
            }
            out.push(RawFeature {
                index: out.len(),
                properties,
                geometry,
            });
        }
    }
    Ok(out)
}

/// Why one feature was refused.
#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum FeatureProblem {
    /// The feature has no geometry or an empty one.
    #[error("empty geometry")]
    EmptyGeometry,
    /// Not a polygon.
    #[error("geometry type {0} cannot be a grid (Polygon or MultiPolygon expected)")]
    NotPolygonal(String),
    /// Coordinates could not be read.
    #[error("malformed geometry: {0}")]
    MalformedGeometry(String),
    /// A NaN or infinite coordinate.
    #[error("non-finite coordinate in polygon {polygon}, ring {ring}, vertex {vertex}")]
    NonFinite {
        /// Polygon index.
        polygon: usize,
        /// Ring index (0 = exterior).
        ring: usize,
        /// Vertex index.
        vertex: usize,
    },
    /// A coordinate outside the longitude/latitude range (projected data, or a wrong --crs).
    #[error("coordinate ({x}, {y}) is not a longitude/latitude: {reason}")]
    BadCoordinate {
        /// X as read.
        x: f64,
        /// Y as read.
        y: f64,
        /// Why (out of range, likely swapped).
        reason: String,
    },
    /// An exterior ring with fewer than 3 distinct points.
    #[error("polygon {0} has fewer than 3 distinct points in its exterior ring")]
    TooFewPoints(usize),
    /// A self-intersection that cannot be undone without changing the area noticeably.
    #[error(
        "self-intersecting polygon {polygon}; repairing it would change the area by {change_pct:.2}%"
    )]
    SelfIntersection {
        /// Polygon index.
        polygon: usize,
        /// Area change a repair would make.
        change_pct: f64,
    },
    /// No usable grid code.
    #[error("no valid grid code: {0}")]
    BadCode(String),
    /// A code seen before in this import.
    #[error("duplicate code {code} (first used by feature {first})")]
    DuplicateCode {
        /// The code.
        code: String,
        /// Index of the feature that has it first.
        first: usize,
    },
    /// The code's level differs from the level the import was told to expect.
    #[error("code {code} is level {found}, but this import expects level {expected}")]
    WrongLevel {
        /// The code.
        code: String,
        /// Its level.
        found: Level,
        /// The expected level.
        expected: Level,
    },
}

/// A refused feature and why.
#[derive(Debug, Clone, Serialize)]
pub struct Refusal {
    /// Source file.
    pub file: String,
    /// 0-based feature index in that file.
    pub feature: usize,
    /// The feature's code, if it had a readable one.
    pub code: Option<String>,
    /// Why it was refused.
    pub reason: FeatureProblem,
    /// The same, as a sentence.
    pub message: String,
}

/// A repair made to an accepted feature.
#[derive(Debug, Clone, Serialize)]
pub struct Repair {
    /// Source file.
    pub file: String,
    /// 0-based feature index.
    pub feature: usize,
    /// The feature's code.
    pub code: String,
    /// What was repaired.
    pub what: String,
}

/// How to read features into grids.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Coordinate system of the file.
    pub crs: Crs,
    /// Level every feature must have, if known.
    pub level: Option<Level>,
    /// Property holding the code (default: the first of code, grid_code, adcode, id).
    pub code_field: Option<String>,
    /// Property holding the name (default: name).
    pub name_field: Option<String>,
    /// First day the imported grids are in force.
    pub valid_from: NaiveDate,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            crs: Crs::Wgs84,
            level: None,
            code_field: None,
            name_field: None,
            valid_from: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default(),
        }
    }
}

/// What an import produced.
#[derive(Debug, Default, Serialize)]
pub struct ImportOutcome {
    /// Accepted grids.
    #[serde(skip)]
    pub grids: Vec<Grid>,
    /// Refused features.
    pub refused: Vec<Refusal>,
    /// Repairs made to accepted ones.
    pub repairs: Vec<Repair>,
    /// Files that could not be read at all.
    pub failed_files: Vec<FileFailure>,
}

/// A file that could not be read, and why.
#[derive(Debug, Clone, Serialize)]
pub struct FileFailure {
    /// The file.
    pub file: String,
    /// Why.
    pub reason: String,
}

/// Imports several files into one outcome; `progress` is called after each file with the
/// number of features it held. Duplicate codes across files are refused like any other.
pub fn import_files(
    paths: &[std::path::PathBuf],
    opts: &ImportOptions,
    progress: &dyn Fn(&Path, usize),
) -> ImportOutcome {
    let mut out = ImportOutcome::default();
    let mut seen = HashMap::new();
    for path in paths {
        let name = path.display().to_string();
        match read_path(path) {
            Ok(features) => {
                let n = features.len();
                to_grids(&name, features, opts, &mut seen, &mut out);
                progress(path, n);
            }
            Err(e) => {
                out.failed_files.push(FileFailure {
                    file: name,
                    reason: e.to_string(),
                });
                progress(path, 0);
            }
        }
    }
    out
}

/// The name of the quality report `gridscope demo` writes beside its layers. It is JSON but not
/// a layer, so a directory scan passes it over.
pub const QUALITY_REPORT_FILE: &str = "quality.json";

/// The grid files (.fgb, .geojson, .json, .shp, .gpkg) in a directory, sorted by name. Where one
/// layer is there in several formats (`level3.fgb` beside `level3.geojson`, as `gridscope demo
/// --geojson` writes), only one is taken: FlatGeobuf, then GeoJSON, then Shapefile. The quality
/// report ([`QUALITY_REPORT_FILE`]) is not a layer and is left out.
pub fn grid_files_in(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let rank = |p: &Path| match Format::from_path(p) {
        Some(Format::FlatGeobuf) => 0,
        Some(Format::GeoJson) => 1,
        _ => 2,
    };
    let mut by_stem: BTreeMap<std::ffi::OsString, std::path::PathBuf> = BTreeMap::new();
    for path in std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
    {
        if Format::from_path(&path).is_none()
            || path.file_name().is_some_and(|n| n == QUALITY_REPORT_FILE)
        {
            continue;
        }
        let stem = path.file_stem().unwrap_or_default().to_os_string();
        match by_stem.get(&stem) {
            Some(kept) if rank(kept) <= rank(&path) => {}
            _ => {
                by_stem.insert(stem, path);
            }
        }
    }
    Ok(by_stem.into_values().collect())
}

/// Turns raw features into grids, collecting refusals and repairs. `seen` carries codes
/// across files of one import so duplicates between files are caught too.
pub fn to_grids(
    file: &str,
    features: Vec<RawFeature>,
    opts: &ImportOptions,
    seen: &mut HashMap<GridCode, usize>,
    out: &mut ImportOutcome,
) {
    for f in features {
        let code_text = match &opts.code_field {
            Some(name) => f.property(name),
            None => f.first_property(&["code", "grid_code", "adcode", "id"]),
        }
        .map(str::to_string);
        let refuse = |out: &mut ImportOutcome, reason: FeatureProblem| {
            out.refused.push(Refusal {
                file: file.to_string(),
                feature: f.index,
                code: code_text.clone(),
                message: reason.to_string(),
                reason,
            });
        };
        let code = match code_text.as_deref().map(GridCode::parse) {
            Some(Ok(c)) => c,
            Some(Err(e)) => {
                refuse(out, FeatureProblem::BadCode(e.to_string()));
                continue;
            }
            None => {
                refuse(
                    out,
                    FeatureProblem::BadCode("the feature has no code property".into()),
                );
                continue;
            }
        };
        if let Some(expected) = opts.level
            && code.level() != expected
        {
            refuse(
                out,
                FeatureProblem::WrongLevel {
                    code: code.to_string(),
                    found: code.level(),
                    expected,
                },
            );
            continue;
        }
        if let Some(&first) = seen.get(&code) {
            refuse(
                out,
                FeatureProblem::DuplicateCode {
                    code: code.to_string(),
                    first,
                },
            );
            continue;
        }
        let mut repairs = Vec::new();
        let shape = match clean_geometry(&f.geometry, opts.crs, &mut repairs) {
            Ok(s) => s,
            Err(p) => {
                refuse(out, p);
                continue;
            }
        };
        seen.insert(code.clone(), f.index);
        for what in repairs {
            out.repairs.push(Repair {
                file: file.to_string(),
                feature: f.index,
                code: code.to_string(),
                what,
            });
        }
        let name_field = opts.name_field.as_deref().unwrap_or("name");
        let parent = f
            .first_property(&["parent", "parent_code"])
            .and_then(|p| GridCode::parse(p).ok());
        out.grids.push(Grid {
            name: f.property(name_field).unwrap_or(code.as_str()).into(),
            kind: f
                .property("kind")
                .map(ExclusiveKind::from_name)
                .or((code.level() == Level::Exclusive).then_some(ExclusiveKind::Other)),
            code,
            parent,
            geometry: shape,
            validity: Validity {
                from: f
                    .property("valid_from")
                    .and_then(|d| d.parse().ok())
                    .unwrap_or(opts.valid_from),
                to: f.property("valid_to").and_then(|d| d.parse().ok()),
            },
        });
    }
}

/// Converts one feature's geometry to a WGS84 MultiPolygon, refusing what cannot be used.
pub fn to_wgs84_multipolygon(
    f: &RawFeature,
    crs: Crs,
) -> Result<MultiPolygon<f64>, FeatureProblem> {
    clean_geometry(&f.geometry, crs, &mut Vec::new())
}

fn clean_geometry(
    g: &RawGeometry,
    crs: Crs,
    repairs: &mut Vec<String>,
) -> Result<MultiPolygon<f64>, FeatureProblem> {
    let polys = match g {
        RawGeometry::Polygons(p) => p,
        RawGeometry::Empty => return Err(FeatureProblem::EmptyGeometry),
        RawGeometry::Unsupported(t) => return Err(FeatureProblem::NotPolygonal(t.clone())),
        RawGeometry::Malformed(m) => return Err(FeatureProblem::MalformedGeometry(m.clone())),
    };
    let mut out = Vec::new();
    for (pi, rings) in polys.iter().enumerate() {
        let mut cleaned: Vec<LineString<f64>> = Vec::new();
        for (ri, ring) in rings.iter().enumerate() {
            let mut pts: Vec<Coord<f64>> = Vec::with_capacity(ring.len() + 1);
            for (vi, &[x, y]) in ring.iter().enumerate() {
                if !x.is_finite() || !y.is_finite() {
                    return Err(FeatureProblem::NonFinite {
                        polygon: pi,
                        ring: ri,
                        vertex: vi,
                    });
                }
                let p = crs.to_wgs84(x, y).map_err(|e| FeatureProblem::BadCoordinate {
                    x,
                    y,
                    reason: match e {
                        CoordError::LikelySwapped { .. } => "longitude and latitude look swapped".into(),
                        CoordError::OutOfRange { .. } => {
                            "out of range; is the file projected (metres)? gridscope expects longitude/latitude".into()
                        }
                        other => other.to_string(),
                    },
                })?;
                pts.push(p.coord());
            }
            if pts.len() > 1 && pts.first() != pts.last() {
                repairs.push(format!("closed ring {ri} of polygon {pi}"));
                pts.push(pts[0]);
            }
            let before = pts.len();
            pts.dedup();
            if pts.len() < before {
                repairs.push(format!(
                    "removed {} repeated points from ring {ri} of polygon {pi}",
                    before - pts.len()
                ));
            }
            if pts.len() < 4 {
                if ri == 0 {
                    return Err(FeatureProblem::TooFewPoints(pi));
                }
                repairs.push(format!("dropped degenerate hole {ri} of polygon {pi}"));
                continue;
            }
            cleaned.push(LineString(pts));
        }
        if cleaned.is_empty() {
            continue;
        }
        let exterior = cleaned.remove(0);
        let poly = Polygon::new(exterior, cleaned);
        let oriented = poly.orient(Direction::Default);
        if oriented != poly {
            repairs.push(format!(
                "reoriented rings of polygon {pi} (exterior counter-clockwise)"
            ));
        }
        out.push(oriented);
    }
    if out.is_empty() {
        return Err(FeatureProblem::EmptyGeometry);
    }
    let shape = MultiPolygon(out);
    if shape.is_valid() {
        return Ok(shape);
    }
    // Invalid (self-intersections, overlapping parts): repair only when it barely changes the area.
    let before: f64 = shape.iter().map(|p| p.unsigned_area()).sum();
    match shape.make_valid() {
        Ok(fixed) if !fixed.0.is_empty() && fixed.is_valid() => {
            let after = fixed.unsigned_area();
            let change = if before > 0.0 {
                (after - before).abs() / before * 100.0
            } else {
                100.0
            };
            if change <= 0.1 {
                repairs.push(format!(
                    "repaired invalid geometry (area change {change:.4}%)"
                ));
                Ok(fixed.orient(Direction::Default))
            } else {
                Err(FeatureProblem::SelfIntersection {
                    polygon: 0,
                    change_pct: change,
                })
            }
        }
        _ => Err(FeatureProblem::SelfIntersection {
            polygon: 0,
            change_pct: 100.0,
        }),
    }
}
