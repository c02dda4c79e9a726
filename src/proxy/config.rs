//! The proxy's configuration: influx-proxy 2.4.7's `proxy.json`, every key with its
//! default, read as JSON (any file not ending in `.toml`) or as TOML with the same keys.
//! Defaults are applied as influx-proxy applies them (an empty string or a number <= 0
//! takes the default), then the config is checked with influx-proxy's error texts.
//!
//! Keys of ours, absent from influx-proxy's shipped file: `backlog_max_mb`. influx-proxy
//! also reads `migrate_batch` (its struct has it, its file leaves it out): here, the points
//! a migration reads from a backend in one query.

use serde::Deserialize;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

/// One InfluxDB 1.x server (or shardkeeper node) of a circle.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct BackendConfig {
    pub name: String,
    pub url: String,
    pub username: String,
    pub password: String,
}

/// A full copy of the data, spread over its backends by the ring.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CircleConfig {
    pub name: String,
    pub backends: Vec<BackendConfig>,
}

/// What names a backend on its circle's ring (`hash_key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashKey {
    /// Its position in the circle's `backends`, as a decimal number.
    #[default]
    Idx,
    Name,
    Url,
}

impl HashKey {
    pub fn as_str(self) -> &'static str {
        match self {
            HashKey::Idx => "idx",
            HashKey::Name => "name",
            HashKey::Url => "url",
        }
    }
}

/// The file as read, before defaults: influx-proxy's keys and types.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawConfig {
    circles: Vec<CircleConfig>,
    listen_addr: String,
    db_list: Vec<String>,
    data_dir: String,
    mlog_dir: String,
    hash_key: String,
    vnode_size: i64,
    flush_size: i64,
    flush_time: i64,
    check_interval: i64,
    rewrite_interval: i64,
    write_timeout: i64,
    idle_timeout: i64,
    log_enabled: bool,
    username: String,
    password: String,
    auth_secure: bool,
    https_enabled: bool,
    https_cert: String,
    https_key: String,
    backlog_max_mb: i64,
    migrate_batch: i64,
}

/// The configuration in force, defaults applied and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyConfig {
    pub circles: Vec<CircleConfig>,
    /// As written (`:7076` listens on every interface, as Go's `net/http` does).
    pub listen_addr: String,
    /// Databases the proxy serves; empty: any.
    pub db_list: Vec<String>,
    /// The proxy's own durable state: its journal and the batches kept aside.
    pub data_dir: PathBuf,
    /// Where migrations would write their logs (influx-proxy's `mlog_dir`; kept for
    /// compatibility, migrations record their progress as events instead).
    pub mlog_dir: PathBuf,
    pub hash_key: HashKey,
    pub vnode_size: usize,
    /// Most lines a batch to a backend holds.
    pub flush_size: usize,
    /// Longest a line waits in the proxy before it is sent (seconds). Batches leave as
    /// soon as a backend can take them, so this is a bound, never a delay.
    pub flush_time: u64,
    /// Seconds between two `/ping`s of each backend.
    pub check_interval: u64,
    /// Longest wait (seconds) before a backend that failed a batch is sent it again.
    pub rewrite_interval: u64,
    /// Seconds a request to a backend may take.
    pub write_timeout: u64,
    /// Seconds an idle client connection is kept open.
    pub idle_timeout: u64,
    pub log_enabled: bool,
    pub username: String,
    pub password: String,
    /// `username` and `password` (the proxy's and each backend's) are given encrypted
    /// with the proxy's cipher (`/encrypt`).
    pub auth_secure: bool,
    pub https_enabled: bool,
    pub https_cert: PathBuf,
    pub https_key: PathBuf,
    /// Most bytes of line protocol the proxy holds for one backend, not yet delivered;
    /// past it, writes to that backend's measurements are refused (503).
    pub backlog_max_bytes: u64,
    /// Points a migration aims to read from a backend in one query (one time window of
    /// a measurement): what bounds a migration's memory.
    pub migrate_batch: u64,
}

pub const DEFAULT_LISTEN_ADDR: &str = ":7076";
pub const DEFAULT_VNODE_SIZE: usize = 256;
pub const DEFAULT_FLUSH_SIZE: usize = 10_000;
pub const DEFAULT_BACKLOG_MAX_MB: u64 = 1024;
/// influx-proxy's default `migrate_batch`.
pub const DEFAULT_MIGRATE_BATCH: u64 = 25_000;
/// The most virtual nodes a backend may have on its ring (each costs a CRC at start-up
/// and a ring entry): far more than even placement needs.
pub const MAX_VNODE_SIZE: usize = 1 << 16;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Syntax { path: PathBuf, reason: String },
    /// influx-proxy's own words (`CheckConfig`).
    #[error("{0}")]
    Invalid(String),
    #[error("listen_addr {addr}: {reason}")]
    ListenAddr { addr: String, reason: String },
}

impl ProxyConfig {
    /// Reads `path`: TOML when its name ends in `.toml`, JSON otherwise.
    pub fn load(path: &Path) -> Result<ProxyConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let toml = path.extension().is_some_and(|e| e == "toml");
        let parsed = match toml {
            true => Self::from_toml(&text),
            false => Self::from_json(&text),
        };
        parsed.map_err(|e| match e {
            ConfigError::Syntax { reason, .. } => ConfigError::Syntax {
                path: path.to_owned(),
                reason,
            },
            other => other,
        })
    }

    pub fn from_json(text: &str) -> Result<ProxyConfig, ConfigError> {
        let raw: RawConfig = serde_json::from_str(text).map_err(|e| ConfigError::Syntax {
            path: PathBuf::new(),
            reason: e.to_string(),
        })?;
        raw.into_config()
    }

    pub fn from_toml(text: &str) -> Result<ProxyConfig, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: PathBuf::new(),
            reason: e.to_string(),
        })?;
        raw.into_config()
    }

    /// The socket address `listen_addr` names: a missing host is every interface.
    pub fn listen_socket_addr(&self) -> Result<SocketAddr, ConfigError> {
        let addr = &self.listen_addr;
        let spelled = match addr.starts_with(':') {
            true => format!("0.0.0.0{addr}"),
            false => addr.clone(),
        };
        let invalid = |reason: String| ConfigError::ListenAddr {
            addr: addr.clone(),
            reason,
        };
        spelled
            .to_socket_addrs()
            .map_err(|e| invalid(e.to_string()))?
            .next()
            .ok_or_else(|| invalid("names no address".into()))
    }
}

#[cfg(any(test, feature = "testing"))]
/// Fuzz entry point: any bytes as `proxy.json` and as its TOML form: a config or an
/// error, never a panic; a config read places keys (on rings of a few points, to stay
/// quick).
pub fn fuzz_parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for config in [ProxyConfig::from_json(&text), ProxyConfig::from_toml(&text)]
        .into_iter()
        .flatten()
    {
        for circle in &config.circles {
            let vnodes = config.vnode_size.min(8);
            let ring = super::ring::Ring::new(config.hash_key, vnodes, &circle.backends);
            let _ = ring.owner("db,cpu");
        }
    }
}

impl RawConfig {
    /// influx-proxy's `SetDefaultConfig` and then `CheckConfig`.
    fn into_config(self) -> Result<ProxyConfig, ConfigError> {
        let or = |s: String, default: &str| match s.is_empty() {
            true => default.to_owned(),
            false => s,
        };
        let positive = |n: i64, default: u64| match n <= 0 {
            true => default,
            false => n as u64,
        };
        // influx-proxy checks the circles first, then the hash key.
        check(&self.circles)?;
        if self.vnode_size > MAX_VNODE_SIZE as i64 {
            return Err(ConfigError::Invalid(format!(
                "vnode_size {} is more than {MAX_VNODE_SIZE}",
                self.vnode_size
            )));
        }
        let hash_key = match or(self.hash_key, "idx").as_str() {
            "idx" => HashKey::Idx,
            "name" => HashKey::Name,
            "url" => HashKey::Url,
            _ => {
                return Err(ConfigError::Invalid(
                    "invalid hash_key, should be idx, name or url".into(),
                ))
            }
        };
        Ok(ProxyConfig {
            listen_addr: or(self.listen_addr, DEFAULT_LISTEN_ADDR),
            db_list: self.db_list,
            data_dir: or(self.data_dir, "data").into(),
            mlog_dir: or(self.mlog_dir, "log").into(),
            hash_key,
            vnode_size: positive(self.vnode_size, DEFAULT_VNODE_SIZE as u64) as usize,
            flush_size: positive(self.flush_size, DEFAULT_FLUSH_SIZE as u64) as usize,
            flush_time: positive(self.flush_time, 1),
            check_interval: positive(self.check_interval, 1),
            rewrite_interval: positive(self.rewrite_interval, 10),
            write_timeout: positive(self.write_timeout, 10),
            idle_timeout: positive(self.idle_timeout, 10),
            log_enabled: self.log_enabled,
            username: self.username,
            password: self.password,
            auth_secure: self.auth_secure,
            https_enabled: self.https_enabled,
            https_cert: self.https_cert.into(),
            https_key: self.https_key.into(),
            backlog_max_bytes: positive(self.backlog_max_mb, DEFAULT_BACKLOG_MAX_MB) << 20,
            migrate_batch: positive(self.migrate_batch, DEFAULT_MIGRATE_BATCH),
            circles: self.circles,
        })
    }
}

/// influx-proxy's `CheckConfig` on the circles: every backend named, names unique across
/// all circles (each names its own delivery stream).
fn check(circles: &[CircleConfig]) -> Result<(), ConfigError> {
    if circles.is_empty() {
        return Err(ConfigError::Invalid("circles cannot be empty".into()));
    }
    let mut seen = std::collections::HashSet::new();
    for circle in circles {
        if circle.backends.is_empty() {
            return Err(ConfigError::Invalid("backends cannot be empty".into()));
        }
        for backend in &circle.backends {
            if backend.name.is_empty() {
                return Err(ConfigError::Invalid("backend name cannot be empty".into()));
            }
            if !seen.insert(backend.name.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "backend name exists: {}",
                    backend.name
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// influx-proxy 2.4.7's `proxy.json`, as shipped.
    const SHIPPED: &str = r#"{
        "circles": [
            {"name": "circle-1", "backends": [
                {"name": "influxdb-1-1", "url": "http://127.0.0.1:8086", "username": "", "password": ""},
                {"name": "influxdb-1-2", "url": "http://127.0.0.1:8087", "username": "", "password": ""}
            ]},
            {"name": "circle-2", "backends": [
                {"name": "influxdb-2-1", "url": "http://127.0.0.1:8088", "username": "", "password": ""},
                {"name": "influxdb-2-2", "url": "http://127.0.0.1:8089", "username": "", "password": ""}
            ]}
        ],
        "listen_addr": ":7076",
        "db_list": ["db1", "db2"],
        "data_dir": "data",
        "mlog_dir": "log",
        "hash_key": "idx",
        "vnode_size": 256,
        "flush_size": 10000,
        "flush_time": 1,
        "check_interval": 1,
        "rewrite_interval": 10,
        "write_timeout": 10,
        "idle_timeout": 10,
        "log_enabled": false,
        "username": "",
        "password": "",
        "auth_secure": false,
        "https_enabled": false,
        "https_cert": "",
        "https_key": ""
    }"#;

    const MINIMAL: &str =
        r#"{"circles": [{"name": "c", "backends": [{"name": "b", "url": "http://h:1"}]}]}"#;

    #[test]
    fn the_shipped_proxy_json_reads_as_written() {
        let c = ProxyConfig::from_json(SHIPPED).unwrap();
        assert_eq!(c.circles.len(), 2);
        assert_eq!(c.circles[1].backends[1].name, "influxdb-2-2");
        assert_eq!(c.circles[1].backends[1].url, "http://127.0.0.1:8089");
        assert_eq!(c.db_list, ["db1", "db2"]);
        assert_eq!(c.hash_key, HashKey::Idx);
        assert_eq!(c.listen_addr, ":7076");
        assert_eq!(
            c.listen_socket_addr().unwrap(),
            "0.0.0.0:7076".parse().unwrap()
        );
    }

    #[test]
    fn every_missing_or_non_positive_key_takes_influx_proxys_default() {
        let c = ProxyConfig::from_json(MINIMAL).unwrap();
        assert_eq!(c.listen_addr, ":7076");
        assert!(c.db_list.is_empty());
        assert_eq!(c.data_dir, PathBuf::from("data"));
        assert_eq!(c.mlog_dir, PathBuf::from("log"));
        assert_eq!(c.hash_key, HashKey::Idx);
        assert_eq!((c.vnode_size, c.flush_size, c.flush_time), (256, 10_000, 1));
        assert_eq!(
            (
                c.check_interval,
                c.rewrite_interval,
                c.write_timeout,
                c.idle_timeout
            ),
            (1, 10, 10, 10)
        );
        assert!(!c.log_enabled && !c.auth_secure && !c.https_enabled);
        assert_eq!((c.username.as_str(), c.password.as_str()), ("", ""));
        assert_eq!(c.backlog_max_bytes, 1024 << 20);
        assert_eq!(c.migrate_batch, 25_000);
        let negative = MINIMAL.replace("]}]}", "]}], \"vnode_size\": -3, \"flush_size\": 0}");
        let c = ProxyConfig::from_json(&negative).unwrap();
        assert_eq!((c.vnode_size, c.flush_size), (256, 10_000));
    }

    #[test]
    fn the_toml_form_has_the_same_keys() {
        let c = ProxyConfig::from_toml(
            r#"
            listen_addr = "127.0.0.1:0"
            hash_key = "url"
            vnode_size = 16
            db_list = ["db1"]
            backlog_max_mb = 2
            [[circles]]
            name = "circle-1"
            [[circles.backends]]
            name = "a"
            url = "http://127.0.0.1:8086"
            username = "u"
            password = "p"
            "#,
        )
        .unwrap();
        assert_eq!(c.hash_key, HashKey::Url);
        assert_eq!(c.vnode_size, 16);
        assert_eq!(c.backlog_max_bytes, 2 << 20);
        assert_eq!(c.circles[0].backends[0].password, "p");
        assert_eq!(
            c.listen_socket_addr().unwrap(),
            "127.0.0.1:0".parse().unwrap()
        );
    }

    fn error_of(json: &str) -> String {
        ProxyConfig::from_json(json).unwrap_err().to_string()
    }

    #[test]
    fn config_errors_are_worded_as_influx_proxys() {
        assert_eq!(error_of("{}"), "circles cannot be empty");
        assert_eq!(
            error_of(r#"{"circles": [{"name": "c"}]}"#),
            "backends cannot be empty"
        );
        assert_eq!(
            error_of(r#"{"circles": [{"name": "c", "backends": [{"url": "http://h:1"}]}]}"#),
            "backend name cannot be empty"
        );
        assert_eq!(
            error_of(
                r#"{"circles": [{"name": "c", "backends": [{"name": "b", "url": "http://h:1"}]},
                               {"name": "d", "backends": [{"name": "b", "url": "http://h:2"}]}]}"#
            ),
            "backend name exists: b"
        );
        assert_eq!(
            error_of(&MINIMAL.replace("]}]}", "]}], \"hash_key\": \"crc\"}")),
            "invalid hash_key, should be idx, name or url"
        );
    }
}
