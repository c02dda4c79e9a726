//! One series' column parts, as the shards hold them, turned into its rows: resolved,
//! cut to the range, judged by the condition row by row where it must be, and charged to
//! the query's memory budget as they are built.

use crate::line_protocol::FieldValue;
use crate::query::error::QueryError;
use crate::query::eval::{matches, Regexes, Row};
use crate::query::limits::{Held, QueryLimits};
use crate::query::parser::ast::Expr;
use crate::query::read_stats::ReadStats;
use crate::query::rows::{SeriesRows, ROWS_PER_CHARGE};
use crate::query::scan::FieldKeys;
use crate::storage::column::Column;
use crate::storage::series_index::Tags;
use crate::storage::shard::{Part, SeriesParts};
use crate::storage::tombstone;
use std::collections::HashMap;

/// A series' tags and its resolved columns, one per scanned field, charged to the query's
/// memory budget while they live.
type SeriesColumns = (Tags, Vec<Option<Column>>, Held);

/// What a loaded column holds per row: a time, a version and a value.
const COLUMN_ROW_BYTES: usize = 24;

/// Turns one series' column parts into its rows.
pub(super) struct RowBuilder<'a> {
    /// The condition, and whether rows must be judged one by one (else it is judged once,
    /// on the series' tags).
    pub(super) condition: Option<(&'a Expr, bool)>,
    pub(super) fields: &'a [String],
    pub(super) field_keys: &'a FieldKeys,
    pub(super) regexes: &'a Regexes,
    pub(super) now: i64,
    /// The time range read.
    pub(super) range: (i64, i64),
    /// The condition's own time range: rows read outside it are judged at its edge.
    pub(super) judged_at: (i64, i64),
    /// Rows wanted from the start (ascending) or the end (descending); see `row_cap`.
    pub(super) cap: Option<(usize, bool)>,

    pub(super) limits: &'a QueryLimits,
    /// EXPLAIN ANALYZE's record of the blocks decoded.
    pub(super) read_stats: Option<&'a ReadStats>,
}

impl RowBuilder<'_> {
    /// The condition when it judges rows one by one.
    pub(super) fn per_row(&self) -> Option<&Expr> {
        self.condition.filter(|(_, by_row)| *by_row).map(|(c, _)| c)
    }

    /// A series' tags and resolved columns within the range, or None when its tags fail
    /// a condition judged once per series.
    pub(super) fn columns(&self, parts: SeriesParts) -> Result<Option<SeriesColumns>, QueryError> {
        self.limits.check_deadline()?;
        let (from, to) = self.range;
        let tags = parts.tags;
        let per_row = self.per_row();
        if let Some((cond, false)) = self.condition {
            if !self.judge(cond, &tags, self.judged_at.0, &HashMap::new()) {
                return Ok(None);
            }
        }
        let mut fields = parts.fields;
        // (A block's count says how many rows it holds only when no delete took some.)
        if let (Some((wanted, descending)), None, true) =
            (self.cap, per_row, parts.deleted.is_empty())
        {
            skip_parts_beyond(&mut fields, wanted, descending, self.range);
        }
        if let Some(stats) = self.read_stats {
            stats.decoding(&fields);
        }
        let mut columns: Vec<Option<Column>> = Vec::with_capacity(fields.len());
        let mut bytes = 0;
        for field in fields {
            // A series may have 100,000 fields: a long read of one series stops too.
            if columns.len() % 1024 == 1023 {
                self.limits.check_deadline()?;
            }
            let loaded = field
                .into_iter()
                .map(|p| {
                    let column = p.load()?;
                    Ok(tombstone::without_deleted(&column, &parts.deleted).unwrap_or(column))
                })
                .collect::<Result<Vec<Column>, QueryError>>()?;
            let column = Column::resolve(loaded).map(|c| c.keep_time(from, to));
            bytes += column.as_ref().map_or(0, |c| c.len() * COLUMN_ROW_BYTES);
            columns.push(column);
        }
        let held = self.limits.hold(bytes)?;
        Ok(Some((tags, columns, held)))
    }

    pub(super) fn build(&self, parts: SeriesParts) -> Result<Option<SeriesRows>, QueryError> {
        let Some((tags, columns, _held)) = self.columns(parts)? else {
            return Ok(None);
        };
        let row_bytes =
            std::mem::size_of::<i64>() + columns.len() * std::mem::size_of::<Option<FieldValue>>();
        let mut charged = 0;
        let per_row = self.per_row();
        let times = union_of_times(&columns);
        let order: Box<dyn Iterator<Item = usize>> = match self.cap {
            Some((_, true)) => Box::new((0..times.len()).rev()),
            _ => Box::new(0..times.len()),
        };
        let wanted = self.cap.map_or(usize::MAX, |(n, _)| n);
        let mut cursor = vec![0usize; columns.len()];
        let mut rows = SeriesRows::new(tags, columns.len());
        let mut values: Vec<Option<FieldValue>> = Vec::with_capacity(columns.len());
        for at in order {
            if rows.times.len() == wanted {
                break;
            }
            let time = times[at];
            values.clear();
            values.extend(columns.iter().zip(cursor.iter_mut()).map(|(c, i)| {
                let c = c.as_ref()?;
                // A column with a value at every row (the usual case) is at the row's
                // own position; others move one step at a time, or are searched.
                if c.len() == times.len() {
                    return Some(c.values.get(at));
                }
                if c.times.get(*i) != Some(&time) {
                    *i = if c.times.get(*i + 1) == Some(&time) {
                        *i + 1
                    } else {
                        c.times.partition_point(|&t| t < time)
                    };
                }
                (c.times.get(*i) == Some(&time)).then(|| c.values.get(*i))
            }));
            if let Some(cond) = per_row {
                let at: HashMap<&str, FieldValue> = self
                    .fields
                    .iter()
                    .zip(&values)
                    .filter_map(|(f, v)| Some((f.as_str(), v.clone()?)))
                    .collect();
                let time = time.max(self.judged_at.0).min(self.judged_at.1);
                if !self.judge(cond, &rows.tags, time, &at) {
                    continue;
                }
            }
            rows.push(time, values.drain(..));
            if rows.times.len() - charged == ROWS_PER_CHARGE {
                self.limits.charge(ROWS_PER_CHARGE * row_bytes)?;
                self.limits.check_deadline()?;
                charged = rows.times.len();
            }
        }
        self.limits
            .charge((rows.times.len() - charged) * row_bytes)?;
        if matches!(self.cap, Some((_, true))) {
            rows.reverse();
        }
        Ok((!rows.is_empty()).then_some(rows))
    }

    fn judge(
        &self,
        cond: &Expr,
        tags: &[(String, String)],
        time: i64,
        fields: &HashMap<&str, FieldValue>,
    ) -> bool {
        let row = Row {
            time,
            tags,
            fields,
            field_keys: self.field_keys,
        };
        matches(cond, &row, self.now, self.regexes)
    }
}

/// Leaves out the parts a read of only the first (or, descending, the last) `wanted` rows
/// of a series cannot need: those wholly before (after) a part that alone holds `wanted`
/// distinct times within the range.
fn skip_parts_beyond(fields: &mut [Vec<Part>], wanted: usize, descending: bool, range: (i64, i64)) {
    let whole = |lo: i64, hi: i64| range.0 <= lo && hi <= range.1;
    let bounds = fields.iter().flatten().map(Part::bounds);
    let edge = if descending {
        bounds
            .filter(|&(lo, hi, n)| n >= wanted && whole(lo, hi))
            .map(|(lo, _, _)| lo)
            .max()
    } else {
        bounds
            .filter(|&(lo, hi, n)| n >= wanted && whole(lo, hi))
            .map(|(_, hi, _)| hi)
            .min()
    };
    let Some(edge) = edge else { return };
    for parts in fields.iter_mut() {
        parts.retain(|p| {
            let (lo, hi, _) = p.bounds();
            if descending {
                hi >= edge
            } else {
                lo <= edge
            }
        });
    }
}

/// Every time at which some column has a value, in order.
fn union_of_times(columns: &[Option<Column>]) -> Vec<i64> {
    let mut present = columns.iter().flatten();
    let Some(first) = present.next() else {
        return Vec::new();
    };
    // Fields written together share their times: usually one column's times are all.
    if present.clone().all(|c| c.times == first.times) {
        return first.times.clone();
    }
    let mut all: Vec<i64> = columns
        .iter()
        .flatten()
        .flat_map(|c| c.times.iter().copied())
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}
