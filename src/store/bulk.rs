//! Bulk loading of reports that already have a past (the demo history, or records migrated
//! from another system): each report with its lifecycle columns and its history rows, appended
//! as Arrow batches straight into the tables. For a database no server is writing to.

use std::sync::Arc;

use duckdb::Connection;
use duckdb::arrow::array::{
    ArrayRef, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use duckdb::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use duckdb::arrow::record_batch::RecordBatch;

use super::StoreError;
use super::columns::{insert_batch, register_arrow_scan, reports_batch};
use super::record::NewReport;
use crate::report::history::HistoricReport;
use crate::report::{ReportId, Status};

fn arrow(e: duckdb::arrow::error::ArrowError) -> StoreError {
    StoreError::Internal(format!("building a batch: {e}"))
}

fn stamps(values: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(values.collect::<TimestampMicrosecondArray>())
}

fn ints(values: impl Iterator<Item = i32>) -> ArrayRef {
    Arc::new(values.map(Some).collect::<Int32Array>())
}

/// Reports as one batch: the intake columns (with the deadline and responsible unit as they
/// stand now, and created/updated times from the history), then the lifecycle columns.
fn report_rows(rows: &[HistoricReport]) -> Result<RecordBatch, StoreError> {
    let current: Vec<NewReport> = rows
        .iter()
        .map(|r| {
            let mut n = r.report.clone();
            n.deadline = r.outcome.deadline;
            n.placement.responsible = r.outcome.responsible.as_str().into();
            n
        })
        .collect();
    let pairs: Vec<(ReportId, &NewReport)> =
        rows.iter().map(|r| r.id).zip(current.iter()).collect();
    let base = reports_batch(&pairs, chrono::Utc::now()).map_err(arrow)?;
    let micros = |t: chrono::DateTime<chrono::Utc>| t.timestamp_micros();
    let o = || rows.iter().map(|r| &r.outcome);
    let ts = DataType::Timestamp(TimeUnit::Microsecond, None);
    let mut fields: Vec<Field> = base
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    let mut columns: Vec<ArrayRef> = base.columns().to_vec();
    // Created and last updated as the history says, not now.
    for (name, values) in [
        (
            "created_at",
            stamps(rows.iter().map(|r| Some(micros(r.report.reported_at)))),
        ),
        (
            "updated_at",
            stamps(o().map(|x| Some(micros(x.updated_at)))),
        ),
    ] {
        if let Some(i) = fields.iter().position(|f| f.name() == name) {
            columns[i] = values;
        }
    }
    let extra: Vec<(&str, DataType, ArrayRef)> = vec![
        (
            "status",
            DataType::Utf8,
            Arc::new(o().map(|x| Some(x.status.name())).collect::<StringArray>()),
        ),
        (
            "accepted_at",
            ts.clone(),
            stamps(o().map(|x| x.accepted_at.map(micros))),
        ),
        (
            "dispatched_at",
            ts.clone(),
            stamps(o().map(|x| x.dispatched_at.map(micros))),
        ),
        (
            "handled_at",
            ts.clone(),
            stamps(o().map(|x| x.handled_at.map(micros))),
        ),
        (
            "closed_at",
            ts,
            stamps(o().map(|x| x.closed_at.map(micros))),
        ),
        (
            "rating",
            DataType::Utf8,
            Arc::new(
                o().map(|x| x.rating.map(|r| r.name()))
                    .collect::<StringArray>(),
            ),
        ),
        (
            "rework_count",
            DataType::Int32,
            ints(o().map(|x| x.rework as i32)),
        ),
        (
            "extension_count",
            DataType::Int32,
            ints(o().map(|x| x.extensions as i32)),
        ),
        (
            "escalation_count",
            DataType::Int32,
            ints(o().map(|x| x.escalations as i32)),
        ),
        (
            "history_len",
            DataType::Int32,
            ints(o().map(|x| x.events.len() as i32 + 1)),
        ),
    ];
    for (name, t, a) in extra {
        fields.push(Field::new(name, t, true));
        columns.push(a);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(arrow)
}

/// The history rows of `rows` (the transitions; the report itself is entry 0, kept in the
/// report's own row).
fn history_rows(rows: &[HistoricReport], actor: &str) -> Result<RecordBatch, StoreError> {
    let events = || {
        rows.iter().flat_map(|r| {
            r.outcome
                .events
                .iter()
                .enumerate()
                .map(move |(i, e)| (r.id, i, e))
        })
    };
    let name = |s: Status| Some(s.name());
    let columns: Vec<(&str, DataType, ArrayRef)> = vec![
        (
            "report_id",
            DataType::Int64,
            Arc::new(
                events()
                    .map(|(id, _, _)| Some(id.0))
                    .collect::<Int64Array>(),
            ),
        ),
        (
            "seq",
            DataType::Int32,
            ints(events().map(|(_, i, _)| i as i32 + 1)),
        ),
        (
            "happened_at",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            stamps(events().map(|(_, _, e)| Some(e.at.timestamp_micros()))),
        ),
        (
            "action",
            DataType::Utf8,
            Arc::new(
                events()
                    .map(|(_, _, e)| Some(e.action.name()))
                    .collect::<StringArray>(),
            ),
        ),
        (
            "actor",
            DataType::Utf8,
            Arc::new(events().map(|_| Some(actor)).collect::<StringArray>()),
        ),
        (
            "from_status",
            DataType::Utf8,
            Arc::new(
                events()
                    .map(|(_, _, e)| name(e.from))
                    .collect::<StringArray>(),
            ),
        ),
        (
            "to_status",
            DataType::Utf8,
            Arc::new(
                events()
                    .map(|(_, _, e)| name(e.to))
                    .collect::<StringArray>(),
            ),
        ),
        (
            "reason",
            DataType::Utf8,
            Arc::new(events().map(|_| None::<&str>).collect::<StringArray>()),
        ),
        (
            "detail",
            DataType::Utf8,
            Arc::new(
                events()
                    .map(|(_, _, e)| e.detail.as_deref())
                    .collect::<StringArray>(),
            ),
        ),
    ];
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, t, _)| Field::new(*n, t.clone(), true))
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, _, a)| a).collect(),
    )
    .map_err(arrow)
}

/// Inserts reports with their lifecycle and history, on a connection prepared by
/// [`register_arrow_scan`]. Call inside a transaction to make a whole load atomic.
pub fn append(conn: &Connection, rows: &[HistoricReport], actor: &str) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    insert_batch(conn, "reports", report_rows(rows)?)?;
    insert_batch(conn, "report_history", history_rows(rows, actor)?)?;
    Ok(())
}

/// How many reports the database holds.
pub fn report_count(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row("SELECT count(*) FROM reports", [], |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

/// Generates the whole history of `generator` and loads it into the database at `conn` in one
/// transaction: days are generated in parallel while earlier ones are appended. `progress`
/// gets the number of reports loaded so far. Returns how many were loaded.
pub fn load_history(
    conn: &Connection,
    generator: &crate::report::history::HistoryGenerator<'_>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<u64, StoreError> {
    use rayon::prelude::*;
    const DAYS_PER_BATCH: usize = 8;
    let days = generator.days();
    register_arrow_scan(conn)?;
    conn.execute_batch("BEGIN TRANSACTION")?;
    let result = std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<HistoricReport>>(2);
        s.spawn(move || {
            for start in (0..days).step_by(DAYS_PER_BATCH) {
                let end = (start + DAYS_PER_BATCH).min(days);
                let batch: Vec<HistoricReport> = (start..end)
                    .into_par_iter()
                    .map(|d| generator.day(d))
                    .collect::<Vec<_>>()
                    .concat();
                if tx.send(batch).is_err() {
                    return;
                }
            }
        });
        let mut loaded = 0u64;
        for batch in rx {
            append(conn, &batch, "demo-history")?;
            loaded += batch.len() as u64;
            progress(loaded);
        }
        Ok::<u64, StoreError>(loaded)
    });
    match result {
        Ok(n) => {
            conn.execute_batch("COMMIT")?;
            Ok(n)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}
