//! `POST /write` (v1) and `POST /api/v2/write`: parse, hand to storage, answer as InfluxDB.

use super::error::ApiError;
use crate::auth::{AuthError, Principal};
use crate::catalog::Privilege;
use crate::line_protocol::{influx_batch_message, parse_body_with, ParseOptions, Precision};
use crate::node::Node;
use crate::storage::{StorageError, WriteRequest};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::io::Read;

pub(super) fn routes(r: &mut super::Routes) {
    use actix_web::http::Method;
    r.add(Method::POST, "/write", write_v1)
        .add(Method::POST, "/api/v2/write", write_v2);
}

type Params = web::Query<HashMap<String, String>>;

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
        write(&node, database.clone(), rp, precision, &req, body).await
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
        let (db, rp) = node.control.read(|c| c.resolve_bucket(bucket)).await;
        may_write(&node, principal.as_ref(), &db).await?;
        write(&node, db, rp, precision, &req, body).await
    };
    match result.await {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e) => e.v2(),
    }
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
    node: &Node,
    database: String,
    retention_policy: Option<String>,
    precision: Precision,
    req: &HttpRequest,
    body_stream: web::Payload,
) -> Result<(), ApiError> {
    let limit = node.config.max_body_bytes;
    let mut body = BodyBuffer::take();
    read_body(&mut body, req, body_stream, limit).await?;
    let gzip = req
        .headers()
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    if gzip {
        let plain = gunzip(&body, limit.saturating_mul(GZIP_EXPANSION_LIMIT))?;
        body.clear();
        body.extend_from_slice(&plain);
    }
    let now = crate::catalog::now_nanos();
    let options = ParseOptions {
        precision,
        ..ParseOptions::default()
    };
    let (points, errors) = parse_body_with(&body, &options);
    if points.is_empty() {
        return match errors.is_empty() {
            true => Ok(()), // empty body or only comments: InfluxDB answers 204
            false => Err(ApiError::bad_request(influx_batch_message(&errors))),
        };
    }
    let outcome = node
        .storage
        .write(
            &node.control,
            WriteRequest {
                database,
                retention_policy,
                points,
                precision,
                now,
            },
        )
        .await?;
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

/// How much larger than the largest accepted body a gzip body may expand to: enough for
/// line protocol (which compresses about 10:1), not enough for a gzip bomb to matter.
const GZIP_EXPANSION_LIMIT: usize = 16;

fn too_large() -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large")
}

fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, ApiError> {
    if !body.starts_with(&[0x1f, 0x8b]) {
        return Err(ApiError::bad_request("gzip: invalid header"));
    }
    let mut out = Vec::new();
    let mut decoder = flate2::read::MultiGzDecoder::new(body).take(limit as u64 + 1);
    decoder.read_to_end(&mut out).map_err(|e| {
        let reason = match e.kind() {
            std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
                "invalid header".to_owned()
            }
            std::io::ErrorKind::UnexpectedEof => "unexpected EOF".to_owned(),
            _ => e.to_string(),
        };
        ApiError::bad_request(format!("gzip: {reason}"))
    })?;
    if out.len() > limit {
        return Err(too_large());
    }
    Ok(out)
}
