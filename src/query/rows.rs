//! Rows and values as the operators and the driver of a SELECT pass them: below both, so
//! that operators need not import the driver that calls them.

use super::parser::ast::{SelectStatement, SortField};
use crate::line_protocol::FieldValue;
use crate::storage::series_index::Tags;
use serde_json::Value;

/// One series' rows: a time and one value per scanned field each, in time order.
pub(super) struct SeriesRows {
    /// Shared with the series index when read from a shard: a query copies no tag.
    pub tags: Tags,
    /// Which of the scan's sources the rows came from (see `Scan::origins`); 0 when it
    /// read one.
    pub source: usize,
    /// Tags a subquery's series carries only to be grouped by (top() and bottom() tag
    /// arguments its statement neither groups by nor selects): a point selected from it
    /// shows them null, as 1.x does.
    pub hidden_tags: Vec<String>,
    pub times: Vec<i64>,
    /// The rows' values, `width` per row, one row after another (one allocation, not one
    /// per row).
    values: Vec<Option<FieldValue>>,
    width: usize,
}

impl SeriesRows {
    pub(super) fn new(tags: impl Into<Tags>, width: usize) -> SeriesRows {
        SeriesRows {
            tags: tags.into(),
            source: 0,
            hidden_tags: Vec::new(),
            times: Vec::new(),
            values: Vec::new(),
            width,
        }
    }

    /// Appends a row of `width` values.
    pub(super) fn push(&mut self, time: i64, values: impl IntoIterator<Item = Option<FieldValue>>) {
        self.times.push(time);
        self.values.extend(values);
        debug_assert_eq!(self.values.len(), self.times.len() * self.width);
    }

    /// Each row's time and values.
    pub(super) fn rows(&self) -> impl Iterator<Item = (&i64, &[Option<FieldValue>])> + Clone {
        let width = self.width;
        self.times
            .iter()
            .enumerate()
            .map(move |(r, t)| (t, &self.values[r * width..(r + 1) * width]))
    }

    /// The value of field `field` in row `row`.
    pub(super) fn value(&self, row: usize, field: usize) -> Option<&FieldValue> {
        self.values.get(row * self.width + field)?.as_ref()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// How many field values the rows hold.
    pub(super) fn values(&self) -> usize {
        self.values.iter().filter(|v| v.is_some()).count()
    }

    pub(super) fn reverse(&mut self) {
        self.times.reverse();
        if self.width > 0 {
            let rows: Vec<&[Option<FieldValue>]> = self.values.chunks(self.width).rev().collect();
            self.values = rows.concat();
        }
    }
}

pub(super) fn json_value(v: &FieldValue) -> Value {
    match v {
        // Written as Go writes floats by the response's serializer.
        FieldValue::Float(x) => Value::from(*x),
        FieldValue::Integer(x) => Value::from(*x),
        FieldValue::Unsigned(x) => Value::from(*x),
        FieldValue::String(x) => Value::from(x.clone()),
        FieldValue::Boolean(x) => Value::from(*x),
    }
}

/// A value as a number, if it is one.
pub(super) fn num(v: &FieldValue) -> Option<f64> {
    match v {
        FieldValue::Float(x) => Some(*x),
        FieldValue::Integer(x) => Some(*x as f64),
        FieldValue::Unsigned(x) => Some(*x as f64),
        _ => None,
    }
}

/// The order of values of any type, as selectors and sorts of them see it.
pub(super) fn cmp(a: &FieldValue, b: &FieldValue) -> std::cmp::Ordering {
    match (a, b) {
        (FieldValue::Integer(x), FieldValue::Integer(y)) => x.cmp(y),
        (FieldValue::Unsigned(x), FieldValue::Unsigned(y)) => x.cmp(y),
        (FieldValue::String(x), FieldValue::String(y)) => x.cmp(y),
        (FieldValue::Boolean(x), FieldValue::Boolean(y)) => x.cmp(y),
        _ => num(a)
            .unwrap_or(f64::NAN)
            .total_cmp(&num(b).unwrap_or(f64::NAN)),
    }
}

/// Rows charged to the memory budget (and the deadline checked) at a time, so that one
/// huge series is stopped while it is read, not after.
pub(crate) const ROWS_PER_CHARGE: usize = 1 << 16;

/// What a row of a query's answer holds: its time, the vector of its values and each
/// value (a string's text beyond it not counted).
pub(crate) fn answer_row_bytes(columns: usize) -> usize {
    std::mem::size_of::<(i64, Vec<Value>)>() + columns * std::mem::size_of::<Value>()
}

pub(super) fn descending(stmt: &SelectStatement) -> bool {
    stmt.order_by
        .iter()
        .any(|SortField { ascending, .. }| !ascending)
}

pub(super) fn limit(n: u64) -> usize {
    if n == 0 {
        usize::MAX
    } else {
        n as usize
    }
}
