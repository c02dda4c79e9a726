//! A shard: the data of one retention policy over one shard-group interval. Its data log
//! holds the points as they were acknowledged; its head indexes them for queries.

use super::column::FieldType;
use super::head::Head;
use super::StorageError;
use crate::line_protocol::{FieldValue, Point};
use crate::log::{Log, LogOptions, Lsn, Record};
use crate::proto::{field_record, FieldRecord, PointRecord, PointsWritten, Tag};
use prost::Message;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock, RwLockReadGuard};

/// Record kind of a prost-encoded [`PointsWritten`] in a shard's data log.
pub const POINTS_RECORD: u8 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    pub id: u64,
    pub database: String,
    pub retention_policy: String,
    pub start: i64,
    pub end: i64,
}

pub struct Shard {
    pub info: ShardInfo,
    pub dir: PathBuf,
    log: Log,
    /// Field types per measurement: the first write of a field decides its type in this
    /// shard, as in InfluxDB. Checked and reserved before points reach the log.
    schema: Mutex<HashMap<String, HashMap<String, FieldType>>>,
    head: RwLock<Head>,
    max_version: std::sync::atomic::AtomicU64,
}

/// What the schema check decided for a batch.
pub struct Admitted {
    pub points: Vec<Point>,
    pub dropped: usize,
    /// The first reason a point was dropped, in InfluxDB's words.
    pub reason: Option<String>,
}

impl Shard {
    pub fn open(dir: &Path, info: ShardInfo, options: LogOptions) -> Result<Shard, StorageError> {
        let (log, _report) =
            Log::open(dir.join("log"), options).map_err(|source| StorageError::ShardLog {
                shard: info.id,
                source,
            })?;
        let mut head = Head::default();
        let mut schema: HashMap<String, HashMap<String, FieldType>> = HashMap::new();
        let mut max_version = 0;
        let mut reader = log.reader(1).map_err(|source| StorageError::ShardLog {
            shard: info.id,
            source,
        })?;
        while let Some(record) = reader.next().map_err(|source| StorageError::ShardLog {
            shard: info.id,
            source,
        })? {
            if record.kind != POINTS_RECORD {
                continue;
            }
            let batch =
                PointsWritten::decode(record.payload).map_err(|e| StorageError::CorruptRecord {
                    shard: info.id,
                    lsn: record.lsn,
                    reason: e.to_string(),
                })?;
            max_version = max_version.max(batch.version);
            for p in &batch.points {
                let point = from_record(p);
                let types = schema.entry(point.measurement.clone()).or_default();
                for (name, value) in &point.fields {
                    types.entry(name.clone()).or_insert(FieldType::of(value));
                }
                head.insert(
                    &point.measurement,
                    &point.tags,
                    p.time,
                    batch.version,
                    &point.fields,
                );
            }
        }
        Ok(Shard {
            info,
            dir: dir.to_owned(),
            log,
            schema: Mutex::new(schema),
            head: RwLock::new(head),
            max_version: max_version.into(),
        })
    }

    /// Drops points whose field types conflict with the shard's (or with earlier points of
    /// the batch), reserving the types of new fields.
    pub fn admit(&self, points: Vec<Point>) -> Admitted {
        let mut schema = self.schema.lock().unwrap_or_else(|e| e.into_inner());
        let mut admitted = Admitted {
            points: Vec::with_capacity(points.len()),
            dropped: 0,
            reason: None,
        };
        for point in points {
            let types = schema.entry(point.measurement.clone()).or_default();
            let conflict = point.fields.iter().find_map(|(name, value)| {
                let ty = FieldType::of(value);
                types.get(name).filter(|&&t| t != ty).map(|&existing| {
                    format!(
                        "field type conflict: input field \"{name}\" on measurement \"{}\" is type {}, already exists as type {}",
                        point.measurement,
                        ty.name(),
                        existing.name()
                    )
                })
            });
            match conflict {
                Some(reason) => {
                    admitted.dropped += 1;
                    admitted.reason.get_or_insert(reason);
                }
                None => {
                    for (name, value) in &point.fields {
                        types.entry(name.clone()).or_insert(FieldType::of(value));
                    }
                    admitted.points.push(point);
                }
            }
        }
        admitted
    }

    /// Appends the points durably under one write version, then makes them visible.
    pub async fn write(&self, points: &[Point], version: u64) -> Result<Lsn, StorageError> {
        let record = PointsWritten {
            version,
            points: points.iter().map(to_record).collect(),
        };
        let lsn = self
            .log
            .append(vec![Record::new(POINTS_RECORD, record.encode_to_vec())])
            .await
            .map_err(|source| StorageError::ShardLog {
                shard: self.info.id,
                source,
            })?;
        self.max_version
            .fetch_max(version, std::sync::atomic::Ordering::AcqRel);
        let mut head = self.head.write().unwrap_or_else(|e| e.into_inner());
        for p in points {
            head.insert(
                &p.measurement,
                &p.tags,
                p.timestamp.unwrap_or_default(),
                version,
                &p.fields,
            );
        }
        Ok(lsn)
    }

    /// The highest write version stored in this shard.
    pub fn max_version(&self) -> u64 {
        self.max_version.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn head(&self) -> RwLockReadGuard<'_, Head> {
        self.head.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Field types of a measurement in this shard.
    pub fn field_types(&self, measurement: &str) -> HashMap<String, FieldType> {
        let schema = self.schema.lock().unwrap_or_else(|e| e.into_inner());
        schema.get(measurement).cloned().unwrap_or_default()
    }

    pub fn log(&self) -> &Log {
        &self.log
    }
}

fn to_record(p: &Point) -> PointRecord {
    PointRecord {
        measurement: p.measurement.clone(),
        tags: p
            .tags
            .iter()
            .map(|(k, v)| Tag {
                key: k.clone(),
                value: v.clone(),
            })
            .collect(),
        time: p.timestamp.unwrap_or_default(),
        fields: p
            .fields
            .iter()
            .map(|(k, v)| FieldRecord {
                key: k.clone(),
                value: Some(match v {
                    FieldValue::Float(x) => field_record::Value::Float(*x),
                    FieldValue::Integer(x) => field_record::Value::Integer(*x),
                    FieldValue::Unsigned(x) => field_record::Value::Unsigned(*x),
                    FieldValue::String(x) => field_record::Value::String(x.clone()),
                    FieldValue::Boolean(x) => field_record::Value::Boolean(*x),
                }),
            })
            .collect(),
    }
}

fn from_record(p: &PointRecord) -> Point {
    Point {
        measurement: p.measurement.clone(),
        tags: p
            .tags
            .iter()
            .map(|t| (t.key.clone(), t.value.clone()))
            .collect(),
        fields: p
            .fields
            .iter()
            .filter_map(|f| {
                let value = match f.value.as_ref()? {
                    field_record::Value::Float(x) => FieldValue::Float(*x),
                    field_record::Value::Integer(x) => FieldValue::Integer(*x),
                    field_record::Value::Unsigned(x) => FieldValue::Unsigned(*x),
                    field_record::Value::String(x) => FieldValue::String(x.clone()),
                    field_record::Value::Boolean(x) => FieldValue::Boolean(*x),
                };
                Some((f.key.clone(), value))
            })
            .collect(),
        timestamp: Some(p.time),
    }
}
