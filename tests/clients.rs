//! Real clients against a real node: the Python `influxdb` and `influxdb-client`
//! libraries and the `influx` 1.x CLI. `.ci/run` installs them; elsewhere the test says it
//! is skipped, unless SHARDKEEPER_REQUIRE_CLIENTS=1 makes their absence a failure.

mod common;
use common::{python_with, query, run_client_script, tool_available as available, Daemon};
use std::process::Command;

#[test]
fn python_influxdb_library_writes_and_reads() {
    if !python_with("influxdb") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path());
    let port = daemon.addr.port().to_string();
    let out = run_client_script("influxdb_v1.py", &[&port], b"");
    let got: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        got["points"],
        serde_json::json!([
            {"time": "2024-01-01T00:00:00Z", "count": 3, "host": "a", "note": "hello", "ok": true, "value": 1.5},
            {"time": "2024-01-01T00:00:10Z", "count": 4, "host": "b", "note": "world", "ok": false, "value": 2.5},
        ])
    );
    assert_eq!(got["databases"], serde_json::json!(["pyv1"]));
    assert!(
        got["ping"].as_str().is_some_and(|v| v.starts_with('1')),
        "{got}"
    );
    daemon.stop();
}

#[test]
fn python_influxdb_client_writes_through_the_v2_api() {
    if !python_with("influxdb_client") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path());
    assert_eq!(query(daemon.addr, "", "CREATE DATABASE pyv2").status, 200);
    run_client_script("influxdb_v2.py", &[&daemon.addr.port().to_string()], b"");
    let r = query(daemon.addr, "pyv2", "SELECT * FROM mem").json();
    assert_eq!(
        r["results"][0]["series"][0]["values"],
        serde_json::json!([
            ["2024-01-01T00:00:00Z", "c", 42],
            ["2024-01-01T00:00:10Z", "d", 7]
        ])
    );
    daemon.stop();
}

#[test]
fn influx_cli_creates_writes_and_reads() {
    if !available(
        Command::new("influx").arg("-version"),
        "the influx CLI (Debian's influxdb-client)",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path());
    let port = daemon.addr.port().to_string();
    let influx = |args: &[&str]| {
        let out = Command::new("influx")
            .args(["-host", "127.0.0.1", "-port", &port])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "influx {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    influx(&["-execute", "CREATE DATABASE cli"]);
    influx(&[
        "-database",
        "cli",
        "-execute",
        "INSERT temp,room=k celsius=21.5 1704067200000000000",
    ]);
    let out = influx(&[
        "-database",
        "cli",
        "-format",
        "json",
        "-execute",
        "SELECT * FROM temp",
    ]);
    let got: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        got["results"][0]["series"][0]["values"],
        serde_json::json!([[1704067200000000000i64, 21.5, "k"]])
    );
    let out = influx(&["-execute", "SHOW DATABASES"]);
    assert!(out.contains("cli"), "{out}");
    daemon.stop();
}
