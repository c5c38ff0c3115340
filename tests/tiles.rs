//! Vector tiles: validity and content checked by independent decoders (GDAL's MVT driver and
//! PyPI's mapbox-vector-tile, with GEOS through shapely), readable snapshots of a few tiles,
//! and the HTTP behaviour map clients rely on.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::Command;

use axum::http::StatusCode;
use common::TestApp;
use gridscope::config::Config;
use gridscope::tiles::TileId;
use gridscope::tiles::sample::shuffled_tiles;
use serde_json::Value;

async fn tilejson(app: &TestApp) -> Value {
    let (status, _, body) = app.fetch("/tiles/grids.json", &[]).await;
    assert_eq!(status, StatusCode::OK);
    serde_json::from_slice(&body).expect("TileJSON")
}

fn center_tile(tj: &Value, z: u8) -> TileId {
    let c = &tj["center"];
    let (lon, lat) = (c[0].as_f64().unwrap(), c[1].as_f64().unwrap());
    TileId::covering(z, [lon, lat, lon, lat]).next().unwrap()
}

const MAX_TILE_BYTES: usize = 500 * 1024;

/// Runs a command and returns its standard output, failing with its standard error.
fn run(mut cmd: Command) -> Vec<u8> {
    let out = cmd
        .output()
        .expect("cannot run: use scripts/test, which installs the oracles");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A Python oracle script from `tests/oracle/`.
fn oracle(script: &str) -> Command {
    let python = std::env::var("GRIDSCOPE_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut cmd = Command::new(python);
    cmd.arg(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/oracle")
            .join(script),
    );
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn tiles_decode_the_same_in_gdal_and_mapbox_vector_tile_and_match_the_grids() {
    let app = TestApp::new(Config::default());
    let tj = tilejson(&app).await;
    let b: Vec<f64> = tj["bounds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let bounds = [b[0], b[1], b[2], b[3]];
    let dir = tempfile::tempdir().unwrap();
    let tiles_dir = dir.path().join("tiles");
    std::fs::create_dir(&tiles_dir).unwrap();

    // Every zoom 0–18: the tile at the centre plus a few drawn at random over the city.
    let mut wanted: Vec<TileId> = (0..=18u8).map(|z| center_tile(&tj, z)).collect();
    wanted.extend(shuffled_tiles(bounds, 0..=18, 5, 7));
    wanted.sort();
    wanted.dedup();
    let (mut full, mut empty) = (0, 0);
    for t in &wanted {
        let (status, headers, body) = app.fetch(&format!("/tiles/grids/{t}.mvt"), &[]).await;
        match status {
            StatusCode::OK => {
                assert_eq!(
                    headers["content-type"],
                    "application/vnd.mapbox-vector-tile"
                );
                assert!(body.len() <= MAX_TILE_BYTES, "{t}: {} bytes", body.len());
                let name = format!("t_{}_{}_{}.mvt", t.z, t.x, t.y);
                std::fs::write(tiles_dir.join(name), &body).unwrap();
                full += 1;
            }
            StatusCode::NO_CONTENT => empty += 1,
            other => panic!("{t}: {other}"),
        }
    }
    assert!(full >= 40, "{full} tiles with features, {empty} empty");

    // What the server holds: every grid of every level, as GeoJSON.
    let mut features = Vec::new();
    for level in ["district", "1", "2", "3", "micro", "exclusive"] {
        let (_, _, body) = app
            .fetch(&format!("/api/v1/grids?level={level}&limit=50000"), &[])
            .await;
        let fc: Value = serde_json::from_slice(&body).unwrap();
        features.extend(fc["features"].as_array().unwrap().iter().cloned());
    }
    let grids_path = dir.path().join("grids.geojson");
    let fc = serde_json::json!({"type": "FeatureCollection", "features": features});
    std::fs::write(&grids_path, fc.to_string()).unwrap();

    let snapshots = dir.path().join("snapshots");
    std::fs::create_dir(&snapshots).unwrap();
    let mut check = oracle("mvt_check.py");
    check.args([&tiles_dir, &grids_path, &snapshots]);
    let checked = run(check);
    let stdout = String::from_utf8_lossy(&checked);
    let summary: Value = serde_json::from_str(stdout.trim()).expect("summary");
    eprintln!("independent decoders: {summary}");
    assert_eq!(summary["tiles"], full);
    assert!(
        summary["polygons_checked_against_grids"].as_u64().unwrap() > 1000,
        "{summary}"
    );
    assert!(
        summary["parents_checked"].as_u64().unwrap() > 50,
        "{summary}"
    );

    // Readable snapshots of a few tiles, as the independent decoder sees them.
    let expected_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    for z in [9, 12, 15] {
        let t = center_tile(&tj, z);
        let name = format!("{}-{}-{}.txt", t.z, t.x, t.y);
        let got = std::fs::read_to_string(snapshots.join(&name)).expect("snapshot written");
        let path = expected_dir.join(format!("grids-{name}"));
        if std::env::var_os("GRIDSCOPE_UPDATE_SNAPSHOTS").is_some() {
            std::fs::create_dir_all(&expected_dir).unwrap();
            std::fs::write(&path, &got).unwrap();
        }
        let want = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            panic!(
                "{}: missing; GRIDSCOPE_UPDATE_SNAPSHOTS=1 writes it",
                path.display()
            )
        });
        assert!(
            got == want,
            "tile {t} changed: compare {} with the decoded text:\n{got}",
            path.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tiles_speak_http_as_map_clients_expect() {
    let app = TestApp::new(Config::default());
    let tj = tilejson(&app).await;
    assert_eq!(tj["tilejson"], "3.0.0");
    assert_eq!(tj["scheme"], "xyz");
    assert_eq!(tj["minzoom"], 0);
    assert_eq!(tj["maxzoom"], 18);
    let layers: Vec<&str> = tj["vector_layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        layers,
        [
            "districts",
            "level1",
            "level2",
            "level3",
            "micro",
            "exclusive",
            "labels"
        ]
    );
    assert_eq!(tj["vector_layers"][3]["minzoom"], 13);
    assert!(tj["vector_layers"][3]["fields"]["code"].is_string());

    // Absolute tile URLs, as the client reaches the server (through a proxy too).
    let (_, _, body) = app
        .fetch("/tiles/grids", &[("host", "gs.example:8080")])
        .await;
    let tj2: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        tj2["tiles"][0],
        "http://gs.example:8080/tiles/grids/{z}/{x}/{y}.mvt"
    );
    let proxied = [
        ("host", "10.0.0.5:8080"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "map.zz.gov.cn"),
        ("x-forwarded-prefix", "/gridscope/"),
    ];
    let (_, _, body) = app.fetch("/tiles/grids", &proxied).await;
    let tj3: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        tj3["tiles"][0],
        "https://map.zz.gov.cn/gridscope/tiles/grids/{z}/{x}/{y}.mvt"
    );

    let t = center_tile(&tj, 14);
    let uri = format!("/tiles/grids/{t}.mvt");
    let (status, headers, raw) = app.fetch(&uri, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.get("content-encoding").is_none());
    assert_eq!(headers["vary"], "accept-encoding");
    let etag = headers["etag"].to_str().unwrap().to_string();

    // The same bytes under gzip and brotli, with the same validator.
    let (_, h, gz) = app.fetch(&uri, &[("accept-encoding", "gzip")]).await;
    assert_eq!(h["content-encoding"], "gzip");
    assert_eq!(h["etag"].to_str().unwrap(), etag);
    let mut back = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut back)
        .unwrap();
    assert_eq!(back, raw);
    assert!(gz.len() < raw.len());
    let (_, h, br) = app
        .fetch(&uri, &[("accept-encoding", "gzip, deflate, br, zstd")])
        .await;
    assert_eq!(h["content-encoding"], "br");
    let mut back = Vec::new();
    brotli::BrotliDecompress(&mut &br[..], &mut back).unwrap();
    assert_eq!(back, raw);

    // Revalidation.
    let (status, _, body) = app.fetch(&uri, &[("if-none-match", &etag)]).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    let (status, _, _) = app.fetch(&uri, &[("if-none-match", "W/\"0-0\"")]).await;
    assert_eq!(status, StatusCode::OK);

    // .pbf is the same tile; an empty tile is 204; CORS for browsers.
    let (_, _, pbf) = app.fetch(&format!("/tiles/grids/{t}.pbf"), &[]).await;
    assert_eq!(pbf, raw);
    let (status, _, body) = app.fetch("/tiles/grids/14/0/0.mvt", &[]).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(body.is_empty());
    let (_, h, _) = app.fetch(&uri, &[("origin", "https://wall.example")]).await;
    assert_eq!(h["access-control-allow-origin"], "*");

    // Outside the zoom range: 404; impossible addresses: 400 naming the part.
    for (uri, status, field) in [
        ("/tiles/grids/19/0/0.mvt", 404, "z"),
        ("/tiles/grids/25/0/0.mvt", 400, "z"),
        ("/tiles/grids/3/8/0.mvt", 400, "x"),
        ("/tiles/grids/3/0/8.mvt", 400, "y"),
        ("/tiles/grids/3/-1/0.mvt", 400, "x"),
        ("/tiles/grids/a/0/0.mvt", 400, "z"),
        ("/tiles/grids/3/0/0.png", 400, "format"),
        ("/tiles/nosuch/3/0/0.mvt", 404, "tileset"),
    ] {
        let (s, h, body) = app.fetch(uri, &[]).await;
        assert_eq!(s.as_u16(), status, "{uri}");
        assert_eq!(h["content-type"], "application/json", "{uri}");
        let err: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(err["error"]["field"], field, "{uri}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_offline_package_reads_back_in_the_pmtiles_reference_reader() {
    let app = TestApp::new(Config::default());
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("city.pmtiles");
    let mut export = Command::new(env!("CARGO_BIN_EXE_gridscope"));
    export
        .args(["export", "tiles"])
        .arg(&archive)
        .args(["--maxzoom", "12", "--demo-scale-down", "50", "--demo-dir"])
        .arg(dir.path().join("demo"));
    let stdout = run(export);
    let report = String::from_utf8_lossy(&stdout);
    assert!(report.contains("largest tile"), "{report}");

    let tj = tilejson(&app).await;
    let wanted: Vec<TileId> = [6, 9, 11, 12]
        .iter()
        .map(|&z| center_tile(&tj, z))
        .collect();
    let mut check = oracle("pmtiles_check.py");
    check
        .arg(&archive)
        .args(wanted.iter().map(ToString::to_string));
    let read: Value = serde_json::from_slice(&run(check)).unwrap();
    assert_eq!(read["min_zoom"], 0);
    assert_eq!(read["max_zoom"], 12);
    assert_eq!(read["tile_type_mvt"], true);
    assert_eq!(read["tile_compression_gzip"], true);
    assert_eq!(read["metadata"]["vector_layers"], tj["vector_layers"]);

    // Every tile in the archive decodes to what the server serves for the same address.
    let dump = dir.path().join("served");
    std::fs::create_dir(&dump).unwrap();
    let mut paths = Vec::new();
    for t in &wanted {
        let (status, _, body) = app.fetch(&format!("/tiles/grids/{t}.mvt"), &[]).await;
        assert_eq!(status, StatusCode::OK, "{t}");
        let p = dump.join(format!("{}-{}-{}.mvt", t.z, t.x, t.y));
        std::fs::write(&p, &body).unwrap();
        paths.push(p);
    }
    let mut dump = oracle("mvt_dump.py");
    dump.args(&paths);
    let dumped = run(dump);
    for (t, line) in wanted.iter().zip(String::from_utf8_lossy(&dumped).lines()) {
        let served: Value = serde_json::from_str(line).unwrap();
        assert_eq!(read["tiles"][t.to_string()], served, "tile {t}");
    }
}
