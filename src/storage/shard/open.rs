//! Opening a shard: its column files (a flush the process did not finish removed), the
//! field types and versions they record, and a log of its own from earlier versions
//! moved into a column file.

use super::replay::replay_decoded;
use super::schema::{file_schema, Schema};
use super::{Shard, ShardData, ShardInfo};
use crate::log::fs::FileSystem;
use crate::log::Lsn;
use crate::storage::column_file::{self, ColumnFile};
use crate::storage::data_log::DataLog;
use crate::storage::StorageError;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};

/// Where a shard kept its own log in earlier versions (and their shard archives).
pub const OWN_LOG_DIR: &str = "log";

impl Shard {
    /// Opens the shard whose files are in `dir` on `fs`. The directory must exist (see
    /// [`crate::storage::Storage::create_shard_dirs`]). Its records in the data log are not in it
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
        // [`crate::storage::Storage::create_shard_dirs`]): missing, it was lost, and opening an empty
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
        shard.load_digests();
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
