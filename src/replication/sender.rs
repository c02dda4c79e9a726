//! One sender per replication: reads its bucket's records from the data log at the queue's
//! position, sends them in gzip batches to the remote's `/api/v2/write`, and records the
//! outcome in the control log: batches answered 204 move the position
//! (`ReplicationDelivered`), one refused for good is dropped (`dropNonRetryableData`) or
//! stops the replication until an operator acts, anything else is tried again after
//! `Retry-After` or an exponential back-off with jitter.
//!
//! **Pipelined.** Up to [`IN_FLIGHT`] batches are sent at once, each on a connection of its
//! own, and acknowledged in order: the position moves over the contiguous prefix of
//! batches the remote answered 204 (one control-log append for the batches confirmed while
//! the previous append was under way), never past a batch still unanswered. A batch counts
//! against the window from its send until its delivery is durable, so a crash re-sends at
//! most [`IN_FLIGHT`] batches. The first failure narrows the window to that one batch
//! until it is delivered (or dropped): the batches after it are read again from the log,
//! and those the remote had already answered 204 are not sent again.
//!
//! **Exactly once to a shardkeeper remote.** Each batch carries
//! [`super::inbound::BATCH_HEADER`]: the replication (durable: its organization and id),
//! the log range the batch covers (a batch starts where the one before it ended) and the
//! position recorded as delivered. A shardkeeper remote answers a batch it applied before
//! with 204 without applying it again, and one it applied in part with 409 naming the
//! ranges it holds: the sender reads the batch again with those ranges as batches of their
//! own, which it counts as delivered without sending (a restarted sender does not know how
//! its lost window was cut). Other remotes ignore the header: a crash re-sends up to the
//! window to them.
//!
//! **One read of the log.** The sender keeps its data-log reader between batches, with the
//! record that did not fit the last batch: a batch is read where the last one ended
//! (opening a reader at an LSN reads its segment from the start), and the next batch is
//! read and gzipped while the window is answered.
//!
//! Points older than `maxAgeSeconds` (by their local write time, which their record's
//! write version holds) are dropped as the sender meets them at the head, point-exactly;
//! with `replication_drop_when_full` the oldest records past the queue's bound are dropped
//! the same way. A record is never split: a batch holds whole records, so a single write
//! of more than 5,000 lines to one shard goes as one batch.

use super::inbound::{parse_ranges, BatchHeader, APPLIED_HEADER, BATCH_HEADER, OUTCOME_HEADER};
use super::queue::Queue;
use super::{client_of, write_query, ReplicationService, ReplicationServiceError};
use crate::client::{ClientError, InfluxClient, Retry};
use crate::control::replications::{attempt, delivered, dropped};
use crate::line_protocol::{LineParser, ParseOptions};
use crate::log::{Log, LogError, LogReader, Lsn, RecordRef};
use crate::proto::{DropReason, Remote, Replication, ReplicationProgress};
use crate::storage::data_log::{Header, HEADER_LEN};
use crate::storage::shard::{POINT_LINES_RECORD, POINT_LINES_ZSTD_RECORD};
use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Lines a batch holds at most (whole records; see the module's comment).
pub(crate) const MAX_BATCH_LINES: usize = 5_000;
/// Bytes of line protocol a batch holds at most, before compression.
pub(crate) const MAX_BATCH_BYTES: usize = 2_500_000;
/// Batches sent and not yet durably recorded as delivered, at most: what a crash may
/// send twice.
pub(crate) const IN_FLIGHT: usize = 8;
/// The whole of one attempt.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often an idle sender looks again (expiry, settings changed elsewhere); new writes
/// wake it sooner.
const IDLE_CHECK: Duration = Duration::from_secs(1);
/// How often a stopped sender looks at its queue (for points to expire or overflow):
/// writes do not wake it, since it would only read its head batch again.
const STOPPED_CHECK: Duration = Duration::from_millis(1_001);

pub(crate) fn spawn(service: Arc<ReplicationService>, q: Arc<Queue>) {
    let handle = service.runtime_handle();
    handle.spawn(async move {
        run(service.clone(), q.clone()).await;
        service.storage.data_log_holds().unpin(&q.id);
    });
}

/// What the sender found at the head of the queue (or after the window).
#[derive(Default)]
struct Plan {
    drop: Option<Dropping>,
    batch: Option<Batch>,
    /// The first LSN the queue still needs after this look.
    needed_from: Lsn,
}

struct Dropping {
    reason: DropReason,
    upto: Lsn,
    points: u64,
    bytes: u64,
}

#[derive(Default)]
struct Batch {
    /// Where it was read from (its first record, or records of other buckets before it).
    from: Lsn,
    body: String,
    /// The body gzipped, as sent.
    gz: bytes::Bytes,
    lines: usize,
    upto: Lsn,
    bytes: u64,
    /// Local write time of its oldest record (ns).
    oldest_nanos: i64,
    /// Its records are ones the remote is known to hold already: it is not sent.
    known: bool,
    /// Its first record's LSN: a range named to the remote starts and ends at one of the
    /// queue's records, so that no batch read around the ranges it holds overlaps them.
    first: Lsn,
}

type Sent = std::result::Result<Taken, ClientError>;

/// How the remote took a batch it answered 204 (or, a shardkeeper remote, 409) to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Taken {
    Applied,
    /// A shardkeeper remote had applied it before (a resend after a crash).
    Duplicate,
    /// A shardkeeper remote had applied these ranges of it before, not all of it: the
    /// batch is read again around them.
    Overlaps(Vec<(Lsn, Lsn)>),
}

/// A batch of the window.
struct Slot {
    from: Lsn,
    upto: Lsn,
    lines: usize,
    bytes: u64,
    oldest_nanos: i64,
    answer: Answer,
}

enum Answer {
    /// Sent; the answer is still to come.
    Pending(JoinHandle<Sent>),
    /// Answered (204 already, for a batch the remote took before a failure ahead of it
    /// narrowed the window: not sent again).
    Done(Sent),
}

impl Answer {
    async fn get(self) -> Result<Sent> {
        match self {
            Answer::Pending(h) => h.await.map_err(task_failed),
            Answer::Done(sent) => Ok(sent),
        }
    }
}

/// The sender's reader of the data log, kept between batches.
#[derive(Default)]
struct Cursor {
    reader: Option<LogReader>,
    /// A record read but not taken (it did not fit the batch): the next one read.
    held: Option<(Lsn, u8, Vec<u8>)>,
    /// The held record once given out again.
    current: (Lsn, u8, Vec<u8>),
    /// Records from here up to the reader's position are none of the queue's: a read
    /// from any LSN in between may go on from the position.
    clean_from: Lsn,
}

impl Cursor {
    fn position(&self) -> Option<Lsn> {
        match (&self.held, &self.reader) {
            (Some(h), _) => Some(h.0),
            (None, Some(r)) => Some(r.position()),
            (None, None) => None,
        }
    }

    /// Positions the cursor at `from` (reading on where it is, when nothing of the queue's
    /// lies between).
    fn seek(&mut self, log: &Log, from: Lsn) -> std::result::Result<(), LogError> {
        if self
            .position()
            .is_some_and(|p| self.clean_from <= from && from <= p)
        {
            return Ok(());
        }
        self.reader = None;
        self.held = None;
        self.reader = Some(log.reader(from)?);
        self.clean_from = from;
        Ok(())
    }

    fn next(&mut self) -> std::result::Result<Option<RecordRef<'_>>, LogError> {
        if let Some(held) = self.held.take() {
            self.current = held;
            return Ok(Some(RecordRef {
                lsn: self.current.0,
                kind: self.current.1,
                payload: &self.current.2,
            }));
        }
        match self.reader.as_mut() {
            Some(r) => r.next(),
            None => Ok(None),
        }
    }

    fn hold(&mut self, lsn: Lsn, kind: u8, payload: Vec<u8>) {
        self.held = Some((lsn, kind, payload));
    }
}

/// The connections to the remote, kept while its address, token and TLS setting are.
struct CachedClient {
    key: (String, String, bool),
    client: InfluxClient,
}

/// A read under way: where from, and the task (which gives the cursor back).
struct Reading {
    from: Lsn,
    /// The generation of the known ranges it was read with.
    known: u64,
    task: JoinHandle<Read>,
}

type Read = (Cursor, Result<Plan>);

struct Sender {
    s: Arc<ReplicationService>,
    q: Arc<Queue>,
    /// None while a read has it.
    cursor: Option<Cursor>,
    /// The batch after the window's last, read while the window is answered.
    reading: Option<Reading>,
    window: VecDeque<Slot>,
    /// The control-log append of the last deliveries, under way while the next batches
    /// are sent, and how many batches it covers.
    recording: Option<(JoinHandle<Result<()>>, usize)>,
    /// The last attempt succeeded: the window may hold more than the head batch.
    healthy: bool,
    client: Option<CachedClient>,
    /// Ranges of the log the remote is known to hold: batches it answered 204 after a
    /// batch ahead of them failed, and those a shardkeeper remote named in a 409 (applied
    /// before a crash here). Read again, their records make batches of their own, which
    /// are not sent again. By first LSN.
    known: BTreeMap<Lsn, Lsn>,
    /// Changed with `known`, so that a batch read ahead with older ranges is read again.
    known_generation: u64,
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.forget_window();
    }
}

async fn run(s: Arc<ReplicationService>, q: Arc<Queue>) {
    let mut sender = Sender {
        s: s.clone(),
        q: q.clone(),
        cursor: Some(Cursor::default()),
        reading: None,
        window: VecDeque::new(),
        recording: None,
        healthy: true,
        client: None,
        known: BTreeMap::new(),
        known_generation: 0,
    };
    let mut backoff = FIRST_BACKOFF;
    let mut appended = s.appended.subscribe();
    loop {
        if q.is_closed() {
            return;
        }
        let Some((r, remote, progress)) = settings(&s, &q.id).await else {
            return;
        };
        let step = sender.step(&r, remote.as_ref(), &progress).await;
        // Only an idle sender is woken by writes: a Retry-After or a back-off is waited out
        // whatever its length.
        let idle = matches!(step, Ok(Step::Idle));
        let wait = match step {
            Ok(Step::Again) => {
                backoff = FIRST_BACKOFF;
                continue;
            }
            Ok(Step::Idle) => IDLE_CHECK,
            Ok(Step::Stopped) => STOPPED_CHECK,
            Ok(Step::RetryAfter(d)) => d,
            Ok(Step::Backoff) => {
                let wait = crate::client::jitter(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                q.update_figures(|f| f.backoff_seconds = wait.as_secs_f64());
                wait
            }
            Err(e) => {
                tracing::error!(replication = %q.id, error = %e, "replication sender failed; trying again");
                sender.forget_window();
                crate::client::jitter(backoff)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            // New settings (a fixed remote, say): tried again at once, backing off anew.
            _ = q.woken() => backoff = FIRST_BACKOFF,
            _ = appended.changed(), if idle => {}
        }
        q.update_figures(|f| f.backoff_seconds = 0.0);
    }
}

async fn settings(
    s: &ReplicationService,
    id: &str,
) -> Option<(Replication, Option<Remote>, ReplicationProgress)> {
    s.control
        .read(|c| {
            let p = c.replications.replications.get(id)?;
            let r = p.replication.clone()?;
            let remote = c.replications.remotes.get(&r.remote_id).cloned();
            Some((r, remote, p.clone()))
        })
        .await
}

enum Step {
    /// Progress was made: look again at once.
    Again,
    /// Nothing to send: wait for writes.
    Idle,
    /// Refused for good: wait for an operator.
    Stopped,
    RetryAfter(Duration),
    Backoff,
}

type Result<T> = std::result::Result<T, ReplicationServiceError>;

fn task_failed(e: tokio::task::JoinError) -> ReplicationServiceError {
    ReplicationServiceError::Validation(format!("sender task: {e}"))
}

impl Sender {
    /// One turn: the head of the queue read (and dropped, or sent), the window filled, and
    /// the head batch's answer handled.
    async fn step(
        &mut self,
        r: &Replication,
        remote: Option<&Remote>,
        progress: &ReplicationProgress,
    ) -> Result<Step> {
        let (s, q) = (self.s.clone(), self.q.clone());
        // The position is the sender's, but `ctl replication drop-head` moves it too.
        let _position = q.cursor.lock().await;
        let from = q.needed_from().max(progress.delivered_lsn + 1);
        if self.window.front().is_some_and(|w| w.from != from) {
            // Moved by a drop-head: what the window holds is read again.
            self.forget_window();
        }
        self.known.retain(|_, &mut last| last >= from);
        if self.window.is_empty() {
            let plan = self.read(r, from, true).await?;
            if plan.batch.is_none() || plan.drop.is_some() {
                // Every other event of the replication follows the deliveries' records,
                // so that the status never goes back to an older attempt.
                self.recorded().await?;
            }
            s.storage.data_log_holds().pin(&q.id, plan.needed_from);
            if let Some(d) = plan.drop {
                record_drop(&s, &q, r, d, String::new()).await?;
                return Ok(Step::Again);
            }
            let Some(batch) = plan.batch else {
                q.update_figures(|f| f.oldest_queued_nanos = 0);
                if let Err(e) = s.storage.data_log_holds().trim() {
                    tracing::warn!(error = %e, "could not trim the data log after a delivery");
                }
                return Ok(Step::Idle);
            };
            q.update_figures(|f| f.oldest_queued_nanos = batch.oldest_nanos);
            let Some(remote) = remote.filter(|_| !progress.stopped) else {
                return Ok(Step::Stopped);
            };
            self.push(batch, remote, r, progress);
        }
        if let Some(remote) = remote.filter(|_| !progress.stopped) {
            self.fill(r, remote, progress).await?;
            self.read_ahead(r);
        }
        self.answer(r, progress).await
    }

    /// Reads and sends batches after the window's last while the window has room and the
    /// last attempt succeeded. Drops are made only at the head: a read that meets points to
    /// drop ends the filling.
    async fn fill(
        &mut self,
        r: &Replication,
        remote: &Remote,
        progress: &ReplicationProgress,
    ) -> Result<()> {
        let recording = self.recording.as_ref().map_or(0, |(_, n)| *n);
        while self.healthy && self.window.len() + recording < IN_FLIGHT {
            let Some(next) = self.window.back().map(|w| w.upto + 1) else {
                return Ok(());
            };
            match self.read(r, next, false).await? {
                Plan {
                    drop: None,
                    batch: Some(batch),
                    ..
                } => self.push(batch, remote, r, progress),
                _ => return Ok(()),
            }
        }
        Ok(())
    }

    /// Waits for the head batch's answer: delivered (with those after it already
    /// answered), or the failure handled.
    async fn answer(&mut self, r: &Replication, progress: &ReplicationProgress) -> Result<Step> {
        let (s, q) = (self.s.clone(), self.q.clone());
        let Some(head) = self.window.front_mut() else {
            return Ok(Step::Again);
        };
        let answer = std::mem::replace(&mut head.answer, Answer::Done(Ok(Taken::Applied)));
        match answer.get().await? {
            Err(e) => {
                let head = self.window.pop_front().expect("the head was there");
                return self.failed(r, progress, head, e).await;
            }
            Ok(Taken::Overlaps(ranges)) => {
                // The remote holds parts of it: read again around them, at once.
                if !self.learn(ranges) {
                    // Nothing new to read around: not tried again and again.
                    let head = self.window.pop_front().expect("the head was there");
                    let e = ClientError::Status {
                        url: String::new(),
                        status: 409,
                        message:
                            "the remote holds part of the batch, in ranges already read around"
                                .into(),
                        body: String::new(),
                        retry_after: None,
                    };
                    return self.failed(r, progress, head, e).await;
                }
                self.forget_window();
                return Ok(Step::Again);
            }
            Ok(Taken::Applied | Taken::Duplicate) => {}
        }
        self.healthy = true;
        // The head and every batch after it already answered 204: one record for them all.
        let (mut upto, mut points, mut bytes, mut batches) = (0, 0u64, 0u64, 0usize);
        while let Some(slot) = self.window.front_mut() {
            if batches > 0 {
                if let Answer::Pending(h) = &slot.answer {
                    if !h.is_finished() {
                        break;
                    }
                    let answer =
                        std::mem::replace(&mut slot.answer, Answer::Done(Ok(Taken::Applied)));
                    slot.answer = Answer::Done(answer.get().await?);
                }
                if let Answer::Done(Err(_) | Ok(Taken::Overlaps(_))) = slot.answer {
                    // Handled as the head, in the next turn.
                    break;
                }
            }
            let slot = self.window.pop_front().expect("checked");
            upto = slot.upto;
            points += slot.lines as u64;
            bytes += slot.bytes;
            batches += 1;
        }
        self.recorded().await?;
        // The position moves in memory at once (the next batch starts after these); a
        // crash before the record is durable sends them again, and no others.
        let (s2, id) = (s.clone(), q.id.clone());
        self.recording = Some((
            tokio::spawn(async move {
                s2.control
                    .mutate(|_| {
                        Ok::<_, ReplicationServiceError>((
                            vec![delivered(&id, upto, points, bytes)],
                            (),
                        ))
                    })
                    .await
            }),
            batches,
        ));
        q.remove(bytes);
        q.set_needed_from(upto + 1);
        let oldest = self.window.front().map(|w| w.oldest_nanos);
        q.update_figures(|f| {
            f.batches_sent += batches as u64;
            if let Some(oldest) = oldest {
                f.oldest_queued_nanos = oldest;
            }
        });
        Ok(Step::Again)
    }

    /// The head batch failed: the window narrows to it (the answers of those after it are
    /// kept), and the failure is handled as its kind says.
    async fn failed(
        &mut self,
        r: &Replication,
        progress: &ReplicationProgress,
        head: Slot,
        e: ClientError,
    ) -> Result<Step> {
        let (s, q) = (self.s.clone(), self.q.clone());
        self.healthy = false;
        for slot in std::mem::take(&mut self.window) {
            match slot.answer.get().await? {
                Ok(Taken::Applied | Taken::Duplicate) => {
                    self.learn(vec![(slot.from, slot.upto)]);
                }
                Ok(Taken::Overlaps(ranges)) => {
                    self.learn(ranges);
                }
                Err(e) => {
                    let code = e.status().unwrap_or(0);
                    q.update_figures(|f| *f.failures.entry(code).or_default() += 1);
                }
            }
        }
        self.recorded().await?;
        let code = e.status().unwrap_or(0);
        q.update_figures(|f| *f.failures.entry(code).or_default() += 1);
        let message = describe(&e);
        let points = head.lines as u64;
        match e.retry() {
            Retry::Never if r.drop_non_retryable_data => {
                tracing::warn!(replication = %q.id, points, error = %message, "remote refused a batch for good: dropped (dropNonRetryableData)");
                let d = Dropping {
                    reason: DropReason::NonRetryable,
                    upto: head.upto,
                    points,
                    bytes: head.bytes,
                };
                let note = format!("{message} ({points} points dropped)");
                record_attempt(&s, progress, &q.id, code, &note, false).await?;
                record_drop(&s, &q, r, d, note).await?;
                Ok(Step::Again)
            }
            Retry::Never => {
                tracing::warn!(replication = %q.id, error = %message, "remote refused a batch for good: replication stopped until the remote is fixed or the batch dropped (ctl replication drop-head)");
                record_attempt(&s, progress, &q.id, code, &message, true).await?;
                Ok(Step::Idle)
            }
            Retry::After(d) => {
                record_attempt(&s, progress, &q.id, code, &message, false).await?;
                q.update_figures(|f| f.backoff_seconds = d.as_secs_f64());
                Ok(Step::RetryAfter(d))
            }
            Retry::Backoff => {
                record_attempt(&s, progress, &q.id, code, &message, false).await?;
                Ok(Step::Backoff)
            }
        }
    }

    /// Waits for the last deliveries' record.
    async fn recorded(&mut self) -> Result<()> {
        match self.recording.take() {
            Some((handle, _)) => handle.await.map_err(task_failed)?,
            None => Ok(()),
        }
    }

    /// Reads a batch (or what to drop) from `from`, off the async threads (decompressing,
    /// reframing, gzip); the batch read ahead, if it was read from there. At the head, the
    /// queue's overflow is dropped too.
    async fn read(&mut self, r: &Replication, from: Lsn, head: bool) -> Result<Plan> {
        let overflowed = head && self.s.drop_when_full && self.q.overflow() > 0;
        if let Some(ahead) = self.reading.take() {
            let plan = self.finish(ahead.task).await?;
            if ahead.from == from && !overflowed && ahead.known == self.known_generation {
                return plan;
            }
        }
        let task = self.start_read(r, from, head);
        self.finish(task).await?
    }

    /// Starts reading the batch after the window's last while the window is answered, so
    /// that a batch is ready to go the moment there is room for it.
    fn read_ahead(&mut self, r: &Replication) {
        let Some(next) = self.window.back().map(|w| w.upto + 1) else {
            return;
        };
        if self.healthy && self.reading.is_none() {
            let task = self.start_read(r, next, false);
            self.reading = Some(Reading {
                from: next,
                known: self.known_generation,
                task,
            });
        }
    }

    fn start_read(&mut self, r: &Replication, from: Lsn, head: bool) -> JoinHandle<Read> {
        let (s, q) = (self.s.clone(), self.q.clone());
        let mut cursor = self.cursor.take().unwrap_or_default();
        let max_age_nanos = r.max_age_seconds.saturating_mul(1_000_000_000);
        let overflow = match head && s.drop_when_full {
            true => q.overflow(),
            false => 0,
        };
        let known = self.known.clone();
        tokio::task::spawn_blocking(move || {
            let limits = Limits {
                max_age_nanos,
                overflow,
                expire: true,
            };
            let plan = read_head(&s, &q, &mut cursor, from, limits, &known).map(|mut p| {
                if let Some(b) = p.batch.as_mut().filter(|b| !b.known) {
                    b.gz = gzip(std::mem::take(&mut b.body).as_bytes(), s.gzip_level);
                }
                p
            });
            (cursor, plan)
        })
    }

    /// A read's plan, its cursor back.
    async fn finish(&mut self, task: JoinHandle<Read>) -> Result<Result<Plan>> {
        let (cursor, plan) = task.await.map_err(task_failed)?;
        self.cursor = Some(cursor);
        Ok(plan)
    }

    /// Ranges the remote holds, from its answers: whether any was new.
    fn learn(&mut self, ranges: Vec<(Lsn, Lsn)>) -> bool {
        let mut new = false;
        for (first, last) in ranges {
            let entry = self.known.entry(first).or_insert(0);
            new |= last > *entry;
            *entry = (*entry).max(last);
        }
        self.known_generation += 1;
        new
    }

    /// Sends `batch` (unless the remote took it already) at the window's end.
    fn push(
        &mut self,
        batch: Batch,
        remote: &Remote,
        r: &Replication,
        progress: &ReplicationProgress,
    ) {
        let answer = match batch.known {
            true => Answer::Done(Ok(Taken::Applied)),
            false => {
                let header = BatchHeader {
                    origin: origin(r),
                    first: batch.first,
                    last: batch.upto,
                    confirmed: progress.delivered_lsn,
                };
                Answer::Pending(self.send(remote, r, batch.gz, header))
            }
        };
        self.window.push_back(Slot {
            from: batch.from,
            upto: batch.upto,
            lines: batch.lines,
            bytes: batch.bytes,
            oldest_nanos: batch.oldest_nanos,
            answer,
        });
    }

    fn send(
        &mut self,
        remote: &Remote,
        r: &Replication,
        gz: bytes::Bytes,
        header: BatchHeader,
    ) -> JoinHandle<Sent> {
        let key = (
            remote.remote_url.clone(),
            remote.remote_api_token.clone(),
            remote.allow_insecure_tls,
        );
        if self.client.as_ref().is_none_or(|c| c.key != key) {
            self.client = client_of(remote)
                .ok()
                .map(|client| CachedClient { key, client });
        }
        let client = self.client.as_ref().map(|c| c.client.clone());
        let query: Vec<(&'static str, String)> = write_query(remote, r)
            .into_iter()
            .map(|(k, v)| (k, v.to_owned()))
            .collect();
        let remote = remote.clone();
        tokio::spawn(async move {
            let client = match client {
                Some(c) => c,
                // Refused again, with the reason.
                None => client_of(&remote)?,
            };
            send(&client, &query, gz, &header).await
        })
    }

    /// Forgets the window (the answers still to come are not waited for).
    fn forget_window(&mut self) {
        for slot in self.window.drain(..) {
            if let Answer::Pending(h) = slot.answer {
                h.abort();
            }
        }
    }
}

/// The status's message for a failed attempt: the remote's own words, or the network's.
fn describe(e: &ClientError) -> String {
    match e {
        ClientError::Status {
            status, message, ..
        } => format!("remote answered {status}: {message}"),
        other => other.to_string(),
    }
}

/// Records a failed attempt, when it differs from the latest recorded.
async fn record_attempt(
    s: &ReplicationService,
    progress: &ReplicationProgress,
    id: &str,
    code: u16,
    message: &str,
    stopped: bool,
) -> Result<()> {
    // The status as it is now: deliveries recorded since `progress` was read count.
    let latest = settings(s, id).await.map(|(_, _, p)| p);
    let progress = latest.as_ref().unwrap_or(progress);
    let same = progress.latest_response_code == i32::from(code)
        && progress.latest_error_message == message
        && progress.stopped == stopped;
    if same {
        return Ok(());
    }
    s.control
        .mutate(|_| {
            Ok::<_, ReplicationServiceError>((
                vec![attempt(id, i32::from(code), message.to_owned(), stopped)],
                (),
            ))
        })
        .await
}

async fn record_drop(
    s: &ReplicationService,
    q: &Queue,
    r: &Replication,
    d: Dropping,
    message: String,
) -> Result<()> {
    let message = match d.reason {
        DropReason::MaxAge => format!(
            "{} points older than maxAgeSeconds ({} s) dropped",
            d.points, r.max_age_seconds
        ),
        DropReason::QueueFull => {
            tracing::warn!(replication = %q.id, points = d.points, bytes = d.bytes, "replication queue full: oldest points dropped");
            format!(
                "queue full (maxQueueSizeBytes {}): {} oldest points dropped",
                r.max_queue_size_bytes, d.points
            )
        }
        DropReason::Operator => format!(
            "{} points of the head batch dropped by an operator",
            d.points
        ),
        _ => message,
    };
    s.control
        .mutate(|_| {
            Ok::<_, ReplicationServiceError>((
                vec![dropped(&q.id, d.upto, d.points, d.bytes, d.reason, message)],
                (),
            ))
        })
        .await?;
    q.remove(d.bytes);
    q.set_needed_from(d.upto + 1);
    Ok(())
}

/// Reads the head batch as the sender would send it next, with a reader of its own
/// (`ctl replication drop-head`: nothing is dropped for age or overflow, nothing gzipped).
async fn look(
    s: &Arc<ReplicationService>,
    q: &Arc<Queue>,
    progress: &ReplicationProgress,
) -> Result<Plan> {
    let (s2, q2) = (s.clone(), q.clone());
    let from = q.needed_from().max(progress.delivered_lsn + 1);
    tokio::task::spawn_blocking(move || {
        let limits = Limits {
            max_age_nanos: 0,
            overflow: 0,
            expire: false,
        };
        read_head(
            &s2,
            &q2,
            &mut Cursor::default(),
            from,
            limits,
            &BTreeMap::new(),
        )
    })
    .await
    .map_err(task_failed)?
}

/// What a read drops: points older than `max_age_nanos` when `expire`, records up to
/// `overflow` bytes.
struct Limits {
    max_age_nanos: i64,
    overflow: u64,
    expire: bool,
}

/// Reads the queue's records from `from` on with `cursor`: what to drop, or else a batch,
/// whose records are all in the `known` ranges (the remote holds them) or none is.
fn read_head(
    s: &ReplicationService,
    q: &Queue,
    cursor: &mut Cursor,
    from: Lsn,
    limits: Limits,
    known: &BTreeMap<Lsn, Lsn>,
) -> Result<Plan> {
    let Limits {
        max_age_nanos,
        mut overflow,
        expire,
    } = limits;
    let log = s.storage.data_log();
    let from = from.max(log.figures().oldest_lsn);
    cursor.seek(log, from)?;
    let mut parser = LineParser::new(ParseOptions::default());
    let now = crate::clock::now_nanos();
    let mut plan = Plan {
        needed_from: from,
        ..Plan::default()
    };
    let mut batch = Batch {
        from,
        ..Batch::default()
    };
    let mut first_own: Option<Lsn> = None;
    let mut last_own: Option<Lsn> = None;
    let mut last = from.saturating_sub(1);
    let mut lines = String::new();
    while let Some(record) = cursor.next()? {
        if !s.record_is_for(q, record.kind, record.payload) {
            last = record.lsn;
            continue;
        }
        let bytes = crate::log::format::encoded_record_len(record.payload.len()) as u64;
        lines.clear();
        // Its lines as written, if still held: not decompressed again.
        let held = match record.kind {
            POINT_LINES_ZSTD_RECORD => record
                .payload
                .get(..HEADER_LEN)
                .and_then(|head| s.recent.get(record.lsn, head)),
            _ => None,
        };
        let decoded = Header::split(record.payload).and_then(|(_, payload)| match &held {
            Some(plain) => crate::storage::shard::record_lines(
                POINT_LINES_RECORD,
                plain,
                &mut parser,
                &mut lines,
            ),
            None => {
                crate::storage::shard::record_lines(record.kind, payload, &mut parser, &mut lines)
            }
        });
        let (version, points) = match decoded {
            Ok(Some(v)) => v,
            Ok(None) => (0, 0),
            Err(e) => {
                // Replay quarantines its shard; the queue cannot send what it cannot read.
                tracing::error!(replication = %q.id, lsn = record.lsn, error = %e, "a queued record does not decode: passed over");
                (0, 0)
            }
        };
        let written =
            ((version >> crate::storage::hlc::WALL_SHIFT) as i64).saturating_mul(1_000_000);
        let held_by_remote = known
            .range(..=record.lsn)
            .next_back()
            .is_some_and(|(_, &last)| last >= record.lsn);
        // What the remote holds is delivered: never dropped.
        let reason = if held_by_remote {
            None
        } else if overflow > 0 {
            Some(DropReason::QueueFull)
        } else if expire && points > 0 && now.saturating_sub(written) > max_age_nanos {
            Some(DropReason::MaxAge)
        } else {
            // Records without points go with the batch, or alone.
            None
        };
        let take = match reason.filter(|_| batch.lines == 0) {
            Some(reason) => match plan.drop.as_mut() {
                Some(d) if d.reason != reason => false,
                Some(d) => {
                    d.upto = record.lsn;
                    d.points += points as u64;
                    d.bytes += bytes;
                    overflow = overflow.saturating_sub(bytes);
                    true
                }
                None => {
                    plan.drop = Some(Dropping {
                        reason,
                        upto: record.lsn,
                        points: points as u64,
                        bytes,
                    });
                    overflow = overflow.saturating_sub(bytes);
                    true
                }
            },
            None if plan.drop.is_some() || reason.is_some() => false,
            None => {
                let full = (batch.bytes > 0 && batch.known != held_by_remote)
                    || (batch.lines > 0
                        && (batch.lines + points > MAX_BATCH_LINES
                            || batch.body.len() + lines.len() > MAX_BATCH_BYTES));
                if !full {
                    if batch.bytes == 0 {
                        batch.known = held_by_remote;
                        batch.first = record.lsn;
                    }
                    if batch.lines == 0 {
                        batch.oldest_nanos = written;
                    }
                    batch.body.push_str(&lines);
                    batch.lines += points;
                    batch.bytes += bytes;
                    batch.upto = record.lsn;
                }
                !full
            }
        };
        if !take {
            // The first record of the next read.
            let held = (record.lsn, record.kind, record.payload.to_vec());
            cursor.hold(held.0, held.1, held.2);
            break;
        }
        first_own.get_or_insert(record.lsn);
        last_own = Some(record.lsn);
        last = record.lsn;
    }
    // What the cursor read past after the last record taken is none of the queue's.
    cursor.clean_from = last_own.map_or(from, |l| l + 1);
    plan.needed_from = first_own.unwrap_or(last + 1);
    if batch.lines > 0 {
        plan.batch = Some(batch);
    } else if batch.bytes > 0 {
        // Records without points (undecodable): passed over as a drop of no points.
        plan.drop.get_or_insert(Dropping {
            reason: DropReason::Operator,
            upto: batch.upto,
            points: 0,
            bytes: batch.bytes,
        });
    }
    Ok(plan)
}

/// A batch's body as sent, gzipped at `level` (`replication_gzip_level`: 1, the fastest
/// that compresses, unless set).
fn gzip(body: &[u8], level: u32) -> bytes::Bytes {
    let mut e = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::new(level),
    );
    let _ = e.write_all(body);
    e.finish().unwrap_or_default().into()
}

/// The origin a replication's batches carry: its organization and id, both kept in the
/// control log, so the same after any restart.
fn origin(r: &Replication) -> String {
    format!("{}.{}", r.org_id, r.id)
}

async fn send(
    client: &InfluxClient,
    query: &[(&'static str, String)],
    gz: bytes::Bytes,
    batch: &BatchHeader,
) -> Sent {
    let path = "/api/v2/write";
    let request = client
        .request(crate::client::Method::POST, path)
        .query(query)
        .header("Content-Encoding", "gzip")
        .header("Content-Type", "text/plain; charset=utf-8")
        .header(BATCH_HEADER, batch.render())
        .body(gz);
    let header = |response: &crate::client::Response, name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    // A shardkeeper remote that holds part of the batch says which (other remotes never
    // send the header: a 409 from them is a failure like another).
    let response = client.send_any(path, request).await?;
    let status = response.status().as_u16();
    if status == 409 {
        if let Some(ranges) = header(&response, APPLIED_HEADER).and_then(|v| parse_ranges(&v)) {
            return Ok(Taken::Overlaps(ranges));
        }
    }
    if !response.status().is_success() {
        return Err(client.failure(path, response).await);
    }
    if status == 204 {
        return Ok(match header(&response, OUTCOME_HEADER).as_deref() {
            Some("duplicate") => Taken::Duplicate,
            _ => Taken::Applied,
        });
    }
    // Only 204 says the points were written; another 2xx is not trusted to.
    Err(ClientError::Status {
        url: format!("{}{path}", client.base_url()),
        status,
        message: format!("expected 204, got {status}"),
        body: String::new(),
        retry_after: None,
    })
}

/// `ctl replication drop-head`: drops the batch at the head of the queue, as the sender
/// would send it next. Returns its points.
pub(crate) async fn drop_head(s: &Arc<ReplicationService>, q: &Arc<Queue>) -> Result<u64> {
    let _position = q.cursor.lock().await;
    // Read under the cursor: the sender may have moved the position meanwhile.
    let Some((r, _, progress)) = settings(s, &q.id).await else {
        return Err(crate::control::replications::ReplicationError::ReplicationNotFound.into());
    };
    let plan = look(s, q, &progress).await?;
    let Some(batch) = plan.batch else {
        return Ok(0);
    };
    let points = batch.lines as u64;
    let d = Dropping {
        reason: DropReason::Operator,
        upto: batch.upto,
        points,
        bytes: batch.bytes,
    };
    tracing::warn!(replication = %q.id, points, "head batch dropped by an operator");
    record_drop(s, q, &r, d, String::new()).await?;
    q.wake();
    Ok(points)
}
