//! The live feed (`/api/v1/events`, server-sent events): a committed report or lifecycle step
//! reaches listeners at once; what a listener sees depends on its key.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use common::TestApp;
use gridscope::api::router;
use gridscope::config::Config;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// An open feed: reads events as `(name, data)`.
struct Feed {
    body: Body,
    buffer: String,
}

impl Feed {
    async fn open(app: &TestApp, key: Option<&str>, query: &str) -> (u16, Feed) {
        let mut req = Request::builder().uri(format!("/api/v1/events{query}"));
        if let Some(k) = key {
            req = req.header("x-api-key", k);
        }
        let resp = router(app.state.clone())
            .oneshot(req.body(Body::empty()).expect("request"))
            .await
            .expect("response");
        let status = resp.status().as_u16();
        if status == 200 {
            assert_eq!(
                resp.headers()["content-type"].to_str().ok(),
                Some("text/event-stream")
            );
        }
        (
            status,
            Feed {
                body: resp.into_body(),
                buffer: String::new(),
            },
        )
    }

    /// The next event, waiting at most 5 s.
    async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(n) = line.strip_prefix("event:") {
                        name = n.trim().to_string();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.trim_start());
                    }
                }
                if !name.is_empty() {
                    return (name, serde_json::from_str(&data).expect("JSON data"));
                }
                continue;
            }
            let frame = tokio::time::timeout(Duration::from_secs(5), self.body.frame())
                .await
                .expect("an event within 5 s")
                .expect("the feed is open")
                .expect("a frame");
            if let Ok(data) = frame.into_data() {
                self.buffer.push_str(&String::from_utf8_lossy(&data));
            }
        }
    }

    /// Skips events until one named `name`.
    async fn until(&mut self, name: &str) -> Value {
        loop {
            let (n, v) = self.next().await;
            if n == name {
                return v;
            }
        }
    }
}

fn report() -> Value {
    json!({
        "channel": "hotline_12345", "category": "matter:06002", "description": "垃圾满溢",
        "location": {"lon": 113.6607, "lat": 34.7486, "crs": "gcj02"},
    })
}

#[tokio::test]
async fn new_reports_and_lifecycle_steps_reach_listeners_as_they_are_committed() {
    let app = TestApp::new(Config::default());
    let (earlier, first) = app
        .post_json("/api/v1/reports", &app.reporter, &report())
        .await;
    assert_eq!(earlier, 201, "{first}");

    let (s, mut full) = Feed::open(&app, Some(&app.analyst), "?backlog=5").await;
    assert_eq!(s, 200);
    let (s, mut public) = Feed::open(&app, None, "").await;
    assert_eq!(s, 200);
    assert_eq!(
        full.next().await,
        (
            "hello".into(),
            json!({
                "view": "full",
                "data_version": app.state.store.data_version(),
                "grid_version": format!("{:016x}", app.state.in_force().version()),
            })
        )
    );
    assert_eq!(public.until("hello").await["view"], "public");
    // The backlog: the report made before listening.
    let backlog = full.until("report").await;
    assert_eq!(backlog["id"], first["id"]);

    let (_, created) = app
        .post_json("/api/v1/reports", &app.reporter, &report())
        .await;
    let seen = full.until("report").await;
    assert_eq!(seen["id"], created["id"]);
    assert_eq!(seen["status"], "reported");
    assert_eq!(seen["channel"], "hotline_12345");
    assert_eq!(seen["district"]["code"], "410103");
    assert!(
        seen["district"]["name"]
            .as_str()
            .is_some_and(|n| n.contains("二七"))
    );
    assert!(seen["lon"].as_f64().is_some() && seen["description"] == "垃圾满溢");
    assert!(seen["category_name"].is_string());

    // The public view: what, when and which street; never where exactly or what was said.
    let mut anon = public.until("report").await;
    while anon["id"] != created["id"] {
        anon = public.until("report").await;
    }
    assert_eq!(anon["district"]["code"], "410103");
    for hidden in ["lon", "lat", "description", "grid", "community"] {
        assert!(anon.get(hidden).is_none(), "{hidden} leaked: {anon}");
    }

    let id = created["id"].as_i64().expect("id");
    let (s, v) = app
        .post_json(
            &format!("/api/v1/reports/{id}/transitions"),
            &app.operator,
            &json!({"action": "accept"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let step = full.until("transition").await;
    assert_eq!(step["id"], id);
    assert_eq!(
        (step["from"].as_str(), step["to"].as_str()),
        (Some("reported"), Some("accepted"))
    );
}

#[tokio::test]
async fn the_feed_refuses_bad_options_and_keyless_callers_when_reading_is_private() {
    let app = TestApp::new(Config::default());
    let (s, _) = Feed::open(&app, Some(&app.analyst), "?backlog=201").await;
    assert_eq!(s, 400);
    let (s, _) = Feed::open(&app, Some(&app.analyst), "?since=1").await;
    assert_eq!(s, 400);
    let private = TestApp::new(Config {
        public_read: false,
        ..Config::default()
    });
    let (s, _) = Feed::open(&private, None, "").await;
    assert_eq!(s, 401);
}
