//! Query results in InfluxDB 1.x's JSON shape.

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Series {
    /// Omitted when empty, as for `SHOW SERIES` and `SHOW RETENTION POLICIES`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    pub columns: Vec<String>,
    /// Omitted when empty, as InfluxDB does (e.g. `SHOW DATABASES` with none). Floats
    /// stay floats here (a subquery reads them back with their type) and are written as
    /// Go writes them.
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "go_rows")]
    pub values: Vec<Vec<Value>>,
}

fn go_rows<S: serde::Serializer>(rows: &[Vec<Value>], s: S) -> Result<S::Ok, S::Error> {
    struct GoRow<'a>(&'a [Value]);
    struct GoValue<'a>(&'a Value);
    impl Serialize for GoRow<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(self.0.iter().map(GoValue))
        }
    }
    impl Serialize for GoValue<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match self.0 {
                Value::Number(n) if n.is_f64() => {
                    float_value(n.as_f64().unwrap_or(f64::NAN)).serialize(s)
                }
                other => other.serialize(s),
            }
        }
    }
    s.collect_seq(rows.iter().map(|row| GoRow(row)))
}

/// A note beside a statement's result, as 1.x's `query.Message`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Message {
    pub level: &'static str,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub(crate) struct StatementResult {
    pub statement_id: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<Series>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<Message>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl StatementResult {
    pub(crate) fn error(statement_id: usize, message: impl Into<String>) -> Self {
        StatementResult {
            statement_id,
            series: Vec::new(),
            messages: Vec::new(),
            error: Some(message.into()),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct QueryResponse {
    pub results: Vec<StatementResult>,
}

/// One line of a `chunked=true` answer: part of one statement's result.
#[derive(Debug, Serialize, PartialEq)]
pub(crate) struct Chunk {
    results: [ChunkResult; 1],
}

#[derive(Debug, Serialize, PartialEq)]
struct ChunkResult {
    statement_id: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    series: Vec<ChunkSeries>,
    /// On a statement's last line.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    messages: Vec<Message>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// More lines of this statement follow.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    partial: bool,
}

#[derive(Debug, Serialize, PartialEq)]
struct ChunkSeries {
    #[serde(flatten)]
    series: Series,
    /// More rows of this series follow.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    partial: bool,
}

/// InfluxDB 1.x's chunked answer: a line per `size` rows of one series, flagged `partial`
/// while more of the series or of the statement follow; a statement without series (or
/// with an error) is one line.
pub(crate) fn chunks(results: Vec<StatementResult>, size: usize) -> Vec<Chunk> {
    let size = size.max(1);
    let mut out = Vec::new();
    for result in results {
        let line = |series, partial: bool| Chunk {
            results: [ChunkResult {
                statement_id: result.statement_id,
                series,
                messages: match partial {
                    true => Vec::new(),
                    false => result.messages.clone(),
                },
                error: result.error.clone(),
                partial,
            }],
        };
        if result.series.is_empty() || result.error.is_some() {
            out.push(line(Vec::new(), false));
            continue;
        }
        let last_series = result.series.len() - 1;
        for (k, series) in result.series.iter().enumerate() {
            let parts: Vec<&[Vec<Value>]> = match series.values.is_empty() {
                true => vec![&[]],
                false => series.values.chunks(size).collect(),
            };
            let last_part = parts.len() - 1;
            for (j, values) in parts.into_iter().enumerate() {
                let more_rows = j < last_part;
                let part = ChunkSeries {
                    series: Series {
                        values: values.to_vec(),
                        ..series.clone()
                    },
                    partial: more_rows,
                };
                out.push(line(vec![part], more_rows || k < last_series));
            }
        }
    }
    out
}

/// A float as Go's JSON encoder writes it: whole numbers without a fraction.
pub(crate) fn float_value(x: f64) -> Value {
    // -0 keeps its sign (written `-0`, as Go writes it: `json::GoFormatter`).
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 && !(x == 0.0 && x.is_sign_negative()) {
        Value::from(x as i64)
    } else {
        serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}
