//! Opening one shard on its own, and reading its points back, for the unit tests of
//! storage and of the modules above it.

use super::Shard;
use crate::line_protocol::FieldValue;
use crate::storage::column::Column;
use crate::storage::data_log::DataLog;
use crate::storage::series_index::TagSelector;
use crate::storage::{ShardInfo, StorageError};
use std::path::Path;
use std::sync::Arc;

impl Shard {
    /// A data log of its own for a shard under test, in the shard's directory.
    pub(crate) fn test_data_log(dir: &Path) -> Arc<DataLog> {
        let options = crate::log::LogOptions::default();
        let (log, _) = crate::log::Log::open(dir.join("data-log"), options).expect("data log");
        let end = log.durable_lsn();
        Arc::new(DataLog::new(log, end, u64::MAX))
    }

    /// The shard in `dir` with a data log of its own there (its records in it are not
    /// replayed): for tests of one shard.
    pub(crate) fn open_for_test(dir: &Path, info: ShardInfo) -> Result<Shard, StorageError> {
        let fs = Arc::new(crate::log::fs::RealFs);
        Shard::open_on(fs, dir, info, Self::test_data_log(dir), 1 << 30)
    }

    /// Every (series key, time, value) of one field of a measurement, as a read sees it,
    /// in key and time order: for tests of one shard.
    pub(crate) fn points_for_test(
        &self,
        measurement: &str,
        field: &str,
    ) -> Vec<(String, i64, FieldValue)> {
        let fields = [field.to_owned()];
        let read = super::SeriesRead {
            measurement,
            start: i64::MIN,
            end: i64::MAX,
            fields: &fields,
            selector: &TagSelector::All,
            keep: &|_| true,
        };
        let mut found = Vec::new();
        for s in self.series_of(&read) {
            let parts = s.fields.into_iter().flatten();
            let parts = parts.map(|p| p.load().expect("a block reads back"));
            if let Some(c) = Column::resolve(parts.collect()) {
                for i in 0..c.len() {
                    found.push((s.key.to_string(), c.times[i], c.values.get(i)));
                }
            }
        }
        found.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        found
    }
}
