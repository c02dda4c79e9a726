//! On-disk format of a log segment.
//!
//! A segment is a preallocated file named `{base_lsn:020}.seg`, of the log's segment
//! capacity, or larger when it was made for one append that needed more.
//!
//! ```text
//! segment:
//!   0        8        12       16                24       28       32
//!   +--------+--------+--------+-----------------+--------+--------+
//!   | magic  |version | flags  |    base LSN     |reserved| crc32c |   header, 32 bytes
//!   +--------+--------+--------+-----------------+--------+--------+
//!   | record | record | ... | zeros to the end of the preallocated file
//!
//! record:
//!   0          4          8      9
//!   +----------+----------+------+------------------+
//!   | len (LE) | crc (LE) | kind | payload (len B)  |
//!   +----------+----------+------+------------------+
//! ```
//!
//! * `magic` is `SKLOGSEG`, `version` is [`FORMAT_VERSION`], all integers little endian.
//! * The header crc is the masked crc32c of its first 28 bytes.
//! * A record's crc is the masked crc32c of `len ‖ kind ‖ payload`. Masking (rotate and add
//!   a constant, as LevelDB does) makes a run of zero bytes, or a crc stored inside a
//!   payload, fail to check, so preallocated space and shifted frames are never mistaken for
//!   records.
//! * `kind` 0 is never written: an all-zero record header marks the end of the data.
//! * Records carry no LSN: the n-th record of a segment has LSN `base + n`. Recovery
//!   therefore zeroes any torn tail before new records are appended, so that bytes of an
//!   older incarnation can never be read as a later record.

use std::fmt;

pub const MAGIC: [u8; 8] = *b"SKLOGSEG";
pub const FORMAT_VERSION: u32 = 1;
pub const SEGMENT_HEADER_LEN: usize = 32;
pub const RECORD_HEADER_LEN: usize = 9;
/// Largest payload a record may carry; larger batches belong in several records.
pub const MAX_RECORD_PAYLOAD: usize = 256 * 1024 * 1024;
/// Largest append (its records framed): one larger than the log's segment capacity is
/// written to a segment sized for it, since an append never spans segments.
pub const MAX_APPEND_BYTES: usize = MAX_RECORD_PAYLOAD + RECORD_HEADER_LEN;

const MASK_DELTA: u32 = 0xa282_ead8;

pub fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

pub fn segment_file_name(base_lsn: u64) -> String {
    format!("{base_lsn:020}.seg")
}

/// The base LSN of a segment file name, or None for any other file.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub fn encode_segment_header(base_lsn: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&base_lsn.to_le_bytes());
    let crc = mask(crc32c::crc32c(&h[..28]));
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// Every byte of the header is zero: the file was created but its header never reached
    /// the disk.
    Blank,
    Truncated,
    BadMagic,
    BadChecksum,
    UnsupportedVersion(u32),
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::Blank => write!(f, "segment header was never written"),
            HeaderError::Truncated => write!(f, "file is shorter than a segment header"),
            HeaderError::BadMagic => write!(f, "not a shardkeeper log segment (bad magic)"),
            HeaderError::BadChecksum => write!(f, "segment header checksum mismatch"),
            HeaderError::UnsupportedVersion(v) => {
                write!(f, "unsupported segment format version {v}")
            }
        }
    }
}

/// Checks a segment header and returns its base LSN.
pub fn decode_segment_header(bytes: &[u8]) -> Result<u64, HeaderError> {
    let h = bytes
        .get(..SEGMENT_HEADER_LEN)
        .ok_or(HeaderError::Truncated)?;
    if h.iter().all(|&b| b == 0) {
        return Err(HeaderError::Blank);
    }
    if h[0..8] != MAGIC {
        return Err(HeaderError::BadMagic);
    }
    let stored = u32::from_le_bytes(h[28..32].try_into().expect("4 bytes"));
    if mask(crc32c::crc32c(&h[..28])) != stored {
        return Err(HeaderError::BadChecksum);
    }
    let version = u32::from_le_bytes(h[8..12].try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(HeaderError::UnsupportedVersion(version));
    }
    Ok(u64::from_le_bytes(h[16..24].try_into().expect("8 bytes")))
}

pub fn record_crc(kind: u8, payload: &[u8]) -> u32 {
    let len = (payload.len() as u32).to_le_bytes();
    let crc = crc32c::crc32c(&len);
    let crc = crc32c::crc32c_append(crc, &[kind]);
    mask(crc32c::crc32c_append(crc, payload))
}

pub fn encoded_record_len(payload_len: usize) -> usize {
    RECORD_HEADER_LEN + payload_len
}

/// Appends one framed record to `out`.
pub fn encode_record(out: &mut Vec<u8>, kind: u8, payload: &[u8]) {
    debug_assert!(kind != 0, "record kind 0 marks the end of data");
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&record_crc(kind, payload).to_le_bytes());
    out.push(kind);
    out.extend_from_slice(payload);
}

/// What was found at one offset of a segment's data area.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    Record {
        kind: u8,
        payload: &'a [u8],
        next: usize,
    },
    /// An all-zero record header (or too few bytes left for one): no more records.
    End,
    /// Bytes that are not a valid record.
    Invalid(FrameError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The record claims more bytes than the segment holds.
    LengthOutOfBounds,
    ChecksumMismatch,
    /// A record header that checks but names kind 0.
    ZeroKind,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::LengthOutOfBounds => {
                write!(f, "record length runs past the end of the segment")
            }
            FrameError::ChecksumMismatch => write!(f, "record checksum mismatch"),
            FrameError::ZeroKind => write!(f, "record of reserved kind 0"),
        }
    }
}

/// Where the record at `offset`, which fails its checksum, ends by its stored length, if a
/// good record follows it there: then only its bytes were damaged, and the records after
/// it can be read (see [`super::RecoveryMode::SkipDamagedRecords`]).
pub fn skippable(segment: &[u8], offset: usize) -> Option<usize> {
    let head = segment.get(offset..offset.checked_add(RECORD_HEADER_LEN)?)?;
    let len = u32::from_le_bytes(head[0..4].try_into().expect("4 bytes")) as usize;
    let next = offset.checked_add(RECORD_HEADER_LEN)?.checked_add(len)?;
    matches!(decode_frame(segment, next), Frame::Record { .. }).then_some(next)
}

/// Decodes the frame at `offset` of a whole segment's bytes (header included).
pub fn decode_frame(segment: &[u8], offset: usize) -> Frame<'_> {
    let Some(head) = segment.get(offset..offset.saturating_add(RECORD_HEADER_LEN)) else {
        return Frame::End;
    };
    if head.iter().all(|&b| b == 0) {
        return Frame::End;
    }
    let len = u32::from_le_bytes(head[0..4].try_into().expect("4 bytes")) as usize;
    let stored = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
    let kind = head[8];
    let start = offset + RECORD_HEADER_LEN;
    let Some(payload) = start
        .checked_add(len)
        .and_then(|end| segment.get(start..end))
    else {
        return Frame::Invalid(FrameError::LengthOutOfBounds);
    };
    if record_crc(kind, payload) != stored {
        return Frame::Invalid(FrameError::ChecksumMismatch);
    }
    if kind == 0 {
        return Frame::Invalid(FrameError::ZeroKind);
    }
    Frame::Record {
        kind,
        payload,
        next: start + len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_damage() {
        let h = encode_segment_header(42);
        assert_eq!(decode_segment_header(&h), Ok(42));
        assert_eq!(decode_segment_header(&[0u8; 32]), Err(HeaderError::Blank));
        assert_eq!(decode_segment_header(&h[..10]), Err(HeaderError::Truncated));
        let mut bad = h;
        bad[17] ^= 1;
        assert_eq!(decode_segment_header(&bad), Err(HeaderError::BadChecksum));
        bad = h;
        bad[0] = b'X';
        assert_eq!(decode_segment_header(&bad), Err(HeaderError::BadMagic));
    }

    #[test]
    fn records_decode_in_sequence_and_zeroes_end_the_data() {
        let mut seg = encode_segment_header(1).to_vec();
        encode_record(&mut seg, 1, b"hello");
        encode_record(&mut seg, 7, b"");
        seg.resize(seg.len() + 64, 0);
        let Frame::Record {
            kind,
            payload,
            next,
        } = decode_frame(&seg, SEGMENT_HEADER_LEN)
        else {
            panic!("first record")
        };
        assert_eq!((kind, payload), (1, &b"hello"[..]));
        let Frame::Record {
            kind,
            payload,
            next,
        } = decode_frame(&seg, next)
        else {
            panic!("second record")
        };
        assert_eq!((kind, payload), (7, &b""[..]));
        assert_eq!(decode_frame(&seg, next), Frame::End);
    }

    #[test]
    fn every_single_bit_flip_in_a_record_is_detected() {
        let mut seg = encode_segment_header(1).to_vec();
        encode_record(&mut seg, 3, b"payload bytes");
        let end = seg.len();
        seg.resize(end + 32, 0);
        for byte in SEGMENT_HEADER_LEN..end {
            for bit in 0..8 {
                let mut damaged = seg.clone();
                damaged[byte] ^= 1 << bit;
                assert!(
                    matches!(
                        decode_frame(&damaged, SEGMENT_HEADER_LEN),
                        Frame::Invalid(_)
                    ),
                    "flip of bit {bit} in byte {byte} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn segment_names_are_strict() {
        assert_eq!(parse_segment_file_name(&segment_file_name(7)), Some(7));
        assert_eq!(parse_segment_file_name("7.seg"), None);
        assert_eq!(parse_segment_file_name("00000000000000000007.tmp"), None);
    }
}
