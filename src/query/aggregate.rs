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

use super::calc::Cell;
use super::error::QueryError;
use super::functions::{Acc, Reduced};
use super::limits::QueryLimits;
use super::parser::ast::{Expr, Fill, SelectStatement};
use super::plan::{column_names, eval_column, AggregateCall, Column, Func, Kind, Node, Plan};
use super::result::Series;
use super::rows::{
    answer_row_bytes, descending, json_value, limit, num, SeriesRows, ROWS_PER_CHARGE,
};
use super::scan::{Folded, Group, Scan, SelectContext, WindowAccs};
use super::selection;
use crate::line_protocol::FieldValue;
use crate::storage::column::Column as StoredColumn;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

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
    match node {
        Node::Transform(..) => true,
        Node::Math(_, args) => args.iter().any(has_transform),
        Node::Binary(_, l, r) => has_transform(l) || has_transform(r),
        _ => false,
    }
}

/// Whether a plan reads each field's values in time order alone, so that a scan can fold
/// each series into its groups' windows as it is read ([`Folder`]): time windows of the
/// calls reduced as values arrive, nothing computed row by row.
pub fn by_columns(plan: &Plan) -> bool {
    plan.kind == Kind::Windows
        && plan.selection.is_none()
        && !plan.fields.iter().any(has_transform)
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
pub fn execute(
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
        // Windows align to local time in the statement's zone. Their fixed size cannot
        // follow a change of the zone's offset, so one inside the range is refused.
        let zone_offset = ctx.zone.as_ref().map_or(0, |z| z.offset_nanos(lower));
        let offset = offset - zone_offset;
        let (mut first, mut last) = (
            window_start(lower, interval, offset),
            window_start(upper, interval, offset),
        );
        if let Some(zone) = &ctx.zone {
            let end = last.saturating_add(interval);
            if zone.offset_nanos(first) != zone_offset || zone.offset_nanos(end) != zone_offset {
                return Err(QueryError::not_supported(
                    "GROUP BY time() over a change of the tz() zone's UTC offset is not \
                     supported yet",
                ));
            }
        }
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
    let mut out = Vec::new();
    for (tags, members) in groups {
        ctx.limits.check_deadline()?;
        let rows: Vec<(i64, Vec<Value>)> = match (plan.kind, &plan.selection) {
            (Kind::Points, _) => point_rows(plan, &members, descending)?,
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
            )?,
        };
        if rows.is_empty() {
            continue;
        }
        let mut rows = rows;
        if descending {
            rows.reverse();
        }
        // Times are rendered for the rows shown only; the vector is made anew, so that a
        // LIMIT leaves nothing of the group's rows behind.
        let mut values: Vec<Vec<Value>> = rows
            .into_iter()
            .skip(stmt.offset as usize)
            .take(limit(stmt.limit))
            .map(|(time, mut row)| {
                row.insert(0, ctx.time_value(time));
                row
            })
            .collect();
        values.shrink_to_fit();
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

/// One group's rows of a [`Kind::Windows`] plan: its aggregates per window, filled, and the
/// fields computed from them.
#[allow(clippy::too_many_arguments)]
fn window_rows(
    limits: &QueryLimits,
    plan: &Plan,
    members: &[&SeriesRows],
    folded: Option<WindowAccs>,
    windows: &Windows,
    fill: &Fill,
    integer: &[bool],
    single_selector: bool,
    extra: Option<usize>,
    descending: bool,
) -> Result<Vec<(i64, Vec<Value>)>, QueryError> {
    let calls = &plan.aggregates;
    // What this group holds while its windows are computed, charged before any of it is
    // made: every window (filled ones too) has each call's reduction, its result, a cell
    // per call and per field, and a row of the answer; the values kept by calls that
    // need them all (median, percentile, mode...) come on top.
    let per_window = calls.len()
        * (std::mem::size_of::<Acc>()
            + std::mem::size_of::<Reduced>()
            + 2 * std::mem::size_of::<Cell>())
        + plan.fields.len() * std::mem::size_of::<Cell>()
        + answer_row_bytes(plan.fields.len())
        + 2 * std::mem::size_of::<i64>();
    let keeping_values = calls
        .iter()
        .filter(|c| matches!(Acc::new(c.func), Acc::Values(_)))
        .count();
    let values_kept = keeping_values * members.iter().map(|s| s.times.len()).sum::<usize>();
    let _held = limits.hold(
        windows.count.saturating_mul(per_window)
            + values_kept * std::mem::size_of::<(i64, FieldValue)>(),
    )?;
    limits.check_deadline()?;
    // Each call's reduction per window, fed the values with their times (for selectors).
    let mut cells: Vec<Vec<Acc>> = (0..windows.count)
        .map(|_| calls.iter().map(|c| Acc::new(c.func)).collect())
        .collect();
    for (start, accs) in folded.unwrap_or_default() {
        if let Some(w) = windows.index(start) {
            for ((cell, acc), call) in cells[w].iter_mut().zip(accs).zip(calls) {
                cell.merge(call.func, acc);
            }
        }
    }
    for s in members {
        limits.check_deadline()?;
        for (time, values) in s.rows() {
            let Some(w) = windows.index(*time) else {
                continue;
            };
            for (c, call) in calls.iter().enumerate() {
                if let Some(v) = call.field.and_then(|i| values.get(i)?.as_ref()) {
                    cells[w][c].push(call.func, *time, v);
                }
            }
        }
    }
    let reduced: Vec<Vec<Reduced>> = cells
        .into_iter()
        .map(|cell| {
            calls
                .iter()
                .zip(cell)
                .map(|(call, acc)| acc.finish(call.func))
                .collect()
        })
        .collect();
    let mut reduced = reduced;
    limits.check_deadline()?;
    for (c, call) in calls.iter().enumerate() {
        if let (Func::Integral(unit), Some(field)) = (call.func, call.field) {
            let mut points: Vec<(i64, f64)> = members
                .iter()
                .flat_map(|s| s.rows())
                .filter_map(|(t, values)| Some((*t, num(values.get(field)?.as_ref()?)?)))
                .collect();
            points.sort_by_key(|(t, _)| *t);
            // As for transformations of raw points: which of several series' points at one
            // time 1.x integrates depends on its merge order.
            if points.windows(2).any(|p| p[0].0 == p[1].0) {
                return Err(QueryError::not_supported(
                    "integral() of several series that share timestamps is not \
                            supported: GROUP BY their tags or select one series",
                ));
            }
            for (w, area) in integral_by_window(&points, windows, unit)
                .into_iter()
                .enumerate()
            {
                reduced[w][c] = area.map(|a| (windows.start(w), FieldValue::Float(a)));
            }
        }
    }
    let grouped_by_time = windows.interval > 0;
    let aggregate_columns: Vec<Vec<Cell>> = calls
        .iter()
        .enumerate()
        .map(|(c, call)| {
            let mut column: Vec<Cell> = reduced
                .iter()
                .map(|window| match &window[c] {
                    Some((_, v)) => Cell::Value(v.clone()),
                    // A window with no point for any call has no row without time
                    // windows or under fill(none).
                    None if (!grouped_by_time || *fill == Fill::None)
                        && window.iter().all(Option::is_none) =>
                    {
                        Cell::Absent
                    }
                    // InfluxDB counts an empty window as 0 under fill(null).
                    // (A field the measurement lacks counts as null.)
                    None if matches!(call.func, Func::Count | Func::CountDistinct)
                        && call.field.is_some()
                        && *fill == Fill::Null =>
                    {
                        Cell::Value(FieldValue::Integer(0))
                    }
                    None => Cell::Null,
                })
                .collect();
            let mut filled = 0..column.len();
            match extra {
                Some(e) if !call.window_before => {
                    column[e] = Cell::Absent;
                    filled = if e == 0 { 1..column.len() } else { 0..e };
                }
                _ => {}
            }
            // 1.x streams integral() past its fill: its empty windows stay empty.
            if let Func::Integral(_) = call.func {
                for cell in column.iter_mut().filter(|c| **c == Cell::Null) {
                    *cell = Cell::Absent;
                }
            } else if grouped_by_time {
                apply_fill(fill, integer[c], &mut column[filled]);
            }
            column
        })
        .collect();
    limits.check_deadline()?;
    // Transformations see the windows in the query's order.
    let order: Vec<usize> = if descending {
        (0..windows.count).rev().collect()
    } else {
        (0..windows.count).collect()
    };
    let times: Vec<i64> = order.iter().map(|&w| windows.start(w)).collect();
    let leaf = |node: &Node| match node {
        Node::Aggregate(k) => order
            .iter()
            .map(|&w| aggregate_columns[*k][w].clone())
            .collect(),
        _ => vec![Cell::Absent; windows.count],
    };
    let columns = plan
        .fields
        .iter()
        .map(|f| eval_column(f, &times, &leaf))
        .collect::<Result<Vec<_>, _>>()?;
    limits.check_deadline()?;
    let mut rows: Vec<(i64, Vec<Value>)> = Vec::new();
    for (at, &w) in order.iter().enumerate() {
        if at % ROWS_PER_CHARGE == ROWS_PER_CHARGE - 1 {
            limits.check_deadline()?;
        }
        if Some(w) == extra || !present(&columns, at) {
            continue;
        }
        let time = match (single_selector, &reduced[w][0]) {
            (true, Some((t, _))) => *t,
            _ => times[at],
        };
        rows.push((time, columns.iter().map(|c| cell_json(c, at)).collect()));
    }
    if descending {
        rows.reverse();
    }
    Ok(rows)
}

/// One group's rows of a [`Kind::Points`] plan: the points of its series merged in time
/// order, transformed.
fn point_rows(
    plan: &Plan,
    members: &[&SeriesRows],
    descending: bool,
) -> Result<Vec<(i64, Vec<Value>)>, QueryError> {
    let mut points: Vec<(i64, &[Option<FieldValue>])> = members
        .iter()
        .flat_map(|s| s.rows().map(|(t, v)| (*t, v)))
        .collect();
    // Transformations see the points in the query's order.
    points.sort_by_key(|(t, _)| *t);
    // Of several series' points at one time, 1.x transforms whichever its merge yields
    // first, which no rule decides: refuse rather than pick one.
    if points.windows(2).any(|p| p[0].0 == p[1].0) {
        return Err(QueryError::not_supported(
            "transforming the raw points of several series that share timestamps is not \
             supported: GROUP BY their tags or select one series",
        ));
    }
    if descending {
        points.reverse();
    }
    let times: Vec<i64> = points.iter().map(|(t, _)| *t).collect();
    let leaf = |node: &Node| match node {
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
    };
    let columns = plan
        .fields
        .iter()
        .map(|f| eval_column(f, &times, &leaf))
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

struct Windows {
    first: i64,
    interval: i64,
    count: usize,
}

impl Windows {
    fn index(&self, time: i64) -> Option<usize> {
        if self.interval == 0 {
            return Some(0);
        }
        let i = time.checked_sub(self.first)?.div_euclid(self.interval);
        (0..self.count as i64).contains(&i).then_some(i as usize)
    }

    fn start(&self, i: usize) -> i64 {
        self.first + self.interval * i as i64
    }
}

fn window_start(time: i64, interval: i64, offset: i64) -> i64 {
    time - (time - offset).rem_euclid(interval)
}

pub fn time_offset(stmt: &SelectStatement) -> i64 {
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

pub fn group_tags(
    stmt: &SelectStatement,
    tag_keys: &BTreeSet<String>,
) -> Result<Vec<String>, QueryError> {
    let mut tags = Vec::new();
    for d in &stmt.dimensions {
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

/// integral() of one group, per window: trapezoids between consecutive points, per `unit`;
/// as 1.x streams it, a pair of points across a window boundary is split there at the
/// linearly interpolated value, and a point at the time of the one before replaces it.
fn integral_by_window(points: &[(i64, f64)], windows: &Windows, unit: i64) -> Vec<Option<f64>> {
    let mut out = vec![None; windows.count];
    let unit = unit as f64;
    let mut prev: Option<(i64, f64)> = None;
    let (mut window, mut sum) = (0usize, 0.0);
    for &(t, v) in points {
        let Some(w) = windows.index(t) else {
            continue;
        };
        let Some((mut pt, mut pv)) = prev else {
            prev = Some((t, v));
            window = w;
            continue;
        };
        if pt == t {
            prev = Some((t, v));
            continue;
        }
        if windows.interval > 0 && w != window {
            let end = windows.start(window) + windows.interval;
            if pt != end {
                let slope = (v - pv) / (t - pt) as f64;
                let value = slope * (end - pt) as f64 + pv;
                sum += 0.5 * (value + pv) * (end - pt) as f64 / unit;
                (pt, pv) = (end, value);
            }
            out[window] = Some(sum);
            (window, sum) = (w, 0.0);
        }
        sum += 0.5 * (v + pv) * (t - pt) as f64 / unit;
        prev = Some((t, v));
    }
    if prev.is_some() {
        out[window] = Some(sum);
    }
    out
}

fn group_of(group_tags: &[String], tags: &[(String, String)]) -> Group {
    group_tags
        .iter()
        .map(|k| {
            let value = tags.iter().find(|(t, _)| t == k).map(|(_, v)| v.clone());
            (k.clone(), value.unwrap_or_default())
        })
        .collect()
}

/// Folds series into a [`Folded`].
pub struct Folder<'a> {
    calls: &'a [AggregateCall],
    group_tags: Vec<String>,
    interval: i64,
    offset: i64,
}

impl<'a> Folder<'a> {
    pub fn new(
        stmt: &SelectStatement,
        plan: &'a Plan,
        tag_keys: &BTreeSet<String>,
    ) -> Result<Folder<'a>, QueryError> {
        Ok(Folder {
            calls: &plan.aggregates,
            group_tags: group_tags(stmt, tag_keys)?,
            interval: stmt.group_by_interval().map_err(QueryError::invalid)?,
            offset: time_offset(stmt),
        })
    }

    /// Adds one series (its tags and a column per scanned field) to what is folded.
    pub fn fold(
        &self,
        into: &mut Folded,
        tags: &[(String, String)],
        columns: &[Option<StoredColumn>],
        limits: &QueryLimits,
    ) -> Result<(), QueryError> {
        let present = columns.iter().flatten().filter(|c| !c.is_empty());
        let Some(first) = present.clone().map(|c| c.times[0]).min() else {
            return Ok(());
        };
        // A window's map entry and each call's reduction.
        let window_bytes = 64 + self.calls.len() * std::mem::size_of::<Acc>();
        into.first_time = Some(into.first_time.map_or(first, |t| t.min(first)));
        into.series += 1;
        into.values += present.map(|c| c.len()).sum::<usize>();
        into.first_values.resize(columns.len(), None);
        for (kept, column) in into.first_values.iter_mut().zip(columns) {
            if kept.is_none() {
                *kept = column
                    .as_ref()
                    .filter(|c| !c.is_empty())
                    .map(|c| c.values.get(0));
            }
        }
        let windows = into
            .groups
            .entry(group_of(&self.group_tags, tags))
            .or_default();
        let mut charged = windows.len();
        for (c, call) in self.calls.iter().enumerate() {
            let Some(column) = call.field.and_then(|i| columns.get(i)?.as_ref()) else {
                continue;
            };
            let mut at = 0;
            while at < column.len() {
                // A run of values in one window takes one lookup.
                let start = self.window_of(column.times[at]);
                let accs = windows
                    .entry(start)
                    .or_insert_with(|| self.calls.iter().map(|c| Acc::new(c.func)).collect());
                while at < column.len() && self.window_of(column.times[at]) == start {
                    accs[c].push(call.func, column.times[at], &column.values.get(at));
                    at += 1;
                }
                // Windows as small as the points' spacing make one per point.
                if windows.len() - charged >= ROWS_PER_CHARGE {
                    limits.charge((windows.len() - charged) * window_bytes)?;
                    limits.check_deadline()?;
                    charged = windows.len();
                }
            }
        }
        limits.charge(windows.len().saturating_sub(charged) * window_bytes)
    }

    fn window_of(&self, time: i64) -> i64 {
        if self.interval > 0 {
            window_start(time, self.interval, self.offset)
        } else {
            0
        }
    }
}

/// Fills the null cells of one aggregate's column; a numeric fill value is cast to the
/// column's type, and linear fill of integers truncates, as InfluxDB does.
fn apply_fill(fill: &Fill, integer: bool, cells: &mut [Cell]) {
    let fill = match fill {
        Fill::Number(x) if integer => &Fill::Integer(*x as i64),
        Fill::Integer(x) if !integer => &Fill::Number(*x as f64),
        other => other,
    };
    match fill {
        Fill::Previous => {
            let mut last = Cell::Null;
            for cell in cells.iter_mut() {
                match cell {
                    Cell::Null => *cell = last.clone(),
                    Cell::Value(_) => last = cell.clone(),
                    Cell::Absent => {}
                }
            }
        }
        Fill::Number(x) => {
            for cell in cells.iter_mut().filter(|c| **c == Cell::Null) {
                *cell = Cell::Value(FieldValue::Float(*x));
            }
        }
        Fill::Integer(x) => {
            for cell in cells.iter_mut().filter(|c| **c == Cell::Null) {
                *cell = Cell::Value(FieldValue::Integer(*x));
            }
        }
        Fill::Linear => {
            let known: Vec<(usize, FieldValue)> = cells
                .iter()
                .enumerate()
                .filter_map(|(i, c)| Some((i, c.value()?.clone())))
                .collect();
            for pair in known.windows(2) {
                let ((i0, v0), (i1, v1)) = (&pair[0], &pair[1]);
                let (Some(y0), Some(y1)) = (num(v0), num(v1)) else {
                    continue;
                };
                for (i, cell) in cells.iter_mut().enumerate().take(*i1).skip(i0 + 1) {
                    let y = y0 + (y1 - y0) * (i - i0) as f64 / (i1 - i0) as f64;
                    *cell = Cell::Value(match v0 {
                        FieldValue::Integer(_) => FieldValue::Integer(y as i64),
                        FieldValue::Unsigned(_) => FieldValue::Unsigned(y as u64),
                        _ => FieldValue::Float(y),
                    });
                }
            }
        }
        Fill::Null | Fill::None => {}
    }
}
