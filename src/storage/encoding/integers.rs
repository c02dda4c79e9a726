//! Integer (`i64`) and unsigned (`u64`) column encodings.
//!
//! ```text
//! [tag][count: uvarint] then, if count > 0:
//!   variant 0 VARINT : [first: uvarint] [zz(delta) uvarint] x (count-1)
//!   variant 1 RLE    : [first: uvarint] [zz(delta) uvarint]          (all deltas equal)
//!   variant 2 S8B    : [first: uvarint] [simple8b words of zz(delta)] (count-1 values)
//!   variant 3 RAW    : [value: u64 little-endian] x count             (random data)
//! tag = 0x30|variant for i64, 0x40|variant for u64
//! first = zigzag(v0) for i64, v0 for u64
//! delta = v[i].wrapping_sub(v[i-1]) reinterpreted as i64, then zigzag
//! ```
//!
//! Why: counters and gauges change slowly, so deltas are small; zigzag maps
//! small negative deltas to small unsigned values; constant deltas (counters
//! incremented at a fixed rate, constant gauges) collapse to one RLE record;
//! simple8b packs small deltas into a few bits each; varint is the fallback
//! when a delta is >= 2^60; RAW caps the worst case (random 64-bit values) at
//! 8 bytes/value. Deltas use wrapping arithmetic, so `i64::MIN..i64::MAX`
//! jumps round-trip exactly. The encoder keeps the smallest variant.

use super::{
    get_header, get_uvarint, put_header, put_uvarint, reserve_capped, simple8b, unzigzag, zigzag,
    DecodeError, TYPE_INTEGER, TYPE_UNSIGNED,
};

const V_VARINT: u8 = 0;
const V_RLE: u8 = 1;
const V_S8B: u8 = 2;
const V_RAW: u8 = 3;

pub(super) trait IntBits: Copy {
    const SIGNED: bool;
    fn to_bits(self) -> u64;
    fn from_bits(b: u64) -> Self;
}

impl IntBits for i64 {
    const SIGNED: bool = true;
    #[inline]
    fn to_bits(self) -> u64 {
        self as u64
    }
    #[inline]
    fn from_bits(b: u64) -> Self {
        b as i64
    }
}

impl IntBits for u64 {
    const SIGNED: bool = false;
    #[inline]
    fn to_bits(self) -> u64 {
        self
    }
    #[inline]
    fn from_bits(b: u64) -> Self {
        b
    }
}

#[inline]
fn uvarint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Writes zigzagged values either as simple8b words or as varints, whichever
/// is smaller. Returns `true` if simple8b was used.
pub(super) fn pack_u64s(vals: &[u64], out: &mut Vec<u8>) -> bool {
    let varint_size: usize = vals.iter().map(|&v| uvarint_len(v)).sum();
    let start = out.len();
    if simple8b::encode(vals, out).is_some() {
        if out.len() - start <= varint_size {
            return true;
        }
        out.truncate(start);
    }
    for &v in vals {
        put_uvarint(out, v);
    }
    false
}

/// Inverse of [`pack_u64s`]: decodes exactly `count` values. Returns bytes consumed.
#[inline]
pub(super) fn unpack_u64s(
    s8b: bool,
    buf: &[u8],
    count: usize,
    mut f: impl FnMut(u64),
) -> Result<usize, DecodeError> {
    if s8b {
        if count > simple8b::max_values(buf.len()) {
            return Err(DecodeError::UnexpectedEof);
        }
        simple8b::decode(buf, count, f)
    } else {
        if count > buf.len() {
            return Err(DecodeError::UnexpectedEof);
        }
        let mut pos = 0;
        for _ in 0..count {
            f(get_uvarint(buf, &mut pos)?);
        }
        Ok(pos)
    }
}

fn encode_core<T: IntBits>(type_nibble: u8, v: &[T], out: &mut Vec<u8>) {
    if v.is_empty() {
        put_header(out, type_nibble | V_VARINT, 0);
        return;
    }
    let first = v[0].to_bits();
    let first_enc = if T::SIGNED {
        zigzag(first as i64)
    } else {
        first
    };
    let deltas: Vec<u64> = v
        .windows(2)
        .map(|w| zigzag(w[1].to_bits().wrapping_sub(w[0].to_bits()) as i64))
        .collect();
    if let Some(&d0) = deltas.first() {
        if deltas.iter().all(|&d| d == d0) {
            put_header(out, type_nibble | V_RLE, v.len());
            put_uvarint(out, first_enc);
            put_uvarint(out, d0);
            return;
        }
    }
    // Try the delta variants into a scratch buffer, compare with RAW.
    let mut body = Vec::with_capacity(v.len() * 2 + 10);
    put_uvarint(&mut body, first_enc);
    let s8b = pack_u64s(&deltas, &mut body);
    if body.len() < v.len() * 8 {
        put_header(
            out,
            type_nibble | if s8b { V_S8B } else { V_VARINT },
            v.len(),
        );
        out.extend_from_slice(&body);
    } else {
        put_header(out, type_nibble | V_RAW, v.len());
        out.reserve(v.len() * 8);
        for x in v {
            out.extend_from_slice(&x.to_bits().to_le_bytes());
        }
    }
}

fn decode_core<T: IntBits>(
    type_nibble: u8,
    buf: &[u8],
    out: &mut Vec<T>,
) -> Result<usize, DecodeError> {
    let mut pos = 0;
    let (variant, count) = get_header(buf, &mut pos, type_nibble)?;
    if variant > V_RAW {
        return Err(DecodeError::UnknownTag(type_nibble | variant));
    }
    if count == 0 {
        return Ok(pos);
    }
    if variant == V_RAW {
        let need = count.checked_mul(8).ok_or(DecodeError::UnexpectedEof)?;
        let body = buf.get(pos..pos + need).ok_or(DecodeError::UnexpectedEof)?;
        out.reserve(count);
        for c in body.chunks_exact(8) {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            out.push(T::from_bits(u64::from_le_bytes(a)));
        }
        return Ok(pos + need);
    }
    let first_enc = get_uvarint(buf, &mut pos)?;
    let first = if T::SIGNED {
        unzigzag(first_enc) as u64
    } else {
        first_enc
    };
    let rest = &buf[pos..];
    match variant {
        V_RLE => {
            let delta = unzigzag(get_uvarint(buf, &mut pos)?) as u64;
            // count is bounded by MAX_BLOCK_VALUES (checked in get_header)
            out.reserve(count);
            let mut cur = first;
            out.push(T::from_bits(cur));
            for _ in 1..count {
                cur = cur.wrapping_add(delta);
                out.push(T::from_bits(cur));
            }
            Ok(pos)
        }
        _ => {
            let s8b = variant == V_S8B;
            let limit = if s8b {
                simple8b::max_values(rest.len())
            } else {
                rest.len()
            } + 1;
            reserve_capped(out, count, limit);
            let mut cur = first;
            out.push(T::from_bits(cur));
            let used = unpack_u64s(s8b, rest, count - 1, |d| {
                cur = cur.wrapping_add(unzigzag(d) as u64);
                out.push(T::from_bits(cur));
            })?;
            Ok(pos + used)
        }
    }
}

/// Encodes signed integers (any order). Appends to `out`.
pub(crate) fn encode_integers(v: &[i64], out: &mut Vec<u8>) {
    encode_core(TYPE_INTEGER, v, out)
}

/// Decodes a stream produced by [`encode_integers`], appending to `out`.
/// Returns bytes consumed.
pub(crate) fn decode_integers(buf: &[u8], out: &mut Vec<i64>) -> Result<usize, DecodeError> {
    let start = out.len();
    decode_core(TYPE_INTEGER, buf, out).inspect_err(|_| out.truncate(start))
}

/// Encodes unsigned integers (any order). Appends to `out`.
pub(crate) fn encode_unsigned(v: &[u64], out: &mut Vec<u8>) {
    encode_core(TYPE_UNSIGNED, v, out)
}

/// Decodes a stream produced by [`encode_unsigned`], appending to `out`.
/// Returns bytes consumed.
pub(crate) fn decode_unsigned(buf: &[u8], out: &mut Vec<u64>) -> Result<usize, DecodeError> {
    let start = out.len();
    decode_core(TYPE_UNSIGNED, buf, out).inspect_err(|_| out.truncate(start))
}
