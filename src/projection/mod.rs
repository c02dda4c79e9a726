//! State as a fold of events.
//!
//! A [`Projection`] is a pure `apply(&mut self, &Event)`; an [`EventLog`] pairs one with a
//! [`Log`]: it rebuilds the state on open (newest valid snapshot + the log's tail), and
//! [`EventLog::mutate`] decides, appends and applies under one lock, so a mutation is
//! either durable and visible or neither.

use crate::log::{Log, LogError, LogOptions, Lsn, Record, RecoveryReport, SnapshotStore};
use crate::proto::Event;
use prost::Message;
use std::path::Path;
use tokio::sync::Mutex;

/// Record kind of a prost-encoded [`Event`] in a log.
pub const EVENT_RECORD: u8 = 1;

pub trait Projection: Default + Send + 'static {
    /// Folds one event in. No I/O: replay, snapshots and tests all use this.
    fn apply(&mut self, event: &Event);
    fn encode_snapshot(&self) -> Vec<u8>;
    fn decode_snapshot(bytes: &[u8]) -> Result<Self, prost::DecodeError>;
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("event at LSN {lsn} does not decode: {source}")]
    Decode {
        lsn: Lsn,
        source: prost::DecodeError,
    },
    #[error("snapshot {path} does not decode: {source}")]
    Snapshot {
        path: String,
        source: prost::DecodeError,
    },
    #[error("the log starts at LSN {oldest} but the newest snapshot is at {snapshot}: records are missing")]
    Gap { oldest: Lsn, snapshot: Lsn },
    #[error(
        "the newest snapshot is at LSN {snapshot} but the log ends at {end}: records are missing"
    )]
    SnapshotBeyondLog { snapshot: Lsn, end: Lsn },
}

/// What start-up found, for the start-up line.
#[derive(Debug, Clone)]
pub struct Rebuilt {
    pub recovery: RecoveryReport,
    pub snapshot_lsn: Option<Lsn>,
    pub replayed: u64,
}

struct Projected<P> {
    state: P,
    applied: Lsn,
    bytes_since_snapshot: u64,
}

pub struct EventLog<P: Projection> {
    log: Log,
    snapshots: SnapshotStore,
    snapshot_every_bytes: u64,
    inner: Mutex<Projected<P>>,
}

impl<P: Projection> EventLog<P> {
    pub fn open(
        dir: &Path,
        options: LogOptions,
        snapshot_every_bytes: u64,
    ) -> Result<(Self, Rebuilt), ProjectionError> {
        let (log, recovery) = Log::open(dir, options)?;
        Self::with_log(log, recovery, snapshot_every_bytes)
    }

    pub fn with_log(
        log: Log,
        recovery: RecoveryReport,
        snapshot_every_bytes: u64,
    ) -> Result<(Self, Rebuilt), ProjectionError> {
        let snapshots = SnapshotStore::new(log.file_system(), log.dir());
        let (snapshot, rejected) = snapshots.load_latest()?;
        for (path, reason) in rejected {
            let aside = snapshots.set_aside(&path)?;
            tracing::warn!(path = %path.display(), %reason, aside = %aside.display(), "damaged snapshot set aside");
        }
        let (mut state, snapshot_lsn) = match snapshot {
            Some(s) => {
                let state =
                    P::decode_snapshot(&s.state).map_err(|source| ProjectionError::Snapshot {
                        path: s.path.display().to_string(),
                        source,
                    })?;
                (state, Some(s.lsn))
            }
            None => (P::default(), None),
        };
        let from = snapshot_lsn.map_or(1, |l| l + 1);
        // A snapshot past the log's end means records were lost (or the log replaced):
        // new records would get LSNs the snapshot claims to hold, and be skipped.
        if from > log.durable_lsn() + 1 {
            return Err(ProjectionError::SnapshotBeyondLog {
                snapshot: from - 1,
                end: log.durable_lsn(),
            });
        }
        let oldest = log.figures().oldest_lsn;
        if oldest > from {
            return Err(ProjectionError::Gap {
                oldest,
                snapshot: from - 1,
            });
        }
        let mut reader = log.reader(from)?;
        let (mut applied, mut replayed) = (from - 1, 0);
        while let Some(record) = reader.next()? {
            if record.kind == EVENT_RECORD {
                let event =
                    Event::decode(record.payload).map_err(|source| ProjectionError::Decode {
                        lsn: record.lsn,
                        source,
                    })?;
                state.apply(&event);
            }
            applied = record.lsn;
            replayed += 1;
        }
        let rebuilt = Rebuilt {
            recovery,
            snapshot_lsn,
            replayed,
        };
        let inner = Mutex::new(Projected {
            state,
            applied,
            bytes_since_snapshot: 0,
        });
        Ok((
            EventLog {
                log,
                snapshots,
                snapshot_every_bytes,
                inner,
            },
            rebuilt,
        ))
    }

    /// Decides on the current state, appends the resulting events durably, then applies
    /// them. `decide` returning an error changes nothing.
    pub async fn mutate<T, E>(
        &self,
        decide: impl FnOnce(&P) -> Result<(Vec<Event>, T), E>,
    ) -> Result<T, E>
    where
        E: From<ProjectionError>,
    {
        let mut inner = self.inner.lock().await;
        let (events, answer) = decide(&inner.state)?;
        if events.is_empty() {
            return Ok(answer);
        }
        let records: Vec<Record> = events
            .iter()
            .map(|e| Record::new(EVENT_RECORD, e.encode_to_vec()))
            .collect();
        let bytes: u64 = records.iter().map(|r| r.payload.len() as u64).sum();
        let lsn = self
            .log
            .append(records)
            .await
            .map_err(ProjectionError::from)?;
        for event in &events {
            inner.state.apply(event);
        }
        inner.applied = lsn;
        inner.bytes_since_snapshot += bytes;
        if inner.bytes_since_snapshot >= self.snapshot_every_bytes {
            // A failed snapshot costs only replay time on the next start: log it, go on.
            if let Err(e) = self.write_snapshot(&mut inner) {
                tracing::warn!(error = %e, "snapshot failed");
            }
        }
        Ok(answer)
    }

    pub async fn read<R>(&self, f: impl FnOnce(&P) -> R) -> R {
        f(&self.inner.lock().await.state)
    }

    /// [`EventLog::read`] outside an async runtime (start-up).
    pub fn read_blocking<R>(&self, f: impl FnOnce(&P) -> R) -> R {
        f(&self.inner.blocking_lock().state)
    }

    /// Writes a snapshot now (for example on clean shutdown) and drops segments it covers.
    pub async fn snapshot(&self) -> Result<Lsn, ProjectionError> {
        let mut inner = self.inner.lock().await;
        self.write_snapshot(&mut inner)
    }

    fn write_snapshot(&self, inner: &mut Projected<P>) -> Result<Lsn, ProjectionError> {
        let lsn = inner.applied;
        self.snapshots.write(lsn, &inner.state.encode_snapshot())?;
        inner.bytes_since_snapshot = 0;
        let oldest_kept = self.snapshots.oldest_lsn()?.unwrap_or(lsn);
        self.log.remove_segments_before(oldest_kept + 1)?;
        Ok(lsn)
    }

    pub fn log(&self) -> &Log {
        &self.log
    }
}
