//! The kinds of a shard's data-log records, and their decoding for replay (and for a write
//! whose caller went away, applied from the log).

use crate::line_protocol::{LineParser, Point};
use crate::proto::Tombstone;
use crate::storage::tombstone::{TombstonesWritten, TOMBSTONE_RECORD};
use prost::Message;
use std::sync::OnceLock;

/// A data-log record as replay applies it.
pub(crate) enum Replayed<'a> {
    Points(u64, Vec<Point<'a>>),
    Tombstones(Vec<Tombstone>),
    Other,
}

pub(super) fn decode_record<'a>(
    kind: u8,
    payload: &'a [u8],
    inflated: &'a OnceLock<Vec<u8>>,
    parser: &mut LineParser,
) -> Result<Replayed<'a>, String> {
    match kind {
        POINTS_RECORD => crate::storage::points_codec::decode_points_written(payload)
            .map(|(version, points)| Replayed::Points(version, points))
            .map_err(|e| e.to_string()),
        TOMBSTONE_RECORD => TombstonesWritten::decode(payload)
            .map(|w| Replayed::Tombstones(w.tombstones))
            .map_err(|e| e.to_string()),
        POINT_LINES_RECORD => parse_point_lines(payload, parser),
        POINT_LINES_ZSTD_RECORD => {
            let plain = crate::storage::points_codec::decompress_point_lines(payload)
                .map_err(|e| e.to_string())?;
            parse_point_lines(inflated.get_or_init(|| plain), parser)
        }
        _ => Ok(Replayed::Other),
    }
}

/// The points of a `PointLines` record's bytes, parsed again from their lines.
fn parse_point_lines<'a>(plain: &'a [u8], parser: &mut LineParser) -> Result<Replayed<'a>, String> {
    let (version, lines) =
        crate::storage::points_codec::decode_point_lines(plain).map_err(|e| e.to_string())?;
    let mut points = Vec::with_capacity(lines.len());
    for (time, line) in lines {
        let mut point = parser.parse(line).map_err(|reason| {
            format!(
                "line {:?} does not parse: {reason}",
                String::from_utf8_lossy(line)
            )
        })?;
        point.timestamp = Some(time);
        // Logged lines were admitted, so this only drops fields named time.
        if let Some(reason) = crate::storage::invalid_point_reason(&mut point) {
            return Err(reason);
        }
        points.push(point);
    }
    Ok(Replayed::Points(version, points))
}

/// Record kind of a prost-encoded [`crate::proto::PointsWritten`] in a shard's data log
/// (written by earlier versions, and for points without a line).
pub const POINTS_RECORD: u8 = 2;
/// Record kind of a prost-encoded [`crate::proto::PointLines`] (written by earlier
/// versions, and for batches too small to gain from compression).
pub const POINT_LINES_RECORD: u8 = 4;
/// Record kind of a [`POINT_LINES_RECORD`]'s bytes as one zstd frame: what writes log
/// (see [`crate::storage::points_codec::compress_point_lines`]).
pub const POINT_LINES_ZSTD_RECORD: u8 = 5;

/// The points of a data-log record (its payload after the [`Header`]) as lines of line
/// protocol with nanosecond timestamps, appended to `out` each ending in a newline, for a
/// follower of the log (a replication): the record's write version and its number of
/// points. None for a record that holds no points (a delete's tombstones).
///
/// A logged line is the client's own: its timestamp (if any) is in the request's
/// precision. The line is sent as it is with that last token replaced by the nanosecond
/// time (or the time appended, for a line without one), which costs a scan of its end;
/// only a line whose end does not read that way is parsed and rendered again.
pub fn record_lines(
    kind: u8,
    payload: &[u8],
    parser: &mut LineParser,
    out: &mut String,
) -> Result<Option<(u64, usize)>, String> {
    let plain;
    let lines_record = match kind {
        POINT_LINES_RECORD => payload,
        POINT_LINES_ZSTD_RECORD => {
            plain = crate::storage::points_codec::decompress_point_lines(payload)
                .map_err(|e| e.to_string())?;
            &plain[..]
        }
        _ => {
            let inflated = OnceLock::new();
            return match decode_record(kind, payload, &inflated, parser)? {
                Replayed::Points(version, points) => {
                    for p in &points {
                        crate::line_protocol::write_point(out, p);
                        out.push('\n');
                    }
                    Ok(Some((version, points.len())))
                }
                Replayed::Tombstones(_) | Replayed::Other => Ok(None),
            };
        }
    };
    let (version, lines) = crate::storage::points_codec::decode_point_lines(lines_record)
        .map_err(|e| e.to_string())?;
    for (time, line) in &lines {
        if !push_with_time(out, line, *time) {
            let mut point = parser.parse(line).map_err(|reason| {
                format!(
                    "line {:?} does not parse: {reason}",
                    String::from_utf8_lossy(line)
                )
            })?;
            point.timestamp = Some(*time);
            crate::line_protocol::write_point(out, &point);
        }
        out.push('\n');
    }
    Ok(Some((version, lines.len())))
}

/// Appends `line` with its timestamp as `time` in nanoseconds, if its end reads plainly:
/// a last space-separated token of digits (a timestamp in some precision whose multiple
/// is `time`), or a last token that is a field (no timestamp). False: parse it instead.
fn push_with_time(out: &mut String, line: &[u8], time: i64) -> bool {
    let Ok(line) = std::str::from_utf8(line) else {
        return false;
    };
    let line = line.trim_end();
    let Some(space) = line.rfind(' ') else {
        return false;
    };
    if line[..space].ends_with('\\') {
        return false;
    }
    let last = &line[space + 1..];
    let digits = last.strip_prefix('-').unwrap_or(last);
    const MULTIPLES: [i64; 6] = [
        1,
        1_000,
        1_000_000,
        1_000_000_000,
        60_000_000_000,
        3_600_000_000_000,
    ];
    let kept = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        let Ok(value) = last.parse::<i64>() else {
            return false;
        };
        if !MULTIPLES
            .iter()
            .any(|m| value.checked_mul(*m) == Some(time))
        {
            return false;
        }
        &line[..space]
    } else if last.contains('=') && !last.ends_with('\\') && !line.contains('"') {
        // No timestamp; a quoted string could hide what looks like one, so not then.
        line
    } else {
        return false;
    };
    use std::fmt::Write;
    out.push_str(kept);
    let _ = write!(out, " {time}");
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn a_logged_line_is_sent_with_its_time_in_nanoseconds() {
        let cases: [(&str, i64, Option<&str>); 7] = [
            (
                "m v=1i 1700000000",
                1_700_000_000_000_000_000,
                Some("m v=1i 1700000000000000000"),
            ),
            (
                "m v=1i 1700000000000000000",
                1_700_000_000_000_000_000,
                Some("m v=1i 1700000000000000000"),
            ),
            ("m,t=a\\ 5 v=1", 42, Some("m,t=a\\ 5 v=1 42")),
            ("m v=1 -5", -5_000, Some("m v=1 -5000")),
            // Read again by the parser: a quoted string, an escaped space, a mismatch.
            ("m s=\"a 5\"", 7, None),
            ("m a\\ 5=1", 7, None),
            ("m v=1 6", 7, None),
        ];
        for (line, time, want) in cases {
            let mut out = String::new();
            let done = push_with_time(&mut out, line.as_bytes(), time);
            assert_eq!(done.then_some(out.as_str()), want, "{line}");
        }
    }
}
