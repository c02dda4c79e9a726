//! Evaluating WHERE conditions on one row, and the time range they imply.

use super::error::QueryError;
use super::format::parse_rfc3339;
use super::parser::ast::{BinaryExpr, BinaryOp, Expr};
use super::scan::FieldKeys;
use crate::line_protocol::FieldValue;
use std::collections::{HashMap, HashSet};

/// A row as a condition sees it.
pub(super) struct Row<'a> {
    pub time: i64,
    pub tags: &'a [(String, String)],
    pub fields: &'a HashMap<&'a str, FieldValue>,
    /// Field keys of the measurement: a name that is one refers to the field (null where
    /// the row has no value), any other name to a tag.
    pub field_keys: &'a FieldKeys,
}

/// A value met in a condition; strings are borrowed from the condition or the row (a
/// copy per comparison was most of the cost of judging a series by its tags).
#[derive(Debug, Clone, PartialEq)]
enum V<'a> {
    Int(i64),
    Float(f64),
    Str(&'a str),
    Bool(bool),
    Null,
}

/// Regexes of a condition, compiled once per statement.
#[derive(Default)]
pub(super) struct Regexes(HashMap<String, regex::Regex>);

impl Regexes {
    pub(super) fn compile(expr: &Expr, out: &mut Regexes) -> Result<(), QueryError> {
        match expr {
            Expr::Regex(r) if !out.0.contains_key(&r.pattern) => {
                let re = super::patterns::compiled(&r.pattern)?;
                out.0.insert(r.pattern.clone(), re);
            }
            Expr::Binary(b) => {
                Self::compile(&b.lhs, out)?;
                Self::compile(&b.rhs, out)?;
            }
            Expr::Paren(e) => Self::compile(e, out)?,
            _ => {}
        }
        Ok(())
    }

    /// The compiled form of a pattern [`Regexes::compile`] met.
    pub(super) fn get(&self, pattern: &str) -> Option<&regex::Regex> {
        self.0.get(pattern)
    }
}

pub(super) fn matches(expr: &Expr, row: &Row<'_>, now: i64, re: &Regexes) -> bool {
    matches!(eval(expr, row, now, re), V::Bool(true))
}

fn eval<'a>(expr: &'a Expr, row: &'a Row<'_>, now: i64, re: &Regexes) -> V<'a> {
    match expr {
        Expr::Paren(e) => eval(e, row, now, re),
        Expr::Integer(i) | Expr::Duration(i) => V::Int(*i),
        Expr::Unsigned(u) => V::Float(*u as f64),
        Expr::Number(f) => V::Float(*f),
        Expr::String(s) => V::Str(s),
        Expr::Boolean(b) => V::Bool(*b),
        Expr::Call(c) if c.name == "now" => V::Int(now),
        Expr::VarRef(v) if v.name == "time" => V::Int(row.time),
        Expr::VarRef(v) => {
            if let Some(value) = row.fields.get(v.name.as_str()) {
                return match value {
                    FieldValue::Float(x) => V::Float(*x),
                    FieldValue::Integer(x) => V::Int(*x),
                    FieldValue::Unsigned(x) => V::Float(*x as f64),
                    FieldValue::String(x) => V::Str(x),
                    FieldValue::Boolean(x) => V::Bool(*x),
                };
            }
            if row.field_keys.contains(&v.name) {
                return V::Null;
            }
            // A tag a series does not have compares as the empty string, as in InfluxDB.
            V::Str(
                row.tags
                    .iter()
                    .find(|(k, _)| *k == v.name)
                    .map_or("", |(_, v)| v.as_str()),
            )
        }
        Expr::Binary(b) => {
            use BinaryOp::*;
            match b.op {
                And => V::Bool(matches(&b.lhs, row, now, re) && matches(&b.rhs, row, now, re)),
                Or => V::Bool(matches(&b.lhs, row, now, re) || matches(&b.rhs, row, now, re)),
                EqRegex | NeqRegex => {
                    let (V::Str(s), Expr::Regex(r)) = (eval(&b.lhs, row, now, re), &b.rhs) else {
                        return V::Bool(false);
                    };
                    let hit = re.0.get(&r.pattern).is_some_and(|r| r.is_match(s));
                    V::Bool(hit == (b.op == EqRegex))
                }
                Add | Sub | Mul | Div | Mod => {
                    arith(b.op, eval(&b.lhs, row, now, re), eval(&b.rhs, row, now, re))
                }
                Eq | Neq | Lt | Lte | Gt | Gte => {
                    let time_side = is_time(&b.lhs) || is_time(&b.rhs);
                    let (l, r) = (eval(&b.lhs, row, now, re), eval(&b.rhs, row, now, re));
                    let (l, r) = if time_side {
                        (as_time(l), as_time(r))
                    } else {
                        (l, r)
                    };
                    V::Bool(compare(b.op, &l, &r))
                }
                BitAnd | BitOr | BitXor => V::Null,
            }
        }
        _ => V::Null,
    }
}

fn is_time(e: &Expr) -> bool {
    matches!(e, Expr::VarRef(v) if v.name == "time")
}

fn as_time(v: V<'_>) -> V<'_> {
    match v {
        V::Str(s) => parse_rfc3339(s).map_or(V::Null, V::Int),
        V::Float(f) => V::Int(f as i64),
        other => other,
    }
}

fn arith<'a>(op: BinaryOp, l: V<'a>, r: V<'a>) -> V<'a> {
    match (l, r) {
        (V::Int(a), V::Int(b)) => match op {
            BinaryOp::Add => V::Int(a.wrapping_add(b)),
            BinaryOp::Sub => V::Int(a.wrapping_sub(b)),
            BinaryOp::Mul => V::Int(a.wrapping_mul(b)),
            BinaryOp::Div if b != 0 => V::Int(a / b),
            BinaryOp::Mod if b != 0 => V::Int(a % b),
            _ => V::Null,
        },
        (a, b) => match (num(&a), num(&b)) {
            (Some(a), Some(b)) => V::Float(match op {
                BinaryOp::Add => a + b,
                BinaryOp::Sub => a - b,
                BinaryOp::Mul => a * b,
                BinaryOp::Div => a / b,
                _ => a % b,
            }),
            _ => V::Null,
        },
    }
}

fn num(v: &V<'_>) -> Option<f64> {
    match v {
        V::Int(i) => Some(*i as f64),
        V::Float(f) => Some(*f),
        _ => None,
    }
}

fn compare(op: BinaryOp, l: &V<'_>, r: &V<'_>) -> bool {
    use std::cmp::Ordering;
    let ord = match (l, r) {
        (V::Int(a), V::Int(b)) => a.partial_cmp(b),
        (V::Str(a), V::Str(b)) => a.partial_cmp(b),
        (V::Bool(a), V::Bool(b)) => a.partial_cmp(b),
        (a, b) => match (num(a), num(b)) {
            (Some(a), Some(b)) => a.partial_cmp(&b),
            _ => None,
        },
    };
    match (op, ord) {
        (BinaryOp::Eq, Some(o)) => o == Ordering::Equal,
        (BinaryOp::Neq, Some(o)) => o != Ordering::Equal,
        (BinaryOp::Lt, Some(o)) => o == Ordering::Less,
        (BinaryOp::Lte, Some(o)) => o != Ordering::Greater,
        (BinaryOp::Gt, Some(o)) => o == Ordering::Greater,
        (BinaryOp::Gte, Some(o)) => o != Ordering::Less,
        _ => false,
    }
}

/// The [start, end] time range a condition allows, from its top-level AND terms on `time`
/// (rows are still checked one by one; this only prunes what is read).
pub(super) fn time_range(expr: Option<&Expr>, now: i64) -> (i64, i64) {
    let mut range = (i64::MIN, i64::MAX);
    if let Some(e) = expr {
        narrow(e, now, &mut range);
    }
    range
}

fn narrow(e: &Expr, now: i64, range: &mut (i64, i64)) {
    let Expr::Binary(b) = e else {
        if let Expr::Paren(inner) = e {
            narrow(inner, now, range);
        }
        return;
    };
    if b.op == BinaryOp::And {
        narrow(&b.lhs, now, range);
        narrow(&b.rhs, now, range);
        return;
    }
    let Some((op, t)) = time_bound(b, now) else {
        return;
    };
    match op {
        BinaryOp::Gt => range.0 = range.0.max(t.saturating_add(1)),
        BinaryOp::Gte => range.0 = range.0.max(t),
        BinaryOp::Lt => range.1 = range.1.min(t.saturating_sub(1)),
        BinaryOp::Lte => range.1 = range.1.min(t),
        BinaryOp::Eq => {
            range.0 = range.0.max(t);
            range.1 = range.1.min(t);
        }
        _ => {}
    }
}

/// A comparison of `time` with a value known before any row is read, as (`time` op value).
fn time_bound(b: &BinaryExpr, now: i64) -> Option<(BinaryOp, i64)> {
    let (op, other) = if is_time(&b.lhs) {
        (b.op, &b.rhs)
    } else if is_time(&b.rhs) {
        let flipped = match b.op {
            BinaryOp::Lt => BinaryOp::Gt,
            BinaryOp::Lte => BinaryOp::Gte,
            BinaryOp::Gt => BinaryOp::Lt,
            BinaryOp::Gte => BinaryOp::Lte,
            o => o,
        };
        (flipped, &b.lhs)
    } else {
        return None;
    };
    let (empty, none) = (HashMap::new(), FieldKeys::default());
    let row = Row {
        time: 0,
        tags: &[],
        fields: &empty,
        field_keys: &none,
    };
    match as_time(eval(other, &row, now, &Regexes::default())) {
        V::Int(t) => Some((op, t)),
        _ => None,
    }
}

/// Whether a condition's verdict on a row within its [`time_range`] follows from the
/// row's tags alone: it compares no field, and `time` only in top-level AND terms that
/// make up the range. Such a condition is judged once per series, not once per row.
pub(super) fn judged_by_tags(expr: &Expr, field_keys: &FieldKeys, now: i64) -> bool {
    match expr {
        Expr::Paren(e) => judged_by_tags(e, field_keys, now),
        Expr::Binary(b) if b.op == BinaryOp::And => {
            judged_by_tags(&b.lhs, field_keys, now) && judged_by_tags(&b.rhs, field_keys, now)
        }
        Expr::Binary(b) if is_time(&b.lhs) || is_time(&b.rhs) => {
            time_bound(b, now).is_some_and(|(op, _)| {
                matches!(
                    op,
                    BinaryOp::Gt | BinaryOp::Gte | BinaryOp::Lt | BinaryOp::Lte | BinaryOp::Eq
                )
            })
        }
        e => only_tags(e, field_keys),
    }
}

/// Whether an expression reads nothing but tags and constants.
fn only_tags(expr: &Expr, field_keys: &FieldKeys) -> bool {
    match expr {
        Expr::VarRef(v) => v.name != "time" && !field_keys.contains(&v.name),
        Expr::Paren(e) => only_tags(e, field_keys),
        Expr::Binary(b) => only_tags(&b.lhs, field_keys) && only_tags(&b.rhs, field_keys),
        Expr::String(_)
        | Expr::Regex(_)
        | Expr::Integer(_)
        | Expr::Unsigned(_)
        | Expr::Number(_)
        | Expr::Boolean(_)
        | Expr::Duration(_) => true,
        _ => false,
    }
}

/// Whether a series can match a condition, judged from its tags alone: AND and OR of terms
/// comparing a tag (a name that is not a field key) with a string or regex.
/// Everything else is left to the row-by-row check, so this only ever skips series that
/// cannot match.
pub(super) fn series_may_match(
    expr: Option<&Expr>,
    tags: &[(String, String)],
    field_keys: &FieldKeys,
    re: &Regexes,
) -> bool {
    let Some(expr) = expr else { return true };
    match expr {
        Expr::Paren(e) => series_may_match(Some(e), tags, field_keys, re),
        Expr::Binary(b) if b.op == BinaryOp::And => {
            series_may_match(Some(&b.lhs), tags, field_keys, re)
                && series_may_match(Some(&b.rhs), tags, field_keys, re)
        }
        // Each side answers "may" when unsure, so a series neither side can match is out.
        Expr::Binary(b) if b.op == BinaryOp::Or => {
            series_may_match(Some(&b.lhs), tags, field_keys, re)
                || series_may_match(Some(&b.rhs), tags, field_keys, re)
        }
        Expr::Binary(b) => {
            let Expr::VarRef(v) = &b.lhs else { return true };
            if v.name == "time" || field_keys.contains(&v.name) {
                return true;
            }
            if !matches!(b.rhs, Expr::String(_) | Expr::Regex(_)) {
                return true;
            }
            let (empty, none) = (HashMap::new(), FieldKeys::default());
            let row = Row {
                time: 0,
                tags,
                fields: &empty,
                field_keys: &none,
            };
            matches(expr, &row, 0, re)
        }
        _ => true,
    }
}

/// Whether a name read in a condition is the time column.
pub(super) fn is_time_name(name: &str) -> bool {
    name.eq_ignore_ascii_case("time")
}

/// Whether a condition says anything of time.
pub(super) fn mentions_time(e: &Expr) -> bool {
    let mut names = HashSet::new();
    var_refs(e, &mut names);
    names.iter().any(|n| is_time_name(n))
}

/// The names a condition reads.
pub(super) fn var_refs(e: &Expr, out: &mut HashSet<String>) {
    match e {
        Expr::VarRef(v) => {
            out.insert(v.name.clone());
        }
        Expr::Binary(b) => {
            var_refs(&b.lhs, out);
            var_refs(&b.rhs, out);
        }
        Expr::Paren(inner) => var_refs(inner, out),
        Expr::Call(c) => c.args.iter().for_each(|a| var_refs(a, out)),
        _ => {}
    }
}

/// The condition with every comparison involving `time` replaced by `true` (the time
/// range is taken from those terms separately).
pub(super) fn without_time(e: &Expr) -> Expr {
    match e {
        Expr::Paren(inner) => Expr::Paren(Box::new(without_time(inner))),
        Expr::Binary(b) => {
            let mut refs = HashSet::new();
            var_refs(&b.lhs, &mut refs);
            var_refs(&b.rhs, &mut refs);
            if !matches!(b.op, BinaryOp::And | BinaryOp::Or) && refs.iter().any(|n| is_time_name(n))
            {
                return Expr::Boolean(true);
            }
            Expr::binary(b.op, without_time(&b.lhs), without_time(&b.rhs))
        }
        other => other.clone(),
    }
}
