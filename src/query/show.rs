//! `SHOW SERIES`, `SHOW TAG KEYS`, `SHOW TAG VALUES` and `SHOW FIELD KEYS`, answered from
//! the shards' indexes (no data is read), in InfluxDB 1.x's shapes.

use super::eval::{matches, Regexes, Row};
use super::parser::ast::{Expr, MeasurementName, Source, TagKeyPredicate};
use super::result::Series;
use crate::storage::column::FieldType;
use crate::storage::series_index::Tags;
use crate::storage::Storage;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// Series of a database that match the statement's sources and (tag) condition, by
/// measurement, then key.
pub struct Listing {
    pub by_measurement: BTreeMap<String, BTreeMap<Arc<str>, Tags>>,
}

pub fn list(
    storage: &Storage,
    database: &str,
    sources: &[Source],
    condition: Option<&Expr>,
) -> Result<Listing, String> {
    let mut regexes = Regexes::default();
    if let Some(c) = condition {
        Regexes::compile(c, &mut regexes)?;
    }
    let wanted = measurement_filter(sources)?;
    let (fields, no_keys) = (HashMap::new(), HashSet::new());
    let mut found: BTreeMap<String, Vec<(Arc<str>, Tags)>> = BTreeMap::new();
    for shard in storage.shards_of(database, None) {
        for (measurement, mut series) in shard.series_list(&wanted) {
            if let Some(c) = condition {
                series.retain(|(_, tags)| {
                    let row = Row {
                        time: 0,
                        tags,
                        fields: &fields,
                        field_keys: &no_keys,
                    };
                    matches(c, &row, 0, &regexes)
                });
            }
            found.entry(measurement).or_default().extend(series);
        }
    }
    // Each shard's series come in key order: a map is built from them in one pass.
    let by_measurement = found
        .into_iter()
        .filter(|(_, series)| !series.is_empty())
        .map(|(m, series)| (m, series.into_iter().collect()))
        .collect();
    Ok(Listing { by_measurement })
}

/// Which measurements a SHOW statement's sources name (all without any).
pub fn measurement_filter(sources: &[Source]) -> Result<impl Fn(&str) -> bool, String> {
    let mut names = Vec::new();
    for s in sources {
        match s {
            Source::Measurement(m) => names.push(match &m.name {
                MeasurementName::Name(n) => Err(n.clone()),
                MeasurementName::Regex(r) => {
                    Ok(regex::Regex::new(&r.pattern).map_err(|e| format!("invalid regex: {e}"))?)
                }
            }),
            Source::Subquery(_) => {
                return Err("subqueries are not supported in SHOW statements".into())
            }
        }
    }
    Ok(move |m: &str| {
        names.is_empty()
            || names.iter().any(|r| match r {
                Err(name) => name == m,
                Ok(re) => re.is_match(m),
            })
    })
}

fn page<T>(items: impl Iterator<Item = T>, offset: u64, limit: u64) -> Vec<T> {
    items
        .skip(offset as usize)
        .take(super::select::limit(limit))
        .collect()
}

pub fn series(listing: &Listing, offset: u64, limit: u64) -> Vec<Series> {
    let keys: BTreeSet<&Arc<str>> = listing
        .by_measurement
        .values()
        .flat_map(|s| s.keys())
        .collect();
    let values = page(
        keys.into_iter().map(|k| vec![Value::from(k.as_ref())]),
        offset,
        limit,
    );
    if values.is_empty() {
        return Vec::new();
    }
    vec![Series {
        name: String::new(),
        tags: None,
        columns: vec!["key".into()],
        values,
    }]
}

pub fn tag_keys(listing: &Listing, offset: u64, limit: u64) -> Vec<Series> {
    listing
        .by_measurement
        .iter()
        .filter_map(|(m, series)| {
            let keys: BTreeSet<&String> = series
                .values()
                .flat_map(|tags| tags.iter().map(|(k, _)| k))
                .collect();
            let values = page(
                keys.into_iter().map(|k| vec![Value::from(k.clone())]),
                offset,
                limit,
            );
            (!values.is_empty()).then(|| Series {
                name: m.clone(),
                tags: None,
                columns: vec!["tagKey".into()],
                values,
            })
        })
        .collect()
}

pub fn tag_values(
    listing: &Listing,
    key: &TagKeyPredicate,
    offset: u64,
    limit: u64,
) -> Result<Vec<Series>, String> {
    let key_matches = tag_key_matcher(key)?;
    let pairs = listing
        .by_measurement
        .iter()
        .map(|(m, series)| {
            let pairs = series
                .values()
                .flat_map(|tags| tags.iter().filter(|(k, _)| key_matches(k)).cloned())
                .collect();
            (m.clone(), pairs)
        })
        .collect();
    Ok(tag_value_series(pairs, offset, limit))
}

/// `SHOW TAG VALUES` without a condition: from the shards' tag indexes, listing no series.
pub fn all_tag_values(
    storage: &Storage,
    database: &str,
    sources: &[Source],
    key: &TagKeyPredicate,
    offset: u64,
    limit: u64,
) -> Result<Vec<Series>, String> {
    let wanted = measurement_filter(sources)?;
    let key_matches = tag_key_matcher(key)?;
    let mut pairs: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for shard in storage.shards_of(database, None) {
        for (m, found) in shard.tag_values(&wanted, &key_matches) {
            pairs.entry(m).or_default().extend(found);
        }
    }
    Ok(tag_value_series(pairs, offset, limit))
}

/// Which tag keys a `WITH KEY` predicate takes.
pub fn tag_key_matcher(key: &TagKeyPredicate) -> Result<impl Fn(&str) -> bool + '_, String> {
    let re = match key {
        TagKeyPredicate::EqRegex(r) | TagKeyPredicate::NeqRegex(r) => {
            Some(regex::Regex::new(&r.pattern).map_err(|e| format!("invalid regex: {e}"))?)
        }
        _ => None,
    };
    Ok(move |k: &str| match key {
        TagKeyPredicate::Eq(name) => k == name,
        TagKeyPredicate::Neq(name) => k != name,
        TagKeyPredicate::In(names) => names.iter().any(|n| n == k),
        TagKeyPredicate::EqRegex(_) => re.as_ref().is_some_and(|r| r.is_match(k)),
        TagKeyPredicate::NeqRegex(_) => re.as_ref().is_some_and(|r| !r.is_match(k)),
    })
}

/// A series per measurement of its distinct (key, value) pairs, in order, paged.
fn tag_value_series(
    pairs: BTreeMap<String, Vec<(String, String)>>,
    offset: u64,
    limit: u64,
) -> Vec<Series> {
    pairs
        .into_iter()
        .filter_map(|(m, mut pairs)| {
            // Sorted once rather than kept in a set: a tenth of the comparisons.
            pairs.sort_unstable();
            pairs.dedup();
            let values = page(
                pairs
                    .into_iter()
                    .map(|(k, v)| vec![Value::from(k), Value::from(v)]),
                offset,
                limit,
            );
            (!values.is_empty()).then(|| Series {
                name: m,
                tags: None,
                columns: vec!["key".into(), "value".into()],
                values,
            })
        })
        .collect()
}

pub fn field_keys(
    storage: &Storage,
    database: &str,
    listing: &Listing,
    offset: u64,
    limit: u64,
) -> Vec<Series> {
    let shards = storage.shards_of(database, None);
    listing
        .by_measurement
        .keys()
        .filter_map(|m| {
            let mut types: BTreeMap<String, FieldType> = BTreeMap::new();
            for shard in &shards {
                for (name, ty) in shard.field_types(m) {
                    types.entry(name).or_insert(ty);
                }
            }
            let values = page(
                types
                    .into_iter()
                    .map(|(k, t)| vec![Value::from(k), Value::from(t.name())]),
                offset,
                limit,
            );
            (!values.is_empty()).then(|| Series {
                name: m.clone(),
                tags: None,
                columns: vec!["fieldKey".into(), "fieldType".into()],
                values,
            })
        })
        .collect()
}
