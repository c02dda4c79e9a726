//! The order in which 1.x hands the points of several series of one group to a
//! transformation or integral(): per shard, a sorted merge of the group's series (in
//! series-key order, reversed when descending) through Go's `container/heap`, which
//! compares times alone. Of points at one time, whichever the heap pops first comes
//! first; that depends on the heap's shape, so it is reproduced step by step rather
//! than by a rule. A time lies in one shard, so shards follow one another.

use super::super::rows::SeriesRows;
use crate::line_protocol::FieldValue;

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
    let mut series: Vec<(String, &SeriesRows)> =
        members.iter().map(|s| (series_key(&s.tags), *s)).collect();
    series.sort_by(|a, b| a.0.cmp(&b.0));
    if descending {
        series.reverse();
    }
    let shard_of = |t: i64| shard_starts.partition_point(|&s| s <= t);
    // Each series' rows with the field, split by shard, in the query's order.
    let mut by_shard: std::collections::BTreeMap<usize, Vec<Vec<Row<'a>>>> = Default::default();
    for (_, s) in &series {
        let mut rows: Vec<Row<'a>> = s
            .rows()
            .filter(|(_, values)| values.get(field).is_some_and(Option::is_some))
            .map(|(t, values)| (*t, values))
            .collect();
        if descending {
            rows.reverse();
        }
        let mut start = 0;
        while start < rows.len() {
            let shard = shard_of(rows[start].0);
            let len = rows[start..].partition_point(|r| shard_of(r.0) == shard);
            by_shard
                .entry(shard)
                .or_default()
                .push(rows[start..start + len].to_vec());
            start += len;
        }
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

/// A sorted merge of `inputs` (each in the query's order) as 1.x's
/// `SortedMergeIterator` does it: every non-empty input on a heap (`heap.Init`), then
/// repeatedly `heap.Pop` the least, emit its point and `heap.Push` it back with its next.
fn sorted_merge<T: Copy>(inputs: &[Vec<(i64, T)>], descending: bool) -> Vec<(i64, T)> {
    let mut heap: Vec<(usize, usize)> = (0..inputs.len())
        .filter(|&i| !inputs[i].is_empty())
        .map(|i| (i, 0))
        .collect();
    let time = |item: (usize, usize)| inputs[item.0][item.1].0;
    let less = |heap: &[(usize, usize)], i: usize, j: usize| {
        let (x, y) = (time(heap[i]), time(heap[j]));
        if descending {
            x > y
        } else {
            x < y
        }
    };
    let down = |heap: &mut Vec<(usize, usize)>, mut i: usize, n: usize| loop {
        let j1 = 2 * i + 1;
        if j1 >= n {
            break;
        }
        let mut j = j1;
        if j1 + 1 < n && less(heap, j1 + 1, j1) {
            j = j1 + 1;
        }
        if !less(heap, j, i) {
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
                if !less(&heap, j, i) {
                    break;
                }
                heap.swap(i, j);
                j = i;
            }
        }
    }
    out
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
