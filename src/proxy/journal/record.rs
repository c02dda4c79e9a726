//! The journal's write record (record kind [`WRITE_RECORD`]): the lines of one accepted
//! request, grouped by the backends (one per circle) that are to receive them. Each line
//! is held once however many circles there are; a backend's delivery reads the groups that
//! name it and skips the others without touching their bytes.
//!
//! ```text
//!   +---------+--------+----+--------+----+-----------+--------+----------+
//!   | version | db len | db | rp len | rp | precision | groups | group... |
//!   |   u8=1  | u32    |    | u32    |    |    u8     |  u32   |          |
//!   +---------+--------+----+--------+----+-----------+--------+----------+
//!   group: | owners u16 | (name len u16, name)... | lines u32 | body len u32 | body |
//! ```
//! Integers are little-endian; `rp` is empty for the database's default policy; the
//! precision is 0 ns, 1 us, 2 ms, 3 s, 4 m, 5 h; a body is whole lines, each ending in `\n`.
//! The log checksums every record, so a record that does not decode is a bug, reported
//! as [`RecordError`], never a panic.

use crate::line_protocol::Precision;

pub(crate) const VERSION: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("journal write record: {0}")]
pub struct RecordError(pub &'static str);

const PRECISIONS: [Precision; 6] = [
    Precision::Nanoseconds,
    Precision::Microseconds,
    Precision::Milliseconds,
    Precision::Seconds,
    Precision::Minutes,
    Precision::Hours,
];

/// One group as written: the names of its backends, its lines.
pub(crate) struct GroupOut<'a> {
    pub owners: Vec<&'a str>,
    pub lines: u32,
    pub body: &'a [u8],
}

pub(crate) fn encode(db: &str, rp: &str, precision: Precision, groups: &[GroupOut<'_>]) -> Vec<u8> {
    let size: usize = groups
        .iter()
        .map(|g| 10 + g.body.len() + g.owners.iter().map(|o| 2 + o.len()).sum::<usize>())
        .sum();
    let mut out = Vec::with_capacity(14 + db.len() + rp.len() + size);
    out.push(VERSION);
    for s in [db, rp] {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    let code = PRECISIONS.iter().position(|&p| p == precision).unwrap_or(0);
    out.push(code as u8);
    out.extend_from_slice(&(groups.len() as u32).to_le_bytes());
    for g in groups {
        out.extend_from_slice(&(g.owners.len() as u16).to_le_bytes());
        for name in &g.owners {
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
        }
        out.extend_from_slice(&g.lines.to_le_bytes());
        out.extend_from_slice(&(g.body.len() as u32).to_le_bytes());
        out.extend_from_slice(g.body);
    }
    out
}

/// A write record as read, borrowing the log's bytes.
#[derive(Debug)]
pub(crate) struct WriteRecord<'a> {
    pub db: &'a str,
    pub rp: &'a str,
    pub precision: Precision,
    groups: &'a [u8],
    count: u32,
}

/// One group as read.
#[derive(Debug)]
pub(crate) struct Group<'a> {
    owners: &'a [u8],
    owner_count: u16,
    pub lines: u32,
    pub body: &'a [u8],
}

struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if self.bytes.len() < n {
            return Err(RecordError("truncated"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u16(&mut self) -> Result<u16, RecordError> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }

    fn u32(&mut self) -> Result<u32, RecordError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn str32(&mut self) -> Result<&'a str, RecordError> {
        let len = self.u32()? as usize;
        std::str::from_utf8(self.take(len)?).map_err(|_| RecordError("a name is not UTF-8"))
    }
}

impl<'a> WriteRecord<'a> {
    pub(crate) fn decode(payload: &'a [u8]) -> Result<WriteRecord<'a>, RecordError> {
        let mut c = Cursor { bytes: payload };
        if c.take(1)? != [VERSION] {
            return Err(RecordError("unknown version"));
        }
        let db = c.str32()?;
        let rp = c.str32()?;
        let precision = *PRECISIONS
            .get(c.take(1)?[0] as usize)
            .ok_or(RecordError("unknown precision"))?;
        let count = c.u32()?;
        Ok(WriteRecord {
            db,
            rp,
            precision,
            groups: c.bytes,
            count,
        })
    }

    /// Every group, in order.
    pub(crate) fn groups(&self) -> impl Iterator<Item = Result<Group<'a>, RecordError>> {
        let mut c = Cursor { bytes: self.groups };
        (0..self.count).map(move |_| {
            let owner_count = c.u16()?;
            let start = c.bytes;
            for _ in 0..owner_count {
                let len = c.u16()? as usize;
                c.take(len)?;
            }
            let owners = &start[..start.len() - c.bytes.len()];
            let lines = c.u32()?;
            let len = c.u32()? as usize;
            let body = c.take(len)?;
            Ok(Group {
                owners,
                owner_count,
                lines,
                body,
            })
        })
    }

    /// The lines and bytes `backend` is to receive from this record, with `each` given
    /// each of its groups' bodies.
    pub(crate) fn for_backend(
        &self,
        backend: &str,
        mut each: impl FnMut(&'a [u8]),
    ) -> Result<u32, RecordError> {
        let mut lines = 0;
        for group in self.groups() {
            let group = group?;
            if group.names().any(|n| n == backend.as_bytes()) {
                lines += group.lines;
                each(group.body);
            }
        }
        Ok(lines)
    }
}

impl<'a> Group<'a> {
    /// The names of the group's backends (as bytes: they were written from strings).
    pub(crate) fn names(&self) -> impl Iterator<Item = &'a [u8]> {
        let mut c = Cursor { bytes: self.owners };
        (0..self.owner_count).map_while(move |_| {
            let len = c.u16().ok()? as usize;
            c.take(len).ok()
        })
    }
}

/// The precision's name as `/write` takes it.
pub(crate) fn precision_name(p: Precision) -> &'static str {
    match p {
        Precision::Nanoseconds => "n",
        Precision::Microseconds => "u",
        Precision::Milliseconds => "ms",
        Precision::Seconds => "s",
        Precision::Minutes => "m",
        Precision::Hours => "h",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_as_written() {
        let groups = [
            GroupOut {
                owners: vec!["a", "c"],
                lines: 2,
                body: b"cpu v=1 1\ncpu v=2 2\n",
            },
            GroupOut {
                owners: vec!["b", "c"],
                lines: 1,
                body: b"mem v=1 1\n",
            },
        ];
        let bytes = encode("db", "rp", Precision::Seconds, &groups);
        let r = WriteRecord::decode(&bytes).unwrap();
        assert_eq!((r.db, r.rp, r.precision), ("db", "rp", Precision::Seconds));
        let mut body = Vec::new();
        assert_eq!(
            r.for_backend("c", |b| body.extend_from_slice(b)).unwrap(),
            3
        );
        assert_eq!(body, b"cpu v=1 1\ncpu v=2 2\nmem v=1 1\n");
        assert_eq!(r.for_backend("b", |_| {}).unwrap(), 1);
        assert_eq!(r.for_backend("d", |_| {}).unwrap(), 0);
        for cut in 0..bytes.len() {
            // Every truncation is an error or fewer groups, never a panic.
            if let Ok(r) = WriteRecord::decode(&bytes[..cut]) {
                let _ = r.for_backend("c", |_| {});
            }
        }
    }
}
