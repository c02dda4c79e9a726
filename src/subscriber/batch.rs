//! A write's points as 1.6's subscriber sends them: each point's `String()` (series key,
//! fields, time in nanoseconds), one line each. Rendered once per write, shared by every
//! subscription and destination of its database and policy.

use crate::line_protocol::{escape_field_key, Point};
use std::fmt::Write as _;

/// One write's accepted points, rendered.
#[derive(Debug)]
pub(crate) struct Batch {
    /// The lines, each ending in `\n`: the body of an HTTP send.
    pub body: bytes::Bytes,
    /// Where each line's `\n` is: a UDP send is a datagram per line, without it.
    ends: Vec<usize>,
}

impl Batch {
    pub(crate) fn render(points: &mut dyn Iterator<Item = &Point<'_>>) -> Batch {
        let mut body = String::new();
        let mut ends = Vec::new();
        for p in points {
            write_point(&mut body, p);
            ends.push(body.len());
            body.push('\n');
        }
        Batch {
            body: bytes::Bytes::from(body),
            ends,
        }
    }

    pub(crate) fn points(&self) -> usize {
        self.ends.len()
    }

    /// Each point's line, without its `\n`.
    pub(crate) fn lines(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let line = &self.body[start..end];
            start = end + 1;
            line
        })
    }
}

/// A point as 1.6's `models.Point.String()` gives it: its key, its fields as the client
/// wrote them (1.6 keeps a parsed line's field bytes), its time in nanoseconds. A point
/// not read from a line (SELECT ... INTO) has its fields in key order, as 1.6's
/// `models.NewPoint` encodes them.
fn write_point(out: &mut String, p: &Point<'_>) {
    out.push_str(&p.key);
    out.push(' ');
    match fields_as_written(p.line) {
        Some(fields) => out.push_str(fields),
        None => {
            let mut fields: Vec<_> = p.fields.iter().collect();
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            for (i, (key, value)) in fields.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                escape_field_key(out, key);
                let _ = write!(out, "={value}");
            }
        }
    }
    if let Some(time) = p.timestamp {
        let _ = write!(out, " {time}");
    }
}

/// The fields of a line that parsed: after the key (up to the first space no backslash
/// escapes) and the spaces after it, up to the first space outside a string value.
fn fields_as_written(line: &[u8]) -> Option<&str> {
    if line.is_empty() {
        return None;
    }
    let mut i = 0;
    while i < line.len() && line[i] != b' ' {
        i += if line[i] == b'\\' { 2 } else { 1 };
    }
    while i < line.len() && line[i] == b' ' {
        i += 1;
    }
    let start = i;
    let mut quoted = false;
    while i < line.len() {
        match line[i] {
            b'\\' => i += 1,
            b'"' => quoted = !quoted,
            b' ' if !quoted => break,
            _ => {}
        }
        i += 1;
    }
    let fields = std::str::from_utf8(line.get(start..i.min(line.len()))?).ok()?;
    (!fields.is_empty()).then_some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line_protocol::{parse_body_with, FieldValue, ParseOptions};
    use std::borrow::Cow;

    fn rendered(body: &str) -> String {
        let (mut points, errors) = parse_body_with(body.as_bytes(), &ParseOptions::default());
        assert!(errors.is_empty(), "{errors:?}");
        for p in &mut points {
            p.timestamp = Some(p.timestamp.unwrap_or(7));
        }
        let batch = Batch::render(&mut points.iter());
        String::from_utf8(batch.body.to_vec()).unwrap()
    }

    #[test]
    fn points_are_sent_as_1_6_writes_them_out() {
        // Tags sorted into the key, fields kept as written (1.0, t, a string with an
        // escaped quote and a space), the time in nanoseconds.
        assert_eq!(
            rendered("cpu,z=1,a=2 v=1.0,b=t,s=\"a \\\" b\",i=-3i 1000\nmem free=2 \n"),
            "cpu,a=2,z=1 v=1.0,b=t,s=\"a \\\" b\",i=-3i 1000\nmem free=2 7\n"
        );
        assert_eq!(
            rendered("we\\ ird,t=a\\ b f\\ k=\"x\"  12\n"),
            "we\\ ird,t=a\\ b f\\ k=\"x\" 12\n"
        );
    }

    #[test]
    fn points_not_read_from_a_line_have_their_fields_in_key_order() {
        let p = Point::new(
            Cow::Borrowed("m"),
            &[("t", "x")],
            vec![
                (Cow::Borrowed("z"), FieldValue::Float(1.5)),
                (Cow::Borrowed("a b"), FieldValue::Integer(2)),
                (Cow::Borrowed("s"), FieldValue::String("q\"".into())),
            ],
            Some(5),
        );
        let batch = Batch::render(&mut std::iter::once(&p));
        assert_eq!(&batch.body[..], b"m,t=x a\\ b=2i,s=\"q\\\"\",z=1.5 5\n");
        assert_eq!(
            batch.lines().collect::<Vec<_>>(),
            vec![&b"m,t=x a\\ b=2i,s=\"q\\\"\",z=1.5 5"[..]]
        );
    }
}
