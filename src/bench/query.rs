//! `bench query`: the queries dashboards send, timed on the data of `bench ingest`, against
//! one URL or, alternating round by round, against it and a baseline (e.g. influxd) so that
//! both see the same machine at the same moments.

use super::http1::Connection;
use super::ingest::START_NS;
use super::server_cpu::ServerProcess;
use super::Latencies;
use crate::client::QueryAnswer;
use serde::Serialize;
use std::time::Instant;

pub(crate) struct QueryBenchOptions {
    pub url: String,
    pub baseline: Option<String>,
    pub db: String,
    pub rounds: usize,
    /// Idle time before each timed request.
    pub pause: std::time::Duration,
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
    /// Microseconds of CPU (user and kernel, every thread) the server spent per round of
    /// this query, when it runs on this machine: its cost without the client's and the
    /// loopback's, which the wall times of both servers share.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_server_cpu_us: Option<f64>,
    /// server_cpu_us over baseline_server_cpu_us.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_ratio: Option<f64>,
    /// With a baseline, the p50s of the requests that came right after the same server's
    /// own previous one, and of those that came after the other server's: each server
    /// gets half of each. The two groups lie apart (the other server's request takes
    /// the caches), so the overall p50 falls at the edge between them and moves with any
    /// noise; each group's p50 does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_own: Option<GroupFigures>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_other: Option<GroupFigures>,
}

/// One group's p50 on each server, and their ratio.
#[derive(Debug, Serialize)]
pub(crate) struct GroupFigures {
    pub p50_ms: f64,
    pub baseline_p50_ms: f64,
    pub ratio: f64,
}

impl GroupFigures {
    fn of(mine: &Latencies, theirs: &Latencies) -> Option<GroupFigures> {
        if mine.is_empty() || theirs.is_empty() {
            return None;
        }
        let (p50, baseline_p50) = (mine.percentile(50.0), theirs.percentile(50.0));
        Some(GroupFigures {
            p50_ms: p50,
            baseline_p50_ms: baseline_p50,
            ratio: p50 / baseline_p50,
        })
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct QueryReport {
    pub url: String,
    pub baseline: Option<String>,
    pub db: String,
    pub rounds: usize,
    /// The pause before each timed request.
    pub pause_ms: f64,
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

/// Times the workload. Each server is asked over one kept-alive connection by a blocking
/// client of the bench's own ([`super::http1`]: the request written and the answer read on
/// this thread), so that what is timed is the server and the loopback, not a client's
/// hand-offs between threads or its connection pool's checks, which cost more than a small
/// query (70 µs a request for an async client here, 25-30 µs for ureq, on both servers).
pub(crate) fn run(opts: &QueryBenchOptions) -> Result<QueryReport, QueryBenchError> {
    let mut servers = vec![Timer::new(&opts.url)?];
    if let Some(baseline) = &opts.baseline {
        servers.push(Timer::new(baseline)?);
    }
    let cpu_of = |timer: Option<&Timer>| timer.and_then(|t| t.process).and_then(|p| p.cpu_ns());
    let rounds = opts.rounds.max(1);
    let per_round_us = |before: Option<u64>, after: Option<u64>| {
        Some(after?.saturating_sub(before?) as f64 / 1000.0 / rounds as f64)
    };
    let mut queries = Vec::new();
    // Which server the last timed request went to.
    let mut previous = None;
    for (name, query) in workload() {
        let mut latencies = [Latencies::default(), Latencies::default()];
        // Per server: [after another server's request, after its own].
        let mut by_previous: [[Latencies; 2]; 2] = Default::default();
        let mut rows = [0, 0];
        let cpu_before = (cpu_of(servers.first()), cpu_of(servers.get(1)));
        for round in 0..rounds {
            // Alternate who goes first, so neither always finds the other's caches warm.
            let order: &[usize] = match (servers.len(), round % 2) {
                (1, _) => &[0],
                (_, 0) => &[1, 0],
                _ => &[0, 1],
            };
            for &i in order {
                std::thread::sleep(opts.pause);
                let timer = &mut servers[i];
                let (ms, n) = if query == PING {
                    (timer.ping()?, 0)
                } else {
                    timer.query(&opts.db, &in_round(&query, round))?
                };
                latencies[i].record(ms);
                by_previous[i][usize::from(previous == Some(i))].record(ms);
                previous = Some(i);
                rows[i] = n;
            }
        }
        let server_cpu_us = per_round_us(cpu_before.0, cpu_of(servers.first()));
        let baseline_server_cpu_us = per_round_us(cpu_before.1, cpu_of(servers.get(1)));
        let p50 = latencies[0].percentile(50.0);
        let baseline_p50 = opts
            .baseline
            .as_ref()
            .map(|_| latencies[1].percentile(50.0));
        queries.push(QueryFigures {
            name,
            query,
            p50_ms: p50,
            p99_ms: latencies[0].percentile(99.0),
            rows: rows[0],
            baseline_p50_ms: baseline_p50,
            baseline_rows: opts.baseline.as_ref().map(|_| rows[1]),
            ratio: baseline_p50.filter(|b| *b > 0.0).map(|b| p50 / b),
            server_cpu_us,
            baseline_server_cpu_us,
            cpu_ratio: server_cpu_us
                .zip(baseline_server_cpu_us.filter(|b| *b > 0.0))
                .map(|(mine, theirs)| mine / theirs),
            after_own: GroupFigures::of(&by_previous[0][1], &by_previous[1][1]),
            after_other: GroupFigures::of(&by_previous[0][0], &by_previous[1][0]),
        });
    }
    Ok(QueryReport {
        url: opts.url.clone(),
        baseline: opts.baseline.clone(),
        db: opts.db.clone(),
        rounds: opts.rounds,
        pause_ms: opts.pause.as_secs_f64() * 1000.0,
        queries,
    })
}

/// One server's connection and, when it runs on this machine, its process.
struct Timer {
    url: String,
    /// The URL's path, before `/ping` and `/query`.
    prefix: String,
    connection: Connection,
    process: Option<ServerProcess>,
}

impl Timer {
    fn new(url: &str) -> Result<Timer, QueryBenchError> {
        let refused = |reason: &str| QueryBenchError::Failed {
            url: url.to_owned(),
            query: String::new(),
            reason: reason.to_owned(),
        };
        let Some(rest) = url.strip_prefix("http://") else {
            return Err(refused(
                "bench query times plain http:// listeners (a TLS handshake library \
                 would be timed with the server)",
            ));
        };
        let (authority, prefix) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.is_empty() {
            return Err(refused("no host in the URL"));
        }
        // A URL without a port means HTTP's.
        let authority = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| !p.contains(']'))
        {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(Timer {
            url: url.to_owned(),
            prefix: prefix.trim_end_matches('/').to_owned(),
            connection: Connection::new(&authority, MAX_ANSWER_BYTES),
            process: ServerProcess::of_url(url),
        })
    }

    fn failed(&self, query: &str, reason: impl ToString) -> QueryBenchError {
        QueryBenchError::Failed {
            url: self.url.clone(),
            query: query.to_owned(),
            reason: reason.to_string(),
        }
    }

    /// Milliseconds for one `GET /ping`.
    fn ping(&mut self) -> Result<f64, QueryBenchError> {
        let path = format!("{}/ping", self.prefix);
        let started = Instant::now();
        let status = match self.connection.send("GET", &path, None) {
            Ok(answer) => answer.status,
            Err(e) => return Err(self.failed(PING, e)),
        };
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        if !(200..300).contains(&status) {
            return Err(self.failed(PING, format!("answered {status}")));
        }
        Ok(ms)
    }

    /// Milliseconds for one query (`POST /query`, as a form) to its answer's last byte, and
    /// the rows of the answer.
    fn query(&mut self, db: &str, query: &str) -> Result<(f64, usize), QueryBenchError> {
        let path = format!("{}/query", self.prefix);
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("db", db)
            .append_pair("q", query)
            .finish();
        let started = Instant::now();
        let sent = self.connection.send("POST", &path, Some(form.as_bytes()));
        // Timed to the answer's last byte: reading it is the client's work, not the server's.
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let (status, parsed) = match sent {
            Ok(answer) => (
                answer.status,
                serde_json::from_slice::<QueryAnswer>(answer.body),
            ),
            Err(e) => return Err(self.failed(query, e)),
        };
        let answer = parsed.map_err(|e| {
            self.failed(
                query,
                format!("answered {status}, not a query answer ({e})"),
            )
        })?;
        let result = answer.results.first().cloned().unwrap_or_default();
        if let Some(e) = result.error {
            return Err(self.failed(query, e));
        }
        Ok((ms, result.rows()))
    }
}

/// The largest answer read: the workload's largest is tens of kilobytes.
const MAX_ANSWER_BYTES: usize = 64 << 20;

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
