//! A shard's series by measurement, with an inverted index of their tag values: a read
//! finds the series its condition names (`host = 'a'`) without judging every series of
//! the measurement. A series is its key, shared with the head or column file that
//! holds it; its tags are read from the key when asked for (they were two thirds of the
//! index's memory, and only listings and the series a read selects need them).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

type RandomState = foldhash::fast::RandomState;

/// A series' tags, sorted by key, as reads and listings pass them on.
pub type Tags = Arc<[(String, String)]>;

/// A measurement's name with its series (key and tags), as listings return them.
pub type MeasurementSeries = (String, Vec<(Arc<str>, Tags)>);

#[derive(Debug, Default)]
pub struct SeriesIndex {
    measurements: HashMap<String, MeasurementIndex, RandomState>,
}

#[derive(Debug, Default)]
pub struct MeasurementIndex {
    /// Series keys, in order.
    series: BTreeSet<Arc<str>>,
    /// Tag key → tag value → the keys of the series with that value.
    postings: HashMap<String, HashMap<Box<str>, Postings, RandomState>, RandomState>,
}

/// The series of one tag value: most values (a host's name) have one, kept without a Vec.
#[derive(Debug)]
enum Postings {
    One(Arc<str>),
    Many(Vec<Arc<str>>),
}

impl Postings {
    fn push(&mut self, key: Arc<str>) {
        match self {
            Postings::One(first) => *self = Postings::Many(vec![first.clone(), key]),
            Postings::Many(keys) => keys.push(key),
        }
    }

    fn keys(&self) -> &[Arc<str>] {
        match self {
            Postings::One(key) => std::slice::from_ref(key),
            Postings::Many(keys) => keys,
        }
    }
}

/// The tags of a series key.
fn tags_of(key: &str) -> Tags {
    crate::line_protocol::key_tags(key)
        .into_iter()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The series a read can be narrowed to from the index: equality of tags, combined. It
/// only ever narrows; the read still judges each series it yields by the whole condition.
#[derive(Debug, Clone, PartialEq)]
pub enum TagSelector {
    All,
    /// Series whose tag `.0` is `.1`.
    Eq(String, String),
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
        if m.series.contains(key) {
            return;
        }
        for (k, v) in crate::line_protocol::key_tags(key) {
            let values = match m.postings.get_mut(&*k) {
                Some(values) => values,
                None => m.postings.entry(k.into_owned()).or_default(),
            };
            match values.get_mut(&*v) {
                Some(keys) => keys.push(key.clone()),
                None => {
                    values.insert(v.into(), Postings::One(key.clone()));
                }
            }
        }
        m.series.insert(key.clone());
    }

    pub fn measurement(&self, name: &str) -> Option<&MeasurementIndex> {
        self.measurements.get(name)
    }

    pub fn measurements(&self) -> impl Iterator<Item = (&str, &MeasurementIndex)> {
        self.measurements.iter().map(|(k, v)| (k.as_str(), v))
    }
}

impl MeasurementIndex {
    /// Every series with its tags, in key order.
    pub fn series(&self) -> impl Iterator<Item = (&Arc<str>, Tags)> {
        self.series.iter().map(|k| (k, tags_of(k)))
    }

    /// Each tag key with its values.
    pub fn tag_values(&self) -> impl Iterator<Item = (&str, impl Iterator<Item = &str>)> {
        self.postings
            .iter()
            .map(|(k, values)| (k.as_str(), values.keys().map(|v| &**v)))
    }

    /// The series the selector allows, in key order.
    pub fn select(&self, selector: &TagSelector) -> Vec<(&Arc<str>, Tags)> {
        match self.keys(selector) {
            None => self.series().collect(),
            Some(keys) => keys
                .into_iter()
                .filter_map(|k| self.series.get(k))
                .map(|k| (k, tags_of(k)))
                .collect(),
        }
    }

    /// The keys a selector allows, or None for "any series".
    fn keys(&self, selector: &TagSelector) -> Option<BTreeSet<&str>> {
        match selector {
            TagSelector::All => None,
            // An empty value matches the series that lack the tag: not in the postings.
            TagSelector::Eq(_, v) if v.is_empty() => None,
            TagSelector::Eq(k, v) => Some(
                self.postings
                    .get(k)
                    .and_then(|values| values.get(v.as_str()))
                    .map(|keys| keys.keys().iter().map(|k| k.as_ref()).collect())
                    .unwrap_or_default(),
            ),
            TagSelector::And(terms) => terms
                .iter()
                .filter_map(|t| self.keys(t))
                .reduce(|a, b| a.intersection(&b).copied().collect()),
            TagSelector::Or(terms) => {
                let mut all = BTreeSet::new();
                for t in terms {
                    all.extend(self.keys(t)?);
                }
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
}
