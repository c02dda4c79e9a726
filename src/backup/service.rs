//! What the HTTP handlers call: each operation records its start and outcome in the
//! control log, does its work off the async workers, and streams through bounded channels.

use super::metadata::{self, BucketMetadataManifest, RestoredBucketMappings};
use super::{archive, restore, BackupError};
use crate::config::NodeConfig;
use crate::control::{backups, ControlLog};
use crate::proto::BackupStarted;
use crate::storage::{ShardInfo, Storage};
use bytes::Bytes;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

/// Shard backups reading and compressing at once; more wait their turn, so that backups
/// never take every core from writes and queries.
const CONCURRENT_BACKUP_STREAMS: usize = 2;
static PRODUCING: tokio::sync::Semaphore =
    tokio::sync::Semaphore::const_new(CONCURRENT_BACKUP_STREAMS);

/// Chunks of a backup on their way to the client: at most this many wait in the channel.
const STREAM_CHUNKS_IN_FLIGHT: usize = 8;
/// Size of one chunk sent to the client.
const STREAM_CHUNK_BYTES: usize = 256 * 1024;

/// The body of a shard backup: chunks as the producer makes them.
pub(crate) type ChunkReceiver = mpsc::Receiver<io::Result<Bytes>>;

/// Backups and restores of the node's control state and shards. Cheap to clone: an
/// operation that outlives its request (a streamed backup, a restore whose client went
/// away) takes its own copy, so that its outcome is recorded whatever the client does.
#[derive(Clone)]
pub(crate) struct BackupService {
    control: Arc<ControlLog>,
    storage: Arc<Storage>,
    /// A restored kv snapshot must hold an admin (authentication is on).
    require_admin: bool,
    /// Largest shard archive a restore takes, as sent and as unpacked (bytes).
    max_shard_bytes: u64,
    /// Largest kv snapshot or bucket manifest a restore takes (bytes).
    max_metadata_bytes: u64,
}

/// Records the start of an operation; returns its id.
async fn record_start(control: &ControlLog, started: BackupStarted) -> Result<String, BackupError> {
    let id = started.id.clone();
    control
        .mutate(|_| Ok::<_, BackupError>((vec![backups::started(started)], ())))
        .await?;
    Ok(id)
}

/// Records an outcome; a failure to record it is logged, not returned: the operation
/// itself is done (or failed) whatever the ledger says.
async fn record_outcome(
    control: &ControlLog,
    id: &str,
    outcome: Result<u64, String>,
    began: Instant,
) {
    let event = match &outcome {
        Ok(bytes) => backups::finished(id, *bytes, began.elapsed()),
        Err(reason) => backups::failed(id, reason),
    };
    let recorded = control
        .mutate(|c| {
            let restore = c.backups.running.get(id).and_then(|o| o.started.as_ref());
            Ok::<_, BackupError>((vec![event], restore.is_some_and(|s| s.restore)))
        })
        .await;
    match recorded {
        Ok(restore) => OUTCOMES.count(restore, outcome.is_ok()),
        Err(e) => tracing::warn!(operation = id, error = %e, "could not record backup outcome"),
    }
    if let Err(reason) = outcome {
        tracing::warn!(operation = id, %reason, "backup or restore failed");
    }
}

/// Backups and restores ended since the process started, by kind and outcome (`/metrics`).
/// The ledger keeps only the recent ones; a node is one process, so these live here.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutcomeCounts {
    pub backups_ok: u64,
    pub backups_failed: u64,
    pub restores_ok: u64,
    pub restores_failed: u64,
}

struct OutcomeCounters([std::sync::atomic::AtomicU64; 4]);

static OUTCOMES: OutcomeCounters =
    OutcomeCounters([const { std::sync::atomic::AtomicU64::new(0) }; 4]);

impl OutcomeCounters {
    fn count(&self, restore: bool, ok: bool) {
        let at = usize::from(restore) * 2 + usize::from(!ok);
        self.0[at].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// What [`OutcomeCounts`] holds now.
pub(crate) fn outcome_counts() -> OutcomeCounts {
    let n = |i: usize| OUTCOMES.0[i].load(std::sync::atomic::Ordering::Relaxed);
    OutcomeCounts {
        backups_ok: n(0),
        backups_failed: n(1),
        restores_ok: n(2),
        restores_failed: n(3),
    }
}

fn new_operation(restore: bool, subject: &str, shard_id: u64, since: Option<i64>) -> BackupStarted {
    BackupStarted {
        id: crate::auth::new_id(),
        restore,
        subject: subject.to_owned(),
        shard_id,
        since_nanos: since.unwrap_or(0),
    }
}

/// Parses `since` (RFC 3339).
pub(crate) fn parse_since(since: Option<&str>) -> Result<Option<i64>, BackupError> {
    since
        .filter(|s| !s.is_empty())
        .map(|s| {
            crate::query::format::parse_rfc3339(s)
                .ok_or_else(|| BackupError::BadSince(format!("{s:?} is not an RFC 3339 date-time")))
        })
        .transpose()
}

impl BackupService {
    pub(crate) fn new(
        control: Arc<ControlLog>,
        storage: Arc<Storage>,
        config: &NodeConfig,
    ) -> Self {
        BackupService {
            control,
            storage,
            require_admin: config.auth_enabled,
            max_shard_bytes: config.max_restore_shard_mib.saturating_mul(1 << 20),
            max_metadata_bytes: config.max_restore_metadata_mib.saturating_mul(1 << 20),
        }
    }

    /// Operations the ledger shows running were cut short by the node stopping: record them
    /// as failed (at start-up, before any new one begins).
    pub(crate) async fn fail_interrupted(&self) -> Result<(), BackupError> {
        self.control
            .mutate(|c| {
                let events = c
                    .backups
                    .running
                    .keys()
                    .map(|id| backups::failed(id, "interrupted: the node stopped"))
                    .collect();
                Ok::<_, BackupError>((events, ()))
            })
            .await
    }

    /// Starts streaming a backup of shard `id`: the files are fixed now (a consistent point
    /// in time), then read and sent by a thread of its own as the client takes them.
    pub(crate) async fn backup_shard(
        &self,
        id: u64,
        since: Option<i64>,
        gzip: bool,
    ) -> Result<ChunkReceiver, BackupError> {
        // Opening a cold shard and writing its head out are file I/O: off the HTTP workers.
        let storage = self.storage.clone();
        let (files, info) = actix_web::rt::task::spawn_blocking(move || {
            let shard = storage.shard(id).ok_or(BackupError::ShardNotFound(id))?;
            Ok::<_, BackupError>((shard.backup_files()?, shard.info.clone()))
        })
        .await
        .unwrap_or_else(|e| Err(BackupError::Internal(format!("backup task failed: {e}"))))?;
        let began = Instant::now();
        let op = record_start(&self.control, new_operation(false, "shard", id, since)).await?;
        let control = self.control.clone();
        let (tx, rx) = mpsc::channel(STREAM_CHUNKS_IN_FLIGHT);
        // Detached from the request: whatever happens to the client, the outcome is recorded
        // (a client gone makes the producer's next send fail).
        actix_web::rt::spawn(async move {
            // The files are fixed above; only the reading waits for its turn.
            let permit = PRODUCING.acquire().await.ok();
            let (done_tx, done_rx) = tokio::sync::oneshot::channel();
            let spawned = std::thread::Builder::new()
                .name("backup-stream".into())
                .spawn(move || {
                    if gzip {
                        crate::priority::lower_current_thread(crate::priority::BACKUP_NICE);
                    }
                    let outcome = produce(&info, &files, since, gzip, tx);
                    drop(permit);
                    let _ = done_tx.send(outcome);
                });
            let outcome = match spawned {
                Ok(_) => done_rx
                    .await
                    .unwrap_or_else(|_| Err("the backup thread stopped".to_owned())),
                Err(e) => Err(format!("cannot start the backup thread: {e}")),
            };
            record_outcome(&control, &op, outcome, began).await;
        });
        Ok(rx)
    }

    /// Largest shard archive a restore takes, as sent and as unpacked (bytes).
    pub(crate) fn shard_body_limit(&self) -> u64 {
        self.max_shard_bytes
    }

    /// Largest kv snapshot or bucket manifest accepted in a request body.
    pub(crate) fn metadata_body_limit(&self) -> usize {
        usize::try_from(self.max_metadata_bytes).unwrap_or(usize::MAX)
    }

    /// Restores shard `id` (which the catalog must know) from an archive read from `body`.
    /// Nothing of the node changes unless every check passes.
    pub(crate) async fn restore_shard(
        &self,
        id: u64,
        body: ChannelReader,
    ) -> Result<u64, BackupError> {
        let (info, restored_from) = self
            .control
            .read(|c| {
                let info = c.catalog.shards().find(|s| s.id == id)?;
                let restored_from = c
                    .catalog
                    .databases
                    .get(&info.database)
                    .and_then(|d| d.shards.iter().find(|s| s.shard_id == id))
                    .map(|s| s.restored_from.clone())
                    .unwrap_or_default();
                Some((info, restored_from))
            })
            .await
            .ok_or(BackupError::ShardNotFound(id))?;
        let began = Instant::now();
        let op = record_start(&self.control, new_operation(true, "shard", id, None)).await?;
        let staging = self
            .storage
            .shards_dir()
            .join(format!(".restore-{id}-{op}"));
        // Detached from the request, so that a client going away mid-body still leaves the
        // outcome recorded (and the staging directory removed).
        let (control, storage, limit) = (
            self.control.clone(),
            self.storage.clone(),
            self.shard_body_limit(),
        );
        let task = actix_web::rt::spawn(async move {
            let result = actix_web::rt::task::spawn_blocking(move || {
                restore::restore_shard(&storage, &info, &restored_from, body, &staging, limit)
            })
            .await
            .unwrap_or_else(|e| Err(BackupError::Internal(format!("restore task failed: {e}"))));
            let outcome = result.as_ref().map(|b| *b).map_err(|e| e.to_string());
            record_outcome(&control, &op, outcome, began).await;
            result
        });
        task.await
            .unwrap_or_else(|e| Err(BackupError::Internal(format!("restore task failed: {e}"))))
    }

    /// The kv snapshot, as one consistent read of the control state.
    pub(crate) async fn backup_kv(&self) -> Result<Vec<u8>, BackupError> {
        let began = Instant::now();
        let op = record_start(&self.control, new_operation(false, "kv", 0, None)).await?;
        let kv = self.control.read(metadata::kv_snapshot).await;
        record_outcome(&self.control, &op, Ok(kv.len() as u64), began).await;
        Ok(kv)
    }

    /// kv and the bucket manifests from one read of the control state.
    pub(crate) async fn backup_metadata(
        &self,
    ) -> Result<(Vec<u8>, Vec<BucketMetadataManifest>), BackupError> {
        let began = Instant::now();
        let op = record_start(&self.control, new_operation(false, "metadata", 0, None)).await?;
        let (kv, buckets) = self
            .control
            .read(|c| {
                (
                    metadata::kv_snapshot(c),
                    metadata::bucket_manifests(&c.catalog),
                )
            })
            .await;
        record_outcome(&self.control, &op, Ok(kv.len() as u64), began).await;
        Ok((kv, buckets))
    }

    /// Replaces the control state by a kv snapshot; shards the restored catalog does not
    /// know are closed and removed (as a drop would). Returns the new operator token minted
    /// with it, if the restored state has an operator (see [`metadata::operator_token_event`]).
    pub(crate) async fn restore_kv(&self, bytes: &[u8]) -> Result<Option<String>, BackupError> {
        let event = metadata::restore_kv_event(bytes, self.require_admin)?;
        let minted = match &event.kind {
            Some(crate::proto::event::Kind::CatalogRestored(r)) => {
                r.state.as_ref().and_then(metadata::operator_token_event)
            }
            _ => None,
        };
        let mut events = vec![event];
        let token = minted.map(|(token, created)| {
            events.push(created);
            token
        });
        let began = Instant::now();
        let op = record_start(&self.control, new_operation(true, "kv", 0, None)).await?;
        // The restored state and its operator's new token in one append, acknowledged together.
        let result = self
            .control
            .mutate(|c| {
                self.storage.create_shard_dirs(&c.catalog, &events)?;
                Ok::<_, BackupError>((events, ()))
            })
            .await;
        if result.is_ok() {
            let known: Vec<u64> = self
                .control
                .read(|c| c.catalog.shards().map(|s| s.id).collect())
                .await;
            let stale: Vec<u64> = self
                .storage
                .shards()
                .iter()
                .map(|s| s.info.id)
                .filter(|id| !known.contains(id))
                .collect();
            self.storage.remove_shards(&self.control, &stale).await;
        }
        let outcome = result
            .as_ref()
            .map(|()| bytes.len() as u64)
            .map_err(|e| e.to_string());
        record_outcome(&self.control, &op, outcome, began).await;
        result.map(|()| token)
    }

    /// Creates a bucket from its manifest, with new shard ids.
    pub(crate) async fn restore_bucket(
        &self,
        manifest: &BucketMetadataManifest,
    ) -> Result<RestoredBucketMappings, BackupError> {
        let began = Instant::now();
        let op = record_start(&self.control, new_operation(true, "bucket", 0, None)).await?;
        let result = self
            .control
            .mutate(|c| {
                let (events, mappings) =
                    metadata::restore_bucket_events(&c.catalog, manifest, crate::auth::new_id())?;
                self.storage.create_shard_dirs(&c.catalog, &events)?;
                Ok::<_, BackupError>((events, mappings))
            })
            .await;
        let outcome = result.as_ref().map(|_| 0).map_err(|e| e.to_string());
        record_outcome(&self.control, &op, outcome, began).await;
        result
    }

    /// The ledger as JSON: running operations, recent outcomes, last good backup per shard.
    pub(crate) async fn status(&self) -> serde_json::Value {
        use crate::query::format::rfc3339_nanos;
        let outcome_json = |o: &crate::proto::BackupOutcome| {
            let s = o.started.clone().unwrap_or_default();
            let mut v = serde_json::json!({
                "id": s.id,
                "operation": if s.restore { "restore" } else { "backup" },
                "subject": s.subject,
                "startedAt": rfc3339_nanos(o.started_nanos),
            });
            if s.subject == "shard" {
                v["shardID"] = s.shard_id.into();
            }
            if s.since_nanos != 0 {
                v["since"] = rfc3339_nanos(s.since_nanos).into();
            }
            if o.ended_nanos != 0 {
                v["endedAt"] = rfc3339_nanos(o.ended_nanos).into();
                v["status"] = if o.ok { "success" } else { "failed" }.into();
                v["bytes"] = o.bytes.into();
                v["durationMs"] = (o.duration_nanos / 1_000_000).into();
                if !o.ok {
                    v["reason"] = o.reason.clone().into();
                }
            } else {
                v["status"] = "running".into();
            }
            v
        };
        self.control
            .read(|c| {
                let shards: Vec<serde_json::Value> = c
                    .catalog
                    .shards()
                    .map(|s| {
                        let mut v = serde_json::json!({
                            "shardID": s.id,
                            "database": s.database,
                            "retentionPolicy": s.retention_policy,
                        });
                        if let Some(o) = c.backups.last_good.get(&s.id) {
                            v["lastGoodBackup"] = outcome_json(o);
                        }
                        v
                    })
                    .collect();
                serde_json::json!({
                    "shards": shards,
                    "running": c.backups.running.values().map(outcome_json).collect::<Vec<_>>(),
                    "recent": c.backups.recent.iter().rev().map(outcome_json).collect::<Vec<_>>(),
                })
            })
            .await
    }
}

/// Writes the archive (gzip-compressed if asked) down `tx`; Ok with the bytes sent.
fn produce(
    info: &ShardInfo,
    files: &crate::storage::ShardFiles,
    since: Option<i64>,
    gzip: bool,
    tx: mpsc::Sender<io::Result<Bytes>>,
) -> Result<u64, String> {
    let mut out = ChannelWriter {
        tx: tx.clone(),
        buf: Vec::with_capacity(STREAM_CHUNK_BYTES),
        sent: 0,
    };
    let written = if gzip {
        let mut gz = flate2::write::GzEncoder::new(&mut out, flate2::Compression::fast());
        archive::write_shard_archive(info, files, since, &mut gz).and_then(|()| gz.try_finish())
    } else {
        archive::write_shard_archive(info, files, since, &mut out)
    }
    .and_then(|()| out.flush());
    match written {
        Ok(()) => Ok(out.sent),
        Err(e) => {
            // The client sees the stream cut short (no manifest), never a valid-looking
            // partial archive.
            let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
            Err(format!("shard {}: {e}", info.id))
        }
    }
}

/// A `Write` that sends full chunks down a bounded channel, waiting while it is full.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
    sent: u64,
}

impl ChannelWriter {
    fn send_buffered(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(STREAM_CHUNK_BYTES));
        let len = chunk.len() as u64;
        self.tx
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))?;
        self.sent += len;
        Ok(())
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.is_empty() && data.len() >= STREAM_CHUNK_BYTES {
            // A large slice goes out a chunk at a time (one copy, not two): a chunk never
            // grows past STREAM_CHUNK_BYTES, so the chunks in flight bound the memory a
            // stream holds, whatever the size of the file behind it.
            self.buf.extend_from_slice(&data[..STREAM_CHUNK_BYTES]);
            self.send_buffered()?;
            return Ok(STREAM_CHUNK_BYTES);
        }
        let room = STREAM_CHUNK_BYTES - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == STREAM_CHUNK_BYTES {
            self.send_buffered()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buffered()
    }
}

/// A `Read` over chunks of a request body forwarded through a bounded channel.
pub(crate) struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl ChannelReader {
    pub(crate) fn new(rx: mpsc::Receiver<io::Result<Bytes>>) -> Self {
        ChannelReader {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}
