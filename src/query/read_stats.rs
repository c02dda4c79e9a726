//! What a SELECT's reads took, recorded for EXPLAIN ANALYZE: per shard and measurement
//! the series listed, the head entries copied of each field and how long the listing took;
//! per field the column-file blocks decoded and their bytes, by type. Recorded only when
//! the statement's context holds a [`ReadStats`], so a plain SELECT pays nothing for it.

use crate::placement::ShardInfo;
use crate::storage::shard::{Part, SeriesParts};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Blocks decoded and their bytes in the files, per [`crate::storage::column::FieldType`]
/// code (float, integer, unsigned, string, boolean).
pub(crate) type DecodedByType = [Decoded; 5];

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decoded {
    pub(crate) blocks: u64,
    pub(crate) bytes: u64,
}

/// One measurement's series listed in one shard (summed when the statement lists them
/// twice, as a subquery beside its own measurement does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listing {
    pub(crate) shard: u64,
    pub(crate) database: String,
    pub(crate) policy: String,
    /// The shard's start, which orders its listings as InfluxDB orders its shards.
    pub(crate) shard_start: i64,
    pub(crate) measurement: String,
    pub(crate) series: u64,
    /// The fields read, each with the head entries copied of it.
    pub(crate) fields: BTreeMap<String, u64>,
    pub(crate) took: Duration,
}

#[derive(Default)]
pub(crate) struct ReadStats {
    recorded: Mutex<Recorded>,
}

#[derive(Default)]
struct Recorded {
    listings: Vec<Listing>,
    /// The shard of each column file a listing named, by the file's address: the parts
    /// that hold the files keep them alive until they are decoded.
    files: HashMap<usize, u64>,
    /// By shard, measurement and field.
    decoded: HashMap<(u64, Arc<str>, Arc<str>), DecodedByType>,
}

impl ReadStats {
    /// A shard's series of `measurement` listed for `fields`, as `parts`, in `took`.
    pub(crate) fn listed(
        &self,
        shard: &ShardInfo,
        measurement: &str,
        fields: &[String],
        parts: &[SeriesParts],
        took: Duration,
    ) {
        let mut copied = vec![0u64; fields.len()];
        let mut files = HashMap::new();
        for series in parts {
            for (n, field) in copied.iter_mut().zip(&series.fields) {
                for part in field {
                    match part {
                        Part::Column(c) => *n += c.len() as u64,
                        Part::Block { file, .. } => {
                            files.insert(Arc::as_ptr(file) as usize, shard.id);
                        }
                    }
                }
            }
        }
        let mut recorded = self.lock();
        recorded.files.extend(files);
        let listing = match recorded
            .listings
            .iter_mut()
            .find(|l| l.shard == shard.id && l.measurement == measurement)
        {
            Some(known) => known,
            None => {
                recorded.listings.push(Listing {
                    shard: shard.id,
                    database: shard.database.clone(),
                    policy: shard.retention_policy.clone(),
                    shard_start: shard.start,
                    measurement: measurement.to_owned(),
                    series: 0,
                    fields: BTreeMap::new(),
                    took: Duration::ZERO,
                });
                recorded.listings.last_mut().expect("just pushed")
            }
        };
        listing.series += parts.len() as u64;
        listing.took += took;
        for (name, n) in fields.iter().zip(copied) {
            *listing.fields.entry(name.clone()).or_default() += n;
        }
    }

    /// One series' parts about to be decoded: its column-file blocks are counted.
    pub(crate) fn decoding(&self, fields: &[Vec<Part>]) {
        let mut recorded = self.lock();
        for part in fields.iter().flatten() {
            let Part::Block {
                file,
                series,
                block,
            } = part
            else {
                continue;
            };
            let Some(&shard) = recorded.files.get(&(Arc::as_ptr(file) as usize)) else {
                continue;
            };
            let s = &file.series()[*series];
            let b = &file.blocks(s)[*block];
            let key = (shard, s.measurement.clone(), file.field(b).clone());
            let by_type = recorded.decoded.entry(key).or_default();
            if let Some(d) = by_type.get_mut(b.field_type as usize) {
                d.blocks += 1;
                d.bytes += u64::from(b.length);
            }
        }
    }

    /// Every listing, in the order first read.
    pub(crate) fn listings(&self) -> Vec<Listing> {
        self.lock().listings.clone()
    }

    /// The blocks decoded of a field of a measurement in a shard.
    pub(crate) fn decoded(&self, shard: u64, measurement: &str, field: &str) -> DecodedByType {
        let recorded = self.lock();
        recorded
            .decoded
            .iter()
            .find(|((s, m, f), _)| *s == shard && &**m == measurement && &**f == field)
            .map(|(_, d)| *d)
            .unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.recorded.lock().unwrap_or_else(|e| e.into_inner())
    }
}
