//! `shardkeeper bench query`: the dashboard queries timed against a node and a baseline, each
//! answer's rows reported (so that two servers are seen to answer alike), and the CPU each
//! server spent per query when it runs on this machine.

mod common;
use common::{TempNode, BIN};
use std::process::Command;

fn bench(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).arg("bench").args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_query_is_timed_on_both_servers_with_the_same_rows_and_each_servers_cpu() {
    let (node, baseline) = (TempNode::start(""), TempNode::start(""));
    let urls: Vec<String> = [&node, &baseline]
        .iter()
        .map(|n| format!("http://{}", n.daemon.addr))
        .collect();
    for url in &urls {
        let (ok, out, err) = bench(&["ingest", "--url", url, "--points", "20000"]);
        assert!(ok, "{out}\n{err}");
    }
    let (ok, out, err) = bench(&[
        "query",
        "--url",
        &urls[0],
        "--baseline",
        &urls[1],
        "--rounds",
        "3",
        "--pause-ms",
        "0.5",
    ]);
    assert!(ok, "{out}\n{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["pause_ms"], 0.5, "{report}");
    let queries = report["queries"].as_array().unwrap();
    assert_eq!(queries.len(), 9, "{report}");
    for q in queries {
        assert_eq!(q["rows"], q["baseline_rows"], "{q}");
        assert!(q["p50_ms"].as_f64().unwrap() > 0.0, "{q}");
        assert!(q["ratio"].as_f64().unwrap() > 0.0, "{q}");
        // Alternating A B B A ...: each server's requests follow its own and the other's.
        for group in ["after_own", "after_other"] {
            assert!(q[group]["p50_ms"].as_f64().unwrap() > 0.0, "{q}");
            assert!(q[group]["baseline_p50_ms"].as_f64().unwrap() > 0.0, "{q}");
            assert!(q[group]["ratio"].as_f64().unwrap() > 0.0, "{q}");
        }
        // Both servers are processes of this machine: their CPU is read from /proc.
        assert!(q["server_cpu_us"].as_f64().unwrap() > 0.0, "{q}");
        assert!(q["baseline_server_cpu_us"].as_f64().unwrap() > 0.0, "{q}");
    }
    let rows = |name: &str| {
        queries
            .iter()
            .find(|q| q["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {report}"))["rows"]
            .as_u64()
            .unwrap()
    };
    // 20,000 points of 1,000 hosts: every host has a tag value and a last point.
    assert_eq!(rows("SHOW TAG VALUES"), 1000);
    assert_eq!(rows("count of all points"), 1);
    assert_eq!(rows("last point of one host"), 1);
    assert_eq!(rows("/ping over keep-alive (no query)"), 0);
}

#[test]
fn a_failing_query_or_a_tls_url_is_said_not_timed() {
    let node = TempNode::start("");
    let url = format!("http://{}", node.daemon.addr);
    // No database `benchmark` yet: the first query's error is the bench's.
    let (ok, out, err) = bench(&["query", "--url", &url, "--rounds", "1"]);
    assert!(!ok, "{out}");
    assert!(err.contains("database not found"), "{err}");
    let (ok, _, err) = bench(&["query", "--url", "https://127.0.0.1:1", "--rounds", "1"]);
    assert!(!ok);
    assert!(err.contains("plain http://"), "{err}");
}
