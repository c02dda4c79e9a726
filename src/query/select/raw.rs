//! The answer of a statement without functions: its fields, tags and expressions of
//! fields row by row, grouped by the GROUP BY tags.

use crate::query::aggregate::merge::merged_rows;
use crate::query::error::QueryError;
use crate::query::parser::ast::{Expr, SelectStatement};
use crate::query::plan::{column_names, eval_row, reads_any, Node, Plan};
use crate::query::result::Series;
use crate::query::rows::{
    answer_row_bytes, descending, json_value, limit, SeriesRows, ROWS_PER_CHARGE,
};
use crate::query::scan::{Origin, Scan, SelectContext};
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
    // 1.x's order of rows of equal time, where it can be followed: that of its merges of
    // the series and sources read (see `merged_rows`).
    let origins = if !scan.origins.is_empty() {
        scan.origins.clone()
    } else {
        scan.shard_starts
            .clone()
            .map(Origin::Stored)
            .into_iter()
            .collect()
    };
    let aux = if origins.is_empty() {
        Vec::new()
    } else {
        aux_refs(stmt, &scan, &group_tags)
    };
    let desc = descending(stmt);
    let mut out = Vec::new();
    for (key, members) in groups {
        let mut rows: Vec<(i64, Vec<Value>)> = Vec::new();
        let mut own_rows: Vec<Vec<(i64, usize)>> = Vec::with_capacity(members.len());
        let mut aux_values: Vec<Vec<Option<String>>> = Vec::new();
        let mut charged = 0;
        for &s in &members {
            ctx.limits.check_deadline()?;
            let mut own = Vec::new();
            let stored = matches!(origins.get(s.source), Some(Origin::Stored(_)));
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
                    if !origins.is_empty() {
                        own.push((*time, rows.len()));
                        if !aux.is_empty() {
                            aux_values.push(aux_of(&aux, s, values, stored));
                        }
                    }
                    rows.push((*time, out));
                }
            }
            own_rows.push(own);
        }
        ctx.limits.charge((rows.len() - charged) * row_bytes)?;
        if origins.is_empty() {
            // Stable either way: rows of equal time keep their series order.
            if desc {
                rows.sort_by_key(|(t, _)| std::cmp::Reverse(*t));
            } else {
                rows.sort_by_key(|(t, _)| *t);
            }
        } else {
            let tie = |a: usize, b: usize| match (aux_values.get(a), aux_values.get(b)) {
                (Some(x), Some(y)) => aux_before(x, y, desc),
                _ => false,
            };
            let order = merged_rows(&members, own_rows, &origins, desc, &tie);
            let mut slots: Vec<Option<(i64, Vec<Value>)>> = rows.into_iter().map(Some).collect();
            rows = order
                .into_iter()
                .filter_map(|(_, id)| slots.get_mut(id).and_then(Option::take))
                .collect();
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

/// What 1.x's heap compares rows of equal time by: the statement's auxiliary values (the
/// fields and tags it reads, by name), each a field's index or a tag's key.
enum AuxRef {
    Field(Option<usize>),
    Tag(String),
}

/// The fields and tags the statement reads, sorted by name as 1.x sorts its auxiliary
/// references (`*` is every field and the tags not grouped by).
fn aux_refs(stmt: &SelectStatement, scan: &Scan, group_tags: &[String]) -> Vec<AuxRef> {
    fn walk(e: &Expr, names: &mut Vec<String>) {
        match e {
            Expr::VarRef(v) if v.name != "time" => names.push(v.name.clone()),
            Expr::Call(c) => c.args.iter().for_each(|a| walk(a, names)),
            Expr::Binary(b) => {
                walk(&b.lhs, names);
                walk(&b.rhs, names);
            }
            Expr::Paren(inner) => walk(inner, names),
            _ => {}
        }
    }
    let mut names = Vec::new();
    for f in &stmt.fields {
        match &f.expr {
            Expr::Wildcard(_) => {
                names.extend(scan.fields.iter().cloned());
                names.extend(
                    scan.tag_keys
                        .iter()
                        .filter(|t| !group_tags.contains(t))
                        .cloned(),
                );
            }
            e => walk(e, &mut names),
        }
    }
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| match scan.fields.iter().position(|f| *f == name) {
            Some(i) => AuxRef::Field(Some(i)),
            None if scan.tag_keys.contains(&name) => AuxRef::Tag(name),
            None => AuxRef::Field(None),
        })
        .collect()
}

/// A row's auxiliary values as 1.x's heap sees them: strings (a stored series' missing
/// tag is the empty string; a subquery's is no value), anything else no string.
fn aux_of(
    aux: &[AuxRef],
    s: &SeriesRows,
    values: &[Option<crate::line_protocol::FieldValue>],
    stored: bool,
) -> Vec<Option<String>> {
    aux.iter()
        .map(|a| match a {
            AuxRef::Field(i) => match i.and_then(|i| values.get(i)?.as_ref()) {
                Some(crate::line_protocol::FieldValue::String(v)) => Some(v.clone()),
                _ => None,
            },
            AuxRef::Tag(key) => match s.tags.iter().find(|(k, _)| k == key) {
                Some((_, v)) => Some(v.clone()),
                None => stored.then(String::new),
            },
        })
        .collect()
}

/// 1.x's comparison of two points' auxiliary values at equal times: the first that
/// differ decide, as long as both are strings; anything else ties.
fn aux_before(x: &[Option<String>], y: &[Option<String>], descending: bool) -> bool {
    for (a, b) in x.iter().zip(y) {
        match (a, b) {
            (Some(a), Some(b)) if a == b => continue,
            (Some(a), Some(b)) => return if descending { a > b } else { a < b },
            _ => return false,
        }
    }
    false
}
