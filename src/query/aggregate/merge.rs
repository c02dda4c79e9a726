//! The order in which 1.x hands the points of several series of one group to a
//! transformation or integral(): per shard, a sorted merge of the group's series (in
//! series-key order, reversed when descending) through Go's `container/heap`, which
//! compares times alone. Of points at one time, whichever the heap pops first comes
//! first; that depends on the heap's shape, so it is reproduced step by step rather
//! than by a rule. A time lies in one shard, so shards follow one another.

use super::super::rows::SeriesRows;
use super::super::scan::Origin;
use crate::line_protocol::FieldValue;
use std::collections::BTreeMap;

/// A row of a series: its time and values.
pub(super) type Row<'a> = (i64, &'a [Option<FieldValue>]);

/// The rows of `members` that have a value of `field`, in the order 1.x's merge yields
/// them (ascending time, or descending); `shard_starts` are the starts of the shards
/// read, ascending.
pub(super) fn merge_order<'a>(
    members: &[&'a SeriesRows],
    field: usize,
    shard_starts: &[i64],
    descending: bool,
) -> Vec<Row<'a>> {
    let mut series: Vec<&SeriesRows> = members.to_vec();
    // Keys are built only to order two series or more (`sort_by_cached_key` leaves one
    // alone): most groups hold one.
    series.sort_by_cached_key(|s| series_key(&s.tags));
    if descending {
        series.reverse();
    }
    let shard_of = |t: i64| shard_starts.partition_point(|&s| s <= t);
    // Each series' rows with the field, split by shard, in the query's order.
    let mut by_shard: BTreeMap<usize, Vec<Vec<Row<'a>>>> = Default::default();
    for s in &series {
        let rows = field_rows(s, field, descending);
        split_by_shard(&rows, |r| r.0, &shard_of, &mut by_shard);
    }
    let mut out = Vec::new();
    let shards: Box<dyn Iterator<Item = Vec<Vec<Row<'a>>>>> = if descending {
        Box::new(by_shard.into_values().rev())
    } else {
        Box::new(by_shard.into_values())
    };
    for inputs in shards {
        out.extend(sorted_merge(&inputs, descending));
    }
    out
}

/// The rows of `members` that have a value of `field`, in the order 1.x hands them to a
/// transformation or integral(): each source's own merge ([`merge_order`] for a stored
/// one, a subquery's series merged by time), and with several sources its
/// `MergeIterator` over them, which yields one source's points of a window (the window
/// `window_of` names) before it turns to the next source, taking windows and sources in
/// its heap's order.
pub(super) fn source_order<'a>(
    members: &[&'a SeriesRows],
    field: usize,
    origins: &[Origin],
    descending: bool,
    window_of: &dyn Fn(i64) -> i64,
) -> Vec<Row<'a>> {
    let mut by_source: BTreeMap<usize, Vec<&'a SeriesRows>> = BTreeMap::new();
    for s in members {
        by_source.entry(s.source).or_default().push(*s);
    }
    let mut streams: Vec<Vec<Row<'a>>> = Vec::with_capacity(by_source.len());
    for (source, own) in by_source {
        match origins.get(source) {
            Some(Origin::Stored(starts)) => {
                streams.push(merge_order(&own, field, starts, descending));
            }
            _ => {
                let mut inputs: Vec<Vec<Row<'a>>> = own
                    .iter()
                    .map(|s| field_rows(s, field, descending))
                    .collect();
                if descending {
                    inputs.reverse();
                }
                streams.push(sorted_merge(&inputs, descending));
            }
        }
    }
    if streams.len() < 2 {
        return streams.pop().unwrap_or_default();
    }
    // Each source's rows cut into runs of one window, as (window, first, end) over it.
    let runs: Vec<Vec<(i64, usize, usize)>> = streams
        .iter()
        .map(|rows| {
            let mut out = Vec::new();
            let mut start = 0;
            while start < rows.len() {
                let w = window_of(rows[start].0);
                let len = rows[start..].partition_point(|r| window_of(r.0) == w);
                out.push((w, start, start + len));
                start += len;
            }
            out
        })
        .collect();
    // A run as the heap sees it: its window, and which source's rows it spans.
    type Run = (i64, (usize, usize, usize));
    let tagged: Vec<Vec<Run>> = runs
        .iter()
        .enumerate()
        .map(|(i, own)| own.iter().map(|&(w, a, b)| (w, (i, a, b))).collect())
        .collect();
    sorted_merge(&tagged, descending)
        .into_iter()
        .flat_map(|(_, (i, a, b))| streams[i][a..b].iter().copied())
        .collect()
}

/// 1.x's series key order: the tags' `key=value` pairs, escaped as in line protocol,
/// in key order (the measurement is the same for all).
fn series_key(tags: &[(String, String)]) -> String {
    let escape = |s: &str| {
        s.replace(',', "\\,")
            .replace('=', "\\=")
            .replace(' ', "\\ ")
    };
    let mut pairs: Vec<&(String, String)> = tags.iter().filter(|(_, v)| !v.is_empty()).collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!(",{}={}", escape(k), escape(v)))
        .collect()
}

/// A sorted merge of `inputs` (each in the query's order) by time alone.
fn sorted_merge<T: Copy>(inputs: &[Vec<(i64, T)>], descending: bool) -> Vec<(i64, T)> {
    let by_time = |a: &(i64, T), b: &(i64, T)| if descending { a.0 > b.0 } else { a.0 < b.0 };
    heap_merge(inputs.to_vec(), &by_time)
}

/// A merge of `inputs` (each ordered by `less`) as 1.x's `SortedMergeIterator` does it:
/// every non-empty input on a heap (`heap.Init`), then repeatedly `heap.Pop` the least,
/// emit its point and `heap.Push` it back with its next. Of items neither less than the
/// other, whichever the heap's shape puts first comes first: that is reproduced step by
/// step rather than by a rule.
fn heap_merge<T: Copy>(inputs: Vec<Vec<T>>, less: &dyn Fn(&T, &T) -> bool) -> Vec<T> {
    let mut heap: Vec<(usize, usize)> = (0..inputs.len())
        .filter(|&i| !inputs[i].is_empty())
        .map(|i| (i, 0))
        .collect();
    let item = |at: (usize, usize)| &inputs[at.0][at.1];
    let before = |heap: &[(usize, usize)], i: usize, j: usize| less(item(heap[i]), item(heap[j]));
    let down = |heap: &mut Vec<(usize, usize)>, mut i: usize, n: usize| loop {
        let j1 = 2 * i + 1;
        if j1 >= n {
            break;
        }
        let mut j = j1;
        if j1 + 1 < n && before(heap, j1 + 1, j1) {
            j = j1 + 1;
        }
        if !before(heap, j, i) {
            break;
        }
        heap.swap(i, j);
        i = j;
    };
    let n = heap.len();
    for i in (0..n / 2).rev() {
        down(&mut heap, i, n);
    }
    let mut out = Vec::with_capacity(inputs.iter().map(Vec::len).sum());
    while !heap.is_empty() {
        let n = heap.len() - 1;
        heap.swap(0, n);
        down(&mut heap, 0, n);
        let Some((input, at)) = heap.pop() else { break };
        out.push(inputs[input][at]);
        if at + 1 < inputs[input].len() {
            heap.push((input, at + 1));
            let mut j = heap.len() - 1;
            while j > 0 {
                let i = (j - 1) / 2;
                if !before(&heap, j, i) {
                    break;
                }
                heap.swap(i, j);
                j = i;
            }
        }
    }
    out
}

/// The order in which 1.x's sorted merges yield a group's rows: each stored source's
/// series merged shard by shard (in series-key order, reversed when descending), a
/// subquery's rows in time order, then the sources' streams merged in the order the
/// statement names them. `rows[m]` holds member m's rows in time order as (time, id);
/// `tie(a, b)` says whether row `a` comes before row `b` of the same time, as 1.x's heap
/// compares their auxiliary values. Every member's `source` indexes `origins`.
pub(crate) fn merged_rows(
    members: &[&SeriesRows],
    rows: Vec<Vec<(i64, usize)>>,
    origins: &[Origin],
    descending: bool,
    tie: &dyn Fn(usize, usize) -> bool,
) -> Vec<(i64, usize)> {
    let less = |a: &(i64, usize), b: &(i64, usize)| {
        if a.0 != b.0 {
            return if descending { a.0 > b.0 } else { a.0 < b.0 };
        }
        tie(a.1, b.1)
    };
    type Tagged<'t> = Vec<(&'t [(String, String)], Vec<(i64, usize)>)>;
    let mut by_source: BTreeMap<usize, Tagged<'_>> = BTreeMap::new();
    for (s, mut own) in members.iter().zip(rows) {
        if descending {
            own.reverse();
        }
        by_source.entry(s.source).or_default().push((&s.tags, own));
    }
    let mut streams = Vec::with_capacity(by_source.len());
    for (source, mut series) in by_source {
        let Some(Origin::Stored(shard_starts)) = origins.get(source) else {
            // A subquery's rows come as its own merge of its series yields them (by
            // time: the values it compares are its own statement's).
            let by_time = |a: &(i64, usize), b: &(i64, usize)| {
                if descending {
                    a.0 > b.0
                } else {
                    a.0 < b.0
                }
            };
            let mut inputs: Vec<Vec<(i64, usize)>> =
                series.into_iter().map(|(_, own)| own).collect();
            if descending {
                inputs.reverse();
            }
            streams.push(heap_merge(inputs, &by_time));
            continue;
        };
        series.sort_by_cached_key(|(tags, _)| series_key(tags));
        if descending {
            series.reverse();
        }
        let shard_of = |t: i64| shard_starts.partition_point(|&s| s <= t);
        let mut by_shard: BTreeMap<usize, Vec<Vec<(i64, usize)>>> = BTreeMap::new();
        for (_, own) in series {
            split_by_shard(&own, |r| r.0, &shard_of, &mut by_shard);
        }
        let shards: Box<dyn Iterator<Item = Vec<Vec<(i64, usize)>>>> = if descending {
            Box::new(by_shard.into_values().rev())
        } else {
            Box::new(by_shard.into_values())
        };
        let mut stream = Vec::new();
        for inputs in shards {
            stream.extend(heap_merge(inputs, &less));
        }
        streams.push(stream);
    }
    heap_merge(streams, &less)
}

/// The rows of series `s` that have a value of `field`, in the query's order.
fn field_rows<'a>(s: &'a SeriesRows, field: usize, descending: bool) -> Vec<Row<'a>> {
    let mut rows: Vec<Row<'a>> = s
        .rows()
        .filter(|(_, values)| values.get(field).is_some_and(Option::is_some))
        .map(|(t, values)| (*t, values))
        .collect();
    if descending {
        rows.reverse();
    }
    rows
}

/// Appends a series' rows (in the query's order) to `by_shard`, one run per shard its
/// times fall in.
fn split_by_shard<T: Clone>(
    rows: &[T],
    time: impl Fn(&T) -> i64,
    shard_of: &impl Fn(i64) -> usize,
    by_shard: &mut BTreeMap<usize, Vec<Vec<T>>>,
) {
    let mut start = 0;
    while start < rows.len() {
        let shard = shard_of(time(&rows[start]));
        let len = rows[start..].partition_point(|r| shard_of(time(r)) == shard);
        by_shard
            .entry(shard)
            .or_default()
            .push(rows[start..start + len].to_vec());
        start += len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(out: &[(i64, char)]) -> String {
        out.iter().map(|(_, c)| *c).collect()
    }

    #[test]
    fn equal_times_come_out_in_go_heap_order_not_input_order() {
        // Three series with points at the same times: Go's heap pops them
        // a, c, b at the first time (heap shape after Init and the first Pop),
        // not in series order.
        let inputs = vec![
            vec![(0, 'a'), (1, 'A')],
            vec![(0, 'b'), (1, 'B')],
            vec![(0, 'c'), (1, 'C')],
        ];
        let out = sorted_merge(&inputs, false);
        assert_eq!(
            out.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            [0, 0, 0, 1, 1, 1]
        );
        assert_eq!(labels(&out), "acbCBA");
    }

    #[test]
    fn distinct_times_merge_in_time_order() {
        let inputs = vec![vec![(0, 'a'), (4, 'b')], vec![(1, 'c'), (3, 'd')]];
        assert_eq!(labels(&sorted_merge(&inputs, false)), "acdb");
        let inputs = vec![vec![(4, 'b'), (0, 'a')], vec![(3, 'd'), (1, 'c')]];
        assert_eq!(labels(&sorted_merge(&inputs, true)), "bdca");
    }
}
