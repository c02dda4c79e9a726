//! shardkeeper: a storage daemon for the data nodes of InfluxDB-style time-series clusters.
//!
//! Every mutation is an event appended to a durable [`log`]; in-memory state is a
//! [`projection`] of it.

pub mod auth;
pub mod backup;
pub mod bench;
pub mod catalog;
pub mod cli;
pub mod client;
pub(crate) mod clock;
pub mod config;
pub mod control;
pub mod daemon;
pub mod dir_lock;
pub mod failpoint;
pub mod http;
pub mod line_protocol;
pub mod log;
pub mod net;
pub mod node;
pub(crate) mod placement;
pub(crate) mod priority;
pub mod profile;
pub mod projection;
pub mod proxy;
pub mod query;
pub mod replication;
pub mod storage;

/// Every event, as compiled from `proto/` by prost.
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/shardkeeper.v1.rs"));
}
