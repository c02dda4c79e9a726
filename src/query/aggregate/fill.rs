//! fill(): what an empty window of an aggregate holds.

use crate::line_protocol::FieldValue;
use crate::query::calc::Cell;
use crate::query::parser::ast::Fill;
use crate::query::rows::num;

/// Fills the null cells of one aggregate's column; a numeric fill value is cast to the
/// column's type, and linear fill of integers truncates, as InfluxDB does. `step` is
/// where a cell's window stands on the line linear fill draws: as in 1.x, its start
/// divided by the interval (windows across a change of UTC offset are not evenly spaced).
pub(super) fn apply_fill(
    fill: &Fill,
    integer: bool,
    cells: &mut [Cell],
    step: &dyn Fn(usize) -> i64,
) {
    let fill = match fill {
        Fill::Number(x) if integer => &Fill::Integer(*x as i64),
        Fill::Integer(x) if !integer => &Fill::Number(*x as f64),
        other => other,
    };
    match fill {
        Fill::Previous => {
            let mut last = Cell::Null;
            for cell in cells.iter_mut() {
                match cell {
                    Cell::Null => *cell = last.clone(),
                    Cell::Value(_) => last = cell.clone(),
                    Cell::Absent => {}
                }
            }
        }
        Fill::Number(x) => {
            for cell in cells.iter_mut().filter(|c| **c == Cell::Null) {
                *cell = Cell::Value(FieldValue::Float(*x));
            }
        }
        Fill::Integer(x) => {
            for cell in cells.iter_mut().filter(|c| **c == Cell::Null) {
                *cell = Cell::Value(FieldValue::Integer(*x));
            }
        }
        Fill::Linear => {
            let known: Vec<(usize, FieldValue)> = cells
                .iter()
                .enumerate()
                .filter_map(|(i, c)| Some((i, c.value()?.clone())))
                .collect();
            for pair in known.windows(2) {
                let ((i0, v0), (i1, v1)) = (&pair[0], &pair[1]);
                let (Some(y0), Some(y1)) = (num(v0), num(v1)) else {
                    continue;
                };
                // 1.x's arithmetic, in its order: slope, then distance times slope plus start.
                let (x0, x1) = (step(*i0), step(*i1));
                let slope = (y1 - y0) / x1.wrapping_sub(x0) as f64;
                for (i, cell) in cells.iter_mut().enumerate().take(*i1).skip(i0 + 1) {
                    let y = slope * step(i).wrapping_sub(x0) as f64 + y0;
                    *cell = Cell::Value(match v0 {
                        FieldValue::Integer(_) => FieldValue::Integer(y as i64),
                        FieldValue::Unsigned(_) => FieldValue::Unsigned(y as u64),
                        _ => FieldValue::Float(y),
                    });
                }
            }
        }
        Fill::Null | Fill::None => {}
    }
}
