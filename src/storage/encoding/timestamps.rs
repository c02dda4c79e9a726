//! Timestamp column encoding: delta-of-delta + zigzag, with run-length for
//! constant intervals.
//!
//! ```text
//! [tag][count: uvarint] then, if count > 0:
//!   variant 1 RLE    : [zz(t0) uvarint] [zz(d) uvarint]             (all deltas equal)
//!   variant 0 DOD_VAR: [zz(t0) uvarint] {count>=2: [e: u8] [zz(d_1/10^e) uvarint] DODS}
//!   variant 2 DOD_S8B: same as DOD_VAR
//!   DODS = zz(dod_i) for i in 2..count, as varints (DOD_VAR) or simple8b words (DOD_S8B)
//! tag = 0x10|variant
//! d_i   = t_i.wrapping_sub(t_{i-1}),   all d_i divisible by 10^e (e <= 18, largest such)
//! dod_i = (d_i / 10^e).wrapping_sub(d_{i-1} / 10^e)
//! ```
//!
//! Why: timestamps are sorted and mostly regular, so the whole block of a
//! regular series collapses into one RLE record (~17 bytes for ns
//! timestamps regardless of count). For irregular series, the common
//! power-of-ten divisor strips the zeros of second/millisecond precision
//! stored as nanoseconds, and delta-of-delta turns jitter into small values
//! that simple8b packs in a few bits; constant stretches become 240-per-word
//! zero runs. All arithmetic wraps, so unsorted input and deltas overflowing
//! `i64` still round-trip exactly (just less compactly).

use super::integers::{pack_u64s, unpack_u64s};
use super::{
    get_header, get_uvarint, put_header, put_uvarint, reserve_capped, simple8b, unzigzag, zigzag,
    DecodeError, TYPE_TIMESTAMP,
};

const V_DOD_VAR: u8 = 0;
const V_RLE: u8 = 1;
const V_DOD_S8B: u8 = 2;

const POW10: [i64; 19] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
    100_000_000_000,
    1_000_000_000_000,
    10_000_000_000_000,
    100_000_000_000_000,
    1_000_000_000_000_000,
    10_000_000_000_000_000,
    100_000_000_000_000_000,
    1_000_000_000_000_000_000,
];

/// Encodes timestamps (ideally sorted ascending; any order round-trips).
/// Appends to `out`.
pub(crate) fn encode_timestamps(ts: &[i64], out: &mut Vec<u8>) {
    let n = ts.len();
    if n == 0 {
        put_header(out, TYPE_TIMESTAMP | V_DOD_VAR, 0);
        return;
    }
    let t0 = zigzag(ts[0]);
    if n == 1 {
        put_header(out, TYPE_TIMESTAMP | V_DOD_VAR, 1);
        put_uvarint(out, t0);
        return;
    }
    let d1 = ts[1].wrapping_sub(ts[0]);
    if ts.windows(2).all(|w| w[1].wrapping_sub(w[0]) == d1) {
        put_header(out, TYPE_TIMESTAMP | V_RLE, n);
        put_uvarint(out, t0);
        put_uvarint(out, zigzag(d1));
        return;
    }
    // largest power of ten dividing every delta
    let mut e = 18usize;
    for w in ts.windows(2) {
        let d = w[1].wrapping_sub(w[0]);
        while e > 0 && d % POW10[e] != 0 {
            e -= 1;
        }
        if e == 0 {
            break;
        }
    }
    let p = POW10[e];
    let mut dods = Vec::with_capacity(n - 2);
    let mut prev = d1 / p;
    for w in ts[1..].windows(2) {
        let sd = w[1].wrapping_sub(w[0]) / p;
        dods.push(zigzag(sd.wrapping_sub(prev)));
        prev = sd;
    }
    let mut body = Vec::with_capacity(n + 16);
    put_uvarint(&mut body, t0);
    body.push(e as u8);
    put_uvarint(&mut body, zigzag(d1 / p));
    let s8b = pack_u64s(&dods, &mut body);
    put_header(
        out,
        TYPE_TIMESTAMP | if s8b { V_DOD_S8B } else { V_DOD_VAR },
        n,
    );
    out.extend_from_slice(&body);
}

/// Decodes a stream produced by [`encode_timestamps`], appending to `out`.
/// Returns bytes consumed.
pub(crate) fn decode_timestamps(buf: &[u8], out: &mut Vec<i64>) -> Result<usize, DecodeError> {
    let start = out.len();
    decode_inner(buf, out).inspect_err(|_| out.truncate(start))
}

fn decode_inner(buf: &[u8], out: &mut Vec<i64>) -> Result<usize, DecodeError> {
    let mut pos = 0;
    let (variant, count) = get_header(buf, &mut pos, TYPE_TIMESTAMP)?;
    if variant > V_DOD_S8B {
        return Err(DecodeError::UnknownTag(TYPE_TIMESTAMP | variant));
    }
    if count == 0 {
        return Ok(pos);
    }
    let t0 = unzigzag(get_uvarint(buf, &mut pos)?);
    if variant == V_RLE {
        let d = unzigzag(get_uvarint(buf, &mut pos)?);
        // count <= MAX_BLOCK_VALUES (checked in get_header)
        out.reserve(count);
        let mut t = t0;
        out.push(t);
        for _ in 1..count {
            t = t.wrapping_add(d);
            out.push(t);
        }
        return Ok(pos);
    }
    if count == 1 {
        out.push(t0);
        return Ok(pos);
    }
    let e = *buf.get(pos).ok_or(DecodeError::UnexpectedEof)? as usize;
    pos += 1;
    let p = *POW10
        .get(e)
        .ok_or(DecodeError::Invalid("timestamp scale exponent > 18"))?;
    let mut sd = unzigzag(get_uvarint(buf, &mut pos)?);
    let rest = &buf[pos..];
    let s8b = variant == V_DOD_S8B;
    let limit = if s8b {
        simple8b::max_values(rest.len())
    } else {
        rest.len()
    } + 2;
    reserve_capped(out, count, limit);
    let mut t = t0;
    out.push(t);
    t = t.wrapping_add(sd.wrapping_mul(p));
    out.push(t);
    let used = unpack_u64s(s8b, rest, count - 2, |dod| {
        sd = sd.wrapping_add(unzigzag(dod));
        t = t.wrapping_add(sd.wrapping_mul(p));
        out.push(t);
    })?;
    Ok(pos + used)
}
