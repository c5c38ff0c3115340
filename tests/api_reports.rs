//! The report intake API end to end (in process): create, read, list, lifecycle, idempotency,
//! access control.

mod common;

use common::TestApp;
use gridscope::config::Config;
use gridscope::grid::demo::report_points;
use serde_json::{Value, json};

/// 二七广场 as an Amap-based app sends it (GCJ-02): in 二七区 (410103).
fn erqi() -> Value {
    json!({"lon": 113.6607, "lat": 34.7486, "crs": "gcj02"})
}

fn report_at(location: Value, channel: &str) -> Value {
    json!({
        "channel": channel,
        "category": "matter:06002",
        "description": "垃圾满溢",
        "location": location,
        "photos": ["https://img.example.cn/1.jpg"],
    })
}

/// Posts an NDJSON batch of reports.
async fn post_ndjson(app: &TestApp, key: &str, lines: String) -> (axum::http::StatusCode, Value) {
    app.call(
        "POST",
        "/api/v1/reports/batch",
        Some(key),
        Some("application/x-ndjson"),
        lines,
    )
    .await
}

async fn create(app: &TestApp, key: &str, body: &Value) -> i64 {
    let (status, v) = app.post_json("/api/v1/reports", key, body).await;
    assert_eq!(status, 201, "{v}");
    v["id"].as_i64().expect("id")
}

async fn act(app: &TestApp, id: i64, key: &str, body: Value) -> (u16, Value) {
    let (s, v) = app
        .post_json(&format!("/api/v1/reports/{id}/transitions"), key, &body)
        .await;
    (s.as_u16(), v)
}

#[tokio::test]
async fn a_report_goes_through_its_whole_lifecycle_with_every_step_in_its_history() {
    let app = TestApp::new(Config::default());
    let (status, v) = app
        .post_json("/api/v1/reports", &app.reporter, &report_at(erqi(), "app"))
        .await;
    assert_eq!(status, 201, "{v}");
    let id = v["id"].as_i64().unwrap();
    assert_eq!(v["status"], "reported");
    assert_eq!(
        v["assignment"]["chain"].as_array().unwrap().last().unwrap()["code"],
        "410103"
    );
    assert!(v["deadline"].as_str().unwrap() > "2026");

    let op = app.operator.clone();
    assert_eq!(act(&app, id, &op, json!({"action": "accept"})).await.0, 200);
    let (s, e) = act(&app, id, &op, json!({"action": "handle"})).await;
    assert_eq!(s, 409, "{e}");
    assert_eq!(e["error"]["code"], "illegal_transition");
    assert_eq!(
        e["error"]["allowed"],
        json!(["dispatch", "extend", "escalate"])
    );

    assert_eq!(
        act(&app, id, &op, json!({"action": "dispatch"})).await.0,
        200
    );
    let before = app.get(&format!("/api/v1/reports/{id}"), Some(&op)).await.1["deadline"].clone();
    let (s, v) = act(
        &app,
        id,
        &op,
        json!({"action": "extend", "hours": 7, "reason": "需要协调"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["report"]["deadline"].as_str() > before.as_str(), "{v}");
    assert_eq!(act(&app, id, &op, json!({"action": "handle"})).await.0, 200);
    let (s, v) = act(&app, id, &op, json!({"action": "check", "pass": false})).await;
    assert_eq!((s, v["to"].as_str()), (200, Some("dispatched")));
    assert_eq!(act(&app, id, &op, json!({"action": "handle"})).await.0, 200);
    let (s, v) = act(&app, id, &op, json!({"action": "check", "pass": true})).await;
    assert_eq!(s, 200);
    assert_eq!(v["report"]["status"], "closed");
    assert_eq!(v["report"]["rework_count"], 1);
    assert_eq!(v["report"]["closed_on_time"], true);

    // The citizen's rating comes through the reporting app, once.
    let rep = app.reporter.clone();
    let (s, v) = act(
        &app,
        id,
        &rep,
        json!({"action": "rate", "rating": "satisfied"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, e) = act(
        &app,
        id,
        &rep,
        json!({"action": "rate", "rating": "unsatisfied"}),
    )
    .await;
    assert_eq!(s, 409);
    assert_eq!(e["error"]["allowed"], json!([]));

    let (s, r) = app.get(&format!("/api/v1/reports/{id}"), Some(&rep)).await;
    assert_eq!(s, 200);
    assert_eq!(r["rating"], "satisfied");
    let history = r["history"].as_array().unwrap();
    let actions: Vec<&str> = history
        .iter()
        .map(|h| h["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "report", "accept", "dispatch", "extend", "handle", "check", "handle", "check", "rate"
        ]
    );
    for (i, h) in history.iter().enumerate() {
        assert_eq!(h["seq"], i);
    }
    assert_eq!(history[3]["reason"], "需要协调");
    assert_eq!(history[3]["detail"]["hours"], 7);
    assert!(
        history[1]["actor"]
            .as_str()
            .unwrap()
            .starts_with("二七区城运中心")
    );
    assert_eq!(history[5]["to_status"], "dispatched");
}

#[tokio::test]
async fn send_back_escalate_and_redispatch_move_responsibility() {
    let app = TestApp::new(Config::default());
    let id = create(&app, &app.reporter.clone(), &report_at(erqi(), "patrol")).await;
    let op = app.operator.clone();
    act(&app, id, &op, json!({"action": "accept"})).await;
    act(&app, id, &op, json!({"action": "dispatch"})).await;
    let (s, e) = act(&app, id, &op, json!({"action": "send_back"})).await;
    assert_eq!((s, e["error"]["field"].as_str()), (400, Some("reason")));
    let (s, v) = act(
        &app,
        id,
        &op,
        json!({"action": "send_back", "reason": "不属于本网格"}),
    )
    .await;
    assert_eq!((s, v["to"].as_str()), (200, Some("accepted")));
    let l3 = v["report"]["placement"]["grid_l3"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, v) = act(&app, id, &op, json!({"action": "dispatch", "grid": l3})).await;
    assert_eq!(
        (s, v["report"]["placement"]["responsible"].as_str()),
        (200, Some(l3.as_str()))
    );
    let (s, v) = act(
        &app,
        id,
        &op,
        json!({"action": "escalate", "reason": "跨社区"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["report"]["placement"]["responsible"], l3[..12]);
    assert_eq!(v["report"]["escalation_count"], 1);
    let (s, e) = act(
        &app,
        id,
        &op,
        json!({"action": "dispatch", "grid": "410103999999999"}),
    )
    .await;
    assert_eq!(
        (s, e["error"]["field"].as_str()),
        (400, Some("grid")),
        "{e}"
    );
    let (s, v) = act(&app, id, &op, json!({"action": "dispatch", "grid": l3})).await;
    assert_eq!(s, 200);
    assert_eq!(v["report"]["placement"]["responsible"], l3);
}

#[tokio::test]
async fn idempotent_retries_never_create_a_second_report() {
    let app = TestApp::new(Config::default());
    let mut body = report_at(erqi(), "app");
    body["idempotency_key"] = json!("phone-7f3a-0001");
    let rep = app.reporter.clone();
    let (s1, a) = app.post_json("/api/v1/reports", &rep, &body).await;
    let (s2, b) = app.post_json("/api/v1/reports", &rep, &body).await;
    assert_eq!((s1.as_u16(), s2.as_u16()), (201, 200));
    assert_eq!(a["id"], b["id"]);
    assert_eq!(b["replayed"], true);
    assert_eq!(a["deadline"], b["deadline"]);
    // Another app's key space is its own.
    let (s3, c) = app
        .post_json("/api/v1/reports", &app.reporter2.clone(), &body)
        .await;
    assert_eq!(s3, 201);
    assert_ne!(a["id"], c["id"]);
    // The header works the same way.
    let plain = report_at(erqi(), "app");
    let send = || async {
        let req = axum::http::Request::builder()
            .method("POST")
            .uri("/api/v1/reports")
            .header("authorization", format!("Bearer {rep}"))
            .header("content-type", "application/json")
            .header("idempotency-key", "hdr-1")
            .body(axum::body::Body::from(plain.to_string()))
            .unwrap();
        use tower::ServiceExt;
        gridscope::api::router(app.state.clone())
            .oneshot(req)
            .await
            .unwrap()
            .status()
    };
    assert_eq!(send().await, 201);
    assert_eq!(send().await, 200);
    let (_, page) = app
        .get("/api/v1/reports?limit=100", Some(&app.analyst))
        .await;
    assert_eq!(page["reports"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn roles_and_scopes_are_enforced_and_keys_are_stored_hashed() {
    let app = TestApp::new(Config::default());
    let id = create(&app, &app.reporter.clone(), &report_at(erqi(), "app")).await;
    let path = format!("/api/v1/reports/{id}");
    assert_eq!(app.get(&path, None).await.0, 401);
    assert_eq!(app.get(&path, Some("gs_not_a_key")).await.0, 401);
    assert_eq!(app.get(&path, Some(&app.reporter2)).await.0, 404);
    assert_eq!(app.get(&path, Some(&app.analyst)).await.0, 200);
    let (s, e) = app
        .post_json(
            "/api/v1/reports",
            &app.analyst.clone(),
            &report_at(erqi(), "app"),
        )
        .await;
    assert_eq!(
        (s.as_u16(), e["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (s, e) = act(
        &app,
        id,
        &app.far_operator.clone(),
        json!({"action": "accept"}),
    )
    .await;
    assert_eq!(s, 403, "{e}");
    assert_eq!(
        act(&app, id, &app.reporter.clone(), json!({"action": "accept"}))
            .await
            .0,
        403
    );
    assert_eq!(
        act(&app, id, &app.operator.clone(), json!({"action": "accept"}))
            .await
            .0,
        200
    );
    // A reporter lists only its own reports.
    create(
        &app,
        &app.reporter2.clone(),
        &report_at(erqi(), "hotline_12345"),
    )
    .await;
    let (_, mine) = app.get("/api/v1/reports", Some(&app.reporter2)).await;
    assert_eq!(mine["reports"].as_array().unwrap().len(), 1);
    // Keys: admins only, and the database holds hashes, never secrets.
    assert_eq!(app.get("/api/v1/keys", Some(&app.operator)).await.0, 403);
    let (s, k) = app
        .post_json(
            "/api/v1/keys",
            &app.admin.clone(),
            &json!({"name": "video AI", "role": "reporter"}),
        )
        .await;
    assert_eq!(s, 201);
    let secret = k["secret"].as_str().unwrap().to_string();
    assert_eq!(app.get("/api/v1/reports", Some(&secret)).await.0, 200);
    let stored: Vec<String> = app
        .state
        .store
        .read(|c| {
            let mut st = c.prepare("SELECT key_hash FROM api_keys")?;
            let rows = st.query_map([], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .unwrap();
    assert!(
        stored
            .iter()
            .all(|h| h.len() == 64 && !h.contains(&secret[3..]))
    );
    let kid = k["id"].as_str().unwrap();
    let (s, _) = app
        .call(
            "DELETE",
            &format!("/api/v1/keys/{kid}"),
            Some(&app.admin),
            None,
            "",
        )
        .await;
    assert_eq!(s, 204);
    assert_eq!(app.get("/api/v1/reports", Some(&secret)).await.0, 401);
}

#[tokio::test]
async fn listings_filter_and_page_with_cursors() {
    let app = TestApp::new(Config::default());
    let city = common::small_city();
    let points = report_points(city.grids(), 40, 0.0, 7);
    let rep = app.reporter.clone();
    let channels = ["app", "hotline_12345", "patrol", "video_ai"];
    let mut ids = Vec::new();
    for (i, p) in points.iter().enumerate() {
        let body = report_at(json!({"lon": p.lon(), "lat": p.lat()}), channels[i % 4]);
        ids.push(create(&app, &rep, &body).await);
    }
    // Pages of 7 cover everything once, newest first.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let uri = match &cursor {
            Some(c) => format!("/api/v1/reports?limit=7&cursor={c}"),
            None => "/api/v1/reports?limit=7".to_string(),
        };
        let (s, page) = app.get(&uri, Some(&app.analyst)).await;
        assert_eq!(s, 200, "{page}");
        seen.extend(
            page["reports"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_i64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(seen, expected);

    let (_, page) = app
        .get(
            "/api/v1/reports?channel=patrol&limit=100",
            Some(&app.analyst),
        )
        .await;
    assert_eq!(page["reports"].as_array().unwrap().len(), 10);
    // By grid at each level: the first report's chain finds it.
    let (_, first) = app
        .get(&format!("/api/v1/reports/{}", ids[0]), Some(&app.analyst))
        .await;
    for level in ["district", "grid_l1", "grid_l2", "grid_l3"] {
        let code = first["placement"][level].as_str().unwrap();
        let (s, page) = app
            .get(
                &format!("/api/v1/reports?grid={code}&limit=100"),
                Some(&app.analyst),
            )
            .await;
        assert_eq!(s, 200);
        let got = page["reports"].as_array().unwrap();
        assert!(got.iter().any(|r| r["id"] == first["id"]), "{level}");
        assert!(got.iter().all(|r| r["placement"][level] == code));
    }
    let (lon, lat) = (
        first["lon"].as_f64().unwrap(),
        first["lat"].as_f64().unwrap(),
    );
    let bbox = format!(
        "{},{},{},{}",
        lon - 1e-6,
        lat - 1e-6,
        lon + 1e-6,
        lat + 1e-6
    );
    let (_, page) = app
        .get(&format!("/api/v1/reports?bbox={bbox}"), Some(&app.analyst))
        .await;
    assert_eq!(page["reports"][0]["id"], first["id"]);
    let (_, page) = app
        .get("/api/v1/reports?status=closed,rejected", Some(&app.analyst))
        .await;
    assert!(page["reports"].as_array().unwrap().is_empty());
    let (_, page) = app
        .get(
            "/api/v1/reports?overdue=false&limit=1000",
            Some(&app.analyst),
        )
        .await;
    assert_eq!(page["reports"].as_array().unwrap().len(), 40);
}

#[tokio::test]
async fn a_batch_over_several_chunks_numbers_its_rows_in_order_and_honours_idempotency_keys() {
    let app = TestApp::new(Config::default());
    let rep = app.reporter.clone();
    let mut earlier = report_at(erqi(), "app");
    earlier["idempotency_key"] = json!("k-1");
    let earlier_id = create(&app, &rep, &earlier).await;
    // 9,000 records span more than one of the import's chunks; "k-1" was used before the
    // batch, and "k-2" twice inside it, in different chunks.
    let n = 9_000;
    let key_of = |i: usize| match i {
        0 => Some("k-1"),
        5 | 8_500 => Some("k-2"),
        _ => None,
    };
    let ndjson: String = (0..n)
        .map(|i| {
            let mut r = report_at(erqi(), "app");
            r["description"] = json!(format!("record {i}"));
            if let Some(k) = key_of(i) {
                r["idempotency_key"] = json!(k);
            }
            r.to_string() + "\n"
        })
        .collect();
    let (s, v) = post_ndjson(&app, &rep, ndjson).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        (v["created"].as_u64(), v["replayed"].as_u64()),
        (Some(n as u64 - 2), Some(2))
    );
    let ids: Vec<i64> = v["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), n);
    assert_eq!(ids[0], earlier_id);
    assert_eq!(ids[8_500], ids[5]);
    let distinct: std::collections::HashSet<i64> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), n - 1);
    // Every id reads back as the record at its place in the batch.
    for i in [1, 5, 4_095, 4_096, 8_191, 8_192, 8_499, 8_501, n - 1] {
        let (s, r) = app
            .get(&format!("/api/v1/reports/{}", ids[i]), Some(&rep))
            .await;
        assert_eq!(s, 200, "{r}");
        assert_eq!(r["description"], format!("record {i}"), "record {i}");
    }
    let (_, first) = app
        .get(&format!("/api/v1/reports/{earlier_id}"), Some(&rep))
        .await;
    assert_eq!(first["description"], "垃圾满溢");
}

#[tokio::test]
async fn batches_of_reports_and_points_in_json_ndjson_and_csv() {
    let app = TestApp::new(Config::default());
    let city = common::small_city();
    let points = report_points(city.grids(), 500, 0.0, 11);
    let ndjson: String = points
        .iter()
        .map(|p| report_at(json!({"lon": p.lon(), "lat": p.lat()}), "iot").to_string() + "\n")
        .collect();
    let rep = app.reporter.clone();
    let (s, v) = post_ndjson(&app, &rep, ndjson).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["created"], 500);
    let ids = v["ids"].as_array().unwrap();
    assert_eq!(ids.len(), 500);
    // One bad record refuses the whole batch and names it.
    let bad = format!(
        "{}\n{}\n",
        report_at(erqi(), "app"),
        json!({"channel": "app", "category": "matter:99999", "location": erqi()})
    );
    let (s, e) = post_ndjson(&app, &rep, bad).await;
    assert_eq!(s, 400);
    assert_eq!(e["error"]["field"], "line 2.category");
    let (_, page) = app
        .get("/api/v1/reports?limit=1000", Some(&app.analyst))
        .await;
    assert_eq!(page["reports"].as_array().unwrap().len(), 500);

    let csv = "id,lon,lat,crs\na,113.6607,34.7486,gcj02\nb,113.6547,34.7499,wgs84\n";
    let (s, _) = app
        .call(
            "POST",
            "/api/v1/assign/batch",
            Some(&rep),
            Some("text/csv"),
            csv,
        )
        .await;
    assert_eq!(s, 200);
    let json_points = json!([{"id": "a", "lon": 113.6607, "lat": 34.7486, "crs": "gcj02"}]);
    let (s, v) = app
        .post_json("/api/v1/assign/batch", &rep, &json_points)
        .await;
    assert_eq!(s, 200);
    assert_eq!(v[0]["id"], "a");
    assert_eq!(
        v[0]["chain"].as_array().unwrap().last().unwrap()["code"],
        "410103"
    );
}
