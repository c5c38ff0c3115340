//! Exports for analysts, read back by independent readers: report Parquet by pyarrow; reports,
//! heat and KPIs as GeoParquet, GeoJSON and CSV by GeoPandas (pyarrow, GDAL, shapely), with
//! H3 cells checked against the reference H3 library; keys, formats and parameters checked.

mod common;

use std::collections::BTreeMap;
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
            "/api/v1/export/reports.shp",
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

/// Writes `bytes` under `dir` as `name` and reads it with `tests/oracle/geo_read.py`.
fn geo_read(dir: &Path, name: &str, bytes: &[u8], args: &[&str]) -> Value {
    let file = dir.join(name);
    std::fs::write(&file, bytes).unwrap();
    let python = std::env::var("GRIDSCOPE_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/geo_read.py"))
        .arg(&file)
        .args(args)
        .output()
        .expect("python: run scripts/test");
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Reports at a few places: 7 at one spot, 5 spread out, all in the last hour.
async fn place_reports(app: &TestApp) -> Vec<Value> {
    let mut created = Vec::new();
    for i in 0..12 {
        let (lon, lat) = if i < 7 {
            (113.6607, 34.7486)
        } else {
            (
                113.5807 + f64::from(i) * 0.01,
                34.7886 - f64::from(i) * 0.006,
            )
        };
        let body = json!({
            "channel": if i % 2 == 0 { "patrol" } else { "app" },
            "category": "matter:06002",
            "description": format!("热力 {i}"),
            "location": {"lon": lon, "lat": lat, "crs": "wgs84"},
        });
        let (s, v) = app.post_json("/api/v1/reports", &app.reporter, &body).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let (_, record) = app
            .get(&format!("/api/v1/reports/{}", v["id"]), Some(&app.analyst))
            .await;
        created.push(record);
    }
    created
}

#[tokio::test(flavor = "multi_thread")]
async fn geoparquet_geojson_and_csv_exports_that_geopandas_reads() {
    let app = TestApp::new(Config::default());
    let created = place_reports(&app).await;
    let dir = tempfile::tempdir().unwrap();

    // Reports: the same points in every format, coordinates bit for bit, WGS84.
    for format in ["parquet", "geojson", "csv"] {
        let (s, bytes) = app
            .fetch_with_key(
                &format!("/api/v1/export/reports.{format}"),
                Some(&app.analyst),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{format}");
        let read = geo_read(dir.path(), &format!("reports.{format}"), &bytes, &[]);
        assert_eq!(read["geographic_wgs84"], true, "{format}: {}", read["crs"]);
        let rows = read["rows"].as_array().unwrap();
        assert_eq!(rows.len(), created.len(), "{format}");
        for (row, record) in rows.iter().zip(&created) {
            assert_eq!(row["__geometry__"]["type"], "Point", "{format}");
            let xy = &row["__geometry__"]["coordinates"];
            assert_eq!(xy[0].as_f64(), record["lon"].as_f64(), "{format}");
            assert_eq!(xy[1].as_f64(), record["lat"].as_f64(), "{format}");
            assert_eq!(
                row["grid_l3"].as_str(),
                record["placement"]["grid_l3"].as_str(),
                "{format}"
            );
        }
    }

    // Heat: the cells and counts the reference H3 library gives for the same points.
    let (_, bytes) = app
        .fetch_with_key("/api/v1/export/reports.geojson", Some(&app.analyst))
        .await;
    let points = geo_read(
        dir.path(),
        "points.geojson",
        &bytes,
        &["--h3-of-points", "9"],
    );
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for row in points["rows"].as_array().unwrap() {
        *expected
            .entry(row["__h3__"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert!(expected.len() >= 4, "{expected:?}");
    for row in points["rows"].as_array().unwrap() {
        assert_eq!(row["h3_r9"], row["__h3__"], "the exported res-9 cell");
    }
    let (s, v) = app
        .get("/api/v1/stats/heat?res=9", Some(&app.analyst))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let counted: BTreeMap<String, i64> = v["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["cell"].as_str().unwrap().to_string(),
                f["count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counted, expected, "/api/v1/stats/heat");
    assert_eq!(v["reports"].as_i64(), Some(created.len() as i64));
    for format in ["parquet", "geojson", "csv"] {
        let (s, bytes) = app
            .fetch_with_key(
                &format!("/api/v1/export/heat.{format}?res=9"),
                Some(&app.analyst),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{format}");
        let read = geo_read(
            dir.path(),
            &format!("heat.{format}"),
            &bytes,
            &["--h3-boundaries"],
        );
        let rows = read["rows"].as_array().unwrap();
        let got: BTreeMap<String, i64> = rows
            .iter()
            .map(|r| {
                let n = r["reports"]
                    .as_i64()
                    .or_else(|| r["reports"].as_str().and_then(|t| t.parse().ok()));
                (r["h3"].as_str().unwrap().to_string(), n.unwrap())
            })
            .collect();
        assert_eq!(got, expected, "{format}");
        for r in rows {
            assert_eq!(r["__h3_boundary_equal__"], true, "{format}: {r}");
            assert_eq!(r["__valid__"], true, "{format}: {r}");
        }
    }
    // Anonymous readers see only cells with at least k (5) reports.
    let (s, bytes) = app
        .fetch_with_key("/api/v1/export/heat.geojson?res=9", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let public = geo_read(dir.path(), "public.geojson", &bytes, &[]);
    let cells: Vec<i64> = public["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reports"].as_i64().unwrap())
        .collect();
    let busy_cells: Vec<i64> = expected.values().copied().filter(|&n| n >= 5).collect();
    assert_eq!(cells, busy_cells);
    assert!(cells.len() < expected.len());
    let (_, v) = app.get("/api/v1/stats/heat?res=9", None).await;
    let counts: Vec<i64> = v["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["count"].as_i64().unwrap())
        .collect();
    assert_eq!(counts, busy_cells, "anonymous /api/v1/stats/heat");

    // KPIs: every level-3 grid of the busy spot's community, with the API's own figures.
    let community = created[0]["placement"]["grid_l2"].as_str().unwrap();
    let busy = created[0]["placement"]["grid_l3"].as_str().unwrap();
    let (_, children) = app
        .get(
            &format!("/api/v1/grids?parent={community}&level=3&limit=1000"),
            Some(&app.analyst),
        )
        .await;
    let mut child_codes: Vec<&str> = children["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["properties"]["code"].as_str().unwrap())
        .collect();
    child_codes.sort_unstable();
    let (_, stats) = app
        .get(
            &format!("/api/v1/stats/kpi?grid={busy}"),
            Some(&app.analyst),
        )
        .await;
    for format in ["parquet", "geojson", "csv"] {
        let (s, bytes) = app
            .fetch_with_key(
                &format!("/api/v1/export/kpi.{format}?grid={community}&level=3"),
                Some(&app.analyst),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{format}");
        let read = geo_read(dir.path(), &format!("kpi.{format}"), &bytes, &[]);
        let rows = read["rows"].as_array().unwrap();
        let codes: Vec<&str> = rows.iter().map(|r| r["code"].as_str().unwrap()).collect();
        assert_eq!(codes, child_codes, "{format}");
        let row = rows.iter().find(|r| r["code"] == busy).unwrap();
        let number = |v: &Value| {
            v.as_f64()
                .or_else(|| v.as_str().and_then(|t| t.parse().ok()))
        };
        assert_eq!(
            number(&row["reports"]),
            stats["current"]["counts"]["reports"].as_f64(),
            "{format}"
        );
        assert_eq!(number(&row["reports"]), Some(7.0), "{format}");
        assert_eq!(row["parent"].as_str(), Some(community), "{format}");
        for r in rows {
            assert_eq!(r["__valid__"], true, "{format}: {}", r["code"]);
            assert!(
                matches!(
                    r["__geometry__"]["type"].as_str(),
                    Some("Polygon" | "MultiPolygon")
                ),
                "{format}"
            );
        }
    }
    // Districts of the city by default, each with its area.
    let (s, bytes) = app
        .fetch_with_key("/api/v1/export/kpi.geojson", Some(&app.analyst))
        .await;
    assert_eq!(s, StatusCode::OK);
    let districts = geo_read(dir.path(), "districts.geojson", &bytes, &[]);
    let rows = districts["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 12);
    let total: f64 = rows.iter().filter_map(|r| r["reports"].as_f64()).sum();
    assert_eq!(total, created.len() as f64);
    assert!(rows.iter().all(|r| r["area_km2"].as_f64() > Some(50.0)));

    // Parameters that do not fit the export are named.
    for (uri, field) in [
        ("/api/v1/export/heat.csv?status=closed", "status"),
        ("/api/v1/export/heat.csv?res=11", "res"),
        ("/api/v1/export/heat.csv?level=3", "level"),
        ("/api/v1/export/kpi.csv?res=8", "res"),
        ("/api/v1/export/kpi.csv?bbox=113,34,114,35", "bbox"),
        ("/api/v1/export/kpi.csv?level=micro", "level"),
        (&format!("/api/v1/export/kpi.csv?grid={busy}"), "grid"),
        (
            &format!("/api/v1/export/kpi.csv?grid={busy}&level=2"),
            "level",
        ),
        ("/api/v1/export/reports.csv?res=8", "res"),
        (
            "/api/v1/export/heat.csv?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
            "from",
        ),
    ] {
        let (s, v) = app.get(uri, Some(&app.analyst)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {v}");
        assert_eq!(v["error"]["field"], field, "{uri}: {v}");
    }
    let (s, _) = app
        .get("/api/v1/export/kpi.csv?grid=410105999", Some(&app.analyst))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
