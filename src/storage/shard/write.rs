//! The write path: a record takes the shard's next sequence number, is appended to the data
//! log with the other shards' records of the request, and is applied once durable (or its
//! number passed over).

use super::record::{
    decode_record, Replayed, POINTS_RECORD, POINT_LINES_RECORD, POINT_LINES_ZSTD_RECORD,
};
use super::schema::Schema;
use super::{Shard, ShardData};
use crate::line_protocol::{LineParser, ParseOptions, Point};
use crate::log::{Appending, LogError, Lsn, Record};
use crate::proto::Tombstone;
use crate::storage::data_log::{DataLog, Header};
use crate::storage::tombstone::{TombstonesWritten, TOMBSTONE_RECORD};
use crate::storage::StorageError;
use prost::Message;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

/// A shard's record ready for the data log, with its sequence number taken. Dropped
/// before it was queued (an error, or the request gone), its number is passed over:
/// otherwise the shard's watermark would stop below it for good.
pub(crate) struct Prepared {
    pub shard: Arc<Shard>,
    pub seq: u64,
    pub record: Record,
    /// The record's bytes before compression: what replaying it costs.
    pub record_len: usize,
    /// The compressed record's `PointLines` bytes, kept for the bucket's replications.
    pub plain: Option<Vec<u8>>,
    queued: bool,
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if !self.queued {
            self.shard.pass_over(self.seq);
        }
    }
}

/// Records on their way to durability, applied from the log if their writer is dropped
/// before it learns the outcome (see [`append_together`]); if they fail, their sequence
/// numbers are passed over, so the shards' watermarks do not stop below them.
struct ApplyIfAbandoned {
    shards: Vec<(Arc<Shard>, u64)>,
    appending: Option<Appending>,
}

impl ApplyIfAbandoned {
    async fn durable(mut self) -> Result<Lsn, LogError> {
        let durable = match self.appending.as_mut() {
            Some(appending) => appending.await,
            None => Err(LogError::Closed),
        };
        self.appending = None;
        if durable.is_err() {
            for (shard, seq) in &self.shards {
                shard.pass_over(*seq);
            }
        }
        durable
    }
}

impl Drop for ApplyIfAbandoned {
    fn drop(&mut self) {
        let Some(appending) = self.appending.take() else {
            return;
        };
        let shards = std::mem::take(&mut self.shards);
        // Waiting for an fdatasync blocks: not on whatever thread dropped the future.
        let spawned = std::thread::Builder::new()
            .name("apply-abandoned".into())
            .spawn(move || match appending.wait_blocking() {
                Ok(last) => {
                    let first = last + 1 - shards.len() as u64;
                    for (i, (shard, seq)) in shards.iter().enumerate() {
                        let lsn = first + i as u64;
                        if let Err(e) = shard.apply_logged(lsn) {
                            // Replayed at the next start; the log and the watermark go on.
                            tracing::error!(shard = shard.info.id, error = %e, "applying an abandoned write failed");
                            shard.pass_over(*seq);
                            shard.log.applied(lsn);
                        }
                    }
                }
                Err(_) => {
                    for (shard, seq) in &shards {
                        shard.pass_over(*seq);
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "no thread to apply an abandoned write");
        }
    }
}

/// Appends one record per shard in one request (durable all together, or none) and
/// returns their LSNs once durable, for the caller to apply them. If the caller goes away
/// first (its future dropped), the records, once durable, are applied from the log on a
/// thread of their own: otherwise the shards' watermarks would stop below them for good,
/// and their heads would never be flushed again.
pub(crate) async fn append_together(
    log: &DataLog,
    prepared: Vec<Prepared>,
) -> Result<Vec<Lsn>, StorageError> {
    let mut prepared = prepared;
    // Payloads are shared, not copied: `prepared` still holds them until they are queued.
    let records: Vec<Record> = prepared.iter().map(|p| p.record.clone()).collect();
    let count = records.len() as u64;
    let log_err = |source| StorageError::DataLog { source };
    let appending = log.submit(records).await.map_err(log_err)?;
    let shards: Vec<(Arc<Shard>, u64)> = prepared
        .iter_mut()
        .map(|p| {
            p.queued = true;
            (p.shard.clone(), p.seq)
        })
        .collect();
    let last = ApplyIfAbandoned {
        shards,
        appending: Some(appending),
    }
    .durable()
    .await
    .map_err(log_err)?;
    Ok((last + 1 - count..=last).collect())
}

impl Shard {
    /// A sequence number taken for a record that never became durable.
    fn pass_over(&self, seq: u64) {
        let mut data = self.data.write().unwrap_or_else(|e| e.into_inner());
        data.watermark.applied(seq);
    }

    /// The data-log record of points under one write version, with the shard's next
    /// sequence number: once taken, it is applied or passed over (see
    /// [`append_together`]).
    /// The record of `points`; `keep_plain` (a replication follows the shard's bucket):
    /// with the bytes it compressed, which the replication's sender would otherwise
    /// decompress from the log.
    pub(crate) fn prepare_points(
        self: &Arc<Self>,
        points: &[Point<'_>],
        version: u64,
        keep_plain: bool,
    ) -> Prepared {
        use crate::storage::points_codec::LinesRecord;
        // The log's budget counts a record's bytes before compression: what replaying it
        // costs, which the budget bounds along with the head.
        let (kind, payload, record_len, plain) = match points.iter().all(|p| !p.line.is_empty()) {
            true => {
                let (lines, plain) = crate::storage::points_codec::compress_point_lines_keeping(
                    version, points, keep_plain,
                );
                let len = lines.plain_len();
                match lines {
                    LinesRecord::Compressed { frame, .. } => {
                        (POINT_LINES_ZSTD_RECORD, frame, len, plain)
                    }
                    LinesRecord::Plain(bytes) => (POINT_LINES_RECORD, bytes, len, None),
                }
            }
            false => {
                let bytes = crate::storage::points_codec::encode_points_written(version, points);
                let len = bytes.len();
                (POINTS_RECORD, bytes, len, None)
            }
        };
        let mut prepared = self.prepare(kind, &payload, record_len);
        prepared.plain = plain;
        prepared
    }

    fn prepare(self: &Arc<Self>, kind: u8, payload: &[u8], record_len: usize) -> Prepared {
        let seq = self.next_seq.fetch_add(1, Ordering::AcqRel);
        let header = Header {
            shard: self.info.id,
            incarnation: self.info.incarnation,
            seq,
        };
        Prepared {
            shard: self.clone(),
            seq,
            record: header.record(kind, payload),
            record_len,
            plain: None,
            queued: false,
        }
    }

    /// Appends the points durably under one write version, then makes them visible.
    /// Returns true when the head has outgrown its budget and should be flushed.
    pub async fn write(
        self: &Arc<Self>,
        points: &[Point<'_>],
        version: u64,
    ) -> Result<bool, StorageError> {
        let prepared = self.prepare_points(points, version, false);
        let (seq, record_len) = (prepared.seq, prepared.record_len);
        let lsns = append_together(&self.log, vec![prepared]).await?;
        Ok(self.apply_points(points, version, seq, lsns[0], record_len))
    }

    /// Appends a delete's tombstones durably (one record), then applies them: the head
    /// drops the points they hit, reads filter the column files through them, and a DROP
    /// MEASUREMENT forgets the measurement's field types.
    pub async fn delete(self: &Arc<Self>, tombstones: Vec<Tombstone>) -> Result<(), StorageError> {
        self.delete_arrived(tombstones, true).await
    }

    /// [`Shard::delete`]; `arrived` false for a repair's tombstones (see
    /// [`Shard::apply_points_arrived`]).
    pub(crate) async fn delete_arrived(
        self: &Arc<Self>,
        tombstones: Vec<Tombstone>,
        arrived: bool,
    ) -> Result<(), StorageError> {
        let record = TombstonesWritten {
            tombstones: tombstones.clone(),
        }
        .encode_to_vec();
        let prepared = self.prepare(TOMBSTONE_RECORD, &record, record.len());
        let seq = prepared.seq;
        let lsns = append_together(&self.log, vec![prepared]).await?;
        self.apply_tombstones(tombstones, seq, lsns[0], record.len(), arrived);
        Ok(())
    }

    /// Makes points durable at `lsn` visible. Returns true when the head has outgrown its
    /// budget.
    pub(crate) fn apply_points(
        &self,
        points: &[Point<'_>],
        version: u64,
        seq: u64,
        lsn: Lsn,
        record_len: usize,
    ) -> bool {
        self.apply_points_arrived(points, version, seq, lsn, record_len, true)
    }

    /// [`Shard::apply_points`]; `arrived` false for a repair's points, which are no
    /// write in flight: their digest leaves keep the arrival time they had.
    pub(crate) fn apply_points_arrived(
        &self,
        points: &[Point<'_>],
        version: u64,
        seq: u64,
        lsn: Lsn,
        record_len: usize,
        arrived: bool,
    ) -> bool {
        self.max_version.fetch_max(version, Ordering::AcqRel);
        let now = crate::catalog::now_nanos();
        self.last_write.store(now, Ordering::Relaxed);
        let now = arrived.then_some(now);
        // Hashed before the lock: writers to one shard queue on it.
        let leaves = super::digest::leaves_of((self.info.start, self.info.end), points);
        let mut data = self.data.write().unwrap_or_else(|e| e.into_inner());
        let known = data.head.series().len();
        data.head.insert_points(points, version);
        data.index_head_from(known);
        super::digest::mark_leaves(&mut data, &leaves, now);
        data.log_bytes += record_len;
        self.applied(&mut data, seq, lsn);
        let over_budget = data.head.bytes().max(data.log_bytes) > self.max_head_bytes;
        over_budget && !self.is_flushing()
    }

    fn apply_tombstones(
        &self,
        tombstones: Vec<Tombstone>,
        seq: u64,
        lsn: Lsn,
        record_len: usize,
        arrived: bool,
    ) {
        let newest = tombstones.iter().map(|t| t.version).max().unwrap_or(0);
        self.max_version.fetch_max(newest, Ordering::AcqRel);
        let mut data = self.data.write().unwrap_or_else(|e| e.into_inner());
        let mut schema = self.schema.lock().unwrap_or_else(|e| e.into_inner());
        let now = arrived.then(crate::catalog::now_nanos);
        for t in tombstones {
            apply_tombstone(
                &mut data,
                &mut schema,
                t,
                (self.info.start, self.info.end),
                now,
            );
        }
        data.log_bytes += record_len;
        self.applied(&mut data, seq, lsn);
    }

    /// Accounts for the record `seq` at `lsn`, applied to the live head.
    fn applied(&self, data: &mut ShardData, seq: u64, lsn: Lsn) {
        data.watermark.applied(seq);
        if seq > data.watermark.upto {
            data.ahead.insert(seq, lsn);
        } else if !data.ahead.is_empty() {
            let upto = data.watermark.upto;
            data.ahead.retain(|&s, _| s > upto);
        }
        if data.head_from == 0 || lsn < data.head_from {
            let before = data.held_from();
            data.head_from = lsn;
            if data.held_from() != before {
                self.log.hold(self.key(), data.held_from());
            }
        }
        self.log.applied(lsn);
    }

    /// Applies the record at `lsn` as read back from the data log (for a write whose
    /// caller went away): the same decoding replay uses.
    fn apply_logged(&self, lsn: Lsn) -> Result<(), StorageError> {
        let log_err = |source| StorageError::DataLog { source };
        let mut reader = self.log.log().reader(lsn).map_err(log_err)?;
        let corrupt = |reason: String| StorageError::CorruptRecord {
            shard: self.info.id,
            lsn,
            reason,
        };
        let record = match reader.next().map_err(log_err)? {
            Some(record) if record.lsn == lsn => record,
            _ => {
                return Err(corrupt(
                    "a durable record is missing from the data log".into(),
                ))
            }
        };
        let (header, payload) = Header::split(record.payload).map_err(corrupt)?;
        if header.shard != self.info.id {
            return Err(corrupt(format!("the record is shard {}'s", header.shard)));
        }
        let inflated = OnceLock::new();
        let mut parser = LineParser::new(ParseOptions::default());
        let replayed =
            decode_record(record.kind, payload, &inflated, &mut parser).map_err(corrupt)?;
        let len = inflated.get().map_or(payload.len(), Vec::len);
        match replayed {
            Replayed::Points(version, points) => {
                // Admission reserved the points' field types before they were appended.
                self.apply_points(&points, version, header.seq, lsn, len);
            }
            Replayed::Tombstones(tombstones) => {
                self.apply_tombstones(tombstones, header.seq, lsn, len, true)
            }
            Replayed::Other => {
                let mut data = self.data.write().unwrap_or_else(|e| e.into_inner());
                self.applied(&mut data, header.seq, lsn);
            }
        }
        Ok(())
    }
}

/// Applies a durable tombstone to the shard's state (replay and new deletes alike), marking
/// the digest leaves it may change (the shard's interval is `bounds`).
pub(super) fn apply_tombstone(
    data: &mut ShardData,
    schema: &mut Schema,
    t: Tombstone,
    bounds: (i64, i64),
    now: Option<i64>,
) {
    if t.drop_schema {
        schema.remove(&t.measurement);
    }
    data.head.delete(&t);
    super::digest::mark_tombstone(data, bounds, &t, now);
    data.tombstones.add(t);
}
