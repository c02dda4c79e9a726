//! Anti-entropy: replicas of the same shards on peer nodes find their differences by
//! comparing digests, and repair them point by point (InfluxDB Enterprise's
//! `/shard-repair` API and `influxd-ctl entropy`, done the way Merkle-tree systems do it).
//!
//! - Each shard keeps digests of its logical points in a tree
//!   ([`crate::storage::digest`]), maintained as writes and deletes are applied.
//! - Every `check_interval_seconds`, for each peer, the node fetches the peer's shards
//!   with their roots ([`wire::ShardSummary`]), and for each shard whose root differs
//!   descends the tree level by level, fetching the peer's children only of the nodes
//!   that differ, down to the leaves. Leaves written within `settle_seconds` on either
//!   side are not compared (writes in flight are not differences). A shard with a
//!   differing leaf has status `diff`.
//! - A repair (queued by an operator, or by the node for a shard it lacks) is a sequence
//!   of control-log events ([`crate::control::repairs`]); for the differing leaves it
//!   compares the digests of their cells (the moments aliased into a leaf) with every
//!   peer's, fetches the differing cells' contents and applies them (points with the
//!   write versions they carry; tombstones), then pushes its own contents of every cell
//!   that differed from any peer to each peer. Last write wins by version everywhere, so applying a leaf
//!   twice changes nothing, and every replica ends with the same points.
//!
//! - A shard this node lacks (created here when a peer lists it, `auto_repair_missing`) or
//!   holds quarantined as damaged is first fetched whole from a peer, as a backup archive
//!   streamed into a restore: staged, verified, merged and swapped in only once whole
//!   ([`crate::backup::restore`]); a leaf repair then follows, as for any shard.
//!
//! Peers talk over `/shard-repair/peer/*` in [`wire`]'s format, and fetch whole shards
//! from `/api/v2/backup/shards/{id}`, with the configured peer credential when
//! authentication is on.

pub(crate) mod ibf;
pub(crate) mod pull;
pub(crate) mod wire;

use crate::backup::restore;
use crate::backup::BackupError;
use crate::client::{ClientError, ClientOptions, Credentials, InfluxClient, Method};
use crate::config::AntiEntropyConfig;
use crate::control::repairs;
use crate::control::ControlLog;
use crate::projection::ProjectionError;
use crate::proto::{event, RepairFinished};
use crate::storage::digest::{
    merge_cells, Digest, LeafCellDigests, LeafCells, NodeDigest, Prefix, POSITION_BITS,
};
use crate::storage::shard::DigestChild;
use crate::storage::{RepairApplied, Shard, ShardInfo, Storage, StorageError};
use ibf::{Ibf, Stratum};
use std::collections::HashSet;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wire::{
    CellDigests, DigestRequest, Exchange, IbfAnswer, IbfRequest, LeafRequest, Leaves, ShardSummary,
};

/// Nodes of a tree asked for in one request.
const NODES_PER_REQUEST: usize = 4096;
/// Attempts of a repair whose peer is out of reach (back-off from 0.25 s to 10 s between
/// them: some three minutes in all) before it is recorded as failed.
const REPAIR_ATTEMPTS: usize = 24;
/// Rounds of a repair at most, while differing leaves are still settling.
const REPAIR_ROUNDS: usize = 3;
/// Leaves fetched or pushed in one request.
const LEAVES_PER_REQUEST: usize = 512;
/// Cells of the sample stratum's table: enough for some 150 differences in the sample
/// (2,400 in all).
const SAMPLE_CELLS: usize = 240;
/// Tables asked for per stratum before a reconciliation gives way to the tree walk.
const TABLE_ATTEMPTS: usize = 3;
tokio::task_local! {
    /// The bytes a repair exchanged, counted in its own task: checks running meanwhile
    /// (on the same node, for the same shard) are not the repair's.
    static REPAIR_BYTES: Arc<AtomicU64>;
}

/// Counts `n` bytes exchanged: in every figure, and in the repair under way, if any.
fn count_bytes(all: &AtomicU64, n: u64) {
    all.fetch_add(n, Ordering::Relaxed);
    let _ = REPAIR_BYTES.try_with(|r| r.fetch_add(n, Ordering::Relaxed));
}

/// Largest body a peer endpoint takes.
pub(crate) const MAX_PEER_BODY: usize = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub(crate) enum EntropyError {
    #[error("peer {peer}: {source}")]
    Peer { peer: String, source: ClientError },
    #[error("peer {peer}: {source}")]
    Wire {
        peer: String,
        source: wire::WireError,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("a shard fetched whole: {0}")]
    Restore(#[from] BackupError),
    #[error("control log: {0}")]
    Control(#[from] ProjectionError),
    #[error("shard {0} is not known here, and no peer holds it")]
    NoShard(u64),
    #[error("the repair of shard {0} was cancelled")]
    Cancelled(u64),
    #[error("{0}")]
    Other(String),
}

impl EntropyError {
    /// A failure to reach a peer, or a peer's 5xx or 429: worth trying again.
    fn is_transient(&self) -> bool {
        match self {
            EntropyError::Peer { source, .. } => {
                !matches!(source.retry(), crate::client::Retry::Never)
            }
            _ => false,
        }
    }
}

/// What `/metrics` counts.
#[derive(Debug, Default)]
pub(crate) struct EntropyFigures {
    /// Shard digests compared with a peer's (roots).
    pub digests_compared: AtomicU64,
    /// Tree nodes compared below the roots.
    pub nodes_compared: AtomicU64,
    /// Leaves found differing by checks.
    pub leaves_differing: AtomicU64,
    pub checks: AtomicU64,
    pub check_failures: AtomicU64,
    pub repairs_finished: AtomicU64,
    pub repairs_failed: AtomicU64,
    pub repairs_cancelled: AtomicU64,
    /// Points applied here by repairs, and sent to peers.
    pub points_received: AtomicU64,
    pub points_sent: AtomicU64,
    /// Bytes exchanged with peers by checks and repairs (both ways, as sent).
    pub bytes_exchanged: AtomicU64,
    pub bytes_repaired: AtomicU64,
    /// Nanoseconds the last check took.
    pub last_check_nanos: AtomicU64,
}

/// A shard found to differ from a peer.
#[derive(Debug, Clone)]
pub(crate) struct Divergence {
    pub info: ShardInfo,
    pub expires: i64,
    /// Peers it differs from, with how many leaves.
    pub peers: BTreeMap<String, usize>,
}

/// One row of `/shard-repair/status`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct StatusRow {
    pub id: String,
    pub database: String,
    pub retention_policy: String,
    pub start_time: String,
    pub end_time: String,
    pub expires: String,
    pub status: String,
}

/// `/shard-repair/status`'s answer: every value a string, as Enterprise's.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Status {
    pub shards: Vec<StatusRow>,
    pub queued_shards: Vec<String>,
    pub processing_shards: Vec<String>,
    /// Beyond Enterprise's: the latest repairs, with what they moved.
    #[serde(default)]
    pub recent_repairs: Vec<serde_json::Value>,
}

struct Peer {
    url: String,
    client: InfluxClient,
}

pub(crate) struct EntropyService {
    control: Arc<ControlLog>,
    storage: Arc<Storage>,
    config: AntiEntropyConfig,
    peers: Vec<Peer>,
    diverged: Mutex<BTreeMap<u64, Divergence>>,
    /// Largest shard archive a whole-shard fetch takes (as the restore endpoint's limit).
    max_shard_bytes: u64,
    pub figures: EntropyFigures,
    /// Wakes the repair loop (a repair queued or cancelled).
    wake: tokio::sync::Notify,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
}

impl Drop for EntropyService {
    fn drop(&mut self) {
        if let Some(rt) = self
            .runtime
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            rt.shutdown_background();
        }
    }
}

fn now() -> i64 {
    crate::clock::now_nanos()
}

impl EntropyService {
    pub(crate) fn new(
        control: Arc<ControlLog>,
        storage: Arc<Storage>,
        config: &AntiEntropyConfig,
        max_shard_bytes: u64,
    ) -> Result<Arc<EntropyService>, ClientError> {
        let credentials = if !config.peer_token.is_empty() {
            Credentials::Token(config.peer_token.clone())
        } else if !config.peer_username.is_empty() {
            Credentials::Basic {
                user: config.peer_username.clone(),
                password: config.peer_password.clone(),
            }
        } else {
            Credentials::None
        };
        let options = ClientOptions {
            credentials,
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(60),
            ..ClientOptions::default()
        };
        let peers = config
            .peers
            .iter()
            .map(|url| {
                Ok(Peer {
                    url: url.trim_end_matches('/').to_owned(),
                    client: InfluxClient::new(url, options.clone())?,
                })
            })
            .collect::<Result<Vec<Peer>, ClientError>>()?;
        Ok(Arc::new(EntropyService {
            control,
            storage,
            config: config.clone(),
            peers,
            diverged: Mutex::new(BTreeMap::new()),
            max_shard_bytes,
            figures: EntropyFigures::default(),
            wake: tokio::sync::Notify::new(),
            runtime: Mutex::new(None),
        }))
    }

    fn settle(&self) -> i64 {
        (self.config.settle_seconds.max(0.0) * 1e9) as i64
    }

    pub(crate) fn peer_urls(&self) -> Vec<String> {
        self.peers.iter().map(|p| p.url.clone()).collect()
    }

    /// Starts the check and repair loops on a thread of their own (when enabled).
    pub(crate) fn start(self: &Arc<Self>) -> std::io::Result<()> {
        if !self.config.is_enabled() {
            return Ok(());
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(4)
            .thread_name("entropy")
            .enable_all()
            .build()?;
        let checks = self.clone();
        rt.spawn(async move { checks.check_loop().await });
        let repairs = self.clone();
        rt.spawn(async move { repairs.repair_loop().await });
        *self.runtime.lock().unwrap_or_else(|e| e.into_inner()) = Some(rt);
        tracing::info!(peers = ?self.peer_urls(), interval_seconds = self.config.check_interval_seconds, "anti-entropy started");
        Ok(())
    }

    // ---- what a peer asks of this node (blocking: call off the async workers) ----

    /// Every shard this node holds, with its root digest as of `settled_before` (dirty
    /// settled leaves recomputed first).
    pub(crate) fn local_shards(&self, settled_before: i64) -> Vec<ShardSummary> {
        let (infos, expiries) = self.catalog_shards();
        let mut out = Vec::with_capacity(infos.len());
        for info in infos {
            let Some(shard) = self.storage.shard(info.id) else {
                continue; // quarantined: not offered
            };
            if let Err(e) = shard.refresh_digests(settled_before) {
                tracing::warn!(shard = info.id, error = %e, "could not compute the shard's digests");
                continue;
            }
            out.push(ShardSummary {
                id: info.id,
                database: info.database.clone(),
                retention_policy: info.retention_policy.clone(),
                start: info.start,
                end: info.end,
                expires: expiries.get(&info.id).copied().unwrap_or(0),
                root: shard.digest_root(settled_before),
            });
        }
        out
    }

    /// Shards of the catalog, and when each expires (0: never).
    fn catalog_shards(&self) -> (Vec<ShardInfo>, HashMap<u64, i64>) {
        self.control.read_blocking(|c| {
            let infos: Vec<ShardInfo> = c.catalog.shards().collect();
            let expiries = infos
                .iter()
                .map(|s| {
                    let duration = c
                        .catalog
                        .databases
                        .get(&s.database)
                        .and_then(|d| d.policies.get(&s.retention_policy))
                        .map_or(0, |p| p.duration_nanos);
                    let expires = match duration {
                        0 => 0,
                        d => s.end.saturating_add(d),
                    };
                    (s.id, expires)
                })
                .collect();
            (infos, expiries)
        })
    }

    /// The children of the asked-for nodes of a shard's tree.
    pub(crate) fn local_digests(
        &self,
        req: &DigestRequest,
    ) -> Result<wire::DigestAnswer, EntropyError> {
        let shard = self
            .storage
            .shard(req.shard)
            .ok_or(EntropyError::NoShard(req.shard))?;
        shard.refresh_digests(req.settled_before)?;
        Ok(shard.digest_children(&req.nodes, req.settled_before))
    }

    /// The contents of the asked-for leaves of a shard.
    pub(crate) fn local_leaves(&self, req: &LeafRequest) -> Result<Leaves, EntropyError> {
        let shard = self
            .storage
            .shard(req.shard)
            .ok_or(EntropyError::NoShard(req.shard))?;
        let mut contents = Vec::with_capacity(req.leaves.len());
        for (m, positions) in &req.leaves {
            contents.push(shard.leaf_contents(m, positions)?);
        }
        Ok(Leaves {
            shard: req.shard,
            contents,
        })
    }

    /// The digests of the cells of the asked-for leaves of a shard.
    pub(crate) fn local_cells(&self, req: &LeafRequest) -> Result<CellDigests, EntropyError> {
        let shard = self
            .storage
            .shard(req.shard)
            .ok_or(EntropyError::NoShard(req.shard))?;
        let mut measurements = Vec::with_capacity(req.leaves.len());
        for (m, positions) in &req.leaves {
            measurements.push((m.clone(), shard.leaf_cells(m, positions)?));
        }
        Ok(CellDigests {
            shard: req.shard,
            measurements,
        })
    }

    /// A table of the keys of a shard's points in one stratum (see [`ibf`]).
    pub(crate) fn local_ibf(&self, req: &IbfRequest) -> Result<IbfAnswer, EntropyError> {
        let shard = self
            .storage
            .shard(req.shard)
            .ok_or(EntropyError::NoShard(req.shard))?;
        let mut ibf = Ibf::new(req.cells as usize);
        shard.visit_point_positions(&mut |position, hash| {
            let k = ibf::key_of(position);
            if Stratum::of(k) == req.stratum {
                ibf.insert(k, ibf::value_hash(hash));
            }
        })?;
        Ok(IbfAnswer {
            shard: req.shard,
            ibf,
        })
    }

    /// A peer's side of a reconciliation's exchange: applies the points it pushed, then
    /// answers the points asked for by key that are still here (a point the push
    /// overwrote with a newer value is not sent back).
    pub(crate) async fn answer_exchange(&self, x: Exchange) -> Result<Leaves, EntropyError> {
        let id = x.leaves.shard;
        let shard = self.storage.shard(id).ok_or(EntropyError::NoShard(id))?;
        // A position both sides hold with different values is pushed and asked for: the
        // pushed point, if it won here, is not sent back.
        let pushed: HashSet<(Arc<str>, Arc<str>, i64, u64)> = x
            .leaves
            .contents
            .iter()
            .flat_map(|c| &c.points)
            .map(|p| (p.series.clone(), p.field.clone(), p.time, p.version))
            .collect();
        if !x.leaves.contents.is_empty() {
            self.apply(x.leaves).await?;
        }
        let wanted: HashSet<u32> = x.wanted.into_iter().collect();
        let mut contents = match wanted.is_empty() {
            true => Vec::new(),
            false => {
                self.blocking(move || {
                    Ok(shard.points_where(&|position| wanted.contains(&ibf::key_of(position)))?)
                })
                .await?
            }
        };
        if !pushed.is_empty() {
            for c in &mut contents {
                c.points.retain(|p| {
                    let at = (p.series.clone(), p.field.clone(), p.time, p.version);
                    !pushed.contains(&at)
                });
            }
            contents.retain(|c| !c.points.is_empty());
        }
        Ok(Leaves {
            shard: id,
            contents,
        })
    }

    /// Applies leaves a peer pushed.
    pub(crate) async fn apply(&self, leaves: Leaves) -> Result<RepairApplied, EntropyError> {
        let applied = self
            .storage
            .apply_repair(leaves.shard, leaves.contents)
            .await?;
        self.figures
            .points_received
            .fetch_add(applied.points, Ordering::Relaxed);
        Ok(applied)
    }

    // ---- status and the queue ----

    /// This node's status: the shards found differing, the queue, what is under way.
    pub(crate) async fn local_status(&self) -> Status {
        let repairs = self.control.read(|c| c.repairs.clone()).await;
        let diverged = self
            .diverged
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let shards = diverged
            .values()
            .map(|d| StatusRow {
                id: d.info.id.to_string(),
                database: d.info.database.clone(),
                retention_policy: d.info.retention_policy.clone(),
                start_time: d.info.start.to_string(),
                end_time: d.info.end.to_string(),
                expires: d.expires.to_string(),
                status: "diff".into(),
            })
            .collect();
        Status {
            shards,
            queued_shards: repairs
                .queued
                .iter()
                .map(|q| q.shard_id.to_string())
                .collect(),
            processing_shards: repairs
                .processing
                .iter()
                .map(|q| q.shard_id.to_string())
                .collect(),
            recent_repairs: repairs
                .recent
                .iter()
                .rev()
                .map(|o| {
                    let f = o.finished.unwrap_or_default();
                    serde_json::json!({
                        "id": o.shard_id.to_string(),
                        "outcome": o.outcome,
                        "at": o.at_unix_nanos.to_string(),
                        "points_received": f.points_received.to_string(),
                        "points_sent": f.points_sent.to_string(),
                        "tombstones": f.tombstones.to_string(),
                        "bytes": f.bytes.to_string(),
                        "leaves": f.leaves.to_string(),
                        "duration_ns": f.duration_nanos.to_string(),
                        "fetched_whole": f.fetched_whole,
                        "reason": o.reason,
                    })
                })
                .collect(),
        }
    }

    /// The status of this node merged with every peer's (each asked for its local one);
    /// a peer that does not answer is left out.
    pub(crate) async fn cluster_status(&self) -> Status {
        let mut status = self.local_status().await;
        for peer in &self.peers {
            let path = "/shard-repair/status";
            let request = peer
                .client
                .request(Method::GET, path)
                .query(&[("local", "true")]);
            let answer = async {
                let response = peer.client.send(path, request).await.ok()?;
                let bytes = response.bytes().await.ok()?;
                serde_json::from_slice::<Status>(&bytes).ok()
            }
            .await;
            let Some(theirs) = answer else {
                tracing::warn!(peer = %peer.url, "a peer did not report its anti-entropy status");
                continue;
            };
            status.shards.extend(theirs.shards);
            status.queued_shards.extend(theirs.queued_shards);
            status.processing_shards.extend(theirs.processing_shards);
        }
        status.shards.sort();
        status.shards.dedup();
        for list in [&mut status.queued_shards, &mut status.processing_shards] {
            let set: BTreeSet<u64> = list.iter().filter_map(|s| s.parse().ok()).collect();
            *list = set.into_iter().map(|s| s.to_string()).collect();
        }
        status
    }

    /// Queues a repair of `shard` on this node.
    pub(crate) async fn queue_repair(&self, shard: u64) -> Result<(), EntropyError> {
        self.control
            .mutate(|c| {
                Ok::<_, ProjectionError>((c.repairs.queue(shard, repairs::BY_OPERATOR), ()))
            })
            .await?;
        self.wake.notify_one();
        Ok(())
    }

    /// Takes `shard` out of the queue (and stops its repair) here, and on every peer
    /// unless `local`.
    pub(crate) async fn cancel_repair(&self, shard: u64, local: bool) -> Result<(), EntropyError> {
        self.control
            .mutate(|c| Ok::<_, ProjectionError>((c.repairs.cancel(shard), ())))
            .await?;
        self.wake.notify_one();
        if !local {
            for peer in &self.peers {
                let path = "/shard-repair/cancel-repair";
                let id = shard.to_string();
                let request = peer
                    .client
                    .request(Method::POST, path)
                    .query(&[("id", id.as_str()), ("local", "true")]);
                if let Err(e) = peer.client.send(path, request).await {
                    tracing::warn!(peer = %peer.url, error = %e, "could not cancel the repair on a peer");
                }
            }
        }
        Ok(())
    }

    // ---- talking to peers ----

    async fn post(&self, peer: &Peer, path: &str, body: Vec<u8>) -> Result<Vec<u8>, EntropyError> {
        let sent = body.len() as u64;
        let request = peer
            .client
            .request(Method::POST, path)
            .header("Content-Type", wire::CONTENT_TYPE)
            .body(body);
        self.exchange(peer, path, request, sent).await
    }

    /// Posts `body` to `peer` and decodes its answer with `decode`.
    async fn ask<T>(
        &self,
        peer: &Peer,
        path: &str,
        body: Vec<u8>,
        decode: fn(&[u8]) -> Result<T, wire::WireError>,
    ) -> Result<T, EntropyError> {
        let answer = self.post(peer, path, body).await?;
        decode(&answer).map_err(|source| EntropyError::Wire {
            peer: peer.url.clone(),
            source,
        })
    }

    /// Sends `request` to `peer` and reads its answer, counting the bytes both ways
    /// (`sent` of them in the request).
    async fn exchange(
        &self,
        peer: &Peer,
        path: &str,
        request: crate::client::RequestBuilder,
        sent: u64,
    ) -> Result<Vec<u8>, EntropyError> {
        let peer_err = |source| EntropyError::Peer {
            peer: peer.url.clone(),
            source,
        };
        let response = peer.client.send(path, request).await.map_err(peer_err)?;
        let url = format!("{}{path}", peer.url);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| peer_err(ClientError::transport(&url, e)))?;
        count_bytes(&self.figures.bytes_exchanged, sent + bytes.len() as u64);
        Ok(bytes.to_vec())
    }

    async fn peer_shards(
        &self,
        peer: &Peer,
        settled_before: i64,
    ) -> Result<Vec<ShardSummary>, EntropyError> {
        let path = "/shard-repair/peer/shards";
        let settled = settled_before.to_string();
        let request = peer
            .client
            .request(Method::GET, path)
            .query(&[("settled_before", settled.as_str())]);
        let bytes = self.exchange(peer, path, request, 0).await?;
        wire::decode_shards(&bytes).map_err(|source| EntropyError::Wire {
            peer: peer.url.clone(),
            source,
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, EntropyError> + Send + 'static,
    ) -> Result<T, EntropyError> {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| EntropyError::Other(format!("a digest task failed: {e}")))?
    }

    /// The leaves of `shard` that differ from `peer`'s (settled on both sides), by
    /// measurement: roots first, then only the children of nodes that differ.
    async fn differing_leaves(
        self: &Arc<Self>,
        peer: &Peer,
        shard: &Arc<Shard>,
        settled_before: i64,
    ) -> Result<LeafSet, EntropyError> {
        Ok(self
            .differing_leaves_counted(peer, shard, settled_before)
            .await?
            .0)
    }

    /// [`Self::differing_leaves`], and how many differing leaves were passed over for not
    /// being settled on one side or the other.
    async fn differing_leaves_counted(
        self: &Arc<Self>,
        peer: &Peer,
        shard: &Arc<Shard>,
        settled_before: i64,
    ) -> Result<(LeafSet, usize), EntropyError> {
        let mut unsettled = 0;
        let mut frontier: Vec<(Option<String>, Prefix)> = vec![(None, Prefix::ROOT)];
        let mut leaves: BTreeMap<String, LeafCells> = BTreeMap::new();
        {
            let shard = shard.clone();
            self.blocking(move || Ok(shard.refresh_digests(settled_before)?))
                .await?;
        }
        while !frontier.is_empty() {
            let mut next = Vec::new();
            for chunk in frontier.chunks(NODES_PER_REQUEST) {
                let req = DigestRequest {
                    shard: shard.info.id,
                    settled_before,
                    nodes: chunk.to_vec(),
                };
                let body = wire::encode_digest_request(&req);
                let theirs = self
                    .ask(
                        peer,
                        "/shard-repair/peer/digests",
                        body,
                        wire::decode_digest_answer,
                    )
                    .await?;
                if theirs.len() != chunk.len() {
                    return Err(EntropyError::Other(format!(
                        "peer {} answered {} nodes for {}",
                        peer.url,
                        theirs.len(),
                        chunk.len()
                    )));
                }
                let ours = shard.digest_children(chunk, settled_before);
                self.figures
                    .nodes_compared
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                for (((m, node), ours), theirs) in chunk.iter().zip(ours).zip(theirs) {
                    let mut both: BTreeMap<DigestChild, (NodeDigest, NodeDigest)> = BTreeMap::new();
                    for (c, d) in ours {
                        both.entry(c).or_default().0 = d;
                    }
                    for (c, d) in theirs {
                        both.entry(c).or_default().1 = d;
                    }
                    for (child, (a, b)) in both {
                        if a.digest.folded() == b.digest.folded() {
                            // Alike as far as settled: what is still settling is compared
                            // later.
                            if a.unsettled || b.unsettled {
                                unsettled += 1;
                            }
                            continue;
                        }
                        match (m, child) {
                            (None, DigestChild::Measurement(name)) => {
                                next.push((Some(name), Prefix::ROOT));
                            }
                            (Some(m), DigestChild::Nibble(n)) => {
                                let c = node.child(n);
                                if c.bits < POSITION_BITS {
                                    next.push((Some(m.clone()), c));
                                } else if !a.unsettled && !b.unsettled {
                                    // The whole leaf: its cells are compared by a repair.
                                    leaves
                                        .entry(m.clone())
                                        .or_default()
                                        .insert(c.prefix, BTreeSet::new());
                                } else {
                                    unsettled += 1;
                                }
                            }
                            _ => {} // a child of the wrong kind: a confused peer
                        }
                    }
                }
            }
            frontier = next;
        }
        Ok((leaves.into_iter().collect(), unsettled))
    }

    /// Set reconciliation of a shard's points with `peer` ([`ibf`]): the sample stratum's
    /// tables first, whose difference sizes the rest's, then one exchange of the points
    /// each side lacks. Returns false when a table would not peel: the tree walk that
    /// follows every reconciliation, with full-width digests, finds what is left either
    /// way (deletes too, which tables of points do not carry).
    async fn reconcile(
        self: &Arc<Self>,
        peer: &Peer,
        shard: &Arc<Shard>,
        f: &mut RepairFinished,
    ) -> Result<bool, EntropyError> {
        let id = shard.info.id;
        let points: Arc<Vec<(u32, u16)>> = {
            let shard = shard.clone();
            Arc::new(
                self.blocking(move || {
                    let mut points = Vec::new();
                    shard.visit_point_positions(&mut |position, hash| {
                        points.push((ibf::key_of(position), ibf::value_hash(hash)))
                    })?;
                    Ok(points)
                })
                .await?,
            )
        };
        let mut ours_only: Vec<u32> = Vec::new();
        let mut theirs_only: Vec<u32> = Vec::new();
        let mut changed: Vec<u32> = Vec::new();
        for stratum in [Stratum::Sample, Stratum::Rest] {
            let mut cells = match stratum {
                Stratum::Sample => SAMPLE_CELLS,
                // Some 1.5 cells per difference, estimated from the sample's.
                Stratum::Rest => {
                    let found = ours_only.len() + theirs_only.len() + changed.len();
                    found * (ibf::SAMPLE as usize - 1) * 3 / 2 + 30
                }
            };
            let mut attempt = 0;
            let decoded = loop {
                let mut table = Ibf::new(cells);
                let req = IbfRequest {
                    shard: id,
                    stratum,
                    cells: table.cells.len() as u64,
                };
                let theirs = self
                    .ask(
                        peer,
                        "/shard-repair/peer/ibf",
                        wire::encode_ibf_request(&req),
                        wire::decode_ibf,
                    )
                    .await?;
                same_shard(peer, "table", id, theirs.shard)?;
                let points = points.clone();
                let decoded = self
                    .blocking(move || {
                        for &(k, value) in points.iter() {
                            if Stratum::of(k) == stratum {
                                table.insert(k, value);
                            }
                        }
                        table.subtract(&theirs.ibf).map_err(EntropyError::Other)?;
                        Ok(table.decode())
                    })
                    .await?;
                match decoded {
                    Some(d) => break d,
                    None if attempt + 1 < TABLE_ATTEMPTS => {
                        attempt += 1;
                        cells *= 3;
                    }
                    None => {
                        tracing::info!(shard = id, peer = %peer.url, "anti-entropy: the difference did not peel; the tree walk takes over");
                        return Ok(false);
                    }
                }
            };
            ours_only.extend(decoded.ours);
            theirs_only.extend(decoded.theirs);
            changed.extend(decoded.changed);
        }
        if ours_only.is_empty() && theirs_only.is_empty() && changed.is_empty() {
            return Ok(true);
        }
        // A position both hold with different values: this side's point is pushed and the
        // peer's asked for; the peer sends its own back only if it is the newer (last
        // write wins there first).
        let pushed: HashSet<u32> = ours_only
            .into_iter()
            .chain(changed.iter().copied())
            .collect();
        theirs_only.extend(changed);
        let contents = {
            let shard = shard.clone();
            self.blocking(move || {
                Ok(shard.points_where(&|position| pushed.contains(&ibf::key_of(position)))?)
            })
            .await?
        };
        f.points_sent += contents.iter().map(|c| c.points.len() as u64).sum::<u64>();
        let x = Exchange {
            wanted: theirs_only,
            leaves: Leaves {
                shard: id,
                contents,
            },
        };
        let leaves = self
            .ask(
                peer,
                "/shard-repair/peer/exchange",
                wire::encode_exchange(&x),
                wire::decode_leaves,
            )
            .await?;
        same_shard(peer, "points", id, leaves.shard)?;
        if !leaves.contents.is_empty() {
            let applied = self.apply(leaves).await?;
            f.points_received += applied.points;
        }
        Ok(true)
    }

    /// Of differing leaves, the cells that differ from `peer`'s: its cell digests against
    /// this node's. A leaf whose cells all compare alike (changed since, or a chance of
    /// 2^-64) is taken whole.
    async fn differing_cells(
        self: &Arc<Self>,
        peer: &Peer,
        shard: &Arc<Shard>,
        leaves: LeafSet,
    ) -> Result<LeafSet, EntropyError> {
        let req = LeafRequest {
            shard: shard.info.id,
            leaves,
        };
        let theirs = self
            .ask(
                peer,
                "/shard-repair/peer/cells",
                wire::encode_leaf_request(&req),
                wire::decode_cells,
            )
            .await?;
        same_shard(peer, "cells", shard.info.id, theirs.shard)?;
        let me = self.clone();
        let (id, asked) = (shard.info.id, req.clone());
        let ours = self
            .blocking(move || {
                me.local_cells(&LeafRequest {
                    shard: id,
                    leaves: asked.leaves,
                })
            })
            .await?;
        let theirs: HashMap<String, LeafCellDigests> = theirs.measurements.into_iter().collect();
        let ours: HashMap<String, LeafCellDigests> = ours.measurements.into_iter().collect();
        let none = BTreeMap::new();
        let mut out = LeafSet::new();
        for (m, positions) in req.leaves {
            let mut chosen = LeafCells::new();
            for pos in positions.into_keys() {
                let a = ours.get(&m).and_then(|l| l.get(&pos)).unwrap_or(&none);
                let b = theirs.get(&m).and_then(|l| l.get(&pos)).unwrap_or(&none);
                // No cell listed: the whole leaf.
                chosen.insert(pos, differing_cells(a, b));
            }
            out.push((m, chosen));
        }
        Ok(out)
    }

    /// Fetches shard `info` whole from the first peer that serves it, as a backup archive
    /// streamed into a restore: unpacked into a staging directory and verified, then
    /// swapped in only once whole. A shard the catalog knows (`known`: held quarantined,
    /// or created here by a write since it was found missing) is merged with what it
    /// holds; one it does not know becomes known in the same step as its files are
    /// swapped in ([`Self::adopt_fetched`]), so no query or listing ever sees it empty.
    async fn fetch_whole(&self, info: &ShardInfo, known: bool) -> Result<u64, EntropyError> {
        let mut last = None;
        for peer in &self.peers {
            match self.fetch_whole_from(peer, info, known).await {
                Ok(bytes) => {
                    tracing::info!(shard = info.id, peer = %peer.url, bytes, "anti-entropy: shard fetched whole from a peer");
                    return Ok(bytes);
                }
                Err(e) => {
                    tracing::warn!(shard = info.id, peer = %peer.url, error = %e, "anti-entropy: could not fetch the shard whole");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or(EntropyError::NoShard(info.id)))
    }

    async fn fetch_whole_from(
        &self,
        peer: &Peer,
        info: &ShardInfo,
        known: bool,
    ) -> Result<u64, EntropyError> {
        let path = format!("/api/v2/backup/shards/{}", info.id);
        let peer_err = |source| EntropyError::Peer {
            peer: peer.url.clone(),
            source,
        };
        let request = peer.client.request(Method::GET, &path);
        let mut response = peer.client.send(&path, request).await.map_err(peer_err)?;
        // The archive flows through a bounded channel into the restore's reader: memory
        // stays bounded whatever the shard's size.
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let (storage, shard, limit) = (self.storage.clone(), info.clone(), self.max_shard_bytes);
        let staging = storage
            .shards_dir()
            .join(format!(".restore-{}-entropy", info.id));
        let staged_at = staging.clone();
        let restore = tokio::task::spawn_blocking(move || {
            let body = crate::backup::service::ChannelReader::new(rx);
            match known {
                true => restore::restore_shard(&storage, &shard, &[], body, &staged_at, limit),
                // Staged only: swapped in once the catalog can learn of it in the same step.
                false => restore::stage_shard(&storage, &shard, &[], body, &staged_at, limit)
                    .map(|staged| staged.received),
            }
        });
        let url = format!("{}{path}", peer.url);
        let mut received = 0u64;
        let mut cut = None;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    received += chunk.len() as u64;
                    if tx.send(Ok(chunk)).await.is_err() {
                        break; // the restore stopped reading: its error says why
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx
                        .send(Err(std::io::Error::other(format!("{url}: {e}"))))
                        .await;
                    cut = Some(peer_err(ClientError::transport(&url, e)));
                    break;
                }
            }
        }
        drop(tx);
        count_bytes(&self.figures.bytes_exchanged, received);
        let restored = restore
            .await
            .map_err(|e| EntropyError::Other(format!("a restore task failed: {e}")));
        let restored = match restored {
            Ok(Ok(_)) if !known => self.adopt_fetched(info, &staging).await,
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(match cut {
                // Cut short by the network: worth trying again.
                Some(e) => e,
                None => EntropyError::Other(format!(
                    "peer {}: shard {}'s archive: {e}",
                    peer.url, info.id
                )),
            }),
            Err(e) => Err(e),
        };
        if !known {
            let (storage, staging) = (self.storage.clone(), staging);
            let _ = self
                .blocking(move || {
                    restore::discard_staging(&storage, &staging);
                    Ok(())
                })
                .await;
        }
        restored.map(|()| received)
    }

    /// Makes the verified copy of a shard the catalog did not know (staged in `staging`)
    /// visible: in one control-log mutation the catalog learns of the shard and its files
    /// are swapped into place, durably, before the event is appended. A crash before the
    /// event is durable leaves a directory the catalog does not know, which the next start
    /// removes; the repair, still under way in the control log, then fetches again. A
    /// shard created here meanwhile (a write into its time range) is merged with instead,
    /// as a restore merges: both copies' points stay, last write wins by version.
    async fn adopt_fetched(
        &self,
        info: &ShardInfo,
        staging: &std::path::Path,
    ) -> Result<(), EntropyError> {
        let storage = self.storage.clone();
        let swapped = std::sync::atomic::AtomicBool::new(false);
        let adopted = self
            .control
            .mutate(|c| {
                if let Some(known) = c.catalog.shards().find(|s| s.id == info.id) {
                    return Ok::<_, EntropyError>((Vec::new(), Some(known)));
                }
                if !c.catalog.has_policy(&info.database, &info.retention_policy) {
                    return Err(EntropyError::Other(format!(
                        "shard {}: database {:?} or its policy {:?} is gone",
                        info.id, info.database, info.retention_policy
                    )));
                }
                let events = c
                    .catalog
                    .create_shards(std::slice::from_ref(info))
                    .map_err(StorageError::from)?;
                let created = events
                    .iter()
                    .find_map(|e| match &e.kind {
                        Some(event::Kind::ShardCreated(sc)) => Some(ShardInfo {
                            incarnation: sc.incarnation,
                            ..info.clone()
                        }),
                        _ => None,
                    })
                    .ok_or_else(|| {
                        EntropyError::Other(format!("shard {}: not created", info.id))
                    })?;
                let fs = storage.fs().clone();
                storage.replace_shard(created, |current| {
                    restore::merge_and_check(&*fs, staging, current)?;
                    Ok::<_, BackupError>(staging.to_owned())
                })?;
                swapped.store(true, Ordering::Relaxed);
                Ok((events, None))
            })
            .await;
        match adopted {
            Ok(None) => Ok(()),
            Ok(Some(known)) => {
                let (storage, staging) = (self.storage.clone(), staging.to_owned());
                self.blocking(move || Ok(restore::swap_staged(&storage, &known, &staging)?))
                    .await
            }
            Err(e) => {
                if swapped.load(Ordering::Relaxed) {
                    // Swapped in, but the catalog did not learn of it: closed again, its
                    // directory removed by the next start.
                    self.storage.close_unlisted(info.id);
                }
                Err(e)
            }
        }
    }

    /// Creates here, empty, a shard a peer holds whose whole copy could not be fetched
    /// (a peer refusing the archive as too large, say): the leaf repair fills it.
    async fn create_empty(&self, info: &ShardInfo) -> Result<(), EntropyError> {
        let storage = self.storage.clone();
        self.control
            .mutate(|c| {
                if c.catalog.shards().any(|k| k.id == info.id) {
                    return Ok::<_, EntropyError>((Vec::new(), ()));
                }
                let events = c
                    .catalog
                    .create_shards(std::slice::from_ref(info))
                    .map_err(StorageError::from)?;
                storage.create_shard_dirs(&c.catalog, &events)?;
                Ok((events, ()))
            })
            .await
    }

    // ---- checks ----

    async fn check_loop(self: Arc<Self>) {
        let every = Duration::from_secs_f64(self.config.check_interval_seconds.max(0.05));
        loop {
            tokio::time::sleep(every).await;
            let started = std::time::Instant::now();
            if let Err(e) = self.check_once().await {
                self.figures.check_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "anti-entropy check failed");
            }
            self.figures
                .last_check_nanos
                .store(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
    }

    /// Compares every shard with every peer once; records which differ, and queues the
    /// repair of shards a peer holds that this node lacks (`auto_repair_missing`).
    pub(crate) async fn check_once(self: &Arc<Self>) -> Result<(), EntropyError> {
        self.figures.checks.fetch_add(1, Ordering::Relaxed);
        let settled_before = now() - self.settle();
        let me = self.clone();
        let local = self
            .blocking(move || Ok(me.local_shards(settled_before)))
            .await?;
        let local_by_id: HashMap<u64, ShardSummary> =
            local.iter().map(|s| (s.id, s.clone())).collect();
        let mut found: BTreeMap<u64, BTreeMap<String, usize>> = BTreeMap::new();
        let mut checked: BTreeSet<u64> = BTreeSet::new();
        for peer in &self.peers {
            let theirs = match self.peer_shards(peer, settled_before).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(peer = %peer.url, error = %e, "anti-entropy: peer unreachable");
                    continue;
                }
            };
            let mut to_compare = Vec::new();
            for s in &theirs {
                match local_by_id.get(&s.id) {
                    Some(mine) => {
                        self.figures
                            .digests_compared
                            .fetch_add(1, Ordering::Relaxed);
                        checked.insert(s.id);
                        if mine.root.digest.folded() != s.root.digest.folded() {
                            to_compare.push(s.id);
                        }
                    }
                    // Only once the peer's copy has settled: replicas written at nearly
                    // the same time would otherwise fetch whole shards from each other.
                    None if self.config.auto_repair_missing && !s.root.unsettled => {
                        if let Err(e) = self.adopt_missing(s).await {
                            tracing::warn!(shard = s.id, error = %e, "could not create a shard a peer holds");
                        }
                    }
                    None => {}
                }
            }
            use futures_util::stream::{self, StreamExt};
            let results: Vec<(u64, Result<LeafSet, EntropyError>)> = stream::iter(to_compare)
                .map(|id| {
                    let me = self.clone();
                    async move {
                        let r = match me.storage.shard(id) {
                            Some(shard) => me.differing_leaves(peer, &shard, settled_before).await,
                            None => Ok(Vec::new()),
                        };
                        (id, r)
                    }
                })
                .buffer_unordered(self.config.max_fetch.max(1))
                .collect()
                .await;
            for (id, r) in results {
                match r {
                    Ok(leaves) => {
                        let n: usize = leaves.iter().map(|(_, p)| p.len()).sum();
                        if n > 0 {
                            self.figures
                                .leaves_differing
                                .fetch_add(n as u64, Ordering::Relaxed);
                            found.entry(id).or_default().insert(peer.url.clone(), n);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(shard = id, peer = %peer.url, error = %e, "anti-entropy: comparison failed");
                        checked.remove(&id);
                    }
                }
            }
        }
        {
            let mut diverged = self.diverged.lock().unwrap_or_else(|e| e.into_inner());
            // Shards compared this time take their new status; others keep theirs.
            diverged.retain(|id, _| !checked.contains(id) || found.contains_key(id));
            for (id, peers) in found {
                let Some(s) = local_by_id.get(&id) else {
                    continue;
                };
                let entry = diverged.entry(id).or_insert_with(|| Divergence {
                    info: ShardInfo {
                        id,
                        incarnation: 0,
                        database: s.database.clone(),
                        retention_policy: s.retention_policy.clone(),
                        start: s.start,
                        end: s.end,
                    },
                    expires: s.expires,
                    peers: BTreeMap::new(),
                });
                entry.peers = peers;
            }
        }
        // The digests recomputed are kept for a restart.
        let storage = self.storage.clone();
        self.blocking(move || {
            for shard in storage.shards() {
                if shard.digests_changed_since_persisted() {
                    let _ = shard.persist_digests();
                }
            }
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// Queues the fetch of a shard a peer holds and this node lacks, if its database and
    /// policy exist here (the catalog learns of the shard only once its verified copy is
    /// swapped in), or the repair of a shard held quarantined as damaged.
    async fn adopt_missing(&self, s: &ShardSummary) -> Result<(), EntropyError> {
        let info = ShardInfo {
            id: s.id,
            incarnation: 0,
            database: s.database.clone(),
            retention_policy: s.retention_policy.clone(),
            start: s.start,
            end: s.end,
        };
        let storage = self.storage.clone();
        let queued = self
            .control
            .mutate(|c| {
                if !c.catalog.has_policy(&info.database, &info.retention_policy) {
                    return Ok::<_, EntropyError>((Vec::new(), false));
                }
                let events = if c.catalog.shards().any(|k| k.id == info.id) {
                    // Known, yet not offered here: quarantined as damaged (or dropped in
                    // the meantime). A damaged shard is fetched whole from the peers.
                    let damaged = storage.quarantined().iter().any(|q| q.info.id == info.id);
                    match damaged && !c.repairs.is_processing(info.id) {
                        true => c.repairs.queue(info.id, repairs::DAMAGED),
                        false => Vec::new(),
                    }
                } else {
                    c.repairs.queue_missing(&info)
                };
                let queued = !events.is_empty();
                Ok((events, queued))
            })
            .await?;
        if queued {
            tracing::info!(shard = s.id, database = %s.database, "anti-entropy: a peer holds a shard this node lacks or holds damaged; repair queued");
            self.wake.notify_one();
        }
        Ok(())
    }

    // ---- repairs ----

    async fn repair_loop(self: Arc<Self>) {
        let mut running: tokio::task::JoinSet<()> = tokio::task::JoinSet::new();
        let active: Arc<Mutex<BTreeSet<u64>>> = Arc::default();
        loop {
            let state = self.control.read(|c| c.repairs.clone()).await;
            // Under way before a restart first (taken up again), then the queue in order.
            let candidates: Vec<u64> = state
                .processing
                .iter()
                .chain(state.queued.iter())
                .map(|q| q.shard_id)
                .collect();
            for id in candidates {
                if running.len() >= self.config.max_sync.max(1) {
                    break;
                }
                if !active.lock().unwrap_or_else(|e| e.into_inner()).insert(id) {
                    continue;
                }
                let me = self.clone();
                let done = active.clone();
                running.spawn(async move {
                    me.run_repair(id).await;
                    done.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                    me.wake.notify_one();
                });
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    async fn still_wanted(&self, id: u64) -> bool {
        self.control.read(|c| c.repairs.is_processing(id)).await
    }

    async fn run_repair(self: &Arc<Self>, id: u64) {
        let begun = std::time::Instant::now();
        let started = self
            .control
            .mutate(|c| {
                let events = match c.repairs.is_processing(id) || c.repairs.is_queued(id) {
                    true if !c.repairs.is_processing(id) => vec![repairs::started(id)],
                    true => Vec::new(),
                    false => return Ok::<_, ProjectionError>((Vec::new(), false)),
                };
                Ok((events, true))
            })
            .await;
        match started {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(shard = id, error = %e, "could not start a repair");
                return;
            }
        }
        tracing::info!(shard = id, "anti-entropy: repair started");
        // A peer out of reach (a partition, a restart) is waited for, with back-off: the
        // repair goes again from the start once it answers (leaves applied twice change
        // nothing), unless cancelled meanwhile.
        let mut backoff = Duration::from_millis(250);
        let mut outcome = self.repair(id).await;
        for _ in 1..REPAIR_ATTEMPTS {
            match &outcome {
                Err(e) if e.is_transient() && self.still_wanted(id).await => {
                    tracing::info!(shard = id, error = %e, retry_in = ?backoff, "anti-entropy: repair interrupted; trying again");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    outcome = self.repair(id).await;
                }
                _ => break,
            }
        }
        let event = match outcome {
            Ok(mut f) => {
                f.duration_nanos = begun.elapsed().as_nanos() as i64;
                self.figures
                    .repairs_finished
                    .fetch_add(1, Ordering::Relaxed);
                self.figures
                    .bytes_repaired
                    .fetch_add(f.bytes, Ordering::Relaxed);
                tracing::info!(
                    shard = id,
                    points_received = f.points_received,
                    points_sent = f.points_sent,
                    bytes = f.bytes,
                    leaves = f.leaves,
                    "anti-entropy: repair finished"
                );
                self.diverged
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                Some(repairs::finished(f))
            }
            Err(EntropyError::Cancelled(_)) => {
                self.figures
                    .repairs_cancelled
                    .fetch_add(1, Ordering::Relaxed);
                tracing::info!(shard = id, "anti-entropy: repair cancelled");
                None
            }
            Err(e) => {
                self.figures.repairs_failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(shard = id, error = %e, "anti-entropy: repair failed");
                Some(repairs::failed(id, e.to_string()))
            }
        };
        if let Some(event) = event {
            let recorded = self
                .control
                .mutate(|c| {
                    // Cancelled meanwhile: its cancellation is the record.
                    let events = match c.repairs.is_processing(id) {
                        true => vec![event],
                        false => Vec::new(),
                    };
                    Ok::<_, ProjectionError>((events, ()))
                })
                .await;
            if let Err(e) = recorded {
                tracing::warn!(shard = id, error = %e, "could not record a repair's outcome");
            }
        }
    }

    /// Repairs shard `id` with every peer: pulls the leaves that differ from each, then
    /// pushes its own contents of every leaf that differed from any of them.
    async fn repair(self: &Arc<Self>, id: u64) -> Result<RepairFinished, EntropyError> {
        let bytes = Arc::new(AtomicU64::new(0));
        let mut f = REPAIR_BYTES
            .scope(bytes.clone(), self.repair_counted(id))
            .await?;
        f.bytes = bytes.load(Ordering::Relaxed);
        Ok(f)
    }

    /// [`Self::repair`], its bytes counted by the caller.
    async fn repair_counted(self: &Arc<Self>, id: u64) -> Result<RepairFinished, EntropyError> {
        let mut f = RepairFinished {
            shard_id: id,
            ..RepairFinished::default()
        };
        let (known, missing, reason) = self
            .control
            .read(|c| {
                let known = c.catalog.shards().find(|s| s.id == id);
                let reason = c
                    .repairs
                    .processing
                    .iter()
                    .find(|q| q.shard_id == id)
                    .map(|q| q.reason.clone());
                (known, c.repairs.missing_shard(id), reason)
            })
            .await;
        let in_catalog = known.is_some();
        let info = known.or(missing).ok_or(EntropyError::NoShard(id))?;
        let quarantined = self.storage.quarantined().iter().any(|q| q.info.id == id);
        // A shard this node lacks, or holds damaged: first the whole of it from a peer,
        // visible only once verified; the leaf repair below brings what the peers took
        // since (and what this node holds that they lack).
        if quarantined || reason.as_deref() == Some(repairs::MISSING) {
            if !self.still_wanted(id).await {
                return Err(EntropyError::Cancelled(id));
            }
            match self.fetch_whole(&info, in_catalog).await {
                Ok(_) => f.fetched_whole = true,
                // Not to be had whole (a peer refusing the archive as too large, say): the
                // shard is created here, and the leaf repair fills it.
                Err(e) if !quarantined && !e.is_transient() => {
                    tracing::warn!(shard = id, error = %e, "anti-entropy: the shard could not be fetched whole; filled by leaves instead");
                    self.create_empty(&info).await?;
                }
                Err(e) => return Err(e),
            }
        }
        let shard = match self.storage.shard(id) {
            Some(s) => s,
            None => return Err(EntropyError::NoShard(id)),
        };
        // Leaves still settling on either side are passed over; if any were, the repair
        // goes again once they have settled (a few times at most: a shard written to
        // without pause always has some).
        for attempt in 0..REPAIR_ROUNDS {
            let skipped = self.repair_round(id, &shard, &mut f).await?;
            if skipped == 0 || attempt + 1 == REPAIR_ROUNDS {
                break;
            }
            tokio::time::sleep(
                Duration::from_secs_f64(self.config.settle_seconds.max(0.0))
                    + Duration::from_millis(100),
            )
            .await;
        }
        self.figures
            .points_sent
            .fetch_add(f.points_sent, Ordering::Relaxed);
        Ok(f)
    }

    /// One pull-then-push round of a repair; returns how many differing leaves it passed
    /// over as not settled.
    async fn repair_round(
        self: &Arc<Self>,
        id: u64,
        shard: &Arc<Shard>,
        f: &mut RepairFinished,
    ) -> Result<usize, EntropyError> {
        let settled_before = now() - self.settle();
        let mut reached = 0;
        let mut skipped = 0;
        let mut last_error = None;
        let mut found: BTreeMap<String, LeafCells> = BTreeMap::new();
        let mut pulled_from: Vec<&Peer> = Vec::new();
        // First the points, by set reconciliation with each peer (the first peers again
        // after the last, so that each gets what a later one brought); then the tree walk
        // below finds what is left (deletes, a difference that did not peel) or that
        // nothing is.
        let again = self.peers.len().saturating_sub(1);
        for peer in self.peers.iter().chain(self.peers.iter().take(again)) {
            if !self.still_wanted(id).await {
                return Err(EntropyError::Cancelled(id));
            }
            if let Err(e) = self.reconcile(peer, shard, f).await {
                tracing::warn!(shard = id, peer = %peer.url, error = %e, "repair: reconciliation failed; the tree walk takes over");
            }
        }
        // Pull: this node ends with every peer's points (last write wins).
        for peer in &self.peers {
            let leaves = match self
                .differing_leaves_counted(peer, shard, settled_before)
                .await
            {
                Ok((l, unsettled)) => {
                    skipped += unsettled;
                    l
                }
                Err(e) => {
                    tracing::warn!(shard = id, peer = %peer.url, error = %e, "repair: peer unreachable");
                    last_error = Some(e);
                    continue;
                }
            };
            reached += 1;
            pulled_from.push(peer);
            f.leaves += leaves.iter().map(|(_, p)| p.len() as u64).sum::<u64>();
            for batch in batches(leaves) {
                if !self.still_wanted(id).await {
                    return Err(EntropyError::Cancelled(id));
                }
                let cells = self.differing_cells(peer, shard, batch).await?;
                for (m, chosen) in &cells {
                    merge_cells(found.entry(m.clone()).or_default(), chosen);
                }
                let req = LeafRequest {
                    shard: id,
                    leaves: cells,
                };
                let leaves = self
                    .ask(
                        peer,
                        "/shard-repair/peer/leaves",
                        wire::encode_leaf_request(&req),
                        wire::decode_leaves,
                    )
                    .await?;
                same_shard(peer, "leaves", id, leaves.shard)?;
                let applied = self.apply(leaves).await?;
                f.points_received += applied.points;
                f.tombstones += applied.tombstones;
            }
        }
        if reached == 0 {
            if let Some(e) = last_error {
                return Err(e);
            }
        }
        // Push: each peer gets this node's contents of every cell that differed from any
        // peer (only those can differ now: no second descent of the trees).
        let found: LeafSet = found.into_iter().collect();
        for batch in batches(found) {
            if !self.still_wanted(id).await {
                return Err(EntropyError::Cancelled(id));
            }
            let req = LeafRequest {
                shard: id,
                leaves: batch,
            };
            let me = self.clone();
            let contents = self.blocking(move || me.local_leaves(&req)).await?;
            let points = contents
                .contents
                .iter()
                .map(|c| c.points.len() as u64)
                .sum::<u64>();
            let body = wire::encode_leaves(&contents);
            for peer in &pulled_from {
                f.points_sent += points;
                self.post(peer, "/shard-repair/peer/apply", body.clone())
                    .await?;
            }
        }
        if let Some(e) = last_error {
            // A peer missed: the repair is incomplete, and says so (it may be run again).
            return Err(e);
        }
        Ok(skipped)
    }
}

/// Leaves (or cells of them) by measurement.
type LeafSet = Vec<(String, LeafCells)>;

/// Leaves in requests of at most [`LEAVES_PER_REQUEST`].
fn batches(leaves: LeafSet) -> Vec<LeafSet> {
    let mut out: Vec<LeafSet> = Vec::new();
    let mut current: LeafSet = Vec::new();
    let mut n = 0;
    for (m, positions) in leaves {
        let mut part = LeafCells::new();
        for (p, cells) in positions {
            part.insert(p, cells);
            n += 1;
            if n == LEAVES_PER_REQUEST {
                current.push((m.clone(), std::mem::take(&mut part)));
                out.push(std::mem::take(&mut current));
                n = 0;
            }
        }
        if !part.is_empty() {
            current.push((m, part));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// What `ctl entropy show` prints: influxd-ctl entropy show's table.
pub(crate) fn render_show(status: &Status, out: &mut impl std::io::Write) -> std::io::Result<()> {
    writeln!(out, "Entropy")?;
    writeln!(out, "==========")?;
    writeln!(
        out,
        "{:<8}{:<12}{:<20}{:<32}{:<32}{:<32}Status",
        "ID", "Database", "Retention Policy", "Start", "End", "Expires"
    )?;
    let time = |ns: &str| {
        ns.parse::<i64>()
            .ok()
            .filter(|&n| n != 0)
            .map_or_else(|| "0001-01-01 00:00:00 +0000 UTC".to_owned(), go_time)
    };
    for s in &status.shards {
        writeln!(
            out,
            "{:<8}{:<12}{:<20}{:<32}{:<32}{:<32}{}",
            s.id,
            s.database,
            s.retention_policy,
            time(&s.start_time),
            time(&s.end_time),
            time(&s.expires),
            s.status
        )?;
    }
    writeln!(out)?;
    writeln!(out, "Queued Shards: [{}]", status.queued_shards.join(" "))?;
    Ok(())
}

/// A time as Go's `time.Time.String()` prints it in UTC, as influxd-ctl does.
fn go_time(ns: i64) -> String {
    match jiff::Timestamp::from_nanosecond(i128::from(ns)) {
        Ok(t) => t.strftime("%Y-%m-%d %H:%M:%S +0000 UTC").to_string(),
        Err(_) => ns.to_string(),
    }
}

/// A peer's answer about a shard other than the one asked about is refused.
fn same_shard(peer: &Peer, what: &str, asked: u64, answered: u64) -> Result<(), EntropyError> {
    if asked == answered {
        return Ok(());
    }
    Err(EntropyError::Other(format!(
        "peer {} sent shard {answered}'s {what}",
        peer.url
    )))
}
/// The cells of one leaf whose digests differ between two sides (a cell one side lacks
/// differs).
fn differing_cells(a: &BTreeMap<u8, Digest>, b: &BTreeMap<u8, Digest>) -> BTreeSet<u8> {
    a.keys()
        .chain(b.keys())
        .filter(|c| a.get(c).map(Digest::folded) != b.get(c).map(Digest::folded))
        .copied()
        .collect()
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_bound_leaves_per_request() {
        let whole = |n: u16| (0..n).map(|p| (p, BTreeSet::new())).collect::<LeafCells>();
        let leaves = vec![("a".to_owned(), whole(600)), ("b".to_owned(), whole(10))];
        let b = batches(leaves);
        let sizes: Vec<usize> = b
            .iter()
            .map(|x| x.iter().map(|(_, p)| p.len()).sum())
            .collect();
        assert_eq!(sizes, [512, 98]);
    }

    #[test]
    fn show_prints_influxd_ctls_table() {
        let status = Status {
            shards: vec![StatusRow {
                id: "1".into(),
                database: "ae".into(),
                retention_policy: "autogen".into(),
                start_time: "-259200000000000".into(),
                end_time: "345600000000000".into(),
                expires: "0".into(),
                status: "diff".into(),
            }],
            queued_shards: vec!["3".into(), "5".into()],
            ..Status::default()
        };
        let mut out = Vec::new();
        render_show(&status, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("Entropy\n"));
        assert!(text.contains("ID      Database    Retention Policy"));
        assert!(
            text.contains("1       ae          autogen             1969-12-29 00:00:00 +0000 UTC")
        );
        assert!(text.ends_with("Queued Shards: [3 5]\n"));
    }
}
