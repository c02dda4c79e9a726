//! The shard's anti-entropy digests (see [`crate::storage::digest`]): leaves marked dirty
//! as records are applied, recomputed from the logical points (last write wins, deletes
//! applied) when compared, persisted beside the column files; and the contents of chosen
//! leaves (points with their write versions, and the deletes over them) for a repair.

use super::{Shard, ShardData};
use crate::line_protocol::{FieldValue, Point};
use crate::proto::Tombstone;
use crate::storage::column::Column;
use crate::storage::digest::{
    self, cell_chosen, leaf_position, position_buckets, series_bucket, time_bucket,
    time_buckets_of_range, time_cell, Digest, DigestTree, LeafCellDigests, LeafCells, NodeDigest,
    Prefix, Recompute, DIGEST_FILE,
};
use crate::storage::head::Head;
use crate::storage::tombstone;
use crate::storage::StorageError;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

/// Series read under one hold of the data lock while digests are recomputed.
const SERIES_PER_HOLD: usize = 256;

/// One logical point of a leaf, as a repair sends it: its write version carried.
#[derive(Debug, Clone, PartialEq)]
pub struct LeafPoint {
    pub series: Arc<str>,
    pub field: Arc<str>,
    pub time: i64,
    pub version: u64,
    pub value: FieldValue,
}

/// What a repair sends of one measurement's leaves.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeafContents {
    pub measurement: String,
    pub points: Vec<LeafPoint>,
    pub tombstones: Vec<Tombstone>,
}

/// The digest leaves points fall in, each once: leaf positions by measurement, sorted.
/// Computed before the shard's data lock is taken (a series-bucket hash per run of
/// points of one series), so that under it only the leaves are touched
/// ([`mark_leaves`]); a batch's points share few leaves (a line's fields one, a series'
/// lines at nearby times often one). Positions are grouped by measurement first so that
/// the sort compares integers, not names.
pub(super) fn leaves_of<'a>(
    (start, end): (i64, i64),
    points: &'a [Point<'_>],
) -> Vec<(&'a str, Vec<u16>)> {
    let key = digest::key();
    let mut last: Option<(&str, u8)> = None;
    let mut runs: Vec<(&'a str, Vec<u16>)> = Vec::new();
    let mut current = usize::MAX;
    for p in points {
        let sb = match last {
            Some((k, b)) if crate::storage::same_name(k, &p.key) => b,
            _ => {
                let b = series_bucket(&key, &p.key);
                last = Some((&p.key, b));
                b
            }
        };
        let measurement: &str = p.measurement.as_ref();
        if runs.get(current).is_none_or(|(m, _)| *m != measurement) {
            current = match runs.iter().position(|(m, _)| *m == measurement) {
                Some(i) => i,
                None => {
                    runs.push((measurement, Vec::with_capacity(points.len())));
                    runs.len() - 1
                }
            };
        }
        let leaf = leaf_position(time_bucket(start, end, p.timestamp.unwrap_or_default()), sb);
        let positions = &mut runs[current].1;
        if positions.last() != Some(&leaf) {
            positions.push(leaf);
        }
    }
    for (_, positions) in &mut runs {
        positions.sort_unstable();
        positions.dedup();
    }
    runs
}

/// Marks the leaves of applied points dirty (from [`leaves_of`]): one map lookup per
/// measurement, a B-tree entry per leaf.
pub(super) fn mark_leaves(data: &mut ShardData, leaves: &[(&str, Vec<u16>)], now: Option<i64>) {
    for (measurement, positions) in leaves {
        data.digest
            .touch_all(measurement, positions.iter().copied(), now);
    }
}

/// Marks dirty the leaves a tombstone may change.
pub(super) fn mark_tombstone(
    data: &mut ShardData,
    (start, end): (i64, i64),
    t: &Tombstone,
    now: Option<i64>,
) {
    let key = digest::key();
    let series: Option<HashSet<u8>> = (!t.series_keys.is_empty()).then(|| {
        t.series_keys
            .iter()
            .map(|k| series_bucket(&key, k))
            .collect()
    });
    let times = time_buckets_of_range(start, end, t.min_time, t.max_time);
    data.digest
        .touch_deleted(&t.measurement, series.as_ref(), &times, now);
}

/// Parts of one series (all fields) as read under the lock: head entries copied, file
/// blocks to decode outside it.
struct SeriesParts {
    key: Arc<str>,
    bucket: u8,
    fields: BTreeMap<Arc<str>, Vec<super::Part>>,
    deleted: Vec<tombstone::DeletedRange>,
}

impl Shard {
    fn bounds(&self) -> (i64, i64) {
        (self.info.start, self.info.end)
    }

    /// Loads the persisted digests at open, if they account for every record the column
    /// files cover (replay marks the rest dirty); otherwise every leaf is rebuilt from
    /// the points when first compared.
    pub(super) fn load_digests(&self) {
        let path = self.dir.join(DIGEST_FILE);
        let mut data = self.data.write().unwrap_or_else(|e| e.into_inner());
        let floor = data.replay_floor;
        let loaded = read_file(&*self.fs, &path).and_then(|bytes| DigestTree::decode(&bytes));
        data.digest = match loaded {
            Ok((tree, shard, incarnation, upto))
                if shard == self.info.id
                    && incarnation == self.info.incarnation
                    && upto >= floor =>
            {
                tree
            }
            // No column file: every record of the shard is replayed, and marks its leaves.
            Ok(_) | Err(_) if floor == 0 => DigestTree::default(),
            Ok(_) | Err(_) => {
                let mut tree = DigestTree::default();
                tree.rebuild = true;
                tree
            }
        };
    }

    /// Writes the digests out (a temporary file renamed over the last one), with the
    /// sequence number up to which they account for the shard's records. Not synced: a
    /// file lost or torn by a crash fails its checksum, and the shard rebuilds them.
    pub fn persist_digests(&self) -> Result<(), StorageError> {
        let bytes = {
            let mut data = self.data.write().unwrap_or_else(|e| e.into_inner());
            data.digest.unpersisted = false;
            data.digest
                .encode(self.info.id, self.info.incarnation, data.watermark.upto)
        };
        let unpersisted = |_| {
            let mut data = self.data.write().unwrap_or_else(|e| e.into_inner());
            data.digest.unpersisted = true;
        };
        let path = self.dir.join(DIGEST_FILE);
        let tmp = self.dir.join(format!("{DIGEST_FILE}.tmp"));
        let err = |source| StorageError::ShardDir {
            path: path.clone(),
            source,
        };
        let written = self.fs.create(&tmp).and_then(|file| {
            file.write_all_at(&bytes, 0)?;
            drop(file);
            self.fs.rename(&tmp, &path)
        });
        written.inspect_err(|_| unpersisted(())).map_err(err)
    }

    /// Whether the digests changed since they were last persisted.
    pub fn digests_changed_since_persisted(&self) -> bool {
        let data = self.data.read().unwrap_or_else(|e| e.into_inner());
        data.digest.unpersisted
    }

    /// Recomputes the dirty leaves written before `settled_before` (every leaf, after a
    /// restart without usable digests); returns how many leaves it computed.
    pub fn refresh_digests(&self, settled_before: i64) -> Result<usize, StorageError> {
        let (plans, rebuild) = {
            let data = self.data.read().unwrap_or_else(|e| e.into_inner());
            if data.digest.rebuild {
                let mut names: BTreeSet<String> = data
                    .index
                    .measurements()
                    .map(|(m, _)| m.to_owned())
                    .collect();
                names.extend(data.digest.measurements().into_iter().map(str::to_owned));
                (data.digest.rebuild_plan(names), true)
            } else {
                (data.digest.to_recompute(settled_before), false)
            }
        };
        let mut computed = 0;
        for plan in &plans {
            let digests = self.compute_leaves(plan)?;
            computed += plan.positions.as_ref().map_or(digests.len(), BTreeSet::len);
            let mut data = self.data.write().unwrap_or_else(|e| e.into_inner());
            data.digest.install(plan, digests);
        }
        if rebuild {
            let mut data = self.data.write().unwrap_or_else(|e| e.into_inner());
            data.digest.rebuild = false;
        }
        // Summed once after a change, so that the checks until the next change of the
        // shard compare its root without a walk of its leaves.
        let needs_summary = {
            let data = self.data.read().unwrap_or_else(|e| e.into_inner());
            data.digest.needs_summary()
        };
        if needs_summary {
            let mut data = self.data.write().unwrap_or_else(|e| e.into_inner());
            data.digest.summarize();
        }
        Ok(computed)
    }

    fn compute_leaves(&self, plan: &Recompute) -> Result<BTreeMap<u16, Digest>, StorageError> {
        let key = digest::key();
        let bounds = self.bounds();
        let wanted_buckets: Option<HashSet<u8>> = plan
            .positions
            .as_ref()
            .map(|p| p.iter().map(|&pos| position_buckets(pos).1).collect());
        let mut out: BTreeMap<u16, Digest> = BTreeMap::new();
        self.logical_points(
            &plan.measurement,
            wanted_buckets.as_ref(),
            &mut |key_, bucket, field, column| {
                for i in 0..column.len() {
                    let pos =
                        leaf_position(time_bucket(bounds.0, bounds.1, column.times[i]), bucket);
                    if plan.positions.as_ref().is_some_and(|p| !p.contains(&pos)) {
                        continue;
                    }
                    let value = column.values.get(i);
                    let h = digest::point_hash(&key, key_, field, column.times[i], &value);
                    out.entry(pos).or_default().add_hash(h);
                }
            },
        )?;
        Ok(out)
    }

    /// Every logical point of a measurement's series in `buckets` (None: all): per series
    /// and field, its column resolved (last write wins) with deletes applied.
    fn logical_points(
        &self,
        measurement: &str,
        buckets: Option<&HashSet<u8>>,
        visit: &mut dyn FnMut(&str, u8, &str, &Column),
    ) -> Result<(), StorageError> {
        let key = digest::key();
        let series: Vec<(Arc<str>, u8)> = {
            let data = self.data.read().unwrap_or_else(|e| e.into_inner());
            let Some(index) = data.index.measurement(measurement) else {
                return Ok(());
            };
            index
                .series()
                .map(|(k, _)| (k.clone(), series_bucket(&key, k)))
                .filter(|(_, b)| buckets.is_none_or(|w| w.contains(b)))
                .collect()
        };
        for chunk in series.chunks(SERIES_PER_HOLD) {
            let parts = self.series_parts(measurement, chunk);
            for s in parts {
                for (field, parts) in s.fields {
                    let mut loaded = Vec::with_capacity(parts.len());
                    for p in parts {
                        let column = p.load().map_err(|source| StorageError::ColumnFile {
                            shard: self.info.id,
                            source,
                        })?;
                        loaded.push(
                            tombstone::without_deleted(&column, &s.deleted).unwrap_or(column),
                        );
                    }
                    if let Some(column) = Column::resolve(loaded) {
                        visit(&s.key, s.bucket, &field, &column);
                    }
                }
            }
        }
        Ok(())
    }

    fn series_parts(&self, measurement: &str, series: &[(Arc<str>, u8)]) -> Vec<SeriesParts> {
        let data = self.data.read().unwrap_or_else(|e| e.into_inner());
        let tombstones = data.tombstones.of_measurement(measurement);
        let heads: Vec<&Head> = std::iter::once(&data.head)
            .chain(data.frozen.iter().map(|h| h.as_ref()))
            .collect();
        series
            .iter()
            .map(|(key, bucket)| {
                let deleted = tombstone::ranges(tombstones, key);
                let mut fields: BTreeMap<Arc<str>, Vec<super::Part>> = BTreeMap::new();
                for head in &heads {
                    let Some(s) = head.get(key) else { continue };
                    for (name, column) in s.columns() {
                        if !column.is_empty() {
                            fields
                                .entry(name.clone())
                                .or_default()
                                .push(super::Part::Column(column.into_owned()));
                        }
                    }
                }
                for file in &data.files {
                    let Some(at) = file.find_series(key) else {
                        continue;
                    };
                    for (b, block) in file.blocks(&file.series()[at]).iter().enumerate() {
                        if tombstone::covers(
                            &deleted,
                            block.min_time,
                            block.max_time,
                            file.index.max_version,
                        ) {
                            continue;
                        }
                        fields.entry(file.field(block).clone()).or_default().push(
                            super::Part::Block {
                                file: file.clone(),
                                series: at,
                                block: b,
                            },
                        );
                    }
                }
                SeriesParts {
                    key: key.clone(),
                    bucket: *bucket,
                    fields,
                    deleted,
                }
            })
            .collect()
    }

    /// The children of tree nodes as compared (recomputing settled dirty leaves first is
    /// the caller's: [`Shard::refresh_digests`]). A node is a measurement and a prefix;
    /// `None` for the measurement asks for the shard's measurements' roots.
    pub fn digest_children(
        &self,
        nodes: &[(Option<String>, Prefix)],
        settled_before: i64,
    ) -> Vec<Vec<(DigestChild, NodeDigest)>> {
        let data = self.data.read().unwrap_or_else(|e| e.into_inner());
        nodes
            .iter()
            .map(|(m, prefix)| match m {
                None => data
                    .digest
                    .measurement_roots(settled_before)
                    .into_iter()
                    .map(|(m, d)| (DigestChild::Measurement(m), d))
                    .collect(),
                Some(m) => data
                    .digest
                    .children(m, *prefix, settled_before)
                    .into_iter()
                    .map(|(n, d)| (DigestChild::Nibble(n), d))
                    .collect(),
            })
            .collect()
    }

    /// The shard's root digest, as compared.
    pub fn digest_root(&self, settled_before: i64) -> NodeDigest {
        let data = self.data.read().unwrap_or_else(|e| e.into_inner());
        data.digest.root(settled_before)
    }

    /// Leaves held, and how many are dirty (`/metrics`, tests).
    pub fn digest_leaf_counts(&self) -> (usize, usize) {
        let data = self.data.read().unwrap_or_else(|e| e.into_inner());
        data.digest.leaf_counts()
    }

    /// The logical points of the chosen leaves (or cells of them) of a measurement, with
    /// their write versions, and the deletes of the measurement over their times.
    pub fn leaf_contents(
        &self,
        measurement: &str,
        chosen: &LeafCells,
    ) -> Result<LeafContents, StorageError> {
        let bounds = self.bounds();
        let buckets: HashSet<u8> = chosen.keys().map(|&p| position_buckets(p).1).collect();
        let mut points = Vec::new();
        self.logical_points(
            measurement,
            Some(&buckets),
            &mut |key, bucket, field, column| {
                let mut series: Option<Arc<str>> = None;
                let mut field_name: Option<Arc<str>> = None;
                for i in 0..column.len() {
                    let t = column.times[i];
                    let pos = leaf_position(time_bucket(bounds.0, bounds.1, t), bucket);
                    let Some(cells) = chosen.get(&pos) else {
                        continue;
                    };
                    if !cell_chosen(cells, time_cell(bounds.0, bounds.1, t)) {
                        continue;
                    }
                    points.push(LeafPoint {
                        series: series.get_or_insert_with(|| key.into()).clone(),
                        field: field_name.get_or_insert_with(|| field.into()).clone(),
                        time: t,
                        version: column.versions[i],
                        value: column.values.get(i),
                    });
                }
            },
        )?;
        // The time buckets chosen whole, and the fine steps of the cells chosen.
        let mut whole = [false; 256];
        let mut steps: BTreeSet<i128> = BTreeSet::new();
        for (&pos, cells) in chosen {
            let tb = position_buckets(pos).0;
            match cells.is_empty() {
                true => whole[tb as usize] = true,
                false => steps.extend(cells.iter().map(|&c| digest::cell_step(tb, c))),
            }
        }
        let tombstones = {
            let data = self.data.read().unwrap_or_else(|e| e.into_inner());
            data.tombstones
                .of_measurement(measurement)
                .iter()
                .filter(|t| {
                    let times = time_buckets_of_range(bounds.0, bounds.1, t.min_time, t.max_time);
                    let (a, b) = (
                        digest::time_step(bounds.0, bounds.1, t.min_time),
                        digest::time_step(bounds.0, bounds.1, t.max_time.max(t.min_time)),
                    );
                    whole.iter().zip(times).any(|(&w, t)| w && t)
                        || steps.range(a..=b).next().is_some()
                })
                .cloned()
                .collect()
        };
        Ok(LeafContents {
            measurement: measurement.to_owned(),
            points,
            tombstones,
        })
    }

    /// Visits every logical point (last write wins, deletes applied) with the hash of its
    /// position (series, field, time; see [`digest::position_hash`]) and its digest hash.
    pub fn visit_point_positions(
        &self,
        visit: &mut dyn FnMut(u64, u128),
    ) -> Result<(), StorageError> {
        let key = digest::key();
        for m in self.index_measurements() {
            self.logical_points(&m, None, &mut |series, _, field, column| {
                let series_field = digest::series_field_hash(&key, series, field);
                for i in 0..column.len() {
                    let value = column.values.get(i);
                    let t = column.times[i];
                    visit(
                        digest::position_hash(series_field, t),
                        digest::point_hash(&key, series, field, t, &value),
                    );
                }
            })?;
        }
        Ok(())
    }

    /// The logical points whose position hash `wanted` picks, with their write versions,
    /// by measurement (no tombstones: a reconciliation sends points only).
    pub fn points_where(
        &self,
        wanted: &dyn Fn(u64) -> bool,
    ) -> Result<Vec<LeafContents>, StorageError> {
        let key = digest::key();
        let mut out = Vec::new();
        for m in self.index_measurements() {
            let mut points = Vec::new();
            self.logical_points(&m, None, &mut |series, _, field, column| {
                let series_field = digest::series_field_hash(&key, series, field);
                let mut series_name: Option<Arc<str>> = None;
                let mut field_name: Option<Arc<str>> = None;
                for i in 0..column.len() {
                    let t = column.times[i];
                    if !wanted(digest::position_hash(series_field, t)) {
                        continue;
                    }
                    points.push(LeafPoint {
                        series: series_name.get_or_insert_with(|| series.into()).clone(),
                        field: field_name.get_or_insert_with(|| field.into()).clone(),
                        time: t,
                        version: column.versions[i],
                        value: column.values.get(i),
                    });
                }
            })?;
            if !points.is_empty() {
                out.push(LeafContents {
                    measurement: m,
                    points,
                    tombstones: Vec::new(),
                });
            }
        }
        Ok(out)
    }

    fn index_measurements(&self) -> Vec<String> {
        let data = self.data.read().unwrap_or_else(|e| e.into_inner());
        data.index
            .measurements()
            .map(|(m, _)| m.to_owned())
            .collect()
    }

    /// The digests of the cells of chosen leaves of a measurement (those holding a
    /// point), by leaf and cell: what a repair compares before sending points.
    pub fn leaf_cells(
        &self,
        measurement: &str,
        chosen: &LeafCells,
    ) -> Result<LeafCellDigests, StorageError> {
        let key = digest::key();
        let bounds = self.bounds();
        let buckets: HashSet<u8> = chosen.keys().map(|&p| position_buckets(p).1).collect();
        let mut out: LeafCellDigests = BTreeMap::new();
        self.logical_points(
            measurement,
            Some(&buckets),
            &mut |key_, bucket, field, column| {
                for i in 0..column.len() {
                    let t = column.times[i];
                    let pos = leaf_position(time_bucket(bounds.0, bounds.1, t), bucket);
                    let Some(cells) = chosen.get(&pos) else {
                        continue;
                    };
                    let cell = time_cell(bounds.0, bounds.1, t);
                    if !cell_chosen(cells, cell) {
                        continue;
                    }
                    let h = digest::point_hash(&key, key_, field, t, &column.values.get(i));
                    out.entry(pos)
                        .or_default()
                        .entry(cell)
                        .or_default()
                        .add_hash(h);
                }
            },
        )?;
        Ok(out)
    }

    /// Of `tombstones`, those the shard does not hold yet.
    pub fn unknown_tombstones(&self, tombstones: Vec<Tombstone>) -> Vec<Tombstone> {
        let data = self.data.read().unwrap_or_else(|e| e.into_inner());
        tombstones
            .into_iter()
            .filter(|t| {
                !data
                    .tombstones
                    .of_measurement(&t.measurement)
                    .iter()
                    .any(|k| k.version == t.version)
            })
            .collect()
    }
}

/// A child of a compared node: a measurement (of the shard's root) or a nibble.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DigestChild {
    Measurement(String),
    Nibble(u8),
}

/// Points of leaves grouped for the data log: one batch per write version (a record
/// carries one), each point the fields of one series at one time.
pub fn points_by_version(contents: &[LeafContents]) -> BTreeMap<u64, Vec<Point<'static>>> {
    type Row = (u64, Arc<str>, i64);
    type Fields = Vec<(std::borrow::Cow<'static, str>, FieldValue)>;
    let mut rows: BTreeMap<Row, (String, Fields)> = BTreeMap::new();
    for c in contents {
        for p in &c.points {
            let row = rows
                .entry((p.version, p.series.clone(), p.time))
                .or_insert_with(|| (c.measurement.clone(), Vec::new()));
            row.1.push((p.field.to_string().into(), p.value.clone()));
        }
    }
    let mut out: BTreeMap<u64, Vec<Point<'static>>> = BTreeMap::new();
    for ((version, series, time), (measurement, fields)) in rows {
        out.entry(version).or_default().push(Point {
            key: series.to_string().into(),
            measurement: measurement.into(),
            fields,
            timestamp: Some(time),
            line: b"",
            time_named: false,
        });
    }
    out
}

fn read_file(
    fs: &dyn crate::log::fs::FileSystem,
    path: &std::path::Path,
) -> Result<Vec<u8>, String> {
    let file = fs.open(path, false).map_err(|e| e.to_string())?;
    let len = file.size().map_err(|e| e.to_string())? as usize;
    let mut buf = vec![0; len];
    file.read_exact_at(&mut buf, 0).map_err(|e| e.to_string())?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line_protocol::series_key;
    use crate::storage::ShardInfo;
    use proptest::prelude::*;
    use std::borrow::Cow;

    const HOSTS: [&str; 4] = ["a", "b", "c", "d"];
    const FIELDS: [&str; 2] = ["usage", "idle"];

    #[derive(Debug, Clone)]
    enum Op {
        Write {
            host: usize,
            field: usize,
            time: i64,
            value: i64,
        },
        Delete {
            host: Option<usize>,
            from: i64,
            len: i64,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0..4usize, 0..2usize, 0..40i64, -3..3i64)
                .prop_map(|(host, field, time, value)| Op::Write { host, field, time, value }),
            1 => (proptest::option::of(0..4usize), 0..40i64, 0..12i64)
                .prop_map(|(host, from, len)| Op::Delete { host, from, len }),
        ]
    }

    fn key(host: usize) -> String {
        series_key("cpu", &[("host", HOSTS[host])])
    }

    fn point(host: usize, field: usize, time: i64, value: i64) -> Point<'static> {
        Point::new(
            Cow::Borrowed("cpu"),
            &[("host", HOSTS[host])],
            vec![(
                Cow::Borrowed(FIELDS[field]),
                FieldValue::Float(value as f64),
            )],
            Some(time),
        )
    }

    /// Times 0..64 fall in distinct time buckets (4 fine steps apart).
    const WIDTH: i64 = 16_384;

    fn info() -> ShardInfo {
        ShardInfo::of_group("db", "autogen", 0, WIDTH)
    }

    /// Applies op `i` with write version `version`.
    async fn apply(shard: &Arc<Shard>, op: &Op, version: u64) {
        match op {
            Op::Write {
                host,
                field,
                time,
                value,
            } => {
                let points = shard
                    .admit(vec![point(*host, *field, *time, *value)], usize::MAX)
                    .points;
                shard.write(&points, version).await.unwrap();
            }
            Op::Delete { host, from, len } => {
                let t = Tombstone {
                    version,
                    measurement: "cpu".into(),
                    series_keys: host.map(key).into_iter().collect(),
                    min_time: *from,
                    max_time: from + len,
                    drop_schema: false,
                };
                shard.delete(vec![t]).await.unwrap();
            }
        }
    }

    /// The shard's leaves' digests after every dirty leaf is recomputed.
    fn leaves(shard: &Shard) -> BTreeMap<(String, u16), Digest> {
        shard.refresh_digests(i64::MAX).unwrap();
        let data = shard.data.read().unwrap();
        let mut out = BTreeMap::new();
        for m in data.digest.measurements() {
            for (pos, leaf) in data.digest.leaves(m).unwrap() {
                assert_eq!(leaf.dirty, 0);
                if !leaf.digest.is_empty() {
                    out.insert((m.to_owned(), *pos), leaf.digest);
                }
            }
        }
        out
    }

    /// The leaves a model of the ops gives (last write wins by op order, deletes by it).
    fn model(ops: &[Op]) -> BTreeMap<(String, u16), Digest> {
        let mut points: BTreeMap<(usize, usize, i64), (usize, i64)> = BTreeMap::new();
        for (i, op) in ops.iter().enumerate() {
            match op {
                Op::Write {
                    host,
                    field,
                    time,
                    value,
                } => {
                    points.insert((*host, *field, *time), (i, *value));
                }
                Op::Delete { host, from, len } => points.retain(|(h, _, t), _| {
                    !(host.is_none_or(|x| x == *h) && (*from..=from + len).contains(t))
                }),
            }
        }
        let k = digest::key();
        let mut out: BTreeMap<(String, u16), Digest> = BTreeMap::new();
        for ((host, field, time), (_, value)) in points {
            let series = key(host);
            let pos = leaf_position(time_bucket(0, WIDTH, time), series_bucket(&k, &series));
            let h = digest::point_hash(
                &k,
                &series,
                FIELDS[field],
                time,
                &FieldValue::Float(value as f64),
            );
            out.entry(("cpu".to_owned(), pos)).or_default().add_hash(h);
        }
        out
    }

    fn open(dir: &std::path::Path) -> Arc<Shard> {
        Arc::new(Shard::open_for_test(dir, info()).unwrap())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        /// Two replicas given the same logical writes and deletes in different orders,
        /// under different write versions (ordered alike), with flushes and merges at
        /// different moments, have the same digests: the model's.
        #[test]
        fn replicas_with_the_same_points_have_the_same_digests(
            ops in proptest::collection::vec(op(), 1..40),
            order in Just(()).prop_perturb(|_, mut rng| rng.random::<u64>()),
            flush_a in proptest::collection::vec(any::<bool>(), 40),
            flush_b in proptest::collection::vec(any::<bool>(), 40),
        ) {
            let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let (a, b) = (open(da.path()), open(db.path()));
            crate::client::block_on(async {
                for (i, op) in ops.iter().enumerate() {
                    apply(&a, op, 1_000 + 2 * i as u64).await;
                    if flush_a[i] {
                        a.flush().unwrap();
                        a.merge().unwrap();
                    }
                }
                // B: another order (versions still say which op came later).
                let mut idx: Vec<usize> = (0..ops.len()).collect();
                let mut seed = order;
                for i in (1..idx.len()).rev() {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    idx.swap(i, (seed >> 33) as usize % (i + 1));
                }
                for (n, &i) in idx.iter().enumerate() {
                    apply(&b, &ops[i], 1_001 + 2 * i as u64).await;
                    if flush_b[n] {
                        b.flush().unwrap();
                        b.merge().unwrap();
                    }
                }
            });
            let want = model(&ops);
            prop_assert_eq!(leaves(&a), want.clone());
            prop_assert_eq!(leaves(&b), want);
            prop_assert_eq!(a.digest_root(i64::MAX), b.digest_root(i64::MAX));
        }

        /// An extra point, a changed value or a delete of one point changes exactly the
        /// leaf it is in.
        #[test]
        fn one_change_changes_exactly_its_leaf(
            ops in proptest::collection::vec(op(), 1..30),
            change in 0..3u8,
            host in 0..4usize,
            field in 0..2usize,
            time in 0..40i64,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let shard = open(dir.path());
            let mut model_ops = ops.clone();
            let base = crate::client::block_on(async {
                for (i, op) in ops.iter().enumerate() {
                    apply(&shard, op, 1_000 + 2 * i as u64).await;
                }
                shard.flush().unwrap();
                let base = leaves(&shard);
                let live = model(&ops);
                let op = match change {
                    0 => Op::Write { host, field, time, value: 7 },
                    1 => Op::Write { host, field, time, value: 9 },
                    _ => Op::Delete { host: Some(host), from: time, len: 0 },
                };
                model_ops.push(op.clone());
                if model(&model_ops) == live {
                    return None; // the change changes nothing (a delete of nothing)
                }
                apply(&shard, &op, 10_000).await;
                Some(base)
            });
            let Some(base) = base else { return Ok(()) };
            let after = leaves(&shard);
            prop_assert_eq!(&after, &model(&model_ops));
            let k = digest::key();
            let pos = leaf_position(time_bucket(0, WIDTH, time), series_bucket(&k, &key(host)));
            let differing: Vec<&(String, u16)> = base
                .keys()
                .chain(after.keys())
                .filter(|l| base.get(*l) != after.get(*l))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let want = ("cpu".to_owned(), pos);
            prop_assert_eq!(differing, vec![&want]);
        }
    }

    /// The test shard in `dir` on the real file system, its records in `log`.
    fn open_on_log(
        dir: &std::path::Path,
        log: &Arc<crate::storage::data_log::DataLog>,
    ) -> Arc<Shard> {
        Arc::new(
            Shard::open_on(
                Arc::new(crate::log::fs::RealFs),
                dir,
                info(),
                log.clone(),
                1 << 30,
            )
            .unwrap(),
        )
    }

    /// Persisted digests are used after a restart: only what replay applies is dirty,
    /// and recomputing it gives the digests the shard had.
    #[test]
    fn a_restart_keeps_the_persisted_digests() {
        let dir = tempfile::tempdir().unwrap();
        let log = Shard::test_data_log(dir.path());
        let shard = open_on_log(dir.path(), &log);
        crate::client::block_on(async {
            for i in 0..20 {
                apply(
                    &shard,
                    &Op::Write {
                        host: i % 4,
                        field: 0,
                        time: i as i64,
                        value: 1,
                    },
                    100 + i as u64,
                )
                .await;
            }
            leaves(&shard);
            shard.flush().unwrap();
            apply(
                &shard,
                &Op::Write {
                    host: 0,
                    field: 1,
                    time: 33,
                    value: 2,
                },
                500,
            )
            .await;
        });
        let before = leaves(&shard);
        drop(shard);
        let reopened = open_on_log(dir.path(), &log);
        crate::storage::shard::replay_log(&log, |_| Some(reopened.clone()), |_, e| panic!("{e}"))
            .unwrap();
        reopened.settle_replay();
        {
            let data = reopened.data.read().unwrap();
            assert!(!data.digest.rebuild, "the persisted digests were used");
            let (all, dirty) = data.digest.leaf_counts();
            assert!(
                dirty >= 1 && dirty < all,
                "only replayed leaves are dirty: {dirty} of {all}"
            );
        }
        assert_eq!(leaves(&reopened), before);
        // A damaged file: everything is rebuilt, to the same digests.
        drop(reopened);
        std::fs::write(dir.path().join(DIGEST_FILE), b"garbage").unwrap();
        let again = open_on_log(dir.path(), &log);
        crate::storage::shard::replay_log(&log, |_| Some(again.clone()), |_, e| panic!("{e}"))
            .unwrap();
        again.settle_replay();
        assert!(again.data.read().unwrap().digest.rebuild);
        assert_eq!(leaves(&again), before);
    }

    /// A leaf's contents carry each point's version and the deletes over it.
    #[test]
    fn leaf_contents_carry_versions_and_tombstones() {
        let dir = tempfile::tempdir().unwrap();
        let shard = open(dir.path());
        crate::client::block_on(async {
            apply(
                &shard,
                &Op::Write {
                    host: 0,
                    field: 0,
                    time: 5,
                    value: 1,
                },
                100,
            )
            .await;
            apply(
                &shard,
                &Op::Write {
                    host: 0,
                    field: 0,
                    time: 5,
                    value: 2,
                },
                90,
            )
            .await;
            apply(
                &shard,
                &Op::Write {
                    host: 0,
                    field: 0,
                    time: 6,
                    value: 3,
                },
                100,
            )
            .await;
            apply(
                &shard,
                &Op::Delete {
                    host: Some(0),
                    from: 6,
                    len: 0,
                },
                150,
            )
            .await;
        });
        let k = digest::key();
        let pos = leaf_position(time_bucket(0, WIDTH, 5), series_bucket(&k, &key(0)));
        let whole = |pos: u16| LeafCells::from([(pos, BTreeSet::new())]);
        let c = shard.leaf_contents("cpu", &whole(pos)).unwrap();
        assert_eq!(c.points.len(), 1);
        assert_eq!((c.points[0].time, c.points[0].version), (5, 100));
        assert_eq!(c.points[0].value, FieldValue::Float(1.0));
        assert_eq!(
            c.tombstones.len(),
            0,
            "the delete is over another leaf's time"
        );
        let pos6 = leaf_position(time_bucket(0, WIDTH, 6), series_bucket(&k, &key(0)));
        let c6 = shard.leaf_contents("cpu", &whole(pos6)).unwrap();
        assert!(c6.points.is_empty());
        assert_eq!(c6.tombstones.len(), 1);
        // By cells: the point's cell holds it, with the leaf's digest; another cell of the
        // leaf holds nothing, and no delete is over it.
        let cell = time_cell(0, WIDTH, 5);
        let cells = shard.leaf_cells("cpu", &whole(pos)).unwrap();
        assert_eq!(cells.len(), 1);
        assert_eq!(cells[&pos].keys().copied().collect::<Vec<_>>(), [cell]);
        assert_eq!(cells[&pos][&cell].count, 1);
        let just = |c: u8| LeafCells::from([(pos, BTreeSet::from([c]))]);
        assert_eq!(shard.leaf_contents("cpu", &just(cell)).unwrap(), c);
        let other = shard.leaf_contents("cpu", &just(cell ^ 1)).unwrap();
        assert!(other.points.is_empty() && other.tombstones.is_empty());
        let cell6 = time_cell(0, WIDTH, 6);
        let c6 = LeafCells::from([(pos6, BTreeSet::from([cell6]))]);
        assert_eq!(shard.leaf_contents("cpu", &c6).unwrap().tombstones.len(), 1);
    }
}

#[cfg(test)]
mod repair_order_tests {
    use super::*;
    use crate::storage::ShardInfo;
    use std::borrow::Cow;

    #[test]
    fn points_older_than_a_repaired_tombstone_stay_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let shard = Arc::new(
            Shard::open_for_test(dir.path(), ShardInfo::of_group("db", "autogen", 0, 64)).unwrap(),
        );
        let p = Point::new(
            Cow::Borrowed("cpu"),
            &[("host", "h1")],
            vec![(Cow::Borrowed("usage"), FieldValue::Float(1.0))],
            Some(5),
        );
        crate::client::block_on(async {
            let pts = shard.admit(vec![p.clone()], usize::MAX).points;
            shard.write(&pts, 100).await.unwrap();
            let t = Tombstone {
                version: 200,
                measurement: "cpu".into(),
                series_keys: vec!["cpu,host=h1".into()],
                min_time: 0,
                max_time: 10,
                drop_schema: false,
            };
            shard.delete_arrived(vec![t], false).await.unwrap();
            let pts = shard.admit(vec![p.clone()], usize::MAX).points;
            shard.write(&pts, 150).await.unwrap();
        });
        let mut seen = Vec::new();
        shard
            .logical_points("cpu", None, &mut |k, _, _, c| {
                seen.push((k.to_owned(), c.times.clone()))
            })
            .unwrap();
        assert!(seen.is_empty(), "{seen:?}");
    }
}
