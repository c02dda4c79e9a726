//! A node in-process for the query path's criterion benchmark (`benches/query_path.rs`):
//! the dashboard queries of `bench query` run through parsing, planning, the scan and JSON
//! encoding as `/query` runs them, without HTTP in between (whose cost `bench query`'s
//! `/ping` row gives).

use super::limits::QueryLimits;
use super::result::QueryResponse;
use super::{execute, QueryOptions};
use crate::config::NodeConfig;
use crate::line_protocol::{parse_body_with, ParseOptions, Precision};
use crate::node::Node;
use crate::storage::WriteRequest;

pub struct QueryHarness {
    node: Node,
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl QueryHarness {
    /// A node in a temporary directory holding database `db` with `batches` of line
    /// protocol written (nanosecond times), flushed into column files as a node holds data
    /// some seconds after its writes.
    pub fn open(db: &str, batches: &[Vec<u8>]) -> Result<QueryHarness, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let config = NodeConfig {
            data_dir: dir.path().to_owned(),
            ..NodeConfig::default()
        };
        let (node, _) = Node::open(&config).map_err(|e| e.to_string())?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let harness = QueryHarness {
            node,
            runtime,
            _dir: dir,
        };
        harness.query(None, &format!("CREATE DATABASE {db}"))?;
        let options = ParseOptions::influxdb_v16(Precision::Nanoseconds);
        for body in batches {
            let (points, errors) = parse_body_with(body, &options);
            if let Some(e) = errors.first() {
                return Err(e.to_string());
            }
            let request = WriteRequest {
                database: db.to_owned(),
                retention_policy: None,
                points,
                precision: Precision::Nanoseconds,
                now: 0,
                max_fields_per_measurement: usize::MAX,
            };
            let storage = &harness.node.storage;
            harness
                .runtime
                .block_on(storage.write(&harness.node.control, request))
                .map_err(|e| e.to_string())?;
        }
        for shard in harness.node.storage.shards() {
            shard.flush().map_err(|e| e.to_string())?;
        }
        Ok(harness)
    }

    /// Runs `q` (with `db=` as given) and returns its answer as `/query` encodes it; a
    /// statement's error is an error here.
    pub fn query(&self, db: Option<&str>, q: &str) -> Result<Vec<u8>, String> {
        let options = QueryOptions {
            database: db.map(str::to_owned),
            retention_policy: None,
            epoch: None,
            principal: None,
            params: Default::default(),
            limits: QueryLimits::starting_now(&self.node.config, Default::default()),
            read_only: false,
        };
        let results = self
            .runtime
            .block_on(execute(&self.node, q, &options))
            .map_err(|e| e.to_string())?;
        if let Some(e) = results.iter().find_map(|r| r.error.as_ref()) {
            return Err(e.clone());
        }
        serde_json::to_vec(&QueryResponse { results }).map_err(|e| e.to_string())
    }

    /// `bench query`'s queries (name, text), on the data of `bench ingest`.
    pub fn dashboard_queries() -> Vec<(&'static str, String)> {
        crate::bench::query::workload()
            .into_iter()
            .filter(|(_, q)| q != crate::bench::query::PING)
            .collect()
    }
}
