//! Hot spots (`/api/v1/stats/hotspots` and `/emerging`) on reports made for the test: a dense
//! cluster over a thin spread across the city. Gi* z-scores and p-values are checked against
//! PySAL (`esda.G_Local`, star, binary weights) with neighbours built by the reference H3
//! library, and over level-3 grids with PySAL's own queen contiguity built from the exported
//! polygons: an independent implementation of the statistic and of the neighbour graphs.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{TestApp, small_city};
use gridscope::config::Config;
use gridscope::grid::demo::report_points;
use serde_json::{Value, json};

/// 300 reports spread over the small city and 120 around 二七广场.
async fn reports(app: &TestApp) {
    let city = small_city();
    let mut batch: Vec<Value> = report_points(city.grids(), 300, 0.0, 21)
        .into_iter()
        .map(|p| json!({"lon": p.lon(), "lat": p.lat(), "crs": "wgs84"}))
        .collect();
    for i in 0..120 {
        let (dx, dy) = (f64::from(i % 11) - 5.0, f64::from(i % 7) - 3.0);
        batch.push(
            json!({"lon": 113.6547 + dx * 0.0012, "lat": 34.7509 + dy * 0.0010, "crs": "wgs84"}),
        );
    }
    let body: Vec<Value> = batch
        .into_iter()
        .map(|location| json!({"channel": "patrol", "category": "matter:06002", "location": location}))
        .collect();
    let (s, v) = app
        .post_json("/api/v1/reports/batch", &app.reporter, &Value::Array(body))
        .await;
    assert_eq!(s, 201, "{v}");
}

fn pysal(cells: &[String], values: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let python = std::env::var("GRIDSCOPE_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/gi_star.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python: run scripts/test, which installs esda and h3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            json!({"cells": cells, "values": values})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = |k: &str| -> Vec<f64> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    (list("z"), list("p"))
}

#[tokio::test]
async fn gi_star_agrees_with_pysal_and_finds_the_cluster() {
    let app = TestApp::new(Config::default());
    reports(&app).await;
    for res in [7, 8] {
        let (s, v) = app
            .get(
                &format!("/api/v1/stats/hotspots?res={res}&all=true"),
                Some(&app.analyst),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let features = v["features"].as_array().unwrap();
        assert_eq!(features.len() as u64, v["cells"].as_u64().unwrap());
        assert!(v["reports"].as_u64().unwrap() >= 400, "{}", v["reports"]);
        let cells: Vec<String> = features
            .iter()
            .map(|f| f["cell"].as_str().unwrap().to_string())
            .collect();
        let values: Vec<f64> = features
            .iter()
            .map(|f| f["count"].as_f64().unwrap())
            .collect();
        assert!(
            values.iter().sum::<f64>() >= 400.0,
            "most reports fall in the covered cells"
        );
        let (z, p) = pysal(&cells, &values);
        for (i, f) in features.iter().enumerate() {
            let ours = f["z"].as_f64().unwrap();
            assert!(
                (ours - z[i]).abs() < 1e-3,
                "res {res} cell {}: z {ours} vs PySAL {}",
                cells[i],
                z[i]
            );
            let our_p = f["p"].as_f64().unwrap();
            assert!(
                (our_p - p[i]).abs() < 1e-9,
                "cell {}: p {our_p} vs PySAL {}",
                cells[i],
                p[i]
            );
        }
        // The hottest cell is in the cluster and 99% significant.
        let (top, _) = features
            .iter()
            .enumerate()
            .max_by(|a, b| {
                a.1["z"]
                    .as_f64()
                    .unwrap()
                    .total_cmp(&b.1["z"].as_f64().unwrap())
            })
            .unwrap();
        assert_eq!(features[top]["bin"], 3);
        println!(
            "res {res}: {} cells, hottest z {}, agreeing with PySAL",
            cells.len(),
            features[top]["z"]
        );
    }
    // By default only significant cells, hottest first.
    let (_, v) = app.get("/api/v1/stats/hotspots?res=8", None).await;
    let zs: Vec<f64> = v["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["z"].as_f64().unwrap())
        .collect();
    assert!(!zs.is_empty() && zs.windows(2).all(|w| w[0] >= w[1]));
    assert!(
        v["features"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["bin"] != 0)
    );
    // Anonymous readers see no count under the privacy threshold.
    let (_, v) = app.get("/api/v1/stats/hotspots?res=8&all=true", None).await;
    let counts: Vec<Option<u64>> = v["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["count"].as_u64())
        .collect();
    assert!(counts.iter().any(Option::is_none));
    assert!(counts.iter().flatten().all(|&n| n == 0 || n >= 5));
}

#[tokio::test]
async fn gi_star_over_level_3_grids_agrees_with_pysal_queen_contiguity() {
    let app = TestApp::new(Config::default());
    reports(&app).await;
    let window = "from=2026-01-01T00:00:00Z&to=2027-01-01T00:00:00Z";
    let (s, v) = app
        .get(
            &format!("/api/v1/stats/hotspots?level=3&all=true&{window}"),
            Some(&app.analyst),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["level"], "3");
    let features = v["features"].as_array().unwrap();
    assert_eq!(features.len() as u64, v["grids"].as_u64().unwrap());
    assert_eq!(v["reports"].as_u64(), Some(420));
    // The reference builds its own neighbours from the grid polygons, as exported.
    let (s, grids) = app
        .fetch_with_key(
            &format!("/api/v1/export/kpi.geojson?level=3&{window}"),
            Some(&app.analyst),
        )
        .await;
    assert_eq!(s, 200);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("grids.geojson");
    std::fs::write(&file, &grids).unwrap();
    let python = std::env::var("GRIDSCOPE_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/gi_star_grids.py"))
        .arg(&file)
        .output()
        .expect("python: run scripts/test, which installs esda");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        reference.as_object().unwrap().len(),
        features.len(),
        "the same grids"
    );
    let mut neighbours = 0;
    for f in features {
        let code = f["grid"].as_str().unwrap();
        let r = &reference[code];
        let (z, p) = (f["z"].as_f64().unwrap(), f["p"].as_f64().unwrap());
        assert!(
            (z - r["z"].as_f64().unwrap()).abs() < 1e-3,
            "{code}: z {z} vs PySAL {}",
            r["z"]
        );
        assert!(
            (p - r["p"].as_f64().unwrap()).abs() < 1e-9,
            "{code}: p {p} vs PySAL {}",
            r["p"]
        );
        neighbours += r["neighbours"].as_u64().unwrap();
    }
    // A real partition: about six neighbours a grid.
    let mean = neighbours as f64 / features.len() as f64;
    assert!((4.0..8.0).contains(&mean), "{mean} neighbours a grid");
    // The cluster at 二七广场 makes the hottest grid 99% significant.
    let top = features
        .iter()
        .max_by(|a, b| {
            a["z"]
                .as_f64()
                .unwrap()
                .total_cmp(&b["z"].as_f64().unwrap())
        })
        .unwrap();
    assert_eq!(top["bin"], 3, "{top}");
    assert!(top["name"].as_str().is_some_and(|n| !n.is_empty()));
    println!(
        "{} level-3 grids, {mean:.2} neighbours each, hottest {} z {}, agreeing with PySAL",
        features.len(),
        top["grid"],
        top["z"]
    );
    // Emerging hot spots run over grids too; res and level do not mix.
    let (s, v) = app
        .get(
            "/api/v1/stats/hotspots/emerging?level=3&step=day&steps=4",
            Some(&app.analyst),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(
        v["features"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["grid"].is_string())
    );
    let (s, v) = app
        .get("/api/v1/stats/hotspots?level=3&res=8", Some(&app.analyst))
        .await;
    assert_eq!(
        (s.as_u16(), v["error"]["field"].as_str()),
        (400, Some("res"))
    );
    let (s, v) = app
        .get("/api/v1/stats/hotspots?level=micro", Some(&app.analyst))
        .await;
    assert_eq!(
        (s.as_u16(), v["error"]["field"].as_str()),
        (400, Some("level"))
    );
}

#[tokio::test]
async fn a_cluster_that_appeared_today_is_a_new_hot_spot_and_bad_queries_are_refused() {
    let app = TestApp::new(Config::default());
    reports(&app).await;
    let (s, v) = app
        .get(
            "/api/v1/stats/hotspots/emerging?res=8&step=day&steps=5",
            Some(&app.analyst),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["steps"].as_array().unwrap().len(), 5);
    let features = v["features"].as_array().unwrap();
    assert!(!features.is_empty());
    // Everything happened in the last step: no persistence, only new hot spots.
    for f in features {
        assert_eq!(f["pattern"], "new", "{f}");
        assert_eq!(f["kind"], "hot", "{f}");
        assert_eq!(f["z"].as_array().unwrap().len(), 5);
    }
    assert!(v["patterns"]["new_hot"].as_u64().unwrap() >= 1);

    for (uri, field) in [
        ("/api/v1/stats/hotspots?res=11", "res"),
        ("/api/v1/stats/hotspots?res=5", "res"),
        ("/api/v1/stats/hotspots?step=week", "step"),
        ("/api/v1/stats/hotspots/emerging?steps=2", "steps"),
        ("/api/v1/stats/hotspots/emerging?step=month", "step"),
        (
            "/api/v1/stats/hotspots/emerging?from=2026-01-01T00:00:00Z",
            "from",
        ),
        ("/api/v1/stats/hotspots?grid=12", "grid"),
        ("/api/v1/stats/hotspots?bogus=1", "bogus"),
    ] {
        let (s, e) = app.get(uri, None).await;
        assert_eq!(s, 400, "{uri}: {e}");
        assert_eq!(e["error"]["field"], field, "{uri}: {e}");
    }
    let (s, _) = app.get("/api/v1/stats/hotspots?grid=410199", None).await;
    assert_eq!(s, 404);
}
