//! KPI arithmetic against a hand-made data set whose answers are worked out by hand below.
//!
//! In 二七区 (410103), October 2026 (window [2026-10-01, 2026-11-01)), 1,000 reports:
//!
//! | group | n | outcome |
//! |---|---|---|
//! | A | 700 | closed on time (24 h), rated satisfied |
//! | B | 37 | closed on time (24 h), not rated, reworked once |
//! | C | 67 | closed late (100 h), rated basically satisfied, extended once |
//! | D | 33 | closed late (100 h), rated unsatisfied, reworked once |
//! | E | 74 | closed late (100 h), not rated |
//! | F | 61 | accepted, dispatched, still open past the deadline, extended once |
//! | G | 28 | rejected (不予立案) |
//!
//! So: reports 1,000; accepted 972 (立案率 97.2%); due 972 (all accepted are closed or past
//! deadline); closed 911 → 结案率 911/972 = 93.72%; on time 737 → 按期结案率 737/972 = 75.82%
//! (the published check figures); rated 800, satisfied or basically 767 → 满意率 95.875%;
//! reworked 70 → 返工率 70/911 = 7.68%; extended 128 → 延期率 128/972 = 13.17%; overdue 61;
//! mean time to close (737 × 24 + 174 × 100) / 911 = 38.52 h; p90 100 h.
//! Plus 300 closed reports in 金水区 (not counted), a previous period with 500 reports (450
//! closed, 400 on time, 50 overdue) and October 2025 with 200 (all closed, 150 on time).

mod common;

use axum::http::StatusCode;
use common::TestApp;
use gridscope::config::Config;
use serde_json::Value;

struct Group {
    n: i64,
    district: &'static str,
    reported: &'static str,
    status: &'static str,
    accepted: bool,
    close_after_h: Option<i64>,
    rating: Option<&'static str>,
    rework: i32,
    extended: i32,
}

const fn g(
    n: i64,
    status: &'static str,
    close_after_h: Option<i64>,
    rating: Option<&'static str>,
    rework: i32,
    extended: i32,
) -> Group {
    Group {
        n,
        district: "410103",
        reported: "2026-10-10 08:00:00",
        status,
        accepted: !matches!(status.as_bytes(), b"rejected"),
        close_after_h,
        rating,
        rework,
        extended,
    }
}

fn insert(app: &TestApp, first_id: i64, grp: &Group) {
    let rating = grp.rating.map_or("NULL".to_string(), |r| format!("'{r}'"));
    let closed = grp.close_after_h.map_or("NULL".to_string(), |h| {
        format!("TIMESTAMP '{}' + INTERVAL {h} HOUR", grp.reported)
    });
    let accepted = if grp.accepted {
        format!("TIMESTAMP '{}' + INTERVAL 1 HOUR", grp.reported)
    } else {
        "NULL".into()
    };
    let d = grp.district;
    let sql = format!(
        "INSERT INTO reports (id, reported_at, created_at, channel, category, description, photos, \
         raw_lon, raw_lat, raw_crs, lon, lat, h3_r6, h3_r7, h3_r8, h3_r9, h3_r10, district, grid_l1, \
         grid_l2, grid_l3, micro, exclusive, assigned_grid, assign_method, assign_distance_m, \
         responsible, status, deadline, accepted_at, closed_at, rating, rework_count, \
         extension_count, updated_at, created_by) \
         SELECT {first_id} + i, TIMESTAMP '{r}', TIMESTAMP '{r}', 'app', 'matter:06002', 'kpi', '[]', \
         113.6, 34.7, 'wgs84', 113.6, 34.7, 0, 0, 0, 0, 0, '{d}', '{d}001', '{d}001001', \
         '{d}001001001', NULL, '', '{d}001001001', 'interior', 0, '{d}001001001', '{s}', \
         TIMESTAMP '{r}' + INTERVAL 48 HOUR, {accepted}, {closed}, {rating}, {rw}, {ext}, \
         TIMESTAMP '{r}', 'test' FROM range({n}) t(i)",
        r = grp.reported,
        s = grp.status,
        n = grp.n,
        rw = grp.rework,
        ext = grp.extended,
    );
    app.state
        .store
        .read(|c| Ok(c.execute_batch(&sql)?))
        .expect("insert");
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[tokio::test(flavor = "multi_thread")]
async fn kpis_match_the_hand_worked_answers() {
    let app = TestApp::new(Config::default());
    let october = [
        g(700, "closed", Some(24), Some("satisfied"), 0, 0),
        g(37, "closed", Some(24), None, 1, 0),
        g(67, "closed", Some(100), Some("basically_satisfied"), 0, 1),
        g(33, "closed", Some(100), Some("unsatisfied"), 1, 0),
        g(74, "closed", Some(100), None, 0, 0),
        g(61, "dispatched", None, None, 0, 1),
        g(28, "rejected", None, None, 0, 0),
    ];
    let mut next = 1;
    for grp in &october {
        insert(&app, next, grp);
        next += grp.n;
    }
    let others = [
        Group {
            district: "410105",
            ..g(300, "closed", Some(24), Some("satisfied"), 0, 0)
        },
        Group {
            reported: "2026-09-15 08:00:00",
            ..g(400, "closed", Some(24), None, 0, 0)
        },
        Group {
            reported: "2026-09-15 08:00:00",
            ..g(50, "closed", Some(100), None, 0, 0)
        },
        Group {
            reported: "2026-09-15 08:00:00",
            ..g(50, "dispatched", None, None, 0, 0)
        },
        Group {
            reported: "2025-10-15 08:00:00",
            ..g(150, "closed", Some(24), None, 0, 0)
        },
        Group {
            reported: "2025-10-15 08:00:00",
            ..g(50, "closed", Some(100), None, 0, 0)
        },
    ];
    for grp in &others {
        insert(&app, next, grp);
        next += grp.n;
    }

    let uri = "/api/v1/stats/kpi?grid=410103&from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z";
    let (status, v) = app.get(uri, None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let cur = &v["current"];
    let n = |x: &Value| x.as_u64().unwrap();
    let f = |x: &Value| x.as_f64().unwrap();
    assert_eq!(n(&cur["counts"]["reports"]), 1000);
    assert_eq!(n(&cur["counts"]["accepted"]), 972);
    assert_eq!(n(&cur["counts"]["due"]), 972);
    assert_eq!(n(&cur["counts"]["closed"]), 911);
    assert_eq!(n(&cur["counts"]["closed_on_time"]), 737);
    assert_eq!(n(&cur["counts"]["overdue"]), 61);
    assert!(close(f(&cur["closure_rate"]), 911.0 / 972.0));
    assert_eq!(format!("{:.2}%", 100.0 * f(&cur["closure_rate"])), "93.72%");
    assert_eq!(format!("{:.2}%", 100.0 * f(&cur["on_time_rate"])), "75.82%");
    assert!(close(f(&cur["satisfaction_rate"]), 0.95875));
    assert!(close(f(&cur["acceptance_rate"]), 0.972));
    assert_eq!(format!("{:.2}%", 100.0 * f(&cur["rework_rate"])), "7.68%");
    assert_eq!(
        format!("{:.2}%", 100.0 * f(&cur["extension_rate"])),
        "13.17%"
    );
    assert_eq!(format!("{:.2}", f(&cur["mean_hours_to_close"])), "38.52");
    assert!(close(f(&cur["p90_hours_to_close"]), 100.0));
    assert!(f(&v["per_km2"]) > 0.0);

    // 环比: the 31 days before; 同比: October 2025.
    let prev = &v["previous_period"];
    assert_eq!(n(&prev["counts"]["reports"]), 500);
    assert!(close(f(&prev["closure_rate"]), 0.9));
    assert!(close(f(&prev["on_time_rate"]), 0.8));
    let year = &v["year_ago"];
    assert_eq!(n(&year["counts"]["reports"]), 200);
    assert!(close(f(&year["closure_rate"]), 1.0));
    assert!(close(f(&year["on_time_rate"]), 0.75));

    // The whole city counts 金水区 too; a street of 二七区 holds all of the district's reports.
    let (_, city) = app
        .get(
            "/api/v1/stats/kpi?from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z",
            None,
        )
        .await;
    assert_eq!(n(&city["current"]["counts"]["reports"]), 1300);
    let (_, street) = app
        .get(
            "/api/v1/stats/kpi?grid=410103001&from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z",
            None,
        )
        .await;
    assert_eq!(street["current"]["counts"], cur["counts"]);
    // A window with nothing: rates are null, not zero.
    let (_, empty) = app
        .get(
            "/api/v1/stats/kpi?grid=410103&from=2020-01-01T00:00:00Z&to=2020-02-01T00:00:00Z",
            None,
        )
        .await;
    assert!(empty["current"]["closure_rate"].is_null());
    // Bad input.
    for (uri, field) in [
        ("/api/v1/stats/kpi?grid=41x", "grid"),
        (
            "/api/v1/stats/kpi?grid=410103&from=2026-11-01T00:00:00Z&to=2026-10-01T00:00:00Z",
            "from",
        ),
        ("/api/v1/stats/kpi?channel=fax", "channel"),
    ] {
        let (s, e) = app.get(uri, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(e["error"]["field"], field, "{uri}");
    }
    let (s, _) = app.get("/api/v1/stats/kpi?grid=410199", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Breakdowns, series and rankings over the same data.
    let w = "from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z";
    let (s, rows) = app
        .get(
            &format!("/api/v1/stats/breakdown?grid=410103&by=channel&{w}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{rows}");
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["key"], "app");
    assert_eq!(rows[0]["kpis"]["counts"], cur["counts"]);
    let (_, rows) = app
        .get(
            &format!("/api/v1/stats/breakdown?grid=410103&by=major&{w}"),
            None,
        )
        .await;
    assert_eq!(rows[0]["key"], "matter:06");
    assert_eq!(rows[0]["name"], "市容环境类");
    let (_, rows) = app
        .get(
            &format!("/api/v1/stats/series?grid=410103&by=day&{w}"),
            None,
        )
        .await;
    // 2026-10-10 08:00 UTC is 16:00 in Zhengzhou, on the 10th.
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(rows[0]["key"], "2026-10-10T00:00:00+08:00");
    assert_eq!(n(&rows[0]["kpis"]["counts"]["reports"]), 1000);
    let (_, rows) = app
        .get(&format!("/api/v1/stats/ranking?by=reports&{w}"), None)
        .await;
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 10);
    assert_eq!(
        (
            rows[0]["key"].as_str(),
            n(&rows[0]["kpis"]["counts"]["reports"])
        ),
        (Some("410103"), 1000)
    );
    assert_eq!(
        (
            rows[1]["key"].as_str(),
            n(&rows[1]["kpis"]["counts"]["reports"])
        ),
        (Some("410105"), 300)
    );
    assert_eq!(rows[1]["name"], "金水区");
    let (_, rows) = app
        .get(
            &format!("/api/v1/stats/ranking?by=closure_rate&limit=3&{w}"),
            None,
        )
        .await;
    let keys: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert_eq!(&keys[..2], ["410105", "410103"]);
    assert!(rows[2]["kpis"]["closure_rate"].is_null());
    let (_, rows) = app
        .get(
            &format!("/api/v1/stats/ranking?by=closure_rate&order=asc&limit=2&{w}"),
            None,
        )
        .await;
    assert_eq!(rows[0]["key"], "410103");
    for (uri, field) in [
        ("/api/v1/stats/series?by=year", "by"),
        ("/api/v1/stats/breakdown?by=grid", "by"),
        ("/api/v1/stats/ranking?by=colour", "by"),
        ("/api/v1/stats/ranking?order=up", "order"),
        ("/api/v1/stats/kpi?by=day", "by"),
    ] {
        let (s, e) = app.get(uri, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(e["error"]["field"], field, "{uri}");
    }
}
