//! A column of one field of one series: timestamps, write versions and typed values.
//! The same shape serves the head, decoded column-file blocks and query results, and
//! [`Column::resolve`] is the one place where last-write-wins is decided.

use crate::line_protocol::FieldValue;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FieldType {
    Float,
    Integer,
    Unsigned,
    String,
    Boolean,
}

impl FieldType {
    pub fn of(value: &FieldValue) -> FieldType {
        match value {
            FieldValue::Float(_) => FieldType::Float,
            FieldValue::Integer(_) => FieldType::Integer,
            FieldValue::Unsigned(_) => FieldType::Unsigned,
            FieldValue::String(_) => FieldType::String,
            FieldValue::Boolean(_) => FieldType::Boolean,
        }
    }

    /// InfluxDB's name for the type, as in error messages and `SHOW FIELD KEYS`.
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Float => "float",
            FieldType::Integer => "integer",
            FieldType::Unsigned => "unsigned",
            FieldType::String => "string",
            FieldType::Boolean => "boolean",
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<FieldType> {
        [
            FieldType::Float,
            FieldType::Integer,
            FieldType::Unsigned,
            FieldType::String,
            FieldType::Boolean,
        ]
        .get(code as usize)
        .copied()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    Float(Vec<f64>),
    Integer(Vec<i64>),
    Unsigned(Vec<u64>),
    String(Vec<String>),
    Boolean(Vec<bool>),
}

impl Values {
    pub fn new(ty: FieldType) -> Values {
        Values::with_capacity(ty, 0)
    }

    fn with_capacity(ty: FieldType, n: usize) -> Values {
        match ty {
            FieldType::Float => Values::Float(Vec::with_capacity(n)),
            FieldType::Integer => Values::Integer(Vec::with_capacity(n)),
            FieldType::Unsigned => Values::Unsigned(Vec::with_capacity(n)),
            FieldType::String => Values::String(Vec::with_capacity(n)),
            FieldType::Boolean => Values::Boolean(Vec::with_capacity(n)),
        }
    }

    pub fn field_type(&self) -> FieldType {
        match self {
            Values::Float(_) => FieldType::Float,
            Values::Integer(_) => FieldType::Integer,
            Values::Unsigned(_) => FieldType::Unsigned,
            Values::String(_) => FieldType::String,
            Values::Boolean(_) => FieldType::Boolean,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Values::Float(v) => v.len(),
            Values::Integer(v) => v.len(),
            Values::Unsigned(v) => v.len(),
            Values::String(v) => v.len(),
            Values::Boolean(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a value of this column's type; false (and nothing appended) otherwise.
    pub fn push(&mut self, value: &FieldValue) -> bool {
        match (self, value) {
            (Values::Float(v), FieldValue::Float(x)) => v.push(*x),
            (Values::Integer(v), FieldValue::Integer(x)) => v.push(*x),
            (Values::Unsigned(v), FieldValue::Unsigned(x)) => v.push(*x),
            (Values::String(v), FieldValue::String(x)) => v.push(x.clone()),
            (Values::Boolean(v), FieldValue::Boolean(x)) => v.push(*x),
            _ => return false,
        }
        true
    }

    pub fn get(&self, i: usize) -> FieldValue {
        match self {
            Values::Float(v) => FieldValue::Float(v[i]),
            Values::Integer(v) => FieldValue::Integer(v[i]),
            Values::Unsigned(v) => FieldValue::Unsigned(v[i]),
            Values::String(v) => FieldValue::String(v[i].clone()),
            Values::Boolean(v) => FieldValue::Boolean(v[i]),
        }
    }

    pub(crate) fn take_indices(&self, idx: &[usize]) -> Values {
        match self {
            Values::Float(v) => Values::Float(idx.iter().map(|&i| v[i]).collect()),
            Values::Integer(v) => Values::Integer(idx.iter().map(|&i| v[i]).collect()),
            Values::Unsigned(v) => Values::Unsigned(idx.iter().map(|&i| v[i]).collect()),
            Values::String(v) => Values::String(idx.iter().map(|&i| v[i].clone()).collect()),
            Values::Boolean(v) => Values::Boolean(idx.iter().map(|&i| v[i]).collect()),
        }
    }

    /// Entries `from..to`, copied.
    fn range(&self, from: usize, to: usize) -> Values {
        match self {
            Values::Float(v) => Values::Float(v[from..to].to_vec()),
            Values::Integer(v) => Values::Integer(v[from..to].to_vec()),
            Values::Unsigned(v) => Values::Unsigned(v[from..to].to_vec()),
            Values::String(v) => Values::String(v[from..to].to_vec()),
            Values::Boolean(v) => Values::Boolean(v[from..to].to_vec()),
        }
    }

    /// Keeps entries `from..to` only, in place.
    fn keep_range(&mut self, from: usize, to: usize) {
        fn keep<T>(v: &mut Vec<T>, from: usize, to: usize) {
            v.truncate(to);
            v.drain(..from);
        }
        match self {
            Values::Float(v) => keep(v, from, to),
            Values::Integer(v) => keep(v, from, to),
            Values::Unsigned(v) => keep(v, from, to),
            Values::String(v) => keep(v, from, to),
            Values::Boolean(v) => keep(v, from, to),
        }
    }

    fn split_off(&mut self, at: usize) -> Values {
        match self {
            Values::Float(v) => Values::Float(v.split_off(at)),
            Values::Integer(v) => Values::Integer(v.split_off(at)),
            Values::Unsigned(v) => Values::Unsigned(v.split_off(at)),
            Values::String(v) => Values::String(v.split_off(at)),
            Values::Boolean(v) => Values::Boolean(v.split_off(at)),
        }
    }

    /// Appends every entry of a column of the same type (of another type: nothing).
    fn append(&mut self, other: Values) {
        match (self, other) {
            (Values::Float(a), Values::Float(mut b)) => a.append(&mut b),
            (Values::Integer(a), Values::Integer(mut b)) => a.append(&mut b),
            (Values::Unsigned(a), Values::Unsigned(mut b)) => a.append(&mut b),
            (Values::String(a), Values::String(mut b)) => a.append(&mut b),
            (Values::Boolean(a), Values::Boolean(mut b)) => a.append(&mut b),
            _ => {}
        }
    }

    /// Appends entry `i` of a column of the same type (of another type: nothing).
    fn push_from(&mut self, other: &Values, i: usize) {
        match (self, other) {
            (Values::Float(a), Values::Float(b)) => a.push(b[i]),
            (Values::Integer(a), Values::Integer(b)) => a.push(b[i]),
            (Values::Unsigned(a), Values::Unsigned(b)) => a.push(b[i]),
            (Values::String(a), Values::String(b)) => a.push(b[i].clone()),
            (Values::Boolean(a), Values::Boolean(b)) => a.push(b[i]),
            _ => {}
        }
    }

    /// Approximate heap bytes, for the head's memory budget.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Values::Float(v) => v.len() * 8,
            Values::Integer(v) => v.len() * 8,
            Values::Unsigned(v) => v.len() * 8,
            Values::String(v) => v.iter().map(|s| s.len() + 24).sum(),
            Values::Boolean(v) => v.len(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub times: Vec<i64>,
    pub versions: Vec<u64>,
    pub values: Values,
    /// Times strictly increase (so the column is already resolved).
    pub resolved: bool,
}

impl Column {
    pub fn new(ty: FieldType) -> Column {
        Column {
            times: Vec::new(),
            versions: Vec::new(),
            values: Values::new(ty),
            resolved: true,
        }
    }

    /// A column with room for one entry: a first push would make room for four (or
    /// eight), and most of a head's columns, one per series and field, keep one or two.
    pub fn for_one(ty: FieldType) -> Column {
        Column {
            times: Vec::with_capacity(1),
            versions: Vec::with_capacity(1),
            values: Values::with_capacity(ty, 1),
            resolved: true,
        }
    }

    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    pub fn push(&mut self, time: i64, version: u64, value: &FieldValue) -> bool {
        if !self.values.push(value) {
            return false;
        }
        if self.times.last().is_some_and(|&last| last >= time) {
            self.resolved = false;
        }
        self.times.push(time);
        self.versions.push(version);
        true
    }

    pub fn heap_bytes(&self) -> usize {
        self.times.len() * 16 + self.values.heap_bytes()
    }

    /// Merges columns of the same field into one sorted by time with one value per time:
    /// the one with the highest write version (last write wins, the same on every replica
    /// whatever order the writes arrived in).
    pub fn resolve(mut parts: Vec<Column>) -> Option<Column> {
        parts.retain(|p| !p.is_empty());
        // A column of another type cannot be merged (types are per shard).
        let ty = parts.first()?.values.field_type();
        parts.retain(|p| p.values.field_type() == ty);
        for part in parts.iter_mut().filter(|p| !p.resolved) {
            *part = part.take(&part.resolved_order());
        }
        if parts.len() == 1 {
            return parts.pop();
        }
        // Parts from successive flushes usually follow one another in time, overlapping
        // at most a little: in order of their first times, each is appended, merging
        // only where it overlaps what is already there.
        parts.sort_by_key(|p| p.times[0]);
        let mut parts = parts.into_iter();
        let mut all = parts.next().expect("one part or more");
        for part in parts {
            let cut = all.times.partition_point(|&t| t < part.times[0]);
            let tail = all.split_off(cut);
            all.merge_from(tail, part);
        }
        Some(all)
    }

    /// Entries from `at` on, removed from this column.
    fn split_off(&mut self, at: usize) -> Column {
        Column {
            times: self.times.split_off(at),
            versions: self.versions.split_off(at),
            values: self.values.split_off(at),
            resolved: true,
        }
    }

    /// Appends two resolved columns merged in time order, taking of equal times the
    /// entry with the higher version.
    fn merge_from(&mut self, a: Column, mut b: Column) {
        // Parts of successive flushes follow one another: nothing to merge, one copy.
        if a.is_empty() {
            self.times.append(&mut b.times);
            self.versions.append(&mut b.versions);
            self.values.append(b.values);
            return;
        }
        let (mut i, mut j) = (0, 0);
        while i < a.len() || j < b.len() {
            let take_a = match (a.times.get(i), b.times.get(j)) {
                (Some(ta), Some(tb)) if ta == tb => {
                    let a_wins = a.versions[i] >= b.versions[j];
                    // The loser of a tie is skipped.
                    if a_wins {
                        j += 1;
                    } else {
                        i += 1;
                    }
                    a_wins
                }
                (Some(ta), Some(tb)) => ta < tb,
                (Some(_), None) => true,
                _ => false,
            };
            let (from, k) = if take_a { (&a, &mut i) } else { (&b, &mut j) };
            self.times.push(from.times[*k]);
            self.versions.push(from.versions[*k]);
            self.values.push_from(&from.values, *k);
            *k += 1;
        }
    }

    /// The entries of this column that [`Column::resolve`] keeps, in time order (the
    /// highest version of each time; of equal versions, the one appended last).
    pub fn resolved_order(&self) -> Vec<usize> {
        let mut order: Vec<(i64, u64, usize)> = (0..self.len())
            .map(|i| (self.times[i], self.versions[i], i))
            .collect();
        order.sort_unstable();
        let mut keep: Vec<usize> = Vec::with_capacity(order.len());
        for (n, &(time, _, i)) in order.iter().enumerate() {
            if order.get(n + 1).is_none_or(|next| next.0 != time) {
                keep.push(i);
            }
        }
        keep
    }

    /// The entries at `keep` (a [`Column::resolved_order`]), as a resolved column.
    pub fn take(&self, keep: &[usize]) -> Column {
        Column {
            times: keep.iter().map(|&i| self.times[i]).collect(),
            versions: keep.iter().map(|&i| self.versions[i]).collect(),
            values: self.values.take_indices(keep),
            resolved: true,
        }
    }

    /// Entries `from..to` of the column.
    pub fn slice_index(&self, from: usize, to: usize) -> Column {
        Column {
            times: self.times[from..to].to_vec(),
            versions: self.versions[from..to].to_vec(),
            values: self.values.range(from, to),
            resolved: self.resolved,
        }
    }

    /// The entries within [start, end] (of a column not resolved yet: all of them, since
    /// its times are not in order).
    pub fn slice_time(&self, start: i64, end: i64) -> Column {
        if !self.resolved {
            return self.clone();
        }
        let (from, to) = self.bounds(start, end);
        self.slice_index(from, to)
    }

    /// Keeps the entries of a resolved column within [start, end], in place.
    pub fn keep_time(mut self, start: i64, end: i64) -> Column {
        let (from, to) = self.bounds(start, end);
        if (from, to) != (0, self.len()) {
            self.times.truncate(to);
            self.times.drain(..from);
            self.versions.truncate(to);
            self.versions.drain(..from);
            self.values.keep_range(from, to);
        }
        self
    }

    fn bounds(&self, start: i64, end: i64) -> (usize, usize) {
        let from = self.times.partition_point(|&t| t < start);
        (from, from.max(self.times.partition_point(|&t| t <= end)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(points: &[(i64, u64, f64)]) -> Column {
        let mut c = Column::new(FieldType::Float);
        for &(t, v, x) in points {
            c.push(t, v, &FieldValue::Float(x));
        }
        c
    }

    #[test]
    fn the_highest_version_wins_whatever_the_arrival_order() {
        let a = col(&[(10, 5, 1.0), (20, 5, 2.0)]);
        let b = col(&[(10, 9, 100.0), (15, 1, 1.5), (20, 2, 999.0)]);
        for parts in [[&a, &b], [&b, &a]] {
            let r = Column::resolve(parts.map(|p| p.clone()).to_vec()).unwrap();
            assert_eq!(r.times, vec![10, 15, 20]);
            assert_eq!(r.values, Values::Float(vec![100.0, 1.5, 2.0]));
        }
    }

    proptest::proptest! {
        /// Whatever the parts (overlapping, disjoint, out of order), the resolved column
        /// holds each time once, with the value of its highest version.
        #[test]
        fn resolve_keeps_the_highest_version_of_each_time(
            parts in proptest::collection::vec(
                proptest::collection::vec((0i64..60, 0u64..1000), 0..40), 0..6)
        ) {
            let mut model: std::collections::BTreeMap<i64, u64> = Default::default();
            let mut columns = Vec::new();
            for (p, points) in parts.iter().enumerate() {
                // Versions unique across all parts, so "highest" is one entry.
                let points: Vec<(i64, u64, f64)> = points
                    .iter()
                    .map(|&(t, v)| (t, v * 8 + p as u64, (v * 8 + p as u64) as f64))
                    .collect();
                for &(t, v, _) in &points {
                    let best = model.entry(t).or_insert(v);
                    *best = (*best).max(v);
                }
                // Some parts sorted as a flush writes them, some in arrival order.
                let mut c = col(&points);
                if p % 2 == 0 {
                    c = Column::resolve(vec![c]).unwrap_or(Column::new(FieldType::Float));
                }
                columns.push(c);
            }
            let r = Column::resolve(columns);
            let got: Vec<(i64, u64, f64)> = r
                .map(|r| {
                    let Values::Float(values) = &r.values else { unreachable!("floats in") };
                    (0..r.len()).map(|i| (r.times[i], r.versions[i], values[i])).collect()
                })
                .unwrap_or_default();
            let want: Vec<(i64, u64, f64)> =
                model.into_iter().map(|(t, v)| (t, v, v as f64)).collect();
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn a_columns_resolved_order_takes_what_resolve_keeps() {
        let c = col(&[
            (30, 1, 3.0),
            (10, 2, 1.0),
            (20, 1, 2.0),
            (10, 1, 9.0),
            (30, 1, 4.0),
        ]);
        let taken = c.take(&c.resolved_order());
        assert_eq!(taken.times, vec![10, 20, 30]);
        assert_eq!(taken.values, Values::Float(vec![1.0, 2.0, 4.0]));
        assert_eq!(Column::resolve(vec![c.clone()]).unwrap().times, taken.times);
    }

    #[test]
    fn out_of_order_appends_are_sorted_on_resolve() {
        let c = col(&[(30, 1, 3.0), (10, 1, 1.0), (20, 1, 2.0)]);
        assert!(!c.resolved);
        let r = Column::resolve(vec![c]).unwrap();
        assert_eq!((r.times.as_slice(), r.resolved), (&[10, 20, 30][..], true));
        assert_eq!(r.slice_time(15, 30).times, vec![20, 30]);
        assert_eq!(r.keep_time(15, 25).times, vec![20]);
    }
}
