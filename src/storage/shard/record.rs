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
