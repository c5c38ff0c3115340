//! The API's contract: every malformed request gets a 4xx JSON error naming the field, and
//! every route is in the OpenAPI document.

mod common;

use axum::http::StatusCode;
use common::TestApp;
use gridscope::config::Config;
use serde_json::{Value, json};

fn good_report() -> Value {
    json!({
        "channel": "app",
        "category": "matter:06002",
        "description": "井盖缺失",
        "location": {"lon": 113.6607, "lat": 34.7486, "crs": "gcj02"},
    })
}

fn with(path: &[&str], value: Value) -> String {
    let mut v = good_report();
    let mut at = &mut v;
    for p in &path[..path.len() - 1] {
        at = &mut at[*p];
    }
    at[path[path.len() - 1]] = value;
    v.to_string()
}

fn without(field: &str) -> String {
    let mut v = good_report();
    v.as_object_mut().unwrap().remove(field);
    v.to_string()
}

struct Case {
    name: &'static str,
    method: &'static str,
    uri: &'static str,
    content_type: Option<&'static str>,
    body: String,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
}

fn case(
    name: &'static str,
    method: &'static str,
    uri: &'static str,
    body: String,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
) -> Case {
    Case {
        name,
        method,
        uri,
        content_type: Some("application/json"),
        body,
        status,
        code,
        field,
    }
}

#[tokio::test]
async fn every_malformed_request_gets_a_4xx_json_error_naming_the_problem() {
    let mut config = Config::default();
    config.limits.body_bytes = 64 * 1024;
    config.limits.batch_size = 3;
    let app = TestApp::new(config);
    let r = "/api/v1/reports";
    let huge = format!("{{\"description\": \"{}\"}}", "x".repeat(100 * 1024));
    let cases = vec![
        case("not JSON", "POST", r, "{\"channel\": ".into(), 400, "invalid_json", None),
        case("JSON but not an object", "POST", r, "[1,2]".into(), 400, "invalid_field", None),
        case("missing location", "POST", r, without("location"), 400, "missing_field", Some("location")),
        case("missing category", "POST", r, without("category"), 400, "missing_field", Some("category")),
        case("lat is a string", "POST", r, with(&["location", "lat"], json!("34.7")), 400, "invalid_field", Some("location.lat")),
        case("lon is null", "POST", r, with(&["location", "lon"], Value::Null), 400, "invalid_field", Some("location.lon")),
        case("lat out of range", "POST", r, with(&["location", "lat"], json!(134.7)), 400, "invalid_field", Some("location.lat")),
        case("lon out of range", "POST", r, with(&["location", "lon"], json!(213.6)), 400, "invalid_field", Some("location.lon")),
        case("infinite number", "POST", r, good_report().to_string().replace("113.6607", "1e999"), 400, "invalid_json", None),
        case("NaN literal", "POST", r, good_report().to_string().replace("113.6607", "NaN"), 400, "invalid_json", None),
        case("lat/lon swapped", "POST", r, with(&["location"], json!({"lon": 34.7486, "lat": 113.6607})), 400, "invalid_field", Some("location")),
        case("Web Mercator metres", "POST", r, with(&["location"], json!({"lon": 12652000.0, "lat": 4128000.0})), 400, "invalid_field", Some("location.lat")),
        case("far outside the city", "POST", r, with(&["location"], json!({"lon": 116.39, "lat": 39.91})), 400, "outside_service_area", Some("location")),
        case("unknown crs", "POST", r, with(&["location", "crs"], json!("epsg:3857")), 400, "invalid_field", Some("location.crs")),
        case("unknown category", "POST", r, with(&["category"], json!("matter:99999")), 400, "invalid_field", Some("category")),
        case("malformed category", "POST", r, with(&["category"], json!("garbage")), 400, "invalid_field", Some("category")),
        case("unknown channel", "POST", r, with(&["channel"], json!("fax")), 400, "invalid_field", Some("channel")),
        case("unknown field", "POST", r, with(&["colour"], json!("red")), 400, "invalid_field", None),
        case("photo not a URL", "POST", r, with(&["photos"], json!(["file:///etc/passwd"])), 400, "invalid_field", Some("photos[0]")),
        case("report in the future", "POST", r, with(&["reported_at"], json!("2099-01-01T00:00:00Z")), 400, "invalid_field", Some("reported_at")),
        case("bad timestamp", "POST", r, with(&["reported_at"], json!("yesterday")), 400, "invalid_field", Some("reported_at")),
        case("oversized body", "POST", r, huge, 413, "payload_too_large", None),
        Case { content_type: Some("text/plain"), ..case("wrong content type", "POST", r, good_report().to_string(), 415, "unsupported_media_type", None) },
        Case { content_type: None, ..case("no content type", "POST", r, good_report().to_string(), 415, "unsupported_media_type", None) },
        case("bad cursor", "GET", "/api/v1/reports?cursor=zzz", String::new(), 400, "invalid_field", Some("cursor")),
        case("limit not a number", "GET", "/api/v1/reports?limit=ten", String::new(), 400, "invalid_field", Some("limit")),
        case("limit too large", "GET", "/api/v1/reports?limit=1000000", String::new(), 400, "invalid_field", Some("limit")),
        case("unknown status filter", "GET", "/api/v1/reports?status=done", String::new(), 400, "invalid_field", Some("status")),
        case("bad bbox", "GET", "/api/v1/reports?bbox=1,2,3", String::new(), 400, "invalid_field", Some("bbox")),
        case("bad grid code", "GET", "/api/v1/reports?grid=41x", String::new(), 400, "invalid_field", Some("grid")),
        case("bad from time", "GET", "/api/v1/reports?from=monday", String::new(), 400, "invalid_field", Some("from")),
        case("unknown query parameter", "GET", "/api/v1/reports?colour=red", String::new(), 400, "invalid_field", None),
        case("non-numeric report id", "GET", "/api/v1/reports/abc", String::new(), 400, "invalid_field", Some("id")),
        case("unknown report id", "GET", "/api/v1/reports/987654321", String::new(), 404, "not_found", None),
        case("transition of unknown report", "POST", "/api/v1/reports/987654321/transitions", json!({"action": "accept"}).to_string(), 404, "not_found", None),
        case("unknown action", "POST", "/api/v1/reports/1/transitions", json!({"action": "fly"}).to_string(), 400, "invalid_field", None),
        case("extend without hours", "POST", "/api/v1/reports/1/transitions", json!({"action": "extend"}).to_string(), 400, "missing_field", Some("hours")),
        case("assign without lat", "GET", "/api/v1/assign?lon=113.6", String::new(), 400, "missing_field", Some("lat")),
        case("assign with lat=abc", "GET", "/api/v1/assign?lon=113.6&lat=abc", String::new(), 400, "invalid_field", Some("lat")),
        case("assign with unknown crs", "GET", "/api/v1/assign?lon=113.6&lat=34.7&crs=mars", String::new(), 400, "invalid_field", Some("crs")),
        case("batch too large", "POST", "/api/v1/assign/batch", json!([{"lon":113.6,"lat":34.7},{"lon":113.6,"lat":34.7},{"lon":113.6,"lat":34.7},{"lon":113.6,"lat":34.7}]).to_string(), 413, "batch_too_large", None),
        case("empty batch", "POST", "/api/v1/assign/batch", "[]".into(), 400, "invalid_field", Some("body")),
        case("bad point in batch", "POST", "/api/v1/assign/batch", json!([{"lon":113.6,"lat":34.7},{"lon":113.6,"lat":"x"}]).to_string(), 400, "invalid_field", Some("[1].lat")),
        Case { content_type: Some("text/csv"), ..case("bad CSV row", "POST", "/api/v1/assign/batch", "lon,lat\n113.6,34.7\n113.6,north\n".into(), 400, "invalid_field", Some("row 3")) },
        case("unknown grid", "GET", "/api/v1/grids/410103999999999", String::new(), 404, "not_found", None),
        case("bad grid level", "GET", "/api/v1/grids?level=7", String::new(), 400, "invalid_field", Some("level")),
        case("unknown endpoint", "GET", "/api/v1/nothing", String::new(), 404, "not_found", None),
        case("wrong method", "DELETE", "/api/v1/reports", String::new(), 405, "method_not_allowed", None),
    ];
    let key = app.operator.clone();
    let mut failures = Vec::new();
    for c in &cases {
        let (status, body) = app
            .call(c.method, c.uri, Some(&key), c.content_type, c.body.clone())
            .await;
        let err = &body["error"];
        let ok = status == StatusCode::from_u16(c.status).unwrap()
            && err["code"] == c.code
            && err["status"] == c.status
            && err["message"].as_str().is_some_and(|m| !m.is_empty())
            && c.field.is_none_or(|f| err["field"] == f);
        if !ok {
            failures.push(format!("{}: got {status} {body}", c.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn every_route_is_in_the_openapi_document_and_every_documented_route_exists() {
    let app = TestApp::new(Config::default());
    let (s, doc) = app.get("/api/v1/openapi.json", None).await;
    assert_eq!(s, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        for method in ["get", "post", "put", "delete", "patch"] {
            if item.get(method).is_none() {
                continue;
            }
            operations += 1;
            let mut uri = path.replace("{id}", "1").replace("{code}", "410103");
            if path == "/api/v1/events" {
                // The live feed never ends; an invalid option proves it is routed without
                // waiting for the stream.
                uri.push_str("?backlog=100000");
            }
            let (status, body) = app
                .call(
                    &method.to_uppercase(),
                    &uri,
                    Some(&app.admin),
                    Some("application/json"),
                    "{}",
                )
                .await;
            let unrouted = status == 405
                || body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("no such endpoint"));
            assert!(
                !unrouted,
                "{method} {path} is documented but not routed: {status} {body}"
            );
        }
    }
    // Routes are only ever added through `routes!` (which documents them); count the
    // documented handlers in the source and compare with the document.
    let mut annotated = 0;
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/src/api")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        annotated += text.matches("#[utoipa::path(").count();
        for forbidden in [
            ".route(",
            ".route_service(",
            ".nest(",
            ".nest_service(",
            ".merge(",
        ] {
            assert!(
                !text.contains(forbidden),
                "a route added with {forbidden} bypasses the OpenAPI document"
            );
        }
    }
    assert_eq!(
        operations, annotated,
        "documented operations vs annotated handlers"
    );
    for p in [
        "/api/v1/reports",
        "/api/v1/reports/{id}/transitions",
        "/api/v1/assign",
        "/health",
        "/metrics",
    ] {
        assert!(paths.contains_key(p), "{p} missing");
    }
}

#[tokio::test]
async fn health_and_metrics_report_on_the_server() {
    let app = TestApp::new(Config::default());
    let (s, h) = app.get("/health", None).await;
    assert_eq!(s, 200);
    assert_eq!(h["status"], "ok");
    assert!(h["grids"].as_u64().unwrap() > 100);
    // The recorder is shared by every test in this process: counts only grow, so the test
    // checks that its own requests were added, not totals.
    let count = |status: &str| {
        let line = format!(
            "gridscope_http_requests_total{{method=\"GET\",route=\"/api/v1/assign\",status=\"{status}\"}} "
        );
        let text = app.state.metrics.render();
        text.lines()
            .find_map(|l| l.strip_prefix(&line))
            .map_or(0.0, |v| v.trim().parse::<f64>().unwrap())
    };
    let (ok_before, bad_before) = (count("200"), count("400"));
    for _ in 0..3 {
        let (s, _) = app
            .get(
                "/api/v1/assign?lon=113.6547&lat=34.7499",
                Some(&app.reporter),
            )
            .await;
        assert_eq!(s, 200);
    }
    let (s, _) = app
        .get(
            "/api/v1/assign?lon=34.7499&lat=113.6547",
            Some(&app.reporter),
        )
        .await;
    assert_eq!(s, 400);
    assert!(count("200") >= ok_before + 3.0);
    assert!(count("400") > bad_before);
    let text = app.state.metrics.render();
    assert!(
        text.contains(
            "gridscope_http_request_duration_seconds_count{method=\"GET\",route=\"/api/v1/assign\"}"
        ),
        "{text}"
    );
}
