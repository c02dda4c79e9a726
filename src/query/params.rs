//! `params=`: the JSON object of bound parameters (`$name` in the query), read with
//! InfluxDB 1.x's rules: strings, booleans, integers (no `.`) and floats (with one) bind as
//! literals; `{"identifier"|"regex"|"string"|"integer"|"number"|"duration": value}` binds as
//! that kind. A value that cannot be bound fails only the query that uses it.

use super::parser::ParamValue;
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::HashMap;

/// Why the `params` object was refused as a whole (400).
#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum ParamsError {
    #[error("error parsing query parameters: {0}")]
    Syntax(String),
    #[error("error parsing json value: strconv.ParseInt: parsing \"{text}\": {reason}")]
    Integer { text: String, reason: &'static str },
}

pub(crate) fn from_json(text: &str) -> Result<HashMap<String, ParamValue>, ParamsError> {
    let raw: HashMap<String, Box<RawValue>> =
        serde_json::from_str(text).map_err(|e| ParamsError::Syntax(e.to_string()))?;
    let mut params = HashMap::with_capacity(raw.len());
    for (name, raw) in raw {
        let text = raw.get().trim();
        let value: Value =
            serde_json::from_str(text).map_err(|e| ParamsError::Syntax(e.to_string()))?;
        let bound = match value {
            // InfluxDB reads a number as an integer unless its text has a '.'.
            Value::Number(n) if text.contains('.') => {
                ParamValue::Number(n.as_f64().unwrap_or_default())
            }
            Value::Number(_) => match text.parse::<i64>() {
                Ok(i) => ParamValue::Integer(i),
                Err(_) => {
                    let digits = text.strip_prefix('-').unwrap_or(text);
                    let reason = match digits.bytes().all(|b| b.is_ascii_digit()) {
                        true => "value out of range",
                        false => "invalid syntax",
                    };
                    return Err(ParamsError::Integer {
                        text: text.to_owned(),
                        reason,
                    });
                }
            },
            Value::String(s) => ParamValue::String(s),
            Value::Bool(b) => ParamValue::Boolean(b),
            Value::Object(object) => typed(object),
            Value::Array(_) => unbound("unable to bind parameter with type []interface {}"),
            Value::Null => unbound("unable to bind parameter with type <nil>"),
        };
        params.insert(name, bound);
    }
    Ok(params)
}

fn unbound(reason: &str) -> ParamValue {
    ParamValue::Error(reason.to_owned())
}

fn typed(object: serde_json::Map<String, Value>) -> ParamValue {
    let mut entries = object.into_iter();
    let (Some((kind, value)), None) = (entries.next(), entries.next()) else {
        return unbound("bound object parameter value must have exactly one entry");
    };
    match (kind.as_str(), value) {
        ("identifier", Value::String(s)) => ParamValue::Identifier(s),
        ("identifier", _) => unbound("identifier must be a string value"),
        ("regex", Value::String(s)) => ParamValue::Regex(s),
        ("regex", _) => unbound("regex literal must be a string value"),
        ("string", Value::String(s)) => ParamValue::String(s),
        ("string", _) => unbound("string literal must be a string value"),
        ("integer", Value::Number(n)) if n.is_i64() => {
            ParamValue::Integer(n.as_i64().unwrap_or_default())
        }
        ("integer", _) => unbound("integer literal must be an integer value"),
        ("number", Value::Number(n)) => ParamValue::Number(n.as_f64().unwrap_or_default()),
        ("number", _) => unbound("number literal must be a float value"),
        ("duration", Value::String(s)) => ParamValue::Duration(s),
        ("duration", Value::Number(n)) if n.is_i64() => {
            ParamValue::Duration(format!("{}ns", n.as_i64().unwrap_or_default()))
        }
        ("duration", _) => unbound("duration must be a string or an integer value"),
        (other, _) => unbound(&format!("unknown bind object type: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_bind_as_influxdb_binds_them() {
        let p = from_json(r#"{"s":"a","i":3,"f":2.5,"b":true,"m":{"identifier":"cpu"},"n":null,"o":{"a":1,"b":2}}"#).unwrap();
        assert_eq!(p["s"], ParamValue::String("a".into()));
        assert_eq!(p["i"], ParamValue::Integer(3));
        assert_eq!(p["f"], ParamValue::Number(2.5));
        assert_eq!(p["b"], ParamValue::Boolean(true));
        assert_eq!(p["m"], ParamValue::Identifier("cpu".into()));
        assert_eq!(p["n"], unbound("unable to bind parameter with type <nil>"));
        assert_eq!(
            p["o"],
            unbound("bound object parameter value must have exactly one entry")
        );
        assert_eq!(
            from_json(r#"{"x":1e3}"#).unwrap_err().to_string(),
            "error parsing json value: strconv.ParseInt: parsing \"1e3\": invalid syntax"
        );
        assert!(matches!(from_json("nope"), Err(ParamsError::Syntax(_))));
    }
}
