//! MSB-first bit writer/reader used by the Gorilla float encoding.
//!
//! Bits are appended most-significant-first into bytes; the final byte is
//! zero-padded. The reader bounds-checks every read and reports
//! `UnexpectedEof` instead of reading past the slice.

use super::DecodeError;

pub(super) struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u64, // pending bits, right-aligned
    nbits: u32,
}

impl<'a> BitWriter<'a> {
    pub(super) fn new(out: &'a mut Vec<u8>) -> Self {
        BitWriter {
            out,
            acc: 0,
            nbits: 0,
        }
    }

    /// Write the low `n` bits of `v` (n <= 32).
    #[inline]
    fn write_small(&mut self, v: u64, n: u32) {
        debug_assert!(n <= 32);
        if n == 0 {
            return;
        }
        let v = v & ((1u64 << n) - 1);
        // Fewer than 32 bits are pending, so the shift cannot overflow; whole 32-bit words
        // are written at once (a byte at a time was most of the float encoder's cost).
        self.acc = (self.acc << n) | v;
        self.nbits += n;
        if self.nbits >= 32 {
            self.nbits -= 32;
            let word = (self.acc >> self.nbits) as u32;
            self.out.extend_from_slice(&word.to_be_bytes());
            self.acc &= (1u64 << self.nbits) - 1;
        }
    }

    /// Write the low `n` bits of `v` (n <= 64).
    #[inline]
    pub(super) fn write(&mut self, v: u64, n: u32) {
        if n > 32 {
            self.write_small(v >> 32, n - 32);
            self.write_small(v & 0xffff_ffff, 32);
        } else {
            self.write_small(v, n);
        }
    }

    #[inline]
    pub(super) fn write_bit(&mut self, b: bool) {
        self.write_small(b as u64, 1);
    }

    /// Flush the partial last byte (zero padded).
    pub(super) fn finish(mut self) {
        while self.nbits >= 8 {
            self.nbits -= 8;
            self.out.push((self.acc >> self.nbits) as u8);
        }
        if self.nbits > 0 {
            self.out.push((self.acc << (8 - self.nbits)) as u8);
        }
    }
}

pub(super) struct BitReader<'a> {
    buf: &'a [u8],
    pos: usize, // bit position
    total: usize,
}

impl<'a> BitReader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        BitReader {
            buf,
            pos: 0,
            total: buf.len().saturating_mul(8),
        }
    }

    /// Bytes touched so far (rounded up).
    pub(super) fn bytes_consumed(&self) -> usize {
        self.pos.div_ceil(8)
    }

    #[inline]
    fn load64(&self, byte: usize) -> u64 {
        if byte + 8 <= self.buf.len() {
            let mut a = [0u8; 8];
            a.copy_from_slice(&self.buf[byte..byte + 8]);
            u64::from_be_bytes(a)
        } else {
            let mut a = [0u8; 8];
            let avail = self.buf.len().saturating_sub(byte);
            a[..avail].copy_from_slice(&self.buf[byte..byte + avail]);
            u64::from_be_bytes(a)
        }
    }

    /// Read `n` bits (n <= 56).
    #[inline]
    fn read_small(&mut self, n: u32) -> Result<u64, DecodeError> {
        if n == 0 {
            return Ok(0);
        }
        if self.pos + n as usize > self.total {
            return Err(DecodeError::UnexpectedEof);
        }
        let w = self.load64(self.pos >> 3);
        let off = (self.pos & 7) as u32;
        self.pos += n as usize;
        Ok((w << off) >> (64 - n))
    }

    /// Read `n` bits (n <= 64).
    #[inline]
    pub(super) fn read(&mut self, n: u32) -> Result<u64, DecodeError> {
        if n > 32 {
            let hi = self.read_small(n - 32)?;
            let lo = self.read_small(32)?;
            Ok((hi << 32) | lo)
        } else {
            self.read_small(n)
        }
    }

    #[inline]
    pub(super) fn read_bit(&mut self) -> Result<bool, DecodeError> {
        Ok(self.read_small(1)? == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The writer lays bits down as a bit-at-a-time walk does, MSB first, zero-padded.
        #[test]
        fn writes_the_bits_in_order(writes in proptest::collection::vec((proptest::num::u64::ANY, 0u32..=64), 0..40)) {
            let mut out = Vec::new();
            let mut w = BitWriter::new(&mut out);
            let mut bits: Vec<bool> = Vec::new();
            for &(v, n) in &writes {
                w.write(v, n);
                bits.extend((0..n).rev().map(|i| v >> i & 1 == 1));
            }
            w.finish();
            let expected: Vec<u8> = bits
                .chunks(8)
                .map(|c| c.iter().enumerate().fold(0u8, |b, (i, &bit)| b | (u8::from(bit) << (7 - i))))
                .collect();
            proptest::prop_assert_eq!(&out, &expected);
            let mut r = BitReader::new(&out);
            for &(v, n) in &writes {
                let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
                proptest::prop_assert_eq!(r.read(n).unwrap(), v & mask);
            }
        }
    }
}
