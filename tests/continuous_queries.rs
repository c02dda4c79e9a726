//! Continuous queries: the statements compared with real InfluxDB 1.6 (their answers,
//! the stored text SHOW gives, the errors), and the runs on schedule against shardkeeper
//! alone with a fast run interval: results appear in the target, and a node killed
//! between runs resumes from its last recorded run, computing the windows it was down
//! for once.

mod common;
use common::influxd::SideBySide;
use common::{first_result, query, request, rows_of, urlencode, wait_until, Daemon};
use std::time::{SystemTime, UNIX_EPOCH};

const STATEMENTS: &[&str] = &[
    "SHOW CONTINUOUS QUERIES",
    "CREATE CONTINUOUS QUERY cq1 ON cqdb BEGIN SELECT mean(v) INTO m_1m FROM m GROUP BY time(1m) END",
    "CREATE CONTINUOUS QUERY \"cq two\" ON cqdb RESAMPLE EVERY 30s FOR 5m BEGIN SELECT count(v) AS n, max(v) INTO cqdb.week.m_counts FROM m WHERE host = 'a' GROUP BY time(1m), host fill(0) END",
    "CREATE CONTINUOUS QUERY cq3 ON cqdb RESAMPLE FOR 2h BEGIN SELECT sum(v) INTO cqdb.autogen.:MEASUREMENT FROM /.*/ GROUP BY time(30m, 5m), * END",
    "CREATE CONTINUOUS QUERY cq4 ON cqdb RESAMPLE EVERY 2m BEGIN SELECT last(v) INTO other.autogen.copied FROM cqdb.week.m GROUP BY time(10m) tz('Europe/London') END",
    "SHOW CONTINUOUS QUERIES",
    // The same again is no change; another query under the name is refused.
    "CREATE CONTINUOUS QUERY cq1 ON cqdb BEGIN SELECT mean(v) INTO m_1m FROM m GROUP BY time(1m) END",
    "create continuous query cq1 on cqdb begin select MEAN(v) into m_1m from m group by time(1m) end",
    "CREATE CONTINUOUS QUERY cq1 ON cqdb BEGIN SELECT max(v) INTO m_1m FROM m GROUP BY time(1m) END",
    "CREATE CONTINUOUS QUERY cq5 ON nodb BEGIN SELECT mean(v) INTO x FROM m GROUP BY time(1m) END",
    "CREATE CONTINUOUS QUERY cq5 ON cqdb BEGIN SELECT mean(v) INTO cqdb.nope.x FROM m GROUP BY time(1m) END",
    "CREATE CONTINUOUS QUERY cq5 ON cqdb BEGIN SELECT mean(v) INTO x FROM nope.autogen.m GROUP BY time(1m) END",
    // Refused while parsing, as 1.x refuses them.
    "CREATE CONTINUOUS QUERY cq5 ON cqdb BEGIN SELECT mean(v) INTO x FROM m END",
    "CREATE CONTINUOUS QUERY cq5 ON cqdb BEGIN SELECT mean(v) FROM m GROUP BY time(1m) END",
    "CREATE CONTINUOUS QUERY cq5 ON cqdb BEGIN SELECT v INTO x FROM m GROUP BY time(1m) END",
    "CREATE CONTINUOUS QUERY cq5 ON cqdb RESAMPLE EVERY 1m FOR 30s BEGIN SELECT mean(v) INTO x FROM m GROUP BY time(1m) END",
    "DROP CONTINUOUS QUERY cq1 ON cqdb",
    "DROP CONTINUOUS QUERY cq1 ON cqdb",
    "DROP CONTINUOUS QUERY cq1 ON nodb",
    "SHOW CONTINUOUS QUERIES",
    // A database's queries go with it.
    "DROP DATABASE other",
    "SHOW CONTINUOUS QUERIES",
    "CREATE CONTINUOUS QUERY cq6 ON other BEGIN SELECT mean(v) INTO x FROM m GROUP BY time(1m) END",
    "DROP DATABASE cqdb",
    "SHOW CONTINUOUS QUERIES",
];

#[test]
fn continuous_query_statements_answer_as_influxdb_does() {
    let Some(both) = SideBySide::start() else {
        return;
    };
    both.create_database("cqdb");
    both.create_database("other");
    both.execute("CREATE RETENTION POLICY week ON cqdb DURATION 7d REPLICATION 1");
    let mut different = Vec::new();
    let mut refused = Vec::new();
    for q in STATEMENTS {
        let answers = both.servers().map(|a| {
            let r = query(a, "cqdb", q);
            (r.status, r.json())
        });
        if answers[0] != answers[1] {
            different.push(format!(
                "{q}\n  influxd: {} {}\n  ours:    {} {}",
                answers[0].0, answers[0].1, answers[1].0, answers[1].1
            ));
        }
        if answers[1].0 != 200 || answers[1].1["results"][0]["error"].is_string() {
            refused.push(*q);
        }
    }
    assert!(different.is_empty(), "{}", different.join("\n"));
    // Not a comparison of refusals alone.
    assert_eq!(refused.len(), 8, "{refused:#?}");
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as i64
}

const SECOND: i64 = 1_000_000_000;
const WINDOW: i64 = 2 * SECOND;
/// Points per window: one every 100 ms.
const PER_WINDOW: i64 = 20;

/// A node whose continuous queries are checked every 50 ms.
fn start(dir: &std::path::Path) -> Daemon {
    Daemon::start_with_config(dir, "[continuous_queries]\nrun_interval_seconds = 0.05\n")
}

/// The target's windows: (time, count) in time order.
fn counts(node: &Daemon) -> Vec<(i64, i64)> {
    let q = urlencode("SELECT n FROM per_window");
    let r = request(
        node.addr,
        "GET",
        &format!("/query?db=db&epoch=ns&q={q}"),
        &[],
        b"",
    );
    rows_of(&r)
        .iter()
        .map(|row| {
            let t = row[0].as_i64().expect("a time");
            (t, row[1].as_i64().expect("a count"))
        })
        .collect()
}

#[test]
fn runs_fill_the_target_and_a_restart_neither_skips_nor_repeats_a_window() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(dir.path());
    assert_eq!(query(node.addr, "", "CREATE DATABASE db").status, 200);
    // Points every 100 ms from a minute ago to two minutes ahead, written in advance so
    // that every window is complete when it is computed.
    let first = (now_nanos() / WINDOW - 30) * WINDOW;
    let mut lines = String::new();
    let mut t = first;
    while t < first + 90 * WINDOW {
        lines.push_str(&format!("m v=1 {t}\n"));
        t += WINDOW / PER_WINDOW;
    }
    let w = node.request("POST", "/write?db=db", lines.as_bytes());
    assert_eq!(w.status, 204, "{}", String::from_utf8_lossy(&w.body));
    first_result(&query(
        node.addr,
        "db",
        "CREATE CONTINUOUS QUERY per2s ON db BEGIN SELECT count(v) AS n INTO per_window FROM m GROUP BY time(2s) END",
    ));
    wait_until("three windows computed", || counts(&node).len() >= 3);
    let before = counts(&node);
    node.kill9();

    // Down for at least three windows.
    let down_until = now_nanos() + 3 * WINDOW;
    wait_until("three windows to pass", || now_nanos() > down_until);
    let node = start(dir.path());
    let restarted = now_nanos();
    wait_until("a window after the restart computed", || {
        counts(&node)
            .last()
            .is_some_and(|(t, _)| *t + WINDOW >= restarted)
    });
    let after = counts(&node);
    assert!(after.starts_with(&before), "{before:?} then {after:?}");
    // Every window from the first computed on, each once and complete: the ones the node
    // was down for too.
    for pair in after.windows(2) {
        assert_eq!(pair[1].0 - pair[0].0, WINDOW, "a window missing: {after:?}");
    }
    assert!(after.iter().all(|(_, n)| *n == PER_WINDOW), "{after:?}");
    assert!(after.len() >= before.len() + 3, "{before:?} then {after:?}");
    assert!(rows_of(&query(node.addr, "", "SHOW CONTINUOUS QUERIES"))
        .iter()
        .any(|r| r[0] == "per2s"),);
}
