//! `POST /write` (v1) and `POST /api/v2/write`: parse, hand to storage, answer as InfluxDB.

use super::error::ApiError;
use super::metrics::{Metrics, Rejected};
use super::Params;
use crate::auth::{AuthError, Principal};
use crate::catalog::Privilege;
use crate::line_protocol::{
    influx_batch_message, parse_body_with, FieldValue, ParseOptions, Point, Precision,
};
use crate::node::Node;
use crate::replication::inbound::{
    render_ranges, Admission, BatchHeader, Claim, InboundLedger, APPLIED_HEADER, BATCH_HEADER,
    OUTCOME_HEADER,
};
use crate::storage::{StorageError, WriteRequest};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use std::io::Read;
use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;

pub(super) fn routes(r: &mut super::Routes) {
    use actix_web::http::Method;
    r.add(Method::POST, "/write", write_v1)
        .add(Method::POST, "/api/v2/write", write_v2);
}

async fn write_v1(
    node: web::Data<Node>,
    params: Params,
    req: HttpRequest,
    body: web::Payload,
) -> HttpResponse {
    let result = async {
        let principal = super::auth::authenticate(&node, &req, &params).await?;
        let database = params
            .get("db")
            .filter(|d| !d.is_empty())
            .ok_or_else(|| ApiError::bad_request("database is required"))?;
        may_write(&node, principal.as_ref(), database).await?;
        let raw = params.get("precision").map_or("", String::as_str);
        let precision = Precision::parse_v1(raw)
            .ok_or_else(|| ApiError::bad_request(Precision::invalid_v1_message(raw)))?;
        let rp = params.get("rp").filter(|r| !r.is_empty()).cloned();
        write(&node, database.clone(), rp, precision, &req, body, None).await
    };
    match result.await {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e) => e.v1(),
    }
}

/// v2 writes name a bucket: a bucket created through the v2 API, or else `db/rp` or `db`
/// (InfluxDB 1.8's compatibility mapping).
async fn write_v2(
    node: web::Data<Node>,
    params: Params,
    req: HttpRequest,
    body: web::Payload,
) -> HttpResponse {
    let result = async {
        let principal = super::auth::authenticate(&node, &req, &params).await?;
        let bucket = params
            .get("bucket")
            .filter(|b| !b.is_empty())
            .ok_or_else(|| ApiError::bad_request("bucket is required"))?;
        let raw = params.get("precision").map_or("", String::as_str);
        let precision = Precision::parse_v2(raw)
            .ok_or_else(|| ApiError::bad_request(Precision::invalid_v2_message(raw)))?;
        let (db, rp) = node
            .control
            .read(|c| c.catalog.resolve_bucket(bucket))
            .await;
        may_write(&node, principal.as_ref(), &db).await?;
        // Only now, the caller allowed to make this write: a batch header may spare it.
        let claim = match admit_batch(&node, &req, principal.as_ref(), &db, rp.as_deref()).await? {
            None => None,
            Some(Admission::Apply(claim)) => Some(claim),
            Some(Admission::Duplicate) => {
                discard_body(&node, &req, body).await?;
                return Ok(Some(
                    HttpResponse::NoContent()
                        .insert_header((OUTCOME_HEADER, "duplicate"))
                        .finish(),
                ));
            }
            Some(Admission::Overlaps(ranges)) => {
                discard_body(&node, &req, body).await?;
                return Ok(Some(overlap_answer(&ranges)));
            }
        };
        write(&node, db, rp, precision, &req, body, claim).await?;
        Ok::<_, ApiError>(None)
    };
    match result.await {
        Ok(None) => HttpResponse::NoContent().finish(),
        Ok(Some(answer)) => answer,
        Err(e) => e.v2(),
    }
}

/// What to do with a write carrying a sender's batch header (400 if it is malformed); None
/// for a write without one.
async fn admit_batch(
    node: &Node,
    req: &HttpRequest,
    principal: Option<&Principal>,
    db: &str,
    rp: Option<&str>,
) -> Result<Option<Admission>, ApiError> {
    let Some(value) = req.headers().get(BATCH_HEADER) else {
        return Ok(None);
    };
    let batch = BatchHeader::parse(value.to_str().unwrap_or("")).map_err(ApiError::bad_request)?;
    let user = principal.map_or("", |p| p.user_id.as_str());
    let key = InboundLedger::key(user, db, rp.unwrap_or(""), &batch.origin);
    Ok(Some(node.inbound.admit(key, batch).await))
}

/// 409 for a batch overlapping batches applied before, naming them so that the sender
/// cuts it around them.
fn overlap_answer(ranges: &[(u64, u64)]) -> HttpResponse {
    let shown = render_ranges(ranges);
    let mut answer = ApiError::new(
        StatusCode::CONFLICT,
        format!("batch overlaps batches already applied ({shown}): send the rest apart"),
    )
    .v2();
    if let (Ok(name), Ok(v)) = (
        header::HeaderName::try_from(APPLIED_HEADER),
        header::HeaderValue::from_str(&shown),
    ) {
        answer.headers_mut().insert(name, v);
    }
    answer
}

/// Reads a body that is not written (a batch applied before), so that the connection
/// stays usable.
async fn discard_body(node: &Node, req: &HttpRequest, body: web::Payload) -> Result<(), ApiError> {
    read_body(
        &mut BodyBuffer::take(),
        req,
        body,
        node.config.max_body_bytes,
    )
    .await
}

/// A non-admin caller needs WRITE on the database; as InfluxDB, an unknown database is
/// answered first.
async fn may_write(
    node: &Node,
    principal: Option<&Principal>,
    database: &str,
) -> Result<(), ApiError> {
    let Some(p) = principal.filter(|p| !p.admin) else {
        return Ok(());
    };
    node.control
        .read(|c| {
            let c = &c.catalog;
            if !c.databases.contains_key(database) {
                return Err(StorageError::DatabaseNotFound(database.into()).into());
            }
            if !p.privilege(c, database).grants(Privilege::Write) {
                return Err(AuthError::WriteNotPermitted {
                    user: p.user.clone(),
                    database: database.into(),
                }
                .into());
            }
            Ok(())
        })
        .await
}

async fn write(
    node: &web::Data<Node>,
    database: String,
    retention_policy: Option<String>,
    precision: Precision,
    req: &HttpRequest,
    body_stream: web::Payload,
    batch: Option<Claim>,
) -> Result<(), ApiError> {
    let encoding = BodyEncoding::of(req)?;
    let mut body = BodyBuffer::take();
    read_body(&mut body, req, body_stream, node.config.max_body_bytes).await?;
    let job = WriteJob {
        metrics: req.app_data::<web::Data<Metrics>>().cloned(),
        node: node.clone().into_inner(),
        database,
        retention_policy,
        precision,
        encoding,
        batch,
    };
    // Inflating, parsing and storing a body is CPU work of unbounded length (a line of
    // 100,000 fields, a 25 MB body): beyond a small plain body it runs off the HTTP
    // workers, which go on answering /ping and other requests meanwhile. A bounded number
    // run at once, so that waiting writes hold their compressed bodies only.
    let slot = write_slots()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "node is stopping"))?;
    // A sender's batch goes to the pool, whose task runs to its end even if the sender
    // goes away: its marker is recorded once its points are durable, or not at all.
    if encoding == BodyEncoding::Plain && body.len() <= INLINE_WRITE_BYTES && job.batch.is_none() {
        // A small plain body parses in about half a millisecond: parsing it here saves
        // the two thread hand-offs of the pool below, each a wait for a core when queries
        // keep both busy.
        let _slot = slot;
        return job.store(&body).await;
    }
    let runtime = tokio::runtime::Handle::current();
    // The request's span (its id) goes with the work to the pool's thread.
    let span = tracing::Span::current();
    let (result, body) = actix_web::rt::task::spawn_blocking(move || {
        let _in_request = span.enter();
        let _slot = slot;
        let result = runtime.block_on(job.store(&body));
        // The buffer goes back to the worker's pool, not to this pool thread's.
        (result, body)
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "write task failed");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "write task failed")
    })?;
    drop(body);
    result
}

/// The largest plain body parsed on the HTTP worker that read it: about 1,000 lines,
/// half a millisecond of parsing, which is what a `/ping` behind it may wait.
const INLINE_WRITE_BYTES: usize = 64 << 10;

/// How a write body is encoded: InfluxDB accepts gzip and plain text (`identity`, or no
/// `Content-Encoding`). Anything else is refused rather than parsed as text, which would
/// store garbage or answer a misleading parse error.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BodyEncoding {
    Plain,
    Gzip,
}

impl BodyEncoding {
    fn of(req: &HttpRequest) -> Result<BodyEncoding, ApiError> {
        let Some(value) = req.headers().get(header::CONTENT_ENCODING) else {
            return Ok(BodyEncoding::Plain);
        };
        let name = value.to_str().unwrap_or("").trim();
        if name.eq_ignore_ascii_case("gzip") {
            Ok(BodyEncoding::Gzip)
        } else if name.is_empty() || name.eq_ignore_ascii_case("identity") {
            Ok(BodyEncoding::Plain)
        } else {
            let shown = String::from_utf8_lossy(value.as_bytes());
            Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "unsupported Content-Encoding {shown:?}: only gzip and identity are accepted"
                ),
            ))
        }
    }
}

/// Writes parsed and stored at once, per core: enough to keep the cores and the
/// data logs' group commits busy (a write waits for its fdatasync in its slot), few
/// enough that their memory (each at most `max_request_memory_mib`) stays bounded. Two
/// per core held 60 MiB more at peak in `bench ingest` and were no faster.
const WRITE_SLOTS_PER_CORE: usize = 1;

/// One set of slots per process, as the cores they share.
fn write_slots() -> Arc<Semaphore> {
    static SLOTS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    SLOTS
        .get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            Arc::new(Semaphore::new(cores * WRITE_SLOTS_PER_CORE))
        })
        .clone()
}

/// A write whose body has been read: what is left to do off the HTTP workers.
struct WriteJob {
    metrics: Option<web::Data<Metrics>>,
    node: Arc<Node>,
    database: String,
    retention_policy: Option<String>,
    precision: Precision,
    encoding: BodyEncoding,
    /// A sender's batch, recorded as applied once its points are durable.
    batch: Option<Claim>,
}

impl WriteJob {
    /// Inflates, parses and stores `body`, and counts the points stored and rejected.
    async fn store(mut self, body: &[u8]) -> Result<(), ApiError> {
        let metrics = self.metrics.take();
        let batch = self.batch.take();
        let mut counted = Counted::default();
        let mut result = self.parse_and_store(body, &mut counted).await;
        // Only a batch stored whole is marked: a partial write answers 400, and a resend
        // is answered as the first was.
        if let (Ok(()), Some(claim)) = (&result, batch) {
            if let Err(e) = claim.applied().await {
                result = Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("the batch was written but not recorded as applied: {e}"),
                ));
            }
        }
        if let Some(m) = metrics {
            m.points_written(counted.written);
            m.points_rejected(Rejected::Parse, counted.unparsed);
            match (&result, counted.dropped) {
                (Err(_), None) => m.points_rejected(Rejected::Refused, counted.parsed),
                (_, Some((why, n))) => m.points_rejected(why, n),
                (Ok(()), None) => {}
            }
        }
        result
    }

    async fn parse_and_store(self, body: &[u8], counted: &mut Counted) -> Result<(), ApiError> {
        let config = &self.node.config;
        let budget = match config.max_request_memory_mib {
            0 => usize::MAX,
            mib => usize::try_from(mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX),
        };
        // The compressed bytes are held until the end: they count against the budget.
        let inflated;
        let text: &[u8] = match self.encoding {
            BodyEncoding::Plain => body,
            BodyEncoding::Gzip => {
                inflated = gunzip(body, budget.saturating_sub(body.len()))?;
                &inflated
            }
        };
        let compressed = match self.encoding {
            BodyEncoding::Plain => 0,
            BodyEncoding::Gzip => body.len(),
        };
        let needed = write_memory_estimate(text).saturating_add(compressed);
        if needed > budget {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "Request Entity Too Large: writing this body needs about {} MiB, more than max_request_memory_mib ({})",
                    needed >> 20,
                    config.max_request_memory_mib
                ),
            ));
        }
        let now = crate::catalog::now_nanos();
        let options = ParseOptions {
            precision: self.precision,
            max_fields: no_limit_if_zero(config.max_fields_per_point),
            ..ParseOptions::default()
        };
        let (points, errors) = parse_body_with(text, &options);
        counted.parsed = points.len();
        counted.unparsed = errors.len();
        if points.is_empty() {
            return match errors.is_empty() {
                true => Ok(()), // empty body or only comments: InfluxDB answers 204
                false => Err(ApiError::bad_request(influx_batch_message(&errors))),
            };
        }
        if let Some(e) = crate::failpoint::io_check("http.write") {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("write failed: {e}"),
            ));
        }
        let outcome = self
            .node
            .storage
            .write(
                &self.node.control,
                WriteRequest {
                    database: self.database,
                    retention_policy: self.retention_policy,
                    points,
                    precision: self.precision,
                    now,
                    max_fields_per_measurement: no_limit_if_zero(config.max_fields_per_measurement),
                },
            )
            .await?;
        counted.written = outcome.written;
        if let Some(reason) = &outcome.reason {
            counted.dropped = Some((Rejected::of_partial_write(reason), outcome.dropped));
        }
        if let Some(reason) = outcome.reason {
            return Err(ApiError::bad_request(format!(
                "partial write: {reason} dropped={}",
                outcome.dropped
            )));
        }
        if !errors.is_empty() {
            return Err(ApiError::bad_request(format!(
                "partial write: {} dropped=0",
                influx_batch_message(&errors)
            )));
        }
        Ok(())
    }
}

/// What a write's parse and store came to, for `/metrics`.
#[derive(Default)]
struct Counted {
    parsed: usize,
    /// Lines that failed to parse.
    unparsed: usize,
    written: usize,
    /// Points storage dropped, under the kind of the first one's reason.
    dropped: Option<(Rejected, usize)>,
}

fn no_limit_if_zero(limit: usize) -> usize {
    match limit {
        0 => usize::MAX,
        n => n,
    }
}

/// Bytes a write of `body` holds at its peak beyond the body itself, judged before
/// parsing from its lines and `=` signs (a tag's count as a field's: an overestimate):
/// each line becomes a [`Point`] (plus its fields' allocation, shard-group entry and
/// insert order), each field a name and value in its point and then a time, version and
/// value in the head's columns (which grow by doubling); the data log's record is at
/// most another copy of the lines. Measured against VmHWM: 700,000 lines `t f=1 <time>`
/// (9 MB) held 194 MB, estimated 225 MB; 155,000 lines of 3 tags and 5 fields (24 MB)
/// held 155 MB, estimated 224 MB.
fn write_memory_estimate(body: &[u8]) -> usize {
    const POINT_BYTES: usize = std::mem::size_of::<Point<'static>>() + 64;
    const FIELD_BYTES: usize =
        std::mem::size_of::<(std::borrow::Cow<'static, str>, FieldValue)>() + 64;
    let lines = memchr::memchr_iter(b'\n', body).count() + 1;
    let equals = memchr::memchr_iter(b'=', body).count();
    body.len()
        .saturating_mul(2)
        .saturating_add(lines.saturating_mul(POINT_BYTES))
        .saturating_add(equals.saturating_mul(FIELD_BYTES))
}

/// Reads the request body into `body`, refused with 413 past `limit` bytes so that no
/// client can make the node buffer without bound. Room for a declared `Content-Length` is
/// made up front: growing a megabyte body by doubling copies it about twice over.
async fn read_body(
    body: &mut Vec<u8>,
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<(), ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if let Some(len) = declared {
        body.reserve(len.min(limit));
    }
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::bad_request(format!("unable to read request body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(())
}

/// A request body buffer, returned on drop to a small per-thread pool: write bodies are
/// megabytes, and a fresh allocation of that size costs page faults and zeroing each
/// time, more than parsing a tenth of it.
struct BodyBuffer(Vec<u8>);

/// Buffers kept per worker thread (about the requests a worker has in flight at once),
/// and the largest capacity kept, so that one huge body does not stay resident.
const POOLED_BODIES: usize = 4;
const POOLED_BODY_CAPACITY: usize = 16 << 20;

thread_local! {
    static BODY_POOL: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl BodyBuffer {
    fn take() -> BodyBuffer {
        BodyBuffer(BODY_POOL.with(|p| p.borrow_mut().pop()).unwrap_or_default())
    }
}

impl Drop for BodyBuffer {
    fn drop(&mut self) {
        let mut buf = std::mem::take(&mut self.0);
        if buf.capacity() > POOLED_BODY_CAPACITY {
            return;
        }
        buf.clear();
        BODY_POOL.with(|p| {
            let mut pool = p.borrow_mut();
            if pool.len() < POOLED_BODIES {
                pool.push(buf);
            }
        });
    }
}

impl std::ops::Deref for BodyBuffer {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl std::ops::DerefMut for BodyBuffer {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

fn too_large() -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large")
}

/// Inflates a gzip body, stopping with 413 as soon as it passes `limit` bytes: a bomb
/// costs at most `limit` bytes of memory and the time to inflate that much.
fn gunzip(body: &[u8], limit: usize) -> Result<InflatedBody, ApiError> {
    if !body.starts_with(&[0x1f, 0x8b]) {
        return Err(ApiError::bad_request("gzip: invalid header"));
    }
    let mut decoder = flate2::read::MultiGzDecoder::new(body);
    let mut out = InflatedBody::reserve(limit).map_err(|e| {
        tracing::error!(error = %e, bytes = limit, "cannot reserve address space for a gzip body");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "cannot reserve memory for the body",
        )
    })?;
    while out.len < limit {
        let n = decoder.read(&mut out.spare_mut()[..]).map_err(gzip_error)?;
        if n == 0 {
            return Ok(out);
        }
        out.len += n;
    }
    // Full: one more byte means the body is too large.
    let mut probe = [0u8; 1];
    match decoder.read(&mut probe).map_err(gzip_error)? {
        0 => Ok(out),
        _ => Err(too_large()),
    }
}

/// An inflated body in its own anonymous mapping of the largest size it may reach: pages
/// become memory only as they are filled, and all of it goes back to the system when the
/// request ends. From the allocator, a body-sized block would stay resident for its purge
/// delay (10 s, see `main.rs`) and the next one might not reuse it: two bombs in a row
/// held twice the budget.
struct InflatedBody {
    map: std::ptr::NonNull<u8>,
    capacity: usize,
    len: usize,
}

// SAFETY: the mapping is owned by this value alone, like a Vec's buffer.
unsafe impl Send for InflatedBody {}

impl InflatedBody {
    fn reserve(capacity: usize) -> std::io::Result<InflatedBody> {
        let capacity = capacity.max(1);
        // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                capacity,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let map = std::ptr::NonNull::new(map.cast::<u8>())
            .ok_or_else(|| std::io::Error::other("mmap returned null"))?;
        Ok(InflatedBody {
            map,
            capacity,
            len: 0,
        })
    }

    fn spare_mut(&mut self) -> &mut [u8] {
        // SAFETY: [len, capacity) lies in the mapping, which anonymous mmap initialises
        // to zeros, and `&mut self` makes this the only reference to it.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.map.as_ptr().add(self.len),
                self.capacity - self.len,
            )
        }
    }
}

impl std::ops::Deref for InflatedBody {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: [0, len) lies in the mapping and was written by the decoder.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr(), self.len) }
    }
}

impl Drop for InflatedBody {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `reserve`, unmapped once; no slice of it outlives
        // `self` (they borrow it).
        unsafe { libc::munmap(self.map.as_ptr().cast(), self.capacity) };
    }
}

fn gzip_error(e: std::io::Error) -> ApiError {
    let reason = match e.kind() {
        std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
            "invalid header".to_owned()
        }
        std::io::ErrorKind::UnexpectedEof => "unexpected EOF".to_owned(),
        _ => e.to_string(),
    };
    ApiError::bad_request(format!("gzip: {reason}"))
}
