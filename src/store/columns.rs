//! New reports as Arrow columns, inserted into DuckDB in one statement per batch: far cheaper
//! than binding ~50 values per row one at a time.

use std::borrow::Cow;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use duckdb::Connection;
use duckdb::arrow::array::{
    ArrayRef, Float32Array, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray,
    UInt64Array,
};
use duckdb::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use duckdb::arrow::error::ArrowError;
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::vtab::arrow::{ArrowBatchRegistration, ArrowVTab};

use super::record::{NewReport, PlacementCodes};
use crate::report::ReportId;
use crate::report::category::CategoryText;

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn text<'a>(values: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(values.map(Some).collect::<StringArray>())
}

fn opt_text<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(values.collect::<StringArray>())
}

fn stamps(values: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(values.collect::<TimestampMicrosecondArray>())
}

fn schema(columns: &[(&str, DataType)]) -> Arc<Schema> {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, t)| Field::new(*name, t.clone(), true))
            .collect::<Vec<_>>(),
    ))
}

/// The table function through which [`insert_batch`] reads a batch.
const ARROW_SCAN: &str = "arrow";

/// Makes [`insert_batch`] available on `conn` (once is enough; again does nothing).
pub fn register_arrow_scan(conn: &Connection) -> Result<(), duckdb::Error> {
    let known: bool = conn.query_row(
        "SELECT count(*) > 0 FROM duckdb_functions() WHERE function_name = ?",
        [ARROW_SCAN],
        |r| r.get(0),
    )?;
    if known {
        return Ok(());
    }
    conn.register_table_function::<ArrowVTab>(ARROW_SCAN)
}

/// Inserts `rows` into `table`, each of the batch's columns into the table's column of the
/// same name (a batch built in another order fails, rather than filing values under the
/// wrong column), on a connection prepared by [`register_arrow_scan`]. An `INSERT ... SELECT`
/// from the batch goes straight into the table, where an appender would first copy every value
/// into a buffer of its own and then plan an insert from that buffer all the same.
pub fn insert_batch(
    conn: &Connection,
    table: &str,
    rows: RecordBatch,
) -> Result<(), duckdb::Error> {
    let columns = rows
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("INSERT INTO {table} ({columns}) SELECT {columns} FROM {ARROW_SCAN}(?)");
    let registration = ArrowBatchRegistration::new(rows);
    conn.prepare_cached(&sql)?.execute([&registration])?;
    Ok(())
}

/// Inserts new reports' rows, built by [`reports_batch`], into `reports`.
pub fn insert_reports(conn: &Connection, rows: RecordBatch) -> Result<(), duckdb::Error> {
    insert_batch(conn, "reports", rows)
}

/// The columns new reports set, one row each; the others (status, lifecycle times, counters)
/// start at the table's defaults.
pub fn reports_batch(
    rows: &[(ReportId, &NewReport)],
    now: DateTime<Utc>,
) -> Result<RecordBatch, ArrowError> {
    let codes: Vec<PlacementCodes<'_>> = rows.iter().map(|(_, r)| r.placement.codes()).collect();
    placed_reports_batch(rows, &codes, now)
}

/// [`reports_batch`] of reports placed by `codes` (one per row, in order).
fn placed_reports_batch<P>(
    rows: &[(ReportId, &NewReport<P>)],
    codes: &[PlacementCodes<'_>],
    now: DateTime<Utc>,
) -> Result<RecordBatch, ArrowError> {
    if codes.len() != rows.len() {
        return Err(ArrowError::InvalidArgumentError(format!(
            "{} placements for {} reports",
            codes.len(),
            rows.len()
        )));
    }
    use DataType::{Float32, Float64, Int64, UInt64, Utf8};
    let ts = DataType::Timestamp(TimeUnit::Microsecond, None);
    let n = rows.len();
    let r = || rows.iter().map(|(_, r)| *r);
    let now_col = || stamps(std::iter::repeat_n(Some(micros(now)), n));
    // Most reports have no photos and lie in no exclusive grid: those cost no allocation.
    let photos: Vec<Cow<'_, str>> = r()
        .map(|x| {
            if x.photos.is_empty() {
                Cow::Borrowed("[]")
            } else {
                Cow::Owned(serde_json::to_string(&x.photos).unwrap_or_else(|_| "[]".into()))
            }
        })
        .collect();
    let exclusive: Vec<Cow<'_, str>> = codes
        .iter()
        .map(|p| match p.exclusive.as_slice() {
            [] => Cow::Borrowed(""),
            [one] => Cow::Borrowed(*one),
            many => Cow::Owned(many.join(",")),
        })
        .collect();
    let categories: Vec<CategoryText> = r().map(|x| x.category.text()).collect();
    let h3 = |i: usize| Arc::new(r().map(|x| x.h3[i]).collect::<UInt64Array>()) as ArrayRef;
    let columns: Vec<(&str, DataType, ArrayRef)> = vec![
        (
            "id",
            Int64,
            Arc::new(rows.iter().map(|(id, _)| id.0).collect::<Int64Array>()),
        ),
        (
            "reported_at",
            ts.clone(),
            stamps(r().map(|x| Some(micros(x.reported_at)))),
        ),
        ("created_at", ts.clone(), now_col()),
        ("channel", Utf8, text(r().map(|x| x.channel.name()))),
        (
            "category",
            Utf8,
            text(categories.iter().map(CategoryText::as_str)),
        ),
        (
            "description",
            Utf8,
            text(r().map(|x| x.description.as_str())),
        ),
        (
            "reporter_ref",
            Utf8,
            opt_text(r().map(|x| x.reporter_ref.as_deref())),
        ),
        ("photos", Utf8, text(photos.iter().map(|p| &**p))),
        (
            "raw_lon",
            Float64,
            Arc::new(r().map(|x| x.raw.lon).collect::<Float64Array>()),
        ),
        (
            "raw_lat",
            Float64,
            Arc::new(r().map(|x| x.raw.lat).collect::<Float64Array>()),
        ),
        ("raw_crs", Utf8, text(r().map(|x| x.raw.crs.name()))),
        (
            "lon",
            Float64,
            Arc::new(r().map(|x| x.lon).collect::<Float64Array>()),
        ),
        (
            "lat",
            Float64,
            Arc::new(r().map(|x| x.lat).collect::<Float64Array>()),
        ),
        ("h3_r6", UInt64, h3(0)),
        ("h3_r7", UInt64, h3(1)),
        ("h3_r8", UInt64, h3(2)),
        ("h3_r9", UInt64, h3(3)),
        ("h3_r10", UInt64, h3(4)),
        ("district", Utf8, opt_text(codes.iter().map(|p| p.district))),
        ("grid_l1", Utf8, opt_text(codes.iter().map(|p| p.grid_l1))),
        ("grid_l2", Utf8, opt_text(codes.iter().map(|p| p.grid_l2))),
        ("grid_l3", Utf8, opt_text(codes.iter().map(|p| p.grid_l3))),
        ("micro", Utf8, opt_text(codes.iter().map(|p| p.micro))),
        ("exclusive", Utf8, text(exclusive.iter().map(|e| &**e))),
        (
            "assigned_grid",
            Utf8,
            text(codes.iter().map(|p| p.assigned_grid)),
        ),
        (
            "assign_method",
            Utf8,
            text(codes.iter().map(|p| p.method.name())),
        ),
        (
            "assign_distance_m",
            Float32,
            Arc::new(codes.iter().map(|p| p.distance_m).collect::<Float32Array>()),
        ),
        (
            "responsible",
            Utf8,
            text(codes.iter().map(|p| p.responsible)),
        ),
        (
            "deadline",
            ts.clone(),
            stamps(r().map(|x| Some(micros(x.deadline)))),
        ),
        ("updated_at", ts, now_col()),
        ("created_by", Utf8, text(r().map(|x| x.created_by.as_str()))),
        (
            "idempotency_key",
            Utf8,
            opt_text(r().map(|x| x.idempotency_key.as_deref())),
        ),
    ];
    let fields: Vec<(&str, DataType)> = columns.iter().map(|(n, t, _)| (*n, t.clone())).collect();
    RecordBatch::try_new(
        schema(&fields),
        columns.into_iter().map(|(_, _, a)| a).collect(),
    )
}

/// Reports of a batch import made ready for the writer on the preparing threads: their Arrow
/// columns built (ids still to be given) and the idempotency keys the writer checks. Building
/// the columns and freeing the reports off the single writer thread keeps it on DuckDB's work.
pub struct PreparedReports {
    batch: RecordBatch,
    keys: Vec<Option<(String, String)>>,
}

impl PreparedReports {
    /// Builds the columns of `reports`, placed by `codes` (one per report, in order); `now`
    /// is their creation time.
    pub fn new<P>(
        reports: &[NewReport<P>],
        codes: &[PlacementCodes<'_>],
        now: DateTime<Utc>,
    ) -> Result<Self, ArrowError> {
        let unnumbered: Vec<(ReportId, &NewReport<P>)> =
            reports.iter().map(|r| (ReportId(0), r)).collect();
        Ok(Self {
            batch: placed_reports_batch(&unnumbered, codes, now)?,
            keys: reports.iter().map(NewReport::idempotency_scope).collect(),
        })
    }

    /// Each report's (creator, idempotency key), in order.
    pub fn keys(&self) -> &[Option<(String, String)>] {
        &self.keys
    }

    /// The rows to store: those `keep` marks, numbered with `ids` (one per kept row, in order).
    pub fn numbered(&self, keep: &[bool], ids: &[ReportId]) -> Result<RecordBatch, ArrowError> {
        let batch = if keep.iter().all(|&k| k) {
            self.batch.clone()
        } else {
            let mask = keep.iter().map(|&k| Some(k)).collect();
            duckdb::arrow::compute::filter_record_batch(&self.batch, &mask)?
        };
        let mut columns = batch.columns().to_vec();
        columns[0] = Arc::new(ids.iter().map(|id| id.0).collect::<Int64Array>());
        RecordBatch::try_new(batch.schema(), columns)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{TimeZone, Utc};
    use duckdb::Connection;

    use super::{insert_reports, register_arrow_scan, reports_batch};
    use crate::Crs;
    use crate::assign::Method;
    use crate::report::{Channel, ReportId};
    use crate::store::record::{NewReport, Placement, RawLocation};
    use crate::store::schema::migrate;

    /// Every column of a new report lands in the column of its name: columns of one type
    /// swapped in the batch (seven grid codes, all text) would otherwise go unnoticed.
    #[test]
    fn inserted_reports_read_back_column_by_column() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        register_arrow_scan(&conn).unwrap();
        let at = Utc.with_ymd_and_hms(2026, 11, 2, 9, 30, 0).unwrap();
        let code = |s: &str| Some(Arc::<str>::from(s));
        let report = NewReport {
            channel: Channel::Hotline12345,
            category: "matter:06002".parse().unwrap(),
            description: "井盖缺失".into(),
            reporter_ref: Some("T-1".into()),
            photos: vec!["https://p.example/1.jpg".into()],
            raw: RawLocation {
                lon: 113.66,
                lat: 34.75,
                crs: Crs::Gcj02,
            },
            lon: 113.654,
            lat: 34.751,
            h3: [6, 7, 8, 9, 10],
            reported_at: at,
            placement: Placement {
                district: code("410103"),
                grid_l1: code("410103015"),
                grid_l2: code("410103015023"),
                grid_l3: code("410103015023084"),
                micro: code("410103015023084001"),
                exclusive: vec!["410103Z01".into(), "410103Z02".into()],
                assigned_grid: "410103015023084".into(),
                method: Method::Snapped,
                distance_m: 12.5,
                responsible: "410103Z01".into(),
            },
            deadline: at + chrono::Duration::days(3),
            created_by: "k1".into(),
            idempotency_key: Some("retry-1".into()),
        };
        let batch = reports_batch(&[(ReportId(42), &report)], at).unwrap();
        insert_reports(&conn, batch).unwrap();
        let row: Vec<String> = conn
            .query_row(
                "SELECT [id::VARCHAR, channel, category, description, reporter_ref, photos,
                         raw_lon::VARCHAR, raw_lat::VARCHAR, raw_crs, lon::VARCHAR, lat::VARCHAR,
                         h3_r6::VARCHAR, h3_r10::VARCHAR, district, grid_l1, grid_l2, grid_l3,
                         micro, exclusive, assigned_grid, assign_method,
                         assign_distance_m::VARCHAR, responsible, status, created_by,
                         idempotency_key, (deadline - reported_at)::VARCHAR]
                 FROM reports",
                [],
                |r| r.get::<_, duckdb::types::Value>(0),
            )
            .map(|v| match v {
                duckdb::types::Value::List(items) => items
                    .into_iter()
                    .map(|i| match i {
                        duckdb::types::Value::Text(t) => t,
                        other => format!("{other:?}"),
                    })
                    .collect(),
                other => panic!("not a list: {other:?}"),
            })
            .unwrap();
        assert_eq!(
            row,
            [
                "42",
                "hotline_12345",
                "matter:06002",
                "井盖缺失",
                "T-1",
                r#"["https://p.example/1.jpg"]"#,
                "113.66",
                "34.75",
                "gcj02",
                "113.654",
                "34.751",
                "6",
                "10",
                "410103",
                "410103015",
                "410103015023",
                "410103015023084",
                "410103015023084001",
                "410103Z01,410103Z02",
                "410103015023084",
                "snapped",
                "12.5",
                "410103Z01",
                "reported",
                "k1",
                "retry-1",
                "3 days",
            ]
        );
    }
}
