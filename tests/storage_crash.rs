//! Crash safety of the storage on the simulated file system. A power loss (or a process
//! death) after any I/O operation of shard creation, a head flush, a merge, a shard drop
//! or a restore (full, and incremental on top of a merged shard) leaves a node that opens
//! every shard (none quarantined), where every acknowledged point reads back with its
//! value, no point an acknowledged delete or drop removed comes back, and no point appears
//! that was never written.
//!
//! The control log and the shards are both on the simulated file system, so a crash also
//! separates a shard's directory from the event that makes the catalog know it.

use shardkeeper::backup::{archive, restore};
use shardkeeper::control::ControlLog;
use shardkeeper::line_protocol::{parse_body, FieldValue, Precision};
use shardkeeper::log::fs::{FileBytes, FileSystem, FsFile};
use shardkeeper::log::sim::{CrashMode, SimFs};
use shardkeeper::log::{Log, LogOptions};
use shardkeeper::proto::Tombstone;
use shardkeeper::storage::column::Column;
use shardkeeper::storage::series_index::TagSelector;
use shardkeeper::storage::shard::SeriesRead;
use shardkeeper::storage::{
    shard_group_start, tombstone, Shard, ShardFiles, ShardInfo, Storage, StorageError, WriteRequest,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const DATA: &str = "/data";
const DB: &str = "db";
const POLICY: &str = "autogen";
/// Shard groups of a policy of infinite duration last a week.
const GROUP: i64 = 7 * 86_400 * 1_000_000_000;
const BASE: i64 = 1_700_006_400_000_000_000;

fn options() -> LogOptions {
    // Small segments, so that workloads roll segments and flushes remove some.
    LogOptions {
        segment_capacity: 4 << 10,
        ..LogOptions::default()
    }
}

/// The start of shard group `g` (0, 1, ...).
fn group_start(g: i64) -> i64 {
    shard_group_start(BASE, GROUP) + g * GROUP
}

fn shard_info(g: i64) -> ShardInfo {
    ShardInfo::of_group(DB, POLICY, group_start(g), GROUP)
}

/// A node's services on the simulated file system: its control log and its storage.
struct Node {
    control: ControlLog,
    storage: Storage,
    runtime: tokio::runtime::Runtime,
}

fn open(fs: Arc<dyn FileSystem>) -> Result<Node, String> {
    let (log, recovery) = Log::open_on(fs.clone(), Path::new(DATA).join("control"), options())
        .map_err(|e| e.to_string())?;
    let (control, _) = ControlLog::with_log(log, recovery, u64::MAX).map_err(|e| e.to_string())?;
    let catalog = control.read_blocking(|c| c.catalog.clone());
    // A head budget no workload reaches: flushes and merges run when the test says.
    let storage = Storage::open_on(fs, Path::new(DATA), &catalog, &[], options(), 1, 1 << 30)
        .map_err(|e| e.to_string())?;
    // Leftovers of a drop or a restore are removed in the background: done before the
    // test goes on, so that every run performs the same operations.
    storage.wait_for_purges();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| e.to_string())?;
    Ok(Node {
        control,
        storage,
        runtime,
    })
}

fn open_sim(fs: &SimFs) -> Result<Node, String> {
    open(Arc::new(fs.clone()))
}

/// A point: (series key, time).
type Key = (String, i64);

/// What the test knows: points acknowledged (which must be there with their value), every
/// point sent (the only ones that may be there), and points an acknowledged delete or drop
/// removed (which must not come back).
#[derive(Default)]
struct Model {
    next: i64,
    acked: BTreeMap<Key, i64>,
    sent: BTreeMap<Key, i64>,
    gone: BTreeSet<Key>,
}

impl Model {
    /// Writes `n` new points into shard group `g`, over a few series; true if acknowledged.
    fn write(&mut self, node: &Node, g: i64, n: i64) -> bool {
        let mut body = String::new();
        let mut batch = Vec::new();
        for _ in 0..n {
            self.next += 1;
            let key = format!("m,host=h{}", self.next % 4);
            let time = group_start(g) + self.next;
            body.push_str(&format!("{key} v={}i {time}\n", self.next));
            batch.push(((key, time), self.next));
        }
        let (points, errors) = parse_body(body.as_bytes());
        assert!(errors.is_empty(), "{errors:?}");
        self.sent.extend(batch.iter().cloned());
        let request = WriteRequest {
            database: DB.into(),
            retention_policy: None,
            points,
            precision: Precision::Nanoseconds,
            now: BASE,
            max_fields_per_measurement: usize::MAX,
        };
        let written = node
            .runtime
            .block_on(node.storage.write(&node.control, request));
        match written {
            Ok(outcome) => {
                assert_eq!(outcome.dropped, 0, "{outcome:?}");
                self.acked.extend(batch);
                true
            }
            Err(_) => false,
        }
    }

    /// Deletes the points of series `host` in group `g` (all its times there).
    fn delete(&mut self, node: &Node, g: i64, host: i64) -> bool {
        let key = format!("m,host=h{host}");
        let (start, end) = (group_start(g), group_start(g) + GROUP - 1);
        let Some(shard) = node.storage.shard(shard_info(g).id) else {
            return false;
        };
        let tombstone = Tombstone {
            version: node.storage.next_version(),
            measurement: "m".into(),
            series_keys: vec![key.clone()],
            min_time: start,
            max_time: end,
            drop_schema: false,
        };
        let hit: Vec<Key> = self
            .sent
            .keys()
            .filter(|(k, t)| *k == key && (start..=end).contains(t))
            .cloned()
            .collect();
        let deleted = node.runtime.block_on(shard.delete(vec![tombstone])).is_ok();
        self.forget(&hit, deleted);
        deleted
    }

    /// Drops the shard of group `g` as DROP SHARD does: the event, then the files.
    fn drop_shard(&mut self, node: &Node, g: i64) -> bool {
        let id = shard_info(g).id;
        let dropped = node.runtime.block_on(node.control.mutate(|c| {
            let shards: Vec<ShardInfo> = c.catalog.shards().filter(|s| s.id == id).collect();
            Ok::<_, StorageError>((c.catalog.drop_shards(&shards), ()))
        }));
        let (start, end) = (group_start(g), group_start(g) + GROUP);
        let hit: Vec<Key> = self
            .sent
            .keys()
            .filter(|(_, t)| (start..end).contains(t))
            .cloned()
            .collect();
        self.forget(&hit, dropped.is_ok());
        if dropped.is_ok() {
            node.runtime
                .block_on(node.storage.remove_shards(&node.control, &[id]));
            node.storage.wait_for_purges();
        }
        dropped.is_ok()
    }

    /// Points a delete or drop was sent for: gone for good if it was acknowledged, else
    /// no longer required (it may have been applied).
    fn forget(&mut self, hit: &[Key], acknowledged: bool) {
        for k in hit {
            self.acked.remove(k);
            if acknowledged {
                self.gone.insert(k.clone());
            }
        }
    }

    /// Checks the reopened node against the model.
    fn check(&self, node: &Node, what: &str) {
        let quarantined = node.storage.quarantined();
        assert!(
            quarantined.is_empty(),
            "{what}: a crash left shards that do not open: {:?}",
            quarantined
                .iter()
                .map(|q| q.reason.clone())
                .collect::<Vec<_>>()
        );
        let found = read_all(&node.storage);
        for (k, v) in &self.acked {
            assert_eq!(
                found.get(k),
                Some(v),
                "{what}: acknowledged point {k:?} lost or changed"
            );
        }
        for (k, v) in &found {
            assert_eq!(
                self.sent.get(k),
                Some(v),
                "{what}: point {k:?} = {v} was never written"
            );
            assert!(
                !self.gone.contains(k),
                "{what}: point {k:?}, deleted or dropped, came back"
            );
        }
    }
}

/// Every point of field `v` of measurement `m`, as a query reads it (deletes applied).
fn read_all(storage: &Storage) -> BTreeMap<Key, i64> {
    let fields = ["v".to_owned()];
    let read = SeriesRead {
        measurement: "m",
        start: i64::MIN,
        end: i64::MAX,
        fields: &fields,
        selector: &TagSelector::All,
        keep: &|_| true,
    };
    let mut found = BTreeMap::new();
    for shard in storage.shards_of(DB, None) {
        for s in shard.series_of(&read) {
            let parts: Vec<Column> = s
                .fields
                .into_iter()
                .flatten()
                .map(|p| {
                    let column = p.load().expect("a block reads back");
                    tombstone::without_deleted(&column, &s.deleted).unwrap_or(column)
                })
                .collect();
            if let Some(c) = Column::resolve(parts) {
                for i in 0..c.len() {
                    let FieldValue::Integer(v) = c.values.get(i) else {
                        panic!("v is an integer field")
                    };
                    let previous = found.insert((s.key.to_string(), c.times[i]), v);
                    assert!(previous.is_none(), "one point read from two shards");
                }
            }
        }
    }
    found
}

fn create_database(node: &Node) -> bool {
    node.runtime
        .block_on(node.control.mutate(|c| {
            if c.catalog.databases.contains_key(DB) {
                return Ok((Vec::new(), ()));
            }
            Ok::<_, StorageError>((c.catalog.create_database(DB, None)?, ()))
        }))
        .is_ok()
}

fn flush(node: &Node, g: i64) -> bool {
    node.storage
        .shard(shard_info(g).id)
        .is_some_and(|s| s.flush().is_ok())
}

fn merge(node: &Node, g: i64) -> bool {
    node.storage
        .shard(shard_info(g).id)
        .is_some_and(|s| s.merge().is_ok())
}

/// A shard's backup as the node streams it: all its column files (`keep` None), or those
/// `keep` accepts (an incremental backup).
fn backup(
    node: &Node,
    g: i64,
    keep: Option<&dyn Fn(&Path) -> bool>,
) -> Option<(Vec<u8>, Vec<std::path::PathBuf>)> {
    let shard = node.storage.shard(shard_info(g).id)?;
    let files = shard.backup_files().ok()?;
    let names = files.column_files.iter().map(|f| f.path.clone()).collect();
    let (files, since) = match keep {
        None => (files, None),
        Some(keep) => (
            ShardFiles {
                column_files: files
                    .column_files
                    .into_iter()
                    .filter(|f| keep(&f.path))
                    .collect(),
            },
            Some(1),
        ),
    };
    let mut tar = Vec::new();
    archive::write_shard_archive(&shard.info, &files, since, &mut tar).ok()?;
    Some((tar, names))
}

fn restore(node: &Node, g: i64, tar: &[u8]) -> bool {
    let staging = node.storage.shards_dir().join(".restore-test");
    restore::restore_shard(&node.storage, &shard_info(g), &[], tar, &staging, u64::MAX).is_ok()
}

/// Runs `workload` stopped after every number of I/O operations in turn, crashes in each
/// mode of loss, reopens and checks; until a run finishes before its stop in every mode.
/// Returns the crash points exercised.
fn crash_everywhere(name: &str, workload: fn(&Node, &mut Model) -> bool) -> u64 {
    let modes = |stop_at: u64| {
        [
            CrashMode::DropUnsynced,
            CrashMode::Tear {
                seed: stop_at * 131 + 7,
            },
            CrashMode::KeepUnsynced,
        ]
    };
    let (mut crash_points, mut stop_at) = (0u64, 0u64);
    loop {
        let mut interrupted = false;
        for mode in modes(stop_at) {
            let fs = SimFs::new();
            fs.stop_after_ops(stop_at);
            let mut model = Model::default();
            let finished = match open_sim(&fs) {
                Ok(node) => workload(&node, &mut model),
                Err(_) => false,
            };
            if !finished {
                interrupted = true;
                crash_points += 1;
            }
            fs.crash(mode);
            let what = format!("{name}: crash after {stop_at} operations ({mode:?})");
            let node =
                open_sim(&fs).unwrap_or_else(|e| panic!("{what}: the node does not open: {e}"));
            model.check(&node, &what);
            // The node takes writes again, and keeps them.
            assert!(
                create_database(&node) && model.write(&node, 0, 3),
                "{what}: a write after recovery failed"
            );
            drop(node);
            fs.crash(CrashMode::DropUnsynced);
            let node = open_sim(&fs)
                .unwrap_or_else(|e| panic!("{what}: the node does not open again: {e}"));
            model.check(&node, &format!("{what}, then a write and a power loss"));
        }
        if !interrupted {
            break;
        }
        stop_at += 1;
    }
    println!(
        "{name}: {crash_points} crash points exercised ({stop_at} operation boundaries x 3 modes of loss)"
    );
    assert!(
        stop_at > 10,
        "{name}: the workload crosses many boundaries ({stop_at})"
    );
    crash_points
}

/// Shard creation: the first writes into two shard groups create their shards (a control
/// event, a directory, a log each).
fn creating_shards(node: &Node, model: &mut Model) -> bool {
    create_database(node)
        && model.write(node, 0, 5)
        && model.write(node, 1, 5)
        && model.write(node, 0, 5)
}

#[test]
fn a_crash_anywhere_in_shard_creation_loses_no_acknowledged_point() {
    crash_everywhere("shard creation", creating_shards);
}

/// A head flushed to a column file (and the log segments it covers removed), with a
/// delete before it and writes after.
fn flushing(node: &Node, model: &mut Model) -> bool {
    create_database(node)
        && model.write(node, 0, 40)
        && model.write(node, 0, 40)
        && model.delete(node, 0, 1)
        && flush(node, 0)
        && model.write(node, 0, 40)
        && flush(node, 0)
        && model.write(node, 0, 5)
}

#[test]
fn a_crash_anywhere_in_a_head_flush_loses_no_acknowledged_point() {
    crash_everywhere("head flush", flushing);
}

/// Eight flushes (a delete among them), then a merge of the eight column files.
fn merging(node: &Node, model: &mut Model) -> bool {
    if !create_database(node) {
        return false;
    }
    for i in 0..8 {
        if !model.write(node, 0, 12) || (i == 3 && !model.delete(node, 0, 2)) || !flush(node, 0) {
            return false;
        }
    }
    merge(node, 0) && model.write(node, 0, 5)
}

#[test]
fn a_crash_anywhere_in_a_merge_loses_no_acknowledged_point() {
    crash_everywhere("merge", merging);
}

/// A shard with column files and log is dropped; a write into its time range creates it
/// again (same id), which must not meet the old files.
fn dropping(node: &Node, model: &mut Model) -> bool {
    create_database(node)
        && model.write(node, 0, 20)
        && model.write(node, 1, 20)
        && flush(node, 0)
        && model.write(node, 0, 5)
        && model.drop_shard(node, 0)
        && model.write(node, 1, 5)
        && model.write(node, 0, 5)
}

#[test]
fn a_crash_anywhere_in_a_shard_drop_loses_nothing_and_brings_nothing_back() {
    crash_everywhere("shard drop", dropping);
}

/// A full backup restored into the shard it was taken from, which took writes since:
/// the restore keeps them (the live log is the longer).
fn restoring_full(node: &Node, model: &mut Model) -> bool {
    if !(create_database(node)
        && model.write(node, 0, 20)
        && flush(node, 0)
        && model.write(node, 0, 20))
    {
        return false;
    }
    let Some((tar, _)) = backup(node, 0, None) else {
        return false;
    };
    model.write(node, 0, 10) && restore(node, 0, &tar) && model.write(node, 0, 5)
}

#[test]
fn a_crash_anywhere_in_a_full_restore_loses_no_acknowledged_point() {
    crash_everywhere("full restore", restoring_full);
}

/// An incremental backup (the column files flushed after a full one, and the log)
/// restored into its shard after a merge there folded every file into one named as the
/// backup's newest.
fn restoring_incremental(node: &Node, model: &mut Model) -> bool {
    if !(create_database(node) && model.write(node, 0, 10) && flush(node, 0)) {
        return false;
    }
    let Some((_, in_full)) = backup(node, 0, None) else {
        return false;
    };
    for _ in 0..7 {
        if !(model.write(node, 0, 10) && flush(node, 0)) {
            return false;
        }
    }
    let not_in_full = |p: &Path| !in_full.iter().any(|f| f == p);
    let Some((tar, _)) = backup(node, 0, Some(&not_in_full)) else {
        return false;
    };
    merge(node, 0) && model.write(node, 0, 5) && restore(node, 0, &tar) && model.write(node, 0, 5)
}

#[test]
fn a_crash_anywhere_in_an_incremental_restore_loses_no_acknowledged_point() {
    crash_everywhere("incremental restore", restoring_incremental);
}

/// The simulated file system with faults a test switches on: a panic where a flush creates
/// its column file (a bug in a flush, in effect), or a failed sync of the directory where
/// two directories were just exchanged (a restore's swap).
#[derive(Debug, Default)]
struct FaultyFs {
    inner: SimFs,
    panic_on_flush: AtomicBool,
    fail_sync_after_exchange: AtomicBool,
    exchanged: AtomicBool,
    /// Holds the control log's fdatasyncs while closed.
    control_syncs: Arc<Gate>,
    /// Holds the creation of shard directories while closed.
    shard_dirs: Arc<Gate>,
}

/// A gate fdatasyncs wait at while it is closed (a slow disk, as long as a test likes).
#[derive(Debug, Default)]
struct Gate {
    /// (closed, syncs waiting)
    state: std::sync::Mutex<(bool, usize)>,
    changed: std::sync::Condvar,
}

impl Gate {
    fn set_closed(&self, closed: bool) {
        self.state.lock().unwrap().0 = closed;
        self.changed.notify_all();
    }

    fn pass(&self) {
        let mut state = self.state.lock().unwrap();
        state.1 += 1;
        self.changed.notify_all();
        while state.0 {
            state = self.changed.wait(state).unwrap();
        }
        state.1 -= 1;
    }

    /// Waits until an operation waits at the gate.
    fn wait_for_a_waiter(&self) {
        let state = self.state.lock().unwrap();
        let (state, timeout) = self
            .changed
            .wait_timeout_while(state, std::time::Duration::from_secs(120), |s| s.1 == 0)
            .unwrap();
        assert!(
            !timeout.timed_out() && state.1 > 0,
            "nothing came to the gate"
        );
    }
}

/// A file whose fdatasyncs pass its gate first.
struct GatedFile {
    inner: Box<dyn FsFile>,
    gate: Arc<Gate>,
}

impl FsFile for GatedFile {
    fn size(&self) -> std::io::Result<u64> {
        self.inner.size()
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        self.inner.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.gate.pass();
        self.inner.sync_data()
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.inner.set_len(len)
    }
    fn preallocate(&self, len: u64) -> std::io::Result<()> {
        self.inner.preallocate(len)
    }
}

impl FaultyFs {
    /// The control log's files pass the gate to sync.
    fn gated(&self, path: &Path, file: Box<dyn FsFile>) -> Box<dyn FsFile> {
        if path.starts_with(Path::new(DATA).join("control")) {
            let gate = self.control_syncs.clone();
            Box::new(GatedFile { inner: file, gate })
        } else {
            file
        }
    }
}

impl FileSystem for FaultyFs {
    fn create(&self, path: &Path) -> std::io::Result<Box<dyn FsFile>> {
        let column_file = path.to_string_lossy().ends_with(".col.tmp");
        if column_file && self.panic_on_flush.load(Ordering::SeqCst) {
            panic!("a bug in a flush");
        }
        self.inner.create(path)
    }
    fn exchange(&self, a: &Path, b: &Path) -> std::io::Result<()> {
        self.inner.exchange(a, b)?;
        self.exchanged.store(true, Ordering::SeqCst);
        Ok(())
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        if self.fail_sync_after_exchange.load(Ordering::SeqCst)
            && self.exchanged.swap(false, Ordering::SeqCst)
        {
            self.fail_sync_after_exchange.store(false, Ordering::SeqCst);
            return Err(std::io::Error::from_raw_os_error(libc::EIO));
        }
        self.inner.sync_dir(dir)
    }
    fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn create_dir(&self, dir: &Path) -> std::io::Result<()> {
        if dir.parent() == Some(&Path::new(DATA).join("shards")) {
            self.shard_dirs.pass();
        }
        self.inner.create_dir(dir)
    }
    fn list(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn list_dirs(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        self.inner.list_dirs(dir)
    }
    fn exists(&self, path: &Path) -> std::io::Result<bool> {
        self.inner.exists(path)
    }
    fn create_preallocated(&self, path: &Path, len: u64) -> std::io::Result<Box<dyn FsFile>> {
        Ok(self.gated(path, self.inner.create_preallocated(path, len)?))
    }
    fn open(&self, path: &Path, writable: bool) -> std::io::Result<Box<dyn FsFile>> {
        Ok(self.gated(path, self.inner.open(path, writable)?))
    }
    fn map(&self, path: &Path) -> std::io::Result<FileBytes> {
        self.inner.map(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.inner.rename(from, to)
    }
    fn hard_link(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.inner.hard_link(from, to)
    }
    fn remove(&self, path: &Path) -> std::io::Result<()> {
        self.inner.remove(path)
    }
    fn remove_dir(&self, dir: &Path) -> std::io::Result<()> {
        self.inner.remove_dir(dir)
    }
    fn remove_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        self.inner.remove_dir_all(dir)
    }
}

/// A flush that panics (a bug) neither keeps later flushes from running nor loses the
/// points it had taken from the head: the next flush writes them out before the log
/// segments holding them go.
#[test]
fn a_flush_that_panics_leaves_its_points_to_the_next_flush() {
    let fs = Arc::new(FaultyFs::default());
    let node = open(fs.clone()).expect("opens");
    let mut model = Model::default();
    assert!(create_database(&node) && model.write(&node, 0, 30));
    let shard: Arc<Shard> = node.storage.shard(shard_info(0).id).expect("the shard");
    fs.panic_on_flush.store(true, Ordering::SeqCst);
    let flushed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| shard.flush()));
    assert!(flushed.is_err(), "the flush panicked");
    fs.panic_on_flush.store(false, Ordering::SeqCst);
    model.check(&node, "after the panic");
    assert!(model.write(&node, 0, 30));
    shard.flush().expect("the next flush");
    assert_eq!(
        shard.backup_files().expect("files").column_files.len(),
        1,
        "the flush after the panic ran"
    );
    drop(shard);
    drop(node);
    fs.inner.crash(CrashMode::DropUnsynced);
    let node = open_sim(&fs.inner).expect("opens after a power loss");
    model.check(&node, "after a power loss");
    assert_eq!(read_all(&node.storage).len(), 60);
}

/// A restore is acknowledged only once its swap is durable: if the shards directory
/// cannot be synced after the swap, the restore fails, the shard is as it was (and takes
/// writes), and a power loss then loses nothing acknowledged.
#[test]
fn a_restore_whose_swap_cannot_be_made_durable_fails_and_keeps_the_shard() {
    let fs = Arc::new(FaultyFs::default());
    let node = open(fs.clone()).expect("opens");
    let mut model = Model::default();
    assert!(create_database(&node) && model.write(&node, 0, 20) && flush(&node, 0));
    assert!(model.write(&node, 0, 20));
    let (tar, _) = backup(&node, 0, None).expect("a backup");
    assert!(model.write(&node, 0, 10));
    fs.fail_sync_after_exchange.store(true, Ordering::SeqCst);
    assert!(
        !restore(&node, 0, &tar),
        "a swap that is not durable is not a restore"
    );
    assert!(
        !fs.fail_sync_after_exchange.load(Ordering::SeqCst),
        "the swap was synced"
    );
    model.check(&node, "after the failed restore");
    assert!(model.write(&node, 0, 5), "the shard takes writes");
    drop(node);
    fs.inner.crash(CrashMode::DropUnsynced);
    let node = open_sim(&fs.inner).expect("opens after a power loss");
    model.check(&node, "after a power loss");
    // And a restore that can sync goes through.
    assert!(restore(&node, 0, &tar));
    model.check(&node, "after the restore");
}

/// A control mutation held inside a slow fdatasync (here: one that waits until the test
/// lets it finish) keeps neither writes nor reads of existing databases waiting: reads of
/// the control state never wait on a sync, and the data log is a log of its own.
#[test]
fn writes_and_reads_go_on_while_a_control_mutation_waits_on_its_fdatasync() {
    let fs = Arc::new(FaultyFs::default());
    let node = Arc::new(open(fs.clone()).expect("opens"));
    let mut model = Model::default();
    assert!(create_database(&node) && model.write(&node, 0, 10));
    fs.control_syncs.set_closed(true);
    let mutating =
        {
            let node = node.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .expect("a runtime");
                runtime.block_on(node.control.mutate(|c| {
                    Ok::<_, StorageError>((c.catalog.create_database("other", None)?, ()))
                }))
            })
        };
    fs.control_syncs.wait_for_a_waiter();
    assert!(model.write(&node, 0, 10), "a write to an existing database");
    model.check(&node, "while a control mutation waits on its fdatasync");
    assert!(!mutating.is_finished(), "the mutation was still waiting");
    fs.control_syncs.set_closed(false);
    mutating
        .join()
        .expect("the mutating thread")
        .expect("the mutation completes once its fdatasync does");
    assert!(node
        .control
        .read_blocking(|c| c.catalog.databases.contains_key("other")));
}

/// A query reading a database while a write creates a shard there (caught between the
/// shard becoming known to the storage and its directory being made) neither quarantines
/// the new shard nor fails the write: the shard is known only once its directory exists.
#[test]
fn a_read_while_a_write_creates_its_shard_does_not_quarantine_it() {
    let fs = Arc::new(FaultyFs::default());
    let node = Arc::new(open(fs.clone()).expect("opens"));
    let mut model = Model::default();
    assert!(create_database(&node) && model.write(&node, 0, 10));
    fs.shard_dirs.set_closed(true);
    let writing = {
        let node = node.clone();
        std::thread::spawn(move || {
            let mut model = Model::default();
            let written = model.write(&node, 1, 10);
            (written, model)
        })
    };
    fs.shard_dirs.wait_for_a_waiter();
    model.check(&node, "while a write creates its shard's directory");
    fs.shard_dirs.set_closed(false);
    let (written, other) = writing.join().expect("the writing thread");
    assert!(written, "the write into the new shard is acknowledged");
    assert!(
        node.storage.quarantined().is_empty(),
        "no shard quarantined"
    );
    let found = read_all(&node.storage);
    assert_eq!(found.len(), 20, "both writes read back");
    for (k, v) in other.acked.iter().chain(&model.acked) {
        assert_eq!(found.get(k), Some(v), "acknowledged point {k:?}");
    }
}
