//! Set reconciliation of two replicas' points with an invertible Bloom filter, keyed by a
//! point's **position** (series, field, time) and carrying a hash of its value: one side's
//! table subtracted from the other's holds only the positions where the two differ (a
//! point only one side holds, or one both hold with different values), which peeling
//! recovers when the table has some 1.5 cells per difference. Bytes are then proportional
//! to the difference, not to the tree nodes above it (a divergence scattered over a shard
//! makes nearly every node of a tree walk differ), and a changed value counts once, not
//! twice (as it would in a table of whole points: the old value and the new).
//!
//! A cell holds sums in GF(2^16), where adding is xor: the values' hashes (`weight`, never
//! zero for one point), the key's two 16-bit halves each times its point's value hash
//! (`key_hi`, `key_lo`) and a check of the key times the value hash (`check`), with a
//! count of points modulo 256. A cell left with one position's difference is *pure*:
//! its key is `key_hi / weight` and `key_lo / weight`, whatever the values were (the one
//! side's, or the two sides' summed), and the count tells which kind it is: 1, a point
//! only the first table holds; 255, only the second; 0, both, with different values.
//!
//! A key stands for every point of one side at that position key: a collision within a
//! side only sends an extra point (applying it again changes nothing). Two differences
//! that cancel (value hashes alike: a chance of 2^-16 per changed value) are left to the
//! tree walk that follows every reconciliation: nothing is ever taken as equal without
//! the full-width digests' say.

use std::sync::OnceLock;

/// Cells of one table at most (some 1.4 million differences).
pub(crate) const MAX_CELLS: usize = 1 << 21;
/// Bytes of a cell on the wire.
pub(crate) const CELL_BYTES: usize = 9;
/// One key in this many is in the sample stratum, whose table (decoded first) sizes the
/// table of the rest.
pub(crate) const SAMPLE: u32 = 16;

/// The 32-bit key of a point's position, from its 64-bit position hash.
pub(crate) fn key_of(position: u64) -> u32 {
    (position ^ (position >> 32)) as u32
}

/// The 16-bit hash of a point's value a cell carries (never zero), from its 128-bit
/// digest hash (which covers the value).
pub(crate) fn value_hash(hash: u128) -> u16 {
    let folded = (hash as u64) ^ ((hash >> 64) as u64);
    match (folded ^ (folded >> 16) ^ (folded >> 32) ^ (folded >> 48)) as u16 {
        0 => 1,
        h => h,
    }
}

fn mix(key: u32, salt: u64) -> u64 {
    // splitmix64's finaliser: every bit of the key reaches every bit of the result.
    let mut z = u64::from(key).wrapping_add(salt.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d4_9bb1_3311_11eb);
    z ^ (z >> 31)
}

fn check_of(key: u32) -> u16 {
    match mix(key, 7) as u16 {
        0 => 1,
        c => c,
    }
}

/// GF(2^16) by log and antilog tables over the primitive polynomial x^16 + x^12 + x^3 +
/// x + 1 (built once, 384 KiB).
struct Field {
    log: Vec<u16>,
    exp: Vec<u16>,
}

const ORDER: usize = 65_535;

fn field() -> &'static Field {
    static FIELD: OnceLock<Field> = OnceLock::new();
    FIELD.get_or_init(|| {
        let mut log = vec![0u16; 1 << 16];
        let mut exp = vec![0u16; 2 * ORDER];
        let mut x: u32 = 1;
        for i in 0..ORDER {
            exp[i] = x as u16;
            exp[i + ORDER] = x as u16;
            log[x as usize] = i as u16;
            x <<= 1;
            if x & 0x1_0000 != 0 {
                x ^= 0x1_100b;
            }
        }
        Field { log, exp }
    })
}

fn mul(f: &Field, a: u16, b: u16) -> u16 {
    if a == 0 || b == 0 {
        return 0;
    }
    f.exp[f.log[a as usize] as usize + f.log[b as usize] as usize]
}

/// `a / b`, `b` not zero.
fn div(f: &Field, a: u16, b: u16) -> u16 {
    if a == 0 {
        return 0;
    }
    f.exp[f.log[a as usize] as usize + ORDER - f.log[b as usize] as usize]
}

/// Which stratum a key is in: the sample (one in [`SAMPLE`]) or the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stratum {
    Sample,
    Rest,
}

impl Stratum {
    pub(crate) fn of(key: u32) -> Stratum {
        match (mix(key, 11) >> 32) as u32 % SAMPLE {
            0 => Stratum::Sample,
            _ => Stratum::Rest,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Cell {
    /// Points added, modulo 256: a pure cell counts 1, 255 or 0.
    pub count: u8,
    /// The sum of the points' value hashes.
    pub weight: u16,
    /// The sums of each key's high and low halves times its point's value hash.
    pub key_hi: u16,
    pub key_lo: u16,
    /// The sum of each key's check times its point's value hash.
    pub check: u16,
}

/// One point's contribution to its cells (the same in each of the three).
#[derive(Debug, Clone, Copy)]
struct Term {
    weight: u16,
    key_hi: u16,
    key_lo: u16,
    check: u16,
}

impl Term {
    fn of(f: &Field, key: u32, weight: u16) -> Term {
        Term {
            weight,
            key_hi: mul(f, (key >> 16) as u16, weight),
            key_lo: mul(f, key as u16, weight),
            check: mul(f, check_of(key), weight),
        }
    }
}

impl Cell {
    fn add(&mut self, t: &Term, count: u8) {
        self.count = self.count.wrapping_add(count);
        self.weight ^= t.weight;
        self.key_hi ^= t.key_hi;
        self.key_lo ^= t.key_lo;
        self.check ^= t.check;
    }

    fn is_zero(&self) -> bool {
        *self == Cell::default()
    }

    /// The key of a cell holding one position's difference (checked; a mixture passes
    /// with a chance of about 2^-16, and must then also name this cell among its three).
    fn pure_key(&self, f: &Field) -> Option<u32> {
        if self.weight == 0 || !matches!(self.count, 0 | 1 | 255) {
            return None;
        }
        let key = (u32::from(div(f, self.key_hi, self.weight)) << 16)
            | u32::from(div(f, self.key_lo, self.weight));
        (mul(f, check_of(key), self.weight) == self.check).then_some(key)
    }
}

/// An invertible Bloom filter of point positions, in three equal parts (a key has one
/// cell in each, so its three cells are distinct).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ibf {
    pub cells: Vec<Cell>,
}

/// What peeling a difference recovered, by position key: the points only the first
/// table holds, those only the second holds, and those both hold with different values.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Decoded {
    pub ours: Vec<u32>,
    pub theirs: Vec<u32>,
    pub changed: Vec<u32>,
}

impl Ibf {
    /// An empty table of about `cells` cells (a multiple of three, at least three).
    pub(crate) fn new(cells: usize) -> Ibf {
        let n = cells.clamp(3, MAX_CELLS).div_ceil(3) * 3;
        Ibf {
            cells: vec![Cell::default(); n],
        }
    }

    fn slots(&self, key: u32) -> [usize; 3] {
        let part = (self.cells.len() / 3) as u64;
        [0u64, 1, 2].map(|i| (i * part + mix(key, 1 + i) % part) as usize)
    }

    /// Adds a point at position `key` whose value hashes to `value` (see [`value_hash`]).
    pub(crate) fn insert(&mut self, key: u32, value: u16) {
        let t = Term::of(field(), key, value.max(1));
        for s in self.slots(key) {
            self.cells[s].add(&t, 1);
        }
    }

    /// Takes `other` (a table of the same size) away from this one: what remains holds
    /// only the positions where they differ.
    pub(crate) fn subtract(&mut self, other: &Ibf) -> Result<(), String> {
        if other.cells.len() != self.cells.len() {
            return Err(format!(
                "a table of {} cells, not {}",
                other.cells.len(),
                self.cells.len()
            ));
        }
        for (a, b) in self.cells.iter_mut().zip(&other.cells) {
            a.count = a.count.wrapping_sub(b.count);
            a.weight ^= b.weight;
            a.key_hi ^= b.key_hi;
            a.key_lo ^= b.key_lo;
            a.check ^= b.check;
        }
        Ok(())
    }

    /// Peels a difference (see [`Ibf::subtract`]); None if it does not come apart whole
    /// (too small a table for the difference, or differences that cancelled).
    pub(crate) fn decode(mut self) -> Option<Decoded> {
        let f = field();
        let mut out = Decoded::default();
        let mut pure: Vec<usize> = (0..self.cells.len()).collect();
        while let Some(i) = pure.pop() {
            let c = self.cells[i];
            let Some(key) = c.pure_key(f) else {
                continue;
            };
            let slots = self.slots(key);
            if !slots.contains(&i) {
                continue; // a mixture whose check happens to agree
            }
            match c.count {
                1 => out.ours.push(key),
                255 => out.theirs.push(key),
                _ => out.changed.push(key),
            }
            let t = Term::of(f, key, c.weight);
            for s in slots {
                self.cells[s].add(&t, c.count.wrapping_neg());
                pure.push(s);
            }
        }
        self.cells.iter().all(Cell::is_zero).then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> u32 {
        mix(i, 99) as u32
    }

    fn table(points: impl Iterator<Item = (u32, u16)>, cells: usize) -> Ibf {
        let mut t = Ibf::new(cells);
        points.for_each(|(k, v)| t.insert(k, v));
        t
    }

    fn sorted(mut v: Vec<u32>) -> Vec<u32> {
        v.sort_unstable();
        v
    }

    #[test]
    fn the_field_multiplies_and_divides_back() {
        let f = field();
        for (a, b) in [(1u16, 1u16), (2, 3), (0x8000, 0xffff), (12_345, 54_321)] {
            assert_eq!(div(f, mul(f, a, b), b), a);
            assert_eq!(mul(f, a, b), mul(f, b, a));
        }
        assert_eq!(mul(f, 0, 7), 0);
    }

    #[test]
    fn a_difference_peels_into_each_sides_points_and_changed_values() {
        // 100,000 shared points; 300 only here, 200 only there, 400 at shared positions
        // with other values there.
        let value = |i: u32| value_hash(u128::from(mix(i, 5)) << 7);
        let ours = table((0..100_300).map(|i| (key(i), value(i))), 1_400);
        let theirs = table(
            (0..100_000)
                .map(|i| match i < 400 {
                    true => (key(i), value(i + 1_000_000)),
                    false => (key(i), value(i)),
                })
                .chain((200_000..200_200).map(|i| (key(i), value(i)))),
            1_400,
        );
        let mut diff = ours.clone();
        diff.subtract(&theirs).unwrap();
        let got = diff.decode().expect("peels");
        assert_eq!(
            sorted(got.ours),
            sorted((100_000..100_300).map(key).collect())
        );
        assert_eq!(
            sorted(got.theirs),
            sorted((200_000..200_200).map(key).collect())
        );
        assert_eq!(sorted(got.changed), sorted((0..400).map(key).collect()));
    }

    #[test]
    fn alike_tables_leave_nothing_and_too_small_a_table_says_so() {
        let points = || (0..5_000).map(|i| (key(i), value_hash(u128::from(i))));
        let mut same = table(points(), 30);
        same.subtract(&table(points(), 30)).unwrap();
        assert_eq!(same.decode(), Some(Decoded::default()));
        let mut diff = table(points(), 300);
        diff.subtract(&table(std::iter::empty(), 300)).unwrap();
        assert_eq!(diff.decode(), None);
        assert!(Ibf::new(30).subtract(&Ibf::new(60)).is_err());
    }

    #[test]
    fn strata_split_keys_about_one_in_sixteen() {
        let n = (0..160_000u32)
            .filter(|&k| Stratum::of(mix(k, 3) as u32) == Stratum::Sample)
            .count();
        assert!((9_000..11_000).contains(&n), "{n}");
    }
}
