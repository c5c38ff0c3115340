//! Report exports: a Parquet file read back by pyarrow (Apache Arrow's reader, not DuckDB's),
//! and CSV, for any listing filter; keys and formats checked.

mod common;

use std::path::Path;
use std::process::Command;

use axum::http::StatusCode;
use common::TestApp;
use gridscope::config::Config;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn reports_export_to_parquet_that_pyarrow_reads_and_to_csv() {
    let app = TestApp::new(Config::default());
    let mut ids = Vec::new();
    for (i, category) in ["matter:06002", "component:01001", "matter:06001"]
        .iter()
        .enumerate()
    {
        let body = json!({
            "channel": "patrol",
            "category": category,
            "description": format!("导出 {i}"),
            "location": {"lon": 113.6607 + i as f64 * 0.001, "lat": 34.7486, "crs": "gcj02"},
        });
        let (s, v) = app.post_json("/api/v1/reports", &app.reporter, &body).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        ids.push(v["id"].as_i64().unwrap());
    }

    let (s, parquet) = app
        .fetch_with_key(
            "/api/v1/export/reports.parquet?category=matter:06",
            Some(&app.analyst),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.parquet");
    std::fs::write(&file, &parquet).unwrap();
    let python = std::env::var("GRIDSCOPE_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/parquet_read.py"))
        .arg(&file)
        .output()
        .expect("python: run scripts/test");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(read["num_rows"], 2);
    assert_eq!(read["columns"]["id"], "int64");
    assert_eq!(read["columns"]["lon"], "double");
    let rows = read["rows"].as_array().unwrap();
    assert_eq!(rows[0]["id"], ids[0]);
    assert_eq!(rows[1]["id"], ids[2]);
    assert_eq!(rows[0]["category"], "matter:06002");
    assert_eq!(rows[0]["description"], "导出 0");
    assert_eq!(rows[0]["raw_crs"], "gcj02");
    assert_eq!(rows[0]["status"], "reported");
    let (_, listed) = app
        .get(&format!("/api/v1/reports/{}", ids[0]), Some(&app.analyst))
        .await;
    assert_eq!(rows[0]["grid_l3"], listed["placement"]["grid_l3"]);
    assert_eq!(rows[0]["h3_r10"], listed["h3_r10"]);

    let (s, csv) = app
        .fetch_with_key("/api/v1/export/reports.csv", Some(&app.operator))
        .await;
    assert_eq!(s, StatusCode::OK);
    let text = String::from_utf8(csv.to_vec()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("id,reported_at,channel,category"));

    for (uri, key, status) in [
        (
            "/api/v1/export/reports.parquet",
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "/api/v1/export/reports.parquet",
            Some(app.reporter.clone()),
            StatusCode::FORBIDDEN,
        ),
        (
            "/api/v1/export/reports.xlsx",
            Some(app.analyst.clone()),
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/v1/export/reports.csv?limit=5",
            Some(app.analyst.clone()),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/export/reports.csv?channel=fax",
            Some(app.analyst.clone()),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (s, _) = app.fetch_with_key(uri, key.as_deref()).await;
        assert_eq!(s, status, "{uri}");
    }
}
