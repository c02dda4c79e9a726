//! Snapshots of a projection's state at an LSN.
//!
//! ```text
//!   0        8        16          24               32       36       40
//!   +--------+--------+-----------+----------------+--------+--------+-------------------+
//!   | magic  |  LSN   | state len | compressed len | crc32c |reserved| zstd(state) ...   |
//!   +--------+--------+-----------+----------------+--------+--------+-------------------+
//! ```
//! `magic` is `SKSNAP01`; the crc is the masked crc32c of bytes 0..32 and the compressed
//! state. A snapshot is written to `{lsn:020}.snap.tmp`, synced, renamed to
//! `{lsn:020}.snap`, and the directory is synced: it is either whole or absent. A `.tmp` a
//! crash left is removed at the next open.

use super::format::mask;
use super::fs::FileSystem;
use super::{LogError, Lsn};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAGIC: [u8; 8] = *b"SKSNAP01";
const HEADER_LEN: usize = 40;
const ZSTD_LEVEL: i32 = 3;
/// Snapshots kept besides the newest, in case the newest is damaged.
const KEEP_OLDER: usize = 1;

/// Snapshots that did not check, newest first, with the reason.
pub(super) type Rejected = Vec<(PathBuf, String)>;

pub struct Snapshot {
    pub lsn: Lsn,
    pub state: Vec<u8>,
    pub path: PathBuf,
}

pub struct SnapshotStore {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
}

fn file_name(lsn: Lsn) -> String {
    format!("{lsn:020}.snap")
}

fn parse_file_name(name: &str) -> Option<Lsn> {
    let digits = name.strip_suffix(".snap")?;
    (digits.len() == 20).then(|| digits.parse().ok()).flatten()
}

impl SnapshotStore {
    pub fn new(fs: Arc<dyn FileSystem>, dir: impl Into<PathBuf>) -> Self {
        SnapshotStore {
            fs,
            dir: dir.into(),
        }
    }

    /// Writes `state` as of `lsn` atomically, then removes older snapshots.
    pub fn write(&self, lsn: Lsn, state: &[u8]) -> Result<PathBuf, LogError> {
        let path = self.dir.join(file_name(lsn));
        let tmp = self.dir.join(format!("{}.tmp", file_name(lsn)));
        let compressed =
            zstd::bulk::compress(state, ZSTD_LEVEL).map_err(|e| LogError::Snapshot {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        let mut bytes = Vec::with_capacity(HEADER_LEN + compressed.len());
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(&lsn.to_le_bytes());
        bytes.extend_from_slice(&(state.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&(compressed.len() as u64).to_le_bytes());
        let crc = mask(crc32c::crc32c_append(crc32c::crc32c(&bytes), &compressed));
        bytes.extend_from_slice(&crc.to_le_bytes());
        bytes.extend_from_slice(&[0; 4]);
        bytes.extend_from_slice(&compressed);
        let _ = self.fs.remove(&tmp);
        if let Err(e) = self.write_and_rename(&tmp, &path, &bytes) {
            // Nothing else would ever remove it: the next snapshot has another LSN.
            let _ = self.fs.remove(&tmp);
            return Err(e);
        }
        self.fs
            .sync_dir(&self.dir)
            .map_err(LogError::io("sync directory", &self.dir))?;
        self.prune(lsn)?;
        Ok(path)
    }

    fn write_and_rename(&self, tmp: &Path, path: &Path, bytes: &[u8]) -> Result<(), LogError> {
        let file = self
            .fs
            .create_preallocated(tmp, bytes.len() as u64)
            .map_err(LogError::io("create", tmp))?;
        file.write_all_at(bytes, 0)
            .and_then(|()| file.sync_data())
            .map_err(LogError::io("write", tmp))?;
        // Whole and synced, not yet the newest: a crash here leaves the `.tmp` behind.
        if let Some(e) = crate::failpoint::io_check("snapshot.before_rename") {
            return Err(LogError::io("rename", tmp)(e));
        }
        self.fs
            .rename(tmp, path)
            .map_err(LogError::io("rename", tmp))
    }

    /// Removes snapshots a crash left half-written (`….snap.tmp`), which no later snapshot
    /// would replace (each has its own LSN); the paths removed.
    pub fn remove_unfinished(&self) -> Result<Vec<PathBuf>, LogError> {
        let unfinished: Vec<PathBuf> = self
            .fs
            .list(&self.dir)
            .map_err(LogError::io("list", &self.dir))?
            .into_iter()
            .filter(|n| n.strip_suffix(".tmp").and_then(parse_file_name).is_some())
            .map(|n| self.dir.join(n))
            .collect();
        for path in &unfinished {
            self.fs.remove(path).map_err(LogError::io("remove", path))?;
        }
        Ok(unfinished)
    }

    fn list(&self) -> Result<Vec<(Lsn, PathBuf)>, LogError> {
        let mut found: Vec<_> = self
            .fs
            .list(&self.dir)
            .map_err(LogError::io("list", &self.dir))?
            .into_iter()
            .filter_map(|n| parse_file_name(&n).map(|lsn| (lsn, self.dir.join(n))))
            .collect();
        found.sort();
        Ok(found)
    }

    fn prune(&self, newest: Lsn) -> Result<(), LogError> {
        let older: Vec<_> = self
            .list()?
            .into_iter()
            .filter(|(lsn, _)| *lsn < newest)
            .collect();
        let excess = older.len().saturating_sub(KEEP_OLDER);
        for (_, path) in older.iter().take(excess) {
            self.fs.remove(path).map_err(LogError::io("remove", path))?;
        }
        if excess > 0 {
            self.fs
                .sync_dir(&self.dir)
                .map_err(LogError::io("sync directory", &self.dir))?;
        }
        Ok(())
    }

    /// The LSN of the oldest snapshot kept: the log must keep every record after it, so
    /// that falling back to it (when the newer ones are damaged) finds its tail.
    pub fn oldest_lsn(&self) -> Result<Option<Lsn>, LogError> {
        Ok(self.list()?.first().map(|(lsn, _)| *lsn))
    }

    /// Renames a snapshot that did not check to `….snap.damaged`, out of the way of the
    /// snapshots kept as fallbacks, and kept for inspection.
    pub fn set_aside(&self, path: &Path) -> Result<PathBuf, LogError> {
        let mut aside = path.as_os_str().to_owned();
        aside.push(".damaged");
        let aside = PathBuf::from(aside);
        self.fs
            .rename(path, &aside)
            .map_err(LogError::io("rename", path))?;
        self.fs
            .sync_dir(&self.dir)
            .map_err(LogError::io("sync directory", &self.dir))?;
        Ok(aside)
    }

    /// The newest snapshot that checks, and the paths of newer ones that did not.
    pub fn load_latest(&self) -> Result<(Option<Snapshot>, Rejected), LogError> {
        let mut rejected = Vec::new();
        for (lsn, path) in self.list()?.into_iter().rev() {
            match self.load(&path, lsn) {
                Ok(state) => return Ok((Some(Snapshot { lsn, state, path }), rejected)),
                Err(reason) => rejected.push((path, reason)),
            }
        }
        Ok((None, rejected))
    }

    fn load(&self, path: &Path, lsn: Lsn) -> Result<Vec<u8>, String> {
        let bytes = self.fs.map(path).map_err(|e| e.to_string())?;
        let bytes: &[u8] = (*bytes).as_ref();
        let header = bytes
            .get(..HEADER_LEN)
            .ok_or("shorter than a snapshot header")?;
        let word = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().expect("8 bytes"));
        if header[..8] != MAGIC {
            return Err("not a shardkeeper snapshot".into());
        }
        if word(8) != lsn {
            return Err(format!("header says LSN {}, file name says {lsn}", word(8)));
        }
        let compressed = bytes
            .get(HEADER_LEN..)
            .filter(|c| c.len() as u64 == word(24))
            .ok_or("length does not match its header")?;
        let stored = u32::from_le_bytes(header[32..36].try_into().expect("4 bytes"));
        if mask(crc32c::crc32c_append(
            crc32c::crc32c(&header[..32]),
            compressed,
        )) != stored
        {
            return Err("checksum mismatch".into());
        }
        let state =
            zstd::bulk::decompress(compressed, word(16) as usize).map_err(|e| e.to_string())?;
        if state.len() as u64 != word(16) {
            return Err("decompressed length does not match its header".into());
        }
        Ok(state)
    }
}
