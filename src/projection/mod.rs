//! State as a fold of events.
//!
//! A [`Projection`] is a pure `apply(&mut self, &Event)`; an [`EventLog`] pairs one with a
//! [`Log`]: it rebuilds the state on open (newest valid snapshot + the log's tail), and
//! [`EventLog::mutate`] decides, appends and applies under one lock, so a mutation is
//! either durable and visible or neither.

use crate::log::{
    Appending, Log, LogError, LogOptions, Lsn, Record, RecoveryReport, SnapshotStore,
};
use crate::proto::Event;
use prost::Message;
use std::path::Path;
use std::sync::{Arc, RwLock};
use tokio::sync::{Mutex, OwnedMutexGuard};

/// Record kind of a prost-encoded [`Event`] in a log.
pub const EVENT_RECORD: u8 = 1;

pub trait Projection: Default + Send + Sync + 'static {
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

/// The projection's writer side: one mutation at a time decides, appends and applies.
struct Writer {
    applied: Lsn,
    bytes_since_snapshot: u64,
    /// A mutation whose records were queued and whose caller may be gone: it is applied
    /// (or, if its append failed, dropped) before anything else is decided.
    pending: Option<Pending>,
}

struct Pending {
    events: Vec<Event>,
    bytes: u64,
    appending: Appending,
}

struct Shared<P> {
    log: Log,
    snapshots: SnapshotStore,
    snapshot_every_bytes: u64,
    /// Readers take this lock only while their closure runs: never behind a mutation's
    /// fdatasync, and never behind a task that was granted an async lock but not yet
    /// polled (a query thread busy with other work made every write wait for it).
    state: RwLock<P>,
    writer: Arc<Mutex<Writer>>,
}

pub struct EventLog<P: Projection> {
    shared: Arc<Shared<P>>,
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
        for path in snapshots.remove_unfinished()? {
            tracing::info!(path = %path.display(), "removed a snapshot a crash left unfinished");
        }
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
        let shared = Shared {
            log,
            snapshots,
            snapshot_every_bytes,
            state: RwLock::new(state),
            writer: Arc::new(Mutex::new(Writer {
                applied,
                bytes_since_snapshot: 0,
                pending: None,
            })),
        };
        Ok((
            EventLog {
                shared: Arc::new(shared),
            },
            rebuilt,
        ))
    }

    /// Decides on the current state, appends the resulting events durably, then applies
    /// them. `decide` returning an error changes nothing.
    ///
    /// Cancel-safe: once the events are queued, they are applied when they are durable
    /// even if the caller's future is dropped (by a task the drop starts, or else by the
    /// next mutation), so the state never skips an event its log holds.
    pub async fn mutate<T, E>(
        &self,
        decide: impl FnOnce(&P) -> Result<(Vec<Event>, T), E>,
    ) -> Result<T, E>
    where
        E: From<ProjectionError>,
    {
        let mut writer = self.shared.writer.clone().lock_owned().await;
        self.shared.settle_abandoned(&mut writer).await;
        let (events, answer) = decide(&self.shared.read_state())?;
        if events.is_empty() {
            return Ok(answer);
        }
        let records: Vec<Record> = events
            .iter()
            .map(|e| Record::new(EVENT_RECORD, e.encode_to_vec()))
            .collect();
        let bytes: u64 = records.iter().map(|r| r.payload.len() as u64).sum();
        let appending = self
            .shared
            .log
            .submit(records)
            .await
            .map_err(ProjectionError::from)?;
        writer.pending = Some(Pending {
            events,
            bytes,
            appending,
        });
        CompleteOnDrop {
            shared: self.shared.clone(),
            writer: Some(writer),
        }
        .finish()
        .await?;
        Ok(answer)
    }

    pub async fn read<R>(&self, f: impl FnOnce(&P) -> R) -> R {
        f(&self.shared.read_state())
    }

    /// [`EventLog::read`] outside an async runtime (start-up).
    pub fn read_blocking<R>(&self, f: impl FnOnce(&P) -> R) -> R {
        f(&self.shared.read_state())
    }

    /// Writes a snapshot now (for example on clean shutdown) and drops segments it covers.
    pub async fn snapshot(&self) -> Result<Lsn, ProjectionError> {
        let mut writer = self.shared.writer.clone().lock_owned().await;
        self.shared.settle_abandoned(&mut writer).await;
        self.shared.write_snapshot(&mut writer)
    }

    pub fn log(&self) -> &Log {
        &self.shared.log
    }
}

impl<P: Projection> Shared<P> {
    fn read_state(&self) -> std::sync::RwLockReadGuard<'_, P> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for the pending mutation's append and applies its events once durable.
    async fn settle(&self, writer: &mut Writer) -> Result<(), ProjectionError> {
        let Some(pending) = writer.pending.as_mut() else {
            return Ok(());
        };
        // Awaited in place: cancelled here, the append stays pending for the next.
        let durable = (&mut pending.appending).await;
        let Some(pending) = writer.pending.take() else {
            return Ok(());
        };
        let lsn = durable?;
        {
            let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
            for event in &pending.events {
                state.apply(event);
            }
        }
        writer.applied = lsn;
        writer.bytes_since_snapshot += pending.bytes;
        if writer.bytes_since_snapshot >= self.snapshot_every_bytes {
            // A failed snapshot costs only replay time on the next start: log it, go on.
            if let Err(e) = self.write_snapshot(writer) {
                tracing::warn!(error = %e, "snapshot failed");
            }
        }
        Ok(())
    }

    /// Settles a mutation whose caller went away before its completion task could run.
    /// Its error was its caller's: the log reports a failed append to later callers itself.
    async fn settle_abandoned(&self, writer: &mut Writer) {
        if let Err(e) = self.settle(writer).await {
            tracing::warn!(error = %e, "an abandoned mutation failed");
        }
    }

    fn write_snapshot(&self, writer: &mut Writer) -> Result<Lsn, ProjectionError> {
        let lsn = writer.applied;
        let encoded = self.read_state().encode_snapshot();
        self.snapshots.write(lsn, &encoded)?;
        writer.bytes_since_snapshot = 0;
        let oldest_kept = self.snapshots.oldest_lsn()?.unwrap_or(lsn);
        self.log.remove_segments_before(oldest_kept + 1)?;
        Ok(lsn)
    }
}

/// Holds the writer while a mutation waits for its append; dropped before it is done (its
/// caller cancelled), it hands the rest to a task, which applies the events once durable.
struct CompleteOnDrop<P: Projection> {
    shared: Arc<Shared<P>>,
    writer: Option<OwnedMutexGuard<Writer>>,
}

impl<P: Projection> CompleteOnDrop<P> {
    async fn finish(&mut self) -> Result<(), ProjectionError> {
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        let settled = self.shared.settle(writer).await;
        self.writer = None;
        settled
    }
}

impl<P: Projection> Drop for CompleteOnDrop<P> {
    fn drop(&mut self) {
        let Some(mut writer) = self.writer.take() else {
            return;
        };
        // Outside a runtime the pending mutation stays with the writer for the next one.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let shared = self.shared.clone();
            runtime.spawn(async move { shared.settle_abandoned(&mut writer).await });
        }
    }
}
