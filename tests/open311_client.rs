//! Open311 GeoReport v2 compatibility, proven with an existing client library (PyPI
//! `georeport`, installed by scripts/test) against the real server.

mod common;

use std::process::Command;

use common::Server;

fn python() -> String {
    std::env::var("GRIDSCOPE_PYTHON").unwrap_or_else(|_| "python3".into())
}

#[test]
fn a_georeport_client_reads_services_and_requests_in_json_and_xml() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &[("GRIDSCOPE_OPEN311_PUBLIC_REQUESTS", "true")]);
    let admin = Server::admin_key(dir.path());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent
        .post(&format!("{}/api/v1/keys", server.base))
        .header("authorization", &format!("Bearer {admin}"))
        .send_json(serde_json::json!({"name": "open311 app", "role": "reporter"}))
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let key: serde_json::Value = resp.body_mut().read_json().unwrap();
    let out = Command::new(python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/oracle/open311_client.py"
        ))
        .arg(format!("{}/open311/v2", server.base))
        .arg(key["secret"].as_str().unwrap())
        .output()
        .expect("python not found: run scripts/test, which installs the client library");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "client failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("open311 ok"), "{stdout}");
    eprintln!("{stdout}");
}
