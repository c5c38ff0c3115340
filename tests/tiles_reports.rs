//! Report-based tiles: H3 heat (cell ids and counts checked against the reference H3 library,
//! privacy threshold for anonymous readers, freshness, filters) and report points (key needed,
//! every report in exactly one tile).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use bytes::Bytes;
use common::TestApp;
use gridscope::config::Config;
use gridscope::tiles::TileId;
use serde_json::{Value, json};

fn python() -> String {
    std::env::var("GRIDSCOPE_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Decodes tiles with mapbox-vector-tile; with `h3_points`, also asks the reference H3
/// library for the cells of those (lat, lon, res).
fn decode(tiles: &[Bytes], h3_points: &[(f64, f64, u8)]) -> (Vec<Value>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut args = Vec::new();
    for (i, t) in tiles.iter().enumerate() {
        let p = dir.path().join(format!("{i}.mvt"));
        std::fs::write(&p, t).unwrap();
        args.push(p);
    }
    let points: Vec<String> = h3_points
        .iter()
        .map(|(la, lo, r)| format!("{la},{lo},{r}"))
        .collect();
    let out = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/mvt_dump.py"))
        .args(&args)
        .env("H3_POINTS", points.join(";"))
        .output()
        .expect("python not found: run scripts/test");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let cells = if h3_points.is_empty() {
        Vec::new()
    } else {
        let last = lines.pop().unwrap();
        last["h3"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect()
    };
    (lines, cells)
}

async fn report(app: &TestApp, lon: f64, lat: f64, category: &str) -> i64 {
    let body = json!({
        "channel": "app",
        "category": category,
        "description": "tile test",
        "location": {"lon": lon, "lat": lat, "crs": "wgs84"},
    });
    let (status, v) = app.post_json("/api/v1/reports", &app.reporter, &body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v["id"].as_i64().unwrap()
}

/// Counts per cell in a decoded heat tile.
fn heat_counts(tile: &Value) -> BTreeMap<String, i64> {
    tile["heat"]
        .as_array()
        .map(|fs| {
            fs.iter()
                .map(|f| {
                    (
                        f["properties"]["cell"].as_str().unwrap().to_string(),
                        f["properties"]["count"].as_i64().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn heat_tiles_count_reports_per_h3_cell_as_the_reference_library_assigns_them() {
    let app = TestApp::new(Config::default());
    // A cluster of 12 around one spot in the centre, spread over a few res-9 cells, and a
    // lone report 2 km away.
    let mut points: Vec<(f64, f64)> = (0..12)
        .map(|i| {
            (
                113.6500 + f64::from(i % 4) * 0.0004,
                34.7500 + f64::from(i / 4) * 0.0004,
            )
        })
        .collect();
    points.push((113.6700, 34.7550));
    for &(lon, lat) in &points {
        report(&app, lon, lat, "matter:06002").await;
    }
    let tile = TileId::covering(13, [113.6500, 34.7500, 113.6500, 34.7500])
        .next()
        .unwrap();
    let uri = format!("/tiles/heat/{tile}.mvt");

    let refs: Vec<(f64, f64, u8)> = points.iter().map(|&(lon, lat)| (lat, lon, 9)).collect();
    let (status, body) = app.fetch_with_key(&uri, Some(&app.analyst)).await;
    assert_eq!(status, StatusCode::OK);
    let (tiles, cells) = decode(&[body], &refs);
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for (c, &(lon, lat)) in cells.iter().zip(&points) {
        let [x, y] = gridscope::tiles::tile_id::lon_lat_to_world(lon, lat);
        let span = tile.span();
        if (x / span) as u32 == tile.x && (y / span) as u32 == tile.y {
            *expected.entry(c.clone()).or_default() += 1;
        }
    }
    let got = heat_counts(&tiles[0]);
    for (cell, n) in &expected {
        assert_eq!(
            got.get(cell),
            Some(n),
            "cell {cell}: got {got:?}, reference {expected:?}"
        );
    }
    assert_eq!(
        got.values().sum::<i64>(),
        expected.values().sum::<i64>(),
        "{got:?}"
    );
    assert!(expected.values().sum::<i64>() >= 12);
    assert!(tiles[0]["heat"][0]["properties"]["res"] == 9);

    // Anonymous readers see only cells with at least k = 5 reports.
    let (status, body) = app.fetch_with_key(&uri, None).await;
    let public = if status == StatusCode::OK {
        heat_counts(&decode(&[body], &[]).0[0])
    } else {
        BTreeMap::new()
    };
    let visible: BTreeMap<String, i64> = got
        .iter()
        .filter(|(_, n)| **n >= 5)
        .map(|(c, n)| (c.clone(), *n))
        .collect();
    assert_eq!(public, visible);

    // Filters: another class shows nothing; the right channel shows everything.
    let (status, _) = app
        .fetch_with_key(&format!("{uri}?category=matter:07"), Some(&app.analyst))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, body) = app
        .fetch_with_key(
            &format!("{uri}?channel=app&category=matter:06,component:01"),
            Some(&app.analyst),
        )
        .await;
    assert_eq!(heat_counts(&decode(&[body], &[]).0[0]), got);
    let (status, _) = app
        .fetch_with_key(
            &format!("{uri}?from=2020-01-01T00:00:00Z&to=2020-02-01T00:00:00Z"),
            Some(&app.analyst),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // A new report shows within a few seconds.
    let busiest = got
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(c, n)| (c.clone(), *n))
        .unwrap();
    let at = points
        .iter()
        .zip(&cells)
        .find(|(_, c)| **c == busiest.0)
        .map(|(p, _)| *p)
        .unwrap();
    report(&app, at.0, at.1, "matter:06002").await;
    let started = Instant::now();
    loop {
        let (_, body) = app.fetch_with_key(&uri, Some(&app.analyst)).await;
        let now = heat_counts(&decode(&[body], &[]).0[0]);
        if now.get(&busiest.0) == Some(&(busiest.1 + 1)) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the new report did not show: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Bad filters are 400s naming the parameter; grids take none.
    for (uri, field) in [
        (format!("{uri}?channel=fax"), "channel"),
        (format!("{uri}?category=garbage"), "category"),
        (format!("{uri}?from=yesterday"), "from"),
        (format!("{uri}?colour=red"), "colour"),
        (format!("/tiles/grids/{tile}.mvt?channel=app"), "query"),
    ] {
        let (status, body) = app.fetch_with_key(&uri, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        let err: Value = serde_json::from_slice(&body).unwrap();
        assert!(
            err["error"]["field"].as_str().unwrap().contains(field),
            "{uri}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn report_tiles_need_a_key_and_hold_every_report_once() {
    let app = TestApp::new(Config::default());
    let mut ids = Vec::new();
    let mut tiles: Vec<TileId> = Vec::new();
    for i in 0..9 {
        let (lon, lat) = (
            113.6600 + f64::from(i % 3) * 0.003,
            34.7600 + f64::from(i / 3) * 0.003,
        );
        ids.push(
            report(
                &app,
                lon,
                lat,
                if i % 2 == 0 {
                    "matter:06002"
                } else {
                    "component:01001"
                },
            )
            .await,
        );
        tiles.extend(TileId::covering(15, [lon, lat, lon, lat]));
    }
    tiles.sort();
    tiles.dedup();
    let first = format!("/tiles/reports/{}.mvt", tiles[0]);
    let (status, _) = app.fetch_with_key(&first, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .fetch_with_key("/tiles/reports/13/6682/3251.mvt", Some(&app.analyst))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let mut bodies = Vec::new();
    for t in &tiles {
        let (status, body) = app
            .fetch_with_key(&format!("/tiles/reports/{t}.mvt"), Some(&app.analyst))
            .await;
        assert_eq!(status, StatusCode::OK, "{t}");
        bodies.push(body);
    }
    let (decoded, _) = decode(&bodies, &[]);
    let mut seen: Vec<i64> = Vec::new();
    for tile in &decoded {
        for f in tile["reports"].as_array().unwrap() {
            seen.push(f["id"].as_i64().unwrap());
            assert_eq!(f["properties"]["status"], "reported");
            assert_eq!(f["properties"]["overdue"], false);
            assert!(f["properties"]["age_h"].as_f64().unwrap() < 1.0);
            assert!(f["properties"]["category"].as_str().unwrap().contains(':'));
        }
    }
    seen.sort();
    assert_eq!(seen, ids);
}

async fn act(app: &TestApp, id: i64, key: &str, body: Value) {
    let (s, v) = app
        .post_json(&format!("/api/v1/reports/{id}/transitions"), key, &body)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kpi_tiles_carry_each_grids_kpis_for_choropleths() {
    let app = TestApp::new(Config::default());
    // Three reports at one spot in 二七区: one closed on time and rated satisfied, one only
    // accepted, one just reported.
    let (lon, lat) = (113.6546, 34.7500);
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(report(&app, lon, lat, "matter:06002").await);
    }
    let op = app.operator.clone();
    for step in [
        json!({"action": "accept"}),
        json!({"action": "dispatch"}),
        json!({"action": "handle"}),
        json!({"action": "check", "pass": true}),
    ] {
        act(&app, ids[0], &op, step).await;
    }
    act(
        &app,
        ids[0],
        &app.reporter.clone(),
        json!({"action": "rate", "rating": "satisfied"}),
    )
    .await;
    act(&app, ids[1], &op, json!({"action": "accept"})).await;
    let (_, v) = app
        .get(&format!("/api/v1/reports/{}", ids[0]), Some(&op))
        .await;
    let grid = v["placement"]["grid_l3"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_string();

    let tile = TileId::covering(14, [lon, lat, lon, lat]).next().unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = app
        .fetch_with_key(&format!("/tiles/kpi/{tile}.mvt"), Some(&app.analyst))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (decoded, _) = decode(&[body], &[]);
    let feats = decoded[0]["kpi"].as_array().unwrap();
    assert!(feats.iter().all(|f| f["properties"]["level"] == "3"));
    let with_reports: Vec<&Value> = feats
        .iter()
        .filter(|f| f["properties"]["reports"].as_i64() > Some(0))
        .collect();
    assert_eq!(with_reports.len(), 1, "{with_reports:?}");
    let p = &with_reports[0]["properties"];
    assert_eq!(p["code"], grid.as_str());
    assert_eq!(p["reports"], 3);
    // Due: the closed one (the accepted one's deadline has not passed): 1/1 closed, on time.
    assert_eq!(p["closure_rate"], 1.0);
    assert_eq!(p["on_time_rate"], 1.0);
    assert_eq!(p["satisfaction_rate"], 1.0);
    assert_eq!(p["overdue"], 0);
    assert!(p["per_km2"].as_f64().unwrap() > 0.0);

    // Anonymous readers: a grid with fewer than k = 5 reports shows no numbers.
    let (_, body) = app
        .fetch_with_key(&format!("/tiles/kpi/{tile}.mvt"), None)
        .await;
    let (decoded, _) = decode(&[body], &[]);
    let same = decoded[0]["kpi"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["properties"]["code"] == p["code"])
        .unwrap();
    assert!(same["properties"].get("reports").is_none(), "{same}");

    // The level can be chosen; districts at zoom 14 are one polygon with all three reports.
    let (_, body) = app
        .fetch_with_key(
            &format!("/tiles/kpi/{tile}.mvt?level=district"),
            Some(&app.analyst),
        )
        .await;
    let (decoded, _) = decode(&[body], &[]);
    let d = decoded[0]["kpi"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["properties"]["code"] == "410103")
        .unwrap();
    assert_eq!(d["properties"]["reports"], 3);
    let (status, _) = app
        .fetch_with_key(&format!("/tiles/kpi/{tile}.mvt?level=micro"), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
