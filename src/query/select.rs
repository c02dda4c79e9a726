//! Raw `SELECT`s: fields and tags of one measurement, filtered, in time order.
//! Aggregates, GROUP BY, fill and subqueries come with the InfluxQL issue; until then they
//! are refused with a clear error, never answered wrongly.

use super::eval::{matches, series_may_match, time_range, Regexes, Row};
use super::parser::ast::{Expr, MeasurementName, SelectStatement, SortField, Source};
use super::result::{float_value, Series};
use crate::catalog::Catalog;
use crate::line_protocol::FieldValue;
use crate::storage::column::Column;
use crate::storage::Storage;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

pub struct SelectContext<'a> {
    pub storage: &'a Storage,
    pub catalog: &'a Catalog,
    pub database: Option<&'a str>,
    pub now: i64,
    /// Nanoseconds per unit of `epoch=`, or None for RFC 3339 times.
    pub epoch: Option<i64>,
}

enum Output {
    Field(String),
    Tag(String),
}

struct SeriesData {
    tags: Vec<(String, String)>,
    fields: HashMap<String, Vec<Column>>,
}

pub fn execute(stmt: &SelectStatement, ctx: &SelectContext<'_>) -> Result<Vec<Series>, String> {
    if stmt.target.is_some() {
        return Err("SELECT ... INTO is not supported yet".into());
    }
    if !stmt.dimensions.is_empty() || stmt.fill.is_some() {
        return Err("GROUP BY and fill() are not supported yet".into());
    }
    let [Source::Measurement(source)] = stmt.sources.as_slice() else {
        return Err(
            "selecting from several measurements or subqueries is not supported yet".into(),
        );
    };
    let MeasurementName::Name(measurement) = &source.name else {
        return Err(
            "selecting from a regular expression of measurements is not supported yet".into(),
        );
    };
    let database = source
        .database
        .as_deref()
        .or(ctx.database)
        .ok_or("database name required")?;
    let db = ctx
        .catalog
        .databases
        .get(database)
        .ok_or_else(|| format!("database not found: {database}"))?;
    let policy = source
        .retention_policy
        .clone()
        .unwrap_or_else(|| db.default_policy.clone());
    if !db.policies.contains_key(&policy) {
        return Err(format!("retention policy not found: {policy}"));
    }
    let mut regexes = Regexes::default();
    if let Some(cond) = &stmt.condition {
        Regexes::compile(cond, &mut regexes)?;
    }
    let (start, end) = time_range(stmt.condition.as_ref(), ctx.now);

    // Gather every series of the measurement from the shards the time range touches.
    let mut series: BTreeMap<String, SeriesData> = BTreeMap::new();
    let mut field_keys: HashSet<String> = HashSet::new();
    let mut tag_keys: BTreeSet<String> = BTreeSet::new();
    for shard in ctx.storage.shards_of(database, Some(&policy)) {
        if shard.info.end <= start || shard.info.start > end {
            continue;
        }
        field_keys.extend(shard.field_types(measurement).into_keys());
        let keep = |tags: &[(String, String)]| {
            series_may_match(stmt.condition.as_ref(), tags, &field_keys, &regexes)
        };
        for s in shard
            .series_of(measurement, start, end, &keep)
            .map_err(|e| e.to_string())?
        {
            tag_keys.extend(s.tags.iter().map(|(k, _)| k.clone()));
            let entry = series.entry(s.key).or_insert_with(|| SeriesData {
                tags: s.tags,
                fields: HashMap::new(),
            });
            for (name, parts) in s.fields {
                entry.fields.entry(name).or_default().extend(parts);
            }
        }
    }

    let outputs = outputs(stmt, &field_keys, &tag_keys)?;
    if !outputs.iter().any(|(_, o)| matches!(o, Output::Field(_))) {
        return Err("statement must have at least one field in select clause".into());
    }
    let mut columns = vec!["time".to_owned()];
    columns.extend(outputs.iter().map(|(name, _)| name.clone()));

    let mut rows: Vec<(i64, Vec<Value>)> = Vec::new();
    for data in series.values() {
        let resolved: HashMap<&str, Column> = data
            .fields
            .iter()
            .filter_map(|(name, parts)| {
                let parts: Vec<&Column> = parts.iter().collect();
                Some((
                    name.as_str(),
                    Column::resolve(&parts)?.slice_time(start, end),
                ))
            })
            .collect();
        let mut times: BTreeSet<i64> = BTreeSet::new();
        for (_, out) in &outputs {
            if let Output::Field(f) = out {
                if let Some(c) = resolved.get(f.as_str()) {
                    times.extend(c.times.iter().copied());
                }
            }
        }
        let mut cursor: HashMap<&str, usize> = HashMap::new();
        for &time in &times {
            let mut at: HashMap<&str, FieldValue> = HashMap::new();
            for (name, c) in &resolved {
                let i = cursor.entry(name).or_insert(0);
                while *i < c.times.len() && c.times[*i] < time {
                    *i += 1;
                }
                if *i < c.times.len() && c.times[*i] == time {
                    at.insert(name, c.values.get(*i));
                }
            }
            if let Some(cond) = &stmt.condition {
                let row = Row {
                    time,
                    tags: &data.tags,
                    fields: &at,
                    field_keys: &field_keys,
                };
                if !matches(cond, &row, ctx.now, &regexes) {
                    continue;
                }
            }
            let mut values = Vec::with_capacity(columns.len());
            let mut any_field = false;
            for (_, out) in &outputs {
                values.push(match out {
                    Output::Field(f) => match at.get(f.as_str()) {
                        Some(v) => {
                            any_field = true;
                            json_value(v)
                        }
                        None => Value::Null,
                    },
                    Output::Tag(t) => data
                        .tags
                        .iter()
                        .find(|(k, _)| k == t)
                        .map_or(Value::Null, |(_, v)| Value::from(v.clone())),
                });
            }
            if any_field {
                rows.push((time, values));
            }
        }
    }
    // Stable: rows of equal time keep series-key order, as InfluxDB lists them.
    rows.sort_by_key(|(t, _)| *t);
    if stmt
        .order_by
        .iter()
        .any(|SortField { ascending, .. }| !ascending)
    {
        rows.reverse();
    }
    let offset = stmt.offset as usize;
    let limit = if stmt.limit == 0 {
        usize::MAX
    } else {
        stmt.limit as usize
    };
    let values: Vec<Vec<Value>> = rows
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|(time, mut values)| {
            values.insert(0, time_value(time, ctx.epoch));
            values
        })
        .collect();
    if values.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![Series {
        name: measurement.clone(),
        tags: None,
        columns,
        values,
    }])
}

fn outputs(
    stmt: &SelectStatement,
    field_keys: &HashSet<String>,
    tag_keys: &BTreeSet<String>,
) -> Result<Vec<(String, Output)>, String> {
    let mut out = Vec::new();
    for field in &stmt.fields {
        match &field.expr {
            Expr::Wildcard(_) => {
                let mut all: Vec<(String, Output)> = field_keys
                    .iter()
                    .map(|f| (f.clone(), Output::Field(f.clone())))
                    .collect();
                all.extend(tag_keys.iter().map(|t| (t.clone(), Output::Tag(t.clone()))));
                all.sort_by(|a, b| a.0.cmp(&b.0));
                out.extend(all);
            }
            Expr::VarRef(v) if v.name == "time" => {}
            Expr::VarRef(v) => {
                let name = field.alias.clone().unwrap_or_else(|| v.name.clone());
                let is_tag = matches!(v.data_type, Some(super::parser::ast::DataType::Tag))
                    || (!field_keys.contains(&v.name) && tag_keys.contains(&v.name));
                out.push((
                    name,
                    if is_tag {
                        Output::Tag(v.name.clone())
                    } else {
                        Output::Field(v.name.clone())
                    },
                ));
            }
            other => return Err(format!("{other} in SELECT is not supported yet")),
        }
    }
    Ok(out)
}

pub fn json_value(v: &FieldValue) -> Value {
    match v {
        FieldValue::Float(x) => float_value(*x),
        FieldValue::Integer(x) => Value::from(*x),
        FieldValue::Unsigned(x) => Value::from(*x),
        FieldValue::String(x) => Value::from(x.clone()),
        FieldValue::Boolean(x) => Value::from(*x),
    }
}

pub fn time_value(ns: i64, epoch: Option<i64>) -> Value {
    match epoch {
        Some(unit) => Value::from(ns.div_euclid(unit)),
        None => Value::from(super::format::rfc3339_nanos(ns)),
    }
}
