//! Rendering: series keys and line protocol output with InfluxDB's escaping.

use super::Point;

/// Appends `s` with `,` and space escaped (measurement names).
pub fn escape_measurement(out: &mut String, s: &str) {
    escape_into(out, s, b", ");
}

/// Appends `s` with `,`, `=` and space escaped (tag keys and values).
pub fn escape_tag(out: &mut String, s: &str) {
    escape_into(out, s, b", =");
}

/// Appends `s` with `,`, `=` and space escaped (field keys).
pub fn escape_field_key(out: &mut String, s: &str) {
    escape_into(out, s, b", =");
}

/// Appends a string field's content (without the surrounding quotes) with
/// `\` and `"` escaped.
pub fn escape_string_field(out: &mut String, s: &str) {
    escape_into(out, s, b"\\\"");
}

#[inline]
fn escape_into(out: &mut String, s: &str, codes: &[u8]) {
    if !s.bytes().any(|b| codes.contains(&b)) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        if c.is_ascii() && codes.contains(&(c as u8)) {
            out.push('\\');
        }
        out.push(c);
    }
}

/// The canonical series key: escaped measurement followed by `,key=value`
/// for each tag sorted by key (tags with empty values are skipped, as in
/// InfluxDB's `MakeKey`), e.g. `cpu,host=a,region=x`.
pub fn series_key(measurement: &str, tags: &[(String, String)]) -> String {
    let cap = measurement.len()
        + tags
            .iter()
            .map(|(k, v)| k.len() + v.len() + 2)
            .sum::<usize>();
    let mut out = String::with_capacity(cap + 8);
    escape_measurement(&mut out, measurement);
    let sorted = tags.windows(2).all(|w| w[0].0 <= w[1].0);
    let mut push = |k: &str, v: &str| {
        if v.is_empty() {
            return;
        }
        out.push(',');
        escape_tag(&mut out, k);
        out.push('=');
        escape_tag(&mut out, v);
    };
    if sorted {
        for (k, v) in tags {
            push(k, v);
        }
    } else {
        let mut idx: Vec<&(String, String)> = tags.iter().collect();
        idx.sort_by(|a, b| a.0.cmp(&b.0));
        for (k, v) in idx {
            push(k, v);
        }
    }
    out
}

/// Appends `p` as one line of line protocol (no trailing newline).
pub fn write_point(out: &mut String, p: &Point) {
    use std::fmt::Write;
    out.push_str(&series_key(&p.measurement, &p.tags));
    out.push(' ');
    for (i, (k, v)) in p.fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        escape_field_key(out, k);
        out.push('=');
        let _ = write!(out, "{}", v);
    }
    if let Some(ts) = p.timestamp {
        let _ = write!(out, " {}", ts);
    }
}

impl Point {
    /// This point as one line of line protocol (no trailing newline).
    pub fn to_line_protocol(&self) -> String {
        let mut s = String::new();
        write_point(&mut s, self);
        s
    }
}
