//! An acknowledged report is never lost: kill the server with SIGKILL in the middle of a
//! stream of creates, restart it, and find every acknowledged report whole, each exactly once
//! after clients retry, and nothing else.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Server;
use serde_json::{Value, json};

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn post(
    agent: &ureq::Agent,
    url: &str,
    key: &str,
    body: &Value,
) -> Result<(u16, Value), ureq::Error> {
    let mut resp = agent
        .post(url)
        .header("authorization", &format!("Bearer {key}"))
        .send_json(body)?;
    let status = resp.status().as_u16();
    let v: Value = resp.body_mut().read_json().unwrap_or(Value::Null);
    Ok((status, v))
}

fn report(key: &str, i: usize) -> Value {
    // Points spread over the city centre, in GCJ-02 as apps send them.
    let lon = 113.60 + (i % 97) as f64 * 0.0011;
    let lat = 34.72 + (i % 89) as f64 * 0.0009;
    json!({
        "channel": "app",
        "category": "matter:06002",
        "description": key,
        "location": {"lon": lon, "lat": lat, "crs": "gcj02"},
        "idempotency_key": key,
    })
}

/// A new reporter key, made with the server's first admin key.
fn reporter_key(server: &Server, dir: &std::path::Path) -> String {
    let admin = Server::admin_key(dir);
    let (s, k) = post(
        &agent(),
        &format!("{}/api/v1/keys", server.base),
        &admin,
        &json!({"name": "load", "role": "reporter"}),
    )
    .unwrap();
    assert_eq!(s, 201, "{k}");
    k["secret"].as_str().unwrap().to_string()
}

#[test]
fn sigkill_during_a_stream_of_creates_loses_no_acknowledged_report() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let key = reporter_key(&server, dir.path());

    let acked: Arc<Mutex<HashMap<String, i64>>> = Arc::default();
    let sent: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let url = format!("{}/api/v1/reports", server.base);
    let workers: Vec<_> = (0..16)
        .map(|w| {
            let (acked, sent, stop, url, key) = (
                acked.clone(),
                sent.clone(),
                stop.clone(),
                url.clone(),
                key.clone(),
            );
            std::thread::spawn(move || {
                let a = agent();
                for i in 0..5_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let ikey = format!("w{w}-{i}");
                    sent.lock().unwrap().push(ikey.clone());
                    match post(&a, &url, &key, &report(&ikey, w * 5_000 + i)) {
                        Ok((201, v)) => {
                            acked
                                .lock()
                                .unwrap()
                                .insert(ikey, v["id"].as_i64().unwrap());
                        }
                        Ok((status, v)) => panic!("unexpected {status}: {v}"),
                        Err(_) => break, // the server is gone
                    }
                }
            })
        })
        .collect();
    // Let the stream run, then kill the server without warning.
    let t = Instant::now();
    while acked.lock().unwrap().len() < 1_500 && t.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut server = server;
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let sent = sent.lock().unwrap().clone();
    assert!(
        acked.len() >= 1_000,
        "only {} creates acknowledged before the kill",
        acked.len()
    );
    drop(server);

    // Restart on the same files; clients retry what was not acknowledged.
    let server = Server::start(dir.path());
    let a = agent();
    for ikey in sent.iter().filter(|k| !acked.contains_key(*k)) {
        let i: usize = ikey.split('-').nth(1).unwrap().parse().unwrap();
        let url = format!("{}/api/v1/reports", server.base);
        let (s, v) = post(&a, &url, &key, &report(ikey, i)).unwrap();
        assert!(s == 201 || s == 200, "{s} {v}");
    }
    for (ikey, id) in acked.iter().take(200) {
        let mut resp = a
            .get(&format!("{}/api/v1/reports/{id}", server.base))
            .header("authorization", &format!("Bearer {key}"))
            .call()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let v: Value = resp.body_mut().read_json().unwrap();
        assert_eq!(v["description"], *ikey);
        assert_eq!(v["history"][0]["action"], "report");
    }
    drop(server);

    // Every acknowledged report is there with its own id; each key made exactly one report;
    // no report lacks its first history entry and no history entry lacks its report.
    let conn = duckdb::Connection::open(dir.path().join("gridscope.duckdb")).unwrap();
    let mut stmt = conn.prepare("SELECT description, id FROM reports").unwrap();
    let rows: Vec<(String, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut by_key: HashMap<String, Vec<i64>> = HashMap::new();
    for (d, id) in rows {
        by_key.entry(d).or_default().push(id);
    }
    for (ikey, id) in &acked {
        assert_eq!(
            by_key.get(ikey),
            Some(&vec![*id]),
            "acknowledged report {ikey} (id {id})"
        );
    }
    for ikey in &sent {
        assert_eq!(
            by_key.get(ikey).map(Vec::len),
            Some(1),
            "{ikey} after retry"
        );
    }
    // A report is one row written in one transaction; its history holds only later moves.
    let orphans: i64 = conn
        .query_row(
            "SELECT count(*) FROM report_history h WHERE NOT EXISTS \
               (SELECT 1 FROM reports r WHERE r.id = h.report_id)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0, "history entries without their report");
    let total: i64 = conn
        .query_row("SELECT count(*) FROM reports", [], |r| r.get(0))
        .unwrap();
    assert_eq!(total as usize, sent.len(), "reports that no client sent");
    eprintln!(
        "durability: {} acknowledged before SIGKILL, {} in flight retried, all present once",
        acked.len(),
        sent.len() - acked.len()
    );
}

#[test]
fn sigterm_finishes_in_flight_requests_and_flushes_storage() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    let key = reporter_key(&server, dir.path());
    let acked: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
    let url = format!("{}/api/v1/reports", server.base);
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (acked, url, key) = (acked.clone(), url.clone(), key.clone());
            std::thread::spawn(move || {
                let a = agent();
                for i in 0..20_000 {
                    let ikey = format!("t{w}-{i}");
                    match post(&a, &url, &key, &report(&ikey, i)) {
                        Ok((201, v)) => acked
                            .lock()
                            .unwrap()
                            .push((ikey, v["id"].as_i64().unwrap())),
                        // Refused or cut off once the server stops taking connections.
                        Ok((503, _)) | Err(_) => break,
                        Ok((status, v)) => panic!("unexpected {status}: {v}"),
                    }
                }
            })
        })
        .collect();
    let t = Instant::now();
    while acked.lock().unwrap().len() < 500 && t.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = i32::try_from(server.child.id()).unwrap();
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = server.child.wait().unwrap();
    for w in workers {
        w.join().unwrap();
    }
    assert!(status.success(), "graceful shutdown exited with {status}");
    // Storage was flushed: the write-ahead log was folded into the database file.
    let wal = dir.path().join("gridscope.duckdb.wal");
    assert!(
        std::fs::metadata(&wal).map_or(0, |m| m.len()) == 0,
        "WAL left behind"
    );
    let acked = acked.lock().unwrap().clone();
    let conn = duckdb::Connection::open(dir.path().join("gridscope.duckdb")).unwrap();
    for (ikey, id) in &acked {
        let found: String = conn
            .query_row("SELECT description FROM reports WHERE id = ?", [id], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(&found, ikey);
    }
    eprintln!(
        "graceful shutdown: {} acknowledged creates, all stored, WAL flushed",
        acked.len()
    );
}
