//! The bytes peers exchange under `/shard-repair/peer/`: a compact binary format, read
//! from the network and so from anyone: every count and length is checked against the
//! bytes that remain before anything is allocated for it, a compressed body is inflated
//! only up to [`MAX_INFLATED`], and nothing in it can make the decoder panic (see
//! [`fuzz_decode`], the fuzz target's entry, and the bounded random-input test).
//!
//! ```text
//! message   = "SKAE" version:u8 kind:u8 flags:u8 body      (flags bit 0: body is zstd)
//! varint    = LEB128 (u64), at most 10 bytes; signed values zigzag-encoded
//! string    = len:varint bytes (UTF-8)
//! digest    = sum:8 bytes LE (folded to 64 bits), count_and_unsettled:varint (count << 1
//!             | unsettled)
//! shards    = n:varint { id:varint database:string policy:string start:zigzag
//!                        end:zigzag expires:zigzag root:digest }
//! digest-rq = shard:varint settled_before:zigzag n:varint
//!             { has_measurement:u8 [measurement:string] bits:u8 prefix:varint }
//! digest-an = n:varint { k:varint { child_kind:u8 (0: measurement:string, 1: nibble:u8)
//!                                   digest } }
//! leaf-rq   = shard:varint n:varint { measurement:string k:varint { position:varint
//!               j:varint { cell:u8 } } }                   (j = 0: the whole leaf)
//! cells     = shard:varint n:varint { measurement:string k:varint { position:varint
//!               j:varint { cell:u8 sum:8 bytes LE count:varint } } }
//! leaves    = shard:varint n:varint { measurement:string series:names fields:names
//!               points:n:varint [columns (when n > 0)]
//!               tombstones:n:varint{ len:varint prost Tombstone } }
//! names     = n:varint { shared:varint rest:string }  (shares `shared` bytes with the
//!             name before it)
//! columns   = n x series:zigzag (the index's step from the point before's, from 0)
//!             n x field:zigzag (likewise)
//!             base:zigzag unit:varint (>= 1) n x time:varint (time = base + it x unit)
//!             n x version:zigzag (the step from the point before's, wrapping, from 0)
//!             n x value_kind:u8 (0 float, 1 integer, 2 unsigned, 3 string, 4 boolean,
//!                                5 + s: a float of s decimals, s <= 9)
//!             floats of kind 0, byte 0 of each, then byte 1 of each, ... (LE bits)
//!             the values of the other kinds, in order: integer zigzag, unsigned
//!             varint, string, boolean u8, decimal float mantissa:zigzag (the float
//!             is mantissa / 10^s)
//! ibf-rq    = shard:varint stratum:u8 (0: the sample, 1: the rest) cells:varint
//! ibf       = shard:varint n:varint { count:u8 weight:u16 LE key_hi:u16 LE key_lo:u16 LE
//!               check:u16 LE }                               (never zstd; see ibf's doc)
//! exchange  = n:varint { key delta:varint (ascending) } leaves-body
//! ```
//!
//! Version 3 added the set reconciliation's messages ([`super::ibf`]); version 4 sends
//! points as columns (times as steps above the earliest, versions as steps, floats as
//! their decimal digits when those give back their bits); version 5 keys the tables by a
//! point's position and carries a hash of its value (a changed value is one difference,
//! not two; keys in an exchange are position keys). A peer of another version gets
//! a 400 naming both versions, never a misread message.

use super::ibf::{self, Cell, Ibf, Stratum};
use crate::line_protocol::FieldValue;
use crate::proto::Tombstone;
use crate::storage::digest::{Digest, LeafCellDigests, LeafCells, NodeDigest, Prefix};
use crate::storage::shard::{DigestChild, LeafContents, LeafPoint};
use prost::Message;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::sync::Arc;

const MAGIC: &[u8] = b"SKAE";
/// 2: digests folded to 64 bits, leaf requests choosing cells, cell digests; 3: set
/// reconciliation; 4: points as columns; 5: tables keyed by position, carrying value hashes.
const VERSION: u8 = 5;
/// The most a compressed body may inflate to.
pub(crate) const MAX_INFLATED: usize = 512 << 20;
/// Bodies at least this long are compressed.
const COMPRESS_FROM: usize = 512;

pub(crate) const KIND_SHARDS: u8 = b'S';
pub(crate) const KIND_DIGEST_REQUEST: u8 = b'D';
pub(crate) const KIND_DIGEST_ANSWER: u8 = b'd';
pub(crate) const KIND_LEAF_REQUEST: u8 = b'L';
pub(crate) const KIND_LEAVES: u8 = b'l';
pub(crate) const KIND_CELLS: u8 = b'c';
pub(crate) const KIND_IBF_REQUEST: u8 = b'I';
pub(crate) const KIND_IBF: u8 = b'i';
pub(crate) const KIND_EXCHANGE: u8 = b'X';

/// Content type of every message.
pub(crate) const CONTENT_TYPE: &str = "application/x-shardkeeper-entropy";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("entropy message: {0}")]
pub(crate) struct WireError(pub String);

fn bad(why: impl Into<String>) -> WireError {
    WireError(why.into())
}

/// A shard as a peer lists it, with its root digest.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ShardSummary {
    pub id: u64,
    pub database: String,
    pub retention_policy: String,
    pub start: i64,
    pub end: i64,
    /// When the shard expires (ns since the epoch; 0: never).
    pub expires: i64,
    pub root: NodeDigest,
}

/// Nodes of a shard's tree whose children are asked for (a measurement of None: the
/// shard's root, whose children are its measurements).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DigestRequest {
    pub shard: u64,
    pub settled_before: i64,
    pub nodes: Vec<(Option<String>, Prefix)>,
}

pub(crate) type DigestAnswer = Vec<Vec<(DigestChild, NodeDigest)>>;

/// Leaves (or cells of them) whose contents or cell digests are asked for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LeafRequest {
    pub shard: u64,
    pub leaves: Vec<(String, LeafCells)>,
}

/// The digests of the cells of leaves, by measurement, leaf and cell (only cells holding
/// a point; folded as on the wire): the answer to a [`LeafRequest`] for cells.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct CellDigests {
    pub shard: u64,
    pub measurements: Vec<(String, LeafCellDigests)>,
}

/// Leaves' contents, of one shard: an answer to a [`LeafRequest`], or pushed to a peer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Leaves {
    pub shard: u64,
    pub contents: Vec<LeafContents>,
}

/// A table of the shard's point keys of one stratum asked for, of `cells` cells.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IbfRequest {
    pub shard: u64,
    pub stratum: Stratum,
    pub cells: u64,
}

/// The answer to an [`IbfRequest`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IbfAnswer {
    pub shard: u64,
    pub ibf: Ibf,
}

/// The second step of a reconciliation: the points the asker holds and the peer lacks
/// (to apply), and the keys of the points the peer holds and the asker lacks (to send
/// back, those still there once the pushed points are applied).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Exchange {
    pub wanted: Vec<u32>,
    pub leaves: Leaves,
}

// ---- writing ----

struct Writer {
    out: Vec<u8>,
}

impl Writer {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }
    fn zigzag(&mut self, v: i64) {
        self.varint(((v << 1) ^ (v >> 63)) as u64);
    }
    fn string(&mut self, s: &str) {
        self.varint(s.len() as u64);
        self.out.extend_from_slice(s.as_bytes());
    }
    fn digest(&mut self, d: &NodeDigest) {
        let folded = d.digest.folded();
        self.out
            .extend_from_slice(&(folded.sum as u64).to_le_bytes());
        self.varint((folded.count << 1) | u64::from(d.unsettled));
    }
}

fn frame(kind: u8, body: Vec<u8>) -> Vec<u8> {
    frame_as(kind, body, true)
}

fn frame_as(kind: u8, body: Vec<u8>, compress: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() / 2 + 8);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(kind);
    if compress && body.len() >= COMPRESS_FROM {
        out.push(1);
        let compressed = zstd::bulk::compress(&body, 3).unwrap_or_default();
        out.extend_from_slice(&compressed);
    } else {
        out.push(0);
        out.extend_from_slice(&body);
    }
    out
}

pub(crate) fn encode_shards(shards: &[ShardSummary]) -> Vec<u8> {
    let mut w = Writer { out: Vec::new() };
    w.varint(shards.len() as u64);
    for s in shards {
        w.varint(s.id);
        w.string(&s.database);
        w.string(&s.retention_policy);
        w.zigzag(s.start);
        w.zigzag(s.end);
        w.zigzag(s.expires);
        w.digest(&s.root);
    }
    frame(KIND_SHARDS, w.out)
}

pub(crate) fn encode_digest_request(r: &DigestRequest) -> Vec<u8> {
    let mut w = Writer { out: Vec::new() };
    w.varint(r.shard);
    w.zigzag(r.settled_before);
    w.varint(r.nodes.len() as u64);
    for (m, p) in &r.nodes {
        match m {
            Some(m) => {
                w.out.push(1);
                w.string(m);
            }
            None => w.out.push(0),
        }
        w.out.push(p.bits);
        w.varint(u64::from(p.prefix));
    }
    frame(KIND_DIGEST_REQUEST, w.out)
}

pub(crate) fn encode_digest_answer(a: &DigestAnswer) -> Vec<u8> {
    let mut w = Writer { out: Vec::new() };
    w.varint(a.len() as u64);
    for children in a {
        w.varint(children.len() as u64);
        for (child, d) in children {
            match child {
                DigestChild::Measurement(m) => {
                    w.out.push(0);
                    w.string(m);
                }
                DigestChild::Nibble(n) => {
                    w.out.push(1);
                    w.out.push(*n);
                }
            }
            w.digest(d);
        }
    }
    frame(KIND_DIGEST_ANSWER, w.out)
}

pub(crate) fn encode_leaf_request(r: &LeafRequest) -> Vec<u8> {
    let mut w = Writer { out: Vec::new() };
    w.varint(r.shard);
    w.varint(r.leaves.len() as u64);
    for (m, positions) in &r.leaves {
        w.string(m);
        w.varint(positions.len() as u64);
        for (p, cells) in positions {
            w.varint(u64::from(*p));
            w.varint(cells.len() as u64);
            w.out.extend(cells.iter());
        }
    }
    frame(KIND_LEAF_REQUEST, w.out)
}

pub(crate) fn encode_cells(c: &CellDigests) -> Vec<u8> {
    let mut w = Writer { out: Vec::new() };
    w.varint(c.shard);
    w.varint(c.measurements.len() as u64);
    for (m, leaves) in &c.measurements {
        w.string(m);
        w.varint(leaves.len() as u64);
        for (pos, cells) in leaves {
            w.varint(u64::from(*pos));
            w.varint(cells.len() as u64);
            for (cell, d) in cells {
                let folded = d.folded();
                w.out.push(*cell);
                w.out.extend_from_slice(&(folded.sum as u64).to_le_bytes());
                w.varint(folded.count);
            }
        }
    }
    frame(KIND_CELLS, w.out)
}

pub(crate) fn encode_leaves(l: &Leaves) -> Vec<u8> {
    let mut w = Writer { out: Vec::new() };
    w.leaves(l);
    frame(KIND_LEAVES, w.out)
}

impl Writer {
    /// Each name as the length it shares with the one before and the rest: series keys
    /// of a measurement share their measurement and most of their tags.
    fn names(&mut self, names: &[&str]) {
        self.varint(names.len() as u64);
        let mut last = "";
        for &name in names {
            let mut shared = name
                .bytes()
                .zip(last.bytes())
                .take_while(|(a, b)| a == b)
                .count();
            while !last.is_char_boundary(shared) {
                shared -= 1;
            }
            self.varint(shared as u64);
            self.string(&name[shared..]);
            last = name;
        }
    }

    /// Points as columns (see the module's grammar): each column holds values alike,
    /// which zstd compresses far better than records that interleave them.
    fn leaves(&mut self, l: &Leaves) {
        let w = self;
        w.varint(l.shard);
        w.varint(l.contents.len() as u64);
        for c in &l.contents {
            w.string(&c.measurement);
            let mut series: HashMap<&str, u64> = HashMap::new();
            let mut fields: HashMap<&str, u64> = HashMap::new();
            let mut series_list = Vec::new();
            let mut field_list = Vec::new();
            for p in &c.points {
                let n = series.len() as u64;
                series.entry(&p.series).or_insert_with(|| {
                    series_list.push(&*p.series);
                    n
                });
                let n = fields.len() as u64;
                fields.entry(&p.field).or_insert_with(|| {
                    field_list.push(&*p.field);
                    n
                });
            }
            w.names(&series_list);
            w.names(&field_list);
            w.varint(c.points.len() as u64);
            if c.points.is_empty() {
                w.varint(c.tombstones.len() as u64);
                w.tombstones(&c.tombstones);
                continue;
            }
            // Indexes as steps from the point before: points come grouped by series.
            let mut last = 0i64;
            for p in &c.points {
                let i = series[&*p.series] as i64;
                w.zigzag(i - last);
                last = i;
            }
            let mut last = 0i64;
            for p in &c.points {
                let i = fields[&*p.field] as i64;
                w.zigzag(i - last);
                last = i;
            }
            // Times as multiples of their greatest common step above the earliest.
            let base = c.points.iter().map(|p| p.time).min().unwrap_or(0);
            let offset = |t: i64| (i128::from(t) - i128::from(base)) as u64;
            let unit = c
                .points
                .iter()
                .fold(0u64, |g, p| gcd(g, offset(p.time)))
                .max(1);
            w.zigzag(base);
            w.varint(unit);
            for p in &c.points {
                w.varint(offset(p.time) / unit);
            }
            let mut last = 0u64;
            for p in &c.points {
                w.zigzag(p.version.wrapping_sub(last) as i64);
                last = p.version;
            }
            let decimals: Vec<Option<(u8, i64)>> = c
                .points
                .iter()
                .map(|p| match p.value {
                    FieldValue::Float(v) => decimal(v),
                    _ => None,
                })
                .collect();
            for (p, d) in c.points.iter().zip(&decimals) {
                w.out.push(match (&p.value, d) {
                    (FieldValue::Float(_), Some((scale, _))) => VALUE_DECIMAL + scale,
                    (FieldValue::Float(_), None) => 0,
                    (FieldValue::Integer(_), _) => 1,
                    (FieldValue::Unsigned(_), _) => 2,
                    (FieldValue::String(_), _) => 3,
                    (FieldValue::Boolean(_), _) => 4,
                });
            }
            // Floats kept whole, byte by byte across them: their sign and exponent bytes
            // repeat even when their mantissas do not.
            let raw: Vec<[u8; 8]> = c
                .points
                .iter()
                .zip(&decimals)
                .filter_map(|(p, d)| match (&p.value, d) {
                    (FieldValue::Float(v), None) => Some(v.to_bits().to_le_bytes()),
                    _ => None,
                })
                .collect();
            for b in 0..8 {
                w.out.extend(raw.iter().map(|f| f[b]));
            }
            for (p, d) in c.points.iter().zip(&decimals) {
                match (&p.value, d) {
                    (FieldValue::Float(_), Some((_, m))) => w.zigzag(*m),
                    (FieldValue::Float(_), None) => {}
                    (FieldValue::Integer(v), _) => w.zigzag(*v),
                    (FieldValue::Unsigned(v), _) => w.varint(*v),
                    (FieldValue::String(s), _) => w.string(s),
                    (FieldValue::Boolean(b), _) => w.out.push(u8::from(*b)),
                }
            }
            w.varint(c.tombstones.len() as u64);
            w.tombstones(&c.tombstones);
        }
    }

    fn tombstones(&mut self, tombstones: &[Tombstone]) {
        for t in tombstones {
            let bytes = t.encode_to_vec();
            self.varint(bytes.len() as u64);
            self.out.extend_from_slice(&bytes);
        }
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// A value kind: a float sent as its decimal digits, `kind - VALUE_DECIMAL` of them after
/// the point, up to [`MAX_SCALE`].
const VALUE_DECIMAL: u8 = 5;
const MAX_SCALE: u8 = 9;
const POW10: [f64; MAX_SCALE as usize + 1] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/// A float as few decimal digits (a scale and an integer mantissa) when they give back
/// exactly its bits: a value written with two decimals takes 2 or 3 bytes, not 8.
fn decimal(v: f64) -> Option<(u8, i64)> {
    for (scale, p) in POW10.iter().enumerate() {
        let m = (v * p).round();
        if m.is_nan() || m.abs() > (1u64 << 53) as f64 {
            return None;
        }
        // As the reader computes it (so -0.0, whose mantissa is 0, stays whole).
        let m = m as i64;
        if (m as f64 / p).to_bits() == v.to_bits() {
            return Some((scale as u8, m));
        }
    }
    None
}

pub(crate) fn encode_ibf_request(r: &IbfRequest) -> Vec<u8> {
    let mut w = Writer { out: Vec::new() };
    w.varint(r.shard);
    w.out.push(match r.stratum {
        Stratum::Sample => 0,
        Stratum::Rest => 1,
    });
    w.varint(r.cells);
    frame(KIND_IBF_REQUEST, w.out)
}

pub(crate) fn encode_ibf(a: &IbfAnswer) -> Vec<u8> {
    let mut w = Writer { out: Vec::new() };
    w.varint(a.shard);
    w.varint(a.ibf.cells.len() as u64);
    for c in &a.ibf.cells {
        w.out.push(c.count);
        for half in [c.weight, c.key_hi, c.key_lo, c.check] {
            w.out.extend_from_slice(&half.to_le_bytes());
        }
    }
    // Cells look random: compressing them would only cost time.
    frame_as(KIND_IBF, w.out, false)
}

pub(crate) fn encode_exchange(x: &Exchange) -> Vec<u8> {
    let mut w = Writer { out: Vec::new() };
    let mut wanted = x.wanted.clone();
    wanted.sort_unstable();
    wanted.dedup();
    w.varint(wanted.len() as u64);
    let mut last = 0u32;
    for k in wanted {
        w.varint(u64::from(k - last));
        last = k;
    }
    w.leaves(&x.leaves);
    frame(KIND_EXCHANGE, w.out)
}

// ---- reading ----

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.remaining() {
            return Err(bad("cut short"));
        }
        let out = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }
    fn varint(&mut self) -> Result<u64, WireError> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = self.u8()?;
            if i == 9 && b > 1 {
                return Err(bad("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad("varint too long"))
    }
    fn zigzag(&mut self) -> Result<i64, WireError> {
        let v = self.varint()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }
    /// A count of items each taking at least `min_bytes`: no more than the bytes left
    /// could hold.
    fn count(&mut self, min_bytes: usize) -> Result<usize, WireError> {
        let n = self.varint()?;
        if n > (self.remaining() / min_bytes.max(1)) as u64 {
            return Err(bad("a count larger than the message"));
        }
        Ok(n as usize)
    }
    fn string(&mut self) -> Result<String, WireError> {
        let n = self.varint()?;
        if n > self.remaining() as u64 {
            return Err(bad("a string longer than the message"));
        }
        let bytes = self.take(n as usize)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| bad("a string that is not UTF-8"))
    }
    fn sum(&mut self) -> Result<u128, WireError> {
        Ok(u128::from(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        )))
    }
    fn digest(&mut self) -> Result<NodeDigest, WireError> {
        let sum = self.sum()?;
        let v = self.varint()?;
        Ok(NodeDigest {
            digest: Digest { sum, count: v >> 1 },
            unsettled: v & 1 == 1,
        })
    }
    fn end(&self) -> Result<(), WireError> {
        match self.remaining() {
            0 => Ok(()),
            _ => Err(bad("bytes after the message")),
        }
    }
}

/// The body of a message of `kind`, inflated if it was compressed.
fn unframe(bytes: &[u8], kind: u8) -> Result<std::borrow::Cow<'_, [u8]>, WireError> {
    if bytes.len() < MAGIC.len() + 3 || &bytes[..MAGIC.len()] != MAGIC {
        return Err(bad("not an entropy message"));
    }
    let (version, got, flags) = (bytes[4], bytes[5], bytes[6]);
    if version != VERSION {
        return Err(bad(format!("version {version}, not {VERSION}")));
    }
    if got != kind {
        return Err(bad(format!("a message of kind {got}, not {kind}")));
    }
    let body = &bytes[7..];
    match flags {
        0 => Ok(std::borrow::Cow::Borrowed(body)),
        1 => {
            let decoder = zstd::stream::read::Decoder::new(body).map_err(|e| bad(e.to_string()))?;
            let mut out = Vec::new();
            decoder
                .take(MAX_INFLATED as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| bad(format!("compressed body: {e}")))?;
            if out.len() > MAX_INFLATED {
                return Err(bad("compressed body inflates past its bound"));
            }
            Ok(std::borrow::Cow::Owned(out))
        }
        _ => Err(bad("unknown flags")),
    }
}

pub(crate) fn decode_shards(bytes: &[u8]) -> Result<Vec<ShardSummary>, WireError> {
    let body = unframe(bytes, KIND_SHARDS)?;
    let mut r = Reader {
        bytes: &body,
        at: 0,
    };
    let n = r.count(15)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(ShardSummary {
            id: r.varint()?,
            database: r.string()?,
            retention_policy: r.string()?,
            start: r.zigzag()?,
            end: r.zigzag()?,
            expires: r.zigzag()?,
            root: r.digest()?,
        });
    }
    r.end()?;
    Ok(out)
}

fn prefix(bits: u8, prefix: u64) -> Result<Prefix, WireError> {
    let p = Prefix {
        bits,
        prefix: u16::try_from(prefix).map_err(|_| bad("a prefix past 16 bits"))?,
    };
    match p.is_valid() {
        true => Ok(p),
        false => Err(bad("a prefix that is no node of the tree")),
    }
}

pub(crate) fn decode_digest_request(bytes: &[u8]) -> Result<DigestRequest, WireError> {
    let body = unframe(bytes, KIND_DIGEST_REQUEST)?;
    let mut r = Reader {
        bytes: &body,
        at: 0,
    };
    let shard = r.varint()?;
    let settled_before = r.zigzag()?;
    let n = r.count(3)?;
    let mut nodes = Vec::with_capacity(n);
    for _ in 0..n {
        let m = match r.u8()? {
            0 => None,
            1 => Some(r.string()?),
            _ => return Err(bad("a flag that is neither 0 nor 1")),
        };
        let bits = r.u8()?;
        let p = prefix(bits, r.varint()?)?;
        if m.is_none() && p != Prefix::ROOT {
            return Err(bad("the shard's root has no prefix"));
        }
        nodes.push((m, p));
    }
    r.end()?;
    Ok(DigestRequest {
        shard,
        settled_before,
        nodes,
    })
}

pub(crate) fn decode_digest_answer(bytes: &[u8]) -> Result<DigestAnswer, WireError> {
    let body = unframe(bytes, KIND_DIGEST_ANSWER)?;
    let mut r = Reader {
        bytes: &body,
        at: 0,
    };
    let n = r.count(1)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let k = r.count(11)?;
        let mut children = Vec::with_capacity(k);
        for _ in 0..k {
            let child = match r.u8()? {
                0 => DigestChild::Measurement(r.string()?),
                1 => {
                    let n = r.u8()?;
                    if n > 15 {
                        return Err(bad("a nibble past 15"));
                    }
                    DigestChild::Nibble(n)
                }
                _ => return Err(bad("an unknown kind of child")),
            };
            children.push((child, r.digest()?));
        }
        out.push(children);
    }
    r.end()?;
    Ok(out)
}

pub(crate) fn decode_leaf_request(bytes: &[u8]) -> Result<LeafRequest, WireError> {
    let body = unframe(bytes, KIND_LEAF_REQUEST)?;
    let mut r = Reader {
        bytes: &body,
        at: 0,
    };
    let shard = r.varint()?;
    let n = r.count(2)?;
    let mut leaves = Vec::with_capacity(n);
    for _ in 0..n {
        let m = r.string()?;
        let k = r.count(2)?;
        let mut positions = LeafCells::new();
        for _ in 0..k {
            let p = position(r.varint()?)?;
            let j = r.count(1)?;
            let cells: BTreeSet<u8> = r.take(j)?.iter().copied().collect();
            positions.insert(p, cells);
        }
        leaves.push((m, positions));
    }
    r.end()?;
    Ok(LeafRequest { shard, leaves })
}

fn position(v: u64) -> Result<u16, WireError> {
    u16::try_from(v).map_err(|_| bad("a position past 16 bits"))
}

pub(crate) fn decode_cells(bytes: &[u8]) -> Result<CellDigests, WireError> {
    let body = unframe(bytes, KIND_CELLS)?;
    let mut r = Reader {
        bytes: &body,
        at: 0,
    };
    let shard = r.varint()?;
    let n = r.count(2)?;
    let mut measurements = Vec::with_capacity(n);
    for _ in 0..n {
        let m = r.string()?;
        let k = r.count(2)?;
        let mut leaves = BTreeMap::new();
        for _ in 0..k {
            let p = position(r.varint()?)?;
            let j = r.count(10)?;
            let mut cells = BTreeMap::new();
            for _ in 0..j {
                let cell = r.u8()?;
                let sum = r.sum()?;
                let count = r.varint()?;
                cells.insert(cell, Digest { sum, count });
            }
            leaves.insert(p, cells);
        }
        measurements.push((m, leaves));
    }
    r.end()?;
    Ok(CellDigests {
        shard,
        measurements,
    })
}

pub(crate) fn decode_leaves(bytes: &[u8]) -> Result<Leaves, WireError> {
    let body = unframe(bytes, KIND_LEAVES)?;
    let mut r = Reader {
        bytes: &body,
        at: 0,
    };
    let leaves = r.leaves()?;
    r.end()?;
    Ok(leaves)
}

pub(crate) fn decode_ibf_request(bytes: &[u8]) -> Result<IbfRequest, WireError> {
    let body = unframe(bytes, KIND_IBF_REQUEST)?;
    let mut r = Reader {
        bytes: &body,
        at: 0,
    };
    let shard = r.varint()?;
    let stratum = match r.u8()? {
        0 => Stratum::Sample,
        1 => Stratum::Rest,
        _ => return Err(bad("an unknown stratum")),
    };
    let cells = r.varint()?;
    if cells == 0 || cells % 3 != 0 || cells > ibf::MAX_CELLS as u64 {
        return Err(bad(format!(
            "a table of {cells} cells (a multiple of 3, at most {})",
            ibf::MAX_CELLS
        )));
    }
    r.end()?;
    Ok(IbfRequest {
        shard,
        stratum,
        cells,
    })
}

pub(crate) fn decode_ibf(bytes: &[u8]) -> Result<IbfAnswer, WireError> {
    let body = unframe(bytes, KIND_IBF)?;
    let mut r = Reader {
        bytes: &body,
        at: 0,
    };
    let shard = r.varint()?;
    let n = r.count(ibf::CELL_BYTES)?;
    if n == 0 || n % 3 != 0 || n > ibf::MAX_CELLS {
        return Err(bad(format!("a table of {n} cells")));
    }
    let mut cells = Vec::with_capacity(n);
    for _ in 0..n {
        let c = r.take(ibf::CELL_BYTES)?;
        let half = |i: usize| u16::from_le_bytes([c[i], c[i + 1]]);
        cells.push(Cell {
            count: c[0],
            weight: half(1),
            key_hi: half(3),
            key_lo: half(5),
            check: half(7),
        });
    }
    r.end()?;
    Ok(IbfAnswer {
        shard,
        ibf: Ibf { cells },
    })
}

pub(crate) fn decode_exchange(bytes: &[u8]) -> Result<Exchange, WireError> {
    let body = unframe(bytes, KIND_EXCHANGE)?;
    let mut r = Reader {
        bytes: &body,
        at: 0,
    };
    let n = r.count(1)?;
    let mut wanted = Vec::with_capacity(n);
    let mut last = 0u64;
    for i in 0..n {
        let delta = r.varint()?;
        if i > 0 && delta == 0 {
            return Err(bad("a key listed twice"));
        }
        last = last
            .checked_add(delta)
            .filter(|&k| k <= u64::from(u32::MAX))
            .ok_or_else(|| bad("a key past 32 bits"))?;
        wanted.push(last as u32);
    }
    let leaves = r.leaves()?;
    r.end()?;
    Ok(Exchange { wanted, leaves })
}

impl Reader<'_> {
    fn names(&mut self) -> Result<Vec<Arc<str>>, WireError> {
        let n = self.count(2)?;
        let mut out: Vec<Arc<str>> = Vec::with_capacity(n);
        let mut last = String::new();
        for _ in 0..n {
            let shared = self.varint()?;
            if shared > last.len() as u64 || !last.is_char_boundary(shared as usize) {
                return Err(bad("a name sharing more than the name before it"));
            }
            last.truncate(shared as usize);
            last.push_str(&self.string()?);
            out.push(last.as_str().into());
        }
        Ok(out)
    }

    /// `n` points' columns (see the module's grammar).
    fn points(
        &mut self,
        n: usize,
        series: &[Arc<str>],
        fields: &[Arc<str>],
    ) -> Result<Vec<LeafPoint>, WireError> {
        let r = self;
        let mut indexes = |names: &[Arc<str>], what: &str| {
            let mut out = Vec::with_capacity(n);
            let mut last = 0i64;
            for _ in 0..n {
                let i = last
                    .checked_add(r.zigzag()?)
                    .filter(|&i| i >= 0 && (i as u64) < names.len() as u64)
                    .ok_or_else(|| bad(format!("a point of an unlisted {what}")))?;
                out.push(names[i as usize].clone());
                last = i;
            }
            Ok::<_, WireError>(out)
        };
        let point_series = indexes(series, "series")?;
        let point_fields = indexes(fields, "field")?;
        let base = r.zigzag()?;
        let unit = r.varint()?;
        if unit == 0 {
            return Err(bad("times in steps of 0"));
        }
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            let t = i128::from(base) + i128::from(r.varint()?) * i128::from(unit);
            times.push(i64::try_from(t).map_err(|_| bad("a time past 64 bits"))?);
        }
        let mut versions = Vec::with_capacity(n);
        let mut last = 0u64;
        for _ in 0..n {
            last = last.wrapping_add(r.zigzag()? as u64);
            versions.push(last);
        }
        let kinds = r.take(n)?;
        let raw = kinds.iter().filter(|&&k| k == 0).count();
        let planes = r.take(raw.checked_mul(8).ok_or_else(|| bad("too many floats"))?)?;
        let mut raw_floats = (0..raw).map(|i| {
            let mut b = [0u8; 8];
            for (j, byte) in b.iter_mut().enumerate() {
                *byte = planes[j * raw + i];
            }
            f64::from_le_bytes(b)
        });
        let mut points = Vec::with_capacity(n);
        for (i, ((series, field), (time, version))) in point_series
            .into_iter()
            .zip(point_fields)
            .zip(times.into_iter().zip(versions))
            .enumerate()
        {
            let value = match kinds[i] {
                0 => FieldValue::Float(raw_floats.next().expect("as many as counted")),
                1 => FieldValue::Integer(r.zigzag()?),
                2 => FieldValue::Unsigned(r.varint()?),
                3 => FieldValue::String(r.string()?),
                4 => match r.u8()? {
                    0 => FieldValue::Boolean(false),
                    1 => FieldValue::Boolean(true),
                    _ => return Err(bad("a boolean that is neither 0 nor 1")),
                },
                k if (VALUE_DECIMAL..=VALUE_DECIMAL + MAX_SCALE).contains(&k) => {
                    let m = r.zigzag()?;
                    FieldValue::Float(m as f64 / POW10[usize::from(k - VALUE_DECIMAL)])
                }
                _ => return Err(bad("an unknown kind of value")),
            };
            points.push(LeafPoint {
                series,
                field,
                time,
                version,
                value,
            });
        }
        Ok(points)
    }

    fn leaves(&mut self) -> Result<Leaves, WireError> {
        let r = self;
        let shard = r.varint()?;
        let n = r.count(4)?;
        let mut contents = Vec::with_capacity(n);
        for _ in 0..n {
            let measurement = r.string()?;
            let series: Vec<Arc<str>> = r.names()?;
            let fields: Vec<Arc<str>> = r.names()?;
            let np = r.count(6)?;
            let points = if np == 0 {
                Vec::new()
            } else {
                r.points(np, &series, &fields)?
            };
            let nt = r.count(1)?;
            let mut tombstones = Vec::with_capacity(nt);
            for _ in 0..nt {
                let len = r.varint()?;
                if len > r.remaining() as u64 {
                    return Err(bad("a tombstone longer than the message"));
                }
                let t = Tombstone::decode(r.take(len as usize)?)
                    .map_err(|e| bad(format!("a tombstone: {e}")))?;
                if t.measurement != measurement {
                    return Err(bad("a tombstone of another measurement"));
                }
                if t.min_time > t.max_time {
                    return Err(bad("a tombstone whose range ends before it starts"));
                }
                tombstones.push(t);
            }
            contents.push(LeafContents {
                measurement,
                points,
                tombstones,
            });
        }
        Ok(Leaves { shard, contents })
    }
}

#[cfg(any(test, feature = "testing"))]
/// Decodes arbitrary bytes as every kind of message: the fuzz target's entry. Refuses or
/// accepts, never panics; what it accepts encodes back to what decodes the same.
pub fn fuzz_decode(data: &[u8]) {
    if let Ok(s) = decode_shards(data) {
        assert_eq!(decode_shards(&encode_shards(&s)).as_ref(), Ok(&s));
    }
    if let Ok(r) = decode_digest_request(data) {
        assert_eq!(
            decode_digest_request(&encode_digest_request(&r)).as_ref(),
            Ok(&r)
        );
    }
    if let Ok(a) = decode_digest_answer(data) {
        assert_eq!(
            decode_digest_answer(&encode_digest_answer(&a)).as_ref(),
            Ok(&a)
        );
    }
    if let Ok(r) = decode_leaf_request(data) {
        assert_eq!(
            decode_leaf_request(&encode_leaf_request(&r)).as_ref(),
            Ok(&r)
        );
    }
    if let Ok(c) = decode_cells(data) {
        assert_eq!(decode_cells(&encode_cells(&c)).as_ref(), Ok(&c));
    }
    if let Ok(r) = decode_ibf_request(data) {
        assert_eq!(decode_ibf_request(&encode_ibf_request(&r)).as_ref(), Ok(&r));
    }
    if let Ok(a) = decode_ibf(data) {
        assert_eq!(decode_ibf(&encode_ibf(&a)).as_ref(), Ok(&a));
    }
    if let Ok(x) = decode_exchange(data) {
        let again = encode_exchange(&x);
        let back = decode_exchange(&again).expect("what encodes decodes");
        assert_eq!(back.wanted, x.wanted);
        assert_eq!(encode_exchange(&back), again);
    }
    if let Ok(l) = decode_leaves(data) {
        // NaN floats compare unequal: compared as bytes instead.
        let again = encode_leaves(&l);
        let back = decode_leaves(&again).expect("what encodes decodes");
        assert_eq!(encode_leaves(&back), again);
    }
}

#[cfg(any(test, feature = "testing"))]
/// A message of each kind, for the fuzz corpus's seeds and tests.
pub fn sample_messages() -> Vec<(&'static str, Vec<u8>)> {
    let d = NodeDigest {
        digest: Digest {
            sum: 0x1234_5678_9abc_def0_1122_3344_5566_7788,
            count: 7,
        },
        unsettled: false,
    };
    let contents = LeafContents {
        measurement: "cpu".into(),
        points: vec![
            LeafPoint {
                series: "cpu,host=a".into(),
                field: "usage".into(),
                time: 10,
                version: 99,
                value: FieldValue::Float(1.5),
            },
            LeafPoint {
                series: "cpu,host=b".into(),
                field: "msg".into(),
                time: -5,
                version: 100,
                value: FieldValue::String("hi".into()),
            },
            LeafPoint {
                series: "cpu,host=b".into(),
                field: "usage".into(),
                time: 25,
                version: 98,
                value: FieldValue::Float(-0.1),
            },
            LeafPoint {
                series: "cpu,host=b".into(),
                field: "usage".into(),
                time: 40,
                version: 98,
                value: FieldValue::Float(-0.0),
            },
            LeafPoint {
                series: "cpu,host=a".into(),
                field: "n".into(),
                time: 10,
                version: 97,
                value: FieldValue::Integer(-3),
            },
            LeafPoint {
                series: "cpu,host=a".into(),
                field: "u".into(),
                time: 10,
                version: 97,
                value: FieldValue::Unsigned(3),
            },
            LeafPoint {
                series: "cpu,host=a".into(),
                field: "ok".into(),
                time: 10,
                version: 97,
                value: FieldValue::Boolean(true),
            },
        ],
        tombstones: vec![Tombstone {
            version: 120,
            measurement: "cpu".into(),
            series_keys: vec!["cpu,host=a".into()],
            min_time: 0,
            max_time: 5,
            drop_schema: false,
        }],
    };
    vec![
        (
            "shards",
            encode_shards(&[ShardSummary {
                id: 1,
                database: "db".into(),
                retention_policy: "autogen".into(),
                start: 0,
                end: 604_800_000_000_000,
                expires: 0,
                root: d,
            }]),
        ),
        (
            "digest-request",
            encode_digest_request(&DigestRequest {
                shard: 1,
                settled_before: 5,
                nodes: vec![
                    (None, Prefix::ROOT),
                    (Some("cpu".into()), Prefix::ROOT.child(3)),
                ],
            }),
        ),
        (
            "digest-answer",
            encode_digest_answer(&vec![vec![
                (DigestChild::Measurement("cpu".into()), d),
                (DigestChild::Nibble(4), d),
            ]]),
        ),
        (
            "leaf-request",
            encode_leaf_request(&LeafRequest {
                shard: 1,
                leaves: vec![(
                    "cpu".into(),
                    LeafCells::from([
                        (1, BTreeSet::new()),
                        (2, BTreeSet::from([0, 7])),
                        (0x1324, BTreeSet::new()),
                    ]),
                )],
            }),
        ),
        (
            "cells",
            encode_cells(&CellDigests {
                shard: 1,
                measurements: vec![(
                    "cpu".into(),
                    BTreeMap::from([(
                        0x1324,
                        BTreeMap::from([(0, d.digest.folded()), (9, d.digest.folded())]),
                    )]),
                )],
            }),
        ),
        (
            "leaves",
            encode_leaves(&Leaves {
                shard: 1,
                contents: vec![contents.clone()],
            }),
        ),
        (
            "ibf-request",
            encode_ibf_request(&IbfRequest {
                shard: 1,
                stratum: Stratum::Rest,
                cells: 96,
            }),
        ),
        (
            "ibf",
            encode_ibf(&IbfAnswer {
                shard: 1,
                ibf: {
                    let mut t = Ibf::new(6);
                    t.insert(0xdead_beef, 0x1234);
                    t.insert(7, 1);
                    t
                },
            }),
        ),
        (
            "exchange",
            encode_exchange(&Exchange {
                wanted: vec![3, 0xffff_ffff, 70_000],
                leaves: Leaves {
                    shard: 1,
                    contents: vec![contents],
                },
            }),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_kind_round_trips() {
        for (name, bytes) in sample_messages() {
            fuzz_decode(&bytes);
            let decoded = match name {
                "shards" => decode_shards(&bytes).map(drop),
                "digest-request" => decode_digest_request(&bytes).map(drop),
                "digest-answer" => decode_digest_answer(&bytes).map(drop),
                "leaf-request" => decode_leaf_request(&bytes).map(drop),
                "cells" => decode_cells(&bytes).map(drop),
                "ibf-request" => decode_ibf_request(&bytes).map(drop),
                "ibf" => decode_ibf(&bytes).map(drop),
                "exchange" => decode_exchange(&bytes).map(drop),
                _ => decode_leaves(&bytes).map(drop),
            };
            assert_eq!(decoded, Ok(()), "{name}");
            // Cut anywhere: refused.
            for cut in 0..bytes.len() {
                fuzz_decode(&bytes[..cut]);
            }
        }
    }

    #[test]
    fn large_leaves_are_compressed_and_a_bomb_is_refused() {
        let points: Vec<LeafPoint> = (0..2_000)
            .map(|i| LeafPoint {
                series: format!("cpu,host=h{}", i % 50).into(),
                field: "usage".into(),
                time: i,
                version: 7,
                value: FieldValue::Float(i as f64),
            })
            .collect();
        let l = Leaves {
            shard: 3,
            contents: vec![LeafContents {
                measurement: "cpu".into(),
                points,
                tombstones: Vec::new(),
            }],
        };
        let bytes = encode_leaves(&l);
        assert_eq!(bytes[6], 1, "compressed");
        assert_eq!(decode_leaves(&bytes), Ok(l));
        // A count that claims more than the message holds is refused before allocating.
        let mut body = vec![3u8];
        body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        let mut msg = MAGIC.to_vec();
        msg.extend_from_slice(&[VERSION, KIND_LEAVES, 0]);
        msg.extend_from_slice(&body);
        assert!(decode_leaves(&msg).is_err());
    }

    /// Points compared with their floats as bits (NaN is unequal to itself).
    fn as_bits(l: &Leaves) -> Vec<(String, i64, u64, String)> {
        l.contents
            .iter()
            .flat_map(|c| &c.points)
            .map(|p| {
                let v = match &p.value {
                    FieldValue::Float(f) => format!("f{:x}", f.to_bits()),
                    v => format!("{v:?}"),
                };
                (format!("{}/{}", p.series, p.field), p.time, p.version, v)
            })
            .collect()
    }

    fn leaves_of(points: Vec<LeafPoint>) -> Leaves {
        Leaves {
            shard: 1,
            contents: vec![LeafContents {
                measurement: "cpu".into(),
                points,
                tombstones: Vec::new(),
            }],
        }
    }

    #[test]
    fn every_float_time_and_version_comes_back_exactly() {
        let floats = [
            0.0,
            -0.0,
            50.23,
            -1.0,
            0.1 + 0.2,
            1e300,
            -1e-300,
            f64::MIN_POSITIVE / 3.0,
            f64::MAX,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            9_007_199_254_740_993.0,
            123_456.789_012_345,
        ];
        let extremes = [i64::MIN, i64::MAX, 0, -1, 7];
        let points: Vec<LeafPoint> = floats
            .iter()
            .enumerate()
            .map(|(i, &v)| LeafPoint {
                series: format!("cpu,host=h{}", i % 3).into(),
                field: "usage".into(),
                time: extremes[i % extremes.len()],
                version: [u64::MAX, 0, 5][i % 3],
                value: FieldValue::Float(v),
            })
            .collect();
        let l = leaves_of(points);
        let back = decode_leaves(&encode_leaves(&l)).unwrap();
        assert_eq!(as_bits(&back), as_bits(&l));
        // Two decimals take their digits, not 8 bytes.
        assert_eq!(decimal(50.23), Some((2, 5023)));
        assert_eq!(decimal(-0.0), None);
        assert_eq!(decimal(f64::NAN), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]
        /// Any points come back exactly as they went.
        #[test]
        fn points_round_trip(
            points in proptest::collection::vec(
                (0..4u8, 0..3u8, any::<i64>(), any::<u64>(), any::<u64>(), 0..6u8, any::<bool>()),
                0..60,
            ),
        ) {
            let points: Vec<LeafPoint> = points
                .into_iter()
                .map(|(s, f, time, version, bits, kind, small)| {
                    let n = if small { (bits % 20_000) as i64 - 10_000 } else { bits as i64 };
                    LeafPoint {
                        series: format!("cpu,host=h{s}").into(),
                        field: format!("f{f}").into(),
                        time: if small { n * 10 } else { time },
                        version,
                        value: match kind {
                            0 => FieldValue::Float(f64::from_bits(bits)),
                            1 => FieldValue::Float(n as f64 / 100.0),
                            2 => FieldValue::Integer(n),
                            3 => FieldValue::Unsigned(bits),
                            4 => FieldValue::String(format!("s{n}")),
                            _ => FieldValue::Boolean(small),
                        },
                    }
                })
                .collect();
            let l = leaves_of(points);
            let bytes = encode_leaves(&l);
            fuzz_decode(&bytes);
            let back = decode_leaves(&bytes).unwrap();
            prop_assert_eq!(as_bits(&back), as_bits(&l));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]
        /// Random bytes, bare or behind a valid header of each kind, never panic.
        #[test]
        fn random_bytes_never_panic(
            data in proptest::collection::vec(any::<u8>(), 0..512),
            kind in proptest::sample::select(vec![KIND_SHARDS, KIND_DIGEST_REQUEST, KIND_DIGEST_ANSWER, KIND_LEAF_REQUEST, KIND_LEAVES, KIND_CELLS, KIND_IBF_REQUEST, KIND_IBF, KIND_EXCHANGE]),
            compressed in any::<bool>(),
        ) {
            fuzz_decode(&data);
            let mut msg = MAGIC.to_vec();
            msg.extend_from_slice(&[VERSION, kind, u8::from(compressed)]);
            if compressed {
                msg.extend_from_slice(&zstd::bulk::compress(&data, 1).unwrap());
            } else {
                msg.extend_from_slice(&data);
            }
            fuzz_decode(&msg);
        }

        /// Mutations of valid messages never panic.
        #[test]
        fn mutated_messages_never_panic(
            which in 0..9usize,
            at in any::<proptest::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut msg = sample_messages()[which].1.clone();
            let i = at.index(msg.len());
            msg[i] = byte;
            fuzz_decode(&msg);
        }
    }
}
