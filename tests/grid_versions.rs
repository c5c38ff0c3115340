//! A new grid version is put in force without a restart: after the grid files change and the
//! server is told to reload (or a version's valid-from day comes), assignment, grid reads and
//! the `grids` tiles follow it; files that do not import cleanly leave the old version serving.

mod common;

use std::path::Path;

use axum::http::StatusCode;
use chrono::Duration;
use common::{TestApp, small_city};
use gridscope::api::grid_version::{china_today, put_in_force_on};
use gridscope::config::Config;
use gridscope::grid::export::write_levels;
use gridscope::tiles::TileId;
use serde_json::{Value, json};

/// A square exclusive grid around `[lon, lat]`, in force from `from`.
fn exclusive_file(code: &str, name: &str, at: [f64; 2], from: chrono::NaiveDate) -> Value {
    let d = 0.002;
    let [x, y] = at;
    json!({
        "type": "FeatureCollection",
        "features": [{
            "type": "Feature",
            "properties": {"code": code, "name": name, "kind": "park", "valid_from": from.to_string()},
            "geometry": {"type": "Polygon", "coordinates": [[
                [x - d, y - d], [x + d, y - d], [x + d, y + d], [x - d, y + d], [x - d, y - d]
            ]]}
        }]
    })
}

fn write_json(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_vec(v).unwrap()).unwrap();
}

async fn version(app: &TestApp) -> Value {
    let (status, v) = app.get("/api/v1/grids/version", Some(&app.analyst)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

async fn reload(app: &TestApp) -> (StatusCode, Value) {
    app.call("POST", "/api/v1/grids/reload", Some(&app.admin), None, "")
        .await
}

/// The codes of the exclusive grids a point is assigned to.
async fn exclusive_at(app: &TestApp, at: [f64; 2]) -> Vec<String> {
    let uri = format!("/api/v1/assign?lon={}&lat={}", at[0], at[1]);
    let (status, v) = app.get(&uri, Some(&app.admin)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["exclusive"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|e| e["code"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_grid_version_is_served_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let grids_dir = dir.path().join("grids");
    std::fs::create_dir(&grids_dir).unwrap();
    let city = small_city();
    write_levels(city.grids(), &grids_dir, false).unwrap();
    let app = TestApp::new(Config {
        grids: Some(grids_dir.clone()),
        ..Config::default()
    });

    // Only admins reload; the same files change nothing.
    let (status, body) = app
        .call("POST", "/api/v1/grids/reload", Some(&app.analyst), None, "")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let before = version(&app).await;
    let (status, same) = reload(&app).await;
    assert_eq!(status, StatusCode::OK, "{same}");
    assert_eq!(same["changed"], false, "{same}");
    assert_eq!(version(&app).await["version"], before["version"]);

    // A point well inside a level-3 grid, and the grid tile over it.
    let set = city.grids();
    let l3 = set.ids_at(gridscope::Level::Three).nth(7).unwrap();
    let g = set.grid(l3);
    let p = geo::InteriorPoint::interior_point(&g.geometry).unwrap();
    let at = [p.x(), p.y()];
    let t = TileId::covering(14, [at[0], at[1], at[0], at[1]])
        .next()
        .unwrap();
    let tile_uri = format!("/tiles/grids/{}/{}/{}.mvt", t.z, t.x, t.y);
    let (status, headers, old_tile) = app.fetch(&tile_uri, &[]).await;
    assert_eq!(status, StatusCode::OK);
    let old_etag = headers["etag"].to_str().unwrap().to_string();
    assert!(
        exclusive_at(&app, at)
            .await
            .iter()
            .all(|c| !c.ends_with("Z9001"))
    );

    // A new park in force today, and another from tomorrow.
    let owner = set.grid(set.parent(l3).unwrap()).code.clone();
    let park = format!("{}Z9001", owner.as_str());
    let later = format!("{}Z9002", owner.as_str());
    let today = china_today();
    write_json(
        &grids_dir.join("parks-new.geojson"),
        &exclusive_file(&park, "新建口袋公园", at, today),
    );
    write_json(
        &grids_dir.join("parks-later.geojson"),
        &exclusive_file(&later, "规划中的公园", at, today + Duration::days(1)),
    );
    let (status, changed) = reload(&app).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["changed"], true, "{changed}");
    assert_ne!(
        changed["current"]["version"],
        changed["previous"]["version"]
    );
    assert_eq!(
        changed["current"]["grids"].as_u64().unwrap(),
        set.len() as u64 + 1,
        "one new grid in force today: {changed}"
    );
    assert_eq!(
        changed["current"]["loaded"].as_u64().unwrap(),
        set.len() as u64 + 2
    );

    // Assignment, grid reads and tiles follow at once.
    assert_eq!(exclusive_at(&app, at).await, std::slice::from_ref(&park));
    let (status, feature) = app
        .get(&format!("/api/v1/grids/{park}"), Some(&app.analyst))
        .await;
    assert_eq!(status, StatusCode::OK, "{feature}");
    assert_eq!(feature["properties"]["name"], "新建口袋公园");
    let (status, headers, new_tile) = app
        .fetch(&tile_uri, &[("if-none-match", old_etag.as_str())])
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the old ETag must not match the new version"
    );
    assert_ne!(headers["etag"].to_str().unwrap(), old_etag);
    assert_ne!(new_tile, old_tile);
    let carries = |tile: &[u8], text: &str| tile.windows(text.len()).any(|w| w == text.as_bytes());
    assert!(carries(&new_tile, &park), "the new park is in the tile");
    assert!(
        !carries(&new_tile, &later),
        "a grid not yet in force is not drawn"
    );

    // Files that do not import cleanly are refused whole; the version in force stays.
    std::fs::write(
        grids_dir.join("broken.geojson"),
        b"{\"type\": \"FeatureColl",
    )
    .unwrap();
    let (status, refused) = reload(&app).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["error"]["code"], "grid_version_refused");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("broken.geojson"),
        "{refused}"
    );
    assert_eq!(
        version(&app).await["version"],
        changed["current"]["version"]
    );
    assert_eq!(exclusive_at(&app, at).await, std::slice::from_ref(&park));
    std::fs::remove_file(grids_dir.join("broken.geojson")).unwrap();

    // The next day the planned park comes in force by itself.
    put_in_force_on(&app.state, today + Duration::days(1)).await;
    let mut both = exclusive_at(&app, at).await;
    both.sort();
    assert_eq!(both, [park.clone(), later.clone()]);
    let (_, _, next_day_tile) = app.fetch(&tile_uri, &[]).await;
    assert!(carries(&next_day_tile, &later));
}
