//! Float (`f64`) column encoding: Gorilla XOR, plus a decimal variant.
//!
//! ```text
//! [tag][count: uvarint] then, if count > 0:
//! variant 0 GORILLA: bit stream, MSB first, zero-padded to a whole byte
//!   [v0: 64 bits] then for each next value, x = bits(v) XOR bits(prev):
//!     '0'                                   x == 0 (repeat)
//!     '10' [len bits]                       x fits the previous window
//!     '11' [lead: 5][len: 6, 0=64][len bits] new window (lead = leading zeros, <= 31)
//!   the window starts as (lead 0, len 64)
//! variant 1 DECIMAL: [e: u8 <= 15] [integer stream (see integers.rs) of n_i]
//!   v_i = (n_i as f64) / 10^e, verified bit-exact for every value at encode time
//! tag = 0x20|variant
//! ```
//!
//! Why: Gorilla (Pelkonen et al., VLDB 2015) exploits that consecutive
//! samples share sign, exponent and high mantissa bits; it works on raw bit
//! patterns, so NaN payloads, -0.0 and infinities round-trip exactly. Our
//! encoder reuses the previous window only when that is actually cheaper
//! (`2 + len_prev <= 13 + len_new`), a small gain over the paper's greedy rule
//! that the decoder does not need to know about.
//! Gauges such as TSBS metrics are usually decimals with few digits; their
//! binary mantissas look random to XOR, costing ~5-7 bytes/value. When every
//! value of a block is exactly `n / 10^e` (checked with the decoder's own
//! arithmetic), the block is stored as integers with delta + simple8b, which
//! is often under 1 byte/value. The encoder keeps the smaller variant.

use super::bits::{BitReader, BitWriter};
use super::integers::{decode_integers, encode_integers};
use super::{get_header, put_header, reserve_capped, DecodeError, TYPE_FLOAT};

const V_GORILLA: u8 = 0;
const V_DECIMAL: u8 = 1;

const MAX_E: usize = 15;
const POW10F: [f64; MAX_E + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// Finds the smallest `e` such that every value is exactly `n / 10^e` with
/// `|n| < 2^53`, and returns the integers.
fn as_decimals(v: &[f64]) -> Option<(u8, Vec<i64>)> {
    const LIM: f64 = (1u64 << 53) as f64;
    'e: for (e, &p) in POW10F.iter().enumerate() {
        // allocate only once the first value matches
        let mut ints = Vec::new();
        for &x in v {
            let n = (x * p).round();
            // also rejects NaN and infinities
            if n.is_nan() || n.abs() >= LIM {
                continue 'e;
            }
            let ni = n as i64;
            if ((ni as f64) / p).to_bits() != x.to_bits() {
                continue 'e;
            }
            if ints.capacity() == 0 {
                ints.reserve_exact(v.len());
            }
            ints.push(ni);
        }
        return Some((e as u8, ints));
    }
    None
}

fn encode_gorilla(v: &[f64], out: &mut Vec<u8>) {
    put_header(out, TYPE_FLOAT | V_GORILLA, v.len());
    if v.is_empty() {
        return;
    }
    let mut w = BitWriter::new(out);
    let mut prev = v[0].to_bits();
    w.write(prev, 64);
    let mut lead: u32 = 0;
    let mut len: u32 = 64;
    for x in &v[1..] {
        let b = x.to_bits();
        let xor = b ^ prev;
        prev = b;
        if xor == 0 {
            w.write_bit(false);
            continue;
        }
        let lz = xor.leading_zeros().min(31);
        let tz = xor.trailing_zeros();
        let new_len = 64 - lz - tz;
        let fits = lz >= lead && tz >= 64 - lead - len;
        if fits && 2 + len <= 13 + new_len {
            // '10' + bits in the previous window
            w.write(0b10, 2);
            w.write(xor >> (64 - lead - len), len);
        } else {
            w.write(0b11, 2);
            w.write(lz as u64, 5);
            w.write((new_len & 63) as u64, 6);
            w.write(xor >> tz, new_len);
            lead = lz;
            len = new_len;
        }
    }
    w.finish();
}

/// Encodes floats bit-exactly (NaN payloads, -0.0, infinities). Appends to `out`.
pub(crate) fn encode_floats(v: &[f64], out: &mut Vec<u8>) {
    let start = out.len();
    encode_gorilla(v, out);
    if v.len() < 2 {
        return;
    }
    if let Some((e, ints)) = as_decimals(v) {
        let mut dec = Vec::with_capacity(16 + v.len());
        put_header(&mut dec, TYPE_FLOAT | V_DECIMAL, v.len());
        dec.push(e);
        encode_integers(&ints, &mut dec);
        if dec.len() < out.len() - start {
            out.truncate(start);
            out.extend_from_slice(&dec);
        }
    }
}

/// Decodes a stream produced by [`encode_floats`], appending to `out`.
/// Returns bytes consumed.
pub(crate) fn decode_floats(buf: &[u8], out: &mut Vec<f64>) -> Result<usize, DecodeError> {
    let start = out.len();
    decode_inner(buf, out).inspect_err(|_| out.truncate(start))
}

fn decode_inner(buf: &[u8], out: &mut Vec<f64>) -> Result<usize, DecodeError> {
    let mut pos = 0;
    let (variant, count) = get_header(buf, &mut pos, TYPE_FLOAT)?;
    match variant {
        V_GORILLA => {
            if count == 0 {
                return Ok(pos);
            }
            let body = &buf[pos..];
            // first value takes 64 bits, every other at least 1 bit
            let max = body.len().saturating_mul(8).saturating_sub(63);
            if count > max {
                return Err(DecodeError::UnexpectedEof);
            }
            reserve_capped(out, count, max);
            let mut r = BitReader::new(body);
            let mut prev = r.read(64)?;
            out.push(f64::from_bits(prev));
            let mut lead: u32 = 0;
            let mut len: u32 = 64;
            for _ in 1..count {
                if r.read_bit()? {
                    if r.read_bit()? {
                        lead = r.read(5)? as u32;
                        len = r.read(6)? as u32;
                        if len == 0 {
                            len = 64;
                        }
                        if lead + len > 64 {
                            return Err(DecodeError::Invalid("gorilla window exceeds 64 bits"));
                        }
                    }
                    let bits = r.read(len)?;
                    prev ^= bits << (64 - lead - len);
                }
                out.push(f64::from_bits(prev));
            }
            Ok(pos + r.bytes_consumed())
        }
        V_DECIMAL => {
            let e = *buf.get(pos).ok_or(DecodeError::UnexpectedEof)? as usize;
            pos += 1;
            let p = *POW10F
                .get(e)
                .ok_or(DecodeError::Invalid("decimal exponent > 15"))?;
            let mut ints = Vec::new();
            let used = decode_integers(&buf[pos..], &mut ints)?;
            if ints.len() != count {
                return Err(DecodeError::Invalid("decimal float count mismatch"));
            }
            out.reserve(count);
            out.extend(ints.iter().map(|&n| (n as f64) / p));
            Ok(pos + used)
        }
        _ => Err(DecodeError::UnknownTag(TYPE_FLOAT | variant)),
    }
}

#[cfg(test)]
pub(super) fn encode_gorilla_for_test(v: &[f64], out: &mut Vec<u8>) {
    encode_gorilla(v, out)
}
