//! The line protocol scanner/parser.
//!
//! Structure mirrors the decisions InfluxDB 1.6 makes (`models/points.go`):
//!
//! 1. A body is split into lines with InfluxDB's rules: a `\n` ends a line
//!    unless it is inside a quoted field value or follows a backslash.
//! 2. A line is validated in InfluxDB's order: key (measurement + tags),
//!    `max key length`, fields (structure, numbers, booleans, quotes),
//!    per-field key length, timestamp, trailing garbage.
//! 3. Field keys/values are then extracted with InfluxDB's field iterator
//!    rules and converted to typed values.
//!
//! Deliberate differences from 1.6 (all configurable or documented):
//! * `\r` before `\n` (or at end of body) is stripped when
//!   [`ParseOptions::strip_cr`] is set (default). 1.6 rejects such lines
//!   (`invalid number` / `bad timestamp`).
//! * `u` (unsigned) values are accepted when [`ParseOptions::allow_unsigned`]
//!   (default). 1.6 ships with uint support disabled (`invalid number`).
//! * Names and string values must be valid UTF-8 (`invalid UTF-8 in ...`,
//!   reported after InfluxDB's own errors); 1.6 stores arbitrary bytes.
//! * An empty field key (only reachable as `m <TAB>=1`) is `missing field key`.
//! * Repeated field keys keep the last value (1.6's parser accepts them and
//!   its `Fields()` map keeps the last one).
//!
//! Speed: the body is split optimistically at the next `\n` (exact whenever
//! the candidate has no backslash and parses); field spans found while
//! validating are reused when unambiguous; plain decimals use Clinger's fast
//! path. Both fast paths are checked against the reference walk by proptests.
//! Per point, only the output `String`s and two `Vec`s are allocated.

use super::{
    FieldValue, LineError, Point, Precision, ERR_TIME_OUT_OF_RANGE, MAX_KEY_LENGTH, MAX_NANOS,
    MIN_NANOS,
};
use std::borrow::Cow;

type Reason = Cow<'static, str>;

/// Parser settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    /// Precision used for the timestamp range check (`time outside range`).
    /// Timestamps are still returned unscaled.
    pub precision: Precision,
    /// Accept `123u` unsigned values (1.6 default build: `invalid number`).
    pub allow_unsigned: bool,
    /// Strip one `\r` at the end of each line (CRLF bodies).
    pub strip_cr: bool,
    /// Most fields a line may have (`usize::MAX`: no limit, as InfluxDB). Checked once
    /// the field section's structure is known, before a field is converted, so that a
    /// refused line costs one pass over its bytes.
    pub max_fields: usize,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            precision: Precision::Nanoseconds,
            allow_unsigned: true,
            strip_cr: true,
            max_fields: usize::MAX,
        }
    }
}

impl ParseOptions {
    /// Byte-for-byte InfluxDB 1.6 behaviour: no unsigned, no CR stripping.
    pub fn influxdb_v16(precision: Precision) -> Self {
        ParseOptions {
            precision,
            allow_unsigned: false,
            strip_cr: false,
            max_fields: usize::MAX,
        }
    }
}

/// Parses a whole request body with default options (ns precision range
/// check, unsigned accepted, CRLF accepted). Valid lines are returned even
/// when others fail.
pub fn parse_body(body: &[u8]) -> (Vec<Point<'_>>, Vec<LineError>) {
    parse_body_with(body, &ParseOptions::default())
}

/// Reusable per-body scratch space (no per-line allocation besides output).
#[derive(Default)]
struct Scratch {
    /// (key_start, key_end, value_start, value_end, key prefix) into the line.
    tags: Vec<(usize, usize, usize, usize, u64)>,
    /// (key_start, equals_sign, value_end) of each field, into the line.
    fields: Vec<(usize, usize, usize)>,
    buf: Vec<u8>,
}

/// Parses a whole request body.
pub fn parse_body_with<'a>(
    body: &'a [u8],
    opts: &ParseOptions,
) -> (Vec<Point<'a>>, Vec<LineError>) {
    // Counted with SIMD: a byte-at-a-time count was 6% of a point's instructions.
    let estimate = memchr::memchr_iter(b'\n', body).count() + 1;
    let mut points = Vec::with_capacity(estimate.min(1 << 20));
    let mut errors = Vec::new();
    let mut scratch = Scratch::default();
    let mut pos = 0usize;
    let mut line_no = 1usize;
    while pos < body.len() {
        // Optimistic path: take the line up to the next newline. When that
        // candidate has no backslash, no leading space, and parses,
        // InfluxDB's line splitter would have ended the line at the same
        // newline (its quote tracking starts at the first space, which is
        // then the measurement/field separator, and a successful parse
        // proves the quotes balanced there), so the exact splitter can be
        // skipped.
        let cand = find_any(body, pos, [b'\n', b'\\']);
        if cand >= body.len() || body[cand] == b'\n' {
            let mut block = &body[pos..cand];
            if opts.strip_cr && block.last() == Some(&b'\r') {
                block = &block[..block.len() - 1];
            }
            let start = skip_whitespace(block, 0);
            if start >= block.len() {
                pos = cand + 1;
                line_no += 1;
                continue;
            }
            // A space in the leading whitespace would start InfluxDB's
            // "fields" state early (its splitter counts from the raw line
            // start), so such lines take the exact path.
            if block[start] != b'#' && !block[..start].contains(&b' ') {
                if let Ok(p) = parse_one(&block[start..], opts, &mut scratch, true, true) {
                    points.push(p);
                    pos = cand + 1;
                    line_no += 1;
                    continue;
                }
            }
        }
        // Exact path: InfluxDB's line splitting rules.
        let (end, inner_newlines) = scan_line(body, pos);
        let mut block = &body[pos..end];
        let this_line = line_no;
        line_no += inner_newlines + 1;
        pos = end + 1;
        if opts.strip_cr && block.last() == Some(&b'\r') {
            block = &block[..block.len() - 1];
        }
        let start = skip_whitespace(block, 0);
        if start >= block.len() || block[start] == b'#' {
            continue;
        }
        let line = &block[start..];
        match parse_one(line, opts, &mut scratch, true, !line.contains(&b'\\')) {
            Ok(p) => points.push(p),
            Err(reason) => errors.push(LineError {
                line: this_line,
                text: String::from_utf8_lossy(line).into_owned(),
                reason: reason.into_owned(),
            }),
        }
    }
    (points, errors)
}

const fn byte_table(special: &[u8]) -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < special.len() {
        t[special[i] as usize] = 1;
        i += 1;
    }
    t
}

/// The bytes that end a field key or make it need unescaping, as a list and as a table.
const FIELD_ENDS: [u8; 5] = [b'\\', b' ', b'=', b',', b'"'];
static FIELD_SPECIAL: [u8; 256] = byte_table(&FIELD_ENDS);

#[cfg(any(test, feature = "testing"))]
/// Reference loop: InfluxDB's exact line splitter and the field-iterator walk
/// for every line, no fast paths. `fuzz_parse` and the tests check that
/// [`parse_body_with`] always agrees with it.
pub(super) fn parse_body_reference<'a>(
    body: &'a [u8],
    opts: &ParseOptions,
) -> (Vec<Point<'a>>, Vec<LineError>) {
    let (mut points, mut errors) = (Vec::new(), Vec::new());
    let mut scratch = Scratch::default();
    let (mut pos, mut line_no) = (0usize, 1usize);
    while pos < body.len() {
        let (end, inner_newlines) = scan_line_slow(body, pos, false, 0, 0);
        let mut block = &body[pos..end];
        let this_line = line_no;
        line_no += inner_newlines + 1;
        pos = end + 1;
        if opts.strip_cr && block.last() == Some(&b'\r') {
            block = &block[..block.len() - 1];
        }
        let start = skip_whitespace(block, 0);
        if start >= block.len() || block[start] == b'#' {
            continue;
        }
        let line = &block[start..];
        match parse_one(line, opts, &mut scratch, false, !line.contains(&b'\\')) {
            Ok(p) => points.push(p),
            Err(reason) => errors.push(LineError {
                line: this_line,
                text: String::from_utf8_lossy(line).into_owned(),
                reason: reason.into_owned(),
            }),
        }
    }
    (points, errors)
}

#[inline]
fn skip_whitespace(buf: &[u8], mut i: usize) -> usize {
    while i < buf.len() && matches!(buf[i], b' ' | b'\t' | 0) {
        i += 1;
    }
    i
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Non-zero iff some byte of `w` equals `b` (exact SWAR zero-byte test).
#[inline(always)]
fn has_byte(w: u64, b: u8) -> u64 {
    let x = w ^ (LO * b as u64);
    x.wrapping_sub(LO) & !x & HI
}

/// Index of the first of `needles` at or after `i` (or `buf.len()`), eight bytes at a
/// time: where a line, a tag key or value, or a field key ends.
#[inline(always)]
fn find_any<const N: usize>(buf: &[u8], mut i: usize, needles: [u8; N]) -> usize {
    while i + 8 <= buf.len() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&buf[i..i + 8]);
        let w = u64::from_le_bytes(w);
        let m = needles.iter().fold(0, |m, &b| m | has_byte(w, b));
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < buf.len() && !needles.contains(&buf[i]) {
        i += 1;
    }
    i
}

/// Finds the end of the line starting at `start` (index of the terminating
/// `\n` or `buf.len()`), plus the number of `\n` bytes inside the line.
///
/// Same result as InfluxDB's byte-wise `scanLine` ([`scan_line_slow`]), but
/// jumps between `\n`/`"`/`\\` bytes with a SWAR search and accounts for the
/// spans in between (which only matter through their spaces, `=` and `,`)
/// with simple counting loops.
pub(super) fn scan_line(buf: &[u8], start: usize) -> (usize, usize) {
    let len = buf.len();
    let mut i = start;
    let mut quoted = false;
    let mut fields = false;
    let mut equals = 0usize;
    let mut commas = 0usize;
    let mut newlines = 0usize;
    loop {
        let next = find_any(buf, i, [b'\n', b'"', b'\\']);
        if next >= len {
            return (len, newlines);
        }
        if !quoted && next > i {
            let mut span = &buf[i..next];
            if !fields {
                if let Some(sp) = span.iter().position(|&c| c == b' ') {
                    fields = true;
                    span = &span[sp..];
                }
            }
            if fields {
                equals += span.iter().filter(|&&c| c == b'=').count();
                commas += span.iter().filter(|&&c| c == b',').count();
            }
        }
        i = next;
        match buf[i] {
            b'\\' => {
                if i + 2 < len {
                    if buf[i + 1] == b'\n' {
                        newlines += 1;
                    }
                    i += 2;
                } else {
                    i += 1;
                }
            }
            b'"' => {
                if fields && equals > commas {
                    quoted = !quoted;
                }
                i += 1;
            }
            _ => {
                // newline
                if !quoted {
                    return (i, newlines);
                }
                newlines += 1;
                i += 1;
            }
        }
    }
}

#[cfg(any(test, feature = "testing"))]
/// InfluxDB's `scanLine` state machine, resumed at `i` with the given state.
pub(super) fn scan_line_slow(
    buf: &[u8],
    i: usize,
    mut fields: bool,
    mut equals: usize,
    mut commas: usize,
) -> (usize, usize) {
    let mut i = i;
    let mut quoted = false;
    let mut newlines = 0usize;
    while i < buf.len() {
        let c = buf[i];
        if c == b'\\' && i + 2 < buf.len() {
            if buf[i + 1] == b'\n' {
                newlines += 1;
            }
            i += 2;
            continue;
        }
        if c == b' ' {
            fields = true;
        }
        if fields {
            if !quoted && c == b'=' {
                i += 1;
                equals += 1;
                continue;
            } else if !quoted && c == b',' {
                i += 1;
                commas += 1;
                continue;
            } else if c == b'"' && equals > commas {
                i += 1;
                quoted = !quoted;
                continue;
            }
        }
        if c == b'\n' {
            if !quoted {
                break;
            }
            newlines += 1;
        }
        i += 1;
    }
    (i, newlines)
}

/// Parses single lines as [`parse_body_with`] parses them within a body (the `line` of a
/// point it returned gives that point again), reusing its scratch space from line to line.
pub struct LineParser {
    opts: ParseOptions,
    scratch: Scratch,
}

impl LineParser {
    pub fn new(opts: ParseOptions) -> LineParser {
        LineParser {
            opts,
            scratch: Scratch::default(),
        }
    }

    /// The line's point, or InfluxDB's reason for refusing it.
    pub fn parse<'a>(&mut self, line: &'a [u8]) -> Result<Point<'a>, String> {
        let plain = !line.contains(&b'\\');
        parse_one(line, &self.opts, &mut self.scratch, true, plain).map_err(Cow::into_owned)
    }
}

fn parse_one<'a>(
    buf: &'a [u8],
    opts: &ParseOptions,
    sc: &mut Scratch,
    fast_fields: bool,
    plain: bool,
) -> Result<Point<'a>, Reason> {
    let len = buf.len();
    // One vectorised check per line lets every output string skip UTF-8
    // validation in the common all-ASCII case.
    let ascii = buf.is_ascii();
    // `plain`: the caller knows the line has no backslash (the norm), so
    // per-string escape searches are skipped.
    // ---- measurement ----
    if len == 0 || buf[0] == b',' {
        return Err("missing measurement".into());
    }
    let mut i = 0usize;
    let has_tags;
    let mut raw_key_canonical = plain;
    // Whether the raw measurement and `key=value` spans are canonical (perhaps unsorted).
    let mut raw_spans_canonical = plain;
    loop {
        i += 1;
        if i >= len {
            return Err("missing fields".into());
        }
        if buf[i - 1] == b'\\' {
            continue;
        }
        if buf[i] == b',' {
            has_tags = true;
            break;
        }
        if buf[i] == b' ' {
            has_tags = false;
            break;
        }
    }
    let meas_end = i;
    // ---- tags ----
    // Without a backslash in the line, a tag key or value ends at the first space, comma
    // or `=`, found eight bytes at a time (the reference walk keeps the byte loop).
    let fast_tags = plain && fast_fields;
    sc.tags.clear();
    if has_tags {
        i += 1;
        loop {
            let ks = i;
            if i >= len || matches!(buf[i], b' ' | b',' | b'=') {
                return Err("missing tag key".into());
            }
            if fast_tags {
                i = find_any(buf, i + 1, [b' ', b',', b'=']);
                if i >= len || buf[i] != b'=' {
                    return Err("missing tag value".into());
                }
            } else {
                loop {
                    i += 1;
                    if i >= len || (matches!(buf[i], b' ' | b',') && buf[i - 1] != b'\\') {
                        return Err("missing tag value".into());
                    }
                    if buf[i] == b'=' && buf[i - 1] != b'\\' {
                        break;
                    }
                }
            }
            let ke = i;
            i += 1;
            let vs = i;
            if i >= len || buf[i] == b',' || buf[i] == b' ' {
                return Err("missing tag value".into());
            }
            if buf[i] == b'=' {
                // Accepted first (as InfluxDB does), but escaped in the canonical key.
                raw_key_canonical = false;
                raw_spans_canonical = false;
            }
            let more;
            if fast_tags {
                i = find_any(buf, i + 1, [b' ', b',', b'=']);
                if i >= len {
                    return Err("missing fields".into());
                }
                match buf[i] {
                    b'=' => return Err("invalid tag format".into()),
                    b',' => more = true,
                    _ => more = false, // a space
                }
            } else {
                loop {
                    i += 1;
                    if i >= len {
                        return Err("missing fields".into());
                    }
                    if buf[i - 1] != b'\\' {
                        match buf[i] {
                            b'=' => return Err("invalid tag format".into()),
                            b',' => {
                                more = true;
                                break;
                            }
                            b' ' => {
                                more = false;
                                break;
                            }
                            _ => {}
                        }
                    }
                }
            }
            sc.tags.push((ks, ke, vs, i, prefix(&buf[ks..ke])));
            if !more {
                break;
            }
            i += 1;
        }
        // Duplicate detection on the raw (escaped) keys, as InfluxDB does.
        let tags = &mut sc.tags;
        // Compare 8-byte prefixes as integers first: most tag keys differ early.
        let order = |a: &(usize, usize, usize, usize, u64),
                     b: &(usize, usize, usize, usize, u64)| {
            a.4.cmp(&b.4)
                .then_with(|| buf[a.0..a.1].cmp(&buf[b.0..b.1]))
        };
        let raw_sorted = tags.windows(2).all(|w| order(&w[0], &w[1]).is_le());
        if !raw_sorted {
            raw_key_canonical = false;
            tags.sort_unstable_by(order);
        }
        if tags
            .windows(2)
            .any(|w| buf[w[0].0..w[0].1] == buf[w[1].0..w[1].1])
        {
            return Err("duplicate tags".into());
        }
    }
    let key_len = i; // the key spans buf[0..i]
    if key_len > MAX_KEY_LENGTH {
        return Err(format!("max key length exceeded: {} > {}", key_len, MAX_KEY_LENGTH).into());
    }

    // ---- fields: structural validation ----
    let (fs, fe, nfields, clean) = scan_fields(buf, i, opts.allow_unsigned, &mut sc.fields)?;
    if fs == fe {
        return Err("missing fields".into());
    }
    if nfields > opts.max_fields {
        return Err(too_many_fields(nfields, opts.max_fields).into());
    }

    // ---- fields: InfluxDB's field-iterator tokenisation ----
    // Clean lines (no backslash, one `=` per segment) already have it in
    // `sc.fields`; anything else is re-walked with the iterator's own rules
    // (`scanTo '='` + `scanFieldValue`), which differ on odd inputs.
    if !(clean && plain && fast_fields) {
        sc.fields.clear();
        let f = &buf[fs..fe];
        let n = f.len();
        let mut b = 0usize;
        while b < n {
            let ks = b;
            let mut j = b;
            while j < n && !(f[j] == b'=' && (j == b || f[j - 1] != b'\\')) {
                j += 1;
            }
            if j + 2 > n {
                return Err(format!(
                    "invalid value: field-key={}",
                    String::from_utf8_lossy(&f[ks..j])
                )
                .into());
            }
            let sz = key_len + 4 + (j - ks);
            if sz > MAX_KEY_LENGTH {
                return Err(format!("max key length exceeded: {} > {}", sz, MAX_KEY_LENGTH).into());
            }
            let mut k = j + 1;
            let mut q = false;
            while k < n {
                let c = f[k];
                if c == b'\\' && k + 1 < n && (f[k + 1] == b'"' || f[k + 1] == b'\\') {
                    k += 2;
                    continue;
                }
                if c == b'"' {
                    q = !q;
                } else if c == b',' && !q {
                    break;
                }
                k += 1;
            }
            sc.fields.push((fs + ks, fs + j, fs + k));
            b = k + 1; // skip the comma (or step past the end)
        }
    }

    // Conversion problems are deferred so that InfluxDB's own parse errors
    // (timestamp) take precedence, matching 1.6 which converts values later.
    let mut deferred: Option<Reason> = None;
    let mut fields: Vec<(Cow<'a, str>, FieldValue)> = Vec::with_capacity(nfields);
    for &(ks, eq, ve) in &sc.fields {
        let sz = key_len + 4 + (eq - ks);
        if sz > MAX_KEY_LENGTH {
            return Err(format!("max key length exceeded: {} > {}", sz, MAX_KEY_LENGTH).into());
        }
        if deferred.is_some() {
            continue;
        }
        let key = match unescape(&buf[ks..eq], MEAS_CODES, &mut sc.buf, ascii, plain) {
            Some(k) if !k.is_empty() => k,
            Some(_) => {
                deferred = Some("missing field key".into());
                continue;
            }
            None => {
                deferred = Some("invalid UTF-8 in field key".into());
                continue;
            }
        };
        match convert_value(&buf[eq + 1..ve], &mut sc.buf, ascii, plain) {
            Ok(v) => fields.push((key, v)),
            Err(e) => deferred = Some(e),
        }
    }

    // ---- timestamp ----
    let ts_start = skip_whitespace(buf, fe);
    let mut t = ts_start;
    while t < len {
        let c = buf[t];
        if c == b'\n' || c == b' ' {
            break;
        }
        if t == ts_start && c == b'-' {
            t += 1;
            continue;
        }
        if !c.is_ascii_digit() {
            return Err("bad timestamp".into());
        }
        t += 1;
    }
    let ts_raw = &buf[ts_start..t];
    let timestamp = if ts_raw.is_empty() {
        None
    } else {
        let ts = match parse_i64(ts_raw) {
            Some(v) => v,
            None => {
                let s = String::from_utf8_lossy(ts_raw);
                let kind = if ts_raw.len() > 1 {
                    "value out of range"
                } else {
                    "invalid syntax"
                };
                return Err(format!("strconv.ParseInt: parsing \"{}\": {}", s, kind).into());
            }
        };
        match opts.precision.to_nanos(ts) {
            Some(ns) if (MIN_NANOS..=MAX_NANOS).contains(&ns) => {}
            _ => return Err(ERR_TIME_OUT_OF_RANGE.into()),
        }
        if buf[t..].iter().any(|&c| c != b' ') {
            return Err("point is invalid".into());
        }
        Some(ts)
    };
    if let Some(e) = deferred {
        return Err(e);
    }

    // ---- build the point ----
    let measurement = match unescape(&buf[..meas_end], MEAS_CODES, &mut sc.buf, ascii, plain) {
        Some(m) => m,
        None => return Err("invalid UTF-8 in measurement".into()),
    };
    // The point keeps no tags of its own (its key holds them): they are unescaped only
    // when the key must be built from them, and otherwise only checked to be UTF-8.
    let build_key = !raw_key_canonical && !raw_spans_canonical;
    let mut tags = Vec::new();
    let mut time_named = fields.iter().any(|(k, _)| is_time_key(k.as_bytes()));
    for &(ks, ke, vs, ve, _) in &sc.tags {
        // Unescaping never makes a name `time` (it leaves a `,`, `=` or space behind).
        time_named |= is_time_key(&buf[ks..ke]);
        if ascii && !build_key {
            continue;
        }
        let k = unescape(&buf[ks..ke], TAG_CODES, &mut sc.buf, ascii, plain)
            .ok_or(Cow::Borrowed("invalid UTF-8 in tag key"))?;
        let v = unescape(&buf[vs..ve], TAG_CODES, &mut sc.buf, ascii, plain)
            .ok_or(Cow::Borrowed("invalid UTF-8 in tag value"))?;
        if build_key {
            tags.push((k, v));
        }
    }
    dedup_fields(&mut fields);
    // Without escapes, a measurement and tags that parsed contain no byte the key would
    // escape (but for a tag value's leading `=`), and tag values are never empty: sorted
    // raw text is the canonical key.
    let key = match raw_key_canonical {
        true => match to_str(&buf[..key_len], ascii) {
            Some(k) => Cow::Borrowed(k),
            None => return Err("invalid UTF-8 in measurement".into()),
        },
        // Same argument, tags out of order: the raw `key=value` spans, sorted above, are the
        // canonical key's parts.
        false if raw_spans_canonical => {
            let mut key = Vec::with_capacity(key_len);
            key.extend_from_slice(&buf[..meas_end]);
            for &(ks, _, _, ve, _) in &sc.tags {
                key.push(b',');
                key.extend_from_slice(&buf[ks..ve]);
            }
            if ascii {
                // SAFETY: every byte of the line is ASCII, so the key is UTF-8 (validating
                // it again was 1% of a point's CPU).
                Cow::Owned(unsafe { String::from_utf8_unchecked(key) })
            } else {
                match String::from_utf8(key) {
                    Ok(k) => Cow::Owned(k),
                    Err(_) => return Err("invalid UTF-8 in measurement".into()),
                }
            }
        }
        false => Cow::Owned(super::series_key(&measurement, &tags)),
    };
    Ok(Point {
        key,
        measurement,
        fields,
        timestamp,
        line: buf,
        time_named,
    })
}

/// Whether a tag or field key is `time`, the name InfluxDB keeps for the time column: a
/// pattern compiles to a length check and one 4-byte compare, where `==` on strings calls
/// memcmp.
#[inline]
pub fn is_time_key(name: &[u8]) -> bool {
    matches!(name, b"time")
}

#[cfg(any(test, feature = "testing"))]
/// The tags of a line that parses, by a plain byte walk of InfluxDB's rules (no fast
/// path, nothing shared with [`parse_one`]'s tag scan): the oracle that a point's key
/// holds its line's tags ([`super::Point::tags`]).
pub(super) fn reference_tags(line: &[u8]) -> Vec<(Cow<'static, str>, Cow<'static, str>)> {
    let unescaped = |raw: &[u8]| {
        let mut out = Vec::new();
        let mut i = 0;
        while i < raw.len() {
            if raw[i] == b'\\' && i + 1 < raw.len() && TAG_CODES.contains(&raw[i + 1]) {
                i += 1;
            }
            out.push(raw[i]);
            i += 1;
        }
        Cow::<'static, str>::Owned(String::from_utf8(out).expect("a parsed tag is UTF-8"))
    };
    let ends = |i: usize, set: &[u8]| set.contains(&line[i]) && line[i - 1] != b'\\';
    let mut i = 1;
    while !ends(i, b", ") {
        i += 1;
    }
    let mut tags = Vec::new();
    while line[i] == b',' {
        let ks = i + 1;
        let mut eq = ks + 1;
        while !ends(eq, b"=") {
            eq += 1;
        }
        let mut ve = eq + 2;
        while ve < line.len() && !ends(ve, b", ") {
            ve += 1;
        }
        tags.push((unescaped(&line[ks..eq]), unescaped(&line[eq + 1..ve])));
        i = ve;
    }
    tags.sort_by(|a, b| a.0.cmp(&b.0));
    tags
}

/// The first 8 bytes, zero-padded, as a big-endian integer: orders like the bytes
/// whenever two prefixes differ.
#[inline]
fn prefix(b: &[u8]) -> u64 {
    let mut p = [0u8; 8];
    let n = b.len().min(8);
    p[..n].copy_from_slice(&b[..n]);
    u64::from_be_bytes(p)
}

/// The error of a line with more fields than [`ParseOptions::max_fields`]; it names the
/// config key that sets the limit.
fn too_many_fields(fields: usize, max: usize) -> String {
    format!("too many fields: {fields} > max_fields_per_point ({max})")
}

/// Cheap fingerprint of a field key: length, first and last byte.
#[inline]
fn fingerprint(s: &str) -> u32 {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) => ((b.len() as u32) << 16) ^ ((f as u32) << 8) ^ l as u32,
        _ => 0,
    }
}

/// Removes earlier occurrences of repeated field keys (last value wins).
fn dedup_fields(fields: &mut Vec<(Cow<'_, str>, FieldValue)>) {
    let n = fields.len();
    if n < 2 {
        return;
    }
    let has_dup = if n <= 32 {
        let mut fps = [0u32; 32];
        for (i, f) in fields.iter().enumerate() {
            fps[i] = fingerprint(&f.0);
        }
        (1..n).any(|i| (0..i).any(|j| fps[j] == fps[i] && fields[j].0 == fields[i].0))
    } else {
        let mut keys: Vec<&str> = fields.iter().map(|f| f.0.as_ref()).collect();
        keys.sort_unstable();
        keys.windows(2).any(|w| w[0] == w[1])
    };
    if !has_dup {
        return;
    }
    let mut seen = std::collections::HashSet::with_capacity(n);
    let mut keep = vec![false; n];
    for i in (0..n).rev() {
        keep[i] = seen.insert(fields[i].0.clone());
    }
    let mut idx = 0;
    fields.retain(|_| {
        let k = keep[idx];
        idx += 1;
        k
    });
}

/// Structural validation of the field section, InfluxDB's `scanFields`.
/// Returns (start, end, number of fields).
///
/// Also records each comma-separated segment as (start, first `=`, end) in
/// `spans`, and returns whether every segment has exactly one unquoted `=`
/// (then, for a line without backslashes, the spans are exactly what
/// InfluxDB's field iterator would produce).
fn scan_fields(
    buf: &[u8],
    from: usize,
    allow_unsigned: bool,
    spans: &mut Vec<(usize, usize, usize)>,
) -> Result<(usize, usize, usize, bool), Reason> {
    let len = buf.len();
    let start = skip_whitespace(buf, from);
    let mut i = start;
    let mut quoted = false;
    let mut equals = 0usize;
    let mut commas = 0usize;
    spans.clear();
    let mut clean = true;
    let mut seg_start = start;
    let mut seg_eq = usize::MAX;
    while i < len {
        let c = buf[i];
        if FIELD_SPECIAL[c as usize] == 0 {
            i = find_any(buf, i + 1, FIELD_ENDS);
            continue;
        }
        if c == b'\\' && i + 1 < len {
            i += 2;
            continue;
        }
        if c == b'"' && equals > commas {
            quoted = !quoted;
            i += 1;
            continue;
        }
        if c == b'=' && !quoted {
            equals += 1;
            if equals == commas + 1 {
                seg_eq = i;
            } else {
                clean = false;
            }
            let p1 = if i >= 1 { buf[i - 1] } else { 0 };
            let p2 = if i >= 2 { buf[i - 2] } else { 0 };
            if (p1 == b' ' || p1 == b',') && p2 != b'\\' {
                return Err("missing field key".into());
            }
            if i + 1 >= len {
                return Err("missing field value".into());
            }
            let nx = buf[i + 1];
            if nx == b',' || nx == b' ' {
                return Err("missing field value".into());
            }
            if nx.is_ascii_digit() || matches!(nx, b'.' | b'-' | b'N' | b'n') {
                i = scan_number(buf, i + 1, allow_unsigned)?;
                continue;
            }
            if nx != b'"' {
                i = scan_boolean(buf, i + 1)?;
                continue;
            }
        }
        if !quoted {
            if c == b',' {
                spans.push((seg_start, seg_eq, i));
                commas += 1;
                seg_start = i + 1;
                seg_eq = usize::MAX;
            } else if c == b' ' {
                break;
            }
        }
        i += 1;
    }
    if quoted {
        return Err("unbalanced quotes".into());
    }
    if equals == 0 || commas != equals - 1 {
        return Err("invalid field format".into());
    }
    spans.push((seg_start, seg_eq, i));
    clean &= spans.iter().all(|s| s.1 != usize::MAX);
    Ok((start, i, equals, clean))
}

#[inline]
fn is_numeric(b: u8) -> bool {
    b.is_ascii_digit() || b == b'.'
}

const INVALID_NUMBER: &str = "invalid number";

/// InfluxDB's `scanNumber`: validates a number starting at `i`, returning the
/// index of the terminating `,`/space/end.
fn scan_number(buf: &[u8], mut i: usize, allow_unsigned: bool) -> Result<usize, Reason> {
    let len = buf.len();
    let start = i;
    if i < len && buf[i] == b'-' {
        i += 1;
        if i == len {
            return Err(INVALID_NUMBER.into());
        }
    }
    let mut decimal = false;
    let mut scientific = false;
    let mut is_int = false;
    let mut is_unsigned = false;
    while i < len {
        let c = buf[i];
        if c == b',' || c == b' ' {
            break;
        }
        if c == b'i' && i > start && !(is_int || is_unsigned) {
            is_int = true;
            i += 1;
            continue;
        }
        if c == b'u' && i > start && !(is_int || is_unsigned) {
            is_unsigned = true;
            i += 1;
            continue;
        }
        if c == b'.' {
            if decimal {
                return Err(INVALID_NUMBER.into());
            }
            decimal = true;
        }
        if i > start && (c == b'e' || c == b'E') {
            scientific = true;
            i += 1;
            continue;
        }
        if (c == b'+' || c == b'-') && i > 0 && (buf[i - 1] == b'e' || buf[i - 1] == b'E') {
            i += 1;
            continue;
        }
        if !is_numeric(c) {
            // includes NaN / nan / Inf / garbage
            return Err(INVALID_NUMBER.into());
        }
        i += 1;
    }
    if (is_int || is_unsigned) && (decimal || scientific) {
        return Err(INVALID_NUMBER.into());
    }
    let mut digits = i - start;
    if is_int {
        digits -= 1;
    }
    if decimal {
        digits -= 1;
    }
    if buf[start] == b'-' {
        digits -= 1;
    }
    if digits == 0 {
        return Err(INVALID_NUMBER.into());
    }
    if is_int {
        if buf[i - 1] != b'i' {
            return Err(INVALID_NUMBER.into());
        }
        let s = &buf[start..i - 1];
        if parse_i64(s).is_none() {
            let s = String::from_utf8_lossy(s);
            return Err(format!(
                "unable to parse integer {s}: strconv.ParseInt: parsing \"{s}\": value out of range"
            )
            .into());
        }
    } else if is_unsigned {
        if !allow_unsigned || buf[i - 1] != b'u' || buf[start] == b'-' {
            return Err(INVALID_NUMBER.into());
        }
        let s = &buf[start..i - 1];
        if parse_u64(s).is_none() {
            let s = String::from_utf8_lossy(s);
            return Err(format!(
                "unable to parse unsigned {s}: strconv.ParseUint: parsing \"{s}\": value out of range"
            )
            .into());
        }
    } else if scientific || i - start >= 25 {
        match parse_f64(&buf[start..i]) {
            Some(v) if v.is_finite() => {}
            _ => return Err("invalid float".into()),
        }
    }
    Ok(i)
}

/// InfluxDB's `scanBoolean`.
fn scan_boolean(buf: &[u8], i: usize) -> Result<usize, Reason> {
    let start = i;
    if i < buf.len() && !matches!(buf[i], b't' | b'f' | b'T' | b'F') {
        return Err("invalid boolean".into());
    }
    let mut i = i + 1;
    while i < buf.len() && buf[i] != b',' && buf[i] != b' ' {
        i += 1;
    }
    if i - start == 1 {
        return Ok(i);
    }
    match parse_bool(&buf[start..i.min(buf.len())]) {
        Some(_) => Ok(i),
        None => Err("invalid boolean".into()),
    }
}

#[inline]
fn parse_bool(s: &[u8]) -> Option<bool> {
    match s {
        b"t" | b"T" | b"true" | b"True" | b"TRUE" => Some(true),
        b"f" | b"F" | b"false" | b"False" | b"FALSE" => Some(false),
        _ => None,
    }
}

/// Decimal i64 with optional leading '-' (digits only); `None` on bad syntax
/// or overflow.
#[inline]
fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    if digits.len() <= 18 {
        for &c in digits {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            v = v * 10 + d as i64;
        }
        return Some(if neg { -v } else { v });
    }
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?;
        v = if neg {
            v.checked_sub(d as i64)?
        } else {
            v.checked_add(d as i64)?
        };
    }
    Some(v)
}

#[inline]
fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(d as u64)?;
    }
    Some(v)
}

#[inline]
fn parse_f64(s: &[u8]) -> Option<f64> {
    // Only ASCII number characters reach here; reject anything else so that
    // Rust-only spellings (inf, nan, +x) are never accepted.
    if !s
        .iter()
        .all(|&c| matches!(c, b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    // SAFETY: all bytes were just checked to be ASCII.
    unsafe { std::str::from_utf8_unchecked(s) }
        .parse::<f64>()
        .ok()
}

/// Exact powers of ten (all representable in f64).
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// Clinger's fast path for plain decimals (`-?digits[.digits]`, at most 15
/// digits, no exponent): mantissa and 10^k are exact doubles, so one IEEE
/// division gives the correctly rounded result. `None` means "use the full
/// parser".
#[inline]
fn fast_float(s: &[u8]) -> Option<f64> {
    let (neg, s) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let mut mant: u64 = 0;
    let mut digits = 0usize;
    let mut frac = 0usize;
    let mut dot = false;
    for &c in s {
        if c == b'.' {
            if dot {
                return None;
            }
            dot = true;
            continue;
        }
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        mant = mant * 10 + d as u64;
        digits += 1;
        frac += dot as usize;
        if digits > 15 {
            return None;
        }
    }
    if digits == 0 {
        return None;
    }
    let v = mant as f64 / POW10[frac];
    Some(if neg { -v } else { v })
}

/// Converts a raw field value (InfluxDB's iterator typing rules).
fn convert_value(
    v: &[u8],
    scratch: &mut Vec<u8>,
    ascii: bool,
    plain: bool,
) -> Result<FieldValue, Reason> {
    let Some(&c) = v.first() else {
        return Err("invalid field format".into());
    };
    if c == b'"' {
        if v.len() < 2 {
            return Err("unbalanced quotes".into());
        }
        let inner = &v[1..v.len() - 1];
        return match unescape(inner, b"\\\"", scratch, ascii, plain) {
            Some(s) => Ok(FieldValue::String(s.into_owned())),
            None => Err("invalid UTF-8 in string field".into()),
        };
    }
    if matches!(
        c,
        b'0'..=b'9' | b'-' | b'.' | b'n' | b'N' | b'i' | b'I' | b'u'
    ) {
        let last = v[v.len() - 1];
        if last == b'i' {
            return parse_i64(&v[..v.len() - 1])
                .map(FieldValue::Integer)
                .ok_or(INVALID_NUMBER.into());
        }
        if last == b'u' {
            return parse_u64(&v[..v.len() - 1])
                .map(FieldValue::Unsigned)
                .ok_or(INVALID_NUMBER.into());
        }
        if let Some(f) = fast_float(v) {
            return Ok(FieldValue::Float(f));
        }
        return match parse_f64(v) {
            Some(f) if f.is_finite() => Ok(FieldValue::Float(f)),
            _ => Err(INVALID_NUMBER.into()),
        };
    }
    parse_bool(v)
        .map(FieldValue::Boolean)
        .ok_or("invalid boolean".into())
}

/// Escape codes removed from measurements (InfluxDB's `escape.Unescape`).
const MEAS_CODES: &[u8] = b", \"=";
/// Escape codes removed from tag keys and values (`unescapeTag`).
const TAG_CODES: &[u8] = b", =";

/// The bytes as a string; `ascii` asserts the bytes are ASCII (checked by
/// the caller on the whole line), which skips UTF-8 validation.
#[inline]
fn to_str(bytes: &[u8], ascii: bool) -> Option<&str> {
    if ascii {
        debug_assert!(bytes.is_ascii());
        // SAFETY: every byte is ASCII (caller checked a superset of these
        // bytes; unescaping only removes bytes), hence valid UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes).ok()
    }
}

/// Removes the backslash of every `\X` with X in `codes` (left to right);
/// other backslashes are kept literally. String field values use the codes
/// `\\` and `"`.
fn unescape<'a>(
    raw: &'a [u8],
    codes: &[u8],
    scratch: &mut Vec<u8>,
    ascii: bool,
    plain: bool,
) -> Option<Cow<'a, str>> {
    // The norm, a string without escapes, is borrowed from the request body.
    if plain || !raw.contains(&b'\\') {
        return to_str(raw, ascii).map(Cow::Borrowed);
    }
    scratch.clear();
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        if c == b'\\' && i + 1 < raw.len() && codes.contains(&raw[i + 1]) {
            scratch.push(raw[i + 1]);
            i += 2;
        } else {
            scratch.push(c);
            i += 1;
        }
    }
    to_str(scratch, ascii).map(|s| Cow::Owned(s.to_owned()))
}
