//! `Accept: application/csv` answers, as InfluxDB 1.x writes them: per statement a header
//! `name,tags,<columns>` (again after a blank line when the columns change), a row per
//! value row with the series' tags as `k=v,...`, times as integers, and statements that
//! failed or found nothing left out.

use super::result::StatementResult;
use serde_json::Value;

pub fn render(results: &[StatementResult]) -> String {
    let mut out = String::new();
    let mut first_statement = true;
    for result in results {
        if result.series.is_empty() || result.error.is_some() {
            continue;
        }
        if !first_statement {
            out.push('\n');
        }
        first_statement = false;
        let mut columns: Option<&Vec<String>> = None;
        for series in &result.series {
            if columns.is_some_and(|c| *c != series.columns) {
                out.push('\n');
            }
            if columns.is_none_or(|c| *c != series.columns) {
                let header = ["name", "tags"]
                    .into_iter()
                    .chain(series.columns.iter().map(String::as_str));
                row(&mut out, header);
                columns = Some(&series.columns);
            }
            // The series key without its measurement, as InfluxDB's `HashKey()[1:]`.
            let tags = series.tags.as_ref().map_or_else(String::new, |tags| {
                let pairs: Vec<(&String, &String)> = tags.iter().collect();
                let key = crate::line_protocol::series_key("", &pairs);
                key.strip_prefix(',').unwrap_or(&key).to_owned()
            });
            for values in &series.values {
                let cells: Vec<String> = values.iter().map(cell).collect();
                let fields = [series.name.as_str(), tags.as_str()]
                    .into_iter()
                    .chain(cells.iter().map(String::as_str));
                row(&mut out, fields);
            }
        }
    }
    out
}

/// The error of a query refused as a whole.
pub fn error(message: &str) -> String {
    let mut out = String::new();
    row(&mut out, ["error"]);
    row(&mut out, [message]);
    out
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        // Integers as they are; floats in plain decimal (Rust's Display, like Go's 'f', -1).
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => f.to_string(),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// One record, quoted as Go's encoding/csv quotes.
fn row<'a>(out: &mut String, fields: impl IntoIterator<Item = &'a str>) {
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let quote = field == "\\."
            || field.contains([',', '"', '\r', '\n'])
            || field.starts_with([' ', '\t']);
        if quote {
            out.push('"');
            out.push_str(&field.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(field);
        }
    }
    out.push('\n');
}
