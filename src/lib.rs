//! shardkeeper: a storage daemon for the data nodes of InfluxDB-style time-series clusters.
//!
//! Every mutation is an event appended to a durable [`log`]; in-memory state is a
//! [`projection`] of it.
#![warn(unreachable_pub)]

pub(crate) mod auth;
pub mod backup;
pub mod bench;
pub(crate) mod catalog;
pub(crate) mod cli;
pub mod client;
pub(crate) mod clock;
pub(crate) mod config;
pub mod control;
pub(crate) mod daemon;
pub(crate) mod dir_lock;
pub(crate) mod entropy;
pub mod failpoint;
pub(crate) mod http;
pub mod line_protocol;
pub mod log;
pub(crate) mod net;
pub(crate) mod node;
pub(crate) mod placement;
pub(crate) mod priority;
pub mod profile;
pub mod projection;
pub mod proxy;
pub(crate) mod query;
pub(crate) mod replication;
pub mod storage;
pub(crate) mod subscriber;

pub use catalog::CatalogError;
pub use cli::main;
pub use http::route_table;

/// The entry points of the fuzz targets under `fuzz/`, which `tests/fuzz_corpus.rs` also
/// drives with random and mutated inputs: each takes any bytes and must not panic.
#[cfg(feature = "testing")]
pub mod fuzzing {
    pub use crate::backup::archive::fuzz_unpack as shard_archive;
    pub use crate::entropy::wire::{
        fuzz_decode as entropy_wire, sample_messages as entropy_wire_samples,
    };
    pub use crate::line_protocol::fuzz_parse as line_protocol;
    pub use crate::log::fuzz_segment as log_segment;
    pub use crate::proxy::config::fuzz_parse as proxy_config;
    pub use crate::proxy::influxql::fuzz_check as proxy_influxql;
    pub use crate::proxy::lines::fuzz_split as proxy_lines;
    pub use crate::proxy::migration::copy::fuzz_answer as proxy_migration_answer;
    pub use crate::query::parser::fuzz_parse as influxql;
}

/// What only `benches/` measure (built with the `testing` feature, as the fuzz entry points).
#[cfg(feature = "testing")]
pub mod benching {
    pub use crate::query::harness::QueryHarness;
    pub use crate::query::json::encode_sample_answer as query_json_sample;
}

/// Every event, as compiled from `proto/` by prost.
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/shardkeeper.v1.rs"));
}
