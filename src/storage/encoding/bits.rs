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
        self.acc = (self.acc << n) | v;
        self.nbits += n;
        while self.nbits >= 8 {
            self.nbits -= 8;
            self.out.push((self.acc >> self.nbits) as u8);
        }
        // keep only pending bits to avoid overflow of the shift above
        self.acc &= (1u64 << self.nbits) - 1;
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
    pub(super) fn finish(self) {
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
