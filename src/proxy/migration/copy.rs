//! Copying one measurement of one database from a source backend to its destinations,
//! retention policy by retention policy (in name order), in time windows of about
//! `migrate_batch` points: the window is counted first (`SELECT COUNT(*)`) and halved
//! while it holds more than twice that, doubled after one that held less than half. Each
//! window is read with `GROUP BY *` (tags apart from fields), written back as line
//! protocol with each field's type (`SHOW FIELD KEYS`), and its end recorded as the
//! unit's progress: a resumed copy starts at the window after the last one recorded, and
//! the proxy's memory holds one window whatever the measurement's size.
//!
//! Values are taken from the answer's JSON text as written (never through a float
//! parser that may round): an integer is copied digit for digit, a float parsed exactly
//! once. A destination that lacks the database or the retention policy gets them (as
//! the source defines the policy) and the write is sent again.

use super::Recorder;
use crate::client::{ClientError, InfluxClient, Method, Retry, WriteTarget};
use crate::line_protocol::{escape_field_key, escape_measurement, escape_tag, Precision};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub(crate) enum CopyError {
    #[error("source {0}")]
    Source(ClientError),
    #[error("destination {0}")]
    Destination(ClientError),
    #[error("source {url}: {reason}")]
    Answer { url: String, reason: String },
    #[error("recording progress: {0}")]
    Journal(#[from] crate::log::LogError),
}

/// Attempts of one request that fails in a way that may pass (a backend restarting, a
/// timeout) before the unit is given up.
const MAX_ATTEMPTS: u32 = 10;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Where a copy stands: every point of the retention policies before `rp`, and of `rp`
/// before `upto`, is copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Position {
    pub rp: String,
    pub upto: i64,
    pub points: u64,
}

pub(crate) struct Copy<'a> {
    pub source: &'a InfluxClient,
    pub destinations: Vec<&'a InfluxClient>,
    pub db: &'a str,
    pub measurement: &'a str,
    /// Only points at or after this time.
    pub since: Option<i64>,
    /// Points a window aims to hold.
    pub batch: u64,
    /// Most lines in one write.
    pub flush_size: usize,
}

#[derive(Debug, Clone)]
struct Policy {
    name: String,
    duration: String,
    shard_duration: String,
    replicas: u64,
    default: bool,
}

/// A field's type, as `SHOW FIELD KEYS` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldType {
    Float,
    Integer,
    Unsigned,
    String,
    Boolean,
}

impl FieldType {
    /// A field of several types (over shards) is read as the first of these that it has,
    /// as InfluxDB casts it (influx-proxy's `reformFieldKeys`).
    const ORDER: [(&'static str, FieldType); 5] = [
        ("float", FieldType::Float),
        ("integer", FieldType::Integer),
        ("unsigned", FieldType::Unsigned),
        ("string", FieldType::String),
        ("boolean", FieldType::Boolean),
    ];
}

#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(default, borrow)]
    results: Vec<StatementAnswer<'a>>,
}

#[derive(Deserialize)]
struct StatementAnswer<'a> {
    #[serde(default, borrow)]
    series: Vec<Series<'a>>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Series<'a> {
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    columns: Vec<String>,
    #[serde(default, borrow)]
    values: Vec<Vec<&'a RawValue>>,
}

impl Copy<'_> {
    /// Copies what is left after `resume`; returns the points copied in all.
    pub(crate) async fn run(
        &self,
        resume: Option<Position>,
        recorder: &Recorder,
    ) -> Result<u64, CopyError> {
        let mut policies = self.policies().await?;
        policies.sort_by(|a, b| a.name.cmp(&b.name));
        let mut points = resume.as_ref().map_or(0, |p| p.points);
        for policy in &policies {
            let from = match &resume {
                Some(p) if p.rp > policy.name => continue,
                Some(p) if p.rp == policy.name => Some(p.upto),
                _ => None,
            };
            points = self.copy_policy(policy, from, points, recorder).await?;
        }
        Ok(points)
    }

    async fn copy_policy(
        &self,
        policy: &Policy,
        from: Option<i64>,
        mut points: u64,
        recorder: &Recorder,
    ) -> Result<u64, CopyError> {
        let fields = self.field_types(&policy.name).await?;
        if fields.is_empty() {
            return Ok(points);
        }
        let lower = match (self.since, from) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let (Some(first), Some(last)) = (
            self.edge(&policy.name, lower, "ASC").await?,
            self.edge(&policy.name, lower, "DESC").await?,
        ) else {
            return Ok(points);
        };
        // i128: a window's width may exceed i64 between the earliest and latest times.
        let end = i128::from(last) + 1;
        let mut at = i128::from(first);
        let mut width = (end - at).max(1);
        let batch = u128::from(self.batch.max(1));
        while at < end {
            let mut upto = (at + width).min(end);
            let count = loop {
                let n = self.count(&policy.name, at, upto).await?;
                if u128::from(n) > 2 * batch && upto - at > 1 {
                    width = (upto - at) / 2;
                    upto = at + width;
                    continue;
                }
                break n;
            };
            if count > 0 {
                points += self.copy_window(policy, &fields, at, upto).await?;
                recorder.progress(&policy.name, clamp(upto), points).await?;
            }
            if u128::from(count) < batch / 2 {
                width = width.saturating_mul(2);
            }
            at = upto;
        }
        Ok(points)
    }

    /// Reads one window and writes it to every destination; returns its points.
    async fn copy_window(
        &self,
        policy: &Policy,
        fields: &HashMap<String, FieldType>,
        at: i128,
        upto: i128,
    ) -> Result<u64, CopyError> {
        let q = format!(
            "SELECT * FROM {}.{} WHERE time >= {} AND time < {} GROUP BY *",
            quote(&policy.name),
            quote(self.measurement),
            clamp(at),
            clamp(upto)
        );
        let body = self.query(&q).await?;
        let answer = self.parse(&body)?;
        let mut points = 0;
        let mut lines = String::new();
        let mut in_body = 0;
        for series in answer.results.into_iter().flat_map(|r| r.series) {
            let prefix = series_prefix(self.measurement, &series);
            let time = series.columns.iter().position(|c| c == "time");
            for row in &series.values {
                if !render_row(&mut lines, &prefix, &series.columns, time, row, fields) {
                    continue;
                }
                points += 1;
                in_body += 1;
                if in_body >= self.flush_size {
                    self.write_all(policy, lines.as_bytes()).await?;
                    lines.clear();
                    in_body = 0;
                }
            }
        }
        if in_body > 0 {
            self.write_all(policy, lines.as_bytes()).await?;
        }
        Ok(points)
    }

    async fn write_all(&self, policy: &Policy, body: &[u8]) -> Result<(), CopyError> {
        for d in &self.destinations {
            self.write(d, policy, body).await?;
        }
        Ok(())
    }

    async fn write(
        &self,
        destination: &InfluxClient,
        policy: &Policy,
        body: &[u8],
    ) -> Result<(), CopyError> {
        let target = WriteTarget::V1 {
            db: self.db,
            rp: Some(&policy.name),
        };
        let mut created = false;
        let mut attempt = 0;
        loop {
            let e = match destination
                .write(target, Precision::Nanoseconds, body)
                .await
            {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if !created && lacks_target(&e) {
                created = true;
                self.create_target(destination, policy).await;
                continue;
            }
            attempt += 1;
            if !waited_to_retry(&e, attempt).await {
                return Err(CopyError::Destination(e));
            }
        }
    }

    /// Creates the database and the retention policy on a destination that lacks them;
    /// a failure is logged, and the write's own error says the rest.
    async fn create_target(&self, destination: &InfluxClient, policy: &Policy) {
        let mut q = format!("CREATE DATABASE {}", quote(self.db));
        if let Some(duration) = influxql_duration(&policy.duration) {
            let _ = write!(
                q,
                "; CREATE RETENTION POLICY {} ON {} DURATION {duration} REPLICATION {}",
                quote(&policy.name),
                quote(self.db),
                policy.replicas.max(1)
            );
            if let Some(shard) = influxql_duration(&policy.shard_duration).filter(|s| s != "INF") {
                let _ = write!(q, " SHARD DURATION {shard}");
            }
            if policy.default {
                q.push_str(" DEFAULT");
            }
        }
        if let Err(e) = destination.query_checked(None, &q).await {
            tracing::warn!(destination = %destination.base_url(), db = %self.db, rp = %policy.name, error = %e, "creating the database or retention policy a migration writes to failed");
        }
    }

    async fn policies(&self) -> Result<Vec<Policy>, CopyError> {
        let body = self.query("SHOW RETENTION POLICIES").await?;
        Ok(policies_of(&self.parse(&body)?))
    }

    async fn field_types(&self, rp: &str) -> Result<HashMap<String, FieldType>, CopyError> {
        let q = format!(
            "SHOW FIELD KEYS FROM {}.{}",
            quote(rp),
            quote(self.measurement)
        );
        let body = self.query(&q).await?;
        Ok(field_types_of(&self.parse(&body)?))
    }

    /// The time of the earliest (`ASC`) or latest (`DESC`) point at or after `lower`.
    async fn edge(
        &self,
        rp: &str,
        lower: Option<i64>,
        order: &str,
    ) -> Result<Option<i64>, CopyError> {
        let mut q = format!("SELECT * FROM {}.{}", quote(rp), quote(self.measurement));
        if let Some(t) = lower {
            let _ = write!(q, " WHERE time >= {t}");
        }
        let _ = write!(q, " ORDER BY time {order} LIMIT 1");
        let body = self.query(&q).await?;
        Ok(edge_of(&self.parse(&body)?))
    }

    /// The points in `[at, upto)`: the largest of the fields' counts.
    async fn count(&self, rp: &str, at: i128, upto: i128) -> Result<u64, CopyError> {
        let q = format!(
            "SELECT COUNT(*) FROM {}.{} WHERE time >= {} AND time < {}",
            quote(rp),
            quote(self.measurement),
            clamp(at),
            clamp(upto)
        );
        let body = self.query(&q).await?;
        Ok(count_of(&self.parse(&body)?))
    }

    /// Runs `q` on the source (times as integer nanoseconds), trying again what may pass.
    async fn query(&self, q: &str) -> Result<bytes::Bytes, CopyError> {
        let path = "/query";
        let form = [("db", self.db), ("q", q), ("epoch", "ns")];
        let mut attempt = 0;
        loop {
            let sent = self
                .source
                .send(path, self.source.request(Method::POST, path).form(&form))
                .await;
            let outcome = match sent {
                Ok(response) => response.bytes().await.map_err(|e| {
                    ClientError::transport(&format!("{}{path}", self.source.base_url()), e)
                }),
                Err(e) => Err(e),
            };
            let e = match outcome {
                Ok(body) => return Ok(body),
                Err(e) => e,
            };
            attempt += 1;
            if !waited_to_retry(&e, attempt).await {
                return Err(CopyError::Source(e));
            }
        }
    }

    /// The answer, or its first statement's error.
    fn parse<'b>(&self, body: &'b [u8]) -> Result<Answer<'b>, CopyError> {
        parse_answer(body).map_err(|reason| CopyError::Answer {
            url: format!("{}/query", self.source.base_url()),
            reason,
        })
    }
}

/// A `/query` answer, or why not: not one, or its first statement's error.
fn parse_answer(body: &[u8]) -> Result<Answer<'_>, String> {
    let answer: Answer<'_> =
        serde_json::from_slice(body).map_err(|e| format!("not a query answer ({e})"))?;
    match answer.results.iter().find_map(|r| r.error.clone()) {
        Some(message) => Err(message),
        None => Ok(answer),
    }
}

/// `SHOW RETENTION POLICIES`' rows (a row without a name is passed over).
fn policies_of(answer: &Answer<'_>) -> Vec<Policy> {
    let mut out = Vec::new();
    for s in answer.results.iter().flat_map(|r| &r.series) {
        let col = |name: &str| s.columns.iter().position(|c| c == name);
        let (Some(n), d, sd, r, def) = (
            col("name"),
            col("duration"),
            col("shardGroupDuration"),
            col("replicaN"),
            col("default"),
        ) else {
            continue;
        };
        for row in &s.values {
            let text = |i: Option<usize>| {
                i.and_then(|i| row.get(i))
                    .and_then(|v| serde_json::from_str::<String>(v.get()).ok())
                    .unwrap_or_default()
            };
            let Some(name) = row
                .get(n)
                .and_then(|v| serde_json::from_str::<String>(v.get()).ok())
            else {
                continue;
            };
            out.push(Policy {
                name,
                duration: text(d),
                shard_duration: text(sd),
                replicas: r
                    .and_then(|i| row.get(i))
                    .and_then(|v| v.get().parse().ok())
                    .unwrap_or(1),
                default: def
                    .and_then(|i| row.get(i))
                    .is_some_and(|v| v.get() == "true"),
            });
        }
    }
    out
}

/// `SHOW FIELD KEYS`' rows: each field's type (of several, the first of
/// [`FieldType::ORDER`]; of none known, the field is left out).
fn field_types_of(answer: &Answer<'_>) -> HashMap<String, FieldType> {
    let mut seen: HashMap<String, Vec<String>> = HashMap::new();
    for s in answer.results.iter().flat_map(|r| &r.series) {
        for row in &s.values {
            let (Some(k), Some(t)) = (row.first(), row.get(1)) else {
                continue;
            };
            let (Ok(k), Ok(t)) = (
                serde_json::from_str::<String>(k.get()),
                serde_json::from_str::<String>(t.get()),
            ) else {
                continue;
            };
            seen.entry(k).or_default().push(t);
        }
    }
    seen.into_iter()
        .filter_map(|(k, types)| {
            FieldType::ORDER
                .iter()
                .find(|(name, _)| types.iter().any(|t| t == name))
                .map(|(_, t)| (k, *t))
        })
        .collect()
}

/// The time of the first row of a `LIMIT 1` answer.
fn edge_of(answer: &Answer<'_>) -> Option<i64> {
    answer
        .results
        .iter()
        .flat_map(|r| &r.series)
        .filter_map(|s| {
            let i = s.columns.iter().position(|c| c == "time")?;
            s.values.first()?.get(i)?.get().parse::<i64>().ok()
        })
        .next()
}

/// A `COUNT(*)` answer: the largest of the fields' counts.
fn count_of(answer: &Answer<'_>) -> u64 {
    answer
        .results
        .iter()
        .flat_map(|r| &r.series)
        .flat_map(|s| s.values.iter().flat_map(|row| row.iter().skip(1)))
        .filter_map(|v| v.get().parse::<u64>().ok())
        .max()
        .unwrap_or(0)
}

/// A series' lines' start: the measurement and its tags (an empty tag value is no tag).
fn series_prefix(measurement: &str, series: &Series<'_>) -> String {
    let mut prefix = String::new();
    escape_measurement(&mut prefix, measurement);
    for (k, v) in series.tags.iter().filter(|(_, v)| !v.is_empty()) {
        prefix.push(',');
        escape_tag(&mut prefix, k);
        prefix.push('=');
        escape_tag(&mut prefix, v);
    }
    prefix
}

#[cfg(any(test, feature = "testing"))]
/// Fuzz entry point: any bytes as a backend's `/query` answer, read as each of a
/// migration's questions reads it (retention policies, field types, the earliest time, a
/// count, a window's rows rendered as line protocol): an answer or an error, never a
/// panic.
pub fn fuzz_answer(data: &[u8]) {
    let Ok(answer) = parse_answer(data) else {
        return;
    };
    let _ = (policies_of(&answer), edge_of(&answer), count_of(&answer));
    let fields = field_types_of(&answer);
    let mut lines = String::new();
    for series in answer.results.iter().flat_map(|r| &r.series) {
        let prefix = series_prefix("m", series);
        let time = series.columns.iter().position(|c| c == "time");
        for row in &series.values {
            let before = lines.len();
            if render_row(&mut lines, &prefix, &series.columns, time, row, &fields) {
                assert!(lines.ends_with('\n') && lines.len() > before);
            } else {
                assert_eq!(lines.len(), before, "a row not rendered leaves nothing");
            }
        }
    }
    let _ = crate::line_protocol::parse_body(lines.as_bytes());
}

/// Appends one row as a line (and its newline); false when it has no field to write.
fn render_row(
    out: &mut String,
    prefix: &str,
    columns: &[String],
    time: Option<usize>,
    row: &[&RawValue],
    fields: &HashMap<String, FieldType>,
) -> bool {
    let Some(ts) = time
        .and_then(|i| row.get(i))
        .and_then(|v| v.get().parse::<i64>().ok())
    else {
        return false;
    };
    let start = out.len();
    out.push_str(prefix);
    let mut sep = ' ';
    for (i, (name, value)) in columns.iter().zip(row).enumerate() {
        if Some(i) == time || value.get() == "null" {
            continue;
        }
        let mark = out.len();
        out.push(sep);
        escape_field_key(out, name);
        out.push('=');
        if field_text(out, fields.get(name).copied(), value.get()) {
            sep = ',';
        } else {
            out.truncate(mark);
        }
    }
    if sep == ' ' {
        out.truncate(start);
        return false;
    }
    let _ = writeln!(out, " {ts}");
    true
}

/// Appends a field's value in line protocol as its type says; false when the JSON text
/// is not one.
fn field_text(out: &mut String, kind: Option<FieldType>, raw: &str) -> bool {
    let kind = kind.unwrap_or(match raw.as_bytes().first() {
        Some(b'"') => FieldType::String,
        Some(b't' | b'f') => FieldType::Boolean,
        _ => FieldType::Float,
    });
    match kind {
        FieldType::Float => match raw.parse::<f64>() {
            Ok(v) if v.is_finite() => write!(out, "{v}").is_ok(),
            _ => false,
        },
        FieldType::Integer => match raw.parse::<i64>() {
            Ok(v) => write!(out, "{v}i").is_ok(),
            Err(_) => match raw.parse::<f64>() {
                Ok(v) if v.is_finite() => write!(out, "{}i", v as i64).is_ok(),
                _ => false,
            },
        },
        FieldType::Unsigned => match raw.parse::<u64>() {
            Ok(v) => write!(out, "{v}u").is_ok(),
            Err(_) => false,
        },
        FieldType::Boolean => match raw {
            "true" | "false" => {
                out.push_str(raw);
                true
            }
            _ => false,
        },
        FieldType::String => {
            let text = match serde_json::from_str::<String>(raw) {
                Ok(s) => s,
                Err(_) => raw.to_owned(),
            };
            out.push('"');
            crate::line_protocol::escape_string_field(out, &text);
            out.push('"');
            true
        }
    }
}

/// A write failed because the destination lacks the database or the policy.
fn lacks_target(e: &ClientError) -> bool {
    let message = match e {
        ClientError::Status { message, .. } => message,
        _ => return false,
    };
    message.contains("database not found") || message.contains("retention policy not found")
}

/// An identifier quoted for InfluxQL.
pub(crate) fn quote(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A Go duration as `SHOW RETENTION POLICIES` gives it (`168h0m0s`, `0s`) in InfluxQL
/// (`604800s`, `INF`).
fn influxql_duration(go: &str) -> Option<String> {
    let mut nanos: u128 = 0;
    let mut rest = go;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let (n, tail) = rest.split_at(digits);
        let n: u128 = n.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale: u128 = match unit {
            "h" => 3_600_000_000_000,
            "m" => 60_000_000_000,
            "s" => 1_000_000_000,
            "ms" => 1_000_000,
            "us" | "µs" => 1_000,
            "ns" => 1,
            _ => return None,
        };
        nanos += n * scale;
        rest = tail;
    }
    match nanos / 1_000_000_000 {
        0 => Some("INF".into()),
        s => Some(format!("{s}s")),
    }
}

fn clamp(t: i128) -> i64 {
    t.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// After the `attempt`th failure `e` of a request: waits as the failure asks and says
/// whether to send the request again (false: give up).
async fn waited_to_retry(e: &ClientError, attempt: u32) -> bool {
    let wait = match e.retry() {
        Retry::Never => return false,
        _ if attempt >= MAX_ATTEMPTS => return false,
        Retry::After(d) => d,
        Retry::Backoff => {
            let d = FIRST_BACKOFF.saturating_mul(1 << attempt.min(16));
            crate::client::jitter(d.min(MAX_BACKOFF))
        }
    };
    tokio::time::sleep(wait).await;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(values: &[&str]) -> Vec<Box<RawValue>> {
        values
            .iter()
            .map(|v| RawValue::from_string((*v).to_owned()).unwrap())
            .collect()
    }

    #[test]
    fn rows_render_as_line_protocol_with_each_fields_type() {
        let columns: Vec<String> = ["time", "f", "i", "s", "b", "u", "gone"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let fields = HashMap::from([
            ("f".to_owned(), FieldType::Float),
            ("i".to_owned(), FieldType::Integer),
            ("s".to_owned(), FieldType::String),
            ("b".to_owned(), FieldType::Boolean),
            ("u".to_owned(), FieldType::Unsigned),
        ]);
        let row = raw(&[
            "1600000000000000001",
            "5",
            "9007199254740993",
            "\"a \\\"q\\\" b\\\\\"",
            "true",
            "18446744073709551615",
            "null",
        ]);
        let row: Vec<&RawValue> = row.iter().map(|b| b.as_ref()).collect();
        let mut out = String::new();
        assert!(render_row(
            &mut out,
            "m\\ 1,host=a",
            &columns,
            Some(0),
            &row,
            &fields
        ));
        assert_eq!(
            out,
            "m\\ 1,host=a f=5,i=9007199254740993i,s=\"a \\\"q\\\" b\\\\\",b=true,u=18446744073709551615u 1600000000000000001\n"
        );
        // Floats come back exactly: 0.1 + 0.2 in its shortest form, and a tiny one.
        let mut out = String::new();
        let row = raw(&["1", "0.30000000000000004"]);
        let row: Vec<&RawValue> = row.iter().map(|b| b.as_ref()).collect();
        assert!(render_row(
            &mut out,
            "m",
            &columns[..2],
            Some(0),
            &row,
            &fields
        ));
        assert_eq!(out, "m f=0.30000000000000004 1\n");
        let parsed: f64 = out[4..23].parse().unwrap();
        assert_eq!(parsed, 0.1 + 0.2);
        // A row of nulls is no line.
        let row = raw(&["1", "null"]);
        let row: Vec<&RawValue> = row.iter().map(|b| b.as_ref()).collect();
        let mut out = String::new();
        assert!(!render_row(
            &mut out,
            "m",
            &columns[..2],
            Some(0),
            &row,
            &fields
        ));
        assert!(out.is_empty());
    }

    #[test]
    fn go_durations_become_influxql() {
        assert_eq!(influxql_duration("0s").as_deref(), Some("INF"));
        assert_eq!(influxql_duration("168h0m0s").as_deref(), Some("604800s"));
        assert_eq!(influxql_duration("1h30m0s").as_deref(), Some("5400s"));
        assert_eq!(influxql_duration("bad"), None);
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
