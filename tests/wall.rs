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
