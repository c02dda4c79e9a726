//! A data node's services: the control log and its state, storage, authentication and the
//! query pool, as the HTTP handlers and the background tasks call them. What runs them as a
//! process (the data-directory lock, signals, the HTTP server) is [`crate::daemon`]'s.

use crate::config::{ConfigError, NodeConfig};
use crate::control::ControlLog;
use crate::log::IoBackend;
use crate::projection::ProjectionError;
use crate::storage::{Storage, StorageError};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("data directory {path}: {source}")]
    DataDir { path: PathBuf, source: io::Error },
    #[error("data directory {path} is in use by another shardkeeper process{}", .pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked { path: PathBuf, pid: Option<u32> },
    #[error("control log: {0}")]
    ControlLog(#[from] ProjectionError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: io::Error,
    },
    #[error("http server: {0}")]
    Server(io::Error),
}

/// The services a node's HTTP handlers call.
pub struct Node {
    pub config: NodeConfig,
    pub control: ControlLog,
    pub storage: Storage,
    pub auth: crate::auth::Authenticator,
    /// Where queries run, off the HTTP workers.
    pub queries: crate::query::pool::QueryPool,
}

impl Node {
    pub fn io_backend(&self) -> &IoBackend {
        self.control.log().backend()
    }

    /// Why the node refuses writes, if it does (a failed log).
    pub fn failure(&self) -> Option<Arc<str>> {
        self.control.log().failure()
    }
}
