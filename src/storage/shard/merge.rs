//! Merges: a shard's column files merged size-tiered into one, series by series.

use super::schema::{file_schema, schema_record};
use super::Shard;
use crate::line_protocol::key_tags;
use crate::storage::column::Column;
use crate::storage::column_file::{self, ColumnFile, FileSeries};
use crate::storage::tombstone::{self, Tombstones};
use crate::storage::StorageError;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Column files a shard may gather before they are merged into one.
const MERGE_AT: usize = 8;

impl Shard {
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
}

/// Runs `work` unless another run holding `busy` is under way (then does nothing). `busy`
/// is cleared however `work` ends, a panic included: a flush or merge that panicked once
/// must not keep every later one from running (and the head from ever being written out).
pub(super) fn alone(
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
