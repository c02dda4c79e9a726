//! Rendering: series keys and line protocol output with InfluxDB's escaping.

use super::Point;
use std::borrow::Cow;

/// Bytes escaped with a backslash, as a table: series keys are built for every point
/// written, so each byte costs one lookup.
type Codes = [bool; 256];

const fn codes(chars: &[u8]) -> Codes {
    let mut t = [false; 256];
    let mut i = 0;
    while i < chars.len() {
        t[chars[i] as usize] = true;
        i += 1;
    }
    t
}

static MEASUREMENT_CODES: Codes = codes(b", ");
static TAG_CODES: Codes = codes(b", =");
static STRING_CODES: Codes = codes(b"\\\"");

/// Appends `s` with `,` and space escaped (measurement names).
pub fn escape_measurement(out: &mut String, s: &str) {
    escape_into(out, s, &MEASUREMENT_CODES);
}

/// Appends `s` with `,`, `=` and space escaped (tag keys and values).
pub fn escape_tag(out: &mut String, s: &str) {
    escape_into(out, s, &TAG_CODES);
}

/// Appends `s` with `,`, `=` and space escaped (field keys).
pub fn escape_field_key(out: &mut String, s: &str) {
    escape_into(out, s, &TAG_CODES);
}

/// Appends a string field's content (without the surrounding quotes) with
/// `\` and `"` escaped.
pub fn escape_string_field(out: &mut String, s: &str) {
    escape_into(out, s, &STRING_CODES);
}

#[inline]
fn escape_into(out: &mut String, s: &str, codes: &Codes) {
    if !s.bytes().any(|b| codes[usize::from(b)]) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        if c.is_ascii() && codes[c as usize] {
            out.push('\\');
        }
        out.push(c);
    }
}

/// The canonical series key: escaped measurement followed by `,key=value`
/// for each tag sorted by key (tags with empty values are skipped, as in
/// InfluxDB's `MakeKey`), e.g. `cpu,host=a,region=x`.
pub fn series_key<K: AsRef<str>, V: AsRef<str>>(measurement: &str, tags: &[(K, V)]) -> String {
    let cap = measurement.len()
        + tags
            .iter()
            .map(|(k, v)| k.as_ref().len() + v.as_ref().len() + 2)
            .sum::<usize>();
    let mut out = String::with_capacity(cap + 8);
    escape_measurement(&mut out, measurement);
    let sorted = tags.windows(2).all(|w| w[0].0.as_ref() <= w[1].0.as_ref());
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
            push(k.as_ref(), v.as_ref());
        }
    } else {
        let mut idx: Vec<&(K, V)> = tags.iter().collect();
        idx.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        for (k, v) in idx {
            push(k.as_ref(), v.as_ref());
        }
    }
    out
}

/// The tags of a canonical series key ([`series_key`]), unescaped, in key order. A
/// separator is a `,` or `=` not preceded by a backslash, as when the key was parsed from
/// its line: a parsed name never ends in a backslash, so the split is exact.
pub fn key_tags(key: &str) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    let b = key.as_bytes();
    let separator = |i: usize, c: u8| b[i] == c && (i == 0 || b[i - 1] != b'\\');
    let Some(mut i) = (0..b.len()).find(|&i| separator(i, b',')) else {
        return Vec::new();
    };
    let mut tags = Vec::new();
    while i < b.len() {
        let start = i + 1;
        let eq = (start..b.len())
            .find(|&j| separator(j, b'='))
            .unwrap_or(b.len());
        let end = (eq..b.len())
            .find(|&j| separator(j, b','))
            .unwrap_or(b.len());
        let value = key.get(eq + 1..end).unwrap_or("");
        tags.push((unescape_tag(&key[start..eq]), unescape_tag(value)));
        i = end;
    }
    tags
}

/// Removes the backslash of every `\,`, `\=` and `\ ` (InfluxDB's `unescapeTag`).
fn unescape_tag(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && matches!(chars.peek(), Some(',' | '=' | ' ')) {
            continue;
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// Appends `p` as one line of line protocol (no trailing newline).
pub fn write_point(out: &mut String, p: &Point<'_>) {
    use std::fmt::Write;
    out.push_str(&p.key);
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

impl Point<'_> {
    /// This point as one line of line protocol (no trailing newline).
    pub fn to_line_protocol(&self) -> String {
        let mut s = String::new();
        write_point(&mut s, self);
        s
    }
}
