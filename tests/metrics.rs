//! `/metrics` as Prometheus reads it: parsed by the Python `prometheus_client`'s
//! OpenMetrics and text parsers (tests/clients/scrape_metrics.py), every series the README
//! lists present, and the counters moving with the work the node does.

mod common;

use common::{python_with, query, request, run_client_script, Daemon};
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;

/// Sample name and sorted labels (`name{k="v",...}`) to value.
type Samples = HashMap<String, f64>;

fn scrape(addr: SocketAddr) -> Samples {
    let r = request(addr, "GET", "/metrics", &[], b"");
    assert_eq!(r.status, 200);
    assert!(
        r.header("Content-Type")
            .is_some_and(|t| t.starts_with("application/openmetrics-text")),
        "{r:?}"
    );
    let out = run_client_script("scrape_metrics.py", &[], &r.body);
    let samples: Vec<serde_json::Value> = serde_json::from_slice(&out).unwrap();
    samples
        .into_iter()
        .map(|s| {
            let mut labels: Vec<String> = s["labels"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
                .collect();
            labels.sort();
            let key = format!("{}{{{}}}", s["name"].as_str().unwrap(), labels.join(","));
            (key, s["value"].as_f64().unwrap())
        })
        .collect()
}

fn value(samples: &Samples, key: &str) -> f64 {
    *samples
        .get(key)
        .unwrap_or_else(|| panic!("no series {key}; have: {:#?}", sorted_keys(samples)))
}

fn sorted_keys(samples: &Samples) -> Vec<&String> {
    let mut keys: Vec<_> = samples.keys().collect();
    keys.sort();
    keys
}

#[test]
fn metrics_parse_as_prometheus_reads_them_and_move_with_the_work() {
    if !python_with("prometheus_client") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let before = scrape(d.addr);
    for key in [
        "shardkeeper_build_info{influxdb_version=1.8.10,version=0.1.0}",
        "shardkeeper_shards_open{}",
        "shardkeeper_shards_cold{}",
        "shardkeeper_shards_quarantined{}",
        "shardkeeper_heads_bytes{}",
        "shardkeeper_log_segments{log=data}",
        "shardkeeper_log_commit_duration_seconds_count{log=control}",
        "shardkeeper_log_commit_duration_seconds_bucket{le=+Inf,log=data}",
        "shardkeeper_backups_total{operation=restore,outcome=failed}",
    ] {
        value(&before, key);
    }
    assert_eq!(
        value(
            &before,
            "shardkeeper_build_info{influxdb_version=1.8.10,version=0.1.0}"
        ),
        1.0
    );

    assert_eq!(query(d.addr, "", "CREATE DATABASE m").status, 200);
    let good = d.request(
        "POST",
        "/write?db=m",
        b"cpu v=1 1000000000\ncpu v=2 2000000000\ncpu v=3 3000000000",
    );
    assert_eq!(good.status, 204);
    // One line that does not parse, one field of the wrong type: partial writes.
    let bad_line = d.request("POST", "/write?db=m", b"cpu v=4 4000000000\ncpu v=");
    assert_eq!(bad_line.status, 400);
    let conflict = d.request("POST", "/write?db=m", b"cpu v=\"text\" 5000000000");
    assert_eq!(conflict.status, 400);
    assert_eq!(query(d.addr, "m", "SELECT v FROM cpu").status, 200);
    assert_eq!(d.request("GET", "/api/v2/backup/kv", b"").status, 200);
    assert_eq!(d.request("GET", "/ping", b"").status, 204);
    let after = scrape(d.addr);

    let grew = |key: &str, by: f64| {
        let (b, a) = (before.get(key).copied().unwrap_or(0.0), value(&after, key));
        assert!(a - b >= by, "{key}: {b} -> {a}, expected +{by}");
    };
    grew("shardkeeper_points_written_total{}", 4.0);
    grew("shardkeeper_points_rejected_total{reason=parse}", 1.0);
    grew(
        "shardkeeper_points_rejected_total{reason=field_type_conflict}",
        1.0,
    );
    grew(
        "shardkeeper_http_requests_total{endpoint=/write,method=POST,status=204}",
        1.0,
    );
    grew(
        "shardkeeper_http_requests_total{endpoint=/write,method=POST,status=400}",
        2.0,
    );
    grew(
        "shardkeeper_http_requests_total{endpoint=/ping,method=GET,status=204}",
        1.0,
    );
    grew(
        "shardkeeper_http_request_duration_seconds_count{endpoint=/write,method=POST}",
        3.0,
    );
    grew(
        "shardkeeper_http_request_duration_seconds_bucket{endpoint=/ping,le=+Inf,method=GET}",
        1.0,
    );
    grew("shardkeeper_queries_total{kind=create}", 1.0);
    grew("shardkeeper_queries_total{kind=select}", 1.0);
    grew("shardkeeper_query_duration_seconds_count{kind=select}", 1.0);
    grew("shardkeeper_log_commits_total{log=data}", 2.0);
    grew("shardkeeper_log_committed_bytes_total{log=data}", 1.0);
    grew(
        "shardkeeper_log_commit_duration_seconds_count{log=data}",
        2.0,
    );
    grew(
        "shardkeeper_log_commit_duration_seconds_count{log=control}",
        2.0,
    );
    grew(
        "shardkeeper_backups_total{operation=backup,outcome=ok}",
        1.0,
    );
    assert_eq!(value(&after, "shardkeeper_shards_open{}"), 1.0);
    assert!(value(&after, "shardkeeper_heads_bytes{}") > 0.0);
    // The commit histogram's buckets are cumulative, ending with every commit.
    assert_eq!(
        value(
            &after,
            "shardkeeper_log_commit_duration_seconds_bucket{le=+Inf,log=data}"
        ),
        value(
            &after,
            "shardkeeper_log_commit_duration_seconds_count{log=data}"
        )
    );
    assert!(
        value(
            &after,
            "shardkeeper_log_commit_duration_seconds_sum{log=data}"
        ) > 0.0
    );
    d.stop();
}

/// `/metrics` of a node that has done a little of everything: labelled families show once
/// they have a series (a request, a rejected line, a query).
fn metrics_after_some_work(d: &Daemon) -> String {
    assert_eq!(query(d.addr, "", "CREATE DATABASE m").status, 200);
    assert_eq!(
        d.request("POST", "/write?db=m", b"cpu v=1\ncpu v=").status,
        400
    );
    String::from_utf8(d.request("GET", "/metrics", b"").body).unwrap()
}

/// Every name the README documents is exported, and every exported family is documented,
/// under the name a query uses (`_total` for a counter, `_info` for the build; a
/// histogram's `_bucket`, `_sum` and `_count` under its own).
#[test]
fn the_readme_lists_every_exported_metric() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let text = metrics_after_some_work(&d);
    let exported: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, kind)| match kind {
            "counter" => format!("{name}_total"),
            "info" => format!("{name}_info"),
            _ => name.to_owned(),
        })
        .collect();
    let readme = include_str!("../README.md");
    let documented: BTreeSet<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .filter(|name| name.starts_with("shardkeeper_"))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        exported, documented,
        "README (Operations: metrics) and /metrics differ"
    );
}

/// deploy/grafana/shardkeeper.json: every panel queries series the node exports, and
/// every exported family has a panel.
#[test]
fn every_dashboard_panel_queries_exported_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let text = metrics_after_some_work(&d);
    let series: BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let dashboard: serde_json::Value =
        serde_json::from_str(include_str!("../deploy/grafana/shardkeeper.json")).unwrap();
    let names = regex::Regex::new(r"shardkeeper_[a-z_]+").unwrap();
    let mut used = BTreeSet::new();
    let panels = dashboard["panels"].as_array().unwrap();
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let targets = panel["targets"].as_array().unwrap();
        assert!(
            !targets.is_empty(),
            "a panel without a query: {}",
            panel["title"]
        );
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            let found: Vec<&str> = names.find_iter(expr).map(|m| m.as_str()).collect();
            assert!(
                !found.is_empty(),
                "{}: {expr} names no metric",
                panel["title"]
            );
            for name in found {
                assert!(
                    series.contains(name),
                    "{}: {name} is not exported",
                    panel["title"]
                );
                used.insert(name.to_owned());
            }
        }
    }
    let variable = dashboard["templating"]["list"][1]["definition"]
        .as_str()
        .unwrap();
    assert!(variable.contains("shardkeeper_build_info"), "{variable}");
    let family = |name: &str| {
        ["_bucket", "_sum", "_count"]
            .iter()
            .fold(name.to_owned(), |n, suffix| {
                n.trim_end_matches(suffix).to_owned()
            })
    };
    let exported: BTreeSet<String> = series.iter().map(|s| family(s)).collect();
    let shown: BTreeSet<String> = used.iter().map(|s| family(s)).collect();
    assert_eq!(exported, shown, "exported families without a panel");
}
