//! What a SELECT's driver hands its operators: the statement's context, and a scan of
//! one measurement (or of a subquery's result) as rows, or reduced as it was read. Below
//! both, so that the operators need not import the driver that calls them.

use super::format::{rfc3339_nanos, rfc3339_nanos_at};
use super::functions::Acc;
use super::limits::QueryLimits;
use super::parser::ast::Dimension;
use super::plan::AggregateCall;
use super::read_stats::ReadStats;
use super::rows::SeriesRows;
use super::zone::Zone;
use crate::catalog::Catalog;
use crate::line_protocol::FieldValue;
use crate::storage::Storage;

/// A scan's field names, looked up for every name a condition or a column reads: a fast
/// hash (the names are the statement's and the shards', not a client's key space).
pub(crate) type FieldKeys = std::collections::HashSet<String, foldhash::fast::RandomState>;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

pub(super) struct SelectContext<'a> {
    pub storage: &'a Storage,
    /// The databases and their policies (a SELECT needs nothing else of the catalog).
    pub catalog: &'a Catalog,
    pub database: Option<&'a str>,
    pub now: i64,
    /// Nanoseconds per unit of `epoch=`, or None for RFC 3339 times.
    pub epoch: Option<i64>,
    /// The statement's `tz()`: windows align to its local time and RFC 3339 times carry
    /// its offset.
    pub zone: Option<Zone>,
    pub limits: QueryLimits,
    /// Set when the statement runs as a subquery whose outer statement has SLIMIT or
    /// SOFFSET: the page its reads keep (see [`SeriesPage`]).
    pub series_page: Option<SeriesPage>,
    /// Set by EXPLAIN ANALYZE: what the reads take is recorded there.
    pub read_stats: Option<&'a ReadStats>,
}

/// SLIMIT and SOFFSET where 1.x applies them when a statement reads a subquery: to the
/// groups (by the outer statement's GROUP BY tags) of each source's series as they are
/// read, not to the answer. A subquery's own reads keep its SLIMIT and SOFFSET plus the
/// outer ones (1.x's `newIteratorOptionsSubstatement` adds them up), grouped by the outer
/// statement's tags.
#[derive(Clone, Debug)]
pub(crate) struct SeriesPage {
    pub dimensions: Vec<Dimension>,
    pub slimit: u64,
    pub soffset: u64,
}

impl SelectContext<'_> {
    /// The rows a group shows, in order: past OFFSET, at most LIMIT, each led by its time
    /// as the response shows it. Collected anew and shrunk, so that a LIMIT keeps nothing
    /// of the rows it passed over.
    pub(super) fn page(
        &self,
        rows: Vec<(i64, Vec<Value>)>,
        offset: u64,
        limit: u64,
    ) -> Vec<Vec<Value>> {
        let mut values: Vec<Vec<Value>> = rows
            .into_iter()
            .skip(offset as usize)
            .take(super::rows::limit(limit))
            .map(|(time, row)| {
                // A new row rather than an insert at the front, which grows the old one.
                let mut shown = Vec::with_capacity(row.len() + 1);
                shown.push(self.time_value(time));
                shown.extend(row);
                shown
            })
            .collect();
        values.shrink_to_fit();
        values
    }

    /// A time as the response shows it: a number of `epoch=` units, or RFC 3339 (in the
    /// statement's zone).
    pub(super) fn time_value(&self, ns: i64) -> Value {
        match (self.epoch, &self.zone) {
            (Some(unit), _) => Value::from(ns.div_euclid(unit)),
            (None, Some(zone)) => Value::from(rfc3339_nanos_at(ns, zone.offset_nanos(ns))),
            (None, None) => Value::from(rfc3339_nanos(ns)),
        }
    }
}

/// What a scan found: every matching series with its rows, in series-key order.
pub(super) struct Scan {
    pub measurement: String,
    /// The fields rows carry, in the order of each row's values.
    pub fields: Vec<String>,
    pub field_keys: FieldKeys,
    /// Shared with the shard that gave them, when one did.
    pub tag_keys: std::sync::Arc<BTreeSet<String>>,
    pub series: Vec<SeriesRows>,
    /// The time range the condition allows.
    pub start: i64,
    pub end: i64,
    /// The series already reduced as they were read (then `series` is empty).
    pub folded: Option<Folded>,
    /// The starts of the shards read, ascending, when the scan read one stored source:
    /// 1.x merges a group's series shard by shard (see `aggregate::merge`). None for
    /// several sources joined or a subquery's rows.
    pub shard_starts: Option<Vec<i64>>,
    /// When the scan stacks several sources of one measurement (a subquery beside
    /// another source), each source's origin, in the order the statement names them;
    /// each series' `source` indexes it. Empty otherwise.
    pub origins: Vec<Origin>,
}

/// Where rows came from, for the order in which 1.x merges them
/// (`aggregate::merge::merged_rows`).
#[derive(Clone, Debug)]
pub(crate) enum Origin {
    /// Read from storage: the starts of the shards read, ascending.
    Stored(Vec<i64>),
    /// A subquery's rows.
    Derived,
}

/// A GROUP BY tag's values (empty for a series without it), by key.
pub(crate) type Group = Vec<(String, String)>;

/// Each call's reduction per window, by the window's start (0 without GROUP BY time).
pub(crate) type WindowAccs = BTreeMap<i64, Vec<Acc>>;

/// A scan reduced as it is read, for plans [`super::aggregate::by_columns`] takes: per
/// group, the windows' reductions. Memory is bounded by the answer, not by the points read.
#[derive(Default)]
pub(super) struct Folded {
    pub(crate) groups: BTreeMap<Group, WindowAccs>,
    pub(crate) first_time: Option<i64>,
    /// Each scanned field's first value (in series order): the type of its results.
    pub(crate) first_values: Vec<Option<FieldValue>>,
    pub series: usize,
    pub values: usize,
}

impl Folded {
    /// Adds what was folded from the series after this one's.
    pub(super) fn merge(&mut self, later: Folded, calls: &[AggregateCall]) {
        self.first_time = self.first_time.into_iter().chain(later.first_time).min();
        self.series += later.series;
        self.values += later.values;
        if self.first_values.len() < later.first_values.len() {
            self.first_values.resize(later.first_values.len(), None);
        }
        for (kept, theirs) in self.first_values.iter_mut().zip(later.first_values) {
            if kept.is_none() {
                *kept = theirs;
            }
        }
        for (group, windows) in later.groups {
            let mine = self.groups.entry(group).or_default();
            for (start, accs) in windows {
                match mine.get_mut(&start) {
                    Some(own) => {
                        for ((own, acc), call) in own.iter_mut().zip(accs).zip(calls) {
                            own.merge(call.func, acc);
                        }
                    }
                    None => {
                        mine.insert(start, accs);
                    }
                }
            }
        }
    }
}
