//! The newest records of the replicated buckets as their writes had them before zstd
//! compressed them, so that a sender that keeps up reads each record's lines from memory
//! instead of decompressing it (what decoding the data log cost the sender was about a
//! quarter of its CPU). The log stays what the sender reads: this only stands in for a
//! record's decompression, when the record it holds is the very one read (same LSN, same
//! header), so a sender that lags beyond it, or a record it never held, is read from the
//! log as before.

use crate::log::Lsn;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Bytes of lines held at most, whatever the number of replications: about a second of a
/// saturating ingest on a small node, more than the senders' window and read-ahead.
pub(crate) const RECENT_LINES_BYTES: usize = 32 << 20;

#[derive(Default)]
pub(crate) struct RecentLines {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// By LSN: the record's payload head (shard, incarnation, sequence) and its lines.
    records: BTreeMap<Lsn, (Vec<u8>, Arc<Vec<u8>>)>,
    bytes: usize,
}

impl RecentLines {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds the lines of the record durable at `lsn`, forgetting those before `needed_from`
    /// (no sender reads them again) and then the oldest past the bound.
    pub(crate) fn insert(&self, lsn: Lsn, head: &[u8], plain: Vec<u8>, needed_from: Lsn) {
        let mut inner = self.inner();
        inner.forget_before(needed_from);
        if lsn < needed_from || plain.len() > RECENT_LINES_BYTES {
            return;
        }
        inner.bytes += plain.len();
        if let Some((_, old)) = inner.records.insert(lsn, (head.to_vec(), Arc::new(plain))) {
            inner.bytes -= old.len();
        }
        while inner.bytes > RECENT_LINES_BYTES {
            match inner.records.pop_first() {
                Some((_, (_, lines))) => inner.bytes -= lines.len(),
                None => break,
            }
        }
    }

    /// The lines of the record at `lsn` whose payload begins with `head`, if held.
    pub(crate) fn get(&self, lsn: Lsn, head: &[u8]) -> Option<Arc<Vec<u8>>> {
        let inner = self.inner();
        let (held, lines) = inner.records.get(&lsn)?;
        (held.as_slice() == head).then(|| lines.clone())
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.inner().bytes
    }
}

impl Inner {
    fn forget_before(&mut self, lsn: Lsn) {
        while let Some(entry) = self.records.first_entry() {
            if *entry.key() >= lsn {
                break;
            }
            let (_, lines) = entry.remove();
            self.bytes -= lines.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_what_was_written_for_that_record_only_and_within_its_bound() {
        let recent = RecentLines::default();
        recent.insert(5, b"head5", b"m v=1 5\n".to_vec(), 1);
        assert_eq!(
            recent.get(5, b"head5").as_deref(),
            Some(&b"m v=1 5\n".to_vec())
        );
        // Another record at that LSN (a log begun again) is not stood in for.
        assert_eq!(recent.get(5, b"other"), None);
        assert_eq!(recent.get(6, b"head5"), None);
        // Records no sender needs any more are forgotten.
        recent.insert(7, b"head7", vec![b'x'; 10], 6);
        assert_eq!(recent.get(5, b"head5"), None);
        assert_eq!(recent.bytes(), 10);
        // The oldest go past the bound.
        let big = RECENT_LINES_BYTES / 2 + 1;
        recent.insert(8, b"head8", vec![b'y'; big], 0);
        recent.insert(9, b"head9", vec![b'z'; big], 0);
        assert_eq!(recent.get(7, b"head7"), None);
        assert_eq!(recent.get(8, b"head8"), None);
        assert_eq!(recent.get(9, b"head9").map(|l| l.len()), Some(big));
        assert!(recent.bytes() <= RECENT_LINES_BYTES);
    }
}
