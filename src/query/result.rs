//! Query results in InfluxDB 1.x's JSON shape.

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Series {
    /// Omitted when empty, as for `SHOW SERIES` and `SHOW RETENTION POLICIES`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    pub columns: Vec<String>,
    /// Omitted when empty, as InfluxDB does (e.g. `SHOW DATABASES` with none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<Vec<Value>>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct StatementResult {
    pub statement_id: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<Series>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl StatementResult {
    pub fn error(statement_id: usize, message: impl Into<String>) -> Self {
        StatementResult {
            statement_id,
            series: Vec::new(),
            error: Some(message.into()),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct QueryResponse {
    pub results: Vec<StatementResult>,
}

/// A float as Go's JSON encoder writes it: whole numbers without a fraction.
pub fn float_value(x: f64) -> Value {
    // -0 keeps its sign (Go prints it as -0).
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 && !(x == 0.0 && x.is_sign_negative()) {
        Value::from(x as i64)
    } else {
        serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}
