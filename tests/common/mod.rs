//! The one harness integration tests share: start the real binary on port 0 in a temp
//! directory, find its address from its stdout, talk HTTP to it, stop it. Beside it:
//! several nodes at once (`nodes`), a scripted fake remote (`fake_remote`) and a
//! fault-injecting TCP proxy (`fault_proxy`), what replication tests do through the v2
//! API (`replication`), and `shardkeeper proxy` in front of circles of backends (`proxy`).
#![allow(dead_code)]

pub mod fake_remote;
pub mod fault_proxy;
pub mod influxd;
pub mod nodes;
pub mod proxy;
pub mod replication;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_shardkeeper");

pub struct Daemon {
    pub child: Child,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
}

impl Daemon {
    pub fn start(data_dir: &Path) -> Daemon {
        Self::try_start(data_dir).unwrap_or_else(|stderr| panic!("daemon did not start: {stderr}"))
    }

    /// Starts `shardkeeper serve`; Err carries its stderr if it exits instead of listening.
    pub fn try_start(data_dir: &Path) -> Result<Daemon, String> {
        Self::try_start_with(data_dir, None)
    }

    /// Starts with a config file holding `config` (TOML) besides the data directory.
    pub fn start_with_config(data_dir: &Path, config: &str) -> Daemon {
        Self::try_start_with(data_dir, Some(config))
            .unwrap_or_else(|stderr| panic!("daemon did not start: {stderr}"))
    }

    pub fn try_start_with(data_dir: &Path, config: Option<&str>) -> Result<Daemon, String> {
        Self::try_start_with_env(data_dir, config, &[])
    }

    /// The same, with environment variables set for the daemon (e.g. fail points).
    pub fn try_start_with_env(
        data_dir: &Path,
        config: Option<&str>,
        env: &[(&str, &str)],
    ) -> Result<Daemon, String> {
        Self::try_start_full(data_dir, config, env, None)
    }

    /// The same, with the daemon's stderr (its log) written to `log` rather than drained:
    /// a file, as under a service manager that does not give it a terminal.
    pub fn start_logging_to(
        data_dir: &Path,
        config: &str,
        env: &[(&str, &str)],
        log: &Path,
    ) -> Daemon {
        Self::try_start_full(data_dir, Some(config), env, Some(log))
            .unwrap_or_else(|stderr| panic!("daemon did not start: {stderr}"))
    }

    /// Starts on `bind` (a node restarted where its clients know it to be).
    pub fn start_at(data_dir: &Path, config: &str, bind: SocketAddr) -> Daemon {
        Self::try_start_bound(data_dir, Some(config), &[], None, &bind.to_string())
            .unwrap_or_else(|stderr| panic!("daemon did not start: {stderr}"))
    }

    fn try_start_full(
        data_dir: &Path,
        config: Option<&str>,
        env: &[(&str, &str)],
        log: Option<&Path>,
    ) -> Result<Daemon, String> {
        Self::try_start_bound(data_dir, config, env, log, "127.0.0.1:0")
    }

    fn try_start_bound(
        data_dir: &Path,
        config: Option<&str>,
        env: &[(&str, &str)],
        log: Option<&Path>,
        bind: &str,
    ) -> Result<Daemon, String> {
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--bind", bind, "--data-dir"])
            .arg(data_dir)
            .envs(env.iter().copied());
        if let Some(config) = config {
            let path = data_dir.with_extension("toml");
            std::fs::write(&path, config).expect("write config");
            command.arg("--config").arg(path);
        }
        let stderr = match log {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("create log file")),
            None => Stdio::piped(),
        };
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn shardkeeper");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read stdout");
        // `http://` or, with https_enabled, `https://`.
        let Some(addr) = line
            .split("://")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
        else {
            let mut stderr = String::new();
            match (child.stderr.take(), log) {
                (Some(mut pipe), _) => drop(pipe.read_to_string(&mut stderr)),
                (None, Some(path)) => stderr = std::fs::read_to_string(path).unwrap_or_default(),
                (None, None) => {}
            }
            let _ = child.wait();
            return Err(stderr);
        };
        // Keep stderr drained so the daemon never blocks on a full pipe.
        if let Some(mut stderr) = child.stderr.take() {
            std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        }
        Ok(Daemon {
            addr: addr.parse().expect("address"),
            child,
            data_dir: data_dir.to_owned(),
        })
    }

    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> Response {
        request(self.addr, method, path, &[], body)
    }

    /// SIGTERM, then wait (bounded) for the exit status.
    pub fn stop(mut self) -> ExitStatus {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        wait_bounded(&mut self.child, Duration::from_secs(30))
    }

    /// Sends `signal` (SIGHUP, say) without waiting.
    pub fn signal(&self, signal: i32) {
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    /// A test that fails half-way must not leave its daemon running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn wait_bounded(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "process did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// The message of an error answer (`{"error": "..."}`); fails the test on any other.
    pub fn error(&self) -> String {
        let body = self.json();
        body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error in the answer: {body}"))
            .to_owned()
    }

    /// Fails the test unless this is an error answer of `status` saying `message`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, message: &str) {
        assert_eq!((self.status, self.error().as_str()), (status, message));
    }
}

/// A minimal HTTP/1.1 client (one request per connection), enough for tests.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    try_request(addr, method, path, headers, body).unwrap_or_else(|e| panic!("{e}"))
}

/// [`request`] to a server that may be gone (killed, or crashed on purpose): an error if
/// it refuses the connection or closes it without an answer.
pub fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, String> {
    let mut stream =
        TcpStream::connect(addr).map_err(|e| format!("{method} {path} to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .map_err(|e| format!("{method} {path} to {addr}: sending: {e}"))?;
    // A server may answer (413, say) and close before it has read the whole body: the
    // answer is still there to read.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let read = stream.read_to_end(&mut raw);
    if raw.is_empty() {
        return Err(format!("{method} {path} to {addr}: no response: {read:?}"));
    }
    Ok(parse_response(&raw, method == "HEAD"))
}

pub fn parse_response(raw: &[u8], head_only: bool) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked && !head_only {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
}

/// A daemon whose data directory (`data`) lies in a temporary directory of its own, with
/// room beside it for what a test writes (archives, configs); all removed after it.
pub struct TempNode {
    pub daemon: Daemon,
    pub data: PathBuf,
    /// Dropped after the daemon (fields drop in order); a test that takes the node apart
    /// to restart its daemon keeps it as long.
    pub root: tempfile::TempDir,
}

impl TempNode {
    pub fn start(config: &str) -> TempNode {
        let root = tempfile::tempdir().expect("tempdir");
        let data = root.path().join("data");
        std::fs::create_dir_all(&data).expect("data directory");
        let daemon = Daemon::start_with_config(&data, config);
        TempNode { daemon, data, root }
    }
}

/// An `Authorization` value for HTTP Basic credentials.
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// Asserts a 2xx answer (else fails with its status and body) and returns it.
/// `GET /api/v2/backup/status` of a node without auth, as JSON (a 2xx, or the test fails).
pub fn backup_status(addr: std::net::SocketAddr) -> serde_json::Value {
    ok(request(addr, "GET", "/api/v2/backup/status", &[], b"")).json()
}

pub fn ok(r: Response) -> Response {
    assert!(
        (200..300).contains(&r.status),
        "{}: {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    r
}

/// `application/x-www-form-urlencoded` encoding of one value: all but RFC 3986's
/// unreserved characters percent-encoded.
pub fn urlencode(s: &str) -> String {
    const RESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, RESERVED).to_string()
}

/// `POST /query` with `q` (and `db`) in a form body.
pub fn query(addr: SocketAddr, db: &str, q: &str) -> Response {
    let body = format!("q={}&db={}", urlencode(q), urlencode(db));
    request(
        addr,
        "POST",
        "/query",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    )
}

/// The same, as `auth` (an `Authorization` value, such as [`basic`]'s).
pub fn query_as(addr: SocketAddr, auth: &str, db: &str, q: &str) -> Response {
    let body = format!("q={}&db={}", urlencode(q), urlencode(db));
    request(
        addr,
        "POST",
        "/query",
        &[
            ("Authorization", auth),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        body.as_bytes(),
    )
}

/// Names and sizes of every file under a directory, sorted.
pub fn tree(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push((
                    e.path().strip_prefix(dir).unwrap().display().to_string(),
                    e.metadata().unwrap().len(),
                ));
            }
        }
    }
    out.sort();
    out
}

/// Whether a tool a test runs (a Python library, curl, systemd-analyze) is installed, as
/// `check` tells. `.ci/run` installs them; elsewhere a test without one says it is skipped,
/// unless SHARDKEEPER_REQUIRE_CLIENTS=1 makes the absence a failure.
pub fn tool_available(check: &mut Command, what: &str) -> bool {
    let ok = check.output().is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("SHARDKEEPER_REQUIRE_CLIENTS").is_err(),
            "{what} is required but not installed"
        );
        eprintln!("SKIPPED: {what} is not installed");
    }
    ok
}

/// Runs `shardkeeper ctl` with `args`; fails the test with its errors unless it succeeds.
/// Its standard output.
pub fn ctl(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("ctl")
        .args(args)
        .output()
        .expect("run ctl");
    assert!(
        out.status.success(),
        "ctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether python3 imports `modules` (as `import` lists them: `"influxdb, influxdb_client"`);
/// see [`tool_available`].
pub fn python_with(modules: &str) -> bool {
    tool_available(
        Command::new("python3").args(["-c", &format!("import {modules}")]),
        &format!("python3 with {modules}"),
    )
}

/// Runs the client script `tests/clients/{script}` with `args`, `stdin` on its standard
/// input; fails the test with the script's errors unless it succeeds. Its standard output.
pub fn run_client_script(script: &str, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(script);
    let mut child = Command::new("python3")
        .arg(path)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The longest [`wait_until`] waits: generous, since the machine may be loaded; reaching
/// it means the condition never came, not that something was slow.
pub const WAIT_LIMIT: Duration = Duration::from_secs(120);

/// Waits until `condition` holds, checking it every few milliseconds; fails loudly, with
/// `what` was awaited, if it has not after [`WAIT_LIMIT`].
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT_LIMIT;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "waited {WAIT_LIMIT:?} for {what}: it never happened"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The first statement's result of a query answer, checked: status 200 and no error. A
/// query that fails must never read as "no rows".
pub fn first_result(r: &Response) -> serde_json::Value {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let answer = r.json();
    let result = &answer["results"][0];
    assert!(result.is_object(), "no statement result: {answer}");
    assert!(result["error"].is_null(), "the query failed: {answer}");
    result.clone()
}

/// The whole answers to `queries` (`(database, statement)` pairs), each checked to have
/// succeeded, so that a failure never compares equal to the same failure elsewhere.
pub fn answers_to(addr: SocketAddr, queries: &[(&str, &str)]) -> Vec<serde_json::Value> {
    queries
        .iter()
        .map(|(db, q)| {
            let r = query(addr, db, q);
            first_result(&r);
            r.json()
        })
        .collect()
}

/// The rows of the first series of a successful query; none when it found nothing.
pub fn rows_of(r: &Response) -> Vec<serde_json::Value> {
    let result = first_result(r);
    if result["series"].is_null() {
        return Vec::new();
    }
    result["series"][0]["values"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("a series without values: {result}"))
}

/// Names of the files in `dir` ending in `.{ext}`; none if `dir` does not exist.
pub fn files_with_extension(dir: &Path, ext: &str) -> std::collections::BTreeSet<String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Default::default(),
        Err(e) => panic!("list {}: {e}", dir.display()),
    };
    entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// The shard directories under a node's data directory (restores' staging directories
/// included while one runs).
pub fn shard_dirs(data: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(data.join("shards"))
        .unwrap_or_else(|e| panic!("list {}/shards: {e}", data.display()))
        .map(|e| e.unwrap().path())
        .collect()
}
