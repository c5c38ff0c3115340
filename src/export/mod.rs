//! Files for GIS analysts: features with properties written as GeoJSON, CSV (geometry as WKT)
//! or GeoParquet, so reports and aggregates open in QGIS, GeoPandas, DuckDB or Spark as they
//! are, with no conversion step.
//!
//! Parquet and CSV are written by DuckDB (its Parquet writer records the GeoParquet `geo`
//! metadata of `GEOMETRY` columns); GeoJSON is written here, one feature at a time, so a
//! large export never sits in memory as one document.

pub mod aggregates;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use chrono::DateTime;
use duckdb::types::Value;
use geozero::{CoordDimensions, ToWkb};
use serde_json::{Map, Value as Json};

/// The file formats of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// GeoParquet 1.0 (WKB geometry, zstd-compressed columns).
    Parquet,
    /// CSV with a header row; geometry as WKT in a `wkt` column (reports keep `lon`, `lat`).
    Csv,
    /// An RFC 7946 FeatureCollection.
    GeoJson,
}

impl FileFormat {
    /// The format a file extension names: `parquet`, `csv` or `geojson`.
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext {
            "parquet" => Some(Self::Parquet),
            "csv" => Some(Self::Csv),
            "geojson" => Some(Self::GeoJson),
            _ => None,
        }
    }

    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Parquet => "parquet",
            Self::Csv => "csv",
            Self::GeoJson => "geojson",
        }
    }

    /// The media type of a file of this format.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Parquet => "application/vnd.apache.parquet",
            Self::Csv => "text/csv; charset=utf-8",
            Self::GeoJson => "application/geo+json",
        }
    }
}

/// Why an export could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// DuckDB failed to read the data or write the file.
    #[error("database: {0}")]
    Db(#[from] duckdb::Error),
    /// The file could not be written.
    #[error("writing the file: {0}")]
    Io(#[from] std::io::Error),
    /// A geometry could not be encoded.
    #[error("encoding a geometry: {0}")]
    Geometry(#[from] geozero::error::GeozeroError),
    /// A value of a kind that has no JSON form here.
    #[error("column {column}: {kind} values cannot be written as JSON")]
    Unsupported {
        /// The column.
        column: String,
        /// The kind of value.
        kind: String,
    },
}

/// The SQL type of a column of a [`FeatureTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// Text.
    Text,
    /// A 64-bit integer.
    BigInt,
    /// A double.
    Double,
}

impl ColumnType {
    fn sql(self) -> &'static str {
        match self {
            Self::Text => "VARCHAR",
            Self::BigInt => "BIGINT",
            Self::Double => "DOUBLE",
        }
    }
}

/// Rows of properties, each with a WGS84 geometry, ready to be written in any [`FileFormat`].
#[derive(Debug, Clone)]
pub struct FeatureTable {
    columns: Vec<(&'static str, ColumnType)>,
    rows: Vec<(Vec<Value>, geo::Geometry<f64>)>,
}

impl FeatureTable {
    /// An empty table with these columns (the geometry column comes on top of them).
    pub fn new(columns: Vec<(&'static str, ColumnType)>) -> Self {
        Self {
            columns,
            rows: Vec::new(),
        }
    }

    /// Adds a row: one value per column, in column order, and its geometry.
    pub fn push(&mut self, values: Vec<Value>, geometry: impl Into<geo::Geometry<f64>>) {
        debug_assert_eq!(values.len(), self.columns.len());
        self.rows.push((values, geometry.into()));
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The column names, in order.
    pub fn column_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.columns.iter().map(|(n, _)| *n)
    }

    /// Writes the table to the file at `path` in `format`; returns the number of rows.
    pub fn write(&self, format: FileFormat, path: &Path) -> Result<u64, ExportError> {
        match format {
            FileFormat::GeoJson => self.write_geojson(path),
            FileFormat::Parquet | FileFormat::Csv => self.write_with_duckdb(format, path),
        }
    }

    fn write_geojson(&self, path: &Path) -> Result<u64, ExportError> {
        let names: Vec<&str> = self.column_names().collect();
        let mut out = GeoJsonWriter::create(path)?;
        for (values, geometry) in &self.rows {
            let properties = properties(&names, values)?;
            out.feature(properties, geojson::Value::from(geometry))?;
        }
        out.finish()
    }

    fn write_with_duckdb(&self, format: FileFormat, path: &Path) -> Result<u64, ExportError> {
        let conn = duckdb::Connection::open_in_memory()?;
        let defs: Vec<String> = self
            .columns
            .iter()
            .map(|(name, kind)| format!("\"{name}\" {}", kind.sql()))
            .collect();
        conn.execute_batch(&format!(
            "CREATE TABLE features ({}, geometry GEOMETRY)",
            defs.join(", ")
        ))?;
        {
            let mut appender = conn.appender("features")?;
            for (values, geometry) in &self.rows {
                let wkb = geometry.to_wkb(CoordDimensions::xy())?;
                let mut row = values.clone();
                row.push(Value::Geometry(wkb));
                appender.append_row(duckdb::appender_params_from_iter(row))?;
            }
            appender.flush()?;
        }
        let columns: Vec<String> = self.column_names().map(|n| format!("\"{n}\"")).collect();
        let columns = columns.join(", ");
        let target = sql_path(path);
        let sql = match format {
            FileFormat::Csv => format!(
                "COPY (SELECT {columns}, ST_AsText(geometry) AS wkt FROM features) \
                 TO '{target}' (FORMAT CSV, HEADER)"
            ),
            _ => format!(
                "COPY (SELECT {columns}, geometry FROM features) \
                 TO '{target}' (FORMAT PARQUET, COMPRESSION ZSTD)"
            ),
        };
        Ok(conn.execute(&sql, [])? as u64)
    }
}

/// A path as a single-quoted SQL string's contents.
pub fn sql_path(path: &Path) -> String {
    path.to_string_lossy().replace('\'', "''")
}

/// A JSON object of `names` and `values`.
pub fn properties(names: &[&str], values: &[Value]) -> Result<Map<String, Json>, ExportError> {
    names
        .iter()
        .zip(values)
        .map(|(name, v)| Ok(((*name).to_string(), json_value(name, v)?)))
        .collect()
}

/// The JSON form of a DuckDB value: numbers, text, booleans, timestamps as RFC 3339 (UTC) and
/// nulls; non-finite numbers become null, as JSON has no such numbers.
pub fn json_value(column: &str, v: &Value) -> Result<Json, ExportError> {
    Ok(match v {
        Value::Null => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::TinyInt(i) => Json::from(*i),
        Value::SmallInt(i) => Json::from(*i),
        Value::Int(i) => Json::from(*i),
        Value::BigInt(i) => Json::from(*i),
        Value::UTinyInt(i) => Json::from(*i),
        Value::USmallInt(i) => Json::from(*i),
        Value::UInt(i) => Json::from(*i),
        Value::UBigInt(i) => Json::from(*i),
        Value::Float(f) => {
            serde_json::Number::from_f64(f64::from(*f)).map_or(Json::Null, Json::Number)
        }
        Value::Double(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Text(s) => Json::String(s.clone()),
        Value::Timestamp(unit, t) => {
            let micros = unit.to_micros(*t);
            match DateTime::from_timestamp_micros(micros) {
                Some(at) => Json::String(at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
                None => Json::Null,
            }
        }
        other => {
            return Err(ExportError::Unsupported {
                column: column.to_string(),
                kind: format!("{:?}", other.data_type()),
            });
        }
    })
}

/// Writes a GeoJSON FeatureCollection one feature at a time.
pub struct GeoJsonWriter {
    out: BufWriter<File>,
    written: u64,
}

impl GeoJsonWriter {
    /// Creates the file at `path` and opens the collection.
    pub fn create(path: &Path) -> Result<Self, ExportError> {
        let mut out = BufWriter::with_capacity(1 << 16, File::create(path)?);
        out.write_all(br#"{"type":"FeatureCollection","features":["#)?;
        Ok(Self { out, written: 0 })
    }

    /// Appends a feature.
    pub fn feature(
        &mut self,
        properties: Map<String, Json>,
        geometry: geojson::Value,
    ) -> Result<(), ExportError> {
        let feature = geojson::Feature {
            bbox: None,
            geometry: Some(geojson::Geometry::new(geometry)),
            id: None,
            properties: Some(properties),
            foreign_members: None,
        };
        if self.written > 0 {
            self.out.write_all(b",\n")?;
        } else {
            self.out.write_all(b"\n")?;
        }
        serde_json::to_writer(&mut self.out, &feature).map_err(std::io::Error::from)?;
        self.written += 1;
        Ok(())
    }

    /// Closes the collection and flushes the file; returns the number of features.
    pub fn finish(mut self) -> Result<u64, ExportError> {
        self.out.write_all(b"\n]}\n")?;
        self.out.flush()?;
        Ok(self.written)
    }
}
