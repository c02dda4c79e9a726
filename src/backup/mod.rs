//! Backups and restores: InfluxDB 2's `/api/v2/backup` and `/api/v2/restore`.
//!
//! - A shard backup ([`archive`]) is a tar of the shard's own files (log segments, column
//!   files) plus a manifest of their sizes and checksums, produced from one consistent
//!   point in time ([`crate::storage::Shard::backup_files`]) and streamed through a
//!   bounded channel, gzip-compressed on the fly if asked: memory stays flat whatever the
//!   shard's size.
//! - A shard restore ([`restore`]) unpacks into a staging directory, checks every file
//!   against the manifest and every log record's checksum, merges with the shard's
//!   current files (so an incremental backup restores on top of a full one), and only
//!   then swaps the directory in.
//! - kv and metadata ([`metadata`]) are the catalog projection's snapshot and InfluxDB 2's
//!   bucket manifests.
//! - Every operation is a started/finished/failed event folded into the control state's
//!   ledger ([`crate::control::backups`]).

pub mod archive;
pub(crate) mod metadata;
pub(crate) mod multipart;
pub mod restore;
pub(crate) mod service;

use crate::catalog::CatalogError;
use crate::projection::ProjectionError;
use crate::storage::StorageError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("shard not found: {0}")]
    ShardNotFound(u64),
    #[error("bucket not found: {0}")]
    BucketNotFound(String),
    #[error("invalid since: {0}")]
    BadSince(String),
    /// The request body is not a usable backup (truncated, corrupt, foreign, too large).
    #[error("invalid backup: {0}")]
    BadArchive(String),
    /// The request body, or what it unpacks to, is past the configured limit.
    #[error("too large: {0}")]
    TooLarge(String),
    /// The backup is sound but cannot be applied to this node's current state.
    #[error("cannot restore: {0}")]
    Conflict(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("control log: {0}")]
    Control(#[from] ProjectionError),
    /// A task of the node's own failed (a bug, not the request's fault).
    #[error("{0}")]
    Internal(String),
}

impl BackupError {
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
        move |source| BackupError::Io {
            path: path.to_owned(),
            source,
        }
    }
}
