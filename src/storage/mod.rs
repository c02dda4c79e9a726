//! Stored points: shards by retention policy and time, each with its own data log.
//!
//! A write is acknowledged only when every shard it touches has made its points durable.
//! Shards come into being as control-log events ([`crate::proto::ShardCreated`]) so that
//! the catalog, `SHOW SHARDS` and backups know them; their ids are derived from their
//! identity, so every replica agrees on them without a coordinator.

pub mod column;
pub mod column_file;
pub mod encoding;
pub mod head;
pub mod hlc;
pub mod points_codec;
pub mod series_index;
pub mod shard;
pub mod tombstone;

use crate::catalog::Catalog;
use crate::line_protocol::{Point, Precision};
use crate::log::fs::{FileSystem, RealFs};
use crate::log::{LogError, LogOptions};
use crate::projection::{EventLog, ProjectionError};
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
    #[error("shard {shard}: its column files cover the data log up to LSN {covered} but the log in {} ends at {end}: records are missing", log_dir.display())]
    CoveredBeyondLog {
        shard: u64,
        covered: u64,
        end: u64,
        log_dir: PathBuf,
    },
    #[error("shard {shard} is quarantined: {reason}")]
    Quarantined { shard: u64, reason: String },
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

/// Seconds from Go's zero time (0001-01-01) to the Unix epoch: InfluxDB truncates times to
/// shard-group boundaries relative to it (so 7-day groups start on Mondays).
const GO_ZERO_TO_UNIX_NANOS: i128 = 62_135_596_800 * 1_000_000_000;

/// Start of the shard group holding `time`, as InfluxDB computes it.
pub fn shard_group_start(time: i64, group_duration: i64) -> i64 {
    let d = i128::from(group_duration.max(1));
    let t = i128::from(time);
    (t - (t + GO_ZERO_TO_UNIX_NANOS).rem_euclid(d)) as i64
}

/// A shard's id from its identity: FNV-1a over (database, policy, start), kept within 53
/// bits so that JSON clients read it exactly.
pub fn shard_id(database: &str, policy: &str, start: i64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for chunk in [
        database.as_bytes(),
        b"\0",
        policy.as_bytes(),
        b"\0",
        &start.to_be_bytes(),
    ] {
        for &b in chunk {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    (h & ((1 << 53) - 1)).max(1)
}

pub struct Storage {
    /// What shards' files live on: [`RealFs`] but in crash tests.
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    clock: HybridClock,
    shards: RwLock<HashMap<u64, Arc<Shard>>>,
    /// Held shared by a write from its look at the catalog until its points are applied,
    /// and exclusively by the removal of dropped shards: a write that saw a shard in the
    /// catalog can neither open it again after its directory was removed (acknowledging
    /// points into a directory the next start deletes, or that a re-created database of
    /// the same name would inherit) nor be cut off halfway.
    placement: tokio::sync::RwLock<()>,
    /// Shards that did not open (a damaged log or file), with why: the node serves the
    /// others, and refuses reads and writes that would need these.
    quarantined: RwLock<BTreeMap<u64, Quarantined>>,
    log_options: LogOptions,
    max_head_bytes: usize,
    /// Threads removing dropped shards' files.
    purges: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
}

/// Names of shard directories renamed out of the way, to be removed.
const SET_ASIDE_PREFIX: &str = ".dropped-";

impl Storage {
    /// Opens every shard the catalog knows, each of which must have its directory (see
    /// [`Storage::create_shard_dirs`]); shard directories it does not know (left by a
    /// crash between a drop event and the removal, or the other side of a restore's swap)
    /// are removed.
    pub fn open(
        data_dir: &Path,
        catalog: &Catalog,
        log_options: LogOptions,
        node_id: u16,
        max_head_bytes: usize,
    ) -> Result<Storage, StorageError> {
        let fs = Arc::new(RealFs);
        Self::open_on(fs, data_dir, catalog, log_options, node_id, max_head_bytes)
    }

    /// [`Storage::open`] on any file system.
    pub fn open_on(
        fs: Arc<dyn FileSystem>,
        data_dir: &Path,
        catalog: &Catalog,
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
        let storage = Storage {
            fs,
            dir,
            clock: HybridClock::new(node_id),
            shards: RwLock::new(HashMap::new()),
            placement: tokio::sync::RwLock::new(()),
            quarantined: RwLock::new(BTreeMap::new()),
            log_options,
            max_head_bytes,
            purges: Default::default(),
        };
        let known: Vec<ShardInfo> = catalog.shards().collect();
        for info in &known {
            if let Err(e) = storage.open_shard(info.clone()) {
                // One damaged shard must not keep the node, and every other shard, down.
                tracing::error!(shard = info.id, error = %e, "shard quarantined: it did not open");
                storage
                    .quarantined
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(
                        info.id,
                        Quarantined {
                            info: info.clone(),
                            reason: e.to_string(),
                        },
                    );
            }
        }
        // What is listed here may still be only in the page cache (a process killed just
        // after a restore's swap): made durable before the other side of it is removed.
        storage.fs.sync_dir(&storage.dir).map_err(dir_err)?;
        let entries = storage.fs.list_dirs(&storage.dir).map_err(dir_err)?;
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

    fn open_shard(&self, info: ShardInfo) -> Result<Arc<Shard>, StorageError> {
        self.refuse_quarantined(|q| q.info.id == info.id)?;
        let mut shards = self.shards.write().unwrap_or_else(|e| e.into_inner());
        if let Some(shard) = shards.get(&info.id) {
            return Ok(shard.clone());
        }
        let path = self.dir.join(info.id.to_string());
        let shard = Arc::new(Shard::open_on(
            self.fs.clone(),
            &path,
            info,
            self.log_options.clone(),
            self.max_head_bytes,
        )?);
        // Versions issued from now on must beat every version already stored.
        self.clock.observe(shard.max_version());
        shards.insert(shard.info.id, shard.clone());
        Ok(shard)
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
        let mut created = false;
        for info in after.shards().filter(|s| !known.contains(&s.id)) {
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
        Ok(())
    }

    /// Closes and deletes shards (after their drop events are durable). Each directory is
    /// renamed out of the way, durably, before it is removed: so a shard created again
    /// with the same (derived) id never meets the old files, even if a power loss undoes
    /// an unsynced removal. The removal itself, slow for large shards (or many), runs on
    /// a thread of its own; the next start removes what it leaves. Waits for the writes
    /// under way.
    pub async fn remove_shards(&self, control: &EventLog<Catalog>, ids: &[u64]) {
        let _no_writes = self.placement.write().await;
        // A shard created again since its drop (a write into its time range) keeps a
        // directory, empty: the catalog knows it (see `create_shard_dirs`).
        let known_again: Vec<u64> = control
            .read(|c| {
                let known: std::collections::HashSet<u64> = c.shards().map(|s| s.id).collect();
                ids.iter()
                    .copied()
                    .filter(|id| known.contains(id))
                    .collect()
            })
            .await;
        // A quarantined shard goes too: dropping it is one way to be rid of the damage.
        {
            let mut quarantined = self.quarantined.write().unwrap_or_else(|e| e.into_inner());
            for id in ids {
                quarantined.remove(id);
            }
        }
        let removed: Vec<Arc<Shard>> = {
            let mut shards = self.shards.write().unwrap_or_else(|e| e.into_inner());
            ids.iter().filter_map(|id| shards.remove(id)).collect()
        };
        drop(removed); // closes their logs, unless requests in flight still hold them
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
            if known_again.contains(&id) {
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

    pub async fn write(
        &self,
        control: &EventLog<Catalog>,
        req: WriteRequest<'_>,
    ) -> Result<WriteOutcome, StorageError> {
        let (policy, groups) = control
            .read(|c| {
                let db = c
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
                Ok::<_, StorageError>((policy, db.shards.clone()))
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
        let _placed = self.place(control, &req.database, &infos, groups).await?;
        let version = self.clock.now();
        let mut writes = Vec::new();
        for (info, points) in infos.into_iter().zip(by_group.into_values()) {
            let shard = self.open_shard(info)?;
            let admitted = shard.admit(points, req.max_fields_per_measurement);
            outcome.dropped += admitted.dropped;
            if let Some(reason) = admitted.reason {
                outcome.reason.get_or_insert(reason);
            }
            outcome.written += admitted.points.len();
            writes.push(async move {
                if !admitted.points.is_empty() && shard.write(&admitted.points, version).await? {
                    // The head outgrew its budget: write it out off the request path.
                    let shard = shard.clone();
                    std::thread::spawn(move || {
                        if let Err(e) = shard.flush() {
                            tracing::error!(error = %e, "flushing shard head failed");
                        }
                        if shard.wants_merge() {
                            std::thread::spawn(move || {
                                if let Err(e) = shard.merge() {
                                    tracing::error!(error = %e, "merging column files failed");
                                }
                            });
                        }
                    });
                }
                Ok::<(), StorageError>(())
            });
        }
        for result in futures_util::future::join_all(writes).await {
            result?;
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
        control: &EventLog<Catalog>,
        database: &str,
        infos: &[ShardInfo],
        mut known: Vec<crate::proto::ShardCreated>,
    ) -> Result<tokio::sync::RwLockReadGuard<'_, ()>, StorageError> {
        loop {
            if infos
                .iter()
                .any(|i| !known.iter().any(|g| g.shard_id == i.id))
            {
                control
                    .mutate(|c| {
                        let events = c.create_shards(infos)?;
                        self.create_shard_dirs(c, &events)?;
                        Ok::<_, StorageError>((events, ()))
                    })
                    .await?;
            }
            let placed = self.placement.read().await;
            let groups = control
                .read(|c| c.databases.get(database).map(|db| db.shards.clone()))
                .await
                .ok_or_else(|| StorageError::DatabaseNotFound(database.to_owned()))?;
            if infos
                .iter()
                .all(|i| groups.iter().any(|g| g.shard_id == i.id))
            {
                return Ok(placed);
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

    /// Writes every shard's head out as a column file (clean shutdown).
    pub fn flush_all(&self) {
        let shards: Vec<Arc<Shard>> = self
            .shards
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for shard in shards {
            if let Err(e) = shard.flush() {
                tracing::warn!(shard = shard.info.id, error = %e, "flushing shard head at shutdown failed");
            }
        }
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

    /// Every open shard of a database (and retention policy, if given).
    pub fn shards_of(&self, database: &str, policy: Option<&str>) -> Vec<Arc<Shard>> {
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

impl Storage {
    /// A write version above every one issued so far, for a delete's tombstones.
    pub fn next_version(&self) -> u64 {
        self.clock.now()
    }

    /// An open shard by id.
    pub fn shard(&self, id: u64) -> Option<Arc<Shard>> {
        self.shards
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
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

    /// Replaces shard `info`'s files by a directory `prepare` builds, and opens it. The
    /// shard is closed meanwhile and the shard table stays locked, so no write reopens the
    /// old files; `prepare` gets the old directory (if the shard had files) to merge from.
    /// If `prepare` or opening fails, the old shard is reopened as it was.
    pub fn replace_shard<E: From<StorageError>>(
        &self,
        info: ShardInfo,
        prepare: impl FnOnce(Option<&Path>) -> Result<PathBuf, E>,
    ) -> Result<(), E> {
        let mut shards = self.shards.write().unwrap_or_else(|e| e.into_inner());
        let path = self.dir.join(info.id.to_string());
        if let Some(mut old) = shards.remove(&info.id) {
            // In-flight writes and reads hold the shard: let them finish (bounded).
            let deadline = std::time::Instant::now() + SHARD_RELEASE_WAIT;
            loop {
                match Arc::try_unwrap(old) {
                    Ok(shard) => {
                        drop(shard); // closes its log
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
        let exists = |path: &Path| self.fs.exists(path).unwrap_or(false);
        let reopen_old = |shards: &mut HashMap<u64, Arc<Shard>>| {
            if exists(&path) {
                if let Ok(shard) = Shard::open_on(
                    self.fs.clone(),
                    &path,
                    info.clone(),
                    self.log_options.clone(),
                    self.max_head_bytes,
                ) {
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
        // What `prepare` linked, wrote and removed in the staged directory is durable
        // before it can become the shard (its files were synced as they were written).
        for dir in [staged.join("log"), staged.clone()] {
            if let Err(e) = self.fs.sync_dir(&dir) {
                reopen_old(&mut shards);
                return Err(E::from(dir_err(&dir)(e)));
            }
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
        if let Err(e) = swap(&staged, &path) {
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
        match Shard::open_on(
            self.fs.clone(),
            &path,
            info.clone(),
            self.log_options.clone(),
            self.max_head_bytes,
        ) {
            Ok(shard) => {
                self.clock.observe(shard.max_version());
                shards.insert(info.id, Arc::new(shard));
                self.quarantined
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&info.id);
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

    const HOUR: i64 = 3_600_000_000_000;
    const DAY: i64 = 24 * HOUR;

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

    #[test]
    fn shard_groups_align_as_influxdb_aligns_them() {
        // 2024-01-03T12:00:00Z is a Wednesday; 7-day groups start on Monday 2024-01-01.
        let wed_noon = 1_704_283_200_000_000_000;
        let monday = 1_704_067_200_000_000_000;
        assert_eq!(shard_group_start(wed_noon, 7 * DAY), monday);
        assert_eq!(shard_group_start(wed_noon, DAY), 1_704_240_000_000_000_000);
        assert_eq!(shard_group_start(wed_noon + 1, HOUR), wed_noon);
        assert_eq!(shard_group_start(-1, HOUR), -HOUR);
    }

    #[test]
    fn shard_ids_are_stable_and_distinct() {
        assert_eq!(shard_id("db", "autogen", 0), shard_id("db", "autogen", 0));
        assert_ne!(
            shard_id("db", "autogen", 0),
            shard_id("db", "autogen", HOUR)
        );
        assert_ne!(shard_id("db", "a", 0), shard_id("dba", "", 0));
        assert!(shard_id("x", "y", 1) < 1 << 53);
    }
}
