//! `shardkeeper proxy` in front of circles of backends, for the proxy's tests: backends
//! that can be killed and restarted where the proxy knows them (shardkeeper nodes or real
//! influxd), the proxy process itself (killed and restarted on its data directory), and
//! where influx-proxy's ring places a measurement.

use super::influxd::Influxd;
use super::{query, request, try_request, wait_bounded, Daemon, Response, BIN};
use shardkeeper::proxy::config::{BackendConfig, HashKey};
use shardkeeper::proxy::ring::{placement_key, Ring};
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// What serves as a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Shardkeeper,
    Influxd,
}

enum Server {
    Node(Option<Daemon>),
    Influxd(Influxd),
}

/// One backend, at a fixed address across restarts.
pub struct Backend {
    pub addr: SocketAddr,
    server: Server,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

impl Backend {
    /// Starts one, or None (after saying why) when it is influxd and that is not
    /// installed.
    pub fn start(kind: Kind) -> Option<Backend> {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let server = match kind {
            Kind::Shardkeeper => {
                std::fs::create_dir_all(&data).expect("data dir");
                Server::Node(Some(Daemon::start_with_config(&data, "")))
            }
            Kind::Influxd => Server::Influxd(Influxd::start()?),
        };
        let addr = match &server {
            Server::Node(Some(d)) => d.addr,
            Server::Influxd(i) => i.addr,
            Server::Node(None) => unreachable!("just started"),
        };
        Some(Backend {
            addr,
            server,
            data,
            _dir: dir,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn kill9(&mut self) {
        match &mut self.server {
            Server::Node(d) => {
                if let Some(d) = d.take() {
                    d.kill9();
                }
            }
            Server::Influxd(i) => i.kill9(),
        }
    }

    /// Starts it again on the same address and data.
    pub fn restart(&mut self) {
        match &mut self.server {
            Server::Node(d) => *d = Some(Daemon::start_at(&self.data, "", self.addr)),
            Server::Influxd(i) => i.restart(),
        }
    }

    /// kill -9, its data removed, started again empty on the same address: a backend
    /// whose disk was lost.
    pub fn wipe(&mut self) {
        self.kill9();
        match &mut self.server {
            Server::Node(d) => {
                std::fs::remove_dir_all(&self.data).expect("remove the node's data");
                std::fs::create_dir_all(&self.data).expect("data dir");
                *d = Some(Daemon::start_at(&self.data, "", self.addr));
            }
            Server::Influxd(i) => i.wipe(),
        }
    }

    /// `POST /query` straight to this backend.
    pub fn query(&self, db: &str, q: &str) -> Response {
        query(self.addr, db, q)
    }
}

/// Two circles (or more) of backends of one kind.
pub struct Circles {
    pub circles: Vec<Vec<Backend>>,
}

impl Circles {
    /// `shape[c]` backends in circle `c`, or None when `kind` is not installed.
    pub fn start(kind: Kind, shape: &[usize]) -> Option<Circles> {
        let mut circles = Vec::new();
        for &n in shape {
            let mut backends = Vec::new();
            for _ in 0..n {
                backends.push(Backend::start(kind)?);
            }
            circles.push(backends);
        }
        Some(Circles { circles })
    }

    /// influx-proxy's `circles` for these backends: circle `circle-{c+1}`, backend
    /// `influxdb-{c+1}-{i+1}`, as its shipped `proxy.json` names them.
    pub fn config(&self) -> serde_json::Value {
        let circles: Vec<serde_json::Value> = self
            .circles
            .iter()
            .enumerate()
            .map(|(c, backends)| {
                let backends: Vec<serde_json::Value> = backends
                    .iter()
                    .enumerate()
                    .map(|(i, b)| {
                        serde_json::json!({
                            "name": format!("influxdb-{}-{}", c + 1, i + 1),
                            "url": b.url(),
                            "username": "",
                            "password": "",
                        })
                    })
                    .collect();
                serde_json::json!({ "name": format!("circle-{}", c + 1), "backends": backends })
            })
            .collect();
        serde_json::Value::Array(circles)
    }

    /// The index in circle `c` of the backend influx-proxy's ring (`hash_key` idx, 256
    /// virtual nodes) places `db`'s `measurement` on.
    pub fn owner(&self, c: usize, db: &str, measurement: &str) -> usize {
        owner_among(self.circles[c].len(), db, measurement)
    }

    pub fn all(&self) -> impl Iterator<Item = &Backend> {
        self.circles.iter().flatten()
    }
}

/// The index, among `n` backends of a circle, of the one influx-proxy's ring (`hash_key`
/// idx, 256 virtual nodes: placement depends on the count alone) places `db`'s
/// `measurement` on.
pub fn owner_among(n: usize, db: &str, measurement: &str) -> usize {
    let configs = vec![BackendConfig::default(); n];
    Ring::new(HashKey::Idx, 256, &configs).owner(placement_key(db, measurement))
}

/// A running `shardkeeper proxy`.
pub struct Proxy {
    child: Child,
    pub addr: SocketAddr,
    pub scheme: String,
    pub config: PathBuf,
}

impl Proxy {
    /// Writes `config` (JSON, or TOML when `file` ends in `.toml`) and starts the proxy on
    /// it; its `listen_addr` should be `127.0.0.1:0`.
    pub fn start_with(file: &Path, config: &str) -> Proxy {
        std::fs::write(file, config).expect("write proxy config");
        Self::start(file)
    }

    pub fn start(config: &Path) -> Proxy {
        Self::try_start(config).unwrap_or_else(|stderr| panic!("proxy did not start: {stderr}"))
    }

    /// Starts the proxy; Err carries its stderr if it exits instead of listening.
    pub fn try_start(config: &Path) -> Result<Proxy, String> {
        let mut child = Command::new(BIN)
            .args(["proxy", "--config"])
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn shardkeeper proxy");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read stdout");
        let Some((scheme, rest)) = line
            .trim()
            .rsplit_once(' ')
            .and_then(|(_, u)| u.split_once("://"))
        else {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            let _ = child.wait();
            return Err(format!("{line}{stderr}"));
        };
        let (scheme, addr) = (scheme.to_owned(), rest.parse().expect("address"));
        if let Some(mut stderr) = child.stderr.take() {
            std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        }
        Ok(Proxy {
            child,
            addr,
            scheme,
            config: config.to_owned(),
        })
    }

    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> Response {
        request(self.addr, method, path, &[], body)
    }

    /// A write of line protocol to `db`; the status.
    pub fn write(&self, db: &str, lines: &str) -> Response {
        request(
            self.addr,
            "POST",
            &format!("/write?db={db}"),
            &[],
            lines.as_bytes(),
        )
    }

    pub fn try_write(&self, db: &str, lines: &str) -> Result<Response, String> {
        try_request(
            self.addr,
            "POST",
            &format!("/write?db={db}"),
            &[],
            lines.as_bytes(),
        )
    }

    pub fn query(&self, db: &str, q: &str) -> Response {
        query(self.addr, db, q)
    }

    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait (bounded) for the exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        wait_bounded(&mut self.child, Duration::from_secs(30))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
