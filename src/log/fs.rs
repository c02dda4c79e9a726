//! The file system under everything that writes files, as a trait, so that the same code
//! runs on real files and on [`super::sim::SimFs`], which loses at a chosen crash point
//! what a real file system may lose (unsynced bytes, unsynced directory entries).
//!
//! The log writer's hot path (write + fdatasync of a commit) goes through
//! [`super::writer`]'s sink, which uses io_uring on real files; everything else (listing,
//! recovery, reading, snapshots, directories) goes through this trait.

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::Arc;

/// The unit a disk writes whole or not at all; what a crash can tear apart is whole
/// sectors.
pub const SECTOR: u64 = 512;

/// A read-only view of a whole file: a memory map on real files.
pub type FileBytes = Arc<dyn AsRef<[u8]> + Send + Sync>;

pub trait FileSystem: Send + Sync + Debug {
    /// Creates `dir` and any missing parent, and makes each one it creates durable (its
    /// entry in its parent is synced), so a crash cannot take the directory away later.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Creates one directory (its parent must exist). Not durable until
    /// [`FileSystem::sync_dir`] of the parent.
    fn create_dir(&self, dir: &Path) -> io::Result<()>;
    /// Names of the regular files in `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Names of the directories in `dir`.
    fn list_dirs(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Whether `path` names a file or a directory.
    fn exists(&self, path: &Path) -> io::Result<bool>;
    /// Creates a new file (failing if it exists) with `len` bytes reserved on disk, so that
    /// writes inside it cannot run out of space.
    fn create_preallocated(&self, path: &Path, len: u64) -> io::Result<Box<dyn FsFile>>;
    /// Creates a file, or empties an existing one, open for reading and writing. Its name
    /// is durable only after [`FileSystem::sync_dir`], its bytes after
    /// [`FsFile::sync_data`].
    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>>;
    fn open(&self, path: &Path, writable: bool) -> io::Result<Box<dyn FsFile>>;
    /// Maps a file that will never be written again.
    fn map(&self, path: &Path) -> io::Result<FileBytes>;
    /// As [`FileSystem::map`], for a file read here and there rather than from start to
    /// end (a column file's blocks): no read-ahead hint.
    fn map_for_random_reads(&self, path: &Path) -> io::Result<FileBytes> {
        self.map(path)
    }
    /// Renames a file or a directory, replacing a file at `to` (POSIX rename).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Swaps two existing files or directories atomically (renameat2 RENAME_EXCHANGE).
    fn exchange(&self, a: &Path, b: &Path) -> io::Result<()>;
    /// A second name for the file at `from`.
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Removes an empty directory.
    fn remove_dir(&self, dir: &Path) -> io::Result<()>;
    /// Removes a directory and everything in it. Durable only after
    /// [`FileSystem::sync_dir`] of its parent.
    fn remove_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Makes creations, renames and removals in `dir` durable (the entries of `dir`
    /// itself, not those of its subdirectories).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Whether [`FileSystem::map`] maps the files themselves (read-only, shared), whose
    /// pages a reader may give back to the kernel without losing what they hold.
    fn maps_files(&self) -> bool {
        false
    }
}

pub trait FsFile: Send + Sync {
    fn size(&self) -> io::Result<u64>;
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    fn sync_data(&self) -> io::Result<()>;
    /// Truncates or extends (with zeros) the file to `len` bytes; durable after
    /// [`FsFile::sync_data`].
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Reserves the file's first `len` bytes on disk (growing it if shorter), as
    /// [`FileSystem::create_preallocated`] does, so that writes inside them cannot run out
    /// of space.
    fn preallocate(&self, len: u64) -> io::Result<()>;
    /// The real file behind this handle, for the io_uring writer; None when simulated.
    fn try_clone_std(&self) -> Option<File> {
        None
    }

    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, offset)? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
            }
        }
        Ok(())
    }
}

/// Real files: pwrite + fdatasync, memmap2 for sealed files.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

impl FileSystem for RealFs {
    fn maps_files(&self) -> bool {
        true
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        if dir.is_dir() {
            return Ok(());
        }
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.create_dir_all(parent)?;
        }
        match std::fs::create_dir(dir) {
            Ok(()) => {}
            // Another thread or process made it first: its creator makes it durable.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
            Err(e) => return Err(e),
        }
        match dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(parent) => self.sync_dir(parent),
            None => self.sync_dir(Path::new(".")),
        }
    }

    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        list_entries(dir, |t| t.is_file())
    }

    fn list_dirs(&self, dir: &Path) -> io::Result<Vec<String>> {
        list_entries(dir, |t| t.is_dir())
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(path)?;
        Ok(Box::new(RealFile(file)))
    }

    fn create_preallocated(&self, path: &Path, len: u64) -> io::Result<Box<dyn FsFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(path)?;
        // SAFETY: fallocate on a file descriptor we own; it only touches that file.
        let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len as libc::off_t) };
        if rc != 0 {
            let err = io::Error::last_os_error();
            drop(file);
            let _ = std::fs::remove_file(path);
            return Err(err);
        }
        Ok(Box::new(RealFile(file)))
    }

    fn open(&self, path: &Path, writable: bool) -> io::Result<Box<dyn FsFile>> {
        let file = OpenOptions::new().read(true).write(writable).open(path)?;
        Ok(Box::new(RealFile(file)))
    }

    fn map(&self, path: &Path) -> io::Result<FileBytes> {
        let file = File::open(path)?;
        if file.metadata()?.len() == 0 {
            return Ok(Arc::new(Vec::new()));
        }
        // SAFETY: only sealed files are mapped and the log never writes a sealed file
        // again; removal while mapped keeps the pages valid on Linux.
        let map = unsafe { memmap2::MmapOptions::new().map(&file)? };
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(Arc::new(map))
    }

    fn map_for_random_reads(&self, path: &Path) -> io::Result<FileBytes> {
        let file = File::open(path)?;
        if file.metadata()?.len() == 0 {
            return Ok(Arc::new(Vec::new()));
        }
        // SAFETY: as in `map`: the file is never written again.
        Ok(Arc::new(unsafe { memmap2::MmapOptions::new().map(&file)? }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn exchange(&self, a: &Path, b: &Path) -> io::Result<()> {
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &Path| {
            std::ffi::CString::new(p.as_os_str().as_bytes())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))
        };
        let (a, b) = (c(a)?, c(b)?);
        // SAFETY: both are valid NUL-terminated paths that outlive the call.
        let rc = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                a.as_ptr(),
                libc::AT_FDCWD,
                b.as_ptr(),
                libc::RENAME_EXCHANGE,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::hard_link(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::remove_dir(dir)
    }

    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(dir)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

fn list_entries(dir: &Path, keep: impl Fn(&std::fs::FileType) -> bool) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if keep(&entry.file_type()?) {
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
    }
    names.sort();
    Ok(names)
}

struct RealFile(File);

impl FsFile for RealFile {
    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        FileExt::read_at(&self.0, buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        FileExt::write_all_at(&self.0, buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn preallocate(&self, len: u64) -> io::Result<()> {
        // SAFETY: fallocate on a file descriptor we own; it only touches that file.
        let rc = unsafe { libc::fallocate(self.0.as_raw_fd(), 0, 0, len as libc::off_t) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn try_clone_std(&self) -> Option<File> {
        self.0.try_clone().ok()
    }
}
