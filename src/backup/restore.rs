//! Making an unpacked shard backup the shard: verify it, merge it with the shard's current
//! files, and check the result forms one log that covers what the column files do not.

use super::archive::LOG_DIR;
use super::BackupError;
use crate::log::format::{self as log_format, Frame, SEGMENT_HEADER_LEN};
use crate::log::fs::RealFs;
use crate::storage::column_file::{self, ColumnFile};
use crate::storage::shard::{POINTS_RECORD, POINT_LINES_RECORD, POINT_LINES_ZSTD_RECORD};
use crate::storage::tombstone::TOMBSTONE_RECORD;
use std::path::Path;

/// Checks what the archive brought on its own: every log segment's header and record
/// checksums, every record decodes as points, every column file opens.
pub fn verify_staged(staging: &Path) -> Result<(), BackupError> {
    let bad = BackupError::BadArchive;
    for (base, path) in segments(&staging.join(LOG_DIR))? {
        let bytes = map(&path)?;
        scan_segment(&bytes, base).map_err(|e| bad(format!("log segment {base}: {e}")))?;
    }
    for path in column_files(staging)? {
        ColumnFile::open(&path).map_err(|e| bad(format!("column file: {e}")))?;
    }
    Ok(())
}

/// Folds the shard's current files (`current`, its directory) into `staging`: files the
/// archive lacks are linked in; of a segment both have, the longer is kept, provided the
/// shorter is a prefix of it (otherwise the shard holds a history the backup is not part
/// of). Then the log must be one unbroken run covering everything after the column files.
pub fn merge_and_check(staging: &Path, current: Option<&Path>) -> Result<(), BackupError> {
    let staged_log = staging.join(LOG_DIR);
    if let Some(current) = current {
        for path in column_files(current)? {
            let target = staging.join(path.file_name().unwrap_or_default());
            if !target.exists() {
                std::fs::hard_link(&path, &target).map_err(BackupError::io(&target))?;
            }
        }
        for (base, path) in segments(&current.join(LOG_DIR))? {
            let target = staged_log.join(log_format::segment_file_name(base));
            if !target.exists() {
                std::fs::hard_link(&path, &target).map_err(BackupError::io(&target))?;
                continue;
            }
            let (ours, theirs) = (map(&path)?, map(&target)?);
            let (ours_end, theirs_end) = (record_end(&ours, base), record_end(&theirs, base));
            let common = ours_end.min(theirs_end);
            if ours[..common] != theirs[..common] {
                return Err(BackupError::Conflict(format!(
                    "log segment {base} of the shard differs from the backup's: the shard holds data written after it was created anew; drop it and restore again"
                )));
            }
            drop((ours, theirs));
            if ours_end > theirs_end {
                std::fs::remove_file(&target).map_err(BackupError::io(&target))?;
                std::fs::hard_link(&path, &target).map_err(BackupError::io(&target))?;
            }
        }
    }
    let covered = column_files(staging)?
        .iter()
        .filter_map(|p| column_file::parse_file_name(p.file_name()?.to_str()?))
        .max()
        .unwrap_or(0);
    // The newest unbroken run of segments is the log; older segments before a gap may go
    // only if the column files cover them.
    let mut runs: Vec<(u64, u64, std::path::PathBuf)> = Vec::new();
    for (base, path) in segments(&staged_log)? {
        let bytes = map(&path)?;
        let records =
            scan_segment(&bytes, base).map_err(|e| BackupError::BadArchive(e.to_string()))?;
        runs.push((base, records, path));
    }
    let mut first = runs.len().saturating_sub(1);
    while first > 0 && runs[first - 1].0 + runs[first - 1].1 == runs[first].0 {
        first -= 1;
    }
    for (base, records, path) in &runs[..first] {
        if base + records > covered + 1 {
            return Err(BackupError::Conflict(format!(
                "the log has a gap before LSN {}: restore the full backup this incremental one follows first",
                runs[first].0
            )));
        }
        std::fs::remove_file(path).map_err(BackupError::io(path))?;
    }
    match runs.get(first) {
        None if covered == 0 => {}
        None => {
            return Err(BackupError::Conflict(
                "the backup has column files but no log segment: restore the full backup first"
                    .into(),
            ))
        }
        Some((base, _, _)) if *base > covered + 1 => {
            return Err(BackupError::Conflict(format!(
                "the log starts at LSN {base} but the column files cover only up to {covered}: restore the full backup this incremental one follows first"
            )))
        }
        Some(_) => {}
    }
    // The log library's own offline check, on the final set.
    if !runs.is_empty() {
        let report = crate::log::verify(&RealFs, &staged_log)
            .map_err(|e| BackupError::BadArchive(e.to_string()))?;
        if let Some((path, offset, _)) = report.torn_tail {
            return Err(BackupError::BadArchive(format!(
                "{} ends in a torn record at byte {offset}",
                path.display()
            )));
        }
    }
    Ok(())
}

/// Records of a segment; every one must check and, if it holds points or tombstones,
/// decode.
fn scan_segment(bytes: &[u8], base: u64) -> Result<u64, String> {
    match log_format::decode_segment_header(bytes) {
        Ok(b) if b == base => {}
        Ok(b) => return Err(format!("header names base LSN {b}")),
        Err(e) => return Err(e.to_string()),
    }
    let mut offset = SEGMENT_HEADER_LEN;
    let mut records = 0;
    loop {
        match log_format::decode_frame(bytes, offset) {
            Frame::Record {
                kind,
                payload,
                next,
            } => {
                use prost::Message;
                let decoded = match kind {
                    POINTS_RECORD => crate::proto::PointsWritten::decode(payload).err(),
                    TOMBSTONE_RECORD => crate::proto::TombstonesWritten::decode(payload).err(),
                    _ => None,
                };
                if let Some(e) = decoded {
                    return Err(format!("record at byte {offset} does not decode: {e}"));
                }
                let lines = match kind {
                    POINT_LINES_RECORD => check_point_lines(payload),
                    POINT_LINES_ZSTD_RECORD => {
                        crate::storage::points_codec::decompress_point_lines(payload)
                            .map_err(|e| e.to_string())
                            .and_then(|plain| check_point_lines(&plain))
                    }
                    _ => Ok(()),
                };
                lines.map_err(|e| format!("record at byte {offset} does not decode: {e}"))?;
                records += 1;
                offset = next;
            }
            Frame::End => break,
            Frame::Invalid(e) => return Err(format!("byte {offset}: {e}")),
        }
    }
    if bytes[offset.min(bytes.len())..].iter().any(|&b| b != 0) {
        return Err(format!("data after the last record at byte {offset}"));
    }
    Ok(records)
}

/// A `PointLines` record decodes and each of its lines parses.
fn check_point_lines(payload: &[u8]) -> Result<(), String> {
    let (_, lines) =
        crate::storage::points_codec::decode_point_lines(payload).map_err(|e| e.to_string())?;
    let mut parser = crate::line_protocol::LineParser::new(Default::default());
    for (_, line) in lines {
        parser.parse(line).map_err(|e| {
            format!(
                "line {:?} does not parse: {e}",
                String::from_utf8_lossy(line)
            )
        })?;
    }
    Ok(())
}

/// Offset past the last record of a segment (its header if none, 0 if that is bad).
fn record_end(bytes: &[u8], base: u64) -> usize {
    if log_format::decode_segment_header(bytes) != Ok(base) {
        return 0;
    }
    let mut offset = SEGMENT_HEADER_LEN;
    while let Frame::Record { next, .. } = log_format::decode_frame(bytes, offset) {
        offset = next;
    }
    offset
}

/// A file read through a map: segments are up to their capacity and need not be in
/// memory at once. Staged files are written by this restore only; the shard's own files
/// are not written while it is closed for the restore.
fn map(path: &Path) -> Result<memmap2::Mmap, BackupError> {
    let file = std::fs::File::open(path).map_err(BackupError::io(path))?;
    // SAFETY: see above: nothing writes the file while the map is alive.
    unsafe { memmap2::Mmap::map(&file) }.map_err(BackupError::io(path))
}

fn segments(dir: &Path) -> Result<Vec<(u64, std::path::PathBuf)>, BackupError> {
    let mut found = Vec::new();
    if !dir.exists() {
        return Ok(found);
    }
    for entry in std::fs::read_dir(dir).map_err(BackupError::io(dir))? {
        let entry = entry.map_err(BackupError::io(dir))?;
        if let Some(base) = entry
            .file_name()
            .to_str()
            .and_then(log_format::parse_segment_file_name)
        {
            found.push((base, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

fn column_files(dir: &Path) -> Result<Vec<std::path::PathBuf>, BackupError> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(BackupError::io(dir))? {
        let entry = entry.map_err(BackupError::io(dir))?;
        if entry
            .file_name()
            .to_str()
            .and_then(column_file::parse_file_name)
            .is_some()
        {
            found.push(entry.path());
        }
    }
    found.sort();
    Ok(found)
}
