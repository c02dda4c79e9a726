//! `GET|POST /query`: InfluxQL in, InfluxDB 1.x JSON out.

use super::error::{query_failure, ApiError};
use crate::auth::AuthError;
use crate::node::Node;
use crate::query::parser::{ast::Statement, parse_query};
use crate::query::result::{chunks, QueryResponse};
use crate::query::{epoch_unit, execute, Interrupt, QueryError, QueryLimits, QueryOptions};
use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use std::collections::HashMap;

const DEFAULT_CHUNK_SIZE: usize = 10_000;

pub(super) fn routes(r: &mut super::Routes) {
    use actix_web::http::Method;
    r.add(Method::GET, "/query", query)
        .add(Method::POST, "/query", query);
}

async fn query(
    node: web::Data<Node>,
    metrics: web::Data<super::metrics::Metrics>,
    req: HttpRequest,
    params: web::Query<HashMap<String, String>>,
    form: super::guard::QueryForm,
) -> HttpResponse {
    let started = std::time::Instant::now();
    let mut kind = "other";
    let answer = answer_query(&node, &req, &params, form, &mut kind).await;
    metrics.query(kind, started.elapsed());
    answer
}

async fn answer_query(
    node: &web::Data<Node>,
    req: &HttpRequest,
    params: &web::Query<HashMap<String, String>>,
    form: super::guard::QueryForm,
    kind: &mut &'static str,
) -> HttpResponse {
    // Form values win over the URL's, as in InfluxDB.
    let get = |k: &str| {
        form.0
            .as_ref()
            .and_then(|f| f.get(k))
            .or_else(|| params.get(k))
            .cloned()
    };
    let Some(q) = get("q").filter(|q| !q.trim().is_empty()) else {
        return ApiError::bad_request("missing required parameter \"q\"").v1();
    };
    *kind = super::metrics::query_kind(&q);
    let epoch = match get("epoch").filter(|e| !e.is_empty()) {
        None => None,
        Some(e) => match epoch_unit(&e) {
            Some(unit) => Some(unit),
            None => return ApiError::bad_request(format!("invalid epoch: {e}")).v1(),
        },
    };
    let bound = match get("params").filter(|p| !p.is_empty()) {
        None => Default::default(),
        Some(text) => match crate::query::params::from_json(&text) {
            Ok(bound) => bound,
            Err(e) => return ApiError::bad_request(e.to_string()).v1(),
        },
    };
    let principal = match super::auth::authenticate(node, req, params).await {
        Ok(p) => p,
        // With no admin yet, the one thing anyone may do is create the first admin.
        Err(AuthError::NoAdminYet) if creates_admin(&q) => None,
        Err(e) => return ApiError::from(e).v1(),
    };
    // InfluxDB picks CSV on these exact Accept values; its times are integers (ns unless
    // `epoch=` says otherwise).
    let csv = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .is_some_and(|a| a == "application/csv" || a == "text/csv");
    let format = Format {
        csv,
        pretty: get("pretty").is_some_and(|p| p == "true"),
        // As InfluxDB: a missing, unreadable or non-positive size means 10000.
        chunk_size: get("chunked").is_some_and(|c| c == "true").then(|| {
            get("chunk_size")
                .and_then(|s| s.parse::<i64>().ok())
                .filter(|&n| n > 0)
                .map_or(DEFAULT_CHUNK_SIZE, |n| n as usize)
        }),
    };
    let limits = QueryLimits::starting_now(&node.config, node.queries.stopping());
    let deadline = limits.deadline;
    // A client that goes away drops this handler: its query stops at its next check.
    let _stop_if_abandoned = InterruptOnDrop(limits.interrupt());
    let pool = &node.queries;
    let inline = pool.inline_budget();
    let mut options = QueryOptions {
        database: get("db"),
        retention_policy: get("rp").filter(|rp| !rp.is_empty()),
        epoch: epoch.or(csv.then_some(1)),
        principal,
        params: bound,
        limits: match inline {
            Some(budget) => limits.inline_attempt(budget),
            None => limits.clone(),
        },
        read_only: req.method() == actix_web::http::Method::GET,
    };
    if inline.is_some() {
        let began = std::time::Instant::now();
        match answer(node, &q, &options, format).await {
            Err(Failure {
                error: QueryError::OverBudget,
                ..
            }) => pool.inline_wasted(began),
            outcome => return respond(outcome),
        }
        options.limits = limits;
    }
    let shared = node.clone().into_inner();
    let job = pool
        // The request's span (its id) goes with the query to the pool's thread.
        .spawn(tracing::Instrument::in_current_span(async move {
            answer(&shared, &q, &options, format).await
        }));
    let finished = async {
        match deadline {
            // The query stops itself at its deadline; should some step not look in time,
            // the client is answered anyway (the interruption then stops that step).
            Some(deadline) => {
                let last_word = tokio::time::Instant::from_std(deadline) + DEADLINE_BACKSTOP;
                tokio::time::timeout_at(last_word, job).await.ok()
            }
            None => Some(job.await),
        }
    };
    let outcome = tokio::select! {
        finished = finished => match finished {
            Some(outcome) => outcome,
            None => return query_failure(QueryError::Timeout, csv),
        },
        // Returning drops the interruption guard: the query stops.
        () = client_gone(req) => {
            return ApiError::bad_request("the client closed the connection").v1();
        }
    };
    match outcome {
        Ok(outcome) => respond(outcome),
        Err(e) => {
            tracing::error!(error = %e, "query task failed");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "query failed").v1()
        }
    }
}

/// The answer to a query that ran.
fn respond(outcome: Result<(&'static str, Vec<u8>), Failure>) -> HttpResponse {
    match outcome {
        Ok((content_type, body)) => HttpResponse::Ok().content_type(content_type).body(body),
        Err(failure) => query_failure(failure.error, failure.csv),
    }
}

/// How often a handler waiting for its query looks whether the client is still there.
const CLIENT_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);

/// A duplicate of a connection's socket, for a handler to see that its client hung up:
/// actix neither reads a connection nor drops its handler while the handler runs.
pub(super) struct PeerSocket(std::os::fd::OwnedFd);

/// Keeps each plain TCP connection's [`PeerSocket`] in its connection data.
pub(super) fn remember_peer(
    stream: &actix_web::rt::net::TcpStream,
    data: &mut actix_web::dev::Extensions,
) {
    use std::os::fd::AsFd;
    if let Ok(fd) = stream.as_fd().try_clone_to_owned() {
        data.insert(PeerSocket(fd));
    }
}

impl PeerSocket {
    /// Whether the client closed its end (or the connection broke). Bytes waiting (a
    /// pipelined request) mean it is still there; they are left for actix to read.
    fn hung_up(&self) -> bool {
        use std::os::fd::AsRawFd;
        let mut byte = 0u8;
        // SAFETY: reads at most one byte into `byte`, from a descriptor this value owns.
        let n = unsafe {
            libc::recv(
                self.0.as_raw_fd(),
                (&mut byte as *mut u8).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        match n {
            0 => true,
            n if n > 0 => false,
            _ => !matches!(
                std::io::Error::last_os_error().kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
            ),
        }
    }
}

/// Answers once the request's client has gone away (never, when that cannot be seen).
async fn client_gone(req: &HttpRequest) {
    let Some(peer) = req.conn_data::<PeerSocket>() else {
        return std::future::pending().await;
    };
    loop {
        tokio::time::sleep(CLIENT_CHECK_INTERVAL).await;
        if peer.hung_up() {
            return;
        }
    }
}

/// How long past its deadline a query may take to notice it before its client is answered
/// without it.
const DEADLINE_BACKSTOP: std::time::Duration = std::time::Duration::from_secs(1);

/// How an answer is rendered.
#[derive(Clone, Copy)]
struct Format {
    csv: bool,
    pretty: bool,
    /// `chunked=true`: statements' series in chunks of this many rows.
    chunk_size: Option<usize>,
}

struct InterruptOnDrop(Interrupt);

impl Drop for InterruptOnDrop {
    fn drop(&mut self) {
        self.0.raise();
    }
}

/// A query answered with an error, and whether the error is said in CSV.
struct Failure {
    error: QueryError,
    csv: bool,
}

/// Runs the query and renders its answer, on a query thread: rendering a large answer is
/// work too, and counts against the query's memory budget and deadline.
async fn answer(
    node: &Node,
    q: &str,
    options: &QueryOptions,
    format: Format,
) -> Result<(&'static str, Vec<u8>), Failure> {
    let results = execute(node, q, options).await.map_err(|error| Failure {
        error,
        csv: format.csv,
    })?;
    let limits = &options.limits;
    let mut out = Rendered::new(limits);
    let rendered = if format.csv {
        let text = crate::query::csv::render(&results);
        drop(results);
        limits.charge(text.len()).map(|()| text.into_bytes())
    } else {
        let written = match format.chunk_size {
            Some(size) => chunks(results, size)
                .iter()
                .try_for_each(|c| render(c, format.pretty, &mut out)),
            None if !format.pretty => {
                let response = QueryResponse { results };
                let budget = &mut out.budget;
                let written = crate::query::json::write_response(&response, &mut out.bytes, |b| {
                    budget.account(b, b.capacity())
                });
                finish(written.map_err(serde_json::Error::io), &mut out)
            }
            None => render(&QueryResponse { results }, format.pretty, &mut out),
        };
        written.map(|()| out.bytes)
    };
    match rendered {
        Ok(body) if format.csv => Ok(("text/csv", body)),
        Ok(body) => Ok(("application/json", body)),
        // Said in JSON even to a CSV client: a CSV answer would leave the error out, and
        // an empty answer would read as no data.
        Err(error) => Err(Failure { error, csv: false }),
    }
}

/// A rendered answer, charged to the query's memory budget as its buffer grows and
/// stopped at the query's deadline.
struct Rendered<'a> {
    bytes: Vec<u8>,
    budget: RenderBudget<'a>,
}

/// What a rendered answer has been charged, and why it stopped if it did.
struct RenderBudget<'a> {
    limits: &'a QueryLimits,
    charged: usize,
    checked: usize,
    failure: Option<QueryError>,
}

/// How much is rendered between two looks at the query's deadline.
const RENDER_CHECK_BYTES: usize = 1 << 20;

impl<'a> Rendered<'a> {
    fn new(limits: &'a QueryLimits) -> Self {
        Rendered {
            bytes: Vec::new(),
            budget: RenderBudget {
                limits,
                charged: 0,
                checked: 0,
                failure: None,
            },
        }
    }
}

impl RenderBudget<'_> {
    /// Charges what the buffer grew by and looks at the deadline, every
    /// [`RENDER_CHECK_BYTES`] rendered: one comparison otherwise.
    #[inline]
    fn account(&mut self, bytes: &[u8], capacity: usize) -> std::io::Result<()> {
        if bytes.len() - self.checked < RENDER_CHECK_BYTES {
            return Ok(());
        }
        self.look(bytes.len(), capacity)
    }

    #[cold]
    fn look(&mut self, len: usize, capacity: usize) -> std::io::Result<()> {
        self.checked = len;
        let outcome = self
            .limits
            .charge(capacity - self.charged)
            .and_then(|()| self.limits.check_deadline());
        self.charged = capacity;
        outcome.map_err(|e| {
            self.failure = Some(e);
            std::io::Error::other("query stopped while rendering")
        })
    }
}

impl std::io::Write for Rendered<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf).map(|()| buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.bytes.extend_from_slice(buf);
        self.budget.account(&self.bytes, self.bytes.capacity())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Appends one JSON document and its newline; `pretty` indents by four spaces, as
/// InfluxDB does.
fn render<T: serde::Serialize>(
    value: &T,
    pretty: bool,
    out: &mut Rendered<'_>,
) -> Result<(), QueryError> {
    let written = crate::query::json::write(value, pretty, &mut *out);
    finish(written, out)
}

/// Ends a document written into `out` with its newline, or says why it could not be.
fn finish(written: serde_json::Result<()>, out: &mut Rendered<'_>) -> Result<(), QueryError> {
    match written {
        Ok(()) => {
            out.bytes.push(b'\n');
            Ok(())
        }
        Err(e) => Err(out.budget.failure.take().unwrap_or(QueryError::Render(e))),
    }
}

fn creates_admin(q: &str) -> bool {
    matches!(
        parse_query(q).as_deref(),
        Ok([Statement::CreateUser { admin: true, .. }])
    )
}
