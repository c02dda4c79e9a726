//! Stored points: shards by retention policy and time, their records in one data log.
//!
//! A write is acknowledged only when its records (one per shard it touches, appended
//! together) are durable in the node's data log ([`data_log`]). A shard is opened on first
//! use: start-up opens only the shards with records in the log's tail.
//! Shards come into being as control-log events ([`crate::proto::ShardCreated`]) so that
//! the catalog, `SHOW SHARDS` and backups know them; their ids are derived from their
//! identity, so every replica agrees on them without a coordinator.

pub(crate) mod background;
pub mod column;
pub(crate) mod column_file;
pub(crate) mod data_log;
pub(crate) mod digest;
pub(crate) mod encoding;
pub mod head;
pub(crate) mod hlc;
pub mod points_codec;
pub mod series_index;
pub mod shard;
pub mod tombstone;

use crate::catalog::Catalog;
use crate::control::ControlLog;
use crate::line_protocol::{Point, Precision};
use crate::log::fs::{FileSystem, RealFs};
use crate::log::{DamagedRecord, Log, LogError, LogOptions, RecoveryMode};
pub use crate::placement::shard_group_start;
use crate::projection::ProjectionError;
use data_log::{DataLog, Header};
use hlc::HybridClock;
pub use shard::{Shard, ShardFiles, ShardInfo};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database not found: \"{0}\"")]
    DatabaseNotFound(String),
    #[error("retention policy not found: {0}")]
    RetentionPolicyNotFound(String),
    #[error("shard {shard}: {source}")]
    ShardLog { shard: u64, source: LogError },
    #[error("data log: {source}")]
    DataLog { source: LogError },
    #[error("shard {shard}: record at LSN {lsn} does not decode: {reason}")]
    CorruptRecord {
        shard: u64,
        lsn: u64,
        reason: String,
    },
    #[error("shard {shard}: {path} is missing, though the catalog knows the shard: its files were lost (removed outside shardkeeper?). Restore the shard from a backup; or, if it never held data, create that empty directory to open it empty")]
    ShardMissing { shard: u64, path: PathBuf },
    #[error("shard {path}: {source}")]
    ShardDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("shard {shard}: {source}")]
    ColumnFile {
        shard: u64,
        source: column_file::ColumnFileError,
    },
    #[error("control log: {0}")]
    Control(#[from] ProjectionError),
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error("shard {0} stayed in use by other requests; try again")]
    ShardBusy(u64),
    #[error("shard {shard} is quarantined: {reason}")]
    Quarantined { shard: u64, reason: String },
    #[error("shard {0} is not known here")]
    UnknownShard(u64),
    /// A follower of the bucket's writes (a replication queue) has no room for them.
    #[error("{0}")]
    QueueFull(String),
}

/// One record of a write, as those following a bucket's writes see it before it is
/// appended.
#[derive(Debug, Clone, Copy)]
pub struct QueuedRecord<'a> {
    pub database: &'a str,
    pub retention_policy: &'a str,
    /// The record's bytes in the data log (frame included).
    pub bytes: u64,
}

/// What follows the writes to some buckets through the data log (replication queues):
/// told of every write's records before they are appended, so that a write they have no
/// room for is refused whole, before anything of it is durable.
pub trait WriteFollowers: Send + Sync {
    /// Takes room for `records`, or refuses the write with why (nothing taken).
    fn admit(&self, records: &[QueuedRecord<'_>]) -> Result<(), String>;
    /// Gives back the room `admit` took for records that did not become durable.
    fn abandon(&self, records: &[QueuedRecord<'_>]);
    /// Records up to `lsn` are durable (wakes those waiting for them).
    fn appended(&self, lsn: crate::log::Lsn);
    /// Whether the writes to `database`.`retention_policy` are followed: their compressed
    /// records' bytes before compression are then handed to [`WriteFollowers::decoded`].
    fn follows(&self, database: &str, retention_policy: &str) -> bool;
    /// A followed record durable at `lsn`: its payload's first bytes (which name it) and
    /// its `PointLines` bytes before compression, so that a follower reading it from the
    /// log soon after need not decompress it.
    fn decoded(&self, lsn: crate::log::Lsn, head: &[u8], plain: Vec<u8>);
}

/// What is shown the points every write accepts into some databases and policies, once
/// they are durable (1.x's subscriptions, `crate::subscriber`): asked under the write's
/// own read of the catalog, so that it sees the subscriptions as of the write's placement.
pub(crate) trait WriteSubscribers: Send + Sync {
    /// Whether anything wants the writes to `database`.`retention_policy`: what to hand
    /// this write's accepted points to (None: nothing, the common case, at no cost).
    fn subscribed(
        &self,
        catalog: &Catalog,
        database: &str,
        retention_policy: &str,
    ) -> Option<Box<dyn SubscribedWrite>>;
}

/// One write's points as a subscriber takes them.
pub(crate) trait SubscribedWrite: Send {
    /// The points the write accepted (durable and applied, their times in nanoseconds),
    /// before it is answered; must not block.
    fn accepted(self: Box<Self>, points: &mut dyn Iterator<Item = &Point<'_>>);
}

/// A shard left closed at start-up.
#[derive(Debug, Clone)]
pub struct Quarantined {
    pub info: ShardInfo,
    /// The error that kept it closed: names the file and byte offset of the damage.
    pub reason: String,
}

/// A write as the HTTP layer hands it over: parsed points, raw timestamps.
pub struct WriteRequest<'a> {
    pub database: String,
    pub retention_policy: Option<String>,
    pub points: Vec<Point<'a>>,
    pub precision: Precision,
    /// Server time, for points written without a timestamp (one value per request).
    pub now: i64,
    /// Most fields a measurement may have in a shard (`usize::MAX`: no limit).
    pub max_fields_per_measurement: usize,
}

/// What happened to a write's points.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    pub written: usize,
    pub dropped: usize,
    /// InfluxDB's partial-write reason for the first drop.
    pub reason: Option<String>,
}

pub struct Storage {
    /// What shards' files live on: [`RealFs`] but in crash tests.
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    clock: HybridClock,
    data_log: Arc<DataLog>,
    /// Open shards.
    shards: RwLock<HashMap<u64, Arc<Shard>>>,
    /// Shards the catalog knows that are not open yet: opened on first use.
    closed: RwLock<HashMap<u64, ShardInfo>>,
    /// One shard opens at a time (an earlier layout's shard is migrated as it opens).
    opening: std::sync::Mutex<()>,
    /// Held shared by a write from its look at the catalog until its points are applied,
    /// and exclusively by the removal of dropped shards: a write that saw a shard in the
    /// catalog can neither open it again after its directory was removed (acknowledging
    /// points into a directory the next start deletes, or that a re-created database of
    /// the same name would inherit) nor be cut off halfway.
    placement: tokio::sync::RwLock<()>,
    /// Shards that did not open (a damaged file), with why: the node serves the others,
    /// and refuses reads and writes that would need these.
    quarantined: RwLock<BTreeMap<u64, Quarantined>>,
    /// Damaged data-log records of no known shard, passed over (see `quarantine_damaged`).
    passed_over: RwLock<Vec<String>>,
    max_head_bytes: usize,
    /// Flushes and merges, on a few threads however many shards want them.
    background: background::Background,
    /// A flush of the shards holding the data log's oldest records is queued.
    forcing: Arc<std::sync::atomic::AtomicBool>,
    /// Threads removing dropped shards' files.
    purges: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// Told of every write before it is appended (replication queues), once set.
    followers: std::sync::OnceLock<Arc<dyn WriteFollowers>>,
    /// Shown every write's accepted points once durable (subscriptions), once set.
    subscribers: std::sync::OnceLock<Arc<dyn WriteSubscribers>>,
}

/// Names of shard directories renamed out of the way, to be removed.
const SET_ASIDE_PREFIX: &str = ".dropped-";

/// The node's data log, beside the shards' directories.
pub const DATA_LOG_DIR: &str = "data-log";

impl Storage {
    /// Opens the data log and replays its tail into the shards it names (opening them);
    /// the catalog's other shards open on first use, and each must then have its
    /// directory (see [`Storage::create_shard_dirs`]). Shard directories the catalog does
    /// not know (left by a crash between a drop event and the removal, or the other side
    /// of a restore's swap) are removed. `pins`: per follower of the log (a replication),
    /// the first LSN it still needs, kept from the first trim on.
    pub fn open(
        data_dir: &Path,
        catalog: &Catalog,
        pins: &[(String, crate::log::Lsn)],
        log_options: LogOptions,
        node_id: u16,
        max_head_bytes: usize,
    ) -> Result<Storage, StorageError> {
        let fs = Arc::new(RealFs);
        Self::open_on(
            fs,
            data_dir,
            catalog,
            pins,
            log_options,
            node_id,
            max_head_bytes,
        )
    }

    /// [`Storage::open`] on any file system.
    pub fn open_on(
        fs: Arc<dyn FileSystem>,
        data_dir: &Path,
        catalog: &Catalog,
        pins: &[(String, crate::log::Lsn)],
        log_options: LogOptions,
        node_id: u16,
        max_head_bytes: usize,
    ) -> Result<Storage, StorageError> {
        let dir = data_dir.join("shards");
        let path = dir.clone();
        let dir_err = |source| StorageError::ShardDir {
            path: path.clone(),
            source,
        };
        fs.create_dir_all(&dir).map_err(dir_err)?;
        // A damaged record costs its shard (quarantined), not the node.
        let log_options = LogOptions {
            recovery: RecoveryMode::SkipDamagedRecords,
            ..log_options
        };
        let (log, report) = Log::open_on(fs.clone(), data_dir.join(DATA_LOG_DIR), log_options)
            .map_err(|source| StorageError::DataLog { source })?;
        let durable = log.durable_lsn();
        // Enough for every shard being written to fill its head before any is made to
        // flush, and no less than a few segments.
        let budget = (8 * max_head_bytes as u64).max(64 << 20);
        let known: Vec<ShardInfo> = catalog.shards().collect();
        let storage = Storage {
            fs,
            dir,
            clock: HybridClock::new(node_id),
            data_log: Arc::new(DataLog::new(log, durable, budget)),
            shards: RwLock::new(HashMap::new()),
            closed: RwLock::new(known.iter().map(|s| (s.id, s.clone())).collect()),
            opening: Default::default(),
            placement: tokio::sync::RwLock::new(()),
            quarantined: RwLock::new(BTreeMap::new()),
            passed_over: RwLock::new(Vec::new()),
            max_head_bytes,
            background: background::Background::new(2),
            forcing: Default::default(),
            purges: Default::default(),
            followers: Default::default(),
            subscribers: Default::default(),
        };
        for (owner, from) in pins {
            storage.data_log.pin(owner, *from);
        }
        storage.quarantine_damaged(&report.damaged);
        storage.replay()?;
        // What is listed here may still be only in the page cache (a process killed just
        // after a restore's swap): made durable before the other side of it is removed.
        storage.fs.sync_dir(&storage.dir).map_err(dir_err)?;
        let entries = storage.fs.list_dirs(&storage.dir).map_err(dir_err)?;
        // A shard whose directory is gone is told at start-up, not at its first use.
        let lost: Vec<ShardInfo> = {
            let present: std::collections::HashSet<&str> =
                entries.iter().map(String::as_str).collect();
            let closed = storage.closed.read().unwrap_or_else(|e| e.into_inner());
            closed
                .values()
                .filter(|s| !present.contains(s.id.to_string().as_str()))
                .cloned()
                .collect()
        };
        for info in lost {
            let e = StorageError::ShardMissing {
                shard: info.id,
                path: storage.shard_dir(info.id),
            };
            storage.quarantine(info, &e);
        }
        let (mut trash, mut renamed) = (Vec::new(), false);
        for name in entries {
            let path = storage.dir.join(&name);
            let id: Option<u64> = name.parse().ok();
            if id.is_some_and(|id| known.iter().any(|s| s.id == id)) {
                continue;
            }
            if id.is_some() {
                tracing::warn!(path = %path.display(), "removing shard directory the catalog does not know");
                // Under a shard's name: out of the way of a shard created anew, at once.
                trash.push(storage.set_aside(&path).map_err(dir_err)?);
                renamed = true;
            } else {
                trash.push(path);
            }
        }
        if renamed {
            storage.fs.sync_dir(&storage.dir).map_err(dir_err)?;
        }
        if !trash.is_empty() {
            // Dropped shards and restores' other sides: one line, however many.
            tracing::info!(
                directories = trash.len(),
                "removing directories of dropped or replaced shards"
            );
        }
        storage.purge(trash);
        Ok(storage)
    }

    /// Applies the data log's records to their shards, opening those they name. Records
    /// of shards the catalog no longer knows (or knows as a later incarnation) are passed
    /// over; a shard that does not open, or whose record does not decode, is quarantined.
    fn replay(&self) -> Result<(), StorageError> {
        let mut replayed: HashMap<u64, Arc<Shard>> = HashMap::new();
        let records = shard::replay_log(
            &self.data_log,
            |header| self.replay_target(header, &mut replayed),
            |shard, e| self.quarantine(shard.info.clone(), &e),
        )?;
        for shard in replayed.values() {
            shard.settle_replay();
            self.clock.observe(shard.max_version());
        }
        // Shards quarantined during the replay are not served half-replayed.
        {
            let quarantined = self.quarantined.read().unwrap_or_else(|e| e.into_inner());
            let mut shards = self.shards.write().unwrap_or_else(|e| e.into_inner());
            shards.retain(|id, _| !quarantined.contains_key(id));
        }
        if records > 0 {
            tracing::info!(
                records,
                shards = replayed.len(),
                "replayed the data log's tail"
            );
        }
        self.data_log
            .trim()
            .map_err(|source| StorageError::DataLog { source })?;
        Ok(())
    }

    /// Quarantines the shards whose records in the data log are damaged, keeping the log
    /// from there on (their records after the damage stay on disk until the shard is
    /// dropped or restored). A damaged record that names no shard the catalog knows is a
    /// dropped shard's, or one whose own header was hit: it is passed over, and `/health`
    /// warns of it for as long as the log holds it.
    fn quarantine_damaged(&self, damaged: &[DamagedRecord]) {
        let oldest = self.data_log.figures().oldest_lsn;
        for d in damaged {
            let corrupt = |reason: String| LogError::Corrupt {
                path: d.path.clone(),
                offset: d.offset,
                reason,
            };
            let named = Header::split(&d.payload).ok().and_then(|(h, _)| {
                let closed = self.closed.read().unwrap_or_else(|e| e.into_inner());
                closed.get(&h.shard).cloned()
            });
            // A record whose points the shard's column files already hold costs nothing
            // (a restore in place, say, brought them back).
            let covered = named
                .as_ref()
                .map_or(0, |info| self.covered_on_disk(info.id));
            let seq = Header::split(&d.payload).map_or(u64::MAX, |(h, _)| h.seq);
            let named = named.filter(|_| seq > covered);
            let Some(info) = named else {
                let reason = format!(
                    "record {} is damaged ({}) and names no shard the catalog knows, or one whose column files hold it: a dropped shard's, or one whose header was hit; passed over",
                    d.lsn, d.reason
                );
                let e = corrupt(reason);
                tracing::error!(error = %e, "damaged data-log record passed over");
                self.passed_over
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(e.to_string());
                continue;
            };
            let reason = format!("record {} of this shard is damaged ({})", d.lsn, d.reason);
            let e = StorageError::DataLog {
                source: corrupt(reason),
            };
            self.quarantine(info.clone(), &e);
            self.data_log
                .hold((info.id, info.incarnation), Some(oldest));
        }
    }

    /// The sequence number up to which shard `id`'s column files cover its records, as
    /// their names say (0 when it has none, or its directory does not list).
    fn covered_on_disk(&self, id: u64) -> u64 {
        covered_by_files(&*self.fs, &self.shard_dir(id))
    }

    /// Damaged data-log records that named no known shard, passed over at start-up.
    pub fn passed_over(&self) -> Vec<String> {
        self.passed_over
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The shard a replayed record goes to: None for a shard dropped (or dropped and
    /// created again since) and for one quarantined.
    fn replay_target(
        &self,
        header: &Header,
        replayed: &mut HashMap<u64, Arc<Shard>>,
    ) -> Option<Arc<Shard>> {
        if let Some(shard) = replayed.get(&header.shard) {
            return (shard.info.incarnation == header.incarnation).then(|| shard.clone());
        }
        let info = self
            .closed
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&header.shard)
            .cloned()?;
        if info.incarnation != header.incarnation {
            return None;
        }
        let shard = self.open_shard(info).ok()?;
        replayed.insert(header.shard, shard.clone());
        Some(shard)
    }

    /// Keeps shard `info` closed, with why: reads and writes needing it are refused.
    fn quarantine(&self, info: ShardInfo, e: &StorageError) {
        // One damaged shard must not keep the node, and every other shard, down.
        tracing::error!(shard = info.id, error = %e, "shard quarantined: it did not open");
        self.closed
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&info.id);
        self.quarantined
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                info.id,
                Quarantined {
                    info,
                    reason: e.to_string(),
                },
            );
    }

    /// The shard `info` names, opened if it is not open yet (quarantined if it does not
    /// open).
    fn open_shard(&self, info: ShardInfo) -> Result<Arc<Shard>, StorageError> {
        if let Some(shard) = self.shard_if_open(info.id) {
            return Ok(shard);
        }
        let _one_at_a_time = self.opening.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(shard) = self.shard_if_open(info.id) {
            return Ok(shard);
        }
        self.refuse_quarantined(|q| q.info.id == info.id)?;
        let path = self.dir.join(info.id.to_string());
        let opened = Shard::open_on(
            self.fs.clone(),
            &path,
            info.clone(),
            self.data_log.clone(),
            self.max_head_bytes,
        );
        let shard = match opened {
            Ok(shard) => Arc::new(shard),
            Err(e) => {
                self.quarantine(info, &e);
                return Err(e);
            }
        };
        // Versions issued from now on must beat every version already stored.
        self.clock.observe(shard.max_version());
        // A restore may have put the shard in place meanwhile: its shard is the one.
        let shard = self
            .shards
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(info.id)
            .or_insert(shard)
            .clone();
        self.closed
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&info.id);
        Ok(shard)
    }

    fn shard_if_open(&self, id: u64) -> Option<Arc<Shard>> {
        self.shards
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    /// Creates, durably, the directory of every shard that `events` (about to be appended
    /// to the control log) make the catalog know and that has none yet. Called while the
    /// events are decided, before they are durable: so a shard the catalog knows always
    /// has its directory, and [`Shard::open`] can tell a lost directory from a new shard.
    /// A crash before the events are durable leaves directories the catalog does not know,
    /// which the next start removes.
    pub fn create_shard_dirs(
        &self,
        catalog: &Catalog,
        events: &[crate::proto::Event],
    ) -> Result<(), StorageError> {
        use crate::projection::Projection;
        use crate::proto::event::Kind;
        let creates = |e: &crate::proto::Event| {
            matches!(
                e.kind,
                Some(Kind::ShardCreated(_)) | Some(Kind::CatalogRestored(_))
            )
        };
        if !events.iter().any(creates) {
            return Ok(());
        }
        let known: std::collections::HashSet<u64> = catalog.shards().map(|s| s.id).collect();
        let mut after = catalog.clone();
        for e in events {
            after.apply(e);
        }
        let dir_err = |path: &Path| {
            let path = path.to_owned();
            move |source| StorageError::ShardDir { path, source }
        };
        let new: Vec<ShardInfo> = after.shards().filter(|s| !known.contains(&s.id)).collect();
        let mut created = false;
        for info in &new {
            let path = self.shard_dir(info.id);
            if self.fs.exists(&path).map_err(dir_err(&path))? {
                // The directory of the shard's earlier self, dropped: its removal, under
                // way, puts an empty one in its place (see `remove_shards`).
                continue;
            }
            self.fs.create_dir(&path).map_err(dir_err(&path))?;
            created = true;
        }
        if created {
            self.fs.sync_dir(&self.dir).map_err(dir_err(&self.dir))?;
        }
        // Known from now on, to open on first use (a backup of a shard a restore created,
        // say); not before its directory exists, or a read opening it meanwhile would take
        // it for lost. Should the events not become durable, the next start drops the
        // shard's directory and it is known no more.
        let mut closed = self.closed.write().unwrap_or_else(|e| e.into_inner());
        for info in new {
            closed.insert(info.id, info);
        }
        Ok(())
    }

    /// Closes and deletes shards (after their drop events are durable). Each directory is
    /// renamed out of the way, durably, before it is removed: so a shard created again
    /// with the same (derived) id never meets the old files, even if a power loss undoes
    /// an unsynced removal. The removal itself, slow for large shards (or many), runs on
    /// a thread of its own; the next start removes what it leaves. Waits for the writes
    /// under way.
    pub async fn remove_shards(&self, control: &ControlLog, ids: &[u64]) {
        let _no_writes = self.placement.write().await;
        // A shard created again since its drop (a write into its time range) keeps a
        // directory, empty: the catalog knows it (see `create_shard_dirs`).
        let known_again: Vec<ShardInfo> = control
            .read(|c| c.catalog.shards().filter(|s| ids.contains(&s.id)).collect())
            .await;
        // A quarantined shard goes too: dropping it is one way to be rid of the damage.
        {
            let mut quarantined = self.quarantined.write().unwrap_or_else(|e| e.into_inner());
            for id in ids {
                if let Some(q) = quarantined.remove(id) {
                    // Its records that the data log kept for it go too.
                    self.data_log.forget((q.info.id, q.info.incarnation));
                }
            }
        }
        let removed: Vec<Arc<Shard>> = {
            let mut closed = self.closed.write().unwrap_or_else(|e| e.into_inner());
            let mut shards = self.shards.write().unwrap_or_else(|e| e.into_inner());
            for id in ids {
                closed.remove(id);
            }
            ids.iter().filter_map(|id| shards.remove(id)).collect()
        };
        // Their records in the data log are no one's now: the log may go past them.
        for shard in removed {
            self.data_log.forget(shard.key());
        }
        if let Err(e) = self.data_log.trim() {
            tracing::warn!(error = %e, "could not trim the data log after a drop");
        }
        let (mut trash, mut changed) = (Vec::new(), false);
        // Shards never opened (created by a restore, say) have a directory too.
        for &id in ids {
            let dir = self.shard_dir(id);
            if self.fs.exists(&dir).unwrap_or(true) {
                match self.set_aside(&dir) {
                    Ok(to) => {
                        trash.push(to);
                        changed = true;
                    }
                    Err(e) => {
                        tracing::warn!(path = %dir.display(), error = %e, "could not remove dropped shard");
                        continue;
                    }
                }
            }
            if let Some(again) = known_again.iter().find(|s| s.id == id) {
                // Known still, as the shard created again: it opens on first use.
                self.closed
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id, again.clone());
                match self.fs.create_dir(&dir) {
                    Ok(()) => changed = true,
                    Err(e) => {
                        tracing::warn!(path = %dir.display(), error = %e, "could not create the directory of a shard created again")
                    }
                }
            }
        }
        if changed {
            if let Err(e) = self.fs.sync_dir(&self.dir) {
                // Renamed in the page cache only: a power loss may bring directories back
                // under their ids, which the next start removes (the catalog does not
                // know them), unless they are created again first.
                tracing::warn!(path = %self.dir.display(), error = %e, "could not sync the shards directory after a drop");
            }
        }
        self.purge(trash);
    }

    /// Renames a shard directory to a name no shard has (which the next start removes),
    /// not yet durably.
    fn set_aside(&self, dir: &Path) -> std::io::Result<PathBuf> {
        static SET_ASIDE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let to = self.dir.join(format!(
            "{SET_ASIDE_PREFIX}{}-{}-{}",
            dir.file_name().and_then(|n| n.to_str()).unwrap_or_default(),
            crate::catalog::now_nanos(),
            SET_ASIDE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        self.fs.rename(dir, &to)?;
        Ok(to)
    }

    /// Removes directories no shard uses any more, on a thread of its own.
    fn purge(&self, trash: Vec<PathBuf>) {
        if trash.is_empty() {
            return;
        }
        let fs = self.fs.clone();
        let purge = move || {
            for dir in trash {
                if let Err(e) = fs.remove_dir_all(&dir) {
                    tracing::warn!(path = %dir.display(), error = %e, "could not remove a dropped shard's files");
                }
            }
        };
        let mut purges = self.purges.lock().unwrap_or_else(|e| e.into_inner());
        purges.retain(|p| !p.is_finished());
        match std::thread::Builder::new()
            .name("shard-purge".into())
            .spawn(purge)
        {
            Ok(handle) => purges.push(handle),
            Err(e) => {
                tracing::warn!(error = %e, "no thread to remove dropped shards' files: the next start removes them")
            }
        }
    }

    /// Waits until the files of dropped shards are removed (a clean close, and tests that
    /// count what the storage does on disk).
    pub fn wait_for_purges(&self) {
        let purges = std::mem::take(&mut *self.purges.lock().unwrap_or_else(|e| e.into_inner()));
        for p in purges {
            let _ = p.join();
        }
    }

    /// Appends `prepared` together, admitted first against the replications that follow
    /// the data log (`queued`, one per record): refused whole before anything is appended
    /// (never half-applied), given back if the append fails.
    async fn append_followed(
        &self,
        mut prepared: Vec<shard::Prepared>,
        queued: &[QueuedRecord<'_>],
    ) -> Result<Vec<u64>, StorageError> {
        let followers = self.followers.get();
        if let Some(f) = followers {
            f.admit(queued).map_err(StorageError::QueueFull)?;
        }
        let plains: Vec<Option<(Vec<u8>, Vec<u8>)>> = prepared
            .iter_mut()
            .map(|p| {
                let head = p.record.payload.get(..data_log::HEADER_LEN)?.to_vec();
                Some((head, p.plain.take()?))
            })
            .collect();
        let lsns = match shard::append_together(&self.data_log, prepared).await {
            Ok(lsns) => lsns,
            Err(e) => {
                if let Some(f) = followers {
                    f.abandon(queued);
                }
                return Err(e);
            }
        };
        if let (Some(f), Some(&last)) = (followers, lsns.last()) {
            // Before the senders are woken, so that they find them.
            for (lsn, plain) in lsns.iter().zip(plains) {
                if let Some((head, plain)) = plain {
                    f.decoded(*lsn, &head, plain);
                }
            }
            f.appended(last);
        }
        Ok(lsns)
    }

    pub async fn write(
        &self,
        control: &ControlLog,
        req: WriteRequest<'_>,
    ) -> Result<WriteOutcome, StorageError> {
        let (policy, groups, subscribed) = control
            .read(|c| {
                let db = c
                    .catalog
                    .databases
                    .get(&req.database)
                    .ok_or_else(|| StorageError::DatabaseNotFound(req.database.clone()))?;
                let name = req
                    .retention_policy
                    .clone()
                    .unwrap_or_else(|| db.default_policy.clone());
                let policy = db
                    .policies
                    .get(&name)
                    .cloned()
                    .ok_or(StorageError::RetentionPolicyNotFound(name))?;
                let subscribed = self
                    .subscribers
                    .get()
                    .and_then(|s| s.subscribed(&c.catalog, &req.database, &policy.name));
                Ok::<_, StorageError>((policy, db.shards.clone(), subscribed))
            })
            .await?;
        let mut outcome = WriteOutcome::default();
        let mut retention_drops = 0;
        let oldest = if policy.duration_nanos > 0 {
            req.now.saturating_sub(policy.duration_nanos)
        } else {
            i64::MIN
        };
        // Points are kept in place (each is moved at most once, when a batch spans shard
        // groups): a batch is thousands of points, and most batches fall in one group.
        let mut points = req.points;
        let mut starts: Vec<i64> = Vec::with_capacity(points.len());
        points.retain_mut(|point| {
            let time = match point.timestamp {
                Some(t) => match req.precision.to_nanos_in_range(t) {
                    Some(t) => t,
                    None => {
                        retention_drops += 1;
                        return false;
                    }
                },
                None => req.now,
            };
            if time < oldest {
                retention_drops += 1;
                return false;
            }
            if let Some(reason) = invalid_point_reason(point) {
                outcome.dropped += 1;
                outcome.reason.get_or_insert(reason);
                return false;
            }
            point.timestamp = Some(time);
            starts.push(shard_group_start(time, policy.shard_group_duration_nanos));
            true
        });
        let by_group: BTreeMap<i64, Vec<Point>> = match starts.first() {
            None => BTreeMap::new(),
            Some(&first) if starts.iter().all(|&s| s == first) => BTreeMap::from([(first, points)]),
            Some(_) => {
                let mut by_group: BTreeMap<i64, Vec<Point>> = BTreeMap::new();
                for (point, start) in points.into_iter().zip(starts) {
                    by_group.entry(start).or_default().push(point);
                }
                by_group
            }
        };

        // Shards for new groups: control events, decided by the catalog under its lock.
        let infos: Vec<ShardInfo> = by_group
            .keys()
            .map(|&start| {
                ShardInfo::of_group(
                    &req.database,
                    &policy.name,
                    start,
                    policy.shard_group_duration_nanos,
                )
            })
            .collect();
        let (_placed, infos) = self.place(control, &req.database, infos, groups).await?;
        let version = self.clock.now();
        let mut admitted = Vec::new();
        for (info, points) in infos.into_iter().zip(by_group.into_values()) {
            let shard = self.open_shard(info)?;
            let a = shard.admit(points, req.max_fields_per_measurement);
            outcome.dropped += a.dropped;
            if let Some(reason) = a.reason {
                outcome.reason.get_or_insert(reason);
            }
            outcome.written += a.points.len();
            if !a.points.is_empty() {
                admitted.push((shard, a.points));
            }
        }
        // One record per shard, appended together: durable all, or none.
        let prepared: Vec<shard::Prepared> = admitted
            .iter()
            .map(|(shard, points)| {
                let followed = self
                    .followers
                    .get()
                    .is_some_and(|f| f.follows(&shard.info.database, &shard.info.retention_policy));
                shard.prepare_points(points, version, followed)
            })
            .collect();
        let applied: Vec<(u64, usize)> = prepared.iter().map(|p| (p.seq, p.record_len)).collect();
        if !prepared.is_empty() {
            let sizes: Vec<u64> = prepared
                .iter()
                .map(|p| crate::log::format::encoded_record_len(p.record.payload.len()) as u64)
                .collect();
            let queued: Vec<QueuedRecord> = admitted
                .iter()
                .zip(&sizes)
                .map(|((shard, _), &bytes)| QueuedRecord {
                    database: &shard.info.database,
                    retention_policy: &shard.info.retention_policy,
                    bytes,
                })
                .collect();
            let lsns = self.append_followed(prepared, &queued).await?;
            for (((shard, points), (seq, len)), lsn) in admitted.iter().zip(applied).zip(lsns) {
                if shard.apply_points(points, version, seq, lsn, len) {
                    // The head outgrew its budget: write it out off the request path.
                    self.flush_in_background(shard.clone());
                }
            }
            if let Some(subscribed) = subscribed {
                subscribed.accepted(&mut admitted.iter().flat_map(|(_, points)| points.iter()));
            }
            self.force_flushes_if_over_budget();
        }
        if retention_drops > 0 {
            outcome.dropped += retention_drops;
            outcome
                .reason
                .get_or_insert_with(|| "points beyond retention policy".to_owned());
        }
        Ok(outcome)
    }

    /// Makes sure the catalog has a shard for each of `infos` (creating those it lacks),
    /// and returns with the guard that keeps them from being removed until the write is
    /// applied. A shard dropped between the two (DROP SHARD, retention) is created again,
    /// as InfluxDB does for a write into a dropped shard group's time range; a database
    /// dropped meanwhile fails the write.
    async fn place(
        &self,
        control: &ControlLog,
        database: &str,
        mut infos: Vec<ShardInfo>,
        mut known: Vec<crate::proto::ShardCreated>,
    ) -> Result<(tokio::sync::RwLockReadGuard<'_, ()>, Vec<ShardInfo>), StorageError> {
        loop {
            if infos
                .iter()
                .any(|i| !known.iter().any(|g| g.shard_id == i.id))
            {
                control
                    .mutate(|c| {
                        let events = c.catalog.create_shards(&infos)?;
                        self.create_shard_dirs(&c.catalog, &events)?;
                        Ok::<_, StorageError>((events, ()))
                    })
                    .await?;
            }
            let placed = self.placement.read().await;
            let groups = control
                .read(|c| {
                    c.catalog
                        .databases
                        .get(database)
                        .map(|db| db.shards.clone())
                })
                .await
                .ok_or_else(|| StorageError::DatabaseNotFound(database.to_owned()))?;
            let incarnations: Option<Vec<u64>> = infos
                .iter()
                .map(|i| {
                    groups
                        .iter()
                        .find(|g| g.shard_id == i.id)
                        .map(|g| g.incarnation)
                })
                .collect();
            if let Some(incarnations) = incarnations {
                for (info, incarnation) in infos.iter_mut().zip(incarnations) {
                    info.incarnation = incarnation;
                }
                return Ok((placed, infos));
            }
            known = groups;
        }
    }

    /// Every open shard, by id.
    pub fn shards(&self) -> Vec<Arc<Shard>> {
        let mut all: Vec<Arc<Shard>> = self
            .shards
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        all.sort_by_key(|s| s.info.id);
        all
    }

    /// Flushes `shard`'s head on a background thread, then merges its column files if
    /// they have gathered.
    fn flush_in_background(&self, shard: Arc<Shard>) {
        self.background.run(move || {
            if let Err(e) = shard.flush() {
                tracing::error!(shard = shard.info.id, error = %e, "flushing shard head failed");
            }
            if shard.wants_merge() {
                if let Err(e) = shard.merge() {
                    tracing::error!(shard = shard.info.id, error = %e, "merging column files failed");
                }
            }
        });
    }

    /// When the data log holds more than its budget, flushes the shards holding its
    /// oldest half (on a background thread): their segments can then go.
    fn force_flushes_if_over_budget(&self) {
        use std::sync::atomic::Ordering;
        let Some(before) = self.data_log.over_budget() else {
            return;
        };
        if self.forcing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (log, forcing) = (self.data_log.clone(), self.forcing.clone());
        let open: Vec<Arc<Shard>> = self.shards();
        self.background.run(move || {
            for key in log.held_before(before) {
                let Some(shard) = open.iter().find(|s| s.key() == key) else {
                    continue;
                };
                if let Err(e) = shard.flush() {
                    tracing::warn!(shard = key.0, error = %e, "flushing a shard behind in the data log failed");
                }
            }
            forcing.store(false, Ordering::Release);
        });
    }

    /// Writes out the heads of shards that took no write for `idle_nanos`: a shard gone
    /// cold then needs no replay after a crash, and its memory is returned.
    pub fn flush_idle(&self, idle_nanos: i64) {
        let since = crate::catalog::now_nanos().saturating_sub(idle_nanos);
        for shard in self
            .shards()
            .into_iter()
            .filter(|s| s.idle_with_head(since))
        {
            if let Err(e) = shard.flush() {
                tracing::warn!(shard = shard.info.id, error = %e, "flushing idle shard failed");
            }
        }
    }

    /// Writes out the heads holding at least `min_bytes` (a clean stop): the next start
    /// then replays little, while the many small heads of idle shards stay in the data
    /// log (writing each out would make stopping slow; replaying them is quick).
    pub fn flush_large_heads(&self, min_bytes: usize) {
        for shard in self
            .shards()
            .into_iter()
            .filter(|s| s.head_bytes() >= min_bytes)
        {
            if let Err(e) = shard.flush() {
                tracing::warn!(shard = shard.info.id, error = %e, "flushing shard head failed");
            }
        }
    }

    /// The node's data log's figures (for `/metrics`).
    pub fn data_log(&self) -> &Log {
        self.data_log.log()
    }

    /// How many shards the catalog knows that are not open yet (`/metrics`).
    pub fn cold_shards(&self) -> usize {
        self.closed.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The node's data log with its holds (replications read and pin it).
    pub fn data_log_holds(&self) -> &Arc<DataLog> {
        &self.data_log
    }

    /// Sets what follows the writes (once; later calls change nothing).
    pub fn set_followers(&self, followers: Arc<dyn WriteFollowers>) {
        let _ = self.followers.set(followers);
    }

    /// Sets what is shown the writes' accepted points (once; later calls change nothing).
    pub(crate) fn set_subscribers(&self, subscribers: Arc<dyn WriteSubscribers>) {
        let _ = self.subscribers.set(subscribers);
    }

    /// Shards that did not open at start-up, and why (file and offset where known).
    pub fn quarantined(&self) -> Vec<Quarantined> {
        let quarantined = self.quarantined.read().unwrap_or_else(|e| e.into_inner());
        quarantined.values().cloned().collect()
    }

    /// Fails if a read of `database` (and `policy`, if given) over [start, end] would need
    /// a quarantined shard: an answer without its points would be silently wrong.
    pub fn check_readable(
        &self,
        database: &str,
        policy: Option<&str>,
        (start, end): (i64, i64),
    ) -> Result<(), StorageError> {
        self.refuse_quarantined(|q| {
            q.info.database == database
                && policy.is_none_or(|p| q.info.retention_policy == p)
                && q.info.end > start
                && q.info.start <= end
        })
    }

    fn refuse_quarantined(&self, hit: impl Fn(&Quarantined) -> bool) -> Result<(), StorageError> {
        let quarantined = self.quarantined.read().unwrap_or_else(|e| e.into_inner());
        match quarantined.values().find(|q| hit(q)) {
            Some(q) => Err(StorageError::Quarantined {
                shard: q.info.id,
                reason: q.reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Every shard of a database (and retention policy, if given), opening those not
    /// open yet (one that does not open is quarantined, which reads then report).
    pub fn shards_of(&self, database: &str, policy: Option<&str>) -> Vec<Arc<Shard>> {
        let wanted = |s: &ShardInfo| {
            s.database == database && policy.is_none_or(|p| s.retention_policy == p)
        };
        let closed: Vec<ShardInfo> = {
            let closed = self.closed.read().unwrap_or_else(|e| e.into_inner());
            closed.values().filter(|s| wanted(s)).cloned().collect()
        };
        for info in closed {
            let _ = self.open_shard(info);
        }
        let shards = self.shards.read().unwrap_or_else(|e| e.into_inner());
        let mut found: Vec<_> = shards
            .values()
            .filter(|s| {
                s.info.database == database && policy.is_none_or(|p| s.info.retention_policy == p)
            })
            .cloned()
            .collect();
        found.sort_by_key(|s| s.info.start);
        found
    }
}

/// What a repair applied to a shard.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RepairApplied {
    /// Points appended (each with the write version it came with).
    pub points: u64,
    /// Points refused for a field type the shard has another type for.
    pub conflicts: u64,
    /// Tombstones the shard did not hold, appended.
    pub tombstones: u64,
}

impl Storage {
    /// Applies what an anti-entropy repair brought of shard `id`'s leaves: points with
    /// the write versions they carry (never stamped anew, so last-write-wins settles them
    /// as it settled them where they came from) and tombstones the shard lacks. Appended
    /// to the data log like any write (one record per write version), so a crash keeps
    /// them, and applying them twice is applying them once.
    pub async fn apply_repair(
        &self,
        id: u64,
        contents: Vec<shard::LeafContents>,
    ) -> Result<RepairApplied, StorageError> {
        let _placed = self.placement.read().await;
        let shard = self.shard(id).ok_or(StorageError::UnknownShard(id))?;
        let mut applied = RepairApplied::default();
        let newest = contents
            .iter()
            .flat_map(|c| {
                c.points
                    .iter()
                    .map(|p| p.version)
                    .chain(c.tombstones.iter().map(|t| t.version))
            })
            .max()
            .unwrap_or(0);
        // Versions issued from now on beat the ones repaired in.
        self.clock.observe(newest);
        let by_version = shard::points_by_version(&contents);
        let mut batches: Vec<(u64, Vec<Point<'static>>)> = Vec::new();
        for (version, points) in by_version {
            let total = points.len() as u64;
            let a = shard.admit(points, usize::MAX);
            applied.conflicts += total - a.points.len() as u64;
            if !a.points.is_empty() {
                applied.points += a.points.len() as u64;
                batches.push((version, a.points));
            }
        }
        if !batches.is_empty() {
            let followed = self
                .followers
                .get()
                .is_some_and(|f| f.follows(&shard.info.database, &shard.info.retention_policy));
            let prepared: Vec<shard::Prepared> = batches
                .iter()
                .map(|(version, points)| shard.prepare_points(points, *version, followed))
                .collect();
            let applied_at: Vec<(u64, usize)> =
                prepared.iter().map(|p| (p.seq, p.record_len)).collect();
            let queued: Vec<QueuedRecord> = prepared
                .iter()
                .map(|p| QueuedRecord {
                    database: &shard.info.database,
                    retention_policy: &shard.info.retention_policy,
                    bytes: crate::log::format::encoded_record_len(p.record.payload.len()) as u64,
                })
                .collect();
            let lsns = self.append_followed(prepared, &queued).await?;
            let mut flush = false;
            for (((version, points), (seq, len)), lsn) in batches.iter().zip(applied_at).zip(lsns) {
                flush |= shard.apply_points_arrived(points, *version, seq, lsn, len, false);
            }
            if flush {
                self.flush_in_background(shard.clone());
            }
            self.force_flushes_if_over_budget();
        }
        let tombstones: Vec<crate::proto::Tombstone> =
            contents.into_iter().flat_map(|c| c.tombstones).collect();
        let mut unknown = shard.unknown_tombstones(tombstones);
        unknown.sort_by(|a, b| (&a.measurement, a.version).cmp(&(&b.measurement, b.version)));
        unknown.dedup_by(|a, b| a.measurement == b.measurement && a.version == b.version);
        if !unknown.is_empty() {
            applied.tombstones = unknown.len() as u64;
            // One record per delete (a version): as the delete itself was logged.
            let mut by_version: BTreeMap<u64, Vec<crate::proto::Tombstone>> = BTreeMap::new();
            for t in unknown {
                by_version.entry(t.version).or_default().push(t);
            }
            for (_, ts) in by_version {
                shard.delete_arrived(ts, false).await?;
            }
        }
        Ok(applied)
    }

    /// A write version above every one issued so far, for a delete's tombstones.
    pub fn next_version(&self) -> u64 {
        self.clock.now()
    }

    /// A shard by id, opened if the catalog knows it and it is not open yet.
    pub fn shard(&self, id: u64) -> Option<Arc<Shard>> {
        if let Some(shard) = self.shard_if_open(id) {
            return Some(shard);
        }
        let info = self
            .closed
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()?;
        self.open_shard(info).ok()
    }

    /// Where shard `id` keeps its files.
    pub fn shard_dir(&self, id: u64) -> PathBuf {
        self.dir.join(id.to_string())
    }

    /// What the shards' files live on (restores stage their files on it too).
    pub fn fs(&self) -> &Arc<dyn FileSystem> {
        &self.fs
    }

    /// The directory holding every shard's (restore staging directories go there too:
    /// same file system for the rename, and names start-up removes if left by a crash).
    pub fn shards_dir(&self) -> &Path {
        &self.dir
    }

    /// Opens the shard files staged in `staging` once, as shard `info`: the log of its own
    /// that an archive of an earlier version brings is moved into a column file.
    pub fn migrate_staged(&self, info: &ShardInfo, staging: &Path) -> Result<(), StorageError> {
        let staged = staged_info(info);
        let opened = Shard::open_on(
            self.fs.clone(),
            staging,
            staged.clone(),
            self.data_log.clone(),
            self.max_head_bytes,
        );
        self.data_log.forget((staged.id, staged.incarnation));
        opened.map(drop)
    }

    /// Closes shard `id`, open but unknown to the catalog (swapped in for a catalog event
    /// that did not become durable), leaving its files: the next start removes the
    /// directory of a shard the catalog does not know.
    pub fn close_unlisted(&self, id: u64) {
        self.shards
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    /// Replaces shard `info`'s files by a directory `prepare` builds, and opens it. The
    /// shard is closed meanwhile and the shard table stays locked, so no write reopens the
    /// old files; `prepare` gets the old directory (if the shard had files) to merge from.
    /// If `prepare` or opening fails, the old shard is reopened as it was.
    pub fn replace_shard<E: From<StorageError>>(
        &self,
        info: ShardInfo,
        prepare: impl FnOnce(Option<&Path>) -> Result<PathBuf, E>,
    ) -> Result<(), E> {
        // A shard of an earlier layout moves its own log into a column file as it opens:
        // `prepare` then sees column files only.
        // (And its incarnation is the one its records in the data log carry.)
        let info = self.shard(info.id).map_or(info, |s| s.info.clone());
        let mut shards = self.shards.write().unwrap_or_else(|e| e.into_inner());
        let path = self.dir.join(info.id.to_string());
        // The replaced shard's sequence numbers: its records in the data log must stay
        // covered by the new files, or a restart would replay them into the new shard.
        let mut replaced_upto = 0;
        if let Some(mut old) = shards.remove(&info.id) {
            // In-flight writes and reads hold the shard: let them finish (bounded).
            let deadline = std::time::Instant::now() + SHARD_RELEASE_WAIT;
            loop {
                match Arc::try_unwrap(old) {
                    Ok(shard) => {
                        // Everything it took is in its files before they are replaced or
                        // merged from.
                        if let Err(e) = shard.flush() {
                            shards.insert(info.id, Arc::new(shard));
                            return Err(e.into());
                        }
                        replaced_upto = shard.applied_upto();
                        break;
                    }
                    Err(still_shared) if std::time::Instant::now() < deadline => {
                        old = still_shared;
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                    Err(still_shared) => {
                        shards.insert(info.id, still_shared);
                        return Err(StorageError::ShardBusy(info.id).into());
                    }
                }
            }
        }
        let open_at = |dir: &Path| {
            Shard::open_on(
                self.fs.clone(),
                dir,
                info.clone(),
                self.data_log.clone(),
                self.max_head_bytes,
            )
        };
        let exists = |path: &Path| self.fs.exists(path).unwrap_or(false);
        let reopen_old = |shards: &mut HashMap<u64, Arc<Shard>>| {
            if exists(&path) {
                if let Ok(shard) = open_at(&path) {
                    shards.insert(info.id, Arc::new(shard));
                }
            }
        };
        let existing = exists(&path).then_some(path.as_path());
        let staged = match prepare(existing) {
            Ok(staged) => staged,
            Err(e) => {
                reopen_old(&mut shards);
                return Err(e);
            }
        };
        let dir_err = |path: &Path| {
            let path = path.to_owned();
            move |source| StorageError::ShardDir { path, source }
        };
        // The restored files must cover the replaced shard's sequence numbers, or a
        // restart would replay its records in the data log into the restored shard. (An
        // archive of an earlier version had its own log moved into a column file when it
        // was staged: see `migrate_staged`.)
        if covered_by_files(&*self.fs, &staged) < replaced_upto {
            let fence = column_file::write(
                &*self.fs,
                &staged,
                replaced_upto,
                &[],
                Vec::new(),
                Vec::new(),
            );
            if let Err(source) = fence {
                reopen_old(&mut shards);
                return Err(E::from(StorageError::ColumnFile {
                    shard: info.id,
                    source,
                }));
            }
        }
        // What `prepare` linked, wrote and removed in the staged directory is durable
        // before it can become the shard (its files were synced as they were written).
        if let Err(e) = self.fs.sync_dir(&staged) {
            reopen_old(&mut shards);
            return Err(E::from(dir_err(&staged)(e)));
        }
        // Swapped in one step, so that a crash at any moment leaves the old or the new
        // directory whole at `path` (and the other under the staging name, which start-up
        // removes once it has made the swap durable).
        let had_old = exists(&path);
        let swap = |from: &Path, to: &Path| -> std::io::Result<()> {
            if had_old {
                self.fs.exchange(from, to)
            } else {
                self.fs.rename(from, to)
            }
        };
        let swap_back = || {
            let undone = if had_old {
                self.fs.exchange(&staged, &path)
            } else {
                self.fs.rename(&path, &staged)
            };
            if let Err(e) = undone.and_then(|()| self.fs.sync_dir(&self.dir)) {
                tracing::warn!(path = %path.display(), error = %e, "could not undo a restore's swap: the next start opens whichever directory it finds");
            }
        };
        let swapped = match crate::failpoint::io_check("restore.before_swap") {
            Some(e) => Err(e),
            None => swap(&staged, &path),
        };
        if let Err(e) = swapped {
            reopen_old(&mut shards);
            return Err(E::from(dir_err(&staged)(e)));
        }
        // The old files go only once the swap is durable: until then a power loss may
        // bring them back at `path`.
        if let Err(e) = self.fs.sync_dir(&self.dir) {
            swap_back();
            reopen_old(&mut shards);
            return Err(E::from(dir_err(&self.dir)(e)));
        }
        match open_at(&path) {
            Ok(shard) => {
                self.clock.observe(shard.max_version());
                self.closed
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&info.id);
                shards.insert(info.id, Arc::new(shard));
                let was_quarantined = self
                    .quarantined
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&info.id)
                    .is_some();
                if was_quarantined {
                    // The records the log kept for the quarantined shard may go.
                    self.data_log.hold((info.id, info.incarnation), None);
                }
                let _ = self.fs.remove_dir_all(&staged); // the old files, if any
                Ok(())
            }
            Err(e) => {
                swap_back();
                reopen_old(&mut shards);
                Err(E::from(e))
            }
        }
    }
}

/// The sequence number up to which the column files in `dir` cover their shard's records,
/// as their names say (0 when there are none, or `dir` does not list).
fn covered_by_files(fs: &dyn FileSystem, dir: &Path) -> u64 {
    let names = fs.list(dir).unwrap_or_default();
    names
        .iter()
        .filter_map(|n| column_file::parse_file_name(n))
        .max()
        .unwrap_or(0)
}

/// Shard `info` as opened where a restore stages it: under an incarnation of its own, so
/// that what it tells the data log is not taken for the live shard's.
fn staged_info(info: &ShardInfo) -> ShardInfo {
    ShardInfo {
        incarnation: u64::MAX,
        ..info.clone()
    }
}

/// How long a shard being replaced may stay in use by in-flight requests.
const SHARD_RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// InfluxDB refuses a tag named `time` and ignores a field named `time`.
/// Whether two field names are equal. Names are compared for every field of every point
/// written (against the previous point's, and the head's columns); most are 8 to 16 bytes,
/// which two overlapping 8-byte loads compare without a call to memcmp.
#[inline]
pub(crate) fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if (8..=16).contains(&n) {
        let word =
            |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"));
        return word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8);
    }
    a == b
}

fn invalid_point_reason(point: &mut Point<'_>) -> Option<String> {
    if !point.time_named {
        return None;
    }
    let is_time = |name: &str| crate::line_protocol::is_time_key(name.as_bytes());
    if point.tags().iter().any(|(k, _)| is_time(k)) {
        return Some(format!(
            "invalid tag key: input tag \"time\" on measurement \"{}\" is invalid",
            point.measurement
        ));
    }
    if !point.fields.iter().any(|(k, _)| is_time(k)) {
        return None;
    }
    point.fields.retain(|(k, _)| !is_time(k));
    if point.fields.is_empty() {
        return Some(format!(
            "invalid field name: input field \"time\" on measurement \"{}\" is invalid",
            point.measurement
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_as_strings_do() {
        let names = [
            "",
            "a",
            "b",
            "usage",
            "usage_u",
            "usage_us",
            "usage_usr",
            "usage_use",
            "usage_user",
            "usage_usex",
            "xsage_user",
            "usage_guest_nice",
            "usage_guest_nicf",
            "vsage_guest_nice",
            "usage_guest_nice_",
            "usage_guest_nice!",
        ];
        for a in names {
            for b in names {
                assert_eq!(same_name(a, b), a == b, "{a:?} {b:?}");
            }
        }
    }
}
