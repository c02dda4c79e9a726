//! The records of a shard's data log, encoded and decoded without copying into prost
//! structs (the bytes are exactly prost's; the tests below hold them against the
//! generated code):
//!
//! - [`encode_point_lines`]: a `PointLines` record, the points' own lines plus their
//!   times: copying the lines costs far less than encoding each parsed field, and the
//!   record is about half the size;
//! - [`compress_point_lines`]: the same bytes as one zstd frame, which is what writes log
//!   today: a shard's log holds up to its head's budget of lines until the head is flushed,
//!   and the lines of a batch repeat their measurement, tag keys, tag values and field
//!   keys, so the frame is about a tenth of the size (see [`LINES_ZSTD_LEVEL`]);
//! - [`encode_points_written`]: a `PointsWritten` record, every point encoded field by
//!   field, as earlier versions logged them (still read, and written for points that
//!   have no line).
//!
//! The decoders borrow every string from the record, for replay at start-up.

use crate::line_protocol::{FieldValue, Point};
use prost::encoding::{
    decode_key, decode_varint, encode_key, encode_varint, encoded_len_varint, key_len, WireType,
};
use std::borrow::Cow;
use zstd::zstd_safe::CParameter;

fn tag_len(k: &str, v: &str) -> usize {
    str_len(1, k) + str_len(2, v)
}

/// Length of a string field, omitted when empty (proto3).
fn str_len(tag: u32, s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        key_len(tag) + encoded_len_varint(s.len() as u64) + s.len()
    }
}

fn put_str(tag: u32, s: &str, buf: &mut Vec<u8>) {
    if !s.is_empty() {
        encode_key(tag, WireType::LengthDelimited, buf);
        encode_varint(s.len() as u64, buf);
        buf.extend_from_slice(s.as_bytes());
    }
}

fn value_len(v: &FieldValue) -> usize {
    // Oneof members are written even when zero.
    match v {
        FieldValue::Float(_) => 1 + 8,
        FieldValue::Integer(x) => 1 + encoded_len_varint(((x << 1) ^ (x >> 63)) as u64),
        FieldValue::Unsigned(x) => 1 + encoded_len_varint(*x),
        FieldValue::String(s) => 1 + encoded_len_varint(s.len() as u64) + s.len(),
        FieldValue::Boolean(_) => 1 + 1,
    }
}

fn put_value(v: &FieldValue, buf: &mut Vec<u8>) {
    match v {
        FieldValue::Float(x) => {
            encode_key(2, WireType::SixtyFourBit, buf);
            buf.extend_from_slice(&x.to_le_bytes());
        }
        FieldValue::Integer(x) => {
            encode_key(3, WireType::Varint, buf);
            encode_varint(((x << 1) ^ (x >> 63)) as u64, buf);
        }
        FieldValue::Unsigned(x) => {
            encode_key(4, WireType::Varint, buf);
            encode_varint(*x, buf);
        }
        FieldValue::String(s) => {
            encode_key(5, WireType::LengthDelimited, buf);
            encode_varint(s.len() as u64, buf);
            buf.extend_from_slice(s.as_bytes());
        }
        FieldValue::Boolean(b) => {
            encode_key(6, WireType::Varint, buf);
            buf.push(u8::from(*b));
        }
    }
}

fn field_len(k: &str, v: &FieldValue) -> usize {
    str_len(1, k) + value_len(v)
}

fn point_len(p: &Point, tags: &[(Cow<str>, Cow<str>)]) -> usize {
    let mut n = str_len(1, &p.measurement);
    for (k, v) in tags {
        let l = tag_len(k, v);
        n += 1 + encoded_len_varint(l as u64) + l;
    }
    let time = p.timestamp.unwrap_or_default();
    if time != 0 {
        n += 1 + encoded_len_varint(time as u64);
    }
    for (k, v) in &p.fields {
        let l = field_len(k, v);
        n += 1 + encoded_len_varint(l as u64) + l;
    }
    n
}

/// The prost encoding of `PointsWritten { version, points }` (times already in ns).
pub fn encode_points_written(version: u64, points: &[Point]) -> Vec<u8> {
    // A point's tags are read back from its key once, for its length and its bytes.
    let tags: Vec<_> = points.iter().map(Point::tags).collect();
    let lens: Vec<usize> = points
        .iter()
        .zip(&tags)
        .map(|(p, t)| point_len(p, t))
        .collect();
    let total: usize = lens
        .iter()
        .map(|l| 1 + encoded_len_varint(*l as u64) + l)
        .sum::<usize>()
        + 11;
    let mut buf = Vec::with_capacity(total);
    if version != 0 {
        encode_key(1, WireType::Varint, &mut buf);
        encode_varint(version, &mut buf);
    }
    for ((p, len), tags) in points.iter().zip(lens).zip(&tags) {
        encode_key(2, WireType::LengthDelimited, &mut buf);
        encode_varint(len as u64, &mut buf);
        put_str(1, &p.measurement, &mut buf);
        for (k, v) in tags {
            encode_key(2, WireType::LengthDelimited, &mut buf);
            encode_varint(tag_len(k, v) as u64, &mut buf);
            put_str(1, k, &mut buf);
            put_str(2, v, &mut buf);
        }
        let time = p.timestamp.unwrap_or_default();
        if time != 0 {
            encode_key(3, WireType::Varint, &mut buf);
            encode_varint(time as u64, &mut buf);
        }
        for (k, v) in &p.fields {
            encode_key(4, WireType::LengthDelimited, &mut buf);
            encode_varint(field_len(k, v) as u64, &mut buf);
            put_str(1, k, &mut buf);
            put_value(v, &mut buf);
        }
    }
    buf
}

fn zigzag(t: i64) -> u64 {
    ((t << 1) ^ (t >> 63)) as u64
}

/// The prost encoding of `PointLines { version, times, lines }` (times already in ns).
pub fn encode_point_lines(version: u64, points: &[Point]) -> Vec<u8> {
    let mut buf = Vec::new();
    encode_point_lines_into(version, points, &mut buf);
    buf
}

/// [`encode_point_lines`] into `buf` (cleared first), so a caller can reuse its memory.
fn encode_point_lines_into(version: u64, points: &[Point], buf: &mut Vec<u8>) {
    let time = |p: &Point| zigzag(p.timestamp.unwrap_or_default());
    let times_len: usize = points.iter().map(|p| encoded_len_varint(time(p))).sum();
    let lines_len: usize = points
        .iter()
        .map(|p| 1 + encoded_len_varint(p.line.len() as u64) + p.line.len())
        .sum();
    buf.clear();
    buf.reserve(22 + times_len + lines_len);
    if version != 0 {
        encode_key(1, WireType::Varint, buf);
        encode_varint(version, buf);
    }
    if !points.is_empty() {
        encode_key(2, WireType::LengthDelimited, buf);
        encode_varint(times_len as u64, buf);
        for p in points {
            encode_varint(time(p), buf);
        }
    }
    for p in points {
        encode_key(3, WireType::LengthDelimited, buf);
        encode_varint(p.line.len() as u64, buf);
        buf.extend_from_slice(p.line);
    }
}

/// zstd level of compressed `PointLines` records, with a window and hash table larger than
/// the level's own. Measured on a `bench ingest` record (5000 TSBS-like lines, 1.7 MB;
/// instructions counted by callgrind, so free of this shared machine's noise): level 1
/// makes it 11.4x smaller for 4.8k instructions per line, with these two settings 14x
/// for 4.1k (a host's previous line lies 1000 lines back: a wider window finds longer
/// matches, and fewer, shorter searches). zstd's negative levels cost as much and shrink
/// less (-1: 8.4x, -3: 5.3x), level 3 shrinks to 12x for more work; LZ4 (the `lz4` tool)
/// ran no faster here and shrinks 3.9x, which would leave the log larger than the
/// column files it becomes.
pub const LINES_ZSTD_LEVEL: i32 = 1;
/// 2 MiB: a whole batch's record of the usual size, so each line can match any earlier one.
const LINES_ZSTD_WINDOW_LOG: u32 = 21;
const LINES_ZSTD_HASH_LOG: u32 = 16;

/// A `PointLines` record as the log takes it.
pub enum LinesRecord {
    /// One zstd frame of [`encode_point_lines`]'s bytes, `plain_len` of them.
    Compressed { frame: Vec<u8>, plain_len: usize },
    /// The bytes uncompressed: a record too small to gain from compression.
    Plain(Vec<u8>),
}

impl LinesRecord {
    /// The record's size before compression: what replaying it costs.
    pub fn plain_len(&self) -> usize {
        match self {
            LinesRecord::Compressed { plain_len, .. } => *plain_len,
            LinesRecord::Plain(bytes) => bytes.len(),
        }
    }
}

/// Per thread, the zstd context and the buffers of [`compress_point_lines`]: a batch's
/// record is megabytes, and fresh buffers of that size cost page faults on every write.
struct LinesCompressor {
    zstd: zstd::bulk::Compressor<'static>,
    plain: Vec<u8>,
    frame: Vec<u8>,
}

thread_local! {
    static LINES_COMPRESSOR: std::cell::RefCell<Option<LinesCompressor>> =
        const { std::cell::RefCell::new(None) };
}

/// [`encode_point_lines`], compressed into one zstd frame (which records its decompressed
/// size) when that makes it smaller. Should zstd fail (it only can for lack of memory),
/// the record is left uncompressed: it is the same data either way.
pub fn compress_point_lines(version: u64, points: &[Point]) -> LinesRecord {
    compress_point_lines_keeping(version, points, false).0
}

/// [`compress_point_lines`], and with `keep_plain` a copy of the bytes it compressed (for
/// a record that is compressed): a follower of the log then need not decompress them.
pub fn compress_point_lines_keeping(
    version: u64,
    points: &[Point],
    keep_plain: bool,
) -> (LinesRecord, Option<Vec<u8>>) {
    LINES_COMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.is_none() {
            match zstd::bulk::Compressor::new(LINES_ZSTD_LEVEL).and_then(|mut zstd| {
                zstd.set_parameter(CParameter::WindowLog(LINES_ZSTD_WINDOW_LOG))?;
                zstd.set_parameter(CParameter::HashLog(LINES_ZSTD_HASH_LOG))?;
                Ok(zstd)
            }) {
                Ok(zstd) => {
                    *cell = Some(LinesCompressor {
                        zstd,
                        plain: Vec::new(),
                        frame: Vec::new(),
                    })
                }
                Err(_) => {
                    return (
                        LinesRecord::Plain(encode_point_lines(version, points)),
                        None,
                    )
                }
            }
        }
        let c = cell.as_mut().expect("set above");
        encode_point_lines_into(version, points, &mut c.plain);
        c.frame.clear();
        c.frame
            .reserve(zstd::zstd_safe::compress_bound(c.plain.len()));
        match c.zstd.compress_to_buffer(&c.plain, &mut c.frame) {
            Ok(_) if c.frame.len() < c.plain.len() => (
                LinesRecord::Compressed {
                    frame: c.frame.clone(),
                    plain_len: c.plain.len(),
                },
                keep_plain.then(|| c.plain.clone()),
            ),
            _ => (LinesRecord::Plain(c.plain.clone()), None),
        }
    })
}

/// The `PointLines` bytes of a compressed record, for [`decode_point_lines`]. Refuses a
/// frame that does not state its decompressed size, states one beyond what a log record
/// may hold, or does not decompress to exactly that size.
pub fn decompress_point_lines(frame: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let size = match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(size)) => size,
        Ok(None) => return Err(DecodeError("zstd frame does not state its size".into())),
        Err(_) => return Err(DecodeError("not a zstd frame".into())),
    };
    let size = usize::try_from(size)
        .ok()
        .filter(|&s| s <= crate::log::format::MAX_RECORD_PAYLOAD)
        .ok_or_else(|| DecodeError(format!("zstd frame states {size} bytes")))?;
    let plain = zstd::bulk::decompress(frame, size)
        .map_err(|e| DecodeError(format!("zstd frame does not decompress: {e}")))?;
    if plain.len() != size {
        return Err(DecodeError(format!(
            "zstd frame holds {} bytes, states {size}",
            plain.len()
        )));
    }
    Ok(plain)
}

/// A logged line and its time in ns.
pub type TimedLine<'a> = (i64, &'a [u8]);

/// A `PointLines` record read without copying: its version, and each line (borrowed
/// from `record`) with its time. Accepts any valid encoding of the message, packed or
/// not, as prost's generated decoder does, and refuses one whose times and lines differ
/// in number.
pub fn decode_point_lines(record: &[u8]) -> Result<(u64, Vec<TimedLine<'_>>), DecodeError> {
    let mut buf = record;
    let mut version = 0;
    let mut times = Vec::new();
    let mut lines = Vec::new();
    let unzigzag = |z: u64| ((z >> 1) as i64) ^ -((z & 1) as i64);
    while !buf.is_empty() {
        let (tag, wire) = decode_key(&mut buf)?;
        match (tag, wire) {
            (1, WireType::Varint) => version = decode_varint(&mut buf)?,
            (2, WireType::LengthDelimited) => {
                let mut packed = take(&mut buf)?;
                while !packed.is_empty() {
                    times.push(unzigzag(decode_varint(&mut packed)?));
                }
            }
            (2, WireType::Varint) => times.push(unzigzag(decode_varint(&mut buf)?)),
            (3, WireType::LengthDelimited) => lines.push(take(&mut buf)?),
            _ => skip(wire, &mut buf)?,
        }
    }
    if times.len() != lines.len() {
        return Err(DecodeError(format!(
            "{} times for {} lines",
            times.len(),
            lines.len()
        )));
    }
    Ok((version, times.into_iter().zip(lines).collect()))
}

/// Why a record does not decode.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(String);

impl From<prost::DecodeError> for DecodeError {
    fn from(e: prost::DecodeError) -> Self {
        DecodeError(e.to_string())
    }
}

/// A `PointsWritten` record read without copying: its version and points, whose strings
/// borrow from `record`. Accepts any valid encoding of the message (fields in any order,
/// unknown fields skipped), as prost's generated decoder does.
pub fn decode_points_written(record: &[u8]) -> Result<(u64, Vec<Point<'_>>), DecodeError> {
    let mut buf = record;
    let mut version = 0;
    let mut points = Vec::new();
    while !buf.is_empty() {
        let (tag, wire) = decode_key(&mut buf)?;
        match (tag, wire) {
            (1, WireType::Varint) => version = decode_varint(&mut buf)?,
            (2, WireType::LengthDelimited) => points.push(decode_point(take(&mut buf)?)?),
            _ => skip(wire, &mut buf)?,
        }
    }
    Ok((version, points))
}

fn decode_point(mut buf: &[u8]) -> Result<Point<'_>, DecodeError> {
    let mut measurement: &str = "";
    let mut tags: Vec<(Cow<str>, Cow<str>)> = Vec::new();
    let mut fields: Vec<(Cow<str>, FieldValue)> = Vec::new();
    let mut time = 0i64;
    while !buf.is_empty() {
        let (tag, wire) = decode_key(&mut buf)?;
        match (tag, wire) {
            (1, WireType::LengthDelimited) => measurement = text(take(&mut buf)?)?,
            (2, WireType::LengthDelimited) => {
                let mut t = take(&mut buf)?;
                let (mut key, mut value) = ("", "");
                while !t.is_empty() {
                    match decode_key(&mut t)? {
                        (1, WireType::LengthDelimited) => key = text(take(&mut t)?)?,
                        (2, WireType::LengthDelimited) => value = text(take(&mut t)?)?,
                        (_, wire) => skip(wire, &mut t)?,
                    }
                }
                tags.push((key.into(), value.into()));
            }
            (3, WireType::Varint) => time = decode_varint(&mut buf)? as i64,
            (4, WireType::LengthDelimited) => {
                if let Some(field) = decode_field(take(&mut buf)?)? {
                    fields.push(field);
                }
            }
            _ => skip(wire, &mut buf)?,
        }
    }
    Ok(Point::new(measurement.into(), &tags, fields, Some(time)))
}

/// A field, or None when it carries no value (as prost leaves the oneof unset).
fn decode_field(mut buf: &[u8]) -> Result<Option<(Cow<'_, str>, FieldValue)>, DecodeError> {
    let mut key = "";
    let mut value = None;
    while !buf.is_empty() {
        let (tag, wire) = decode_key(&mut buf)?;
        value = match (tag, wire) {
            (1, WireType::LengthDelimited) => {
                key = text(take(&mut buf)?)?;
                value
            }
            (2, WireType::SixtyFourBit) => {
                let bytes: [u8; 8] = buf
                    .get(..8)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| DecodeError("buffer underflow".into()))?;
                buf = &buf[8..];
                Some(FieldValue::Float(f64::from_le_bytes(bytes)))
            }
            (3, WireType::Varint) => {
                let z = decode_varint(&mut buf)?;
                Some(FieldValue::Integer(((z >> 1) as i64) ^ -((z & 1) as i64)))
            }
            (4, WireType::Varint) => Some(FieldValue::Unsigned(decode_varint(&mut buf)?)),
            (5, WireType::LengthDelimited) => {
                Some(FieldValue::String(text(take(&mut buf)?)?.to_owned()))
            }
            (6, WireType::Varint) => Some(FieldValue::Boolean(decode_varint(&mut buf)? != 0)),
            _ => {
                skip(wire, &mut buf)?;
                value
            }
        };
    }
    Ok(value.map(|v| (key.into(), v)))
}

/// The next length-delimited value.
fn take<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], DecodeError> {
    let len =
        usize::try_from(decode_varint(buf)?).map_err(|_| DecodeError("length overflow".into()))?;
    if len > buf.len() {
        return Err(DecodeError("buffer underflow".into()));
    }
    let (value, rest) = buf.split_at(len);
    *buf = rest;
    Ok(value)
}

fn text(bytes: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(bytes)
        .map_err(|_| DecodeError("invalid string value: data is not UTF-8 encoded".into()))
}

fn skip(wire: WireType, buf: &mut &[u8]) -> Result<(), DecodeError> {
    let n = match wire {
        WireType::Varint => return Ok(decode_varint(buf).map(drop)?),
        WireType::SixtyFourBit => 8,
        WireType::ThirtyTwoBit => 4,
        WireType::LengthDelimited => return take(buf).map(drop),
        WireType::StartGroup | WireType::EndGroup => {
            return Err(DecodeError("groups are not used in shard records".into()))
        }
    };
    if n > buf.len() {
        return Err(DecodeError("buffer underflow".into()));
    }
    *buf = &buf[n..];
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{field_record, FieldRecord, PointRecord, PointsWritten, Tag};
    use proptest::prelude::*;
    use prost::Message;

    fn value() -> impl Strategy<Value = FieldValue> {
        prop_oneof![
            any::<f64>().prop_map(FieldValue::Float),
            any::<i64>().prop_map(FieldValue::Integer),
            any::<u64>().prop_map(FieldValue::Unsigned),
            ".{0,20}".prop_map(FieldValue::String),
            any::<bool>().prop_map(FieldValue::Boolean),
        ]
    }

    fn point() -> impl Strategy<Value = Point<'static>> {
        (
            "(.{0,11}[^\\\\])?",
            // Names as a line can give them: never ending in a backslash (which would
            // escape what follows), values never empty.
            proptest::collection::vec((".{0,7}[^\\\\]", ".{0,7}[^\\\\]"), 0..4),
            proptest::collection::vec((".{0,8}", value()), 0..5),
            any::<i64>(),
        )
            .prop_map(|(measurement, tags, fields, t)| {
                let tags: Vec<(Cow<'static, str>, Cow<'static, str>)> = tags
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect();
                let fields = fields.into_iter().map(|(k, v)| (k.into(), v)).collect();
                Point::new(measurement.into(), &tags, fields, Some(t))
            })
    }

    /// Points as parsed from their lines, with their times in ns.
    fn parsed(lines: &[String], times: &[i64]) -> Vec<Point<'static>> {
        let mut parser = crate::line_protocol::LineParser::new(Default::default());
        lines
            .iter()
            .zip(times)
            .filter_map(|(l, &t)| {
                let line: &'static [u8] = Box::leak(l.clone().into_bytes().into_boxed_slice());
                let mut p = parser.parse(line).ok()?;
                p.timestamp = Some(t);
                Some(p)
            })
            .collect()
    }

    fn line() -> impl Strategy<Value = String> {
        "[a-z]{1,4}(,[a-z]{1,3}=[a-z0-9]{1,3}){0,3} [a-z]{1,3}=([0-9]{1,4}i?|\"[^\"\\\\]{0,8}\"|t)( [0-9]{1,19})?"
    }

    /// A `bench ingest` batch: 5000 TSBS-like lines, parsed.
    fn bench_batch() -> Vec<Point<'static>> {
        let opts = crate::bench::ingest::IngestOptions {
            points: 5000,
            ..Default::default()
        };
        let body: &'static [u8] = Box::leak(
            crate::bench::ingest::generate_batches(&opts)
                .remove(0)
                .into_boxed_slice(),
        );
        let (points, errors) = crate::line_protocol::parse_body(body);
        assert!(errors.is_empty());
        points
    }

    #[test]
    fn a_batch_of_lines_is_logged_a_tenth_of_its_size() {
        let points = bench_batch();
        let plain = encode_point_lines(3, &points);
        let LinesRecord::Compressed { frame, plain_len } = compress_point_lines(3, &points) else {
            panic!("a 5000-line batch is compressed");
        };
        assert_eq!(plain_len, plain.len());
        assert!(
            frame.len() * 8 < plain.len(),
            "{} of {}",
            frame.len(),
            plain.len()
        );
        assert_eq!(decompress_point_lines(&frame).unwrap(), plain);
        // The thread's buffers are reused: a second record is as exact as the first.
        let LinesRecord::Compressed { frame: again, .. } = compress_point_lines(4, &points[..10])
        else {
            panic!("ten lines are compressed");
        };
        assert_eq!(
            decompress_point_lines(&again).unwrap(),
            encode_point_lines(4, &points[..10])
        );
    }

    #[test]
    fn a_damaged_frame_is_refused() {
        let points = bench_batch();
        let LinesRecord::Compressed { frame, .. } = compress_point_lines(3, &points) else {
            panic!("a 5000-line batch is compressed");
        };
        assert!(decompress_point_lines(&frame[..frame.len() - 1]).is_err());
        assert!(decompress_point_lines(&frame[..frame.len() / 2]).is_err());
        let mut two = frame.clone();
        two.extend_from_slice(&frame);
        assert!(decompress_point_lines(&two).is_err());
        let mut unsized_frame = Vec::new();
        let mut encoder = zstd::stream::write::Encoder::new(&mut unsized_frame, 1).unwrap();
        std::io::Write::write_all(&mut encoder, &encode_point_lines(3, &points)).unwrap();
        encoder.finish().unwrap();
        assert!(decompress_point_lines(&unsized_frame).is_err());
    }

    #[test]
    fn a_single_short_line_is_logged_plain() {
        let points = parsed(&["m v=1".to_owned()], &[5]);
        assert!(matches!(
            compress_point_lines(1, &points),
            LinesRecord::Plain(bytes) if bytes == encode_point_lines(1, &points)
        ));
    }

    proptest! {
        #[test]
        fn point_lines_are_prosts_and_read_back(
            version in any::<u64>(),
            lines in proptest::collection::vec(line(), 0..6),
            times in proptest::collection::vec(any::<i64>(), 6),
            cut in any::<usize>(),
        ) {
            let points = parsed(&lines, &times);
            let bytes = encode_point_lines(version, &points);
            let reference = crate::proto::PointLines {
                version,
                times: points.iter().map(|p| p.timestamp.unwrap_or_default()).collect(),
                lines: points.iter().map(|p| p.line.to_vec().into()).collect(),
            };
            prop_assert_eq!(&bytes, &reference.encode_to_vec());
            let (v, decoded) = decode_point_lines(&bytes).unwrap();
            prop_assert_eq!(v, version);
            let expected: Vec<(i64, &[u8])> = points
                .iter()
                .map(|p| (p.timestamp.unwrap_or_default(), p.line))
                .collect();
            prop_assert_eq!(decoded, expected);
            if !bytes.is_empty() {
                let cut = &bytes[..cut % bytes.len()];
                if decode_point_lines(cut).is_ok() {
                    prop_assert!(crate::proto::PointLines::decode(cut).is_ok());
                }
            }
        }

        /// A compressed record decompresses to exactly the bytes of the plain one.
        #[test]
        fn compressed_point_lines_decompress_to_the_plain_record(
            version in any::<u64>(),
            lines in proptest::collection::vec(line(), 0..40),
            times in proptest::collection::vec(any::<i64>(), 40),
        ) {
            let points = parsed(&lines, &times);
            let plain = encode_point_lines(version, &points);
            let record = compress_point_lines(version, &points);
            prop_assert_eq!(record.plain_len(), plain.len());
            match record {
                LinesRecord::Compressed { frame, .. } => {
                    prop_assert!(frame.len() < plain.len());
                    prop_assert_eq!(decompress_point_lines(&frame).unwrap(), plain);
                }
                LinesRecord::Plain(bytes) => prop_assert_eq!(bytes, plain),
            }
        }

        #[test]
        fn arbitrary_bytes_as_compressed_point_lines_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decompress_point_lines(&data);
        }

        #[test]
        fn arbitrary_bytes_as_point_lines_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_point_lines(&data);
        }

        /// The borrowed decoder reads back what was encoded, and refuses what prost refuses.
        #[test]
        fn decoding_reads_back_every_point(version in any::<u64>(), points in proptest::collection::vec(point(), 0..6), cut in any::<usize>()) {
            let bytes = encode_points_written(version, &points);
            let (v, decoded) = decode_points_written(&bytes).unwrap();
            prop_assert_eq!(v, version);
            let expected: Vec<Point> = points
                .iter()
                .map(|p| Point { timestamp: Some(p.timestamp.unwrap_or_default()), ..p.clone() })
                .collect();
            prop_assert_eq!(decoded, expected);
            if !bytes.is_empty() {
                let cut = &bytes[..cut % bytes.len()];
                prop_assert_eq!(
                    decode_points_written(cut).is_ok(),
                    PointsWritten::decode(cut).is_ok()
                );
            }
        }

        #[test]
        fn bytes_are_exactly_prosts(version in any::<u64>(), points in proptest::collection::vec(point(), 0..6)) {
            let reference = PointsWritten {
                version,
                points: points.iter().map(|p| PointRecord {
                    measurement: p.measurement.to_string(),
                    tags: p.tags().iter().map(|(k, v)| Tag { key: k.to_string(), value: v.to_string() }).collect(),
                    time: p.timestamp.unwrap_or_default(),
                    fields: p.fields.iter().map(|(k, v)| FieldRecord {
                        key: k.to_string(),
                        value: Some(match v {
                            FieldValue::Float(x) => field_record::Value::Float(*x),
                            FieldValue::Integer(x) => field_record::Value::Integer(*x),
                            FieldValue::Unsigned(x) => field_record::Value::Unsigned(*x),
                            FieldValue::String(x) => field_record::Value::String(x.clone()),
                            FieldValue::Boolean(x) => field_record::Value::Boolean(*x),
                        }),
                    }).collect(),
                }).collect(),
            };
            prop_assert_eq!(encode_points_written(version, &points), reference.encode_to_vec());
        }
    }
}
