//! A simulated file system for crash tests.
//!
//! Every file keeps two layers: what the process sees (`current`) and what a power loss
//! would leave behind (`durable`). `sync_data` moves a file's pending writes into its
//! durable layer; `sync_dir` does the same for the names in a directory. [`SimFs::crash`]
//! then replaces what the process sees with what would survive: unsynced writes are dropped,
//! or (with [`CrashMode::Tear`]) kept partially and out of order, as a disk's page cache
//! may leave them.
//!
//! A test can also stop the machine at an exact I/O boundary ([`SimFs::stop_after_ops`]):
//! every write or sync after it fails as if the process had died there.

use super::fs::{FileBytes, FileSystem, FsFile};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Unsynced writes and unsynced directory changes are lost.
    DropUnsynced,
    /// Each unsynced write survives whole, partly (a prefix of it) or not at all, decided by
    /// the seed; directory changes survive.
    Tear { seed: u64 },
}

#[derive(Debug, Default, Clone)]
pub struct SimFs {
    state: Arc<Mutex<SimState>>,
}

#[derive(Debug, Default)]
struct SimState {
    inodes: Vec<Inode>,
    names: BTreeMap<PathBuf, usize>,
    durable_names: BTreeMap<PathBuf, usize>,
    dirs: Vec<PathBuf>,
    /// Bumped by every crash; handles from before it are dead.
    generation: u64,
    ops: u64,
    stop_after_ops: Option<u64>,
    fail_next_sync: bool,
    space_limit: Option<u64>,
}

#[derive(Debug, Default, Clone)]
struct Inode {
    current: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<(u64, Vec<u8>)>,
}

fn power_lost() -> io::Error {
    io::Error::other("simulated power loss")
}

impl SimState {
    /// Counts one write or sync; fails once the machine has stopped.
    fn tick(&mut self) -> io::Result<()> {
        if let Some(limit) = self.stop_after_ops {
            if self.ops >= limit {
                return Err(power_lost());
            }
        }
        self.ops += 1;
        Ok(())
    }

    fn allocated(&self) -> u64 {
        let live: std::collections::BTreeSet<_> = self.names.values().collect();
        live.iter()
            .map(|&&i| self.inodes[i].current.len() as u64)
            .sum()
    }
}

impl SimFs {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        // A panicking test thread must not hide the file system from the next assertion.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes and syncs counted so far.
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// After `n` more writes or syncs, every further one fails (the process "died").
    pub fn stop_after_ops(&self, n: u64) {
        let mut s = self.lock();
        s.stop_after_ops = Some(s.ops + n);
    }

    /// The next `sync_data` fails with EIO and loses the file's pending writes, as Linux may.
    pub fn fail_next_sync(&self) {
        self.lock().fail_next_sync = true;
    }

    /// Preallocations beyond `bytes` in total fail with ENOSPC.
    pub fn set_space_limit(&self, bytes: Option<u64>) {
        self.lock().space_limit = bytes;
    }

    /// Power loss: what a reboot would find replaces what the process saw.
    pub fn crash(&self, mode: CrashMode) {
        let mut s = self.lock();
        let mut rng = match mode {
            CrashMode::DropUnsynced => 0,
            CrashMode::Tear { seed } => seed | 1,
        };
        for inode in &mut s.inodes {
            let mut after = inode.durable.clone();
            if let CrashMode::Tear { .. } = mode {
                for (offset, data) in &inode.pending {
                    let keep = match xorshift(&mut rng) % 3 {
                        0 => 0,
                        1 => data.len(),
                        _ => (xorshift(&mut rng) as usize) % (data.len() + 1),
                    };
                    let end = *offset as usize + keep;
                    if after.len() < end {
                        after.resize(end, 0);
                    }
                    after[*offset as usize..end].copy_from_slice(&data[..keep]);
                }
            }
            inode.durable = after.clone();
            inode.current = after;
            inode.pending.clear();
        }
        if mode == CrashMode::DropUnsynced {
            s.names = s.durable_names.clone();
        } else {
            s.durable_names = s.names.clone();
        }
        s.generation += 1;
        s.stop_after_ops = None;
        s.fail_next_sync = false;
    }

    /// Flips one bit of a file as the process sees it (and as it is durable).
    pub fn flip_bit(&self, path: &Path, offset: u64, bit: u8) -> io::Result<()> {
        let mut s = self.lock();
        let i = *s.names.get(path).ok_or(io::ErrorKind::NotFound)?;
        let inode = &mut s.inodes[i];
        for layer in [&mut inode.current, &mut inode.durable] {
            let b = layer
                .get_mut(offset as usize)
                .ok_or(io::ErrorKind::UnexpectedEof)?;
            *b ^= 1 << bit;
        }
        Ok(())
    }

    /// The bytes of a file as the process sees them.
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let s = self.lock();
        s.names.get(path).map(|&i| s.inodes[i].current.clone())
    }
}

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} not found", path.display()),
    )
}

impl FileSystem for SimFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.lock();
        if !s.dirs.iter().any(|d| d == dir) {
            s.dirs.push(dir.to_owned());
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let s = self.lock();
        Ok(s.names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect())
    }

    fn create_preallocated(&self, path: &Path, len: u64) -> io::Result<Box<dyn FsFile>> {
        let mut s = self.lock();
        if s.stop_after_ops.is_some_and(|limit| s.ops >= limit) {
            return Err(power_lost());
        }
        if s.names.contains_key(path) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        if let Some(limit) = s.space_limit {
            if s.allocated() + len > limit {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
        }
        let zeros = vec![0u8; len as usize];
        s.inodes.push(Inode {
            current: zeros.clone(),
            durable: zeros,
            pending: Vec::new(),
        });
        let inode = s.inodes.len() - 1;
        s.names.insert(path.to_owned(), inode);
        Ok(Box::new(SimFile {
            fs: self.clone(),
            inode,
            generation: s.generation,
        }))
    }

    fn open(&self, path: &Path, _writable: bool) -> io::Result<Box<dyn FsFile>> {
        let s = self.lock();
        let inode = *s.names.get(path).ok_or_else(|| not_found(path))?;
        Ok(Box::new(SimFile {
            fs: self.clone(),
            inode,
            generation: s.generation,
        }))
    }

    fn map(&self, path: &Path) -> io::Result<FileBytes> {
        let s = self.lock();
        let inode = *s.names.get(path).ok_or_else(|| not_found(path))?;
        Ok(Arc::new(s.inodes[inode].current.clone()))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.tick()?;
        let inode = s.names.remove(from).ok_or_else(|| not_found(from))?;
        s.names.insert(to.to_owned(), inode);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.tick()?;
        s.names
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| not_found(path))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.tick()?;
        let in_dir = |p: &PathBuf| p.parent() == Some(dir);
        s.durable_names.retain(|p, _| !in_dir(p));
        let live: Vec<_> = s
            .names
            .iter()
            .filter(|(p, _)| in_dir(p))
            .map(|(p, &i)| (p.clone(), i))
            .collect();
        s.durable_names.extend(live);
        Ok(())
    }
}

struct SimFile {
    fs: SimFs,
    inode: usize,
    generation: u64,
}

impl SimFile {
    fn live(&self) -> io::Result<MutexGuard<'_, SimState>> {
        let s = self.fs.lock();
        if s.generation != self.generation {
            return Err(power_lost());
        }
        Ok(s)
    }
}

impl FsFile for SimFile {
    fn size(&self) -> io::Result<u64> {
        Ok(self.live()?.inodes[self.inode].current.len() as u64)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let s = self.live()?;
        let data = &s.inodes[self.inode].current;
        let start = (offset as usize).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut s = self.live()?;
        s.tick()?;
        let inode = &mut s.inodes[self.inode];
        let end = offset as usize + buf.len();
        if inode.current.len() < end {
            inode.current.resize(end, 0);
        }
        inode.current[offset as usize..end].copy_from_slice(buf);
        inode.pending.push((offset, buf.to_vec()));
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut s = self.live()?;
        s.tick()?;
        if std::mem::take(&mut s.fail_next_sync) {
            // Linux may drop the dirty pages of a failed writeback: model the worst case.
            let inode = &mut s.inodes[self.inode];
            inode.pending.clear();
            inode.current = inode.durable.clone();
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        let inode = &mut s.inodes[self.inode];
        for (offset, data) in std::mem::take(&mut inode.pending) {
            let end = offset as usize + data.len();
            if inode.durable.len() < end {
                inode.durable.resize(end, 0);
            }
            inode.durable[offset as usize..end].copy_from_slice(&data);
        }
        Ok(())
    }

    fn preallocate(&self, len: u64) -> io::Result<()> {
        let mut s = self.live()?;
        s.tick()?;
        let grow = len.saturating_sub(s.inodes[self.inode].current.len() as u64);
        if let Some(limit) = s.space_limit {
            if s.allocated() + grow > limit {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
        }
        // Reserved space reads as zeros before and after a crash, as fallocate's does.
        let inode = &mut s.inodes[self.inode];
        for bytes in [&mut inode.current, &mut inode.durable] {
            if (bytes.len() as u64) < len {
                bytes.resize(len as usize, 0);
            }
        }
        Ok(())
    }
}

impl SimFs {
    /// Places a durable file with the given bytes (fuzzing and corruption tests).
    pub fn put_file(&self, path: &Path, bytes: &[u8]) {
        let mut s = self.lock();
        s.inodes.push(Inode {
            current: bytes.to_vec(),
            durable: bytes.to_vec(),
            pending: Vec::new(),
        });
        let inode = s.inodes.len() - 1;
        s.names.insert(path.to_owned(), inode);
        s.durable_names.insert(path.to_owned(), inode);
    }
}
