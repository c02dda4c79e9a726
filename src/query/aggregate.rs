//! Aggregates and selectors over a scan, grouped by time windows and tags, with fill().
//!
//! Supported now: count, sum, mean, median, min, max, first, last, spread, stddev;
//! `GROUP BY time(interval[, offset])` and tag keys (or `*`); fill(null | none | previous |
//! linear | <number>). Anything else is refused with a clear error.

use super::parser::ast::{Expr, Fill, SelectStatement};
use super::result::{float_value, Series};
use super::select::{descending, json_value, limit, time_value, Scan, SelectContext, SeriesRows};
use crate::line_protocol::FieldValue;
use serde_json::Value;
use std::collections::BTreeMap;

/// More windows than this in one query is refused rather than exhausting memory.
const MAX_WINDOWS: i64 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Count,
    Sum,
    Mean,
    Median,
    Min,
    Max,
    First,
    Last,
    Spread,
    Stddev,
}

impl Func {
    fn parse(name: &str) -> Option<Func> {
        Some(match name {
            "count" => Func::Count,
            "sum" => Func::Sum,
            "mean" => Func::Mean,
            "median" => Func::Median,
            "min" => Func::Min,
            "max" => Func::Max,
            "first" => Func::First,
            "last" => Func::Last,
            "spread" => Func::Spread,
            "stddev" => Func::Stddev,
            _ => return None,
        })
    }

    /// Selectors return one of the points, with its own time when the query has no time
    /// windows.
    fn is_selector(self) -> bool {
        matches!(self, Func::Min | Func::Max | Func::First | Func::Last)
    }
}

struct Call {
    func: Func,
    /// Index of the field in the scan's rows (None: the field does not exist).
    field: Option<usize>,
    column: String,
}

impl Call {
    /// Whether the call's results are integers: counts, and sums and selections of
    /// integer fields.
    fn yields_integer(&self, scan: &Scan) -> bool {
        if self.func == Func::Count {
            return true;
        }
        let Some(i) = self.field else { return false };
        let integer_field = scan
            .series
            .iter()
            .flat_map(|s| s.rows.iter())
            .find_map(|(_, values)| values.get(i).cloned().flatten())
            .is_some_and(|v| matches!(v, FieldValue::Integer(_) | FieldValue::Unsigned(_)));
        integer_field
            && matches!(
                self.func,
                Func::Sum | Func::Min | Func::Max | Func::First | Func::Last | Func::Spread
            )
    }
}

pub fn execute(
    stmt: &SelectStatement,
    ctx: &SelectContext<'_>,
    scan: Scan,
) -> Result<Vec<Series>, String> {
    let calls = calls(stmt, &scan)?;
    let interval = stmt.group_by_interval().map_err(str::to_owned)?;
    let offset = time_offset(stmt);
    let group_tags = group_tags(stmt, &scan)?;

    // Groups of series by the values of the GROUP BY tags, in tag order.
    let mut groups: BTreeMap<Vec<(String, String)>, Vec<&SeriesRows>> = BTreeMap::new();
    for s in &scan.series {
        let key = group_tags
            .iter()
            .map(|k| {
                (
                    k.clone(),
                    s.tags
                        .iter()
                        .find(|(t, _)| t == k)
                        .map_or(String::new(), |(_, v)| v.clone()),
                )
            })
            .collect();
        groups.entry(key).or_default().push(s);
    }

    // Windows: with GROUP BY time, from the window of the range's start (or of the first
    // point) to that of its end (or now); otherwise one window over the range.
    let first_time = scan
        .series
        .iter()
        .filter_map(|s| s.rows.first().map(|r| r.0))
        .min();
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
        let (first, last) = (
            window_start(lower, interval, offset),
            window_start(upper, interval, offset),
        );
        let count = last.saturating_sub(first) / interval + 1;
        if count > MAX_WINDOWS {
            return Err(format!(
                "too many windows: {count} (at most {MAX_WINDOWS} per query)"
            ));
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
    let single_selector = interval == 0 && calls.len() == 1 && calls[0].func.is_selector();

    let mut columns = vec!["time".to_owned()];
    columns.extend(calls.iter().map(|c| c.column.clone()));
    let mut out = Vec::new();
    for (tags, members) in groups {
        // Values per window per call, with their times (for selectors).
        let mut cells: Vec<Vec<Vec<(i64, FieldValue)>>> =
            vec![vec![Vec::new(); calls.len()]; windows.count];
        for s in members {
            for (time, values) in &s.rows {
                let Some(w) = windows.index(*time) else {
                    continue;
                };
                for (c, call) in calls.iter().enumerate() {
                    if let Some(v) = call.field.and_then(|i| values.get(i).cloned().flatten()) {
                        cells[w][c].push((*time, v));
                    }
                }
            }
        }
        let mut rows: Vec<(i64, Vec<Reduced>)> = cells
            .iter()
            .enumerate()
            .map(|(w, cell)| {
                (
                    windows.start(w),
                    calls
                        .iter()
                        .zip(cell)
                        .map(|(call, values)| reduce(call.func, values))
                        .collect(),
                )
            })
            .collect();
        let fill = stmt.fill.clone().unwrap_or(Fill::Null);
        if interval == 0 || fill == Fill::None {
            rows.retain(|(_, values)| values.iter().any(Option::is_some));
        }
        let mut values: Vec<Vec<Value>> = rows
            .iter()
            .map(|(start, cells)| {
                let time = match (single_selector, &cells[0]) {
                    (true, Some((t, _))) => *t,
                    _ => *start,
                };
                let mut row = vec![time_value(time, ctx.epoch)];
                for (call, cell) in calls.iter().zip(cells) {
                    row.push(match cell {
                        Some((_, v)) => json_value(v),
                        // InfluxDB counts an empty window as 0 under fill(null).
                        None if call.func == Func::Count && fill == Fill::Null => Value::from(0),
                        None => Value::Null,
                    });
                }
                row
            })
            .collect();
        if interval > 0 {
            let integer: Vec<bool> = calls.iter().map(|c| c.yields_integer(&scan)).collect();
            apply_fill(&fill, &integer, &mut values);
        }
        if values.is_empty() {
            continue;
        }
        if descending(stmt) {
            values.reverse();
        }
        let values: Vec<Vec<Value>> = values
            .into_iter()
            .skip(stmt.offset as usize)
            .take(limit(stmt.limit))
            .collect();
        let tags = (!group_tags.is_empty()).then(|| tags.into_iter().collect());
        out.push(Series {
            name: scan.measurement.clone(),
            tags,
            columns: columns.clone(),
            values,
        });
    }
    Ok(out
        .into_iter()
        .skip(stmt.soffset as usize)
        .take(limit(stmt.slimit))
        .collect())
}

/// A call's result in one window, with the time of the point it came from (selectors).
type Reduced = Option<(i64, FieldValue)>;

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

fn time_offset(stmt: &SelectStatement) -> i64 {
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

fn calls(stmt: &SelectStatement, scan: &Scan) -> Result<Vec<Call>, String> {
    let mut calls: Vec<Call> = Vec::new();
    for field in &stmt.fields {
        let Expr::Call(c) = &field.expr else {
            return Err("mixing aggregate and non-aggregate queries is not supported".into());
        };
        let func =
            Func::parse(&c.name).ok_or_else(|| format!("{}() is not supported yet", c.name))?;
        let [Expr::VarRef(arg)] = c.args.as_slice() else {
            return Err(format!(
                "{}() of anything but one field is not supported yet",
                c.name
            ));
        };
        let base = field.alias.clone().unwrap_or_else(|| c.name.clone());
        let taken = calls
            .iter()
            .filter(|k| k.column == base || k.column.starts_with(&format!("{base}_")))
            .count();
        let column = if taken == 0 || field.alias.is_some() {
            base
        } else {
            format!("{base}_{taken}")
        };
        calls.push(Call {
            func,
            field: scan.fields.iter().position(|f| *f == arg.name),
            column,
        });
    }
    Ok(calls)
}

fn group_tags(stmt: &SelectStatement, scan: &Scan) -> Result<Vec<String>, String> {
    let mut tags = Vec::new();
    for d in &stmt.dimensions {
        match &d.expr {
            Expr::Call(c) if c.name == "time" => {}
            Expr::VarRef(v) => tags.push(v.name.clone()),
            Expr::Wildcard(_) => tags.extend(scan.tag_keys.iter().cloned()),
            other => return Err(format!("GROUP BY {other} is not supported yet")),
        }
    }
    tags.sort();
    tags.dedup();
    Ok(tags)
}

fn num(v: &FieldValue) -> Option<f64> {
    match v {
        FieldValue::Float(x) => Some(*x),
        FieldValue::Integer(x) => Some(*x as f64),
        FieldValue::Unsigned(x) => Some(*x as f64),
        _ => None,
    }
}

fn cmp(a: &FieldValue, b: &FieldValue) -> std::cmp::Ordering {
    match (a, b) {
        (FieldValue::Integer(x), FieldValue::Integer(y)) => x.cmp(y),
        (FieldValue::Unsigned(x), FieldValue::Unsigned(y)) => x.cmp(y),
        _ => num(a)
            .unwrap_or(f64::NAN)
            .total_cmp(&num(b).unwrap_or(f64::NAN)),
    }
}

/// One window's values of one call reduced to its result (with a time for selectors).
fn reduce(func: Func, values: &[(i64, FieldValue)]) -> Reduced {
    let first = values.first()?;
    let numeric: Vec<f64> = values.iter().filter_map(|(_, v)| num(v)).collect();
    let float = |x: f64| Some((first.0, FieldValue::Float(x)));
    match func {
        Func::Count => Some((first.0, FieldValue::Integer(values.len() as i64))),
        // Points of equal time: the larger value wins, as in InfluxDB's reducers.
        Func::First => values
            .iter()
            .min_by(|a, b| a.0.cmp(&b.0).then(cmp(&b.1, &a.1)))
            .cloned(),
        Func::Last => values
            .iter()
            .max_by(|a, b| a.0.cmp(&b.0).then(cmp(&a.1, &b.1)))
            .cloned(),
        // Ties go to the earliest point, as InfluxDB's selectors do.
        Func::Min => values
            .iter()
            .min_by(|a, b| cmp(&a.1, &b.1).then(a.0.cmp(&b.0)))
            .cloned(),
        Func::Max => values
            .iter()
            .min_by(|a, b| cmp(&b.1, &a.1).then(a.0.cmp(&b.0)))
            .cloned(),
        Func::Sum => match &first.1 {
            FieldValue::Integer(_) => {
                let s = values
                    .iter()
                    .filter_map(|(_, v)| {
                        if let FieldValue::Integer(x) = v {
                            Some(*x)
                        } else {
                            None
                        }
                    })
                    .fold(0i64, i64::wrapping_add);
                Some((first.0, FieldValue::Integer(s)))
            }
            FieldValue::Unsigned(_) => {
                let s = values
                    .iter()
                    .filter_map(|(_, v)| {
                        if let FieldValue::Unsigned(x) = v {
                            Some(*x)
                        } else {
                            None
                        }
                    })
                    .fold(0u64, u64::wrapping_add);
                Some((first.0, FieldValue::Unsigned(s)))
            }
            _ if numeric.is_empty() => None,
            _ => float(numeric.iter().sum()),
        },
        Func::Mean if numeric.is_empty() => None,
        Func::Mean => float(numeric.iter().sum::<f64>() / numeric.len() as f64),
        Func::Median if numeric.is_empty() => None,
        Func::Median => {
            let mut sorted = numeric.clone();
            sorted.sort_by(f64::total_cmp);
            let mid = sorted.len() / 2;
            float(if sorted.len() % 2 == 1 {
                sorted[mid]
            } else {
                (sorted[mid - 1] + sorted[mid]) / 2.0
            })
        }
        Func::Spread => {
            let lo = values.iter().map(|(_, v)| v).min_by(|a, b| cmp(a, b))?;
            let hi = values.iter().map(|(_, v)| v).max_by(|a, b| cmp(a, b))?;
            let spread = match (lo, hi) {
                (FieldValue::Integer(a), FieldValue::Integer(b)) => {
                    FieldValue::Integer(b.wrapping_sub(*a))
                }
                (FieldValue::Unsigned(a), FieldValue::Unsigned(b)) => {
                    FieldValue::Unsigned(b.wrapping_sub(*a))
                }
                _ => FieldValue::Float(num(hi)? - num(lo)?),
            };
            Some((first.0, spread))
        }
        Func::Stddev if numeric.len() < 2 => None,
        Func::Stddev => {
            let n = numeric.len() as f64;
            let mean = numeric.iter().sum::<f64>() / n;
            float((numeric.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt())
        }
    }
}

/// `integer[i]`: column i+1 holds integers, so a numeric fill value is truncated to one,
/// as InfluxDB casts it to the column's type.
fn apply_fill(fill: &Fill, integer: &[bool], rows: &mut [Vec<Value>]) {
    let width = rows.first().map_or(0, Vec::len);
    for col in 1..width {
        let fill = match fill {
            Fill::Number(x) if integer[col - 1] => &Fill::Integer(*x as i64),
            Fill::Integer(x) if !integer[col - 1] => &Fill::Number(*x as f64),
            other => other,
        };
        match fill {
            Fill::Previous => {
                let mut last = Value::Null;
                for row in rows.iter_mut() {
                    if row[col].is_null() {
                        row[col] = last.clone();
                    } else {
                        last = row[col].clone();
                    }
                }
            }
            Fill::Number(x) => {
                for row in rows.iter_mut().filter(|r| r[col].is_null()) {
                    row[col] = float_value(*x);
                }
            }
            Fill::Integer(x) => {
                for row in rows.iter_mut().filter(|r| r[col].is_null()) {
                    row[col] = Value::from(*x);
                }
            }
            Fill::Linear => {
                let known: Vec<(usize, f64)> = rows
                    .iter()
                    .enumerate()
                    .filter_map(|(i, r)| Some((i, r[col].as_f64()?)))
                    .collect();
                for pair in known.windows(2) {
                    let ((i0, v0), (i1, v1)) = (pair[0], pair[1]);
                    for (i, row) in rows.iter_mut().enumerate().take(i1).skip(i0 + 1) {
                        row[col] = float_value(v0 + (v1 - v0) * (i - i0) as f64 / (i1 - i0) as f64);
                    }
                }
            }
            Fill::Null | Fill::None => {}
        }
    }
}
