//! Boolean column encoding: one bit per value.
//!
//! ```text
//! [tag 0x50][count: uvarint][ceil(count/8) bytes]
//!   value i is bit (i % 8) of byte i / 8 (LSB first); unused high bits of the
//!   last byte are zero
//! ```
//!
//! Why: booleans are rare in time-series data and 1 bit/value is already
//! 64x smaller than the generic 8-byte slot; simplicity wins over RLE here.

use super::{get_header, put_header, DecodeError, TYPE_BOOLEAN};

const V_BITPACK: u8 = 0;

/// Encodes booleans, bit-packed. Appends to `out`.
pub(crate) fn encode_booleans(v: &[bool], out: &mut Vec<u8>) {
    put_header(out, TYPE_BOOLEAN | V_BITPACK, v.len());
    out.reserve(v.len().div_ceil(8));
    for chunk in v.chunks(8) {
        let mut b = 0u8;
        for (i, &x) in chunk.iter().enumerate() {
            b |= (x as u8) << i;
        }
        out.push(b);
    }
}

/// Decodes a stream produced by [`encode_booleans`], appending to `out`.
/// Returns bytes consumed.
pub(crate) fn decode_booleans(buf: &[u8], out: &mut Vec<bool>) -> Result<usize, DecodeError> {
    let mut pos = 0;
    let (variant, count) = get_header(buf, &mut pos, TYPE_BOOLEAN)?;
    if variant != V_BITPACK {
        return Err(DecodeError::UnknownTag(TYPE_BOOLEAN | variant));
    }
    let nbytes = count.div_ceil(8);
    let body = buf
        .get(pos..pos + nbytes)
        .ok_or(DecodeError::UnexpectedEof)?;
    if count % 8 != 0 && body[nbytes - 1] >> (count % 8) != 0 {
        return Err(DecodeError::Invalid("non-zero padding bits"));
    }
    out.reserve(count);
    out.extend((0..count).map(|i| body[i / 8] >> (i % 8) & 1 == 1));
    Ok(pos + nbytes)
}
