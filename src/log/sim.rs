//! A simulated file system for crash tests: it loses what a real one may lose at a power
//! failure, and nothing a real one keeps.
//!
//! * File bytes have two layers: what the process sees (`current`) and what is on the disk
//!   (`durable`). Writes are pending until [`FsFile::sync_data`] of that file.
//! * Directories are inodes of their own, each with a current and a durable table of
//!   entries. Creating, renaming, linking or removing a name changes only the current
//!   table of the directories involved; [`FileSystem::sync_dir`] makes one directory's
//!   table durable (not its parent's: a new directory needs its parent synced too, as
//!   [`FileSystem::create_dir_all`] does).
//! * [`SimFs::crash`] replaces what the process sees with what a reboot would find. With
//!   [`CrashMode::Tear`], each pending write reaches the disk by 512-byte sector, any
//!   subset of them (a later sector may be durable, an earlier one not), and a prefix of
//!   the unsynced directory operations survives, as a journal commits them in order.
//! * A failed fsync ([`SimFs::fail_next_sync`]) behaves as on Linux: the dirty pages are
//!   marked clean without reaching the disk, so the process still reads the new bytes, a
//!   later fsync succeeds, and a crash loses them.
//!
//! A test can also stop the machine at an exact I/O boundary ([`SimFs::stop_after_ops`]):
//! every write, sync or directory operation after it fails as if the process had died.

use super::fs::{FileBytes, FileSystem, FsFile};
use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path};
use std::sync::{Arc, Mutex, MutexGuard};

pub use super::fs::SECTOR;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Power loss, worst case: every unsynced write and directory change is lost.
    DropUnsynced,
    /// Power loss as a disk may leave it, decided by the seed: each unsynced write survives
    /// by sector (all, none, a prefix or any subset of its sectors); a prefix of the
    /// unsynced directory operations survives.
    Tear { seed: u64 },
    /// The process dies but the machine does not (kill -9): the page cache keeps every
    /// write and directory change, synced or not.
    KeepUnsynced,
}

#[derive(Debug, Default, Clone)]
pub struct SimFs {
    state: Arc<Mutex<SimState>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    File(usize),
    Dir(usize),
}

#[derive(Debug, Default, Clone)]
struct DirInode {
    current: BTreeMap<String, Entry>,
    durable: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone)]
enum Pending {
    Write(u64, Vec<u8>),
    SetLen(u64),
}

#[derive(Debug, Default, Clone)]
struct Inode {
    current: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<Pending>,
}

/// One directory operation not yet durable everywhere it changed a table: the entries it
/// set, by directory (those of directories synced since are removed).
#[derive(Debug)]
struct DirOp {
    edits: Vec<(usize, String, Option<Entry>)>,
}

#[derive(Debug)]
struct SimState {
    inodes: Vec<Inode>,
    /// Directory inodes; 0 is the root, which always exists.
    dirs: Vec<DirInode>,
    unsynced_dir_ops: Vec<DirOp>,
    /// Bumped by every crash; handles from before it are dead.
    generation: u64,
    ops: u64,
    stop_after_ops: Option<u64>,
    fail_next_sync: bool,
    fail_next_dir_sync: bool,
    space_limit: Option<u64>,
    syncs_in_flight: u32,
    writes_during_sync: u64,
}

impl Default for SimState {
    fn default() -> Self {
        SimState {
            inodes: Vec::new(),
            dirs: vec![DirInode::default()],
            unsynced_dir_ops: Vec::new(),
            generation: 0,
            ops: 0,
            stop_after_ops: None,
            fail_next_sync: false,
            fail_next_dir_sync: false,
            space_limit: None,
            syncs_in_flight: 0,
            writes_during_sync: 0,
        }
    }
}

fn power_lost() -> io::Error {
    io::Error::other("simulated power loss")
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} not found", path.display()),
    )
}

fn invalid(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{}: {what}", path.display()),
    )
}

/// The names along a path (absolute or not, both from the root).
fn components(path: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(
                n.to_str()
                    .ok_or_else(|| invalid(path, "not UTF-8"))?
                    .to_owned(),
            ),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(invalid(path, "unsupported path component"))
            }
        }
    }
    Ok(out)
}

impl SimState {
    /// Counts one I/O operation; fails once the machine has stopped.
    fn tick(&mut self) -> io::Result<()> {
        if let Some(limit) = self.stop_after_ops {
            if self.ops >= limit {
                return Err(power_lost());
            }
        }
        self.ops += 1;
        Ok(())
    }

    fn lookup(&self, path: &Path) -> io::Result<Option<Entry>> {
        let names = components(path)?;
        let mut at = Entry::Dir(0);
        for name in &names {
            let Entry::Dir(d) = at else {
                return Err(invalid(path, "a path component is a file"));
            };
            match self.dirs[d].current.get(name) {
                Some(&e) => at = e,
                None => return Ok(None),
            }
        }
        Ok(Some(at))
    }

    fn dir_id(&self, path: &Path) -> io::Result<usize> {
        match self.lookup(path)? {
            Some(Entry::Dir(d)) => Ok(d),
            Some(Entry::File(_)) => Err(invalid(path, "not a directory")),
            None => Err(not_found(path)),
        }
    }

    fn file_id(&self, path: &Path) -> io::Result<usize> {
        match self.lookup(path)? {
            Some(Entry::File(i)) => Ok(i),
            Some(Entry::Dir(_)) => Err(invalid(path, "is a directory")),
            None => Err(not_found(path)),
        }
    }

    /// The directory holding `path`'s entry, and the entry's name.
    fn parent_of(&self, path: &Path) -> io::Result<(usize, String)> {
        let mut names = components(path)?;
        let name = names.pop().ok_or_else(|| invalid(path, "the root"))?;
        let parent: std::path::PathBuf = names.iter().collect();
        Ok((self.dir_id(&Path::new("/").join(parent))?, name))
    }

    /// Applies one directory operation to the current tables and remembers it until the
    /// directories it touched are synced.
    fn dir_op(&mut self, edits: Vec<(usize, String, Option<Entry>)>) {
        for (dir, name, entry) in &edits {
            match entry {
                Some(e) => self.dirs[*dir].current.insert(name.clone(), *e),
                None => self.dirs[*dir].current.remove(name),
            };
        }
        self.unsynced_dir_ops.push(DirOp { edits });
    }

    /// Files reachable from the root now, for the space limit.
    fn allocated(&self) -> u64 {
        let mut files = std::collections::BTreeSet::new();
        let mut stack = vec![0usize];
        while let Some(d) = stack.pop() {
            for e in self.dirs[d].current.values() {
                match *e {
                    Entry::File(i) => {
                        files.insert(i);
                    }
                    Entry::Dir(c) => stack.push(c),
                }
            }
        }
        files
            .iter()
            .map(|&i| self.inodes[i].current.len() as u64)
            .sum()
    }

    fn new_inode(&mut self, bytes: Vec<u8>) -> usize {
        self.inodes.push(Inode {
            current: bytes.clone(),
            durable: bytes,
            pending: Vec::new(),
        });
        self.inodes.len() - 1
    }

    fn check_space(&self, grow: u64) -> io::Result<()> {
        match self.space_limit {
            Some(limit) if self.allocated() + grow > limit => {
                Err(io::Error::from_raw_os_error(libc::ENOSPC))
            }
            _ => Ok(()),
        }
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

    /// I/O operations (writes, syncs, directory changes) counted so far.
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// After `n` more operations, every further one fails (the process "died").
    pub fn stop_after_ops(&self, n: u64) {
        let mut s = self.lock();
        s.stop_after_ops = Some(s.ops + n);
    }

    /// Writes that landed while an fdatasync was running (of any file), which that
    /// fdatasync did not make durable.
    pub fn writes_during_sync(&self) -> u64 {
        self.lock().writes_during_sync
    }

    /// The next `sync_data` fails with EIO, and the file's pending writes never reach the
    /// disk although the process still reads them (Linux marks the pages clean).
    pub fn fail_next_sync(&self) {
        self.lock().fail_next_sync = true;
    }

    /// The next `sync_dir` fails with EIO; the directory's changes stay unsynced.
    pub fn fail_next_dir_sync(&self) {
        self.lock().fail_next_dir_sync = true;
    }

    /// Preallocations and growth beyond `bytes` in total fail with ENOSPC.
    pub fn set_space_limit(&self, bytes: Option<u64>) {
        self.lock().space_limit = bytes;
    }

    /// Power loss (or process death, see [`CrashMode`]): what a restart would find
    /// replaces what the process saw, and every open handle dies.
    pub fn crash(&self, mode: CrashMode) {
        let mut s = self.lock();
        let mut rng = match mode {
            CrashMode::Tear { seed } => seed | 1,
            _ => 1,
        };
        for inode in &mut s.inodes {
            let pending = std::mem::take(&mut inode.pending);
            match mode {
                CrashMode::DropUnsynced => {}
                CrashMode::KeepUnsynced => inode.durable = inode.current.clone(),
                CrashMode::Tear { .. } => {
                    for p in pending {
                        tear(&mut inode.durable, p, &mut rng);
                    }
                }
            }
            inode.current = inode.durable.clone();
        }
        let ops = std::mem::take(&mut s.unsynced_dir_ops);
        let survive = match mode {
            CrashMode::DropUnsynced => 0,
            CrashMode::KeepUnsynced => ops.len(),
            CrashMode::Tear { .. } => (xorshift(&mut rng) as usize) % (ops.len() + 1),
        };
        for op in ops.into_iter().take(survive) {
            for (dir, name, entry) in op.edits {
                match entry {
                    Some(e) => s.dirs[dir].durable.insert(name, e),
                    None => s.dirs[dir].durable.remove(&name),
                };
            }
        }
        for dir in &mut s.dirs {
            dir.current = dir.durable.clone();
        }
        s.generation += 1;
        s.stop_after_ops = None;
        s.fail_next_sync = false;
        s.fail_next_dir_sync = false;
    }

    /// Flips one bit of a file as the process sees it (and as it is durable).
    pub fn flip_bit(&self, path: &Path, offset: u64, bit: u8) -> io::Result<()> {
        let mut s = self.lock();
        let i = s.file_id(path)?;
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
        let i = s.file_id(path).ok()?;
        Some(s.inodes[i].current.clone())
    }

    /// Places a durable file with the given bytes, and its directories (fuzzing and
    /// corruption tests).
    pub fn put_file(&self, path: &Path, bytes: &[u8]) {
        let mut s = self.lock();
        let names = components(path).expect("a plain path");
        let (name, dirs) = names.split_last().expect("a file name");
        let mut dir = 0;
        for d in dirs {
            dir = match s.dirs[dir].current.get(d) {
                Some(Entry::Dir(c)) => *c,
                Some(Entry::File(_)) => panic!("{d} is a file"),
                None => {
                    s.dirs.push(DirInode::default());
                    let c = s.dirs.len() - 1;
                    let parent = &mut s.dirs[dir];
                    for table in [&mut parent.current, &mut parent.durable] {
                        table.insert(d.clone(), Entry::Dir(c));
                    }
                    c
                }
            };
        }
        let inode = s.new_inode(bytes.to_vec());
        let parent = &mut s.dirs[dir];
        for table in [&mut parent.current, &mut parent.durable] {
            table.insert(name.clone(), Entry::File(inode));
        }
    }
}

/// What of one pending change reaches the disk at a torn crash: nothing, all, a prefix or
/// any subset of its sectors, each sector whole or not at all.
fn tear(durable: &mut Vec<u8>, pending: Pending, rng: &mut u64) {
    match pending {
        Pending::SetLen(len) => {
            if xorshift(rng) % 2 == 0 {
                durable.resize(len as usize, 0);
            }
        }
        Pending::Write(offset, data) => {
            let style = xorshift(rng) % 4;
            let end = offset + data.len() as u64;
            let mut start = offset;
            let mut cut = false;
            while start < end {
                let stop = ((start / SECTOR + 1) * SECTOR).min(end);
                let keep = match style {
                    0 => false,
                    1 => true,
                    2 => {
                        cut = cut || xorshift(rng) % 4 == 0;
                        !cut
                    }
                    _ => xorshift(rng) % 2 == 0,
                };
                if keep {
                    if durable.len() < stop as usize {
                        durable.resize(stop as usize, 0);
                    }
                    let from = (start - offset) as usize;
                    durable[start as usize..stop as usize]
                        .copy_from_slice(&data[from..from + (stop - start) as usize]);
                }
                start = stop;
            }
        }
    }
}

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

impl FileSystem for SimFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let names = components(dir)?;
        let mut path = std::path::PathBuf::from("/");
        for name in names {
            let parent = path.clone();
            path.push(name);
            let exists = match self.lock().lookup(&path)? {
                Some(Entry::Dir(_)) => true,
                Some(Entry::File(_)) => return Err(invalid(&path, "not a directory")),
                None => false,
            };
            if !exists {
                self.create_dir(&path)?;
                self.sync_dir(&parent)?;
            }
        }
        Ok(())
    }

    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.lock();
        let (parent, name) = s.parent_of(dir)?;
        if s.dirs[parent].current.contains_key(&name) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        s.tick()?;
        s.dirs.push(DirInode::default());
        let id = s.dirs.len() - 1;
        s.dir_op(vec![(parent, name, Some(Entry::Dir(id)))]);
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let s = self.lock();
        let d = s.dir_id(dir)?;
        Ok(s.dirs[d]
            .current
            .iter()
            .filter(|(_, e)| matches!(e, Entry::File(_)))
            .map(|(n, _)| n.clone())
            .collect())
    }

    fn list_dirs(&self, dir: &Path) -> io::Result<Vec<String>> {
        let s = self.lock();
        let d = s.dir_id(dir)?;
        Ok(s.dirs[d]
            .current
            .iter()
            .filter(|(_, e)| matches!(e, Entry::Dir(_)))
            .map(|(n, _)| n.clone())
            .collect())
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        Ok(self.lock().lookup(path)?.is_some())
    }

    fn create_preallocated(&self, path: &Path, len: u64) -> io::Result<Box<dyn FsFile>> {
        let mut s = self.lock();
        let (parent, name) = s.parent_of(path)?;
        if s.dirs[parent].current.contains_key(&name) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        s.check_space(len)?;
        s.tick()?;
        // Reserved space reads as zeros before and after a crash, as fallocate's does.
        let inode = s.new_inode(vec![0u8; len as usize]);
        s.dir_op(vec![(parent, name, Some(Entry::File(inode)))]);
        Ok(Box::new(SimFile {
            fs: self.clone(),
            inode,
            generation: s.generation,
        }))
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let mut s = self.lock();
        let (parent, name) = s.parent_of(path)?;
        let inode = match s.dirs[parent].current.get(&name) {
            Some(Entry::Dir(_)) => return Err(invalid(path, "is a directory")),
            Some(&Entry::File(i)) => {
                s.tick()?;
                let inode = &mut s.inodes[i];
                inode.current.clear();
                inode.pending.push(Pending::SetLen(0));
                i
            }
            None => {
                s.tick()?;
                let i = s.new_inode(Vec::new());
                s.dir_op(vec![(parent, name, Some(Entry::File(i)))]);
                i
            }
        };
        Ok(Box::new(SimFile {
            fs: self.clone(),
            inode,
            generation: s.generation,
        }))
    }

    fn open(&self, path: &Path, _writable: bool) -> io::Result<Box<dyn FsFile>> {
        let s = self.lock();
        let inode = s.file_id(path)?;
        Ok(Box::new(SimFile {
            fs: self.clone(),
            inode,
            generation: s.generation,
        }))
    }

    fn map(&self, path: &Path) -> io::Result<FileBytes> {
        let s = self.lock();
        let inode = s.file_id(path)?;
        Ok(Arc::new(s.inodes[inode].current.clone()))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.lock();
        let (from_dir, from_name) = s.parent_of(from)?;
        let (to_dir, to_name) = s.parent_of(to)?;
        let entry = *s.dirs[from_dir]
            .current
            .get(&from_name)
            .ok_or_else(|| not_found(from))?;
        match (entry, s.dirs[to_dir].current.get(&to_name)) {
            (Entry::File(_), Some(Entry::Dir(_))) => return Err(invalid(to, "is a directory")),
            (Entry::Dir(_), Some(Entry::File(_))) => return Err(invalid(to, "not a directory")),
            (Entry::Dir(_), Some(Entry::Dir(d))) if !s.dirs[*d].current.is_empty() => {
                return Err(invalid(to, "directory not empty"))
            }
            _ => {}
        }
        s.tick()?;
        s.dir_op(vec![
            (from_dir, from_name, None),
            (to_dir, to_name, Some(entry)),
        ]);
        Ok(())
    }

    fn exchange(&self, a: &Path, b: &Path) -> io::Result<()> {
        let mut s = self.lock();
        let (a_dir, a_name) = s.parent_of(a)?;
        let (b_dir, b_name) = s.parent_of(b)?;
        let ea = *s.dirs[a_dir]
            .current
            .get(&a_name)
            .ok_or_else(|| not_found(a))?;
        let eb = *s.dirs[b_dir]
            .current
            .get(&b_name)
            .ok_or_else(|| not_found(b))?;
        s.tick()?;
        s.dir_op(vec![(a_dir, a_name, Some(eb)), (b_dir, b_name, Some(ea))]);
        Ok(())
    }

    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.lock();
        let inode = s.file_id(from)?;
        let (to_dir, to_name) = s.parent_of(to)?;
        if s.dirs[to_dir].current.contains_key(&to_name) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        s.tick()?;
        s.dir_op(vec![(to_dir, to_name, Some(Entry::File(inode)))]);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.file_id(path)?;
        let (dir, name) = s.parent_of(path)?;
        s.tick()?;
        s.dir_op(vec![(dir, name, None)]);
        Ok(())
    }

    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.lock();
        let d = s.dir_id(dir)?;
        if !s.dirs[d].current.is_empty() {
            return Err(invalid(dir, "directory not empty"));
        }
        let (parent, name) = s.parent_of(dir)?;
        s.tick()?;
        s.dir_op(vec![(parent, name, None)]);
        Ok(())
    }

    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        let d = self.lock().dir_id(dir)?;
        // Depth first, one operation per entry, as the real call unlinks them one by one.
        let entries: Vec<(String, Entry)> = self.lock().dirs[d]
            .current
            .iter()
            .map(|(n, e)| (n.clone(), *e))
            .collect();
        for (name, entry) in entries {
            let path = dir.join(&name);
            match entry {
                Entry::Dir(_) => self.remove_dir_all(&path)?,
                Entry::File(_) => self.remove(&path)?,
            }
        }
        self.remove_dir(dir)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.lock();
        let d = s.dir_id(dir)?;
        s.tick()?;
        if std::mem::take(&mut s.fail_next_dir_sync) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        s.dirs[d].durable = s.dirs[d].current.clone();
        for op in &mut s.unsynced_dir_ops {
            op.edits.retain(|(dir, _, _)| *dir != d);
        }
        s.unsynced_dir_ops.retain(|op| !op.edits.is_empty());
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

fn apply(bytes: &mut Vec<u8>, change: &Pending) {
    match change {
        Pending::Write(offset, data) => {
            let end = *offset as usize + data.len();
            if bytes.len() < end {
                bytes.resize(end, 0);
            }
            bytes[*offset as usize..end].copy_from_slice(data);
        }
        Pending::SetLen(len) => bytes.resize(*len as usize, 0),
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
        let grow =
            (offset + buf.len() as u64).saturating_sub(s.inodes[self.inode].current.len() as u64);
        if grow > 0 {
            s.check_space(grow)?;
        }
        s.tick()?;
        if s.syncs_in_flight > 0 {
            s.writes_during_sync += 1;
        }
        let change = Pending::Write(offset, buf.to_vec());
        let inode = &mut s.inodes[self.inode];
        apply(&mut inode.current, &change);
        inode.pending.push(change);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut s = self.live()?;
        s.tick()?;
        let failed = std::mem::take(&mut s.fail_next_sync);
        if failed {
            // Linux marks the pages clean although they never reached the disk: the
            // process still reads them, the next fsync has nothing to write, a crash
            // loses them.
            s.inodes[self.inode].pending.clear();
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        // An fdatasync takes time: it makes durable what was written before it began,
        // and writes that land meanwhile stay pending.
        let covered = s.inodes[self.inode].pending.len();
        s.syncs_in_flight += 1;
        drop(s);
        std::thread::yield_now();
        let mut s = self.fs.lock();
        s.syncs_in_flight -= 1;
        if s.generation != self.generation {
            return Err(power_lost());
        }
        let inode = &mut s.inodes[self.inode];
        let covered = covered.min(inode.pending.len());
        for change in inode.pending.drain(..covered) {
            apply(&mut inode.durable, &change);
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut s = self.live()?;
        let grow = len.saturating_sub(s.inodes[self.inode].current.len() as u64);
        if grow > 0 {
            s.check_space(grow)?;
        }
        s.tick()?;
        let change = Pending::SetLen(len);
        let inode = &mut s.inodes[self.inode];
        apply(&mut inode.current, &change);
        inode.pending.push(change);
        Ok(())
    }

    fn preallocate(&self, len: u64) -> io::Result<()> {
        let mut s = self.live()?;
        let grow = len.saturating_sub(s.inodes[self.inode].current.len() as u64);
        s.check_space(grow)?;
        s.tick()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn write_file(fs: &SimFs, path: &str, bytes: &[u8], sync: bool) {
        let f = fs.create(Path::new(path)).unwrap();
        f.write_all_at(bytes, 0).unwrap();
        if sync {
            f.sync_data().unwrap();
        }
    }

    #[test]
    fn an_unsynced_name_is_lost_and_a_synced_one_kept() {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new("/d")).unwrap();
        write_file(&fs, "/d/a", b"a", true);
        fs.sync_dir(Path::new("/d")).unwrap();
        write_file(&fs, "/d/b", b"b", true);
        fs.crash(CrashMode::DropUnsynced);
        assert_eq!(fs.list(Path::new("/d")).unwrap(), vec!["a"]);
        assert_eq!(fs.contents(Path::new("/d/a")).unwrap(), b"a");
    }

    #[test]
    fn a_new_directory_needs_its_parent_synced() {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new("/data")).unwrap();
        fs.create_dir(Path::new("/data/shard")).unwrap();
        write_file(&fs, "/data/shard/f", b"x", true);
        fs.sync_dir(Path::new("/data/shard")).unwrap();
        fs.crash(CrashMode::DropUnsynced);
        assert!(!fs.exists(Path::new("/data/shard")).unwrap());

        fs.create_dir_all(Path::new("/data/shard")).unwrap();
        write_file(&fs, "/data/shard/f", b"x", true);
        fs.sync_dir(Path::new("/data/shard")).unwrap();
        fs.crash(CrashMode::DropUnsynced);
        assert_eq!(fs.contents(Path::new("/data/shard/f")).unwrap(), b"x");
    }

    #[test]
    fn removals_and_renames_are_undone_unless_synced() {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new("/d")).unwrap();
        write_file(&fs, "/d/old", b"old", true);
        write_file(&fs, "/d/tmp", b"new", true);
        fs.create_dir(Path::new("/d/sub")).unwrap();
        fs.sync_dir(Path::new("/d")).unwrap();
        fs.remove(Path::new("/d/old")).unwrap();
        fs.rename(Path::new("/d/tmp"), Path::new("/d/final"))
            .unwrap();
        fs.remove_dir_all(Path::new("/d/sub")).unwrap();
        fs.crash(CrashMode::DropUnsynced);
        assert_eq!(fs.list(Path::new("/d")).unwrap(), vec!["old", "tmp"]);
        assert_eq!(fs.list_dirs(Path::new("/d")).unwrap(), vec!["sub"]);

        fs.remove(Path::new("/d/old")).unwrap();
        fs.rename(Path::new("/d/tmp"), Path::new("/d/final"))
            .unwrap();
        fs.sync_dir(Path::new("/d")).unwrap();
        fs.crash(CrashMode::DropUnsynced);
        assert_eq!(fs.list(Path::new("/d")).unwrap(), vec!["final"]);
        assert_eq!(fs.contents(Path::new("/d/final")).unwrap(), b"new");
    }

    #[test]
    fn exchange_and_hard_links_follow_their_directories() {
        let fs = SimFs::new();
        for d in ["/p/a", "/p/b"] {
            fs.create_dir_all(Path::new(d)).unwrap();
        }
        write_file(&fs, "/p/a/f", b"from a", true);
        write_file(&fs, "/p/b/f", b"from b", true);
        fs.sync_dir(Path::new("/p/a")).unwrap();
        fs.sync_dir(Path::new("/p/b")).unwrap();
        fs.exchange(Path::new("/p/a"), Path::new("/p/b")).unwrap();
        fs.hard_link(Path::new("/p/a/f"), Path::new("/p/a/g"))
            .unwrap();
        assert_eq!(fs.contents(Path::new("/p/a/g")).unwrap(), b"from b");
        fs.crash(CrashMode::DropUnsynced);
        assert_eq!(fs.contents(Path::new("/p/a/f")).unwrap(), b"from a");
        assert!(fs.contents(Path::new("/p/b/g")).is_none());

        fs.exchange(Path::new("/p/a"), Path::new("/p/b")).unwrap();
        fs.sync_dir(Path::new("/p")).unwrap();
        fs.crash(CrashMode::DropUnsynced);
        assert_eq!(fs.contents(Path::new("/p/a/f")).unwrap(), b"from b");
    }

    #[test]
    fn a_torn_write_can_keep_a_later_sector_and_lose_an_earlier_one() {
        let data: Vec<u8> = (0..4 * SECTOR).map(|i| 1 + (i / SECTOR) as u8).collect();
        let mut non_prefix = 0;
        for seed in 0..64 {
            let fs = SimFs::new();
            fs.create_dir_all(Path::new("/d")).unwrap();
            let f = fs
                .create_preallocated(Path::new("/d/f"), data.len() as u64)
                .unwrap();
            fs.sync_dir(Path::new("/d")).unwrap();
            f.write_all_at(&data, 0).unwrap();
            fs.crash(CrashMode::Tear { seed });
            let after = fs.contents(Path::new("/d/f")).unwrap();
            let kept: Vec<bool> = after
                .chunks(SECTOR as usize)
                .enumerate()
                .map(|(i, sector)| {
                    // Each sector is all new or all old, never mixed.
                    assert!(
                        sector.iter().all(|&b| b == 1 + i as u8) || sector.iter().all(|&b| b == 0),
                        "seed {seed}: sector {i} is half written"
                    );
                    sector[0] != 0
                })
                .collect();
            if kept.windows(2).any(|w| !w[0] && w[1]) {
                non_prefix += 1;
            }
        }
        assert!(non_prefix > 0, "some tears keep a later sector only");
    }

    #[test]
    fn a_failed_fsync_drops_the_pages_the_process_still_reads() {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new("/d")).unwrap();
        let f = fs.create_preallocated(Path::new("/d/f"), 8).unwrap();
        fs.sync_dir(Path::new("/d")).unwrap();
        f.write_all_at(b"lost", 0).unwrap();
        fs.fail_next_sync();
        assert!(f.sync_data().is_err());
        let mut buf = [0u8; 4];
        f.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"lost", "the page cache still holds the bytes");
        f.sync_data().unwrap(); // nothing left to write: the error was reported once
        fs.crash(CrashMode::DropUnsynced);
        assert_eq!(fs.contents(Path::new("/d/f")).unwrap(), vec![0u8; 8]);
    }

    #[test]
    fn a_process_death_keeps_everything_written() {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new("/d")).unwrap();
        write_file(&fs, "/d/f", b"unsynced", false);
        fs.crash(CrashMode::KeepUnsynced);
        assert_eq!(fs.contents(Path::new("/d/f")).unwrap(), b"unsynced");
    }

    #[test]
    fn the_machine_stops_at_an_exact_operation() {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new("/d")).unwrap();
        fs.stop_after_ops(2);
        let f = fs.create(Path::new("/d/f")).unwrap();
        f.write_all_at(b"x", 0).unwrap();
        assert!(f.sync_data().is_err());
        assert!(fs.sync_dir(Path::new("/d")).is_err());
        fs.crash(CrashMode::DropUnsynced);
        assert!(!fs.exists(Path::new("/d/f")).unwrap());
    }
}
