//! One delivery task per backend: reads the journal's write records after the backend's
//! delivered position, sends the lines for it in batches (at most `flush_size` lines, one
//! database, policy and precision each) to its `/write` with `rp` and `precision`, and
//! records each outcome as an event:
//!
//! - a 2xx moves the position (`BatchDelivered`), once the event is durable: a crash
//!   before then sends that one batch again, no more;
//! - a 400 or 404 (a bad line, a database the backend lacks) keeps the batch aside: its
//!   lines go to a file of their own, made durable, then `BatchKeptAside` moves the
//!   position past it; `ctl proxy aside` replays or discards it;
//! - anything else (the backend down, 5xx, a timeout) is tried again, after a back-off
//!   bounded by `rewrite_interval` or as soon as the backend answers `/ping` again.
//!
//! Batches leave as soon as the backend can take them: lines gather only while the
//! previous batch is under way, so `flush_time` bounds the wait without adding to it.

use super::backend::Backend;
use super::journal::record::{precision_name, WriteRecord};
use super::journal::{state, Journal, WRITE_RECORD};
use crate::client::{ClientError, WriteTarget};
use crate::line_protocol::Precision;
use crate::log::{LogReader, Lsn};
use crate::proto::BatchKeptAside;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Bytes of line protocol a batch holds at most (InfluxDB's default `max-body-size` is
/// 25 MB).
pub(super) const MAX_BATCH_BYTES: usize = 8 << 20;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// How long an idle delivery waits before it looks again (it is woken by new records).
const IDLE_WAIT: Duration = Duration::from_secs(1);
/// A stream that only skips records (none for its backend) records its position at
/// most this often, so that the journal can be trimmed behind it.
const SKIP_RECORD_EVERY: Duration = Duration::from_secs(1);

/// The lines of one write record for one backend.
struct Portion {
    lsn: Lsn,
    db: String,
    rp: String,
    precision: Precision,
    lines: u64,
    body: Vec<u8>,
}

/// Lines on their way to a backend.
#[derive(Default)]
struct Batch {
    db: String,
    rp: String,
    precision: Precision,
    lines: u64,
    records: u64,
    body: Vec<u8>,
    /// The last journal position this batch settles.
    upto: Lsn,
}

pub(super) struct Delivery {
    pub journal: Arc<Journal>,
    pub backend: Arc<Backend>,
    pub flush_size: usize,
    pub rewrite_interval: Duration,
    /// Where batches kept aside go (`DATA/aside`).
    pub aside_dir: PathBuf,
}

impl Delivery {
    pub(super) async fn run(self) {
        let name = self.backend.name.clone();
        let start = self.journal.state().delivered_lsn(&name).unwrap_or(0);
        let mut reader = match self.journal.reader(start + 1) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(backend = %name, error = %e, "cannot read the journal: no delivery to this backend");
                return;
            }
        };
        let mut carry: Option<Portion> = None;
        // The position recorded, and the last record read (records for other backends
        // move it without a batch).
        let (mut delivered, mut seen) = (start, start);
        let mut last_skip_record = std::time::Instant::now();
        loop {
            let batch = match self.next_batch(&mut reader, &mut carry) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(backend = %name, error = %e, "journal read failed: delivery stops");
                    return;
                }
            };
            seen = seen.max(batch.upto);
            if batch.lines == 0 {
                if seen > delivered && last_skip_record.elapsed() >= SKIP_RECORD_EVERY {
                    let skipped = Batch {
                        upto: seen,
                        ..Batch::default()
                    };
                    if self.settle(&skipped, None).await {
                        delivered = seen;
                    }
                    last_skip_record = std::time::Instant::now();
                }
                let next = reader.position();
                tokio::select! {
                    _ = self.journal.wait_durable(next) => {}
                    _ = tokio::time::sleep(IDLE_WAIT) => {}
                }
                continue;
            }
            self.deliver(&batch).await;
            delivered = batch.upto;
            last_skip_record = std::time::Instant::now();
        }
    }

    /// Reads the next batch: whole portions of records for this backend, after `carry`.
    fn next_batch(
        &self,
        reader: &mut LogReader,
        carry: &mut Option<Portion>,
    ) -> Result<Batch, super::ProxyError> {
        let mut batch = Batch::default();
        loop {
            let portion = match carry.take() {
                Some(p) => p,
                None => match self.read_portion(reader)? {
                    Some(p) => p,
                    None => return Ok(batch),
                },
            };
            if portion.lines == 0 {
                batch.upto = portion.lsn;
                continue;
            }
            let fits = batch.lines == 0
                || (batch.db == portion.db
                    && batch.rp == portion.rp
                    && batch.precision == portion.precision
                    && batch.lines + portion.lines <= self.flush_size as u64
                    && batch.body.len() + portion.body.len() <= MAX_BATCH_BYTES);
            if !fits {
                *carry = Some(portion);
                return Ok(batch);
            }
            if batch.lines == 0 {
                batch.db = portion.db;
                batch.rp = portion.rp;
                batch.precision = portion.precision;
            }
            batch.lines += portion.lines;
            batch.records += 1;
            batch.body.extend_from_slice(&portion.body);
            batch.upto = portion.lsn;
        }
    }

    /// The next record's lines for this backend (none: a record without them).
    fn read_portion(&self, reader: &mut LogReader) -> Result<Option<Portion>, super::ProxyError> {
        let Some(r) = reader.next()? else {
            return Ok(None);
        };
        let mut portion = Portion {
            lsn: r.lsn,
            db: String::new(),
            rp: String::new(),
            precision: Precision::Nanoseconds,
            lines: 0,
            body: Vec::new(),
        };
        if r.kind != WRITE_RECORD {
            return Ok(Some(portion));
        }
        let lsn = r.lsn;
        let record_error = |source| super::journal::JournalError::Record { lsn, source };
        let w = WriteRecord::decode(r.payload).map_err(record_error)?;
        let mut body = Vec::new();
        let lines = w
            .for_backend(&self.backend.name, |b| body.extend_from_slice(b))
            .map_err(record_error)?;
        if lines > 0 {
            portion.db = w.db.to_owned();
            portion.rp = w.rp.to_owned();
            portion.precision = w.precision;
            portion.lines = u64::from(lines);
            portion.body = body;
        }
        Ok(Some(portion))
    }

    /// Sends `batch` until it is delivered or kept aside.
    async fn deliver(&self, batch: &Batch) {
        let b = &self.backend;
        let mut backoff = FIRST_BACKOFF;
        loop {
            if !b.is_active() {
                // Wait for the backend's watch to see it back (or try anyway after the
                // back-off: a ping can fail while writes would not).
                let revived = b.revived.notified();
                tokio::select! {
                    _ = revived => {}
                    _ = tokio::time::sleep(backoff) => {}
                }
            }
            let rp = (!batch.rp.is_empty()).then_some(batch.rp.as_str());
            let target = WriteTarget::V1 { db: &batch.db, rp };
            let sent = b.writer.write(target, batch.precision, &batch.body).await;
            let outcome = match sent {
                Ok(()) => Outcome::Delivered,
                Err(e) if matches!(e.status(), Some(400 | 404)) => Outcome::Refused(e),
                Err(e) => Outcome::Failed(e),
            };
            match outcome {
                Outcome::Delivered => {
                    b.figures
                        .retrying
                        .store(false, std::sync::atomic::Ordering::Relaxed);
                    b.set_active(true);
                    if self.settle(batch, None).await {
                        return;
                    }
                }
                Outcome::Refused(e) => {
                    b.figures
                        .retrying
                        .store(false, std::sync::atomic::Ordering::Relaxed);
                    if self.settle(batch, Some(&e)).await {
                        return;
                    }
                }
                Outcome::Failed(e) => {
                    b.figures
                        .failed_attempts
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    b.figures
                        .retrying
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                    if matches!(e, ClientError::Transport { .. }) {
                        b.set_active(false);
                    }
                    tracing::warn!(backend = %b.name, error = %e, lines = batch.lines, "batch not delivered; trying again");
                }
            }
            tokio::time::sleep(crate::client::jitter(backoff)).await;
            backoff = (backoff * 2).min(self.rewrite_interval.max(FIRST_BACKOFF));
        }
    }

    /// Records the outcome of `batch`: delivered, or (with the backend's refusal) kept
    /// aside. False when the journal refused the event (the batch is tried again).
    async fn settle(&self, batch: &Batch, refused: Option<&ClientError>) -> bool {
        let b = &self.backend;
        let event = match refused {
            None => state::delivered(&b.name, batch.upto, batch.lines, batch.body.len() as u64),
            Some(e) => {
                let id = self.journal.next_aside_id();
                if let Err(io) = write_aside(&self.aside_dir, id, &batch.body) {
                    tracing::error!(backend = %b.name, error = %io, "cannot keep a refused batch aside; trying it again");
                    return false;
                }
                tracing::warn!(backend = %b.name, id, lines = batch.lines, error = %e, "backend refused a batch: kept aside (ctl proxy aside)");
                state::kept_aside(BatchKeptAside {
                    id,
                    backend: b.name.clone(),
                    db: batch.db.clone(),
                    rp: batch.rp.clone(),
                    precision: precision_name(batch.precision).to_owned(),
                    lines: batch.lines,
                    bytes: batch.body.len() as u64,
                    status: u32::from(e.status().unwrap_or(0)),
                    message: error_message(e),
                    upto_lsn: batch.upto,
                    at_unix_nanos: state::now_nanos(),
                })
            }
        };
        if let Err(e) = self.journal.record(vec![event]).await {
            tracing::error!(backend = %b.name, error = %e, "cannot record a delivery");
            return false;
        }
        let f = &b.figures;
        f.remove_backlog(batch.lines, batch.body.len() as u64, batch.records);
        use std::sync::atomic::Ordering::Relaxed;
        match refused {
            None if batch.lines > 0 => {
                f.delivered_lines.fetch_add(batch.lines, Relaxed);
                f.delivered_batches.fetch_add(1, Relaxed);
            }
            None => {}
            Some(_) => {
                f.kept_aside_lines.fetch_add(batch.lines, Relaxed);
                f.kept_aside_batches.fetch_add(1, Relaxed);
            }
        }
        true
    }
}

enum Outcome {
    Delivered,
    Refused(ClientError),
    Failed(ClientError),
}

fn error_message(e: &ClientError) -> String {
    match e {
        ClientError::Status { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// The file of a batch kept aside.
pub(super) fn aside_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.lp"))
}

/// Writes a batch kept aside durably: a temporary file, synced, renamed, the directory
/// synced.
fn write_aside(dir: &Path, id: u64, body: &[u8]) -> std::io::Result<()> {
    use crate::log::fs::{FileSystem, RealFs};
    let fs = RealFs;
    fs.create_dir_all(dir)?;
    let path = aside_path(dir, id);
    let tmp = path.with_extension("lp.tmp");
    let file = fs.create(&tmp)?;
    file.write_all_at(body, 0)?;
    file.sync_data()?;
    drop(file);
    fs.rename(&tmp, &path)?;
    fs.sync_dir(dir)
}
