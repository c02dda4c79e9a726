//! The aggregate functions' reductions of one window's values: a call's result from the
//! values it was fed, with the time of the point it came from (for selectors). Below the
//! operators and the scan, which folds values into these reductions as it reads them.

use super::plan::Func;
use super::rows::{cmp, num};
use crate::line_protocol::FieldValue;
use crate::query::go_sort::sort_unstable_as_go;

/// A call's result in one window, with the time of the point it came from (selectors).
pub(crate) type Reduced = Option<(i64, FieldValue)>;

/// One call's reduction of one window, fed a value at a time. The common calls keep only
/// what their result needs, with the same result [`reduce`] gives for the same values in
/// the same order; the others keep the values for [`reduce`].
pub(crate) enum Acc {
    /// count: (time of the first value, how many)
    Count(i64, i64),
    Sum {
        first: Option<(i64, FieldValue)>,
        integers: i64,
        unsigned: u64,
        numeric: f64,
        numbers: usize,
    },
    Mean {
        first: Option<i64>,
        sum: f64,
        numbers: usize,
    },
    /// first, last, min, max: the point chosen so far.
    Pick(Option<(i64, FieldValue)>),
    /// spread: the time of the first value, the least and the greatest value.
    Spread(Option<(i64, FieldValue, FieldValue)>),
    /// stddev: Welford's running count, mean and sum of squared differences from it.
    Stddev {
        first: Option<i64>,
        n: f64,
        mean: f64,
        m2: f64,
    },
    Values(Vec<(i64, FieldValue)>),
}

impl Acc {
    pub(crate) fn new(func: Func) -> Acc {
        match func {
            Func::Count => Acc::Count(0, 0),
            Func::Sum => Acc::Sum {
                first: None,
                integers: 0,
                unsigned: 0,
                // As `Iterator::sum` of floats begins.
                numeric: -0.0,
                numbers: 0,
            },
            Func::Mean => Acc::Mean {
                first: None,
                sum: -0.0,
                numbers: 0,
            },
            Func::First | Func::Last | Func::Min | Func::Max => Acc::Pick(None),
            Func::Spread => Acc::Spread(None),
            Func::Stddev => Acc::Stddev {
                first: None,
                n: 0.0,
                mean: 0.0,
                m2: 0.0,
            },
            _ => Acc::Values(Vec::new()),
        }
    }

    /// Takes the values `run` of a column at once where the reduction allows it (a count,
    /// and a mean of floats, added in the same order as value by value, so to the same
    /// sum): false when each value must be pushed.
    pub(crate) fn push_run(
        &mut self,
        times: &[i64],
        values: &crate::storage::column::Values,
        run: std::ops::Range<usize>,
    ) -> bool {
        use crate::storage::column::Values;
        let Some(&time) = times.get(run.start) else {
            return true;
        };
        match (self, values) {
            (Acc::Count(first, n), _) => {
                if *n == 0 {
                    *first = time;
                }
                *n += run.len() as i64;
            }
            (
                Acc::Mean {
                    first,
                    sum,
                    numbers,
                },
                Values::Float(v),
            ) => {
                first.get_or_insert(time);
                for x in &v[run.clone()] {
                    *sum += x;
                }
                *numbers += run.len();
            }
            _ => return false,
        }
        true
    }

    pub(crate) fn push(&mut self, func: Func, time: i64, value: &FieldValue) {
        match self {
            Acc::Count(first, n) => {
                if *n == 0 {
                    *first = time;
                }
                *n += 1;
            }
            Acc::Sum {
                first,
                integers,
                unsigned,
                numeric,
                numbers,
            } => {
                if first.is_none() {
                    *first = Some((time, value.clone()));
                }
                match value {
                    FieldValue::Integer(x) => *integers = integers.wrapping_add(*x),
                    FieldValue::Unsigned(x) => *unsigned = unsigned.wrapping_add(*x),
                    _ => {}
                }
                if let Some(x) = num(value) {
                    *numeric += x;
                    *numbers += 1;
                }
            }
            Acc::Mean {
                first,
                sum,
                numbers,
            } => {
                first.get_or_insert(time);
                if let Some(x) = num(value) {
                    *sum += x;
                    *numbers += 1;
                }
            }
            Acc::Pick(chosen) => {
                // As `reduce` chooses with min_by (the first least) or max_by (the last
                // greatest).
                let replace = match chosen {
                    None => true,
                    Some((t, v)) => match func {
                        Func::First => time.cmp(t).then(first_at_one_time(value, v)).is_lt(),
                        Func::Last => time.cmp(t).then(cmp(value, v)).is_ge(),
                        Func::Min => cmp(value, v).then(time.cmp(t)).is_lt(),
                        _ => cmp(v, value).then(time.cmp(t)).is_lt(),
                    },
                };
                if replace {
                    *chosen = Some((time, value.clone()));
                }
            }
            Acc::Spread(None) => *self = Acc::Spread(Some((time, value.clone(), value.clone()))),
            Acc::Spread(Some((_, lo, hi))) => {
                if cmp(value, lo).is_lt() {
                    *lo = value.clone();
                }
                if cmp(value, hi).is_gt() {
                    *hi = value.clone();
                }
            }
            Acc::Stddev { first, n, mean, m2 } => {
                first.get_or_insert(time);
                if let Some(x) = num(value) {
                    *n += 1.0;
                    let delta = x - *mean;
                    *mean += delta / *n;
                    *m2 += delta * (x - *mean);
                }
            }
            Acc::Values(values) => values.push((time, value.clone())),
        }
    }

    /// Adds the reduction of values that came after this one's, as if they had been
    /// pushed here one by one (but for the rounding of float sums).
    pub(crate) fn merge(&mut self, func: Func, later: Acc) {
        match (self, later) {
            (Acc::Count(first, n), Acc::Count(later_first, m)) => {
                if *n == 0 {
                    *first = later_first;
                }
                *n += m;
            }
            (
                Acc::Sum {
                    first,
                    integers,
                    unsigned,
                    numeric,
                    numbers,
                },
                Acc::Sum {
                    first: later_first,
                    integers: i,
                    unsigned: u,
                    numeric: x,
                    numbers: n,
                },
            ) => {
                if first.is_none() {
                    *first = later_first;
                }
                *integers = integers.wrapping_add(i);
                *unsigned = unsigned.wrapping_add(u);
                if n > 0 {
                    *numeric += x;
                    *numbers += n;
                }
            }
            (
                Acc::Mean {
                    first,
                    sum,
                    numbers,
                },
                Acc::Mean {
                    first: later_first,
                    sum: x,
                    numbers: n,
                },
            ) => {
                if first.is_none() {
                    *first = later_first;
                }
                if n > 0 {
                    *sum += x;
                    *numbers += n;
                }
            }
            (own @ Acc::Pick(_), Acc::Pick(Some((time, value)))) => own.push(func, time, &value),
            (own @ Acc::Spread(_), Acc::Spread(Some((time, lo, hi)))) => {
                own.push(func, time, &lo);
                own.push(func, time, &hi);
            }
            (
                Acc::Stddev { first, n, mean, m2 },
                Acc::Stddev {
                    first: later_first,
                    n: nb,
                    mean: mb,
                    m2: m2b,
                },
            ) => {
                if first.is_none() {
                    *first = later_first;
                }
                if nb > 0.0 {
                    // Chan et al.'s combination of two running variances.
                    let total = *n + nb;
                    let delta = mb - *mean;
                    *m2 += m2b + delta * delta * *n * nb / total;
                    *mean += delta * nb / total;
                    *n = total;
                }
            }
            (Acc::Values(values), Acc::Values(more)) => values.extend(more),
            _ => {}
        }
    }

    pub(crate) fn finish(self, func: Func) -> Reduced {
        match self {
            Acc::Count(_, 0) => None,
            Acc::Count(first, n) => Some((first, FieldValue::Integer(n))),
            Acc::Sum {
                first,
                integers,
                unsigned,
                numeric,
                numbers,
            } => {
                let (time, value) = first?;
                match value {
                    FieldValue::Integer(_) => Some((time, FieldValue::Integer(integers))),
                    FieldValue::Unsigned(_) => Some((time, FieldValue::Unsigned(unsigned))),
                    _ if numbers == 0 => None,
                    _ => Some((time, FieldValue::Float(numeric))),
                }
            }
            Acc::Mean { numbers: 0, .. } => None,
            Acc::Mean {
                first,
                sum,
                numbers,
            } => Some((first?, FieldValue::Float(sum / numbers as f64))),
            Acc::Pick(chosen) => chosen,
            Acc::Spread(range) => {
                let (time, lo, hi) = range?;
                Some((time, spread(&lo, &hi)?))
            }
            Acc::Stddev { n, .. } if n < 2.0 => None,
            Acc::Stddev { first, n, m2, .. } => {
                Some((first?, FieldValue::Float((m2 / (n - 1.0)).sqrt())))
            }
            Acc::Values(mut values) => {
                // 1.x feeds mode() and percentile() the group's points merged by time (at one
                // time, in series order, as the members come), and which of equal values its
                // unstable sort leaves first depends on that order.
                if matches!(func, Func::Mode | Func::Percentile(_))
                    && !values.is_sorted_by_key(|(t, _)| *t)
                {
                    values.sort_by_key(|(t, _)| *t);
                }
                reduce(func, &values)
            }
        }
    }
}

/// Of two points at one time, first() keeps the Less one: the larger value, but `false`
/// for booleans (1.x's boolean first() reducer prefers false, its last() true).
fn first_at_one_time(a: &FieldValue, b: &FieldValue) -> std::cmp::Ordering {
    match (a, b) {
        (FieldValue::Boolean(_), FieldValue::Boolean(_)) => cmp(a, b),
        _ => cmp(b, a),
    }
}

/// The greatest value less the least, in their type.
fn spread(lo: &FieldValue, hi: &FieldValue) -> Option<FieldValue> {
    Some(match (lo, hi) {
        (FieldValue::Integer(a), FieldValue::Integer(b)) => FieldValue::Integer(b.wrapping_sub(*a)),
        (FieldValue::Unsigned(a), FieldValue::Unsigned(b)) => {
            FieldValue::Unsigned(b.wrapping_sub(*a))
        }
        _ => FieldValue::Float(num(hi)? - num(lo)?),
    })
}

/// One window's values of one call reduced to its result (with a time for selectors).
fn reduce(func: Func, values: &[(i64, FieldValue)]) -> Reduced {
    let first = values.first()?;
    let numeric: Vec<f64> = values.iter().filter_map(|(_, v)| num(v)).collect();
    let float = |x: f64| Some((first.0, FieldValue::Float(x)));
    match func {
        Func::Count => Some((first.0, FieldValue::Integer(values.len() as i64))),
        Func::CountDistinct => {
            let mut distinct: Vec<&FieldValue> = values.iter().map(|(_, v)| v).collect();
            distinct.sort_by(|a, b| cmp(a, b));
            distinct.dedup();
            Some((first.0, FieldValue::Integer(distinct.len() as i64)))
        }
        Func::Mode => Some((first.0, mode(values).clone())),
        Func::Percentile(p) => {
            let mut sorted: Vec<&(i64, FieldValue)> =
                values.iter().filter(|(_, v)| num(v).is_some()).collect();
            // Of equal values, the one 1.x's unstable sort puts there gives the time.
            sort_unstable_as_go(&mut sorted, |a, b| cmp(&a.1, &b.1).is_lt());
            let rank = (sorted.len() as f64 * p / 100.0 + 0.5).floor() as i64 - 1;
            usize::try_from(rank)
                .ok()
                .and_then(|i| sorted.get(i))
                .map(|&p| p.clone())
        }
        // Computed across windows by `integral_by_window`.
        Func::Integral(_) => None,
        // Points of equal time: the larger value wins, as in InfluxDB's reducers (but
        // see `first_at_one_time`).
        Func::First => values
            .iter()
            .min_by(|a, b| a.0.cmp(&b.0).then(first_at_one_time(&a.1, &b.1)))
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
            Some((first.0, spread(lo, hi)?))
        }
        Func::Stddev if numeric.len() < 2 => None,
        Func::Stddev => {
            let n = numeric.len() as f64;
            let mean = numeric.iter().sum::<f64>() / n;
            float((numeric.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt())
        }
    }
}

/// The most frequent value. Of equally frequent ones, 1.x's scan over the values in
/// order keeps a later value when its first point is no later than the point at which the
/// kept one reached that count; this follows that scan.
fn mode(values: &[(i64, FieldValue)]) -> &FieldValue {
    // Booleans are counted, not scanned: true unless false is strictly more frequent.
    if let [(_, FieldValue::Boolean(_)), ..] = values {
        let trues = values
            .iter()
            .filter(|(_, v)| *v == FieldValue::Boolean(true))
            .count();
        let want = FieldValue::Boolean(2 * trues >= values.len());
        return values
            .iter()
            .map(|(_, v)| v)
            .find(|v| **v == want)
            .unwrap_or(&values[0].1);
    }
    let mut sorted: Vec<&(i64, FieldValue)> = values.iter().collect();
    sort_unstable_as_go(&mut sorted, |a, b| cmp(&a.1, &b.1).is_lt());
    let (mut most, mut most_count, mut most_time) = (&sorted[0].1, 0usize, sorted[0].0);
    let (mut current, mut count, mut current_time) = (&sorted[0].1, 0usize, sorted[0].0);
    for (time, value) in sorted {
        if value != current {
            (current, count, current_time) = (value, 1, *time);
            continue;
        }
        count += 1;
        if most_count > count || (most_count == count && current_time > most_time) {
            continue;
        }
        (most, most_count, most_time) = (value, count, *time);
    }
    most
}
