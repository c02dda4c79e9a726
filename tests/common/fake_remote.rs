//! A scripted remote: an HTTP/1.1 server on 127.0.0.1 that gives each request the next
//! answer of its script (then 204s) and records what it received, bodies decompressed.
//! Stands in for a peer whose failures a test chooses: a 503 with `Retry-After`, a 400, an
//! answer that never comes. [`FakeRemote::forward`] makes it a recording relay to a real
//! node instead (each request passed on as it came, the node's answer passed back).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Read the request and never answer it (until the connection is closed).
    pub never: bool,
}

impl Answer {
    pub fn status(status: u16) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: String::new(),
            never: false,
        }
    }

    /// An InfluxDB 1.x error answer: `{"error": message}`.
    pub fn error(status: u16, message: &str) -> Answer {
        Answer::status(status)
            .header("Content-Type", "application/json")
            .body(&serde_json::json!({ "error": message }).to_string())
    }

    /// No answer at all: the request is read and the connection held open.
    pub fn never() -> Answer {
        Answer {
            never: true,
            ..Answer::status(0)
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Answer {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: &str) -> Answer {
        self.body = body.to_owned();
        self
    }
}

/// A request as the remote received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Query parameters, decoded, in order.
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    /// The body, gunzipped if it came with `Content-Encoding: gzip`.
    pub body: Vec<u8>,
    /// The body's bytes as they came (before gunzip).
    pub wire_bytes: usize,
    /// The body as it came.
    pub raw: Vec<u8>,
    /// The request target as it came (path and query).
    pub target: String,
    /// The answer given: its status and headers.
    pub answered: u16,
    pub answer_headers: Vec<(String, String)>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn answer_header(&self, name: &str) -> Option<&str> {
        self.answer_headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Shared {
    script: Mutex<VecDeque<Answer>>,
    /// What is answered once the script is done (None: 204).
    otherwise: Mutex<Option<Answer>>,
    received: Mutex<Vec<Received>>,
    connections: Mutex<Vec<TcpStream>>,
    stopped: AtomicBool,
    /// Where requests are relayed (None: answered from the script).
    forward: Mutex<Option<SocketAddr>>,
}

pub struct FakeRemote {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FakeRemote {
    /// Listens on a free loopback port; answers `script` in order, then 204 to everything.
    pub fn start(script: Vec<Answer>) -> FakeRemote {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake remote");
        let addr = listener.local_addr().expect("fake remote address");
        let shared = Arc::new(Shared {
            script: Mutex::new(script.into()),
            ..Shared::default()
        });
        let accepting = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accepting.stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                if let Ok(clone) = stream.try_clone() {
                    accepting.connections.lock().unwrap().push(clone);
                }
                let shared = accepting.clone();
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        FakeRemote { addr, shared }
    }

    /// Listens on a free loopback port and relays every request to `target`, recording
    /// it with the answer.
    pub fn forward(target: SocketAddr) -> FakeRemote {
        let remote = FakeRemote::start(vec![]);
        *remote.shared.forward.lock().unwrap() = Some(target);
        remote
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds answers to the end of the script.
    pub fn push(&self, answers: Vec<Answer>) {
        self.shared.script.lock().unwrap().extend(answers);
    }

    /// What to answer once the script is done, instead of 204 (None: 204 again).
    pub fn otherwise(&self, answer: Option<Answer>) {
        *self.shared.otherwise.lock().unwrap() = answer;
    }

    /// Every request received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Waits (bounded) until `n` requests have come.
    pub fn wait_for_requests(&self, n: usize) -> Vec<Received> {
        super::wait_until(&format!("{n} requests at the fake remote"), || {
            self.shared.received.lock().unwrap().len() >= n
        });
        self.received()
    }
}

impl Drop for FakeRemote {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        // Wakes the accepting thread so that it sees it is stopped.
        let _ = TcpStream::connect(self.addr);
        for c in self.shared.connections.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

/// Requests on one connection (keep-alive), until the client closes it.
fn serve(stream: TcpStream, shared: &Shared) {
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Some(mut received) = read_request(&mut reader) {
        let forward = *shared.forward.lock().unwrap();
        let answer = match forward {
            Some(target) => match relay(target, &received) {
                Some(answer) => answer,
                // The node is gone: so is the connection.
                None => return,
            },
            None => shared
                .script
                .lock()
                .unwrap()
                .pop_front()
                .or_else(|| shared.otherwise.lock().unwrap().clone())
                .unwrap_or_else(|| Answer::status(204)),
        };
        received.answered = answer.status;
        received.answer_headers = answer.headers.clone();
        shared.received.lock().unwrap().push(received);
        if answer.never {
            // Held until the client or a test cuts the connection.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
            return;
        }
        let mut head = format!("HTTP/1.1 {} Scripted\r\n", answer.status);
        for (k, v) in &answer.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if answer.status != 204 {
            head.push_str(&format!("Content-Length: {}\r\n", answer.body.len()));
        }
        head.push_str("\r\n");
        head.push_str(&answer.body);
        if out.write_all(head.as_bytes()).is_err() {
            return;
        }
    }
}

/// Passes `received` on to `target` as it came; the answer, its own headers kept.
fn relay(target: SocketAddr, received: &Received) -> Option<Answer> {
    let headers: Vec<(&str, &str)> = received
        .headers
        .iter()
        .filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            k == "authorization"
                || k.starts_with("content-") && k != "content-length"
                || k.starts_with("x-")
        })
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let r = super::try_request(
        target,
        &received.method,
        &received.target,
        &headers,
        &received.raw,
    )
    .ok()?;
    let kept: Vec<(String, String)> = r
        .headers
        .iter()
        .filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            k == "content-type" || k.starts_with("x-shardkeeper")
        })
        .cloned()
        .collect();
    Some(Answer {
        status: r.status,
        headers: kept,
        body: String::from_utf8_lossy(&r.body).into_owned(),
        never: false,
    })
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Received> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v): &(String, String)| v.clone())
    };
    let mut body = Vec::new();
    if header("Transfer-Encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(len) = header("Content-Length") {
        body = vec![0; len.parse().ok()?];
        reader.read_exact(&mut body).ok()?;
    }
    let wire_bytes = body.len();
    let raw = body.clone();
    if header("Content-Encoding").is_some_and(|v| v.eq_ignore_ascii_case("gzip")) {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut plain)
            .ok()?;
        body = plain;
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    Some(Received {
        method,
        path: path.to_owned(),
        query: form_decode(query),
        headers,
        body,
        wire_bytes,
        raw,
        target,
        answered: 0,
        answer_headers: Vec::new(),
    })
}

/// `a=1&b=x+y` (URL query or form body) as pairs, percent-decoded.
pub fn form_decode(s: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(s.as_bytes()).into_owned().collect()
}
