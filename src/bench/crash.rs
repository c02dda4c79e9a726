//! `bench crash`: kill a node again and again while it takes writes, and prove that every
//! point it acknowledged survives, by value, and that nothing else appears.
//!
//! Each cycle writes a cycle's worth of points from several connections, kills the node
//! once a random number of batches are acknowledged (so the kill lands anywhere in the
//! cycle, with batches in flight), restarts it and reads the cycle back. Beside the writes,
//! a cycle may drop the series of an earlier cycle: once that answer came, those points
//! must never return. The last step reads every cycle back again, so that a loss caused by
//! a later crash (of a flush or a merge of earlier points) is found too.
//!
//! A point is *lost* if its batch was acknowledged and it does not read back, *wrong* if it
//! reads back with another value, *invented* if it reads back but was never sent (or its
//! series was dropped with an acknowledgement). Points of a batch in flight at the kill may
//! or may not survive: they are counted, not judged.
//!
//! With `--during snapshot`, a cycle also creates retention policies one after the other
//! once its kill moment comes, until a snapshot of the control state is under way: every
//! policy acknowledged must be there after each restart.
//!
//! Against shardkeeper the command starts and kills the node itself; against any other
//! InfluxDB 1.x-compatible server (`--url`), a shell command given with `--restart-cmd`
//! kills and restarts it, and the same checks run.

use super::Latencies;
use crate::client::{ClientError, ClientOptions, InfluxClient, Method, WriteTarget};
use crate::line_protocol::Precision;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const DB: &str = "crash";
const MEASUREMENT: &str = "crash";
/// 2026-01-01T00:00:00Z: every point's time is this plus its cycle and sequence number.
const T0_NS: i64 = 1_767_225_600_000_000_000;
/// Time between a connection's points (1 ms), and the room each cycle has (an hour).
const STEP_NS: i64 = 1_000_000;
const CYCLE_NS: i64 = 3_600_000_000_000;
/// How many times its share a writer may write while waiting for `--during`'s operation.
const DURING_LIMIT: usize = 100;
/// Most retention policies a cycle creates while waiting for a snapshot.
const POLICIES_LIMIT: usize = 1000;
/// How long a restarted server may take to answer `/ping`.
const START_LIMIT: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum KillSignal {
    Kill,
    Term,
}

impl KillSignal {
    fn number(self) -> libc::c_int {
        match self {
            KillSignal::Kill => libc::SIGKILL,
            KillSignal::Term => libc::SIGTERM,
        }
    }
}

/// The server under test.
#[derive(Clone)]
pub(crate) enum Target {
    /// A shardkeeper node this command starts (this executable), on a free loopback port,
    /// with its data in `data_dir` (a fresh temporary directory if none).
    Own { data_dir: Option<PathBuf> },
    /// Any server at `url`; `restart_cmd` (run by `sh -c`) must kill it and start it again
    /// in the background.
    External { url: String, restart_cmd: String },
}

pub(crate) struct CrashOptions {
    pub target: Target,
    pub cycles: usize,
    pub connections: usize,
    pub points_per_cycle: usize,
    pub batch: usize,
    pub signal: KillSignal,
    pub seed: Option<u64>,
    /// Kill while this operation is under way instead of at a random moment.
    pub during: Option<During>,
}

/// An operation to kill the node in the middle of. Flushes and merges are held there by a
/// fail point (`sleep`), so that the kill lands inside them; a backup is killed while its
/// stream is being read; a restore (of the shard's own backup, taken then) while it is
/// staged, held before its swap by a fail point; a snapshot of the control state (taken
/// every KiB or so of control events, which the cycle makes) while its file is written,
/// held before its rename.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum During {
    Flush,
    Merge,
    Backup,
    Restore,
    Snapshot,
}

impl During {
    /// The node's configuration and fail points for it.
    fn setup(self) -> (&'static str, Option<&'static str>) {
        match self {
            During::Flush => (
                "max_head_mib = 1\n",
                Some("column_file.before_rename=sleep(5000)"),
            ),
            During::Merge => ("max_head_mib = 1\n", Some("merge.after_write=sleep(5000)")),
            During::Backup => ("", None),
            During::Restore => ("", Some("restore.before_swap=sleep(5000)")),
            // At the default (16 MiB) no run would make one. The first of each start is
            // not held, so that restarts also begin from a snapshot a cycle wrote.
            During::Snapshot => (
                "[log]\nsnapshot_every_mib = 0.001\n",
                Some("snapshot.before_rename=1*off->sleep(5000)"),
            ),
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct CrashReport {
    pub url: String,
    pub cycles: usize,
    pub seed: u64,
    pub signal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub during: Option<String>,
    /// Kills that landed while that operation was under way (the others: its cycle ended
    /// before one began).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kills_during: Option<usize>,
    /// Points whose batch was acknowledged before the kill.
    pub acknowledged_points: usize,
    /// Points of batches in flight at a kill (or refused at it): either outcome is right.
    pub unacknowledged_points: usize,
    /// How many of those read back after the restart.
    pub unacknowledged_survived: usize,
    pub lost: usize,
    pub wrong: usize,
    pub invented: usize,
    /// Series drops acknowledged before a kill, and points of theirs that came back.
    pub drops_acknowledged: usize,
    pub resurrected: usize,
    /// `--during snapshot`: retention policies whose creation was acknowledged, and the
    /// most of them missing at one check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policies_acknowledged: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policies_lost: Option<usize>,
    pub restart_ms_p50: f64,
    pub restart_ms_p99: f64,
    pub restart_ms_max: f64,
    pub elapsed_s: f64,
    /// The first few findings, for a human to start from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
}

impl CrashReport {
    pub(crate) fn passed(&self) -> bool {
        self.lost == 0
            && self.wrong == 0
            && self.invented == 0
            && self.resurrected == 0
            && self.policies_lost.unwrap_or(0) == 0
    }

    fn note(&mut self, example: String) {
        if self.examples.len() < 10 {
            self.examples.push(example);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum CrashBenchError {
    #[error("starting the node: {0}")]
    Start(String),
    #[error("{url} did not answer /ping within {limit:?} after a restart")]
    NotBack { url: String, limit: Duration },
    #[error("{url}: {what}: {reason}")]
    Request {
        url: String,
        what: String,
        reason: String,
    },
}

/// What a point's value is: different for every point, so a point read back under
/// another's key is found.
fn value_of(cycle: usize, conn: usize, seq: usize) -> i64 {
    let mut x = (cycle as u64) << 40 ^ (conn as u64) << 24 ^ seq as u64;
    x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    (x >> 2) as i64
}

fn time_of(cycle: usize, seq: usize) -> i64 {
    T0_NS + cycle as i64 * CYCLE_NS + seq as i64 * STEP_NS
}

/// A small deterministic generator, so that a run is repeated with its `seed`.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// The server: how to reach it, kill it and bring it back.
struct Server {
    url: String,
    kind: ServerKind,
    signal: KillSignal,
    killed_at: Option<Instant>,
}

enum ServerKind {
    Own {
        exe: PathBuf,
        config: PathBuf,
        log: PathBuf,
        data: PathBuf,
        failpoints: Option<&'static str>,
        child: Option<Child>,
        _scratch: Option<tempfile::TempDir>,
    },
    External {
        restart_cmd: String,
    },
}

impl Server {
    fn start(
        target: Target,
        signal: KillSignal,
        during: Option<During>,
    ) -> Result<Server, CrashBenchError> {
        let (extra_config, failpoints) = during.map_or(("", None), During::setup);
        match target {
            Target::External { url, restart_cmd } => Ok(Server {
                url: url.trim_end_matches('/').to_owned(),
                kind: ServerKind::External { restart_cmd },
                signal,
                killed_at: None,
            }),
            Target::Own { data_dir } => {
                let start = |e: std::io::Error| CrashBenchError::Start(e.to_string());
                let (scratch, data_dir) = match data_dir {
                    Some(dir) => (None, dir),
                    None => {
                        let t = tempfile::tempdir().map_err(start)?;
                        let dir = t.path().join("data");
                        (Some(t), dir)
                    }
                };
                std::fs::create_dir_all(&data_dir).map_err(start)?;
                let port = std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .map_err(start)?
                    .port();
                let parent = data_dir.parent().unwrap_or(Path::new("."));
                let config = parent.join("bench-crash.toml");
                let data = data_dir.canonicalize().map_err(start)?;
                std::fs::write(
                    &config,
                    format!(
                        "bind = \"127.0.0.1:{port}\"\ndata_dir = {:?}\n{extra_config}",
                        data.to_string_lossy()
                    ),
                )
                .map_err(start)?;
                let mut server = Server {
                    url: format!("http://127.0.0.1:{port}"),
                    kind: ServerKind::Own {
                        exe: std::env::current_exe().map_err(start)?,
                        config,
                        log: parent.join("bench-crash.log"),
                        data,
                        failpoints,
                        child: None,
                        _scratch: scratch,
                    },
                    signal,
                    killed_at: None,
                };
                server.spawn()?;
                server.wait_for_ping()?;
                Ok(server)
            }
        }
    }

    fn spawn(&mut self) -> Result<(), CrashBenchError> {
        let ServerKind::Own {
            exe,
            config,
            log,
            child,
            failpoints,
            ..
        } = &mut self.kind
        else {
            return Ok(());
        };
        let start = |e: std::io::Error| CrashBenchError::Start(e.to_string());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(start)?;
        let err = log.try_clone().map_err(start)?;
        *child = Some(
            Command::new(exe)
                .arg("serve")
                .arg("--config")
                .arg(config)
                .envs(failpoints.map(|f| (crate::failpoint::ENV, f)))
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(err)
                .spawn()
                .map_err(start)?,
        );
        Ok(())
    }

    /// Kills the server (for an external one, runs its restart command, which kills it
    /// and starts it again).
    fn kill(&mut self) -> Result<(), CrashBenchError> {
        self.killed_at = Some(Instant::now());
        match &mut self.kind {
            ServerKind::Own { child, .. } => {
                if let Some(mut c) = child.take() {
                    // SAFETY: sends a signal to our own child, which is reaped right after.
                    unsafe { libc::kill(c.id() as libc::pid_t, self.signal.number()) };
                    let _ = c.wait();
                }
                Ok(())
            }
            ServerKind::External { restart_cmd } => {
                let status = Command::new("sh")
                    .arg("-c")
                    .arg(&*restart_cmd)
                    .stdin(Stdio::null())
                    .status()
                    .map_err(|e| CrashBenchError::Start(format!("--restart-cmd: {e}")))?;
                match status.success() {
                    true => Ok(()),
                    false => Err(CrashBenchError::Start(format!(
                        "--restart-cmd exited with {status}"
                    ))),
                }
            }
        }
    }

    /// Starts the server again after [`Server::kill`]; the time from the kill until it
    /// answers `/ping`.
    fn restart(&mut self) -> Result<Duration, CrashBenchError> {
        let started = Instant::now();
        self.spawn()?;
        self.wait_for_ping()?;
        Ok(self.killed_at.take().unwrap_or(started).elapsed())
    }

    /// The node's shard files now, to tell what an operation makes from what a crash
    /// left behind (none for a server this command does not run).
    fn watch(&self) -> Watch {
        let mut watch = Watch::default();
        if let ServerKind::Own { data, .. } = &self.kind {
            watch.shards = data.join("shards");
            watch.control = data.join("control");
            watch.seen(During::Flush);
            watch.stale_tmp = std::mem::take(&mut watch.tmp);
            watch.old_snapshots = watch.snapshots.clone();
        }
        watch
    }

    /// Starts streaming a backup of the node's first shard and reads its first bytes; the
    /// stream is left open (returned, with its runtime) for the kill to cut.
    fn start_backup(&self) -> Option<Box<dyn std::any::Any + Send>> {
        let id = self.first_shard()?;
        let node = BlockingNode::new(&self.url, Duration::from_secs(60)).ok()?;
        let path = format!("/api/v2/backup/shards/{id}");
        let request = node.client.request(Method::GET, &path);
        let response = node.runtime.block_on(async {
            let mut response = node.client.send(&path, request).await.ok()?;
            response.chunk().await.ok()??;
            Some(response)
        })?;
        Some(Box::new((response, node)))
    }

    /// Takes a backup of the node's first shard and starts restoring it into the same
    /// shard on a thread of its own (its answer does not matter: the kill comes first).
    fn start_restore(&self) -> Option<std::thread::JoinHandle<()>> {
        let id = self.first_shard()?;
        let node = BlockingNode::new(&self.url, Duration::from_secs(60)).ok()?;
        let path = format!("/api/v2/backup/shards/{id}");
        let request = node.client.request(Method::GET, &path);
        let archive = node.runtime.block_on(async {
            let response = node.client.send(&path, request).await.ok()?;
            response.bytes().await.ok()
        })?;
        let path = format!("/api/v2/restore/shards/{id}");
        Some(std::thread::spawn(move || {
            let request = node.client.request(Method::POST, &path).body(archive);
            let _ = node.runtime.block_on(node.client.send(&path, request));
        }))
    }

    fn first_shard(&self) -> Option<u64> {
        let shards = read(&self.url, "SHOW SHARDS").ok()?;
        shards["results"][0]["series"]
            .as_array()?
            .iter()
            .find(|s| s["name"] == DB)?["values"][0][0]
            .as_u64()
    }

    fn wait_for_ping(&self) -> Result<(), CrashBenchError> {
        let node =
            BlockingNode::new(&self.url, Duration::from_secs(2)).map_err(CrashBenchError::Start)?;
        let started = Instant::now();
        while started.elapsed() < START_LIMIT {
            if node.runtime.block_on(node.client.ping()).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(CrashBenchError::NotBack {
            url: self.url.clone(),
            limit: START_LIMIT,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let ServerKind::Own { child: Some(c), .. } = &mut self.kind {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A client of the node for one thread: the bench's writers, dropper and checks run on
/// threads of their own (the kill must find them mid-request), each with a runtime for the
/// async client.
struct BlockingNode {
    runtime: tokio::runtime::Runtime,
    client: InfluxClient,
}

impl BlockingNode {
    fn new(url: &str, timeout: Duration) -> Result<BlockingNode, String> {
        let options = ClientOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Some(timeout),
            gzip_writes: false,
            ..ClientOptions::default()
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let client = InfluxClient::new(url, options).map_err(|e| e.to_string())?;
        Ok(BlockingNode { runtime, client })
    }
}

/// What a cycle watches in the node's shard and control directories for `--during`.
#[derive(Default)]
struct Watch {
    shards: PathBuf,
    control: PathBuf,
    /// Column files and snapshots being written (`.tmp`) and restores' staging directories
    /// that a crash left and nothing is writing now.
    stale_tmp: BTreeSet<PathBuf>,
    tmp: BTreeSet<PathBuf>,
    /// Each column file's inode when first seen.
    inodes: BTreeMap<PathBuf, u64>,
    /// Snapshots there when the cycle began, and all seen since.
    old_snapshots: BTreeSet<PathBuf>,
    snapshots: BTreeSet<PathBuf>,
}

impl Watch {
    /// Whether `op` is under way: a flush's column file written but not renamed (a
    /// `.tmp` that was not there when the cycle began), or a merge's (its file renamed
    /// over the newest of those it merges: a column file name whose inode changed; a
    /// flush always writes a new name), or a snapshot's (a new `.snap.tmp`, once a snapshot
    /// was completed since the cycle began: the first of each start is not held, and the
    /// kill must not cut it short).
    fn seen(&mut self, op: During) -> bool {
        use std::os::unix::fs::MetadataExt;
        let mut snapshot_written = false;
        for file in std::fs::read_dir(&self.control)
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = file.path();
            let name = path.to_string_lossy();
            if name.ends_with(".snap.tmp") {
                snapshot_written |= !self.stale_tmp.contains(&path);
                self.tmp.insert(path);
            } else if name.ends_with(".snap") {
                self.snapshots.insert(path);
            }
        }
        let completed = !self.snapshots.is_subset(&self.old_snapshots);
        let mut found = op == During::Snapshot && snapshot_written && completed;
        let Ok(shards) = std::fs::read_dir(&self.shards) else {
            return found;
        };
        let shards: Vec<_> = shards.flatten().collect();
        for staging in shards
            .iter()
            .filter(|d| d.file_name().to_string_lossy().starts_with(".restore-"))
        {
            let path = staging.path();
            found |= op == During::Restore && !self.stale_tmp.contains(&path);
            self.tmp.insert(path);
        }
        for file in shards
            .iter()
            .filter_map(|shard| std::fs::read_dir(shard.path()).ok())
            .flatten()
            .flatten()
        {
            let path = file.path();
            match path.extension().and_then(|e| e.to_str()) {
                Some("tmp") => {
                    found |= op == During::Flush && !self.stale_tmp.contains(&path);
                    self.tmp.insert(path);
                }
                Some("col") => {
                    let Ok(meta) = file.metadata() else { continue };
                    let first = *self.inodes.entry(path).or_insert(meta.ino());
                    found |= op == During::Merge && first != meta.ino();
                }
                _ => {}
            }
        }
        found
    }
}

/// What became of one batch.
enum Outcome {
    Acknowledged,
    /// In flight at the kill, or refused: may or may not have been stored.
    Unknown,
}

/// The batches one connection sent: (sequence number range, outcome).
type Batches = Vec<(std::ops::Range<usize>, Outcome)>;
/// Sent points of one cycle, by connection.
type Sent = Vec<Batches>;
/// Retention policies a cycle asked for, by name.
type Policies = Vec<(String, Outcome)>;

/// What the cycles did that the checks need.
#[derive(Default)]
struct History {
    /// Per cycle, what each connection sent.
    cycles: Vec<Sent>,
    /// Cycles whose series were dropped with an acknowledgement.
    dropped: BTreeSet<usize>,
    /// Cycles whose drop was in flight at a kill: their points may or may not be there.
    maybe_dropped: BTreeSet<usize>,
    policies: Policies,
}

pub(crate) fn run(
    opts: &CrashOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<CrashReport, CrashBenchError> {
    let started = Instant::now();
    let seed = opts.seed.unwrap_or_else(|| {
        let mut b = [0u8; 8];
        let _ = getrandom::fill(&mut b);
        u64::from_le_bytes(b)
    });
    let mut rng = Rng(seed | 1);
    if opts.during.is_some() && matches!(opts.target, Target::External { .. }) {
        return Err(CrashBenchError::Start(
            "--during needs the node this command starts (not --url)".into(),
        ));
    }
    if let Some(op) = opts.during.filter(|op| op.setup().1.is_some()) {
        if !crate::failpoint::COMPILED_IN {
            return Err(CrashBenchError::Start(format!(
                "--during {} holds the node with a fail point, but {}",
                format!("{op:?}").to_lowercase(),
                crate::failpoint::NOT_COMPILED_IN
            )));
        }
    }
    let mut server = Server::start(opts.target.clone(), opts.signal, opts.during)?;
    let request_failed = |what: &str, reason: String| CrashBenchError::Request {
        url: server.url.clone(),
        what: what.to_owned(),
        reason,
    };
    query(&server.url, &format!("CREATE DATABASE \"{DB}\""))
        .map_err(|e| request_failed("CREATE DATABASE", e))?;

    // Snapshots come of control events, which a cycle then makes: policies it creates.
    let snapshots = opts.during == Some(During::Snapshot);
    let mut report = CrashReport {
        url: server.url.clone(),
        cycles: opts.cycles,
        seed,
        signal: format!("{:?}", opts.signal).to_uppercase(),
        during: opts.during.map(|d| format!("{d:?}").to_lowercase()),
        kills_during: opts.during.map(|_| 0),
        policies_acknowledged: snapshots.then_some(0),
        policies_lost: snapshots.then_some(0),
        ..CrashReport::default()
    };
    let mut history = History::default();
    let mut restarts = Latencies::default();
    let connections = opts.connections.max(1);
    let batch = opts.batch.max(1);
    let per_conn = opts.points_per_cycle.div_ceil(connections).max(1);
    let batches = connections * per_conn.div_ceil(batch);
    for cycle in 0..opts.cycles {
        let kill_after = 1 + rng.below(batches);
        // One cycle in four also drops an earlier cycle's series, after a random number
        // of batches (it may come before or after the kill).
        let drop = (cycle > 0 && rng.below(4) == 0).then(|| {
            let victim = rng.below(cycle);
            (victim, rng.below(batches))
        });
        // A restore brings back what its archive holds, dropped series too: no drops then.
        let drop = drop
            .filter(|(v, _)| !history.dropped.contains(v) && opts.during != Some(During::Restore));
        // Killing inside an operation: the writers go on past their share until it is
        // seen under way (within a bound, so a run cannot write forever).
        let share = match opts.during {
            Some(During::Flush | During::Merge | During::Restore | During::Snapshot) => {
                per_conn * DURING_LIMIT
            }
            _ => per_conn,
        };
        let mut watch = server.watch();
        let mut run = CycleRun::start(&server.url, cycle, connections, share, batch, drop);
        run.wait_for(kill_after);
        if snapshots {
            run.create_policies(&server.url, cycle);
        }
        let mut backup = None;
        let mut restore = None;
        let caught = match opts.during {
            None => false,
            Some(During::Backup) => {
                backup = server.start_backup();
                backup.is_some()
            }
            Some(During::Restore) => {
                restore = server.start_restore();
                restore.is_some() && run.wait_until(|| watch.seen(During::Restore))
            }
            Some(op) => run.wait_until(|| watch.seen(op)),
        };
        if caught {
            *report.kills_during.get_or_insert(0) += 1;
        }
        server.kill()?;
        std::mem::drop(backup);
        if let Some(r) = restore {
            let _ = r.join(); // its request ends with the node
        }
        let (sent, drop_outcome, policies) = run.finish();
        history.policies.extend(policies);
        let restart = server.restart()?;
        restarts.record(restart.as_secs_f64() * 1000.0);
        match (drop, drop_outcome) {
            (Some((victim, _)), Some(Outcome::Acknowledged)) => {
                history.dropped.insert(victim);
                history.maybe_dropped.remove(&victim);
                report.drops_acknowledged += 1;
            }
            (Some((victim, _)), _) => {
                history.maybe_dropped.insert(victim);
            }
            (None, _) => {}
        }
        history.cycles.push(sent);
        check_cycle(&server.url, &history, cycle, &mut report, false)?;
        if let Some(&victim) = history.dropped.iter().nth(rng.below(history.dropped.len())) {
            check_cycle(&server.url, &history, victim, &mut report, true)?;
        }
        if snapshots {
            check_policies(&server.url, &history, &mut report, false)?;
        }
        let policies = match (report.policies_acknowledged, report.policies_lost) {
            (Some(acked), Some(lost)) => format!(", policies {acked} acknowledged, {lost} lost"),
            _ => String::new(),
        };
        progress(&format!(
            "cycle {}/{}: restart {:.0} ms, {} acknowledged, {} lost, {} wrong, {} invented, {} resurrected{policies}",
            cycle + 1,
            opts.cycles,
            restart.as_secs_f64() * 1000.0,
            report.acknowledged_points,
            report.lost,
            report.wrong,
            report.invented,
            report.resurrected
        ));
    }
    // Every cycle again: a later crash (of a flush or a merge) may have lost earlier points.
    let mut again = CrashReport::default();
    for cycle in 0..history.cycles.len() {
        check_cycle(&server.url, &history, cycle, &mut again, true)?;
    }
    if snapshots {
        check_policies(&server.url, &history, &mut report, true)?;
    }
    // A point lost at its cycle's check stays lost (or came back, which is no better): the
    // larger count of the two reads is the run's.
    report.lost = report.lost.max(again.lost);
    report.wrong = report.wrong.max(again.wrong);
    report.invented = report.invented.max(again.invented);
    report.resurrected = report.resurrected.max(again.resurrected);
    for e in again.examples {
        report.note(format!("final read: {e}"));
    }
    report.restart_ms_p50 = restarts.percentile(50.0);
    report.restart_ms_p99 = restarts.percentile(99.0);
    report.restart_ms_max = restarts.max();
    report.elapsed_s = started.elapsed().as_secs_f64();
    Ok(report)
}

/// One cycle's writers (and dropper) under way.
struct CycleRun {
    acked: Arc<(Mutex<usize>, Condvar)>,
    running: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    writers: Vec<std::thread::JoinHandle<Batches>>,
    dropper: Option<std::thread::JoinHandle<Outcome>>,
    policies: Option<std::thread::JoinHandle<Policies>>,
}

impl CycleRun {
    /// Starts writing one cycle from `connections` threads, each sending its batches one
    /// after the other until its share is sent or the server goes; with `drop`, a
    /// statement dropping the series of cycle `drop.0` once `drop.1` batches are
    /// acknowledged.
    fn start(
        url: &str,
        cycle: usize,
        connections: usize,
        per_conn: usize,
        batch: usize,
        drop: Option<(usize, usize)>,
    ) -> CycleRun {
        let acked = Arc::new((Mutex::new(0usize), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let running = Arc::new(AtomicUsize::new(connections));
        let mut writers = Vec::new();
        for conn in 0..connections {
            let (url, acked, stop, running) =
                (url.to_owned(), acked.clone(), stop.clone(), running.clone());
            writers.push(std::thread::spawn(move || {
                let node = BlockingNode::new(&url, Duration::from_secs(60));
                let mut sent = Vec::new();
                let mut seq = 0;
                while seq < per_conn && !stop.load(Ordering::Relaxed) {
                    let range = seq..(seq + batch).min(per_conn);
                    let mut body = String::with_capacity(range.len() * 64);
                    for s in range.clone() {
                        body.push_str(&format!(
                            "{MEASUREMENT},cycle=c{cycle},conn=k{conn} v={}i {}\n",
                            value_of(cycle, conn, s),
                            time_of(cycle, s)
                        ));
                    }
                    seq = range.end;
                    let acknowledged = node.as_ref().is_ok_and(|node| {
                        let target = WriteTarget::V1 { db: DB, rp: None };
                        let write =
                            node.client
                                .write(target, Precision::Nanoseconds, body.as_bytes());
                        node.runtime.block_on(write).is_ok()
                    });
                    let outcome = match acknowledged {
                        true => Outcome::Acknowledged,
                        false => Outcome::Unknown,
                    };
                    sent.push((range, outcome));
                    if !acknowledged {
                        break; // the server is going down: this connection is done
                    }
                    *acked.0.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                    acked.1.notify_all();
                }
                running.fetch_sub(1, Ordering::AcqRel);
                acked.1.notify_all();
                sent
            }));
        }
        let mut run = CycleRun {
            acked,
            running,
            stop,
            writers,
            dropper: None,
            policies: None,
        };
        run.dropper = drop.map(|(victim, after)| {
            let url = url.to_owned();
            let (acked, running) = (run.acked.clone(), run.running.clone());
            std::thread::spawn(move || {
                wait_for_acks(&acked, &running, after);
                let q = format!("DROP SERIES FROM \"{MEASUREMENT}\" WHERE \"cycle\" = 'c{victim}'");
                match query(&url, &q) {
                    Ok(()) => Outcome::Acknowledged,
                    Err(_) => Outcome::Unknown,
                }
            })
        });
        run
    }

    /// Creates retention policies one after the other from now on (each a control event),
    /// until one is not acknowledged (the node is going) or the cycle ends.
    fn create_policies(&mut self, url: &str, cycle: usize) {
        let (url, stop) = (url.to_owned(), self.stop.clone());
        self.policies = Some(std::thread::spawn(move || {
            let node = BlockingNode::new(&url, Duration::from_secs(60));
            let mut created = Vec::new();
            for i in 0..POLICIES_LIMIT {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let name = format!("c{cycle}_{i}");
                let q = format!(
                    "CREATE RETENTION POLICY \"{name}\" ON \"{DB}\" DURATION INF REPLICATION 1"
                );
                let acknowledged = node.as_ref().is_ok_and(|n| read_on(n, &q).is_ok());
                let outcome = match acknowledged {
                    true => Outcome::Acknowledged,
                    false => Outcome::Unknown,
                };
                created.push((name, outcome));
                if !acknowledged {
                    break;
                }
            }
            created
        }));
    }

    /// Waits until `n` batches are acknowledged, or every writer is done.
    fn wait_for(&self, n: usize) {
        wait_for_acks(&self.acked, &self.running, n);
    }

    /// Waits until `seen` holds (true), or every writer is done (false).
    fn wait_until(&self, mut seen: impl FnMut() -> bool) -> bool {
        loop {
            if seen() {
                return true;
            }
            if self.running.load(Ordering::Acquire) == 0 {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// After the kill: what each connection sent, what became of the drop, and the
    /// policies created.
    fn finish(self) -> (Sent, Option<Outcome>, Policies) {
        self.stop.store(true, Ordering::Relaxed);
        let sent = self
            .writers
            .into_iter()
            .map(|w| w.join().unwrap_or_default())
            .collect();
        let dropped = self.dropper.map(|d| d.join().unwrap_or(Outcome::Unknown));
        let policies = self
            .policies
            .map(|p| p.join().unwrap_or_default())
            .unwrap_or_default();
        (sent, dropped, policies)
    }
}

fn wait_for_acks(acked: &(Mutex<usize>, Condvar), running: &AtomicUsize, n: usize) {
    let (count, woken) = acked;
    let mut done = count.lock().unwrap_or_else(|e| e.into_inner());
    while *done < n && running.load(Ordering::Acquire) > 0 {
        done = woken.wait(done).unwrap_or_else(|e| e.into_inner());
    }
}

/// Runs a statement, an error if it failed (its HTTP status or the statement's error).
fn query(url: &str, q: &str) -> Result<(), String> {
    read(url, q).map(drop)
}

fn read(url: &str, q: &str) -> Result<serde_json::Value, String> {
    read_on(&BlockingNode::new(url, Duration::from_secs(60))?, q)
}

/// [`read`] through a client already made (a check reads once per connection).
fn read_on(node: &BlockingNode, q: &str) -> Result<serde_json::Value, String> {
    let url = node.client.base_url();
    let request = node
        .client
        .request(Method::POST, "/query")
        .query(&[("db", DB), ("epoch", "ns")])
        .form(&[("q", q)]);
    let answer = node.runtime.block_on(async {
        let response = node.client.send("/query", request).await?;
        response
            .bytes()
            .await
            .map_err(|e| ClientError::transport(url, e))
    });
    let answer = answer.map_err(|e| match e {
        ClientError::Status { status, body, .. } => format!("{status}: {body}"),
        ClientError::Transport { message, .. } => format!("transport: {message}"),
        other => other.to_string(),
    })?;
    let body: serde_json::Value = serde_json::from_slice(&answer).map_err(|e| e.to_string())?;
    match body["results"][0]["error"].as_str() {
        Some(e) => Err(e.to_owned()),
        None => Ok(body),
    }
}

/// Reads the retention policies back: every one acknowledged in any cycle must be there,
/// and (`last`, so that one is counted once) none that no cycle asked for.
fn check_policies(
    url: &str,
    history: &History,
    report: &mut CrashReport,
    last: bool,
) -> Result<(), CrashBenchError> {
    let q = format!("SHOW RETENTION POLICIES ON \"{DB}\"");
    let body = read(url, &q).map_err(|reason| CrashBenchError::Request {
        url: url.to_owned(),
        what: "reading the retention policies back".into(),
        reason,
    })?;
    let found: BTreeSet<&str> = body["results"][0]["series"][0]["values"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|row| row[0].as_str())
        .collect();
    let acknowledged: Vec<&str> = history
        .policies
        .iter()
        .filter(|(_, outcome)| matches!(outcome, Outcome::Acknowledged))
        .map(|(name, _)| name.as_str())
        .collect();
    let missing: Vec<&&str> = acknowledged
        .iter()
        .filter(|n| !found.contains(**n))
        .collect();
    if let Some(name) = missing.first() {
        report.note(format!(
            "{} acknowledged retention policies missing, {name} among them",
            missing.len()
        ));
    }
    let lost = report.policies_lost.get_or_insert(0);
    *lost = (*lost).max(missing.len());
    report.policies_acknowledged = Some(acknowledged.len());
    if last {
        for name in found {
            if name != "autogen" && !history.policies.iter().any(|(n, _)| n == name) {
                report.invented += 1;
                report.note(format!("retention policy {name} never created"));
            }
        }
    }
    Ok(())
}

/// Reads one cycle back and judges every point of it.
fn check_cycle(
    url: &str,
    history: &History,
    cycle: usize,
    report: &mut CrashReport,
    again: bool,
) -> Result<(), CrashBenchError> {
    let sent = &history.cycles[cycle];
    let dropped = history.dropped.contains(&cycle);
    let maybe_dropped = history.maybe_dropped.contains(&cycle);
    let failed = |what: String, reason: String| CrashBenchError::Request {
        url: url.to_owned(),
        what,
        reason,
    };
    let node = BlockingNode::new(url, Duration::from_secs(60))
        .map_err(|e| failed("a client".into(), e))?;
    for (conn, batches) in sent.iter().enumerate() {
        let q = format!(
            "SELECT v FROM \"{MEASUREMENT}\" WHERE \"cycle\" = 'c{cycle}' AND \"conn\" = 'k{conn}'"
        );
        let body = match read_on(&node, &q) {
            Ok(body) => body,
            // The server forgot the database itself: every point of it reads as lost.
            Err(e) if e.starts_with("database not found") => serde_json::Value::Null,
            Err(reason) => return Err(failed(format!("reading cycle {cycle} back"), reason)),
        };
        let mut found: BTreeMap<i64, i64> = BTreeMap::new();
        for series in body["results"][0]["series"]
            .as_array()
            .into_iter()
            .flatten()
        {
            for row in series["values"].as_array().into_iter().flatten() {
                let (Some(t), Some(v)) = (row[0].as_i64(), row[1].as_i64()) else {
                    report.invented += 1;
                    report.note(format!("cycle {cycle} conn {conn}: unreadable row {row}"));
                    continue;
                };
                found.insert(t, v);
            }
        }
        let mut expected_any = BTreeMap::new();
        for (range, outcome) in batches {
            for seq in range.clone() {
                let acked = matches!(outcome, Outcome::Acknowledged);
                expected_any.insert(time_of(cycle, seq), (value_of(cycle, conn, seq), acked));
            }
        }
        for (t, v) in &found {
            match expected_any.get(t) {
                None => {
                    report.invented += 1;
                    report.note(format!("cycle {cycle} conn {conn}: time {t} never written"));
                }
                Some(_) if dropped => {
                    report.resurrected += 1;
                    report.note(format!(
                        "cycle {cycle} conn {conn}: time {t} back after its series were dropped"
                    ));
                }
                Some((want, _)) if want != v => {
                    report.wrong += 1;
                    report.note(format!(
                        "cycle {cycle} conn {conn}: time {t} reads {v}, was written {want}"
                    ));
                }
                Some(_) => {}
            }
        }
        if dropped || maybe_dropped {
            continue;
        }
        for (t, (_, acked)) in &expected_any {
            let survived = found.contains_key(t);
            if *acked && !survived {
                report.lost += 1;
                report.note(format!(
                    "cycle {cycle} conn {conn}: acknowledged point at {t} lost"
                ));
            }
            if again {
                continue; // counted when the cycle was first read
            }
            match acked {
                true => report.acknowledged_points += 1,
                false => {
                    report.unacknowledged_points += 1;
                    report.unacknowledged_survived += usize::from(survived);
                }
            }
        }
    }
    Ok(())
}
