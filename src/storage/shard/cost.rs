//! What a read would take, counted without reading: the series it selects and, per field,
//! the head entries and column-file blocks within its range (EXPLAIN's figures).

use super::read::SeriesRead;
use super::Shard;
use crate::storage::head::Head;
use crate::storage::tombstone;
use std::collections::HashMap;

/// What [`Shard::series_of`] would gather for a read, counted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReadCost {
    /// Series the selector and the read's `keep` accept.
    pub series: u64,
    /// Per field asked for, in the read's order.
    pub fields: Vec<FieldCost>,
}

/// One field's share of a read, summed over its series.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FieldCost {
    /// Head entries (live and frozen heads) within the range.
    pub cached_values: u64,
    /// Column files holding a block of the series within the range, counted once per
    /// series (as InfluxDB counts TSM files): a file shared by two series counts twice.
    pub files: u64,
    /// Column-file blocks within the range that no delete covers whole.
    pub blocks: u64,
    /// Their bytes in the files.
    pub block_bytes: u64,
}

impl Shard {
    /// The cost of `read`, or None when the shard holds no series of its measurement. The
    /// same series, entries and blocks as [`Shard::series_of`] would gather, under one hold
    /// of the data lock: nothing is copied or decoded.
    pub fn read_cost(&self, read: &SeriesRead<'_>) -> Option<ReadCost> {
        let data = self.data.read().unwrap_or_else(|e| e.into_inner());
        let index = data.index.measurement(read.measurement)?;
        let field_at: HashMap<&str, usize> = read
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.as_str(), i))
            .collect();
        let heads: Vec<&Head> = std::iter::once(&data.head)
            .chain(data.frozen.iter().map(|h| h.as_ref()))
            .collect();
        let tombstones = data.tombstones.of_measurement(read.measurement);
        let mut cost = ReadCost {
            series: 0,
            fields: vec![FieldCost::default(); read.fields.len()],
        };
        let in_range = |t: &i64| (read.start..=read.end).contains(t);
        for (key, tags) in index.select(read.selector) {
            if !(read.keep)(&tags) {
                continue;
            }
            cost.series += 1;
            for head in &heads {
                let Some(s) = head.get(key) else { continue };
                for (name, column) in s.columns() {
                    if let Some(&i) = field_at.get(&**name) {
                        cost.fields[i].cached_values +=
                            column.times.iter().filter(|t| in_range(t)).count() as u64;
                    }
                }
            }
            let deleted = tombstone::ranges(tombstones, key);
            for file in &data.files {
                let Some(at) = file.find_series(key) else {
                    continue;
                };
                let mut in_file = vec![false; read.fields.len()];
                for block in file.blocks(&file.series()[at]) {
                    if block.max_time < read.start || block.min_time > read.end {
                        continue;
                    }
                    if tombstone::covers(
                        &deleted,
                        block.min_time,
                        block.max_time,
                        file.index.max_version,
                    ) {
                        continue;
                    }
                    if let Some(&i) = field_at.get(&**file.field(block)) {
                        cost.fields[i].blocks += 1;
                        cost.fields[i].block_bytes += u64::from(block.length);
                        in_file[i] = true;
                    }
                }
                for (field, read) in cost.fields.iter_mut().zip(in_file) {
                    field.files += u64::from(read);
                }
            }
        }
        Some(cost)
    }
}
