//! The shard backup format: a POSIX tar whose entries are the shard's own files, then a
//! manifest.
//!
//! ```text
//!   log/<base LSN>.seg   one per log segment: header and records (no preallocated tail)
//!   <covered LSN>.col    one per column file, whole
//!   manifest.json        ShardManifest: the shard's identity and, per file, its name,
//!                        size and crc32c (last, so checksums are computed while streaming)
//! ```
//!
//! The whole tar may be gzip-compressed (detected by its magic bytes on restore).

use super::BackupError;
use crate::log::format as log_format;
use crate::log::fs::{FileSystem, FsFile};
use crate::storage::column_file;
use crate::storage::{ShardFiles, ShardInfo};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

pub const MANIFEST_NAME: &str = "manifest.json";
pub const LOG_DIR: &str = "log";
pub const FORMAT: &str = "shardkeeper-shard-backup/1";

/// A manifest larger than this is not one of ours.
const MAX_MANIFEST_BYTES: u64 = 16 << 20;
/// Largest ratio of unpacked to compressed bytes accepted (log records and column files
/// compress far less; a gzip bomb far more), past a first allowance.
const MAX_GZIP_RATIO: u64 = 100;
const GZIP_RATIO_ALLOWANCE: u64 = 16 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub size: u64,
    pub crc32c: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardManifest {
    pub format: String,
    pub shard_id: u64,
    pub database: String,
    pub retention_policy: String,
    pub start: i64,
    pub end: i64,
    /// Incremental backups: files changed after this time (ns), others left out.
    pub since: Option<i64>,
    pub files: Vec<FileEntry>,
}

/// One file of a backup as it is streamed.
struct Source<'a> {
    name: String,
    bytes: &'a [u8],
    /// A shared mapping of the file, whose pages may be given back once sent.
    file_mapped: bool,
}

/// Whether a file last changed after `since` (ns); unknown times count as changed.
fn changed_after(path: &Path, since: Option<i64>) -> bool {
    let Some(since) = since else { return true };
    let modified = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    modified.is_none_or(|t| t.as_nanos() as i64 > since)
}

/// Writes the tar of `files` to `out`. Files unchanged since `since` are left out.
pub fn write_shard_archive(
    info: &ShardInfo,
    files: &ShardFiles,
    since: Option<i64>,
    out: impl Write,
) -> io::Result<()> {
    let mut sources: Vec<Source<'_>> = Vec::new();
    for file in &files.column_files {
        if changed_after(&file.path, since) {
            let name = file
                .path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            sources.push(Source {
                name,
                bytes: file.bytes(),
                file_mapped: true,
            });
        }
    }
    let mut out = out;
    let mut entries = Vec::with_capacity(sources.len());
    for source in &sources {
        let mut reader = MappedReader {
            bytes: source.bytes,
            position: 0,
            released: 0,
            crc: 0,
            file_mapped: source.file_mapped,
        };
        append(&mut out, &source.name, &mut reader)?;
        entries.push(FileEntry {
            name: source.name.clone(),
            size: source.bytes.len() as u64,
            crc32c: reader.crc,
        });
    }
    let manifest = ShardManifest {
        format: FORMAT.to_owned(),
        shard_id: info.id,
        database: info.database.clone(),
        retention_policy: info.retention_policy.clone(),
        start: info.start,
        end: info.end,
        since,
        files: entries,
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(io::Error::other)?;
    let mut reader = MappedReader {
        bytes: &json,
        position: 0,
        released: 0,
        crc: 0,
        file_mapped: false,
    };
    append(&mut out, MANIFEST_NAME, &mut reader)?;
    // End of archive: two zero blocks.
    out.write_all(&[0; 2 * TAR_BLOCK])?;
    out.flush()
}

const TAR_BLOCK: usize = 512;
/// Bytes of a file handed to the output at once.
const COPY_SLICE_BYTES: usize = 1 << 20;

/// One tar entry: a ustar header, the data in large slices (the tar crate's builder
/// copies through an 8 KiB buffer, which costs a third of the throughput), padding.
fn append(out: &mut impl Write, name: &str, data: &mut MappedReader<'_>) -> io::Result<()> {
    let size = data.bytes.len();
    let mut header = tar::Header::new_ustar();
    header.set_path(name)?;
    header.set_size(size as u64);
    header.set_mode(0o644);
    header.set_mtime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    );
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    out.write_all(header.as_bytes())?;
    while let Some(slice) = data.next_slice(COPY_SLICE_BYTES) {
        out.write_all(slice)?;
    }
    let padding = (TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK;
    out.write_all(&[0; TAR_BLOCK][..padding])
}

/// Pages of a mapped file a backup has sent are given back after this many bytes, so
/// the daemon's resident memory does not grow by the size of the shard.
const RELEASE_EVERY_BYTES: usize = 8 << 20;

/// Hands out a mapped file once, computing its crc32c on the way, and tells the kernel
/// the pages sent are not needed by this process any more.
struct MappedReader<'a> {
    bytes: &'a [u8],
    position: usize,
    released: usize,
    crc: u32,
    file_mapped: bool,
}

impl<'a> MappedReader<'a> {
    /// The next slice of at most `max` bytes, folded into the checksum; the previous
    /// slices' pages are released every [`RELEASE_EVERY_BYTES`].
    fn next_slice(&mut self, max: usize) -> Option<&'a [u8]> {
        if self.file_mapped && self.position - self.released >= RELEASE_EVERY_BYTES {
            release_pages(&self.bytes[self.released..self.position]);
            self.released = self.position;
        }
        if self.position == self.bytes.len() {
            if self.file_mapped {
                release_pages(&self.bytes[self.released..self.position]);
                self.released = self.position;
                advise(self.bytes, libc::MADV_NORMAL);
            }
            return None;
        }
        let n = max.min(self.bytes.len() - self.position);
        if self.file_mapped && self.position == 0 {
            // Faults then read ahead aggressively (a map is otherwise read a few pages
            // per fault); reset to normal when done, for the queries sharing the map.
            advise(self.bytes, libc::MADV_SEQUENTIAL);
        }
        let slice = &self.bytes[self.position..self.position + n];
        self.crc = crc32c::crc32c_append(self.crc, slice);
        self.position += n;
        Some(slice)
    }
}

/// MADV_DONTNEED on the whole pages inside `range` of a read-only shared file mapping:
/// the process's page-table entries go, the data stays in the page cache and a later
/// access (a query reading the same map) faults it back in unchanged.
fn release_pages(range: &[u8]) {
    advise(range, libc::MADV_DONTNEED);
}

/// madvise on the whole pages inside `range`, which must lie in a read-only shared
/// mapping of a file. (MADV_WILLNEED on the next stretch was measured too: slower here.)
fn advise(range: &[u8], advice: libc::c_int) {
    let page = 4096usize;
    let start = range.as_ptr() as usize;
    let first = start.div_ceil(page) * page;
    let end = (start + range.len()) / page * page;
    if end > first {
        // SAFETY: [first, end) lies inside a live mapping of a file that is only read
        // through it; neither WILLNEED nor DONTNEED changes what a shared file mapping
        // reads.
        unsafe {
            libc::madvise(first as *mut libc::c_void, end - first, advice);
        }
    }
}

/// Where an unpacked entry goes, by its name in the archive; None: not a shard file.
fn staged_name(name: &str) -> Option<String> {
    if name == MANIFEST_NAME {
        return Some(name.to_owned());
    }
    if let Some(segment) = name.strip_prefix("log/") {
        return log_format::parse_segment_file_name(segment).map(|_| name.to_owned());
    }
    column_file::parse_file_name(name).map(|_| name.to_owned())
}

/// Counts the bytes read through it, and stops past `limit`.
struct Counted<R> {
    inner: R,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
    limit: u64,
    over: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let total = self
            .count
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed)
            + n as u64;
        if total > self.limit {
            self.over.store(true, std::sync::atomic::Ordering::Relaxed);
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the body exceeds {} bytes", self.limit),
            ));
        }
        Ok(n)
    }
}

/// Refuses to unpack more than [`MAX_GZIP_RATIO`] times what was received.
struct RatioGuard<R> {
    inner: R,
    received: std::sync::Arc<std::sync::atomic::AtomicU64>,
    unpacked: u64,
}

impl<R: Read> Read for RatioGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.unpacked += n as u64;
        let received = self.received.load(std::sync::atomic::Ordering::Relaxed);
        if self.unpacked > GZIP_RATIO_ALLOWANCE + received.saturating_mul(MAX_GZIP_RATIO) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "gzip stream expands more than {MAX_GZIP_RATIO} times ({received} bytes received): refused as a decompression bomb"
                ),
            ));
        }
        Ok(n)
    }
}

/// What an unpacked archive holds; the files are in the staging directory.
#[derive(Debug)]
pub struct Unpacked {
    pub manifest: ShardManifest,
    /// Bytes of the request body (compressed, if it was).
    pub received: u64,
    /// Bytes of the files unpacked from it.
    pub unpacked: u64,
}

/// Unpacks a shard archive (gzip or not) into `staging`, which must exist and be empty,
/// and checks every file against the manifest. An archive of more than `limit` bytes, as
/// received or as unpacked, is [`BackupError::TooLarge`]; any other refusal is
/// [`BackupError::BadArchive`] (or Io for the staging directory). The caller removes
/// `staging` on error.
pub fn unpack_shard_archive(
    fs: &dyn FileSystem,
    input: impl Read,
    staging: &Path,
    limit: u64,
) -> Result<Unpacked, BackupError> {
    let over = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    unpack_within(fs, input, staging, limit, over.clone()).map_err(|e| {
        if over.load(std::sync::atomic::Ordering::Relaxed) {
            BackupError::TooLarge(format!("shard archive exceeds {limit} bytes"))
        } else {
            e
        }
    })
}

fn unpack_within(
    fs: &dyn FileSystem,
    input: impl Read,
    staging: &Path,
    limit: u64,
    over: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Result<Unpacked, BackupError> {
    let bad = |m: String| BackupError::BadArchive(m);
    let received = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut unpacked_bytes = 0u64;
    let mut input = BufReader::with_capacity(
        256 * 1024,
        Counted {
            inner: input,
            count: received.clone(),
            limit,
            over: over.clone(),
        },
    );
    let head = input
        .fill_buf()
        .map_err(|e| bad(format!("reading the body: {e}")))?;
    let gzipped = head.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read> = if gzipped {
        Box::new(RatioGuard {
            inner: flate2::bufread::MultiGzDecoder::new(input),
            received: received.clone(),
            unpacked: 0,
        })
    } else {
        Box::new(input)
    };
    let mut archive = tar::Archive::new(reader);
    let mut seen: BTreeMap<String, (u64, u32)> = BTreeMap::new();
    let mut manifest: Option<ShardManifest> = None;
    fs.create_dir_all(&staging.join(LOG_DIR))
        .map_err(BackupError::io(staging))?;
    let entries = archive
        .entries()
        .map_err(|e| bad(format!("not a tar archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(format!("damaged tar archive: {e}")))?;
        let name = entry
            .path()
            .ok()
            .and_then(|p| p.to_str().map(str::to_owned))
            .unwrap_or_default();
        let kind = entry.header().entry_type();
        let Some(staged) = staged_name(&name).filter(|_| kind == tar::EntryType::Regular) else {
            return Err(bad(format!(
                "unexpected entry {name:?}: not a shardkeeper shard backup"
            )));
        };
        if seen.contains_key(&staged) || (staged == MANIFEST_NAME && manifest.is_some()) {
            return Err(bad(format!("entry {name:?} appears twice")));
        }
        let size = entry.size();
        if staged == MANIFEST_NAME {
            if size > MAX_MANIFEST_BYTES {
                return Err(bad(format!("manifest of {size} bytes is too large")));
            }
            let mut json = Vec::with_capacity(size as usize);
            entry
                .read_to_end(&mut json)
                .map_err(|e| bad(format!("reading {name}: {e}")))?;
            let parsed: ShardManifest = serde_json::from_slice(&json)
                .map_err(|e| bad(format!("manifest does not parse: {e}")))?;
            if parsed.format != FORMAT {
                return Err(bad(format!(
                    "manifest format {:?} is not {FORMAT:?}",
                    parsed.format
                )));
            }
            manifest = Some(parsed);
            continue;
        }
        unpacked_bytes = unpacked_bytes.saturating_add(size);
        if unpacked_bytes > limit {
            over.store(true, std::sync::atomic::Ordering::Relaxed);
            return Err(bad(format!("unpacks to more than {limit} bytes")));
        }
        let path = staging.join(&staged);
        let file = fs.create(&path).map_err(BackupError::io(&path))?;
        let mut writer = CrcWriter {
            inner: io::BufWriter::with_capacity(
                256 * 1024,
                FileWriter {
                    file: &*file,
                    offset: 0,
                },
            ),
            crc: 0,
            len: 0,
        };
        io::copy(&mut entry, &mut writer).map_err(|e| bad(format!("reading {name}: {e}")))?;
        writer.inner.flush().map_err(BackupError::io(&path))?;
        let (len, crc) = (writer.len, writer.crc);
        drop(writer);
        file.sync_data().map_err(BackupError::io(&path))?;
        if len != size {
            return Err(bad(format!(
                "{name}: {len} bytes, the tar header says {size}"
            )));
        }
        seen.insert(staged, (len, crc));
    }
    // Read the rest, so that gzip's own trailer (length and CRC) is checked too.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(|e| bad(format!("after the tar: {e}")))?;

    let manifest = manifest.ok_or_else(|| {
        bad("no manifest.json: the archive is truncated or not a shard backup".to_owned())
    })?;
    for file in &manifest.files {
        match seen.remove(&file.name) {
            None => {
                return Err(bad(format!(
                    "{} is in the manifest but not in the archive",
                    file.name
                )))
            }
            Some((size, crc)) if size != file.size || crc != file.crc32c => {
                return Err(bad(format!(
                    "{}: {size} bytes with crc32c {crc:08x}, the manifest says {} bytes with {:08x}",
                    file.name, file.size, file.crc32c
                )))
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = seen.keys().next() {
        return Err(bad(format!("{extra} is not in the manifest")));
    }
    // The staging directory's entries are synced once the restore has finished changing
    // them (see `Storage::replace_shard`).
    Ok(Unpacked {
        manifest,
        received: received.load(std::sync::atomic::Ordering::Relaxed),
        unpacked: unpacked_bytes,
    })
}

/// Writes a file of the file system from its start, in order.
struct FileWriter<'a> {
    file: &'a dyn FsFile,
    offset: u64,
}

impl Write for FileWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write_all_at(buf, self.offset)?;
        self.offset += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct CrcWriter<W> {
    inner: W,
    crc: u32,
    len: u64,
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(any(test, feature = "testing"))]
/// Fuzz entry point: arbitrary bytes as a restore body. Unpacking must refuse or accept,
/// never panic; whatever it wrote goes away.
pub fn fuzz_unpack(data: &[u8]) {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "shardkeeper-fuzz-unpack-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = unpack_shard_archive(&crate::log::fs::RealFs, data, &dir, u64::MAX);
    let _ = std::fs::remove_dir_all(&dir);
}
