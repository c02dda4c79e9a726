//! What a read would take, counted without reading: the series it selects and, per field,
//! the head entries and column-file blocks within its range (EXPLAIN's figures).

use super::read::SeriesRead;
use super::Shard;
use crate::storage::column::Column;
use crate::storage::head::Head;
use crate::storage::tombstone;
use std::collections::HashMap;
use std::sync::Arc;

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
    /// Head entries (live and frozen heads) a read copies: those within the range.
    pub cached_values: u64,
    /// Column files holding a block of the series within the range, counted once per
    /// series (as InfluxDB counts TSM files): a file shared by two series counts twice.
    pub files: u64,
    /// Column-file blocks within the range that no delete covers whole.
    pub blocks: u64,
    /// Their bytes in the files.
    pub block_bytes: u64,
}

/// Series counted under one hold of the data lock: writes wait for one such piece, not
/// for a count of a whole shard (as [`Shard::series_of`] copies in pieces).
const SERIES_COUNTED_PER_HOLD: usize = 16_384;

impl Shard {
    /// The cost of `read`, or None when the shard holds no series of its measurement: the
    /// same series, entries and blocks as [`Shard::series_of`] would gather (a head column
    /// not yet sorted is copied whole), with nothing copied or decoded.
    pub fn read_cost(&self, read: &SeriesRead<'_>) -> Option<ReadCost> {
        let selected: Vec<Arc<str>> = {
            let data = self.data.read().unwrap_or_else(|e| e.into_inner());
            let index = data.index.measurement(read.measurement)?;
            index
                .select(read.selector)
                .into_iter()
                .filter(|(_, tags)| (read.keep)(tags))
                .map(|(key, _)| key.clone())
                .collect()
        };
        let field_at: HashMap<&str, usize> = read
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.as_str(), i))
            .collect();
        let mut cost = ReadCost {
            series: selected.len() as u64,
            fields: vec![FieldCost::default(); read.fields.len()],
        };
        for piece in selected.chunks(SERIES_COUNTED_PER_HOLD) {
            let data = self.data.read().unwrap_or_else(|e| e.into_inner());
            let heads: Vec<&Head> = std::iter::once(&data.head)
                .chain(data.frozen.iter().map(|h| h.as_ref()))
                .collect();
            let tombstones = data.tombstones.of_measurement(read.measurement);
            for key in piece {
                for head in &heads {
                    let Some(s) = head.get(key) else { continue };
                    for (name, column) in s.columns() {
                        if let Some(&i) = field_at.get(&**name) {
                            cost.fields[i].cached_values += entries_read(&column, read) as u64;
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
                        let max_version = file.index.max_version;
                        if tombstone::covers(&deleted, block.min_time, block.max_time, max_version)
                        {
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
        }
        Some(cost)
    }
}

/// The head entries a read copies of a column: those within its range, or all of a
/// column not yet sorted ([`Column::slice_time`]).
fn entries_read(column: &Column, read: &SeriesRead<'_>) -> usize {
    if !column.resolved {
        return column.len();
    }
    let from = column.times.partition_point(|&t| t < read.start);
    let to = column.times.partition_point(|&t| t <= read.end);
    to.saturating_sub(from)
}

#[cfg(test)]
mod tests {
    use super::super::read::Part;
    use super::*;
    use crate::line_protocol::parse_body;
    use crate::storage::series_index::TagSelector;
    use crate::storage::ShardInfo;

    async fn write(shard: &Arc<Shard>, body: &str, version: u64) {
        let (points, _) = parse_body(body.as_bytes());
        let points = shard.admit(points, usize::MAX).points;
        shard.write(&points, version).await.unwrap();
    }

    /// What [`Shard::series_of`] gathers for the same read, counted from its parts.
    fn gathered(shard: &Shard, read: &SeriesRead<'_>) -> ReadCost {
        let series = shard.series_of(read);
        let mut cost = ReadCost {
            series: series.len() as u64,
            fields: vec![FieldCost::default(); read.fields.len()],
        };
        for s in &series {
            for (field, parts) in cost.fields.iter_mut().zip(&s.fields) {
                let mut files = Vec::new();
                for part in parts {
                    match part {
                        Part::Column(c) => field.cached_values += c.len() as u64,
                        Part::Block {
                            file,
                            series,
                            block,
                        } => {
                            field.blocks += 1;
                            let b = &file.blocks(&file.series()[*series])[*block];
                            field.block_bytes += u64::from(b.length);
                            if !files.iter().any(|f| Arc::ptr_eq(f, file)) {
                                files.push(file.clone());
                            }
                        }
                    }
                }
                field.files += files.len() as u64;
            }
        }
        cost
    }

    /// The count agrees with the read it stands for, over heads, column files, ranges,
    /// tag selections, fields absent from some series and a delete.
    #[test]
    fn a_read_cost_counts_what_the_read_gathers() {
        let dir = tempfile::tempdir().unwrap();
        let info = ShardInfo::of_group("db", "autogen", 0, i64::MAX / 2);
        let shard = Arc::new(Shard::open_for_test(dir.path(), info).unwrap());
        crate::client::block_on(async {
            let body: String = (0..1500)
                .map(|t| format!("cpu,host=h{} a={t},b={t}i {t}\n", t % 3))
                .collect();
            write(&shard, &body, 10).await;
            shard.flush().unwrap();
            write(&shard, "cpu,host=h0 a=1 2000\ncpu,host=h1 b=2i 2001\n", 11).await;
            shard.flush().unwrap();
            write(&shard, "cpu,host=h2 a=3 3000\ncpu,host=h3 a=4 3001\n", 12).await;
            let t = crate::proto::Tombstone {
                version: 13,
                measurement: "cpu".into(),
                series_keys: vec!["cpu,host=h1".into()],
                min_time: 0,
                max_time: 10_000,
                ..Default::default()
            };
            shard.delete(vec![t]).await.unwrap();
        });
        let fields = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let h0 = TagSelector::Eq("host".into(), "h0".into());
        for selector in [TagSelector::All, h0] {
            for (start, end) in [(i64::MIN, i64::MAX), (0, 500), (1000, 2500), (2001, 2001)] {
                let read = SeriesRead {
                    measurement: "cpu",
                    start,
                    end,
                    fields: &fields,
                    selector: &selector,
                    keep: &|tags| tags.iter().all(|(_, v)| v != "h2"),
                };
                let cost = shard.read_cost(&read).expect("the shard holds cpu");
                assert_eq!(cost, gathered(&shard, &read), "{selector:?} {start}..{end}");
            }
        }
        let read = SeriesRead {
            measurement: "mem",
            start: i64::MIN,
            end: i64::MAX,
            fields: &fields,
            selector: &TagSelector::All,
            keep: &|_| true,
        };
        assert_eq!(shard.read_cost(&read), None);
    }
}
