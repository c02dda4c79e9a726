//! Reading records from an LSN onwards.
//!
//! Sealed segments are read from their memory maps (shared by every reader); the active
//! segment is read with positioned reads, and only up to its durable offset, so a reader
//! never sees a record before it is durable. Every record's checksum is verified on read.

use super::format::{self, Frame, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
use super::fs::FileBytes;
use super::{LogError, Lsn, Shared};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// One record, borrowed from the reader until its next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub lsn: Lsn,
    pub kind: u8,
    pub payload: &'a [u8],
}

pub struct LogReader {
    shared: Arc<Shared>,
    next: Lsn,
    /// Registered with the log so that segments this reader still needs are kept.
    position: Arc<AtomicU64>,
    cursor: Option<Cursor>,
}

struct Cursor {
    base: Lsn,
    path: PathBuf,
    data: FileBytes,
    /// File offset of `data[0]`.
    data_start: usize,
    /// File offset of the next frame, and the LSN of the record there.
    offset: usize,
    lsn: Lsn,
    sealed: bool,
}

impl LogReader {
    pub(crate) fn new(shared: Arc<Shared>, from: Lsn) -> Result<Self, LogError> {
        let oldest = shared.oldest_lsn();
        if from < oldest {
            return Err(LogError::Compacted { lsn: from, oldest });
        }
        let position = shared.register_reader(from);
        Ok(LogReader {
            shared,
            next: from,
            position,
            cursor: None,
        })
    }

    /// The LSN the next record will have.
    pub fn position(&self) -> Lsn {
        self.next
    }

    /// The next durable record, or None when the reader has caught up with the log.
    /// Calling again later continues from there (tailing).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<RecordRef<'_>>, LogError> {
        let (start, end, kind, lsn) = loop {
            let Some(c) = self.cursor.as_mut() else {
                match self.open_cursor()? {
                    Some(c) => self.cursor = Some(c),
                    None => return Ok(None),
                }
                continue;
            };
            match format::decode_frame((*c.data).as_ref(), c.offset - c.data_start) {
                Frame::Record {
                    kind,
                    payload,
                    next,
                } => {
                    let lsn = c.lsn;
                    let start = c.offset - c.data_start + RECORD_HEADER_LEN;
                    let end = start + payload.len();
                    c.offset = next + c.data_start;
                    c.lsn += 1;
                    if lsn >= self.next {
                        break (start, end, kind, lsn);
                    }
                }
                Frame::End => {
                    if !self.refill()? {
                        return Ok(None);
                    }
                }
                Frame::Invalid(e) => {
                    let data = (*c.data).as_ref();
                    let skip = self
                        .shared
                        .damaged
                        .contains(&c.lsn)
                        .then(|| format::skippable(data, c.offset - c.data_start))
                        .flatten();
                    if let Some(next) = skip {
                        c.offset = next + c.data_start;
                        c.lsn += 1;
                        continue;
                    }
                    return Err(LogError::Corrupt {
                        path: c.path.clone(),
                        offset: c.offset as u64,
                        reason: e.to_string(),
                    });
                }
            }
        };
        self.next = lsn + 1;
        self.position.store(self.next, Ordering::Release);
        let c = self.cursor.as_ref().expect("cursor set by the loop");
        Ok(Some(RecordRef {
            lsn,
            kind,
            payload: &(*c.data).as_ref()[start..end],
        }))
    }

    /// Positions a cursor at the segment holding `self.next`, if that LSN is durable.
    fn open_cursor(&self) -> Result<Option<Cursor>, LogError> {
        let state = self.shared.state();
        if self.next > state.durable.lsn {
            return Ok(None);
        }
        let idx = state.segments.partition_point(|s| s.base <= self.next);
        let Some(seg) = idx.checked_sub(1).map(|i| &state.segments[i]) else {
            let oldest = state.segments.first().map_or(self.next, |s| s.base);
            return Err(LogError::Compacted {
                lsn: self.next,
                oldest,
            });
        };
        let mut cursor = Cursor {
            base: seg.base,
            path: seg.path.clone(),
            data: Arc::new(Vec::new()),
            data_start: SEGMENT_HEADER_LEN,
            offset: SEGMENT_HEADER_LEN,
            lsn: seg.base,
            sealed: seg.sealed,
        };
        if seg.sealed {
            cursor.data = self.shared.map_segment(seg)?;
            cursor.data_start = 0;
        } else {
            let end = state.durable.offset as usize;
            drop(state);
            self.read_active(&mut cursor, end)?;
        }
        Ok(Some(cursor))
    }

    /// Called at the end of the cursor's bytes: fetch more if the log has grown.
    fn refill(&mut self) -> Result<bool, LogError> {
        let c = self.cursor.as_ref().expect("refill needs a cursor");
        if c.sealed {
            self.cursor = None;
            return Ok(true);
        }
        let state = self.shared.state();
        let seg = state.segments.iter().find(|s| s.base == c.base);
        match seg {
            Some(seg) if seg.sealed => {
                let data = self.shared.map_segment(seg)?;
                let c = self.cursor.as_mut().expect("checked above");
                c.data = data;
                c.data_start = 0;
                c.sealed = true;
                Ok(true)
            }
            Some(_) if state.durable.offset as usize > c.offset => {
                let end = state.durable.offset as usize;
                drop(state);
                let mut c = self.cursor.take().expect("checked above");
                self.read_active(&mut c, end)?;
                self.cursor = Some(c);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn read_active(&self, c: &mut Cursor, end: usize) -> Result<(), LogError> {
        let file = self
            .shared
            .fs
            .open(&c.path, false)
            .map_err(LogError::io("open", &c.path))?;
        let mut buf = vec![0u8; end - c.offset];
        file.read_exact_at(&mut buf, c.offset as u64)
            .map_err(LogError::io("read", &c.path))?;
        c.data = Arc::new(buf);
        c.data_start = c.offset;
        Ok(())
    }
}

impl Drop for LogReader {
    fn drop(&mut self) {
        // A reader that is gone no longer holds segments back.
        self.position.store(Lsn::MAX, Ordering::Release);
    }
}
