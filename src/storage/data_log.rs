//! The node's data log: one log for every shard's points and deletes, as raft-engine hosts
//! the logs of many raft groups in one set of files. One writer thread, one io_uring ring
//! and one active segment serve all shards, and one fdatasync covers a batch that touches
//! many: a shard that is not being written costs nothing but its files.
//!
//! Each record names its shard, the shard's incarnation (a shard dropped and created again
//! has the same derived id, and must not inherit the records of its earlier self) and the
//! shard's own sequence number. Column files cover a shard's records up to a sequence
//! number, so a shard's files never depend on where its records sit in the node's log.
//!
//! A segment can go once every record in it is in a column file: the log is trimmed to the
//! oldest record still held by a shard's head (or not yet applied), and when it grows past
//! its budget the shards holding its oldest records are made to flush.

use crate::log::{Appending, Log, LogError, LogFigures, Lsn, Record};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

/// What a data-log record says of its shard, before the shard's own payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub shard: u64,
    pub incarnation: u64,
    /// The shard's own sequence number: what its column files' coverage counts.
    pub seq: u64,
}

/// Bytes of a [`Header`] at the start of every payload.
pub(crate) const HEADER_LEN: usize = 24;

impl Header {
    /// A record of `kind` for this header's shard, the shard's `payload` after the header.
    pub(crate) fn record(&self, kind: u8, payload: &[u8]) -> Record {
        let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
        bytes.extend_from_slice(&self.shard.to_le_bytes());
        bytes.extend_from_slice(&self.incarnation.to_le_bytes());
        bytes.extend_from_slice(&self.seq.to_le_bytes());
        bytes.extend_from_slice(payload);
        Record::new(kind, bytes)
    }

    /// Splits a record's payload into its header and the shard's payload.
    pub(crate) fn split(payload: &[u8]) -> Result<(Header, &[u8]), String> {
        if payload.len() < HEADER_LEN {
            return Err(format!(
                "a data-log record of {} bytes is shorter than its {HEADER_LEN}-byte header",
                payload.len()
            ));
        }
        let word = |at: usize| u64::from_le_bytes(payload[at..at + 8].try_into().expect("8"));
        Ok((
            Header {
                shard: word(0),
                incarnation: word(8),
                seq: word(16),
            },
            &payload[HEADER_LEN..],
        ))
    }
}

/// The numbers up to which every one has been seen: applied records (of a shard, by
/// sequence number; of the node's log, by LSN). Records are applied in any order.
#[derive(Debug, Default)]
pub(crate) struct Watermark {
    pub upto: u64,
    ahead: BTreeSet<u64>,
}

impl Watermark {
    pub(crate) fn at(upto: u64) -> Watermark {
        Watermark {
            upto,
            ahead: BTreeSet::new(),
        }
    }

    pub(crate) fn applied(&mut self, n: u64) {
        if n == self.upto + 1 {
            self.upto = n;
            while self.ahead.remove(&(self.upto + 1)) {
                self.upto += 1;
            }
        } else if n > self.upto {
            self.ahead.insert(n);
        }
    }

    /// The highest number seen: after a replay, the numbers missing below it belong to
    /// records that never became durable, and never will.
    pub(crate) fn settle(&mut self) {
        if let Some(&last) = self.ahead.last() {
            self.upto = last;
            self.ahead.clear();
        }
    }

    #[cfg(test)]
    pub(crate) fn highest(&self) -> u64 {
        self.ahead.last().copied().unwrap_or(self.upto)
    }
}

/// A shard as the log knows it: its id and incarnation.
pub(crate) type ShardKey = (u64, u64);

pub struct DataLog {
    log: Log,
    /// LSNs of records applied to their shards (or that have no shard to go to).
    applied: Mutex<Watermark>,
    /// Per shard with points in no column file yet, the oldest LSN holding them.
    held: Mutex<HashMap<ShardKey, Lsn>>,
    /// Shards dropped: they hold nothing any more, whatever is still applied to them.
    forgotten: Mutex<HashSet<ShardKey>>,
    /// Bytes the log may hold before the shards holding its oldest records are flushed.
    budget: u64,
    /// Per follower of the log (a replication, by id), the first LSN it still needs: the
    /// segments from there on are kept, whatever the shards hold.
    pins: Mutex<HashMap<String, Lsn>>,
}

impl DataLog {
    /// `replayed`: the LSN up to which opening applied every record.
    pub fn new(log: Log, replayed: Lsn, budget: u64) -> DataLog {
        DataLog {
            log,
            applied: Mutex::new(Watermark::at(replayed)),
            held: Mutex::new(HashMap::new()),
            forgotten: Mutex::new(HashSet::new()),
            budget,
            pins: Mutex::new(HashMap::new()),
        }
    }

    /// Keeps the records from `from` on for `owner` (moving its earlier pin, if any).
    pub fn pin(&self, owner: &str, from: Lsn) {
        self.pins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(owner.to_owned(), from);
    }

    pub fn unpin(&self, owner: &str) {
        self.pins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(owner);
    }

    /// Records that `shard`'s oldest point in no column file is at `oldest` (None: it has
    /// none), so that the segments from there on are kept.
    pub fn hold(&self, shard: ShardKey, oldest: Option<Lsn>) {
        if self
            .forgotten
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&shard)
        {
            return; // a write to a dropped shard, applied as it was removed
        }
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        match oldest {
            Some(lsn) => held.insert(shard, lsn),
            None => held.remove(&shard),
        };
    }

    /// The shards holding records before `lsn`.
    pub fn held_before(&self, lsn: Lsn) -> Vec<ShardKey> {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.iter()
            .filter(|(_, &l)| l < lsn)
            .map(|(&k, _)| k)
            .collect()
    }

    /// Forgets a dropped shard: its records are no one's, and it holds none from now on.
    pub fn forget(&self, shard: ShardKey) {
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&shard);
        self.forgotten
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(shard);
    }

    pub fn log(&self) -> &Log {
        &self.log
    }

    /// Queues records; each must then be reported [`DataLog::applied`] once durable.
    pub async fn submit(&self, records: Vec<Record>) -> Result<Appending, LogError> {
        self.log.submit(records).await
    }

    pub fn applied(&self, lsn: Lsn) {
        self.applied
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .applied(lsn);
    }

    /// Removes the segments whose records are all in column files: those before the
    /// oldest record a shard's head still holds, before the first record not yet applied
    /// (it may be on its way into a head), and before the first a follower still needs.
    pub fn trim(&self) -> Result<usize, LogError> {
        let applied = self.applied.lock().unwrap_or_else(|e| e.into_inner()).upto;
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let bound = held.values().min().copied().unwrap_or(Lsn::MAX);
        drop(held);
        let pinned = self.pins.lock().unwrap_or_else(|e| e.into_inner());
        let bound = bound.min(pinned.values().min().copied().unwrap_or(Lsn::MAX));
        drop(pinned);
        self.log.remove_segments_before(bound.min(applied + 1))
    }

    /// When the log holds more than its budget: the LSN before which its records should
    /// be flushed out of heads (the first half of what it holds).
    pub fn over_budget(&self) -> Option<Lsn> {
        let f = self.log.figures();
        (f.bytes > self.budget).then(|| f.oldest_lsn + (f.durable_lsn - f.oldest_lsn) / 2 + 1)
    }

    pub fn figures(&self) -> LogFigures {
        self.log.figures()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_short_payloads_are_refused() {
        let h = Header {
            shard: 7,
            incarnation: u64::MAX,
            seq: 1 << 40,
        };
        let record = h.record(5, b"points");
        let (back, payload) = Header::split(&record.payload).unwrap();
        assert_eq!((back, payload), (h, &b"points"[..]));
        assert!(Header::split(&record.payload[..HEADER_LEN - 1]).is_err());
    }

    #[test]
    fn the_watermark_waits_for_gaps_until_settled() {
        let mut w = Watermark::at(3);
        w.applied(5);
        w.applied(6);
        assert_eq!((w.upto, w.highest()), (3, 6));
        w.applied(4);
        assert_eq!(w.upto, 6);
        w.applied(9);
        w.settle();
        assert_eq!(w.upto, 9);
    }
}
