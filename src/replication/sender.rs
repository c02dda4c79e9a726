//! One sender per replication: reads its bucket's records from the data log at the queue's
//! position, sends them in gzip batches to the remote's `/api/v2/write`, and records the
//! outcome in the control log: a batch answered 204 moves the position
//! (`ReplicationDelivered`), one refused for good is dropped (`dropNonRetryableData`) or
//! stops the replication until an operator acts, anything else is tried again after
//! `Retry-After` or an exponential back-off with jitter.
//!
//! Points older than `maxAgeSeconds` (by their local write time, which their record's
//! write version holds) are dropped as the sender meets them at the head, point-exactly;
//! with `replication_drop_when_full` the oldest records past the queue's bound are dropped
//! the same way. A record is never split: a batch holds whole records, so a single write
//! of more than 5,000 lines to one shard goes as one batch.

use super::queue::Queue;
use super::{client_of, write_query, ReplicationService, ReplicationServiceError};
use crate::client::{ClientError, Retry};
use crate::control::replications::{attempt, delivered, dropped};
use crate::line_protocol::{LineParser, ParseOptions};
use crate::log::Lsn;
use crate::proto::{DropReason, Remote, Replication, ReplicationProgress};
use crate::storage::data_log::Header;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// Lines a batch holds at most (whole records; see the module's comment).
pub(crate) const MAX_BATCH_LINES: usize = 5_000;
/// Bytes of line protocol a batch holds at most, before compression.
pub(crate) const MAX_BATCH_BYTES: usize = 2_500_000;
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

/// What the sender found at the head of the queue.
#[derive(Default)]
struct Plan {
    drop: Option<Dropping>,
    batch: Option<Batch>,
    /// The first LSN the queue still needs after this look.
    needed_from: Lsn,
    /// Where the look started (a batch read ahead is used only if the queue is still
    /// there: a drop-head may have moved it).
    from: Lsn,
}

struct Dropping {
    reason: DropReason,
    upto: Lsn,
    points: u64,
    bytes: u64,
}

#[derive(Default)]
struct Batch {
    body: String,
    lines: usize,
    upto: Lsn,
    bytes: u64,
    /// Local write time of its oldest record (ns).
    oldest_nanos: i64,
}

async fn run(s: Arc<ReplicationService>, q: Arc<Queue>) {
    let mut backoff = FIRST_BACKOFF;
    let mut appended = s.appended.subscribe();
    let mut recording: Recording = None;
    let mut ahead: Option<Plan> = None;
    loop {
        if q.is_closed() {
            return;
        }
        let Some((r, remote, progress)) = settings(&s, &q.id).await else {
            return;
        };
        let wait = match step(
            &s,
            &q,
            &r,
            remote.as_ref(),
            &progress,
            &mut recording,
            &mut ahead,
        )
        .await
        {
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
                crate::client::jitter(backoff)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = q.woken() => {}
            _ = appended.changed(), if wait == IDLE_CHECK => {}
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

/// The control-log append of the last delivery, under way while the next batch is read
/// and sent: a batch costs one round trip to the remote, not that plus an fdatasync.
type Recording = Option<tokio::task::JoinHandle<Result<()>>>;

/// Waits for the last delivery's record: every other event of the replication is
/// appended after it, so that the status never goes back to an older attempt.
async fn recorded(recording: &mut Recording) -> Result<()> {
    match recording.take() {
        Some(handle) => handle
            .await
            .map_err(|e| ReplicationServiceError::Validation(format!("sender task: {e}")))?,
        None => Ok(()),
    }
}

async fn step(
    s: &Arc<ReplicationService>,
    q: &Arc<Queue>,
    r: &Replication,
    remote: Option<&Remote>,
    progress: &ReplicationProgress,
    recording: &mut Recording,
    ahead: &mut Option<Plan>,
) -> Result<Step> {
    // The cursor is the sender's, but `ctl replication drop-head` moves it too.
    let _cursor = q.cursor.lock().await;
    let from = q.needed_from().max(progress.delivered_lsn + 1);
    let plan = match ahead.take() {
        // Read while the batch before it was sent, from where the queue still is.
        Some(p) if p.from == from && p.drop.is_none() && p.batch.is_some() => p,
        _ => look(s, q, r, progress, true).await?,
    };
    if plan.batch.is_none() || plan.drop.is_some() {
        recorded(recording).await?;
    }
    s.storage.data_log_holds().pin(&q.id, plan.needed_from);
    if let Some(d) = plan.drop {
        record_drop(s, q, r, d, String::new()).await?;
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
    if progress.stopped {
        return Ok(Step::Stopped);
    }
    let Some(remote) = remote else {
        return Ok(Step::Stopped);
    };
    let points = batch.lines as u64;
    // The next batch is read while this one is sent: the remote is not kept waiting.
    let next = {
        let (s2, q2) = (s.clone(), q.clone());
        let (from, max_age_nanos) = (
            batch.upto + 1,
            r.max_age_seconds.saturating_mul(1_000_000_000),
        );
        let overflow = if s.drop_when_full { q.overflow() } else { 0 };
        tokio::task::spawn_blocking(move || {
            read_head(&s2, &q2, from, max_age_nanos, overflow, true)
        })
    };
    match send(remote, r, batch.body).await {
        Ok(()) => {
            *ahead = next.await.ok().and_then(|p| p.ok());
            recorded(recording).await?;
            // The position moves in memory at once (the next batch starts after this one);
            // a crash before the record is durable re-sends this batch, no more.
            let (s2, id, upto, bytes) = (s.clone(), q.id.clone(), batch.upto, batch.bytes);
            *recording = Some(tokio::spawn(async move {
                s2.control
                    .mutate(|_| {
                        Ok::<_, ReplicationServiceError>((
                            vec![delivered(&id, upto, points, bytes)],
                            (),
                        ))
                    })
                    .await
            }));
            q.remove(batch.bytes);
            q.set_needed_from(batch.upto + 1);
            q.update_figures(|f| f.batches_sent += 1);
            Ok(Step::Again)
        }
        Err(e) => {
            recorded(recording).await?;
            let code = e.status().unwrap_or(0);
            q.update_figures(|f| *f.failures.entry(code).or_default() += 1);
            let message = describe(&e);
            match e.retry() {
                Retry::Never if r.drop_non_retryable_data => {
                    tracing::warn!(replication = %q.id, points, error = %message, "remote refused a batch for good: dropped (dropNonRetryableData)");
                    let d = Dropping {
                        reason: DropReason::NonRetryable,
                        upto: batch.upto,
                        points,
                        bytes: batch.bytes,
                    };
                    let note = format!("{message} ({points} points dropped)");
                    record_attempt(s, progress, &q.id, code, &note, false).await?;
                    record_drop(s, q, r, d, note).await?;
                    Ok(Step::Again)
                }
                Retry::Never => {
                    tracing::warn!(replication = %q.id, error = %message, "remote refused a batch for good: replication stopped until the remote is fixed or the batch dropped (ctl replication drop-head)");
                    record_attempt(s, progress, &q.id, code, &message, true).await?;
                    Ok(Step::Idle)
                }
                Retry::After(d) => {
                    record_attempt(s, progress, &q.id, code, &message, false).await?;
                    q.update_figures(|f| f.backoff_seconds = d.as_secs_f64());
                    Ok(Step::RetryAfter(d))
                }
                Retry::Backoff => {
                    record_attempt(s, progress, &q.id, code, &message, false).await?;
                    Ok(Step::Backoff)
                }
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

/// Reads the head of the queue (off the async threads: decompressing and parsing).
async fn look(
    s: &Arc<ReplicationService>,
    q: &Arc<Queue>,
    r: &Replication,
    progress: &ReplicationProgress,
    with_drops: bool,
) -> Result<Plan> {
    let (s2, q2) = (s.clone(), q.clone());
    let from = q.needed_from().max(progress.delivered_lsn + 1);
    let max_age_nanos = r.max_age_seconds.saturating_mul(1_000_000_000);
    let overflow = match with_drops && s.drop_when_full {
        true => q.overflow(),
        false => 0,
    };
    let expire = with_drops;
    tokio::task::spawn_blocking(move || read_head(&s2, &q2, from, max_age_nanos, overflow, expire))
        .await
        .map_err(|e| ReplicationServiceError::Validation(format!("sender task: {e}")))?
}

fn read_head(
    s: &ReplicationService,
    q: &Queue,
    from: Lsn,
    max_age_nanos: i64,
    mut overflow: u64,
    expire: bool,
) -> Result<Plan> {
    let log = s.storage.data_log();
    let asked = from;
    let from = from.max(log.figures().oldest_lsn);
    let mut reader = log.reader(from)?;
    let mut parser = LineParser::new(ParseOptions::default());
    let now = crate::clock::now_nanos();
    let mut plan = Plan {
        needed_from: from,
        from: asked,
        ..Plan::default()
    };
    let mut batch = Batch::default();
    let mut first_own: Option<Lsn> = None;
    let mut last = from.saturating_sub(1);
    let mut lines = String::new();
    while let Some(record) = reader.next()? {
        if !s.record_is_for(q, record.kind, record.payload) {
            last = record.lsn;
            continue;
        }
        let bytes = crate::log::format::encoded_record_len(record.payload.len()) as u64;
        lines.clear();
        let decoded = Header::split(record.payload).and_then(|(_, payload)| {
            crate::storage::shard::record_lines(record.kind, payload, &mut parser, &mut lines)
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
        let reason = if overflow > 0 {
            Some(DropReason::QueueFull)
        } else if expire && points > 0 && now.saturating_sub(written) > max_age_nanos {
            Some(DropReason::MaxAge)
        } else if points == 0 {
            // Nothing to send in it: passed over with the batch, or alone.
            None
        } else {
            None
        };
        if let Some(reason) = reason.filter(|_| batch.lines == 0) {
            match plan.drop.as_mut() {
                Some(d) if d.reason != reason => break,
                Some(d) => {
                    d.upto = record.lsn;
                    d.points += points as u64;
                    d.bytes += bytes;
                }
                None => {
                    plan.drop = Some(Dropping {
                        reason,
                        upto: record.lsn,
                        points: points as u64,
                        bytes,
                    })
                }
            }
            first_own.get_or_insert(record.lsn);
            overflow = overflow.saturating_sub(bytes);
            last = record.lsn;
            continue;
        }
        if plan.drop.is_some() || reason.is_some() {
            break;
        }
        let full = batch.lines > 0
            && (batch.lines + points > MAX_BATCH_LINES
                || batch.body.len() + lines.len() > MAX_BATCH_BYTES);
        if full {
            break;
        }
        first_own.get_or_insert(record.lsn);
        if batch.lines == 0 {
            batch.oldest_nanos = written;
        }
        batch.body.push_str(&lines);
        batch.lines += points;
        batch.bytes += bytes;
        batch.upto = record.lsn;
        last = record.lsn;
    }
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

async fn send(
    remote: &Remote,
    r: &Replication,
    body: String,
) -> std::result::Result<(), ClientError> {
    let client = client_of(remote)?;
    let gz = tokio::task::spawn_blocking(move || {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let _ = e.write_all(body.as_bytes());
        e.finish().unwrap_or_default()
    })
    .await
    .unwrap_or_default();
    let path = "/api/v2/write";
    let request = client
        .request(crate::client::Method::POST, path)
        .query(&write_query(remote, r))
        .header("Content-Encoding", "gzip")
        .header("Content-Type", "text/plain; charset=utf-8")
        .body(gz);
    let response = client.send(path, request).await?;
    let status = response.status().as_u16();
    if status == 204 {
        return Ok(());
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
    let _cursor = q.cursor.lock().await;
    // Read under the cursor: the sender may have moved the position meanwhile.
    let Some((r, _, progress)) = settings(s, &q.id).await else {
        return Err(crate::control::replications::ReplicationError::ReplicationNotFound.into());
    };
    let plan = look(s, q, &r, &progress, false).await?;
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
