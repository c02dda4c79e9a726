//! A shard's head: the points of its data log not yet in a column file, indexed by series.

use super::column::{Column, FieldType};
use super::tombstone;
use crate::line_protocol::FieldValue;
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
    /// `key` is the series key of `measurement` and `tags` ([`crate::line_protocol::series_key`]).
    pub fn insert<K, V, F>(
        &mut self,
        key: &str,
        measurement: &str,
        tags: &[(K, V)],
        time: i64,
        version: u64,
        fields: &[(F, FieldValue)],
    ) where
        K: AsRef<str>,
        V: AsRef<str>,
        F: AsRef<str>,
    {
        let idx = match self.index.get(key) {
            Some(&i) => i,
            None => {
                let key = key.to_owned();
                self.bytes += key.len() * 2 + 64;
                self.series.push(SeriesHead {
                    key: key.clone(),
                    measurement: measurement.to_owned(),
                    tags: tags
                        .iter()
                        .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
                        .collect(),
                    fields: Vec::new(),
                });
                self.index.insert(key, self.series.len() - 1);
                self.series.len() - 1
            }
        };
        let series = &mut self.series[idx];
        for (at, (name, value)) in fields.iter().enumerate() {
            let name = name.as_ref();
            // A series' points usually list their fields in the same order: try the
            // position this field had last time before searching.
            let found = match series.fields.get(at) {
                Some((n, _)) if super::same_name(n, name) => Some(at),
                _ => series
                    .fields
                    .iter()
                    .position(|(n, _)| super::same_name(n, name)),
            };
            let column = match found {
                Some(i) => &mut series.fields[i].1,
                None => {
                    series
                        .fields
                        .push((name.to_owned(), Column::new(FieldType::of(value))));
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

    pub fn get(&self, key: &str) -> Option<&SeriesHead> {
        self.index.get(key).map(|&i| &self.series[i])
    }

    /// Drops the points a tombstone hits, and series left without any. The byte estimate
    /// is left as it was: the head is then flushed a little early, never late.
    pub fn delete(&mut self, t: &crate::proto::Tombstone) {
        let mut emptied = false;
        for s in self
            .series
            .iter_mut()
            .filter(|s| s.measurement == t.measurement && tombstone::names(t, &s.key))
        {
            let ranges = tombstone::ranges(std::slice::from_ref(t), &s.key);
            for (_, column) in &mut s.fields {
                if let Some(kept) = tombstone::without_deleted(column, &ranges) {
                    *column = kept;
                }
            }
            s.fields.retain(|(_, c)| !c.is_empty());
            emptied |= s.fields.is_empty();
        }
        if emptied {
            self.series.retain(|s| !s.fields.is_empty());
            self.index = self
                .series
                .iter()
                .enumerate()
                .map(|(i, s)| (s.key.clone(), i))
                .collect();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Tombstone;

    fn insert(head: &mut Head, host: &str, time: i64, version: u64, v: f64) {
        let key = format!("cpu,host={host}");
        let tags = [("host", host)];
        head.insert(
            &key,
            "cpu",
            &tags,
            time,
            version,
            &[("v", FieldValue::Float(v))],
        );
    }

    #[test]
    fn a_delete_drops_emptied_series_and_later_points_find_theirs() {
        let mut head = Head::default();
        for (host, v) in [("a", 1.0), ("b", 2.0), ("c", 3.0)] {
            insert(&mut head, host, 10, 5, v);
        }
        insert(&mut head, "c", 20, 5, 4.0);
        head.delete(&Tombstone {
            version: 6,
            measurement: "cpu".into(),
            series_keys: vec!["cpu,host=a".into(), "cpu,host=c".into()],
            min_time: 0,
            max_time: 10,
            drop_schema: false,
        });
        let keys: Vec<&str> = head.series().iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["cpu,host=b", "cpu,host=c"]);
        insert(&mut head, "c", 30, 7, 5.0);
        insert(&mut head, "a", 10, 7, 6.0);
        let c = &head.series()[1];
        assert_eq!(
            (c.key.as_str(), c.fields[0].1.times.as_slice()),
            ("cpu,host=c", &[20, 30][..])
        );
        assert_eq!(head.series()[2].key, "cpu,host=a");
    }
}
