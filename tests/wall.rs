//! The map wall in a real browser: Debian's Chromium, driven by playwright-core
//! (`web/e2e/wall.mjs`), against a gridscope server on the small demo city with a report
//! history. The script compares what the wall shows with what the API answers, creates reports
//! and watches them arrive, drills down, and takes screenshots at 1920×1080 and 3840×2160;
//! half-way this test restarts the server to prove the page reconnects by itself.
//!
//! Needs Node.js, `web/node_modules` (installed by the build) and `/usr/bin/chromium`
//! (installed by `scripts/test`).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use common::Server;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

#[test]
fn the_map_wall_works_in_a_real_browser() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = format!("127.0.0.1:{}", free_port());
    // 2,000,000 reports divided by the small city's scale-down (50): 40,000 over 15 months.
    let env = [("GRIDSCOPE_DEMO_HISTORY", "2000000")];
    let mut server = Server::start_on(dir.path(), &listen, &env);
    let admin = Server::admin_key(dir.path());
    let wall_key = std::fs::read_to_string(dir.path().join("wall.key"))
        .expect("the server writes the wall's key on its first start")
        .trim()
        .to_string();
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wall");
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let mut driver = Command::new("node")
        .arg("e2e/wall.mjs")
        .current_dir(&web)
        .env("WALL_URL", &server.base)
        .env("WALL_KEY", &wall_key)
        .env("ADMIN_KEY", &admin)
        .env("ARTIFACTS", &artifacts)
        .env("WALL_RESTART", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node runs the browser checks");
    let mut stdin = driver.stdin.take().expect("stdin");
    let stdout = BufReader::new(driver.stdout.take().expect("stdout"));
    for line in stdout.lines() {
        let line = line.expect("driver output");
        println!("{line}");
        if line == "RESTART-NOW" {
            // Abruptly, as a crash would; the page must notice and come back on its own.
            drop(server);
            std::thread::sleep(std::time::Duration::from_secs(2));
            server = Server::start_on(dir.path(), &listen, &env);
            writeln!(stdin, "restarted").expect("tell the driver");
        }
    }
    let status = driver.wait().expect("driver exit");
    println!("screenshots in {}", artifacts.display());
    drop(server);
    assert!(status.success(), "the map wall checks failed (see above)");
}

/// The page, its assets and its styles as served (in process, no browser).
#[tokio::test]
async fn the_wall_page_assets_and_styles_are_served_from_the_binary() {
    use gridscope::config::Config;

    let app = common::TestApp::new(Config::default());
    let (s, headers, page) = app.fetch("/", &[]).await;
    assert_eq!(s, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = String::from_utf8(page.to_vec()).unwrap();
    let script = page
        .split("src=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the page names its script");
    assert!(script.starts_with("/assets/main-"), "{script}");
    let (s, headers, js) = app.fetch(script, &[]).await;
    assert_eq!(s, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(
        headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    assert!(js.len() > 100_000, "the bundle holds MapLibre");
    let (s, headers, _) = app.fetch("/assets/maplibre-gl-worker.mjs?v=1", &[]).await;
    assert_eq!(s, 200, "MapLibre's worker module is served");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let (s, _) = app.get("/assets/nothing.js", None).await;
    assert_eq!(s, 404);

    // Tile URLs in the style are absolute, for the address clients reach the server at.
    let (s, _, body) = app
        .fetch(
            "/styles/dark.json",
            &[
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "wall.example.cn"),
                ("x-forwarded-prefix", "/gs"),
            ],
        )
        .await;
    assert_eq!(s, 200);
    let style: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(style["version"], 8);
    assert_eq!(
        style["sources"]["grids"]["url"],
        "https://wall.example.cn/gs/tiles/grids.json"
    );
    assert!(
        style["sources"].get("basemap").is_none(),
        "no basemap unless configured"
    );
    assert!(style["metadata"]["gridscope:title"].is_string());
    let (s, err) = app.get("/styles/neon.json", None).await;
    assert_eq!(s, 404);
    assert_eq!(err["error"]["field"], "file");

    // A site's basemap goes under everything but the background.
    let mut config = Config::default();
    config.wall.basemap_url = Some("https://t0.example.cn/vec/{z}/{x}/{y}.png".into());
    let with_basemap = common::TestApp::new(config);
    let (_, light) = with_basemap.get("/styles/light.json", None).await;
    assert_eq!(light["sources"]["basemap"]["type"], "raster");
    assert_eq!(light["layers"][0]["type"], "background");
    assert_eq!(light["layers"][1]["id"], "basemap");
}
