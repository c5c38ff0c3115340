//! Builds the map wall page (`web/`) with its own npm packages and embeds the result in the
//! binary, so a wall on an isolated network needs nothing but the gridscope server.
//!
//! `npm ci` runs when `web/node_modules` is missing or older than the lock file; the bundle
//! (esbuild) is rebuilt whenever a file under `web/` changes. Without Node.js the server still
//! builds, and its page says how to get the wall.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

fn main() {
    for watched in [
        "web/src",
        "web/index.html",
        "web/build.mjs",
        "web/package.json",
        "web/package-lock.json",
    ] {
        println!("cargo:rerun-if-changed={watched}");
    }
    let Some(out_dir) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        println!("cargo:warning=OUT_DIR is not set; the map wall is not embedded");
        return;
    };
    let dist = out_dir.join("web");
    let _ = std::fs::remove_dir_all(&dist);
    if let Err(e) = build_page(Path::new("web"), &dist) {
        println!("cargo:warning=the map wall page was not built: {e}");
        let _ = std::fs::create_dir_all(&dist);
        let page = format!(
            "<!doctype html><meta charset=utf-8><title>gridscope</title>\
             <h1>The map wall was not built</h1><p>Building it needs Node.js and npm \
             (<code>npm ci</code> in <code>web/</code>); the build said: {}</p>\
             <p>The API is at <a href=/api/v1/openapi.json>/api/v1/openapi.json</a>.</p>",
            escape(&e)
        );
        if let Err(e) = std::fs::write(dist.join("index.html"), page) {
            println!("cargo:warning=writing the placeholder page: {e}");
        }
    }
    if let Err(e) = embed(&dist, &out_dir.join("web_assets.rs")) {
        panic!("embedding the map wall: {e}");
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;")
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("{what} could not start: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(12).collect();
        Err(format!(
            "{what} failed ({}): {}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ))
    }
}

fn build_page(web: &Path, dist: &Path) -> Result<(), String> {
    let installed = web.join("node_modules/.package-lock.json");
    let stale = match (
        modified(&installed),
        modified(&web.join("package-lock.json")),
    ) {
        (Some(have), Some(want)) => have < want,
        _ => true,
    };
    if stale {
        run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(web),
            "npm ci",
        )?;
    }
    let dist = std::path::absolute(dist).map_err(|e| e.to_string())?;
    run(
        Command::new("node")
            .arg("build.mjs")
            .arg(&dist)
            .current_dir(web),
        "the bundler (node build.mjs)",
    )
}

/// Writes `assets.rs`: every file under `dist` as `(path, bytes)`, paths relative with `/`.
fn embed(dist: &Path, assets: &Path) -> std::io::Result<()> {
    let mut files = Vec::new();
    collect(dist, dist, &mut files)?;
    files.sort();
    let mut code = String::from("/// The built map wall: (path under the site root, contents).\n");
    code.push_str("pub static ASSETS: &[(&str, &[u8])] = &[\n");
    for (rel, abs) in files {
        let _ = writeln!(code, "    ({rel:?}, include_bytes!({abs:?})),");
    }
    code.push_str("];\n");
    std::fs::write(assets, code)
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(root, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            out.push((rel, path.to_string_lossy().into_owned()));
        }
    }
    Ok(())
}
