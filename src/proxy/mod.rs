//! `shardkeeper proxy`: influx-proxy 2.4.7's HTTP API in front of circles of InfluxDB 1.x
//! backends (real influxd or shardkeeper nodes, in any mix). Each circle holds a full copy
//! of the data; within a circle each measurement of a database lives on the backend its
//! consistent-hash ring names, as influx-proxy places it.
//!
//! Unlike influx-proxy, a write is acknowledged only once it is durable in the proxy's
//! own journal, and each backend receives its lines from there, in order, with its
//! delivered position recorded as it answers: a backend that was down, or a proxy that was
//! killed, resumes with nothing lost.
//!
//! - [`config`]: `proxy.json` (or its TOML form), defaults and checks.
//! - [`ring`]: placement; [`cipher`]: `/encrypt`, `/decrypt`, `auth_secure`.
//! - [`influxql`]: the whitelist and routing of statements; [`lines`]: writes split by
//!   measurement.
//! - `journal`: the durable log of writes and events; `delivery`: one task per backend.
//! - `migration`: rebalance, recovery, resync and clear as durable, resumable jobs that
//!   copy measurements in bounded time windows.
//! - [`ProxyService`]: what the handlers call; `http`: the handlers; [`daemon`]: the
//!   process.
//!
//! Architecture invariant: nothing here depends on storage, catalog, node or the node's
//! HTTP layer; backends are reached only through [`crate::client`].

mod backend;
pub mod cipher;
pub mod config;
pub(crate) mod daemon;
mod delivery;
mod http;
pub(crate) mod influxql;
pub(crate) mod journal;
pub(crate) mod lines;
mod metrics;
pub(crate) mod migration;
mod query;
pub mod ring;
mod service;

pub use query::{Answer, QueryFailure, QueryRequest};
pub use service::{BackendHealth, CircleHealth, ProxyError, ProxyService, WriteError};

/// The version influx-proxy reports (`X-Influxdb-Version`), which its clients see.
pub const INFLUX_PROXY_VERSION: &str = "2.4.7";
