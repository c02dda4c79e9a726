//! `shardkeeper bench ingest`: an InfluxDB 1.x line-protocol write benchmark.
//!
//! The workload is shaped like TSBS's `cpu-only` use case: 1000 hosts, each
//! with the ten TSBS machine tags (`hostname`, `region`, `datacenter`, `rack`,
//! `os`, `arch`, `team`, `service`, `service_version`,
//! `service_environment`) and the ten `cpu` fields (`usage_user` ..
//! `usage_guest_nice`). Every field is a clamped random walk in `0..=100`
//! (normal steps of sd 1, started uniformly), written as an integral float
//! (`usage_user=58`, no `i` suffix). Points are 10 s apart from
//! 2024-01-01T00:00:00Z with nanosecond timestamps, and hosts are interleaved
//! per timestamp: all hosts at t0, then all hosts at t0+10s, and so on.
//!
//! Everything is generated from the seed, before timing starts, by
//! [`generate_batches`]. [`run`] then creates the database, sends the batches
//! over `connections` keep-alive HTTP/1.1 connections (one task and one
//! [`InfluxClient`] each, on one thread, taking the next batch from a shared
//! counter), and returns an [`IngestReport`].
//!
//! Counting rules: `points` and the byte count behind `mb_per_s` (10^6 bytes)
//! cover only batches answered 2xx; `batches` counts every batch sent, and
//! every batch contributes a latency sample. A non-2xx answer or a transport
//! failure counts as one error and does not stop the run; the first one seen
//! is kept in `first_error`. Percentiles are nearest-rank, to three significant digits.

use super::Latencies;
use crate::client::{ClientError, ClientOptions, InfluxClient, WriteTarget};
use crate::line_protocol::Precision;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Number of simulated hosts (TSBS `--scale`).
pub const HOSTS: usize = 1000;
/// Seconds between two readings of one host (TSBS `--log-interval`).
pub const INTERVAL_SECS: u64 = 10;
/// 2024-01-01T00:00:00Z in nanoseconds since the Unix epoch.
pub const START_NS: u64 = 1_704_067_200_000_000_000;

/// TSBS machine tag keys, in the order they are written.
pub const TAG_KEYS: [&str; 10] = [
    "hostname",
    "region",
    "datacenter",
    "rack",
    "os",
    "arch",
    "team",
    "service",
    "service_version",
    "service_environment",
];

/// TSBS `cpu` field keys, in the order they are written.
pub const FIELD_KEYS: [&str; 10] = [
    "usage_user",
    "usage_system",
    "usage_idle",
    "usage_nice",
    "usage_iowait",
    "usage_irq",
    "usage_softirq",
    "usage_steal",
    "usage_guest",
    "usage_guest_nice",
];

const REGIONS: [(&str, &[&str]); 9] = [
    (
        "us-east-1",
        &["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1e"],
    ),
    ("us-west-1", &["us-west-1a", "us-west-1b"]),
    ("us-west-2", &["us-west-2a", "us-west-2b", "us-west-2c"]),
    ("eu-west-1", &["eu-west-1a", "eu-west-1b", "eu-west-1c"]),
    ("eu-central-1", &["eu-central-1a", "eu-central-1b"]),
    ("ap-southeast-1", &["ap-southeast-1a", "ap-southeast-1b"]),
    ("ap-southeast-2", &["ap-southeast-2a", "ap-southeast-2b"]),
    ("ap-northeast-1", &["ap-northeast-1a", "ap-northeast-1c"]),
    ("sa-east-1", &["sa-east-1a", "sa-east-1b", "sa-east-1c"]),
];
const TEAMS: [&str; 4] = ["SF", "NYC", "LON", "CHI"];
const OSES: [&str; 3] = ["Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10"];
const ARCHES: [&str; 2] = ["x64", "x86"];
const SERVICE_ENVS: [&str; 3] = ["production", "staging", "test"];
const RACKS_PER_DATACENTER: u64 = 100;
const SERVICES: u64 = 20;
const SERVICE_VERSIONS: u64 = 2;

/// Options of `shardkeeper bench ingest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestOptions {
    /// Base URL of the server, e.g. `http://127.0.0.1:8086` (no path).
    pub url: String,
    /// Database to create and write to.
    pub db: String,
    /// Total number of points to write.
    pub points: u64,
    /// Points (lines) per `/write` request.
    pub batch: usize,
    /// Number of concurrent keep-alive connections (one task each).
    pub connections: usize,
    /// Seed of the deterministic workload generator.
    pub seed: u64,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            url: "http://127.0.0.1:8086".to_string(),
            db: "benchmark".to_string(),
            points: 1_000_000,
            batch: 5000,
            connections: 4,
            seed: 0,
        }
    }
}

/// The JSON object printed by `bench ingest`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IngestReport {
    pub url: String,
    pub db: String,
    /// Points in batches answered 2xx.
    pub points: u64,
    /// Batches sent, whatever the answer.
    pub batches: u64,
    pub batch_size: usize,
    pub connections: usize,
    /// Wall-clock seconds from the first request to the last answer.
    pub seconds: f64,
    pub points_per_s: f64,
    /// Line-protocol bytes of batches answered 2xx, in 10^6 bytes per second.
    pub mb_per_s: f64,
    pub batch_latency_ms_p50: f64,
    pub batch_latency_ms_p99: f64,
    pub batch_latency_ms_max: f64,
    /// Batches answered non-2xx or lost to a transport error.
    pub errors: u64,
    /// The first such error: `HTTP <status>: <body>` or `transport: <what>`.
    pub first_error: Option<String>,
}

impl IngestReport {
    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("IngestReport serializes")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    #[error("CREATE DATABASE via {url} failed: {reason}")]
    CreateDatabase { url: String, reason: String },
}

/// Generates the whole workload as line-protocol request bodies of
/// `opts.batch` lines each (the last one may be shorter). Deterministic for
/// a given `seed`; `url` and `connections` play no part.
pub fn generate_batches(opts: &IngestOptions) -> Vec<Vec<u8>> {
    let batch = opts.batch.max(1);
    let total = opts.points;
    if total == 0 {
        return Vec::new();
    }
    let mut rng = SplitMix64::new(opts.seed);
    let hosts = Workload::new(&mut rng);

    // Field values are integers 0..=100, so format each once.
    let numbers: Vec<String> = (0..=100).map(|v| v.to_string()).collect();
    let approx_line = hosts.prefixes.iter().map(|p| p.len()).max().unwrap_or(0) + 200;
    let n_batches = total.div_ceil(batch as u64) as usize;
    let mut batches = Vec::with_capacity(n_batches);
    let mut current: Vec<u8> = Vec::new();
    let mut in_current = 0usize;
    let mut values = hosts.initial_values;
    let mut emitted = 0u64;
    let mut step = 0u64;
    let mut ts = String::new();
    'outer: loop {
        ts.clear();
        ts.push_str(&(START_NS + step * INTERVAL_SECS * 1_000_000_000).to_string());
        for (h, prefix) in hosts.prefixes.iter().enumerate() {
            if emitted == total {
                break 'outer;
            }
            if in_current == 0 {
                let lines = (total - emitted).min(batch as u64) as usize;
                current = Vec::with_capacity(lines * approx_line);
            }
            current.extend_from_slice(prefix.as_bytes());
            let row = &mut values[h * FIELD_KEYS.len()..(h + 1) * FIELD_KEYS.len()];
            for (f, v) in row.iter_mut().enumerate() {
                current.push(if f == 0 { b' ' } else { b',' });
                current.extend_from_slice(FIELD_KEYS[f].as_bytes());
                current.push(b'=');
                current.extend_from_slice(numbers[*v as usize].as_bytes());
                // Advance the clamped random walk for the next timestamp.
                *v = (*v + rng.normal()).clamp(0.0, 100.0);
            }
            current.push(b' ');
            current.extend_from_slice(ts.as_bytes());
            current.push(b'\n');
            emitted += 1;
            in_current += 1;
            if in_current == batch {
                batches.push(std::mem::take(&mut current));
                in_current = 0;
            }
        }
        step += 1;
    }
    if in_current > 0 {
        batches.push(current);
    }
    batches
}

/// Runs the benchmark: creates the database, generates the batches, then
/// times sending them. Only option and `CREATE DATABASE` failures are
/// errors; write failures are counted in the report.
pub fn run(opts: &IngestOptions) -> Result<IngestReport, IngestError> {
    if opts.batch == 0 {
        return Err(IngestError::InvalidOptions(
            "--batch must be at least 1".into(),
        ));
    }
    if opts.connections == 0 {
        return Err(IngestError::InvalidOptions(
            "--connections must be at least 1".into(),
        ));
    }
    if opts.db.is_empty() {
        return Err(IngestError::InvalidOptions("--db must not be empty".into()));
    }
    let base = opts.url.trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(IngestError::InvalidOptions(format!(
            "--url must start with http:// or https://, got {:?}",
            opts.url
        )));
    }

    let query_url = format!("{base}/query");
    let clients = (0..opts.connections)
        .map(|_| client(base))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| IngestError::CreateDatabase {
            url: query_url.clone(),
            reason: e.to_string(),
        })?;
    crate::client::block_on(create_database(&clients[0], &query_url, &opts.db))?;

    let batches = generate_batches(opts);
    let lines: Vec<u64> = batches
        .iter()
        .map(|b| b.iter().filter(|&&c| c == b'\n').count() as u64)
        .collect();
    let next = AtomicUsize::new(0);
    let first_error: Mutex<Option<String>> = Mutex::new(None);

    let start = Instant::now();
    let writers = clients
        .iter()
        .map(|c| writer(c, &opts.db, &batches, &lines, &next, &first_error));
    let results = crate::client::block_on(futures_util::future::join_all(writers));
    let seconds = start.elapsed().as_secs_f64();

    let mut total = WriterTally::default();
    for r in results {
        total.points += r.points;
        total.bytes += r.bytes;
        total.batches += r.batches;
        total.errors += r.errors;
        total.latencies_ms.add(&r.latencies_ms);
    }
    let rate = |x: f64| if seconds > 0.0 { x / seconds } else { 0.0 };

    Ok(IngestReport {
        url: opts.url.clone(),
        db: opts.db.clone(),
        points: total.points,
        batches: total.batches,
        batch_size: opts.batch,
        connections: opts.connections,
        seconds,
        points_per_s: rate(total.points as f64),
        mb_per_s: rate(total.bytes as f64 / 1e6),
        batch_latency_ms_p50: total.latencies_ms.percentile(50.0),
        batch_latency_ms_p99: total.latencies_ms.percentile(99.0),
        batch_latency_ms_max: total.latencies_ms.max(),
        errors: total.errors,
        first_error: first_error.into_inner().unwrap_or_else(|e| e.into_inner()),
    })
}

#[derive(Default)]
struct WriterTally {
    points: u64,
    bytes: u64,
    batches: u64,
    errors: u64,
    latencies_ms: Latencies,
}

/// One client per connection: each keeps a single connection alive, so that the
/// connection count is the option's.
fn client(base: &str) -> Result<InfluxClient, ClientError> {
    let options = ClientOptions {
        connect_timeout: Duration::from_secs(10),
        read_timeout: Duration::from_secs(300),
        // The workload is measured as the bytes of line protocol it sends.
        gzip_writes: false,
        max_idle_per_host: Some(1),
        ..ClientOptions::default()
    };
    InfluxClient::new(base, options)
}

/// One connection: takes batch indexes from `next` until none are left.
async fn writer(
    client: &InfluxClient,
    db: &str,
    batches: &[Vec<u8>],
    lines: &[u64],
    next: &AtomicUsize,
    first_error: &Mutex<Option<String>>,
) -> WriterTally {
    let mut tally = WriterTally::default();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(body) = batches.get(i) else { break };
        let t0 = Instant::now();
        let outcome = client
            .write(
                WriteTarget::V1 { db, rp: None },
                Precision::Nanoseconds,
                body,
            )
            .await;
        tally.latencies_ms.record(t0.elapsed().as_secs_f64() * 1e3);
        tally.batches += 1;
        match outcome {
            Ok(()) => {
                tally.points += lines[i];
                tally.bytes += body.len() as u64;
            }
            Err(e) => {
                tally.errors += 1;
                let mut slot = first_error.lock().unwrap_or_else(|e| e.into_inner());
                if slot.is_none() {
                    *slot = Some(describe(&e));
                }
            }
        }
    }
    tally
}

/// `HTTP <status>: <body>` or `transport: <what>`, as the report promises.
fn describe(e: &ClientError) -> String {
    match e {
        ClientError::Status { status, body, .. } => format!("HTTP {status}: {}", body.trim_end()),
        ClientError::Transport { message, .. } => format!("transport: {message}"),
        other => other.to_string(),
    }
}

/// `POST {base}/query` with `q=CREATE DATABASE "<db>"`; fails on a transport
/// error, a non-2xx status, or an `error` in the JSON answer.
async fn create_database(client: &InfluxClient, url: &str, db: &str) -> Result<(), IngestError> {
    let q = format!("CREATE DATABASE {}", quote_ident(db));
    let fail = |reason: String| IngestError::CreateDatabase {
        url: url.to_owned(),
        reason,
    };
    let answer = client
        .query(None, &q)
        .await
        .map_err(|e| fail(describe(&e)))?;
    match answer.first_error(url) {
        Some(ClientError::Statement { message, .. }) => {
            Err(fail(format!("server said: {message}")))
        }
        Some(e) => Err(fail(e.to_string())),
        None => Ok(()),
    }
}

/// InfluxQL double-quoted identifier.
fn quote_ident(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Per-host state of the workload, drawn from the seed.
struct Workload {
    /// `cpu,hostname=...,service_environment=...` for each host.
    prefixes: Vec<String>,
    /// HOSTS x 10 field values, row-major.
    initial_values: Vec<f64>,
}

impl Workload {
    fn new(rng: &mut SplitMix64) -> Workload {
        let mut prefixes = Vec::with_capacity(HOSTS);
        let mut initial_values = Vec::with_capacity(HOSTS * FIELD_KEYS.len());
        for id in 0..HOSTS {
            // Same draw order as TSBS's NewHost: field walks' starts, then tags.
            for _ in 0..FIELD_KEYS.len() {
                initial_values.push(rng.unit() * 100.0);
            }
            let (region, dcs) = REGIONS[rng.below(REGIONS.len() as u64) as usize];
            let datacenter = dcs[rng.below(dcs.len() as u64) as usize];
            let rack = rng.below(RACKS_PER_DATACENTER);
            let arch = ARCHES[rng.below(ARCHES.len() as u64) as usize];
            let os = OSES[rng.below(OSES.len() as u64) as usize];
            let service = rng.below(SERVICES);
            let service_version = rng.below(SERVICE_VERSIONS);
            let env = SERVICE_ENVS[rng.below(SERVICE_ENVS.len() as u64) as usize];
            let team = TEAMS[rng.below(TEAMS.len() as u64) as usize];
            let values = [
                format!("host_{id}"),
                region.to_string(),
                datacenter.to_string(),
                rack.to_string(),
                os.to_string(),
                arch.to_string(),
                team.to_string(),
                service.to_string(),
                service_version.to_string(),
                env.to_string(),
            ];
            let mut p = String::from("cpu");
            for (k, v) in TAG_KEYS.iter().zip(values.iter()) {
                p.push(',');
                p.push_str(k);
                p.push('=');
                p.push_str(v);
            }
            prefixes.push(p);
        }
        Workload {
            prefixes,
            initial_values,
        }
    }
}

/// SplitMix64: small, fast, and stable across platforms and versions.
struct SplitMix64 {
    state: u64,
    spare_normal: Option<f64>,
}

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        SplitMix64 {
            state: seed,
            spare_normal: None,
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in 0..n (n > 0); the modulo bias is negligible for small n.
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Standard normal (Box-Muller, both values used).
    fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        let u1 = 1.0 - self.unit(); // (0, 1]
        let u2 = self.unit();
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u2;
        self.spare_normal = Some(r * theta.sin());
        r * theta.cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;

    fn opts(points: u64, batch: usize, seed: u64) -> IngestOptions {
        IngestOptions {
            url: "http://127.0.0.1:1".into(),
            db: "benchmark".into(),
            points,
            batch,
            connections: 1,
            seed,
        }
    }

    /// Checks one line's shape; returns (hostname, timestamp).
    fn check_line(line: &str) -> (String, u64) {
        let parts: Vec<&str> = line.split(' ').collect();
        assert_eq!(
            parts.len(),
            3,
            "measurement+tags, fields, timestamp: {line}"
        );
        let mut tags = parts[0].split(',');
        assert_eq!(tags.next(), Some("cpu"));
        let tags: Vec<(&str, &str)> = tags.map(|t| t.split_once('=').expect("tag k=v")).collect();
        assert_eq!(tags.len(), 10);
        for ((k, v), want) in tags.iter().zip(TAG_KEYS) {
            assert_eq!(*k, want);
            assert!(!v.is_empty());
            assert!(
                v.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"_-.".contains(&c)),
                "{v}"
            );
        }
        let fields: Vec<(&str, &str)> = parts[1]
            .split(',')
            .map(|f| f.split_once('=').expect("field k=v"))
            .collect();
        assert_eq!(fields.len(), 10);
        for ((k, v), want) in fields.iter().zip(FIELD_KEYS) {
            assert_eq!(*k, want);
            let x: f64 = v.parse().expect("float field");
            assert!((0.0..=100.0).contains(&x) && x.fract() == 0.0, "{v}");
            assert!(!v.ends_with('i'));
        }
        let ts: u64 = parts[2].parse().expect("integer ns timestamp");
        (tags[0].1.to_string(), ts)
    }

    #[test]
    fn generation_is_deterministic_for_a_seed() {
        let a = generate_batches(&opts(12_345, 1000, 7));
        let b = generate_batches(&opts(12_345, 1000, 7));
        let c = generate_batches(&opts(12_345, 1000, 8));
        assert_eq!(a, b);
        assert_ne!(a, c);
        // Batch size does not change the stream of lines.
        let d = generate_batches(&opts(12_345, 777, 7));
        assert_eq!(a.concat(), d.concat());
    }

    #[test]
    fn lines_have_line_protocol_shape_and_tsbs_order() {
        let batches = generate_batches(&opts(2500, 1000, 42));
        let text = String::from_utf8(batches.concat()).unwrap();
        assert!(text.ends_with('\n'));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2500);
        let mut prefix_of_host = std::collections::HashMap::new();
        for (i, line) in lines.iter().enumerate() {
            let (host, ts) = check_line(line);
            assert_eq!(
                host,
                format!("host_{}", i % HOSTS),
                "hosts interleaved per timestamp"
            );
            let step = (i / HOSTS) as u64;
            assert_eq!(ts, START_NS + step * 10_000_000_000);
            // A host's tags never change.
            let prefix = line.split(' ').next().unwrap().to_string();
            assert_eq!(
                prefix_of_host.entry(host).or_insert(prefix.clone()),
                &prefix
            );
        }
        assert!(lines[0].ends_with(" 1704067200000000000"));
        // Random walks: consecutive readings of a host differ by small steps.
        let f = |l: &str| -> Vec<f64> {
            l.split(' ')
                .nth(1)
                .unwrap()
                .split(',')
                .map(|kv| kv.split_once('=').unwrap().1.parse().unwrap())
                .collect()
        };
        let mut max_jump = 0.0f64;
        for h in 0..HOSTS {
            for (x, y) in f(lines[h]).iter().zip(f(lines[h + HOSTS]).iter()) {
                max_jump = max_jump.max((x - y).abs());
            }
        }
        assert!(max_jump <= 7.0, "max jump {max_jump}");
        // Tag values spread like TSBS's choices.
        let regions: std::collections::HashSet<_> = lines[..HOSTS]
            .iter()
            .map(|l| l.split(',').nth(2).unwrap())
            .collect();
        assert_eq!(regions.len(), 9);
    }

    #[test]
    fn batch_count_and_points_add_up() {
        for (points, batch) in [
            (0u64, 10usize),
            (1, 10),
            (10, 10),
            (10_001, 1000),
            (3000, 7),
        ] {
            let batches = generate_batches(&opts(points, batch, 1));
            assert_eq!(batches.len() as u64, points.div_ceil(batch as u64));
            let counts: Vec<usize> = batches
                .iter()
                .map(|b| b.iter().filter(|&&c| c == b'\n').count())
                .collect();
            assert_eq!(counts.iter().sum::<usize>() as u64, points);
            if let Some((last, full)) = counts.split_last() {
                assert!(full.iter().all(|&c| c == batch));
                assert!(*last >= 1 && *last <= batch);
            }
        }
    }

    #[test]
    fn quoting_and_bad_options() {
        assert_eq!(quote_ident(r#"a"b\c"#), r#""a\"b\\c""#);
        let mut o = opts(10, 0, 1);
        assert!(matches!(run(&o), Err(IngestError::InvalidOptions(_))));
        o.batch = 5;
        o.connections = 0;
        assert!(matches!(run(&o), Err(IngestError::InvalidOptions(_))));
    }

    /// What the fake server saw.
    #[derive(Default)]
    struct Seen {
        writes: AtomicU64,
        write_lines: AtomicU64,
        queries: Mutex<Vec<String>>,
        connections: AtomicU64,
    }

    /// A tiny HTTP/1.1 keep-alive server on 127.0.0.1:0. Answers 204 to
    /// `/write` except the `fail_nth` one (1-based), which gets 400; 200
    /// `{"results":[{"statement_id":0}]}` (or `query_answer`) to `/query`.
    /// Bounded: at most 16 connections and 1000 requests per connection,
    /// 5 s read timeout.
    fn fake_server(fail_nth: u64, query_answer: &'static str) -> (String, Arc<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Seen::default());
        let seen2 = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(16) {
                let Ok(stream) = stream else { break };
                seen2.connections.fetch_add(1, Ordering::SeqCst);
                let seen = seen2.clone();
                std::thread::spawn(move || serve(stream, &seen, fail_nth, query_answer));
            }
        });
        (format!("http://{addr}"), seen)
    }

    fn serve(stream: TcpStream, seen: &Seen, fail_nth: u64, query_answer: &str) {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut out = stream.try_clone().unwrap();
        let mut r = BufReader::new(stream);
        for _ in 0..1000 {
            let mut request_line = String::new();
            if r.read_line(&mut request_line).unwrap_or(0) == 0 {
                return;
            }
            let mut len = 0usize;
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 {
                    return;
                }
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        len = v.trim().parse().unwrap();
                    }
                }
            }
            let mut body = vec![0u8; len];
            if r.read_exact(&mut body).is_err() {
                return;
            }
            let path = request_line.split(' ').nth(1).unwrap_or("").to_string();
            let resp = if path.starts_with("/write?db=benchmark") {
                let n = seen.writes.fetch_add(1, Ordering::SeqCst) + 1;
                if n == fail_nth {
                    let b = r#"{"error":"unable to parse: test failure"}"#;
                    format!("HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}", b.len())
                } else {
                    let lines = body.iter().filter(|&&c| c == b'\n').count() as u64;
                    seen.write_lines.fetch_add(lines, Ordering::SeqCst);
                    "HTTP/1.1 204 No Content\r\nContent-Type: application/json\r\n\r\n".to_string()
                }
            } else if path == "/query" {
                seen.queries
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&body).into_owned());
                format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{query_answer}", query_answer.len())
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_string()
            };
            if out.write_all(resp.as_bytes()).is_err() {
                return;
            }
        }
    }

    #[test]
    fn end_to_end_counts_points_and_keeps_first_error() {
        let (url, seen) = fake_server(3, r#"{"results":[{"statement_id":0}]}"#);
        let o = IngestOptions {
            url: format!("{url}/"),
            db: "benchmark".into(),
            points: 10_000,
            batch: 500,
            connections: 4,
            seed: 3,
        };
        let report = run(&o).unwrap();
        assert_eq!(report.batches, 20);
        assert_eq!(report.errors, 1);
        assert_eq!(report.points, 10_000 - 500);
        assert_eq!(seen.write_lines.load(Ordering::SeqCst), 10_000 - 500);
        assert_eq!(seen.writes.load(Ordering::SeqCst), 20);
        assert_eq!(
            report.first_error.as_deref(),
            Some(r#"HTTP 400: {"error":"unable to parse: test failure"}"#)
        );
        assert_eq!(
            *seen.queries.lock().unwrap(),
            vec!["q=CREATE+DATABASE+%22benchmark%22".to_string()]
        );
        // Keep-alive: one connection for the query, at most one per writer.
        assert!(seen.connections.load(Ordering::SeqCst) <= 1 + 4);
        assert!(report.batch_latency_ms_p50 <= report.batch_latency_ms_p99);
        assert!(report.batch_latency_ms_p99 <= report.batch_latency_ms_max);
        assert!(report.seconds > 0.0 && report.points_per_s > 0.0 && report.mb_per_s > 0.0);
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        for k in [
            "url",
            "db",
            "points",
            "batches",
            "batch_size",
            "connections",
            "seconds",
            "points_per_s",
            "mb_per_s",
            "batch_latency_ms_p50",
            "batch_latency_ms_p99",
            "batch_latency_ms_max",
            "errors",
            "first_error",
        ] {
            assert!(keys.contains(&k), "missing {k}");
        }
        assert_eq!(keys.len(), 14);
    }

    #[test]
    fn create_database_error_is_reported() {
        let (url, seen) = fake_server(
            0,
            r#"{"results":[{"statement_id":0,"error":"not allowed"}]}"#,
        );
        let o = IngestOptions {
            url,
            points: 10,
            batch: 5,
            ..IngestOptions::default()
        };
        let err = run(&o).unwrap_err();
        assert!(err.to_string().contains("not allowed"), "{err}");
        assert_eq!(seen.writes.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn unreachable_server_fails_create_database() {
        // Bind then drop to get a loopback port nobody listens on.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let o = IngestOptions {
            url: format!("http://127.0.0.1:{port}"),
            ..IngestOptions::default()
        };
        assert!(matches!(run(&o), Err(IngestError::CreateDatabase { .. })));
    }
}
