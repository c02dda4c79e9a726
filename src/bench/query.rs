//! `bench query`: the queries dashboards send, timed on the data of `bench ingest`, against
//! one URL or, alternating round by round, against it and a baseline (e.g. influxd) so that
//! both see the same machine at the same moments.

use super::ingest::START_NS;
use super::Latencies;
use crate::client::{ClientOptions, InfluxClient};
use serde::Serialize;
use std::time::Instant;

pub(crate) struct QueryBenchOptions {
    pub url: String,
    pub baseline: Option<String>,
    pub db: String,
    pub rounds: usize,
}

#[derive(Debug, Serialize)]
pub(crate) struct QueryFigures {
    pub name: &'static str,
    pub query: String,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Rows in the answer (of every series), to show both servers answered the same.
    pub rows: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_p50_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_rows: Option<usize>,
    /// p50 over the baseline's p50: below 1 is faster than the baseline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
}

#[derive(Debug, Serialize)]
pub(crate) struct QueryReport {
    pub url: String,
    pub baseline: Option<String>,
    pub db: String,
    pub rounds: usize,
    pub queries: Vec<QueryFigures>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum QueryBenchError {
    #[error("{url}: {query}: {reason}")]
    Failed {
        url: String,
        query: String,
        reason: String,
    },
}

/// The workload: times fall inside the range `bench ingest` writes (1M points: 1000 hosts
/// every 10 s for 10,000 s from START_NS).
pub(crate) fn workload() -> Vec<(&'static str, String)> {
    let t0 = START_NS as i64;
    let hour = 3_600_000_000_000i64;
    let eight: Vec<String> = (0..8).map(|h| format!("hostname = 'host_{h}'")).collect();
    vec![
        ("count of all points", "SELECT count(usage_user) FROM cpu".to_string()),
        (
            "last point of one host",
            "SELECT * FROM cpu WHERE hostname = 'host_7' ORDER BY time DESC LIMIT 1".to_string(),
        ),
        (
            "one host, 1 h, mean per 5 min",
            format!(
                "SELECT mean(usage_user) FROM cpu WHERE hostname = 'host_7' AND time >= {t0} AND time < {} GROUP BY time(5m)",
                t0 + hour
            ),
        ),
        (
            "8 hosts, 12 h, max per hour",
            format!(
                "SELECT max(usage_user) FROM cpu WHERE ({}) AND time >= {t0} AND time < {} GROUP BY time(1h)",
                eight.join(" OR "),
                t0 + 12 * hour
            ),
        ),
        (
            "all hosts, 1 h, mean per host",
            format!(
                "SELECT mean(usage_user) FROM cpu WHERE time >= {t0} AND time < {} GROUP BY hostname",
                t0 + hour
            ),
        ),
        (
            "SHOW TAG VALUES",
            "SHOW TAG VALUES FROM cpu WITH KEY = hostname".to_string(),
        ),
        (
            "10 hosts by regex, 1 h, max per 5 min",
            format!(
                "SELECT max(usage_user) FROM cpu WHERE hostname =~ /^host_1[0-9]$/ AND time >= {t0} AND time < {} GROUP BY time(5m)",
                t0 + hour
            ),
        ),
        (
            // What a request costs beyond its work: the smallest answer, on a kept-alive
            // connection (the client keeps its connections).
            "per-request overhead: last of one series",
            "SELECT last(usage_user) FROM cpu WHERE hostname = 'host_7'".to_string(),
        ),
        (
            // The floor under the row above: a request with no query at all.
            "/ping over keep-alive (no query)",
            PING.to_string(),
        ),
    ]
}

/// Stands in the workload for a `GET /ping` rather than a query.
pub(crate) const PING: &str = "GET /ping";

pub(crate) fn run(opts: &QueryBenchOptions) -> Result<QueryReport, QueryBenchError> {
    crate::client::block_on(run_async(opts))
}

async fn run_async(opts: &QueryBenchOptions) -> Result<QueryReport, QueryBenchError> {
    let connect = |url: &str| {
        InfluxClient::new(url, ClientOptions::default()).map_err(|e| QueryBenchError::Failed {
            url: url.to_owned(),
            query: String::new(),
            reason: e.to_string(),
        })
    };
    let node = connect(&opts.url)?;
    let baseline = opts.baseline.as_deref().map(connect).transpose()?;
    let mut queries = Vec::new();
    for (name, query) in workload() {
        let (mut mine, mut theirs) = (Latencies::default(), Latencies::default());
        let (mut rows, mut baseline_rows) = (0, None);
        for round in 0..opts.rounds.max(1) {
            // Alternate who goes first, so neither always finds the other's caches warm.
            let mut order = vec![(&node, false)];
            if let Some(b) = &baseline {
                order.insert(round % 2, (b, true));
            }
            for (client, is_baseline) in order {
                let (ms, n) = if query == PING {
                    time_ping(client).await?
                } else {
                    time_query(client, &opts.db, &in_round(&query, round)).await?
                };
                if is_baseline {
                    theirs.record(ms);
                    baseline_rows = Some(n);
                } else {
                    mine.record(ms);
                    rows = n;
                }
            }
        }
        let p50 = mine.percentile(50.0);
        let baseline_p50 = opts.baseline.as_ref().map(|_| theirs.percentile(50.0));
        queries.push(QueryFigures {
            name,
            query,
            p50_ms: p50,
            p99_ms: mine.percentile(99.0),
            rows,
            baseline_p50_ms: baseline_p50,
            baseline_rows,
            ratio: baseline_p50.filter(|b| *b > 0.0).map(|b| p50 / b),
        });
    }
    Ok(QueryReport {
        url: opts.url.clone(),
        baseline: opts.baseline.clone(),
        db: opts.db.clone(),
        rounds: opts.rounds,
        queries,
    })
}

/// `query` as sent in `round`: one with an end time ends `round` nanoseconds earlier, where
/// no point lies (the answer is the same), so that each round sends a text not seen before,
/// as a dashboard of absolute times does at each refresh (a node may keep the parses of
/// texts it has seen).
fn in_round(query: &str, round: usize) -> String {
    const END: &str = "AND time < ";
    let Some(at) = query.find(END).map(|at| at + END.len()) else {
        return query.to_owned();
    };
    let digits = query[at..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(query.len(), |n| at + n);
    match query[at..digits].parse::<i64>() {
        Ok(end) => format!("{}{}{}", &query[..at], end - round as i64, &query[digits..]),
        Err(_) => query.to_owned(),
    }
}

/// Milliseconds for one `/ping` (no rows).
async fn time_ping(client: &InfluxClient) -> Result<(f64, usize), QueryBenchError> {
    let started = Instant::now();
    client.ping().await.map_err(|e| QueryBenchError::Failed {
        url: client.base_url().to_owned(),
        query: PING.to_owned(),
        reason: e.to_string(),
    })?;
    Ok((started.elapsed().as_secs_f64() * 1000.0, 0))
}

/// Milliseconds for one query and the rows of its answer.
async fn time_query(
    client: &InfluxClient,
    db: &str,
    query: &str,
) -> Result<(f64, usize), QueryBenchError> {
    let failed = |reason: String| QueryBenchError::Failed {
        url: client.base_url().to_owned(),
        query: query.to_owned(),
        reason,
    };
    let started = Instant::now();
    let body = client
        .query_body(Some(db), query)
        .await
        .map_err(|e| failed(e.to_string()))?;
    // Timed to the answer's last byte: reading it is the client's work, not the server's.
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let answer = client
        .query_answer(&body)
        .map_err(|e| failed(e.to_string()))?;
    let result = answer.results.first().cloned().unwrap_or_default();
    if let Some(e) = result.error {
        return Err(failed(e));
    }
    Ok((ms, result.rows()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_round_sends_a_new_text_of_the_same_answer() {
        let q = "SELECT max(v) FROM cpu WHERE time >= 10 AND time < 3600 GROUP BY time(5m)";
        assert_eq!(in_round(q, 0), q);
        assert_eq!(
            in_round(q, 7),
            "SELECT max(v) FROM cpu WHERE time >= 10 AND time < 3593 GROUP BY time(5m)"
        );
        let no_end = "SELECT last(v) FROM cpu WHERE host = 'a'";
        assert_eq!(in_round(no_end, 3), no_end);
        let ranged = workload()
            .into_iter()
            .filter(|(_, q)| in_round(q, 1) != *q)
            .count();
        assert_eq!(ranged, 4, "the four queries with a time range vary");
    }
}
