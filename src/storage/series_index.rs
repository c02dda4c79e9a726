//! A shard's series by measurement, with an inverted index of their tag values: a read
//! finds the series its condition names (`host = 'a'`) without judging every series of
//! the measurement, and listings share the tags instead of copying them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

type RandomState = foldhash::fast::RandomState;

/// A series' tags, sorted by key, shared between the index and the reads that return it.
pub type Tags = Arc<[(String, String)]>;

/// A measurement's name with its series (key and tags), as listings return them.
pub type MeasurementSeries = (String, Vec<(Arc<str>, Tags)>);

#[derive(Debug, Default)]
pub struct SeriesIndex {
    measurements: HashMap<String, MeasurementIndex, RandomState>,
}

#[derive(Debug, Default)]
pub struct MeasurementIndex {
    /// Series key → tags, in key order.
    series: BTreeMap<Arc<str>, Tags>,
    /// Tag key → tag value → the keys of the series with that value.
    postings: HashMap<String, HashMap<String, Vec<Arc<str>>, RandomState>, RandomState>,
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
    /// Adds a series unless it is known.
    pub fn add<T: AsRef<str>>(&mut self, key: &str, measurement: &str, tags: &[(T, T)]) {
        let m = match self.measurements.get_mut(measurement) {
            Some(m) => m,
            None => self.measurements.entry(measurement.to_owned()).or_default(),
        };
        if m.series.contains_key(key) {
            return;
        }
        let key: Arc<str> = Arc::from(key);
        let tags: Tags = tags
            .iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
            .collect();
        for (k, v) in tags.iter() {
            m.postings
                .entry(k.clone())
                .or_default()
                .entry(v.clone())
                .or_default()
                .push(key.clone());
        }
        m.series.insert(key, tags);
    }

    pub fn measurement(&self, name: &str) -> Option<&MeasurementIndex> {
        self.measurements.get(name)
    }

    pub fn measurements(&self) -> impl Iterator<Item = (&str, &MeasurementIndex)> {
        self.measurements.iter().map(|(k, v)| (k.as_str(), v))
    }
}

impl MeasurementIndex {
    /// Every series, in key order.
    pub fn series(&self) -> impl Iterator<Item = (&Arc<str>, &Tags)> {
        self.series.iter()
    }

    /// Each tag key with its values.
    pub fn tag_values(&self) -> impl Iterator<Item = (&str, impl Iterator<Item = &str>)> {
        self.postings
            .iter()
            .map(|(k, values)| (k.as_str(), values.keys().map(String::as_str)))
    }

    /// The series the selector allows, in key order.
    pub fn select(&self, selector: &TagSelector) -> Vec<(&Arc<str>, &Tags)> {
        match self.keys(selector) {
            None => self.series.iter().collect(),
            Some(keys) => keys
                .into_iter()
                .filter_map(|k| self.series.get_key_value(k))
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
                    .and_then(|values| values.get(v))
                    .map(|keys| keys.iter().map(|k| k.as_ref()).collect())
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
        for (key, host, region) in [
            ("cpu,host=a,region=eu", "a", "eu"),
            ("cpu,host=b,region=eu", "b", "eu"),
            ("cpu,host=c,region=us", "c", "us"),
        ] {
            i.add(key, "cpu", &[("host", host), ("region", region)]);
        }
        i.add("cpu", "cpu", &[] as &[(&str, &str)]);
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
        i.add(
            "cpu,host=a,region=eu",
            "cpu",
            &[("host", "a"), ("region", "eu")],
        );
        let m = i.measurement("cpu").unwrap();
        assert_eq!(m.select(&eq("host", "a")).len(), 1);
        assert_eq!(m.series().count(), 4);
    }
}
