//! Sorting that leaves equal elements where InfluxDB 1.x's does. Its mode() and
//! percentile() sort a window's points by value with Go's `sort.Sort`, which is not
//! stable: which of several equal values comes first decides mode()'s answer among tied
//! values and the time percentile() answers with. The Debian influxd 1.6.7 we compare with
//! is built with Go 1.19, whose `sort.Sort` is a pattern-defeating quicksort (insertion
//! sort up to 12 elements, a median or Tukey's ninther for the pivot, heapsort past a
//! depth limit, and a fixed pseudo-random shuffle for inputs that partition badly). It is
//! deterministic, so the same algorithm, step for step, gives the same order.

/// Sorts `v` by `less` into the order Go 1.19's `sort.Sort` gives.
pub(super) fn sort_unstable_as_go<T>(v: &mut [T], less: impl Fn(&T, &T) -> bool) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let limit = usize::BITS - n.leading_zeros();
    Sorter { v, less: &less }.pdqsort(0, n, limit);
}

#[derive(PartialEq)]
enum Hint {
    Unknown,
    Increasing,
    Decreasing,
}

struct Sorter<'a, T, F> {
    v: &'a mut [T],
    less: &'a F,
}

impl<T, F: Fn(&T, &T) -> bool> Sorter<'_, T, F> {
    fn less(&self, i: usize, j: usize) -> bool {
        (self.less)(&self.v[i], &self.v[j])
    }

    fn insertion_sort(&mut self, a: usize, b: usize) {
        for i in a + 1..b {
            let mut j = i;
            while j > a && self.less(j, j - 1) {
                self.v.swap(j, j - 1);
                j -= 1;
            }
        }
    }

    fn sift_down(&mut self, lo: usize, hi: usize, first: usize) {
        let mut root = lo;
        loop {
            let mut child = 2 * root + 1;
            if child >= hi {
                return;
            }
            if child + 1 < hi && self.less(first + child, first + child + 1) {
                child += 1;
            }
            if !self.less(first + root, first + child) {
                return;
            }
            self.v.swap(first + root, first + child);
            root = child;
        }
    }

    fn heap_sort(&mut self, a: usize, b: usize) {
        let (first, hi) = (a, b - a);
        for i in (0..=(hi - 1) / 2).rev() {
            self.sift_down(i, hi, first);
        }
        for i in (0..hi).rev() {
            self.v.swap(first, first + i);
            self.sift_down(0, i, first);
        }
    }

    fn pdqsort(&mut self, mut a: usize, mut b: usize, mut limit: u32) {
        const MAX_INSERTION: usize = 12;
        let (mut was_balanced, mut was_partitioned) = (true, true);
        loop {
            let length = b - a;
            if length <= MAX_INSERTION {
                self.insertion_sort(a, b);
                return;
            }
            if limit == 0 {
                self.heap_sort(a, b);
                return;
            }
            if !was_balanced {
                self.break_patterns(a, b);
                limit -= 1;
            }
            let (mut pivot, mut hint) = self.choose_pivot(a, b);
            if hint == Hint::Decreasing {
                self.v[a..b].reverse();
                pivot = (b - 1) - (pivot - a);
                hint = Hint::Increasing;
            }
            if was_balanced
                && was_partitioned
                && hint == Hint::Increasing
                && self.partial_insertion_sort(a, b)
            {
                return;
            }
            // Probably many equal elements: those equal to the pivot go left, done.
            if a > 0 && !self.less(a - 1, pivot) {
                a = self.partition_equal(a, b, pivot);
                continue;
            }
            let (mid, already_partitioned) = self.partition(a, b, pivot);
            was_partitioned = already_partitioned;
            let (left, right) = (mid - a, b - mid);
            let balance_threshold = length / 8;
            if left < right {
                was_balanced = left >= balance_threshold;
                self.pdqsort(a, mid, limit);
                a = mid + 1;
            } else {
                was_balanced = right >= balance_threshold;
                self.pdqsort(mid + 1, b, limit);
                b = mid;
            }
        }
    }

    fn partition(&mut self, a: usize, b: usize, pivot: usize) -> (usize, bool) {
        self.v.swap(a, pivot);
        // `i` and `j` bound (inclusively) what is left to partition; `j` may go below `a`
        // only when `i` has passed it, so signed indices keep the loop conditions plain.
        let (mut i, mut j) = (a as isize + 1, b as isize - 1);
        while i <= j && self.less(i as usize, a) {
            i += 1;
        }
        while i <= j && !self.less(j as usize, a) {
            j -= 1;
        }
        if i > j {
            self.v.swap(j as usize, a);
            return (j as usize, true);
        }
        self.v.swap(i as usize, j as usize);
        i += 1;
        j -= 1;
        loop {
            while i <= j && self.less(i as usize, a) {
                i += 1;
            }
            while i <= j && !self.less(j as usize, a) {
                j -= 1;
            }
            if i > j {
                break;
            }
            self.v.swap(i as usize, j as usize);
            i += 1;
            j -= 1;
        }
        self.v.swap(j as usize, a);
        (j as usize, false)
    }

    fn partition_equal(&mut self, a: usize, b: usize, pivot: usize) -> usize {
        self.v.swap(a, pivot);
        let (mut i, mut j) = (a as isize + 1, b as isize - 1);
        loop {
            while i <= j && !self.less(a, i as usize) {
                i += 1;
            }
            while i <= j && self.less(a, j as usize) {
                j -= 1;
            }
            if i > j {
                break;
            }
            self.v.swap(i as usize, j as usize);
            i += 1;
            j -= 1;
        }
        i as usize
    }

    /// Sorts a nearly sorted range by moving a few elements; false if it gave up.
    fn partial_insertion_sort(&mut self, a: usize, b: usize) -> bool {
        const MAX_STEPS: usize = 5;
        const SHORTEST_SHIFTING: usize = 50;
        let mut i = a + 1;
        for _ in 0..MAX_STEPS {
            while i < b && !self.less(i, i - 1) {
                i += 1;
            }
            if i == b {
                return true;
            }
            if b - a < SHORTEST_SHIFTING {
                return false;
            }
            self.v.swap(i, i - 1);
            if i - a >= 2 {
                let mut j = i - 1;
                while j >= 1 {
                    if !self.less(j, j - 1) {
                        break;
                    }
                    self.v.swap(j, j - 1);
                    j -= 1;
                }
            }
            if b - i >= 2 {
                for j in i + 1..b {
                    if !self.less(j, j - 1) {
                        break;
                    }
                    self.v.swap(j, j - 1);
                }
            }
        }
        false
    }

    /// Go's fixed shuffle of three elements, seeded with the range's length.
    fn break_patterns(&mut self, a: usize, b: usize) {
        let length = b - a;
        if length < 8 {
            return;
        }
        let mut random = length as u64;
        let modulus = 1usize << (usize::BITS - length.leading_zeros());
        let idx = a + (length / 4) * 2 - 1;
        for i in 0..3 {
            random ^= random << 13;
            random ^= random >> 17;
            random ^= random << 5;
            let mut other = (random as usize) & (modulus - 1);
            if other >= length {
                other -= length;
            }
            self.v.swap(idx + i, a + other);
        }
    }

    fn choose_pivot(&mut self, a: usize, b: usize) -> (usize, Hint) {
        const SHORTEST_NINTHER: usize = 50;
        const MAX_SWAPS: usize = 4 * 3;
        let l = b - a;
        let mut swaps = 0;
        let (mut i, mut j, mut k) = (a + l / 4, a + l / 4 * 2, a + l / 4 * 3);
        if l >= 8 {
            if l >= SHORTEST_NINTHER {
                i = self.median(i - 1, i, i + 1, &mut swaps);
                j = self.median(j - 1, j, j + 1, &mut swaps);
                k = self.median(k - 1, k, k + 1, &mut swaps);
            }
            j = self.median(i, j, k, &mut swaps);
        }
        let hint = match swaps {
            0 => Hint::Increasing,
            MAX_SWAPS => Hint::Decreasing,
            _ => Hint::Unknown,
        };
        (j, hint)
    }

    fn order2(&self, a: usize, b: usize, swaps: &mut usize) -> (usize, usize) {
        if self.less(b, a) {
            *swaps += 1;
            return (b, a);
        }
        (a, b)
    }

    fn median(&self, a: usize, b: usize, c: usize, swaps: &mut usize) -> usize {
        let (a, b) = self.order2(a, b, swaps);
        let (b, _) = self.order2(b, c, swaps);
        let (_, b) = self.order2(a, b, swaps);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(mut v: Vec<(u32, usize)>) -> Vec<(u32, usize)> {
        sort_unstable_as_go(&mut v, |a, b| a.0 < b.0);
        v
    }

    #[test]
    fn sorts_whatever_the_input() {
        let mut seed = 7u64;
        for n in [0, 1, 2, 12, 13, 49, 50, 51, 200, 1000, 5000] {
            for distinct in [1u64, 2, 5, 1000] {
                let v: Vec<(u32, usize)> = (0..n)
                    .map(|i| {
                        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                        (((seed >> 33) % distinct) as u32, i)
                    })
                    .collect();
                let out = sorted(v.clone());
                assert!(out.windows(2).all(|w| w[0].0 <= w[1].0), "n {n}");
                let mut ids: Vec<usize> = out.iter().map(|p| p.1).collect();
                ids.sort();
                assert_eq!(ids, (0..n).collect::<Vec<_>>(), "a permutation");
            }
        }
        let descending: Vec<(u32, usize)> = (0..300).map(|i| (300 - i as u32, i)).collect();
        assert!(sorted(descending).windows(2).all(|w| w[0].0 <= w[1].0));
    }

    /// Inputs and the order Go 1.19.8's `sort.Sort` left them in (by value only; each
    /// line `values|indices`), recorded with Debian's golang-go 1.19 from random inputs of
    /// 13 to 300 values with 1, 2, 3 or 50 distinct ones, and descending, stepped and
    /// cyclic ones: every path (insertion, partitions, the pattern breaker, heapsort).
    #[test]
    fn equal_elements_end_where_go_leaves_them() {
        for (k, line) in include_str!("go_sort_cases.txt").lines().enumerate() {
            let (input, want) = line.split_once('|').unwrap();
            let mut v: Vec<(i64, usize)> = input
                .split_whitespace()
                .enumerate()
                .map(|(i, s)| (s.parse().unwrap(), i))
                .collect();
            sort_unstable_as_go(&mut v, |a, b| a.0 < b.0);
            let got: Vec<String> = v.iter().map(|p| p.1.to_string()).collect();
            assert_eq!(got.join(" "), want, "case {k}");
        }
    }

    #[test]
    fn up_to_twelve_elements_equal_ones_keep_their_order() {
        let v: Vec<(u32, usize)> = [3, 1, 3, 1, 2, 3, 1, 2, 2, 1, 3, 2]
            .into_iter()
            .enumerate()
            .map(|(i, x)| (x, i))
            .collect();
        let out = sorted(v);
        for w in out.windows(2) {
            assert!(w[0].0 < w[1].0 || w[0].1 < w[1].1);
        }
    }
}
