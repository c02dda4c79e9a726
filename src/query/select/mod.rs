//! `SELECT`: per measurement the sources name, a scan of its series (rows in the time range
//! that pass the condition, with the fields the statement needs), then either the raw rows
//! (and expressions of them) or their aggregates and transformations
//! ([`super::aggregate`]); a subquery's result is read as such a scan
//! ([`super::subquery`]). INTO's writing back is the statement's
//! ([`super::statements::select`]).

pub(super) mod cost;
mod parallel;
mod raw;
mod rows;
mod scans;
mod targets;

use raw::raw;
use scans::scan;
use targets::{stacked, targets, wildcard_columns, Target};

use super::error::QueryError;
use super::eval::time_range;
use super::parser::ast::{
    DataType, Expr, Field, Fill, Measurement, MeasurementName, SelectStatement, Source, VarRef,
    WildcardType,
};
use super::plan::{self, Kind};
use super::result::Series;
use super::rows::{descending, SeriesRows};
use super::scan::{Scan, SelectContext, SeriesPage};
use crate::line_protocol::FieldValue;
use crate::storage::column::FieldType;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// What 1.x refuses of a SELECT of `fields` before it reads anything: plain fields with
/// GROUP BY time, and more windows than `max_select_buckets`. Answers the GROUP BY
/// interval, and whether the fields are plain (no call).
pub(super) fn check_shape(
    stmt: &SelectStatement,
    fields: &[Field],
    ctx: &SelectContext<'_>,
) -> Result<(i64, bool), QueryError> {
    let interval = stmt.group_by_interval().map_err(QueryError::invalid)?;
    let plain = fields
        .iter()
        .all(|f| matches!(f.expr, Expr::VarRef(_) | Expr::Wildcard(_)));
    if plain && interval > 0 {
        return Err(QueryError::invalid(
            "GROUP BY requires at least one aggregate function",
        ));
    }
    let offset = super::aggregate::time_offset(stmt);
    let range = time_range(stmt.condition.as_ref(), ctx.now);
    ctx.limits.check_buckets(range, interval, offset, ctx.now)?;
    Ok((interval, plain))
}

pub(super) fn execute(
    stmt: &SelectStatement,
    ctx: &SelectContext<'_>,
) -> Result<Vec<Series>, QueryError> {
    let (interval, plain) = check_shape(stmt, &stmt.fields, ctx)?;
    // One measurement from several policies or databases is read as one (targets come in
    // name order).
    let mut inputs: Vec<Input> = Vec::new();
    for target in targets(stmt, ctx)? {
        match inputs.last_mut() {
            Some(Input::Stored(same)) if same[0].measurement == target.measurement => {
                same.push(target)
            }
            _ => inputs.push(Input::Stored(vec![target])),
        }
    }
    let mut subqueries = false;
    for (rank, source) in stmt.sources.iter().enumerate() {
        if let Source::Subquery(inner) = source {
            subqueries = true;
            let scans = super::subquery::scans(stmt, inner, ctx)?;
            inputs.extend(scans.into_iter().map(|s| Input::Derived(Box::new(s), rank)));
        }
    }
    // A statement that reads a subquery, or runs as one, pages its sources' series as
    // they are read (its subqueries were handed its page): not its answer.
    let page = ctx.series_page.clone().or_else(|| {
        (subqueries && (stmt.slimit > 0 || stmt.soffset > 0)).then(|| SeriesPage {
            dimensions: stmt.dimensions.clone(),
            slimit: stmt.slimit,
            soffset: stmt.soffset,
        })
    });
    let unpaged;
    let stmt = if page.is_some() {
        unpaged = unpaged_copy(stmt);
        &unpaged
    } else {
        stmt
    };
    let page = page.as_ref();
    inputs.sort_by(|a, b| a.measurement().cmp(b.measurement()));
    let clash = inputs.windows(2).any(|pair| {
        pair[0].measurement() == pair[1].measurement()
            && (matches!(pair[0], Input::Derived(..)) || matches!(pair[1], Input::Derived(..)))
    });
    if clash {
        inputs = joined_with_subqueries(stmt, ctx, inputs, page)?;
    }
    let expanded;
    let stmt = if stmt.fields.iter().any(|f| calls_pattern(&f.expr)) {
        // The fields of every measurement read (the first type seen of each name).
        let mut fields: BTreeMap<String, FieldType> = BTreeMap::new();
        for input in &inputs {
            match input {
                Input::Stored(targets) => {
                    for t in targets {
                        for shard in ctx.storage.shards_of(&t.database, Some(&t.policy)) {
                            for (name, kind) in shard.field_types(&t.measurement) {
                                fields.entry(name).or_insert(kind);
                            }
                        }
                    }
                }
                Input::Derived(scan, _) => {
                    for name in &scan.fields {
                        if let Some(kind) = field_type(scan, name) {
                            fields.entry(name.clone()).or_insert(stored_type(kind));
                        }
                    }
                }
            }
        }
        expanded = plan::expand_wildcard_calls(stmt, &fields)?;
        if expanded.fields.is_empty() {
            return Ok(Vec::new());
        }
        &expanded
    } else {
        stmt
    };
    if inputs.len() == 1 {
        let input = inputs.pop().expect("one input");
        return execute_one(stmt, ctx, input, interval, plain, page);
    }
    // Several measurements: each answers as its own series (in name order, reversed for
    // ORDER BY time DESC; SLIMIT and SOFFSET applying to each as 1.x does), and `*` yields
    // the union of their columns.
    if descending(stmt) {
        inputs.reverse();
    }
    let wildcard = stmt
        .fields
        .iter()
        .any(|f| matches!(f.expr, Expr::Wildcard(_)));
    // 1.x expands `*` before reading, so a measurement without rows in range adds its
    // columns too.
    let mut union = BTreeSet::new();
    if wildcard {
        let range = time_range(stmt.condition.as_ref(), ctx.now);
        for input in &inputs {
            if let Input::Stored(targets) = input {
                for target in targets {
                    union.extend(wildcard_columns(stmt, ctx, target, range)?);
                }
            }
        }
    }
    let mut series = Vec::new();
    for input in inputs {
        series.extend(execute_one(stmt, ctx, input, interval, plain, page)?);
    }
    if wildcard {
        union.extend(
            series
                .iter()
                .flat_map(|s| s.columns.iter().skip(1).cloned()),
        );
        let mut union: Vec<String> = if stmt.fields.iter().any(|f| calls_function(&f.expr)) {
            // Beside functions, `*` stands for the sorted rest in its own place.
            let names = plan::column_names(&stmt.fields);
            let mut columns = Vec::new();
            for (f, name) in stmt.fields.iter().zip(&names) {
                if matches!(f.expr, Expr::Wildcard(_)) {
                    columns.extend(union.iter().filter(|c| !names.contains(c)).cloned());
                } else {
                    columns.push(name.clone());
                }
            }
            columns
        } else {
            union.into_iter().collect()
        };
        union.insert(0, "time".to_owned());
        for s in &mut series {
            let at: Vec<Option<usize>> = union
                .iter()
                .map(|c| s.columns.iter().position(|own| own == c))
                .collect();
            for row in &mut s.values {
                *row = at
                    .iter()
                    .map(|i| i.map_or(Value::Null, |i| row[i].clone()))
                    .collect();
            }
            s.columns = union.clone();
        }
    }
    Ok(series)
}

/// 1.x merges the points of a subquery and of other sources of the same measurement
/// into one series: each such measurement's sources are read and stacked into one scan,
/// each series marked with its source ([`stacked`]), so that the operators that depend on
/// the order of points of equal time can follow 1.x's merge of the sources.
///
fn joined_with_subqueries(
    stmt: &SelectStatement,
    ctx: &SelectContext<'_>,
    inputs: Vec<Input>,
    page: Option<&SeriesPage>,
) -> Result<Vec<Input>, QueryError> {
    let mut out: Vec<Input> = Vec::new();
    let mut pending: Vec<(usize, Scan)> = Vec::new();
    let mut inputs = inputs.into_iter().peekable();
    while let Some(input) = inputs.next() {
        let name = input.measurement().to_owned();
        match input {
            Input::Stored(targets) => {
                for t in &targets {
                    let mut scan = scan(stmt, ctx, t, &|_| None)?;
                    if let Some(page) = page {
                        keep_page_of_groups(page, &mut scan)?;
                    }
                    pending.push((source_rank(stmt, t), scan));
                }
            }
            Input::Derived(scan, rank) => pending.push((rank, *scan)),
        }
        if inputs.peek().is_some_and(|next| next.measurement() == name) {
            continue;
        }
        let mut scans = std::mem::take(&mut pending);
        let rank = scans.iter().map(|(r, _)| *r).min().unwrap_or(0);
        out.push(Input::Derived(
            Box::new(if scans.len() == 1 {
                scans.pop().expect("one scan").1
            } else {
                // In the order the statement names them (stable: several targets of one
                // source keep theirs).
                scans.sort_by_key(|(r, _)| *r);
                stacked(&ctx.limits, scans.into_iter().map(|(_, s)| s).collect())?
            }),
            rank,
        ));
    }
    Ok(out)
}

/// The position among the statement's sources of the first that names `target`'s
/// measurement (a regular expression is taken to name it when no name does).
fn source_rank(stmt: &SelectStatement, target: &Target) -> usize {
    let named = |m: &Measurement| {
        m.retention_policy
            .as_ref()
            .is_none_or(|p| *p == target.policy)
            && matches!(&m.name, MeasurementName::Name(n) if *n == target.measurement)
    };
    let position = |by_regex: bool| {
        stmt.sources.iter().position(|s| match s {
            Source::Measurement(m) if by_regex => matches!(m.name, MeasurementName::Regex(_)),
            Source::Measurement(m) => named(m),
            Source::Subquery(_) => false,
        })
    };
    position(false).or_else(|| position(true)).unwrap_or(0)
}

/// Whether an expression is calls around `*` or a regular expression (`mean(*)`).
fn calls_pattern(e: &Expr) -> bool {
    match e {
        Expr::Call(c) => match c.args.first() {
            Some(Expr::Wildcard(_) | Expr::Regex(_)) => true,
            Some(inner) => calls_pattern(inner),
            None => false,
        },
        _ => false,
    }
}

/// What a statement reads: a measurement in storage (from one or several policies or
/// databases), or the rows of a subquery.
enum Input {
    Stored(Vec<Target>),
    /// With the position of its subquery among the statement's sources.
    Derived(Box<Scan>, usize),
}

impl Input {
    fn measurement(&self) -> &str {
        match self {
            Input::Stored(targets) => &targets[0].measurement,
            Input::Derived(scan, _) => &scan.measurement,
        }
    }
}

fn stored_type(t: DataType) -> FieldType {
    match t {
        DataType::Integer => FieldType::Integer,
        DataType::Unsigned => FieldType::Unsigned,
        DataType::String => FieldType::String,
        DataType::Boolean => FieldType::Boolean,
        _ => FieldType::Float,
    }
}

fn execute_one(
    stmt: &SelectStatement,
    ctx: &SelectContext<'_>,
    input: Input,
    interval: i64,
    plain: bool,
    page: Option<&SeriesPage>,
) -> Result<Vec<Series>, QueryError> {
    // A plan that reads each field's values in time order alone (see `by_columns`); not
    // when the series are paged as they are read.
    let foldable = |fields: &[String]| {
        (!plain && page.is_none())
            .then(|| plan::compile(stmt, fields, interval).ok())
            .flatten()
            .filter(super::aggregate::by_columns)
    };
    let unpaged;
    let (stmt, scan) = match input {
        Input::Stored(targets) => match targets.as_slice() {
            [target] => {
                let mut scan = scan(stmt, ctx, target, &foldable)?;
                if let Some(page) = page {
                    keep_page_of_groups(page, &mut scan)?;
                }
                (stmt, scan)
            }
            several => {
                let mut scans = several
                    .iter()
                    .map(|t| scan(stmt, ctx, t, &|_| None))
                    .collect::<Result<Vec<_>, _>>()?;
                if let Some(page) = page {
                    for scan in &mut scans {
                        keep_page_of_groups(page, scan)?;
                    }
                }
                // 1.x applies SLIMIT and SOFFSET to each source before joining its series.
                let stmt = if stmt.slimit > 0 || stmt.soffset > 0 {
                    let page = SeriesPage {
                        dimensions: stmt.dimensions.clone(),
                        slimit: stmt.slimit,
                        soffset: stmt.soffset,
                    };
                    for scan in &mut scans {
                        keep_page_of_groups(&page, scan)?;
                    }
                    unpaged = unpaged_copy(stmt);
                    &unpaged
                } else {
                    stmt
                };
                // Stacked, not joined: raw rows and transformations follow 1.x's merge of
                // the sources, in the order the statement names them.
                let mut ranked: Vec<(usize, Scan)> = several
                    .iter()
                    .map(|t| source_rank(stmt, t))
                    .zip(scans)
                    .collect();
                ranked.sort_by_key(|(r, _)| *r);
                let joined = stacked(&ctx.limits, ranked.into_iter().map(|(_, s)| s).collect())?;
                (stmt, joined)
            }
        },
        Input::Derived(scan, _) => (stmt, *scan),
    };
    let folded = scan.folded.as_ref();
    ctx.limits
        .check_series(scan.series.len() + folded.map_or(0, |f| f.series))?;
    if ctx.limits.max_points > 0 {
        let values = folded.map_or(0, |f| f.values);
        ctx.limits
            .check_points(values + scan.series.iter().map(SeriesRows::values).sum::<usize>())?;
    }
    let expanded;
    let stmt = match wildcard_beside_functions(stmt, &scan)? {
        Some(s) => {
            expanded = s;
            &expanded
        }
        None => stmt,
    };
    let plan = if plain {
        None
    } else {
        Some(plan::compile(stmt, &scan.fields, interval)?)
    };
    match &plan {
        Some(p) if p.kind != Kind::Raw => super::aggregate::execute(stmt, ctx, scan, p),
        // fill() without a function has nothing to fill: 1.x ignores it, but refuses
        // the two that need one.
        _ if matches!(stmt.fill, Some(Fill::None | Fill::Linear)) => {
            let fill = if stmt.fill == Some(Fill::None) {
                "none"
            } else {
                "linear"
            };
            Err(QueryError::invalid(format!(
                "fill({fill}) must be used with a function"
            )))
        }
        _ => {
            if plan.is_some() {
                plan::check_types(stmt, &|name| field_type(&scan, name))?;
            }
            raw(stmt, ctx, scan, plan.as_ref())
        }
    }
}

/// Whether an expression calls an aggregate or selector (around which `*` stands for the
/// selected point's fields and tags).
fn calls_function(e: &Expr) -> bool {
    match e {
        Expr::Call(c) => {
            plan::Func::parse(&c.name).is_some()
                || matches!(c.name.as_str(), "top" | "bottom" | "sample")
                || c.args.iter().any(calls_function)
        }
        Expr::Binary(b) => calls_function(&b.lhs) || calls_function(&b.rhs),
        Expr::Paren(inner) => calls_function(inner),
        _ => false,
    }
}

/// The statement with `*` beside a function (`SELECT last(usage), *`) replaced by the
/// fields and tags it stands for, in name order, the tags grouped by left out, as 1.x
/// expands it before compiling (None: no such `*`).
fn wildcard_beside_functions(
    stmt: &SelectStatement,
    scan: &Scan,
) -> Result<Option<SelectStatement>, QueryError> {
    let wildcard = |f: &Field| matches!(f.expr, Expr::Wildcard(_));
    if !stmt.fields.iter().any(wildcard) || !stmt.fields.iter().any(|f| calls_function(&f.expr)) {
        return Ok(None);
    }
    let grouped = super::aggregate::group_tags(stmt, &scan.tag_keys)?;
    let mut out = stmt.clone();
    out.fields.clear();
    for f in &stmt.fields {
        let Expr::Wildcard(kind) = f.expr else {
            out.fields.push(f.clone());
            continue;
        };
        let mut names: BTreeMap<&str, Option<DataType>> = BTreeMap::new();
        if kind != WildcardType::Tag {
            names.extend(scan.fields.iter().map(|n| (n.as_str(), None)));
        }
        if kind != WildcardType::Field {
            let tags = scan.tag_keys.iter().filter(|k| !grouped.contains(k));
            for key in tags {
                names.entry(key.as_str()).or_insert(Some(DataType::Tag));
            }
        }
        out.fields
            .extend(names.into_iter().map(|(name, data_type)| Field {
                expr: Expr::VarRef(VarRef {
                    name: name.to_owned(),
                    data_type,
                }),
                alias: None,
            }));
    }
    Ok(Some(out))
}

/// Keeps the series of `scan` in the groups (in tag order, of those with rows) that
/// `page` holds.
fn keep_page_of_groups(page: &SeriesPage, scan: &mut Scan) -> Result<(), QueryError> {
    let tags = super::aggregate::dimension_tags(&page.dimensions, &scan.tag_keys)?;
    let group = |s: &SeriesRows| super::aggregate::group_of(&tags, &s.tags);
    let kept: BTreeSet<_> = scan
        .series
        .iter()
        .filter(|s| !s.times.is_empty())
        .map(group)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .skip(page.soffset as usize)
        .take(super::rows::limit(page.slimit))
        .collect();
    scan.series.retain(|s| kept.contains(&group(s)));
    Ok(())
}

/// A field's type, from the first value the scan found of it.
fn field_type(scan: &Scan, name: &str) -> Option<DataType> {
    let i = scan.fields.iter().position(|f| f == name)?;
    let value = scan
        .series
        .iter()
        .flat_map(|s| s.rows())
        .find_map(|(_, values)| values.get(i)?.as_ref())?;
    Some(match value {
        FieldValue::Float(_) => DataType::Float,
        FieldValue::Integer(_) => DataType::Integer,
        FieldValue::Unsigned(_) => DataType::Unsigned,
        FieldValue::String(_) => DataType::String,
        FieldValue::Boolean(_) => DataType::Boolean,
    })
}

/// `stmt` without SLIMIT and SOFFSET, for a step that pages the series groups itself.
fn unpaged_copy(stmt: &SelectStatement) -> SelectStatement {
    SelectStatement {
        slimit: 0,
        soffset: 0,
        ..stmt.clone()
    }
}
