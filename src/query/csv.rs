//! `Accept: application/csv` answers, as InfluxDB 1.x writes them: per statement a header
//! `name,tags,<columns>` (again after a blank line when the columns change), a row per
//! value row with the series' tags as `k=v,...`, times as integers, and statements that
//! failed or found nothing left out.
//!
//! Records are the csv crate's, quoted where RFC 4180 needs it (a comma, quote or line
//! break). InfluxDB's Go writer also quotes a field that starts with white space, or is
//! `\.`; here such a field stands bare, which a CSV reader reads as the same value.

use super::result::StatementResult;
use serde_json::Value;

/// Records written one after another into memory, with blank lines between groups.
struct Records(csv::Writer<Vec<u8>>);

impl Records {
    fn new() -> Records {
        Records::after(Vec::new())
    }

    /// Records that go on after `written`.
    fn after(written: Vec<u8>) -> Records {
        let writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(written);
        Records(writer)
    }

    fn row<'a>(&mut self, fields: impl IntoIterator<Item = &'a str>) {
        // Writing into memory cannot fail.
        let _ = self.0.write_record(fields);
    }

    /// The csv crate writes an empty record as `""`, so the line goes in around it (rare:
    /// between statements, and where the columns change).
    fn blank_line(&mut self) {
        let mut written = std::mem::replace(self, Records::new()).into_bytes();
        written.push(b'\n');
        *self = Records::after(written);
    }

    fn into_bytes(self) -> Vec<u8> {
        // Flushing into memory cannot fail.
        self.0.into_inner().unwrap_or_default()
    }

    fn finish(self) -> String {
        // Every field was a &str, so the bytes are UTF-8.
        String::from_utf8(self.into_bytes())
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

pub(crate) fn render(results: &[StatementResult]) -> String {
    let mut out = Records::new();
    let mut first_statement = true;
    for result in results {
        if result.series.is_empty() || result.error.is_some() {
            continue;
        }
        if !first_statement {
            out.blank_line();
        }
        first_statement = false;
        let mut columns: Option<&Vec<String>> = None;
        // The record 1.x's writer fills in place: a value of a type it does not write (a
        // list: SHOW SUBSCRIPTIONS' destinations) leaves what the field held, the
        // header's column name at first.
        let mut record: Vec<String> = Vec::new();
        for series in &result.series {
            if columns.is_some_and(|c| *c != series.columns) {
                out.blank_line();
            }
            if columns.is_none_or(|c| *c != series.columns) {
                record = ["name", "tags"]
                    .into_iter()
                    .map(str::to_owned)
                    .chain(series.columns.iter().cloned())
                    .collect();
                out.row(record.iter().map(String::as_str));
                columns = Some(&series.columns);
            }
            // The series key without its measurement, as InfluxDB's `HashKey()[1:]`.
            let tags = series.tags.as_ref().map_or_else(String::new, |tags| {
                let pairs: Vec<(&String, &String)> = tags.iter().collect();
                let key = crate::line_protocol::series_key("", &pairs);
                key.strip_prefix(',').unwrap_or(&key).to_owned()
            });
            record[0].clone_from(&series.name);
            record[1] = tags;
            for values in &series.values {
                for (value, field) in values.iter().zip(record.iter_mut().skip(2)) {
                    if let Some(text) = cell(value) {
                        *field = text;
                    }
                }
                out.row(record.iter().map(String::as_str));
            }
        }
    }
    out.finish()
}

/// The error of a query refused as a whole.
pub(crate) fn error(message: &str) -> String {
    let mut out = Records::new();
    out.row(["error"]);
    out.row([message]);
    out.finish()
}

/// A value as 1.x's writer writes it; None for a list or an object, which it does not.
fn cell(value: &Value) -> Option<String> {
    Some(match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        // Integers as they are; floats in plain decimal, as Go's 'f', -1.
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => {
                let mut plain = Vec::new();
                // Writing to a Vec cannot fail; the digits are ASCII.
                let _ = super::json::write_plain_f64(f, &mut plain);
                String::from_utf8_lossy(&plain).into_owned()
            }
            _ => n.to_string(),
        },
        Value::Array(_) | Value::Object(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fields are quoted as RFC 4180 (and InfluxDB) quote them, and only those.
    #[test]
    fn fields_are_quoted_where_csv_needs_it() {
        let mut out = Records::new();
        out.row(["a,b", "say \"hi\"", "two\nlines", "plain", "", "x y"]);
        out.blank_line();
        out.row(["next"]);
        assert_eq!(
            out.finish(),
            "\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",plain,,x y\n\nnext\n"
        );
    }

    /// Where InfluxDB's Go writer also quotes (README: deliberate differences).
    #[test]
    fn leading_white_space_stands_unquoted() {
        let mut out = Records::new();
        out.row([" x", "\t", "\\."]);
        assert_eq!(out.finish(), " x,\t,\\.\n");
    }
}
