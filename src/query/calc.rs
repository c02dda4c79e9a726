//! Arithmetic and math functions in SELECT fields, with InfluxDB 1.x's typing: integers
//! stay integers under `+ - * %` and the bitwise operators, `/` always yields a float,
//! dividing by zero yields 0 (1.x's rule), and a float operand makes the result a float.

use super::parser::ast::BinaryOp;
use crate::line_protocol::FieldValue;

/// One value of a computed column at one row.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Cell {
    /// No point at this row: the row exists only if another column has one.
    Absent,
    /// A point whose value is null (an empty window under fill(null), a type mismatch).
    Null,
    Value(FieldValue),
}

impl Cell {
    pub(super) fn value(&self) -> Option<&FieldValue> {
        match self {
            Cell::Value(v) => Some(v),
            _ => None,
        }
    }

    pub(super) fn is_present(&self) -> bool {
        !matches!(self, Cell::Absent)
    }
}

impl From<Option<FieldValue>> for Cell {
    fn from(v: Option<FieldValue>) -> Self {
        v.map_or(Cell::Null, Cell::Value)
    }
}

pub(super) fn as_f64(v: &FieldValue) -> Option<f64> {
    match v {
        FieldValue::Float(x) => Some(*x),
        FieldValue::Integer(x) => Some(*x as f64),
        FieldValue::Unsigned(x) => Some(*x as f64),
        _ => None,
    }
}

/// `lhs op rhs` for two present values; None where 1.x yields null.
pub(super) fn binary(op: BinaryOp, lhs: &FieldValue, rhs: &FieldValue) -> Option<FieldValue> {
    use FieldValue::{Boolean, Float, Integer, Unsigned};
    match (lhs, rhs) {
        (Integer(a), Integer(b)) => integer_op(op, *a, *b),
        (Unsigned(a), Unsigned(b)) => unsigned_op(op, *a, *b),
        (Boolean(a), Boolean(b)) => match op {
            BinaryOp::BitAnd => Some(Boolean(a & b)),
            BinaryOp::BitOr => Some(Boolean(a | b)),
            BinaryOp::BitXor => Some(Boolean(a ^ b)),
            _ => None,
        },
        (a, b) => {
            let (a, b) = (as_f64(a)?, as_f64(b)?);
            Some(Float(match op {
                BinaryOp::Add => a + b,
                BinaryOp::Sub => a - b,
                BinaryOp::Mul => a * b,
                BinaryOp::Div if b == 0.0 => 0.0,
                BinaryOp::Div => a / b,
                BinaryOp::Mod => a % b,
                _ => return None,
            }))
        }
    }
}

fn integer_op(op: BinaryOp, a: i64, b: i64) -> Option<FieldValue> {
    use FieldValue::{Float, Integer};
    Some(match op {
        BinaryOp::Add => Integer(a.wrapping_add(b)),
        BinaryOp::Sub => Integer(a.wrapping_sub(b)),
        BinaryOp::Mul => Integer(a.wrapping_mul(b)),
        BinaryOp::Div if b == 0 => Float(0.0),
        BinaryOp::Div => Float(a as f64 / b as f64),
        BinaryOp::Mod if b == 0 => Integer(0),
        BinaryOp::Mod => Integer(a.wrapping_rem(b)),
        BinaryOp::BitAnd => Integer(a & b),
        BinaryOp::BitOr => Integer(a | b),
        BinaryOp::BitXor => Integer(a ^ b),
        _ => return None,
    })
}

fn unsigned_op(op: BinaryOp, a: u64, b: u64) -> Option<FieldValue> {
    use FieldValue::{Float, Unsigned};
    Some(match op {
        BinaryOp::Add => Unsigned(a.wrapping_add(b)),
        BinaryOp::Sub => Unsigned(a.wrapping_sub(b)),
        BinaryOp::Mul => Unsigned(a.wrapping_mul(b)),
        BinaryOp::Div if b == 0 => Float(0.0),
        BinaryOp::Div => Float(a as f64 / b as f64),
        BinaryOp::Mod if b == 0 => Unsigned(0),
        BinaryOp::Mod => Unsigned(a % b),
        BinaryOp::BitAnd => Unsigned(a & b),
        BinaryOp::BitOr => Unsigned(a | b),
        BinaryOp::BitXor => Unsigned(a ^ b),
        _ => return None,
    })
}

/// The math functions of InfluxQL's SELECT clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MathFn {
    Abs,
    Ceil,
    Floor,
    Round,
    Sqrt,
    Pow,
    Log,
    Ln,
    Log2,
    Log10,
    Exp,
}

impl MathFn {
    pub(super) fn parse(name: &str) -> Option<MathFn> {
        Some(match name {
            "abs" => MathFn::Abs,
            "ceil" => MathFn::Ceil,
            "floor" => MathFn::Floor,
            "round" => MathFn::Round,
            "sqrt" => MathFn::Sqrt,
            "pow" => MathFn::Pow,
            "log" => MathFn::Log,
            "ln" => MathFn::Ln,
            "log2" => MathFn::Log2,
            "log10" => MathFn::Log10,
            "exp" => MathFn::Exp,
            _ => return None,
        })
    }

    /// How many arguments the function takes (the value, plus the exponent or base).
    pub(super) fn arity(self) -> usize {
        match self {
            MathFn::Pow | MathFn::Log => 2,
            _ => 1,
        }
    }

    /// The function of a value (and, for pow and log, a second one). abs, ceil, floor
    /// and round keep integers integers; the others yield floats; non-numbers give null.
    pub(super) fn apply(self, v: &FieldValue, arg: Option<&FieldValue>) -> Option<FieldValue> {
        match (self, v) {
            (MathFn::Abs, FieldValue::Integer(i)) => {
                return Some(FieldValue::Integer(i.wrapping_abs()))
            }
            (MathFn::Ceil | MathFn::Floor | MathFn::Round, FieldValue::Integer(_))
            | (
                MathFn::Abs | MathFn::Ceil | MathFn::Floor | MathFn::Round,
                FieldValue::Unsigned(_),
            ) => return Some(v.clone()),
            _ => {}
        }
        let x = as_f64(v)?;
        let y = match arg {
            Some(a) => Some(as_f64(a)?),
            None => None,
        };
        Some(FieldValue::Float(match self {
            MathFn::Abs => x.abs(),
            MathFn::Ceil => x.ceil(),
            MathFn::Floor => x.floor(),
            // Go's math.Round: half away from zero, as Rust's f64::round.
            MathFn::Round => x.round(),
            MathFn::Sqrt => x.sqrt(),
            MathFn::Pow => x.powf(y?),
            MathFn::Log => x.ln() / y?.ln(),
            MathFn::Ln => x.ln(),
            MathFn::Log2 => x.log2(),
            MathFn::Log10 => x.log10(),
            MathFn::Exp => x.exp(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FieldValue::{Float, Integer};

    #[test]
    fn integers_stay_integers_except_under_division() {
        assert_eq!(
            binary(BinaryOp::Mul, &Integer(-5), &Integer(2)),
            Some(Integer(-10))
        );
        assert_eq!(
            binary(BinaryOp::Div, &Integer(7), &Integer(2)),
            Some(Float(3.5))
        );
        assert_eq!(
            binary(BinaryOp::Mod, &Integer(-5), &Integer(3)),
            Some(Integer(-2))
        );
        assert_eq!(
            binary(BinaryOp::Add, &Integer(1), &Float(0.5)),
            Some(Float(1.5))
        );
    }

    #[test]
    fn division_by_zero_is_zero_as_in_1x() {
        assert_eq!(
            binary(BinaryOp::Div, &Integer(7), &Integer(0)),
            Some(Float(0.0))
        );
        assert_eq!(
            binary(BinaryOp::Mod, &Integer(7), &Integer(0)),
            Some(Integer(0))
        );
        assert_eq!(
            binary(BinaryOp::Div, &Float(7.0), &Float(0.0)),
            Some(Float(0.0))
        );
    }

    #[test]
    fn math_keeps_integers_where_1x_does() {
        assert_eq!(MathFn::Abs.apply(&Integer(-3), None), Some(Integer(3)));
        assert_eq!(MathFn::Round.apply(&Float(2.5), None), Some(Float(3.0)));
        assert_eq!(
            MathFn::Pow.apply(&Integer(3), Some(&Integer(2))),
            Some(Float(9.0))
        );
        assert_eq!(
            MathFn::Sqrt.apply(&FieldValue::String("x".into()), None),
            None
        );
    }
}
