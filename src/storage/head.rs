//! A shard's head: the points of its data log not yet in a column file, indexed by series.

use super::column::{Column, FieldType};
use super::tombstone;
use crate::line_protocol::{FieldValue, Point};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::Arc;

/// Series keys are hashed on every point written: a fast non-cryptographic hash (keys
/// come from clients, but a flood of colliding keys costs only speed, never correctness).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The one `Arc` of each measurement and field name of a head.
fn intern(names: &mut HashSet<Arc<str>, foldhash::fast::RandomState>, name: &str) -> Arc<str> {
    if let Some(known) = names.get(name) {
        return known.clone();
    }
    let name: Arc<str> = name.into();
    names.insert(name.clone());
    name
}

/// What a point of one field adds to the head's byte estimate.
fn point_bytes(value: &FieldValue) -> usize {
    16 + match value {
        FieldValue::String(s) => s.len() + 24,
        _ => 8,
    }
}

/// Up to this many columns, a field missing from its usual position is found by a scan
/// (cheaper than hashing for the few fields real series have).
const FIELDS_SCANNED: usize = 64;

/// A series of the head. Its tags are not kept: they are read from its key when needed
/// ([`crate::line_protocol::key_tags`]), which is rarely (the head's series are a million
/// for a million series of a point or two, and the tags were a fifth of their memory).
#[derive(Debug, Clone)]
pub struct SeriesHead {
    /// Shared with the shard's series index.
    pub key: Arc<str>,
    /// Names are shared by the head's series (a million series of one measurement and
    /// field would otherwise hold two million copies of two names).
    pub measurement: Arc<str>,
    fields: Fields,
}

#[derive(Debug, Clone)]
enum Fields {
    /// A series' first point, of one field, held in place: a head of many series holds
    /// mostly series of a point or two, and a column (three Vecs of one entry each, in a
    /// Vec of columns) cost 150 bytes more in four allocations.
    One(Arc<str>, OnePoint),
    Columns(Vec<(Arc<str>, Column)>),
}

#[derive(Debug, Clone)]
struct OnePoint {
    time: i64,
    version: u64,
    value: FieldValue,
}

impl OnePoint {
    fn column(&self) -> Column {
        let mut column = Column::for_one(FieldType::of(&self.value));
        column.push(self.time, self.version, &self.value);
        column
    }
}

impl SeriesHead {
    /// The series' fields with their columns (a single point's made up on the spot).
    pub fn columns(&self) -> impl Iterator<Item = (&Arc<str>, Cow<'_, Column>)> {
        let (one, columns) = match &self.fields {
            Fields::One(name, point) => (Some((name, Cow::Owned(point.column()))), &[][..]),
            Fields::Columns(columns) => (None, &columns[..]),
        };
        one.into_iter()
            .chain(columns.iter().map(|(n, c)| (n, Cow::Borrowed(c))))
    }

    /// The columns, a single point turned into one.
    fn columns_mut(&mut self) -> &mut Vec<(Arc<str>, Column)> {
        if let Fields::One(name, point) = &self.fields {
            self.fields = Fields::Columns(vec![(name.clone(), point.column())]);
        }
        match &mut self.fields {
            Fields::Columns(columns) => columns,
            Fields::One(..) => unreachable!("made columns above"),
        }
    }

    fn is_empty(&self) -> bool {
        matches!(&self.fields, Fields::Columns(c) if c.is_empty())
    }
}

#[derive(Debug, Default)]
pub struct Head {
    /// Positions in `series`, found by their key's hash (`hasher`): the keys are not
    /// held a second time.
    index: hashbrown::HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    /// Measurement and field names.
    names: HashSet<Arc<str>, foldhash::fast::RandomState>,
    series: Chunked<SeriesHead>,
    bytes: usize,
}

/// Items per chunk of [`Chunked`] (series: a few hundred KiB).
const CHUNK: usize = 4096;

/// A list grown a fixed chunk at a time rather than by doubling one allocation: a head of
/// half a million series moved its whole array (some 45 MB) when it doubled, and left the
/// old one freed but resident (the allocator keeps freed memory for a while: see
/// `main.rs`); chunks of one size freed with a flushed head are reused by the next one.
#[derive(Debug)]
pub struct Chunked<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Chunked<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, item: T) {
        match self.chunks.last_mut() {
            Some(chunk) if chunk.len() < CHUNK => chunk.push(item),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(item);
                self.chunks.push(chunk);
            }
        }
        self.len += 1;
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flatten()
    }

    /// The items from position `from` on.
    pub fn iter_from(&self, from: usize) -> impl Iterator<Item = &T> {
        self.chunks
            .get(from / CHUNK..)
            .unwrap_or_default()
            .iter()
            .flatten()
            .skip(from % CHUNK)
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.chunks.iter_mut().flatten()
    }

    fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        let all = std::mem::take(self);
        for item in all.chunks.into_iter().flatten() {
            if keep(&item) {
                self.push(item);
            }
        }
    }
}

impl<T> std::ops::Index<usize> for Chunked<T> {
    type Output = T;

    fn index(&self, at: usize) -> &T {
        &self.chunks[at / CHUNK][at % CHUNK]
    }
}

impl<T> std::ops::IndexMut<usize> for Chunked<T> {
    fn index_mut(&mut self, at: usize) -> &mut T {
        &mut self.chunks[at / CHUNK][at % CHUNK]
    }
}

impl<'a, T> IntoIterator for &'a Chunked<T> {
    type Item = &'a T;
    type IntoIter = std::iter::Flatten<std::slice::Iter<'a, Vec<T>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.chunks.iter().flatten()
    }
}

impl Head {
    /// Adds one point's fields; a value whose type differs from the column's is skipped
    /// (types are checked before points reach the log, so this only guards replay).
    /// `key` is a series key of `measurement` ([`crate::line_protocol::series_key`]).
    pub fn insert<F: AsRef<str>>(
        &mut self,
        key: &str,
        measurement: &str,
        time: i64,
        version: u64,
        fields: &[(F, FieldValue)],
    ) {
        let idx = self.series_for(key, measurement);
        self.push_fields(idx, time, version, fields);
    }

    /// Adds a batch of points written under one version, as [`Head::insert`] would one by
    /// one. The points are taken series by series (in batch order within each): a batch
    /// usually holds several points of each of its series, and one series' columns are
    /// then written while their ends are in cache rather than once per pass over every
    /// series (the columns' stores were the most of a point's insert).
    pub fn insert_points(&mut self, points: &[Point<'_>], version: u64) {
        // Series position in the high half, point position in the low: one integer sort.
        let mut order: Vec<u64> = points
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let series = self.series_for(&p.key, &p.measurement);
                ((series as u64) << 32) | i as u64
            })
            .collect();
        order.sort_unstable();
        for at in order {
            let p = &points[at as u32 as usize];
            let time = p.timestamp.unwrap_or_default();
            self.push_fields((at >> 32) as usize, time, version, &p.fields);
        }
    }

    /// The position of the series `key`, created (without points, with room for `fields`
    /// columns) when new.
    fn series_for(&mut self, key: &str, measurement: &str) -> usize {
        let hash = self.hasher.hash_one(key);
        if let Some(&i) = self.find(hash, key) {
            return i as usize;
        }
        let key: Arc<str> = key.into();
        self.bytes += key.len() * 2 + 64;
        let id = u32::try_from(self.series.len()).expect("fewer than 2^32 series in a head");
        self.series.push(SeriesHead {
            key,
            measurement: intern(&mut self.names, measurement),
            fields: Fields::Columns(Vec::new()),
        });
        let (series, hasher) = (&self.series, &self.hasher);
        self.index
            .insert_unique(hash, id, |&i| hasher.hash_one(&*series[i as usize].key));
        id as usize
    }

    fn find(&self, hash: u64, key: &str) -> Option<&u32> {
        self.index
            .find(hash, |&i| &*self.series[i as usize].key == key)
    }

    fn push_fields<F: AsRef<str>>(
        &mut self,
        idx: usize,
        time: i64,
        version: u64,
        fields: &[(F, FieldValue)],
    ) {
        let series = &mut self.series[idx];
        if let ([(name, value)], true) = (fields, series.is_empty()) {
            series.fields = Fields::One(
                intern(&mut self.names, name.as_ref()),
                OnePoint {
                    time,
                    version,
                    value: value.clone(),
                },
            );
            self.bytes += point_bytes(value);
            return;
        }
        let columns = series.columns_mut();
        if columns.is_empty() {
            // Exactly: most series never take another field, and a first push would
            // make room for four columns.
            columns.reserve_exact(fields.len());
        }
        // Built on the first miss in a wide series only: a scan per miss would make a
        // point of n new fields cost n^2 name compares (100,000 fields: half a minute).
        let mut by_name: Option<FastMap<Arc<str>, usize>> = None;
        for (at, (name, value)) in fields.iter().enumerate() {
            let name = name.as_ref();
            // A series' points usually list their fields in the same order: try the
            // position this field had last time before searching.
            let found = match columns.get(at) {
                Some((n, _)) if super::same_name(n, name) => Some(at),
                _ if columns.len() <= FIELDS_SCANNED => {
                    columns.iter().position(|(n, _)| super::same_name(n, name))
                }
                _ => by_name
                    .get_or_insert_with(|| {
                        let mut map = FastMap::default();
                        map.reserve(columns.len());
                        for (i, (n, _)) in columns.iter().enumerate() {
                            map.insert(n.clone(), i);
                        }
                        map
                    })
                    .get(name)
                    .copied(),
            };
            let column = match found {
                Some(i) => &mut columns[i].1,
                None => {
                    let name = intern(&mut self.names, name);
                    if let Some(map) = by_name.as_mut() {
                        map.insert(name.clone(), columns.len());
                    }
                    columns.push((name, Column::for_one(FieldType::of(value))));
                    &mut columns.last_mut().expect("just pushed").1
                }
            };
            if column.push(time, version, value) {
                self.bytes += point_bytes(value);
            }
        }
    }

    pub fn get(&self, key: &str) -> Option<&SeriesHead> {
        let hash = self.hasher.hash_one(key);
        self.find(hash, key).map(|&i| &self.series[i as usize])
    }

    /// Drops the points a tombstone hits, and series left without any. The byte estimate
    /// is left as it was: the head is then flushed a little early, never late.
    pub fn delete(&mut self, t: &crate::proto::Tombstone) {
        let mut emptied = false;
        for s in self
            .series
            .iter_mut()
            .filter(|s| *s.measurement == *t.measurement && tombstone::names(t, &s.key))
        {
            let ranges = tombstone::ranges(std::slice::from_ref(t), &s.key);
            let columns = s.columns_mut();
            for (_, column) in columns.iter_mut() {
                if let Some(kept) = tombstone::without_deleted(column, &ranges) {
                    *column = kept;
                }
            }
            columns.retain(|(_, c)| !c.is_empty());
            emptied |= columns.is_empty();
        }
        if emptied {
            self.series.retain(|s| !s.is_empty());
            self.index.clear();
            let (series, hasher) = (&self.series, &self.hasher);
            for (i, s) in series.iter().enumerate() {
                self.index
                    .insert_unique(hasher.hash_one(&*s.key), i as u32, |&i| {
                        hasher.hash_one(&*series[i as usize].key)
                    });
            }
        }
    }

    pub fn series(&self) -> &Chunked<SeriesHead> {
        &self.series
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Approximate heap bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Tombstone;

    fn insert(head: &mut Head, host: &str, time: i64, version: u64, v: f64) {
        let key = format!("cpu,host={host}");
        head.insert(&key, "cpu", time, version, &[("v", FieldValue::Float(v))]);
    }

    #[test]
    fn a_delete_drops_emptied_series_and_later_points_find_theirs() {
        let mut head = Head::default();
        for (host, v) in [("a", 1.0), ("b", 2.0), ("c", 3.0)] {
            insert(&mut head, host, 10, 5, v);
        }
        insert(&mut head, "c", 20, 5, 4.0);
        head.delete(&Tombstone {
            version: 6,
            measurement: "cpu".into(),
            series_keys: vec!["cpu,host=a".into(), "cpu,host=c".into()],
            min_time: 0,
            max_time: 10,
            drop_schema: false,
        });
        let keys: Vec<&str> = head.series().iter().map(|s| &*s.key).collect();
        assert_eq!(keys, ["cpu,host=b", "cpu,host=c"]);
        insert(&mut head, "c", 30, 7, 5.0);
        insert(&mut head, "a", 10, 7, 6.0);
        let c = &head.series()[1];
        let times: Vec<i64> = c.columns().flat_map(|(_, c)| c.times.clone()).collect();
        assert_eq!((&*c.key, times.as_slice()), ("cpu,host=c", &[20, 30][..]));
        assert_eq!(&*head.series()[2].key, "cpu,host=a");
    }

    #[test]
    fn a_wide_series_finds_each_field_in_any_order() {
        let mut head = Head::default();
        let names: Vec<String> = (0..300).map(|i| format!("f{i}")).collect();
        let point = |order: &mut dyn Iterator<Item = usize>| -> Vec<(&str, FieldValue)> {
            order
                .map(|i| (names[i].as_str(), FieldValue::Integer(i as i64)))
                .collect()
        };
        head.insert("w", "w", 1, 1, &point(&mut (0..200)));
        // Reversed, with 100 new fields among them: every lookup misses its position.
        head.insert("w", "w", 2, 1, &point(&mut (0..300).rev()));
        let fields: Vec<_> = head.get("w").expect("series").columns().collect();
        assert_eq!(fields.len(), 300);
        // The new fields come after the old ones, in the order the point listed them.
        let expected = (0..200).chain((200..300).rev());
        for ((name, column), i) in fields.iter().zip(expected) {
            assert_eq!(&***name, names[i]);
            let times: &[i64] = if i < 200 { &[1, 2] } else { &[2] };
            assert_eq!(column.times, times, "{name}");
        }
    }

    proptest::proptest! {
        /// A batch inserted at once leaves the head as inserting its points one by one
        /// does: same series in the same order, same columns, same order within each.
        #[test]
        fn a_batch_inserts_as_its_points_one_by_one(
            rows in proptest::collection::vec((0u8..6, 0i64..5, 0u8..3, -50i64..50), 0..60),
        ) {
            let body: String = rows
                .iter()
                .map(|(host, t, field, v)| format!("cpu,host=h{host} f{field}={v}i,g=1 {t}\n"))
                .collect();
            let (points, errors) = crate::line_protocol::parse_body(body.as_bytes());
            proptest::prop_assert!(errors.is_empty());
            let mut batch = Head::default();
            batch.insert_points(&points, 9);
            let mut single = Head::default();
            for p in &points {
                let time = p.timestamp.unwrap_or_default();
                single.insert(&p.key, &p.measurement, time, 9, &p.fields);
            }
            type Shape = Vec<(String, Vec<(Arc<str>, Column)>)>;
            let shape = |h: &Head| -> Shape {
                h.series()
                    .iter()
                    .map(|s| {
                        let columns = s.columns().map(|(n, c)| (n.clone(), c.into_owned()));
                        (s.key.to_string(), columns.collect())
                    })
                    .collect()
            };
            proptest::prop_assert_eq!(shape(&batch), shape(&single));
            proptest::prop_assert_eq!(batch.bytes(), single.bytes());
        }
    }
}
