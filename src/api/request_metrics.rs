//! Counts requests and their durations per method, route and status, for `/metrics`.
//!
//! The metric handles are registered once per worker thread and key and kept: registering
//! on every request (building the labels, hashing them, locking a shard of the registry)
//! cost a few percent of a small request such as a single-point assignment.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Counter, Histogram};

/// The handles of one method and status on one route.
struct Handles {
    method: &'static str,
    status: u16,
    requests: Counter,
    duration: Histogram,
}

thread_local! {
    /// Handles by route; a route has a few (method, status) pairs, so they are a short list.
    static HANDLES: RefCell<HashMap<Box<str>, Vec<Handles>>> = RefCell::new(HashMap::new());
}

/// A method as a static label (no allocation per request).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "OTHER",
    }
}

fn register(method: &'static str, route: &str, status: u16) -> Handles {
    let labels = [
        ("method", method.to_string()),
        ("route", route.to_string()),
        ("status", status.to_string()),
    ];
    Handles {
        method,
        status,
        requests: metrics::counter!("gridscope_http_requests_total", &labels),
        duration: metrics::histogram!("gridscope_http_request_duration_seconds", &labels[..2]),
    }
}

/// Records one answered request.
fn record(method: &'static str, route: &str, status: u16, seconds: f64) {
    HANDLES.with_borrow_mut(|by_route| {
        let handles = match by_route.get_mut(route) {
            Some(h) => h,
            None => by_route.entry(route.into()).or_default(),
        };
        let i = match handles
            .iter()
            .position(|h| h.method == method && h.status == status)
        {
            Some(i) => i,
            None => {
                handles.push(register(method, route, status));
                handles.len() - 1
            }
        };
        let h = &handles[i];
        h.requests.increment(1);
        h.duration.record(seconds);
    });
}

/// Middleware: counts the request and its duration under its matched route.
pub async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = method_label(req.method());
    let resp = next.run(req).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    record(
        method,
        route,
        resp.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    resp
}
