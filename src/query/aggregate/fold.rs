//! Folding series into their groups' windows as a scan reads them, for plans
//! [`super::by_columns`] takes: memory bounded by the answer, not by the points read.

use super::windows::window_start;
use super::{group_of, group_tags, time_offset};
use crate::query::error::QueryError;
use crate::query::functions::Acc;
use crate::query::limits::QueryLimits;
use crate::query::parser::ast::SelectStatement;
use crate::query::plan::{AggregateCall, Func, Plan};
use crate::query::rows::ROWS_PER_CHARGE;
use crate::query::scan::Folded;
use crate::storage::column::{Column as StoredColumn, Values};
use std::collections::BTreeSet;

/// Folds series into a [`Folded`].
pub(crate) struct Folder<'a> {
    calls: &'a [AggregateCall],
    group_tags: Vec<String>,
    interval: i64,
    offset: i64,
}

impl<'a> Folder<'a> {
    pub(crate) fn new(
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
    pub(crate) fn fold(
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
                let mut end = at;
                while end < column.len() && self.window_of(column.times[end]) == start {
                    end += 1;
                }
                // Of a run in strictly increasing time, first() and last() need only its
                // ends: the others would be compared and (for last) copied to be replaced.
                // Of max() and min(), only the run's extreme is a candidate (the earliest
                // of equal ones, as the reduction breaks ties by time).
                let run = match call.func {
                    Func::First if column.resolved => at..at + 1,
                    Func::Last if column.resolved => end - 1..end,
                    Func::Max | Func::Min if column.resolved => {
                        match extreme_of_run(&column.values, at..end, call.func == Func::Max) {
                            Some(i) => i..i + 1,
                            None => at..end,
                        }
                    }
                    _ => at..end,
                };
                if !accs[c].push_run(&column.times, &column.values, run.clone()) {
                    for i in run {
                        accs[c].push(call.func, column.times[i], &column.values.get(i));
                    }
                }
                at = end;
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

/// The position of the greatest (`max`) or least value of a numeric column's run, the
/// first of equal ones, compared as the reduction compares them (floats by their total
/// order); None for a column of strings or booleans.
fn extreme_of_run(values: &Values, run: std::ops::Range<usize>, max: bool) -> Option<usize> {
    fn extreme<T>(v: &[T], run: std::ops::Range<usize>, better: impl Fn(&T, &T) -> bool) -> usize {
        let mut best = run.start;
        for i in run {
            if better(&v[i], &v[best]) {
                best = i;
            }
        }
        best
    }
    let want = if max {
        std::cmp::Ordering::Greater
    } else {
        std::cmp::Ordering::Less
    };
    Some(match values {
        Values::Float(v) => extreme(v, run, |a, b| a.total_cmp(b) == want),
        Values::Integer(v) => extreme(v, run, |a, b| a.cmp(b) == want),
        Values::Unsigned(v) => extreme(v, run, |a, b| a.cmp(b) == want),
        Values::String(_) | Values::Boolean(_) => return None,
    })
}
