//! Opening a log directory: find every segment, check it, and find where appends resume.
//!
//! Policy (the only place it is decided):
//! * a sealed segment (any but the newest) must be whole: a bad record, a non-zero byte after
//!   its end, or a gap to the next segment's base LSN refuses the open;
//! * the newest segment may end in a torn tail: bytes of the last commit that a crash left
//!   half written, never acknowledged. With [`RecoveryMode::TolerateTornTail`] (the
//!   default) it is zeroed and reported; with [`RecoveryMode::AbsoluteConsistency`] it
//!   refuses the open like any other damage;
//! * damage in the newest segment is a torn tail only if a crash can explain it, since
//!   zeroing anything else would destroy acknowledged records:
//!   - it lies within what can have been unsynced: the writer never has more than
//!     `max_commit_bytes` written and not durable, so every non-zero byte after the last
//!     good record lies within that much of the end of the first bad record (whose own
//!     pieces may have been made durable one by one when it is larger);
//!   - lost sectors explain the first bad record: a disk writes 512-byte sectors whole or
//!     not at all, in any order, and a sector that never reached the disk reads as zeros
//!     there (the space was preallocated, an older torn tail zeroed). So a record whose
//!     checksum fails must have a sector of zeros somewhere in it (or run past the end of
//!     the file), and a record that checks once one byte of its length is changed back was
//!     damaged after it was written.
//!
//!   Anything else (a flipped bit in a record, damage followed by more than a commit's
//!   worth of data) refuses the open, naming the file and offset, and changes nothing;
//! * a newest segment whose header never reached the disk, and which holds nothing, is
//!   removed (a crash while rolling to a new segment);
//! * with [`RecoveryMode::SkipDamagedRecords`], a record that fails its checksum but whose
//!   stored length leads to a good record is passed over and reported (its LSN still
//!   counts), and nothing on disk changes: for a log whose records each belong to one of
//!   many streams (the data log's shards), where one damaged record should cost its
//!   stream, not the log.

use super::format::{self, Frame, FrameError, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
use super::fs::{FileSystem, SECTOR};
use super::{LogError, LogOptions, Lsn};
use std::path::{Path, PathBuf};

/// How opening treats a damaged end of the newest segment (as RocksDB's and raft-engine's
/// WAL recovery modes do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// A torn tail that a crash during the last commit explains is dropped (it was never
    /// acknowledged); any other damage refuses the open.
    #[default]
    TolerateTornTail,
    /// Any damage refuses the open, a torn tail included: for logs that were shut down
    /// cleanly, or copied, and must be exactly what was written.
    AbsoluteConsistency,
    /// As [`RecoveryMode::TolerateTornTail`], but a damaged record followed by a good one
    /// is passed over and reported ([`RecoveryReport::damaged`]) instead of refusing the
    /// open; readers pass over it too.
    SkipDamagedRecords,
}

/// A record passed over by [`RecoveryMode::SkipDamagedRecords`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedRecord {
    pub path: PathBuf,
    pub offset: u64,
    pub lsn: Lsn,
    pub reason: String,
    /// Its payload as stored (not to be trusted: it failed its checksum).
    pub payload: Vec<u8>,
}

/// Whether recovery may change files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Zero a torn tail and remove a blank newest segment, so appends can resume.
    Repair,
    /// Change nothing (offline verification).
    ReadOnly,
}

/// What opening found, for the start-up line and for `ctl log verify`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub segments: usize,
    pub records: u64,
    pub first_lsn: Lsn,
    /// The LSN the next append will get.
    pub next_lsn: Lsn,
    /// Where a torn tail began, and how many bytes were (or, read-only, would be) dropped.
    pub torn_tail: Option<(PathBuf, u64, u64)>,
    pub removed_blank_segment: Option<PathBuf>,
    /// Records passed over (only with [`RecoveryMode::SkipDamagedRecords`]).
    pub damaged: Vec<DamagedRecord>,
}

#[derive(Debug)]
pub(crate) struct RecoveredSegment {
    pub base: Lsn,
    pub path: PathBuf,
    pub records: u64,
    /// Offset just past the last record.
    pub end: u64,
}

pub(crate) struct Recovered {
    pub segments: Vec<RecoveredSegment>,
    pub report: RecoveryReport,
}

pub(crate) fn recover(
    fs: &dyn FileSystem,
    dir: &Path,
    options: &LogOptions,
    access: Access,
) -> Result<Recovered, LogError> {
    let mut bases: Vec<(Lsn, PathBuf)> = fs
        .list(dir)
        .map_err(LogError::io("list", dir))?
        .iter()
        .filter_map(|name| format::parse_segment_file_name(name).map(|b| (b, dir.join(name))))
        .collect();
    bases.sort();
    let mut report = RecoveryReport::default();
    let mut segments: Vec<RecoveredSegment> = Vec::with_capacity(bases.len());
    let count = bases.len();
    for (i, (base, path)) in bases.into_iter().enumerate() {
        let newest = i + 1 == count;
        let bytes = fs.map(&path).map_err(LogError::io("map", &path))?;
        let bytes: &[u8] = (*bytes).as_ref();
        let corrupt = |offset: u64, reason: String| LogError::Corrupt {
            path: path.clone(),
            offset,
            reason,
        };
        match format::decode_segment_header(bytes) {
            Ok(b) if b == base => {}
            Ok(b) => {
                return Err(corrupt(
                    16,
                    format!("header names base LSN {b}, file name says {base}"),
                ))
            }
            // Records are appended only after the header is durable, so a newest segment with
            // a bad header and nothing after it was being created when the process stopped.
            Err(_)
                if newest && is_blank_data_area(bytes) && (!segments.is_empty() || base == 1) =>
            {
                if access == Access::Repair {
                    fs.remove(&path).map_err(LogError::io("remove", &path))?;
                    fs.sync_dir(dir)
                        .map_err(LogError::io("sync directory", dir))?;
                }
                report.removed_blank_segment = Some(path);
                break;
            }
            Err(e) => return Err(corrupt(0, e.to_string())),
        }
        if let Some(prev) = segments.last() {
            if prev.base + prev.records != base {
                return Err(LogError::Corrupt {
                    path: prev.path.clone(),
                    offset: prev.end,
                    reason: format!(
                        "segment ends before LSN {} but the next segment starts at {base}",
                        prev.base + prev.records
                    ),
                });
            }
        }
        let (mut records, mut end, mut bad, _) = scan_skipping(bytes, false);
        // Bytes after the last good record that are not zero: a torn commit, or damage.
        let last_data = bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        let damage = bad.is_some() || last_data > end;
        let torn = newest
            && torn_tail(
                bytes,
                end,
                bad,
                last_data.max(end),
                options.max_commit_bytes,
            )
            .is_ok();
        if damage && !torn && options.recovery == RecoveryMode::SkipDamagedRecords {
            // Not what a crash leaves: pass over the damaged records that good ones follow.
            let skipped;
            (records, end, bad, skipped) = scan_skipping(bytes, true);
            report
                .damaged
                .extend(skipped.into_iter().map(|(offset, index, reason)| {
                    let from = offset + format::RECORD_HEADER_LEN;
                    let len =
                        u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes"))
                            as usize;
                    DamagedRecord {
                        path: path.clone(),
                        offset: offset as u64,
                        lsn: base + index,
                        reason: reason.to_string(),
                        payload: bytes[from..from + len].to_vec(),
                    }
                }));
        }
        let tail_end = last_data.max(end);
        if bad.is_some() || tail_end > end {
            let reason = bad.map_or("data after the end of the records".to_owned(), |e| {
                e.to_string()
            });
            if !newest {
                return Err(corrupt(end as u64, reason));
            }
            if let Err(why) = torn_tail(bytes, end, bad, tail_end, options.max_commit_bytes) {
                return Err(corrupt(end as u64, format!("{reason}: {why}")));
            }
            if options.recovery == RecoveryMode::AbsoluteConsistency {
                return Err(corrupt(
                    end as u64,
                    format!(
                        "{reason}: a torn tail, which recovery mode AbsoluteConsistency refuses"
                    ),
                ));
            }
            let dropped = (tail_end - end) as u64;
            if access == Access::Repair {
                let file = fs.open(&path, true).map_err(LogError::io("open", &path))?;
                file.write_all_at(&vec![0u8; tail_end - end], end as u64)
                    .and_then(|()| file.sync_data())
                    .map_err(LogError::io("truncate torn tail of", &path))?;
            }
            report.torn_tail = Some((path.clone(), end as u64, dropped));
        }
        report.records += records;
        segments.push(RecoveredSegment {
            base,
            path,
            records,
            end: end as u64,
        });
    }
    report.segments = segments.len();
    report.first_lsn = segments.first().map_or(1, |s| s.base);
    report.next_lsn = segments.last().map_or(1, |s| s.base + s.records);
    Ok(Recovered { segments, report })
}

/// A damaged record passed over: its offset, its index in the segment, why.
type Skipped = (usize, u64, FrameError);

/// Walks the records of a whole segment: (records, offset past the last good one, the
/// problem that stopped the walk if it was not a clean end, the damaged records passed
/// over when `skip` allows it: those whose stored length leads to a good record).
fn scan_skipping(bytes: &[u8], skip: bool) -> (u64, usize, Option<FrameError>, Vec<Skipped>) {
    let mut offset = SEGMENT_HEADER_LEN;
    let mut records = 0;
    let mut skipped = Vec::new();
    loop {
        match format::decode_frame(bytes, offset) {
            Frame::Record { next, .. } => {
                records += 1;
                offset = next;
            }
            Frame::End => return (records, offset, None, skipped),
            Frame::Invalid(e @ FrameError::ChecksumMismatch) if skip => {
                match format::skippable(bytes, offset) {
                    Some(next) => {
                        skipped.push((offset, records, e));
                        records += 1;
                        offset = next;
                    }
                    None => return (records, offset, Some(e), skipped),
                }
            }
            Frame::Invalid(e) => return (records, offset, Some(e), skipped),
        }
    }
}

/// Ok when a crash during the last commit explains what follows the last good record at
/// `end` of the newest segment (see the module doc); otherwise why it cannot have.
fn torn_tail(
    bytes: &[u8],
    end: usize,
    bad: Option<FrameError>,
    tail_end: usize,
    max_commit_bytes: usize,
) -> Result<(), String> {
    let claimed = match bad {
        // An all-zero record header, data after it: the header's sector was lost.
        None => 0,
        Some(FrameError::ZeroKind) => return Err("no crash writes kind 0".into()),
        Some(FrameError::ChecksumMismatch | FrameError::LengthOutOfBounds) => {
            if let Some(len) = checks_with_another_length(bytes, end, tail_end) {
                return Err(format!(
                    "the record checks with length {len}: its header was damaged after it was written"
                ));
            }
            let len = u32::from_le_bytes(bytes[end..end + 4].try_into().expect("4 bytes"));
            RECORD_HEADER_LEN + len as usize
        }
    };
    let reach = end.saturating_add(claimed).saturating_add(max_commit_bytes);
    if tail_end > reach {
        return Err(format!(
            "data runs on to byte {tail_end}, further than one commit ({max_commit_bytes} bytes) can leave unsynced"
        ));
    }
    if bad == Some(FrameError::ChecksumMismatch) && !has_lost_sector(bytes, end, end + claimed) {
        return Err(
            "no lost sector explains it (every sector of the record holds data): it was damaged after it was written"
                .into(),
        );
    }
    Ok(())
}

/// Whether a sector of `bytes[from..to]` (its part in that range) is all zeros, or the
/// range runs past the end of the file (whose growth a crash may have lost).
fn has_lost_sector(bytes: &[u8], from: usize, to: usize) -> bool {
    if to > bytes.len() {
        return true;
    }
    let sector = SECTOR as usize;
    let mut start = from;
    while start < to {
        let stop = ((start / sector + 1) * sector).min(to);
        if bytes[start..stop].iter().all(|&b| b == 0) {
            return true;
        }
        start = stop;
    }
    false
}

/// A length, differing from the one stored at `at` in one byte, with which the record
/// there checks and is followed by a record or by nothing: then the record was whole and
/// only its header damaged. (A crash only zeroes bytes, which cannot produce this.)
fn checks_with_another_length(bytes: &[u8], at: usize, tail_end: usize) -> Option<usize> {
    let header = bytes.get(at..at + RECORD_HEADER_LEN)?;
    let stored_len: [u8; 4] = header[0..4].try_into().expect("4 bytes");
    let stored_crc = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
    let kind = header[8];
    for i in 0..4 {
        for v in 0..=255u8 {
            if v == stored_len[i] {
                continue;
            }
            let mut candidate = stored_len;
            candidate[i] = v;
            let len = u32::from_le_bytes(candidate) as usize;
            let next = at + RECORD_HEADER_LEN + len;
            // Followed by a record, or by zeros (less than a sector of the payload's own
            // trailing zeros aside): cheap tests before the checksum.
            let plausible = next <= bytes.len()
                && ((next >= tail_end && next - tail_end < SECTOR as usize)
                    || matches!(format::decode_frame(bytes, next), Frame::Record { .. }));
            if plausible
                && format::record_crc(kind, &bytes[at + RECORD_HEADER_LEN..next]) == stored_crc
            {
                return Some(len);
            }
        }
    }
    None
}

fn is_blank_data_area(bytes: &[u8]) -> bool {
    bytes
        .get(SEGMENT_HEADER_LEN..)
        .unwrap_or_default()
        .iter()
        .all(|&b| b == 0)
}

/// Offline reading (`ctl log dump`): every record from `from` on, without opening the log
/// for writing or changing any file. Stops at the first bad record of any segment.
pub fn for_each_record(
    fs: &dyn FileSystem,
    dir: &Path,
    from: Lsn,
    mut f: impl FnMut(super::RecordRef<'_>),
) -> Result<RecoveryReport, LogError> {
    let recovered = recover(fs, dir, &LogOptions::default(), Access::ReadOnly)?;
    for seg in &recovered.segments {
        if seg.base + seg.records <= from {
            continue;
        }
        let bytes = fs.map(&seg.path).map_err(LogError::io("map", &seg.path))?;
        let bytes: &[u8] = (*bytes).as_ref();
        let mut offset = SEGMENT_HEADER_LEN;
        for lsn in seg.base..seg.base + seg.records {
            let Frame::Record {
                kind,
                payload,
                next,
            } = format::decode_frame(bytes, offset)
            else {
                break;
            };
            if lsn >= from {
                f(super::RecordRef { lsn, kind, payload });
            }
            offset = next;
        }
    }
    Ok(recovered.report)
}
