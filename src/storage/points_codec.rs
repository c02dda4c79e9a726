//! Encodes a batch of parsed points as a [`PointsWritten`] record without first copying
//! them into prost structs: the write path's hottest encoding. The bytes are exactly
//! prost's (the test below holds them against `PointsWritten::encode_to_vec`), so records
//! decode with the generated code.

use crate::line_protocol::{FieldValue, Point};
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};

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

fn point_len(p: &Point) -> usize {
    let mut n = str_len(1, &p.measurement);
    for (k, v) in &p.tags {
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
    let lens: Vec<usize> = points.iter().map(point_len).collect();
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
    for (p, len) in points.iter().zip(lens) {
        encode_key(2, WireType::LengthDelimited, &mut buf);
        encode_varint(len as u64, &mut buf);
        put_str(1, &p.measurement, &mut buf);
        for (k, v) in &p.tags {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{field_record, FieldRecord, PointRecord, PointsWritten, Tag};
    use proptest::prelude::*;
    use prost::Message;
    use std::borrow::Cow;

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
            ".{0,12}",
            proptest::collection::vec((".{0,8}", ".{0,8}"), 0..4),
            proptest::collection::vec((".{0,8}", value()), 0..5),
            any::<i64>(),
        )
            .prop_map(|(measurement, tags, fields, t)| {
                let tags: Vec<(Cow<'static, str>, Cow<'static, str>)> = tags
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect();
                Point {
                    key: crate::line_protocol::series_key(&measurement, &tags).into(),
                    measurement: measurement.into(),
                    tags,
                    fields: fields.into_iter().map(|(k, v)| (k.into(), v)).collect(),
                    timestamp: Some(t),
                }
            })
    }

    proptest! {
        #[test]
        fn bytes_are_exactly_prosts(version in any::<u64>(), points in proptest::collection::vec(point(), 0..6)) {
            let reference = PointsWritten {
                version,
                points: points.iter().map(|p| PointRecord {
                    measurement: p.measurement.to_string(),
                    tags: p.tags.iter().map(|(k, v)| Tag { key: k.to_string(), value: v.to_string() }).collect(),
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
