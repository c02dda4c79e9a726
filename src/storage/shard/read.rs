//! Reads: the series of a measurement with the parts of their fields (head entries copied,
//! column-file blocks left to decode), and the measurements, tags and series that deletes
//! leave visible.

use super::{Shard, ShardData};
use crate::storage::column::Column;
use crate::storage::column_file::{self, ColumnFile, FileSeries};
use crate::storage::head::Head;
use crate::storage::series_index::{MeasurementSeries, TagSelector, Tags};
use crate::storage::tombstone;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// Head entries a read copies under one hold of the data lock (about 1.5 MB, well under
/// a millisecond): the longest a write waits for a read to let it apply.
const POINTS_COPIED_PER_HOLD: usize = 65_536;

/// Decides from a series' tags whether its columns are needed.
pub type TagFilter<'a> = &'a dyn Fn(&[(String, String)]) -> bool;

/// What a read wants of one measurement of a shard.
pub struct SeriesRead<'a> {
    pub measurement: &'a str,
    pub start: i64,
    pub end: i64,
    /// The fields to read: blocks of the others are never decoded.
    pub fields: &'a [String],
    /// Narrows the series from the tag index; `keep` then judges each one.
    pub selector: &'a TagSelector,
    pub keep: TagFilter<'a>,
}

/// One series of a read: its tags and, per field asked for, the parts to resolve (see
/// [`Column::resolve`]).
pub struct SeriesParts {
    pub key: Arc<str>,
    pub tags: Tags,
    pub fields: Vec<Vec<Part>>,
    /// What deletes took from the series: points its parts may still hold (column files
    /// are immutable, and a frozen head is not changed by a delete after it was frozen).
    pub deleted: Vec<tombstone::DeletedRange>,
}

pub enum Part {
    /// From a head: the entries within the read's range, copied.
    Column(Column),
    /// A block of a column file, decoded on demand.
    Block {
        file: Arc<ColumnFile>,
        series: usize,
        block: usize,
    },
}

impl Part {
    /// How many entries the part holds (some may share a time), known without decoding.
    pub fn entries(&self) -> usize {
        match self {
            Part::Column(c) => c.len(),
            Part::Block {
                file,
                series,
                block,
            } => file.blocks(&file.series()[*series])[*block].count as usize,
        }
    }

    /// The part's first and last times, and how many distinct times it holds between
    /// them (0 when unknown without decoding).
    pub fn bounds(&self) -> (i64, i64, usize) {
        match self {
            Part::Column(c) if c.resolved => (c.times[0], c.times[c.len() - 1], c.len()),
            Part::Column(c) => {
                let (lo, hi) = c
                    .times
                    .iter()
                    .fold((i64::MAX, i64::MIN), |(lo, hi), &t| (lo.min(t), hi.max(t)));
                (lo, hi, 0)
            }
            Part::Block {
                file,
                series,
                block,
            } => {
                let b = &file.blocks(&file.series()[*series])[*block];
                (b.min_time, b.max_time, b.count as usize)
            }
        }
    }

    pub fn load(self) -> Result<Column, column_file::ColumnFileError> {
        match self {
            Part::Column(c) => Ok(c),
            Part::Block {
                file,
                series,
                block,
            } => file.read_block(&file.blocks(&file.series()[series])[block]),
        }
    }
}

impl Shard {
    /// Measurements with a series: one whose every point was deleted keeps its field
    /// types (as InfluxDB's shards do) but is no longer listed.
    pub fn measurements(&self) -> BTreeSet<String> {
        let names: BTreeSet<String> = {
            let schema = self.schema.lock().unwrap_or_else(|e| e.into_inner());
            schema.keys().cloned().collect()
        };
        let deleted_from: Vec<String> = {
            let data = self.data.read().unwrap_or_else(|e| e.into_inner());
            names
                .iter()
                .filter(|m| !data.tombstones.of_measurement(m).is_empty())
                .cloned()
                .collect()
        };
        let mut names = names;
        for m in deleted_from {
            if self.series_list(&|x| x == m).is_empty() {
                names.remove(&m);
            }
        }
        names
    }

    /// The series of a measurement that the read's selector allows and its `keep`
    /// accepts, with the parts of the asked-for fields within [start, end]: the head's
    /// entries copied, column-file blocks left to decode (by whichever thread wants them),
    /// with what deletes took from them.
    ///
    /// The head's entries are copied under the data lock, which writes need to apply
    /// their points: so the lock is taken again for each [`POINTS_COPIED_PER_HOLD`]
    /// points copied, and a write waits for one such piece, not for a whole read of a
    /// 64 MiB head. Each series is read whole under one hold, so it is consistent in
    /// itself (a flush moving it from the head to a file meanwhile is seen before or
    /// after, never half); different series may be read either side of a write.
    pub fn series_of(&self, read: &SeriesRead<'_>) -> Vec<SeriesParts> {
        let selected: Vec<(Arc<str>, Tags)> = {
            let data = self.data.read().unwrap_or_else(|e| e.into_inner());
            let Some(index) = data.index.measurement(read.measurement) else {
                return Vec::new();
            };
            index
                .select(read.selector)
                .into_iter()
                .filter(|(_, tags)| (read.keep)(tags))
                .map(|(key, tags)| (key.clone(), tags))
                .collect()
        };
        // Looked up once per column: a measurement may have 100,000 fields.
        let field_at: HashMap<&str, usize, foldhash::fast::RandomState> = read
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.as_str(), i))
            .collect();
        let mut out = Vec::with_capacity(selected.len());
        let mut selected = selected.into_iter().peekable();
        while selected.peek().is_some() {
            let data = self.data.read().unwrap_or_else(|e| e.into_inner());
            let tombstones = data.tombstones.of_measurement(read.measurement);
            let heads: Vec<&Head> = std::iter::once(&data.head)
                .chain(data.frozen.iter().map(|h| h.as_ref()))
                .collect();
            let mut copied = 0;
            while copied < POINTS_COPIED_PER_HOLD {
                let Some((key, tags)) = selected.next() else {
                    break;
                };
                let deleted = tombstone::ranges(tombstones, &key);
                let mut fields: Vec<Vec<Part>> =
                    (0..read.fields.len()).map(|_| Vec::new()).collect();
                for head in &heads {
                    let Some(s) = head.get(&key) else { continue };
                    for (name, column) in s.columns() {
                        if let Some(&i) = field_at.get(&**name) {
                            let part = column.slice_time(read.start, read.end);
                            copied += part.len().max(1);
                            if !part.is_empty() {
                                fields[i].push(Part::Column(part));
                            }
                        }
                    }
                }
                copied += 1;
                for file in &data.files {
                    let Some(at) = file.find_series(&key) else {
                        continue;
                    };
                    for (b, block) in file.blocks(&file.series()[at]).iter().enumerate() {
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
                            fields[i].push(Part::Block {
                                file: file.clone(),
                                series: at,
                                block: b,
                            });
                        }
                    }
                }
                out.push(SeriesParts {
                    key,
                    tags,
                    fields,
                    deleted,
                });
            }
        }
        out
    }

    /// The tag keys of a measurement's series, but for series deletes emptied.
    pub fn tag_keys(&self, measurement: &str) -> Arc<BTreeSet<String>> {
        let data = self.data.read().unwrap_or_else(|e| e.into_inner());
        let Some(index) = data.index.measurement(measurement) else {
            return Arc::default();
        };
        if data.tombstones.of_measurement(measurement).is_empty() {
            index.tag_keys().clone()
        } else {
            Arc::new(
                index
                    .series()
                    .filter(|(k, _)| visible(&data, measurement, k))
                    .flat_map(|(_, tags)| tags.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>())
                    .collect(),
            )
        }
    }

    /// The tag (key, value) pairs of each measurement `wanted` accepts, of the keys
    /// `key` accepts, of the series not emptied by deletes.
    pub fn tag_values(
        &self,
        wanted: &dyn Fn(&str) -> bool,
        key: &dyn Fn(&str) -> bool,
    ) -> Vec<(String, Vec<(String, String)>)> {
        let data = self.data.read().unwrap_or_else(|e| e.into_inner());
        data.index
            .measurements()
            .filter(|(m, _)| wanted(m))
            .map(|(m, index)| {
                let pairs = if data.tombstones.of_measurement(m).is_empty() {
                    index
                        .tag_values()
                        .filter(|(k, _)| key(k))
                        .flat_map(|(k, values)| values.map(move |v| (k.to_owned(), v.to_owned())))
                        .collect()
                } else {
                    index
                        .series()
                        .filter(|(k, _)| visible(&data, m, k))
                        .flat_map(|(_, tags)| {
                            let pairs = tags.iter().filter(|(k, _)| key(k));
                            pairs.cloned().collect::<Vec<_>>()
                        })
                        .collect()
                };
                (m.to_owned(), pairs)
            })
            .collect()
    }

    /// The series (key and tags, in key order) of each measurement `wanted` accepts, but
    /// for those deletes emptied.
    pub fn series_list(&self, wanted: &dyn Fn(&str) -> bool) -> Vec<MeasurementSeries> {
        let data = self.data.read().unwrap_or_else(|e| e.into_inner());
        data.index
            .measurements()
            .filter(|(m, _)| wanted(m))
            .map(|(m, index)| {
                let all = data.tombstones.of_measurement(m).is_empty();
                let series = index
                    .series()
                    .filter(|(k, _)| all || visible(&data, m, k))
                    .map(|(k, t)| (k.clone(), t))
                    .collect();
                (m.to_owned(), series)
            })
            .filter(|(_, series): &MeasurementSeries| !series.is_empty())
            .collect()
    }

    /// Whether a series keeps a point in a file despite the deletes that hit it: blocks
    /// a delete covers whole are judged from the index, others are read.
    fn visible_in_file(
        file: &ColumnFile,
        s: &FileSeries,
        deleted: &[tombstone::DeletedRange],
    ) -> bool {
        file.blocks(s).iter().any(|b| {
            if !tombstone::overlaps(deleted, b.min_time, b.max_time) {
                return true; // a block is never empty
            }
            !tombstone::covers(deleted, b.min_time, b.max_time, file.index.max_version)
                && file.read_block(b).map_or(true, |c| {
                    // An unreadable block is reported by the reads that need it.
                    (0..c.len()).any(|i| !tombstone::hits(deleted, c.times[i], c.versions[i]))
                })
        })
    }
}

/// Whether a series the index knows keeps a point despite the deletes that hit it.
fn visible(data: &ShardData, measurement: &str, key: &str) -> bool {
    let deleted = tombstone::ranges(data.tombstones.of_measurement(measurement), key);
    if deleted.is_empty() {
        return true;
    }
    let in_heads = std::iter::once(&data.head)
        .chain(data.frozen.iter().map(|h| h.as_ref()))
        .filter_map(|h| h.get(key))
        .any(|s| {
            s.columns().any(|(_, c)| {
                tombstone::without_deleted(&c, &deleted).is_none_or(|c| !c.is_empty())
            })
        });
    in_heads
        || data.files.iter().any(|file| {
            file.find_series(key)
                .is_some_and(|at| Shard::visible_in_file(file, &file.series()[at], &deleted))
        })
}
