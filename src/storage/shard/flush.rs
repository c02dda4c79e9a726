//! Flushes: the head frozen and written out as a column file, after which the data log may
//! let go of the records it covers; and a backup's files, taken after one.

use super::schema::schema_record;
use super::{Shard, ShardData};
use crate::storage::column_file::{self, ColumnFile};
use crate::storage::head::Head;
use crate::storage::StorageError;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

impl Shard {
    pub(super) fn is_flushing(&self) -> bool {
        matches!(
            self.flushing.try_lock(),
            Err(std::sync::TryLockError::WouldBlock)
        )
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
        // The digests now account for records up to at least the new file's number, as
        // a restart needs to use them (see `load_digests`).
        if let Err(e) = self.persist_digests() {
            tracing::warn!(shard = self.info.id, error = %e, "could not persist the shard's digests: a restart rebuilds them");
        }
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

/// See [`Shard::backup_files`].
pub struct ShardFiles {
    pub column_files: Vec<Arc<ColumnFile>>,
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
