//! A real InfluxDB 1.x (`influxd` from Debian's `influxdb` package) on loopback ports, for
//! differential tests. `.ci/run` installs it; elsewhere tests that need it say they are
//! skipped, unless SHARDKEEPER_REQUIRE_INFLUXD=1 makes its absence a failure.

use super::{query, Daemon};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Influxd {
    child: Child,
    pub addr: SocketAddr,
    bin: &'static str,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Influxd {
    /// Starts influxd, or returns None (after saying why) when it is not installed.
    pub fn start() -> Option<Influxd> {
        Self::start_with("")
    }

    /// The same, with `extra` (TOML sections, e.g. `[coordinator]`) added to its config.
    pub fn start_with(extra: &str) -> Option<Influxd> {
        let bin = ["/usr/bin/influxd", "/usr/local/bin/influxd"]
            .into_iter()
            .find(|p| Path::new(p).exists());
        let Some(bin) = bin else {
            assert!(
                std::env::var("SHARDKEEPER_REQUIRE_INFLUXD").is_err(),
                "influxd is required (apt-get install influxdb) but not installed"
            );
            eprintln!("SKIPPED: influxd is not installed (apt-get install influxdb)");
            return None;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let (http, rpc) = (free_port(), free_port());
        let d = dir.path().display();
        // Off unless `extra` sets it up.
        let subscriber = match extra.contains("[subscriber]") {
            true => "",
            false => "[subscriber]\n  enabled = false\n",
        };
        let config = format!(
            "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n\
             [meta]\n  dir = \"{d}/meta\"\n\
             [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  index-version = \"inmem\"\n  query-log-enabled = false\n\
             [monitor]\n  store-enabled = false\n\
             [http]\n  enabled = true\n  bind-address = \"127.0.0.1:{http}\"\n  log-enabled = false\n\
             [logging]\n  level = \"warn\"\n  suppress-logo = true\n\
             {subscriber}{extra}"
        );
        std::fs::write(dir.path().join("influxdb.conf"), config).expect("write config");
        let addr: SocketAddr = format!("127.0.0.1:{http}").parse().expect("addr");
        let child = spawn(bin, dir.path());
        let mut influxd = Influxd {
            child,
            addr,
            bin,
            _dir: dir,
        };
        influxd.wait_ready();
        Some(influxd)
    }

    /// kill -9, as a crash.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same ports and data (after [`Influxd::kill9`]).
    pub fn restart(&mut self) {
        self.child = spawn(self.bin, self._dir.path());
        self.wait_ready();
    }

    /// kill -9, its meta, data and WAL removed, started again empty on the same ports.
    pub fn wipe(&mut self) {
        self.kill9();
        for sub in ["meta", "data", "wal"] {
            let dir = self._dir.path().join(sub);
            if dir.exists() {
                std::fs::remove_dir_all(&dir).expect("remove influxd's files");
            }
        }
        self.restart();
    }

    /// influxd announces nothing we can read, so poll /ping (bounded).
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(self.addr).is_ok()
                && super::try_request(self.addr, "GET", "/ping", &[], b"")
                    .is_ok_and(|r| r.status == 204)
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("influxd exited during start-up: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "influxd did not answer /ping within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn spawn(bin: &str, dir: &Path) -> Child {
    Command::new(bin)
        .args(["-config"])
        .arg(dir.join("influxdb.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn influxd")
}

impl Drop for Influxd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real influxd and shardkeeper side by side, for differential tests.
pub struct SideBySide {
    pub influxd: Influxd,
    pub ours: Daemon,
    /// Our data directory, removed after our daemon (fields drop in order).
    _dir: tempfile::TempDir,
}

impl SideBySide {
    /// Both started, or None (after saying why) when influxd is not installed.
    pub fn start() -> Option<SideBySide> {
        Self::start_with_influxd("")
    }

    /// The same, with `extra` added to influxd's config (see [`Influxd::start_with`]).
    pub fn start_with_influxd(extra: &str) -> Option<SideBySide> {
        let influxd = Influxd::start_with(extra)?;
        let dir = tempfile::tempdir().expect("tempdir");
        let ours = Daemon::start(dir.path());
        Some(SideBySide {
            influxd,
            ours,
            _dir: dir,
        })
    }

    /// Theirs, then ours.
    pub fn servers(&self) -> [SocketAddr; 2] {
        [self.influxd.addr, self.ours.addr]
    }

    /// Creates `db` on both.
    pub fn create_database(&self, db: &str) {
        for addr in self.servers() {
            let r = query(addr, "", &format!("CREATE DATABASE {db}"));
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        }
    }

    /// Runs `statement` on both; each must succeed.
    pub fn execute(&self, statement: &str) {
        for addr in self.servers() {
            let r = query(addr, "", statement);
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        }
    }

    /// Writes the line protocol `body` into `db` on both; each must take all of it.
    pub fn write(&self, db: &str, body: &str) {
        for addr in self.servers() {
            let r = super::request(
                addr,
                "POST",
                &format!("/write?db={db}"),
                &[],
                body.as_bytes(),
            );
            assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
        }
    }
}
