//! `DELETE`, `DROP SERIES` and `DROP MEASUREMENT`: each shard of the database holding
//! something they hit takes one tombstone record (see [`crate::storage::tombstone`]),
//! every tombstone of one statement with the same write version; the statement answers
//! once every shard's record is durable. Series are resolved to their keys here, when the
//! statement runs, so a tombstone means the same on every replay.

use super::Context;
use crate::proto::Tombstone;
use crate::query::error::QueryError;
use crate::query::eval::{is_time_name, matches, time_range, var_refs, without_time, Regexes, Row};
use crate::query::parser::ast::{
    DeleteStatement, DropSeriesStatement, Expr, MeasurementName, Source,
};
use crate::query::result::Series;
use crate::storage::{Shard, Storage};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// `DELETE [FROM sources] [WHERE tags and time]`: the points of matching series in the
/// time range, in every matching measurement.
pub(crate) async fn delete(
    cx: &Context<'_>,
    s: &DeleteStatement,
) -> Result<Vec<Series>, QueryError> {
    let (storage, database) = (cx.storage, &database_to_delete_from(cx).await?);
    let now = crate::catalog::now_nanos();
    let (min_time, max_time) = time_range(s.condition.as_ref(), now);
    let target = Target::new(&s.sources, s.condition.as_ref())?;
    writable(storage, database)?;
    let shards = storage.shards_of(database, None);
    // InfluxDB deletes whole points: a condition on a field is refused before anything
    // changes.
    for shard in &shards {
        for m in target.measurements_in(shard) {
            let fields = shard.field_types(&m);
            if target.names.iter().any(|n| fields.contains_key(n)) {
                return Err(QueryError::invalid(format!(
                    "shard {}: fields not supported in WHERE clause during deletion",
                    shard.info.id
                )));
            }
        }
    }
    let version = storage.next_version();
    let mut hit = Vec::new();
    for shard in shards {
        if shard.info.end <= min_time || shard.info.start > max_time {
            continue;
        }
        let tombstones: Vec<Tombstone> = target
            .series_in(&shard)
            .into_iter()
            .map(|(measurement, series_keys)| Tombstone {
                version,
                measurement,
                series_keys,
                min_time,
                max_time,
                drop_schema: false,
            })
            .collect();
        hit.push((shard, tombstones));
    }
    apply(hit).await?;
    Ok(Vec::new())
}

/// The `db` parameter of a DELETE or DROP (which name no database), as InfluxDB words
/// its absence.
async fn database_to_delete_from(cx: &Context<'_>) -> Result<String, QueryError> {
    let db = cx.database.unwrap_or_default().to_owned();
    if !cx
        .control
        .read(|c| c.catalog.databases.contains_key(&db))
        .await
    {
        return Err(QueryError::DatabaseNotFound(db));
    }
    Ok(db)
}

/// A delete must reach every shard of the database: one left out (quarantined) would
/// bring the deleted points back when it is restored.
fn writable(storage: &Storage, database: &str) -> Result<(), QueryError> {
    storage.check_readable(database, None, (i64::MIN, i64::MAX))?;
    Ok(())
}

/// `DROP SERIES [FROM sources] [WHERE tags]`: matching series, over all time.
pub(crate) async fn drop_series(
    cx: &Context<'_>,
    s: &DropSeriesStatement,
) -> Result<Vec<Series>, QueryError> {
    let (storage, database) = (cx.storage, &database_to_delete_from(cx).await?);
    let target = Target::new(&s.sources, s.condition.as_ref())?;
    if target.has_time {
        return Err(QueryError::invalid(
            "DROP SERIES doesn't support time in WHERE clause",
        ));
    }
    writable(storage, database)?;
    let version = storage.next_version();
    let hit = storage
        .shards_of(database, None)
        .into_iter()
        .map(|shard| {
            let tombstones = target
                .series_in(&shard)
                .into_iter()
                .map(|(measurement, series_keys)| everything(version, measurement, series_keys))
                .collect();
            (shard, tombstones)
        })
        .collect();
    apply(hit).await?;
    Ok(Vec::new())
}

/// `DROP MEASUREMENT name`: every series of it over all time, and its field types, so a
/// later write may give its fields other types.
pub(crate) async fn drop_measurement(
    cx: &Context<'_>,
    name: &str,
) -> Result<Vec<Series>, QueryError> {
    let (storage, database) = (cx.storage, &database_to_delete_from(cx).await?);
    writable(storage, database)?;
    let version = storage.next_version();
    let hit = storage
        .shards_of(database, None)
        .into_iter()
        .filter(|shard| !shard.field_types(name).is_empty())
        .map(|shard| {
            let mut t = everything(version, name.to_owned(), Vec::new());
            t.drop_schema = true;
            (shard, vec![t])
        })
        .collect();
    apply(hit).await?;
    Ok(Vec::new())
}

fn everything(version: u64, measurement: String, series_keys: Vec<String>) -> Tombstone {
    Tombstone {
        version,
        measurement,
        series_keys,
        min_time: i64::MIN,
        max_time: i64::MAX,
        drop_schema: false,
    }
}

/// Appends each shard's tombstones, all at once; shards with none are left alone.
async fn apply(hit: Vec<(Arc<Shard>, Vec<Tombstone>)>) -> Result<(), QueryError> {
    let writes = hit
        .into_iter()
        .filter(|(_, tombstones)| !tombstones.is_empty())
        .map(|(shard, tombstones)| async move { shard.delete(tombstones).await });
    for result in futures_util::future::join_all(writes).await {
        result?;
    }
    Ok(())
}

/// Which measurements and series a statement's sources and condition select.
struct Target {
    /// Measurement names (Err) or patterns (Ok); empty: every measurement.
    sources: Vec<Result<regex::Regex, String>>,
    /// The condition with its terms on time taken as true: what the tags must satisfy.
    tags: Option<Expr>,
    regexes: Regexes,
    /// Names the condition refers to, but `time`.
    names: HashSet<String>,
    has_time: bool,
}

impl Target {
    fn new(sources: &[Source], condition: Option<&Expr>) -> Result<Target, QueryError> {
        let mut measurements = Vec::new();
        for s in sources {
            match s {
                Source::Measurement(m) => measurements.push(match &m.name {
                    MeasurementName::Name(n) => Err(n.clone()),
                    MeasurementName::Regex(r) => Ok(regex::Regex::new(&r.pattern)?),
                }),
                Source::Subquery(_) => {
                    return Err(QueryError::not_supported(
                        "subqueries are not supported here",
                    ))
                }
            }
        }
        let mut regexes = Regexes::default();
        let (mut names, mut has_time) = (HashSet::new(), false);
        if let Some(c) = condition {
            Regexes::compile(c, &mut regexes)?;
            var_refs(c, &mut names);
            has_time = names.iter().any(|n| is_time_name(n));
            names.retain(|n| !is_time_name(n));
        }
        Ok(Target {
            sources: measurements,
            tags: condition.map(without_time),
            regexes,
            names,
            has_time,
        })
    }

    fn wants(&self, measurement: &str) -> bool {
        self.sources.is_empty()
            || self.sources.iter().any(|s| match s {
                Err(name) => name == measurement,
                Ok(re) => re.is_match(measurement),
            })
    }

    fn measurements_in(&self, shard: &Shard) -> Vec<String> {
        shard
            .measurements()
            .into_iter()
            .filter(|m| self.wants(m))
            .collect()
    }

    /// Per measurement of the shard, the keys of the series hit (empty: all of them, when
    /// the condition says nothing of tags).
    fn series_in(&self, shard: &Shard) -> BTreeMap<String, Vec<String>> {
        let mut hit: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let (fields, no_keys) = (HashMap::new(), crate::query::scan::FieldKeys::default());
        for (measurement, series) in shard.series_list(&|m| self.wants(m)) {
            let keys = hit.entry(measurement).or_default();
            if self.names.is_empty() {
                continue; // every series of the measurement
            }
            for (key, tags) in series {
                let row = Row {
                    time: 0,
                    tags: &tags,
                    fields: &fields,
                    field_keys: &no_keys,
                };
                if self
                    .tags
                    .as_ref()
                    .is_none_or(|c| matches(c, &row, 0, &self.regexes))
                {
                    keys.push(key.to_string());
                }
            }
        }
        if !self.names.is_empty() {
            hit.retain(|_, keys| !keys.is_empty());
        }
        hit
    }
}
