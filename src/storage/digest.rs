//! Anti-entropy digests of a shard's logical points: what replicas compare to find their
//! differences without sending their data.
//!
//! A point's hash is a keyed 128-bit SipHash-1-3 over its series key, field, timestamp
//! and value (never its write version: two replicas that took the same client write stamp
//! different versions and must still agree). A range's digest is the wrapping sum and the
//! count of its points' hashes: order-independent, so compaction, merge order, batch
//! boundaries and file layout never matter, and a parent's digest is the sum of its
//! children's.
//!
//! Each shard keeps a tree of ranges per measurement. A leaf is one of 256 series buckets
//! (the top byte of a keyed hash of the series key) crossed with one of 256 time buckets
//! (the low byte of the time's 1/65536th of the shard's interval: buckets alias every 256
//! steps, so a leaf holds a few moments spread over the shard, and a divergence at one
//! moment reaches leaves holding little else). Its 16-bit position interleaves the two by
//! nibbles,
//!
//! ```text
//!   15      12 11       8 7        4 3        0
//!   +---------+----------+----------+----------+
//!   | time hi | series hi| time lo  | series lo|
//!   +---------+----------+----------+----------+
//! ```
//!
//! so the tree above the leaves is a 16-ary radix tree over that position (4 levels): a
//! node is a prefix of it. Descending from the root, a comparison narrows by time and by
//! series alternately, so a divergence clustered in time (a lost batch) or in series (a
//! lost series) reaches few leaves either way.
//!
//! Maintained incrementally and cheaply: a write, an overwrite or a delete only marks the
//! leaves it touches dirty (a map touch per point, with the time of arrival); a dirty
//! leaf's digest is recomputed from the shard's logical points (last write wins, deletes
//! applied) when it is next compared, and once settled. Clean digests are persisted in the
//! shard's directory ([`DIGEST_FILE`]) with the sequence number up to which they account
//! for the shard's records, so a restart recomputes only what replay marks dirty.

use crate::line_protocol::FieldValue;
use siphasher::sip::SipHasher13 as Sip64;
use siphasher::sip128::{Hasher128, SipHasher13};
use std::collections::{BTreeMap, HashMap};
use std::hash::Hasher;
use std::sync::OnceLock;

/// The persisted digests of a shard, in its directory.
pub(crate) const DIGEST_FILE: &str = "digest.bin";

/// Bits of a leaf's position; the tree has `POSITION_BITS / 4` levels below a measurement.
pub(crate) const POSITION_BITS: u8 = 16;
/// The depths of the radix tree below a measurement, in bits of the position.
pub(crate) const LEVEL_BITS: u8 = 4;

/// The key of every hash the digests use: the same on every replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DigestKey {
    k0: u64,
    k1: u64,
}

impl DigestKey {
    /// The key derived from a secret (any text); replicas must share it.
    pub(crate) fn from_secret(secret: &str) -> DigestKey {
        use sha2::Digest as _;
        let h = sha2::Sha256::digest(format!("shardkeeper digest key\0{secret}").as_bytes());
        let word = |at: usize| u64::from_le_bytes(h[at..at + 8].try_into().expect("8 bytes"));
        DigestKey {
            k0: word(0),
            k1: word(8),
        }
    }

    /// A fingerprint of the key, persisted with digests: digests made under another key
    /// are not reused.
    pub(crate) fn fingerprint(&self) -> u64 {
        let mut h = Sip64::new_with_keys(self.k0, self.k1);
        h.write(b"fingerprint");
        h.finish()
    }
}

/// The secret of the built-in key (`[anti_entropy] digest_key` replaces it).
pub(crate) const DEFAULT_DIGEST_SECRET: &str = "shardkeeper";

static KEY: OnceLock<DigestKey> = OnceLock::new();

/// Sets the process's digest key (once, at start-up, before any shard opens); later calls
/// change nothing. Returns the key in force.
pub(crate) fn set_key(key: DigestKey) -> DigestKey {
    *KEY.get_or_init(|| key)
}

/// The process's digest key.
pub(crate) fn key() -> DigestKey {
    *KEY.get_or_init(|| DigestKey::from_secret(DEFAULT_DIGEST_SECRET))
}

/// The digest of a set of points: the wrapping sum of their hashes, and how many.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Digest {
    pub sum: u128,
    pub count: u64,
}

impl Digest {
    pub fn add_hash(&mut self, hash: u128) {
        self.sum = self.sum.wrapping_add(hash);
        self.count += 1;
    }

    pub fn add(&mut self, other: &Digest) {
        self.sum = self.sum.wrapping_add(other.sum);
        self.count += other.count;
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0 && self.sum == 0
    }

    /// The digest as peers exchange and compare it: the sum folded to 64 bits (its halves
    /// xored). Half the bytes on the wire; a chance of 2^-64 that two differing ranges
    /// compare alike, per comparison. Folding a folded digest changes nothing.
    pub fn folded(&self) -> Digest {
        Digest {
            sum: u128::from((self.sum as u64) ^ ((self.sum >> 64) as u64)),
            count: self.count,
        }
    }
}

/// The keyed 128-bit hash of one logical point.
pub(crate) fn point_hash(
    key: &DigestKey,
    series: &str,
    field: &str,
    time: i64,
    value: &FieldValue,
) -> u128 {
    let mut h = SipHasher13::new_with_keys(key.k0, key.k1);
    h.write(&(series.len() as u64).to_le_bytes());
    h.write(series.as_bytes());
    h.write(&(field.len() as u64).to_le_bytes());
    h.write(field.as_bytes());
    h.write(&time.to_le_bytes());
    match value {
        FieldValue::Float(v) => {
            h.write(&[0]);
            h.write(&v.to_bits().to_le_bytes());
        }
        FieldValue::Integer(v) => {
            h.write(&[1]);
            h.write(&v.to_le_bytes());
        }
        FieldValue::Unsigned(v) => {
            h.write(&[2]);
            h.write(&v.to_le_bytes());
        }
        FieldValue::String(s) => {
            h.write(&[3]);
            h.write(&(s.len() as u64).to_le_bytes());
            h.write(s.as_bytes());
        }
        FieldValue::Boolean(b) => {
            h.write(&[4, u8::from(*b)]);
        }
    }
    h.finish128().as_u128()
}

/// The keyed hash of a point's series and field (the first half of its position hash,
/// computed once per column).
pub(crate) fn series_field_hash(key: &DigestKey, series: &str, field: &str) -> u64 {
    let mut h = Sip64::new_with_keys(key.k0 ^ 0x706f_7369_7469_6f6e, key.k1);
    h.write(&(series.len() as u64).to_le_bytes());
    h.write(series.as_bytes());
    h.write(field.as_bytes());
    h.finish()
}

/// The 64-bit hash of a point's position (series, field, time), not its value: two
/// replicas holding different values at one position agree on it (set reconciliation
/// keys points by it).
pub(crate) fn position_hash(series_field: u64, time: i64) -> u64 {
    // splitmix64's finaliser over the two: every bit of each reaches every bit.
    let mut z = series_field ^ (time as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d4_9bb1_3311_11eb);
    z ^ (z >> 31)
}

/// The series bucket of a series key (the top byte of a keyed 64-bit hash).
pub(crate) fn series_bucket(key: &DigestKey, series: &str) -> u8 {
    let mut h = Sip64::new_with_keys(key.k1, key.k0);
    h.write(series.as_bytes());
    (h.finish() >> 56) as u8
}

/// Fine time steps across a shard's interval.
pub(crate) const TIME_STEPS: i128 = 1 << 16;

/// The fine step of `time` in a shard covering [start, end): its 1/65536th of the
/// interval (times outside it are put in the first or last step).
pub(crate) fn time_step(start: i64, end: i64, time: i64) -> i128 {
    let width = (i128::from(end) - i128::from(start)).max(1);
    let at = (i128::from(time) - i128::from(start)) * TIME_STEPS / width;
    at.clamp(0, TIME_STEPS - 1)
}

/// The time bucket of `time`: the low 8 bits of its fine step. Buckets alias across the
/// interval (steps 256 apart share one), so a leaf holds a few moments spread over the
/// shard rather than a 256th of it: a divergence at one moment (a lost batch) reaches
/// leaves that hold little else, whatever part of the interval the data covers.
pub(crate) fn time_bucket(start: i64, end: i64, time: i64) -> u8 {
    (time_step(start, end, time) & 0xff) as u8
}

/// The cell of `time` within its leaf: the high byte of its fine step (the leaf's time
/// bucket is the low byte), so a leaf's cells are the moments aliased into it. A repair
/// compares the cells of a differing leaf before sending points, and sends only those of
/// the cells that differ.
pub(crate) fn time_cell(start: i64, end: i64, time: i64) -> u8 {
    (time_step(start, end, time) >> 8) as u8
}

/// The fine step of a leaf's time bucket and one of its cells.
pub(crate) fn cell_step(time_bucket: u8, cell: u8) -> i128 {
    (i128::from(cell) << 8) | i128::from(time_bucket)
}

/// Chosen leaves of a measurement by position, each with the cells chosen of it (none
/// listed: the whole leaf).
pub(crate) type LeafCells = BTreeMap<u16, std::collections::BTreeSet<u8>>;

/// Digests of the cells of leaves holding a point, by position and cell.
pub(crate) type LeafCellDigests = BTreeMap<u16, BTreeMap<u8, Digest>>;

/// Whether `cell` is among `chosen` (none listed: every cell).
pub(crate) fn cell_chosen(chosen: &std::collections::BTreeSet<u8>, cell: u8) -> bool {
    chosen.is_empty() || chosen.contains(&cell)
}

/// Adds `more` to the leaves and cells chosen in `into` (a whole leaf absorbs its cells).
pub(crate) fn merge_cells(into: &mut LeafCells, more: &LeafCells) {
    for (pos, cells) in more {
        match into.get_mut(pos) {
            None => {
                into.insert(*pos, cells.clone());
            }
            Some(have) if have.is_empty() => {}
            Some(have) if cells.is_empty() => have.clear(),
            Some(have) => have.extend(cells),
        }
    }
}

/// The time buckets that times within [from, to] fall in.
pub(crate) fn time_buckets_of_range(start: i64, end: i64, from: i64, to: i64) -> [bool; 256] {
    let mut out = [false; 256];
    let (a, b) = (
        time_step(start, end, from),
        time_step(start, end, to.max(from)),
    );
    if b - a >= 255 {
        return [true; 256];
    }
    for step in a..=b {
        out[(step & 0xff) as usize] = true;
    }
    out
}

/// A leaf's position from its time and series buckets (nibbles interleaved).
pub(crate) fn leaf_position(time_bucket: u8, series_bucket: u8) -> u16 {
    let (t, s) = (u16::from(time_bucket), u16::from(series_bucket));
    ((t >> 4) << 12) | ((s >> 4) << 8) | ((t & 15) << 4) | (s & 15)
}

/// The time and series buckets of a leaf's position.
pub(crate) fn position_buckets(pos: u16) -> (u8, u8) {
    let t = ((pos >> 12) << 4) | ((pos >> 4) & 15);
    let s = (((pos >> 8) & 15) << 4) | (pos & 15);
    (t as u8, s as u8)
}

/// A node of a measurement's tree: the leaves whose position starts with `prefix`'s
/// `bits` bits (0 bits: the measurement's root; 16: one leaf).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    pub bits: u8,
    pub prefix: u16,
}

impl Prefix {
    pub const ROOT: Prefix = Prefix { bits: 0, prefix: 0 };

    pub fn is_leaf(&self) -> bool {
        self.bits >= POSITION_BITS
    }

    /// Whether the prefix is well formed (a level of the tree, no bits beyond it).
    pub fn is_valid(&self) -> bool {
        self.bits <= POSITION_BITS
            && self.bits % LEVEL_BITS == 0
            && (self.bits == POSITION_BITS || u32::from(self.prefix) >> self.bits == 0)
    }

    /// The range of leaf positions under the node.
    pub fn positions(&self) -> std::ops::RangeInclusive<u16> {
        if self.bits == 0 {
            return 0..=u16::MAX;
        }
        let shift = POSITION_BITS - self.bits;
        let first = u32::from(self.prefix) << shift;
        let last = first + (1u32 << shift) - 1;
        first as u16..=last as u16
    }

    /// The child `nibble` (0-15) of the node.
    pub fn child(&self, nibble: u8) -> Prefix {
        Prefix {
            bits: self.bits + LEVEL_BITS,
            prefix: (self.prefix << LEVEL_BITS) | u16::from(nibble & 15),
        }
    }

    /// Which child of a node `bits` deep the leaf `pos` is under.
    fn child_of(bits: u8, pos: u16) -> u8 {
        ((pos >> (POSITION_BITS - bits - LEVEL_BITS)) & 15) as u8
    }
}

/// A leaf of a shard's tree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Leaf {
    /// As last computed (stale while dirty).
    pub digest: Digest,
    /// 0: clean; otherwise the generation of the latest change not accounted for.
    pub dirty: u64,
    /// When the latest write or delete touching the leaf arrived (ns since the epoch).
    pub written: i64,
}

/// A node's digest as compared: the sum of its settled leaves, and whether any leaf under
/// it is not settled (written within the settle time, or dirty and not recomputed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeDigest {
    pub digest: Digest,
    pub unsettled: bool,
}

/// A shard's tree: leaves by measurement, by position.
#[derive(Debug, Clone, Default)]
pub(crate) struct DigestTree {
    measurements: HashMap<String, BTreeMap<u16, Leaf>, foldhash::fast::RandomState>,
    /// Generations of changes: a recomputation installs a digest only if the leaf was not
    /// changed again since it began.
    generation: u64,
    /// No usable persisted digests: every leaf is to be computed from the shard's points.
    pub rebuild: bool,
    /// Changed since last persisted.
    pub unpersisted: bool,
    /// Every leaf summed, while no leaf changed since: a check of an unchanged shard
    /// answers its root and its (empty) recomputation from it, without a walk of the
    /// leaves. Dropped by every change; made again by [`DigestTree::summarize`].
    summary: Option<Summary>,
}

/// What every leaf of a tree adds up to.
#[derive(Debug, Clone, Copy, Default)]
struct Summary {
    /// The sum of the clean leaves' digests.
    digest: Digest,
    /// Whether any leaf is dirty.
    dirty: bool,
    /// The latest arrival of any leaf.
    written: i64,
}

/// What a recomputation is to cover of one measurement: its dirty leaves (or, for a
/// rebuild, all of them), as of `generation`.
#[derive(Debug, Clone)]
pub(crate) struct Recompute {
    pub measurement: String,
    /// None: every position.
    pub positions: Option<std::collections::BTreeSet<u16>>,
    pub generation: u64,
}

impl DigestTree {
    /// Marks the leaf of one point dirty (a write or an overwrite) that arrived at `now`
    /// (None: a repair's, which is no write in flight and leaves the arrival as it was).
    #[cfg(test)]
    pub(crate) fn touch(&mut self, measurement: &str, pos: u16, now: Option<i64>) {
        self.touch_all(measurement, std::iter::once(pos), now);
    }

    /// Marks leaves of one measurement dirty (points written, or overwritten, together)
    /// that arrived at `now` (None: a repair's, which is no write in flight and leaves
    /// the arrivals as they were).
    pub(crate) fn touch_all(
        &mut self,
        measurement: &str,
        positions: impl Iterator<Item = u16>,
        now: Option<i64>,
    ) {
        self.generation += 1;
        self.unpersisted = true;
        self.summary = None;
        let generation = self.generation;
        let leaves = match self.measurements.get_mut(measurement) {
            Some(leaves) => leaves,
            None => self.measurements.entry(measurement.to_owned()).or_default(),
        };
        for pos in positions {
            let leaf = leaves.entry(pos).or_default();
            leaf.dirty = generation;
            if let Some(now) = now {
                leaf.written = now;
            }
        }
    }

    /// Marks dirty the leaves a delete may change: those of `measurement` whose series
    /// bucket is in `series` (None: any) and whose time bucket is in [from, to].
    pub(crate) fn touch_deleted(
        &mut self,
        measurement: &str,
        series: Option<&std::collections::HashSet<u8>>,
        times: &[bool; 256],
        now: Option<i64>,
    ) {
        self.generation += 1;
        self.unpersisted = true;
        self.summary = None;
        let generation = self.generation;
        let Some(leaves) = self.measurements.get_mut(measurement) else {
            return;
        };
        for (pos, leaf) in leaves.iter_mut() {
            let (t, s) = position_buckets(*pos);
            if !times[t as usize] || series.is_some_and(|set| !set.contains(&s)) {
                continue;
            }
            leaf.dirty = generation;
            if let Some(now) = now {
                leaf.written = now;
            }
        }
    }

    /// What is to be recomputed before a comparison as of `settled_before` (leaves written
    /// since are left dirty): per measurement, the dirty settled leaves.
    pub(crate) fn to_recompute(&self, settled_before: i64) -> Vec<Recompute> {
        if self.summary.is_some_and(|s| !s.dirty) {
            return Vec::new();
        }
        let mut out: Vec<Recompute> = self
            .measurements
            .iter()
            .filter_map(|(m, leaves)| {
                let positions: std::collections::BTreeSet<u16> = leaves
                    .iter()
                    .filter(|(_, l)| l.dirty != 0 && l.written < settled_before)
                    .map(|(p, _)| *p)
                    .collect();
                (!positions.is_empty()).then(|| Recompute {
                    measurement: m.clone(),
                    positions: Some(positions),
                    generation: self.generation,
                })
            })
            .collect();
        out.sort_by(|a, b| a.measurement.cmp(&b.measurement));
        out
    }

    /// Installs recomputed digests for the leaves `done` covered (those absent from
    /// `digests` hold no point), but for leaves changed again since it began.
    pub(crate) fn install(&mut self, done: &Recompute, digests: BTreeMap<u16, Digest>) {
        self.unpersisted = true;
        self.summary = None;
        let leaves = self
            .measurements
            .entry(done.measurement.clone())
            .or_default();
        let covered = |pos: &u16| done.positions.as_ref().is_none_or(|p| p.contains(pos));
        for (pos, leaf) in leaves.iter_mut() {
            if covered(pos) && leaf.dirty <= done.generation {
                leaf.digest = digests.get(pos).copied().unwrap_or_default();
                leaf.dirty = 0;
            }
        }
        for (pos, digest) in digests {
            // A leaf a rebuild found that the tree did not know (no write since the start).
            leaves.entry(pos).or_insert(Leaf {
                digest,
                dirty: 0,
                written: 0,
            });
        }
        leaves.retain(|_, l| l.dirty != 0 || !l.digest.is_empty());
        if leaves.is_empty() {
            self.measurements.remove(&done.measurement);
        }
    }

    /// Everything to compute for a rebuild: every measurement of the shard, whole.
    pub(crate) fn rebuild_plan(
        &self,
        measurements: impl IntoIterator<Item = String>,
    ) -> Vec<Recompute> {
        measurements
            .into_iter()
            .map(|measurement| Recompute {
                measurement,
                positions: None,
                generation: self.generation,
            })
            .collect()
    }

    /// The measurements with leaves, sorted.
    pub(crate) fn measurements(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.measurements.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    #[cfg(test)]
    pub(crate) fn leaves(&self, measurement: &str) -> Option<&BTreeMap<u16, Leaf>> {
        self.measurements.get(measurement)
    }

    /// The children of a node with a point or an unsettled leaf, by nibble.
    pub(crate) fn children(
        &self,
        measurement: &str,
        node: Prefix,
        settled_before: i64,
    ) -> Vec<(u8, NodeDigest)> {
        let mut out: [NodeDigest; 16] = Default::default();
        let mut seen = [false; 16];
        if node.is_leaf() {
            return Vec::new();
        }
        if let Some(leaves) = self.measurements.get(measurement) {
            for (pos, leaf) in leaves.range(node.positions()) {
                let child = Prefix::child_of(node.bits, *pos) as usize;
                seen[child] = true;
                fold_leaf(&mut out[child], leaf, settled_before);
            }
        }
        (0..16u8)
            .filter(|&i| {
                seen[i as usize]
                    && (out[i as usize].unsettled || !out[i as usize].digest.is_empty())
            })
            .map(|i| (i, out[i as usize]))
            .collect()
    }

    /// Every measurement's root digest, as of `settled_before`.
    pub(crate) fn measurement_roots(&self, settled_before: i64) -> Vec<(String, NodeDigest)> {
        let mut out: Vec<(String, NodeDigest)> = self
            .measurements
            .iter()
            .map(|(m, leaves)| {
                let mut d = NodeDigest::default();
                for leaf in leaves.values() {
                    fold_leaf(&mut d, leaf, settled_before);
                }
                (m.clone(), d)
            })
            .filter(|(_, d)| d.unsettled || !d.digest.is_empty())
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Whether [`DigestTree::summarize`] has something to do.
    pub(crate) fn needs_summary(&self) -> bool {
        self.summary.is_none()
    }

    /// Sums every leaf once, for the checks that find the tree unchanged since.
    pub(crate) fn summarize(&mut self) {
        let mut s = Summary::default();
        for leaf in self.measurements.values().flat_map(BTreeMap::values) {
            s.dirty |= leaf.dirty != 0;
            s.written = s.written.max(leaf.written);
            if leaf.dirty == 0 {
                s.digest.add(&leaf.digest);
            }
        }
        self.summary = Some(s);
    }

    /// The shard's root: every measurement's, summed.
    pub(crate) fn root(&self, settled_before: i64) -> NodeDigest {
        if let Some(s) = self.summary {
            if !s.dirty && s.written < settled_before {
                return NodeDigest {
                    digest: s.digest,
                    unsettled: false,
                };
            }
        }
        let mut out = NodeDigest::default();
        for (_, d) in self.measurement_roots(settled_before) {
            out.digest.add(&d.digest);
            out.unsettled |= d.unsettled;
        }
        out
    }

    /// How many leaves the tree holds, and how many are dirty.
    pub(crate) fn leaf_counts(&self) -> (usize, usize) {
        let all = self.measurements.values().map(BTreeMap::len).sum();
        let dirty = self
            .measurements
            .values()
            .flat_map(|l| l.values())
            .filter(|l| l.dirty != 0)
            .count();
        (all, dirty)
    }

    /// The tree as persisted: [`DIGEST_FILE`]'s bytes, accounting for the shard's records
    /// up to sequence number `upto`.
    pub(crate) fn encode(&self, shard: u64, incarnation: u64, upto: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(FILE_MAGIC);
        out.extend_from_slice(&key().fingerprint().to_le_bytes());
        for v in [shard, incarnation, upto] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.push(u8::from(self.rebuild));
        let names = self.measurements();
        out.extend_from_slice(&(names.len() as u32).to_le_bytes());
        for name in names {
            let leaves = &self.measurements[name];
            out.extend_from_slice(&(name.len() as u32).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&(leaves.len() as u32).to_le_bytes());
            for (pos, leaf) in leaves {
                out.extend_from_slice(&pos.to_le_bytes());
                out.extend_from_slice(&leaf.digest.sum.to_le_bytes());
                out.extend_from_slice(&leaf.digest.count.to_le_bytes());
                out.push(u8::from(leaf.dirty != 0));
                out.extend_from_slice(&leaf.written.to_le_bytes());
            }
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// A tree as [`DigestTree::encode`] wrote it, if it is whole, made under this
    /// process's key and for this shard: its shard, incarnation and `upto`.
    pub(crate) fn decode(bytes: &[u8]) -> Result<(DigestTree, u64, u64, u64), String> {
        if bytes.len() < FILE_MAGIC.len() + 4 {
            return Err("too short".into());
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32c::crc32c(body).to_le_bytes() != crc {
            return Err("checksum mismatch".into());
        }
        let mut r = Reader { bytes: body, at: 0 };
        if r.take(FILE_MAGIC.len())? != FILE_MAGIC {
            return Err("not a digest file".into());
        }
        if r.u64()? != key().fingerprint() {
            return Err("made under another digest key".into());
        }
        let (shard, incarnation, upto) = (r.u64()?, r.u64()?, r.u64()?);
        let mut tree = DigestTree {
            rebuild: r.take(1)?[0] != 0,
            ..DigestTree::default()
        };
        let names = r.u32()?;
        for _ in 0..names {
            let len = r.u32()? as usize;
            let name = std::str::from_utf8(r.take(len)?)
                .map_err(|e| e.to_string())?
                .to_owned();
            let count = r.u32()?;
            let mut leaves = BTreeMap::new();
            for _ in 0..count {
                let pos = u16::from_le_bytes(r.take(2)?.try_into().expect("2 bytes"));
                let sum = u128::from_le_bytes(r.take(16)?.try_into().expect("16 bytes"));
                let count = r.u64()?;
                let dirty = r.take(1)?[0] != 0;
                let written = r.u64()? as i64;
                leaves.insert(
                    pos,
                    Leaf {
                        digest: Digest { sum, count },
                        dirty: u64::from(dirty),
                        written,
                    },
                );
            }
            tree.measurements.insert(name, leaves);
        }
        if r.at != body.len() {
            return Err("trailing bytes".into());
        }
        // Dirty leaves carry generation 1: a recomputation starts above it.
        tree.generation = 1;
        Ok((tree, shard, incarnation, upto))
    }
}

fn fold_leaf(out: &mut NodeDigest, leaf: &Leaf, settled_before: i64) {
    if leaf.dirty != 0 || leaf.written >= settled_before {
        out.unsettled = true;
    }
    if leaf.dirty == 0 && leaf.written < settled_before {
        out.digest.add(&leaf.digest);
    }
}

const FILE_MAGIC: &[u8] = b"SKDIGEST1";

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or("cut short")?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_interleave_time_and_series_and_round_trip() {
        for t in [0u8, 1, 15, 16, 200, 255] {
            for s in [0u8, 7, 16, 128, 255] {
                let pos = leaf_position(t, s);
                assert_eq!(position_buckets(pos), (t, s));
            }
        }
        assert_eq!(leaf_position(0x12, 0x34), 0x1324);
        let node = Prefix::ROOT.child(1).child(3);
        assert_eq!(node.positions(), 0x1300..=0x13ff);
        assert!(node.positions().contains(&leaf_position(0x12, 0x34)));
        assert!(Prefix {
            bits: 16,
            prefix: 0x1324
        }
        .is_leaf());
        assert!(!Prefix {
            bits: 4,
            prefix: 0x10
        }
        .is_valid());
    }

    #[test]
    fn time_buckets_alias_across_the_shard_and_ranges_find_theirs() {
        let (start, end) = (1_000, 1_000 + 7 * 86_400_000_000_000i64);
        let step = (end - start) / 65_536 + 1;
        assert_eq!(time_bucket(start, end, start), 0);
        assert_eq!(time_bucket(start, end, start + step), 1);
        // 256 steps apart: one bucket.
        assert_eq!(
            time_bucket(start, end, start + 256 * step + 3),
            time_bucket(start, end, start + 3)
        );
        assert_eq!(time_bucket(start, end, i64::MIN), 0);
        assert_eq!(time_bucket(start, end, end + 5), 255);
        for (from, to) in [
            (start, start),
            (start + 10 * step, start + 12 * step),
            (start + 250 * step, start + 260 * step),
        ] {
            let mask = time_buckets_of_range(start, end, from, to);
            for t in [from, to, (from + to) / 2] {
                assert!(mask[time_bucket(start, end, t) as usize]);
            }
            assert!(mask.iter().filter(|&&b| b).count() <= 12);
        }
        assert!(time_buckets_of_range(start, end, start, end)
            .iter()
            .all(|&b| b));
    }

    #[test]
    fn cells_split_a_leaf_by_the_moments_aliased_into_it() {
        let (start, end) = (0, 65_536 * 1_000);
        for t in [0, 999, 1_000, 256_000, 300_123, 65_535_999] {
            let step = time_step(start, end, t);
            let (b, c) = (time_bucket(start, end, t), time_cell(start, end, t));
            assert_eq!(cell_step(b, c), step);
        }
        let mut into = LeafCells::from([(1, [3u8].into()), (2, Default::default())]);
        merge_cells(
            &mut into,
            &LeafCells::from([(1, [4u8].into()), (2, [5u8].into()), (3, [6u8].into())]),
        );
        assert_eq!(
            into,
            LeafCells::from([
                (1, [3u8, 4].into()),
                (2, Default::default()),
                (3, [6u8].into())
            ])
        );
        merge_cells(&mut into, &LeafCells::from([(1, Default::default())]));
        assert!(into[&1].is_empty() && cell_chosen(&into[&1], 200));
        let d = Digest {
            sum: (7u128 << 64) | 5,
            count: 3,
        };
        assert_eq!(d.folded().sum, 2);
        assert_eq!(d.folded().folded(), d.folded());
    }

    #[test]
    fn the_version_is_not_hashed_and_everything_else_is() {
        let k = DigestKey::from_secret("s");
        let h = |s: &str, f: &str, t: i64, v: FieldValue| point_hash(&k, s, f, t, &v);
        let base = h("cpu,host=a", "v", 1, FieldValue::Float(1.0));
        assert_ne!(base, h("cpu,host=b", "v", 1, FieldValue::Float(1.0)));
        assert_ne!(base, h("cpu,host=a", "w", 1, FieldValue::Float(1.0)));
        assert_ne!(base, h("cpu,host=a", "v", 2, FieldValue::Float(1.0)));
        assert_ne!(base, h("cpu,host=a", "v", 1, FieldValue::Float(2.0)));
        assert_ne!(
            h("m", "v", 1, FieldValue::Integer(1)),
            h("m", "v", 1, FieldValue::Unsigned(1))
        );
        // Another key, another hash.
        let other = DigestKey::from_secret("t");
        assert_ne!(
            base,
            point_hash(&other, "cpu,host=a", "v", 1, &FieldValue::Float(1.0))
        );
    }

    #[test]
    fn a_tree_persists_and_refuses_damage() {
        let mut tree = DigestTree::default();
        tree.touch("cpu", 5, Some(10));
        tree.touch("mem", 7, Some(10));
        let plan = tree.to_recompute(i64::MAX);
        for p in &plan {
            let mut d = Digest::default();
            d.add_hash(42);
            let pos = *p.positions.as_ref().unwrap().iter().next().unwrap();
            tree.install(p, BTreeMap::from([(pos, d)]));
        }
        tree.touch("cpu", 9, Some(20));
        let bytes = tree.encode(3, 4, 99);
        let (back, shard, inc, upto) = DigestTree::decode(&bytes).unwrap();
        assert_eq!((shard, inc, upto), (3, 4, 99));
        assert_eq!(back.root(15), tree.root(15));
        assert_eq!(back.leaf_counts(), (3, 1));
        for cut in [0, 5, bytes.len() - 1] {
            assert!(DigestTree::decode(&bytes[..cut]).is_err());
        }
        let mut flipped = bytes.clone();
        flipped[20] ^= 1;
        assert!(DigestTree::decode(&flipped).is_err());
    }

    #[test]
    fn a_summary_answers_for_an_unchanged_tree_and_goes_with_a_change() {
        let mut tree = DigestTree::default();
        tree.touch("cpu", 1, Some(0));
        tree.touch("mem", 2, Some(0));
        for plan in tree.to_recompute(i64::MAX) {
            let pos = *plan.positions.as_ref().unwrap().iter().next().unwrap();
            tree.install(&plan, BTreeMap::from([(pos, Digest { sum: 3, count: 1 })]));
        }
        let walked = tree.root(10);
        tree.summarize();
        assert_eq!(tree.root(10), walked);
        assert_eq!(walked.digest, Digest { sum: 6, count: 2 });
        // Not settled as of 0: the walk says so, the summary does not answer.
        assert!(tree.root(0).unsettled);
        tree.touch("cpu", 1, Some(5));
        assert!(tree.needs_summary());
        assert!(tree.root(10).unsettled);
        assert_eq!(tree.to_recompute(10).len(), 1);
        tree.summarize();
        assert_eq!(
            tree.to_recompute(10).len(),
            1,
            "a dirty leaf is still recomputed"
        );
    }

    #[test]
    fn a_leaf_changed_during_a_recomputation_stays_dirty() {
        let mut tree = DigestTree::default();
        tree.touch("cpu", 1, Some(0));
        let plan = tree.to_recompute(i64::MAX);
        tree.touch("cpu", 1, Some(5));
        tree.install(&plan[0], BTreeMap::from([(1, Digest { sum: 1, count: 1 })]));
        assert_eq!(tree.leaf_counts(), (1, 1));
        assert!(tree.root(i64::MAX).unsettled);
    }
}
