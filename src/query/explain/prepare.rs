//! A SELECT as InfluxDB 1.6 compiles it before it plans its iterators (its `Prepare`):
//! measurements qualified with their database and policy, `*`, regular expressions and
//! `GROUP BY *` expanded from the fields and tags the sources hold in the statement's
//! range, every name typed (`usage::float`, `host::tag`; a name no source holds stays
//! untyped), and the condition without its time terms. What EXPLAIN prints is written from
//! this form; what it counts is read with the form the driver runs.

use crate::query::error::QueryError;
use crate::query::eval::{is_time_name, time_range};
use crate::query::parser::ast::{
    BinaryOp, Call, DataType, Dimension, Expr, Field, Fill, Measurement, MeasurementName,
    SelectStatement, Source, VarRef, WildcardType,
};
use crate::query::plan;
use crate::query::read_only::go_fill;
use crate::query::scan::SelectContext;
use crate::query::select::cost::source_schema;
use crate::query::subquery;
use crate::storage::column::FieldType;
use std::collections::{BTreeMap, BTreeSet};

pub(super) struct Prepared {
    /// As the driver runs it: measurements qualified; a subquery adjusted to its outer
    /// statement.
    pub(super) read: SelectStatement,
    /// As written (a subquery too), its `*`, regular expressions and calls of them
    /// expanded: what the SELECT's own checks judge.
    pub(super) expanded: SelectStatement,
    /// The stored fields its sources hold in range.
    pub(super) stored_fields: Vec<String>,
    /// As 1.6 prints it: expanded and typed.
    pub(super) typed: SelectStatement,
    /// The typed condition without its time terms, as 1.6's iterators carry it.
    pub(super) condition: Option<Expr>,
    /// Each subquery source, by its position in `typed.sources`.
    pub(super) subqueries: BTreeMap<usize, Prepared>,
}

/// What the sources hold in range: every name with its type (a field's, or a tag's).
#[derive(Default)]
struct Schema {
    types: BTreeMap<String, DataType>,
    /// The stored fields, for calls of `*` ([`plan::expand_wildcard_calls`]).
    fields: BTreeMap<String, FieldType>,
    tags: BTreeSet<String>,
}

impl Schema {
    /// A name's type where several sources hold it: 1.6's order of precedence (float,
    /// integer, unsigned, string, boolean, tag).
    fn add(&mut self, name: &str, kind: DataType) {
        let rank = |t: DataType| match t {
            DataType::Float => 0,
            DataType::Integer => 1,
            DataType::Unsigned => 2,
            DataType::String => 3,
            DataType::Boolean => 4,
            DataType::Tag => 5,
            DataType::AnyField => 6,
        };
        match self.types.get_mut(name) {
            Some(known) if rank(kind) < rank(*known) => *known = kind,
            Some(_) => {}
            None => {
                self.types.insert(name.to_owned(), kind);
            }
        }
        if kind == DataType::Tag {
            self.tags.insert(name.to_owned());
        } else if let Some(stored) = stored_type(kind) {
            self.fields.entry(name.to_owned()).or_insert(stored);
        }
    }
}

/// Prepares the statement the executor hands over (`db=` and `rp=` already applied).
pub(super) fn prepare(
    stmt: &SelectStatement,
    ctx: &SelectContext<'_>,
) -> Result<Prepared, QueryError> {
    let mut read = stmt.clone();
    qualify(&mut read, ctx);
    let written = read.clone();
    let mut prepared = prepare_read(read, &written, ctx)?;
    // 1.6 prints the statement it runs as compiled: its time range is no longer a term.
    prepared.typed.condition = prepared.condition.clone();
    Ok(prepared)
}

/// `read` is what the driver runs, `written` the statement as the query wrote it (they
/// differ for a subquery, which runs adjusted to its outer statement).
fn prepare_read(
    read: SelectStatement,
    written: &SelectStatement,
    ctx: &SelectContext<'_>,
) -> Result<Prepared, QueryError> {
    let (start, end) = time_range(read.condition.as_ref(), ctx.now);
    let mut schema = Schema::default();
    let mut subqueries = BTreeMap::new();
    for (at, source) in read.sources.iter().enumerate() {
        match source {
            Source::Measurement(m) => {
                let found = source_schema(&read, ctx, m)?;
                for (name, kind) in &found.fields {
                    schema.add(name, data_type(*kind));
                }
                for tag in &found.tags {
                    schema.add(tag, DataType::Tag);
                }
            }
            Source::Subquery(inner) => {
                let Some(Source::Subquery(inner_written)) = written.sources.get(at) else {
                    continue;
                };
                let adjusted = subquery::adjusted(&read, inner, start, end)?;
                let inner = prepare_read(adjusted, inner_written, ctx)?;
                let names = plan::column_names(&inner.typed.fields);
                for (field, name) in inner.typed.fields.iter().zip(&names) {
                    if let Some(kind) = eval_type(&field.expr) {
                        schema.add(name, kind);
                    }
                }
                for d in &inner.typed.dimensions {
                    if let Expr::VarRef(v) = &d.expr {
                        if !schema.types.contains_key(&v.name) {
                            schema.add(&v.name, DataType::Tag);
                        }
                    }
                }
                subqueries.insert(at, inner);
            }
        }
    }
    let mut expanded = plan::expand_wildcard_calls(written, &schema.fields)?;
    expanded.dimensions = expand_dimensions(&expanded.dimensions, &schema)?;
    let grouped: BTreeSet<String> = expanded
        .dimensions
        .iter()
        .filter_map(|d| match &d.expr {
            Expr::VarRef(v) => Some(v.name.clone()),
            _ => None,
        })
        .collect();
    expanded.fields = expand_fields(&expanded.fields, &schema, &grouped)?;
    let mut typed = expanded.clone();
    // fill() as 1.6 writes it back: `fill(null)` is its default, and not written.
    if typed.fill == Some(Fill::Null) {
        typed.fill = None;
    }
    go_fill(&mut typed);
    for f in &mut typed.fields {
        f.expr = typed_expr(&f.expr, &schema);
    }
    typed.condition = typed.condition.as_ref().map(|c| typed_expr(c, &schema));
    for (at, inner) in &subqueries {
        if let Some(source) = typed.sources.get_mut(*at) {
            *source = Source::Subquery(Box::new(inner.typed.clone()));
        }
    }
    let condition = typed
        .condition
        .as_ref()
        .and_then(without_time)
        .map(|c| match c {
            Expr::Paren(inner) => *inner,
            c => c,
        });
    Ok(Prepared {
        read,
        expanded,
        stored_fields: schema.fields.into_keys().collect(),
        typed,
        condition,
        subqueries,
    })
}

/// Every measurement (the target's too) with its database and policy, as 1.6 normalizes
/// a statement before it runs.
fn qualify(s: &mut SelectStatement, ctx: &SelectContext<'_>) {
    fn walk(s: &mut SelectStatement, ctx: &SelectContext<'_>) {
        let qualify = |db: &mut Option<String>, rp: &mut Option<String>| {
            if db.is_none() {
                *db = ctx.database.map(str::to_owned);
            }
            if rp.is_none() {
                *rp = db
                    .as_deref()
                    .and_then(|d| ctx.catalog.databases.get(d))
                    .map(|d| d.default_policy.clone())
                    .filter(|p| !p.is_empty());
            }
        };
        if let Some(t) = &mut s.target {
            qualify(&mut t.database, &mut t.retention_policy);
        }
        for source in &mut s.sources {
            match source {
                Source::Measurement(m) => qualify(&mut m.database, &mut m.retention_policy),
                Source::Subquery(inner) => walk(inner, ctx),
            }
        }
    }
    walk(s, ctx);
}

/// `GROUP BY *` as every tag of the sources, a regular expression as the tags it matches,
/// in name order, where it stands.
fn expand_dimensions(dims: &[Dimension], schema: &Schema) -> Result<Vec<Dimension>, QueryError> {
    let mut out = Vec::with_capacity(dims.len());
    for d in dims {
        let names: Vec<&String> = match &d.expr {
            Expr::Wildcard(_) => schema.tags.iter().collect(),
            Expr::Regex(r) => {
                let re = crate::query::patterns::compiled(&r.pattern)?;
                schema.tags.iter().filter(|t| re.is_match(t)).collect()
            }
            _ => {
                out.push(d.clone());
                continue;
            }
        };
        out.extend(names.into_iter().map(|n| Dimension { expr: Expr::var(n) }));
    }
    Ok(out)
}

/// `*`, `*::field`, `*::tag` and a regular expression as the names they stand for, in
/// name order (fields and tags together; the tags grouped by left out), a tag marked as
/// one (as the driver expands `*` beside a function).
fn expand_fields(
    fields: &[Field],
    schema: &Schema,
    grouped: &BTreeSet<String>,
) -> Result<Vec<Field>, QueryError> {
    let mut out = Vec::with_capacity(fields.len());
    for f in fields {
        let pattern = match &f.expr {
            Expr::Wildcard(kind) => Pattern::Wildcard(*kind),
            Expr::Regex(r) => Pattern::Regex(crate::query::patterns::compiled(&r.pattern)?),
            Expr::Distinct(name) => {
                out.push(Field {
                    expr: Expr::Call(Call {
                        name: "distinct".into(),
                        args: vec![Expr::var(name)],
                    }),
                    alias: f.alias.clone(),
                });
                continue;
            }
            _ => {
                out.push(f.clone());
                continue;
            }
        };
        for (name, kind) in &schema.types {
            let tag = *kind == DataType::Tag;
            if (tag && grouped.contains(name)) || !pattern.takes(name, tag) {
                continue;
            }
            out.push(Field {
                expr: Expr::VarRef(VarRef {
                    name: name.clone(),
                    data_type: tag.then_some(DataType::Tag),
                }),
                alias: None,
            });
        }
    }
    Ok(out)
}

/// What a field of `*` or a regular expression stands for.
enum Pattern {
    Wildcard(WildcardType),
    Regex(regex::Regex),
}

impl Pattern {
    fn takes(&self, name: &str, tag: bool) -> bool {
        match self {
            Pattern::Wildcard(WildcardType::All) => true,
            Pattern::Wildcard(WildcardType::Field) => !tag,
            Pattern::Wildcard(WildcardType::Tag) => tag,
            Pattern::Regex(re) => re.is_match(name),
        }
    }
}

/// Every name read typed as the sources hold it (an explicit cast kept; `time` and a
/// name no source holds left as written).
fn typed_expr(e: &Expr, schema: &Schema) -> Expr {
    match e {
        Expr::VarRef(v) if v.data_type.is_none() && !is_time_name(&v.name) => {
            Expr::VarRef(VarRef {
                name: v.name.clone(),
                data_type: schema.types.get(&v.name).copied(),
            })
        }
        Expr::Call(c) => Expr::Call(Call {
            name: c.name.clone(),
            args: c.args.iter().map(|a| typed_expr(a, schema)).collect(),
        }),
        Expr::Binary(b) => {
            Expr::binary(b.op, typed_expr(&b.lhs, schema), typed_expr(&b.rhs, schema))
        }
        Expr::Paren(inner) => Expr::Paren(Box::new(typed_expr(inner, schema))),
        other => other.clone(),
    }
}

/// The condition without its comparisons of `time` (None when nothing else is left), as
/// 1.6's `ConditionExpr` leaves it.
fn without_time(e: &Expr) -> Option<Expr> {
    match e {
        Expr::Binary(b) if matches!(b.op, BinaryOp::And | BinaryOp::Or) => {
            match (without_time(&b.lhs), without_time(&b.rhs)) {
                (Some(l), Some(r)) => Some(Expr::binary(b.op, l, r)),
                (l, r) => l.or(r),
            }
        }
        Expr::Binary(b) if is_time_ref(&b.lhs) || is_time_ref(&b.rhs) => None,
        Expr::Paren(inner) => without_time(inner).map(|e| Expr::Paren(Box::new(e))),
        Expr::Boolean(true) => None,
        other => Some(other.clone()),
    }
}

fn is_time_ref(e: &Expr) -> bool {
    matches!(e, Expr::VarRef(v) if is_time_name(&v.name))
}

/// An expression's type as 1.6's type evaluation gives it (None: unknown).
pub(super) fn eval_type(e: &Expr) -> Option<DataType> {
    match e {
        Expr::VarRef(v) => v.data_type.filter(|t| *t != DataType::AnyField),
        Expr::Call(c) => call_type(c),
        Expr::Paren(inner) => eval_type(inner),
        Expr::Binary(b) => {
            let (l, r) = (eval_type(&b.lhs), eval_type(&b.rhs));
            if b.op.is_comparison_or_logical() {
                return Some(DataType::Boolean);
            }
            let (l, r) = match (l, r) {
                (None, other) | (other, None) => return other,
                (Some(l), Some(r)) => (l, r),
            };
            let numeric = |t| matches!(t, DataType::Float | DataType::Integer | DataType::Unsigned);
            match (l, r) {
                _ if !numeric(l) || !numeric(r) => (l == r).then_some(l),
                _ if b.op == BinaryOp::Div => Some(DataType::Float),
                (DataType::Float, _) | (_, DataType::Float) => Some(DataType::Float),
                (l, r) if l == r => Some(l),
                _ => Some(DataType::Integer),
            }
        }
        Expr::Number(_) => Some(DataType::Float),
        Expr::Integer(_) => Some(DataType::Integer),
        Expr::Unsigned(_) => Some(DataType::Unsigned),
        Expr::String(_) => Some(DataType::String),
        Expr::Boolean(_) => Some(DataType::Boolean),
        _ => None,
    }
}

/// A call's type: 1.6's function and math type mappers.
pub(super) fn call_type(c: &Call) -> Option<DataType> {
    let first = || c.args.first().and_then(eval_type);
    match c.name.as_str() {
        "mean"
        | "median"
        | "integral"
        | "stddev"
        | "derivative"
        | "non_negative_derivative"
        | "moving_average"
        | "exponential_moving_average"
        | "double_exponential_moving_average"
        | "triple_exponential_moving_average"
        | "relative_strength_index"
        | "triple_exponential_derivative"
        | "kaufmans_efficiency_ratio"
        | "kaufmans_adaptive_moving_average"
        | "chande_momentum_oscillator"
        | "holt_winters"
        | "holt_winters_with_fit" => Some(DataType::Float),
        "count" | "elapsed" => Some(DataType::Integer),
        "sin" | "cos" | "tan" | "atan" | "exp" | "log" | "ln" | "log2" | "log10" | "sqrt"
        | "asin" | "acos" | "atan2" | "pow" => Some(DataType::Float),
        _ => first(),
    }
}

/// Whether a call is one of 1.6's math functions, which its planner looks through.
pub(super) fn is_math(c: &Call) -> bool {
    matches!(
        c.name.as_str(),
        "abs"
            | "sin"
            | "cos"
            | "tan"
            | "asin"
            | "acos"
            | "atan"
            | "atan2"
            | "exp"
            | "log"
            | "ln"
            | "log2"
            | "log10"
            | "sqrt"
            | "pow"
            | "floor"
            | "ceil"
            | "round"
    )
}

/// The qualified source's database, policy and name, for matching what was read.
pub(super) fn source_name(m: &Measurement) -> Option<(&str, &str, &MeasurementName)> {
    Some((
        m.database.as_deref()?,
        m.retention_policy.as_deref()?,
        &m.name,
    ))
}

fn data_type(kind: FieldType) -> DataType {
    match kind {
        FieldType::Float => DataType::Float,
        FieldType::Integer => DataType::Integer,
        FieldType::Unsigned => DataType::Unsigned,
        FieldType::String => DataType::String,
        FieldType::Boolean => DataType::Boolean,
    }
}

fn stored_type(kind: DataType) -> Option<FieldType> {
    Some(match kind {
        DataType::Float => FieldType::Float,
        DataType::Integer => FieldType::Integer,
        DataType::Unsigned => FieldType::Unsigned,
        DataType::String => FieldType::String,
        DataType::Boolean => FieldType::Boolean,
        DataType::Tag | DataType::AnyField => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::parser::ast::Statement;
    use crate::query::parser::parse_query;

    fn condition(q: &str) -> Option<Expr> {
        let Statement::Select(s) = &parse_query(q).unwrap()[0] else {
            panic!("{q} is no SELECT")
        };
        s.condition.clone()
    }

    /// The condition 1.6's iterators carry: its time terms gone, wherever they stand, and
    /// the parentheses that held them only.
    #[test]
    fn conditions_lose_their_time_terms_as_in_influxdb() {
        let stripped = |q: &str| {
            condition(q)
                .and_then(|c| without_time(&c))
                .map(|c| c.to_string())
        };
        for (q, expected) in [
            ("SELECT v FROM m WHERE time > 0", None),
            ("SELECT v FROM m WHERE time > 0 AND time < now()", None),
            (
                "SELECT v FROM m WHERE host = 'a' AND time > 0",
                Some("host = 'a'"),
            ),
            ("SELECT v FROM m WHERE 0 < time AND v > 1", Some("v > 1")),
            (
                "SELECT v FROM m WHERE time > 0 AND (host = 'a' OR v > 1)",
                Some("(host = 'a' OR v > 1)"),
            ),
            (
                "SELECT v FROM m WHERE (time > 0 AND host = 'a') OR v > 1",
                Some("(host = 'a') OR v > 1"),
            ),
            ("SELECT v FROM m WHERE (time > 0)", None),
        ] {
            assert_eq!(stripped(q).as_deref(), expected, "{q}");
        }
    }

    #[test]
    fn call_types_are_influxdbs() {
        let typed = |name: &str, arg: Option<DataType>| {
            call_type(&Call {
                name: name.into(),
                args: vec![Expr::VarRef(VarRef {
                    name: "v".into(),
                    data_type: arg,
                })],
            })
        };
        assert_eq!(typed("mean", None), Some(DataType::Float));
        assert_eq!(
            typed("count", Some(DataType::String)),
            Some(DataType::Integer)
        );
        assert_eq!(
            typed("max", Some(DataType::Integer)),
            Some(DataType::Integer)
        );
        // max() of a name no source holds is of no type: 1.6 plans nothing for it.
        assert_eq!(typed("max", None), None);
        assert_eq!(
            typed("derivative", Some(DataType::Integer)),
            Some(DataType::Float)
        );
    }
}
