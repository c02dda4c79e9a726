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
        match ty {
            FieldType::Float => Values::Float(Vec::new()),
            FieldType::Integer => Values::Integer(Vec::new()),
            FieldType::Unsigned => Values::Unsigned(Vec::new()),
            FieldType::String => Values::String(Vec::new()),
            FieldType::Boolean => Values::Boolean(Vec::new()),
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

    fn take_indices(&self, idx: &[usize]) -> Values {
        match self {
            Values::Float(v) => Values::Float(idx.iter().map(|&i| v[i]).collect()),
            Values::Integer(v) => Values::Integer(idx.iter().map(|&i| v[i]).collect()),
            Values::Unsigned(v) => Values::Unsigned(idx.iter().map(|&i| v[i]).collect()),
            Values::String(v) => Values::String(idx.iter().map(|&i| v[i].clone()).collect()),
            Values::Boolean(v) => Values::Boolean(idx.iter().map(|&i| v[i]).collect()),
        }
    }

    fn extend(&mut self, other: &Values) -> bool {
        match (self, other) {
            (Values::Float(a), Values::Float(b)) => a.extend_from_slice(b),
            (Values::Integer(a), Values::Integer(b)) => a.extend_from_slice(b),
            (Values::Unsigned(a), Values::Unsigned(b)) => a.extend_from_slice(b),
            (Values::String(a), Values::String(b)) => a.extend_from_slice(b),
            (Values::Boolean(a), Values::Boolean(b)) => a.extend_from_slice(b),
            _ => return false,
        }
        true
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
    pub fn resolve(parts: &[&Column]) -> Option<Column> {
        let first = parts.first()?;
        if parts.len() == 1 && first.resolved {
            return Some((*first).clone());
        }
        let mut all = Column::new(first.values.field_type());
        for part in parts {
            if !all.values.extend(&part.values) {
                continue; // a column of another type cannot be merged (types are per shard)
            }
            all.times.extend_from_slice(&part.times);
            all.versions.extend_from_slice(&part.versions);
        }
        // Parts from successive flushes usually follow one another in time.
        if all.times.windows(2).all(|w| w[0] < w[1]) {
            all.resolved = true;
            return Some(all);
        }
        let mut order: Vec<usize> = (0..all.times.len()).collect();
        order.sort_unstable_by_key(|&i| (all.times[i], all.versions[i]));
        // Keep the last (highest version) entry of each run of equal times.
        let mut keep: Vec<usize> = Vec::with_capacity(order.len());
        for (n, &i) in order.iter().enumerate() {
            let next_same = order
                .get(n + 1)
                .is_some_and(|&j| all.times[j] == all.times[i]);
            if !next_same {
                keep.push(i);
            }
        }
        Some(Column {
            times: keep.iter().map(|&i| all.times[i]).collect(),
            versions: keep.iter().map(|&i| all.versions[i]).collect(),
            values: all.values.take_indices(&keep),
            resolved: true,
        })
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
        let idx: Vec<usize> = (from..to).collect();
        Column {
            times: self.times[from..to].to_vec(),
            versions: self.versions[from..to].to_vec(),
            values: self.values.take_indices(&idx),
            resolved: self.resolved,
        }
    }

    /// The part of a resolved column within [start, end].
    pub fn slice_time(&self, start: i64, end: i64) -> Column {
        let from = self.times.partition_point(|&t| t < start);
        let to = self.times.partition_point(|&t| t <= end);
        let idx: Vec<usize> = (from..to).collect();
        Column {
            times: self.times[from..to].to_vec(),
            versions: self.versions[from..to].to_vec(),
            values: self.values.take_indices(&idx),
            resolved: true,
        }
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
            let r = Column::resolve(&parts).unwrap();
            assert_eq!(r.times, vec![10, 15, 20]);
            assert_eq!(r.values, Values::Float(vec![100.0, 1.5, 2.0]));
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
        assert_eq!(Column::resolve(&[&c]).unwrap().times, taken.times);
    }

    #[test]
    fn out_of_order_appends_are_sorted_on_resolve() {
        let c = col(&[(30, 1, 3.0), (10, 1, 1.0), (20, 1, 2.0)]);
        assert!(!c.resolved);
        let r = Column::resolve(&[&c]).unwrap();
        assert_eq!((r.times.as_slice(), r.resolved), (&[10, 20, 30][..], true));
        assert_eq!(r.slice_time(15, 30).times, vec![20, 30]);
    }
}
