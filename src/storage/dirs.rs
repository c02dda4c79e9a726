//! Directory changes made durable: a directory entry (a creation, a rename, a removal)
//! survives a power loss only once its parent directory is synced, whatever was synced
//! inside it. Every directory the storage creates, swaps or removes goes through here.

use std::io;
use std::path::Path;

/// Makes the creations, renames and removals in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Creates `dir` and any missing ancestor, each made durable in its parent before the
/// next one is created under it. An existing `dir` is left as it is.
pub(crate) fn create_durably(dir: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut at = dir;
    while !at.exists() {
        missing.push(at);
        match at.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => at = parent,
            _ => break,
        }
    }
    for created in missing.into_iter().rev() {
        match std::fs::create_dir(created) {
            Ok(()) => {}
            // Another thread created it meanwhile: it syncs the parent too.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
        sync_dir(parent_of(created))?;
    }
    Ok(())
}

/// The directory holding `path` (`.` for a bare name).
pub(crate) fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}
