//! Migrations: influx-proxy's rebalance, recovery, resync and clear, as durable jobs.
//!
//! A job is a `MigrationStarted` event in the proxy's journal. Its runner makes, once per
//! source backend, a plan (`MigrationPlanned`: the databases and measurements that
//! backend holds, and where each goes), then works through the plan's measurements
//! (`cpus` at a time per source) and records each one's progress (`MigrationProgress`,
//! after every time window copied) and end (`MigrationUnitDone`), then the job's
//! (`MigrationFinished`). A proxy restarted with a job unfinished resumes it from what
//! the journal holds: the same plan, each measurement from its last window.
//!
//! What each kind does, as influx-proxy 2.4.7 does it:
//! - rebalance (`circle_id`, `operation` add or rm, rm's removed backends in the body):
//!   every measurement of the circle's backends (and of the removed ones) whose owner on
//!   the circle's ring is another backend is copied there; the copies left behind are
//!   clear's to drop.
//! - recovery (`from_circle_id`, `to_circle_id`, `backend_urls`): every measurement of
//!   the first circle's backends is copied to its owner in the second (only to those
//!   listed, if any are).
//! - resync (`seconds` and friends): circle by circle, every measurement of each backend
//!   is copied to its owners in every other circle (only points of the last `seconds`).
//! - clear (`circle_id`): every measurement a backend of the circle holds but does not own
//!   is dropped from it.
//!
//! While a job runs, its circle is migrating (resync: the proxy is resyncing), so that
//! queries read elsewhere and other migrations wait; with `ha_addrs` the other proxies
//! are told (`POST /migrate/state`) as the job starts and ends.

pub(crate) mod copy;
pub(crate) mod diff;
pub(crate) mod ledger;

use super::backend::Backend;
use super::config::BackendConfig;
use super::journal::state;
use super::ring::placement_key;
use super::service::ProxyService;
use crate::client::{ClientOptions, Credentials, InfluxClient, Method, QueryAnswer, TlsOptions};
use crate::log::LogError;
use crate::proto::{
    proxy_event::Kind as EventKind, MigrationBackend, MigrationFinished, MigrationPlanned,
    MigrationProgress, MigrationStarted, MigrationUnitDone, PlannedDatabase, PlannedMeasurement,
};
use copy::{Copy, CopyError, Position};
use ledger::Source;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a migration request asks for, checked by the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigrationKind {
    Rebalance {
        circle: usize,
        /// `rm`: the backends removed from the circle's config, read from.
        removed: Option<Vec<BackendConfig>>,
    },
    Recovery {
        from: usize,
        to: usize,
        backend_urls: Vec<String>,
    },
    Resync {
        seconds: u64,
    },
    Clear {
        circle: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationRequest {
    pub kind: MigrationKind,
    /// Empty: every database.
    pub databases: Vec<String>,
    pub cpus: usize,
    pub ha_addrs: Vec<String>,
}

/// Why a migration was not started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// influx-proxy's words (`circle N is migrating`, `proxy is resyncing`).
    #[error("{0}")]
    Busy(String),
    #[error("proxy journal: {0}")]
    Journal(#[from] LogError),
}

/// Tries of a source's `/ping` before it is passed over as not active.
const PING_TRIES: u32 = 3;
/// How long the other proxies (`ha_addrs`) are given to answer.
const TELL_TIMEOUT: Duration = Duration::from_secs(10);

impl MigrationRequest {
    pub(super) fn started(&self, job: u64, now_nanos: i64) -> MigrationStarted {
        let mut s = MigrationStarted {
            job,
            databases: self.databases.clone(),
            cpus: self.cpus as u32,
            ha_addrs: self.ha_addrs.clone(),
            ..MigrationStarted::default()
        };
        match &self.kind {
            MigrationKind::Rebalance { circle, removed } => {
                s.kind = "rebalance".into();
                s.circle_id = *circle as u32;
                s.operation = match removed {
                    Some(_) => "rm".into(),
                    None => "add".into(),
                };
                s.removed = removed
                    .iter()
                    .flatten()
                    .map(|b| MigrationBackend {
                        name: b.name.clone(),
                        url: b.url.clone(),
                        username: b.username.clone(),
                        password: b.password.clone(),
                    })
                    .collect();
            }
            MigrationKind::Recovery {
                from,
                to,
                backend_urls,
            } => {
                s.kind = "recovery".into();
                s.circle_id = *from as u32;
                s.to_circle_id = *to as u32;
                s.backend_urls = backend_urls.clone();
            }
            MigrationKind::Resync { seconds } => {
                s.kind = "resync".into();
                if *seconds > 0 {
                    let back = i64::try_from(*seconds)
                        .unwrap_or(i64::MAX)
                        .saturating_mul(1_000_000_000);
                    s.since_unix_nanos = now_nanos.saturating_sub(back).max(1);
                }
            }
            MigrationKind::Clear { circle } => {
                s.kind = "clear".into();
                s.circle_id = *circle as u32;
            }
        }
        s
    }
}

/// The flag a job sets while it runs: its circle's `is_migrating` (rebalance and clear:
/// the circle; recovery: the circle copied to), or the proxy's `is_resyncing`.
pub(super) fn set_running(service: &ProxyService, job: &MigrationStarted, on: bool) {
    match job.kind.as_str() {
        "resync" => service.resyncing.store(on, Ordering::Relaxed),
        kind => {
            let circle = match kind {
                "recovery" => job.to_circle_id,
                _ => job.circle_id,
            } as usize;
            if let Some(c) = service.circles.get(circle) {
                c.migrating.store(on, Ordering::Relaxed);
            }
        }
    }
}

/// Runs (or resumes) job `job` to its end. Stops early only when the journal refuses an
/// event: the job is then resumed at the next start.
pub(super) async fn run(service: Arc<ProxyService>, job: u64) {
    let started = {
        let state = service.journal().state();
        match state.migrations.jobs.get(&job) {
            Some(j) if j.finished_at.is_none() => j.started.clone(),
            _ => return,
        }
    };
    set_running(&service, &started, true);
    tell_others(&service, &started, true).await;
    tracing::info!(job, kind = %started.kind, "migration under way");
    for stage in stages(&service, &started) {
        let runs = stage.iter().map(|s| run_source(&service, &started, s));
        let outcomes = futures_util::future::join_all(runs).await;
        if let Some(e) = outcomes.into_iter().find_map(Result::err) {
            tracing::error!(job, error = %e, "migration stopped: its progress cannot be recorded; it resumes at the next start");
            return;
        }
    }
    let finished = state::event(EventKind::MigrationFinished(MigrationFinished { job }));
    if let Err(e) = service.journal().record(vec![finished]).await {
        tracing::error!(job, error = %e, "migration done but its end cannot be recorded; it resumes at the next start");
        return;
    }
    set_running(&service, &started, false);
    tell_others(&service, &started, false).await;
    tracing::info!(job, kind = %started.kind, "migration done");
}

/// A backend a job reads from, and the circle whose `/migrate/stats` counts it.
struct SourceBackend {
    backend: Arc<Backend>,
    circle: usize,
}

/// The sources of a job, in the stages run one after the other (resync: one per circle).
fn stages(service: &ProxyService, job: &MigrationStarted) -> Vec<Vec<SourceBackend>> {
    let of_circle = |c: usize| -> Vec<SourceBackend> {
        service
            .circle_backends(c)
            .into_iter()
            .map(|backend| SourceBackend { backend, circle: c })
            .collect()
    };
    let circle = job.circle_id as usize;
    match job.kind.as_str() {
        "resync" => (0..service.circles.len()).map(of_circle).collect(),
        "rebalance" => {
            let mut sources: Vec<SourceBackend> = job
                .removed
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    let config = BackendConfig {
                        name: r.name.clone(),
                        url: r.url.clone(),
                        username: r.username.clone(),
                        password: r.password.clone(),
                    };
                    match Backend::new(&service.config, &config, circle, i) {
                        Ok(b) => Some(SourceBackend {
                            backend: Arc::new(b),
                            circle,
                        }),
                        Err(e) => {
                            tracing::warn!(url = %r.url, error = %e, "a removed backend cannot be read from");
                            None
                        }
                    }
                })
                .collect();
            sources.extend(of_circle(circle));
            vec![sources]
        }
        _ => vec![of_circle(circle)],
    }
}

/// Where `db`'s `measurement`, found on `source`, goes (for clear: the owner it is
/// dropped for). Empty: it stays.
fn destinations(
    service: &ProxyService,
    job: &MigrationStarted,
    source: &SourceBackend,
    db: &str,
    measurement: &str,
) -> Vec<String> {
    let key = placement_key(db, measurement);
    let owner = |c: usize| {
        service.backends[service.circles[c].members[service.circles[c].ring.owner(key.as_bytes())]]
            .url
            .clone()
    };
    match job.kind.as_str() {
        "recovery" => {
            let url = owner(job.to_circle_id as usize);
            match job.backend_urls.is_empty() || job.backend_urls.contains(&url) {
                true => vec![url],
                false => Vec::new(),
            }
        }
        "resync" => (0..service.circles.len())
            .filter(|&c| c != source.circle)
            .map(owner)
            .collect(),
        _ => {
            let url = owner(job.circle_id as usize);
            match url == source.backend.url {
                true => Vec::new(),
                false => vec![url],
            }
        }
    }
}

async fn run_source(
    service: &Arc<ProxyService>,
    job: &MigrationStarted,
    src: &SourceBackend,
) -> Result<(), LogError> {
    let url = &src.backend.url;
    let known = |service: &ProxyService| -> Option<Source> {
        let state = service.journal().state();
        state
            .migrations
            .jobs
            .get(&job.job)?
            .sources
            .get(url)
            .cloned()
    };
    let source = match known(service) {
        Some(s) => s,
        None => {
            let planned = plan(service, job, src).await;
            let event = state::event(EventKind::MigrationPlanned(planned));
            service.journal().record(vec![event]).await?;
            match known(service) {
                Some(s) => s,
                None => return Ok(()),
            }
        }
    };
    if !source.plan.skipped.is_empty() {
        tracing::warn!(job = job.job, source = %url, reason = %source.plan.skipped, "migration passes a source over");
        return Ok(());
    }
    let queue = Mutex::new(source.to_do().into_iter().collect::<VecDeque<u32>>());
    let next = || queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
    let workers = (0..job.cpus.max(1)).map(|_| async {
        while let Some(unit) = next() {
            run_unit(service, job, src, &source, unit).await?;
        }
        Ok::<(), LogError>(())
    });
    futures_util::future::join_all(workers)
        .await
        .into_iter()
        .collect()
}

async fn run_unit(
    service: &Arc<ProxyService>,
    job: &MigrationStarted,
    src: &SourceBackend,
    source: &Source,
    unit: u32,
) -> Result<(), LogError> {
    let u = &source.units[unit as usize];
    let resume = source.progress.get(&unit).map(|p| Position {
        rp: p.rp.clone(),
        upto: p.upto_unix_nanos,
        points: p.points,
    });
    let recorder = Recorder {
        service: service.clone(),
        job: job.job,
        source: src.backend.url.clone(),
        unit,
    };
    tracing::info!(job = job.job, source = %src.backend.url, destinations = ?u.destinations, db = %u.db, measurement = %u.measurement, resumed = resume.is_some(), "migrating");
    let resumed_points = resume.as_ref().map_or(0, |p| p.points);
    let outcome = match job.kind.as_str() {
        "clear" => {
            let q = format!("DROP MEASUREMENT {}", copy::quote(&u.measurement));
            src.backend
                .querier
                .query_checked(Some(&u.db), &q)
                .await
                .map(|_| 0)
                .map_err(CopyError::Source)
        }
        _ => copy_unit(service, job, src, u, resume, &recorder).await,
    };
    let (error, points) = match outcome {
        Ok(points) => (String::new(), points),
        Err(CopyError::Journal(e)) => return Err(e),
        Err(e) => {
            tracing::warn!(job = job.job, source = %src.backend.url, db = %u.db, measurement = %u.measurement, error = %e, "migrating a measurement failed");
            (e.to_string(), resumed_points)
        }
    };
    let done = MigrationUnitDone {
        job: job.job,
        source: src.backend.url.clone(),
        unit,
        error,
        points,
    };
    service
        .journal()
        .record(vec![state::event(EventKind::MigrationUnitDone(done))])
        .await
        .map(|_| ())
}

async fn copy_unit(
    service: &ProxyService,
    job: &MigrationStarted,
    src: &SourceBackend,
    u: &ledger::Unit,
    resume: Option<Position>,
    recorder: &Recorder,
) -> Result<u64, CopyError> {
    let mut destinations = Vec::new();
    for url in &u.destinations {
        match service.backends.iter().find(|b| &b.url == url) {
            Some(b) => destinations.push(b.clone()),
            None => {
                return Err(CopyError::Answer {
                    url: url.clone(),
                    reason: "this destination is no longer in the config".into(),
                })
            }
        }
    }
    // Two shardkeeper nodes: only what differs moves (one way; resync's stages make it
    // both). Otherwise the windowed copy.
    if let ("recovery" | "resync", [destination]) = (job.kind.as_str(), destinations.as_slice()) {
        let pull = diff::Pull {
            destination: &destination.querier,
            source_url: &src.backend.url,
            source_credentials: &src.backend.credentials,
            db: &u.db,
            measurement: &u.measurement,
            since: (job.since_unix_nanos != 0).then_some(job.since_unix_nanos),
        };
        if let Some(points) = pull.run().await? {
            return Ok(points);
        }
    }
    let copy = Copy {
        source: &src.backend.querier,
        destinations: destinations.iter().map(|b| &b.writer).collect(),
        db: &u.db,
        measurement: &u.measurement,
        since: (job.since_unix_nanos != 0).then_some(job.since_unix_nanos),
        batch: service.config.migrate_batch,
        flush_size: service.config.flush_size,
    };
    copy.run(resume, recorder).await
}

/// Records a unit's progress in the journal.
pub(crate) struct Recorder {
    service: Arc<ProxyService>,
    job: u64,
    source: String,
    unit: u32,
}

impl Recorder {
    pub(crate) async fn progress(&self, rp: &str, upto: i64, points: u64) -> Result<(), LogError> {
        let p = MigrationProgress {
            job: self.job,
            source: self.source.clone(),
            unit: self.unit,
            rp: rp.to_owned(),
            upto_unix_nanos: upto,
            points,
        };
        let event = state::event(EventKind::MigrationProgress(p));
        self.service.journal().record(vec![event]).await.map(|_| ())
    }
}

/// What `src` holds and where each measurement goes; a source that does not answer, or
/// whose listing fails, is passed over with the reason (as influx-proxy passes over a
/// backend that is not active).
async fn plan(
    service: &ProxyService,
    job: &MigrationStarted,
    src: &SourceBackend,
) -> MigrationPlanned {
    let mut planned = MigrationPlanned {
        job: job.job,
        source: src.backend.url.clone(),
        circle_id: src.circle as u32,
        databases: Vec::new(),
        skipped: String::new(),
    };
    let mut ping = src.backend.querier.ping().await;
    for _ in 1..PING_TRIES {
        if ping.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(service.config.check_interval)).await;
        ping = src.backend.querier.ping().await;
    }
    if let Err(e) = ping {
        planned.skipped = format!("backend not active: {e}");
        return planned;
    }
    let databases = match (job.databases.is_empty(), job.kind.as_str()) {
        (false, _) => Ok(job.databases.clone()),
        (true, "clear") => databases_of(&src.backend.querier).await,
        (true, _) => proxy_databases(service).await,
    };
    let databases = match databases {
        Ok(d) => d,
        Err(e) => {
            planned.skipped = format!("listing databases: {e}");
            return planned;
        }
    };
    for db in databases {
        let measurements = match src
            .backend
            .querier
            .query_checked(Some(&db), "SHOW MEASUREMENTS")
            .await
        {
            Ok(a) => first_column(&a),
            Err(e) if e.to_string().contains("database not found") => Vec::new(),
            Err(e) => {
                planned.databases.clear();
                planned.skipped = format!("listing the measurements of {db}: {e}");
                return planned;
            }
        };
        let measurements = measurements
            .into_iter()
            .map(|m| PlannedMeasurement {
                destinations: destinations(service, job, src, &db, &m),
                name: m,
            })
            .collect();
        planned.databases.push(PlannedDatabase {
            name: db,
            measurements,
        });
    }
    planned
}

/// A backend's databases but `_internal`.
async fn databases_of(c: &InfluxClient) -> Result<Vec<String>, crate::client::ClientError> {
    let mut dbs = first_column(&c.query_checked(None, "SHOW DATABASES").await?);
    dbs.retain(|d| d != "_internal");
    Ok(dbs)
}

/// influx-proxy's `GetDatabases`: those of the first active backend.
async fn proxy_databases(
    service: &ProxyService,
) -> Result<Vec<String>, crate::client::ClientError> {
    let mut last = None;
    for b in service.backends.iter().filter(|b| b.is_active()) {
        match databases_of(&b.querier).await {
            Ok(d) => return Ok(d),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| crate::client::ClientError::Request {
        url: String::new(),
        reason: "no backend is active".into(),
    }))
}

/// The first column of every row of a query's first result.
pub(super) fn first_column(answer: &QueryAnswer) -> Vec<String> {
    answer
        .results
        .first()
        .map(|r| {
            r.series
                .iter()
                .flat_map(|s| s.values.iter())
                .filter_map(|v| v.first()?.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// influx-proxy's broadcast: `POST /migrate/state` to each of `ha_addrs` with the job's
/// flag, over https when the proxy serves https (certificates not checked, as
/// influx-proxy does not), with the proxy's own credentials. Failures are logged.
async fn tell_others(service: &ProxyService, job: &MigrationStarted, on: bool) {
    if job.ha_addrs.is_empty() {
        return;
    }
    let c = &service.config;
    let credentials = match (c.username.is_empty(), c.password.is_empty()) {
        (true, true) => Credentials::None,
        _ if c.auth_secure => Credentials::Basic {
            user: super::cipher::decrypt_text(&c.username),
            password: super::cipher::decrypt_text(&c.password),
        },
        _ => Credentials::Basic {
            user: c.username.clone(),
            password: c.password.clone(),
        },
    };
    let scheme = match c.https_enabled {
        true => "https",
        false => "http",
    };
    let on = on.to_string();
    let circle = match job.kind.as_str() {
        "recovery" => job.to_circle_id,
        _ => job.circle_id,
    }
    .to_string();
    let query: Vec<(&str, &str)> = match job.kind.as_str() {
        "resync" => vec![("resyncing", &on)],
        _ => vec![("circle_id", &circle), ("migrating", &on)],
    };
    for addr in &job.ha_addrs {
        let options = ClientOptions {
            credentials: credentials.clone(),
            connect_timeout: TELL_TIMEOUT,
            request_timeout: Some(TELL_TIMEOUT),
            tls: TlsOptions {
                ca_certificate_pem: None,
                insecure: true,
            },
            ..ClientOptions::default()
        };
        let told = match InfluxClient::new(&format!("{scheme}://{addr}"), options) {
            Ok(client) => {
                let path = "/migrate/state";
                let request = client.request(Method::POST, path).query(&query);
                client.send(path, request).await.map(|_| ())
            }
            Err(e) => Err(e),
        };
        if let Err(e) = told {
            tracing::warn!(addr = %addr, error = %e, "telling another proxy of a migration failed");
        }
    }
}
