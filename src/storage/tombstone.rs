//! Deletes as tombstones: `DELETE`, `DROP SERIES` and `DROP MEASUREMENT` become, in each
//! shard they hit, one record of the shard's data log ([`TOMBSTONE_RECORD`], a prost
//! [`TombstonesWritten`]) holding a [`Tombstone`] per measurement: the series it hits
//! (resolved when the delete ran; none listed means all of them), a time range and a
//! write version. Its meaning: every point of those series within the range whose write
//! version is lower than the tombstone's is gone. Points written later survive it, and
//! applying one twice is applying it once, so replay (and later anti-entropy) can ship
//! tombstones like points.
//!
//! Where they live:
//! - the head drops the points a tombstone hits when it is applied (and on replay);
//! - every column file's index carries all the tombstones its shard had when the head in
//!   it was frozen (a merged file: those of the files merged), so a tombstone outlives the
//!   log segments that held it, and a backup (column files + segments) carries it;
//! - reads filter what column files return through the shard's tombstones, and a merge
//!   leaves out the points its files' tombstones hit.

use super::column::Column;
use crate::proto::Tombstone;
use std::collections::HashMap;

pub(crate) use crate::proto::TombstonesWritten;

/// Record kind of a prost-encoded [`TombstonesWritten`] in a shard's data log.
pub(crate) const TOMBSTONE_RECORD: u8 = 3;

/// What one tombstone deletes of one series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeletedRange {
    pub min_time: i64,
    pub max_time: i64,
    /// Points with a lower write version are gone.
    pub version: u64,
}

impl DeletedRange {
    fn of(t: &Tombstone) -> DeletedRange {
        DeletedRange {
            min_time: t.min_time,
            max_time: t.max_time,
            version: t.version,
        }
    }
}

/// Whether a tombstone names the series `key` (it must be of the tombstone's measurement).
pub(crate) fn names(t: &Tombstone, key: &str) -> bool {
    t.series_keys.is_empty()
        || t.series_keys
            .binary_search_by(|k| k.as_str().cmp(key))
            .is_ok()
}

/// Whether a point is deleted.
pub(crate) fn hits(ranges: &[DeletedRange], time: i64, version: u64) -> bool {
    ranges
        .iter()
        .any(|r| version < r.version && (r.min_time..=r.max_time).contains(&time))
}

/// Whether any range meets [min_time, max_time].
pub(crate) fn overlaps(ranges: &[DeletedRange], min_time: i64, max_time: i64) -> bool {
    ranges
        .iter()
        .any(|r| r.min_time <= max_time && min_time <= r.max_time)
}

/// Whether every point of a block (times within [min_time, max_time], versions at most
/// `max_version`) is deleted, judged without reading it.
pub(crate) fn covers(
    ranges: &[DeletedRange],
    min_time: i64,
    max_time: i64,
    max_version: u64,
) -> bool {
    ranges
        .iter()
        .any(|r| max_version < r.version && r.min_time <= min_time && max_time <= r.max_time)
}

/// The column without its deleted points, or None when none of them is.
pub fn without_deleted(column: &Column, ranges: &[DeletedRange]) -> Option<Column> {
    if ranges.is_empty() {
        return None;
    }
    let keep: Vec<usize> = (0..column.len())
        .filter(|&i| !hits(ranges, column.times[i], column.versions[i]))
        .collect();
    if keep.len() == column.len() {
        return None;
    }
    Some(Column {
        times: keep.iter().map(|&i| column.times[i]).collect(),
        versions: keep.iter().map(|&i| column.versions[i]).collect(),
        values: column.values.take_indices(&keep),
        resolved: column.resolved,
    })
}

/// A shard's tombstones, by measurement.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tombstones {
    by_measurement: HashMap<String, Vec<Tombstone>>,
}

impl Tombstones {
    /// Adds a tombstone unless it is known already (a delete gives all its tombstones one
    /// version, and a shard at most one per measurement).
    pub(crate) fn add(&mut self, mut t: Tombstone) {
        let known = self
            .by_measurement
            .entry(t.measurement.clone())
            .or_default();
        if known.iter().any(|k| k.version == t.version) {
            return;
        }
        t.series_keys.sort_unstable();
        known.push(t);
    }

    /// Every tombstone, in a stable order (measurement, then version).
    pub(crate) fn all(&self) -> Vec<Tombstone> {
        let mut all: Vec<Tombstone> = self.by_measurement.values().flatten().cloned().collect();
        all.sort_by(|a, b| (&a.measurement, a.version).cmp(&(&b.measurement, b.version)));
        all
    }

    pub(crate) fn of_measurement(&self, measurement: &str) -> &[Tombstone] {
        self.by_measurement
            .get(measurement)
            .map_or(&[], |t| t.as_slice())
    }

    /// The newest DROP MEASUREMENT of `measurement`: field types of points older than it
    /// are no longer the measurement's.
    pub(crate) fn schema_dropped_at(&self, measurement: &str) -> Option<u64> {
        self.of_measurement(measurement)
            .iter()
            .filter(|t| t.drop_schema)
            .map(|t| t.version)
            .max()
    }
}

/// What the tombstones of a measurement delete of the series `key`.
pub(crate) fn ranges(tombstones: &[Tombstone], key: &str) -> Vec<DeletedRange> {
    tombstones
        .iter()
        .filter(|t| names(t, key))
        .map(DeletedRange::of)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line_protocol::FieldValue;
    use crate::storage::column::FieldType;

    fn tombstone(keys: &[&str], min_time: i64, max_time: i64, version: u64) -> Tombstone {
        Tombstone {
            version,
            measurement: "cpu".into(),
            series_keys: keys.iter().map(|k| k.to_string()).collect(),
            min_time,
            max_time,
            drop_schema: false,
        }
    }

    #[test]
    fn only_older_points_of_named_series_within_the_range_are_deleted() {
        let mut c = Column::new(FieldType::Float);
        for (time, version) in [(10, 5), (20, 5), (30, 5), (20, 9)] {
            c.push(time, version, &FieldValue::Float(time as f64));
        }
        let t = tombstone(&["cpu,host=a"], 15, 30, 7);
        assert!(ranges(std::slice::from_ref(&t), "cpu,host=b").is_empty());
        let r = ranges(&[t], "cpu,host=a");
        let kept = without_deleted(&c, &r).unwrap();
        assert_eq!(kept.times, vec![10, 20]);
        assert_eq!(kept.versions, vec![5, 9]);
        // Applying it again changes nothing.
        assert!(without_deleted(&kept, &r).is_none());
    }

    #[test]
    fn a_tombstone_without_keys_hits_every_series_and_is_kept_once() {
        let mut set = Tombstones::default();
        set.add(tombstone(&[], i64::MIN, i64::MAX, 3));
        set.add(tombstone(&[], i64::MIN, i64::MAX, 3));
        assert_eq!(set.all().len(), 1);
        let r = ranges(set.of_measurement("cpu"), "cpu,host=z");
        assert!(covers(&r, 0, 100, 2) && !covers(&r, 0, 100, 3));
    }
}
