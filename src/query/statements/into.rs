//! `SELECT ... INTO`: the rows a SELECT answers written back as points, as 1.x writes
//! them: each row's non-time columns become fields (a null one is left out, a row of
//! nulls is no point), the series' tags its tags, the time column its time; the answer
//! is the count written, stamped with the epoch.

use super::Context;
use crate::line_protocol::{
    escape_field_key, escape_measurement, escape_string_field, escape_tag, parse_body_with,
    ParseOptions, Precision,
};
use crate::query::error::QueryError;
use crate::query::parser::ast::Target;
use crate::query::result::Series;
use crate::storage::WriteRequest;
use serde_json::Value;
use std::fmt::Write as _;

/// Writes `rows` (answered with times in nanoseconds) to `target`; the statement's answer.
pub(super) async fn write(
    cx: &Context<'_>,
    target: &Target,
    rows: Vec<Series>,
) -> Result<Vec<Series>, QueryError> {
    let database = match (&target.database, cx.database) {
        (Some(db), _) => db.clone(),
        (None, Some(db)) if !db.is_empty() => db.to_owned(),
        _ => return Err(QueryError::invalid("no database in target")),
    };
    let text = lines(target, &rows);
    let (points, _) = parse_body_with(text.as_bytes(), &ParseOptions::default());
    let written = points.len();
    if written > 0 {
        let outcome = cx
            .storage
            .write(
                cx.control,
                WriteRequest {
                    database,
                    retention_policy: target.retention_policy.clone(),
                    points,
                    precision: Precision::Nanoseconds,
                    now: crate::catalog::now_nanos(),
                    max_fields_per_measurement: usize::MAX,
                },
            )
            .await
            .map_err(|e| match e {
                // 1.x's statement error does not quote the name, as its /write does.
                crate::storage::StorageError::DatabaseNotFound(db) => {
                    QueryError::invalid(format!("database not found: {db}"))
                }
                other => other.into(),
            })?;
        if let Some(reason) = outcome.reason {
            return Err(QueryError::invalid(format!(
                "partial write: {reason} dropped={}",
                outcome.dropped
            )));
        }
    }
    let epoch = match cx.epoch {
        Some(_) => Value::from(0),
        None => Value::from("1970-01-01T00:00:00Z"),
    };
    Ok(vec![Series {
        name: "result".into(),
        tags: None,
        columns: vec!["time".into(), "written".into()],
        values: vec![vec![epoch, Value::from(written)]],
    }])
}

/// The rows as line protocol. A value line protocol cannot carry (NaN, infinity) leaves
/// its field out, as 1.x's point constructor refuses it and the point with it: a line
/// left without fields is then refused by the parser, and not counted. Each line is what
/// 1.x's `models.NewPoint` writes out (fields in key order, floats in plain decimal):
/// subscriptions forward it as it is.
fn lines(target: &Target, rows: &[Series]) -> String {
    let mut text = String::new();
    for series in rows {
        let Some(time_at) = series.columns.iter().position(|c| c == "time") else {
            continue;
        };
        let name = match target.name.as_str() {
            "" => series.name.as_str(),
            named => named,
        };
        let mut key = String::new();
        escape_measurement(&mut key, name);
        for (k, v) in series.tags.iter().flatten() {
            if v.is_empty() {
                continue;
            }
            key.push(',');
            escape_tag(&mut key, k);
            key.push('=');
            escape_tag(&mut key, v);
        }
        for row in &series.values {
            let Some(time) = row.get(time_at).and_then(Value::as_i64) else {
                continue;
            };
            let mut fields = String::new();
            let mut columns: Vec<(&String, &Value)> = series
                .columns
                .iter()
                .zip(row)
                .filter(|(c, _)| *c != "time")
                .collect();
            columns.sort_by(|a, b| a.0.cmp(b.0));
            for (column, value) in columns {
                let start = fields.len();
                if !fields.is_empty() {
                    fields.push(',');
                }
                escape_field_key(&mut fields, column);
                fields.push('=');
                if !field_value(&mut fields, value) {
                    fields.truncate(start);
                }
            }
            let _ = writeln!(text, "{key} {fields} {time}");
        }
    }
    text
}

/// Appends `value` as a line-protocol field value; false for a null or a value it cannot
/// carry.
fn field_value(out: &mut String, value: &Value) -> bool {
    match value {
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::String(s) => {
            out.push('"');
            escape_string_field(out, s);
            out.push('"');
        }
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            // Plain decimal, as Go's 'f' format (a line-protocol number without a suffix
            // is a float).
            Some(f) if f.is_finite() => {
                let _ = write!(out, "{f}");
            }
            _ => return false,
        },
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => {
                let _ = write!(out, "{i}i");
            }
            (None, Some(u)) => {
                let _ = write!(out, "{u}u");
            }
            _ => return false,
        },
        Value::Null | Value::Array(_) | Value::Object(_) => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_become_lines_with_their_tags_and_typed_fields() {
        let rows = vec![Series {
            name: "cpu".into(),
            tags: Some([("host".to_owned(), "a b".to_owned())].into()),
            columns: vec!["time".into(), "mean".into(), "n".into(), "s".into()],
            values: vec![
                vec![json!(60), json!(1.5), json!(3), json!("x\"y")],
                vec![json!(120), json!(null), json!(null), json!(null)],
                vec![json!(180), json!(2.0), json!(null), json!(true)],
            ],
        }];
        let back = Target {
            database: None,
            retention_policy: None,
            name: String::new(),
        };
        assert_eq!(
            lines(&back, &rows),
            "cpu,host=a\\ b mean=1.5,n=3i,s=\"x\\\"y\" 60\ncpu,host=a\\ b  120\ncpu,host=a\\ b mean=2,s=true 180\n"
        );
        let text = lines(&back, &rows);
        let (points, errors) = parse_body_with(text.as_bytes(), &Default::default());
        assert_eq!((points.len(), errors.len()), (2, 1));
        let named = Target {
            name: "m 1".into(),
            ..back
        };
        assert!(lines(&named, &rows).starts_with("m\\ 1,host=a\\ b "));
    }
}
