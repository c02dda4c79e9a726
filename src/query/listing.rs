//! `SHOW SERIES`, `SHOW TAG KEYS`, `SHOW TAG VALUES` and `SHOW FIELD KEYS`, answered from
//! the shards' indexes (no data is read), in InfluxDB 1.x's shapes.

use super::error::QueryError;
use super::eval::{matches, without_time, Regexes, Row};
use super::limits::QueryLimits;
use super::parser::ast::{Expr, MeasurementName, Source, TagKeyPredicate};
use super::result::Series;
use crate::storage::column::FieldType;
use crate::storage::series_index::Tags;
use crate::storage::{Shard, Storage};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// Which shards of a database a SHOW statement reads. InfluxDB 1.x answers some SHOW
/// statements from its database-wide index and rewrites others into queries of the
/// default retention policy; this says which, so that each answers as it does there.
pub(super) struct Scope<'a> {
    pub database: &'a str,
    /// The policy a source that names none reads: None for every policy.
    pub unnamed_policy: Option<&'a str>,
    /// Whether a source's own policy narrows what it reads (1.x ignores it in some
    /// statements).
    pub named_policies: bool,
    /// Shards are read when their group overlaps this [start, end] range (1.x's
    /// shard-granular answer to a time condition).
    pub range: (i64, i64),
}

impl<'a> Scope<'a> {
    /// Every policy of the database, whatever its sources name.
    pub(super) fn database(database: &'a str) -> Scope<'a> {
        Scope {
            database,
            unnamed_policy: None,
            named_policies: false,
            range: (i64::MIN, i64::MAX),
        }
    }

    /// Sources that name no policy read `default_policy`, the others their own.
    pub(super) fn policy(database: &'a str, default_policy: &'a str) -> Scope<'a> {
        Scope {
            unnamed_policy: Some(default_policy),
            named_policies: true,
            ..Scope::database(database)
        }
    }

    pub(super) fn within(self, range: (i64, i64)) -> Scope<'a> {
        Scope { range, ..self }
    }

    /// The shards read, each with which of its measurements the sources name.
    pub(super) fn shards<'s>(
        &'s self,
        storage: &Storage,
        sources: &'s [Source],
    ) -> Result<Vec<(Arc<Shard>, Wants<'s>)>, QueryError> {
        let wanted = Arc::new(Wanted::of(sources)?);
        storage.check_readable(self.database, None, self.range)?;
        Ok(storage
            .shards_of(self.database, None)
            .into_iter()
            .filter(|s| s.info.start <= self.range.1 && s.info.end > self.range.0)
            .filter(|s| wanted.any_in(self, &s.info.retention_policy))
            .map(|shard| {
                let wanted = wanted.clone();
                let policy = shard.info.retention_policy.clone();
                let wants: Wants<'s> = Box::new(move |m| wanted.matches(self, &policy, m));
                (shard, wants)
            })
            .collect())
    }
}

/// Which of a shard's measurements a statement's sources name.
pub(super) type Wants<'s> = Box<dyn Fn(&str) -> bool + 's>;

/// The measurements a SHOW statement's sources name (all without any), with the policy
/// each names.
struct Wanted {
    names: Vec<(Option<String>, Result<regex::Regex, String>)>,
}

impl Wanted {
    fn of(sources: &[Source]) -> Result<Wanted, QueryError> {
        let mut names = Vec::new();
        for s in sources {
            match s {
                Source::Measurement(m) => names.push((
                    m.retention_policy.clone(),
                    match &m.name {
                        MeasurementName::Name(n) => Err(n.clone()),
                        MeasurementName::Regex(r) => Ok(super::patterns::compiled(&r.pattern)?),
                    },
                )),
                Source::Subquery(_) => {
                    return Err(QueryError::not_supported(
                        "subqueries are not supported in SHOW statements",
                    ))
                }
            }
        }
        Ok(Wanted { names })
    }

    fn reads(scope: &Scope, named: Option<&String>, policy: &str) -> bool {
        match named {
            Some(p) if scope.named_policies => p == policy,
            _ => scope.unnamed_policy.is_none_or(|d| d == policy),
        }
    }

    fn any_in(&self, scope: &Scope, policy: &str) -> bool {
        if self.names.is_empty() {
            return Self::reads(scope, None, policy);
        }
        self.names
            .iter()
            .any(|(named, _)| Self::reads(scope, named.as_ref(), policy))
    }

    fn matches(&self, scope: &Scope, policy: &str, m: &str) -> bool {
        if self.names.is_empty() {
            return Self::reads(scope, None, policy);
        }
        self.names.iter().any(|(named, name)| {
            Self::reads(scope, named.as_ref(), policy)
                && match name {
                    Err(name) => name == m,
                    Ok(re) => re.is_match(m),
                }
        })
    }
}

/// Series of a database that match the statement's sources and (tag) condition, by
/// measurement, then key, with the shards each measurement was found in.
pub(super) struct Listing {
    pub by_measurement: BTreeMap<String, BTreeMap<Arc<str>, Tags>>,
    shards_of: BTreeMap<String, Vec<Arc<Shard>>>,
}

impl Listing {
    /// A measurement's field types, in the shards it was listed from.
    pub(super) fn field_types(&self, measurement: &str) -> BTreeMap<String, FieldType> {
        let mut types = BTreeMap::new();
        for shard in self.shards_of.get(measurement).into_iter().flatten() {
            for (name, ty) in shard.field_types(measurement) {
                types.entry(name).or_insert(ty);
            }
        }
        types
    }
}

/// `condition`'s terms on time are answered by the scope's range (give it
/// [`Scope::within`] that range); the others are judged on each series' tags.
pub(super) fn list(
    storage: &Storage,
    scope: &Scope,
    sources: &[Source],
    condition: Option<&Expr>,
    limits: &QueryLimits,
) -> Result<Listing, QueryError> {
    let condition = condition.map(without_time);
    let mut regexes = Regexes::default();
    if let Some(c) = &condition {
        Regexes::compile(c, &mut regexes)?;
    }
    let (fields, no_keys) = (HashMap::new(), crate::query::scan::FieldKeys::default());
    let mut found: BTreeMap<String, Vec<(Arc<str>, Tags)>> = BTreeMap::new();
    let mut shards_of: BTreeMap<String, Vec<Arc<Shard>>> = BTreeMap::new();
    for (shard, wanted) in scope.shards(storage, sources)? {
        limits.check_deadline()?;
        for (measurement, mut series) in shard.series_list(&wanted) {
            limits.check_deadline()?;
            // A series' key and tags, about as long again.
            let bytes: usize = series.iter().map(|(key, _)| 2 * key.len() + 64).sum();
            limits.charge(bytes)?;
            if let Some(c) = &condition {
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
            if !series.is_empty() {
                shards_of
                    .entry(measurement.clone())
                    .or_default()
                    .push(shard.clone());
                found.entry(measurement).or_default().extend(series);
            }
        }
    }
    // Each shard's series come in key order: a map is built from them in one pass.
    let by_measurement = found
        .into_iter()
        .map(|(m, series)| (m, series.into_iter().collect()))
        .collect();
    Ok(Listing {
        by_measurement,
        shards_of,
    })
}

/// Measurements with a series in the scope that the sources name.
pub(super) fn measurements(
    storage: &Storage,
    scope: &Scope,
    sources: &[Source],
    limits: &QueryLimits,
) -> Result<BTreeSet<String>, QueryError> {
    let mut names = BTreeSet::new();
    for (shard, wanted) in scope.shards(storage, sources)? {
        limits.check_deadline()?;
        names.extend(shard.measurements().into_iter().filter(|m| wanted(m)));
    }
    Ok(names)
}

fn page<T>(items: impl Iterator<Item = T>, offset: u64, limit: u64) -> Vec<T> {
    items
        .skip(offset as usize)
        .take(super::rows::limit(limit))
        .collect()
}

pub(super) fn series(listing: &Listing, offset: u64, limit: u64) -> Vec<Series> {
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

pub(super) fn tag_keys(listing: &Listing, offset: u64, limit: u64) -> Vec<Series> {
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

pub(super) fn tag_values(
    listing: &Listing,
    key: &TagKeyPredicate,
    offset: u64,
    limit: u64,
) -> Result<Vec<Series>, QueryError> {
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
pub(super) fn all_tag_values(
    storage: &Storage,
    scope: &Scope,
    sources: &[Source],
    key: &TagKeyPredicate,
    offset: u64,
    limit: u64,
    limits: &QueryLimits,
) -> Result<Vec<Series>, QueryError> {
    let key_matches = tag_key_matcher(key)?;
    let mut pairs: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (shard, wanted) in scope.shards(storage, sources)? {
        limits.check_deadline()?;
        for (m, found) in shard.tag_values(&wanted, &key_matches) {
            let bytes: usize = found.iter().map(|(k, v)| k.len() + v.len() + 48).sum();
            limits.charge(bytes)?;
            pairs.entry(m).or_default().extend(found);
        }
    }
    Ok(tag_value_series(pairs, offset, limit))
}

/// Which tag keys a `WITH KEY` predicate takes.
pub(super) fn tag_key_matcher(
    key: &TagKeyPredicate,
) -> Result<impl Fn(&str) -> bool + '_, QueryError> {
    let re = match key {
        TagKeyPredicate::EqRegex(r) | TagKeyPredicate::NeqRegex(r) => {
            Some(super::patterns::compiled(&r.pattern)?)
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

pub(super) fn field_keys(listing: &Listing, offset: u64, limit: u64) -> Vec<Series> {
    listing
        .by_measurement
        .keys()
        .filter_map(|m| {
            let values = page(
                listing
                    .field_types(m)
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
