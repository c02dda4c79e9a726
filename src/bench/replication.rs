//! `bench replication`: what one replication costs a node's ingest, how fast a queue drains
//! into the remote, how far behind the remote is under a steady load, and (`--verify`)
//! that every value written to the source reads back the same on the remote.
//!
//! The command runs its own nodes (this executable, each on a fresh data directory in a
//! temporary directory and a loopback port, authentication off), as `bench crash` does,
//! one phase after the other so that no two phases share the machine. On a machine of two
//! CPUs or more, each node of the source's side (A, and the node without a replication)
//! runs on CPU 0 with the bench's own client, and each of the remote's side (B, and the
//! node of B's direct ingest) on CPU 1: two machines of one CPU each, so that what the
//! ratios measure is the replication, not B's ingest taking A's CPU (`--no-pin`: no
//! pinning, every process on every CPU).
//!
//! 1. `bench ingest` of `--points` into a fresh node with no replication, and the same
//!    into a fresh node A with one replication of its bucket to a fresh node B, live (its
//!    queue drained before the next run): the ratio of the two is what one replication
//!    costs ingest;
//! 2. the drain: a fresh A takes `--points` with its remote down (the queue fills), then
//!    the remote is repointed to a fresh B and the time until the queue is empty gives the
//!    replication's throughput; and `bench ingest` of the same points straight into a
//!    fresh node: B's direct ingest, the ratio's denominator;
//!
//! Phases 1 and 2 run `--rounds` times, the two runs of each round in turn one and the
//! other first, so that the machine's drift weighs on both sides of a ratio alike; the
//! figures are the medians of the rounds' (each round's own is in `rounds`).
//!
//! 3. the lag: a fresh A replicating to a fresh B takes writes of 5,000 points at
//!    `--lag-load` (0.5) times B's direct ingest for `--lag-seconds`, on a fixed schedule
//!    (up to 8 at once). A write's lag is the time from its acknowledgement until A has
//!    recorded B's 204 for it: until A's `shardkeeper_replication_sent_points_total`
//!    (polled every 10 ms, the resolution) reaches the points of every write sent before
//!    this one was acknowledged (whatever precedes it in A's data log is among them, so
//!    this errs long by the writes in flight beside it).
//!
//! With `--verify`, after the first round's live replication and drain every point is read back from A and from B
//! (`SELECT * ... GROUP BY *` over 10 timestamps at a time, epoch=ns) and the answers are
//! compared whole: every series, time and field value, and the count against `--points`.

use crate::client::{ClientOptions, InfluxClient, Method, WriteTarget};
use crate::line_protocol::Precision;
use serde::Serialize;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::ingest::{IngestOptions, HOSTS, INTERVAL_SECS, START_NS};
use super::Latencies;

/// The bucket of A (and `bench ingest`'s database) and the remote bucket on B.
const SOURCE_BUCKET: &str = "benchmark";
const REMOTE_BUCKET: &str = "copy";
/// Points of one write in the lag phase (as `bench ingest` writes them).
const LAG_BATCH: usize = 5_000;
/// Connections of the lag phase's writer, at most.
const WRITERS: usize = 8;
const POLL: Duration = Duration::from_millis(10);
/// How long a queue may take to drain before the bench gives up.
const DRAIN_LIMIT: Duration = Duration::from_secs(900);
/// Timestamps of the workload read back per query (x 1000 hosts).
const VERIFY_STEPS: u64 = 10;

#[derive(Debug, Clone)]
pub(crate) struct ReplicationBenchOptions {
    pub points: u64,
    pub connections: usize,
    pub lag_seconds: f64,
    /// The lag phase's load, as a fraction of B's direct ingest.
    pub lag_load: f64,
    pub verify: bool,
    /// Two CPUs as two machines: A and the bench's client on CPU 0, B on CPU 1.
    pub pin: bool,
    /// The replicating nodes' `replication_gzip_level` (None: the default).
    pub gzip_level: Option<u32>,
    /// The replicating nodes' `replication_nice` (None: the default).
    pub replication_nice: Option<u32>,
    /// Rounds of the ingest and drain comparisons.
    pub rounds: usize,
}

impl Default for ReplicationBenchOptions {
    fn default() -> Self {
        ReplicationBenchOptions {
            points: 1_000_000,
            connections: 4,
            lag_seconds: 30.0,
            lag_load: 0.5,
            verify: false,
            pin: true,
            gzip_level: None,
            replication_nice: None,
            rounds: 3,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ReplicationReport {
    pub points: u64,
    /// A and the client on CPU 0, B on CPU 1 (each phase's nodes likewise).
    pub pinned: bool,
    /// A's `replication_gzip_level`.
    pub gzip_level: u32,
    /// A's `replication_nice`.
    pub replication_nice: u32,
    /// The rounds' medians.
    #[serde(flatten)]
    pub medians: RoundReport,
    pub lag: LagReport,
    /// Present with `--verify`: the live replication's remote, then the drained one's.
    pub verify: Vec<VerifyReport>,
    pub rounds: Vec<RoundReport>,
}

/// One round of the ingest and drain comparisons.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RoundReport {
    /// `bench ingest` points/s into a node without, and with, one live replication.
    pub ingest_without_replication: f64,
    pub ingest_with_replication: f64,
    pub ingest_ratio: f64,
    /// Seconds for the live replication's queue to empty after its ingest ended.
    pub live_catch_up_seconds: f64,
    /// A queue of `points` drained into B.
    pub drain_points_per_s: f64,
    /// `bench ingest` points/s straight into a fresh node like B.
    pub remote_direct_ingest: f64,
    pub drain_ratio: f64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct LagReport {
    /// Points/s asked (`--lag-load` x the remote's direct ingest) and written.
    pub target_points_per_s: f64,
    pub written_points_per_s: f64,
    pub writes: usize,
    pub points: u64,
    /// Writes sent later than their schedule (the source was behind).
    pub late_writes: usize,
    pub lag_ms_p50: f64,
    pub lag_ms_p99: f64,
    pub lag_ms_max: f64,
    pub poll_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct VerifyReport {
    pub phase: String,
    pub points_on_source: u64,
    pub points_on_remote: u64,
    /// Field values compared (points x fields).
    pub values_compared: u64,
    /// The first difference found, if any.
    pub first_difference: Option<String>,
    pub identical: bool,
}

impl ReplicationReport {
    /// Every verification found the remote identical to the source, with every point.
    pub(crate) fn verified(&self) -> bool {
        self.verify
            .iter()
            .all(|v| v.identical && v.points_on_source == self.points)
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ReplicationBenchError {
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    #[error("starting a node: {0}")]
    Start(String),
    #[error("{0}")]
    Node(String),
    #[error(transparent)]
    Ingest(#[from] super::ingest::IngestError),
}

type Result<T> = std::result::Result<T, ReplicationBenchError>;

fn node_error(e: impl std::fmt::Display) -> ReplicationBenchError {
    ReplicationBenchError::Node(e.to_string())
}

/// A client of a node for one thread, with a runtime of its own.
struct Blocking {
    runtime: tokio::runtime::Runtime,
    client: InfluxClient,
}

impl Blocking {
    /// Without `keep_alive`, a connection per request: this thread's runtime does not run
    /// between calls, so a pooled connection the node closed meanwhile would not be
    /// noticed until a request failed on it.
    fn new(url: &str, keep_alive: bool) -> Result<Blocking> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(node_error)?;
        let client = InfluxClient::new(
            url,
            ClientOptions {
                connect_timeout: Duration::from_secs(5),
                request_timeout: Some(Duration::from_secs(300)),
                gzip_writes: false,
                max_idle_per_host: (!keep_alive).then_some(0),
                ..ClientOptions::default()
            },
        )
        .map_err(node_error)?;
        Ok(Blocking { runtime, client })
    }

    /// A request with a JSON body (if any); the answer's status and JSON (Null if none).
    fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<(u16, Value)> {
        let mut request = self.client.request(method, path);
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        self.runtime.block_on(async {
            let response = request
                .send()
                .await
                .map_err(|e| node_error(format!("{path}: {e}")))?;
            let status = response.status().as_u16();
            let bytes = response.bytes().await.map_err(node_error)?;
            let value = match bytes.is_empty() {
                true => Value::Null,
                false => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            };
            Ok((status, value))
        })
    }

    /// A call that must answer `want`.
    fn expect(&self, method: Method, path: &str, body: Option<Value>, want: u16) -> Result<Value> {
        let (status, value) = self.call(method, path, body)?;
        match status == want {
            true => Ok(value),
            false => Err(node_error(format!("{path}: HTTP {status}: {value}"))),
        }
    }

    fn text(&self, path: &str) -> Result<String> {
        let request = self.client.request(Method::GET, path);
        self.runtime.block_on(async {
            let response = self.client.send(path, request).await.map_err(node_error)?;
            response.text().await.map_err(node_error)
        })
    }
}

/// A node this command runs: set up through `/api/v2/setup` with org `acme` and one
/// bucket.
struct Node {
    url: String,
    child: Child,
    api: Blocking,
    org_id: String,
    bucket_id: String,
    remote_id: Option<String>,
    replication_id: Option<String>,
}

impl Node {
    /// Starts the node, on CPU `cpu` alone if given.
    /// With `config`, a config file holding it (TOML).
    fn start(
        root: &Path,
        name: &str,
        bucket: &str,
        cpu: Option<usize>,
        config: Option<&str>,
    ) -> Result<Node> {
        let start = |e: std::io::Error| ReplicationBenchError::Start(e.to_string());
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).map_err(start)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(start)?
            .port();
        let log = std::fs::File::create(root.join(format!("{name}.log"))).map_err(start)?;
        let mut command = Command::new(std::env::current_exe().map_err(start)?);
        if let Some(cpu) = cpu {
            // SAFETY: only sched_setaffinity, a system call, runs between fork and exec.
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(&mut command, move || {
                    pin(cpu).map_err(std::io::Error::from_raw_os_error)
                });
            }
        }
        command.arg("serve");
        if let Some(config) = config {
            let path = root.join(format!("{name}.toml"));
            std::fs::write(&path, config).map_err(start)?;
            command.arg("--config").arg(path);
        }
        let child = command
            .arg("--bind")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(dir.join("data"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(start)?)
            .stderr(log)
            .spawn()
            .map_err(start)?;
        let url = format!("http://127.0.0.1:{port}");
        let api = Blocking::new(&url, false)?;
        let mut node = Node {
            url,
            child,
            api,
            org_id: String::new(),
            bucket_id: String::new(),
            remote_id: None,
            replication_id: None,
        };
        let started = Instant::now();
        while node.api.runtime.block_on(node.api.client.ping()).is_err() {
            if started.elapsed() > Duration::from_secs(60) {
                return Err(ReplicationBenchError::Start(format!(
                    "{name} did not answer /ping within 60 s (log: {})",
                    root.join(format!("{name}.log")).display()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let setup = node.api.expect(
            Method::POST,
            "/api/v2/setup",
            Some(json!({"username": "owner", "password": "ownerpassword", "org": "acme", "bucket": bucket})),
            201,
        )?;
        node.org_id = setup["org"]["id"].as_str().unwrap_or_default().to_owned();
        node.bucket_id = setup["bucket"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        Ok(node)
    }

    /// Replicates the node's bucket to bucket `copy` of the node at `url`.
    fn replicate_to(&mut self, url: &str) -> Result<()> {
        let remote = self.api.expect(
            Method::POST,
            "/api/v2/remotes",
            Some(json!({"orgID": self.org_id, "name": "b", "remoteURL": url, "remoteAPIToken": "unused"})),
            201,
        )?;
        let remote_id = remote["id"].as_str().unwrap_or_default().to_owned();
        let replication = self.api.expect(
            Method::POST,
            "/api/v2/replications",
            Some(
                json!({"orgID": self.org_id, "name": "to-b", "remoteID": remote_id,
                        "localBucketID": self.bucket_id, "remoteBucketName": REMOTE_BUCKET,
                        "maxQueueSizeBytes": 1u64 << 40}),
            ),
            201,
        )?;
        self.replication_id = replication["id"].as_str().map(str::to_owned);
        self.remote_id = Some(remote_id);
        Ok(())
    }

    fn repoint(&self, url: &str) -> Result<()> {
        let id = self.remote_id.as_deref().unwrap_or_default();
        self.api.expect(
            Method::PATCH,
            &format!("/api/v2/remotes/{id}"),
            Some(json!({"remoteURL": url})),
            200,
        )?;
        Ok(())
    }

    fn queued_bytes(&self) -> Result<u64> {
        let id = self.replication_id.as_deref().unwrap_or_default();
        let r = self.api.expect(
            Method::GET,
            &format!("/api/v2/replications/{id}"),
            None,
            200,
        )?;
        Ok(r["currentQueueSizeBytes"].as_u64().unwrap_or(u64::MAX))
    }

    /// Waits until the replication's queue is empty; the seconds it took.
    fn drained(&self) -> Result<f64> {
        let started = Instant::now();
        while self.queued_bytes()? > 0 {
            if started.elapsed() > DRAIN_LIMIT {
                return Err(node_error(format!(
                    "the queue of {} did not drain within {} s",
                    self.url,
                    DRAIN_LIMIT.as_secs()
                )));
            }
            std::thread::sleep(POLL);
        }
        Ok(started.elapsed().as_secs_f64())
    }

    fn ingest(&self, points: u64, connections: usize) -> Result<f64> {
        let report = super::ingest::run(&IngestOptions {
            url: self.url.clone(),
            db: SOURCE_BUCKET.to_owned(),
            points,
            connections,
            ..IngestOptions::default()
        })?;
        if report.errors > 0 {
            return Err(node_error(format!(
                "bench ingest into {}: {} errors, the first: {}",
                self.url,
                report.errors,
                report.first_error.unwrap_or_default()
            )));
        }
        Ok(report.points_per_s)
    }
}

/// Pins the calling thread (and the threads it starts from then on) to CPU `cpu`.
fn pin(cpu: usize) -> std::result::Result<(), i32> {
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET writes within it.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    match rc {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL)),
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn run(
    opts: &ReplicationBenchOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<ReplicationReport> {
    if opts.points == 0 || opts.connections == 0 || opts.rounds == 0 {
        return Err(ReplicationBenchError::InvalidOptions(
            "--points, --connections and --rounds must be at least 1".into(),
        ));
    }
    if !(opts.lag_load > 0.0 && opts.lag_seconds > 0.0) {
        return Err(ReplicationBenchError::InvalidOptions(
            "--lag-load and --lag-seconds must be above 0".into(),
        ));
    }
    let scratch = tempfile::tempdir().map_err(|e| ReplicationBenchError::Start(e.to_string()))?;
    let root = scratch.path();
    let points = opts.points;
    let mut verify = Vec::new();
    let a_config = [
        opts.gzip_level
            .map(|l| format!("replication_gzip_level = {l}\n")),
        opts.replication_nice
            .map(|n| format!("replication_nice = {n}\n")),
    ]
    .into_iter()
    .flatten()
    .reduce(|a, b| a + &b);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pinned = opts.pin && cpus >= 2;
    let (a_cpu, b_cpu) = match pinned {
        true => {
            pin(0).map_err(|e| {
                ReplicationBenchError::Start(std::io::Error::from_raw_os_error(e).to_string())
            })?;
            (Some(0), Some(1))
        }
        false => (None, None),
    };

    let mut rounds = Vec::with_capacity(opts.rounds);
    for round in 0..opts.rounds {
        let of = |step: &str| format!("round {}/{}: {step}", round + 1, opts.rounds);
        // Odd rounds run the replicated side first.
        let first = round % 2 == 0;
        let (mut without, mut with, mut live_catch_up_seconds) = (0.0, 0.0, 0.0);
        for plain in [first, !first] {
            if plain {
                progress(&of("ingest into a node without a replication"));
                without = Node::start(root, "plain", SOURCE_BUCKET, a_cpu, None)?
                    .ingest(points, opts.connections)?;
                continue;
            }
            progress(&of("ingest into a node with one live replication"));
            let b = Node::start(root, "live-b", REMOTE_BUCKET, b_cpu, None)?;
            let mut a = Node::start(root, "live-a", SOURCE_BUCKET, a_cpu, a_config.as_deref())?;
            a.replicate_to(&b.url)?;
            with = a.ingest(points, opts.connections)?;
            live_catch_up_seconds = a.drained()?;
            if opts.verify && round == 0 {
                progress("verify the live replication's remote, value by value");
                verify.push(compare("live", &a, &b, points)?);
            }
        }
        let (mut drain, mut direct) = (0.0, 0.0);
        for drained in [first, !first] {
            if !drained {
                progress(&of("ingest straight into a fresh remote"));
                direct = Node::start(root, "direct-b", REMOTE_BUCKET, b_cpu, None)?
                    .ingest(points, opts.connections)?;
                continue;
            }
            progress(&of("drain a full queue into a fresh remote"));
            let mut a = Node::start(root, "drain-a", SOURCE_BUCKET, a_cpu, a_config.as_deref())?;
            // Nothing listens there: the queue only fills.
            a.replicate_to("http://127.0.0.1:1")?;
            a.ingest(points, opts.connections)?;
            let b = Node::start(root, "drain-b", REMOTE_BUCKET, b_cpu, None)?;
            let started = Instant::now();
            a.repoint(&b.url)?;
            a.drained()?;
            drain = points as f64 / started.elapsed().as_secs_f64();
            if opts.verify && round == 0 {
                progress("verify the drained remote, value by value");
                verify.push(compare("drain", &a, &b, points)?);
            }
        }
        // Each run's nodes start on fresh directories of their own.
        for name in [
            "plain", "live-a", "live-b", "drain-a", "drain-b", "direct-b",
        ] {
            let _ = std::fs::remove_dir_all(root.join(name));
        }
        rounds.push(RoundReport {
            ingest_without_replication: without,
            ingest_with_replication: with,
            ingest_ratio: with / without,
            live_catch_up_seconds,
            drain_points_per_s: drain,
            remote_direct_ingest: direct,
            drain_ratio: drain / direct,
        });
    }
    let med = |f: fn(&RoundReport) -> f64| super::median(rounds.iter().map(f).collect());
    let direct = med(|r| r.remote_direct_ingest);

    progress("replication lag under a steady load");
    let lag = lag(
        root,
        opts,
        direct * opts.lag_load,
        (a_cpu, b_cpu),
        a_config.as_deref(),
    )?;

    Ok(ReplicationReport {
        points,
        pinned,
        gzip_level: opts.gzip_level.unwrap_or(1),
        replication_nice: opts.replication_nice.unwrap_or(10),
        medians: RoundReport {
            ingest_without_replication: med(|r| r.ingest_without_replication),
            ingest_with_replication: med(|r| r.ingest_with_replication),
            ingest_ratio: med(|r| r.ingest_ratio),
            live_catch_up_seconds: med(|r| r.live_catch_up_seconds),
            drain_points_per_s: med(|r| r.drain_points_per_s),
            remote_direct_ingest: direct,
            drain_ratio: med(|r| r.drain_ratio),
        },
        lag,
        verify,
        rounds,
    })
}

/// The replication's points delivered so far, as A's `/metrics` counts them.
fn sent_points(api: &Blocking, replication: &str) -> Result<u64> {
    let text = api.text("/metrics")?;
    let prefix =
        format!("shardkeeper_replication_sent_points_total{{replication=\"{replication}\"");
    Ok(text
        .lines()
        .find(|l| l.starts_with(&prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64))
}

fn lag(
    root: &Path,
    opts: &ReplicationBenchOptions,
    rate: f64,
    (a_cpu, b_cpu): (Option<usize>, Option<usize>),
    a_config: Option<&str>,
) -> Result<LagReport> {
    let b = Node::start(root, "lag-b", REMOTE_BUCKET, b_cpu, None)?;
    let mut a = Node::start(root, "lag-a", SOURCE_BUCKET, a_cpu, a_config)?;
    a.replicate_to(&b.url)?;
    let total = ((rate * opts.lag_seconds) as u64).max(LAG_BATCH as u64);
    let batches = super::ingest::generate_batches(&IngestOptions {
        points: total,
        batch: LAG_BATCH,
        seed: 1,
        ..IngestOptions::default()
    });
    let interval = Duration::from_secs_f64(LAG_BATCH as f64 / rate);
    let replication = a.replication_id.clone().unwrap_or_default();

    // The poller: (when, points delivered) each time the count moves.
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Arc<Mutex<Vec<(Instant, u64)>>> = Arc::default();
    let poller = {
        let (stop, seen, url, replication) = (
            stop.clone(),
            seen.clone(),
            a.url.clone(),
            replication.clone(),
        );
        std::thread::spawn(move || -> Result<()> {
            let api = Blocking::new(&url, false)?;
            let mut last = 0;
            while !stop.load(Ordering::Acquire) {
                let n = sent_points(&api, &replication)?;
                if n != last {
                    last = n;
                    seen.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((Instant::now(), n));
                }
                std::thread::sleep(POLL);
            }
            Ok(())
        })
    };

    // Writes on a fixed schedule (write i at start + i x interval), up to WRITERS at once
    // on their own connections; a write that finds them all busy is late.
    let writer = Blocking::new(&a.url, true)?;
    let start = Instant::now();
    let (acks, late, cumulative) = writer.runtime.block_on(async {
        let gate = Arc::new(tokio::sync::Semaphore::new(WRITERS));
        let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut late = 0usize;
        let mut tasks = Vec::with_capacity(batches.len());
        for (i, body) in batches.into_iter().enumerate() {
            tokio::time::sleep_until((start + interval.mul_f64(i as f64)).into()).await;
            let permit = match gate.clone().try_acquire_owned() {
                Ok(p) => p,
                Err(_) => {
                    late += 1;
                    gate.clone().acquire_owned().await.map_err(node_error)?
                }
            };
            let (client, sent) = (writer.client.clone(), sent.clone());
            tasks.push(tokio::spawn(async move {
                let points = body.iter().filter(|&&c| c == b'\n').count() as u64;
                sent.fetch_add(points, Ordering::AcqRel);
                let target = WriteTarget::V1 {
                    db: SOURCE_BUCKET,
                    rp: None,
                };
                client
                    .write(target, Precision::Nanoseconds, &body)
                    .await
                    .map_err(node_error)?;
                drop(permit);
                // Whatever precedes this write in A's data log was sent before it was
                // acknowledged: once A has delivered that many points, it has this one.
                Ok::<_, ReplicationBenchError>((Instant::now(), sent.load(Ordering::Acquire)))
            }));
        }
        let mut acks = Vec::with_capacity(tasks.len());
        for t in tasks {
            acks.push(t.await.map_err(node_error)??);
        }
        Ok::<_, ReplicationBenchError>((acks, late, sent.load(Ordering::Acquire)))
    })?;
    let seconds = start.elapsed().as_secs_f64();
    a.drained()?;
    // The last delivery's record, then the poller's last look.
    let settled = Instant::now();
    while seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .last()
        .is_none_or(|&(_, n)| n < cumulative)
    {
        if settled.elapsed() > Duration::from_secs(30) {
            break;
        }
        std::thread::sleep(POLL);
    }
    stop.store(true, Ordering::Release);
    poller
        .join()
        .map_err(|_| node_error("the lag poller panicked"))??;

    let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut lags = Latencies::default();
    for &(acked, upto) in &acks {
        let delivered = seen
            .iter()
            .find(|&&(_, n)| n >= upto)
            .map(|&(when, _)| when)
            .ok_or_else(|| {
                node_error(format!(
                    "A never reported {upto} points delivered (last: {:?})",
                    seen.last()
                ))
            })?;
        lags.record(delivered.saturating_duration_since(acked).as_secs_f64() * 1e3);
    }
    Ok(LagReport {
        target_points_per_s: rate,
        written_points_per_s: cumulative as f64 / seconds,
        writes: acks.len(),
        points: cumulative,
        late_writes: late,
        lag_ms_p50: lags.percentile(50.0),
        lag_ms_p99: lags.percentile(99.0),
        lag_ms_max: lags.max(),
        poll_ms: POLL.as_secs_f64() * 1e3,
    })
}

/// Every point of the workload read back from A (`benchmark`) and B (`copy`), 10
/// timestamps at a time, the answers compared whole.
fn compare(phase: &str, a: &Node, b: &Node, points: u64) -> Result<VerifyReport> {
    let steps = points.div_ceil(HOSTS as u64);
    let mut report = VerifyReport {
        phase: phase.to_owned(),
        points_on_source: 0,
        points_on_remote: 0,
        values_compared: 0,
        first_difference: None,
        identical: true,
    };
    let mut step = 0;
    while step < steps {
        let from = START_NS + step * INTERVAL_SECS * 1_000_000_000;
        let to = from + VERIFY_STEPS * INTERVAL_SECS * 1_000_000_000;
        let q = format!("SELECT * FROM cpu WHERE time >= {from} AND time < {to} GROUP BY *");
        let on_a = series(&a.api, SOURCE_BUCKET, &q)?;
        let on_b = series(&b.api, REMOTE_BUCKET, &q)?;
        let rows = |s: &Value| -> u64 {
            s.as_array().map_or(0, |all| {
                all.iter()
                    .map(|s| s["values"].as_array().map_or(0, |v| v.len() as u64))
                    .sum()
            })
        };
        let (rows_a, rows_b) = (rows(&on_a), rows(&on_b));
        report.points_on_source += rows_a;
        report.points_on_remote += rows_b;
        if on_a == on_b {
            let fields = on_a
                .as_array()
                .and_then(|s| s.first())
                .and_then(|s| s["columns"].as_array())
                .map_or(0, |c| c.len().saturating_sub(1) as u64);
            report.values_compared += rows_a * fields;
        } else if report.first_difference.is_none() {
            report.first_difference = Some(first_difference(&on_a, &on_b, from, to));
        }
        step += VERIFY_STEPS;
    }
    report.identical =
        report.first_difference.is_none() && report.points_on_source == report.points_on_remote;
    Ok(report)
}

fn series(api: &Blocking, db: &str, q: &str) -> Result<Value> {
    let request =
        api.client
            .request(Method::GET, "/query")
            .query(&[("db", db), ("epoch", "ns"), ("q", q)]);
    let answer: Value = api.runtime.block_on(async {
        let response = api
            .client
            .send("/query", request)
            .await
            .map_err(node_error)?;
        let bytes = response.bytes().await.map_err(node_error)?;
        serde_json::from_slice(&bytes).map_err(node_error)
    })?;
    let result = &answer["results"][0];
    if let Some(e) = result.get("error") {
        return Err(node_error(format!("{q}: {e}")));
    }
    Ok(result.get("series").cloned().unwrap_or(json!([])))
}

/// Where two answers first part: a series missing, or a row that differs.
fn first_difference(a: &Value, b: &Value, from: u64, to: u64) -> String {
    let empty = Vec::new();
    let (sa, sb) = (
        a.as_array().unwrap_or(&empty),
        b.as_array().unwrap_or(&empty),
    );
    for (i, s) in sa.iter().enumerate() {
        let Some(t) = sb.get(i) else {
            return format!("series {} missing on the remote", s["tags"]);
        };
        if s["tags"] != t["tags"] || s["columns"] != t["columns"] {
            return format!(
                "series {} on the source, {} on the remote",
                s["tags"], t["tags"]
            );
        }
        let (ra, rb) = (
            s["values"].as_array().unwrap_or(&empty),
            t["values"].as_array().unwrap_or(&empty),
        );
        for (j, row) in ra.iter().enumerate() {
            if rb.get(j) != Some(row) {
                return format!(
                    "series {}: row {row} on the source, {:?} on the remote",
                    s["tags"],
                    rb.get(j)
                );
            }
        }
        if rb.len() > ra.len() {
            return format!("series {}: more rows on the remote", s["tags"]);
        }
    }
    format!(
        "{} series on the source, {} on the remote, between {from} and {to}",
        sa.len(),
        sb.len()
    )
}
