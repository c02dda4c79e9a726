//! `EXPLAIN SELECT ...` and `EXPLAIN ANALYZE SELECT ...` in InfluxDB 1.6's shapes, with
//! shardkeeper's own figures.
//!
//! EXPLAIN lists the reads 1.6's planner would create for the statement ([`iterators`]),
//! each with its expression, its auxiliary fields and what a read of it would take here,
//! counted without reading ([`crate::query::select::cost`]): the shards in range that hold
//! the measurement, the series the condition selects in each, the head entries (1.6's
//! cache) and the column files, blocks and block bytes (1.6's TSM files and blocks)
//! within the range. EXPLAIN ANALYZE runs the statement as a SELECT runs (its limits, its
//! timeout, KILL QUERY; its rows are dropped, an INTO writes nothing) with its reads
//! recorded ([`ReadStats`]), and answers 1.6's trace: the statement's times, then per
//! cursor, iterator scanner and read of a shard what was listed, copied and decoded.

mod iterators;
mod prepare;
mod tree;

use super::error::QueryError;
use super::parser::ast::{Expr, SelectStatement};
use super::plan;
use super::read_only::go_duration_string;
use super::read_stats::{DecodedByType, Listing, ReadStats};
use super::scan::SelectContext;
use super::select;
use super::select::cost::{read_cost, source_measurements};
use super::zone::Zone;
use iterators::{Cursor, Input, Read};
use prepare::{source_name, Prepared};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use tree::Span;

/// The column of EXPLAIN's answer.
pub(super) const PLAN_COLUMN: &str = "QUERY PLAN";
/// The column of EXPLAIN ANALYZE's answer.
pub(super) const ANALYZE_COLUMN: &str = "EXPLAIN ANALYZE";

/// EXPLAIN: the plan's lines, a read's after another's with an empty line between (one
/// empty line when nothing would be read, as 1.6 answers).
pub(super) fn plan(
    stmt: &SelectStatement,
    ctx: &SelectContext<'_>,
) -> Result<Vec<String>, QueryError> {
    let prepared = prepare::prepare(stmt, ctx)?;
    check(&prepared, ctx)?;
    let cursor = iterators::cursor(&prepared);
    let mut lines = Vec::new();
    for (i, read) in cursor.reads().into_iter().enumerate() {
        if i > 0 {
            lines.push(String::new());
        }
        let cost = read_cost(read.statement, ctx, read.source, &read.names())?;
        let expr = read
            .expr
            .as_ref()
            .map_or("<nil>".to_owned(), Expr::to_string);
        lines.push(format!("EXPRESSION: {expr}"));
        if !read.aux.is_empty() {
            let aux: Vec<String> = read
                .aux
                .iter()
                .map(|v| Expr::VarRef(v.clone()).to_string())
                .collect();
            lines.push(format!("AUXILIARY FIELDS: {}", aux.join(", ")));
        }
        lines.push(format!("NUMBER OF SHARDS: {}", cost.shards));
        lines.push(format!("NUMBER OF SERIES: {}", cost.series));
        lines.push(format!("CACHED VALUES: {}", cost.cached_values));
        lines.push(format!("NUMBER OF FILES: {}", cost.files));
        lines.push(format!("NUMBER OF BLOCKS: {}", cost.blocks));
        lines.push(format!("SIZE OF BLOCKS: {}", cost.block_bytes));
    }
    if lines.is_empty() {
        lines.push(String::new());
    }
    Ok(lines)
}

/// EXPLAIN ANALYZE: runs the statement in the SELECT's context `asked`, its reads
/// recorded, and answers the trace's lines.
pub(super) fn analyze(
    stmt: &SelectStatement,
    asked: &SelectContext<'_>,
) -> Result<Vec<String>, QueryError> {
    let began = Instant::now();
    let stats = ReadStats::default();
    let ctx = &SelectContext {
        storage: asked.storage,
        catalog: asked.catalog,
        database: asked.database,
        now: asked.now,
        epoch: asked.epoch,
        zone: stmt.location.as_deref().map(Zone::named).transpose()?,
        limits: asked.limits.clone(),
        series_page: None,
        read_stats: Some(&stats),
    };
    let prepared = prepare::prepare(stmt, ctx)?;
    check(&prepared, ctx)?;
    let cursor = iterators::cursor(&prepared);
    let prepared_in = began.elapsed();
    // Run as a SELECT runs; the rows are not the answer.
    drop(select::execute(&prepared.read, ctx)?);
    let total = began.elapsed();
    let listings = stats.listings();
    let listed: Duration = listings.iter().map(|l| l.took).sum();
    let planning = (prepared_in + listed).min(total);
    let mut root = Span::new("select");
    root.fields = vec![
        ("execution_time", go_duration(total - planning)),
        ("planning_time", go_duration(planning)),
        ("total_time", go_duration(total)),
    ];
    root.children
        .push(cursor_span(&cursor, ctx, &stats, &listings)?);
    Ok(tree::lines(&root))
}

/// The refusals of the SELECT itself, before anything is read: its GROUP BY, its number of
/// windows, its fields (and its subqueries').
fn check(p: &Prepared, ctx: &SelectContext<'_>) -> Result<(), QueryError> {
    let (interval, plain) = select::check_shape(&p.read, &p.expanded.fields, ctx)?;
    if !plain {
        plan::compile(&p.expanded, &p.stored_fields, interval)?;
    }
    for inner in p.subqueries.values() {
        check(inner, ctx)?;
    }
    Ok(())
}

fn cursor_span(
    cursor: &Cursor<'_>,
    ctx: &SelectContext<'_>,
    stats: &ReadStats,
    listings: &[Listing],
) -> Result<Span, QueryError> {
    let mut span = Span::new("build_cursor");
    span.labels.push(("statement", cursor.statement.clone()));
    for scanner in &cursor.scanners {
        let mut child = Span::new("iterator_scanner");
        child.labels = scanner.labels.clone();
        for input in &scanner.inputs {
            match input {
                Input::Read(read) => child
                    .children
                    .extend(read_spans(read, ctx, stats, listings)?),
                Input::Subquery(inner) => child
                    .children
                    .push(cursor_span(inner, ctx, stats, listings)?),
            }
        }
        span.children.push(child);
    }
    Ok(span)
}

/// A read's spans: one per shard and measurement it listed series of, as 1.6 has one per
/// shard whose engine created an iterator, in name then shard order. Figures a field read
/// once for several of the statement's reads (`SELECT mean(v), max(v)`) show in each.
fn read_spans(
    read: &Read<'_>,
    ctx: &SelectContext<'_>,
    stats: &ReadStats,
    listings: &[Listing],
) -> Result<Vec<Span>, QueryError> {
    let Some((database, policy, _)) = source_name(read.source) else {
        return Ok(Vec::new());
    };
    let names = source_measurements(ctx, read.source)?;
    let mut mine: Vec<&Listing> = listings
        .iter()
        .filter(|l| l.database == database && l.policy == policy && l.series > 0)
        .filter(|l| names.contains(&l.measurement))
        .collect();
    mine.sort_by(|a, b| (&a.measurement, a.shard_start).cmp(&(&b.measurement, b.shard_start)));
    let condition_names = read.condition_names();
    let mut spans = Vec::with_capacity(mine.len());
    for l in mine {
        let read_of = |name: &str| l.fields.contains_key(name);
        let series = l.series;
        let by_ref = read
            .expr_field()
            .filter(|f| read_of(f))
            .map_or(0, |_| series);
        let aux = read.aux.iter().filter(|v| read_of(&v.name)).count() as u64;
        let cond = condition_names.iter().filter(|n| read_of(n)).count() as u64;
        let names: BTreeSet<String> = read.names().into_iter().filter(|n| read_of(n)).collect();
        let mut decoded = DecodedByType::default();
        let mut cached = 0;
        for name in &names {
            for (sum, d) in decoded
                .iter_mut()
                .zip(stats.decoded(l.shard, &l.measurement, name))
            {
                sum.blocks += d.blocks;
                sum.bytes += d.bytes;
            }
            cached += l.fields.get(name).copied().unwrap_or(0);
        }
        let mut span = Span::new("create_iterator");
        if let Some(c) = read.condition {
            span.labels.push(("cond", c.to_string()));
        }
        span.labels.push(("measurement", l.measurement.clone()));
        span.labels.push(("shard_id", l.shard.to_string()));
        span.fields = vec![
            ("cursors_ref", by_ref.to_string()),
            ("cursors_aux", (series * aux).to_string()),
            ("cursors_cond", (series * cond).to_string()),
        ];
        const TYPES: [(&str, &str); 5] = [
            ("float_blocks_decoded", "float_blocks_size_bytes"),
            ("integer_blocks_decoded", "integer_blocks_size_bytes"),
            ("unsigned_blocks_decoded", "unsigned_blocks_size_bytes"),
            ("string_blocks_decoded", "string_blocks_size_bytes"),
            ("boolean_blocks_decoded", "boolean_blocks_size_bytes"),
        ];
        for ((blocks, bytes), d) in TYPES.iter().zip(decoded) {
            span.fields.push((blocks, d.blocks.to_string()));
            span.fields.push((bytes, d.bytes.to_string()));
        }
        span.fields.push(("cached_values", cached.to_string()));
        span.fields.push(("planning_time", go_duration(l.took)));
        spans.push(span);
    }
    Ok(spans)
}

/// A duration as Go's `time.Duration` writes it (`1.5ms`, `2m22.7s`).
fn go_duration(d: Duration) -> String {
    go_duration_string(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}
