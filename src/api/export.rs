//! `/api/v1/export`: reports for analysts as Parquet or CSV files, for any filter of a
//! listing, written by DuckDB and streamed from a temporary file.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::Response;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::extract::QueryParams;
use super::reports::{ListQuery, parse_filter};
use crate::store::keys::Role;
use crate::store::query::{ExportFormat, export};

/// A temporary file removed when dropped.
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn temp_path(ext: &str) -> std::path::PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "gridscope-export-{}-{}.{ext}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Reports matching the listing filters (`grid`, `status`, `category`, `channel`, `from`, `to`,
/// `bbox`, `overdue`) as `reports.parquet` (readable by DuckDB, pandas, Spark) or `reports.csv`,
/// oldest first, with their grid chain, lifecycle times and H3 cell. Needs an operator,
/// analyst or admin key.
#[utoipa::path(get, path = "/api/v1/export/{file}", tag = "reports",
    params(("file" = String, Path, description = "reports.parquet or reports.csv"), ListQuery),
    responses((status = 200, description = "the file", content_type = "application/vnd.apache.parquet"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn reports(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(file): Path<String>,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Operator, Role::Analyst], "export reports")?;
    let (format, ext, mime) = match file.as_str() {
        "reports.parquet" => (
            ExportFormat::Parquet,
            "parquet",
            "application/vnd.apache.parquet",
        ),
        "reports.csv" => (ExportFormat::Csv, "csv", "text/csv; charset=utf-8"),
        _ => {
            return Err(ApiError::not_found(format!(
                "no export {file:?}; there are reports.parquet and reports.csv"
            )));
        }
    };
    if q.limit.is_some() || q.cursor.is_some() {
        return Err(ApiError::invalid(
            "limit",
            "an export holds every matching report: no limit or cursor",
        ));
    }
    let filter = parse_filter(&q)?;
    let tmp = TempFile(temp_path(ext));
    let path = tmp.0.clone();
    let rows = state
        .store
        .read_async(move |c| export(c, &filter, format, &path))
        .await?;
    let opened = tokio::fs::File::open(&tmp.0)
        .await
        .map_err(|e| ApiError::internal("reading an export", &e))?;
    // The file's name can go now: the open handle keeps its data until the stream ends.
    drop(tmp);
    let stream = tokio_util::io::ReaderStream::with_capacity(opened, 1 << 16);
    Response::builder()
        .header(header::CONTENT_TYPE, mime)
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file}\""),
        )
        .header("x-gridscope-rows", rows.to_string())
        .body(Body::from_stream(stream))
        .map_err(|e| ApiError::internal("building the response", &e))
}
