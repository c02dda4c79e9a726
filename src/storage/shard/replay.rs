//! Start-up's replay: the data log read in chunks, its records decoded on a second thread
//! and applied to their shards' heads.

use super::record::{decode_record, Replayed, POINT_LINES_ZSTD_RECORD};
use super::schema::{reserve_types, same_shape, types_of};
use super::write::apply_tombstone;
use super::Shard;
use crate::line_protocol::{LineParser, ParseOptions};
use crate::log::Lsn;
use crate::storage::data_log::{DataLog, Header};
use crate::storage::StorageError;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

/// Records decoded ahead of the head during replay.
const REPLAY_AHEAD: usize = 4;

/// Records read into memory at once during start-up's replay.
const REPLAY_CHUNK_BYTES: usize = 64 << 20;

/// Applies the data log's records to the shards `target` finds for them (None: passed
/// over), in chunks read into memory and decoded on a second thread. A record that does
/// not decode goes to `failed` with its shard. Returns how many records were read; the
/// shards then settle their replays ([`Shard::settle_replay`]).
pub(crate) fn replay_log(
    log: &DataLog,
    mut target: impl FnMut(&Header) -> Option<Arc<Shard>>,
    mut failed: impl FnMut(&Arc<Shard>, StorageError),
) -> Result<u64, StorageError> {
    let log_err = |source| StorageError::DataLog { source };
    let mut reader = log
        .log()
        .reader(log.figures().oldest_lsn)
        .map_err(log_err)?;
    let mut records = 0u64;
    loop {
        let mut chunk: Vec<(Lsn, u8, Vec<u8>)> = Vec::new();
        let mut bytes = 0;
        while bytes < REPLAY_CHUNK_BYTES {
            let Some(r) = reader.next().map_err(log_err)? else {
                break;
            };
            bytes += r.payload.len();
            chunk.push((r.lsn, r.kind, r.payload.to_vec()));
        }
        if chunk.is_empty() {
            return Ok(records);
        }
        records += chunk.len() as u64;
        let mut routed: Vec<(Lsn, Header, Arc<Shard>)> = Vec::new();
        let mut batch: Vec<(u8, &[u8])> = Vec::new();
        for (lsn, kind, payload) in &chunk {
            let (header, payload) =
                Header::split(payload).map_err(|reason| StorageError::CorruptRecord {
                    shard: 0,
                    lsn: *lsn,
                    reason,
                })?;
            if let Some(shard) = target(&header) {
                routed.push((*lsn, header, shard));
                batch.push((*kind, payload));
            }
        }
        replay_decoded(&batch, |i, len, decoded| {
            let (lsn, header, shard) = &routed[i];
            match decoded {
                Ok(decoded) => shard.replay(header.seq, *lsn, len, decoded),
                Err(reason) => failed(
                    shard,
                    StorageError::CorruptRecord {
                        shard: header.shard,
                        lsn: *lsn,
                        reason,
                    },
                ),
            }
            Ok::<_, StorageError>(())
        })?;
    }
}

/// Inflated bytes of the compressed records decoded in one go (but for a single larger
/// record): their slots outlive the points borrowing from them until the group is applied.
const REPLAY_INFLATED_BYTES: usize = 8 << 20;

/// Decodes records (kind and payload) on a second thread while `apply` takes them in order
/// on this one, with each one's bytes before compression: parsing is about half the work
/// of replay, which a restart waits for. A compressed record is decompressed by the second
/// thread too, into a slot that outlives the points borrowing from it: records are taken in
/// groups of about [`REPLAY_INFLATED_BYTES`] inflated, so that the slots of a whole chunk
/// of the log (some 50 MB for a million points) are not all held at once.
pub(crate) fn replay_decoded<E>(
    records: &[(u8, &[u8])],
    mut apply: impl FnMut(usize, usize, Result<Replayed<'_>, String>) -> Result<(), E>,
) -> Result<(), E> {
    let mut from = 0;
    while from < records.len() {
        let mut to = from;
        let mut inflated = 0;
        while to < records.len() && (to == from || inflated < REPLAY_INFLATED_BYTES) {
            let (kind, payload) = records[to];
            inflated += match kind {
                POINT_LINES_ZSTD_RECORD => zstd::zstd_safe::get_frame_content_size(payload)
                    .ok()
                    .flatten()
                    .map_or(payload.len(), |n| n as usize),
                _ => 0,
            };
            to += 1;
        }
        replay_group(&records[from..to], |i, len, points| {
            apply(from + i, len, points)
        })?;
        from = to;
    }
    Ok(())
}

fn replay_group<E>(
    records: &[(u8, &[u8])],
    mut apply: impl FnMut(usize, usize, Result<Replayed<'_>, String>) -> Result<(), E>,
) -> Result<(), E> {
    let inflated: Vec<OnceLock<Vec<u8>>> = records.iter().map(|_| OnceLock::new()).collect();
    std::thread::scope(|scope| {
        let (decoded_tx, decoded) = std::sync::mpsc::sync_channel(REPLAY_AHEAD);
        let inflated = &inflated;
        scope.spawn(move || {
            let mut parser = LineParser::new(ParseOptions::default());
            for (i, ((kind, payload), slot)) in records.iter().zip(inflated).enumerate() {
                let points = decode_record(*kind, payload, slot, &mut parser);
                let len = slot.get().map_or(payload.len(), Vec::len);
                if decoded_tx.send((i, len, points)).is_err() {
                    break; // the replay stopped at a corrupt record
                }
            }
        });
        for (i, len, points) in decoded {
            apply(i, len, points)?;
        }
        Ok(())
    })
}

impl Shard {
    /// Applies a record found in the log at start-up (`lsn` 0: not in the node's data
    /// log). Records whose points are in column files already are passed over.
    pub(crate) fn replay(&self, seq: u64, lsn: Lsn, len: usize, replayed: Replayed<'_>) {
        let mut data = self.data.write().unwrap_or_else(|e| e.into_inner());
        if seq <= data.replay_floor {
            return;
        }
        let mut schema = self.schema.lock().unwrap_or_else(|e| e.into_inner());
        data.log_bytes += len;
        // Replayed records may be recent: their leaves settle from now.
        let now = Some(crate::catalog::now_nanos());
        let bounds = (self.info.start, self.info.end);
        match replayed {
            Replayed::Points(version, points) => {
                self.max_version.fetch_max(version, Ordering::AcqRel);
                for (i, point) in points.iter().enumerate() {
                    if i == 0 || !same_shape(&points[i - 1], point) {
                        reserve_types(types_of(&mut schema, &point.measurement), &point.fields);
                    }
                }
                let known = data.head.series().len();
                data.head.insert_points(&points, version);
                data.index_head_from(known);
                let leaves = super::digest::leaves_of(bounds, &points);
                super::digest::mark_leaves(&mut data, &leaves, now);
            }
            Replayed::Tombstones(tombstones) => {
                for t in tombstones {
                    self.max_version.fetch_max(t.version, Ordering::AcqRel);
                    apply_tombstone(&mut data, &mut schema, t, bounds, now);
                }
            }
            Replayed::Other => {}
        }
        data.watermark.applied(seq);
        if lsn > 0 && (data.head_from == 0 || lsn < data.head_from) {
            data.head_from = lsn;
        }
    }

    /// Ends a replay: sequence numbers missing below the highest replayed belong to
    /// records that never became durable.
    pub(crate) fn settle_replay(&self) {
        let mut data = self.data.write().unwrap_or_else(|e| e.into_inner());
        data.watermark.settle();
        self.next_seq
            .fetch_max(data.watermark.upto + 1, Ordering::AcqRel);
        self.log.hold(self.key(), data.held_from());
    }
}
