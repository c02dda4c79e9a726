//! Set reconciliation of two replicas' points with an invertible Bloom filter: each side
//! folds a 32-bit key of every point (from its digest hash) into a table of cells (a
//! count, the keys' xor and their checks' xor); one side's table subtracted from the
//! other's holds only the points the two do not share, which peeling recovers when the
//! table has some 1.5 cells per difference. Bytes are then proportional to the
//! difference, not to the tree nodes above it (a divergence scattered over a shard makes
//! nearly every node of a tree walk differ).
//!
//! A key stands for every point of one side that has it: a collision within a side only
//! sends an extra point (applying it again changes nothing). Two differences of one side
//! with the same key cancel, and are left to the tree walk that follows every
//! reconciliation: nothing is ever taken as equal without the full-width digests' say.

/// Cells of one table at most (some 1.4 million differences).
pub(crate) const MAX_CELLS: usize = 1 << 21;
/// Bytes of a cell on the wire.
pub(crate) const CELL_BYTES: usize = 7;
/// One key in this many is in the sample stratum, whose table (decoded first) sizes the
/// table of the rest.
pub(crate) const SAMPLE: u32 = 16;

/// The 32-bit key of a point, from its 128-bit digest hash.
pub(crate) fn key_of(hash: u128) -> u32 {
    let folded = (hash as u64) ^ ((hash >> 64) as u64);
    (folded ^ (folded >> 32)) as u32
}

fn mix(key: u32, salt: u64) -> u64 {
    // splitmix64's finaliser: every bit of the key reaches every bit of the result.
    let mut z = u64::from(key).wrapping_add(salt.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d4_9bb1_3311_11eb);
    z ^ (z >> 31)
}

fn check_of(key: u32) -> u16 {
    mix(key, 7) as u16
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
    /// Keys added, modulo 256: a pure cell of a difference counts 1 or 255.
    pub count: u8,
    pub keys: u32,
    pub checks: u16,
}

impl Cell {
    fn toggle(&mut self, key: u32, count: u8) {
        self.count = self.count.wrapping_add(count);
        self.keys ^= key;
        self.checks ^= check_of(key);
    }
    fn is_zero(&self) -> bool {
        *self == Cell::default()
    }
}

/// An invertible Bloom filter of point keys, in three equal parts (a key has one cell
/// in each, so its three cells are distinct).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ibf {
    pub cells: Vec<Cell>,
}

/// What peeling a difference recovered: the keys only the first table holds, and those
/// only the second holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Decoded {
    pub ours: Vec<u32>,
    pub theirs: Vec<u32>,
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

    pub(crate) fn insert(&mut self, key: u32) {
        for s in self.slots(key) {
            self.cells[s].toggle(key, 1);
        }
    }

    /// Takes `other` (a table of the same size) away from this one: what remains holds
    /// only the keys one of them has and the other lacks.
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
            a.keys ^= b.keys;
            a.checks ^= b.checks;
        }
        Ok(())
    }

    /// Peels a difference (see [`Ibf::subtract`]); None if it does not come apart whole
    /// (too small a table for the difference, or keys that cancelled).
    pub(crate) fn decode(mut self) -> Option<Decoded> {
        let mut out = Decoded::default();
        let mut pure: Vec<usize> = (0..self.cells.len()).collect();
        while let Some(i) = pure.pop() {
            let c = self.cells[i];
            if !(c.count == 1 || c.count == 255) || c.checks != check_of(c.keys) {
                continue;
            }
            let slots = self.slots(c.keys);
            if !slots.contains(&i) {
                continue; // a mixture whose checks happen to agree
            }
            match c.count {
                1 => out.ours.push(c.keys),
                _ => out.theirs.push(c.keys),
            }
            for s in slots {
                self.cells[s].toggle(c.keys, c.count.wrapping_neg());
                pure.push(s);
            }
        }
        self.cells.iter().all(Cell::is_zero).then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(keys: impl Iterator<Item = u32>, cells: usize) -> Ibf {
        let mut t = Ibf::new(cells);
        keys.for_each(|k| t.insert(k));
        t
    }

    #[test]
    fn a_difference_peels_into_each_sides_keys() {
        let key = |i: u32| mix(i, 99) as u32;
        // 100,000 shared keys, 300 only here, 200 only there.
        let ours = table((0..100_300).map(key), 750);
        let theirs = table((0..100_000).chain(200_000..200_200).map(key), 750);
        let mut diff = ours.clone();
        diff.subtract(&theirs).unwrap();
        let mut got = diff.decode().expect("peels");
        got.ours.sort_unstable();
        got.theirs.sort_unstable();
        let mut want_ours: Vec<u32> = (100_000..100_300).map(key).collect();
        let mut want_theirs: Vec<u32> = (200_000..200_200).map(key).collect();
        want_ours.sort_unstable();
        want_theirs.sort_unstable();
        assert_eq!(got.ours, want_ours);
        assert_eq!(got.theirs, want_theirs);
    }

    #[test]
    fn too_small_a_table_says_so_and_sizes_must_match() {
        let key = |i: u32| mix(i, 5) as u32;
        let mut diff = table((0..2_000).map(key), 300);
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
