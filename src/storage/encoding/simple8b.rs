//! Simple-8b packing of small unsigned integers into 64-bit words.
//!
//! ```text
//!  63   60 59                                                0
//! +-------+--------------------------------------------------+
//! |  sel  |  n values of b bits each, first value in low bits |   u64, little-endian on disk
//! +-------+--------------------------------------------------+
//! sel:  0    1    2   3   4   5   6   7   8   9  10  11  12  13  14  15
//! n:   240  120  60  30  20  15  12  10   8   7   6   5   4   3   2   1
//! b:    0    0    1   2   3   4   5   6   7   8  10  12  15  20  30  60
//! ```
//!
//! Selectors 0 and 1 are runs of zeros: a constant delta (or constant
//! delta-of-delta) costs 8 bytes per 240 values. The last word may be only
//! partly used; the decoder stops at the value count from the stream header,
//! so no explicit word count is stored. Values >= 2^60 cannot be packed; the
//! encoder then reports `None` and the caller falls back to varints.
//!
//! Why: simple8b decodes branch-light, word at a time, and packs the small
//! zigzagged deltas of typical series far tighter than byte-aligned varints.

use super::DecodeError;

const N: [usize; 16] = [240, 120, 60, 30, 20, 15, 12, 10, 8, 7, 6, 5, 4, 3, 2, 1];
const B: [u32; 16] = [0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 30, 60];

/// Largest value simple8b can hold.
pub(super) const MAX_VALUE: u64 = (1u64 << 60) - 1;

/// Packs `vals` into `out`. Returns `None` (with `out` restored) if a value
/// exceeds [`MAX_VALUE`].
pub(super) fn encode(vals: &[u64], out: &mut Vec<u8>) -> Option<()> {
    let start = out.len();
    let mut i = 0;
    while i < vals.len() {
        let rest = &vals[i..];
        let mut chosen = None;
        'sel: for sel in 0..16 {
            let n = N[sel].min(rest.len());
            let b = B[sel];
            if b == 0 {
                if rest[..n].iter().any(|&v| v != 0) {
                    continue;
                }
            } else {
                let lim = if b == 60 { MAX_VALUE } else { (1u64 << b) - 1 };
                for &v in &rest[..n] {
                    if v > lim {
                        continue 'sel;
                    }
                }
            }
            chosen = Some((sel, n));
            break;
        }
        let (sel, n) = match chosen {
            Some(x) => x,
            None => {
                out.truncate(start);
                return None;
            }
        };
        let b = B[sel];
        let mut w = (sel as u64) << 60;
        if b > 0 {
            for (k, &v) in rest[..n].iter().enumerate() {
                w |= v << (k as u32 * b);
            }
        }
        out.extend_from_slice(&w.to_le_bytes());
        i += n;
    }
    Some(())
}

/// Decodes exactly `count` values from `buf`, calling `f` for each.
/// Returns bytes consumed.
#[inline]
pub(super) fn decode(
    buf: &[u8],
    count: usize,
    mut f: impl FnMut(u64),
) -> Result<usize, DecodeError> {
    let mut pos = 0;
    let mut left = count;
    while left > 0 {
        let bytes = buf.get(pos..pos + 8).ok_or(DecodeError::UnexpectedEof)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(bytes);
        let w = u64::from_le_bytes(a);
        pos += 8;
        let sel = (w >> 60) as usize;
        let n = N[sel].min(left);
        let b = B[sel];
        if b == 0 {
            for _ in 0..n {
                f(0);
            }
        } else {
            let mask = (1u64 << b) - 1;
            let mut x = w;
            for _ in 0..n {
                f(x & mask);
                x >>= b;
            }
        }
        left -= n;
    }
    Ok(pos)
}

/// Upper bound on values a buffer of `len` bytes can describe.
pub(super) fn max_values(len: usize) -> usize {
    (len / 8).saturating_mul(240)
}
