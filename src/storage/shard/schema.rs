//! Field types per measurement: the first write of a field decides its type in a shard,
//! as in InfluxDB, and a point that disagrees is dropped before it reaches the log.

use super::Shard;
use crate::line_protocol::{FieldValue, Point};
use crate::storage::column::FieldType;
use crate::storage::column_file::ColumnFile;
use crate::storage::tombstone::Tombstones;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

/// Field types per measurement; consulted for every point written, so a fast hash.
pub(super) type Schema = HashMap<String, FieldTypes, RandomState>;
type RandomState = foldhash::fast::RandomState;
type FieldTypes = HashMap<String, FieldType, RandomState>;

/// A measurement's field types, created empty on first sight; a known measurement's name
/// is not copied (this runs for every point written and replayed).
pub(super) fn types_of<'s>(schema: &'s mut Schema, measurement: &str) -> &'s mut FieldTypes {
    if !schema.contains_key(measurement) {
        schema.insert(measurement.to_owned(), FieldTypes::default());
    }
    schema.get_mut(measurement).expect("inserted above")
}

/// Records the types of the fields a measurement has not had yet.
pub(super) fn reserve_types(types: &mut FieldTypes, fields: &[(Cow<'_, str>, FieldValue)]) {
    for (name, value) in fields {
        if !types.contains_key(name.as_ref()) {
            types.insert(name.to_string(), FieldType::of(value));
        }
    }
}

/// Whether two points have the same measurement and the same field names and types, in
/// the same order (then one passing the schema check means the other passes too).
pub(super) fn same_shape(a: &Point<'_>, b: &Point<'_>) -> bool {
    a.fields.len() == b.fields.len()
        && a.measurement == b.measurement
        && a.fields.iter().zip(&b.fields).all(|((an, av), (bn, bv))| {
            std::mem::discriminant(av) == std::mem::discriminant(bv)
                && crate::storage::same_name(an, bn)
        })
}

/// What the schema check decided for a batch.
pub struct Admitted<'a> {
    pub points: Vec<Point<'a>>,
    pub dropped: usize,
    /// The first reason a point was dropped, in InfluxDB's words.
    pub reason: Option<String>,
}

impl Shard {
    /// Drops points whose field types conflict with the shard's (or with earlier points of
    /// the batch), reserving the types of new fields.
    /// `max_fields` bounds how many fields a measurement may have in this shard: a point
    /// that would add fields past it is dropped.
    pub fn admit<'a>(&self, mut points: Vec<Point<'a>>, max_fields: usize) -> Admitted<'a> {
        let mut schema = self.schema.lock().unwrap_or_else(|e| e.into_inner());
        let mut dropped = 0;
        let mut reason = None;
        // The last admitted point: a point of the same measurement with the same field
        // names and types needs no schema lookup (the norm: a batch repeats a few shapes).
        let mut previous: Option<usize> = None;
        let mut keep = vec![true; points.len()];
        for (i, point) in points.iter().enumerate() {
            if previous.is_some_and(|j| same_shape(&points[j], point)) {
                continue;
            }
            let types = types_of(&mut schema, &point.measurement);
            let conflict = point.fields.iter().find_map(|(name, value)| {
                let ty = FieldType::of(value);
                types.get(name.as_ref()).filter(|&&t| t != ty).map(|&existing| {
                    format!(
                        "field type conflict: input field \"{name}\" on measurement \"{}\" is type {}, already exists as type {}",
                        point.measurement,
                        ty.name(),
                        existing.name()
                    )
                })
            });
            // The exact count of new fields is looked up only near the limit.
            let conflict = conflict.or_else(|| {
                if types.len() + point.fields.len() <= max_fields {
                    return None;
                }
                let added = point
                    .fields
                    .iter()
                    .filter(|(name, _)| !types.contains_key(name.as_ref()))
                    .count();
                (added > 0 && types.len() + added > max_fields).then(|| {
                    format!(
                        "field limit exceeded: measurement \"{}\" would have {} fields, more than max_fields_per_measurement ({max_fields})",
                        point.measurement,
                        types.len() + added
                    )
                })
            });
            match conflict {
                Some(r) => {
                    dropped += 1;
                    reason.get_or_insert(r);
                    keep[i] = false;
                }
                None => {
                    reserve_types(types, &point.fields);
                    previous = Some(i);
                }
            }
        }
        if dropped > 0 {
            let mut keep = keep.into_iter();
            points.retain(|_| keep.next().unwrap_or(true));
        }
        Admitted {
            points,
            dropped,
            reason,
        }
    }

    /// Field types of a measurement in this shard.
    pub fn field_types(&self, measurement: &str) -> HashMap<String, FieldType, RandomState> {
        let schema = self.schema.lock().unwrap_or_else(|e| e.into_inner());
        schema
            .get(measurement)
            .map(|t| t.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default()
    }
}

/// The field types a column file records (its blocks', and those it keeps without points),
/// but for those a DROP MEASUREMENT took after the file was written (merges and flushes
/// leave the dropped points out of newer files).
pub(super) fn file_schema<'f>(
    file: &'f ColumnFile,
    tombstones: &'f Tombstones,
) -> impl Iterator<Item = (&'f str, &'f str, FieldType)> + 'f {
    let blocks = file.series().iter().flat_map(move |s| {
        file.blocks(s)
            .iter()
            .map(move |b| (&*s.measurement, &**file.field(b), b.field_type))
    });
    let kept = file.index.schema.iter().flat_map(|m| {
        m.fields
            .iter()
            .map(move |f| (m.measurement.as_str(), f.name.as_str(), f.field_type))
    });
    blocks.chain(kept).filter_map(move |(m, f, code)| {
        let dropped = tombstones
            .schema_dropped_at(m)
            .is_some_and(|at| file.index.max_version < at);
        let ty = u8::try_from(code).ok().and_then(FieldType::from_code)?;
        (!dropped).then_some((m, f, ty))
    })
}

/// A schema as column files record it, sorted.
pub(super) fn schema_record<'s>(
    types: impl Iterator<Item = (&'s str, &'s str, FieldType)>,
) -> Vec<crate::proto::MeasurementFields> {
    let mut sorted: BTreeMap<&str, BTreeMap<&str, FieldType>> = BTreeMap::new();
    for (m, f, ty) in types {
        sorted.entry(m).or_default().entry(f).or_insert(ty);
    }
    sorted
        .into_iter()
        .map(|(m, fields)| crate::proto::MeasurementFields {
            measurement: m.to_owned(),
            fields: fields
                .into_iter()
                .map(|(name, ty)| crate::proto::FieldSchema {
                    name: name.to_owned(),
                    field_type: u32::from(ty.code()),
                })
                .collect(),
        })
        .collect()
}
