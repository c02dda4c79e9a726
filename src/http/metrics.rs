//! `GET /metrics`: the logs' figures in Prometheus' text format. They name every shard
//! and count its writes, so with authentication on they are an admin's to read (unless
//! `metrics_auth = false`); a scraper sends an admin's token as `Bearer`.

use super::Params;
use crate::log::LogFigures;
use crate::node::Node;
use actix_web::{web, HttpRequest, HttpResponse};
use std::fmt::Write;

pub(super) fn routes(r: &mut super::Routes) {
    use actix_web::http::Method;
    r.add(Method::GET, "/metrics", metrics);
}

async fn metrics(node: web::Data<Node>, req: HttpRequest, params: Params) -> HttpResponse {
    if node.config.metrics_auth {
        let allowed = match super::auth::authenticate_v2(&node, &req, &params).await {
            Ok(caller) => super::auth::require_admin(caller.as_ref(), "may not read metrics"),
            Err(e) => Err(e),
        };
        if let Err(e) = allowed {
            return e.v2();
        }
    }
    let mut logs = vec![(
        "control".to_owned(),
        node.control.log().figures(),
        node.control.log().failure().is_some(),
    )];
    logs.push((
        "data".to_owned(),
        node.storage.data_log().figures(),
        node.storage.data_log().failure().is_some(),
    ));
    let mut body = render(&logs);
    let quarantined = node.storage.quarantined();
    let _ = writeln!(
        body,
        "# HELP shardkeeper_shards_quarantined Shards that did not open at start-up (damaged); see /health.\n# TYPE shardkeeper_shards_quarantined gauge\nshardkeeper_shards_quarantined {}",
        quarantined.len()
    );
    render_replications(&mut body, &node.replications.figures().await);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(body)
}

/// Name, help text, and how to read the value from a log's figures.
type Gauge = (&'static str, &'static str, fn(&LogFigures) -> f64);

fn render(logs: &[(String, LogFigures, bool)]) -> String {
    let metrics: [Gauge; 6] = [
        (
            "shardkeeper_log_segments",
            "Segment files of the log.",
            |f| f.segments as f64,
        ),
        (
            "shardkeeper_log_bytes",
            "Bytes of records and headers in the log's segments.",
            |f| f.bytes as f64,
        ),
        (
            "shardkeeper_log_durable_lsn",
            "The last durable log sequence number.",
            |f| f.durable_lsn as f64,
        ),
        (
            "shardkeeper_log_commits_total",
            "fdatasync-backed commits since start.",
            |f| f.commits as f64,
        ),
        (
            "shardkeeper_log_records_total",
            "Records committed since start.",
            |f| f.records_committed as f64,
        ),
        (
            "shardkeeper_log_records_per_commit",
            "Average records per commit since start.",
            |f| f.records_per_commit,
        ),
    ];
    let mut out = String::new();
    for (name, help, value) in metrics {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (log, figures, _) in logs {
            let _ = writeln!(out, "{name}{{log=\"{log}\"}} {}", value(figures));
        }
    }
    let _ = writeln!(out, "# HELP shardkeeper_log_failed 1 when the log refuses writes after an I/O failure.\n# TYPE shardkeeper_log_failed gauge");
    for (log, _, failed) in logs {
        let _ = writeln!(
            out,
            "shardkeeper_log_failed{{log=\"{log}\"}} {}",
            u8::from(*failed)
        );
    }
    out
}

/// Each replication's queue, deliveries, drops and failures, labelled by its id and name.
fn render_replications(out: &mut String, all: &[crate::replication::ReplicationFigures]) {
    let label = |f: &crate::replication::ReplicationFigures| {
        format!(
            "replication=\"{}\",name=\"{}\"",
            f.id,
            f.name.replace('\\', "\\\\").replace('"', "\\\"")
        )
    };
    type Value = fn(&crate::replication::ReplicationFigures) -> f64;
    let simple: [(&str, &str, &str, Value); 6] = [
        (
            "shardkeeper_replication_queue_bytes",
            "gauge",
            "Bytes of the bucket's records the replication holds, not yet confirmed by the remote.",
            |f| f.queued_bytes as f64,
        ),
        (
            "shardkeeper_replication_sent_points_total",
            "counter",
            "Points the remote confirmed (204).",
            |f| f.sent_points as f64,
        ),
        (
            "shardkeeper_replication_sent_bytes_total",
            "counter",
            "Bytes of data-log records the remote confirmed.",
            |f| f.sent_bytes as f64,
        ),
        (
            "shardkeeper_replication_lag_seconds",
            "gauge",
            "Age of the oldest point not yet delivered (0: none queued).",
            |f| f.lag_seconds,
        ),
        (
            "shardkeeper_replication_backoff_seconds",
            "gauge",
            "Wait before the next attempt (0: none).",
            |f| f.backoff_seconds,
        ),
        (
            "shardkeeper_replication_stopped",
            "gauge",
            "1 while the replication waits for an operator after a batch refused for good.",
            |f| f64::from(u8::from(f.stopped)),
        ),
    ];
    for (name, kind, help, value) in simple {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for f in all {
            let _ = writeln!(out, "{name}{{{}}} {}", label(f), value(f));
        }
    }
    let name = "shardkeeper_replication_dropped_points_total";
    let _ = writeln!(
        out,
        "# HELP {name} Points dropped undelivered, by reason.\n# TYPE {name} counter"
    );
    for f in all {
        for (reason, n) in f.dropped_points {
            let _ = writeln!(out, "{name}{{{},reason=\"{reason}\"}} {n}", label(f));
        }
    }
    let name = "shardkeeper_replication_failures_total";
    let _ = writeln!(out, "# HELP {name} Failed attempts since start, by the remote's HTTP status (0: network error).\n# TYPE {name} counter");
    for f in all {
        for (status, n) in &f.failures {
            let _ = writeln!(out, "{name}{{{},status=\"{status}\"}} {n}", label(f));
        }
    }
}
