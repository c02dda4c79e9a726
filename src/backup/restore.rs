//! Making an unpacked shard backup the shard: verify it, merge it with the shard's current
//! files, and check the result forms one log that covers what the column files do not.

use super::archive::{self, LOG_DIR};
use super::BackupError;
use crate::log::format::{self as log_format, Frame, SEGMENT_HEADER_LEN};
use crate::log::fs::{FileBytes, FileSystem};
use crate::storage::column_file::{self, ColumnFile};
use crate::storage::shard::{POINTS_RECORD, POINT_LINES_RECORD, POINT_LINES_ZSTD_RECORD};
use crate::storage::tombstone::TOMBSTONE_RECORD;
use crate::storage::{ShardInfo, Storage};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Restores shard `info` (which the catalog knows) from a shard archive read from `body`,
/// staged in `staging` (removed after, whatever happens); an archive of more than `limit`
/// bytes, as received or unpacked, is [`BackupError::TooLarge`]. Nothing of the shard
/// changes unless every check passes, and once this returns Ok the restored shard is
/// durable. Returns the bytes received.
pub fn restore_shard(
    storage: &Storage,
    info: &ShardInfo,
    restored_from: &[u64],
    body: impl Read,
    staging: &Path,
    limit: u64,
) -> Result<u64, BackupError> {
    let restored =
        stage_shard(storage, info, restored_from, body, staging, limit).and_then(|staged| {
            if staged.has_files {
                swap_staged(storage, info, staging)?;
            }
            Ok(staged.received)
        });
    discard_staging(storage, staging);
    restored
}

/// What [`stage_shard`] unpacked.
#[derive(Debug, Clone, Copy)]
pub struct Staged {
    /// Bytes received.
    pub received: u64,
    /// Whether the archive brought any file (a shard that held nothing brings none).
    pub has_files: bool,
}

/// The first half of a restore: unpacks the archive read from `body` into `staging`
/// (made anew) and verifies it (see [`restore_shard`]); no shard changes. The caller
/// swaps it in ([`swap_staged`], or [`Storage::replace_shard`] for a shard the catalog
/// learns of in the same step) and removes `staging` after ([`discard_staging`]).
pub fn stage_shard(
    storage: &Storage,
    info: &ShardInfo,
    restored_from: &[u64],
    body: impl Read,
    staging: &Path,
    limit: u64,
) -> Result<Staged, BackupError> {
    let fs = &**storage.fs();
    if fs.exists(staging).map_err(BackupError::io(staging))? {
        fs.remove_dir_all(staging)
            .map_err(BackupError::io(staging))?;
    }
    fs.create_dir_all(staging)
        .map_err(BackupError::io(staging))?;
    let unpacked = archive::unpack_shard_archive(fs, body, staging, limit)?;
    let m = &unpacked.manifest;
    check_archive_identity(m, info, restored_from)?;
    if m.files.is_empty() {
        // A shard that held nothing, or an incremental backup of a shard unchanged since:
        // nothing to apply.
        return Ok(Staged {
            received: unpacked.received,
            has_files: false,
        });
    }
    verify_staged(fs, staging, limit.saturating_sub(unpacked.unpacked))?;
    if exists(fs, &staging.join(LOG_DIR))? {
        // An archive of an earlier version carries the shard's own log: its records go
        // into a column file first, so that the restore merges column files only.
        check_staged_log(fs, staging)?;
        storage.migrate_staged(info, staging)?;
    }
    Ok(Staged {
        received: unpacked.received,
        has_files: true,
    })
}

/// The second half of a restore: the staged files, merged with the shard's own, become
/// shard `info` (which the catalog knows) in one step.
pub fn swap_staged(storage: &Storage, info: &ShardInfo, staging: &Path) -> Result<(), BackupError> {
    let fs = &**storage.fs();
    storage.replace_shard(info.clone(), |current| {
        merge_and_check(fs, staging, current)?;
        Ok::<_, BackupError>(staging.to_owned())
    })
}

/// Removes a restore's staging directory, if it is still there (a crash leaves it to the
/// next start).
pub fn discard_staging(storage: &Storage, staging: &Path) {
    let fs = storage.fs();
    if fs.exists(staging).unwrap_or(true) {
        if let Err(e) = fs.remove_dir_all(staging) {
            tracing::warn!(path = %staging.display(), error = %e, "could not remove a restore's staging directory: the next start removes it");
        }
    }
}

/// An archive may go into the shard it was taken from (same id, database, policy and
/// start), or into one a bucket restore made for it (`restored_from` names the backed-up
/// shard; the database may have another name then). Its manifest must also name a shard
/// consistently: the id is derived from the database, policy and start.
fn check_archive_identity(
    m: &archive::ShardManifest,
    info: &ShardInfo,
    restored_from: &[u64],
) -> Result<(), BackupError> {
    let coherent =
        m.shard_id == crate::placement::shard_id(&m.database, &m.retention_policy, m.start);
    let same = m.shard_id == info.id && m.database == info.database;
    let mapped = restored_from.contains(&m.shard_id);
    if coherent
        && (same || mapped)
        && m.start == info.start
        && m.retention_policy == info.retention_policy
    {
        return Ok(());
    }
    Err(BackupError::BadArchive(format!(
        "the archive holds shard {} ({}.{} from {}), which is not shard {} ({}.{} from {}){}",
        m.shard_id,
        m.database,
        m.retention_policy,
        crate::query::format::rfc3339_nanos(m.start),
        info.id,
        info.database,
        info.retention_policy,
        crate::query::format::rfc3339_nanos(info.start),
        if restored_from.is_empty() {
            String::new()
        } else {
            format!(" nor one restored into it ({restored_from:?})")
        }
    )))
}

/// Checks what the archive brought on its own: every log segment's header and record
/// checksums, every record decodes as points, every column file opens. The column files'
/// indexes, unpacked, count against `budget` (what is left of the restore's size limit,
/// [`BackupError::TooLarge`] past it): they stay in memory while the shard is open.
pub fn verify_staged(fs: &dyn FileSystem, staging: &Path, budget: u64) -> Result<(), BackupError> {
    let bad = BackupError::BadArchive;
    for (base, path) in segments(fs, &staging.join(LOG_DIR))? {
        let bytes = map(fs, &path)?;
        scan_segment((*bytes).as_ref(), base)
            .map_err(|e| bad(format!("log segment {base}: {e}")))?;
    }
    let mut left = budget;
    for path in column_files(fs, staging)? {
        let file = ColumnFile::open_within(fs, &path, left).map_err(|e| match e {
            column_file::ColumnFileError::IndexTooLarge { .. } => {
                BackupError::TooLarge(format!("the archive unpacks past the limit: {e}"))
            }
            e => bad(format!("column file: {e}")),
        })?;
        left -= file.index_len();
    }
    Ok(())
}

/// Folds the shard's current column files (`current`, its directory) into `staging`:
/// files the archive lacks are linked in, but for damaged ones.
///
/// A column file both have under one name but with different bytes is a file a merge
/// rewrote on one side (it takes the name of the newest file it merges): the shard's may
/// hold points of files the archive does not bring (an incremental backup leaves out files
/// older than its `since`), the archive's points the shard's lost nothing of. Both are
/// kept, the archive's under a free name: reads resolve points held twice by write
/// version, and the next merge folds the two together.
pub fn merge_and_check(
    fs: &dyn FileSystem,
    staging: &Path,
    current: Option<&Path>,
) -> Result<(), BackupError> {
    let Some(current) = current else {
        return Ok(());
    };
    let current_files = column_files(fs, current)?;
    for path in &current_files {
        // A damaged file (why a quarantined shard is restored) is left behind: the
        // archive's files take its place.
        if let Err(e) = ColumnFile::open(fs, path) {
            tracing::warn!(path = %path.display(), error = %e, "a damaged column file of the shard is not kept by its restore");
            continue;
        }
        let name = path.file_name().unwrap_or_default();
        let target = staging.join(name);
        if exists(fs, &target)? {
            if same_bytes(fs, path, &target)? {
                continue;
            }
            let free = free_column_name(fs, staging, &current_files, name)?;
            fs.rename(&target, &free).map_err(BackupError::io(&free))?;
        }
        fs.hard_link(path, &target)
            .map_err(BackupError::io(&target))?;
    }
    Ok(())
}

/// Checks the log an archive of an earlier version brought: it must be one unbroken run
/// covering everything after its column files (older segments before a gap may go only
/// if the column files cover them).
fn check_staged_log(fs: &dyn FileSystem, staging: &Path) -> Result<(), BackupError> {
    let staged_log = staging.join(LOG_DIR);
    let covered = column_files(fs, staging)?
        .iter()
        .filter_map(|p| column_file::parse_file_name(p.file_name()?.to_str()?))
        .max()
        .unwrap_or(0);
    let mut runs: Vec<(u64, u64, std::path::PathBuf)> = Vec::new();
    for (base, path) in segments(fs, &staged_log)? {
        let bytes = map(fs, &path)?;
        let records = scan_segment((*bytes).as_ref(), base)
            .map_err(|e| BackupError::BadArchive(e.to_string()))?;
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
        fs.remove(path).map_err(BackupError::io(path))?;
    }
    if let Some((base, _, _)) = runs.get(first) {
        if *base > covered + 1 {
            return Err(BackupError::Conflict(format!(
                "the log starts at LSN {base} but the column files cover only up to {covered}: restore the full backup this incremental one follows first"
            )));
        }
    }
    // The log library's own offline check, on the final set.
    if !runs.is_empty() {
        let report = crate::log::verify(fs, &staged_log)
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

/// Whether two files hold the same bytes.
fn same_bytes(fs: &dyn FileSystem, a: &Path, b: &Path) -> Result<bool, BackupError> {
    let (a, b) = (map(fs, a)?, map(fs, b)?);
    Ok((*a).as_ref() == (*b).as_ref())
}

fn exists(fs: &dyn FileSystem, path: &Path) -> Result<bool, BackupError> {
    fs.exists(path).map_err(BackupError::io(path))
}

/// A column-file name below `name`'s covered LSN that neither `staging` nor the shard
/// uses. Lower, so that the watermark the names imply does not grow: flushes name their
/// files after LSNs above every column file's, and merges after the newest file merged.
fn free_column_name(
    fs: &dyn FileSystem,
    staging: &Path,
    current: &[std::path::PathBuf],
    name: &std::ffi::OsStr,
) -> Result<std::path::PathBuf, BackupError> {
    let covered = name
        .to_str()
        .and_then(column_file::parse_file_name)
        .unwrap_or(0);
    for n in (0..covered).rev().map(column_file::file_name) {
        if !exists(fs, &staging.join(&n))? && !current.iter().any(|p| p.ends_with(&n)) {
            return Ok(staging.join(n));
        }
    }
    Err(BackupError::Conflict(format!(
        "column file {} of the backup differs from the shard's and no free name is left for it",
        name.to_string_lossy()
    )))
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

/// A file read through a map: segments are up to their capacity and need not be in
/// memory at once. Staged files are written by this restore only; the shard's own files
/// are not written while it is closed for the restore.
fn map(fs: &dyn FileSystem, path: &Path) -> Result<FileBytes, BackupError> {
    fs.map(path).map_err(BackupError::io(path))
}

fn segments(fs: &dyn FileSystem, dir: &Path) -> Result<Vec<(u64, PathBuf)>, BackupError> {
    if !exists(fs, dir)? {
        return Ok(Vec::new());
    }
    let mut found: Vec<(u64, PathBuf)> = fs
        .list(dir)
        .map_err(BackupError::io(dir))?
        .into_iter()
        .filter_map(|name| Some((log_format::parse_segment_file_name(&name)?, dir.join(name))))
        .collect();
    found.sort();
    Ok(found)
}

fn column_files(fs: &dyn FileSystem, dir: &Path) -> Result<Vec<PathBuf>, BackupError> {
    let mut found: Vec<PathBuf> = fs
        .list(dir)
        .map_err(BackupError::io(dir))?
        .into_iter()
        .filter(|name| column_file::parse_file_name(name).is_some())
        .map(|name| dir.join(name))
        .collect();
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line_protocol::{parse_body, FieldValue};
    use crate::storage::shard::{Shard, ShardInfo};
    use crate::storage::ShardFiles;

    /// Every (series, time, value) of field `v` of measurement `m`, as a read sees it.
    fn points(shard: &Shard) -> Vec<(String, i64, FieldValue)> {
        shard.points_for_test("m", "v")
    }

    /// An incremental backup leaves out the files older than its `since`; a merge on the
    /// shard afterwards folds those files into one that takes the name of the newest, a
    /// name the backup also has. Restoring the backup keeps the shard's merged file (and
    /// the archive's), so the points of the files the backup left out are still there.
    #[test]
    fn a_merge_after_an_incremental_backup_loses_no_point_when_it_is_restored() {
        let root = tempfile::tempdir().unwrap();
        let live = root.path().join("live");
        std::fs::create_dir(&live).unwrap();
        let info = ShardInfo::of_group("db", "autogen", 0, i64::MAX / 2);
        let shard = std::sync::Arc::new(Shard::open_for_test(&live, info.clone()).unwrap());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut expected = Vec::new();
        for batch in 0..8i64 {
            let body = format!("m,host=h{batch} v={batch}i {}", 1000 + batch);
            let (points, errors) = parse_body(body.as_bytes());
            assert!(errors.is_empty());
            let version = 1 << 22 | batch as u64;
            assert!(!runtime.block_on(shard.write(&points, version)).unwrap());
            shard.flush().unwrap();
            expected.push((
                format!("m,host=h{batch}"),
                1000 + batch,
                FieldValue::Integer(batch),
            ));
        }
        // The incremental backup: the files flushed after the full one (which took the
        // first two).
        let files = shard.backup_files().unwrap();
        assert_eq!(files.column_files.len(), 8);
        let incremental = ShardFiles {
            column_files: files.column_files[2..].to_vec(),
        };
        let mut tar = Vec::new();
        archive::write_shard_archive(&info, &incremental, None, &mut tar).unwrap();
        drop(incremental);
        shard.merge().unwrap();
        assert_eq!(
            shard.backup_files().unwrap().column_files.len(),
            1,
            "merged"
        );
        assert_eq!(points(&shard), expected);
        drop(shard);

        let staging = root.path().join("staging");
        std::fs::create_dir(&staging).unwrap();
        let fs = crate::log::fs::RealFs;
        archive::unpack_shard_archive(&fs, &tar[..], &staging, u64::MAX).unwrap();
        verify_staged(&fs, &staging, u64::MAX).unwrap();
        merge_and_check(&fs, &staging, Some(&live)).unwrap();
        let restored = std::sync::Arc::new(Shard::open_for_test(&staging, info).unwrap());
        assert_eq!(points(&restored), expected);
        // The next merge folds the two files of one covered LSN together.
        for batch in 8..15i64 {
            let body = format!("m,host=h{batch} v={batch}i {}", 1000 + batch);
            let (points, _) = parse_body(body.as_bytes());
            runtime
                .block_on(restored.write(&points, 1 << 22 | batch as u64))
                .unwrap();
            restored.flush().unwrap();
            expected.push((
                format!("m,host=h{batch}"),
                1000 + batch,
                FieldValue::Integer(batch),
            ));
        }
        expected.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        restored.merge().unwrap();
        assert!(restored.backup_files().unwrap().column_files.len() < 14);
        assert_eq!(points(&restored), expected);
        drop(restored);
        let info = ShardInfo::of_group("db", "autogen", 0, i64::MAX / 2);
        let reopened = Shard::open_for_test(&staging, info).unwrap();
        assert_eq!(points(&reopened), expected);
    }
}
