//! String column encoding: varint lengths + bytes, optionally zstd-compressed.
//!
//! ```text
//! [tag][count: uvarint] then
//!   variant 0 PLAIN: body
//!   variant 1 ZSTD : [body_len: uvarint <= 64 MiB][zlen: uvarint][zstd frame of body: zlen bytes]
//! body = [len_0: uvarint] .. [len_{count-1}: uvarint] [bytes_0] .. [bytes_{count-1}]
//! tag = 0x60|variant
//! ```
//!
//! Why: lengths first keep the tiny varints together (they compress well)
//! and let the decoder check the total against the remaining bytes before
//! touching any string. zstd (level 3) is used only when the block is large
//! enough and compression actually shrinks it; tags and log lines repeat a
//! lot, so it usually does. Decompression is streaming and bounded: output
//! beyond the declared `body_len` or beyond 64 MiB is refused and the zstd
//! window is capped at 16 MiB, so a small malicious frame cannot expand
//! into unbounded memory.

use std::io::Read;

use super::{get_header, get_uvarint, put_header, put_uvarint, DecodeError, TYPE_STRING};

const V_PLAIN: u8 = 0;
const V_ZSTD: u8 = 1;

/// Largest decompressed body a string block may declare (64 MiB).
pub(crate) const MAX_STRING_BLOCK_BYTES: usize = 64 << 20;

const ZSTD_MIN_BODY: usize = 64;
const ZSTD_LEVEL: i32 = 3;
/// Decoder window limit: 16 MiB, enough for frames written at levels <= 19.
const ZSTD_WINDOW_LOG_MAX: u32 = 24;

/// Encodes strings. Appends to `out`.
pub(crate) fn encode_strings(v: &[String], out: &mut Vec<u8>) {
    let total: usize = v.iter().map(|s| s.len()).sum();
    let mut body = Vec::with_capacity(total + v.len() * 2);
    for s in v {
        put_uvarint(&mut body, s.len() as u64);
    }
    for s in v {
        body.extend_from_slice(s.as_bytes());
    }
    if body.len() >= ZSTD_MIN_BODY && body.len() <= MAX_STRING_BLOCK_BYTES {
        if let Ok(z) = zstd::bulk::compress(&body, ZSTD_LEVEL) {
            if z.len() + 20 < body.len() {
                put_header(out, TYPE_STRING | V_ZSTD, v.len());
                put_uvarint(out, body.len() as u64);
                put_uvarint(out, z.len() as u64);
                out.extend_from_slice(&z);
                return;
            }
        }
    }
    put_header(out, TYPE_STRING | V_PLAIN, v.len());
    out.extend_from_slice(&body);
}

/// Decodes a stream produced by [`encode_strings`], appending to `out`.
/// Returns bytes consumed.
pub(crate) fn decode_strings(buf: &[u8], out: &mut Vec<String>) -> Result<usize, DecodeError> {
    let start = out.len();
    decode_inner(buf, out).inspect_err(|_| out.truncate(start))
}

fn decode_inner(buf: &[u8], out: &mut Vec<String>) -> Result<usize, DecodeError> {
    let mut pos = 0;
    let (variant, count) = get_header(buf, &mut pos, TYPE_STRING)?;
    match variant {
        V_PLAIN => {
            let used = decode_body(&buf[pos..], count, out)?;
            Ok(pos + used)
        }
        V_ZSTD => {
            let body_len = get_uvarint(buf, &mut pos)?;
            if body_len > MAX_STRING_BLOCK_BYTES as u64 {
                return Err(DecodeError::DecompressedTooLarge(body_len));
            }
            let body_len = body_len as usize;
            let zlen = get_uvarint(buf, &mut pos)?;
            let zend = (pos as u64)
                .checked_add(zlen)
                .filter(|&e| e <= buf.len() as u64)
                .ok_or(DecodeError::UnexpectedEof)? as usize;
            let z = &buf[pos..zend];
            // every string needs at least one length byte
            if count > body_len {
                return Err(DecodeError::Invalid("string count exceeds body length"));
            }
            let mut dec = zstd::stream::read::Decoder::with_buffer(z)
                .map_err(|e| DecodeError::Decompress(e.to_string()))?;
            // bound the decoder's window buffer too (our level-3 frames use <= 2 MiB)
            dec.window_log_max(ZSTD_WINDOW_LOG_MAX)
                .map_err(|e| DecodeError::Decompress(e.to_string()))?;
            // grow with actual output, never more than body_len + 1 bytes
            let mut body = Vec::with_capacity(body_len.min(z.len().saturating_mul(8)));
            (&mut dec)
                .take(body_len as u64 + 1)
                .read_to_end(&mut body)
                .map_err(|e| DecodeError::Decompress(e.to_string()))?;
            if body.len() != body_len {
                return Err(DecodeError::Invalid("decompressed length mismatch"));
            }
            let used = decode_body(&body, count, out)?;
            if used != body.len() {
                return Err(DecodeError::Invalid("trailing bytes in string body"));
            }
            Ok(zend)
        }
        _ => Err(DecodeError::UnknownTag(TYPE_STRING | variant)),
    }
}

fn decode_body(buf: &[u8], count: usize, out: &mut Vec<String>) -> Result<usize, DecodeError> {
    if count > buf.len() {
        return Err(DecodeError::UnexpectedEof);
    }
    let mut pos = 0;
    let mut lens = Vec::with_capacity(count);
    let mut total: u64 = 0;
    for _ in 0..count {
        let l = get_uvarint(buf, &mut pos)?;
        total = total.saturating_add(l);
        lens.push(l as usize);
    }
    if total > (buf.len() - pos) as u64 {
        return Err(DecodeError::UnexpectedEof);
    }
    out.reserve(count);
    for l in lens {
        let s = std::str::from_utf8(&buf[pos..pos + l]).map_err(|_| DecodeError::InvalidUtf8)?;
        out.push(s.to_owned());
        pos += l;
    }
    Ok(pos)
}
