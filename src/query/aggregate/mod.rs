//! Aggregates and selectors over a scan, grouped by time windows and tags, with fill(), and
//! what a plan computes from them (transformations, math, arithmetic); also transformations
//! of raw points.
//!
//! Supported now: count, count(distinct), sum, mean, median, mode, percentile, integral,
//! min, max, first, last, spread, stddev, and top/bottom/sample/distinct
//! ([`super::selection`]); `GROUP BY time(interval[, offset])` (in a tz() zone) and tag
//! keys (or `*`); fill(null | none | previous | linear | <number>), applied to each
//! aggregate before what is computed from it, as 1.x does. Anything else is refused with
//! a clear error.

mod fill;
mod fold;
pub(super) mod merge;
mod windows;

pub(crate) use fold::Folder;

use super::calc::{self, Cell};
use super::error::QueryError;
use super::parser::ast::{Dimension, Expr, Fill, SelectStatement};
use super::plan::{column_names, eval_column, AggregateCall, Column, Func, Kind, Node, Plan};
use super::result::Series;
use super::rows::{answer_row_bytes, descending, json_value, limit, SeriesRows};
use super::scan::{Folded, Group, Origin, Scan, SelectContext};
use super::selection;
use crate::line_protocol::FieldValue;
use merge::Row;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use windows::{window_rows, window_start, Windows};

/// More windows than this in one query is refused rather than exhausting memory.
const MAX_WINDOWS: i64 = 1_000_000;

/// Whether a call's results are integers: counts, and sums and selections of integer
/// fields.
fn yields_integer(call: &AggregateCall, scan: &Scan, folded: Option<&Folded>) -> bool {
    if call.func == Func::Count {
        return true;
    }
    let Some(i) = call.field else { return false };
    let folded_first = folded.and_then(|f| f.first_values.get(i).cloned().flatten());
    let integer_field = folded_first
        .or_else(|| {
            scan.series
                .iter()
                .flat_map(|s| s.rows())
                .find_map(|(_, values)| values.get(i).cloned().flatten())
        })
        .is_some_and(|v| matches!(v, FieldValue::Integer(_) | FieldValue::Unsigned(_)));
    integer_field
        && matches!(
            call.func,
            Func::Sum
                | Func::Min
                | Func::Max
                | Func::First
                | Func::Last
                | Func::Spread
                | Func::Mode
                | Func::Percentile(_)
        )
}

fn has_transform(node: &Node) -> bool {
    node.any(&|n| matches!(n, Node::Transform(..)))
}

/// Whether a node reads a field or tag of a selector's point (which needs the rows).
pub(super) fn reads_selected_point(node: &Node) -> bool {
    node.any(&|n| matches!(n, Node::Tag(_) | Node::SelectedField(_)))
}

/// Whether a plan reads each field's values in time order alone, so that a scan can fold
/// each series into its groups' windows as it is read ([`Folder`]): time windows of the
/// calls reduced as values arrive, nothing computed row by row.
pub(super) fn by_columns(plan: &Plan) -> bool {
    plan.kind == Kind::Windows
        && plan.selection.is_none()
        && !plan.fields.iter().any(has_transform)
        && !plan.fields.iter().any(reads_selected_point)
        && plan.aggregates.iter().all(|c| {
            !c.window_before
                && matches!(
                    c.func,
                    Func::Count
                        | Func::Sum
                        | Func::Mean
                        | Func::Min
                        | Func::Max
                        | Func::First
                        | Func::Last
                        | Func::Spread
                        | Func::Stddev
                )
        })
}

/// Runs a plan of kind [`Kind::Windows`] or [`Kind::Points`].
pub(super) fn execute(
    stmt: &SelectStatement,
    ctx: &SelectContext<'_>,
    mut scan: Scan,
    plan: &Plan,
) -> Result<Vec<Series>, QueryError> {
    let mut folded = scan.folded.take();
    let interval = stmt.group_by_interval().map_err(QueryError::invalid)?;
    let offset = time_offset(stmt);
    let group_tags = group_tags(stmt, &scan.tag_keys)?;
    let transforms = plan.fields.iter().any(has_transform);
    let descending = descending(stmt);
    // Where the scan's rows came from, for the order in which 1.x hands points of equal
    // time to a transformation or integral() (see `merge`).
    let origins: Vec<Origin> = if !scan.origins.is_empty() {
        scan.origins.clone()
    } else {
        vec![scan
            .shard_starts
            .clone()
            .map_or(Origin::Derived, Origin::Stored)]
    };

    // Groups of series by the values of the GROUP BY tags, in tag order.
    let mut groups: BTreeMap<Group, Vec<&SeriesRows>> = BTreeMap::new();
    for s in &scan.series {
        groups
            .entry(group_of(&group_tags, &s.tags))
            .or_default()
            .push(s);
    }
    if let Some(folded) = &folded {
        for key in folded.groups.keys() {
            groups.entry(key.clone()).or_default();
        }
    }

    // Windows: with GROUP BY time, from the window of the range's start (or of the first
    // point) to that of its end (or now); otherwise one window over the range. A window
    // more in front when a transformation reads the one before the range (dropped from
    // the output).
    let first_time = scan
        .series
        .iter()
        .filter_map(|s| s.times.first().copied())
        .chain(folded.as_ref().and_then(|f| f.first_time))
        .min();
    let window_before = interval > 0 && plan.aggregates.iter().any(|a| a.window_before);
    let windows = if interval > 0 {
        let Some(first_time) = first_time else {
            return Ok(Vec::new());
        };
        let lower = if scan.start == i64::MIN {
            first_time
        } else {
            scan.start
        };
        let upper = if scan.end == i64::MAX {
            ctx.now
        } else {
            scan.end
        };
        // Windows align to local time in the statement's zone: of one size while its
        // offset stays the same over the range, as 1.x places them when it changes.
        let zone_offset = ctx.zone.as_ref().map_or(0, |z| z.offset_nanos(lower));
        let local_offset = offset - zone_offset;
        let (mut first, mut last) = (
            window_start(lower, interval, local_offset),
            window_start(upper, interval, local_offset),
        );
        let changing = ctx.zone.as_ref().filter(|zone| {
            let end = last.saturating_add(interval);
            zone.offset_nanos(first) != zone_offset || zone.offset_nanos(end) != zone_offset
        });
        if let Some(zone) = changing {
            let (mut lower, mut upper) = (lower, upper);
            if window_before && descending {
                upper = upper.saturating_add(interval);
            } else if window_before {
                lower = lower.saturating_sub(interval);
            }
            let mut times: Vec<i64> = scan
                .series
                .iter()
                .flat_map(|s| s.times.iter().copied())
                .collect();
            times.sort_unstable();
            let held = windows::LocalWindows::held(&times, interval, offset, zone);
            let starts = windows::local_starts(
                lower,
                upper,
                interval,
                offset,
                zone,
                &held,
                MAX_WINDOWS as usize,
            )?;
            Windows {
                first: starts.first().copied().unwrap_or(lower),
                interval,
                count: starts.len(),
                local: Some(windows::LocalWindows { starts, held }),
            }
        } else {
            if window_before && descending {
                last = last.saturating_add(interval);
            } else if window_before {
                first = first.saturating_sub(interval);
            }
            let count = last.saturating_sub(first) / interval + 1;
            if count > MAX_WINDOWS {
                return Err(QueryError::TooManyWindows {
                    found: count,
                    limit: MAX_WINDOWS,
                });
            }
            Windows {
                first,
                interval,
                count: count.max(0) as usize,
                local: None,
            }
        }
    } else {
        Windows {
            first: if scan.start == i64::MIN {
                0
            } else {
                scan.start
            },
            interval: 0,
            count: 1,
            local: None,
        }
    };
    // The window a transformation reads beyond the range, dropped from the output.
    let extra = window_before.then(|| {
        if descending {
            windows.count.saturating_sub(1)
        } else {
            0
        }
    });
    let single_selector = interval == 0
        && plan.aggregates.len() == 1
        && plan.aggregates[0].func.is_selector()
        && !transforms;
    let fill = stmt.fill.clone().unwrap_or(Fill::Null);
    let integer: Vec<bool> = plan
        .aggregates
        .iter()
        .map(|c| yields_integer(c, &scan, folded.as_ref()))
        .collect();

    let mut columns = vec!["time".to_owned()];
    for (name, node) in column_names(&stmt.fields).into_iter().zip(&plan.fields) {
        columns.push(name);
        if let (Node::Selected, Some(call)) = (node, &plan.selection) {
            columns.extend(selection::extra_columns(call));
        }
    }
    // A holt_winters() column ends at the first group it forecasts nothing for, as 1.x's
    // reduction of the groups stops there.
    let mut forecasts_ended = vec![false; plan.fields.len()];
    let forecasting = plan.holt_winters.iter().any(Option::is_some);
    let mut out = Vec::new();
    for (tags, members) in groups {
        ctx.limits.check_deadline()?;
        let rows: Vec<(i64, Vec<Value>)> = match (plan.kind, &plan.selection) {
            (Kind::Points, _) => point_rows(plan, &members, descending, &origins)?,
            (_, Some(selection)) => selection::rows(
                &ctx.limits,
                selection,
                &plan.fields,
                &members,
                windows.count,
                &|t| windows.index(t),
                &|w| windows.start(w),
            )?,
            _ => window_rows(
                &ctx.limits,
                plan,
                &members,
                folded.as_mut().and_then(|f| f.groups.remove(&tags)),
                &windows,
                &fill,
                &integer,
                single_selector,
                extra,
                descending,
                &origins,
                (scan.start, scan.end),
            )?,
        };
        let rows = if forecasting {
            forecast_rows(ctx, plan, rows, interval, descending, &mut forecasts_ended)?
        } else {
            rows
        };
        if rows.is_empty() {
            continue;
        }
        let mut rows = rows;
        if descending {
            rows.reverse();
        }
        // Times are rendered for the rows shown only.
        let values = ctx.page(rows, stmt.offset, stmt.limit);
        // What the answer keeps of this group (what it took to compute was held apart).
        ctx.limits
            .charge(values.len() * answer_row_bytes(columns.len()))?;
        let tags = (!group_tags.is_empty()).then(|| tags.into_iter().collect());
        out.push(Series {
            name: scan.measurement.clone(),
            tags,
            columns: columns.clone(),
            values,
        });
    }
    let mut out: Vec<Series> = out
        .into_iter()
        .skip(stmt.soffset as usize)
        .take(limit(stmt.slimit))
        .collect();
    // 1.x picks SLIMIT's series in tag order, then returns them in the query's order.
    if descending {
        out.reverse();
    }
    Ok(out)
}

/// A group's window rows with each holt_winters() column replaced by its forecast of the
/// column's values (nulls skipped), at the forecast's own times; the other columns keep
/// their rows. 1.x forecasts nothing in descending order (its forecast starts from the
/// last window).
fn forecast_rows(
    ctx: &SelectContext<'_>,
    plan: &Plan,
    rows: Vec<(i64, Vec<Value>)>,
    interval: i64,
    descending: bool,
    ended: &mut [bool],
) -> Result<Vec<(i64, Vec<Value>)>, QueryError> {
    let width = plan.fields.len();
    let others = plan.holt_winters.iter().any(Option::is_none);
    let mut merged: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
    for (column, hw) in plan.holt_winters.iter().enumerate() {
        let Some(hw) = hw else { continue };
        if ended[column] {
            continue;
        }
        let points: Vec<(i64, f64)> = rows
            .iter()
            .filter_map(|(t, values)| Some((*t, values.get(column)?.as_f64()?)))
            .collect();
        let forecast = if descending {
            Vec::new()
        } else {
            hw.forecast(interval, &points, &ctx.limits)?
        };
        if forecast.is_empty() {
            ended[column] = true;
        }
        for (t, v) in forecast {
            merged.entry(t).or_insert_with(|| vec![Value::Null; width])[column] = Value::from(v);
        }
    }
    if others {
        for (t, mut values) in rows {
            let row = merged.entry(t).or_insert_with(|| vec![Value::Null; width]);
            for (column, hw) in plan.holt_winters.iter().enumerate() {
                if hw.is_none() {
                    row[column] = std::mem::take(&mut values[column]);
                }
            }
        }
    }
    Ok(merged.into_iter().collect())
}

fn cell_json(column: &Column, row: usize) -> Value {
    match column {
        Column::Constant(v) => v.as_ref().map_or(Value::Null, json_value),
        Column::Cells(cells) => cells[row].value().map_or(Value::Null, json_value),
    }
}

fn present(columns: &[Column], row: usize) -> bool {
    columns
        .iter()
        .any(|c| matches!(c, Column::Cells(cells) if cells[row].is_present()))
}

/// One group's rows of a [`Kind::Points`] plan: the points of its series merged in time
/// order, transformed.
fn point_rows(
    plan: &Plan,
    members: &[&SeriesRows],
    descending: bool,
    origins: &[Origin],
) -> Result<Vec<(i64, Vec<Value>)>, QueryError> {
    let mut points: Vec<Row<'_>> = members
        .iter()
        .flat_map(|s| s.rows().map(|(t, v)| (*t, v)))
        .collect();
    // Transformations see the points in the query's order.
    points.sort_by_key(|(t, _)| *t);
    // Several sources are handed over one after another (see `merge::source_order`).
    if origins.len() > 1 || points.windows(2).any(|p| p[0].0 == p[1].0) {
        return shared_time_rows(plan, members, descending, origins);
    }
    if descending {
        points.reverse();
    }
    let times: Vec<i64> = points.iter().map(|(t, _)| *t).collect();
    let columns = plan
        .fields
        .iter()
        .map(|f| eval_column(f, &times, &|node: &Node| leaf(node, &points)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut rows: Vec<(i64, Vec<Value>)> = (0..points.len())
        .filter(|&r| present(&columns, r))
        .map(|r| (times[r], columns.iter().map(|c| cell_json(c, r)).collect()))
        .collect();
    if descending {
        rows.reverse();
    }
    Ok(rows)
}

fn leaf(node: &Node, points: &[Row<'_>]) -> Vec<Cell> {
    match node {
        Node::Field(Some(i)) => points
            .iter()
            .map(|(_, values)| {
                values
                    .get(*i)
                    .cloned()
                    .flatten()
                    .map_or(Cell::Absent, Cell::Value)
            })
            .collect(),
        _ => vec![Cell::Absent; points.len()],
    }
}

/// The fields a column reads.
fn fields_read(node: &Node) -> BTreeSet<usize> {
    let fields = std::cell::RefCell::new(BTreeSet::new());
    node.any(&|n| {
        if let Node::Field(Some(i)) = n {
            fields.borrow_mut().insert(*i);
        }
        false
    });
    fields.into_inner()
}

/// [`point_rows`] when several series of the group share a time: as 1.x computes each
/// column from its own merge of the series' points of its field ([`merge::merge_order`]),
/// then joins the columns as its cursor does, taking at each step the earliest time
/// (latest, descending) and from each column its next point at that time.
fn shared_time_rows(
    plan: &Plan,
    members: &[&SeriesRows],
    descending: bool,
    origins: &[Origin],
) -> Result<Vec<(i64, Vec<Value>)>, QueryError> {
    let mut streams: Vec<Vec<(i64, Value)>> = Vec::with_capacity(plan.fields.len());
    for f in &plan.fields {
        let points = column_points(f, members, descending, origins)?;
        streams.push(
            points
                .into_iter()
                .map(|(t, cell)| (t, cell.value().map_or(Value::Null, json_value)))
                .collect(),
        );
    }
    Ok(join_by_time(streams, descending))
}

/// A column's points, in the query's order. A part of it that reads one field is
/// computed over its own merge of the series' points of that field; parts reading
/// different fields are joined as 1.x's binary iterator joins two streams
/// ([`pair_by_time`]).
fn column_points(
    node: &Node,
    members: &[&SeriesRows],
    descending: bool,
    origins: &[Origin],
) -> Result<Vec<(i64, Cell)>, QueryError> {
    let fields = fields_read(node);
    if fields.len() <= 1 {
        let points = match fields.first() {
            Some(&field) => merge::source_order(members, field, origins, descending, &|_| 0),
            None => Vec::new(),
        };
        let times: Vec<i64> = points.iter().map(|(t, _)| *t).collect();
        return Ok(
            match eval_column(node, &times, &|node: &Node| leaf(node, &points))? {
                Column::Cells(cells) => times
                    .into_iter()
                    .zip(cells)
                    .filter(|(_, cell)| cell.is_present())
                    .collect(),
                Column::Constant(_) => Vec::new(),
            },
        );
    }
    let operand = |node: &Node| -> Result<Operand, QueryError> {
        if fields_read(node).is_empty() {
            if let Column::Constant(v) = eval_column(node, &[], &|_: &Node| Vec::new())? {
                return Ok(Operand::Constant(v));
            }
        }
        Ok(Operand::Points(column_points(
            node, members, descending, origins,
        )?))
    };
    match node {
        Node::Binary(op, l, r) => Ok(apply_operands(operand(l)?, Some(operand(r)?), &|a, b| {
            calc::binary(*op, a, b?)
        })),
        Node::Math(f, args) => {
            let second = args.get(1).map(operand).transpose()?;
            Ok(apply_operands(operand(&args[0])?, second, &|v, a| {
                f.apply(v, a)
            }))
        }
        _ => Err(QueryError::not_supported(
            "a transformation of an expression of several fields is not supported",
        )),
    }
}

/// One side of an operator or a math function's argument, in [`column_points`].
enum Operand {
    Constant(Option<FieldValue>),
    Points(Vec<(i64, Cell)>),
}

/// `f` applied point by point (a null point stays null).
fn apply_operands(
    a: Operand,
    b: Option<Operand>,
    f: &dyn Fn(&FieldValue, Option<&FieldValue>) -> Option<FieldValue>,
) -> Vec<(i64, Cell)> {
    let cell = |v: Option<FieldValue>| v.map_or(Cell::Null, Cell::Value);
    match (a, b) {
        (Operand::Points(a), None) => a
            .into_iter()
            .map(|(t, x)| (t, cell(x.value().and_then(|x| f(x, None)))))
            .collect(),
        (Operand::Points(a), Some(Operand::Constant(c))) => a
            .into_iter()
            .map(|(t, x)| {
                (
                    t,
                    cell(x.value().zip(c.as_ref()).and_then(|(x, c)| f(x, Some(c)))),
                )
            })
            .collect(),
        (Operand::Constant(c), Some(Operand::Points(b))) => b
            .into_iter()
            .map(|(t, y)| {
                (
                    t,
                    cell(c.as_ref().zip(y.value()).and_then(|(c, y)| f(c, Some(y)))),
                )
            })
            .collect(),
        (Operand::Points(a), Some(Operand::Points(b))) => pair_by_time(a, b, &|x, y| {
            cell(x.value().zip(y.value()).and_then(|(x, y)| f(x, Some(y))))
        }),
        (Operand::Constant(_), _) => Vec::new(),
    }
}

/// Two streams joined as 1.x's binary iterator joins them: each step takes the next
/// point of each; of equal times they are combined, else the earlier (by time, whatever
/// the query's order) stands alone, null, and the other waits.
fn pair_by_time(
    a: Vec<(i64, Cell)>,
    b: Vec<(i64, Cell)>,
    f: &dyn Fn(&Cell, &Cell) -> Cell,
) -> Vec<(i64, Cell)> {
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    let mut out = Vec::new();
    loop {
        let (ta, tb) = (a.peek().map(|p| p.0), b.peek().map(|p| p.0));
        match (ta, tb) {
            (None, None) => break,
            (Some(ta), Some(tb)) if ta == tb => {
                if let (Some((t, x)), Some((_, y))) = (a.next(), b.next()) {
                    out.push((t, f(&x, &y)));
                }
            }
            (Some(ta), Some(tb)) if ta > tb => out.extend(b.next().map(|(t, _)| (t, Cell::Null))),
            (Some(_), _) => out.extend(a.next().map(|(t, _)| (t, Cell::Null))),
            (None, Some(_)) => out.extend(b.next().map(|(t, _)| (t, Cell::Null))),
        }
    }
    out
}

/// Joins streams of (time, value), each in the query's order (`descending`), into rows of
/// one cell a stream (null where a stream has no value at that time), oldest first.
pub(super) fn join_by_time(
    mut streams: Vec<Vec<(i64, Value)>>,
    descending: bool,
) -> Vec<(i64, Vec<Value>)> {
    let mut next = vec![0usize; streams.len()];
    let mut rows = Vec::new();
    loop {
        let heads = streams
            .iter()
            .zip(&next)
            .filter_map(|(s, &at)| s.get(at).map(|(t, _)| *t));
        let at = if descending { heads.max() } else { heads.min() };
        let Some(time) = at else { break };
        let row = streams
            .iter_mut()
            .zip(next.iter_mut())
            .map(|(s, at)| match s.get_mut(*at) {
                Some((t, v)) if *t == time => {
                    *at += 1;
                    std::mem::take(v)
                }
                _ => Value::Null,
            })
            .collect();
        rows.push((time, row));
    }
    if descending {
        rows.reverse();
    }
    rows
}

pub(super) fn time_offset(stmt: &SelectStatement) -> i64 {
    stmt.dimensions
        .iter()
        .find_map(|d| match &d.expr {
            Expr::Call(c) if c.name == "time" => match c.args.get(1) {
                Some(Expr::Duration(d)) | Some(Expr::Integer(d)) => Some(*d),
                _ => None,
            },
            _ => None,
        })
        .unwrap_or(0)
}

pub(super) fn group_tags(
    stmt: &SelectStatement,
    tag_keys: &BTreeSet<String>,
) -> Result<Vec<String>, QueryError> {
    dimension_tags(&stmt.dimensions, tag_keys)
}

/// The tag keys of GROUP BY `dimensions` (`*`: every key of `tag_keys`), sorted.
pub(super) fn dimension_tags(
    dimensions: &[Dimension],
    tag_keys: &BTreeSet<String>,
) -> Result<Vec<String>, QueryError> {
    let mut tags = Vec::new();
    for d in dimensions {
        match &d.expr {
            Expr::Call(c) if c.name == "time" => {}
            Expr::VarRef(v) => tags.push(v.name.clone()),
            Expr::Wildcard(_) => tags.extend(tag_keys.iter().cloned()),
            other => {
                return Err(QueryError::not_supported(format!(
                    "GROUP BY {other} is not supported yet"
                )))
            }
        }
    }
    tags.sort();
    tags.dedup();
    Ok(tags)
}

pub(super) fn group_of(group_tags: &[String], tags: &[(String, String)]) -> Group {
    group_tags
        .iter()
        .map(|k| {
            let value = tags.iter().find(|(t, _)| t == k).map(|(_, v)| v.clone());
            (k.clone(), value.unwrap_or_default())
        })
        .collect()
}
