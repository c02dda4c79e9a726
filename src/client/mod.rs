//! An async client for InfluxDB's HTTP API (shardkeeper's own, or influxd's): line-protocol
//! writes (1.x `/write`, 2.x `/api/v2/write`, gzip), InfluxQL queries, ping, and any other
//! endpoint through [`InfluxClient::request`] and [`InfluxClient::send`].
//!
//! For everything in shardkeeper that talks to another node (replication senders,
//! anti-entropy peers, proxy backends) as well as `ctl` and `bench`, so it knows nothing of
//! the command line: it takes a URL and options, and every failure is a [`ClientError`]
//! whose [`ClientError::retry`] tells a sender whether to send again, and when.

mod error;

pub use error::{classify_status, parse_retry_after, ClientError, Retry, MAX_ERROR_BODY};

use crate::line_protocol::Precision;
use flate2::write::GzEncoder;
use reqwest::header::{HeaderMap, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
pub use reqwest::{Body, Method, RequestBuilder, Response};
use serde::Deserialize;
use std::io::Write;
use std::time::{Duration, SystemTime};

/// Connecting to a node on a working network takes milliseconds; ten seconds is a node
/// that is down or unreachable.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait for the next bytes of an answer. Long, because a node flushing or
/// answering a heavy query may take a while before its first byte, and a timed-out write
/// is sent again, adding to the load.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    #[default]
    None,
    /// A 1.x user (`Authorization: Basic`).
    Basic { user: String, password: String },
    /// A 2.x API token (`Authorization: Token`).
    Token(String),
}

/// Options of an [`InfluxClient`]; [`ClientOptions::default`] suits a peer on the same
/// network.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub credentials: Credentials,
    pub connect_timeout: Duration,
    /// Between two reads of an answer (not the whole request: a backup download may
    /// rightly take an hour).
    pub read_timeout: Duration,
    /// The whole request, when set.
    pub request_timeout: Option<Duration>,
    /// Compress write bodies with gzip: line protocol shrinks about tenfold, and peers
    /// are often across a slower link than the one to disk.
    pub gzip_writes: bool,
    /// Idle keep-alive connections kept per host (None: unbounded).
    pub max_idle_per_host: Option<usize>,
    /// How an `https://` node's certificate is checked.
    pub tls: TlsOptions,
}

/// How the client checks a node's certificate. By default, against the Web PKI's roots
/// (webpki-roots, compiled in); a private CA is added with `ca_certificate_pem`.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// PEM certificates (a private CA, or the node's own self-signed one) trusted besides
    /// the built-in roots.
    pub ca_certificate_pem: Option<Vec<u8>>,
    /// Accept any certificate, for any name: only for a remote marked insecure
    /// (InfluxDB's `allowInsecureTLS`), never by default.
    pub insecure: bool,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            credentials: Credentials::None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            request_timeout: None,
            gzip_writes: true,
            max_idle_per_host: None,
            tls: TlsOptions::default(),
        }
    }
}

/// Where a write goes.
#[derive(Debug, Clone, Copy)]
pub enum WriteTarget<'a> {
    /// `/write?db=&rp=`: a database and, if not its default, a retention policy.
    V1 { db: &'a str, rp: Option<&'a str> },
    /// `/api/v2/write?org=&bucket=`.
    V2 { org: &'a str, bucket: &'a str },
}

/// A query's answer: one result per statement, each with its own error if it failed.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct QueryAnswer {
    #[serde(default)]
    pub results: Vec<StatementResult>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct StatementResult {
    #[serde(default)]
    pub statement_id: u64,
    #[serde(default)]
    pub series: Vec<Series>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Series {
    pub name: Option<String>,
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub columns: Vec<String>,
    #[serde(default)]
    pub values: Vec<Vec<serde_json::Value>>,
}

impl StatementResult {
    /// Rows in every series of the result.
    pub fn rows(&self) -> usize {
        self.series.iter().map(|s| s.values.len()).sum()
    }
}

impl QueryAnswer {
    /// The first statement that failed, as an error; a failed statement must never read as
    /// "no rows".
    pub fn first_error(&self, url: &str) -> Option<ClientError> {
        self.results.iter().find_map(|r| {
            r.error.as_ref().map(|message| ClientError::Statement {
                url: url.to_owned(),
                statement_id: r.statement_id,
                message: message.clone(),
            })
        })
    }
}

/// What `/ping` says about the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pong {
    /// `X-Influxdb-Version`.
    pub version: Option<String>,
}

/// A client of one node. Cheap to clone; clones share the connection pool.
#[derive(Debug, Clone)]
pub struct InfluxClient {
    http: reqwest::Client,
    base: String,
    credentials: Credentials,
    gzip_writes: bool,
}

impl InfluxClient {
    /// A client of the node at `url` (`http://host:port`, any path prefix kept).
    pub fn new(url: &str, options: ClientOptions) -> Result<InfluxClient, ClientError> {
        let base = url.trim_end_matches('/').to_owned();
        let invalid = |reason: String| ClientError::Request {
            url: base.clone(),
            reason,
        };
        let parsed = reqwest::Url::parse(&base).map_err(|e| invalid(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid(
                "the URL must start with http:// or https://".into(),
            ));
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.read_timeout)
            // A node's address is its own; a redirect would send data (and credentials)
            // elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            // Peers are reached directly: an HTTP_PROXY meant for the operator's browser
            // must not carry data-node traffic.
            .no_proxy();
        if let Some(timeout) = options.request_timeout {
            builder = builder.timeout(timeout);
        }
        if let Some(n) = options.max_idle_per_host {
            builder = builder.pool_max_idle_per_host(n);
        }
        if let Some(pem) = &options.tls.ca_certificate_pem {
            let certificates = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| invalid(format!("CA certificate: {e}")))?;
            if certificates.is_empty() {
                return Err(invalid("CA certificate: no PEM certificate found".into()));
            }
            for c in certificates {
                builder = builder.add_root_certificate(c);
            }
        }
        if options.tls.insecure {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder.build().map_err(|e| invalid(e.to_string()))?;
        Ok(InfluxClient {
            http,
            base,
            credentials: options.credentials,
            gzip_writes: options.gzip_writes,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The same node and connections with other credentials (a restore that replaced the
    /// node's tokens, say).
    pub fn with_credentials(&self, credentials: Credentials) -> InfluxClient {
        InfluxClient {
            credentials,
            ..self.clone()
        }
    }

    /// A request to `path` (which starts with `/`) with the client's credentials.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let r = self.http.request(method, self.url(path));
        match &self.credentials {
            Credentials::None => r,
            Credentials::Basic { user, password } => r.basic_auth(user, Some(password)),
            Credentials::Token(token) => r.header("Authorization", format!("Token {token}")),
        }
    }

    /// Sends a request made by [`Self::request`]; a non-2xx answer is an error. `path` is
    /// for the error's context.
    pub async fn send(&self, path: &str, request: RequestBuilder) -> Result<Response, ClientError> {
        let url = self.url(path);
        let response = request
            .send()
            .await
            .map_err(|e| ClientError::transport(&url, e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(status_error(url, response).await)
    }

    /// Sends a request made by [`Self::request`] and gives back its answer whatever its
    /// status, for a caller that reads an error answer's headers; [`Self::failure`] makes
    /// the error of one it does not take.
    pub async fn send_any(
        &self,
        path: &str,
        request: RequestBuilder,
    ) -> Result<Response, ClientError> {
        let url = self.url(path);
        request
            .send()
            .await
            .map_err(|e| ClientError::transport(&url, e))
    }

    /// The error a non-2xx `response` to `path` makes, as [`Self::send`] would return it.
    pub async fn failure(&self, path: &str, response: Response) -> ClientError {
        status_error(self.url(path), response).await
    }

    /// Writes line protocol; done once the node has acknowledged it (204).
    pub async fn write(
        &self,
        target: WriteTarget<'_>,
        precision: Precision,
        lines: &[u8],
    ) -> Result<(), ClientError> {
        let (path, mut query) = match target {
            WriteTarget::V1 { db, rp } => {
                let mut q = vec![("db", db)];
                q.extend(rp.map(|rp| ("rp", rp)));
                ("/write", q)
            }
            WriteTarget::V2 { org, bucket } => {
                ("/api/v2/write", vec![("org", org), ("bucket", bucket)])
            }
        };
        // Nanoseconds is every version's default: left out, the request suits them all.
        if precision != Precision::Nanoseconds {
            let name = match target {
                WriteTarget::V1 { .. } => Some(precision_v1(precision)),
                WriteTarget::V2 { .. } => precision_v2(precision),
            };
            let name = name.ok_or_else(|| ClientError::Request {
                url: self.url(path),
                reason: format!("{path} has no precision {precision:?}"),
            })?;
            query.push(("precision", name));
        }
        let mut request = self
            .request(Method::POST, path)
            .query(&query)
            .header(CONTENT_TYPE, "text/plain; charset=utf-8");
        request = if self.gzip_writes {
            request.header(CONTENT_ENCODING, "gzip").body(gzip(lines))
        } else {
            request.body(lines.to_vec())
        };
        let response = self.send(path, request).await?;
        drain(response).await;
        Ok(())
    }

    /// Runs InfluxQL (form-encoded `POST /query`, as writes and reads alike may be). The
    /// answer holds each statement's result; [`QueryAnswer::first_error`] gives a failed
    /// one.
    pub async fn query(&self, db: Option<&str>, q: &str) -> Result<QueryAnswer, ClientError> {
        let body = self.query_body(db, q).await?;
        self.query_answer(&body)
    }

    /// [`Self::query`]'s answer as the server sent it, read to its last byte.
    pub async fn query_body(&self, db: Option<&str>, q: &str) -> Result<bytes::Bytes, ClientError> {
        let path = "/query";
        let mut form = vec![("q", q)];
        if let Some(db) = db {
            form.push(("db", db));
        }
        let response = self
            .send(path, self.request(Method::POST, path).form(&form))
            .await?;
        response
            .bytes()
            .await
            .map_err(|e| ClientError::transport(&self.url(path), e))
    }

    /// A body of [`Self::query_body`], read.
    pub fn query_answer(&self, body: &[u8]) -> Result<QueryAnswer, ClientError> {
        serde_json::from_slice(body).map_err(|e| ClientError::Answer {
            url: self.url("/query"),
            reason: format!("not a query answer ({e})"),
        })
    }

    /// [`Self::query`], with a failed statement as the error.
    pub async fn query_checked(
        &self,
        db: Option<&str>,
        q: &str,
    ) -> Result<QueryAnswer, ClientError> {
        let answer = self.query(db, q).await?;
        match answer.first_error(&self.url("/query")) {
            Some(e) => Err(e),
            None => Ok(answer),
        }
    }

    /// `GET /ping`: is the node up.
    pub async fn ping(&self) -> Result<Pong, ClientError> {
        let response = self
            .send("/ping", self.request(Method::GET, "/ping"))
            .await?;
        let version = response
            .headers()
            .get("X-Influxdb-Version")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        drain(response).await;
        Ok(Pong { version })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// Reads an answer to its end, so that its connection goes back to the pool.
async fn drain(mut response: Response) {
    while let Ok(Some(_)) = response.chunk().await {}
}

async fn status_error(url: String, response: Response) -> ClientError {
    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers());
    let header_message = response
        .headers()
        .get("X-Influxdb-Error")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = bounded_text(response).await;
    let message = match (body.trim().is_empty(), header_message) {
        (true, Some(m)) => m,
        _ => error::error_message(&body),
    };
    ClientError::Status {
        url,
        status,
        message,
        body,
        retry_after,
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, SystemTime::now())
}

/// Up to [`MAX_ERROR_BODY`] bytes of an answer as text; a body that breaks off is kept as
/// far as it came.
async fn bounded_text(mut response: Response) -> String {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_ERROR_BODY - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_ERROR_BODY {
            break;
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

/// Fast compression: line protocol shrinks nearly as much as at the default level, for a
/// fraction of the CPU, which the node writing the data needs more.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(data.len() / 4),
        flate2::Compression::fast(),
    );
    encoder
        .write_all(data)
        .and_then(|()| encoder.finish())
        .expect("gzip into memory cannot fail")
}

fn precision_v1(p: Precision) -> &'static str {
    match p {
        Precision::Nanoseconds => "n",
        Precision::Microseconds => "u",
        Precision::Milliseconds => "ms",
        Precision::Seconds => "s",
        Precision::Minutes => "m",
        Precision::Hours => "h",
    }
}

fn precision_v2(p: Precision) -> Option<&'static str> {
    Some(match p {
        Precision::Nanoseconds => "ns",
        Precision::Microseconds => "us",
        Precision::Milliseconds => "ms",
        Precision::Seconds => "s",
        Precision::Minutes | Precision::Hours => return None,
    })
}

/// Between half and all of `d`: the back-off before a request is sent again, so that
/// senders failing together do not retry together.
pub fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 4];
    let r = getrandom::fill(&mut b).map_or(u32::MAX, |()| u32::from_le_bytes(b));
    d.mul_f64(0.5 + 0.5 * (r as f64 / u32::MAX as f64))
}

/// Runs a blocking caller's requests (a command line, a bench) on a runtime of its own:
/// one thread is enough, and the client is async.
pub(crate) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime for the command")
        .block_on(future)
}
