//! What a statement's read of one source would take, known without reading it: the fields
//! and tags it finds there (the types EXPLAIN prints), and the shards, series, head entries
//! and column-file blocks a scan ([`super::scans::scan`]) would gather.

use super::scans::tag_selector;
use super::targets::{shards_in, tag_keys_of, targets, Target};
use crate::query::error::QueryError;
use crate::query::eval::{series_may_match, time_range, Regexes};
use crate::query::parser::ast::{Measurement, SelectStatement, Source};
use crate::query::plan;
use crate::query::rows::descending;
use crate::query::scan::SelectContext;
use crate::storage::column::FieldType;
use crate::storage::shard::SeriesRead;
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};

/// Series judged between two looks at the query's deadline and interruption.
const SERIES_PER_CHECK: u32 = 4096;

/// The fields (with their types) and tag keys of a source, as a read of it sees them.
#[derive(Debug, Default)]
pub(crate) struct SourceSchema {
    pub(crate) fields: BTreeMap<String, FieldType>,
    pub(crate) tags: BTreeSet<String>,
}

/// A read's figures, summed over the measurements a source names and their shards.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SourceCost {
    /// Shards in range that hold the measurement.
    pub(crate) shards: u64,
    pub(crate) series: u64,
    pub(crate) cached_values: u64,
    pub(crate) files: u64,
    pub(crate) blocks: u64,
    pub(crate) block_bytes: u64,
}

/// The names of the measurements `source` names (its regular expression matched against
/// the database's), in name order; an error for a database or policy that does not exist.
pub(crate) fn source_measurements(
    ctx: &SelectContext<'_>,
    source: &Measurement,
) -> Result<Vec<String>, QueryError> {
    Ok(source_targets(ctx, source)?
        .into_iter()
        .map(|t| t.measurement)
        .collect())
}

fn source_targets(
    ctx: &SelectContext<'_>,
    source: &Measurement,
) -> Result<Vec<Target>, QueryError> {
    let alone = SelectStatement {
        sources: vec![Source::Measurement(source.clone())],
        ..SelectStatement::default()
    };
    targets(&alone, ctx)
}

/// The fields of the shards `stmt` reads of `source` (the first type met of each name) and
/// the measurements' tag keys.
pub(crate) fn source_schema(
    stmt: &SelectStatement,
    ctx: &SelectContext<'_>,
    source: &Measurement,
) -> Result<SourceSchema, QueryError> {
    let range = read_range(stmt, ctx.now)?;
    let mut schema = SourceSchema::default();
    for target in source_targets(ctx, source)? {
        let shards = shards_in(ctx, &target, range)?;
        if shards.is_empty() {
            continue;
        }
        for shard in &shards {
            for (name, kind) in shard.field_types(&target.measurement) {
                schema.fields.entry(name).or_insert(kind);
            }
        }
        schema.tags.extend(
            tag_keys_of(ctx, &target.database, &target.measurement)
                .iter()
                .cloned(),
        );
    }
    Ok(schema)
}

/// What `stmt`'s read of `fields` from `source` would gather, counted: the same shards,
/// series, head entries and blocks as its scan, with nothing copied or decoded.
pub(crate) fn read_cost(
    stmt: &SelectStatement,
    ctx: &SelectContext<'_>,
    source: &Measurement,
    fields: &[String],
) -> Result<SourceCost, QueryError> {
    let (start, end) = read_range(stmt, ctx.now)?;
    let mut regexes = Regexes::default();
    if let Some(cond) = &stmt.condition {
        Regexes::compile(cond, &mut regexes)?;
    }
    let mut cost = SourceCost::default();
    for target in source_targets(ctx, source)? {
        let shards = shards_in(ctx, &target, (start, end))?;
        let mut field_keys = crate::query::scan::FieldKeys::default();
        for shard in &shards {
            field_keys.extend(shard.field_types(&target.measurement).into_keys());
        }
        let read_fields: Vec<String> = fields
            .iter()
            .filter(|f| field_keys.contains(*f))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let selector = tag_selector(stmt.condition.as_ref(), &field_keys, &regexes);
        // A shard's series are selected under one hold of its lock, millions of them in a
        // large shard: the selection gives up (keeping no more) once the query is stopped.
        let judged = Cell::new(0u32);
        let stopped = Cell::new(false);
        let keep = |tags: &[(String, String)]| {
            judged.set(judged.get().wrapping_add(1));
            if judged.get() % SERIES_PER_CHECK == 0 && ctx.limits.check_deadline().is_err() {
                stopped.set(true);
            }
            !stopped.get() && series_may_match(stmt.condition.as_ref(), tags, &field_keys, &regexes)
        };
        let read = SeriesRead {
            measurement: &target.measurement,
            start,
            end,
            fields: &read_fields,
            selector: &selector,
            keep: &keep,
        };
        for shard in &shards {
            ctx.limits.check_deadline()?;
            let shard_cost = shard.read_cost(&read);
            ctx.limits.check_deadline()?;
            let Some(shard_cost) = shard_cost else {
                continue;
            };
            cost.shards += 1;
            cost.series += shard_cost.series;
            for f in &shard_cost.fields {
                cost.cached_values += f.cached_values;
                cost.files += f.files;
                cost.blocks += f.blocks;
                cost.block_bytes += f.block_bytes;
            }
        }
    }
    Ok(cost)
}

/// The range a scan of `stmt` reads: the condition's, widened by one interval before it
/// (after it, in descending order) for transformations of aggregates, as
/// [`super::scans::scan`] widens it.
fn read_range(stmt: &SelectStatement, now: i64) -> Result<(i64, i64), QueryError> {
    let (start, end) = time_range(stmt.condition.as_ref(), now);
    let interval = stmt.group_by_interval().map_err(QueryError::invalid)?;
    if !(plan::reads_window_before(stmt) && interval > 0) {
        return Ok((start, end));
    }
    Ok(match descending(stmt) {
        false if start != i64::MIN => (start.saturating_sub(interval), end),
        true if end != i64::MAX => (start, end.saturating_add(interval)),
        _ => (start, end),
    })
}
