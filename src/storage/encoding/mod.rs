//! Column value encodings for immutable compressed column files.
//!
//! Every encoded stream is self-delimiting and starts with the same header:
//!
//! ```text
//! +---------+----------------+----------------------------+
//! | tag: u8 | count: uvarint | payload (depends on tag)   |
//! +---------+----------------+----------------------------+
//!   tag = (type << 4) | variant
//!   type: 1 timestamps, 2 floats, 3 integers, 4 unsigned, 5 booleans, 6 strings
//! ```
//!
//! The tag comes first so that the format can evolve (new variants) and so a
//! decoder handed the wrong column type fails with `UnknownTag` instead of
//! producing garbage. Encoders pick the cheapest variant per block.
//!
//! Decoders *append* to `out` and return the number of bytes of `buf` they
//! consumed (trailing bytes are left alone), so streams can be concatenated.
//! They never panic on bad input: every count is checked against the bytes
//! remaining, every varint against overflow, and counts above
//! [`MAX_BLOCK_VALUES`] are refused, so a forged header cannot make the
//! decoder allocate more than `min(count, what the input can describe)`
//! (run-length variants are bounded by `MAX_BLOCK_VALUES`).

mod bits;
mod booleans;
mod floats;
mod integers;
mod simple8b;
mod strings;
mod timestamps;

#[cfg(test)]
mod tests;

pub(crate) use self::booleans::{decode_booleans, encode_booleans};
pub(crate) use self::floats::{decode_floats, encode_floats};
pub(crate) use self::integers::{
    decode_integers, decode_unsigned, encode_integers, encode_unsigned,
};
pub(crate) use self::strings::{decode_strings, encode_strings};
pub(crate) use self::timestamps::{decode_timestamps, encode_timestamps};

/// Largest number of values a single encoded block may claim (1 Mi values,
/// i.e. at most 8 MiB of decoded 8-byte values, which is also the worst a
/// forged run-length header can make a decoder allocate). Callers cut
/// columns into blocks far smaller than this (typically 1000 values).
/// Encoders do not check it: a larger block encodes but will not decode.
pub(crate) const MAX_BLOCK_VALUES: usize = 1 << 20;

/// Errors returned by every `decode_*` function. Decoding never panics.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum DecodeError {
    #[error("unexpected end of input")]
    UnexpectedEof,
    #[error("unknown or mismatched encoding tag 0x{0:02x}")]
    UnknownTag(u8),
    #[error("varint overflows 64 bits")]
    VarintOverflow,
    #[error("value count {0} exceeds block limit")]
    CountTooLarge(u64),
    #[error("invalid data: {0}")]
    Invalid(&'static str),
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    #[error("decompression failed: {0}")]
    Decompress(String),
    #[error("decompressed size {0} exceeds limit")]
    DecompressedTooLarge(u64),
}

// ---- type nibbles (high 4 bits of the tag byte) ----
pub(super) const TYPE_TIMESTAMP: u8 = 0x10;
pub(super) const TYPE_FLOAT: u8 = 0x20;
pub(super) const TYPE_INTEGER: u8 = 0x30;
pub(super) const TYPE_UNSIGNED: u8 = 0x40;
pub(super) const TYPE_BOOLEAN: u8 = 0x50;
pub(super) const TYPE_STRING: u8 = 0x60;

// ---- shared helpers ----

#[inline]
pub(super) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
pub(super) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[inline]
pub(super) fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads an unsigned LEB128 varint at `*pos`, advancing it.
#[inline]
pub(super) fn get_uvarint(buf: &[u8], pos: &mut usize) -> Result<u64, DecodeError> {
    let mut v: u64 = 0;
    let mut shift = 0u32;
    loop {
        let b = *buf.get(*pos).ok_or(DecodeError::UnexpectedEof)?;
        *pos += 1;
        if shift == 63 && b > 1 {
            return Err(DecodeError::VarintOverflow);
        }
        v |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
        shift += 7;
        if shift > 63 {
            return Err(DecodeError::VarintOverflow);
        }
    }
}

#[inline]
pub(super) fn put_header(out: &mut Vec<u8>, tag: u8, count: usize) {
    out.push(tag);
    put_uvarint(out, count as u64);
}

/// Reads `[tag][count]`, checks the tag's type nibble and the count limit.
/// Returns `(variant, count)` and advances `pos`.
#[inline]
pub(super) fn get_header(
    buf: &[u8],
    pos: &mut usize,
    type_nibble: u8,
) -> Result<(u8, usize), DecodeError> {
    let tag = *buf.get(*pos).ok_or(DecodeError::UnexpectedEof)?;
    *pos += 1;
    if tag & 0xf0 != type_nibble {
        return Err(DecodeError::UnknownTag(tag));
    }
    let count = get_uvarint(buf, pos)?;
    if count > MAX_BLOCK_VALUES as u64 {
        return Err(DecodeError::CountTooLarge(count));
    }
    Ok((tag & 0x0f, count as usize))
}

/// Reserve room for `count` decoded values, but never more than `limit`
/// (a bound derived from the input length), so a forged count cannot force a
/// huge allocation up front.
#[inline]
pub(super) fn reserve_capped<T>(out: &mut Vec<T>, count: usize, limit: usize) {
    out.reserve(count.min(limit));
}
