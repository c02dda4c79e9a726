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

use std::collections::{BTreeSet, HashMap};
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
    /// are put in when a read asks for the order). Shared with the reads that asked, so
    /// that a read copies no list of a million series.
    order: Mutex<Arc<Vec<u32>>>,
    /// Tag key → tag value → the series with that value, in increasing number.
    postings: HashMap<String, TagValues, RandomState>,
    /// The keys of `postings`, in order, shared with the queries that asked for them (each
    /// SELECT does, of every shard of its database): a new key copies the set only while a
    /// query holds it.
    sorted_tag_keys: Arc<BTreeSet<String>>,
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
    /// Positions in value order, of the values added up to its length (the others are
    /// put in when a read asks for the order, as [`MeasurementIndex::order`]): listings
    /// answer in value order, and a pattern with a literal start (`/^host_1/`) judges
    /// only the values that start so.
    sorted: Mutex<Arc<Vec<u32>>>,
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

    /// Positions of every value in value order.
    fn in_order(&self) -> Arc<Vec<u32>> {
        let mut sorted = self.sorted.lock().unwrap_or_else(|e| e.into_inner());
        let known = sorted.len() as u32;
        let total = self.ends.len() as u32;
        if known < total {
            *sorted = Arc::new(merged_in(&sorted, known..total, |at| self.value(at)));
        }
        sorted.clone()
    }

    /// The values in order.
    fn values(&self) -> impl Iterator<Item = &str> {
        let order = self.in_order();
        (0..order.len()).map(move |i| self.value(order[i]))
    }

    /// Positions of the values, in value order, that may match `re`: those that start
    /// with its literal start, when it has one.
    fn candidates(&self, re: &regex::Regex) -> Vec<u32> {
        let order = self.in_order();
        let Some(prefix) = literal_prefix(re.as_str()) else {
            return order.to_vec();
        };
        let from = order.partition_point(|&at| self.value(at) < prefix.as_str());
        let len = order[from..].partition_point(|&at| self.value(at).starts_with(&prefix));
        order[from..from + len].to_vec()
    }
}

/// `known` (in the order `key` gives) with the numbers of `new` merged in: those added
/// since the order was last asked for are sorted (unless they came in order, as series
/// from a column file do) and merged, so that a read after a load of a million pays for
/// the sort once.
fn merged_in<'k, K: Ord + ?Sized + 'k>(
    known: &[u32],
    new: std::ops::Range<u32>,
    key: impl Fn(u32) -> &'k K,
) -> Vec<u32> {
    let mut new: Vec<u32> = new.collect();
    if !new.is_sorted_by_key(|&at| key(at)) {
        new.sort_unstable_by(|&a, &b| key(a).cmp(key(b)));
    }
    if known.is_empty() {
        return new;
    }
    let mut merged = Vec::with_capacity(known.len() + new.len());
    let (mut i, mut j) = (0, 0);
    while i < known.len() && j < new.len() {
        if key(known[i]) <= key(new[j]) {
            merged.push(known[i]);
            i += 1;
        } else {
            merged.push(new[j]);
            j += 1;
        }
    }
    merged.extend_from_slice(&known[i..]);
    merged.extend_from_slice(&new[j..]);
    merged
}

/// The text every match of `pattern` starts with, when the pattern is anchored at the
/// start and begins with plain characters (`^host_1[0-9]$` gives `host_1`); None when
/// that is not certain (no anchor, an alternation anywhere, flags, a class or an escape
/// of a letter first). A quantified last character is left out (`^ab?` gives `a`).
fn literal_prefix(pattern: &str) -> Option<String> {
    let rest = pattern.strip_prefix('^')?;
    if pattern.contains('|') {
        return None;
    }
    let mut prefix = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_ascii_alphanumeric()
                || matches!(c, '_' | '-' | ':' | '/' | ',' | '=' | '@' | '%') =>
            {
                prefix.push(c);
                chars.next();
            }
            '\\' => {
                let mut ahead = chars.clone();
                ahead.next();
                match ahead.next() {
                    Some(e) if e.is_ascii_punctuation() => {
                        prefix.push(e);
                        chars = ahead;
                    }
                    _ => break,
                }
            }
            '?' | '*' | '+' | '{' => {
                prefix.pop();
                break;
            }
            _ => break,
        }
    }
    (!prefix.is_empty()).then_some(prefix)
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
                None => {
                    Arc::make_mut(&mut self.sorted_tag_keys).insert(k.clone().into_owned());
                    self.postings.entry(k.into_owned()).or_default()
                }
            };
            values.push(&self.hasher, &v, id);
        }
        self.keys.push(key.clone());
        let (keys, hasher) = (&self.keys, &self.hasher);
        self.by_key
            .insert_unique(hash, id, |&i| hasher.hash_one(&*keys[i as usize]));
    }

    /// Every series number in key order (see [`merged_in`]).
    fn ordered(&self) -> Arc<Vec<u32>> {
        let mut order = self.order.lock().unwrap_or_else(|e| e.into_inner());
        let known = order.len() as u32;
        let total = self.keys.len() as u32;
        if known < total {
            let key = |id: u32| &*self.keys[id as usize];
            *order = Arc::new(merged_in(&order, known..total, key));
        }
        order.clone()
    }

    /// Every series with its tags, in key order.
    pub fn series(&self) -> impl Iterator<Item = (&Arc<str>, Tags)> {
        let order = self.ordered();
        (0..order.len()).map(move |i| {
            let key = &self.keys[order[i] as usize];
            (key, tags_of(key))
        })
    }

    /// The tag keys, in order.
    pub fn tag_keys(&self) -> &Arc<BTreeSet<String>> {
        &self.sorted_tag_keys
    }

    /// Each tag key with its values, both in order.
    pub fn tag_values(&self) -> impl Iterator<Item = (&str, impl Iterator<Item = &str>)> {
        let mut keys: Vec<(&String, &TagValues)> = self.postings.iter().collect();
        keys.sort_unstable_by_key(|(k, _)| *k);
        keys.into_iter()
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
                    for at in values.candidates(re) {
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

    #[test]
    fn tag_keys_are_sorted_and_a_set_taken_stays_as_it_was() {
        let mut i = index();
        let taken = i.measurement("cpu").unwrap().tag_keys().clone();
        assert_eq!(
            Vec::from_iter(taken.iter().map(String::as_str)),
            ["host", "region"]
        );
        i.add(&"cpu,az=1,host=d".into(), "cpu");
        let now = i.measurement("cpu").unwrap().tag_keys();
        assert_eq!(
            Vec::from_iter(now.iter().map(String::as_str)),
            ["az", "host", "region"]
        );
        assert_eq!(taken.len(), 2);
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
    fn a_patterns_literal_start_is_taken_only_when_every_match_has_it() {
        assert_eq!(literal_prefix("^host_1[0-9]$").as_deref(), Some("host_1"));
        assert_eq!(literal_prefix("^ab?c").as_deref(), Some("a"));
        assert_eq!(literal_prefix("^ab{2}").as_deref(), Some("a"));
        assert_eq!(literal_prefix(r"^a\.b").as_deref(), Some("a.b"));
        assert_eq!(literal_prefix("^us-west").as_deref(), Some("us-west"));
        for none in [
            "host",
            "^(?i)host",
            "^a|b",
            "b|^a",
            "^[ab]c",
            r"^\dx",
            "^a?",
            "^.x",
            "^",
        ] {
            assert_eq!(literal_prefix(none), None, "{none}");
        }
    }

    /// Values are judged from those with the pattern's literal start; what they select
    /// is what judging every value selects.
    #[test]
    fn patterns_select_what_judging_every_value_selects() {
        let mut i = SeriesIndex::default();
        let hosts = [
            "h1", "h10", "h19", "h1a", "h2", "h20", "g1", "i1", "h", "h1\\.x", "h1.x", "H1",
        ];
        for host in hosts {
            i.add(&format!("cpu,host={host}").as_str().into(), "cpu");
        }
        let m = i.measurement("cpu").unwrap();
        for pattern in [
            "^h1[0-9]$",
            "^h1",
            "^h1?",
            "^h1*0",
            "^h1.x",
            r"^h1\.x",
            "^h",
            "1$",
            "^(?i)h1$",
            "^h2|^g",
            "^i",
            "^j",
        ] {
            let re = regex::Regex::new(pattern).unwrap();
            let selected: Vec<String> = m
                .select(&TagSelector::Matches("host".into(), re.clone()))
                .into_iter()
                .map(|(k, _)| k.to_string())
                .collect();
            let mut every: Vec<String> = hosts
                .iter()
                .filter(|h| re.is_match(h))
                .map(|h| format!("cpu,host={h}"))
                .collect();
            every.sort();
            assert_eq!(selected, every, "{pattern}");
        }
    }

    #[test]
    fn tag_values_come_in_order_whenever_they_were_added() {
        let mut i = SeriesIndex::default();
        for (n, host) in ["c", "a", "d", "b"].into_iter().enumerate() {
            i.add(&format!("cpu,host={host},zone=z{n}").as_str().into(), "cpu");
        }
        let listed = |i: &SeriesIndex| -> Vec<(String, Vec<String>)> {
            i.measurement("cpu")
                .unwrap()
                .tag_values()
                .map(|(k, values)| (k.to_owned(), values.map(str::to_owned).collect()))
                .collect()
        };
        let first = listed(&i);
        assert_eq!(
            first[0],
            (
                "host".to_owned(),
                vec!["a", "b", "c", "d"]
                    .into_iter()
                    .map(String::from)
                    .collect()
            )
        );
        assert_eq!(first[1].0, "zone");
        i.add(&"cpu,host=bb,zone=z9".into(), "cpu");
        i.add(&"cpu,host=0,zone=z9".into(), "cpu");
        let hosts = &listed(&i)[0].1;
        assert_eq!(hosts, &["0", "a", "b", "bb", "c", "d"]);
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
