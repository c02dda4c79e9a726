//! `shardkeeper serve` as a client and an operator see it.

mod common;
use common::{Daemon, BIN};

#[test]
fn ping_answers_204_with_influxdb_headers_for_get_and_head() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path());
    for method in ["GET", "HEAD"] {
        let r = daemon.request(method, "/ping", b"");
        assert_eq!(r.status, 204, "{method}");
        assert!(
            r.header("X-Influxdb-Version")
                .is_some_and(|v| v.starts_with('1')),
            "{:?}",
            r.headers
        );
        assert_eq!(r.header("X-Influxdb-Build"), Some("OSS"));
        assert!(r.body.is_empty());
    }
    assert!(daemon.stop().success());
}

#[test]
fn health_reports_pass_in_influxdb_json() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path());
    let r = daemon.request("GET", "/health", b"");
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(body["status"], "pass");
    assert_eq!(body["name"], "influxdb");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(body["version"].is_string());
    assert!(daemon.stop().success());
}

#[test]
fn unknown_paths_get_influxdb_plain_404() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path());
    let r = daemon.request("GET", "/no/such/thing", b"");
    assert_eq!(
        (r.status, r.body.as_slice()),
        (404, &b"404 page not found\n"[..])
    );
    daemon.kill9();
}

#[test]
fn a_second_daemon_on_the_same_data_directory_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let first = Daemon::start(dir.path());
    let err = Daemon::try_start(dir.path())
        .err()
        .expect("second daemon must not start");
    assert!(
        err.contains("in use by another shardkeeper process"),
        "{err}"
    );
    assert!(err.contains(&format!("pid {}", first.child.id())), "{err}");
    assert!(first.stop().success());
    // Once the first has stopped, the directory is free again.
    Daemon::start(dir.path()).stop();
}

#[test]
fn sigterm_stops_cleanly_with_a_final_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path());
    assert!(daemon.stop().success());
    let snapshots: Vec<_> = std::fs::read_dir(dir.path().join("control"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".snap"))
        .collect();
    assert_eq!(snapshots.len(), 1, "one final snapshot: {snapshots:?}");
    let out = std::process::Command::new(BIN)
        .args(["ctl", "log", "verify"])
        .arg(dir.path().join("control"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_bad_config_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "bind = \"127.0.0.1:0\"\nno_such_key = 1\n").unwrap();
    let out = std::process::Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.toml") && stderr.contains("no_such_key"),
        "{stderr}"
    );
}

#[test]
fn metrics_show_each_logs_figures_in_prometheus_format() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path());
    common::query(daemon.addr, "", "CREATE DATABASE m");
    assert_eq!(
        daemon
            .request(
                "POST",
                "/write?db=m",
                b"cpu v=1 1000000000\ncpu v=2 2000000000"
            )
            .status,
        204
    );
    let r = daemon.request("GET", "/metrics", b"");
    assert_eq!(r.status, 200);
    let text = String::from_utf8(r.body).unwrap();
    assert!(
        text.contains("# TYPE shardkeeper_log_commits counter"),
        "{text}"
    );
    assert!(
        text.contains("shardkeeper_log_durable_lsn{log=\"control\"} 2"),
        "database + shard created: {text}"
    );
    assert!(
        text.contains("shardkeeper_log_records_total{log=\"data\"} 1"),
        "one write record in the data log: {text}"
    );
    assert!(text.contains("shardkeeper_log_failed{log=\"control\"} 0"));
    daemon.stop();
}

#[test]
fn the_documented_config_file_is_accepted_as_it_stands() {
    let dir = tempfile::tempdir().unwrap();
    let documented = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/shardkeeper.toml"
    ))
    .unwrap();
    // Every key of the documented file, as documented; flags still choose port and directory.
    let daemon = Daemon::start_with_config(&dir.path().join("data"), &documented);
    assert_eq!(daemon.request("GET", "/ping", b"").status, 204);
    assert!(daemon.stop().success());
}

/// A shard the catalog knows whose directory is gone lost its points: the node does not
/// open an empty shard in its place (and answer as if the points had never been written);
/// it quarantines that shard, naming the directory, and serves the rest.
#[test]
fn a_shard_whose_directory_was_lost_is_quarantined_not_opened_empty() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path());
    assert_eq!(
        daemon
            .request("POST", "/query?q=CREATE+DATABASE+d", b"")
            .status,
        200
    );
    let r = daemon.request(
        "POST",
        "/write?db=d",
        b"m v=1 1000000000\nm v=2 2000000000\n",
    );
    assert_eq!(r.status, 204);
    assert!(daemon.stop().success());
    let shards: Vec<_> = std::fs::read_dir(dir.path().join("shards"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(shards.len(), 1, "{shards:?}");
    std::fs::remove_dir_all(&shards[0]).unwrap();

    let daemon = Daemon::start(dir.path());
    let health = daemon.request("GET", "/health", b"").json();
    assert_eq!(health["status"], "warn", "{health}");
    let check = health["checks"][0]["message"].as_str().unwrap_or_default();
    assert!(
        check.contains(&shards[0].display().to_string()) && check.contains("is missing"),
        "{health}"
    );
    let r = daemon.request("GET", "/query?db=d&q=SELECT+*+FROM+m", b"");
    assert!(
        String::from_utf8_lossy(&r.body).contains("is missing"),
        "a read needing the shard is refused: {} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    assert!(!shards[0].exists(), "no empty shard was made in its place");
    assert!(daemon.stop().success());
    // The remedy the error gives: the empty directory opens as a shard with no column
    // file; the points still in the node's data log (here: all of them) are its again.
    std::fs::create_dir(&shards[0]).unwrap();
    let daemon = Daemon::start(dir.path());
    assert_eq!(
        daemon.request("GET", "/health", b"").json()["status"],
        "pass"
    );
    let r = daemon.request("GET", "/query?db=d&q=SELECT+*+FROM+m", b"");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["results"][0]["series"][0]["values"],
        serde_json::json!([["1970-01-01T00:00:01Z", 1], ["1970-01-01T00:00:02Z", 2]]),
        "{:?}",
        r.json()
    );
    assert!(daemon.stop().success());
}
