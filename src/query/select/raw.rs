//! The answer of a statement without functions: its fields, tags and expressions of
//! fields row by row, grouped by the GROUP BY tags.

use crate::query::error::QueryError;
use crate::query::parser::ast::{Expr, SelectStatement};
use crate::query::plan::{column_names, eval_row, reads_any, Node, Plan};
use crate::query::result::Series;
use crate::query::rows::{
    answer_row_bytes, descending, json_value, limit, SeriesRows, ROWS_PER_CHARGE,
};
use crate::query::scan::{Scan, SelectContext};
use serde_json::Value;
use std::collections::BTreeMap;

enum Output<'a> {
    Field(usize),
    Tag(String),
    /// A compiled expression of fields.
    Expr(&'a Node),
}

pub(super) fn raw(
    stmt: &SelectStatement,
    ctx: &SelectContext<'_>,
    scan: Scan,
    plan: Option<&Plan>,
) -> Result<Vec<Series>, QueryError> {
    let field_index = |name: &str| scan.fields.iter().position(|f| f == name);
    let names = column_names(&stmt.fields);
    // GROUP BY tags: a series per combination of their values, without them in `*`.
    let group_tags = crate::query::aggregate::group_tags(stmt, &scan.tag_keys)?;
    let mut outputs: Vec<(String, Output)> = Vec::new();
    for (index, field) in stmt.fields.iter().enumerate() {
        match &field.expr {
            Expr::Wildcard(_) => {
                let mut all: Vec<(String, Output)> = scan
                    .fields
                    .iter()
                    .enumerate()
                    .map(|(i, f)| (f.clone(), Output::Field(i)))
                    .collect();
                all.extend(
                    scan.tag_keys
                        .iter()
                        .filter(|t| !group_tags.contains(t))
                        .map(|t| (t.clone(), Output::Tag(t.clone()))),
                );
                all.sort_by(|a, b| a.0.cmp(&b.0));
                outputs.extend(all);
            }
            Expr::VarRef(v) if v.name == "time" => {}
            Expr::VarRef(v) => {
                let name = names[index].clone();
                let as_tag = matches!(v.data_type, Some(crate::query::parser::ast::DataType::Tag))
                    || (!scan.field_keys.contains(&v.name) && scan.tag_keys.contains(&v.name));
                let out = match (as_tag, field_index(&v.name)) {
                    (false, Some(i)) => Output::Field(i),
                    (false, None) if !scan.tag_keys.contains(&v.name) => Output::Field(usize::MAX),
                    _ => Output::Tag(v.name.clone()),
                };
                outputs.push((name, out));
            }
            _ => match plan {
                Some(p) => outputs.push((names[index].clone(), Output::Expr(&p.fields[index]))),
                None => {
                    return Err(QueryError::not_supported(format!(
                        "{} in SELECT is not supported yet",
                        field.expr
                    )))
                }
            },
        }
    }
    if scan.field_keys.is_empty() {
        return Ok(Vec::new()); // no such measurement (or no data in range): empty, not an error
    }
    if !outputs
        .iter()
        .any(|(_, o)| matches!(o, Output::Field(_) | Output::Expr(_)))
    {
        return Err(QueryError::invalid(
            "statement must have at least one field in select clause",
        ));
    }
    let mut columns = vec!["time".to_owned()];
    columns.extend(outputs.iter().map(|(name, _)| name.clone()));

    let mut groups: BTreeMap<Vec<(String, String)>, Vec<&SeriesRows>> = BTreeMap::new();
    for s in &scan.series {
        let key = group_tags
            .iter()
            .map(|k| {
                let value = s.tags.iter().find(|(t, _)| t == k).map(|(_, v)| v);
                (k.clone(), value.cloned().unwrap_or_default())
            })
            .collect();
        groups.entry(key).or_default().push(s);
    }
    let row_bytes = answer_row_bytes(columns.len());
    let mut out = Vec::new();
    for (key, members) in groups {
        let mut rows: Vec<(i64, Vec<Value>)> = Vec::new();
        let mut charged = 0;
        for s in members {
            ctx.limits.check_deadline()?;
            for (time, values) in s.rows() {
                if rows.len() - charged >= ROWS_PER_CHARGE {
                    ctx.limits.charge((rows.len() - charged) * row_bytes)?;
                    ctx.limits.check_deadline()?;
                    charged = rows.len();
                }
                let mut out = Vec::with_capacity(columns.len());
                let mut any_field = false;
                for (_, o) in &outputs {
                    out.push(match o {
                        Output::Field(i) => match values.get(*i).and_then(Option::as_ref) {
                            Some(v) => {
                                any_field = true;
                                json_value(v)
                            }
                            None => Value::Null,
                        },
                        Output::Expr(node) => {
                            any_field |= reads_any(node, values);
                            eval_row(node, values).map_or(Value::Null, |v| json_value(&v))
                        }
                        Output::Tag(t) => s
                            .tags
                            .iter()
                            .find(|(k, _)| k == t)
                            .map_or(Value::Null, |(_, v)| Value::from(v.clone())),
                    });
                }
                if any_field {
                    rows.push((*time, out));
                }
            }
        }
        ctx.limits.charge((rows.len() - charged) * row_bytes)?;
        // Stable either way: rows of equal time keep their series order.
        if descending(stmt) {
            rows.sort_by_key(|(t, _)| std::cmp::Reverse(*t));
        } else {
            rows.sort_by_key(|(t, _)| *t);
        }
        let values = ctx.page(rows, stmt.offset, stmt.limit);
        if values.is_empty() {
            continue;
        }
        out.push(Series {
            name: scan.measurement.clone(),
            tags: (!group_tags.is_empty()).then(|| key.into_iter().collect()),
            columns: columns.clone(),
            values,
        });
    }
    let mut out: Vec<Series> = out
        .into_iter()
        .skip(stmt.soffset as usize)
        .take(limit(stmt.slimit))
        .collect();
    // As for aggregates: SLIMIT picks in tag order, the query's order orders the series.
    if descending(stmt) {
        out.reverse();
    }
    Ok(out)
}
