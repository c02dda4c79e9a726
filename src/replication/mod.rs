//! Replications: every write to a local bucket copied to a bucket of a remote InfluxDB 2
//! API (`/api/v2/remotes`, `/api/v2/replications`).
//!
//! The queue is a durable cursor over the data log, which already holds each write's
//! points (one record per shard per write): a replication's queue is its bucket's records
//! after the position up to which they were delivered (or dropped). So ingest costs
//! nothing more than the data log's own fdatasync: a write is durable in its
//! replications' queues exactly when it is durable in the bucket. What the cursor needs:
//!
//! - the position is recorded durably as delivery is confirmed: a control-log event per
//!   run of batches the remote answered 204 to ([`crate::proto::ReplicationDelivered`]),
//!   so a restart resumes at the first unconfirmed batch (a crash re-sends at most the
//!   sender's window, see [`sender`], which a shardkeeper remote does not apply again,
//!   see [`inbound`]);
//! - the data log keeps the segments from each replication's position on (a pin, see
//!   [`crate::storage::data_log::DataLog::pin`]; passed to the storage at start-up, before
//!   its first trim);
//! - the bytes each replication holds are counted exactly ([`queue::Queue`]): a write's
//!   records are admitted against each queue's `maxQueueSizeBytes` before they are
//!   appended ([`crate::storage::WriteFollowers`]), so a write that does not fit is
//!   refused whole (503 naming the replication), or, with `replication_drop_when_full`,
//!   accepted while the sender drops the queue's oldest points to make room.
//!
//! [`ReplicationService`] is what the HTTP handlers call (CRUD, validation, drop-head);
//! [`sender`] runs one task per replication. [`inbound`] is the other end, when the remote
//! is a shardkeeper node: a batch re-sent after a crash is not applied twice.

pub(crate) mod inbound;
pub(crate) mod queue;
pub(crate) mod recent;
pub(crate) mod sender;

use crate::auth::{Action, Principal, Resource, Wanted};
use crate::catalog::Catalog;
use crate::client::{ClientError, ClientOptions, Credentials, InfluxClient};
use crate::control::replications::{RemoteSpec, ReplicationError, ReplicationSpec};
use crate::control::{ControlLog, ControlState};
use crate::log::Lsn;
use crate::projection::ProjectionError;
use crate::proto::{Remote, Replication, ReplicationProgress};
use crate::storage::{QueuedRecord, Storage, WriteFollowers};
use queue::Queue;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ReplicationServiceError {
    #[error(transparent)]
    Decision(#[from] ReplicationError),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    /// The permission the caller lacks, as InfluxDB 2 names it.
    #[error("{0} is unauthorized")]
    Forbidden(String),
    /// The remote did not take an empty write to the target bucket.
    #[error("replication failed validation: {0}")]
    Validation(String),
    #[error("data log: {0}")]
    Log(#[from] crate::log::LogError),
}

type Result<T> = std::result::Result<T, ReplicationServiceError>;

/// A replication as `/api/v2/replications` answers it: settings, progress and the queue.
#[derive(Debug, Clone)]
pub(crate) struct ReplicationStatus {
    pub progress: ReplicationProgress,
    pub queued_bytes: u64,
}

impl ReplicationStatus {
    pub(crate) fn replication(&self) -> &Replication {
        self.progress
            .replication
            .as_ref()
            .expect("the control state keeps replications with their settings")
    }
}

/// One replication's figures for `/metrics`.
#[derive(Debug, Clone)]
pub(crate) struct ReplicationFigures {
    pub id: String,
    pub name: String,
    pub queued_bytes: u64,
    pub sent_points: u64,
    pub sent_bytes: u64,
    /// By reason: non_retryable, max_age, queue_full, operator.
    pub dropped_points: [(&'static str, u64); 4],
    /// Failed attempts by HTTP status (0: network error), since start.
    pub failures: Vec<(u16, u64)>,
    pub lag_seconds: f64,
    pub backoff_seconds: f64,
    pub stopped: bool,
}

/// Filters of a list.
#[derive(Debug, Default)]
pub(crate) struct ListFilter<'a> {
    pub name: Option<&'a str>,
    pub remote_url: Option<&'a str>,
    pub remote_id: Option<&'a str>,
    pub local_bucket_id: Option<&'a str>,
}

pub(crate) struct ReplicationService {
    control: Arc<ControlLog>,
    storage: Arc<Storage>,
    drop_when_full: bool,
    /// The gzip level of the batches sent (`replication_gzip_level`).
    gzip_level: u32,
    /// By replication id.
    queues: RwLock<HashMap<String, Arc<Queue>>>,
    /// One admission at a time: a queue's room is checked and taken together.
    admitting: Mutex<()>,
    /// The last LSN of the data log known durable to writes (wakes the senders).
    appended: watch::Sender<Lsn>,
    /// Which database and policy each shard holds (shards are never renamed, and a
    /// dropped one's records may still be queued).
    shards: RwLock<HashMap<u64, (String, String)>>,
    /// Where the senders run: a thread of their own, whatever serves HTTP.
    runtime: Option<tokio::runtime::Runtime>,
    /// The newest followed records' lines, so that the senders need not decompress them.
    recent: recent::RecentLines,
}

impl Drop for ReplicationService {
    fn drop(&mut self) {
        // Dropped from inside another runtime (the daemon's) at exit: not waited for.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl ReplicationService {
    /// The service of a node whose storage is open; counts what each replication's queue
    /// holds by reading the data log from its position.
    pub(crate) fn open(
        control: Arc<ControlLog>,
        storage: Arc<Storage>,
        drop_when_full: bool,
        gzip_level: u32,
        nice: u32,
    ) -> Result<Arc<ReplicationService>> {
        let durable = storage.data_log().durable_lsn();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("replication")
            // Its worker and its blocking threads (reading the log, gzip) alike: on a node
            // short of CPU a sender takes from the writes only what they leave.
            .on_thread_start(move || run_nicer(nice))
            .enable_all()
            .build()
            .map_err(|e| {
                crate::log::LogError::io(
                    "start the replication thread for",
                    storage.data_log().dir(),
                )(e)
            })?;
        let service = Arc::new(ReplicationService {
            control,
            storage,
            drop_when_full,
            gzip_level: gzip_level.min(9),
            queues: RwLock::new(HashMap::new()),
            admitting: Mutex::new(()),
            appended: watch::channel(durable).0,
            shards: RwLock::new(HashMap::new()),
            runtime: Some(runtime),
            recent: recent::RecentLines::default(),
        });
        service.reconcile_blocking()?;
        service.storage.set_followers(service.clone());
        Ok(service)
    }

    /// The first LSN each replication still needs, for the storage to keep from start-up.
    pub(crate) fn pins(state: &ControlState) -> Vec<(String, Lsn)> {
        state
            .replications
            .replications
            .iter()
            .map(|(id, p)| (id.clone(), p.delivered_lsn + 1))
            .collect()
    }

    /// Makes the queues match the control state: a queue (counted from the data log) for
    /// each new replication, none for those deleted.
    fn reconcile_blocking(&self) -> Result<()> {
        let (wanted, catalog): (Vec<ReplicationProgress>, Catalog) =
            self.control.read_blocking(|c| {
                (
                    c.replications.replications.values().cloned().collect(),
                    c.catalog.clone(),
                )
            });
        self.learn_shards(&catalog);
        let mut queues = self.queues.write().unwrap_or_else(|e| e.into_inner());
        queues.retain(|id, q| {
            let keep = wanted
                .iter()
                .any(|p| p.replication.as_ref().is_some_and(|r| &r.id == id));
            if !keep {
                q.close();
                self.storage.data_log_holds().unpin(id);
            }
            keep
        });
        for p in &wanted {
            let Some(r) = p.replication.as_ref() else {
                continue;
            };
            let target = catalog
                .buckets
                .get(&r.local_bucket_id)
                .map(|b| (b.database.clone(), b.retention_policy.clone()));
            if let Some(q) = queues.get(&r.id) {
                q.set_settings(r, target);
                continue;
            }
            let q = Arc::new(Queue::new(r, target, p.delivered_lsn));
            let bytes = self.count_queued(&q, p.delivered_lsn)?;
            q.set_bytes(bytes);
            self.storage.data_log_holds().pin(&r.id, q.needed_from());
            queues.insert(r.id.clone(), q);
        }
        Ok(())
    }

    /// Bytes of `q`'s bucket's records after `delivered` in the data log.
    fn count_queued(&self, q: &Queue, delivered: Lsn) -> Result<u64> {
        let log = self.storage.data_log();
        let from = (delivered + 1).max(log.figures().oldest_lsn);
        let mut reader = log.reader(from)?;
        let mut bytes = 0;
        while let Some(record) = reader.next()? {
            if self.record_is_for(q, record.kind, record.payload) {
                bytes += crate::log::format::encoded_record_len(record.payload.len()) as u64;
            }
        }
        Ok(bytes)
    }

    fn learn_shards(&self, catalog: &Catalog) {
        let mut shards = self.shards.write().unwrap_or_else(|e| e.into_inner());
        for s in catalog.shards() {
            shards
                .entry(s.id)
                .or_insert_with(|| (s.database.clone(), s.retention_policy.clone()));
        }
    }

    /// The database and policy of shard `id`, learning new shards from the catalog.
    fn shard_target(&self, id: u64) -> Option<(String, String)> {
        if let Some(t) = self
            .shards
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
        {
            return Some(t.clone());
        }
        let catalog = self.control.read_blocking(|c| c.catalog.clone());
        self.learn_shards(&catalog);
        self.shards
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    /// Whether a data-log record (its kind and whole payload) is one of the points of
    /// `q`'s bucket (deletes are not replicated, as in InfluxDB 2).
    fn record_is_for(&self, q: &Queue, kind: u8, payload: &[u8]) -> bool {
        if kind == crate::storage::tombstone::TOMBSTONE_RECORD {
            return false;
        }
        let Ok((header, _)) = crate::storage::data_log::Header::split(payload) else {
            return false;
        };
        let Some((db, rp)) = self.shard_target(header.shard) else {
            return false;
        };
        q.targets(&db, &rp)
    }

    /// Starts a sender for each replication without one (at start-up, every one), and
    /// stops those of replications deleted. Called after each change.
    pub(crate) fn start_senders(self: &Arc<Self>) -> Result<()> {
        self.reconcile_blocking()?;
        for q in self.queues() {
            if q.claim_sender() {
                sender::spawn(self.clone(), q);
            }
        }
        Ok(())
    }

    fn runtime_handle(&self) -> tokio::runtime::Handle {
        match &self.runtime {
            Some(rt) => rt.handle().clone(),
            None => tokio::runtime::Handle::current(),
        }
    }

    fn queue(&self, id: &str) -> Option<Arc<Queue>> {
        self.queues
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    pub(crate) fn queues(&self) -> Vec<Arc<Queue>> {
        let mut all: Vec<Arc<Queue>> = self
            .queues
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Every replication's figures, for `/metrics`.
    pub(crate) async fn figures(&self) -> Vec<ReplicationFigures> {
        let all: Vec<ReplicationProgress> = self
            .control
            .read(|c| c.replications.replications.values().cloned().collect())
            .await;
        let now = crate::clock::now_nanos();
        all.into_iter()
            .filter_map(|p| {
                let r = p.replication.as_ref()?;
                let q = self.queue(&r.id)?;
                let f = q.figures();
                Some(ReplicationFigures {
                    id: r.id.clone(),
                    name: r.name.clone(),
                    queued_bytes: q.bytes(),
                    sent_points: p.sent_points,
                    sent_bytes: p.sent_bytes,
                    dropped_points: [
                        ("non_retryable", p.dropped_non_retryable_points),
                        ("max_age", p.dropped_max_age_points),
                        ("queue_full", p.dropped_queue_full_points),
                        ("operator", p.dropped_operator_points),
                    ],
                    failures: f.failures.into_iter().collect(),
                    lag_seconds: match f.oldest_queued_nanos {
                        0 => 0.0,
                        t => now.saturating_sub(t).max(0) as f64 / 1e9,
                    },
                    backoff_seconds: f.backoff_seconds,
                    stopped: p.stopped,
                })
            })
            .collect()
    }

    // ---- remotes ----

    pub(crate) async fn list_remotes(
        &self,
        caller: Option<&Principal>,
        org_id: &str,
        filter: &ListFilter<'_>,
    ) -> Vec<Remote> {
        self.control
            .read(|c| {
                c.replications
                    .remotes
                    .values()
                    .filter(|r| r.org_id == org_id)
                    .filter(|r| filter.name.is_none_or(|n| n == r.name))
                    .filter(|r| filter.remote_url.is_none_or(|u| u == r.remote_url))
                    .filter(|r| {
                        may(
                            &c.catalog,
                            caller,
                            Resource::Remotes,
                            Action::Read,
                            &r.org_id,
                        )
                    })
                    .cloned()
                    .collect()
            })
            .await
    }

    pub(crate) async fn remote(&self, caller: Option<&Principal>, id: &str) -> Result<Remote> {
        self.control
            .read(|c| {
                c.replications
                    .remotes
                    .get(id)
                    .filter(|r| {
                        may(
                            &c.catalog,
                            caller,
                            Resource::Remotes,
                            Action::Read,
                            &r.org_id,
                        )
                    })
                    .cloned()
                    .ok_or(ReplicationError::RemoteNotFound.into())
            })
            .await
    }

    pub(crate) async fn create_remote(
        &self,
        caller: Option<&Principal>,
        org_id: &str,
        spec: RemoteSpec,
    ) -> Result<Remote> {
        let id = crate::auth::new_id();
        self.control
            .mutate(|c| {
                require(&c.catalog, caller, Resource::Remotes, org_id)?;
                let events = c
                    .replications
                    .create_remote(&c.catalog, id.clone(), org_id, spec)?;
                Ok::<_, ReplicationServiceError>((events, ()))
            })
            .await?;
        self.remote(None, &id).await
    }

    pub(crate) async fn update_remote(
        &self,
        caller: Option<&Principal>,
        id: &str,
        spec: RemoteSpec,
    ) -> Result<Remote> {
        self.control
            .mutate(|c| {
                let org = visible_remote(c, caller, id)?;
                require(&c.catalog, caller, Resource::Remotes, &org)?;
                Ok::<_, ReplicationServiceError>((c.replications.update_remote(id, spec)?, ()))
            })
            .await?;
        // Its replications try again at once, not after their back-off.
        let using: Vec<String> = self
            .control
            .read(|c| {
                c.replications
                    .replications
                    .values()
                    .filter_map(|p| p.replication.as_ref())
                    .filter(|r| r.remote_id == id)
                    .map(|r| r.id.clone())
                    .collect()
            })
            .await;
        for q in using.iter().filter_map(|r| self.queue(r)) {
            q.wake();
        }
        self.remote(None, id).await
    }

    pub(crate) async fn delete_remote(&self, caller: Option<&Principal>, id: &str) -> Result<()> {
        self.control
            .mutate(|c| {
                let org = visible_remote(c, caller, id)?;
                require(&c.catalog, caller, Resource::Remotes, &org)?;
                Ok::<_, ReplicationServiceError>((c.replications.delete_remote(id)?, ()))
            })
            .await
    }

    // ---- replications ----

    pub(crate) async fn list(
        &self,
        caller: Option<&Principal>,
        org_id: &str,
        filter: &ListFilter<'_>,
    ) -> Vec<ReplicationStatus> {
        let found: Vec<ReplicationProgress> = self
            .control
            .read(|c| {
                c.replications
                    .replications
                    .values()
                    .filter(|p| {
                        p.replication.as_ref().is_some_and(|r| {
                            r.org_id == org_id
                                && filter.name.is_none_or(|n| n == r.name)
                                && filter.remote_id.is_none_or(|n| n == r.remote_id)
                                && filter
                                    .local_bucket_id
                                    .is_none_or(|n| n == r.local_bucket_id)
                                && may(
                                    &c.catalog,
                                    caller,
                                    Resource::Replications,
                                    Action::Read,
                                    &r.org_id,
                                )
                        })
                    })
                    .cloned()
                    .collect()
            })
            .await;
        found.into_iter().map(|p| self.status_of(p)).collect()
    }

    fn status_of(&self, progress: ReplicationProgress) -> ReplicationStatus {
        let id = progress.replication.as_ref().map_or("", |r| r.id.as_str());
        let queued_bytes = self.queue(id).map_or(0, |q| q.bytes());
        ReplicationStatus {
            progress,
            queued_bytes,
        }
    }

    pub(crate) async fn get(
        &self,
        caller: Option<&Principal>,
        id: &str,
    ) -> Result<ReplicationStatus> {
        let progress = self
            .control
            .read(|c| visible_replication(c, caller, id).map(|(p, _)| p))
            .await?;
        Ok(self.status_of(progress))
    }

    /// Creates a replication (or, with `validate_only`, checks it and the remote and
    /// saves nothing: None).
    pub(crate) async fn create(
        self: &Arc<Self>,
        caller: Option<&Principal>,
        org_id: &str,
        spec: ReplicationSpec,
        validate_only: bool,
    ) -> Result<Option<ReplicationStatus>> {
        let id = crate::auth::new_id();
        let (r, remote) = self
            .control
            .read(|c| {
                require(&c.catalog, caller, Resource::Replications, org_id)?;
                let r = c
                    .replications
                    .new_replication(&c.catalog, id.clone(), org_id, spec)?;
                let remote = c.replications.remotes.get(&r.remote_id).cloned();
                Ok::<_, ReplicationServiceError>((r, remote))
            })
            .await?;
        if validate_only {
            let remote = remote.ok_or(ReplicationError::RemoteNotFound)?;
            validate_remote(&remote, &r).await?;
            return Ok(None);
        }
        self.control
            .mutate(|c| {
                require(&c.catalog, caller, Resource::Replications, org_id)?;
                // From the writes after this point on (read under the control log's
                // writer lock, so two creations are ordered).
                let start = self.storage.data_log().durable_lsn();
                let events = c
                    .replications
                    .create_replication(&c.catalog, r.clone(), start)?;
                Ok::<_, ReplicationServiceError>((events, ()))
            })
            .await?;
        self.start_senders()?;
        self.get(None, &id).await.map(Some)
    }

    pub(crate) async fn update(
        self: &Arc<Self>,
        caller: Option<&Principal>,
        id: &str,
        spec: ReplicationSpec,
        validate_only: bool,
    ) -> Result<Option<ReplicationStatus>> {
        if validate_only {
            let (r, remote) = self
                .control
                .read(|c| {
                    let (_, org) = visible_replication(c, caller, id)?;
                    require(&c.catalog, caller, Resource::Replications, &org)?;
                    let r = c.replications.patched(&c.catalog, id, spec)?;
                    let remote = c.replications.remotes.get(&r.remote_id).cloned();
                    Ok::<_, ReplicationServiceError>((r, remote))
                })
                .await?;
            let remote = remote.ok_or(ReplicationError::RemoteNotFound)?;
            validate_remote(&remote, &r).await?;
            return Ok(None);
        }
        self.control
            .mutate(|c| {
                let (_, org) = visible_replication(c, caller, id)?;
                require(&c.catalog, caller, Resource::Replications, &org)?;
                let r = c.replications.patched(&c.catalog, id, spec)?;
                let events = c.replications.update_replication(&c.catalog, r)?;
                Ok::<_, ReplicationServiceError>((events, ()))
            })
            .await?;
        self.start_senders()?;
        if let Some(q) = self.queue(id) {
            q.wake();
        }
        self.get(None, id).await.map(Some)
    }

    pub(crate) async fn delete(
        self: &Arc<Self>,
        caller: Option<&Principal>,
        id: &str,
    ) -> Result<()> {
        self.control
            .mutate(|c| {
                let (_, org) = visible_replication(c, caller, id)?;
                require(&c.catalog, caller, Resource::Replications, &org)?;
                Ok::<_, ReplicationServiceError>((c.replications.delete_replication(id)?, ()))
            })
            .await?;
        self.start_senders()
    }

    /// After a bucket is deleted (its replications went with it): stops their senders.
    pub(crate) fn forget_deleted(self: &Arc<Self>) {
        if let Err(e) = self.start_senders() {
            tracing::warn!(error = %e, "could not stop the senders of deleted replications");
        }
    }

    /// `POST /api/v2/replications/{id}/validate`: an empty write to the remote bucket.
    pub(crate) async fn validate(&self, caller: Option<&Principal>, id: &str) -> Result<()> {
        let (r, remote) = self
            .control
            .read(|c| {
                let (p, org) = visible_replication(c, caller, id)?;
                require(&c.catalog, caller, Resource::Replications, &org)?;
                let r = p.replication.clone().unwrap_or_default();
                let remote = c.replications.remotes.get(&r.remote_id).cloned();
                Ok::<_, ReplicationServiceError>((r, remote))
            })
            .await?;
        let remote = remote.ok_or(ReplicationError::RemoteNotFound)?;
        validate_remote(&remote, &r).await
    }

    /// Drops the batch at the head of the queue (the one a stopped replication cannot
    /// deliver): returns how many points went.
    pub(crate) async fn drop_head(
        self: &Arc<Self>,
        caller: Option<&Principal>,
        id: &str,
    ) -> Result<u64> {
        self.control
            .read(|c| {
                let (_, org) = visible_replication(c, caller, id)?;
                require(&c.catalog, caller, Resource::Replications, &org)
            })
            .await?;
        let q = self
            .queue(id)
            .ok_or(ReplicationError::ReplicationNotFound)?;
        sender::drop_head(self, &q).await
    }
}

impl WriteFollowers for ReplicationService {
    fn admit(&self, records: &[QueuedRecord<'_>]) -> std::result::Result<(), String> {
        let queues: Vec<Arc<Queue>> = {
            let queues = self.queues.read().unwrap_or_else(|e| e.into_inner());
            if queues.is_empty() {
                return Ok(());
            }
            queues.values().cloned().collect()
        };
        let wanted: Vec<(Arc<Queue>, u64)> = queues
            .into_iter()
            .filter_map(|q| {
                let bytes: u64 = records
                    .iter()
                    .filter(|r| q.targets(r.database, r.retention_policy))
                    .map(|r| r.bytes)
                    .sum();
                (bytes > 0).then_some((q, bytes))
            })
            .collect();
        let _one_at_a_time = self.admitting.lock().unwrap_or_else(|e| e.into_inner());
        if !self.drop_when_full {
            if let Some((q, bytes)) = wanted.iter().find(|(q, b)| !q.has_room(*b)) {
                return Err(q.full_message(*bytes));
            }
        }
        for (q, bytes) in &wanted {
            if !q.has_room(*bytes) {
                tracing::warn!(
                    replication = %q.id,
                    bytes,
                    "replication queue full: accepting the write and dropping the queue's oldest points (replication_drop_when_full)"
                );
            }
            q.add(*bytes);
        }
        Ok(())
    }

    fn abandon(&self, records: &[QueuedRecord<'_>]) {
        for q in self.queues() {
            let bytes: u64 = records
                .iter()
                .filter(|r| q.targets(r.database, r.retention_policy))
                .map(|r| r.bytes)
                .sum();
            q.remove(bytes);
        }
    }

    fn follows(&self, database: &str, retention_policy: &str) -> bool {
        let queues = self.queues.read().unwrap_or_else(|e| e.into_inner());
        queues
            .values()
            .any(|q| q.targets(database, retention_policy))
    }

    fn decoded(&self, lsn: Lsn, head: &[u8], plain: Vec<u8>) {
        let needed_from = {
            let queues = self.queues.read().unwrap_or_else(|e| e.into_inner());
            queues.values().map(|q| q.needed_from()).min()
        };
        // No replication left to read it.
        if let Some(needed_from) = needed_from {
            self.recent.insert(lsn, head, plain, needed_from);
        }
    }

    fn appended(&self, lsn: Lsn) {
        self.appended.send_if_modified(|last| {
            let newer = lsn > *last;
            if newer {
                *last = lsn;
            }
            newer
        });
    }
}

/// Lowers the calling thread's priority by `steps` nice steps (to nice 19 at most).
fn run_nicer(steps: u32) {
    if steps == 0 {
        return;
    }
    // SAFETY: PRIO_PROCESS with id 0 is the calling thread alone (Linux keeps a nice value
    // per thread); neither call touches memory of ours.
    let rc = unsafe {
        let now = libc::getpriority(libc::PRIO_PROCESS, 0);
        libc::setpriority(
            libc::PRIO_PROCESS,
            0,
            now.saturating_add(steps as i32).min(19),
        )
    };
    if rc != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "could not lower a replication thread's priority (replication_nice): it competes with writes");
    }
}

fn may(
    c: &Catalog,
    caller: Option<&Principal>,
    resource: Resource,
    action: Action,
    org: &str,
) -> bool {
    caller.is_none_or(|p| {
        p.holds(
            c,
            &Wanted {
                action,
                resource,
                org_id: Some(org),
                id: None,
            },
        )
    })
}

/// Refuses unless the caller may change `resource` in `org`.
fn require(c: &Catalog, caller: Option<&Principal>, resource: Resource, org: &str) -> Result<()> {
    let wanted = Wanted {
        action: Action::Write,
        resource,
        org_id: Some(org),
        id: None,
    };
    match caller {
        Some(p) if !p.holds(c, &wanted) => {
            Err(ReplicationServiceError::Forbidden(wanted.describe()))
        }
        _ => Ok(()),
    }
}

/// The org of remote `id`, if the caller may see it (404 otherwise, as if absent).
fn visible_remote(c: &ControlState, caller: Option<&Principal>, id: &str) -> Result<String> {
    c.replications
        .remotes
        .get(id)
        .filter(|r| {
            may(
                &c.catalog,
                caller,
                Resource::Remotes,
                Action::Read,
                &r.org_id,
            )
        })
        .map(|r| r.org_id.clone())
        .ok_or(ReplicationError::RemoteNotFound.into())
}

fn visible_replication(
    c: &ControlState,
    caller: Option<&Principal>,
    id: &str,
) -> Result<(ReplicationProgress, String)> {
    c.replications
        .replications
        .get(id)
        .and_then(|p| {
            let org = p.replication.as_ref()?.org_id.clone();
            may(
                &c.catalog,
                caller,
                Resource::Replications,
                Action::Read,
                &org,
            )
            .then(|| (p.clone(), org))
        })
        .ok_or(ReplicationError::ReplicationNotFound.into())
}

/// A client of `remote` with its token.
pub(crate) fn client_of(remote: &Remote) -> std::result::Result<InfluxClient, ClientError> {
    InfluxClient::new(
        &remote.remote_url,
        ClientOptions {
            credentials: Credentials::Token(remote.remote_api_token.clone()),
            tls: crate::client::TlsOptions {
                insecure: remote.allow_insecure_tls,
                ..Default::default()
            },
            request_timeout: Some(sender::REQUEST_TIMEOUT),
            ..ClientOptions::default()
        },
    )
}

/// The query of a write to the replication's remote bucket.
pub(crate) fn write_query<'a>(
    remote: &'a Remote,
    r: &'a Replication,
) -> Vec<(&'static str, &'a str)> {
    let mut q = Vec::new();
    if !remote.remote_org_id.is_empty() {
        q.push(("org", remote.remote_org_id.as_str()));
    }
    match r.remote_bucket_name.is_empty() {
        false => q.push(("bucket", r.remote_bucket_name.as_str())),
        true => q.push(("bucket", r.remote_bucket_id.as_str())),
    }
    q.push(("precision", "ns"));
    q
}

/// An empty write to the replication's remote bucket: 204, or why not.
async fn validate_remote(remote: &Remote, r: &Replication) -> Result<()> {
    let fail = |e: ClientError| ReplicationServiceError::Validation(e.to_string());
    let client = client_of(remote).map_err(fail)?;
    let path = "/api/v2/write";
    let request = client
        .request(crate::client::Method::POST, path)
        .query(&write_query(remote, r))
        .body(Vec::new());
    let response = client.send(path, request).await.map_err(fail)?;
    match response.status().as_u16() {
        204 => Ok(()),
        other => Err(ReplicationServiceError::Validation(format!(
            "the remote answered {other}, not 204"
        ))),
    }
}
