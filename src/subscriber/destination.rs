//! One destination of a subscription: its bounded queue of batches, the task that sends
//! them (at most `write_concurrency` at once), and how a batch goes out: an HTTP(S) POST
//! of line protocol to `<url>/write` as 1.6's Go client sends it, or a UDP datagram per
//! point as 1.6's UDP writer sends them.

use super::batch::Batch;
use super::{Settings, SubscriberError};
use crate::catalog::{Destination, Scheme};
use crate::client::{ClientOptions, Credentials, InfluxClient, TlsOptions};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use tokio::sync::mpsc;

/// A destination's counters, since the subscription became active here.
#[derive(Debug, Default)]
pub(crate) struct DestinationFigures {
    pub points_written: AtomicU64,
    pub write_failures: AtomicU64,
    /// Batches not queued because the queue was full.
    pub dropped_batches: AtomicU64,
    /// Whether the last send failed (a change is logged once, not every failure).
    failing: AtomicBool,
}

impl DestinationFigures {
    /// Counts a send's outcome, logging when the destination starts or stops failing.
    pub(crate) fn sent(&self, url: &str, points: usize, outcome: &Result<(), SubscriberError>) {
        match outcome {
            Ok(()) => {
                self.points_written.fetch_add(points as u64, Relaxed);
                if self.failing.swap(false, Relaxed) {
                    tracing::info!(destination = url, "subscription destination answers again");
                }
            }
            Err(e) => {
                self.write_failures.fetch_add(1, Relaxed);
                if !self.failing.swap(true, Relaxed) {
                    tracing::warn!(destination = url, error = %e, "subscription destination failed: its batches are counted as failures until it answers");
                }
            }
        }
    }
}

/// A batch on its way to one destination.
pub(crate) struct Job {
    pub batch: Arc<Batch>,
    /// The subscription's delivery of this batch (one per batch and subscription).
    pub delivery: Arc<super::Delivery>,
    /// Destinations tried for it so far (ANY passes a failed batch to the next one).
    pub tried: usize,
}

/// A destination's end of its queue.
pub(crate) struct Queue {
    pub url: String,
    pub target: Destination,
    tx: mpsc::Sender<Job>,
    pub figures: DestinationFigures,
}

impl Queue {
    /// A destination's queue of `capacity` batches and the receiving end its task reads.
    pub(crate) fn new(
        url: String,
        target: Destination,
        capacity: usize,
    ) -> (Queue, mpsc::Receiver<Job>) {
        let (tx, rx) = mpsc::channel(capacity);
        let queue = Queue {
            url,
            target,
            tx,
            figures: DestinationFigures::default(),
        };
        (queue, rx)
    }

    /// Queues `job`, or gives it back when the queue is full (or its task is gone).
    pub(crate) fn offer(&self, job: Job) -> Result<(), Job> {
        self.tx.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(job) | mpsc::error::TrySendError::Closed(job) => job,
        })
    }

    /// Batches waiting in the queue.
    pub(crate) fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

/// How batches reach a destination.
pub(crate) enum Sender {
    Http {
        client: InfluxClient,
        /// `/write?consistency=&db=..&precision=ns&rp=..` (the destination's own path and
        /// query parameters merged in, as Go's client merges them).
        target: String,
    },
    Udp {
        host: String,
    },
}

impl Sender {
    /// The sender of `destination` for the writes to `database`.`policy`.
    pub(crate) fn new(
        destination: &Destination,
        database: &str,
        policy: &str,
        settings: &Settings,
    ) -> Result<Sender, SubscriberError> {
        if destination.scheme == Scheme::Udp {
            return Ok(Sender::Udp {
                host: destination.host.clone(),
            });
        }
        let scheme = match destination.scheme {
            Scheme::Https => "https",
            _ => "http",
        };
        let credentials = match &destination.user {
            Some((user, password)) => Credentials::Basic {
                user: user.clone(),
                password: password.clone(),
            },
            None => Credentials::None,
        };
        let timeout = settings.http_timeout;
        let options = ClientOptions {
            credentials,
            connect_timeout: timeout.min(crate::client::DEFAULT_CONNECT_TIMEOUT),
            read_timeout: timeout,
            request_timeout: Some(timeout),
            gzip_writes: false,
            max_idle_per_host: Some(settings.write_concurrency),
            tls: TlsOptions {
                ca_certificate_pem: settings.ca_certs.clone(),
                insecure: settings.insecure_skip_verify,
            },
        };
        let base = format!("{scheme}://{}", destination.host);
        let client = InfluxClient::new(&base, options).map_err(SubscriberError::Client)?;
        Ok(Sender::Http {
            client,
            target: write_target(destination, database, policy),
        })
    }

    pub(crate) async fn send(&self, batch: &Batch) -> Result<(), SubscriberError> {
        match self {
            Sender::Http { client, target } => {
                use reqwest::header::{CONTENT_TYPE, USER_AGENT};
                let request = client
                    .request(reqwest::Method::POST, target)
                    .header(USER_AGENT, "InfluxDBClient")
                    .header(CONTENT_TYPE, "")
                    .body(batch.body.clone());
                let response = client
                    .send_any(target, request)
                    .await
                    .map_err(SubscriberError::Client)?;
                let status = response.status().as_u16();
                // Read to its end either way, so that the connection is used again.
                let body = response.bytes().await.unwrap_or_default();
                match status {
                    200 | 204 => Ok(()),
                    _ => Err(SubscriberError::Refused {
                        status,
                        message: String::from_utf8_lossy(&body).trim_end().to_owned(),
                    }),
                }
            }
            Sender::Udp { host } => {
                let udp = |e| SubscriberError::Udp {
                    host: host.clone(),
                    source: e,
                };
                let addr = tokio::net::lookup_host(host.as_str())
                    .await
                    .map_err(udp)?
                    .next()
                    .ok_or_else(|| {
                        udp(std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            "no address",
                        ))
                    })?;
                let local: std::net::SocketAddr = match addr {
                    std::net::SocketAddr::V4(_) => ([0, 0, 0, 0], 0).into(),
                    std::net::SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
                };
                let socket = tokio::net::UdpSocket::bind(local).await.map_err(udp)?;
                socket.connect(addr).await.map_err(udp)?;
                for line in batch.lines() {
                    socket.send(line).await.map_err(udp)?;
                }
                Ok(())
            }
        }
    }
}

/// Go's client: the destination's path joined with `write` (cleaned, as `path.Join`
/// cleans it) and escaped again, and its query parameters with `db`, `rp`, `precision`
/// (`ns`, its batches' default) and `consistency` set, sorted by key
/// (`url.Values.Encode`).
pub(crate) fn write_target(destination: &Destination, database: &str, policy: &str) -> String {
    let path = clean_path(&format!("{}/write", destination.path));
    let mut params: Vec<(String, String)> =
        form_urlencoded::parse(destination.raw_query.as_bytes())
            .into_owned()
            .filter(|(k, _)| !matches!(k.as_str(), "db" | "rp" | "precision" | "consistency"))
            .collect();
    params.push(("consistency".into(), String::new()));
    params.push(("db".into(), database.into()));
    params.push(("precision".into(), "ns".into()));
    params.push(("rp".into(), policy.into()));
    params.sort_by(|a, b| a.0.cmp(&b.0));
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
        .collect();
    format!("{}?{}", escape_path(&path), query.join("&"))
}

/// Go's `path.Clean` of an absolute path.
fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go's escaping of a URL's path (`shouldEscape` in path mode).
fn escape_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'a'..=b'z'
            | b'A'..=b'Z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'$'
            | b'&'
            | b'+'
            | b','
            | b'/'
            | b':'
            | b';'
            | b'='
            | b'@' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str, db: &str, rp: &str) -> String {
        write_target(&Destination::parse(url).unwrap(), db, rp)
    }

    #[test]
    fn the_write_url_is_the_one_gos_client_builds() {
        assert_eq!(
            target("http://k:9092", "telegraf", "autogen"),
            "/write?consistency=&db=telegraf&precision=ns&rp=autogen"
        );
        assert_eq!(
            target("http://k:9092/", "my db", "a&b"),
            "/write?consistency=&db=my+db&precision=ns&rp=a%26b"
        );
        assert_eq!(
            target(
                "http://k:9092/kapacitor/./v1/../v2?u=me&db=x&a=%7E",
                "d",
                "r"
            ),
            "/kapacitor/v2/write?a=~&consistency=&db=d&precision=ns&rp=r&u=me"
        );
        assert_eq!(
            target("http://k:9092/a%20b", "d", "r"),
            "/a%20b/write?consistency=&db=d&precision=ns&rp=r"
        );
    }
}
