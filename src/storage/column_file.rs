//! Immutable column files: a shard's head, frozen and compressed.
//!
//! ```text
//!   +----------+---------------------------------+------------------+--------------------+
//!   | SKCOLF01 | block | block | ...              | index (prost)    | footer (28 bytes)  |
//!   +----------+---------------------------------+------------------+--------------------+
//!   block  = timestamps | versions | values (each a self-delimiting stream of
//!            storage::encoding) | masked crc32c of those bytes
//!   versions = either  shift (1 byte, < 64) | distinct >> shift | runs
//!              or      0x80 | split (1 byte) | distinct >> split | distinct's low split
//!                      bits | runs
//!              where distinct are the block's distinct versions in order and runs how
//!              many values each covers
//!   index  = zstd-compressed prost ColumnFileIndex (series, their blocks, and the
//!            shard's tombstones: see storage::tombstone)
//!   footer = index offset (u64 LE) | index length (u64 LE) | masked crc32c of the index
//!            (u32 LE) | SKCOLEND
//! ```
//! A block holds up to [`BLOCK_VALUES`] values of one field of one series, sorted by time
//! with one value per time. Files are written to a temporary name, synced, renamed and the
//! directory synced, so a file is whole or absent; every block's checksum is verified when
//! it is read.

use super::column::{Column, FieldType, Values};
use super::encoding;
use super::head::SeriesHead;
use crate::line_protocol::key_tags;
use crate::log::format::mask;
use crate::log::fs::{FileBytes, FileSystem, FsFile};
use crate::proto::{ColumnBlock, ColumnFileIndex, ColumnSeries, Tag, Tombstone};
use prost::Message;
use std::borrow::Cow;
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"SKCOLF02";
const END_MAGIC: &[u8; 8] = b"SKCOLEND";
const FOOTER_LEN: usize = 28;
pub(crate) const BLOCK_VALUES: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum ColumnFileError {
    #[error("column file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The index unpacks past the bound the caller set (a restore's size limit).
    #[error("column file {path}: its index unpacks to more than {limit} bytes")]
    IndexTooLarge { path: PathBuf, limit: u64 },
    #[error("column file {path} at byte {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
}

pub struct ColumnFile {
    pub path: PathBuf,
    /// The index but its series, which are held as `series` and `blocks`.
    pub index: ColumnFileIndex,
    /// The file's series in key order (reads find one by binary search). Held compactly
    /// rather than as the index's messages: an open file stays in memory, and a message
    /// of a series of one point took some 900 bytes in nine allocations.
    series: Vec<FileSeries>,
    /// Every series' blocks, one series after the other.
    blocks: Vec<FileBlock>,
    /// The blocks' field names, by number.
    fields: Vec<Arc<str>>,
    /// The whole file, mapped read-only and shared: blocks are decoded straight from it
    /// and backups stream it without a copy, and it keeps the bytes after a merge removes
    /// the file. The price: an I/O error while a page of it is faulted in (a bad sector)
    /// raises SIGBUS and ends the process, where a read would have failed one query. That
    /// is accepted because the file is immutable once synced and renamed into place (so
    /// only a failing disk, or another process truncating it, can cause it); a process
    /// ended that way loses nothing acknowledged (the log and column files are synced);
    /// and what is read at every start (the index) is not read through the map, so a
    /// restart does not meet the damage again until a query, merge or backup reads that
    /// block. The shard must then be restored from a backup, as with any damaged file.
    map: FileBytes,
    /// Bytes of the index unpacked: what the file costs in memory while it is open.
    index_len: u64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ColumnFileError + '_ {
    move |source| ColumnFileError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One series of an open column file.
#[derive(Debug)]
pub struct FileSeries {
    pub key: Arc<str>,
    /// Shared by the file's series of one measurement.
    pub measurement: Arc<str>,
    /// Its blocks' range in the file's `blocks`.
    blocks: (u32, u32),
}

/// A block of an open column file: [`ColumnBlock`] with its field name a number in the
/// file's names (an open file holds a block for every series and field, ten million for
/// ten million series of one field: 16 bytes less each than with a shared name).
#[derive(Debug)]
pub struct FileBlock {
    pub offset: u64,
    pub min_time: i64,
    pub max_time: i64,
    pub length: u32,
    pub count: u32,
    /// In the file's `fields` ([`ColumnFile::field`]).
    field: u32,
    /// [`FieldType`] code.
    pub field_type: u32,
}

/// The field names of a file's blocks, numbered.
#[derive(Default)]
struct FieldNames {
    numbers: std::collections::HashMap<Arc<str>, u32, foldhash::fast::RandomState>,
    names: Vec<Arc<str>>,
}

impl FieldNames {
    fn number(&mut self, name: &str) -> u32 {
        if let Some(&n) = self.numbers.get(name) {
            return n;
        }
        let n = u32::try_from(self.names.len()).expect("fewer than 2^32 field names");
        let name: Arc<str> = name.into();
        self.names.push(name.clone());
        self.numbers.insert(name, n);
        n
    }
}

/// One `Arc` per distinct name, for the names that repeat across a file's index.
#[derive(Default)]
struct Names(HashSet<Arc<str>, foldhash::fast::RandomState>);

impl Names {
    fn get(&mut self, name: &str) -> Arc<str> {
        if let Some(known) = self.0.get(name) {
            return known.clone();
        }
        let name: Arc<str> = name.into();
        self.0.insert(name.clone());
        name
    }

    fn share(&mut self, name: &Arc<str>) -> Arc<str> {
        if let Some(known) = self.0.get(&**name) {
            return known.clone();
        }
        self.0.insert(name.clone());
        name.clone()
    }
}

/// The file name of the column file covering a shard log up to `covered_lsn`.
pub(crate) fn file_name(covered_lsn: u64) -> String {
    format!("{covered_lsn:020}.col")
}

pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".col")?;
    (digits.len() == 20).then(|| digits.parse().ok()).flatten()
}

/// Writes the given series (resolved and sorted here) as a column file, atomically, and
/// returns it open (sharing the series' keys).
pub(crate) fn write<'s>(
    fs: &dyn FileSystem,
    dir: &Path,
    covered_lsn: u64,
    series: impl IntoIterator<Item = &'s SeriesHead>,
    tombstones: Vec<Tombstone>,
    schema: Vec<crate::proto::MeasurementFields>,
) -> Result<ColumnFile, ColumnFileError> {
    let mut writer = ColumnFileWriter::create(fs, dir, covered_lsn)?;
    writer.keep_tombstones(tombstones);
    writer.keep_schema(schema);
    let mut ordered: Vec<&SeriesHead> = series.into_iter().collect();
    ordered.sort_by(|a, b| a.key.cmp(&b.key));
    for s in ordered {
        // A series' fields are usually written together, so their columns share times and
        // versions: the order that resolves one resolves the others.
        let mut shared: Option<(&Column, Vec<usize>)> = None;
        let columns: Vec<(&Arc<str>, Cow<'_, Column>)> = s.columns().collect();
        let mut fields: Vec<(&str, Cow<'_, Column>)> = Vec::with_capacity(columns.len());
        for (name, c) in &columns {
            if c.resolved {
                fields.push((name, Cow::Borrowed(c.as_ref())));
                continue;
            }
            let keep = match shared.take() {
                Some((like, keep)) if like.times == c.times && like.versions == c.versions => keep,
                _ => c.resolved_order(),
            };
            fields.push((name, Cow::Owned(c.take(&keep))));
            shared = Some((c.as_ref(), keep));
        }
        let fields: Vec<(&str, &Column)> = fields.iter().map(|(n, c)| (*n, c.as_ref())).collect();
        writer.add_series(&s.key, &s.measurement, &key_tags(&s.key), &fields)?;
    }
    writer.finish()
}

/// The field number of `ColumnFileIndex.series`.
const SERIES_FIELD: u32 = 2;

/// Bytes a writer gathers before it writes them to the file.
const WRITE_BUFFER_BYTES: usize = 1 << 20;

/// Streams series (in key order, columns resolved) into a new column file.
pub(crate) struct ColumnFileWriter<'a> {
    fs: &'a dyn FileSystem,
    dir: PathBuf,
    tmp: PathBuf,
    path: PathBuf,
    file: Box<dyn FsFile>,
    /// Bytes not yet written to `file`, which holds `offset - out.len()` bytes.
    out: Vec<u8>,
    offset: u64,
    block: Vec<u8>,
    /// The index but its series, which are encoded and compressed into `series` as they
    /// are added: a flush of a million series holds neither a million index messages nor
    /// their unpacked bytes (some 100 MB, once more while they were compressed).
    index: ColumnFileIndex,
    series: zstd::stream::write::Encoder<'static, Vec<u8>>,
    /// Bytes of the index before compression.
    index_len: u64,
    /// One series' index entry, encoded.
    entry: Vec<u8>,
    /// The series as the open file keeps them, their keys shared with the caller's: the
    /// file written is opened without reading its index back (which held the index
    /// unpacked and every key a second time).
    kept: Vec<FileSeries>,
    kept_blocks: Vec<FileBlock>,
    names: Names,
    fields: FieldNames,
}

impl<'a> ColumnFileWriter<'a> {
    pub(crate) fn create(
        fs: &'a dyn FileSystem,
        dir: &Path,
        covered_lsn: u64,
    ) -> Result<Self, ColumnFileError> {
        let path = dir.join(file_name(covered_lsn));
        let tmp = dir.join(format!("{}.tmp", file_name(covered_lsn)));
        let file = fs.create(&tmp).map_err(io(&tmp))?;
        let series = zstd::stream::write::Encoder::new(Vec::new(), 3).map_err(io(&tmp))?;
        let mut out = Vec::with_capacity(WRITE_BUFFER_BYTES);
        out.extend_from_slice(MAGIC);
        let index = ColumnFileIndex {
            covered_lsn,
            series: Vec::new(),
            max_version: 0,
            tombstones: Vec::new(),
            schema: Vec::new(),
        };
        Ok(ColumnFileWriter {
            fs,
            dir: dir.to_owned(),
            tmp,
            path,
            file,
            out,
            offset: MAGIC.len() as u64,
            block: Vec::new(),
            index,
            series,
            index_len: 0,
            entry: Vec::new(),
            kept: Vec::new(),
            kept_blocks: Vec::new(),
            names: Names::default(),
            fields: FieldNames::default(),
        })
    }

    /// Appends to the file (through the buffer).
    fn write(&mut self, bytes: &[u8]) -> Result<(), ColumnFileError> {
        self.out.extend_from_slice(bytes);
        self.offset += bytes.len() as u64;
        if self.out.len() >= WRITE_BUFFER_BYTES {
            self.flush_buffer()?;
        }
        Ok(())
    }

    fn flush_buffer(&mut self) -> Result<(), ColumnFileError> {
        if self.out.is_empty() {
            return Ok(());
        }
        let at = self.offset - self.out.len() as u64;
        self.file
            .write_all_at(&self.out, at)
            .map_err(io(&self.tmp))?;
        self.out.clear();
        Ok(())
    }

    /// Tombstones the file carries (see [`super::tombstone`]).
    pub(crate) fn keep_tombstones(&mut self, tombstones: Vec<Tombstone>) {
        self.index.tombstones = tombstones;
    }

    /// The field types the file records, points or not.
    pub(crate) fn keep_schema(&mut self, schema: Vec<crate::proto::MeasurementFields>) {
        self.index.schema = schema;
    }

    /// Adds a series; series come in key order.
    pub(crate) fn add_series<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        key: &Arc<str>,
        measurement: &Arc<str>,
        tags: &[(K, V)],
        fields: &[(&str, &Column)],
    ) -> Result<(), ColumnFileError> {
        let first_block = self.kept_blocks.len() as u32;
        let mut entry = ColumnSeries {
            key: key.to_string(),
            measurement: measurement.to_string(),
            tags: tags
                .iter()
                .map(|(k, v)| Tag {
                    key: k.as_ref().to_owned(),
                    value: v.as_ref().to_owned(),
                })
                .collect(),
            blocks: Vec::new(),
        };
        for (name, resolved) in fields {
            self.index.max_version = resolved
                .versions
                .iter()
                .copied()
                .fold(self.index.max_version, u64::max);
            for start in (0..resolved.len()).step_by(BLOCK_VALUES) {
                let end = (start + BLOCK_VALUES).min(resolved.len());
                // A column of one block (the norm for a flushed head) is encoded in place.
                let block = match end - start == resolved.len() {
                    true => Cow::Borrowed(*resolved),
                    false => Cow::Owned(resolved.slice_index(start, end)),
                };
                let mut encoded = std::mem::take(&mut self.block);
                encoded.clear();
                encode_block(&block, &mut encoded);
                let crc = mask(crc32c::crc32c(&encoded));
                encoded.extend_from_slice(&crc.to_le_bytes());
                self.kept_blocks.push(FileBlock {
                    field: self.fields.number(name),
                    field_type: u32::from(block.values.field_type().code()),
                    offset: self.offset,
                    length: u32::try_from(encoded.len()).map_err(|_| ColumnFileError::Corrupt {
                        path: self.tmp.clone(),
                        offset: self.offset,
                        reason: "a block of 4 GiB or more".into(),
                    })?,
                    count: block.len() as u32,
                    min_time: block.times[0],
                    max_time: block.times[block.len() - 1],
                });
                entry.blocks.push(ColumnBlock {
                    field: (*name).to_owned(),
                    field_type: u32::from(block.values.field_type().code()),
                    offset: self.offset,
                    length: encoded.len() as u64,
                    count: block.len() as u32,
                    min_time: block.times[0],
                    max_time: block.times[block.len() - 1],
                });
                let written = self.write(&encoded);
                self.block = encoded;
                written?;
            }
        }
        self.entry.clear();
        prost::encoding::message::encode(SERIES_FIELD, &entry, &mut self.entry);
        self.index_len += self.entry.len() as u64;
        self.series.write_all(&self.entry).map_err(io(&self.tmp))?;
        self.kept.push(FileSeries {
            key: key.clone(),
            measurement: self.names.share(measurement),
            blocks: (first_block, self.kept_blocks.len() as u32),
        });
        Ok(())
    }

    /// Writes the index and footer, makes the file durable under its final name (replacing
    /// any file of that name atomically), and returns it open.
    pub(crate) fn finish(mut self) -> Result<ColumnFile, ColumnFileError> {
        // Series keys and field names repeat across the index: compressed it is a few
        // times smaller. Fields may come in any order: the other fields follow the series.
        let rest = self.index.encode_to_vec();
        self.index_len += rest.len() as u64;
        self.series.write_all(&rest).map_err(io(&self.tmp))?;
        let encoded = std::mem::replace(
            &mut self.series,
            zstd::stream::write::Encoder::new(Vec::new(), 0).map_err(io(&self.tmp))?,
        )
        .finish()
        .map_err(io(&self.tmp))?;
        self.flush_buffer()?;
        let index_at = self.offset;
        self.file
            .write_all_at(&encoded, index_at)
            .map_err(io(&self.tmp))?;
        self.offset += encoded.len() as u64;
        let mut tail = Vec::with_capacity(FOOTER_LEN);
        tail.extend_from_slice(&index_at.to_le_bytes());
        tail.extend_from_slice(&(encoded.len() as u64).to_le_bytes());
        tail.extend_from_slice(&mask(crc32c::crc32c(&encoded)).to_le_bytes());
        tail.extend_from_slice(END_MAGIC);
        drop(encoded);
        self.write(&tail)?;
        self.flush_buffer()?;
        // The bytes before the name: a crash leaves the file whole under its name, or
        // absent (a leftover `.tmp` that the next open removes).
        self.file.sync_data().map_err(io(&self.tmp))?;
        if let Some(e) = crate::failpoint::io_check("column_file.before_rename") {
            return Err(io(&self.tmp)(e));
        }
        self.fs
            .rename(&self.tmp, &self.path)
            .map_err(io(&self.tmp))?;
        self.fs.sync_dir(&self.dir).map_err(io(&self.dir))?;
        let path = self.path;
        let map = self.fs.map_for_random_reads(&path).map_err(io(&path))?;
        if (*map).as_ref().len() as u64 != self.offset {
            return Err(ColumnFileError::Corrupt {
                path,
                offset: 0,
                reason: "changed while it was written".into(),
            });
        }
        let (mut series, mut blocks) = (self.kept, self.kept_blocks);
        if !series.is_sorted_by(|a, b| a.key <= b.key) {
            series.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        }
        series.shrink_to_fit();
        blocks.shrink_to_fit();
        Ok(ColumnFile {
            path,
            index: self.index,
            series,
            blocks,
            fields: self.fields.names,
            map,
            index_len: self.index_len,
        })
    }
}

fn encode_block(c: &Column, out: &mut Vec<u8>) {
    encoding::encode_timestamps(&c.times, out);
    encode_versions(&c.versions, out);
    match &c.values {
        Values::Float(v) => encoding::encode_floats(v, out),
        Values::Integer(v) => encoding::encode_integers(v, out),
        Values::Unsigned(v) => encoding::encode_unsigned(v, out),
        Values::String(v) => encoding::encode_strings(v, out),
        Values::Boolean(v) => encoding::encode_booleans(v, out),
    }
}

/// Marks the split layout of a block's versions (a shift is below 64).
const SPLIT_VERSIONS: u8 = 0x80;

/// A block's write versions, in whichever of two layouts is smaller. One write version
/// covers a whole batch, so versions come in runs: stored as distinct values and run
/// lengths. Distinct versions are hybrid-logical-clock values:
/// - shifted right by the low bits they all share as zeros, when no logical counter or
///   node id is set, their deltas pack into a byte or two;
/// - otherwise (two batches in one millisecond set a logical counter), the milliseconds
///   and the low bits are two streams: the milliseconds' deltas take a few bits, the low
///   bits are mostly equal. Shifting alone then kept 12 more bits per delta, which made
///   versions more than half of a merged file of `bench ingest` data.
fn encode_versions(versions: &[u64], out: &mut Vec<u8>) {
    let mut distinct: Vec<u64> = Vec::new();
    let mut runs: Vec<u64> = Vec::new();
    for &v in versions {
        match (distinct.last(), runs.last_mut()) {
            (Some(&last), Some(run)) if last == v => *run += 1,
            _ => {
                distinct.push(v);
                runs.push(1);
            }
        }
    }
    let shift = distinct
        .iter()
        .map(|v| v.trailing_zeros())
        .min()
        .unwrap_or(0)
        .min(63);
    let mut layout = vec![shift as u8];
    let high: Vec<u64> = distinct.iter().map(|v| v >> shift).collect();
    encoding::encode_unsigned(&high, &mut layout);
    let split = super::hlc::WALL_SHIFT;
    if shift < split {
        let mut two = vec![SPLIT_VERSIONS, split as u8];
        let high: Vec<u64> = distinct.iter().map(|v| v >> split).collect();
        let low: Vec<u64> = distinct.iter().map(|v| v & ((1 << split) - 1)).collect();
        encoding::encode_unsigned(&high, &mut two);
        encoding::encode_unsigned(&low, &mut two);
        if two.len() < layout.len() {
            layout = two;
        }
    }
    out.extend_from_slice(&layout);
    encoding::encode_unsigned(&runs, out);
}

/// Reads what [`encode_versions`] wrote for a block of `len` values into `versions`;
/// returns the bytes read, or why they are not a block's versions.
fn decode_versions(data: &[u8], len: usize, versions: &mut Vec<u64>) -> Result<usize, String> {
    let bad = |e: encoding::DecodeError| e.to_string();
    let (mut distinct, mut low, mut runs) = (Vec::new(), Vec::new(), Vec::new());
    let first = *data.first().ok_or("bad version shift")?;
    let (shift, mut at) = match first {
        SPLIT_VERSIONS => match data.get(1) {
            Some(&split) if (1..64).contains(&split) => (split, 2),
            _ => return Err("bad version split".into()),
        },
        shift if shift < 64 => (shift, 1),
        _ => return Err("bad version shift".into()),
    };
    at += encoding::decode_unsigned(&data[at..], &mut distinct).map_err(bad)?;
    if first == SPLIT_VERSIONS {
        at += encoding::decode_unsigned(&data[at..], &mut low).map_err(bad)?;
        if low.len() != distinct.len() || low.iter().any(|&l| l >> shift != 0) {
            return Err("version low bits do not match".into());
        }
    }
    at += encoding::decode_unsigned(&data[at..], &mut runs).map_err(bad)?;
    let covered = runs.iter().try_fold(0u64, |n, &r| n.checked_add(r));
    if distinct.len() != runs.len() || covered != Some(len as u64) {
        return Err("versions do not cover the block".into());
    }
    versions.reserve(len);
    for (i, (&v, &run)) in distinct.iter().zip(&runs).enumerate() {
        let v = v
            .checked_shl(u32::from(shift))
            .filter(|x| x >> shift == v)
            .ok_or("version out of range")?;
        let v = v | low.get(i).copied().unwrap_or(0);
        versions.extend(std::iter::repeat_n(v, run as usize));
    }
    Ok(at)
}

/// An index may unpack to this many times its compressed size, past a first allowance:
/// prost indexes compress far less than that, and a file from elsewhere (a restored
/// backup) must not make the node allocate without bound.
const MAX_INDEX_EXPANSION: u64 = 100;
const INDEX_EXPANSION_ALLOWANCE: u64 = 16 << 20;

/// Why an index was not unpacked.
enum IndexError {
    /// Past the caller's bound.
    TooLarge(u64),
    Corrupt(String),
}

/// Bytes of an index unpacked at a time while it is decoded.
const INDEX_CHUNK: usize = 1 << 20;

/// An index being unpacked, a chunk at a time.
struct Unpacking<R> {
    reader: R,
    buf: Vec<u8>,
    /// Bytes of `buf` already decoded.
    at: usize,
    /// Bytes unpacked so far.
    total: u64,
    limit: u64,
    end: bool,
}

impl<R: std::io::Read> Unpacking<R> {
    /// At least `n` bytes not yet decoded, or fewer at the end of the index.
    fn fill(&mut self, n: usize) -> Result<&[u8], IndexError> {
        if self.buf.len() - self.at < n && !self.end {
            self.buf.drain(..self.at);
            self.at = 0;
            while self.buf.len() < n && !self.end {
                let had = self.buf.len();
                self.buf.resize(had + (n - had).max(INDEX_CHUNK), 0);
                let got = self
                    .reader
                    .read(&mut self.buf[had..])
                    .map_err(|e| IndexError::Corrupt(e.to_string()))?;
                self.buf.truncate(had + got);
                self.end = got == 0;
                self.total += got as u64;
                if self.total > self.limit {
                    return Err(IndexError::TooLarge(self.limit));
                }
            }
        }
        Ok(&self.buf[self.at..])
    }
}

/// An index unpacked: the index but its series, the series, their blocks, the blocks'
/// field names, and the index's length unpacked.
type Unpacked = (
    ColumnFileIndex,
    Vec<FileSeries>,
    Vec<FileBlock>,
    Vec<Arc<str>>,
    u64,
);

/// Unpacks and decodes an index a chunk and a series at a time into the compact form an
/// open file keeps: neither the whole index as messages (several times the memory) nor
/// its unpacked bytes (a hundred bytes a series) are held at once. Returns the unpacked
/// length too.
fn unpack_index(compressed: &[u8], max_len: u64) -> Result<Unpacked, IndexError> {
    use prost::encoding::{decode_key, decode_varint, WireType};
    let expansion = INDEX_EXPANSION_ALLOWANCE
        .saturating_add((compressed.len() as u64).saturating_mul(MAX_INDEX_EXPANSION));
    let limit = expansion.min(max_len);
    let corrupt = |e: &dyn std::fmt::Display| IndexError::Corrupt(e.to_string());
    let mut plain = Unpacking {
        reader: zstd::stream::read::Decoder::with_buffer(compressed).map_err(|e| corrupt(&e))?,
        buf: Vec::new(),
        at: 0,
        total: 0,
        limit,
        end: false,
    };
    let too_large = |e: IndexError| match e {
        // Past the bound the caller set, or past what any index unpacks to (corrupt).
        IndexError::TooLarge(_) if limit < expansion => IndexError::TooLarge(limit),
        IndexError::TooLarge(_) => IndexError::Corrupt(format!(
            "index of {} bytes unpacks to more than {limit}",
            compressed.len()
        )),
        e => e,
    };
    let mut rest = Vec::new();
    let (mut series, mut blocks) = (Vec::new(), Vec::new());
    let mut names = Names::default();
    let mut fields = FieldNames::default();
    loop {
        // A field's key and length are 20 bytes at most.
        let head = plain.fill(20).map_err(too_large)?;
        if head.is_empty() {
            break;
        }
        let mut buf = head;
        let (tag, wire_type) = decode_key(&mut buf).map_err(|e| corrupt(&e))?;
        let key_len = head.len() - buf.len();
        let len = match wire_type {
            WireType::Varint | WireType::LengthDelimited => {
                let mut after = buf;
                let value = decode_varint(&mut after).map_err(|e| corrupt(&e))?;
                let varint = buf.len() - after.len();
                match wire_type {
                    WireType::Varint => key_len + varint,
                    _ => usize::try_from(value)
                        .ok()
                        .filter(|&v| v as u64 <= limit)
                        .ok_or_else(|| too_large(IndexError::TooLarge(limit)))?
                        .saturating_add(key_len + varint),
                }
            }
            WireType::SixtyFourBit => key_len + 8,
            WireType::ThirtyTwoBit => key_len + 4,
            _ => return Err(IndexError::Corrupt(format!("field {tag}: groups"))),
        };
        let field = plain.fill(len).map_err(too_large)?;
        if field.len() < len {
            return Err(IndexError::Corrupt("index truncated".into()));
        }
        let field = &field[..len];
        if tag == SERIES_FIELD && wire_type == WireType::LengthDelimited {
            let s = ColumnSeries::decode_length_delimited(&field[key_len..])
                .map_err(|e| corrupt(&e))?;
            let from = blocks.len() as u32;
            for b in s.blocks {
                blocks.push(FileBlock {
                    field: fields.number(&b.field),
                    field_type: b.field_type,
                    offset: b.offset,
                    length: u32::try_from(b.length)
                        .map_err(|_| IndexError::Corrupt("a block of 4 GiB or more".into()))?,
                    count: b.count,
                    min_time: b.min_time,
                    max_time: b.max_time,
                });
            }
            series.push(FileSeries {
                key: s.key.into(),
                measurement: names.get(&s.measurement),
                blocks: (from, blocks.len() as u32),
            });
        } else {
            rest.extend_from_slice(field);
        }
        plain.at += len;
    }
    // Files are written in key order; any other order is put right for the lookups.
    if !series.is_sorted_by(|a, b| a.key <= b.key) {
        series.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    }
    series.shrink_to_fit();
    blocks.shrink_to_fit();
    let index = ColumnFileIndex::decode(&rest[..]).map_err(|e| corrupt(&e))?;
    Ok((index, series, blocks, fields.names, plain.total))
}

impl ColumnFile {
    pub fn open(fs: &dyn FileSystem, path: &Path) -> Result<ColumnFile, ColumnFileError> {
        Self::open_within(fs, path, u64::MAX)
    }

    /// Opens a file whose index may unpack to at most `max_index_len` bytes
    /// ([`ColumnFileError::IndexTooLarge`] past it): a restore counts the indexes of the
    /// files it brings in against its size limit, as they stay in memory.
    pub fn open_within(
        fs: &dyn FileSystem,
        path: &Path,
        max_index_len: u64,
    ) -> Result<ColumnFile, ColumnFileError> {
        let file = fs.open(path, false).map_err(io(path))?;
        let corrupt = |offset: u64, reason: &str| ColumnFileError::Corrupt {
            path: path.to_owned(),
            offset,
            reason: reason.to_owned(),
        };
        // The magic, footer and index are read, not mapped: an I/O error there (read at
        // every start) is an error naming the file, not a SIGBUS (see `map`).
        let len = file.size().map_err(io(path))?;
        let (mut magic, mut footer) = ([0u8; 8], [0u8; FOOTER_LEN]);
        if len < (MAGIC.len() + FOOTER_LEN) as u64 {
            return Err(corrupt(0, "not a column file (bad magic or truncated)"));
        }
        file.read_exact_at(&mut magic, 0).map_err(io(path))?;
        file.read_exact_at(&mut footer, len - FOOTER_LEN as u64)
            .map_err(io(path))?;
        if &magic != MAGIC || &footer[FOOTER_LEN - 8..] != END_MAGIC {
            return Err(corrupt(0, "not a column file (bad magic or truncated)"));
        }
        let word = |at: usize| u64::from_le_bytes(footer[at..at + 8].try_into().expect("8 bytes"));
        let (offset, index_len) = (word(0), word(8));
        let stored = u32::from_le_bytes(footer[16..20].try_into().expect("4 bytes"));
        offset
            .checked_add(index_len)
            .filter(|&e| e <= len - FOOTER_LEN as u64)
            .ok_or_else(|| corrupt(offset, "index out of bounds"))?;
        let mut bytes = vec![0u8; index_len as usize];
        file.read_exact_at(&mut bytes, offset).map_err(io(path))?;
        if mask(crc32c::crc32c(&bytes)) != stored {
            return Err(corrupt(offset, "index checksum mismatch"));
        }
        // Column files are immutable once renamed into place; see `map`.
        let map = fs.map_for_random_reads(path).map_err(io(path))?;
        if (*map).as_ref().len() as u64 != len {
            return Err(corrupt(0, "changed while it was opened"));
        }
        let (index, series, blocks, fields, index_len) = unpack_index(&bytes, max_index_len)
            .map_err(|e| match e {
                IndexError::TooLarge(limit) => ColumnFileError::IndexTooLarge {
                    path: path.to_owned(),
                    limit,
                },
                IndexError::Corrupt(e) => corrupt(offset, &e),
            })?;
        Ok(ColumnFile {
            path: path.to_owned(),
            index,
            series,
            blocks,
            fields,
            map,
            index_len,
        })
    }

    /// Decodes one block, verifying its checksum.
    pub fn read_block(&self, block: &FileBlock) -> Result<Column, ColumnFileError> {
        let corrupt = |reason: String| ColumnFileError::Corrupt {
            path: self.path.clone(),
            offset: block.offset,
            reason,
        };
        let end = block
            .offset
            .checked_add(u64::from(block.length))
            .filter(|&e| e as usize <= self.bytes().len())
            .ok_or_else(|| corrupt("block out of bounds".into()))?;
        let bytes = &self.bytes()[block.offset as usize..end as usize];
        let (data, crc) = bytes.split_at(
            bytes
                .len()
                .checked_sub(4)
                .ok_or_else(|| corrupt("block too short".into()))?,
        );
        if mask(crc32c::crc32c(data)) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
            return Err(corrupt("block checksum mismatch".into()));
        }
        let ty = u8::try_from(block.field_type)
            .ok()
            .and_then(FieldType::from_code)
            .ok_or_else(|| corrupt("unknown field type".into()))?;
        let mut column = Column::new(ty);
        let bad = |e: encoding::DecodeError| corrupt(e.to_string());
        let mut at = encoding::decode_timestamps(data, &mut column.times).map_err(bad)?;
        at += decode_versions(&data[at..], column.times.len(), &mut column.versions)
            .map_err(corrupt)?;
        let rest = &data[at..];
        match &mut column.values {
            Values::Float(v) => encoding::decode_floats(rest, v).map(drop),
            Values::Integer(v) => encoding::decode_integers(rest, v).map(drop),
            Values::Unsigned(v) => encoding::decode_unsigned(rest, v).map(drop),
            Values::String(v) => encoding::decode_strings(rest, v).map(drop),
            Values::Boolean(v) => encoding::decode_booleans(rest, v).map(drop),
        }
        .map_err(bad)?;
        if column.times.len() != column.versions.len() || column.times.len() != column.values.len()
        {
            return Err(corrupt("block columns differ in length".into()));
        }
        Ok(column)
    }

    /// The position in [`ColumnFile::series`] of one series, if the file holds it.
    pub fn find_series(&self, key: &str) -> Option<usize> {
        self.series.binary_search_by(|s| (*s.key).cmp(key)).ok()
    }

    /// The file's series, in key order.
    pub fn series(&self) -> &[FileSeries] {
        &self.series
    }

    /// A block's field name.
    pub fn field(&self, block: &FileBlock) -> &Arc<str> {
        &self.fields[block.field as usize]
    }

    /// The blocks of one of the file's series.
    pub fn blocks(&self, s: &FileSeries) -> &[FileBlock] {
        &self.blocks[s.blocks.0 as usize..s.blocks.1 as usize]
    }

    pub fn size(&self) -> u64 {
        self.bytes().len() as u64
    }

    /// Bytes of the index unpacked (held in memory while the file is open).
    pub fn index_len(&self) -> u64 {
        self.index_len
    }

    /// The whole file as mapped (for backups: the map outlives a removal of the file).
    pub fn bytes(&self) -> &[u8] {
        (*self.map).as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line_protocol::FieldValue;
    use crate::log::fs::RealFs;
    use crate::storage::head::Head;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever runs of write versions and values a head holds come back exactly.
        #[test]
        fn blocks_round_trip(rows in proptest::collection::vec((0u8..4, any::<f64>(), any::<u64>()), 1..2500)) {
            let dir = tempfile::tempdir().unwrap();
            let mut head = Head::default();
            let mut version = 1u64 << 22;
            let mut expected = Vec::new();
            for (i, (step, value, raw)) in rows.iter().enumerate() {
                // Versions repeat in runs (one per batch), sometimes with low bits set.
                if *step == 0 {
                    version += if raw % 3 == 0 { raw % 1000 } else { (raw % 50) << 22 };
                }
                head.insert("cpu,host=a", "cpu", i as i64, version, &[("v", FieldValue::Float(*value))]);
                expected.push((i as i64, version, value.to_bits()));
            }
            let written = write(&RealFs, dir.path(), 7, head.series(), Vec::new(), Vec::new()).unwrap();
            let file = ColumnFile::open(&RealFs, &written.path).unwrap();
            prop_assert_eq!(file.index.covered_lsn, 7);
            let mut got = Vec::new();
            for block in file.blocks(&file.series()[0]) {
                let c = file.read_block(block).unwrap();
                let Values::Float(values) = &c.values else { panic!("not floats") };
                                for ((t, v), x) in c.times.iter().zip(&c.versions).zip(values) {
                    got.push((*t, *v, x.to_bits()));
                }
            }
            prop_assert_eq!(got, expected);
        }
    }

    /// Versions as a busy node issues them (a batch every few milliseconds, now and then
    /// two in one millisecond, so a logical counter is set) take the split layout, smaller
    /// than the shifted one, and come back exactly.
    #[test]
    fn clock_versions_split_into_milliseconds_and_low_bits() {
        let wall = |ms: u64| (1_764_000_000_000 + ms) << crate::storage::hlc::WALL_SHIFT;
        let mut versions = Vec::new();
        for batch in 0..200u64 {
            let logical = if batch % 17 == 3 { 1 << 10 } else { 0 };
            versions.extend(std::iter::repeat_n(
                wall(batch * 7 + batch % 3) | logical,
                5,
            ));
        }
        let mut split = Vec::new();
        encode_versions(&versions, &mut split);
        assert_eq!(split[0], SPLIT_VERSIONS);
        let mut decoded = Vec::new();
        assert_eq!(decode_versions(&split, 1000, &mut decoded), Ok(split.len()));
        assert_eq!(decoded, versions);
        let shifted = old_layout(&versions);
        assert!(
            split.len() < shifted.len(),
            "{} vs {}",
            split.len(),
            shifted.len()
        );
    }

    /// Blocks written before the split layout existed still read.
    #[test]
    fn shifted_versions_of_earlier_files_still_decode() {
        let versions: Vec<u64> = (0..300u64)
            .map(|i| (1000 + i / 3 * 5) << 10 | 7 << 10)
            .collect();
        let bytes = old_layout(&versions);
        let mut decoded = Vec::new();
        assert_eq!(decode_versions(&bytes, 300, &mut decoded), Ok(bytes.len()));
        assert_eq!(decoded, versions);
        assert!(decode_versions(&bytes, 301, &mut Vec::new()).is_err());
    }

    /// The only layout of earlier versions: shift, distinct versions shifted, runs.
    fn old_layout(versions: &[u64]) -> Vec<u8> {
        let mut distinct = versions.to_vec();
        distinct.dedup();
        let runs: Vec<u64> = distinct
            .iter()
            .map(|d| versions.iter().filter(|v| *v == d).count() as u64)
            .collect();
        let shift = distinct.iter().map(|v| v.trailing_zeros()).min().unwrap();
        let mut out = vec![shift as u8];
        let shifted: Vec<u64> = distinct.iter().map(|v| v >> shift).collect();
        encoding::encode_unsigned(&shifted, &mut out);
        encoding::encode_unsigned(&runs, &mut out);
        out
    }

    #[test]
    fn a_damaged_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut head = Head::default();
        for i in 0..100 {
            head.insert("m", "m", i, 1 << 22, &[("v", FieldValue::Integer(i))]);
        }
        let path = write(
            &RealFs,
            dir.path(),
            1,
            head.series(),
            Vec::new(),
            Vec::new(),
        )
        .unwrap()
        .path;
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[12] ^= 1; // inside the first block
        std::fs::write(&path, &bytes).unwrap();
        let file = ColumnFile::open(&RealFs, &path).unwrap();
        let err = file
            .read_block(&file.blocks(&file.series()[0])[0])
            .unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
        let len = bytes.len();
        bytes[len - 40] ^= 1; // inside the index
        std::fs::write(&path, &bytes).unwrap();
        assert!(ColumnFile::open(&RealFs, &path).is_err());
    }
}
