//! A shard's head: the points of its data log not yet in a column file, indexed by series.

use super::column::{Column, FieldType};
use crate::line_protocol::{series_key, FieldValue};
use std::collections::HashMap;

/// Series keys are hashed on every point written: a fast non-cryptographic hash (keys
/// come from clients, but a flood of colliding keys costs only speed, never correctness).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Debug, Clone)]
pub struct SeriesHead {
    pub key: String,
    pub measurement: String,
    pub tags: Vec<(String, String)>,
    pub fields: Vec<(String, Column)>,
}

#[derive(Debug, Default)]
pub struct Head {
    index: FastMap<String, usize>,
    series: Vec<SeriesHead>,
    bytes: usize,
}

impl Head {
    /// Adds one point's fields; a value whose type differs from the column's is skipped
    /// (types are checked before points reach the log, so this only guards replay).
    pub fn insert(
        &mut self,
        measurement: &str,
        tags: &[(String, String)],
        time: i64,
        version: u64,
        fields: &[(String, FieldValue)],
    ) {
        let key = series_key(measurement, tags);
        let idx = match self.index.get(&key) {
            Some(&i) => i,
            None => {
                self.bytes += key.len() * 2 + 64;
                self.series.push(SeriesHead {
                    key: key.clone(),
                    measurement: measurement.to_owned(),
                    tags: tags.to_vec(),
                    fields: Vec::new(),
                });
                self.index.insert(key, self.series.len() - 1);
                self.series.len() - 1
            }
        };
        let series = &mut self.series[idx];
        for (name, value) in fields {
            let column = match series.fields.iter_mut().position(|(n, _)| n == name) {
                Some(i) => &mut series.fields[i].1,
                None => {
                    series
                        .fields
                        .push((name.clone(), Column::new(FieldType::of(value))));
                    &mut series.fields.last_mut().expect("just pushed").1
                }
            };
            if column.push(time, version, value) {
                self.bytes += 16
                    + match value {
                        FieldValue::String(s) => s.len() + 24,
                        _ => 8,
                    };
            }
        }
    }

    pub fn series(&self) -> &[SeriesHead] {
        &self.series
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Approximate heap bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}
