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

use super::column::{Column, FieldType};
use super::column_file::{self, ColumnFile, FileSeries};
use super::data_log::{DataLog, Header, Watermark};
use super::head::Head;
use super::series_index::{MeasurementSeries, SeriesIndex, TagSelector, Tags};
use super::tombstone::{self, Tombstones, TombstonesWritten, TOMBSTONE_RECORD};
use super::StorageError;
use crate::line_protocol::{key_tags, FieldValue, LineParser, ParseOptions, Point};
use crate::log::fs::FileSystem;
use crate::log::{Appending, LogError, Lsn, Record};
use crate::proto::Tombstone;
use prost::Message;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

/// Field types per measurement; consulted for every point written, so a fast hash.
type Schema = HashMap<String, FieldTypes, RandomState>;
type RandomState = foldhash::fast::RandomState;
type FieldTypes = HashMap<String, FieldType, RandomState>;

/// A measurement's field types, created empty on first sight; a known measurement's name
/// is not copied (this runs for every point written and replayed).
fn types_of<'s>(schema: &'s mut Schema, measurement: &str) -> &'s mut FieldTypes {
    if !schema.contains_key(measurement) {
        schema.insert(measurement.to_owned(), FieldTypes::default());
    }
    schema.get_mut(measurement).expect("inserted above")
}

/// Records the types of the fields a measurement has not had yet.
fn reserve_types(types: &mut FieldTypes, fields: &[(Cow<'_, str>, FieldValue)]) {
    for (name, value) in fields {
        if !types.contains_key(name.as_ref()) {
            types.insert(name.to_string(), FieldType::of(value));
        }
    }
}

/// Whether two points have the same measurement and the same field names and types, in
/// the same order (then one passing the schema check means the other passes too).
fn same_shape(a: &Point<'_>, b: &Point<'_>) -> bool {
    a.fields.len() == b.fields.len()
        && a.measurement == b.measurement
        && a.fields.iter().zip(&b.fields).all(|((an, av), (bn, bv))| {
            std::mem::discriminant(av) == std::mem::discriminant(bv) && super::same_name(an, bn)
        })
}

/// Records decoded ahead of the head during replay.
const REPLAY_AHEAD: usize = 4;

/// Where a shard kept its own log in earlier versions (and their shard archives).
pub const OWN_LOG_DIR: &str = "log";

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

/// A data-log record as replay applies it.
pub(crate) enum Replayed<'a> {
    Points(u64, Vec<Point<'a>>),
    Tombstones(Vec<Tombstone>),
    Other,
}

fn decode_record<'a>(
    kind: u8,
    payload: &'a [u8],
    inflated: &'a OnceLock<Vec<u8>>,
    parser: &mut LineParser,
) -> Result<Replayed<'a>, String> {
    match kind {
        POINTS_RECORD => super::points_codec::decode_points_written(payload)
            .map(|(version, points)| Replayed::Points(version, points))
            .map_err(|e| e.to_string()),
        TOMBSTONE_RECORD => TombstonesWritten::decode(payload)
            .map(|w| Replayed::Tombstones(w.tombstones))
            .map_err(|e| e.to_string()),
        POINT_LINES_RECORD => parse_point_lines(payload, parser),
        POINT_LINES_ZSTD_RECORD => {
            let plain =
                super::points_codec::decompress_point_lines(payload).map_err(|e| e.to_string())?;
            parse_point_lines(inflated.get_or_init(|| plain), parser)
        }
        _ => Ok(Replayed::Other),
    }
}

/// The points of a data-log record (its payload after the [`Header`]) as lines of line
/// protocol with nanosecond timestamps, appended to `out` each ending in a newline, for a
/// follower of the log (a replication): the record's write version and its number of
/// points. None for a record that holds no points (a delete's tombstones).
///
/// A logged line is the client's own: its timestamp (if any) is in the request's
/// precision. The line is sent as it is with that last token replaced by the nanosecond
/// time (or the time appended, for a line without one), which costs a scan of its end;
/// only a line whose end does not read that way is parsed and rendered again.
pub fn record_lines(
    kind: u8,
    payload: &[u8],
    parser: &mut LineParser,
    out: &mut String,
) -> Result<Option<(u64, usize)>, String> {
    let plain;
    let lines_record = match kind {
        POINT_LINES_RECORD => payload,
        POINT_LINES_ZSTD_RECORD => {
            plain =
                super::points_codec::decompress_point_lines(payload).map_err(|e| e.to_string())?;
            &plain[..]
        }
        _ => {
            let inflated = OnceLock::new();
            return match decode_record(kind, payload, &inflated, parser)? {
                Replayed::Points(version, points) => {
                    for p in &points {
                        crate::line_protocol::write_point(out, p);
                        out.push('\n');
                    }
                    Ok(Some((version, points.len())))
                }
                Replayed::Tombstones(_) | Replayed::Other => Ok(None),
            };
        }
    };
    let (version, lines) =
        super::points_codec::decode_point_lines(lines_record).map_err(|e| e.to_string())?;
    for (time, line) in &lines {
        if !push_with_time(out, line, *time) {
            let mut point = parser.parse(line).map_err(|reason| {
                format!(
                    "line {:?} does not parse: {reason}",
                    String::from_utf8_lossy(line)
                )
            })?;
            point.timestamp = Some(*time);
            crate::line_protocol::write_point(out, &point);
        }
        out.push('\n');
    }
    Ok(Some((version, lines.len())))
}

/// Appends `line` with its timestamp as `time` in nanoseconds, if its end reads plainly:
/// a last space-separated token of digits (a timestamp in some precision whose multiple
/// is `time`), or a last token that is a field (no timestamp). False: parse it instead.
fn push_with_time(out: &mut String, line: &[u8], time: i64) -> bool {
    let Ok(line) = std::str::from_utf8(line) else {
        return false;
    };
    let line = line.trim_end();
    let Some(space) = line.rfind(' ') else {
        return false;
    };
    if line[..space].ends_with('\\') {
        return false;
    }
    let last = &line[space + 1..];
    let digits = last.strip_prefix('-').unwrap_or(last);
    const MULTIPLES: [i64; 6] = [
        1,
        1_000,
        1_000_000,
        1_000_000_000,
        60_000_000_000,
        3_600_000_000_000,
    ];
    let kept = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        let Ok(value) = last.parse::<i64>() else {
            return false;
        };
        if !MULTIPLES
            .iter()
            .any(|m| value.checked_mul(*m) == Some(time))
        {
            return false;
        }
        &line[..space]
    } else if last.contains('=') && !last.ends_with('\\') && !line.contains('"') {
        // No timestamp; a quoted string could hide what looks like one, so not then.
        line
    } else {
        return false;
    };
    use std::fmt::Write;
    out.push_str(kept);
    let _ = write!(out, " {time}");
    true
}

/// The points of a `PointLines` record's bytes, parsed again from their lines.
fn parse_point_lines<'a>(plain: &'a [u8], parser: &mut LineParser) -> Result<Replayed<'a>, String> {
    let (version, lines) =
        super::points_codec::decode_point_lines(plain).map_err(|e| e.to_string())?;
    let mut points = Vec::with_capacity(lines.len());
    for (time, line) in lines {
        let mut point = parser.parse(line).map_err(|reason| {
            format!(
                "line {:?} does not parse: {reason}",
                String::from_utf8_lossy(line)
            )
        })?;
        point.timestamp = Some(time);
        // Logged lines were admitted, so this only drops fields named time.
        if let Some(reason) = super::invalid_point_reason(&mut point) {
            return Err(reason);
        }
        points.push(point);
    }
    Ok(Replayed::Points(version, points))
}

/// A shard's record ready for the data log, with its sequence number taken. Dropped
/// before it was queued (an error, or the request gone), its number is passed over:
/// otherwise the shard's watermark would stop below it for good.
pub(crate) struct Prepared {
    pub shard: Arc<Shard>,
    pub seq: u64,
    pub record: Record,
    /// The record's bytes before compression: what replaying it costs.
    pub record_len: usize,
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

/// Column files a shard may gather before they are merged into one.
const MERGE_AT: usize = 8;

/// Head entries a read copies under one hold of the data lock (about 1.5 MB, well under
/// a millisecond): the longest a write waits for a read to let it apply.
const POINTS_COPIED_PER_HOLD: usize = 65_536;

/// Record kind of a prost-encoded [`crate::proto::PointsWritten`] in a shard's data log
/// (written by earlier versions, and for points without a line).
pub const POINTS_RECORD: u8 = 2;
/// Record kind of a prost-encoded [`crate::proto::PointLines`] (written by earlier
/// versions, and for batches too small to gain from compression).
pub const POINT_LINES_RECORD: u8 = 4;
/// Record kind of a [`POINT_LINES_RECORD`]'s bytes as one zstd frame: what writes log
/// (see [`super::points_codec::compress_point_lines`]).
pub const POINT_LINES_ZSTD_RECORD: u8 = 5;

pub use crate::placement::ShardInfo;

/// Decides from a series' tags whether its columns are needed.
pub type TagFilter<'a> = &'a dyn Fn(&[(String, String)]) -> bool;

/// What a read wants of one measurement of a shard.
pub struct SeriesRead<'a> {
    pub measurement: &'a str,
    pub start: i64,
    pub end: i64,
    /// The fields to read: blocks of the others are never decoded.
    pub fields: &'a [String],
    /// Narrows the series from the tag index; `keep` then judges each one.
    pub selector: &'a TagSelector,
    pub keep: TagFilter<'a>,
}

/// One series of a read: its tags and, per field asked for, the parts to resolve (see
/// [`Column::resolve`]).
pub struct SeriesParts {
    pub key: Arc<str>,
    pub tags: Tags,
    pub fields: Vec<Vec<Part>>,
    /// What deletes took from the series: points its parts may still hold (column files
    /// are immutable, and a frozen head is not changed by a delete after it was frozen).
    pub deleted: Vec<tombstone::DeletedRange>,
}

pub enum Part {
    /// From a head: the entries within the read's range, copied.
    Column(Column),
    /// A block of a column file, decoded on demand.
    Block {
        file: Arc<ColumnFile>,
        series: usize,
        block: usize,
    },
}

impl Part {
    /// The part's first and last times, and how many distinct times it holds between
    /// them (0 when unknown without decoding).
    pub fn bounds(&self) -> (i64, i64, usize) {
        match self {
            Part::Column(c) if c.resolved => (c.times[0], c.times[c.len() - 1], c.len()),
            Part::Column(c) => {
                let (lo, hi) = c
                    .times
                    .iter()
                    .fold((i64::MAX, i64::MIN), |(lo, hi), &t| (lo.min(t), hi.max(t)));
                (lo, hi, 0)
            }
            Part::Block {
                file,
                series,
                block,
            } => {
                let b = &file.blocks(&file.series()[*series])[*block];
                (b.min_time, b.max_time, b.count as usize)
            }
        }
    }

    pub fn load(self) -> Result<Column, column_file::ColumnFileError> {
        match self {
            Part::Column(c) => Ok(c),
            Part::Block {
                file,
                series,
                block,
            } => file.read_block(&file.blocks(&file.series()[series])[block]),
        }
    }
}

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
    /// Every delete the shard has taken (see [`super::tombstone`]).
    tombstones: Tombstones,
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

/// What the schema check decided for a batch.
pub struct Admitted<'a> {
    pub points: Vec<Point<'a>>,
    pub dropped: usize,
    /// The first reason a point was dropped, in InfluxDB's words.
    pub reason: Option<String>,
}

impl Shard {
    /// Opens the shard whose files are in `dir` on `fs`. The directory must exist (see
    /// [`super::Storage::create_shard_dirs`]). Its records in the data log are not in it
    /// yet: start-up replays them ([`Shard::replay`]). A shard written by an earlier
    /// version has a log of its own, which is written out as a column file and removed.
    pub fn open_on(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        info: ShardInfo,
        log: Arc<DataLog>,
        max_head_bytes: usize,
    ) -> Result<Shard, StorageError> {
        // The directory exists from before the catalog knew the shard (see
        // [`super::Storage::create_shard_dirs`]): missing, it was lost, and opening an empty
        // one in its place would hide that.
        require_dir(&*fs, info.id, dir)?;
        let mut data = ShardData::default();
        let mut schema = Schema::default();
        let dir_err = |source| StorageError::ShardDir {
            path: dir.to_owned(),
            source,
        };
        let mut names: Vec<String> = fs.list(dir).map_err(dir_err)?;
        names.sort();
        for name in names {
            if name.ends_with(".col.tmp") {
                let _ = fs.remove(&dir.join(&name)); // a flush the process did not finish
            } else if column_file::parse_file_name(&name).is_some() {
                let file = ColumnFile::open(&*fs, &dir.join(&name)).map_err(|e| {
                    StorageError::ColumnFile {
                        shard: info.id,
                        source: e,
                    }
                })?;
                for t in &file.index.tombstones {
                    data.tombstones.add(t.clone());
                }
                for s in file.series() {
                    data.index.add(&s.key, &s.measurement);
                }
                data.watermark.upto = data.watermark.upto.max(file.index.covered_lsn);
                data.files.push(Arc::new(file));
            }
        }
        for file in &data.files {
            for (measurement, field, ty) in file_schema(file, &data.tombstones) {
                let types = schema.entry(measurement.to_owned()).or_default();
                types.entry(field.to_owned()).or_insert(ty);
            }
        }
        data.replay_floor = data.watermark.upto;
        // Versions in column files count too: new writes must beat them, and the deletes'.
        let max_version = data
            .files
            .iter()
            .map(|f| f.index.max_version)
            .chain(data.tombstones.all().iter().map(|t| t.version))
            .fold(0, u64::max);
        let next_seq = data.watermark.upto + 1;
        let shard = Shard {
            info,
            dir: dir.to_owned(),
            fs,
            log,
            next_seq: next_seq.into(),
            schema: Mutex::new(schema),
            data: RwLock::new(data),
            max_version: max_version.into(),
            max_head_bytes,
            flushing: Mutex::new(()),
            merging: AtomicBool::new(false),
            last_write: std::sync::atomic::AtomicI64::new(0),
        };
        let own_log = dir.join(OWN_LOG_DIR);
        if shard.fs.exists(&own_log).map_err(dir_err)? {
            shard.migrate_own_log(&own_log)?;
        }
        Ok(shard)
    }

    /// Writes the records of a log of the shard's own (the layout of earlier versions, and
    /// of shard archives they made) out as a column file, then removes that log. Its LSNs
    /// are the shard's sequence numbers, which column files already count.
    fn migrate_own_log(&self, own_log: &Path) -> Result<(), StorageError> {
        let floor = self
            .data
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .replay_floor;
        let mut records: Vec<(Lsn, u8, Vec<u8>)> = Vec::new();
        crate::log::for_each_record(&*self.fs, own_log, floor + 1, |r| {
            if r.lsn > floor {
                records.push((r.lsn, r.kind, r.payload.to_vec()));
            }
        })
        .map_err(|source| StorageError::ShardLog {
            shard: self.info.id,
            source,
        })?;
        let batch: Vec<(u8, &[u8])> = records.iter().map(|(_, k, p)| (*k, &p[..])).collect();
        replay_decoded(&batch, |i, len, replayed| {
            let seq = records[i].0;
            let replayed = replayed.map_err(|reason| StorageError::CorruptRecord {
                shard: self.info.id,
                lsn: seq,
                reason,
            })?;
            // Not in the data log: the flush below writes it out before the log goes.
            self.replay(seq, 0, len, replayed);
            Ok::<_, StorageError>(())
        })?;
        self.settle_replay();
        self.flush()?;
        let dir_err = |source| StorageError::ShardDir {
            path: own_log.to_owned(),
            source,
        };
        self.fs.remove_dir_all(own_log).map_err(dir_err)?;
        self.fs.sync_dir(&self.dir).map_err(dir_err)?;
        tracing::info!(
            shard = self.info.id,
            records = records.len(),
            "moved a shard's own log (earlier layout) into a column file"
        );
        Ok(())
    }

    /// Applies a record found in the log at start-up (`lsn` 0: not in the node's data
    /// log). Records whose points are in column files already are passed over.
    pub(crate) fn replay(&self, seq: u64, lsn: Lsn, len: usize, replayed: Replayed<'_>) {
        let mut data = self.data.write().unwrap_or_else(|e| e.into_inner());
        if seq <= data.replay_floor {
            return;
        }
        let mut schema = self.schema.lock().unwrap_or_else(|e| e.into_inner());
        data.log_bytes += len;
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
            }
            Replayed::Tombstones(tombstones) => {
                for t in tombstones {
                    self.max_version.fetch_max(t.version, Ordering::AcqRel);
                    apply_tombstone(&mut data, &mut schema, t);
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

    /// A data log of its own for a shard under test, in the shard's directory.
    #[cfg(test)]
    pub(crate) fn test_data_log(dir: &Path) -> Arc<DataLog> {
        let options = crate::log::LogOptions::default();
        let (log, _) = crate::log::Log::open(dir.join("data-log"), options).expect("data log");
        let end = log.durable_lsn();
        Arc::new(DataLog::new(log, end, u64::MAX))
    }

    /// The shard in `dir` with a data log of its own there (its records in it are not
    /// replayed): for tests of one shard.
    #[cfg(test)]
    pub(crate) fn open_for_test(dir: &Path, info: ShardInfo) -> Result<Shard, StorageError> {
        let fs = Arc::new(crate::log::fs::RealFs);
        Shard::open_on(fs, dir, info, Self::test_data_log(dir), 1 << 30)
    }

    /// Every (series key, time, value) of one field of a measurement, as a read sees it,
    /// in key and time order: for tests of one shard.
    #[cfg(test)]
    pub(crate) fn points_for_test(
        &self,
        measurement: &str,
        field: &str,
    ) -> Vec<(String, i64, FieldValue)> {
        let fields = [field.to_owned()];
        let read = SeriesRead {
            measurement,
            start: i64::MIN,
            end: i64::MAX,
            fields: &fields,
            selector: &TagSelector::All,
            keep: &|_| true,
        };
        let mut found = Vec::new();
        for s in self.series_of(&read) {
            let parts = s.fields.into_iter().flatten();
            let parts = parts.map(|p| p.load().expect("a block reads back"));
            if let Some(c) = Column::resolve(parts.collect()) {
                for i in 0..c.len() {
                    found.push((s.key.to_string(), c.times[i], c.values.get(i)));
                }
            }
        }
        found.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        found
    }

    /// The sequence numbers up to which the shard's records are applied.
    pub(crate) fn applied_upto(&self) -> u64 {
        self.data
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .watermark
            .upto
    }

    /// The shard as the data log knows it.
    pub(crate) fn key(&self) -> super::data_log::ShardKey {
        (self.info.id, self.info.incarnation)
    }

    /// A sequence number taken for a record that never became durable.
    fn pass_over(&self, seq: u64) {
        let mut data = self.data.write().unwrap_or_else(|e| e.into_inner());
        data.watermark.applied(seq);
    }

    /// Drops points whose field types conflict with the shard's (or with earlier points of
    /// the batch), reserving the types of new fields.
    /// `max_fields` bounds how many fields a measurement may have in this shard: a point
    /// that would add fields past it is dropped.
    pub fn admit<'a>(&self, mut points: Vec<Point<'a>>, max_fields: usize) -> Admitted<'a> {
        let mut schema = self.schema.lock().unwrap_or_else(|e| e.into_inner());
        let mut dropped = 0;
        let mut reason = None;
        // The last admitted point: a point of the same measurement with the same field
        // names and types needs no schema lookup (the norm: a batch repeats a few shapes).
        let mut previous: Option<usize> = None;
        let mut keep = vec![true; points.len()];
        for (i, point) in points.iter().enumerate() {
            if previous.is_some_and(|j| same_shape(&points[j], point)) {
                continue;
            }
            let types = types_of(&mut schema, &point.measurement);
            let conflict = point.fields.iter().find_map(|(name, value)| {
                let ty = FieldType::of(value);
                types.get(name.as_ref()).filter(|&&t| t != ty).map(|&existing| {
                    format!(
                        "field type conflict: input field \"{name}\" on measurement \"{}\" is type {}, already exists as type {}",
                        point.measurement,
                        ty.name(),
                        existing.name()
                    )
                })
            });
            // The exact count of new fields is looked up only near the limit.
            let conflict = conflict.or_else(|| {
                if types.len() + point.fields.len() <= max_fields {
                    return None;
                }
                let added = point
                    .fields
                    .iter()
                    .filter(|(name, _)| !types.contains_key(name.as_ref()))
                    .count();
                (added > 0 && types.len() + added > max_fields).then(|| {
                    format!(
                        "field limit exceeded: measurement \"{}\" would have {} fields, more than max_fields_per_measurement ({max_fields})",
                        point.measurement,
                        types.len() + added
                    )
                })
            });
            match conflict {
                Some(r) => {
                    dropped += 1;
                    reason.get_or_insert(r);
                    keep[i] = false;
                }
                None => {
                    reserve_types(types, &point.fields);
                    previous = Some(i);
                }
            }
        }
        if dropped > 0 {
            let mut keep = keep.into_iter();
            points.retain(|_| keep.next().unwrap_or(true));
        }
        Admitted {
            points,
            dropped,
            reason,
        }
    }

    /// The data-log record of points under one write version, with the shard's next
    /// sequence number: once taken, it is applied or passed over (see
    /// [`append_together`]).
    pub(crate) fn prepare_points(self: &Arc<Self>, points: &[Point<'_>], version: u64) -> Prepared {
        use super::points_codec::LinesRecord;
        // The log's budget counts a record's bytes before compression: what replaying it
        // costs, which the budget bounds along with the head.
        let (kind, payload, record_len) = match points.iter().all(|p| !p.line.is_empty()) {
            true => {
                let lines = super::points_codec::compress_point_lines(version, points);
                let len = lines.plain_len();
                match lines {
                    LinesRecord::Compressed { frame, .. } => (POINT_LINES_ZSTD_RECORD, frame, len),
                    LinesRecord::Plain(bytes) => (POINT_LINES_RECORD, bytes, len),
                }
            }
            false => {
                let bytes = super::points_codec::encode_points_written(version, points);
                let len = bytes.len();
                (POINTS_RECORD, bytes, len)
            }
        };
        self.prepare(kind, &payload, record_len)
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
        let prepared = self.prepare_points(points, version);
        let (seq, record_len) = (prepared.seq, prepared.record_len);
        let lsns = append_together(&self.log, vec![prepared]).await?;
        Ok(self.apply_points(points, version, seq, lsns[0], record_len))
    }

    /// Appends a delete's tombstones durably (one record), then applies them: the head
    /// drops the points they hit, reads filter the column files through them, and a DROP
    /// MEASUREMENT forgets the measurement's field types.
    pub async fn delete(self: &Arc<Self>, tombstones: Vec<Tombstone>) -> Result<(), StorageError> {
        let record = TombstonesWritten {
            tombstones: tombstones.clone(),
        }
        .encode_to_vec();
        let prepared = self.prepare(TOMBSTONE_RECORD, &record, record.len());
        let seq = prepared.seq;
        let lsns = append_together(&self.log, vec![prepared]).await?;
        self.apply_tombstones(tombstones, seq, lsns[0], record.len());
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
        self.max_version.fetch_max(version, Ordering::AcqRel);
        self.last_write
            .store(crate::catalog::now_nanos(), Ordering::Relaxed);
        let mut data = self.data.write().unwrap_or_else(|e| e.into_inner());
        let known = data.head.series().len();
        data.head.insert_points(points, version);
        data.index_head_from(known);
        data.log_bytes += record_len;
        self.applied(&mut data, seq, lsn);
        let over_budget = data.head.bytes().max(data.log_bytes) > self.max_head_bytes;
        over_budget && !self.is_flushing()
    }

    fn is_flushing(&self) -> bool {
        matches!(
            self.flushing.try_lock(),
            Err(std::sync::TryLockError::WouldBlock)
        )
    }

    fn apply_tombstones(&self, tombstones: Vec<Tombstone>, seq: u64, lsn: Lsn, record_len: usize) {
        let newest = tombstones.iter().map(|t| t.version).max().unwrap_or(0);
        self.max_version.fetch_max(newest, Ordering::AcqRel);
        let mut data = self.data.write().unwrap_or_else(|e| e.into_inner());
        let mut schema = self.schema.lock().unwrap_or_else(|e| e.into_inner());
        for t in tombstones {
            apply_tombstone(&mut data, &mut schema, t);
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
                self.apply_tombstones(tombstones, header.seq, lsn, len)
            }
            Replayed::Other => {
                let mut data = self.data.write().unwrap_or_else(|e| e.into_inner());
                self.applied(&mut data, header.seq, lsn);
            }
        }
        Ok(())
    }

    /// Freezes the head, writes it as a column file and removes the log segments the file
    /// covers. One flush at a time; blocking I/O (call it off the async workers).
    pub fn flush(&self) -> Result<(), StorageError> {
        let _flushing = match self.flushing.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::WouldBlock) => return Ok(()),
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
        };
        self.flush_inner()
    }

    fn flush_inner(&self) -> Result<(), StorageError> {
        let (frozen, covered, tombstones) = {
            let mut data = self.data.write().unwrap_or_else(|e| e.into_inner());
            let newest = data
                .files
                .iter()
                .map(|f| f.index.covered_lsn)
                .max()
                .unwrap_or(0);
            // A head emptied by deletes is written too: the file carries the tombstones,
            // whose records the data log can then let go.
            if data.watermark.upto <= newest {
                return Ok(()); // nothing new is fully applied yet: the next write retries
            }
            let frozen = Arc::new(std::mem::take(&mut data.head));
            data.frozen.push(frozen.clone());
            data.log_bytes = 0;
            // The frozen head's records are the log's until its file is in place; of them,
            // those ahead of the watermark stay the live head's (see `ShardData::ahead`).
            data.frozen_from = data.held_from().unwrap_or(0);
            data.head_from = data.ahead.values().min().copied().unwrap_or(0);
            // Every tombstone up to the watermark is in this set: the file carries them
            // once the log segments holding them are removed.
            (frozen, data.watermark.upto, data.tombstones.all())
        };
        let file_err = |source| StorageError::ColumnFile {
            shard: self.info.id,
            source,
        };
        let mut thaw = Thaw {
            data: &self.data,
            frozen: Some(frozen.clone()),
        };
        let fs = &*self.fs;
        let schema = {
            let schema = self.schema.lock().unwrap_or_else(|e| e.into_inner());
            schema_record(schema.iter().flat_map(|(m, types)| {
                types
                    .iter()
                    .map(move |(f, ty)| (m.as_str(), f.as_str(), *ty))
            }))
        };
        let file = column_file::write(fs, &self.dir, covered, frozen.series(), tombstones, schema)
            .map_err(file_err)?;
        thaw.frozen = None;
        let mut data = self.data.write().unwrap_or_else(|e| e.into_inner());
        data.frozen.retain(|h| !Arc::ptr_eq(h, &frozen));
        data.files.push(Arc::new(file));
        data.frozen_from = 0;
        self.log.hold(self.key(), data.held_from());
        drop(data);
        self.log
            .trim()
            .map_err(|source| StorageError::DataLog { source })?;
        Ok(())
    }

    /// Whether the shard has points in its head and has taken no write since `since`.
    pub fn idle_with_head(&self, since: i64) -> bool {
        self.last_write.load(Ordering::Relaxed) < since
            && !self
                .data
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .head
                .is_empty()
    }

    /// What the head costs: its bytes, or its records' in the data log if more.
    pub fn head_bytes(&self) -> usize {
        let data = self.data.read().unwrap_or_else(|e| e.into_inner());
        data.head.bytes().max(data.log_bytes)
    }

    /// Whether enough column files have gathered to merge some.
    pub fn wants_merge(&self) -> bool {
        self.data
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .files
            .len()
            >= MERGE_AT
            && !self.merging.load(Ordering::Acquire)
    }

    /// Merges column files (see [`Shard::merge_files`]); one merge at a time, and never in
    /// the way of flushes, which keep the head and the log within their budget meanwhile.
    pub fn merge(&self) -> Result<(), StorageError> {
        alone(&self.merging, || self.merge_files())
    }

    /// Once a shard has [`MERGE_AT`] column files, merges them into one, series by series
    /// (memory holds one series at a time): fewer indexes to load at start-up, fewer files
    /// for each read, and longer blocks that compress better. The merged file takes the
    /// newest file's name (so it covers the same log) and replaces it atomically; the
    /// others are removed after. A crash in between leaves duplicates, which reads resolve
    /// and the next merge removes.
    fn merge_files(&self) -> Result<(), StorageError> {
        let files = {
            let mut all = self
                .data
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .files
                .clone();
            if all.len() < MERGE_AT {
                return Ok(());
            }
            // Size-tiered: from the newest file back, take an older file only while it is
            // at most twice the newer ones together, so each byte is rewritten a
            // logarithmic number of times rather than at every merge.
            all.sort_by_key(|f| std::cmp::Reverse(f.index.covered_lsn));
            let (mut taken, mut total) = (0, 0u64);
            for f in &all {
                if taken > 0 && f.size() > 2 * total {
                    break;
                }
                total += f.size();
                taken += 1;
            }
            let others = all.split_off(taken);
            let mut chosen = all;
            if chosen.len() < 2 {
                return Ok(());
            }
            // The merged file replaces the file of its name, which must then be merged
            // too: names follow covered LSNs, but a restore may keep two files covering
            // the same LSN (see `backup::restore::merge_and_check`).
            let covered = chosen
                .iter()
                .map(|f| f.index.covered_lsn)
                .max()
                .unwrap_or(0);
            let name = column_file::file_name(covered);
            if let Some(same) = others.into_iter().find(|f| f.path.ends_with(&name)) {
                chosen.push(same);
            }
            chosen
        };
        let file_err = |source| StorageError::ColumnFile {
            shard: self.info.id,
            source,
        };
        let covered = files.iter().map(|f| f.index.covered_lsn).max().unwrap_or(0);
        let mut writer = column_file::ColumnFileWriter::create(&*self.fs, &self.dir, covered)
            .map_err(file_err)?;
        // The merged file carries its files' tombstones (older files may still hold points
        // they hit) and leaves out the points they hit.
        let mut tombstones = Tombstones::default();
        for t in files.iter().flat_map(|f| &f.index.tombstones) {
            tombstones.add(t.clone());
        }
        writer.keep_tombstones(tombstones.all());
        writer.keep_schema(schema_record(
            files.iter().flat_map(|f| file_schema(f, &tombstones)),
        ));
        // The files' series are in key order: they are walked side by side, a key at a
        // time with its entry in every file that has it (a map of every key took some 60
        // bytes a series, 600 MB for a merge of ten million).
        let mut next = vec![0usize; files.len()];
        let mut parts: Vec<(&ColumnFile, &FileSeries)> = Vec::with_capacity(files.len());
        while let Some(key) = files
            .iter()
            .zip(&next)
            .filter_map(|(f, &at)| f.series().get(at).map(|s| &s.key))
            .min()
        {
            parts.clear();
            for (f, at) in files.iter().zip(next.iter_mut()) {
                if let Some(s) = f.series().get(*at).filter(|s| s.key == *key) {
                    parts.push((f.as_ref(), s));
                    *at += 1;
                }
            }
            let deleted =
                tombstone::ranges(tombstones.of_measurement(&parts[0].1.measurement), key);
            let mut fields: BTreeMap<&str, Vec<Column>> = BTreeMap::new();
            for &(f, s) in &parts {
                for block in f.blocks(s) {
                    let column = f.read_block(block).map_err(file_err)?;
                    let column = tombstone::without_deleted(&column, &deleted).unwrap_or(column);
                    if !column.is_empty() {
                        fields.entry(f.field(block)).or_default().push(column);
                    }
                }
            }
            if fields.is_empty() {
                continue;
            }
            let resolved: Vec<(String, Column)> = fields
                .into_iter()
                .filter_map(|(name, cols)| Some((name.to_owned(), Column::resolve(cols)?)))
                .collect();
            let resolved: Vec<(&str, &Column)> =
                resolved.iter().map(|(n, c)| (n.as_str(), c)).collect();
            writer
                .add_series(key, &parts[0].1.measurement, &key_tags(key), &resolved)
                .map_err(file_err)?;
        }
        let merged = Arc::new(writer.finish().map_err(file_err)?);
        let path = merged.path.clone();
        if let Some(e) = crate::failpoint::io_check("merge.after_write") {
            return Err(file_err(column_file::ColumnFileError::Io {
                path,
                source: e,
            }));
        }
        {
            let mut data = self.data.write().unwrap_or_else(|e| e.into_inner());
            data.files
                .retain(|f| !files.iter().any(|m| Arc::ptr_eq(f, m)));
            data.files.insert(0, merged);
        }
        for f in &files {
            if f.path != path {
                // Unsynced: a crash may bring it back, a duplicate that reads resolve and
                // the next merge removes.
                let _ = self.fs.remove(&f.path);
            }
        }
        Ok(())
    }

    /// The highest write version stored in this shard's log.
    pub fn max_version(&self) -> u64 {
        self.max_version.load(Ordering::Acquire)
    }

    /// Field types of a measurement in this shard.
    pub fn field_types(&self, measurement: &str) -> HashMap<String, FieldType> {
        let schema = self.schema.lock().unwrap_or_else(|e| e.into_inner());
        schema
            .get(measurement)
            .map(|t| t.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default()
    }

    /// Measurements with a series: one whose every point was deleted keeps its field
    /// types (as InfluxDB's shards do) but is no longer listed.
    pub fn measurements(&self) -> BTreeSet<String> {
        let names: BTreeSet<String> = {
            let schema = self.schema.lock().unwrap_or_else(|e| e.into_inner());
            schema.keys().cloned().collect()
        };
        let deleted_from: Vec<String> = {
            let data = self.data.read().unwrap_or_else(|e| e.into_inner());
            names
                .iter()
                .filter(|m| !data.tombstones.of_measurement(m).is_empty())
                .cloned()
                .collect()
        };
        let mut names = names;
        for m in deleted_from {
            if self.series_list(&|x| x == m).is_empty() {
                names.remove(&m);
            }
        }
        names
    }

    /// The series of a measurement that the read's selector allows and its `keep`
    /// accepts, with the parts of the asked-for fields within [start, end]: the head's
    /// entries copied, column-file blocks left to decode (by whichever thread wants them),
    /// with what deletes took from them.
    ///
    /// The head's entries are copied under the data lock, which writes need to apply
    /// their points: so the lock is taken again for each [`POINTS_COPIED_PER_HOLD`]
    /// points copied, and a write waits for one such piece, not for a whole read of a
    /// 64 MiB head. Each series is read whole under one hold, so it is consistent in
    /// itself (a flush moving it from the head to a file meanwhile is seen before or
    /// after, never half); different series may be read either side of a write.
    pub fn series_of(&self, read: &SeriesRead<'_>) -> Vec<SeriesParts> {
        let selected: Vec<(Arc<str>, Tags)> = {
            let data = self.data.read().unwrap_or_else(|e| e.into_inner());
            let Some(index) = data.index.measurement(read.measurement) else {
                return Vec::new();
            };
            index
                .select(read.selector)
                .into_iter()
                .filter(|(_, tags)| (read.keep)(tags))
                .map(|(key, tags)| (key.clone(), tags))
                .collect()
        };
        // Looked up once per column: a measurement may have 100,000 fields.
        let field_at: HashMap<&str, usize> = read
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.as_str(), i))
            .collect();
        let mut out = Vec::with_capacity(selected.len());
        let mut selected = selected.into_iter().peekable();
        while selected.peek().is_some() {
            let data = self.data.read().unwrap_or_else(|e| e.into_inner());
            let tombstones = data.tombstones.of_measurement(read.measurement);
            let heads: Vec<&Head> = std::iter::once(&data.head)
                .chain(data.frozen.iter().map(|h| h.as_ref()))
                .collect();
            let mut copied = 0;
            while copied < POINTS_COPIED_PER_HOLD {
                let Some((key, tags)) = selected.next() else {
                    break;
                };
                let deleted = tombstone::ranges(tombstones, &key);
                let mut fields: Vec<Vec<Part>> =
                    (0..read.fields.len()).map(|_| Vec::new()).collect();
                for head in &heads {
                    let Some(s) = head.get(&key) else { continue };
                    for (name, column) in s.columns() {
                        if let Some(&i) = field_at.get(&**name) {
                            let part = column.slice_time(read.start, read.end);
                            copied += part.len().max(1);
                            if !part.is_empty() {
                                fields[i].push(Part::Column(part));
                            }
                        }
                    }
                }
                copied += 1;
                for file in &data.files {
                    let Some(at) = file.find_series(&key) else {
                        continue;
                    };
                    for (b, block) in file.blocks(&file.series()[at]).iter().enumerate() {
                        if block.max_time < read.start || block.min_time > read.end {
                            continue;
                        }
                        if tombstone::covers(
                            &deleted,
                            block.min_time,
                            block.max_time,
                            file.index.max_version,
                        ) {
                            continue;
                        }
                        if let Some(&i) = field_at.get(&**file.field(block)) {
                            fields[i].push(Part::Block {
                                file: file.clone(),
                                series: at,
                                block: b,
                            });
                        }
                    }
                }
                out.push(SeriesParts {
                    key,
                    tags,
                    fields,
                    deleted,
                });
            }
        }
        out
    }

    /// The tag keys of a measurement's series, but for series deletes emptied.
    pub fn tag_keys(&self, measurement: &str) -> BTreeSet<String> {
        let data = self.data.read().unwrap_or_else(|e| e.into_inner());
        let Some(index) = data.index.measurement(measurement) else {
            return BTreeSet::new();
        };
        if data.tombstones.of_measurement(measurement).is_empty() {
            index.tag_values().map(|(k, _)| k.to_owned()).collect()
        } else {
            index
                .series()
                .filter(|(k, _)| visible(&data, measurement, k))
                .flat_map(|(_, tags)| tags.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>())
                .collect()
        }
    }

    /// The tag (key, value) pairs of each measurement `wanted` accepts, of the keys
    /// `key` accepts, of the series not emptied by deletes.
    pub fn tag_values(
        &self,
        wanted: &dyn Fn(&str) -> bool,
        key: &dyn Fn(&str) -> bool,
    ) -> Vec<(String, Vec<(String, String)>)> {
        let data = self.data.read().unwrap_or_else(|e| e.into_inner());
        data.index
            .measurements()
            .filter(|(m, _)| wanted(m))
            .map(|(m, index)| {
                let pairs = if data.tombstones.of_measurement(m).is_empty() {
                    index
                        .tag_values()
                        .filter(|(k, _)| key(k))
                        .flat_map(|(k, values)| values.map(move |v| (k.to_owned(), v.to_owned())))
                        .collect()
                } else {
                    index
                        .series()
                        .filter(|(k, _)| visible(&data, m, k))
                        .flat_map(|(_, tags)| {
                            let pairs = tags.iter().filter(|(k, _)| key(k));
                            pairs.cloned().collect::<Vec<_>>()
                        })
                        .collect()
                };
                (m.to_owned(), pairs)
            })
            .collect()
    }

    /// The series (key and tags, in key order) of each measurement `wanted` accepts, but
    /// for those deletes emptied.
    pub fn series_list(&self, wanted: &dyn Fn(&str) -> bool) -> Vec<MeasurementSeries> {
        let data = self.data.read().unwrap_or_else(|e| e.into_inner());
        data.index
            .measurements()
            .filter(|(m, _)| wanted(m))
            .map(|(m, index)| {
                let all = data.tombstones.of_measurement(m).is_empty();
                let series = index
                    .series()
                    .filter(|(k, _)| all || visible(&data, m, k))
                    .map(|(k, t)| (k.clone(), t))
                    .collect();
                (m.to_owned(), series)
            })
            .filter(|(_, series): &MeasurementSeries| !series.is_empty())
            .collect()
    }

    /// Whether a series keeps a point in a file despite the deletes that hit it: blocks
    /// a delete covers whole are judged from the index, others are read.
    fn visible_in_file(
        file: &ColumnFile,
        s: &FileSeries,
        deleted: &[tombstone::DeletedRange],
    ) -> bool {
        file.blocks(s).iter().any(|b| {
            if !tombstone::overlaps(deleted, b.min_time, b.max_time) {
                return true; // a block is never empty
            }
            !tombstone::covers(deleted, b.min_time, b.max_time, file.index.max_version)
                && file.read_block(b).map_or(true, |c| {
                    // An unreadable block is reported by the reads that need it.
                    (0..c.len()).any(|i| !tombstone::hits(deleted, c.times[i], c.versions[i]))
                })
        })
    }

    /// The shard's column files at one point in time, for a backup: its head is written
    /// out first, so that everything acknowledged before the call is in them (the data
    /// log holds every shard's records, which a shard's archive cannot carry as files).
    /// The maps keep the bytes even if a later merge removes the files.
    pub fn backup_files(&self) -> Result<ShardFiles, StorageError> {
        // A flush under way (another thread's) may have frozen points this one does not
        // write: wait for it, then write out the rest.
        {
            let _flushing = self.flushing.lock().unwrap_or_else(|e| e.into_inner());
            self.flush_inner()?;
        }
        let data = self.data.read().unwrap_or_else(|e| e.into_inner());
        Ok(ShardFiles {
            column_files: data.files.clone(),
        })
    }
}

/// Whether a series the index knows keeps a point despite the deletes that hit it.
fn visible(data: &ShardData, measurement: &str, key: &str) -> bool {
    let deleted = tombstone::ranges(data.tombstones.of_measurement(measurement), key);
    if deleted.is_empty() {
        return true;
    }
    let in_heads = std::iter::once(&data.head)
        .chain(data.frozen.iter().map(|h| h.as_ref()))
        .filter_map(|h| h.get(key))
        .any(|s| {
            s.columns().any(|(_, c)| {
                tombstone::without_deleted(&c, &deleted).is_none_or(|c| !c.is_empty())
            })
        });
    in_heads
        || data.files.iter().any(|file| {
            file.find_series(key)
                .is_some_and(|at| Shard::visible_in_file(file, &file.series()[at], &deleted))
        })
}

/// See [`Shard::backup_files`].
pub struct ShardFiles {
    pub column_files: Vec<Arc<ColumnFile>>,
}

/// The field types a column file records (its blocks', and those it keeps without points),
/// but for those a DROP MEASUREMENT took after the file was written (merges and flushes
/// leave the dropped points out of newer files).
fn file_schema<'f>(
    file: &'f ColumnFile,
    tombstones: &'f Tombstones,
) -> impl Iterator<Item = (&'f str, &'f str, FieldType)> + 'f {
    let blocks = file.series().iter().flat_map(move |s| {
        file.blocks(s)
            .iter()
            .map(move |b| (&*s.measurement, &**file.field(b), b.field_type))
    });
    let kept = file.index.schema.iter().flat_map(|m| {
        m.fields
            .iter()
            .map(move |f| (m.measurement.as_str(), f.name.as_str(), f.field_type))
    });
    blocks.chain(kept).filter_map(move |(m, f, code)| {
        let dropped = tombstones
            .schema_dropped_at(m)
            .is_some_and(|at| file.index.max_version < at);
        let ty = u8::try_from(code).ok().and_then(FieldType::from_code)?;
        (!dropped).then_some((m, f, ty))
    })
}

/// A schema as column files record it, sorted.
fn schema_record<'s>(
    types: impl Iterator<Item = (&'s str, &'s str, FieldType)>,
) -> Vec<crate::proto::MeasurementFields> {
    let mut sorted: BTreeMap<&str, BTreeMap<&str, FieldType>> = BTreeMap::new();
    for (m, f, ty) in types {
        sorted.entry(m).or_default().entry(f).or_insert(ty);
    }
    sorted
        .into_iter()
        .map(|(m, fields)| crate::proto::MeasurementFields {
            measurement: m.to_owned(),
            fields: fields
                .into_iter()
                .map(|(name, ty)| crate::proto::FieldSchema {
                    name: name.to_owned(),
                    field_type: u32::from(ty.code()),
                })
                .collect(),
        })
        .collect()
}

/// Applies a durable tombstone to the shard's state (replay and new deletes alike).
fn apply_tombstone(data: &mut ShardData, schema: &mut Schema, t: Tombstone) {
    if t.drop_schema {
        schema.remove(&t.measurement);
    }
    data.head.delete(&t);
    data.tombstones.add(t);
}

/// A head frozen for a flush whose column file is not in place yet: its points are in no
/// file, so if the flush fails (an error or a panic) they go back into the live head, for
/// the next flush to write out; the log segments holding them are removed only after.
struct Thaw<'a> {
    data: &'a RwLock<ShardData>,
    /// None once the file is in place.
    frozen: Option<Arc<Head>>,
}

impl Drop for Thaw<'_> {
    fn drop(&mut self) {
        let Some(frozen) = self.frozen.take() else {
            return;
        };
        let mut data = self.data.write().unwrap_or_else(|e| e.into_inner());
        data.frozen.retain(|h| !Arc::ptr_eq(h, &frozen));
        // Its records stay the live head's to hold in the log.
        if let Some(from) = data.held_from() {
            data.head_from = from;
        }
        data.frozen_from = 0;
        // Newer writes win by version, and deletes since the freeze still hide what they
        // hit (reads filter every part through the shard's tombstones).
        for s in frozen.series() {
            for (name, c) in s.columns() {
                for i in 0..c.len() {
                    data.head.insert(
                        &s.key,
                        &s.measurement,
                        c.times[i],
                        c.versions[i],
                        &[(name.clone(), c.values.get(i))],
                    );
                }
            }
        }
    }
}

/// Fails with [`StorageError::ShardMissing`] unless `dir` is a directory.
fn require_dir(fs: &dyn FileSystem, shard: u64, dir: &Path) -> Result<(), StorageError> {
    match fs.exists(dir) {
        Ok(true) => Ok(()),
        Ok(false) => Err(StorageError::ShardMissing {
            shard,
            path: dir.to_owned(),
        }),
        Err(source) => Err(StorageError::ShardDir {
            path: dir.to_owned(),
            source,
        }),
    }
}

/// Runs `work` unless another run holding `busy` is under way (then does nothing). `busy`
/// is cleared however `work` ends, a panic included: a flush or merge that panicked once
/// must not keep every later one from running (and the head from ever being written out).
fn alone(
    busy: &AtomicBool,
    work: impl FnOnce() -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    struct Clears<'a>(&'a AtomicBool);
    impl Drop for Clears<'_> {
        fn drop(&mut self) {
            self.0.store(false, Ordering::Release);
        }
    }
    if busy.swap(true, Ordering::AcqRel) {
        return Ok(());
    }
    let _clears = Clears(busy);
    work()
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_logged_line_is_sent_with_its_time_in_nanoseconds() {
        let cases: [(&str, i64, Option<&str>); 7] = [
            (
                "m v=1i 1700000000",
                1_700_000_000_000_000_000,
                Some("m v=1i 1700000000000000000"),
            ),
            (
                "m v=1i 1700000000000000000",
                1_700_000_000_000_000_000,
                Some("m v=1i 1700000000000000000"),
            ),
            ("m,t=a\\ 5 v=1", 42, Some("m,t=a\\ 5 v=1 42")),
            ("m v=1 -5", -5_000, Some("m v=1 -5000")),
            // Read again by the parser: a quoted string, an escaped space, a mismatch.
            ("m s=\"a 5\"", 7, None),
            ("m a\\ 5=1", 7, None),
            ("m v=1 6", 7, None),
        ];
        for (line, time, want) in cases {
            let mut out = String::new();
            let done = push_with_time(&mut out, line.as_bytes(), time);
            assert_eq!(done.then_some(out.as_str()), want, "{line}");
        }
    }
    use super::*;
    use crate::line_protocol::parse_body;
    use crate::log::fs::RealFs;
    use crate::log::{Log, LogOptions};
    use crate::storage::points_codec::{encode_point_lines, encode_points_written};

    fn values(shard: &Shard, field: &str) -> FieldEntries {
        shard.points_for_test("cpu", field)
    }

    /// A field's (series key, time, value) entries, as read.
    type FieldEntries = Vec<(String, i64, FieldValue)>;

    /// Every series' every field, as read.
    fn all_values(shard: &Shard) -> Vec<(String, FieldEntries)> {
        let mut fields: Vec<String> = shard.field_types("cpu").into_keys().collect();
        fields.sort();
        fields
            .into_iter()
            .map(|f| {
                let v = values(shard, &f);
                (f, v)
            })
            .collect()
    }

    fn data_log(dir: &Path) -> Arc<DataLog> {
        Shard::test_data_log(dir)
    }

    fn open(dir: &Path, info: ShardInfo) -> Result<Shard, StorageError> {
        Shard::open_for_test(dir, info)
    }

    /// Writes `records` as the shard's own log (the layout of earlier versions).
    fn own_log(dir: &Path, records: Vec<Record>) {
        let (log, _) = Log::open(dir.join(OWN_LOG_DIR), LogOptions::default()).unwrap();
        log.append_blocking(records).unwrap();
    }

    /// A shard whose own log (an earlier layout) holds `records`, opened: they move into a
    /// column file.
    fn replayed(dir: &Path, records: Vec<Record>) -> Shard {
        let info = ShardInfo::of_group("db", "autogen", 0, i64::MAX / 2);
        own_log(dir, records);
        let shard = open(dir, info).unwrap();
        assert!(
            !dir.join(OWN_LOG_DIR).exists(),
            "the shard's own log is gone"
        );
        shard
    }

    /// The records writes log today, zstd frames of the lines, replay into exactly the head
    /// that the same lines logged uncompressed (as earlier versions did) replay into.
    #[test]
    fn compressed_lines_records_replay_exactly() {
        use crate::bench::ingest::{generate_batches, IngestOptions};
        use crate::storage::points_codec::{compress_point_lines, LinesRecord};
        let opts = IngestOptions {
            points: 12_000,
            ..IngestOptions::default()
        };
        let bodies = generate_batches(&opts);
        let (mut plain, mut compressed) = (Vec::new(), Vec::new());
        for (i, body) in bodies.iter().enumerate() {
            let (points, errors) = parse_body(body);
            assert!(errors.is_empty());
            let version = 100 + i as u64;
            plain.push(Record::new(
                POINT_LINES_RECORD,
                encode_point_lines(version, &points),
            ));
            let LinesRecord::Compressed { frame, .. } = compress_point_lines(version, &points)
            else {
                panic!("a batch of {} lines is compressed", points.len());
            };
            compressed.push(Record::new(POINT_LINES_ZSTD_RECORD, frame));
        }
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let from_plain = replayed(a.path(), plain);
        let from_compressed = replayed(b.path(), compressed);
        assert_eq!(from_compressed.max_version(), 102);
        let expected = all_values(&from_plain);
        assert_eq!(expected.len(), 10);
        assert_eq!(expected[0].1.len(), 12_000);
        assert_eq!(all_values(&from_compressed), expected);
        assert_eq!(
            from_compressed.series_list(&|_| true),
            from_plain.series_list(&|_| true)
        );
    }

    /// A flush or merge that panics (a bug) leaves the next one free to run.
    #[test]
    fn a_panicking_run_does_not_keep_the_next_from_running() {
        let busy = AtomicBool::new(false);
        let panicked = std::panic::catch_unwind(|| alone(&busy, || panic!("a bug in a flush")));
        assert!(panicked.is_err());
        let mut ran = false;
        alone(&busy, || {
            ran = true;
            Ok(())
        })
        .unwrap();
        assert!(ran, "the run after a panic ran");
        // While one runs, another does nothing.
        alone(&busy, || {
            let mut nested = false;
            alone(&busy, || {
                nested = true;
                Ok(())
            })?;
            assert!(!nested);
            Ok(())
        })
        .unwrap();
    }

    /// A compressed record that does not decompress stops the shard's start-up with its LSN
    /// (its checksum held, so it is not a torn tail but corruption).
    #[test]
    fn a_compressed_record_that_does_not_decompress_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let info = ShardInfo::of_group("db", "autogen", 0, i64::MAX / 2);
        own_log(
            dir.path(),
            vec![Record::new(POINT_LINES_ZSTD_RECORD, vec![1, 2, 3])],
        );
        match open(dir.path(), info) {
            Err(StorageError::CorruptRecord { lsn: 1, .. }) => {}
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("a record that does not decompress was replayed"),
        }
    }

    /// Data directories written before lines were logged hold `PointsWritten` records:
    /// both kinds replay, and a logged line's "time" field is ignored as when it was written.
    #[test]
    fn both_record_kinds_replay_into_the_head() {
        let dir = tempfile::tempdir().unwrap();
        let info = ShardInfo::of_group("db", "autogen", 0, i64::MAX / 2);
        let (old, _) = parse_body(b"cpu,host=a usage=1 10\ncpu,host=a usage=2 20");
        let (mut new, _) = parse_body(b"cpu,host=b usage=3,time=1 30\ncpu,host=a usage=4 20");
        for p in &mut new {
            p.fields.retain(|(k, _)| k != "time");
        }
        own_log(
            dir.path(),
            vec![
                Record::new(POINTS_RECORD, encode_points_written(7, &old)),
                Record::new(POINT_LINES_RECORD, encode_point_lines(8, &new)),
            ],
        );
        let shard = open(dir.path(), info.clone()).unwrap();
        assert_eq!(shard.max_version(), 8);
        let key = |s: &str| s.to_owned();
        assert_eq!(
            values(&shard, "usage"),
            vec![
                (key("cpu,host=a"), 10, FieldValue::Float(1.0)),
                (key("cpu,host=a"), 20, FieldValue::Float(4.0)),
                (key("cpu,host=b"), 30, FieldValue::Float(3.0)),
            ]
        );
        assert!(values(&shard, "time").is_empty());
    }

    /// A request whose client goes away drops its write at any await: every record the
    /// log made durable is applied all the same (the watermark reaches the log's end, so
    /// flushes go on), and the head holds what a restart replays.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_dropped_at_any_await_is_applied_once_durable() {
        use std::future::Future;
        use std::task::{Context, Poll};
        let dir = tempfile::tempdir().unwrap();
        let info = ShardInfo::of_group("db", "autogen", 0, i64::MAX / 2);
        let shard = Arc::new(open(dir.path(), info.clone()).unwrap());
        let waker = futures_util::task::noop_waker();
        let mut abandoned = 0;
        for polls in 0..8u64 {
            let line = format!("cpu,host=h{polls} usage={polls} {polls}");
            let (points, _) = parse_body(line.as_bytes());
            let points = shard.admit(points, usize::MAX).points;
            let before = shard.log.log().durable_lsn();
            let mut write = Box::pin(shard.write(&points, 10 + polls));
            let mut finished = false;
            for _ in 0..polls {
                if let Poll::Ready(r) = write.as_mut().poll(&mut Context::from_waker(&waker)) {
                    r.unwrap();
                    finished = true;
                    break;
                }
            }
            drop(write);
            let tombstone = Tombstone {
                version: 100 + polls,
                measurement: "none".into(),
                series_keys: Vec::new(),
                min_time: 0,
                max_time: 0,
                drop_schema: false,
            };
            let mut delete = Box::pin(shard.delete(vec![tombstone]));
            for _ in 0..polls {
                if delete
                    .as_mut()
                    .poll(&mut Context::from_waker(&waker))
                    .is_ready()
                {
                    break;
                }
            }
            drop(delete);
            // An awaited write after them: its LSN is the log's end once it returns.
            let last_line = format!("cpu,host=last usage={polls} {polls}");
            let (last, _) = parse_body(last_line.as_bytes());
            let last = shard.admit(last, usize::MAX).points;
            shard.write(&last, 200 + polls).await.unwrap();
            let end = shard.log.log().durable_lsn();
            if !finished && end > before + 2 {
                abandoned += 1;
            }
            let taken = shard.next_seq.load(Ordering::Acquire) - 1;
            let applied = (0..10_000).any(|_| {
                let upto = shard.data.read().unwrap().watermark.upto;
                upto == taken || {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                    false
                }
            });
            assert!(
                applied,
                "dropped after {polls} polls: the watermark stays below {taken}"
            );
        }
        assert!(abandoned > 0, "no write was dropped after it was queued");
        let live = all_values(&shard);
        // 8 awaited writes, and 7 dropped ones: the one dropped before its first poll
        // queued nothing.
        assert_eq!(live[0].1.len(), 15, "every queued write is visible");
        let released = (0..10_000).any(|_| {
            Arc::strong_count(&shard) == 1 || {
                std::thread::sleep(std::time::Duration::from_millis(1));
                false
            }
        });
        assert!(released, "a thread still holds the shard");
        drop(shard);
        let log = data_log(dir.path());
        let reopened = Arc::new(
            Shard::open_on(Arc::new(RealFs), dir.path(), info, log.clone(), 1 << 30).unwrap(),
        );
        replay_log(&log, |_| Some(reopened.clone()), |_, e| panic!("{e}")).unwrap();
        reopened.settle_replay();
        assert_eq!(all_values(&reopened), live);
    }
}
