//! A data node's services: the control log and its state, storage, authentication,
//! queries and backups, as the HTTP handlers and the background tasks call them. What runs
//! them as a process (the data-directory lock, signals, the HTTP server) is
//! [`crate::daemon`]'s.

use crate::auth::Authenticator;
use crate::backup::service::BackupService;
use crate::config::{ConfigError, NodeConfig};
use crate::control::ControlLog;
use crate::log::{IoBackend, LogOptions};
use crate::projection::{ProjectionError, Rebuilt};
use crate::query::pool::QueryPool;
use crate::replication::{ReplicationService, ReplicationServiceError};
use crate::storage::{Storage, StorageError};
use std::io;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub(crate) enum NodeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("control log: {0}")]
    ControlLog(#[from] ProjectionError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("query threads: {0}")]
    QueryPool(io::Error),
    #[error("replications: {0}")]
    Replication(#[from] ReplicationServiceError),
    #[error("subscriber: {0}")]
    Subscriber(#[from] crate::subscriber::SubscriberError),
}

/// The services a node's HTTP handlers and background tasks call.
pub(crate) struct Node {
    pub config: NodeConfig,
    pub control: Arc<ControlLog>,
    pub storage: Arc<Storage>,
    pub auth: Authenticator,
    /// Where queries run, off the HTTP workers.
    pub queries: QueryPool,
    pub backups: BackupService,
    /// Remotes, replications and their queues and senders.
    pub replications: Arc<ReplicationService>,
    /// Batches other nodes' replications send here: each applied once.
    pub inbound: Arc<crate::replication::inbound::InboundLedger>,
    /// Anti-entropy: digests compared with peers, repairs.
    pub entropy: Arc<crate::entropy::EntropyService>,
    /// Subscriptions' forwarding of the writes.
    pub subscriber: crate::subscriber::Subscriber,
    /// When the node opened (SHOW DIAGNOSTICS' `system` uptime).
    pub started: std::time::SystemTime,
}

impl Node {
    /// Opens the control log (its state rebuilt) and the storage of `config.data_dir`,
    /// which the caller holds (see [`crate::daemon::DataDirLock`]).
    pub(crate) fn open(config: &NodeConfig) -> Result<(Node, Rebuilt), NodeError> {
        let options = LogOptions {
            segment_capacity: config.log.segment_mib.max(1) << 20,
            io: config.io_mode()?,
            ..LogOptions::default()
        };
        let (control, rebuilt) = ControlLog::open(
            &config.data_dir.join("control"),
            options.clone(),
            (config.log.snapshot_every_mib * (1u64 << 20) as f64) as u64,
        )?;
        // Before any shard opens: its persisted digests are checked against the key.
        let secret = match config.anti_entropy.digest_key.as_str() {
            "" => crate::storage::digest::DEFAULT_DIGEST_SECRET,
            s => s,
        };
        crate::storage::digest::set_key(crate::storage::digest::DigestKey::from_secret(secret));
        let (catalog, pins) =
            control.read_blocking(|c| (c.catalog.clone(), ReplicationService::pins(c)));
        // Shards are many and mostly small: their segments are smaller, so that preallocated
        // space does not dwarf the data.
        let shard_options = LogOptions {
            segment_capacity: config.log.shard_segment_mib.max(1) << 20,
            ..options
        };
        let storage = Storage::open(
            &config.data_dir,
            &catalog,
            &pins,
            shard_options,
            config.node_id,
            (config.max_head_mib.max(1) << 20) as usize,
        )?;
        let (control, storage) = (Arc::new(control), Arc::new(storage));
        let replications = ReplicationService::open(
            control.clone(),
            storage.clone(),
            config.replication_drop_when_full,
            config.replication_gzip_level,
            config.replication_nice,
        )?;
        let entropy = crate::entropy::EntropyService::new(
            control.clone(),
            storage.clone(),
            &config.anti_entropy,
            config.max_restore_shard_mib.saturating_mul(1 << 20),
        )
        .map_err(|e| NodeError::Config(ConfigError::Invalid(format!("anti_entropy peers: {e}"))))?;
        let subscriber =
            crate::subscriber::Subscriber::open(control.clone(), &storage, &config.subscriber)?;
        let node = Node {
            subscriber,
            inbound: crate::replication::inbound::InboundLedger::new(control.clone()),
            replications,
            entropy,
            config: config.clone(),
            backups: BackupService::new(control.clone(), storage.clone(), config),
            control,
            storage,
            auth: Authenticator::new(config.password_check_limits()),
            queries: QueryPool::new(config.query_inline_budget()).map_err(NodeError::QueryPool)?,
            started: std::time::SystemTime::now(),
        };
        Ok((node, rebuilt))
    }

    pub(crate) fn io_backend(&self) -> &IoBackend {
        self.control.log().backend()
    }

    /// Why the node refuses writes, if it does (a failed log).
    pub(crate) fn failure(&self) -> Option<Arc<str>> {
        self.control.log().failure()
    }
}
