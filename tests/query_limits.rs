//! Query limits configured in the daemon's config: most series, points and GROUP BY time
//! windows per SELECT, and a query timeout, each refused with InfluxDB 1.x's message
//! (series and windows compared with a real influxd given the same limits).

mod common;
use common::influxd::Influxd;
use common::{query, request, Daemon};
use std::net::SocketAddr;

const DB: &str = "lim";
const T0: i64 = 1_704_067_200_000_000_000; // 2024-01-01T00:00:00Z
const SEC: i64 = 1_000_000_000;

/// Three series of 20 points, one every 10 s.
fn load(addr: SocketAddr) {
    assert_eq!(
        query(addr, "", &format!("CREATE DATABASE {DB}")).status,
        200
    );
    let mut lines = String::new();
    for i in 0..20 {
        for host in ["a", "b", "c"] {
            lines.push_str(&format!(
                "cpu,host={host} usage={i} {}\n",
                T0 + i * 10 * SEC
            ));
        }
    }
    let r = request(
        addr,
        "POST",
        &format!("/write?db={DB}"),
        &[],
        lines.as_bytes(),
    );
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
}

/// The first statement's error, or None when it answered.
fn error_of(addr: SocketAddr, q: &str) -> Option<String> {
    let r = query(addr, DB, q);
    assert_eq!(r.status, 200, "{q}");
    r.json()["results"][0]["error"].as_str().map(str::to_owned)
}

const HOUR: &str = "time >= '2024-01-01T00:00:00Z' AND time < '2024-01-01T01:00:00Z'";

#[test]
fn selects_beyond_the_configured_limits_are_refused_with_influxdbs_messages() {
    let dir = tempfile::tempdir().unwrap();
    let ours = Daemon::start_with_config(
        dir.path(),
        "max_select_series = 2\nmax_select_point = 25\nmax_select_buckets = 10\n",
    );
    load(ours.addr);
    let cases: [(String, Option<&str>); 8] = [
        (
            "SELECT usage FROM cpu".into(),
            Some("max-select-series limit exceeded: (3/2)"),
        ),
        (
            "SELECT max(usage) FROM cpu GROUP BY host".into(),
            Some("max-select-series limit exceeded: (3/2)"),
        ),
        ("SELECT usage FROM cpu WHERE host = 'a'".into(), None),
        (
            "SELECT usage FROM cpu WHERE host = 'a' OR host = 'b'".into(),
            // 1.x's own spelling.
            Some("max-select-point limit exceeed: (40/25)"),
        ),
        (
            "SELECT usage FROM cpu WHERE host != 'c' AND usage < 12".into(),
            None,
        ),
        (
            format!("SELECT count(usage) FROM cpu WHERE host = 'a' AND {HOUR} GROUP BY time(1m)"),
            Some("max-select-buckets limit exceeded: (60/10)"),
        ),
        (
            format!("SELECT count(usage) FROM cpu WHERE host = 'a' AND {HOUR} GROUP BY time(6m)"),
            None,
        ),
        (
            // Without a start the windows are not counted, as in 1.x.
            "SELECT count(usage) FROM cpu WHERE host = 'a' AND time < '2024-01-01T00:10:00Z' GROUP BY time(1m)"
                .into(),
            None,
        ),
    ];
    for (q, expected) in &cases {
        assert_eq!(error_of(ours.addr, q).as_deref(), *expected, "{q}");
    }
    // A subquery's rows count as the outer statement's points.
    let q = "SELECT sum(u) FROM (SELECT usage AS u FROM cpu WHERE host = 'a' OR host = 'b')";
    assert_eq!(
        error_of(ours.addr, q).as_deref(),
        Some("max-select-point limit exceeed: (40/25)")
    );
    ours.stop();
}

#[test]
fn series_and_window_limits_answer_as_influxdb_does() {
    let Some(influxd) =
        Influxd::start_with("[coordinator]\n  max-select-series = 2\n  max-select-buckets = 10\n")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ours = Daemon::start_with_config(
        dir.path(),
        "max_select_series = 2\nmax_select_buckets = 10\n",
    );
    load(influxd.addr);
    load(ours.addr);
    for q in [
        "SELECT usage FROM cpu".to_owned(),
        "SELECT usage FROM cpu WHERE host = 'a' OR host = 'b'".to_owned(),
        format!("SELECT count(usage) FROM cpu WHERE host = 'a' AND {HOUR} GROUP BY time(1m)"),
        format!("SELECT count(usage) FROM cpu WHERE host = 'a' AND {HOUR} GROUP BY time(6m)"),
        format!("SELECT count(usage) FROM cpu WHERE host = 'a' AND {HOUR} GROUP BY time(7m, 3m)"),
    ] {
        let (theirs, mine) = (query(influxd.addr, DB, &q), query(ours.addr, DB, &q));
        assert_eq!(
            (theirs.status, theirs.json()),
            (mine.status, mine.json()),
            "{q}"
        );
    }
    ours.stop();
}

#[test]
fn a_query_past_its_timeout_is_stopped_with_influxdbs_message() {
    let dir = tempfile::tempdir().unwrap();
    let ours = Daemon::start(dir.path());
    load(ours.addr);
    ours.stop();
    // One nanosecond: any query outlives it.
    let ours = Daemon::start_with_config(dir.path(), "query_timeout_seconds = 0.000000001\n");
    let r = query(
        ours.addr,
        DB,
        "SELECT usage FROM cpu; SELECT count(usage) FROM cpu",
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["results"],
        serde_json::json!([{"statement_id": 0, "error": "query-timeout limit exceeded"}]),
        "the statements after the timeout do not run"
    );
    // Writes are not queries: the node goes on taking them.
    let r = request(
        ours.addr,
        "POST",
        &format!("/write?db={DB}"),
        &[],
        b"cpu,host=d usage=1 0\n",
    );
    assert_eq!(r.status, 204);
    ours.stop();

    // Without a timeout (the default) the same data answers.
    let ours = Daemon::start(dir.path());
    let r = query(ours.addr, DB, "SELECT count(usage) FROM cpu");
    assert_eq!(r.json()["results"][0]["series"][0]["values"][0][1], 61);
    ours.stop();
}
