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
