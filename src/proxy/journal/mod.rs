//! The proxy's journal: one log (the project's log library: one writer thread, group
//! commit) holding every accepted write ([`record`]) and every event of the proxy's state
//! ([`state`]), with snapshots of that state.
//!
//! A write is acknowledged once its record is durable. Each backend's stream is the write
//! records naming it after its delivered position; a delivery moves the position by an
//! event, appended once the backend has answered. Segments are removed once every
//! configured backend has delivered past them and a snapshot holds the events they had.
//!
//! Architecture invariant: the state is exactly the fold of the snapshot plus the events
//! after it. Events are applied once durable; a snapshot waits for the events under way
//! (they hold the `events` lock shared, a snapshot holds it alone), so that it holds every
//! event up to the LSN it is taken at.

pub(crate) mod record;
pub(crate) mod state;

use crate::log::{Log, LogError, LogOptions, LogReader, Lsn, Record, SnapshotStore};
use crate::proto::ProxyEvent;
use prost::Message;
use state::ProxyState;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Record kind of a prost-encoded [`ProxyEvent`].
pub(crate) const EVENT_RECORD: u8 = 1;
/// Record kind of a write ([`record`]).
pub(crate) const WRITE_RECORD: u8 = 2;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("proxy journal: {0}")]
    Log(#[from] LogError),
    #[error("proxy journal: event at LSN {lsn} does not decode: {source}")]
    Decode {
        lsn: Lsn,
        source: prost::DecodeError,
    },
    #[error("proxy journal: write record at LSN {lsn}: {source}")]
    Record {
        lsn: Lsn,
        source: record::RecordError,
    },
    #[error("proxy journal: snapshot {path} does not decode: {source}")]
    Snapshot {
        path: String,
        source: prost::DecodeError,
    },
    #[error("proxy journal: records from {from} on are needed but the journal starts at {oldest}")]
    Gap { from: Lsn, oldest: Lsn },
}

/// What a backend's stream holds, not yet delivered, as found at start-up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pending {
    pub lines: u64,
    pub bytes: u64,
    /// Write records holding them.
    pub records: u64,
}

pub struct Journal {
    log: Log,
    snapshots: SnapshotStore,
    state: Mutex<ProxyState>,
    events: tokio::sync::RwLock<()>,
    next_aside_id: AtomicU64,
    snapshot_lsn: AtomicU64,
}

/// What opening found.
pub struct Opened {
    pub journal: Journal,
    /// Per configured backend.
    pub pending: BTreeMap<String, Pending>,
    /// Backends the journal knows that the config no longer names, with what they had
    /// not received.
    pub abandoned: BTreeMap<String, Pending>,
    pub replayed: u64,
}

impl Journal {
    /// Opens the journal in `dir`, rebuilds the state and counts each configured
    /// backend's pending lines. A backend new to the journal starts at its end (nothing
    /// written before it was configured is its to receive); that start is made durable
    /// before this returns.
    pub fn open(dir: &Path, backends: &[String]) -> Result<Opened, JournalError> {
        let (log, _report) = Log::open(dir, LogOptions::default())?;
        let snapshots = SnapshotStore::new(log.file_system(), log.dir());
        for path in snapshots.remove_unfinished()? {
            tracing::info!(path = %path.display(), "removed a snapshot a crash left unfinished");
        }
        let (latest, rejected) = snapshots.load_latest()?;
        for (path, reason) in rejected {
            let aside = snapshots.set_aside(&path)?;
            tracing::warn!(path = %path.display(), %reason, aside = %aside.display(), "damaged proxy snapshot set aside");
        }
        let (mut state, snapshot_lsn) = match latest {
            Some(s) => (
                ProxyState::decode_snapshot(&s.state).map_err(|source| JournalError::Snapshot {
                    path: s.path.display().to_string(),
                    source,
                })?,
                s.lsn,
            ),
            None => (ProxyState::default(), 0),
        };
        let end = log.durable_lsn();
        let oldest = log.figures().oldest_lsn;
        if snapshot_lsn + 1 < oldest && snapshot_lsn < end {
            return Err(JournalError::Gap {
                from: snapshot_lsn + 1,
                oldest,
            });
        }
        // The events after the snapshot.
        let mut replayed = 0;
        if snapshot_lsn < end {
            let mut reader = log.reader(snapshot_lsn + 1)?;
            while let Some(r) = reader.next()? {
                if r.kind == EVENT_RECORD {
                    let event = ProxyEvent::decode(r.payload)
                        .map_err(|source| JournalError::Decode { lsn: r.lsn, source })?;
                    state.apply(&event);
                    replayed += 1;
                }
            }
        }
        // Where each configured backend's stream starts: a backend the journal does not
        // know starts at its end; one whose records were removed while the config did not
        // name it, at the oldest record kept.
        let starts: BTreeMap<&str, Lsn> = backends
            .iter()
            .map(|b| {
                let start = match state.delivered_lsn(b) {
                    Some(d) => d.max(oldest - 1),
                    None => end,
                };
                (b.as_str(), start)
            })
            .collect();
        // What each stream holds, and what streams of backends no longer configured held.
        let mut pending: BTreeMap<String, Pending> = BTreeMap::new();
        let from = starts.values().copied().min().unwrap_or(end) + 1;
        if from <= end {
            let mut reader = log.reader(from.max(oldest))?;
            while let Some(r) = reader.next()? {
                if r.kind != WRITE_RECORD {
                    continue;
                }
                let record_error = |source| JournalError::Record { lsn: r.lsn, source };
                let w = record::WriteRecord::decode(r.payload).map_err(record_error)?;
                for group in w.groups() {
                    for name in group.map_err(record_error)?.names() {
                        let name = String::from_utf8_lossy(name);
                        if !pending.contains_key(name.as_ref()) {
                            pending.insert(name.into_owned(), Pending::default());
                        }
                    }
                }
                count_pending(&mut pending, &state, &starts, r.lsn, &w).map_err(record_error)?;
            }
        }
        let next_aside_id = AtomicU64::new(state.next_aside_id);
        let journal = Journal {
            log,
            snapshots,
            state: Mutex::new(state),
            events: tokio::sync::RwLock::new(()),
            next_aside_id,
            snapshot_lsn: AtomicU64::new(snapshot_lsn),
        };
        // Starts that moved, durable before any write can name them.
        let moved: Vec<ProxyEvent> = starts
            .iter()
            .filter(|(b, &start)| journal.state().delivered_lsn(b) != Some(start))
            .map(|(b, &start)| state::delivered(b, start, 0, 0))
            .collect();
        if !moved.is_empty() {
            journal.record_blocking(moved)?;
        }
        let (pending, abandoned) = pending
            .into_iter()
            .filter(|(_, p)| p.lines > 0)
            .partition(|(name, _)| backends.contains(name));
        let mut pending: BTreeMap<String, Pending> = pending;
        for b in backends {
            pending.entry(b.clone()).or_default();
        }
        Ok(Opened {
            journal,
            pending,
            abandoned,
            replayed,
        })
    }

    pub fn state(&self) -> MutexGuard<'_, ProxyState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends a write record; resolves with its LSN once durable. Cancel-safe in the
    /// sense the log's `submit` is: once queued, the record is durable whatever happens to
    /// the caller.
    pub async fn append_write(&self, payload: Vec<u8>) -> Result<Lsn, LogError> {
        self.log
            .submit(vec![Record::new(WRITE_RECORD, payload)])
            .await?
            .await
    }

    /// Appends events and applies them once durable.
    pub async fn record(&self, events: Vec<ProxyEvent>) -> Result<Lsn, LogError> {
        let _under_way = self.events.read().await;
        let records = events
            .iter()
            .map(|e| Record::new(EVENT_RECORD, e.encode_to_vec()))
            .collect();
        let lsn = self.log.submit(records).await?.await?;
        let mut state = self.state();
        for e in &events {
            state.apply(e);
        }
        Ok(lsn)
    }

    fn record_blocking(&self, events: Vec<ProxyEvent>) -> Result<Lsn, LogError> {
        let records = events
            .iter()
            .map(|e| Record::new(EVENT_RECORD, e.encode_to_vec()))
            .collect();
        let lsn = self.log.append_blocking(records)?;
        let mut state = self.state();
        for e in &events {
            state.apply(e);
        }
        Ok(lsn)
    }

    /// A new id for a batch kept aside.
    pub fn next_aside_id(&self) -> u64 {
        self.next_aside_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn reader(&self, from: Lsn) -> Result<LogReader, LogError> {
        self.log.reader(from)
    }

    pub fn durable_lsn(&self) -> Lsn {
        self.log.durable_lsn()
    }

    pub async fn wait_durable(&self, lsn: Lsn) {
        self.log.wait_durable(lsn).await
    }

    pub fn log(&self) -> &Log {
        &self.log
    }

    /// Writes a snapshot of the state and removes the segments that neither it nor any of
    /// `backends` (the configured ones) still needs. Returns the segments removed.
    pub async fn snapshot_and_trim(&self, backends: &[String]) -> Result<usize, JournalError> {
        let lsn = {
            let _alone = self.events.write().await;
            let lsn = self.log.durable_lsn();
            let encoded = self.state().encode_snapshot();
            if lsn > self.snapshot_lsn.load(Ordering::Relaxed) {
                self.snapshots.write(lsn, &encoded)?;
                self.snapshot_lsn.store(lsn, Ordering::Relaxed);
            }
            lsn
        };
        let oldest_snapshot = self.snapshots.oldest_lsn()?.unwrap_or(lsn);
        let delivered = {
            let state = self.state();
            backends
                .iter()
                .filter_map(|b| state.delivered_lsn(b))
                .min()
                .unwrap_or(lsn)
        };
        Ok(self
            .log
            .remove_segments_before(oldest_snapshot.min(delivered) + 1)?)
    }
}

/// Counts what `w` holds for each backend that has not delivered past `lsn`.
fn count_pending(
    pending: &mut BTreeMap<String, Pending>,
    state: &ProxyState,
    starts: &BTreeMap<&str, Lsn>,
    lsn: Lsn,
    w: &record::WriteRecord<'_>,
) -> Result<(), record::RecordError> {
    for (name, p) in pending.iter_mut() {
        let start = starts
            .get(name.as_str())
            .copied()
            .or_else(|| state.delivered_lsn(name))
            .unwrap_or(0);
        if lsn <= start {
            continue;
        }
        let mut bytes = 0;
        let lines = w.for_backend(name, |body| bytes += body.len() as u64)?;
        p.lines += u64::from(lines);
        p.bytes += bytes;
        p.records += u64::from(lines > 0);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line_protocol::Precision;

    fn write(db: &str, groups: &[(&[&str], &[u8])]) -> Vec<u8> {
        let groups: Vec<record::GroupOut<'_>> = groups
            .iter()
            .map(|(owners, body)| record::GroupOut {
                owners: owners.to_vec(),
                lines: memchr::memchr_iter(b'\n', body).count() as u32,
                body,
            })
            .collect();
        record::encode(db, "", Precision::Nanoseconds, &groups)
    }

    #[test]
    fn pending_lines_and_positions_survive_a_reopen() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let backends = vec!["a".to_owned(), "b".to_owned()];
        {
            let opened = Journal::open(dir.path(), &backends).unwrap();
            assert_eq!(opened.pending["a"], Pending::default());
            let j = opened.journal;
            rt.block_on(async {
                let first = j
                    .append_write(write("db", &[(&["a", "b"], b"cpu v=1 1\n")]))
                    .await
                    .unwrap();
                j.append_write(write("db", &[(&["a"], b"mem v=1 1\nmem v=2 2\n")]))
                    .await
                    .unwrap();
                j.record(vec![state::delivered("b", first, 1, 10)])
                    .await
                    .unwrap();
            });
        }
        let opened = Journal::open(dir.path(), &backends).unwrap();
        assert_eq!(opened.pending["a"].lines, 3);
        assert_eq!(opened.pending["a"].records, 2);
        assert_eq!(opened.pending["b"].lines, 0);
        // A backend added later owes nothing of what came before it.
        drop(opened);
        let more = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let opened = Journal::open(dir.path(), &more).unwrap();
        assert_eq!(opened.pending["c"], Pending::default());
        assert_eq!(
            opened.journal.state().delivered_lsn("c"),
            Some(opened.journal.durable_lsn() - 1)
        );
        let trimmed = rt
            .block_on(opened.journal.snapshot_and_trim(&more))
            .unwrap();
        assert_eq!(trimmed, 0, "one segment, never removed");
    }
}
