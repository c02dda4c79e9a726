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

use super::result::{float_value, QueryResponse, Series, StatementResult};
use serde::Serialize;
use serde_json::ser::{CharEscape, CompactFormatter, Formatter, PrettyFormatter};
use serde_json::Value;
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

/// An answer as compact 1.x JSON, written by hand: the same bytes as [`write`] gives
/// (`tests::the_hand_written_answer_is_the_encoders_byte_for_byte`), at half the cost or
/// less, since serde's generic walk through each row's values, a write call a piece,
/// weighs more than the values' own bytes when they are short (a tag value, a time).
/// `after_row` is shown the answer so far after each row (to charge it, say) and may stop
/// the writing with an error.
pub(crate) fn write_response(
    response: &QueryResponse,
    out: &mut Vec<u8>,
    mut after_row: impl FnMut(&Vec<u8>) -> io::Result<()>,
) -> io::Result<()> {
    out.extend_from_slice(b"{\"results\":[");
    for (i, result) in response.results.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_statement(result, out, &mut after_row)?;
    }
    out.extend_from_slice(b"]}");
    Ok(())
}

fn write_statement(
    result: &StatementResult,
    out: &mut Vec<u8>,
    after_row: &mut impl FnMut(&Vec<u8>) -> io::Result<()>,
) -> io::Result<()> {
    out.extend_from_slice(b"{\"statement_id\":");
    out.extend_from_slice(itoa::Buffer::new().format(result.statement_id).as_bytes());
    if !result.series.is_empty() {
        out.extend_from_slice(b",\"series\":[");
        for (i, series) in result.series.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_series(series, out, after_row)?;
        }
        out.push(b']');
    }
    if !result.messages.is_empty() {
        out.extend_from_slice(b",\"messages\":[");
        for (i, message) in result.messages.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"level\":");
            write_go_str(message.level, out);
            out.extend_from_slice(b",\"text\":");
            write_go_str(&message.text, out);
            out.push(b'}');
        }
        out.push(b']');
    }
    if let Some(error) = &result.error {
        out.extend_from_slice(b",\"error\":");
        write_go_str(error, out);
    }
    out.push(b'}');
    Ok(())
}

fn write_series(
    series: &Series,
    out: &mut Vec<u8>,
    after_row: &mut impl FnMut(&Vec<u8>) -> io::Result<()>,
) -> io::Result<()> {
    out.push(b'{');
    if !series.name.is_empty() {
        out.extend_from_slice(b"\"name\":");
        write_go_str(&series.name, out);
        out.push(b',');
    }
    if let Some(tags) = &series.tags {
        out.extend_from_slice(b"\"tags\":{");
        for (i, (key, value)) in tags.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_go_str(key, out);
            out.push(b':');
            write_go_str(value, out);
        }
        out.extend_from_slice(b"},");
    }
    out.extend_from_slice(b"\"columns\":[");
    for (i, column) in series.columns.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_go_str(column, out);
    }
    out.push(b']');
    if !series.values.is_empty() {
        out.extend_from_slice(b",\"values\":[");
        for (r, row) in series.values.iter().enumerate() {
            out.extend_from_slice(if r > 0 { b",[" } else { b"[" });
            for (i, value) in row.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_go_value(value, out);
            }
            out.push(b']');
            after_row(out)?;
        }
        out.push(b']');
    }
    out.push(b'}');
    Ok(())
}

/// A row's value as `go_rows` serializes it: a float through [`float_value`] (an integral
/// float as an integer), anything else as itself.
fn write_go_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::String(s) => write_go_str(s, out),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
            (None, Some(u)) => out.extend_from_slice(itoa::Buffer::new().format(u).as_bytes()),
            (None, None) => match float_value(n.as_f64().unwrap_or(f64::NAN)) {
                Value::Number(n) if n.is_f64() => {
                    // Writing to a Vec cannot fail.
                    let _ = GoFormatter(CompactFormatter).write_f64(out, n.as_f64().unwrap_or(0.0));
                }
                other => write_go_value(&other, out),
            },
        },
        // Rows hold no arrays or objects; were one there, the encoder writes it.
        other => {
            let _ = write(other, false, out);
        }
    }
}

/// How a byte is written in a Go JSON string: as itself (0), or escaped (the byte of the
/// short escape, or `u` for `\u00XX`, or `g` for a byte that may start Go's own escapes).
const STRING_ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[b'\n' as usize] = b'n';
    table[b'\r' as usize] = b'r';
    table[b'\t' as usize] = b't';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table[b'<' as usize] = b'g';
    table[b'>' as usize] = b'g';
    table[b'&' as usize] = b'g';
    table[LINE_SEPARATOR_LEAD as usize] = b'g';
    table
};

/// A string as Go's encoder writes it, quotes included.
fn write_go_str(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        let b = bytes[i];
        let escape = STRING_ESCAPE[b as usize];
        if escape == 0 {
            i += 1;
            continue;
        }
        let mut control = [
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[(b >> 4) as usize],
            HEX[(b & 0xF) as usize],
        ];
        let (written, taken): (&[u8], usize) = match (escape, b) {
            (b'g', b'<') => (b"\\u003c", 1),
            (b'g', b'>') => (b"\\u003e", 1),
            (b'g', b'&') => (b"\\u0026", 1),
            (b'g', _) if bytes[i + 1..].starts_with(&[0x80, 0xA8]) => (b"\\u2028", 3),
            (b'g', _) if bytes[i + 1..].starts_with(&[0x80, 0xA9]) => (b"\\u2029", 3),
            (b'g', _) => {
                i += 1;
                continue;
            }
            (b'u', _) => (&control[..], 1),
            (short, _) => {
                control[1] = short;
                (&control[..2], 1)
            }
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(written);
        i += taken;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// A formatter that escapes as Go does, around serde_json's own for the layout.
struct GoFormatter<F>(F);

/// The lead byte of U+2028 and U+2029 in UTF-8 (`E2 80 A8`, `E2 80 A9`).
const LINE_SEPARATOR_LEAD: u8 = 0xE2;

/// The bytes after which a fragment may need Go's escaping.
const GO_ESCAPED: [bool; 256] = {
    let mut table = [false; 256];
    table[b'<' as usize] = true;
    table[b'>' as usize] = true;
    table[b'&' as usize] = true;
    table[LINE_SEPARATOR_LEAD as usize] = true;
    table
};

/// Below this length a byte-by-byte look beats two `memchr` passes and their set-up (most
/// fragments are tag values, names and times).
const SHORT_FRAGMENT: usize = 64;

/// Where the first byte that may need Go's escaping is.
fn first_go_escaped(bytes: &[u8]) -> Option<usize> {
    if bytes.len() < SHORT_FRAGMENT {
        return bytes.iter().position(|&b| GO_ESCAPED[b as usize]);
    }
    let html = memchr::memchr3(b'<', b'>', b'&', bytes);
    let separator = memchr::memchr(LINE_SEPARATOR_LEAD, bytes);
    html.into_iter().chain(separator).min()
}

fn write_go_fragment<W: ?Sized + Write>(writer: &mut W, fragment: &str) -> io::Result<()> {
    let bytes = fragment.as_bytes();
    let Some(first) = first_go_escaped(bytes) else {
        return writer.write_all(bytes);
    };
    let mut start = 0;
    let mut i = first;
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

/// Writes a finite `value` in plain notation, as Go's `strconv.FormatFloat(v, 'f', -1, 64)`
/// does: the shortest digits that read back the same, no exponent, a tie between two
/// shortest decimals rounded to even. The digits are ryu's (which rounds ties as Go does;
/// Rust's `{}` rounds them up), laid out here.
pub(crate) fn write_plain_f64<W: ?Sized + Write>(value: f64, out: &mut W) -> io::Result<()> {
    const ZEROS: [u8; 64] = [b'0'; 64];
    let zeros = |out: &mut W, mut n: usize| -> io::Result<()> {
        while n > 0 {
            let k = n.min(ZEROS.len());
            out.write_all(&ZEROS[..k])?;
            n -= k;
        }
        Ok(())
    };
    let mut shortest = ryu::Buffer::new();
    let text = shortest.format_finite(value).as_bytes();
    // Most values: ryu's plain `ddd.ddd`, or `ddd.0`, which Go writes without its `.0`.
    let Some(e) = text.iter().position(|&b| b == b'e') else {
        return out.write_all(text.strip_suffix(b".0").unwrap_or(text));
    };
    // The others, `d.ddde±x`: gather the digits and where the point goes.
    let exponent = std::str::from_utf8(&text[e + 1..])
        .ok()
        .and_then(|x| x.parse::<i32>().ok())
        .unwrap_or(0);
    let (negative, mantissa) = match text[..e].split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, &text[..e]),
    };
    let mut digits = [0u8; 24];
    let mut count = 0;
    let mut point = exponent;
    let mut before_point = true;
    for &b in mantissa {
        if b == b'.' {
            before_point = false;
        } else if count == 0 && b == b'0' {
            // A leading zero (`0.00123`) moves the point, not the digits.
            point -= i32::from(!before_point);
        } else if count < digits.len() {
            digits[count] = b;
            count += 1;
            point += i32::from(before_point);
        }
    }
    while count > 0 && digits[count - 1] == b'0' {
        count -= 1;
    }
    let digits = &digits[..count];
    if negative {
        out.write_all(b"-")?;
    }
    if digits.is_empty() {
        out.write_all(b"0")
    } else if point <= 0 {
        out.write_all(b"0.")?;
        zeros(out, point.unsigned_abs() as usize)?;
        out.write_all(digits)
    } else {
        let point = point as usize;
        if point >= digits.len() {
            out.write_all(digits)?;
            zeros(out, point - digits.len())
        } else {
            out.write_all(&digits[..point])?;
            out.write_all(b".")?;
            out.write_all(&digits[point..])
        }
    }
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
            return write_plain_f64(value, writer);
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
    use proptest::prelude::*;

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

    fn go_text() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "a", "host_7", "<", ">", "&", "\"", "\\", "\n", "\r", "\t", "\u{8}", "\u{c}", "\u{1}",
            "\u{1f}", "\u{7f}", "\u{2028}", "\u{2029}", "\u{2027}", "\u{202a}", "é", "€", " ", "0",
        ]);
        prop::collection::vec(pieces, 0..12).prop_map(|p| p.concat())
    }

    fn go_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (i64::MAX as u64..=u64::MAX).prop_map(Value::from),
            prop::sample::select(vec![
                0.0, -0.0, 1.0, -3.0, 1.5, 0.1, 1e15, 1e16, 1e21, 1.5e-7, 2.5e300, -1e-300,
            ])
            .prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |x| x.is_finite())
                .prop_map(Value::from),
            go_text().prop_map(Value::from),
        ]
    }

    fn go_series() -> impl Strategy<Value = Series> {
        (
            go_text(),
            prop::option::of(prop::collection::btree_map(go_text(), go_text(), 0..3)),
            prop::collection::vec(go_text(), 0..4),
            prop::collection::vec(prop::collection::vec(go_value(), 0..4), 0..4),
        )
            .prop_map(|(name, tags, columns, values)| Series {
                name,
                tags,
                columns,
                values,
            })
    }

    /// A float is written in plain notation with as few digits as `{}`
    /// writes, and reads back the same. (The digits may differ where two shortest ones are
    /// equally near: Go, as ryu, rounds that half to even, `{}` up: 99594695278597.625 is
    /// `99594695278597.62` in Go's answers.)
    fn plain_as_display(x: f64) {
        let mine = &format_plain(x);
        let display = format!("{x}");
        let digits = |s: &str| s.trim_start_matches(['-', '0', '.']).replace('.', "").len();
        assert!(!mine.contains('e'), "{mine}");
        assert_eq!(
            mine.parse::<f64>().unwrap().to_bits(),
            x.to_bits(),
            "{mine} for {x:e}"
        );
        assert_eq!(digits(mine), digits(&display), "{mine} against {display}");
        assert_eq!(mine.len(), display.len(), "{mine} against {display}");
    }

    #[test]
    fn a_tie_of_shortest_digits_rounds_to_even_as_go_does() {
        // 99594695278597.625, exactly (a literal of it would be read as already rounded).
        let tie = 99594695278597.0 + 0.625;
        assert_eq!(format_plain(tie), "99594695278597.62");
    }

    #[test]
    fn plain_floats_at_the_edges_are_written_as_display_writes_them() {
        for x in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.1,
            1e-6,
            -1e-6,
            1.5e-6,
            9.999999999999999e20,
            1e20,
            1e15,
            1e16,
            123456789012345680.0,
            0.30000000000000004,
            2.5,
            100.0,
            1234.5678,
            0.000123,
            1e21,
            1e300,
            -1.7976931348623157e308,
            5e-324,
            1e-300,
            2.2250738585072014e-308,
        ] {
            plain_as_display(x);
            assert_eq!(format_plain(x), format!("{x}"));
        }
    }

    fn format_plain(x: f64) -> String {
        let mut out = Vec::new();
        write_plain_f64(x, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    proptest! {
        #[test]
        fn plain_floats_are_shortest_and_read_back_the_same(bits in any::<u64>(), scale in -6i32..21) {
            // Random digits at every magnitude of the plain range.
            let x = f64::from_bits(bits);
            if x.is_finite() && x != 0.0 {
                let m = x.abs().log10().floor() as i32;
                let y = x * 10f64.powi(scale - m);
                if y.is_finite() {
                    plain_as_display(y);
                }
                plain_as_display(x);
            }
        }
    }

    proptest! {
        #[test]
        fn the_hand_written_answer_is_the_encoders_byte_for_byte(
            results in prop::collection::vec(
                (
                    0usize..5,
                    prop::collection::vec(go_series(), 0..3),
                    prop::collection::vec(go_text(), 0..2),
                    prop::option::of(go_text()),
                ),
                0..3,
            )
        ) {
            let response = QueryResponse {
                results: results
                    .into_iter()
                    .map(|(statement_id, series, messages, error)| StatementResult {
                        statement_id,
                        series,
                        messages: messages
                            .into_iter()
                            .map(|text| super::super::result::Message { level: "warning", text })
                            .collect(),
                        error,
                    })
                    .collect(),
            };
            let mut by_hand = Vec::new();
            let mut rows = 0;
            write_response(&response, &mut by_hand, |_| {
                rows += 1;
                Ok(())
            })
            .unwrap();
            let want_rows: usize = response
                .results
                .iter()
                .flat_map(|r| &r.series)
                .map(|s| s.values.len())
                .sum();
            prop_assert_eq!(rows, want_rows);
            prop_assert_eq!(
                String::from_utf8(by_hand).unwrap(),
                String::from_utf8(to_vec(&response)).unwrap()
            );
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
