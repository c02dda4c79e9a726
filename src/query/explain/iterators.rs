//! The iterators InfluxDB 1.6 builds for a prepared SELECT (its `buildCursor`), as a tree:
//! a cursor per statement, under it an iterator scanner per call (or one for the raw
//! fields), under each the reads of the sources (1.6's `CreateIterator` calls, which
//! EXPLAIN lists) or a subquery's cursor. Which reads there are, what each carries and in
//! what order follows 1.6's planner: a call's reads read its argument (`mean(usage)`), or
//! the field under it for the functions 1.6 computes above the storage (`median`,
//! `derivative`, `distinct`, `top` without tags...); a subquery is planned again for
//! each call over it. 1.6 takes the calls in Go's random map order; here they come in the
//! order the statement names them.

use super::prepare::{call_type, is_math, Prepared};
use crate::query::parser::ast::{
    Call, DataType, Expr, Measurement, SelectStatement, Source, VarRef,
};
use crate::query::plan;
use std::collections::HashSet;

pub(super) struct Cursor<'p> {
    /// The statement as 1.6 prints it.
    pub(super) statement: String,
    pub(super) scanners: Vec<Scanner<'p>>,
}

pub(super) struct Scanner<'p> {
    /// 1.6's labels, in its (key) order.
    pub(super) labels: Vec<(&'static str, String)>,
    pub(super) inputs: Vec<Input<'p>>,
}

pub(super) enum Input<'p> {
    Read(Read<'p>),
    Subquery(Cursor<'p>),
}

/// A read of one source, as 1.6's iterator options describe it.
pub(super) struct Read<'p> {
    pub(super) source: &'p Measurement,
    /// The iterator's expression: a call, a field, or none for raw fields.
    pub(super) expr: Option<Expr>,
    /// The fields and tags read beside it.
    pub(super) aux: Vec<VarRef>,
    pub(super) condition: Option<&'p Expr>,
    /// The statement the driver runs, whose read this is.
    pub(super) statement: &'p SelectStatement,
}

impl Read<'_> {
    /// The field the expression reads (a call's first argument).
    pub(super) fn expr_field(&self) -> Option<&str> {
        match &self.expr {
            Some(Expr::VarRef(v)) => Some(&v.name),
            Some(Expr::Call(c)) => match c.args.first() {
                Some(Expr::VarRef(v)) => Some(&v.name),
                _ => None,
            },
            _ => None,
        }
    }

    /// The names the condition reads (time aside).
    pub(super) fn condition_names(&self) -> Vec<String> {
        let mut names = HashSet::new();
        if let Some(c) = self.condition {
            crate::query::eval::var_refs(c, &mut names);
        }
        let mut names: Vec<String> = names.into_iter().collect();
        names.sort();
        names
    }

    /// Every name the read reads: its expression's field, the auxiliary fields and the
    /// condition's names.
    pub(super) fn names(&self) -> Vec<String> {
        let mut out: Vec<String> = self.expr_field().map(str::to_owned).into_iter().collect();
        out.extend(self.aux.iter().map(|v| v.name.clone()));
        out.extend(self.condition_names());
        out
    }
}

impl<'p> Cursor<'p> {
    /// Every read, in the order 1.6 creates them (which EXPLAIN lists).
    pub(super) fn reads(&self) -> Vec<&Read<'p>> {
        let mut out = Vec::new();
        for scanner in &self.scanners {
            for input in &scanner.inputs {
                match input {
                    Input::Read(r) => out.push(r),
                    Input::Subquery(c) => out.extend(c.reads()),
                }
            }
        }
        out
    }
}

/// The cursor of a prepared statement.
pub(super) fn cursor(p: &Prepared) -> Cursor<'_> {
    // 1.6's value mapper: each call (but math functions, which it looks through) and each
    // name read once, by its text.
    let mut symbols = Symbols::default();
    for f in &p.typed.fields {
        symbols.visit(&f.expr);
        // top() and bottom() also return their tag arguments, unless written INTO.
        if let (Expr::Call(c), None) = (&f.expr, &p.typed.target) {
            if matches!(c.name.as_str(), "top" | "bottom") && c.args.len() > 2 {
                for arg in &c.args[1..c.args.len() - 1] {
                    symbols.visit(arg);
                }
            }
        }
    }
    let mut aux = symbols.refs;
    aux.sort_by(|a, b| (&a.name, type_order(a.data_type)).cmp(&(&b.name, type_order(b.data_type))));
    let planner = Planner {
        p,
        aux: aux.clone(),
    };
    let mut scanners = Vec::new();
    if symbols.calls.is_empty() {
        // With no name of a known type, 1.6 reads nothing.
        if aux.iter().any(|v| v.data_type.is_some()) {
            let inputs = p
                .typed
                .sources
                .iter()
                .enumerate()
                .filter_map(|(at, s)| match s {
                    Source::Measurement(m) => Some(Input::Read(planner.read(m, None))),
                    Source::Subquery(_) => p
                        .subqueries
                        .get(&at)
                        .map(|inner| Input::Subquery(cursor(inner))),
                })
                .collect();
            scanners.push(Scanner {
                labels: vec![("auxiliary_fields", joined(&aux))],
                inputs,
            });
        }
    } else {
        for call in &symbols.calls {
            // A call of an unknown type (`max(nosuch)`) is left out.
            if call_type(call).is_none() {
                continue;
            }
            let mut labels = Vec::new();
            if !aux.is_empty() {
                labels.push(("auxiliary_fields", joined(&aux)));
            }
            labels.push(("expr", Expr::Call(call.clone()).to_string()));
            scanners.push(Scanner {
                labels,
                inputs: planner.call(call),
            });
        }
    }
    Cursor {
        statement: p.typed.to_string(),
        scanners,
    }
}

#[derive(Default)]
struct Symbols {
    seen: HashSet<String>,
    calls: Vec<Call>,
    refs: Vec<VarRef>,
}

impl Symbols {
    fn visit(&mut self, e: &Expr) {
        let key = e.to_string();
        if self.seen.contains(&key) {
            return;
        }
        match e {
            Expr::Call(c) if is_math(c) => c.args.iter().for_each(|a| self.visit(a)),
            Expr::Call(c) => {
                self.seen.insert(key);
                self.calls.push(c.clone());
            }
            Expr::VarRef(v) => {
                self.seen.insert(key);
                self.refs.push(v.clone());
            }
            Expr::Binary(b) => {
                self.visit(&b.lhs);
                self.visit(&b.rhs);
            }
            Expr::Paren(inner) => self.visit(inner),
            _ => {}
        }
    }
}

struct Planner<'p> {
    p: &'p Prepared,
    aux: Vec<VarRef>,
}

impl<'p> Planner<'p> {
    fn read(&self, source: &'p Measurement, expr: Option<Expr>) -> Read<'p> {
        Read {
            source,
            expr,
            aux: self.aux.clone(),
            condition: self.p.condition.as_ref(),
            statement: &self.p.read,
        }
    }

    /// The inputs of a call's iterator, as 1.6's `buildCallIterator` creates them.
    fn call(&self, call: &Call) -> Vec<Input<'p>> {
        let first = || call.args.first().cloned().unwrap_or(Expr::Boolean(false));
        match call.name.as_str() {
            "distinct" | "integral" | "median" | "mode" | "stddev" | "spread" | "percentile" => {
                self.expr(&first())
            }
            "sample"
            | "holt_winters"
            | "holt_winters_with_fit"
            | "derivative"
            | "non_negative_derivative"
            | "difference"
            | "non_negative_difference"
            | "moving_average"
            | "exponential_moving_average"
            | "double_exponential_moving_average"
            | "triple_exponential_moving_average"
            | "relative_strength_index"
            | "triple_exponential_derivative"
            | "kaufmans_efficiency_ratio"
            | "kaufmans_adaptive_moving_average"
            | "chande_momentum_oscillator"
            | "elapsed"
            | "cumulative_sum" => self.expr(&first()),
            // With tag arguments, the best point per tag combination first: max() (min()).
            "top" | "bottom" if call.args.len() > 2 => {
                let name = if call.name == "top" { "max" } else { "min" };
                self.reduction(&Call {
                    name: name.into(),
                    args: vec![first()],
                })
            }
            "top" | "bottom" => self.expr(&first()),
            "count" if matches!(call.args.first(), Some(Expr::Call(c)) if c.name == "distinct") => {
                self.expr(&first())
            }
            _ => self.reduction(call),
        }
    }

    /// An expression's inputs: a call's, or a field's.
    fn expr(&self, e: &Expr) -> Vec<Input<'p>> {
        match e {
            Expr::Call(c) => self.call(c),
            Expr::VarRef(v) => self.field(v),
            _ => Vec::new(),
        }
    }

    /// Reads of a field from each source (a subquery only if it returns the field).
    fn field(&self, v: &VarRef) -> Vec<Input<'p>> {
        self.each_source(Some(Expr::VarRef(v.clone())), v)
    }

    /// Reads that reduce in storage (count, sum, mean, min, max, first, last).
    fn reduction(&self, call: &Call) -> Vec<Input<'p>> {
        let Some(Expr::VarRef(v)) = call.args.first() else {
            return Vec::new();
        };
        self.each_source(Some(Expr::Call(call.clone())), v)
    }

    fn each_source(&self, expr: Option<Expr>, field: &VarRef) -> Vec<Input<'p>> {
        let p = self.p;
        p.typed
            .sources
            .iter()
            .enumerate()
            .filter_map(|(at, s)| match s {
                Source::Measurement(m) => Some(Input::Read(self.read(m, expr.clone()))),
                Source::Subquery(_) => {
                    let inner = p.subqueries.get(&at)?;
                    returns(&inner.typed, &field.name).then(|| Input::Subquery(cursor(inner)))
                }
            })
            .collect()
    }
}

/// Whether a subquery returns `name`: as a column, a tag argument of its top() or
/// bottom(), or a tag it groups by (1.6's `mapAuxField`).
fn returns(inner: &SelectStatement, name: &str) -> bool {
    plan::column_names(&inner.fields).iter().any(|c| c == name)
        || inner.fields.iter().any(|f| match &f.expr {
            Expr::Call(c) if matches!(c.name.as_str(), "top" | "bottom") && c.args.len() > 2 => c
                .args[1..c.args.len() - 1]
                .iter()
                .any(|a| matches!(a, Expr::VarRef(v) if v.name == name)),
            _ => false,
        })
        || inner
            .dimensions
            .iter()
            .any(|d| matches!(&d.expr, Expr::VarRef(v) if v.name == name))
}

/// 1.6's order of types, which sorts auxiliary fields of one name.
fn type_order(t: Option<DataType>) -> u8 {
    match t {
        None => 0,
        Some(DataType::Float) => 1,
        Some(DataType::Integer) => 2,
        Some(DataType::String) => 3,
        Some(DataType::Boolean) => 4,
        Some(DataType::Tag) => 7,
        Some(DataType::AnyField) => 8,
        Some(DataType::Unsigned) => 9,
    }
}

fn joined(refs: &[VarRef]) -> String {
    refs.iter()
        .map(|v| Expr::VarRef(v.clone()).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
