//! InfluxDB 1.x line protocol parser.
//!
//! Behaviour (accepted forms, error selection and error wording) follows
//! InfluxDB 1.6's `models/points.go`, re-implemented from scratch. The few
//! deliberate differences are documented on [`ParseOptions`] and in the
//! `parser` module docs.
//!
//! Self-contained: only `super::`/`self::` paths are used, so the directory
//! can be dropped into any crate as `src/line_protocol/`.

mod parser;
mod render;
#[cfg(test)]
mod tests;

pub use self::parser::{is_time_key, parse_body, parse_body_with, LineParser, ParseOptions};
pub use self::render::{
    escape_field_key, escape_measurement, escape_string_field, escape_tag, key_tags, series_key,
    write_point,
};

use std::borrow::Cow;
use std::fmt;

/// Smallest timestamp (ns since the epoch) InfluxDB accepts (`math.MinInt64 + 2`).
pub const MIN_NANOS: i64 = i64::MIN + 2;
/// Largest timestamp (ns since the epoch) InfluxDB accepts (`math.MaxInt64 - 1`).
pub const MAX_NANOS: i64 = i64::MAX - 1;
/// Maximum length of measurement+tags key, and of key + 4 + field key.
pub const MAX_KEY_LENGTH: usize = 65535;
/// InfluxDB's `ErrTimeOutOfRange` text.
pub const ERR_TIME_OUT_OF_RANGE: &str =
    "time outside range -9223372036854775806 - 9223372036854775806";

/// A field value.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Float(f64),
    Integer(i64),
    Unsigned(u64),
    String(String),
    Boolean(bool),
}

/// One parsed point. Its strings borrow from the request body unless unescaping changed
/// them: a point costs two allocations, not one per name.
#[derive(Debug, Clone)]
pub struct Point<'a> {
    /// The canonical series key ([`series_key`]). Taken verbatim from the line when
    /// the line already spells it canonically (the norm: sorted tags, no escapes).
    pub key: Cow<'a, str>,
    /// Unescaped measurement name.
    pub measurement: Cow<'a, str>,
    /// Unescaped field keys in line order. A key repeated within one line keeps
    /// only its last value (InfluxDB 1.6 collapses them the same way).
    pub fields: Vec<(Cow<'a, str>, FieldValue)>,
    /// Raw timestamp as written (unscaled); `None` when absent.
    pub timestamp: Option<i64>,
    /// The line the point was parsed from (leading whitespace and a final `\r` removed),
    /// which [`LineParser`] turns into the same point again: a shard's data log keeps
    /// this rather than an encoding of the parsed point. Empty for points not read from
    /// line protocol.
    pub line: &'a [u8],
    /// Whether a tag or field key is `time`, which storage refuses or drops as InfluxDB
    /// does: noted while the names are at hand, so that storage looks at them again
    /// only then.
    pub time_named: bool,
}

impl<'a> Point<'a> {
    /// A point of these parts (its key made from them).
    pub fn new<K: AsRef<str>, V: AsRef<str>>(
        measurement: Cow<'a, str>,
        tags: &[(K, V)],
        fields: Vec<(Cow<'a, str>, FieldValue)>,
        timestamp: Option<i64>,
    ) -> Point<'a> {
        let time_named = tags.iter().any(|(k, _)| is_time_key(k.as_ref().as_bytes()))
            || fields.iter().any(|(k, _)| is_time_key(k.as_bytes()));
        Point {
            key: series_key(&measurement, tags).into(),
            measurement,
            fields,
            timestamp,
            line: b"",
            time_named,
        }
    }

    /// Unescaped tags, sorted by key (byte order), read from the series key: a point
    /// keeps none of its own, since most points are of series already known and their
    /// tags are never looked at.
    pub fn tags(&self) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
        key_tags(&self.key)
    }
}

/// Points are equal when they hold the same data, whatever text they were read from.
impl PartialEq for Point<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
            && self.measurement == other.measurement
            && self.fields == other.fields
            && self.timestamp == other.timestamp
    }
}

/// Timestamp precision of a write request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    #[default]
    Nanoseconds,
    Microseconds,
    Milliseconds,
    Seconds,
    Minutes,
    Hours,
}

impl Precision {
    /// `precision=` of the 1.x `/write` endpoint: `""`, `n`, `ns`, `u`, `us`,
    /// `µ`/`μ`, `ms`, `s`, `m`, `h`. Unknown values give `None` (InfluxDB 1.6
    /// itself silently treats unknown values, and even `us`/`µ`, as nanoseconds;
    /// later 1.x releases (e.g. 1.12) reject unknown values
    /// with [`Precision::invalid_v1_message`]).
    pub fn parse_v1(s: &str) -> Option<Self> {
        Some(match s {
            "" | "n" | "ns" => Precision::Nanoseconds,
            "u" | "us" | "\u{b5}" | "\u{3bc}" | "\u{b5}s" | "\u{3bc}s" => Precision::Microseconds,
            "ms" => Precision::Milliseconds,
            "s" => Precision::Seconds,
            "m" => Precision::Minutes,
            "h" => Precision::Hours,
            _ => return None,
        })
    }

    /// `precision=` of the 2.x `/api/v2/write` endpoint: `ns`, `us`, `ms`, `s`
    /// (and `""`, meaning the default `ns`).
    pub fn parse_v2(s: &str) -> Option<Self> {
        Some(match s {
            "" | "ns" => Precision::Nanoseconds,
            "us" => Precision::Microseconds,
            "ms" => Precision::Milliseconds,
            "s" => Precision::Seconds,
            _ => return None,
        })
    }

    /// Later 1.x (e.g. 1.12) 400 message for a bad v1 precision.
    pub fn invalid_v1_message(s: &str) -> String {
        format!(
            "invalid precision {} (use n, u, ms, s, m or h)",
            go_quote(s)
        )
    }

    /// Later 1.x (e.g. 1.12) 400 message for a bad v2 precision.
    pub fn invalid_v2_message(s: &str) -> String {
        format!("invalid precision {} (use ns, us, ms or s)", go_quote(s))
    }

    /// Nanoseconds per unit.
    pub fn multiplier(self) -> i64 {
        match self {
            Precision::Nanoseconds => 1,
            Precision::Microseconds => 1_000,
            Precision::Milliseconds => 1_000_000,
            Precision::Seconds => 1_000_000_000,
            Precision::Minutes => 60_000_000_000,
            Precision::Hours => 3_600_000_000_000,
        }
    }

    /// Scales a raw timestamp to nanoseconds; `None` on i64 overflow.
    pub fn to_nanos(self, ts: i64) -> Option<i64> {
        ts.checked_mul(self.multiplier())
    }

    /// Like [`Precision::to_nanos`] but also `None` outside
    /// [`MIN_NANOS`]..=[`MAX_NANOS`] (InfluxDB's `SafeCalcTime`).
    pub fn to_nanos_in_range(self, ts: i64) -> Option<i64> {
        self.to_nanos(ts)
            .filter(|n| (MIN_NANOS..=MAX_NANOS).contains(n))
    }
}

/// One rejected line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unable to parse '{text}': {reason}")]
pub struct LineError {
    /// 1-based physical line number where the offending line starts.
    pub line: usize,
    /// The offending line, leading whitespace and line terminator removed
    /// (invalid UTF-8 replaced by U+FFFD).
    pub text: String,
    /// InfluxDB's reason, e.g. `missing fields`.
    pub reason: String,
}

impl LineError {
    /// InfluxDB 1.6's per-line message: `unable to parse '<line>': <reason>`.
    /// InfluxDB joins these with `\n` for the whole batch.
    pub fn influx_message(&self) -> String {
        format!("unable to parse '{}': {}", self.text, self.reason)
    }

    /// [`LineError::influx_message`] quoting at most [`MAX_QUOTED_LINE_BYTES`] of the
    /// line, then `...`.
    fn capped_message(&self) -> String {
        let quoted = truncate_at_char(&self.text, MAX_QUOTED_LINE_BYTES);
        let marker = if quoted.len() < self.text.len() {
            "..."
        } else {
            ""
        };
        format!("unable to parse '{quoted}{marker}': {}", self.reason)
    }
}

/// How much of one rejected line an error quotes. InfluxDB quotes every line whole, so a
/// megabyte tag value made a megabyte error; a kilobyte still shows where a line went wrong.
pub const MAX_QUOTED_LINE_BYTES: usize = 1024;

/// How long a batch's message may grow before the remaining lines are only counted. Below
/// the HTTP layer's cap on an error body (64 KiB) with room for "partial write: ... dropped=N".
pub const MAX_BATCH_MESSAGE_BYTES: usize = 60 * 1024;

/// Joins per-line errors the way InfluxDB 1.6 builds its batch error string (`\n` between
/// lines), each quote capped at [`MAX_QUOTED_LINE_BYTES`]; past [`MAX_BATCH_MESSAGE_BYTES`]
/// the lines left out are counted: `...and N more lines not shown`.
pub fn influx_batch_message(errors: &[LineError]) -> String {
    let mut out = String::new();
    for (i, e) in errors.iter().enumerate() {
        let message = e.capped_message();
        if i > 0 && out.len() + 1 + message.len() > MAX_BATCH_MESSAGE_BYTES {
            out.push_str(&format!(
                "\n...and {} more lines not shown",
                errors.len() - i
            ));
            break;
        }
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&message);
    }
    out
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn truncate_at_char(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(any(test, feature = "testing"))]
/// Fuzz entry point: must never panic for any input. Also asserts that the
/// optimised parser agrees with the reference walk (a differential oracle).
pub fn fuzz_parse(data: &[u8]) {
    let (points, errors) = parse_body(data);
    let mut again = LineParser::new(ParseOptions::default());
    for p in &points {
        // Data logs keep a point as its line: the line must give the same point again.
        assert_eq!(
            again.parse(p.line).as_ref(),
            Ok(p),
            "a point's line parses to it"
        );
        let tags = p.tags();
        assert_eq!(
            tags,
            self::parser::reference_tags(p.line),
            "a point's key holds its line's tags"
        );
        let key = series_key(&p.measurement, &tags);
        assert_eq!(p.key, key, "a point's key must be its canonical series key");
        // Re-rendering a parsed point must not panic either.
        let mut line = String::new();
        write_point(&mut line, p);
    }
    for e in &errors {
        let _ = e.influx_message();
        assert!(e.line >= 1);
    }
    // Differential oracle: the fast paths must agree with the reference walk.
    let reference = self::parser::parse_body_reference(data, &ParseOptions::default());
    assert!(
        (&points, &errors) == (&reference.0, &reference.1),
        "fast path diverged"
    );
    if let Some(opts) = data.first().map(|b| ParseOptions {
        precision: match b % 6 {
            0 => Precision::Nanoseconds,
            1 => Precision::Microseconds,
            2 => Precision::Milliseconds,
            3 => Precision::Seconds,
            4 => Precision::Minutes,
            _ => Precision::Hours,
        },
        allow_unsigned: b & 8 != 0,
        strip_cr: b & 16 != 0,
        max_fields: usize::MAX,
    }) {
        let fast = parse_body_with(data, &opts);
        assert!(
            fast == self::parser::parse_body_reference(data, &opts),
            "fast path diverged"
        );
    }
}

/// Go's `%q` for the characters that matter in our messages.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl fmt::Display for FieldValue {
    /// Line-protocol rendering of the value (strings quoted and escaped).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Float(v) => write!(f, "{}", v),
            FieldValue::Integer(v) => write!(f, "{}i", v),
            FieldValue::Unsigned(v) => write!(f, "{}u", v),
            FieldValue::Boolean(v) => f.write_str(if *v { "true" } else { "false" }),
            FieldValue::String(s) => {
                let mut out = String::with_capacity(s.len() + 2);
                out.push('"');
                escape_string_field(&mut out, s);
                out.push('"');
                f.write_str(&out)
            }
        }
    }
}
