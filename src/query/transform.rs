//! Transformations: functions of a sequence of points (raw points of a series group, or a
//! group's aggregate windows) rather than of one window. As in InfluxDB 1.x, null points
//! are skipped, and a point at the same time as the one before it does not advance the
//! sequence of derivative() and difference() (joined series can share a time; the first
//! one counts); elapsed(), moving_average() and cumulative_sum() count every point.

use super::calc::{as_f64, Cell};
use super::error::QueryError;
use crate::line_protocol::FieldValue;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Transform {
    /// Change per `unit` nanoseconds between consecutive points.
    Derivative {
        unit: i64,
        non_negative: bool,
        /// Whether the query runs in descending time order: 1.x negates the elapsed time
        /// then, so that a point later in the answer's order (not in time) counts as
        /// later (points of several sources come one source after another).
        descending: bool,
    },
    Difference {
        non_negative: bool,
    },
    MovingAverage {
        points: usize,
    },
    CumulativeSum,
    /// Time between consecutive points in `unit` nanoseconds.
    Elapsed {
        unit: i64,
    },
}

impl Transform {
    pub(super) fn name(self) -> &'static str {
        match self {
            Transform::Derivative {
                non_negative: false,
                ..
            } => "derivative",
            Transform::Derivative { .. } => "non_negative_derivative",
            Transform::Difference {
                non_negative: false,
            } => "difference",
            Transform::Difference { .. } => "non_negative_difference",
            Transform::MovingAverage { .. } => "moving_average",
            Transform::CumulativeSum => "cumulative_sum",
            Transform::Elapsed { .. } => "elapsed",
        }
    }

    /// Whether 1.x computes the transformation over one extra window before the query's
    /// range (after it, in descending order), so that its first window already has a
    /// predecessor.
    pub(super) fn reads_window_before(self) -> bool {
        !matches!(self, Transform::CumulativeSum)
    }

    /// The transformation of `input` (one cell per row, rows at `times`, in the query's
    /// order): an output cell per row, Absent where it emits no point.
    pub(super) fn apply(self, times: &[i64], input: &[Cell]) -> Result<Vec<Cell>, QueryError> {
        let mut out = vec![Cell::Absent; input.len()];
        let points = input
            .iter()
            .enumerate()
            .filter_map(|(i, c)| Some((i, times[i], c.value()?)));
        match self {
            Transform::Derivative { .. }
            | Transform::Difference { .. }
            | Transform::Elapsed { .. } => {
                let mut prev: Option<(i64, &FieldValue)> = None;
                for (i, time, v) in points {
                    if matches!(self, Transform::Elapsed { .. }) {
                        // elapsed() works on any type: only times matter.
                    } else if as_f64(v).is_none() {
                        return Err(self.type_error(v));
                    }
                    let Some((pt, pv)) = prev else {
                        prev = Some((time, v));
                        continue;
                    };
                    // elapsed() counts every point, 0 after one at the same time.
                    if pt == time && !matches!(self, Transform::Elapsed { .. }) {
                        continue;
                    }
                    prev = Some((time, v));
                    out[i] = match self {
                        Transform::Derivative {
                            unit,
                            non_negative,
                            descending,
                        } => {
                            let diff = as_f64(v).unwrap_or(0.0) - as_f64(pv).unwrap_or(0.0);
                            if non_negative && diff < 0.0 {
                                continue;
                            }
                            let elapsed = if descending { pt - time } else { time - pt };
                            let elapsed = elapsed as f64 / unit as f64;
                            Cell::Value(FieldValue::Float(diff / elapsed))
                        }
                        Transform::Difference { non_negative } => {
                            let diff = match (v, pv) {
                                (FieldValue::Integer(a), FieldValue::Integer(b)) => {
                                    FieldValue::Integer(a.wrapping_sub(*b))
                                }
                                (FieldValue::Unsigned(a), FieldValue::Unsigned(b)) => {
                                    FieldValue::Unsigned(a.wrapping_sub(*b))
                                }
                                _ => FieldValue::Float(
                                    as_f64(v).unwrap_or(0.0) - as_f64(pv).unwrap_or(0.0),
                                ),
                            };
                            if non_negative && as_f64(&diff).is_some_and(|d| d < 0.0) {
                                continue;
                            }
                            Cell::Value(diff)
                        }
                        Transform::Elapsed { unit } => {
                            Cell::Value(FieldValue::Integer((time - pt) / unit))
                        }
                        _ => unreachable!("handled by the outer match"),
                    };
                }
            }
            Transform::MovingAverage { points: n } => {
                // A running sum, as 1.x keeps it, so results agree to the last bits.
                let mut window: std::collections::VecDeque<f64> = Default::default();
                let mut sum = 0.0;
                for (i, _, v) in points {
                    let x = as_f64(v).ok_or_else(|| self.type_error(v))?;
                    if window.len() == n {
                        sum -= window.pop_front().unwrap_or(0.0);
                    }
                    window.push_back(x);
                    sum += x;
                    if window.len() == n {
                        out[i] = Cell::Value(FieldValue::Float(sum / n as f64));
                    }
                }
            }
            Transform::CumulativeSum => {
                let mut sum: Option<FieldValue> = None;
                for (i, _, v) in points {
                    let next = match (&sum, v) {
                        (None, v) if as_f64(v).is_some() => v.clone(),
                        (Some(FieldValue::Integer(a)), FieldValue::Integer(b)) => {
                            FieldValue::Integer(a.wrapping_add(*b))
                        }
                        (Some(FieldValue::Unsigned(a)), FieldValue::Unsigned(b)) => {
                            FieldValue::Unsigned(a.wrapping_add(*b))
                        }
                        (Some(a), b) => FieldValue::Float(
                            as_f64(a).unwrap_or(0.0)
                                + as_f64(b).ok_or_else(|| self.type_error(b))?,
                        ),
                        (None, v) => return Err(self.type_error(v)),
                    };
                    out[i] = Cell::Value(next.clone());
                    sum = Some(next);
                }
            }
        }
        Ok(out)
    }

    fn type_error(self, v: &FieldValue) -> QueryError {
        let kind = match v {
            FieldValue::String(_) => "string",
            FieldValue::Boolean(_) => "boolean",
            _ => "numeric",
        };
        QueryError::invalid(format!("unsupported {} iterator type: {kind}", self.name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(values: &[Option<f64>]) -> Vec<Cell> {
        values
            .iter()
            .map(|v| v.map_or(Cell::Null, |x| Cell::Value(FieldValue::Float(x))))
            .collect()
    }

    #[test]
    fn derivative_skips_nulls_and_repeated_times() {
        let times = [0, 10, 10, 20, 40];
        let input = cells(&[Some(1.0), Some(3.0), Some(100.0), None, Some(7.0)]);
        let out = Transform::Derivative {
            unit: 10,
            non_negative: false,
            descending: false,
        }
        .apply(&times, &input)
        .unwrap();
        assert_eq!(
            out,
            vec![
                Cell::Absent,
                Cell::Value(FieldValue::Float(2.0)),
                Cell::Absent,
                Cell::Absent,
                Cell::Value(FieldValue::Float(4.0 / 3.0)),
            ]
        );
    }

    #[test]
    fn elapsed_counts_a_repeated_time_as_zero() {
        let times = [0, 10, 10, 30];
        let input = cells(&[Some(1.0), Some(2.0), Some(3.0), Some(4.0)]);
        let out = Transform::Elapsed { unit: 1 }
            .apply(&times, &input)
            .unwrap();
        let at = |n| Cell::Value(FieldValue::Integer(n));
        assert_eq!(out, vec![Cell::Absent, at(10), at(0), at(20)]);
    }

    #[test]
    fn moving_average_waits_for_a_full_window() {
        let out = Transform::MovingAverage { points: 2 }
            .apply(&[0, 1, 2], &cells(&[Some(1.0), Some(3.0), Some(5.0)]))
            .unwrap();
        assert_eq!(out[0], Cell::Absent);
        assert_eq!(out[2], Cell::Value(FieldValue::Float(4.0)));
    }
}
