//! `/query`'s JSON written as 1.x's Go `encoding/json` writes it: in every string `<`, `>`
//! and `&` become `\u003c`, `\u003e` and `\u0026` (its HTML escaping, on by default),
//! U+2028 and U+2029 become `\u2028` and `\u2029`, and backspace and form feed are
//! `\u0008` and `\u000c` (the Go that built 1.6 has no short forms for them). Clients that
//! compare bodies byte for byte, or a dashboard that shows an error text, see 1.x's.
//!
//! Architecture invariant: the escaping is a [`serde_json::ser::Formatter`], so the strings
//! are never copied: serde_json hands it each run of characters it leaves unescaped, and
//! a run without any of the five characters is written as it came after one `memchr3`
//! pass and a scan for the line separators' lead byte.

use serde::Serialize;
use serde_json::ser::{CharEscape, CompactFormatter, Formatter, PrettyFormatter};
use std::io::{self, Write};

/// Writes `value` as 1.x writes JSON; `pretty` indents by four spaces, as 1.x does.
pub(crate) fn write<T: Serialize + ?Sized, W: Write>(
    value: &T,
    pretty: bool,
    out: W,
) -> serde_json::Result<()> {
    match pretty {
        true => value.serialize(&mut serde_json::Serializer::with_formatter(
            out,
            GoFormatter(PrettyFormatter::with_indent(b"    ")),
        )),
        false => value.serialize(&mut serde_json::Serializer::with_formatter(
            out,
            GoFormatter(CompactFormatter),
        )),
    }
}

/// `value` as compact 1.x JSON.
pub(crate) fn to_vec<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    // Writing to a Vec fails only for a value that cannot be JSON (a map with non-string
    // keys), which no answer holds.
    let _ = write(value, false, &mut out);
    out
}

/// A formatter that escapes as Go does, around serde_json's own for the layout.
struct GoFormatter<F>(F);

/// The lead byte of U+2028 and U+2029 in UTF-8 (`E2 80 A8`, `E2 80 A9`).
const LINE_SEPARATOR_LEAD: u8 = 0xE2;

fn write_go_fragment<W: ?Sized + Write>(writer: &mut W, fragment: &str) -> io::Result<()> {
    let bytes = fragment.as_bytes();
    let html = memchr::memchr3(b'<', b'>', b'&', bytes);
    let separator = memchr::memchr(LINE_SEPARATOR_LEAD, bytes);
    if html.is_none() && separator.is_none() {
        return writer.write_all(bytes);
    }
    let mut start = 0;
    let mut i = html.into_iter().chain(separator).min().unwrap_or(0);
    while i < bytes.len() {
        let escape: Option<&[u8]> = match bytes[i] {
            b'<' => Some(b"\\u003c"),
            b'>' => Some(b"\\u003e"),
            b'&' => Some(b"\\u0026"),
            LINE_SEPARATOR_LEAD if bytes[i + 1..].starts_with(&[0x80, 0xA8]) => Some(b"\\u2028"),
            LINE_SEPARATOR_LEAD if bytes[i + 1..].starts_with(&[0x80, 0xA9]) => Some(b"\\u2029"),
            _ => None,
        };
        if let Some(escape) = escape {
            writer.write_all(&bytes[start..i])?;
            writer.write_all(escape)?;
            i += if bytes[i] == LINE_SEPARATOR_LEAD {
                3
            } else {
                1
            };
            start = i;
        } else {
            i += 1;
        }
    }
    writer.write_all(&bytes[start..])
}

impl<F: Formatter> Formatter for GoFormatter<F> {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        write_go_fragment(writer, fragment)
    }

    fn write_char_escape<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        char_escape: CharEscape,
    ) -> io::Result<()> {
        match char_escape {
            CharEscape::Backspace => writer.write_all(b"\\u0008"),
            CharEscape::FormFeed => writer.write_all(b"\\u000c"),
            other => self.0.write_char_escape(writer, other),
        }
    }

    /// As Go's encoder writes a float: the shortest digits that read back the same, in
    /// plain notation from 1e-6 up to 1e21 (`-0`, `1000000000000000000`), else as `1.5e-7`
    /// or `1e+21`.
    fn write_f64<W: ?Sized + Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        let abs = value.abs();
        if abs == 0.0 || (1e-6..1e21).contains(&abs) {
            return write!(writer, "{value}");
        }
        let scientific = format!("{value:e}");
        match scientific.split_once("e-") {
            Some(_) => writer.write_all(scientific.as_bytes()),
            None => writer.write_all(scientific.replacen('e', "e+", 1).as_bytes()),
        }
    }

    // The layout is the wrapped formatter's.
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn end_object_key<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_key(w)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// A representative answer (`rows` rows of a time, a float, an integer, a tag value and a
/// string field) encoded by serde_json's own formatter (`go_escaping` false) or by 1.x's
/// escaping; the bytes written. For `benches/query_json.rs`.
#[cfg(feature = "testing")]
pub fn encode_sample_answer(rows: usize, go_escaping: bool) -> usize {
    use super::result::{QueryResponse, Series, StatementResult};
    use serde_json::Value;
    thread_local! {
        static SAMPLE: std::cell::RefCell<Option<(usize, QueryResponse)>> =
            const { std::cell::RefCell::new(None) };
    }
    SAMPLE.with(|sample| {
        let mut sample = sample.borrow_mut();
        if sample.as_ref().map(|(n, _)| *n) != Some(rows) {
            let values = (0..rows)
                .map(|i| {
                    vec![
                        Value::from(format!("2024-01-01T00:{:02}:{:02}Z", i / 60 % 60, i % 60)),
                        super::result::float_value(i as f64 * 0.25 - 3.5),
                        Value::from(i as i64 * 7),
                        Value::from(format!("host-{}", i % 17)),
                        Value::from(format!("note {i} of the run")),
                    ]
                })
                .collect();
            let series = Series {
                name: "cpu".into(),
                tags: None,
                columns: ["time", "usage", "count", "host", "note"]
                    .map(String::from)
                    .to_vec(),
                values,
            };
            let results = vec![StatementResult {
                series: vec![series],
                ..StatementResult::default()
            }];
            *sample = Some((rows, QueryResponse { results }));
        }
        let answer = &sample.as_ref().expect("built above").1;
        let mut out = Vec::with_capacity(rows * 96);
        let written = match go_escaping {
            true => write(answer, false, &mut out),
            false => serde_json::to_writer(&mut out, answer),
        };
        written.map(|()| out.len()).unwrap_or(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go(s: &str) -> String {
        String::from_utf8(to_vec(&s)).unwrap()
    }

    #[test]
    fn html_characters_and_line_separators_are_escaped_as_go_escapes_them() {
        assert_eq!(go("a<b>&c"), r#""a\u003cb\u003e\u0026c""#);
        assert_eq!(go("<"), r#""\u003c""#);
        assert_eq!(go("x\u{2028}y\u{2029}"), r#""x\u2028y\u2029""#);
        assert_eq!(go("\u{2027}\u{202a}é"), "\"\u{2027}\u{202a}é\"");
        assert_eq!(
            go("\u{8}\u{c}\n\t\r\u{1b}\"\\"),
            r#""\u0008\u000c\n\t\r\u001b\"\\""#
        );
        assert_eq!(go("plain"), r#""plain""#);
    }

    #[test]
    fn floats_are_written_as_go_writes_them() {
        let cases = [
            (-0.0, "-0"),
            (0.0, "0"),
            (1.5, "1.5"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e15, "1000000000000000"),
            (-1.2345678901234568e20, "-123456789012345680000"),
            (1e21, "1e+21"),
            (2.5e300, "2.5e+300"),
            (0.000001, "0.000001"),
            (1.5e-7, "1.5e-7"),
            (-3e-10, "-3e-10"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
        ];
        for (x, want) in cases {
            assert_eq!(String::from_utf8(to_vec(&x)).unwrap(), want, "{x:?}");
        }
    }

    #[test]
    fn pretty_keeps_the_layout_and_escapes_too() {
        let mut out = Vec::new();
        write(&serde_json::json!({"k": ["<"]}), true, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\n    \"k\": [\n        \"\\u003c\"\n    ]\n}"
        );
    }
}
