use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use super::Lsn;

/// Errors of the log layer. Each names the file (and offset) a person would need to look at.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },

    #[error("corrupt log segment {path} at byte {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },

    /// A write or fdatasync failed earlier; the log refuses all further appends because the
    /// kernel may have dropped the data it had accepted (fsync errors are not retryable).
    #[error("log is failed and refuses writes: {reason}")]
    Failed { reason: Arc<str> },

    #[error("no space left on device to create log segment {path}; nothing acknowledged was lost")]
    NoSpace { path: PathBuf },

    #[error("append of {len} bytes is larger than the largest allowed ({capacity} bytes)")]
    RecordTooLarge { len: usize, capacity: u64 },

    #[error("record kind 0 is reserved")]
    ReservedKind,

    #[error("LSN {lsn} is no longer in the log (its oldest record is {oldest})")]
    Compacted { lsn: Lsn, oldest: Lsn },

    #[error("snapshot {path}: {reason}")]
    Snapshot { path: PathBuf, reason: String },

    #[error("the log is closed")]
    Closed,
}

impl LogError {
    /// The same error for one more waiter of a failed commit (io::Error is not Clone).
    pub(crate) fn for_another_caller(&self) -> LogError {
        match self {
            LogError::NoSpace { path } => LogError::NoSpace { path: path.clone() },
            LogError::Failed { reason } => LogError::Failed {
                reason: reason.clone(),
            },
            other => LogError::Failed {
                reason: other.to_string().into(),
            },
        }
    }

    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> LogError {
        let path = path.into();
        move |source| LogError::Io { op, path, source }
    }
}
