//! Time windows (`GROUP BY time(interval[, offset])`, or one window over the range), and
//! one group's rows of a plan of kind `Kind::Windows`: each call's reduction per window,
//! filled, and the fields computed from them; integral() across windows as 1.x streams it.

use super::fill::apply_fill;
use super::{cell_json, present};
use crate::line_protocol::FieldValue;
use crate::line_protocol::{MAX_NANOS, MIN_NANOS};
use crate::query::calc::Cell;
use crate::query::error::QueryError;
use crate::query::functions::{Acc, Reduced};
use crate::query::limits::QueryLimits;
use crate::query::parser::ast::Fill;
use crate::query::plan::{eval_column, AggregateCall, Func, Node, Plan};
use crate::query::rows::{answer_row_bytes, num, SeriesRows, ROWS_PER_CHARGE};
use crate::query::scan::{Origin, WindowAccs};
use crate::query::zone::Zone;
use serde_json::Value;

pub(super) struct Windows {
    pub(super) first: i64,
    pub(super) interval: i64,
    pub(super) count: usize,
    /// Set when the windows align to local time across a change of the zone's UTC
    /// offset: then they are not of one size.
    pub(super) local: Option<LocalWindows>,
}

/// Windows aligned to local time across a change of the zone's offset: their starts as
/// 1.x steps through them, and what places a point in one.
pub(super) struct LocalWindows {
    /// Every window's start, filled ones too.
    pub(super) starts: Vec<i64>,
    /// The windows that hold points, `[start, end)` in time order.
    pub(super) held: Vec<(i64, i64)>,
}

impl LocalWindows {
    /// The windows of points at `times` (ascending) as 1.x's reduction makes them: the
    /// first point's [`local_window`], holding every point before its end; then the next
    /// point's. (A window that begins before a change of offset can end an hour later
    /// than its own local start plus the interval, and hold that hour.)
    pub(super) fn held(times: &[i64], interval: i64, offset: i64, zone: &Zone) -> Vec<(i64, i64)> {
        let mut held: Vec<(i64, i64)> = Vec::new();
        for &t in times {
            if held.last().is_some_and(|&(_, end)| t < end) {
                continue;
            }
            held.push(local_window(t, interval, offset, zone));
        }
        held
    }
}

impl Windows {
    pub(super) fn index(&self, time: i64) -> Option<usize> {
        if self.interval == 0 {
            return Some(0);
        }
        if let Some(local) = &self.local {
            let at = local.held.partition_point(|&(start, _)| start <= time);
            let &(start, end) = local.held.get(at.checked_sub(1)?)?;
            return (time < end)
                .then(|| local.starts.binary_search(&start).ok())
                .flatten();
        }
        let i = time.checked_sub(self.first)?.div_euclid(self.interval);
        (0..self.count as i64).contains(&i).then_some(i as usize)
    }

    pub(super) fn start(&self, i: usize) -> i64 {
        match &self.local {
            Some(local) => local.starts[i],
            None => self.first + self.interval * i as i64,
        }
    }
}

/// The window `[start, end)` that 1.x (`IteratorOptions.Window`) puts `t` in, aligned to
/// local time in `zone`: a day's window starts at local midnight on either side of a
/// daylight-saving change, so the windows around it are shorter or longer than the
/// interval (unless the change is as long as the interval).
pub(super) fn local_window(t: i64, interval: i64, offset: i64, zone: &Zone) -> (i64, i64) {
    let t = t.wrapping_sub(offset);
    let zone_offset = zone.offset_nanos(t);
    let mut dt = t.wrapping_add(zone_offset) % interval;
    if dt < 0 {
        dt += interval;
    }
    let mut start = if MIN_NANOS.wrapping_add(dt) >= t {
        MIN_NANOS
    } else {
        t - dt
    };
    // The first time may have been after the change: at the window's start the offset
    // may be another.
    let o = zone_offset - zone.offset_nanos(start);
    if o != 0 && o.abs() < interval {
        start += o;
    }
    let rest = interval - dt;
    let mut end = if MAX_NANOS.wrapping_sub(rest) <= t {
        MAX_NANOS
    } else {
        t + rest
    };
    let end_offset = zone.offset_nanos(end);
    let o = zone_offset - end_offset;
    // Time added by clocks going back belongs to the window before the change; time
    // skipped by clocks going forward moves the end only if the change falls inside it.
    if o != 0 && o.abs() < interval && (o > 0 || zone.offset_nanos(end + o) == end_offset) {
        end += o;
    }
    (start.wrapping_add(offset), end.wrapping_add(offset))
}

/// The starts of the windows from `lower`'s to `upper`'s, as 1.x's fill steps through
/// them (an interval at a time, moved by a change of offset shorter than the interval),
/// merged with the windows that hold points (`held`): a window with points comes where
/// the step reaches or passes it.
pub(super) fn local_starts(
    lower: i64,
    upper: i64,
    interval: i64,
    offset: i64,
    zone: &Zone,
    held: &[(i64, i64)],
    limit: usize,
) -> Result<Vec<i64>, QueryError> {
    let (mut expected, _) = local_window(lower, interval, offset, zone);
    let (end, _) = local_window(upper, interval, offset, zone);
    let mut current = zone.offset_nanos(expected);
    let mut data = held.iter().map(|&(start, _)| start).peekable();
    let mut starts = Vec::new();
    loop {
        match data.peek() {
            None if expected > end => break,
            Some(&point) if point <= expected => {
                starts.push(point);
                data.next();
            }
            _ => starts.push(expected),
        }
        if starts.len() > limit {
            return Err(QueryError::TooManyWindows {
                found: starts.len() as i64,
                limit: limit as i64,
            });
        }
        expected = expected.saturating_add(interval);
        let now = zone.offset_nanos(expected - 1);
        if now != current {
            let diff = current - now;
            if diff.abs() < interval {
                expected += diff;
            }
            current = now;
        }
    }
    starts.dedup();
    Ok(starts)
}

pub(super) fn window_start(time: i64, interval: i64, offset: i64) -> i64 {
    time - (time - offset).rem_euclid(interval)
}

/// One group's rows of a `Kind::Windows` plan: its aggregates per window, filled, and the
/// fields computed from them.
#[allow(clippy::too_many_arguments)]
pub(super) fn window_rows(
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
    origins: &[Origin],
    range: (i64, i64),
) -> Result<Vec<(i64, Vec<Value>)>, QueryError> {
    let calls = &plan.aggregates;
    let integral = |c: &AggregateCall| matches!(c.func, Func::Integral(_));
    if descending && calls.iter().any(integral) {
        if let ([call], [Node::Aggregate(0)]) = (calls.as_slice(), plan.fields.as_slice()) {
            return descending_integral_rows(call, members, windows, origins, range);
        }
        if extra.is_some() {
            // The window read before the range for a transformation would reach the
            // integral() too.
            return Err(QueryError::not_supported(
                "integral() in descending order beside a transformation of an aggregate is \
                 not supported yet",
            ));
        }
        // Beside other fields (or inside an expression), 1.x streams each field apart
        // and its cursor joins them: at each step the latest time of the streams' next
        // points, each stream giving its next point at that time (so an integral()'s rows,
        // stamped with their windows' ends, and a window's other rows meet only where
        // their times do).
        let mut streams: Vec<Vec<(i64, Value)>> = Vec::with_capacity(plan.fields.len());
        for field in &plan.fields {
            let used: Vec<usize> = (0..calls.len())
                .filter(|k| field.any(&|n| matches!(n, Node::Aggregate(j) if j == k)))
                .collect();
            let mut rows: Vec<(i64, Value)> = match used.as_slice() {
                [k] if integral(&calls[*k]) => {
                    let areas =
                        descending_integral_rows(&calls[*k], members, windows, origins, range)?;
                    let times: Vec<i64> = areas.iter().map(|(t, _)| *t).collect();
                    let cells: Vec<Cell> = areas
                        .iter()
                        .map(|(_, v)| {
                            v[0].as_f64()
                                .map_or(Cell::Null, |a| Cell::Value(FieldValue::Float(a)))
                        })
                        .collect();
                    let leaf = |node: &Node| match node {
                        Node::Aggregate(j) if j == k => cells.clone(),
                        _ => vec![Cell::Absent; times.len()],
                    };
                    let column = eval_column(field, &times, &leaf)?;
                    (0..times.len())
                        .filter(|&r| present(std::slice::from_ref(&column), r))
                        .map(|r| (times[r], cell_json(&column, r)))
                        .collect()
                }
                _ if used.iter().any(|&k| integral(&calls[k])) => {
                    return Err(QueryError::not_supported(
                        "integral() in descending order in an expression with other \
                         functions is not supported yet",
                    ))
                }
                _ => {
                    // The field alone; the integral() calls it does not read are left out
                    // as counts, which it does not read either.
                    let alone = Plan {
                        kind: plan.kind,
                        fields: vec![field.clone()],
                        aggregates: calls
                            .iter()
                            .map(|c| {
                                let mut c = c.clone();
                                if integral(&c) {
                                    c.func = Func::Count;
                                }
                                c
                            })
                            .collect(),
                        selection: None,
                        holt_winters: vec![None],
                    };
                    window_rows(
                        limits,
                        &alone,
                        members,
                        None,
                        windows,
                        fill,
                        integer,
                        single_selector,
                        extra,
                        descending,
                        origins,
                        range,
                    )?
                    .into_iter()
                    .map(|(t, mut row)| (t, row.swap_remove(0)))
                    .collect()
                }
            };
            // In the query's order.
            rows.reverse();
            streams.push(rows);
        }
        // Oldest first, as the caller reverses a descending group's rows.
        return Ok(super::join_by_time(streams, true));
    }
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
    // Without time windows, 1.x stamps integral() of a float field with the epoch
    // whatever the range (its integer reducer leaves the time to the range's start, as
    // every other call's does).
    let grouped_by_time = windows.interval > 0;
    let mut at_epoch = vec![false; calls.len()];
    for (c, call) in calls.iter().enumerate() {
        if let (Func::Integral(unit), Some(field)) = (call.func, call.field) {
            at_epoch[c] = !grouped_by_time
                && members
                    .iter()
                    .flat_map(|s| s.rows())
                    .find_map(|(_, values)| values.get(field)?.as_ref())
                    .is_some_and(|v| matches!(v, FieldValue::Float(_)));
            let mut points: Vec<(i64, f64)> = members
                .iter()
                .flat_map(|s| s.rows())
                .filter_map(|(t, values)| Some((*t, num(values.get(field)?.as_ref()?)?)))
                .collect();
            points.sort_by_key(|(t, _)| *t);
            if origins.len() > 1 || points.windows(2).any(|p| p[0].0 == p[1].0) {
                // Of several series' points at one time, the one 1.x's merge yields last
                // counts; several sources come one after another, a window at a time
                // (see `merge`).
                let window_of = |t: i64| windows.index(t).map_or(i64::MIN, |w| windows.start(w));
                points = super::merge::source_order(members, field, origins, false, &window_of)
                    .into_iter()
                    .filter_map(|(t, values)| Some((t, num(values.get(field)?.as_ref()?)?)))
                    .collect();
            }
            let integer = members
                .iter()
                .flat_map(|s| s.rows())
                .find_map(|(_, values)| values.get(field)?.as_ref())
                .is_some_and(|v| !matches!(v, FieldValue::Float(_)));
            let reducer = IntegralReducer {
                windows,
                range,
                unit,
                integer,
                descending: false,
            };
            for (start, area) in reducer.stream(&points) {
                let w = if grouped_by_time {
                    windows.index(start)
                } else {
                    Some(0)
                };
                if let Some(w) = w {
                    reduced[w][c] = Some((windows.start(w), FieldValue::Float(area)));
                }
            }
        }
    }
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
                let first = filled.start;
                apply_fill(fill, integer[c], &mut column[filled], &|i| {
                    windows.start(first + i) / windows.interval
                });
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
    // Per window, the row of the one selector's point, for the fields and tags beside it.
    let selected: Vec<Option<(&SeriesRows, usize)>> =
        if plan.fields.iter().any(super::reads_selected_point) {
            reduced
                .iter()
                .map(|window| {
                    let (time, value) = window.first()?.as_ref()?;
                    selected_point(members, calls[0].field?, *time, value, descending)
                })
                .collect()
        } else {
            Vec::new()
        };
    // A field or tag beside the selector, in the query's order: null in a window the
    // selector's column fills, and its nulls then filled as 1.x fills them under
    // fill(previous) (the column's previous value) and fill(<number>).
    let beside = |read: &dyn Fn(&SeriesRows, usize) -> Option<FieldValue>| -> Vec<Cell> {
        let mut previous: Option<FieldValue> = None;
        order
            .iter()
            .map(|&w| {
                let cell = match selected.get(w).copied().flatten() {
                    Some((s, row)) => read(s, row).map_or(Cell::Null, Cell::Value),
                    None if aggregate_columns[0][w] == Cell::Absent => Cell::Absent,
                    None => Cell::Null,
                };
                let filled = match (cell, fill) {
                    (Cell::Null, Fill::Previous) if grouped_by_time => {
                        previous.clone().map_or(Cell::Null, Cell::Value)
                    }
                    (Cell::Null, Fill::Integer(x)) if grouped_by_time => {
                        Cell::Value(FieldValue::Integer(*x))
                    }
                    (Cell::Null, Fill::Number(x)) if grouped_by_time => {
                        Cell::Value(FieldValue::Float(*x))
                    }
                    (cell, _) => cell,
                };
                if let Cell::Value(v) = &filled {
                    previous = Some(v.clone());
                }
                filled
            })
            .collect()
    };
    let leaf = |node: &Node| match node {
        Node::Aggregate(k) => order
            .iter()
            .map(|&w| aggregate_columns[*k][w].clone())
            .collect(),
        Node::Tag(key) => beside(&|s, _| {
            let (_, v) = s.tags.iter().find(|(k, _)| k == key)?;
            Some(FieldValue::String(v.clone()))
        }),
        Node::SelectedField(i) => beside(&|s, row| s.value(row, (*i)?).cloned()),
        _ => vec![Cell::Absent; windows.count],
    };
    let columns = plan
        .fields
        .iter()
        .map(|f| eval_column(f, &times, &leaf))
        .collect::<Result<Vec<_>, _>>()?;
    limits.check_deadline()?;
    // The fields stamped with the epoch (above) go apart from the others, in two rows
    // when both are asked for.
    let at_epoch: Vec<bool> = plan
        .fields
        .iter()
        .map(|f| f.any(&|n| matches!(n, Node::Aggregate(k) if at_epoch[*k])))
        .collect();
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
        let row: Vec<Value> = columns.iter().map(|c| cell_json(c, at)).collect();
        if !at_epoch.contains(&true) || time == 0 {
            rows.push((time, row));
            continue;
        }
        let part = |epoch: bool| -> Option<Vec<Value>> {
            let part: Vec<Value> = row
                .iter()
                .zip(&at_epoch)
                .map(|(v, &e)| if e == epoch { v.clone() } else { Value::Null })
                .collect();
            part.iter().any(|v| !v.is_null()).then_some(part)
        };
        let mut parts: Vec<(i64, Vec<Value>)> = [(0, part(true)), (time, part(false))]
            .into_iter()
            .filter_map(|(t, p)| Some((t, p?)))
            .collect();
        // In the order the windows are visited (reversed below).
        parts.sort_by_key(|(t, _)| *t);
        if descending {
            parts.reverse();
        }
        rows.extend(parts);
    }
    if descending {
        rows.reverse();
    }
    Ok(rows)
}

/// The row a selector chose: the first of the group's series (in the order the selector
/// was fed them: when descending, 1.x's merge takes a source's series of one time in
/// reverse order, the sources still in theirs) with a point at `time` whose `field` is
/// `value`.
fn selected_point<'a>(
    members: &[&'a SeriesRows],
    field: usize,
    time: i64,
    value: &FieldValue,
    descending: bool,
) -> Option<(&'a SeriesRows, usize)> {
    let find = |s: &&'a SeriesRows| {
        // Rows are in time order, reversed for a descending query.
        let row = if s.times.first() > s.times.last() {
            s.times.binary_search_by(|t| time.cmp(t)).ok()?
        } else {
            s.times.binary_search(&time).ok()?
        };
        (s.value(row, field) == Some(value)).then_some((*s, row))
    };
    if descending {
        let mut order = members.to_vec();
        order.reverse();
        // Stable: each source's series stay reversed.
        order.sort_by_key(|s| s.source);
        order.iter().find_map(find)
    } else {
        members.iter().find_map(find)
    }
}

/// integral() in descending order, as 1.x's float reducer streams it fed the points from
/// the latest: each trapezoid's elapsed time is negative (so is the area), a window is
/// closed when a point reaches its start and its row is stamped with its end, and the
/// last window's row is left out when its last point lies at that end (so, without GROUP
/// BY time, a group whose earliest point is at the epoch answers nothing). Returned
/// oldest first, as the caller reverses a descending group's rows.
fn descending_integral_rows(
    call: &AggregateCall,
    members: &[&SeriesRows],
    windows: &Windows,
    origins: &[Origin],
    range: (i64, i64),
) -> Result<Vec<(i64, Vec<Value>)>, QueryError> {
    let Func::Integral(unit) = call.func else {
        return Ok(Vec::new());
    };
    let Some(field) = call.field else {
        return Ok(Vec::new());
    };
    let mut points: Vec<(i64, &FieldValue)> = members
        .iter()
        .flat_map(|s| s.rows())
        .filter_map(|(t, values)| Some((*t, values.get(field)?.as_ref()?)))
        .collect();
    points.sort_by_key(|(t, _)| std::cmp::Reverse(*t));
    if origins.len() > 1 || points.windows(2).any(|p| p[0].0 == p[1].0) {
        // Of several series' points at one time, 1.x's merge decides which comes first;
        // several sources come one after another, a window at a time.
        let window_of = |t: i64| windows.index(t).map_or(i64::MIN, |w| windows.start(w));
        points = super::merge::source_order(members, field, origins, true, &window_of)
            .into_iter()
            .filter_map(|(t, values)| Some((t, values.get(field)?.as_ref()?)))
            .collect();
    }
    let integer = points
        .first()
        .is_some_and(|(_, v)| !matches!(v, FieldValue::Float(_)));
    let floats: Vec<(i64, f64)> = points
        .into_iter()
        .filter_map(|(t, v)| Some((t, num(v)?)))
        .collect();
    let reducer = IntegralReducer {
        windows,
        range,
        unit,
        integer,
        descending: true,
    };
    let mut rows = reducer.stream(&floats);
    rows.reverse();
    Ok(rows
        .into_iter()
        .map(|(t, area)| (t, vec![Value::from(area)]))
        .collect())
}

/// 1.x's integral() reducer, fed a group's points in the query's order: the trapezoids
/// between consecutive points per `unit`; a point at the time of the one before replaces
/// it; a pair across a window's bound is split there at the linearly interpolated value
/// and the window's area emitted, stamped with the window's start (its end when
/// descending, since 1.x swaps the two); the last window's area is emitted unless its
/// last point lies at that stamp. Float operations in 1.x's order. The integer reducer
/// differs, and is followed: it keeps a window without GROUP BY time too (the query's
/// range, stamped with its end + 1 when descending, with its start or the epoch when
/// ascending), and after a split it adds the next trapezoid from the interpolated value
/// and the value before the bound, not the point's.
struct IntegralReducer<'a> {
    windows: &'a Windows,
    /// The query's [start, end].
    range: (i64, i64),
    unit: i64,
    integer: bool,
    descending: bool,
}

impl IntegralReducer<'_> {
    /// 1.x's `opt.Window(t)` as the reducer names it: (start, end), swapped when
    /// descending.
    fn window(&self, t: i64) -> Option<(i64, i64)> {
        let (start, end) = if self.windows.interval > 0 {
            let w = self.windows.index(t)?;
            let start = self.windows.start(w);
            (start, start.saturating_add(self.windows.interval))
        } else {
            let start = self.range.0.max(MIN_NANOS);
            (start, self.range.1.min(MAX_NANOS).saturating_add(1))
        };
        Some(if self.descending {
            (end, start)
        } else {
            (start, end)
        })
    }

    /// The areas emitted, (stamp, area), in the order 1.x emits them.
    fn stream(&self, points: &[(i64, f64)]) -> Vec<(i64, f64)> {
        let unit = self.unit as f64;
        let windowed = self.integer || self.windows.interval > 0;
        let mut out = Vec::new();
        let mut prev: Option<(i64, f64)> = None;
        let (mut start, mut end) = (0i64, 0i64);
        let mut sum = 0.0;
        for &(t, v) in points {
            if self.windows.interval > 0 && self.windows.index(t).is_none() {
                continue;
            }
            let Some((mut pt, mut pv)) = prev else {
                if windowed {
                    let Some(bounds) = self.window(t) else {
                        continue;
                    };
                    (start, end) = bounds;
                    // 1.x's integer reducer stamps an unbounded range's start as 0.
                    if self.integer && start == MIN_NANOS {
                        start = 0;
                    }
                }
                prev = Some((t, v));
                continue;
            };
            if pt == t {
                prev = Some((t, v));
                continue;
            }
            let mut value = v;
            let crossed = if self.descending { t <= end } else { t >= end };
            if windowed && crossed {
                if pt != end {
                    let at_bound = (v - pv) / (t - pt) as f64 * (end - pt) as f64 + pv;
                    let elapsed = (end - pt) as f64 / unit;
                    sum += 0.5 * (at_bound + pv) * elapsed;
                    if self.integer {
                        value = at_bound;
                    } else {
                        pv = at_bound;
                    }
                    pt = end;
                }
                out.push((start, sum));
                if let Some(bounds) = self.window(t) {
                    (start, end) = bounds;
                }
                sum = 0.0;
            }
            let elapsed = (t - pt) as f64 / unit;
            sum += 0.5 * (value + pv) * elapsed;
            prev = Some((t, v));
        }
        if prev.is_some_and(|(pt, _)| pt != start) {
            out.push((start, sum));
        }
        out
    }
}
