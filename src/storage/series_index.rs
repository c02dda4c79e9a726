//! A shard's series by measurement, with an inverted index of their tag values: a read
//! finds the series its condition names (`host = 'a'`) without judging every series of
//! the measurement. A series is its key, shared with the head or column file that
//! holds it; its tags are read from the key when asked for (they were two thirds of the
//! index's memory, and only listings and the series a read selects need them).
//!
//! Within a measurement a series is a number (its position in the order series were
//! added): the postings hold numbers, and the key lookup table only numbers too, so a
//! key is held once (the first index held every key in a second, ordered set and each
//! posting as a key). Key order, which reads and listings need, is worked out when it is
//! first asked for after series were added (see [`MeasurementIndex::series`]).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

type RandomState = foldhash::fast::RandomState;

/// A series' tags, sorted by key, as reads and listings pass them on.
pub type Tags = Arc<[(String, String)]>;

/// A measurement's name with its series (key and tags), as listings return them.
pub type MeasurementSeries = (String, Vec<(Arc<str>, Tags)>);

#[derive(Debug, Default)]
pub struct SeriesIndex {
    measurements: HashMap<String, MeasurementIndex, RandomState>,
}

#[derive(Default)]
pub struct MeasurementIndex {
    /// Series keys by series number (grown in chunks, as the head's series are).
    keys: super::head::Chunked<Arc<str>>,
    /// Series numbers, found by key (hashed with `hasher`).
    by_key: hashbrown::HashTable<u32>,
    hasher: RandomState,
    /// Series numbers in key order, of the series added up to its length (the others
    /// are put in when a read asks for the order).
    order: Mutex<Vec<u32>>,
    /// Tag key → tag value → the series with that value, in increasing number.
    postings: HashMap<String, TagValues, RandomState>,
}

/// A tag key's values with their series. The values' text is held end to end in one
/// string, and the table holds positions only: a million values of one point each (a
/// host per series) took 80 bytes each as a map of boxed strings, 40 this way, and 24
/// with a value's series as one number (and its end alone).
#[derive(Default)]
struct TagValues {
    /// Positions in `ends` and `postings`, found by the value's hash.
    table: hashbrown::HashTable<u32>,
    text: String,
    /// Each value's end in `text` (it starts where the one before ends).
    ends: Vec<u32>,
    /// Each value's series: most values (a host's name) have one, whose number this is;
    /// with [`MANY`] set, the position of the value's series in `many`.
    postings: Vec<u32>,
    /// Series numbers, increasing, of the values with more than one series.
    many: Vec<Vec<u32>>,
}

/// Marks a posting that is a position in [`TagValues::many`] (series numbers are below).
const MANY: u32 = 1 << 31;

impl TagValues {
    fn value(&self, at: u32) -> &str {
        let start = match at {
            0 => 0,
            _ => self.ends[at as usize - 1],
        };
        &self.text[start as usize..self.ends[at as usize] as usize]
    }

    fn ids(&self, at: u32) -> &[u32] {
        match self.postings[at as usize] {
            p if p & MANY != 0 => &self.many[(p & !MANY) as usize],
            _ => std::slice::from_ref(&self.postings[at as usize]),
        }
    }

    fn get(&self, hasher: &RandomState, value: &str) -> Option<&[u32]> {
        self.table
            .find(hasher.hash_one(value), |&at| self.value(at) == value)
            .map(|&at| self.ids(at))
    }

    fn push(&mut self, hasher: &RandomState, value: &str, id: u32) {
        let hash = hasher.hash_one(value);
        if let Some(&at) = self.table.find(hash, |&at| self.value(at) == value) {
            let posting = &mut self.postings[at as usize];
            if *posting & MANY != 0 {
                self.many[(*posting & !MANY) as usize].push(id);
            } else {
                let many = u32::try_from(self.many.len()).expect("fewer than 2^31 tag values");
                self.many.push(vec![*posting, id]);
                *posting = MANY | many;
            }
            return;
        }
        let at = u32::try_from(self.ends.len()).expect("fewer than 2^32 tag values");
        self.text.push_str(value);
        self.ends
            .push(u32::try_from(self.text.len()).expect("tag values within 4 GiB"));
        self.postings.push(id);
        let (text, ends) = (&self.text, &self.ends);
        self.table.insert_unique(hash, at, |&at| {
            let start = match at {
                0 => 0,
                _ => ends[at as usize - 1],
            };
            hasher.hash_one(&text[start as usize..ends[at as usize] as usize])
        });
    }

    fn values(&self) -> impl Iterator<Item = &str> {
        (0..self.ends.len() as u32).map(|at| self.value(at))
    }
}

impl std::fmt::Debug for MeasurementIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeasurementIndex")
            .field("series", &self.keys.len())
            .field("tag_keys", &self.postings.len())
            .finish()
    }
}

/// The tags of a series key.
fn tags_of(key: &str) -> Tags {
    crate::line_protocol::key_tags(key)
        .into_iter()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The series a read can be narrowed to from the index: equality of tags and regular
/// expressions on them, combined. It only ever narrows; the read still judges each
/// series it yields by the whole condition.
#[derive(Debug, Clone)]
pub enum TagSelector {
    All,
    /// Series whose tag `.0` is `.1`.
    Eq(String, String),
    /// Series whose tag `.0` matches `.1` (`region =~ /^us-/`): the tag's distinct values
    /// are judged, not each series.
    Matches(String, regex::Regex),
    And(Vec<TagSelector>),
    Or(Vec<TagSelector>),
}

impl SeriesIndex {
    /// Adds a series of `measurement` unless it is known. `key` is a series key
    /// ([`crate::line_protocol::series_key`]), whose tags are indexed.
    pub fn add(&mut self, key: &Arc<str>, measurement: &str) {
        let m = match self.measurements.get_mut(measurement) {
            Some(m) => m,
            None => self.measurements.entry(measurement.to_owned()).or_default(),
        };
        m.add(key);
    }

    pub fn measurement(&self, name: &str) -> Option<&MeasurementIndex> {
        self.measurements.get(name)
    }

    pub fn measurements(&self) -> impl Iterator<Item = (&str, &MeasurementIndex)> {
        self.measurements.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// The ids in both sorted lists.
fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

impl MeasurementIndex {
    fn add(&mut self, key: &Arc<str>) {
        let hash = self.hasher.hash_one(&**key);
        let keys = &self.keys;
        if self
            .by_key
            .find(hash, |&id| *keys[id as usize] == **key)
            .is_some()
        {
            return;
        }
        let id = u32::try_from(self.keys.len())
            .ok()
            .filter(|&id| id < MANY)
            .expect("fewer than 2^31 series in a measurement");
        for (k, v) in crate::line_protocol::key_tags(key) {
            let values = match self.postings.get_mut(&*k) {
                Some(values) => values,
                None => self.postings.entry(k.into_owned()).or_default(),
            };
            values.push(&self.hasher, &v, id);
        }
        self.keys.push(key.clone());
        let (keys, hasher) = (&self.keys, &self.hasher);
        self.by_key
            .insert_unique(hash, id, |&i| hasher.hash_one(&*keys[i as usize]));
    }

    /// Every series number in key order: those added since the last call are sorted and
    /// merged in (a read after a load of a million series pays for the sort once).
    fn ordered(&self) -> Vec<u32> {
        let mut order = self.order.lock().unwrap_or_else(|e| e.into_inner());
        let known = order.len();
        if known < self.keys.len() {
            let key = |id: &u32| &*self.keys[*id as usize];
            let mut new: Vec<u32> = (known as u32..self.keys.len() as u32).collect();
            // Series from a column file come in key order.
            if !new.is_sorted_by_key(key) {
                new.sort_unstable_by(|a, b| key(a).cmp(key(b)));
            }
            if known == 0 {
                *order = new;
            } else {
                let old = std::mem::take(&mut *order);
                let mut merged = Vec::with_capacity(old.len() + new.len());
                let (mut i, mut j) = (0, 0);
                while i < old.len() && j < new.len() {
                    if key(&old[i]) <= key(&new[j]) {
                        merged.push(old[i]);
                        i += 1;
                    } else {
                        merged.push(new[j]);
                        j += 1;
                    }
                }
                merged.extend_from_slice(&old[i..]);
                merged.extend_from_slice(&new[j..]);
                *order = merged;
            }
        }
        order.clone()
    }

    /// Every series with its tags, in key order.
    pub fn series(&self) -> impl Iterator<Item = (&Arc<str>, Tags)> {
        self.ordered().into_iter().map(|id| {
            let key = &self.keys[id as usize];
            (key, tags_of(key))
        })
    }

    /// Each tag key with its values.
    pub fn tag_values(&self) -> impl Iterator<Item = (&str, impl Iterator<Item = &str>)> {
        self.postings
            .iter()
            .map(|(k, values)| (k.as_str(), values.values()))
    }

    /// The series the selector allows, in key order.
    pub fn select(&self, selector: &TagSelector) -> Vec<(&Arc<str>, Tags)> {
        match self.ids(selector) {
            None => self.series().collect(),
            Some(mut ids) => {
                ids.sort_unstable_by(|&a, &b| self.keys[a as usize].cmp(&self.keys[b as usize]));
                ids.into_iter()
                    .map(|id| {
                        let key = &self.keys[id as usize];
                        (key, tags_of(key))
                    })
                    .collect()
            }
        }
    }

    /// The series numbers (increasing) a selector allows, or None for "any series".
    fn ids(&self, selector: &TagSelector) -> Option<Vec<u32>> {
        match selector {
            TagSelector::All => None,
            // An empty value matches the series that lack the tag: not in the postings.
            TagSelector::Eq(_, v) if v.is_empty() => None,
            TagSelector::Eq(k, v) => Some(
                self.postings
                    .get(k)
                    .and_then(|values| values.get(&self.hasher, v))
                    .map(|ids| ids.to_vec())
                    .unwrap_or_default(),
            ),
            // A pattern that matches "" also matches the series that lack the tag.
            TagSelector::Matches(_, re) if re.is_match("") => None,
            TagSelector::Matches(k, re) => {
                let mut ids = Vec::new();
                if let Some(values) = self.postings.get(k) {
                    for at in 0..values.ends.len() as u32 {
                        if re.is_match(values.value(at)) {
                            ids.extend_from_slice(values.ids(at));
                        }
                    }
                }
                ids.sort_unstable();
                ids.dedup();
                Some(ids)
            }
            TagSelector::And(terms) => terms
                .iter()
                .filter_map(|t| self.ids(t))
                .reduce(|a, b| intersect(&a, &b)),
            TagSelector::Or(terms) => {
                let mut all = Vec::new();
                for t in terms {
                    all.extend(self.ids(t)?);
                }
                all.sort_unstable();
                all.dedup();
                Some(all)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> SeriesIndex {
        let mut i = SeriesIndex::default();
        for key in [
            "cpu,host=a,region=eu",
            "cpu,host=b,region=eu",
            "cpu,host=c,region=us",
        ] {
            i.add(&key.into(), "cpu");
        }
        i.add(&"cpu".into(), "cpu");
        i
    }

    fn keys(selector: TagSelector) -> Vec<String> {
        let i = index();
        let m = i.measurement("cpu").unwrap();
        m.select(&selector)
            .into_iter()
            .map(|(k, _)| k.to_string())
            .collect()
    }

    fn eq(k: &str, v: &str) -> TagSelector {
        TagSelector::Eq(k.into(), v.into())
    }

    #[test]
    fn selectors_narrow_by_tag_values() {
        assert_eq!(keys(eq("host", "b")), ["cpu,host=b,region=eu"]);
        assert_eq!(keys(eq("host", "zz")), Vec::<String>::new());
        assert_eq!(
            keys(TagSelector::Or(vec![eq("host", "c"), eq("host", "a")])),
            ["cpu,host=a,region=eu", "cpu,host=c,region=us"]
        );
        assert_eq!(
            keys(TagSelector::And(vec![eq("region", "eu"), eq("host", "b")])),
            ["cpu,host=b,region=eu"]
        );
    }

    #[test]
    fn regular_expressions_select_by_the_tags_values() {
        let re = |k: &str, p: &str| TagSelector::Matches(k.into(), regex::Regex::new(p).unwrap());
        assert_eq!(
            keys(re("host", "^[ac]$")),
            ["cpu,host=a,region=eu", "cpu,host=c,region=us"]
        );
        assert_eq!(keys(re("region", "^e")).len(), 2);
        assert_eq!(keys(re("rack", "x")), Vec::<String>::new());
        // A pattern matching "" matches the series without the tag too: every series.
        assert_eq!(keys(re("host", "^$|a")).len(), 4);
    }

    #[test]
    fn what_the_index_cannot_decide_yields_every_series() {
        // `host = ''` matches the series without a host tag.
        assert_eq!(keys(eq("host", "")).len(), 4);
        assert_eq!(
            keys(TagSelector::Or(vec![eq("host", "a"), TagSelector::All])).len(),
            4
        );
        // One unknown side of an AND leaves the other to narrow.
        assert_eq!(
            keys(TagSelector::And(vec![TagSelector::All, eq("region", "us")])),
            ["cpu,host=c,region=us"]
        );
    }

    #[test]
    fn a_series_is_added_once() {
        let mut i = index();
        i.add(&"cpu,host=a,region=eu".into(), "cpu");
        let m = i.measurement("cpu").unwrap();
        assert_eq!(m.select(&eq("host", "a")).len(), 1);
        assert_eq!(m.series().count(), 4);
    }

    #[test]
    fn series_come_in_key_order_whenever_they_were_added() {
        let mut i = SeriesIndex::default();
        let mut want = Vec::new();
        for round in 0..3 {
            for n in [7, 3, 9, 1, 5] {
                let key = format!("cpu,host=h{n}{round},region=r{}", n % 2);
                i.add(&key.as_str().into(), "cpu");
                want.push(key);
            }
            want.sort();
            let m = i.measurement("cpu").unwrap();
            let got: Vec<String> = m.series().map(|(k, _)| k.to_string()).collect();
            assert_eq!(got, want);
            let odd: Vec<String> = m
                .select(&eq("region", "r1"))
                .into_iter()
                .map(|(k, _)| k.to_string())
                .collect();
            assert_eq!(odd, want);
        }
    }
}
