//! `serve`'s configuration: defaults, then a TOML file, then environment variables and
//! flags (clap merges those two). Every key is documented in `deploy/shardkeeper.toml`.

use crate::log::IoMode;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct NodeConfig {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    /// The version the InfluxDB API reports (`X-Influxdb-Version`, `/health`).
    pub influxdb_version: String,
    /// This node's id in write versions (0-1023); distinct per node of a cluster.
    pub node_id: u16,
    /// Largest accepted write body, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// How often expired shards are looked for.
    pub retention_check_seconds: u64,
    /// A shard's in-memory head is written out as a column file past this size (MiB).
    pub max_head_mib: u64,
    /// Require credentials (off by default, as in InfluxDB 1.x).
    pub auth_enabled: bool,
    /// With auth on, `/metrics` needs an admin's credentials too (false: open to all).
    pub metrics_auth: bool,
    /// How long a successful password check is remembered (seconds; 0: not at all).
    pub auth_cache_seconds: u64,
    /// Failed password checks per user and per client address within
    /// `auth_failure_window_seconds` before further attempts get 429 (0: no limit).
    pub auth_failure_limit: u32,
    pub auth_failure_window_seconds: u64,
    /// Password hashes computed at once (each takes a core for about 70 ms).
    pub bcrypt_concurrency: usize,
    /// A shard that took no write for this long has its head written out (seconds).
    pub idle_flush_seconds: u64,
    /// On SIGTERM, how long requests under way may take to finish (seconds).
    pub shutdown_grace_seconds: u64,
    /// Most series one SELECT may read (0: no limit), as InfluxDB's `max-select-series`.
    pub max_select_series: usize,
    /// Most points one SELECT may read (0: no limit), as `max-select-point`.
    pub max_select_point: usize,
    /// Most GROUP BY time windows one SELECT may have (0: no limit), as `max-select-buckets`.
    pub max_select_buckets: usize,
    /// A query still running after this long is stopped (seconds, fractions allowed; 0: no
    /// limit), as `query-timeout`.
    pub query_timeout_seconds: f64,
    /// How long a query that changes nothing may run on the HTTP worker that received it
    /// before it starts over on the query threads (milliseconds, fractions allowed; 0:
    /// always on the query threads).
    pub query_inline_budget_ms: f64,
    /// Largest body of `POST /api/v2/restore/kv` and `/restore/bucketMetadata` (MiB; 413
    /// beyond).
    pub max_restore_metadata_mib: u64,
    /// Largest shard archive `POST /api/v2/restore/shards/{id}` takes, as sent and as
    /// unpacked (MiB; 413 beyond).
    pub max_restore_shard_mib: u64,
    /// Most memory one request may hold (MiB; 0: no limit). A write is charged its body
    /// after decompression and what parsing and storing it holds (413 past it); a query
    /// what it keeps (rows, windows x series, fill output, its rendered answer).
    pub max_request_memory_mib: u64,
    /// Most fields one point (line) may have (0: no limit); a longer line is refused.
    pub max_fields_per_point: usize,
    /// Most fields one measurement may have in one shard (0: no limit); a point that
    /// would add fields past it is refused.
    pub max_fields_per_measurement: usize,
    /// A request body from which no byte arrives for this long is cut off with 408 and
    /// its connection closed (seconds; 0: no bound). Request heads have their own bound.
    pub body_timeout_seconds: u64,
    /// A request body still incomplete after this long is cut off the same way, however
    /// steadily it trickles in (seconds; 0: no bound). Not for restores, which stream
    /// whole shards to disk.
    pub body_total_timeout_seconds: u64,
    /// How the process's own log lines are written to stderr: `text` or `json`.
    pub log_format: LogFormat,
    /// A line per request in InfluxDB's `[httpd]` Common Log Format (`[http]
    /// log-enabled`), off by default.
    pub http_access_log: bool,
    /// Serve HTTPS instead of HTTP (`[http] https-enabled`), with this PEM certificate
    /// chain and private key (empty: in the certificate file), both read again on SIGHUP.
    pub https_enabled: bool,
    pub https_certificate: PathBuf,
    pub https_private_key: PathBuf,
    /// When a replication's queue is full: false (the default) refuses the local write
    /// with 503 naming the replication, so nothing is acknowledged that is not queued;
    /// true accepts it, as InfluxDB 2 does, and drops the queue's oldest points to make
    /// room (counted, logged and reported on the replication).
    pub replication_drop_when_full: bool,
    /// The gzip level of the batches replications send: 1 (the default, the fastest that
    /// compresses) to 9 (smaller batches for a slow link, more CPU), or 0 (gzip's stored
    /// blocks, no compression).
    pub replication_gzip_level: u32,
    /// How much lower than the node's other threads the replication senders run, as nice
    /// steps (0 to 19; the result at most nice 19): a node short of CPU serves its writes
    /// first and replicates with what is left. 10 (the default): a sender gets about a tenth
    /// of a CPU the writes saturate (enough to keep up with a load that leaves it a little
    /// more); 19: only CPU no write wants; 0: the same priority as writes.
    pub replication_nice: u32,
    pub log: LogConfig,
    /// Anti-entropy: replicas of the same shards on peer nodes compared and repaired.
    pub anti_entropy: AntiEntropyConfig,
    pub continuous_queries: ContinuousQueriesConfig,
    pub subscriber: SubscriberConfig,
}

/// `[subscriber]`: how the writes to a database and policy are forwarded to its
/// subscriptions' destinations (1.x's `[subscriber]`: `enabled`, `http-timeout`,
/// `insecure-skip-verify`, `ca-certs`, `write-concurrency`, `write-buffer-size`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct SubscriberConfig {
    /// Off: subscriptions are kept (CREATE, DROP, SHOW) but nothing is forwarded.
    pub enabled: bool,
    /// The whole of one HTTP(S) send, connection included (seconds, fractions allowed).
    pub http_timeout_seconds: f64,
    /// Accept any certificate from an `https://` destination.
    pub insecure_skip_verify: bool,
    /// A PEM file of CA certificates trusted besides the built-in roots (empty: none).
    pub ca_certs: PathBuf,
    /// Sends under way at once per destination.
    pub write_concurrency: usize,
    /// Writes (batches) queued per destination; a write finding the queue full is
    /// dropped for that destination, and counted.
    pub write_buffer_size: usize,
}

impl Default for SubscriberConfig {
    fn default() -> Self {
        SubscriberConfig {
            enabled: true,
            http_timeout_seconds: 30.0,
            insecure_skip_verify: false,
            ca_certs: PathBuf::new(),
            write_concurrency: 40,
            write_buffer_size: 1000,
        }
    }
}

impl SubscriberConfig {
    /// 1.x's checks (`services/subscriber/config.go`), in its words.
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(format!("subscriber: {m}")));
        if !(self.http_timeout_seconds > 0.0 && self.http_timeout_seconds.is_finite()) {
            return invalid("http_timeout_seconds must be greater than 0");
        }
        if !self.ca_certs.as_os_str().is_empty() && !self.ca_certs.is_file() {
            return invalid(&format!(
                "ca_certs file {} does not exist",
                self.ca_certs.display()
            ));
        }
        if self.write_buffer_size == 0 {
            return invalid("write_buffer_size must be greater than 0");
        }
        if self.write_concurrency == 0 {
            return invalid("write_concurrency must be greater than 0");
        }
        Ok(())
    }

    pub(crate) fn http_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.http_timeout_seconds.clamp(0.001, 1e9))
    }
}

/// `[continuous_queries]`: whether continuous queries run, and how often the node looks
/// for those due (1.x's `enabled` and `run-interval`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ContinuousQueriesConfig {
    pub enabled: bool,
    pub run_interval_seconds: f64,
}

impl Default for ContinuousQueriesConfig {
    fn default() -> Self {
        ContinuousQueriesConfig {
            enabled: true,
            run_interval_seconds: 1.0,
        }
    }
}

/// `[anti_entropy]`: the peers holding replicas of this node's shards, and how they are
/// compared and repaired (see `crate::entropy`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct AntiEntropyConfig {
    /// On when peers are named (unset), or as set.
    pub enabled: Option<bool>,
    /// Base URLs of the peers (`http://host:8086`); `serve --peer URL` adds to them.
    pub peers: Vec<String>,
    /// How often each shard is compared with each peer.
    pub check_interval_seconds: f64,
    /// Shards whose digests are fetched from peers at once.
    pub max_fetch: usize,
    /// Repairs run at once.
    pub max_sync: usize,
    /// A shard a peer holds and this node lacks is created and filled from the peer.
    pub auto_repair_missing: bool,
    /// A range written within this long (by arrival) is not compared yet: writes still
    /// in flight to the other replicas are not differences.
    pub settle_seconds: f64,
    /// What this node sends its peers when authentication is on: an admin's user and
    /// password, or a token (an operator's, for example).
    pub peer_username: String,
    pub peer_password: String,
    pub peer_token: String,
    /// The secret the digests' hash is keyed with (the same on every replica; empty: the
    /// built-in one).
    pub digest_key: String,
}

impl Default for AntiEntropyConfig {
    fn default() -> Self {
        AntiEntropyConfig {
            enabled: None,
            peers: Vec::new(),
            check_interval_seconds: 300.0,
            max_fetch: 10,
            max_sync: 1,
            auto_repair_missing: true,
            settle_seconds: 10.0,
            peer_username: String::new(),
            peer_password: String::new(),
            peer_token: String::new(),
            digest_key: String::new(),
        }
    }
}

impl AntiEntropyConfig {
    /// Whether the node compares and repairs its shards (it answers peers regardless).
    pub(crate) fn is_enabled(&self) -> bool {
        self.enabled.unwrap_or(!self.peers.is_empty())
    }
}

/// The format of the process's log lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    /// Human-readable, coloured only when stderr is a terminal.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct LogConfig {
    pub segment_mib: u64,
    pub shard_segment_mib: u64,
    /// "auto", "io_uring" or "pwrite".
    pub io: String,
    /// A control-state snapshot after this many MiB of control events; fractions too
    /// (`bench crash --during snapshot` makes them come every few events), 0 after each.
    pub snapshot_every_mib: f64,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 8086)),
            data_dir: PathBuf::from("shardkeeper-data"),
            influxdb_version: "1.8.10".into(),
            node_id: 0,
            max_body_bytes: 25_000_000,
            retention_check_seconds: 60,
            max_head_mib: 64,
            auth_enabled: false,
            metrics_auth: true,
            auth_cache_seconds: 60,
            auth_failure_limit: 10,
            auth_failure_window_seconds: 60,
            bcrypt_concurrency: 2,
            idle_flush_seconds: 10,
            shutdown_grace_seconds: 30,
            max_select_series: 0,
            max_select_point: 0,
            max_select_buckets: 0,
            query_timeout_seconds: 0.0,
            query_inline_budget_ms: 1.0,
            max_restore_metadata_mib: 64,
            max_restore_shard_mib: 64 << 10,
            max_request_memory_mib: 256,
            max_fields_per_point: 65_536,
            max_fields_per_measurement: 100_000,
            body_timeout_seconds: 30,
            body_total_timeout_seconds: 300,
            log_format: LogFormat::Text,
            http_access_log: false,
            https_enabled: false,
            https_certificate: PathBuf::from("/etc/ssl/shardkeeper.pem"),
            https_private_key: PathBuf::new(),
            replication_drop_when_full: false,
            replication_gzip_level: 1,
            replication_nice: 10,
            log: LogConfig::default(),
            anti_entropy: AntiEntropyConfig::default(),
            continuous_queries: ContinuousQueriesConfig::default(),
            subscriber: SubscriberConfig::default(),
        }
    }
}

impl NodeConfig {
    /// `query_inline_budget_ms` as a duration (none when not above zero).
    pub(crate) fn query_inline_budget(&self) -> std::time::Duration {
        let ms = self.query_inline_budget_ms;
        match ms > 0.0 {
            true => std::time::Duration::from_secs_f64(ms.min(1e9) / 1000.0),
            false => std::time::Duration::ZERO,
        }
    }

    pub(crate) fn password_check_limits(&self) -> crate::auth::PasswordCheckLimits {
        crate::auth::PasswordCheckLimits {
            concurrency: self.bcrypt_concurrency.max(1),
            cache_ttl: std::time::Duration::from_secs(self.auth_cache_seconds),
            failure_limit: self.auth_failure_limit,
            failure_window: std::time::Duration::from_secs(self.auth_failure_window_seconds),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_mib: 1,
            shard_segment_mib: 4,
            io: "auto".into(),
            snapshot_every_mib: 16.0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("config: {0}")]
    Invalid(String),
}

impl NodeConfig {
    pub(crate) fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Ok(NodeConfig::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        let config: NodeConfig = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.into(),
            source,
        })?;
        if config.replication_gzip_level > 9 {
            return Err(ConfigError::Invalid(format!(
                "replication_gzip_level must be 0 to 9, not {}",
                config.replication_gzip_level
            )));
        }
        if config.replication_nice > 19 {
            return Err(ConfigError::Invalid(format!(
                "replication_nice must be 0 to 19, not {}",
                config.replication_nice
            )));
        }
        config.subscriber.validate()?;
        Ok(config)
    }

    pub(crate) fn io_mode(&self) -> Result<IoMode, ConfigError> {
        match self.log.io.as_str() {
            "auto" => Ok(IoMode::Auto),
            "io_uring" => Ok(IoMode::IoUring),
            "pwrite" => Ok(IoMode::Pwrite),
            other => Err(ConfigError::Invalid(format!(
                "log.io must be auto, io_uring or pwrite, not {other:?}"
            ))),
        }
    }
}
