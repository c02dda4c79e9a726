//! Subqueries: `SELECT ... FROM (SELECT ...)`. The inner statement runs first, adjusted for
//! the outer one as InfluxDB 1.x adjusts it, and its result series become the rows the
//! outer statement reads, in the same [`Scan`] a read of storage gives.
//!
//! 1.x's adjustments (its `newIteratorOptionsSubstatement`): the outer time range narrows
//! the inner one; the outer GROUP BY tags are added to the inner's (so an outer
//! `GROUP BY host` over an inner `mean()` averages per host); an inner aggregate without
//! `GROUP BY time` takes the outer interval; an inner fill(null) becomes fill(none), and
//! the inner query runs in the outer's time order; the outer SLIMIT and SOFFSET are added
//! to the inner ones, and page the inner reads by the outer GROUP BY tags
//! ([`SeriesPage`]); the tag arguments of an outer top() or bottom() group the inner
//! statement too (its points show them null unless it selects or groups by them). The
//! outer condition then sees the inner
//! columns as fields and the inner result's tags (its GROUP BY tags, and the tags a raw
//! inner statement selects) as tags.

use super::error::QueryError;
use super::eval::{matches, time_range, Regexes, Row as EvalRow};
use super::parser::ast::{
    BinaryOp, DataType, Dimension, Expr, Fill, SelectStatement, Source, VarRef,
};
use super::result::Series;
use super::rows::{answer_row_bytes, SeriesRows};
use super::scan::FieldKeys;
use super::scan::{Scan, SelectContext, SeriesPage};
use super::select;
use super::zone::Zone;
use crate::line_protocol::FieldValue;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Runs `inner` for `outer` and answers its rows, one scan per measurement name the inner
/// result holds, in name order.
pub(super) fn scans(
    outer: &SelectStatement,
    inner: &SelectStatement,
    ctx: &SelectContext<'_>,
) -> Result<Vec<Scan>, QueryError> {
    let (start, end) = time_range(outer.condition.as_ref(), ctx.now);
    let adjusted_inner = adjusted(outer, inner, start, end)?;
    let hidden = hidden_tags(outer, inner);
    // Times as nanoseconds, whatever the outer statement's `epoch=` and zone.
    let inner_ctx = SelectContext {
        storage: ctx.storage,
        catalog: ctx.catalog,
        database: ctx.database,
        now: ctx.now,
        epoch: Some(1),
        zone: adjusted_inner
            .location
            .as_deref()
            .map(Zone::named)
            .transpose()?,
        limits: ctx.limits.clone(),
        // Grouped by the outermost statement's tags, whose page it is.
        series_page: (adjusted_inner.slimit > 0 || adjusted_inner.soffset > 0).then(|| {
            SeriesPage {
                dimensions: ctx
                    .series_page
                    .as_ref()
                    .map_or_else(|| outer.dimensions.clone(), |p| p.dimensions.clone()),
                slimit: adjusted_inner.slimit,
                soffset: adjusted_inner.soffset,
            }
        }),
        read_stats: ctx.read_stats,
    };
    let result = select::execute(&adjusted_inner, &inner_ctx)?;

    let mut regexes = Regexes::default();
    if let Some(cond) = &outer.condition {
        Regexes::compile(cond, &mut regexes)?;
    }
    let mut by_name: BTreeMap<String, Vec<Series>> = BTreeMap::new();
    for series in result {
        by_name.entry(series.name.clone()).or_default().push(series);
    }
    let mut out = Vec::with_capacity(by_name.len());
    for (measurement, members) in by_name {
        // The columns of the first series: every series of one statement has the same.
        let columns: Vec<String> = members[0].columns.iter().skip(1).cloned().collect();
        let is_tag = tag_columns(&adjusted_inner, &measurement, &columns, ctx);
        let fields: Vec<String> = columns
            .iter()
            .zip(&is_tag)
            .filter(|(_, tag)| !**tag)
            .map(|(c, _)| c.clone())
            .collect();
        let field_keys: FieldKeys = fields.iter().cloned().collect();
        let mut by_tags: BTreeMap<Vec<(String, String)>, Vec<Row>> = BTreeMap::new();
        for s in members {
            let tags: Vec<(String, String)> = s.tags.unwrap_or_default().into_iter().collect();
            ctx.limits.check_deadline()?;
            // The inner answer's rows, read again as the outer statement's.
            ctx.limits
                .charge(s.values.len() * answer_row_bytes(columns.len()))?;
            for row in s.values {
                let mut cells = row.into_iter();
                let Some(time) = cells.next().as_ref().and_then(Value::as_i64) else {
                    continue;
                };
                let mut row_tags = tags.clone();
                let mut values = Vec::with_capacity(fields.len());
                for ((name, tag), cell) in columns.iter().zip(&is_tag).zip(cells) {
                    match cell {
                        _ if !tag => values.push(field_value(&cell)),
                        // An empty tag value is no tag, as in a series key.
                        Value::String(v) if !v.is_empty() => row_tags.push((name.clone(), v)),
                        _ => {}
                    }
                }
                row_tags.sort();
                row_tags.dedup_by(|a, b| a.0 == b.0);
                by_tags.entry(row_tags).or_default().push((time, values));
            }
        }
        // A tag column the inner statement returns is a tag of the outer one's `*` even
        // where it holds no value, as in 1.x.
        let mut tag_keys: BTreeSet<String> = columns
            .iter()
            .zip(&is_tag)
            .filter(|(_, tag)| **tag)
            .map(|(c, _)| c.clone())
            .collect();
        let mut series = Vec::with_capacity(by_tags.len());
        for (tags, mut rows) in by_tags {
            if let Some(cond) = &outer.condition {
                rows.retain(|(time, values)| {
                    let at: HashMap<&str, FieldValue> = fields
                        .iter()
                        .zip(values)
                        .filter_map(|(f, v)| Some((f.as_str(), v.clone()?)))
                        .collect();
                    // The time range was applied to the inner statement; a window's start
                    // before it (GROUP BY time) still belongs to the answer.
                    let row = EvalRow {
                        time: (*time).max(start).min(end),
                        tags: &tags,
                        fields: &at,
                        field_keys: &field_keys,
                    };
                    matches(cond, &row, ctx.now, &regexes)
                });
            }
            // Stable: rows of one time keep the inner order.
            rows.sort_by_key(|(t, _)| *t);
            if !rows.is_empty() {
                tag_keys.extend(tags.iter().map(|(k, _)| k.clone()));
                let mut found = SeriesRows::new(tags, fields.len());
                found.hidden_tags = hidden.clone();
                for (time, values) in rows {
                    found.push(time, values);
                }
                series.push(found);
            }
        }
        out.push(Scan {
            measurement,
            fields,
            field_keys,
            tag_keys: tag_keys.into(),
            series,
            start,
            end,
            folded: None,
            shard_starts: None,
            origins: Vec::new(),
        });
    }
    Ok(out)
}

/// A row of a scan: its time and a value per field.
type Row = (i64, Vec<Option<FieldValue>>);

/// Which columns of a raw inner statement's result are tags (`SELECT usage, host` or `*`):
/// the outer statement sees them as tags, as 1.x does, not as string fields. The columns
/// of an inner statement with functions are all fields.
fn tag_columns(
    inner: &SelectStatement,
    measurement: &str,
    columns: &[String],
    ctx: &SelectContext<'_>,
) -> Vec<bool> {
    if !is_raw(inner) {
        return vec![false; columns.len()];
    }
    let field_keys = source_fields(inner, measurement, ctx);
    let names = super::plan::column_names(&inner.fields);
    columns
        .iter()
        .map(|c| match selected_var(inner, &names, c) {
            Some(v) => is_tag_ref(v, &field_keys),
            // Expanded from `*`.
            None => !field_keys.contains(c),
        })
        .collect()
}

fn is_raw(stmt: &SelectStatement) -> bool {
    stmt.fields
        .iter()
        .all(|f| matches!(f.expr, Expr::VarRef(_) | Expr::Wildcard(_)))
}

/// The variable a raw statement selects as the column `column`.
fn selected_var<'a>(
    stmt: &'a SelectStatement,
    names: &[String],
    column: &str,
) -> Option<&'a VarRef> {
    names
        .iter()
        .zip(&stmt.fields)
        .find_map(|(name, f)| match &f.expr {
            Expr::VarRef(v) if name == column => Some(v),
            _ => None,
        })
}

fn is_tag_ref(v: &VarRef, field_keys: &FieldKeys) -> bool {
    match v.data_type {
        Some(t) => t == DataType::Tag,
        None => !field_keys.contains(&v.name),
    }
}

/// The field names a statement's sources hold for `measurement`: those stored, and the
/// columns of a subquery that are not tags.
fn source_fields(stmt: &SelectStatement, measurement: &str, ctx: &SelectContext<'_>) -> FieldKeys {
    let mut out = FieldKeys::default();
    for source in &stmt.sources {
        match source {
            Source::Measurement(m) => {
                let Some(db) = m.database.as_deref().or(ctx.database) else {
                    continue;
                };
                for shard in ctx.storage.shards_of(db, None) {
                    out.extend(shard.field_types(measurement).into_keys());
                }
            }
            Source::Subquery(inner) if is_raw(inner) => {
                let below = source_fields(inner, measurement, ctx);
                let names = super::plan::column_names(&inner.fields);
                for (name, f) in names.iter().zip(&inner.fields) {
                    match &f.expr {
                        Expr::Wildcard(_) => out.extend(below.iter().cloned()),
                        Expr::VarRef(v) if !is_tag_ref(v, &below) => {
                            out.insert(name.clone());
                        }
                        _ => {}
                    }
                }
            }
            Source::Subquery(inner) => {
                out.extend(super::plan::column_names(&inner.fields));
            }
        }
    }
    out
}

/// The inner statement as 1.x runs it for the outer one (see the module's comment).
pub(super) fn adjusted(
    outer: &SelectStatement,
    inner: &SelectStatement,
    start: i64,
    end: i64,
) -> Result<SelectStatement, QueryError> {
    let mut inner = inner.clone();
    let mut bounds = Vec::new();
    if start != i64::MIN {
        bounds.push(Expr::binary(
            BinaryOp::Gte,
            Expr::var("time"),
            Expr::Integer(start),
        ));
    }
    if end != i64::MAX {
        bounds.push(Expr::binary(
            BinaryOp::Lte,
            Expr::var("time"),
            Expr::Integer(end),
        ));
    }
    for bound in bounds {
        inner.condition = Some(match inner.condition.take() {
            Some(c) => Expr::binary(BinaryOp::And, Expr::Paren(Box::new(c)), bound),
            None => bound,
        });
    }
    let aggregates = inner.fields.iter().any(|f| calls_aggregate(&f.expr));
    for d in &outer.dimensions {
        match &d.expr {
            Expr::Call(c) if c.name == "time" => {
                let inherit =
                    aggregates && inner.group_by_interval().map_err(QueryError::invalid)? == 0;
                if inherit {
                    inner.dimensions.push(d.clone());
                }
            }
            // `*` means the tags of the inner result, not of the measurement.
            Expr::Wildcard(_) => {}
            expr if !inner.dimensions.iter().any(|own| own.expr == *expr) => {
                inner.dimensions.push(Dimension { expr: expr.clone() });
            }
            _ => {}
        }
    }
    // top() and bottom() with tag arguments take the best point per combination of those
    // tags: 1.x has the subquery grouped by them too.
    for tag in top_bottom_tags(outer) {
        let expr = Expr::VarRef(tag.clone());
        if !inner.dimensions.iter().any(|own| own.expr == expr) {
            inner.dimensions.push(Dimension { expr });
        }
    }
    if aggregates && matches!(inner.fill, None | Some(Fill::Null)) {
        inner.fill = Some(Fill::None);
    }
    inner.order_by = outer.order_by.clone();
    inner.slimit = inner.slimit.saturating_add(outer.slimit);
    inner.soffset = inner.soffset.saturating_add(outer.soffset);
    Ok(inner)
}

/// The tag arguments of the statement's top() and bottom() calls.
fn top_bottom_tags(stmt: &SelectStatement) -> Vec<VarRef> {
    stmt.fields
        .iter()
        .filter_map(|f| match &f.expr {
            Expr::Call(c) if matches!(c.name.as_str(), "top" | "bottom") && c.args.len() > 2 => {
                Some(&c.args[1..c.args.len() - 1])
            }
            _ => None,
        })
        .flatten()
        .filter_map(|a| match a {
            Expr::VarRef(v) => Some(v.clone()),
            _ => None,
        })
        .collect()
}

/// The outer top()/bottom() tag arguments that the inner statement (as written) neither
/// groups by nor selects: 1.x groups the subquery by them yet finds no column of that
/// name, so a selected point shows them null.
fn hidden_tags(outer: &SelectStatement, inner: &SelectStatement) -> Vec<String> {
    let names = super::plan::column_names(&inner.fields);
    let wildcard = inner
        .fields
        .iter()
        .any(|f| matches!(f.expr, Expr::Wildcard(_)));
    top_bottom_tags(outer)
        .into_iter()
        .map(|v| v.name)
        .filter(|name| {
            let grouped = inner
                .dimensions
                .iter()
                .any(|d| matches!(&d.expr, Expr::VarRef(v) if v.name == *name));
            let selected = names.iter().any(|n| n == name) || (wildcard && is_raw(inner));
            !grouped && !selected
        })
        .collect()
}

/// Whether an expression calls an aggregate or selector (anywhere in it): such a statement
/// has windows, where a raw one has points.
fn calls_aggregate(e: &Expr) -> bool {
    match e {
        Expr::Call(c) => {
            let own = super::plan::Func::parse(&c.name).is_some()
                || matches!(
                    c.name.as_str(),
                    "top" | "bottom" | "sample" | "distinct" | "integral"
                );
            own || c.args.iter().any(calls_aggregate)
        }
        Expr::Binary(b) => calls_aggregate(&b.lhs) || calls_aggregate(&b.rhs),
        Expr::Paren(e) => calls_aggregate(e),
        _ => false,
    }
}

/// A value of an inner result as a field value: floats were kept floats (see
/// [`Series::values`]), every other number is an integer.
fn field_value(v: &Value) -> Option<FieldValue> {
    Some(match v {
        Value::Number(n) if n.is_f64() => FieldValue::Float(n.as_f64()?),
        Value::Number(n) => match n.as_i64() {
            Some(i) => FieldValue::Integer(i),
            None => FieldValue::Unsigned(n.as_u64()?),
        },
        Value::String(s) => FieldValue::String(s.clone()),
        Value::Bool(b) => FieldValue::Boolean(*b),
        _ => return None,
    })
}
