//! What a SELECT computes per column: each field compiled to a tree of raw fields,
//! aggregates, transformations, math functions and arithmetic, checked with InfluxDB
//! 1.x's rules and error messages, and the column names 1.x gives them.

use super::calc::{self, Cell, MathFn};
use super::error::QueryError;
use super::format::go_duration;
use super::holt_winters::HoltWinters;
use super::parser::ast::{BinaryOp, DataType, Expr, Field, SelectStatement};
use super::transform::Transform;
use crate::line_protocol::FieldValue;
use crate::storage::column::FieldType;
use std::collections::{BTreeMap, HashMap};

const SECOND: i64 = 1_000_000_000;

#[derive(Debug, Clone)]
pub(super) enum Node {
    /// A raw field, by its index in the scan's fields (None: the field does not exist).
    Field(Option<usize>),
    Literal(FieldValue),
    /// An aggregate or selector, by its index in [`Plan::aggregates`].
    Aggregate(usize),
    Math(MathFn, Vec<Node>),
    Binary(BinaryOp, Box<Node>, Box<Node>),
    Transform(Transform, Box<Node>),
    /// The statement's selection ([`Plan::selection`]): its points' values.
    Selected,
    /// A tag of the selected point: of top/bottom/sample's points, or of the one selector
    /// (first, last, min, max, percentile) beside which a statement names it.
    Tag(String),
    /// A field of the selected point, by its index in the scan's fields, as for [`Node::Tag`]
    /// (None: the field does not exist).
    SelectedField(Option<usize>),
}

impl Node {
    /// Whether this node, or any node inside it, satisfies `pred`.
    pub(super) fn any(&self, pred: &impl Fn(&Node) -> bool) -> bool {
        pred(self)
            || match self {
                Node::Math(_, args) => args.iter().any(|a| a.any(pred)),
                Node::Binary(_, l, r) => l.any(pred) || r.any(pred),
                Node::Transform(_, inner) => inner.any(pred),
                Node::Field(_)
                | Node::Literal(_)
                | Node::Aggregate(_)
                | Node::Selected
                | Node::Tag(_)
                | Node::SelectedField(_) => false,
            }
    }
}

/// Functions that return several points per window.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Selection {
    /// Each value once, at the window's start, in order of first appearance.
    Distinct,
    /// The `n` points of greatest value (per combination of `tags` values, when given).
    Top {
        n: usize,
        tags: Vec<String>,
    },
    Bottom {
        n: usize,
        tags: Vec<String>,
    },
    /// `n` points chosen at random.
    Sample {
        n: usize,
    },
}

#[derive(Debug, Clone)]
pub(super) struct SelectionCall {
    pub selection: Selection,
    /// Index of the field in the scan's rows (None: the field does not exist).
    pub field: Option<usize>,
}

#[derive(Debug, Clone)]
pub(super) struct AggregateCall {
    pub func: Func,
    /// Index of the field in the scan's rows (None: the field does not exist).
    pub field: Option<usize>,
    /// Computed over one extra window before the range (see
    /// [`Transform::reads_window_before`]).
    pub window_before: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Fields and expressions of fields, row by row.
    Raw,
    /// Transformations of raw fields, over each group's points.
    Points,
    /// Aggregates per window (and whatever is computed from them).
    Windows,
}

pub(super) struct Plan {
    pub kind: Kind,
    pub fields: Vec<Node>,
    pub aggregates: Vec<AggregateCall>,
    pub selection: Option<SelectionCall>,
    /// Per field, the forecast it is when it is `holt_winters()` (its node is then the
    /// aggregate forecast): computed over a group's windows, its points at times of
    /// their own.
    pub holt_winters: Vec<Option<HoltWinters>>,
}

/// The longest forecast (`N`) and season (`S`) of holt_winters() served: the fit holds
/// the season's square, the answer the forecast's points.
const MAX_FORECAST: i64 = 1_000_000;
const MAX_SEASON: i64 = 10_000;

struct Compiler<'a> {
    scan_fields: &'a [String],
    interval: i64,
    aggregates: Vec<AggregateCall>,
    raw_refs: bool,
    raw_transforms: bool,
    descending: bool,
}

/// Compiles the statement's fields (none of them `*` or a tag: the raw path handles those).
pub(super) fn compile(
    stmt: &SelectStatement,
    scan_fields: &[String],
    interval: i64,
) -> Result<Plan, QueryError> {
    let mut c = Compiler {
        scan_fields,
        interval,
        aggregates: Vec::new(),
        raw_refs: false,
        raw_transforms: false,
        descending: super::rows::descending(stmt),
    };
    if let Some(plan) = c.selection_plan(stmt)? {
        return Ok(plan);
    }
    let mut holt_winters = Vec::new();
    let mut fields = Vec::new();
    // Fields and tags named alone, beside functions: the selected point's values (1.x's
    // auxiliary fields).
    let mut beside = false;
    for f in &stmt.fields {
        match &f.expr {
            Expr::VarRef(v) => {
                beside = true;
                holt_winters.push(None);
                let field = match v.data_type {
                    Some(DataType::Tag) => None,
                    _ => c.field(&v.name),
                };
                fields.push(match field {
                    Some(i) => Node::SelectedField(Some(i)),
                    // A tag, or a name that is neither (null, as a tag no series has).
                    None => Node::Tag(v.name.clone()),
                });
            }
            Expr::Call(call) if call.name.starts_with("holt_winters") => {
                let (hw, inner) = c.holt_winters(call)?;
                holt_winters.push(Some(hw));
                fields.push(inner);
            }
            e => {
                holt_winters.push(None);
                fields.push(c.expr(e, false)?);
            }
        }
    }
    if beside && c.aggregates.is_empty() && !c.raw_transforms {
        // Raw rows: the names are read row by row.
        c.raw_refs = true;
        for (f, node) in stmt.fields.iter().zip(fields.iter_mut()) {
            if let Expr::VarRef(v) = &f.expr {
                *node = Node::Field(c.field(&v.name));
            }
        }
    } else if beside && !c.raw_refs {
        // As 1.x validates them: beside one selector only.
        let transforms = fields
            .iter()
            .any(|n| n.any(&|n| matches!(n, Node::Transform(..))));
        if c.raw_transforms
            || transforms
            || holt_winters.iter().any(Option::is_some)
            || !c.aggregates.iter().all(|a| a.func.is_selector())
        {
            return Err(QueryError::invalid(
                "mixing aggregate and non-aggregate queries is not supported",
            ));
        }
        if c.aggregates.len() > 1 {
            return Err(QueryError::invalid(
                "mixing multiple selector functions with tags or fields is not supported",
            ));
        }
    }
    let kind = match (c.aggregates.is_empty(), c.raw_transforms) {
        (false, false) if !c.raw_refs => Kind::Windows,
        (true, true) if !c.raw_refs => Kind::Points,
        (true, false) => Kind::Raw,
        _ => {
            return Err(QueryError::invalid(
                "mixing aggregate and non-aggregate queries is not supported",
            ))
        }
    };
    if kind == Kind::Raw && interval > 0 {
        return Err(QueryError::invalid(
            "GROUP BY requires at least one aggregate function",
        ));
    }
    Ok(Plan {
        kind,
        fields,
        aggregates: c.aggregates,
        selection: None,
        holt_winters,
    })
}

impl Compiler<'_> {
    /// The plan of a statement selecting with top, bottom, sample or distinct, which 1.x
    /// allows beside tags only (and distinct beside nothing).
    fn selection_plan(&mut self, stmt: &SelectStatement) -> Result<Option<Plan>, QueryError> {
        let selecting = |e: &Expr| match e {
            Expr::Call(c) => matches!(c.name.as_str(), "top" | "bottom" | "sample" | "distinct"),
            Expr::Distinct(_) => true,
            _ => false,
        };
        let Some(at) = stmt.fields.iter().position(|f| selecting(&f.expr)) else {
            return Ok(None);
        };
        let (name, args) = match &stmt.fields[at].expr {
            Expr::Call(c) => (c.name.as_str(), c.args.clone()),
            Expr::Distinct(v) => ("distinct", vec![Expr::var(v)]),
            _ => unreachable!("checked by `selecting`"),
        };
        if stmt.fields.len() > 1 {
            if name == "distinct" {
                return Err(QueryError::invalid(
                    "aggregate function distinct() cannot be combined with other functions or \
                     fields",
                ));
            }
            if stmt
                .fields
                .iter()
                .enumerate()
                .any(|(i, f)| i != at && !matches!(f.expr, Expr::VarRef(_)))
            {
                return Err(QueryError::invalid(format!(
                    "selector function {name}() cannot be combined with other functions"
                )));
            }
        }
        let count = |e: &Expr| -> Result<usize, QueryError> {
            match e {
                Expr::Integer(n) if *n >= 1 => Ok(*n as usize),
                Expr::Integer(n) if name == "sample" => Err(QueryError::invalid(format!(
                    "sample window must be greater than 1, got {n}"
                ))),
                Expr::Integer(n) => Err(QueryError::invalid(format!(
                    "limit ({n}) in {name} function must be at least 1"
                ))),
                other => Err(QueryError::invalid(format!(
                    "expected integer as last argument in {name}(), found {other}"
                ))),
            }
        };
        let selection = match name {
            "distinct" if args.len() != 1 => return Err(arity(name, 1, args.len())),
            "distinct" => Selection::Distinct,
            "sample" if args.len() != 2 => return Err(arity(name, 2, args.len())),
            "sample" => Selection::Sample {
                n: count(&args[1])?,
            },
            _ if args.len() < 2 => {
                return Err(QueryError::invalid(format!(
                    "invalid number of arguments for {name}, expected at least 2, got {}",
                    args.len()
                )))
            }
            _ => {
                let n = count(&args[args.len() - 1])?;
                let tags = args[1..args.len() - 1]
                    .iter()
                    .map(|a| match a {
                        Expr::VarRef(v) => Ok(v.name.clone()),
                        other => Err(QueryError::invalid(format!(
                            "only fields or tags are allowed in {name}(), found {other}"
                        ))),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if name == "top" {
                    Selection::Top { n, tags }
                } else {
                    Selection::Bottom { n, tags }
                }
            }
        };
        if matches!(args[0], Expr::Wildcard(_) | Expr::Regex(_)) {
            return Err(QueryError::not_supported(format!(
                "{name}() of a wildcard or regular expression is not supported yet"
            )));
        }
        let Expr::VarRef(field) = &args[0] else {
            return Err(QueryError::invalid(format!(
                "expected first argument to be a field in {name}(), found {}",
                args[0]
            )));
        };
        let fields = stmt
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| match &f.expr {
                _ if i == at => Ok(Node::Selected),
                Expr::VarRef(v) => Ok(match self.field(&v.name) {
                    Some(i) => Node::SelectedField(Some(i)),
                    None => Node::Tag(v.name.clone()),
                }),
                _ => unreachable!("refused above: only names beside {name}()"),
            })
            .collect::<Result<Vec<_>, QueryError>>()?;
        Ok(Some(Plan {
            kind: Kind::Windows,
            holt_winters: vec![None; fields.len()],
            fields,
            aggregates: Vec::new(),
            selection: Some(SelectionCall {
                selection,
                field: self.field(&field.name),
            }),
        }))
    }

    /// `holt_winters(agg, N, S)` (or `holt_winters_with_fit`), its arguments checked in
    /// 1.x's order and words, and the node of the aggregate it forecasts.
    fn holt_winters(
        &mut self,
        call: &super::parser::ast::Call,
    ) -> Result<(HoltWinters, Node), QueryError> {
        let name = call.name.as_str();
        let with_fit = match name {
            "holt_winters" => false,
            "holt_winters_with_fit" => true,
            other => return Err(QueryError::invalid(format!("undefined function {other}()"))),
        };
        let args = &call.args;
        if args.len() != 3 {
            return Err(arity(name, 3, args.len()));
        }
        let h = match &args[1] {
            Expr::Integer(n) if *n <= 0 => {
                return Err(QueryError::invalid(format!(
                    "second arg to {name} must be greater than 0, got {n}"
                )))
            }
            Expr::Integer(n) => *n,
            _ => {
                return Err(QueryError::invalid(format!(
                    "expected integer argument as second arg in {name}"
                )))
            }
        };
        let m = match &args[2] {
            Expr::Integer(n) if *n < 0 => {
                return Err(QueryError::invalid(format!(
                    "third arg to {name} cannot be negative, got {n}"
                )))
            }
            Expr::Integer(n) => *n,
            _ => {
                return Err(QueryError::invalid(format!(
                    "expected integer argument as third arg in {name}"
                )))
            }
        };
        let Expr::Call(inner) = &args[0] else {
            return Err(QueryError::invalid(format!(
                "must use aggregate function with {name}"
            )));
        };
        if self.interval == 0 {
            return Err(QueryError::invalid(format!(
                "{name} aggregate requires a GROUP BY interval"
            )));
        }
        if h > MAX_FORECAST || m > MAX_SEASON {
            return Err(QueryError::invalid(format!(
                "{name} forecasts at most {MAX_FORECAST} points over seasons of at most \
                 {MAX_SEASON}"
            )));
        }
        let node = self.call(inner, false)?;
        let hw = HoltWinters {
            h: h as usize,
            m: m as usize,
            with_fit,
        };
        Ok((hw, node))
    }

    fn field(&self, name: &str) -> Option<usize> {
        self.scan_fields.iter().position(|f| f == name)
    }

    fn expr(&mut self, e: &Expr, window_before: bool) -> Result<Node, QueryError> {
        Ok(match e {
            Expr::VarRef(v) => {
                self.raw_refs = true;
                Node::Field(self.field(&v.name))
            }
            Expr::Wildcard(_) => {
                self.raw_refs = true;
                Node::Field(None)
            }
            Expr::Paren(inner) => self.expr(inner, window_before)?,
            Expr::Integer(i) => Node::Literal(FieldValue::Integer(*i)),
            Expr::Unsigned(u) => Node::Literal(FieldValue::Unsigned(*u)),
            Expr::Number(x) => Node::Literal(FieldValue::Float(*x)),
            Expr::Boolean(b) => Node::Literal(FieldValue::Boolean(*b)),
            Expr::Binary(b) if !b.op.is_comparison_or_logical() => Node::Binary(
                b.op,
                Box::new(self.expr(&b.lhs, window_before)?),
                Box::new(self.expr(&b.rhs, window_before)?),
            ),
            Expr::Call(call) => self.call(call, window_before)?,
            other => {
                return Err(QueryError::not_supported(format!(
                    "{other} in SELECT is not supported yet"
                )))
            }
        })
    }

    fn call(
        &mut self,
        call: &super::parser::ast::Call,
        window_before: bool,
    ) -> Result<Node, QueryError> {
        let name = call.name.as_str();
        let args = &call.args;
        if let Some(f) = MathFn::parse(name) {
            if args.len() != f.arity() {
                return Err(arity(name, f.arity(), args.len()));
            }
            let args = args
                .iter()
                .map(|a| self.expr(a, window_before))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Node::Math(f, args));
        }
        if let Some(t) = self.transform(name, args)? {
            let inner = match args.first() {
                Some(Expr::VarRef(v)) => {
                    if self.interval > 0 {
                        return Err(QueryError::invalid(format!(
                            "aggregate function required inside the call to {name}"
                        )));
                    }
                    self.raw_transforms = true;
                    Node::Field(self.field(&v.name))
                }
                Some(Expr::Call(inner)) if Func::parse(&inner.name).is_some() => {
                    if self.interval == 0 {
                        return Err(QueryError::invalid(format!(
                            "{name} aggregate requires a GROUP BY interval"
                        )));
                    }
                    self.call(inner, t.reads_window_before())?
                }
                _ => {
                    return Err(QueryError::not_supported(format!(
                        "{name}() of anything but a field or an aggregate is not supported yet"
                    )))
                }
            };
            return Ok(Node::Transform(t, Box::new(inner)));
        }
        if matches!(
            name,
            "top" | "bottom" | "sample" | "distinct" | "holt_winters" | "holt_winters_with_fit"
        ) {
            return Err(QueryError::not_supported(format!(
                "{name}() inside an expression is not supported yet"
            )));
        }
        let mut func = Func::parse(name)
            .ok_or_else(|| QueryError::not_supported(format!("{name}() is not supported yet")))?;
        match func {
            Func::Percentile(_) => {
                if args.len() != 2 {
                    return Err(arity(name, 2, args.len()));
                }
                func = Func::Percentile(match &args[1] {
                    Expr::Integer(i) => *i as f64,
                    Expr::Number(x) => *x,
                    _ => {
                        return Err(QueryError::invalid(
                            "expected float argument in percentile()",
                        ))
                    }
                });
            }
            Func::Integral(_) => {
                if args.is_empty() || args.len() > 2 {
                    return Err(QueryError::invalid(format!(
                        "invalid number of arguments for integral, expected at least 1 but \
                         no more than 2, got {}",
                        args.len()
                    )));
                }
                if let Some(unit) = args.get(1) {
                    func = Func::Integral(positive_duration(name, unit)?);
                }
            }
            _ if args.len() != 1 => return Err(arity(name, 1, args.len())),
            _ => {}
        }
        let field = match (&args[0], func) {
            (Expr::VarRef(v), _) => self.field(&v.name),
            (Expr::Call(d), Func::Count) if d.name == "distinct" => {
                func = Func::CountDistinct;
                match d.args.as_slice() {
                    [Expr::VarRef(v)] => self.field(&v.name),
                    _ => {
                        return Err(QueryError::invalid(
                            "distinct function requires at least one argument",
                        ))
                    }
                }
            }
            (Expr::Distinct(v), Func::Count) => {
                func = Func::CountDistinct;
                self.field(v)
            }
            // Calls of `*` or a regex that stand alone were expanded
            // (`expand_wildcard_calls`): this one is inside an expression.
            (Expr::Wildcard(_), _) => {
                return Err(QueryError::invalid(format!(
                    "unsupported expression with wildcard: {name}()"
                )))
            }
            (Expr::Regex(_), _) => {
                return Err(QueryError::invalid(format!(
                    "unsupported expression with regex field: {name}()"
                )))
            }
            _ => {
                return Err(QueryError::invalid(format!(
                    "expected field argument in {name}()"
                )))
            }
        };
        self.aggregates.push(AggregateCall {
            func,
            field,
            window_before,
        });
        Ok(Node::Aggregate(self.aggregates.len() - 1))
    }

    /// The transformation a call names, its arguments checked as 1.x checks them.
    fn transform(&self, name: &str, args: &[Expr]) -> Result<Option<Transform>, QueryError> {
        let non_negative = name.starts_with("non_negative_");
        Ok(Some(match name {
            "derivative" | "non_negative_derivative" | "elapsed" => {
                if args.is_empty() || args.len() > 2 {
                    return Err(QueryError::invalid(format!(
                        "invalid number of arguments for {name}, expected at least 1 but no \
                         more than 2, got {}",
                        args.len()
                    )));
                }
                let unit = match args.get(1) {
                    None if name == "elapsed" => 1,
                    None if self.interval > 0 => self.interval,
                    None => SECOND,
                    Some(unit) => positive_duration(name, unit)?,
                };
                if name == "elapsed" {
                    Transform::Elapsed { unit }
                } else {
                    Transform::Derivative {
                        unit,
                        non_negative,
                        descending: self.descending,
                    }
                }
            }
            "difference" | "non_negative_difference" | "cumulative_sum" => {
                if args.len() != 1 {
                    return Err(arity(name, 1, args.len()));
                }
                if name == "cumulative_sum" {
                    Transform::CumulativeSum
                } else {
                    Transform::Difference { non_negative }
                }
            }
            "moving_average" => {
                if args.len() != 2 {
                    return Err(arity(name, 2, args.len()));
                }
                match &args[1] {
                    Expr::Integer(n) if *n <= 1 => {
                        return Err(QueryError::invalid(format!(
                            "moving_average window must be greater than 1, got {n}"
                        )))
                    }
                    Expr::Integer(n) => Transform::MovingAverage {
                        points: usize::try_from(*n)
                            .map_err(|_| QueryError::invalid("window too large"))?,
                    },
                    other => {
                        return Err(QueryError::invalid(format!(
                            "second argument for moving_average must be an integer, got {}",
                            go_type(other)
                        )))
                    }
                }
            }
            _ => return Ok(None),
        }))
    }
}

/// Whether a field transforms an aggregate with a transformation that reads the window
/// before the range, decided from the statement alone (before the scan that needs it).
pub(super) fn reads_window_before(stmt: &SelectStatement) -> bool {
    fn walk(e: &Expr) -> bool {
        match e {
            Expr::Call(c) => {
                let nested = matches!(c.args.first(), Some(Expr::Call(_)));
                let reads = matches!(
                    c.name.as_str(),
                    "derivative"
                        | "non_negative_derivative"
                        | "difference"
                        | "non_negative_difference"
                        | "moving_average"
                        | "elapsed"
                );
                (nested && reads) || c.args.iter().any(walk)
            }
            Expr::Binary(b) => walk(&b.lhs) || walk(&b.rhs),
            Expr::Paren(e) => walk(e),
            _ => false,
        }
    }
    stmt.fields.iter().any(|f| walk(&f.expr))
}

/// The statement with each call of `*` or a regex (`mean(*)`, `derivative(mean(/us/))`)
/// replaced by one call per field it matches (fields in name order, as `fields` holds them
/// with their types), named `<name>_<field>`, as 1.x rewrites them. A field is matched
/// only where the innermost function takes its type: count, first, last, distinct,
/// elapsed, mode and sample any; min and max numbers and booleans; the others numbers.
pub(super) fn expand_wildcard_calls(
    stmt: &SelectStatement,
    fields: &BTreeMap<String, FieldType>,
) -> Result<SelectStatement, QueryError> {
    // The innermost call and its pattern, if the expression is calls around `*` or a regex.
    fn pattern(e: &Expr) -> Option<(&str, &Expr)> {
        let Expr::Call(c) = e else { return None };
        match c.args.first()? {
            arg @ (Expr::Wildcard(_) | Expr::Regex(_)) => Some((c.name.as_str(), arg)),
            inner => pattern(inner),
        }
    }
    fn substitute(e: &Expr, field: &str) -> Expr {
        match e {
            Expr::Call(c) => {
                let mut c = c.clone();
                if let Some(first) = c.args.first_mut() {
                    let replaced = match &*first {
                        Expr::Wildcard(_) | Expr::Regex(_) => Expr::var(field),
                        inner => substitute(inner, field),
                    };
                    *first = replaced;
                }
                Expr::Call(c)
            }
            other => other.clone(),
        }
    }
    // 1.x counts a call of `*` or a regex as no selector (whatever it expands to), so
    // fields or tags beside it mix an aggregate with raw values; its checks of top(),
    // bottom() and distinct() come first.
    let beside = stmt
        .fields
        .iter()
        .any(|f| matches!(f.expr, Expr::VarRef(_) | Expr::Wildcard(_) | Expr::Regex(_)));
    fn selects(e: &Expr) -> bool {
        match e {
            Expr::Call(c) => {
                matches!(c.name.as_str(), "top" | "bottom" | "distinct")
                    || c.args.iter().any(selects)
            }
            Expr::Distinct(_) => true,
            Expr::Binary(b) => selects(&b.lhs) || selects(&b.rhs),
            Expr::Paren(e) => selects(e),
            _ => false,
        }
    }
    let selection = stmt.fields.iter().any(|f| selects(&f.expr));
    if beside && !selection && stmt.fields.iter().any(|f| pattern(&f.expr).is_some()) {
        return Err(QueryError::invalid(
            "mixing aggregate and non-aggregate queries is not supported",
        ));
    }
    let names = column_names(&stmt.fields);
    let mut out = stmt.clone();
    out.fields.clear();
    for (field, name) in stmt.fields.iter().zip(names) {
        let Some((innermost, arg)) = pattern(&field.expr) else {
            out.fields.push(field.clone());
            continue;
        };
        let regex = match arg {
            Expr::Regex(r) => Some(regex::Regex::new(&r.pattern)?),
            _ => None,
        };
        for (key, kind) in fields {
            let takes = match innermost {
                "count" | "first" | "last" | "distinct" | "elapsed" | "mode" | "sample" => true,
                "min" | "max" => !matches!(kind, FieldType::String),
                _ => !matches!(kind, FieldType::String | FieldType::Boolean),
            };
            if takes && regex.as_ref().is_none_or(|r| r.is_match(key)) {
                out.fields.push(Field {
                    expr: substitute(&field.expr, key),
                    alias: Some(format!("{name}_{key}")),
                });
            }
        }
    }
    Ok(out)
}

/// Refuses arithmetic on strings and booleans (bitwise operators excepted for booleans)
/// as 1.x does, naming the expression with its fields' types. `field_type` gives a field's
/// type (None: unknown, which passes).
pub(super) fn check_types(
    stmt: &SelectStatement,
    field_type: &dyn Fn(&str) -> Option<DataType>,
) -> Result<(), QueryError> {
    fn typed(e: &Expr, field_type: &dyn Fn(&str) -> Option<DataType>) -> Expr {
        match e {
            Expr::VarRef(v) => {
                let mut v = v.clone();
                v.data_type = v.data_type.or_else(|| field_type(&v.name));
                Expr::VarRef(v)
            }
            Expr::Paren(inner) => Expr::Paren(Box::new(typed(inner, field_type))),
            Expr::Binary(b) => {
                Expr::binary(b.op, typed(&b.lhs, field_type), typed(&b.rhs, field_type))
            }
            other => other.clone(),
        }
    }
    fn type_of(e: &Expr) -> Option<DataType> {
        match e {
            Expr::VarRef(v) => v.data_type,
            Expr::Paren(inner) => type_of(inner),
            Expr::Integer(_) => Some(DataType::Integer),
            Expr::Number(_) => Some(DataType::Float),
            Expr::String(_) => Some(DataType::String),
            Expr::Boolean(_) => Some(DataType::Boolean),
            Expr::Binary(b) => match (type_of(&b.lhs)?, type_of(&b.rhs)?) {
                (DataType::Boolean, DataType::Boolean) => Some(DataType::Boolean),
                (DataType::Integer, DataType::Integer) if b.op == BinaryOp::Div => {
                    Some(DataType::Float)
                }
                (DataType::Integer, DataType::Integer) => Some(DataType::Integer),
                _ => Some(DataType::Float),
            },
            _ => None,
        }
    }
    fn check(whole: &Expr, e: &Expr) -> Result<(), QueryError> {
        match e {
            Expr::Paren(inner) => check(whole, inner),
            Expr::Binary(b) if !b.op.is_comparison_or_logical() => {
                check(whole, &b.lhs)?;
                check(whole, &b.rhs)?;
                let (Some(l), Some(r)) = (type_of(&b.lhs), type_of(&b.rhs)) else {
                    return Ok(());
                };
                let bitwise = matches!(b.op, BinaryOp::BitAnd | BinaryOp::BitOr | BinaryOp::BitXor);
                let fine = match (l, r) {
                    (DataType::String, _) | (_, DataType::String) => false,
                    (DataType::Boolean, DataType::Boolean) => bitwise,
                    (DataType::Boolean, _) | (_, DataType::Boolean) => false,
                    _ => true,
                };
                if fine {
                    return Ok(());
                }
                Err(QueryError::invalid(format!(
                    "type error: {whole}: incompatible types: {} and {}",
                    l.as_str(),
                    r.as_str()
                )))
            }
            _ => Ok(()),
        }
    }
    for f in &stmt.fields {
        let e = typed(&f.expr, field_type);
        check(&e, &e)?;
    }
    Ok(())
}

fn positive_duration(name: &str, e: &Expr) -> Result<i64, QueryError> {
    match e {
        Expr::Duration(d) if *d <= 0 => Err(QueryError::invalid(format!(
            "duration argument must be positive, got {}",
            go_duration(*d)
        ))),
        Expr::Duration(d) => Ok(*d),
        other => Err(QueryError::invalid(format!(
            "second argument to {name} must be a duration, got {}",
            go_type(other)
        ))),
    }
}

fn arity(name: &str, expected: usize, got: usize) -> QueryError {
    QueryError::invalid(format!(
        "invalid number of arguments for {name}, expected {expected}, got {got}"
    ))
}

/// The Go type 1.x names in its argument errors.
fn go_type(e: &Expr) -> &'static str {
    match e {
        Expr::Integer(_) | Expr::Unsigned(_) => "*influxql.IntegerLiteral",
        Expr::Number(_) => "*influxql.NumberLiteral",
        Expr::String(_) => "*influxql.StringLiteral",
        Expr::Boolean(_) => "*influxql.BooleanLiteral",
        Expr::Duration(_) => "*influxql.DurationLiteral",
        Expr::VarRef(_) => "*influxql.VarRef",
        Expr::Call(_) => "*influxql.Call",
        Expr::Binary(_) => "*influxql.BinaryExpr",
        Expr::Paren(_) => "*influxql.ParenExpr",
        _ => "*influxql.Expr",
    }
}

/// Output column names as 1.x derives them: the alias, else the call's name, the field's
/// name, or for arithmetic the names of its fields and calls joined by `_`; a name taken
/// already gets the first free `_1`, `_2`, ... suffix.
pub(super) fn column_names(fields: &[Field]) -> Vec<String> {
    fn base(e: &Expr, out: &mut Vec<String>) {
        match e {
            Expr::Call(c) => out.push(c.name.clone()),
            Expr::VarRef(v) => out.push(v.name.clone()),
            Expr::Distinct(_) => out.push("distinct".into()),
            Expr::Paren(e) => base(e, out),
            Expr::Binary(b) => {
                base(&b.lhs, out);
                base(&b.rhs, out);
            }
            _ => {}
        }
    }
    let mut taken: HashMap<String, usize> = HashMap::new();
    let mut names: Vec<Option<String>> = fields.iter().map(|f| f.alias.clone()).collect();
    for n in names.iter().flatten() {
        taken.insert(n.clone(), 1);
    }
    for (field, slot) in fields.iter().zip(names.iter_mut()) {
        if slot.is_some() {
            continue;
        }
        let mut parts = Vec::new();
        base(&field.expr, &mut parts);
        let mut name = parts.join("_");
        if let Some(&count) = taken.get(&name) {
            let mut count = count;
            loop {
                let candidate = format!("{name}_{count}");
                if !taken.contains_key(&candidate) {
                    taken.insert(name.clone(), count + 1);
                    name = candidate;
                    break;
                }
                count += 1;
            }
        }
        *taken.entry(name.clone()).or_insert(0) += 1;
        *slot = Some(name);
    }
    names.into_iter().flatten().collect()
}

/// A node's value for one raw row (`values`: the row's value per scanned field).
pub(super) fn eval_row(node: &Node, values: &[Option<FieldValue>]) -> Option<FieldValue> {
    match node {
        Node::Field(i) => values.get((*i)?)?.clone(),
        Node::Literal(v) => Some(v.clone()),
        Node::Math(f, args) => {
            let v = eval_row(&args[0], values)?;
            let arg = match args.get(1) {
                Some(a) => Some(eval_row(a, values)?),
                None => None,
            };
            f.apply(&v, arg.as_ref())
        }
        Node::Binary(op, l, r) => calc::binary(*op, &eval_row(l, values)?, &eval_row(r, values)?),
        // Only raw plans are evaluated row by row.
        Node::Aggregate(_)
        | Node::Transform(..)
        | Node::Selected
        | Node::Tag(_)
        | Node::SelectedField(_) => None,
    }
}

/// Whether a raw row has a value for a field the node reads (rows with none are skipped).
pub(super) fn reads_any(node: &Node, values: &[Option<FieldValue>]) -> bool {
    match node {
        Node::Field(i) => i.and_then(|i| values.get(i)).is_some_and(Option::is_some),
        Node::Math(_, args) => args.iter().any(|a| reads_any(a, values)),
        Node::Binary(_, l, r) => reads_any(l, values) || reads_any(r, values),
        _ => false,
    }
}

/// A node's column over a sequence of rows, or a constant.
pub(super) enum Column {
    /// A literal (None: an expression of literals that is null).
    Constant(Option<FieldValue>),
    Cells(Vec<Cell>),
}

/// Evaluates a node over rows at `times`: `leaf` gives the column of a raw field or an
/// aggregate.
pub(super) fn eval_column(
    node: &Node,
    times: &[i64],
    leaf: &dyn Fn(&Node) -> Vec<Cell>,
) -> Result<Column, QueryError> {
    Ok(match node {
        Node::Literal(v) => Column::Constant(Some(v.clone())),
        Node::Field(_)
        | Node::Aggregate(_)
        | Node::Selected
        | Node::Tag(_)
        | Node::SelectedField(_) => Column::Cells(leaf(node)),
        Node::Transform(t, inner) => {
            let input = match eval_column(inner, times, leaf)? {
                Column::Cells(c) => c,
                Column::Constant(_) => {
                    return Err(QueryError::invalid(format!("{}() of a constant", t.name())))
                }
            };
            Column::Cells(t.apply(times, &input)?)
        }
        Node::Math(f, args) => {
            let value = eval_column(&args[0], times, leaf)?;
            let arg = match args.get(1) {
                Some(a) => Some(eval_column(a, times, leaf)?),
                None => None,
            };
            combine(value, arg, times.len(), &|v, a| f.apply(v, a))
        }
        Node::Binary(op, l, r) => {
            let (l, r) = (eval_column(l, times, leaf)?, eval_column(r, times, leaf)?);
            combine(l, Some(r), times.len(), &|a, b| calc::binary(*op, a, b?))
        }
    })
}

/// Cell by cell `f(a, b)`: a row has a point if either side has one (null if the other
/// side has none); constants have no rows of their own.
fn combine(
    a: Column,
    b: Option<Column>,
    rows: usize,
    f: &dyn Fn(&FieldValue, Option<&FieldValue>) -> Option<FieldValue>,
) -> Column {
    // Whether a column has a point at a row, and its value there.
    fn at(c: &Column, row: usize) -> (bool, Option<&FieldValue>) {
        match c {
            Column::Constant(v) => (false, v.as_ref()),
            Column::Cells(cells) => (cells[row].is_present(), cells[row].value()),
        }
    }
    let apply = |x: Option<&FieldValue>, y: Option<Option<&FieldValue>>| match y {
        None => f(x?, None),
        Some(y) => f(x?, Some(y?)),
    };
    if let (Column::Constant(x), None | Some(Column::Constant(_))) = (&a, &b) {
        let y = b.as_ref().map(|b| at(b, 0).1);
        return Column::Constant(apply(x.as_ref(), y));
    }
    Column::Cells(
        (0..rows)
            .map(|row| {
                let (has_a, x) = at(&a, row);
                let (has_b, y) = b.as_ref().map_or((false, None), |b| {
                    let (has, y) = at(b, row);
                    (has, Some(y))
                });
                if has_a || has_b {
                    apply(x, y).map_or(Cell::Null, Cell::Value)
                } else {
                    Cell::Absent
                }
            })
            .collect(),
    )
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Func {
    Count,
    /// `count(distinct(field))`
    CountDistinct,
    Mode,
    /// The nearest-rank percentile (0 to 100).
    Percentile(f64),
    /// Area under the points (trapezoids), per `unit` nanoseconds.
    Integral(i64),
    Sum,
    Mean,
    Median,
    Min,
    Max,
    First,
    Last,
    Spread,
    Stddev,
}

impl Func {
    pub(super) fn parse(name: &str) -> Option<Func> {
        Some(match name {
            "count" => Func::Count,
            "sum" => Func::Sum,
            "mean" => Func::Mean,
            "median" => Func::Median,
            "min" => Func::Min,
            "max" => Func::Max,
            "first" => Func::First,
            "last" => Func::Last,
            "spread" => Func::Spread,
            "stddev" => Func::Stddev,
            "mode" => Func::Mode,
            "percentile" => Func::Percentile(50.0),
            "integral" => Func::Integral(1_000_000_000),
            _ => return None,
        })
    }

    /// Selectors return one of the points, with its own time when the query has no time
    /// windows.
    pub(super) fn is_selector(self) -> bool {
        matches!(
            self,
            Func::Min | Func::Max | Func::First | Func::Last | Func::Percentile(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::parser::parse_query;
    use crate::query::parser::Statement;

    fn select(q: &str) -> SelectStatement {
        match parse_query(q).unwrap().remove(0) {
            Statement::Select(s) => *s,
            other => panic!("not a select: {other}"),
        }
    }

    #[test]
    fn columns_are_named_as_in_influxdb() {
        let s = select(
            "SELECT usage + count, usage * 2, count, count / 2, mean(x) * 100 AS m, \
             max(a) + min(b), count FROM cpu",
        );
        assert_eq!(
            column_names(&s.fields),
            [
                "usage_count",
                "usage",
                "count",
                "count_1",
                "m",
                "max_min",
                "count_2"
            ]
        );
    }

    #[test]
    fn transformations_follow_1x_rules() {
        let fields = ["usage".to_owned()];
        let err = |q: &str, interval| {
            compile(&select(q), &fields, interval)
                .err()
                .unwrap()
                .to_string()
        };
        assert_eq!(
            err("SELECT derivative(usage) FROM cpu", 60),
            "aggregate function required inside the call to derivative"
        );
        assert_eq!(
            err("SELECT derivative(mean(usage)) FROM cpu", 0),
            "derivative aggregate requires a GROUP BY interval"
        );
        assert_eq!(
            err("SELECT derivative(usage), usage FROM cpu", 0),
            "mixing aggregate and non-aggregate queries is not supported"
        );
        assert_eq!(
            err("SELECT moving_average(usage, 1) FROM cpu", 0),
            "moving_average window must be greater than 1, got 1"
        );
        let plan = compile(
            &select("SELECT derivative(mean(usage)) FROM cpu"),
            &fields,
            60,
        );
        let plan = plan.unwrap();
        assert_eq!(plan.kind, Kind::Windows);
        assert!(plan.aggregates[0].window_before);
    }
}
