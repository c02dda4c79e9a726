//! Which measurements a statement reads (its sources' names and patterns matched, in a
//! database and policy that exist), the shards of each in range, and one measurement read
//! from several policies or databases (or a subquery beside it) stacked into one scan,
//! each series keeping its source, as 1.x answers it.

use crate::line_protocol::FieldValue;
use crate::query::error::QueryError;
use crate::query::limits::QueryLimits;
use crate::query::parser::ast::{MeasurementName, SelectStatement, Source};
use crate::query::rows::SeriesRows;
use crate::query::scan::FieldKeys;
use crate::query::scan::{Origin, Scan, SelectContext};
use std::collections::BTreeSet;
use std::sync::Arc;

/// One measurement a statement reads, in a database and retention policy that exist.
pub(super) struct Target {
    pub(super) database: String,
    pub(super) policy: String,
    pub(super) measurement: String,
}

/// The measurements the statement's sources name, their regular expressions matched
/// against the measurements the retention policy holds; in name order, each once.
pub(super) fn targets(
    stmt: &SelectStatement,
    ctx: &SelectContext<'_>,
) -> Result<Vec<Target>, QueryError> {
    let mut out: Vec<Target> = Vec::new();
    for source in &stmt.sources {
        // Subqueries are read by `crate::query::subquery`.
        let Source::Measurement(source) = source else {
            continue;
        };
        let database = source
            .database
            .as_deref()
            .or(ctx.database)
            .ok_or(QueryError::DatabaseRequired)?;
        let db = ctx
            .catalog
            .databases
            .get(database)
            .ok_or_else(|| QueryError::DatabaseNotFound(database.to_owned()))?;
        let policy = source
            .retention_policy
            .clone()
            .unwrap_or_else(|| db.default_policy.clone());
        if !db.policies.contains_key(&policy) {
            return Err(QueryError::RetentionPolicyNotFound(policy));
        }
        let names: Vec<String> = match &source.name {
            MeasurementName::Name(name) => vec![name.clone()],
            MeasurementName::Regex(r) => {
                let re = crate::query::patterns::compiled(&r.pattern)?;
                // 1.x matches the names of its database-wide index, every policy's.
                let mut all = BTreeSet::new();
                for shard in ctx.storage.shards_of(database, None) {
                    all.extend(shard.measurements());
                }
                all.into_iter().filter(|m| re.is_match(m)).collect()
            }
        };
        for measurement in names {
            let target = Target {
                database: database.to_owned(),
                policy: policy.clone(),
                measurement,
            };
            let seen = out.iter().any(|t| {
                (&t.database, &t.policy, &t.measurement)
                    == (&target.database, &target.policy, &target.measurement)
            });
            if !seen {
                out.push(target);
            }
        }
    }
    out.sort_by(|a, b| a.measurement.cmp(&b.measurement));
    Ok(out)
}

/// Several sources of one measurement (several policies or databases, a subquery beside
/// another) as one scan, one answer in 1.x, whose series keep their source: each series is marked with its scan's position in `scans`
/// (the order the statement names them) and `origins` says where each came from, for
/// 1.x's merge order ([`crate::query::aggregate::merge::merged_rows`]). Rows are copied
/// over the union of the fields; the copy is charged too, since for a moment both are
/// held.
pub(super) fn stacked(limits: &QueryLimits, scans: Vec<Scan>) -> Result<Scan, QueryError> {
    let fields: Vec<String> = scans
        .iter()
        .flat_map(|s| s.fields.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let row_bytes = std::mem::size_of::<(i64, Vec<Option<FieldValue>>)>()
        + fields.len() * std::mem::size_of::<Option<FieldValue>>();
    let (mut field_keys, mut tag_keys) = (FieldKeys::default(), BTreeSet::new());
    let (mut measurement, mut range) = (String::new(), (i64::MIN, i64::MAX));
    let mut series = Vec::new();
    let mut origins = Vec::with_capacity(scans.len());
    for (source, scan) in scans.into_iter().enumerate() {
        let at: Vec<usize> = scan
            .fields
            .iter()
            .map(|f| {
                fields
                    .binary_search(f)
                    .expect("every scan's fields are stacked")
            })
            .collect();
        for s in &scan.series {
            limits.check_deadline()?;
            limits.charge(s.times.len() * row_bytes)?;
            let mut copy = SeriesRows::new(s.tags.clone(), fields.len());
            copy.source = source;
            copy.hidden_tags = s.hidden_tags.clone();
            for (time, values) in s.rows() {
                let mut row = vec![None; fields.len()];
                for (v, &i) in values.iter().zip(&at) {
                    row[i] = v.clone();
                }
                copy.push(*time, row);
            }
            series.push(copy);
        }
        origins.push(match scan.shard_starts {
            Some(starts) if scan.origins.is_empty() => Origin::Stored(starts),
            _ => Origin::Derived,
        });
        field_keys.extend(scan.field_keys);
        tag_keys.extend(scan.tag_keys.iter().cloned());
        (measurement, range) = (scan.measurement, (scan.start, scan.end));
    }
    Ok(Scan {
        measurement,
        fields,
        field_keys,
        tag_keys: tag_keys.into(),
        series,
        start: range.0,
        end: range.1,
        folded: None,
        shard_starts: None,
        origins,
    })
}

/// The shards of the target's policy whose groups overlap [start, end].
pub(super) fn shards_in(
    ctx: &SelectContext<'_>,
    target: &Target,
    (start, end): (i64, i64),
) -> Result<Vec<Arc<crate::storage::Shard>>, QueryError> {
    ctx.storage
        .check_readable(&target.database, Some(&target.policy), (start, end))?;
    Ok(ctx
        .storage
        .shards_of(&target.database, Some(&target.policy))
        .into_iter()
        .filter(|s| s.info.end > start && s.info.start <= end)
        .collect())
}

/// As 1.x's database-wide index does, `*` and GROUP BY * take every tag key of the
/// measurement, of every policy, whether or not its series are read. The first shard's
/// set is shared, and copied only if another shard has a key it lacks.
pub(super) fn tag_keys_of(
    ctx: &SelectContext<'_>,
    database: &str,
    measurement: &str,
) -> Arc<BTreeSet<String>> {
    let mut keys: Arc<BTreeSet<String>> = Arc::default();
    for shard in ctx.storage.shards_of(database, None) {
        let more = shard.tag_keys(measurement);
        if keys.is_empty() {
            keys = more;
        } else if !more.is_subset(&keys) {
            Arc::make_mut(&mut keys).extend(more.iter().cloned());
        }
    }
    keys
}

/// The columns `*` stands for in `target` over `range`: the fields of its shards there
/// and the measurement's tag keys but those grouped by (none when no shard is in range).
pub(super) fn wildcard_columns(
    stmt: &SelectStatement,
    ctx: &SelectContext<'_>,
    target: &Target,
    range: (i64, i64),
) -> Result<BTreeSet<String>, QueryError> {
    let shards = shards_in(ctx, target, range)?;
    if shards.is_empty() {
        return Ok(BTreeSet::new());
    }
    let mut columns: BTreeSet<String> = shards
        .iter()
        .flat_map(|s| s.field_types(&target.measurement).into_keys())
        .collect();
    let tag_keys = tag_keys_of(ctx, &target.database, &target.measurement);
    let grouped = crate::query::aggregate::group_tags(stmt, &tag_keys)?;
    columns.extend(tag_keys.iter().filter(|k| !grouped.contains(*k)).cloned());
    Ok(columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_of(fields: &[&str], points: i64) -> Scan {
        let mut series = SeriesRows::new(Vec::new(), fields.len());
        for t in 0..points {
            series.push(t, fields.iter().map(|_| Some(FieldValue::Integer(t))));
        }
        Scan {
            measurement: "m".into(),
            fields: fields.iter().map(|f| f.to_string()).collect(),
            field_keys: FieldKeys::default(),
            tag_keys: Arc::default(),
            series: vec![series],
            start: i64::MIN,
            end: i64::MAX,
            folded: None,
            shard_starts: None,
            origins: Vec::new(),
        }
    }

    /// Stacking one measurement read from several sources copies their rows: the copy is
    /// charged to the query's budget, and past it the query stops.
    #[test]
    fn stacking_scans_past_the_memory_budget_is_refused() {
        let limits = QueryLimits::with_budget(1);
        let scans = || vec![scan_of(&["a"], 20_000), scan_of(&["b"], 20_000)];
        assert!(stacked(&limits, scans())
            .is_err_and(|e| e.to_string().contains("max_request_memory_mib")));
        let joined = stacked(&QueryLimits::default(), scans()).expect("no budget");
        assert_eq!(joined.fields, ["a", "b"]);
        let sources: Vec<usize> = joined.series.iter().map(|s| s.source).collect();
        assert_eq!(sources, [0, 1]);
        assert_eq!(joined.series[1].times.len(), 20_000);
    }
}
