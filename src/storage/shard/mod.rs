//! A shard: the data of one retention policy over one shard-group interval.
//!
//! Its data log holds the points as they were acknowledged; the head indexes the recent
//! ones in memory; when the head grows past its budget it is frozen and written out as an
//! immutable column file, after which the log segments it covers are removed. Memory is
//! thus bounded by the head, not by the data set, and a restart replays only the log after
//! the newest column file.
//!
//! Writes to one shard run concurrently, so records are applied in any order; the
//! *watermark* is the LSN up to which every record has been applied. A column file covers
//! the log up to the watermark at the time its head was frozen. Records after it that were
//! already in that head are replayed again on restart, which is harmless: last-write-wins
//! by write version makes applying a record twice the same as applying it once.
//!
//! A file per concept: `record` (the kinds of a shard's data-log records, decoded),
//! `schema` (field types and the check a write passes first), `write` (sequence numbers,
//! the append and applying it), `replay` (start-up's pass over the data log), `open` (a
//! shard's files, and the layout of earlier versions), `read` (series, their parts and
//! tags, as deletes leave them), `cost` (what a read would take, counted without reading),
//! `flush` (the head written out) and `merge` (column files merged size-tiered).

mod cost;
mod digest;
mod flush;
mod merge;
mod open;
mod read;
mod record;
mod replay;
mod schema;
mod write;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

pub use cost::{FieldCost, ReadCost};
pub use digest::{points_by_version, DigestChild, LeafContents, LeafPoint};
pub use flush::ShardFiles;
pub use open::OWN_LOG_DIR;
pub use read::{Part, SeriesParts, SeriesRead, TagFilter};
pub use record::{record_lines, POINTS_RECORD, POINT_LINES_RECORD, POINT_LINES_ZSTD_RECORD};
pub(crate) use replay::replay_log;
pub use schema::Admitted;
pub(crate) use write::{append_together, Prepared};

use crate::log::fs::FileSystem;
use crate::log::Lsn;
use crate::storage::column_file::ColumnFile;
use crate::storage::data_log::{DataLog, Watermark};
use crate::storage::head::Head;
use crate::storage::series_index::SeriesIndex;
use crate::storage::tombstone::Tombstones;
use schema::Schema;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

pub use crate::placement::ShardInfo;

#[derive(Default)]
struct ShardData {
    head: Head,
    /// Heads being written out as column files.
    frozen: Vec<Arc<Head>>,
    files: Vec<Arc<ColumnFile>>,
    /// Of the shard's sequence numbers.
    watermark: Watermark,
    /// The oldest data-log LSN whose points are in the live head (0: none).
    head_from: Lsn,
    /// The same for the frozen heads, until they are in column files.
    frozen_from: Lsn,
    /// Records applied ahead of the watermark (sequence number to LSN): a head frozen now
    /// holds them, but the column file it becomes covers only up to the watermark, so
    /// their records stay in the log for the next head (and a replay) to account for.
    ahead: BTreeMap<u64, Lsn>,
    /// Sequence numbers up to this are in column files (as the shard was opened): replay
    /// passes over their records.
    replay_floor: u64,
    /// Data-log bytes written since the head was last frozen: the log, not only the head,
    /// is kept within the budget (its records are larger than the head's columns), which
    /// bounds both disk use and replay time.
    log_bytes: usize,
    /// Every series of the head, frozen heads and files (also those deletes emptied: see
    /// [`Shard::visible`]).
    index: SeriesIndex,
    /// Every delete the shard has taken (see [`crate::storage::tombstone`]).
    tombstones: Tombstones,
    /// The anti-entropy digests of the shard's points (see [`crate::storage::digest`]).
    digest: crate::storage::digest::DigestTree,
}

impl ShardData {
    /// The oldest data-log record whose points are in no column file yet.
    fn held_from(&self) -> Option<Lsn> {
        [self.head_from, self.frozen_from]
            .into_iter()
            .filter(|&l| l > 0)
            .min()
    }

    /// Indexes the head's series from position `from` on (those it created since).
    fn index_head_from(&mut self, from: usize) {
        for s in self.head.series().iter_from(from) {
            self.index.add(&s.key, &s.measurement);
        }
    }
}

pub struct Shard {
    pub info: ShardInfo,
    pub dir: PathBuf,
    /// What the shard's files live on: [`crate::log::fs::RealFs`] but in crash tests.
    fs: Arc<dyn FileSystem>,
    /// The node's data log, which holds the shard's records among every other shard's.
    log: Arc<DataLog>,
    /// The sequence number of the shard's next record.
    next_seq: AtomicU64,
    /// Field types per measurement: the first write of a field decides its type in this
    /// shard, as in InfluxDB. Checked and reserved before points reach the log.
    schema: Mutex<Schema>,
    data: RwLock<ShardData>,
    max_version: AtomicU64,
    max_head_bytes: usize,
    /// Held while the head is written out: one flush at a time, and a backup waits for
    /// the one under way (its frozen points may be in no file yet).
    flushing: Mutex<()>,
    merging: AtomicBool,
    /// When the shard last took a write (ns since the epoch), to flush shards gone idle.
    last_write: std::sync::atomic::AtomicI64,
}

impl Shard {
    /// The sequence numbers up to which the shard's records are applied.
    pub(crate) fn applied_upto(&self) -> u64 {
        self.data
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .watermark
            .upto
    }

    /// The shard as the data log knows it.
    pub(crate) fn key(&self) -> crate::storage::data_log::ShardKey {
        (self.info.id, self.info.incarnation)
    }

    /// The highest write version stored in this shard's log.
    pub fn max_version(&self) -> u64 {
        self.max_version.load(Ordering::Acquire)
    }
}
