//! `bench contention`: does a node keep answering its cheap requests while it is busy
//! with expensive ones? Issue 13's bar: under 32 clients sending wrong passwords and 10
//! sending heavy queries, `/ping` p99 stays under 50 ms and another client's writes keep
//! their p99 within 2x of idle.
//!
//! Two kinds of phase of `seconds` each against any InfluxDB 1.x-compatible URL: idle
//! (only the measured ping and write loops) and loaded (the same loops beside the load),
//! alternated for `rounds` rounds and pooled by kind, so that a spell of slow disk syncs
//! (these machines have them) falls on both kinds rather than on one. With auth
//! off (influxd's default) the wrong-password clients simply get 200s; the report counts
//! the statuses they saw. The load's client threads run in `SCHED_IDLE`: they stand in for
//! clients on other machines, and must not take the cores from the node or from the
//! measured loops (at nice 19 they still held a core for a slice on every wake-up).

use crate::client::{ClientError, ClientOptions, Credentials, InfluxClient, Method, WriteTarget};
use crate::line_protocol::Precision;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) struct ContentionOptions {
    pub url: String,
    pub db: String,
    /// Valid admin credentials for the bench's own writes and queries (auth on).
    pub user: Option<String>,
    pub password: Option<String>,
    /// Length of each phase.
    pub seconds: f64,
    /// Idle and loaded phases each run this many times, alternated.
    pub rounds: usize,
    pub wrong_password_clients: usize,
    pub heavy_query_clients: usize,
}

/// Series and points per series written for the heavy query: one point a second for
/// 100 minutes in each of 100 series, 600,000 points.
const HEAVY_SERIES: usize = 100;
const HEAVY_POINTS_PER_SERIES: usize = 6000;
const LOAD_BATCH_LINES: usize = 5000;
/// Lines in each batch of the measured writer, and its pace.
const STEADY_BATCH_LINES: usize = 1000;
const STEADY_WRITE_EVERY: Duration = Duration::from_millis(100);
const PING_EVERY: Duration = Duration::from_millis(10);
/// 2026-01-01T00:00:00Z.
const T0_NS: i64 = 1_767_225_600_000_000_000;
const SEC_NS: i64 = 1_000_000_000;

#[derive(Debug, Serialize)]
pub(crate) struct Latencies {
    pub count: usize,
    pub errors: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Phase {
    pub ping: Latencies,
    pub write: Latencies,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heavy_query: Option<Latencies>,
    /// Status code (or "transport") to how many wrong-password requests got it.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub wrong_password_statuses: BTreeMap<String, usize>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ContentionReport {
    pub url: String,
    pub seconds_per_phase: f64,
    pub rounds: usize,
    pub wrong_password_clients: usize,
    pub heavy_query_clients: usize,
    pub heavy_query: String,
    pub heavy_query_points: usize,
    /// One run of the heavy query on the idle node, before the phases.
    pub heavy_query_alone_ms: f64,
    pub idle: Phase,
    pub loaded: Phase,
    pub ping_p99_loaded_over_idle: f64,
    pub write_p99_loaded_over_idle: f64,
    /// Issue 13's bar: loaded ping p99 < 50 ms and write p99 within 2x of idle.
    pub ping_p99_under_50ms: bool,
    pub write_p99_within_2x_idle: bool,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ContentionBenchError {
    #[error("{url}: {what}: {reason}")]
    Failed {
        url: String,
        what: String,
        reason: String,
    },
}

/// The heavy query: every series' per-minute mean over the whole loaded range.
pub(crate) fn heavy_query() -> String {
    let end = T0_NS + HEAVY_POINTS_PER_SERIES as i64 * SEC_NS;
    format!("SELECT mean(v) FROM heavy WHERE time >= {T0_NS} AND time < {end} GROUP BY time(1m), *")
}

/// One measured loop's or load client's connection to the node. Each runs on a thread of
/// its own (so that the load's can run in `SCHED_IDLE`), with a runtime of its own for
/// the async client.
struct Client {
    runtime: tokio::runtime::Runtime,
    node: InfluxClient,
    db: String,
    /// The user that the wrong-password clients name.
    user: String,
}

impl Client {
    fn new(opts: &ContentionOptions) -> Result<Client, ContentionBenchError> {
        let credentials = match (&opts.user, &opts.password) {
            (Some(user), Some(password)) => Credentials::Basic {
                user: user.clone(),
                password: password.clone(),
            },
            _ => Credentials::None,
        };
        let failed = |reason: String| ContentionBenchError::Failed {
            url: opts.url.clone(),
            what: "making a client".to_owned(),
            reason,
        };
        let options = ClientOptions {
            credentials,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(120),
            gzip_writes: false,
            ..ClientOptions::default()
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| failed(e.to_string()))?;
        Ok(Client {
            runtime,
            node: InfluxClient::new(&opts.url, options).map_err(|e| failed(e.to_string()))?,
            db: opts.db.clone(),
            user: opts.user.clone().unwrap_or_else(|| "admin".to_owned()),
        })
    }

    fn ping(&self) -> Result<(), String> {
        self.runtime
            .block_on(self.node.ping())
            .map(drop)
            .map_err(describe)
    }

    fn write(&self, body: &str) -> Result<(), String> {
        let target = WriteTarget::V1 {
            db: &self.db,
            rp: None,
        };
        self.runtime
            .block_on(
                self.node
                    .write(target, Precision::Nanoseconds, body.as_bytes()),
            )
            .map_err(describe)
    }

    fn query(&self, q: &str) -> Result<(), String> {
        let answer = self
            .runtime
            .block_on(self.node.query(Some(&self.db), q))
            .map_err(describe)?;
        match answer.results.first().and_then(|r| r.error.clone()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// A query with a wrong password: the status it got, or "transport".
    fn wrong_password(&self) -> String {
        let wrong = self.node.with_credentials(Credentials::Basic {
            user: self.user.clone(),
            password: "wrong-password".to_owned(),
        });
        let request = wrong
            .request(Method::GET, "/query")
            .query(&[("q", "SHOW DATABASES")]);
        match self.runtime.block_on(wrong.send("/query", request)) {
            Ok(r) => r.status().as_u16().to_string(),
            Err(ClientError::Status { status, .. }) => status.to_string(),
            Err(_) => "transport".to_owned(),
        }
    }
}

fn describe(e: ClientError) -> String {
    match e {
        ClientError::Status { status, body, .. } => format!("{status}: {body}"),
        ClientError::Transport { message, .. } => format!("transport: {message}"),
        other => other.to_string(),
    }
}

pub(crate) fn run(opts: &ContentionOptions) -> Result<ContentionReport, ContentionBenchError> {
    let client = Client::new(opts)?;
    let failed = |what: &str, reason: String| ContentionBenchError::Failed {
        url: opts.url.clone(),
        what: what.to_owned(),
        reason,
    };
    client
        .query(&format!("CREATE DATABASE \"{}\"", opts.db))
        .map_err(|e| failed("CREATE DATABASE", e))?;
    load_heavy_data(&client).map_err(|e| failed("writing the heavy query's data", e))?;
    let started = Instant::now();
    client
        .query(&heavy_query())
        .map_err(|e| failed("heavy query", e))?;
    let heavy_query_alone_ms = ms(started.elapsed());

    let phase = Duration::from_secs_f64(opts.seconds.max(0.1));
    let rounds = opts.rounds.max(1);
    let (mut idle, mut loaded) = (Samples::default(), Samples::default());
    for _ in 0..rounds {
        idle.extend(run_phase(opts, phase, false)?);
        loaded.extend(run_phase(opts, phase, true)?);
    }
    let (idle, loaded) = (idle.phase(false), loaded.phase(true));
    let ratio = |loaded: f64, idle: f64| if idle > 0.0 { loaded / idle } else { 0.0 };
    Ok(ContentionReport {
        url: opts.url.clone(),
        seconds_per_phase: phase.as_secs_f64(),
        rounds,
        wrong_password_clients: opts.wrong_password_clients,
        heavy_query_clients: opts.heavy_query_clients,
        heavy_query: heavy_query(),
        heavy_query_points: HEAVY_SERIES * HEAVY_POINTS_PER_SERIES,
        heavy_query_alone_ms,
        ping_p99_loaded_over_idle: ratio(loaded.ping.p99_ms, idle.ping.p99_ms),
        write_p99_loaded_over_idle: ratio(loaded.write.p99_ms, idle.write.p99_ms),
        ping_p99_under_50ms: loaded.ping.errors == 0 && loaded.ping.p99_ms < 50.0,
        write_p99_within_2x_idle: loaded.write.errors == 0
            && loaded.write.p99_ms <= 2.0 * idle.write.p99_ms,
        idle,
        loaded,
    })
}

fn load_heavy_data(client: &Client) -> Result<(), String> {
    let mut batch = String::new();
    let mut lines = 0;
    for i in 0..HEAVY_POINTS_PER_SERIES {
        for s in 0..HEAVY_SERIES {
            let t = T0_NS + i as i64 * SEC_NS;
            batch.push_str(&format!(
                "heavy,host=h{s:03} v={}.5 {t}\n",
                (i * 7 + s) % 100
            ));
            lines += 1;
            if lines == LOAD_BATCH_LINES {
                client.write(&batch)?;
                batch.clear();
                lines = 0;
            }
        }
    }
    match batch.is_empty() {
        true => Ok(()),
        false => client.write(&batch),
    }
}

/// One phase: the measured ping and write loops, and with `loaded` the load beside them,
/// all stopped at the phase's end (a request under way then is let finish).
fn run_phase(
    opts: &ContentionOptions,
    length: Duration,
    loaded: bool,
) -> Result<Samples, ContentionBenchError> {
    // Every client is made before any thread starts, so that a failure leaves none running.
    let clients = |n: usize| {
        (0..n)
            .map(|_| Client::new(opts))
            .collect::<Result<Vec<_>, _>>()
    };
    let (wrong_password_clients, heavy_query_clients) = match loaded {
        true => (
            clients(opts.wrong_password_clients)?,
            clients(opts.heavy_query_clients)?,
        ),
        false => (Vec::new(), Vec::new()),
    };
    let (pinger, writer) = (Client::new(opts)?, Client::new(opts)?);
    let stop = Arc::new(AtomicBool::new(false));
    let until_stopped = |pace: Option<Duration>, mut work: Box<dyn FnMut() + Send>| {
        let stop = stop.clone();
        // The load stands in for clients on other machines: here it shares the node's
        // cores, so its own threads (sending, and parsing 10,000-row answers) run below
        // the measured loops and the node rather than beside them.
        let is_load = pace.is_none();
        std::thread::spawn(move || {
            if is_load {
                crate::priority::idle_current_thread();
            } else {
                crate::priority::quicken_current_thread();
            }
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                work();
                if let Some(pace) = pace {
                    std::thread::sleep(pace.saturating_sub(started.elapsed()));
                }
            }
        })
    };
    let mut load = Vec::new();
    let (status_tx, status_rx) = std::sync::mpsc::channel::<String>();
    let (heavy_tx, heavy_rx) = std::sync::mpsc::channel::<Result<f64, String>>();
    for client in wrong_password_clients {
        let tx = status_tx.clone();
        load.push(until_stopped(
            None,
            Box::new(move || {
                let _ = tx.send(client.wrong_password());
            }),
        ));
    }
    for client in heavy_query_clients {
        let tx = heavy_tx.clone();
        load.push(until_stopped(
            None,
            Box::new(move || {
                let started = Instant::now();
                let outcome = client.query(&heavy_query()).map(|()| ms(started.elapsed()));
                let _ = tx.send(outcome);
            }),
        ));
    }
    drop((status_tx, heavy_tx));

    let (ping_tx, ping_rx) = std::sync::mpsc::channel();
    let measured_ping = until_stopped(
        Some(PING_EVERY),
        Box::new(move || {
            let started = Instant::now();
            let _ = ping_tx.send(pinger.ping().map(|()| ms(started.elapsed())));
        }),
    );
    let (write_tx, write_rx) = std::sync::mpsc::channel();
    let mut next_time = T0_NS + (HEAVY_POINTS_PER_SERIES as i64 + 3600) * SEC_NS;
    let measured_write = until_stopped(
        Some(STEADY_WRITE_EVERY),
        Box::new(move || {
            let mut body = String::with_capacity(STEADY_BATCH_LINES * 40);
            for i in 0..STEADY_BATCH_LINES {
                body.push_str(&format!("steady,line=l{i:04} v={i}i {next_time}\n"));
            }
            next_time += SEC_NS;
            let started = Instant::now();
            let _ = write_tx.send(writer.write(&body).map(|()| ms(started.elapsed())));
        }),
    );

    std::thread::sleep(length);
    stop.store(true, Ordering::Relaxed);
    for t in load.into_iter().chain([measured_ping, measured_write]) {
        let _ = t.join();
    }
    let mut samples = Samples {
        ping: ping_rx.try_iter().collect(),
        write: write_rx.try_iter().collect(),
        heavy_query: heavy_rx.try_iter().collect(),
        ..Samples::default()
    };
    for status in status_rx.try_iter() {
        *samples.wrong_password_statuses.entry(status).or_insert(0) += 1;
    }
    Ok(samples)
}

/// What phases of one kind saw, pooled.
#[derive(Default)]
struct Samples {
    ping: Vec<Result<f64, String>>,
    write: Vec<Result<f64, String>>,
    heavy_query: Vec<Result<f64, String>>,
    wrong_password_statuses: BTreeMap<String, usize>,
}

impl Samples {
    fn extend(&mut self, other: Samples) {
        self.ping.extend(other.ping);
        self.write.extend(other.write);
        self.heavy_query.extend(other.heavy_query);
        for (status, n) in other.wrong_password_statuses {
            *self.wrong_password_statuses.entry(status).or_insert(0) += n;
        }
    }

    fn phase(self, loaded: bool) -> Phase {
        Phase {
            ping: latencies(self.ping.into_iter()),
            write: latencies(self.write.into_iter()),
            heavy_query: loaded.then(|| latencies(self.heavy_query.into_iter())),
            wrong_password_statuses: self.wrong_password_statuses,
        }
    }
}

fn latencies(outcomes: impl Iterator<Item = Result<f64, String>>) -> Latencies {
    let mut samples = super::Latencies::default();
    let (mut errors, mut first_error) = (0, None);
    for outcome in outcomes {
        match outcome {
            Ok(ms) => samples.record(ms),
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    Latencies {
        count: samples.len() as usize,
        errors,
        p50_ms: samples.percentile(50.0),
        p99_ms: samples.percentile(99.0),
        max_ms: samples.max(),
        first_error,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
