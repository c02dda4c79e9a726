//! Opening a log directory: find every segment, check it, and find where appends resume.
//!
//! Policy (the only place it is decided):
//! * a sealed segment (any but the newest) must be whole: a bad record, a non-zero byte after
//!   its end, or a gap to the next segment's base LSN refuses the open;
//! * the newest segment may end in a torn tail (a commit that was being written when the
//!   process or machine stopped, never acknowledged): it is zeroed and reported;
//! * a newest segment whose header never reached the disk, and which holds nothing, is
//!   removed (a crash while rolling to a new segment).

use super::format::{self, Frame, SEGMENT_HEADER_LEN};
use super::fs::FileSystem;
use super::{LogError, Lsn};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryMode {
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
    mode: RecoveryMode,
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
                if mode == RecoveryMode::Repair {
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
        let (records, end, bad) = scan(bytes);
        // Bytes after the last good record that are not zero: a torn commit, or damage.
        let tail_end = bytes
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |p| p + 1)
            .max(end);
        if bad.is_some() || tail_end > end {
            let reason = bad.map_or("data after the end of the records".to_owned(), |e| {
                e.to_string()
            });
            if !newest {
                return Err(corrupt(end as u64, reason));
            }
            let dropped = (tail_end - end) as u64;
            if mode == RecoveryMode::Repair {
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

/// Walks the records of a whole segment: (records, offset past the last good one, the
/// problem that stopped the walk if it was not a clean end).
pub(crate) fn scan(bytes: &[u8]) -> (u64, usize, Option<format::FrameError>) {
    let mut offset = SEGMENT_HEADER_LEN;
    let mut records = 0;
    loop {
        match format::decode_frame(bytes, offset) {
            Frame::Record { next, .. } => {
                records += 1;
                offset = next;
            }
            Frame::End => return (records, offset, None),
            Frame::Invalid(e) => return (records, offset, Some(e)),
        }
    }
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
    let recovered = recover(fs, dir, RecoveryMode::ReadOnly)?;
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
