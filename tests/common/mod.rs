//! Shared helpers: a small demo city, an in-process app, and a real server process.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use bytes::Bytes;
use gridscope::api::{AppState, router};
use gridscope::config::Config;
use gridscope::grid::demo::{DemoConfig, generate};
use gridscope::store::keys::{self, NewKey, Role};
use gridscope::store::{Store, StoreOptions};
use gridscope::{AssignConfig, Assigner, GridSet};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// The demo city at 1/50 scale, built once per test binary.
pub fn small_city() -> Arc<Assigner> {
    static CITY: OnceLock<Arc<Assigner>> = OnceLock::new();
    CITY.get_or_init(|| {
        let grids = generate(&DemoConfig::scaled_down(50), &|_| {}).expect("demo city");
        Arc::new(Assigner::new(
            Arc::new(GridSet::new(grids)),
            AssignConfig::default(),
        ))
    })
    .clone()
}

/// An app over a fresh database, with one key per role.
pub struct TestApp {
    pub state: Arc<AppState>,
    pub admin: String,
    pub reporter: String,
    pub reporter2: String,
    pub operator: String,
    /// An operator limited to another district than the test points.
    pub far_operator: String,
    pub analyst: String,
    _dir: tempfile::TempDir,
}

fn key(store: &Store, name: &str, role: Role, scope: Option<&str>) -> String {
    store
        .read(|c| {
            keys::create(
                c,
                &NewKey {
                    name: name.into(),
                    role,
                    scope: scope.map(str::to_string),
                    rate_per_sec: None,
                },
            )
        })
        .expect("key")
        .1
}

impl TestApp {
    pub fn new(config: Config) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let rules = Arc::new(config.deadlines.clone().prepare().expect("rules"));
        let store = Arc::new(
            Store::open(
                &dir.path().join("t.duckdb"),
                rules.clone(),
                &StoreOptions::default(),
            )
            .expect("store"),
        );
        let admin = key(&store, "admin", Role::Admin, None);
        let reporter = key(&store, "郑好拍", Role::Reporter, None);
        let reporter2 = key(&store, "12345 hotline", Role::Reporter, None);
        let operator = key(&store, "二七区城运中心", Role::Operator, Some("410103"));
        let far_operator = key(&store, "巩义市城运中心", Role::Operator, Some("410181"));
        let analyst = key(&store, "analyst", Role::Analyst, None);
        let state = AppState::new(config, small_city(), rules, store).expect("state");
        TestApp {
            state,
            admin,
            reporter,
            reporter2,
            operator,
            far_operator,
            analyst,
            _dir: dir,
        }
    }

    /// Sends a request; returns the status and the body as JSON (Null when empty or not JSON).
    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        key: Option<&str>,
        content_type: Option<&str>,
        body: impl Into<Body>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let resp = router(self.state.clone())
            .oneshot(req.body(body.into()).expect("request"))
            .await
            .expect("response");
        let status = resp.status();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    pub async fn post_json(&self, uri: &str, key: &str, body: &Value) -> (StatusCode, Value) {
        self.call(
            "POST",
            uri,
            Some(key),
            Some("application/json"),
            body.to_string(),
        )
        .await
    }

    /// Sends a GET with `headers`; returns the status, the headers and the raw body.
    pub async fn fetch(
        &self,
        uri: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, Bytes) {
        let mut req = Request::builder().uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = router(self.state.clone())
            .oneshot(req.body(Body::empty()).expect("request"))
            .await
            .expect("response");
        let (parts, body) = resp.into_parts();
        (
            parts.status,
            parts.headers,
            body.collect().await.expect("body").to_bytes(),
        )
    }

    /// A GET with an optional API key; returns the status and the raw body.
    pub async fn fetch_with_key(&self, uri: &str, key: Option<&str>) -> (StatusCode, Bytes) {
        let headers: Vec<(&str, &str)> = key.map(|k| ("x-api-key", k)).into_iter().collect();
        let (status, _, body) = self.fetch(uri, &headers).await;
        (status, body)
    }

    pub async fn get(&self, uri: &str, key: Option<&str>) -> (StatusCode, Value) {
        self.call("GET", uri, key, None, Body::empty()).await
    }
}

/// A gridscope server process on a free loopback port.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    /// Starts `gridscope serve` on the small demo city with `db` and `demo_dir`.
    pub fn start(dir: &Path) -> Server {
        Self::start_with(dir, &[])
    }

    /// As [`Server::start`], with extra environment variables (configuration overrides).
    pub fn start_with(dir: &Path, env: &[(&str, &str)]) -> Server {
        Self::start_on(dir, "127.0.0.1:0", env)
    }

    /// As [`Server::start_with`], listening on `listen` (to restart on the same address).
    pub fn start_on(dir: &Path, listen: &str, env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gridscope"))
            .args(["serve", "--listen", listen, "--demo-scale-down", "50"])
            .arg("--database")
            .arg(dir.join("gridscope.duckdb"))
            .arg("--demo-dir")
            .arg(dir.join("demo"))
            .arg("--admin-key-file")
            .arg(dir.join("admin.key"))
            .env("RUST_LOG", "warn")
            .env("GRIDSCOPE_DEMO_HISTORY", "0")
            .env("GRIDSCOPE_DEMO_LIVE_PER_SEC", "0")
            .env("GRIDSCOPE_WALL__KEY_FILE", dir.join("wall.key"))
            // The caller's settings win over the defaults above.
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn gridscope");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("server exited before listening")
                .expect("read stdout");
            if let Some(rest) = line.split("serving on ").nth(1) {
                break rest
                    .split_whitespace()
                    .next()
                    .expect("url")
                    .trim_end_matches('/')
                    .to_string();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { child, base }
    }

    pub fn admin_key(dir: &Path) -> String {
        std::fs::read_to_string(dir.join("admin.key"))
            .expect("admin key file")
            .trim()
            .to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
