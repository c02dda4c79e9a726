//! `ProxyService`: what the proxy's handlers call. It owns the circles and their rings,
//! the backends, the journal and the delivery tasks; it decides where each line and each
//! statement goes. Knows nothing of HTTP.

use super::backend::Backend;
use super::config::ProxyConfig;
use super::delivery::{aside_path, Delivery};
use super::journal::record::{self, GroupOut};
use super::journal::{state, Journal, JournalError};
use super::lines;
use super::migration::ledger::{JobSummary, MigrateInfo};
use super::migration::{self, MigrationKind, MigrationRequest, StartError};
use super::ring::{placement_key, Ring};
use crate::line_protocol::{influx_batch_message, Precision};
use crate::log::LogError;
use crate::proto::BatchKeptAside;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// One circle: a full copy of the data, spread over its backends by its ring.
pub struct Circle {
    pub name: String,
    pub ring: Ring,
    /// Its backends, by their index among all backends.
    pub members: Vec<usize>,
    /// influx-proxy's `is_migrating`: not read from while set.
    pub migrating: AtomicBool,
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("proxy journal: {0}")]
    Log(#[from] LogError),
    #[error("backend {url}: {reason}")]
    Backend { url: String, reason: String },
}

/// Why a write was not (wholly) accepted.
#[derive(Debug)]
pub enum WriteError {
    /// A backend that would receive some of the lines has `backlog_max_mb` waiting: the
    /// whole write is refused (503), none of it accepted.
    BacklogFull { backend: String },
    /// Lines that do not parse: none accepted (`partial` false), or the others accepted.
    Lines { message: String, partial: bool },
    /// The journal refused the write: nothing was acknowledged.
    Journal(LogError),
}

pub struct ProxyService {
    pub config: ProxyConfig,
    pub circles: Vec<Circle>,
    /// Every backend of every circle, circle by circle.
    pub backends: Vec<Arc<Backend>>,
    journal: Arc<Journal>,
    db_list: HashSet<String>,
    aside_dir: PathBuf,
    /// influx-proxy's `is_resyncing`.
    pub resyncing: AtomicBool,
    /// Where deliveries and migrations run (set by [`ProxyService::start`]).
    runtime: OnceLock<tokio::runtime::Handle>,
    /// Held while a migration is checked against the others and recorded.
    migration_gate: tokio::sync::Mutex<()>,
}

/// One backend's line of `/health`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackendHealth {
    pub active: bool,
    /// Lines wait in the proxy for this backend (influx-proxy: data in its cache file).
    pub backlog: bool,
    pub backlog_bytes: u64,
    pub backlog_lines: u64,
    pub kept_aside: u64,
    pub load: BTreeMap<String, BTreeMap<&'static str, u64>>,
    pub name: String,
    /// A batch is being sent again after a failure.
    pub rewrite: bool,
    pub url: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CircleHealth {
    pub backends: Vec<BackendHealth>,
    pub circle: String,
}

/// How long `/health` waits for a backend's databases and measurements.
const LOAD_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the journal is snapshotted and trimmed behind the slowest backend.
const TRIM_EVERY: Duration = Duration::from_secs(5);

impl ProxyService {
    /// Opens the journal in `config.data_dir` and the backends' clients. Nothing is sent
    /// until [`ProxyService::start`].
    pub fn open(config: ProxyConfig) -> Result<ProxyService, ProxyError> {
        let mut circles = Vec::new();
        let mut backends = Vec::new();
        for (c, circle) in config.circles.iter().enumerate() {
            let mut members = Vec::new();
            for (i, b) in circle.backends.iter().enumerate() {
                let backend = Backend::new(&config, b, c, i).map_err(|e| ProxyError::Backend {
                    url: b.url.clone(),
                    reason: e.to_string(),
                })?;
                members.push(backends.len());
                backends.push(Arc::new(backend));
            }
            circles.push(Circle {
                name: circle.name.clone(),
                ring: Ring::new(config.hash_key, config.vnode_size, &circle.backends),
                members,
                migrating: AtomicBool::new(false),
            });
        }
        let names: Vec<String> = backends.iter().map(|b| b.name.clone()).collect();
        let opened = Journal::open(&config.data_dir.join("journal"), &names)?;
        for (name, pending) in &opened.abandoned {
            tracing::warn!(backend = %name, lines = pending.lines, "a backend no longer in the config had lines waiting: they will not be sent");
        }
        for b in &backends {
            let p = opened.pending.get(&b.name).copied().unwrap_or_default();
            b.figures.add_backlog(p.lines, p.bytes, p.records);
        }
        let aside_dir = config.data_dir.join("aside");
        remove_orphan_aside_files(&aside_dir, &opened.journal);
        {
            let state = opened.journal.state();
            for b in &backends {
                if let Some(p) = state.backends.get(&b.name) {
                    let f = &b.figures;
                    f.delivered_lines
                        .store(p.delivered_lines, Ordering::Relaxed);
                    f.delivered_batches
                        .store(p.delivered_batches, Ordering::Relaxed);
                }
                let (batches, lines) = state
                    .aside
                    .values()
                    .filter(|a| a.backend == b.name)
                    .fold((0, 0), |(n, l), a| (n + 1, l + a.lines));
                b.figures
                    .kept_aside_batches
                    .store(batches, Ordering::Relaxed);
                b.figures.kept_aside_lines.store(lines, Ordering::Relaxed);
            }
        }
        tracing::info!(
            circles = circles.len(),
            backends = backends.len(),
            hash_key = config.hash_key.as_str(),
            replayed = opened.replayed,
            "proxy journal open"
        );
        Ok(ProxyService {
            db_list: config.db_list.iter().cloned().collect(),
            config,
            circles,
            backends,
            journal: Arc::new(opened.journal),
            aside_dir,
            resyncing: AtomicBool::new(false),
            runtime: OnceLock::new(),
            migration_gate: tokio::sync::Mutex::new(()),
        })
    }

    /// Starts each backend's watch and delivery, the journal's trimming, and the
    /// migrations left unfinished, on `runtime`.
    pub fn start(self: &Arc<Self>, runtime: &tokio::runtime::Handle) {
        let _ = self.runtime.set(runtime.clone());
        let unfinished: Vec<u64> = {
            let state = self.journal.state();
            let jobs: Vec<_> = state.migrations.unfinished().collect();
            for j in &jobs {
                migration::set_running(self, &j.started, true);
            }
            jobs.iter().map(|j| j.started.job).collect()
        };
        for job in unfinished {
            tracing::info!(job, "resuming a migration");
            runtime.spawn(migration::run(self.clone(), job));
        }
        let every = Duration::from_secs(self.config.check_interval);
        for b in &self.backends {
            runtime.spawn(b.clone().watch(every));
            let delivery = Delivery {
                journal: self.journal.clone(),
                backend: b.clone(),
                flush_size: self.config.flush_size,
                rewrite_interval: Duration::from_secs(self.config.rewrite_interval),
                aside_dir: self.aside_dir.clone(),
            };
            runtime.spawn(delivery.run());
        }
        let service = self.clone();
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(TRIM_EVERY).await;
                if let Err(e) = service.snapshot().await {
                    tracing::warn!(error = %e, "proxy journal snapshot failed");
                }
            }
        });
    }

    /// Snapshots the journal's state and removes what no backend needs any more.
    pub async fn snapshot(&self) -> Result<usize, ProxyError> {
        let names: Vec<String> = self.backends.iter().map(|b| b.name.clone()).collect();
        Ok(self.journal.snapshot_and_trim(&names).await?)
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Whether `db_list` lets `db` through (an empty list lets every database through).
    pub fn db_allowed(&self, db: &str) -> bool {
        self.db_list.is_empty() || self.db_list.contains(db)
    }

    /// The backend owning `key` in each circle, by index among all backends.
    fn owner_indexes(&self, key: &[u8]) -> Vec<usize> {
        self.circles
            .iter()
            .map(|c| c.members[c.ring.owner(key)])
            .collect()
    }

    /// The backend owning `key` in each circle.
    pub fn owners(&self, key: &str) -> Vec<Arc<Backend>> {
        self.owner_indexes(key.as_bytes())
            .into_iter()
            .map(|i| self.backends[i].clone())
            .collect()
    }

    /// The owners of `key` a query may read from: in circles not migrating, answering,
    /// those with nothing left to receive first, in random order otherwise (influx-proxy
    /// picks a circle at random).
    pub fn readable_owners(&self, key: &str) -> Vec<Arc<Backend>> {
        let mut owners: Vec<Arc<Backend>> = self
            .owners(key)
            .into_iter()
            .filter(|b| b.is_active() && !self.circles[b.circle].migrating.load(Ordering::Relaxed))
            .collect();
        shuffle(&mut owners);
        owners.sort_by_key(|b| b.has_backlog());
        owners
    }

    /// Circles a query may read from whole: not migrating, every backend answering; in
    /// random order.
    pub fn readable_circles(&self) -> Vec<usize> {
        let mut ids: Vec<usize> = (0..self.circles.len())
            .filter(|&c| {
                !self.circles[c].migrating.load(Ordering::Relaxed)
                    && self.circle_backends(c).iter().all(|b| b.is_active())
            })
            .collect();
        shuffle(&mut ids);
        ids.sort_by_key(|&c| self.circle_backends(c).iter().any(|b| b.has_backlog()));
        ids
    }

    pub fn circle_backends(&self, circle: usize) -> Vec<Arc<Backend>> {
        self.circles[circle]
            .members
            .iter()
            .map(|&i| self.backends[i].clone())
            .collect()
    }

    /// influx-proxy's check of the proxy's own credentials: `u`/`p` in the URL or Basic
    /// auth; with `auth_secure`, the config holds them encrypted.
    pub fn authenticate(&self, given: &[(String, String)]) -> bool {
        let c = &self.config;
        if c.username.is_empty() && c.password.is_empty() {
            return true;
        }
        let transform = |s: &str| match c.auth_secure {
            true => super::cipher::encrypt(s),
            false => s.to_owned(),
        };
        given
            .iter()
            .any(|(u, p)| transform(u) == c.username && transform(p) == c.password)
    }

    /// Accepts a write: split by measurement, admitted against each backend's backlog,
    /// made durable in the journal; then each backend's delivery takes its lines.
    pub async fn write(
        &self,
        db: &str,
        rp: &str,
        precision: Precision,
        body: &[u8],
    ) -> Result<(), WriteError> {
        let now = state::now_nanos() / precision.multiplier();
        let split = lines::split(body, db, precision, now, |key| self.owner_indexes(key));
        if split.groups.is_empty() {
            return match split.errors.is_empty() {
                true => Ok(()),
                false => Err(WriteError::Lines {
                    message: influx_batch_message(&split.errors),
                    partial: false,
                }),
            };
        }
        // What each backend receives of this write: lines, bytes.
        let mut per_backend: BTreeMap<usize, (u64, u64)> = BTreeMap::new();
        for g in &split.groups {
            for &o in &g.owners {
                let e = per_backend.entry(o).or_default();
                e.0 += u64::from(g.lines);
                e.1 += g.body.len() as u64;
            }
        }
        for &o in per_backend.keys() {
            let b = &self.backends[o];
            if b.figures.backlog_bytes.load(Ordering::Relaxed) >= self.config.backlog_max_bytes {
                return Err(WriteError::BacklogFull {
                    backend: b.name.clone(),
                });
            }
        }
        let groups: Vec<GroupOut<'_>> = split
            .groups
            .iter()
            .map(|g| GroupOut {
                owners: g
                    .owners
                    .iter()
                    .map(|&o| self.backends[o].name.as_str())
                    .collect(),
                lines: g.lines,
                body: &g.body,
            })
            .collect();
        let payload = record::encode(db, rp, precision, &groups);
        // Counted before the record can be read, so that a delivery never takes away what
        // was not yet added.
        for (&o, &(lines, bytes)) in &per_backend {
            self.backends[o].figures.add_backlog(lines, bytes, 1);
        }
        if let Err(e) = self.journal.append_write(payload).await {
            for (&o, &(lines, bytes)) in &per_backend {
                self.backends[o].figures.remove_backlog(lines, bytes, 1);
            }
            return Err(WriteError::Journal(e));
        }
        match split.errors.is_empty() {
            true => Ok(()),
            false => Err(WriteError::Lines {
                message: influx_batch_message(&split.errors),
                partial: true,
            }),
        }
    }

    /// `/health`: each circle's backends, with the databases and measurements each holds
    /// and how many of those the ring places there (`inplace`) or elsewhere (`incorrect`).
    pub async fn health(&self) -> Vec<CircleHealth> {
        let loads =
            futures_util::future::join_all(self.backends.iter().map(|b| self.load(b))).await;
        self.circles
            .iter()
            .map(|c| CircleHealth {
                circle: c.name.clone(),
                backends: c
                    .members
                    .iter()
                    .map(|&i| {
                        let b = &self.backends[i];
                        let f = &b.figures;
                        BackendHealth {
                            active: b.is_active(),
                            backlog: b.has_backlog(),
                            backlog_bytes: f.backlog_bytes.load(Ordering::Relaxed),
                            backlog_lines: f.backlog_lines.load(Ordering::Relaxed),
                            kept_aside: f.kept_aside_batches.load(Ordering::Relaxed),
                            load: loads[i].clone(),
                            name: b.name.clone(),
                            rewrite: f.retrying.load(Ordering::Relaxed),
                            url: b.url.clone(),
                        }
                    })
                    .collect(),
            })
            .collect()
    }

    async fn load(&self, b: &Backend) -> BTreeMap<String, BTreeMap<&'static str, u64>> {
        let mut load = BTreeMap::new();
        if !b.is_active() {
            return load;
        }
        let work = async {
            for db in self.databases_of(b).await {
                let measurements = names(b.querier.query(Some(&db), "SHOW MEASUREMENTS").await);
                let ring = &self.circles[b.circle].ring;
                let inplace = measurements
                    .iter()
                    .filter(|m| ring.owner(placement_key(&db, m).as_bytes()) == b.index)
                    .count() as u64;
                let total = measurements.len() as u64;
                load.insert(
                    db,
                    BTreeMap::from([
                        ("incorrect", total - inplace),
                        ("inplace", inplace),
                        ("measurements", total),
                    ]),
                );
            }
        };
        let _ = tokio::time::timeout(LOAD_TIMEOUT, work).await;
        load
    }

    /// A backend's databases but `_internal`, as influx-proxy lists them.
    async fn databases_of(&self, b: &Backend) -> Vec<String> {
        let mut dbs = names(b.querier.query(None, "SHOW DATABASES").await);
        dbs.retain(|d| d != "_internal");
        dbs
    }

    /// `/replica`: the backend of each circle that holds `db`'s `measurement`.
    pub fn replica(&self, db: &str, measurement: &str) -> Vec<(String, String, String)> {
        self.owners(&placement_key(db, measurement))
            .into_iter()
            .map(|b| {
                (
                    self.circles[b.circle].name.clone(),
                    b.name.clone(),
                    b.url.clone(),
                )
            })
            .collect()
    }

    /// The batches kept aside, oldest first.
    pub fn aside(&self) -> Vec<BatchKeptAside> {
        self.journal.state().aside.values().cloned().collect()
    }

    /// Writes a batch kept aside to the journal again, for its backend alone; its
    /// delivery sends it after what it already has.
    pub async fn replay_aside(&self, id: u64) -> Result<bool, ProxyError> {
        let Some(batch) = self.journal.state().aside.get(&id).cloned() else {
            return Ok(false);
        };
        let Some(backend) = self.backends.iter().find(|b| b.name == batch.backend) else {
            return Err(ProxyError::Backend {
                url: batch.backend.clone(),
                reason: "no longer in the config: discard the batch instead".into(),
            });
        };
        let path = aside_path(&self.aside_dir, id);
        let body = std::fs::read(&path).map_err(|e| ProxyError::Backend {
            url: backend.url.clone(),
            reason: format!("{}: {e}", path.display()),
        })?;
        let precision = crate::line_protocol::Precision::parse_v1(&batch.precision)
            .unwrap_or(Precision::Nanoseconds);
        let group = GroupOut {
            owners: vec![backend.name.as_str()],
            lines: batch.lines as u32,
            body: &body,
        };
        let payload = record::encode(&batch.db, &batch.rp, precision, &[group]);
        backend
            .figures
            .add_backlog(batch.lines, body.len() as u64, 1);
        if let Err(e) = self.journal.append_write(payload).await {
            backend
                .figures
                .remove_backlog(batch.lines, body.len() as u64, 1);
            return Err(e.into());
        }
        self.resolve_aside(&batch, true).await?;
        Ok(true)
    }

    /// Drops a batch kept aside for good.
    pub async fn discard_aside(&self, id: u64) -> Result<bool, ProxyError> {
        let Some(batch) = self.journal.state().aside.get(&id).cloned() else {
            return Ok(false);
        };
        self.resolve_aside(&batch, false).await?;
        Ok(true)
    }

    /// influx-proxy's answer to a migration while another runs: `circle N is migrating`,
    /// `proxy is resyncing`; None when `kind` may start.
    pub fn migration_busy(&self, kind: &MigrationKind) -> Option<String> {
        let migrating = |c: usize| self.circles[c].migrating.load(Ordering::Relaxed);
        let busy = match kind {
            MigrationKind::Rebalance { circle, .. } | MigrationKind::Clear { circle } => {
                migrating(*circle).then(|| format!("circle {circle} is migrating"))
            }
            MigrationKind::Recovery { from, to, .. } => (migrating(*from) || migrating(*to))
                .then(|| format!("circle {from} or {to} is migrating")),
            MigrationKind::Resync { .. } => (0..self.circles.len())
                .find(|&c| migrating(c))
                .map(|c| format!("circle {c} is migrating")),
        };
        busy.or_else(|| {
            self.resyncing
                .load(Ordering::Relaxed)
                .then(|| "proxy is resyncing".to_owned())
        })
    }

    /// Records a migration job and starts it; returns its id. Refused (`Busy`) when
    /// another holds its circle or the proxy resyncs.
    pub async fn start_migration(
        self: &Arc<Self>,
        request: MigrationRequest,
    ) -> Result<u64, StartError> {
        let _alone = self.migration_gate.lock().await;
        if let Some(message) = self.migration_busy(&request.kind) {
            return Err(StartError::Busy(message));
        }
        let job = self.journal.state().migrations.next_job_id();
        let started = request.started(job, state::now_nanos());
        let event = state::event(crate::proto::proxy_event::Kind::MigrationStarted(
            started.clone(),
        ));
        self.journal.record(vec![event]).await?;
        migration::set_running(self, &started, true);
        match self.runtime.get() {
            Some(rt) => drop(rt.spawn(migration::run(self.clone(), job))),
            None => tracing::warn!(job, "no runtime yet: the migration starts with the proxy"),
        }
        Ok(job)
    }

    /// `/migrate/stats` of `circle`: each of its backends' counters in the latest
    /// migration (zero where it took no part), as influx-proxy keeps them.
    pub fn migrate_stats(&self, circle: usize) -> BTreeMap<String, MigrateInfo> {
        let mut stats: BTreeMap<String, MigrateInfo> = self
            .circle_backends(circle)
            .iter()
            .map(|b| (b.url.clone(), MigrateInfo::default()))
            .collect();
        let state = self.journal.state();
        if let Some(job) = state.migrations.latest() {
            if job.started.kind == "rebalance" && job.started.circle_id as usize == circle {
                for r in &job.started.removed {
                    stats.entry(r.url.clone()).or_default();
                }
            }
            for (url, source) in &job.sources {
                if source.plan.circle_id as usize == circle {
                    stats.insert(url.clone(), source.info());
                }
            }
        }
        stats
    }

    /// The migrations the journal holds, newest first.
    pub fn migrations(&self) -> Vec<JobSummary> {
        let state = self.journal.state();
        state
            .migrations
            .jobs
            .values()
            .rev()
            .map(|j| j.summary())
            .collect()
    }

    async fn resolve_aside(
        &self,
        batch: &BatchKeptAside,
        replayed: bool,
    ) -> Result<(), ProxyError> {
        self.journal
            .record(vec![state::resolved(batch.id, replayed)])
            .await?;
        if let Some(b) = self.backends.iter().find(|b| b.name == batch.backend) {
            let f = &b.figures;
            let _ = f
                .kept_aside_batches
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                    Some(v.saturating_sub(1))
                });
            let _ = f
                .kept_aside_lines
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                    Some(v.saturating_sub(batch.lines))
                });
        }
        let _ = std::fs::remove_file(aside_path(&self.aside_dir, batch.id));
        Ok(())
    }
}

/// The first column of every row of a query's first result; none when the query failed
/// (`/health` shows what it could read).
fn names(answer: Result<crate::client::QueryAnswer, crate::client::ClientError>) -> Vec<String> {
    answer
        .map(|a| migration::first_column(&a))
        .unwrap_or_default()
}

/// Files of batches kept aside that no event names: a crash came between the file and
/// its event, and the batch was sent again.
fn remove_orphan_aside_files(dir: &std::path::Path, journal: &Journal) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let state = journal.state();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let known = name
            .strip_suffix(".lp")
            .and_then(|id| id.parse::<u64>().ok())
            .is_some_and(|id| state.aside.contains_key(&id));
        if !known {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn shuffle<T>(items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let mut b = [0u8; 4];
        let r = getrandom::fill(&mut b).map_or(0, |()| u32::from_le_bytes(b)) as usize;
        items.swap(i, r % (i + 1));
    }
}
