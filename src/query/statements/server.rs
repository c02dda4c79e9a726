//! The statements about the server rather than its data: `SHOW QUERIES`, `KILL QUERY`,
//! `SHOW DIAGNOSTICS` and `SHOW STATS`. Each answers in 1.x's shape: its series names and
//! column names (sorted, as 1.x's Go maps give them), with this node's own values. A
//! series 1.x fills from a subsystem shardkeeper does not have (TSM settings, Go's
//! allocator) is left out rather than filled with made-up numbers.

use super::{series, Context};
use crate::query::error::QueryError;
use crate::query::format::{go_duration, rfc3339_nanos};
use crate::query::result::Series;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) fn show_queries(cx: &Context<'_>) -> Result<Vec<Series>, QueryError> {
    Ok(vec![series(
        "",
        &["qid", "query", "database", "duration", "status"],
        cx.tasks.rows(),
    )])
}

/// `KILL QUERY id [ON host]`: a single node is every host, so the host is not looked at,
/// as 1.x's open-source build does not look at it.
pub(crate) fn kill_query(cx: &Context<'_>, id: u64) -> Result<Vec<Series>, QueryError> {
    cx.tasks.kill(id)?;
    Ok(Vec::new())
}

/// `SHOW DIAGNOSTICS [FOR 'module']`; an unknown module answers nothing, as in 1.x.
pub(crate) fn show_diagnostics(
    cx: &Context<'_>,
    module: Option<&str>,
) -> Result<Vec<Series>, QueryError> {
    let config = cx.config;
    let now = SystemTime::now();
    let ns = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos().min(i64::MAX as u128) as i64)
    };
    let uptime = now
        .duration_since(cx.started)
        .map_or(0, |d| d.as_nanos().min(i64::MAX as u128) as i64);
    let bind = config.bind.to_string();
    let version = env!("CARGO_PKG_VERSION");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let all: Vec<(&str, Vec<(&str, Value)>)> = vec![
        (
            "build",
            vec![
                ("Branch", "unknown".into()),
                ("Build Time", "".into()),
                ("Commit", "unknown".into()),
                ("Version", format!("shardkeeper {version}").into()),
            ],
        ),
        (
            "config",
            vec![
                ("bind-address", bind.clone().into()),
                ("reporting-enabled", false.into()),
            ],
        ),
        (
            "config-coordinator",
            vec![
                ("log-queries-after", "0s".into()),
                ("max-concurrent-queries", 0.into()),
                ("max-select-buckets", config.max_select_buckets.into()),
                ("max-select-point", config.max_select_point.into()),
                ("max-select-series", config.max_select_series.into()),
                (
                    "query-timeout",
                    go_duration((config.query_timeout_seconds.min(1e9) * 1e9) as i64).into(),
                ),
                // A write is answered once durable; no timeout cuts it short.
                ("write-timeout", "0s".into()),
            ],
        ),
        (
            "config-cqs",
            vec![
                ("enabled", config.continuous_queries.enabled.into()),
                ("query-stats-enabled", false.into()),
                (
                    "run-interval",
                    go_duration(
                        (config.continuous_queries.run_interval_seconds.min(1e9) * 1e9) as i64,
                    )
                    .into(),
                ),
            ],
        ),
        (
            "config-httpd",
            vec![
                ("access-log-path", "".into()),
                ("bind-address", bind.into()),
                ("enabled", true.into()),
                ("https-enabled", config.https_enabled.into()),
                ("max-connection-limit", 0.into()),
                ("max-row-limit", 0.into()),
            ],
        ),
        (
            "config-meta",
            vec![(
                "dir",
                config.data_dir.join("control").display().to_string().into(),
            )],
        ),
        (
            "config-subscriber",
            subscriber_diagnostics(&config.subscriber),
        ),
        ("network", vec![("hostname", hostname().into())]),
        (
            "runtime",
            vec![
                ("GOARCH", go_arch().into()),
                ("GOMAXPROCS", threads.into()),
                ("GOOS", std::env::consts::OS.into()),
                ("version", "rust".into()),
            ],
        ),
        (
            "system",
            vec![
                ("PID", std::process::id().into()),
                ("currentTime", rfc3339_nanos(ns(now)).into()),
                ("started", rfc3339_nanos(ns(cx.started)).into()),
                ("uptime", go_duration(uptime).into()),
            ],
        ),
    ];
    Ok(all
        .into_iter()
        .filter(|(name, _)| module.is_none_or(|m| m == *name))
        .map(|(name, row)| {
            let (columns, values): (Vec<&str>, Vec<Value>) = row.into_iter().unzip();
            series(name, &columns, vec![values])
        })
        .collect())
}

/// 1.x's `config-subscriber`: only `enabled` when it is off.
fn subscriber_diagnostics(c: &crate::config::SubscriberConfig) -> Vec<(&'static str, Value)> {
    if !c.enabled {
        return vec![("enabled", false.into())];
    }
    vec![
        ("enabled", true.into()),
        (
            "http-timeout",
            go_duration(c.http_timeout().as_nanos().min(i64::MAX as u128) as i64).into(),
        ),
        ("write-buffer-size", c.write_buffer_size.into()),
        ("write-concurrency", c.write_concurrency.into()),
    ]
}

/// `SHOW STATS [FOR 'module']`: `queryExecutor` (this node's queries), a `database`
/// series per database (its measurements and series) and `subscriber` (the service's
/// counters, then each active subscription's destination's), as 1.x names them.
pub(crate) async fn show_stats(
    cx: &Context<'_>,
    module: Option<&str>,
) -> Result<Vec<Series>, QueryError> {
    let wanted = |name: &str| module.is_none_or(|m| m == name);
    let mut out = Vec::new();
    if wanted("queryExecutor") {
        out.push(series(
            "queryExecutor",
            &[
                "queriesActive",
                "queriesExecuted",
                "queriesFinished",
                "queryDurationNs",
                "recoveredPanics",
            ],
            vec![cx.tasks.stats()],
        ));
    }
    if wanted("database") {
        let databases: Vec<String> = cx
            .control
            .read(|c| c.catalog.databases.keys().cloned().collect())
            .await;
        use crate::query::parser::ast::CardinalityKind as K;
        for db in databases {
            let mut s = series(
                "database",
                &["numMeasurements", "numSeries"],
                vec![vec![
                    Value::from(super::cardinality::estimate_of(
                        cx.storage,
                        &db,
                        K::Measurement,
                    )),
                    Value::from(super::cardinality::estimate_of(cx.storage, &db, K::Series)),
                ]],
            );
            s.tags = Some(BTreeMap::from([("database".to_owned(), db)]));
            out.push(s);
        }
    }
    if wanted("subscriber") {
        let f = cx.subscriber.figures();
        out.push(series(
            "subscriber",
            &["createFailures", "pointsWritten", "writeFailures"],
            vec![vec![
                f.create_failures.into(),
                f.points_written.into(),
                f.write_failures.into(),
            ]],
        ));
        for d in f.destinations {
            let mut s = series(
                "subscriber",
                &["pointsWritten", "writeFailures"],
                vec![vec![d.points_written.into(), d.write_failures.into()]],
            );
            s.tags = Some(BTreeMap::from([
                ("database".to_owned(), d.database),
                ("destination".to_owned(), d.destination),
                ("mode".to_owned(), d.mode),
                ("name".to_owned(), d.name),
                ("retention_policy".to_owned(), d.retention_policy),
            ]));
            out.push(s);
        }
    }
    Ok(out)
}

/// Go's name for this machine's architecture (1.x's `GOARCH`).
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64",
        other => other,
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`, which it owns.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
