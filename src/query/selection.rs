//! top(), bottom(), sample() and distinct(): functions that return several points per
//! window, each as its own row (top, bottom and sample at the point's own time, distinct
//! at the window's start), beside the tags the statement asks for.

use super::error::QueryError;
use super::limits::QueryLimits;
use super::plan::{Node, Selection, SelectionCall};
use super::rows::{cmp, json_value, SeriesRows};
use crate::line_protocol::FieldValue;
use serde_json::Value;
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// A point a selection may return, with the tags of its series.
struct Candidate<'a> {
    time: i64,
    value: FieldValue,
    tags: &'a [(String, String)],
    /// Tags of `tags` the point shows null ([`SeriesRows::hidden_tags`]).
    hidden: &'a [String],
    /// The point's values of the scan's fields (for fields named beside the selection).
    values: &'a [Option<FieldValue>],
}

impl Candidate<'_> {
    fn tag(&self, key: &str) -> Value {
        if self.hidden.iter().any(|h| h == key) {
            return Value::Null;
        }
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map_or(Value::Null, |(_, v)| Value::from(v.clone()))
    }
}

/// The columns a selection adds right after its own: top's and bottom's tag arguments.
pub(super) fn extra_columns(call: &SelectionCall) -> Vec<String> {
    match &call.selection {
        Selection::Top { tags, .. } | Selection::Bottom { tags, .. } => tags.clone(),
        _ => Vec::new(),
    }
}

/// One group's rows: `window_of` places a time in a window (None: outside all),
/// `window_start` gives a window's start. The candidates, a copy of every point of the
/// group, are held against the query's memory budget while they live.
pub(super) fn rows(
    limits: &QueryLimits,
    call: &SelectionCall,
    fields: &[Node],
    members: &[&SeriesRows],
    windows: usize,
    window_of: &dyn Fn(i64) -> Option<usize>,
    window_start: &dyn Fn(usize) -> i64,
) -> Result<Vec<(i64, Vec<Value>)>, QueryError> {
    let mut per_window: Vec<Vec<Candidate<'_>>> = (0..windows).map(|_| Vec::new()).collect();
    let mut _held = Vec::with_capacity(members.len());
    for s in members {
        limits.check_deadline()?;
        _held.push(limits.hold(s.times.len() * std::mem::size_of::<Candidate<'_>>())?);
        for (time, values) in s.rows() {
            let (Some(w), Some(value)) = (
                window_of(*time),
                call.field.and_then(|i| values.get(i).cloned().flatten()),
            ) else {
                continue;
            };
            per_window[w].push(Candidate {
                time: *time,
                value,
                tags: &s.tags,
                hidden: &s.hidden_tags,
                values,
            });
        }
    }
    let mut out = Vec::new();
    for (w, mut candidates) in per_window.into_iter().enumerate() {
        if candidates.is_empty() {
            continue;
        }
        // Points in time order (stable: series order among equal times).
        candidates.sort_by_key(|c| c.time);
        let chosen: Vec<Candidate<'_>> = match &call.selection {
            Selection::Distinct => {
                let mut seen: Vec<Candidate<'_>> = Vec::new();
                for c in candidates {
                    if !seen.iter().any(|s| s.value == c.value) {
                        seen.push(c);
                    }
                }
                seen.sort_by(|a, b| a.time.cmp(&b.time).then(cmp(&a.value, &b.value)));
                seen.into_iter()
                    .map(|c| Candidate {
                        time: window_start(w),
                        ..c
                    })
                    .collect()
            }
            Selection::Top { n, tags } => best(candidates, *n, tags, Ordering::Greater),
            Selection::Bottom { n, tags } => best(candidates, *n, tags, Ordering::Less),
            Selection::Sample { n } => sample(candidates, *n),
        };
        for c in chosen {
            let mut row: Vec<Value> = Vec::with_capacity(fields.len());
            for f in fields {
                match f {
                    Node::Selected => {
                        row.push(json_value(&c.value));
                        row.extend(extra_columns(call).iter().map(|t| c.tag(t)));
                    }
                    Node::Tag(t) => row.push(c.tag(t)),
                    Node::SelectedField(i) => row.push(
                        i.and_then(|i| c.values.get(i)?.as_ref())
                            .map_or(Value::Null, json_value),
                    ),
                    _ => row.push(Value::Null),
                }
            }
            out.push((c.time, row));
        }
    }
    Ok(out)
}

/// The `n` points whose values compare as `wanted` to the others (ties: the earlier
/// point), at most one per combination of `tags` values, in time order.
fn best<'a>(
    candidates: Vec<Candidate<'a>>,
    n: usize,
    tags: &[String],
    wanted: Ordering,
) -> Vec<Candidate<'a>> {
    let better = |a: &Candidate<'_>, b: &Candidate<'_>| {
        let by_value = cmp(&a.value, &b.value);
        let by_value = if wanted == Ordering::Greater {
            by_value.reverse()
        } else {
            by_value
        };
        by_value.then(a.time.cmp(&b.time))
    };
    let mut pool: Vec<Candidate<'a>> = if tags.is_empty() {
        candidates
    } else {
        let mut per_tags: BTreeMap<Vec<Option<String>>, Candidate<'a>> = BTreeMap::new();
        for c in candidates {
            let key: Vec<Option<String>> = tags
                .iter()
                .map(|t| c.tags.iter().find(|(k, _)| k == t).map(|(_, v)| v.clone()))
                .collect();
            match per_tags.get(&key) {
                Some(kept) if better(kept, &c) != Ordering::Greater => {}
                _ => {
                    per_tags.insert(key, c);
                }
            }
        }
        per_tags.into_values().collect()
    };
    pool.sort_by(better);
    pool.truncate(n);
    pool.sort_by_key(|c| c.time);
    pool
}

/// `n` of the points chosen uniformly at random (reservoir sampling), in time order.
fn sample(candidates: Vec<Candidate<'_>>, n: usize) -> Vec<Candidate<'_>> {
    let mut seed = [0u8; 8];
    // Without entropy the sample is still a sample, just a predictable one.
    let _ = getrandom::fill(&mut seed);
    let mut state = u64::from_le_bytes(seed) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut kept: Vec<Candidate<'_>> = Vec::with_capacity(n.min(candidates.len()));
    for (i, c) in candidates.into_iter().enumerate() {
        if kept.len() < n {
            kept.push(c);
        } else {
            let j = (next() % (i as u64 + 1)) as usize;
            if j < n {
                kept[j] = c;
            }
        }
    }
    kept.sort_by_key(|c| c.time);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A selection copies every point of its group: past the query's budget it stops.
    #[test]
    fn a_selection_over_more_points_than_the_budget_holds_is_refused() {
        let limits = QueryLimits::with_budget(1);
        let mut series = SeriesRows::new(Vec::new(), 1);
        for t in 0..100_000 {
            series.push(t, [Some(FieldValue::Integer(t))]);
        }
        let call = SelectionCall {
            selection: Selection::Top {
                n: 1,
                tags: Vec::new(),
            },
            field: Some(0),
        };
        let rows = |limits: &QueryLimits| {
            rows(
                limits,
                &call,
                &[Node::Selected],
                &[&series],
                1,
                &|_| Some(0),
                &|_| 0,
            )
        };
        assert!(rows(&limits).is_err_and(|e| e.to_string().contains("max_request_memory_mib")));
        let unlimited = QueryLimits::default();
        let top = rows(&unlimited).expect("no budget");
        assert_eq!(top.len(), 1);
        assert_eq!(top[0].0, 99_999);
    }
}
