//! What every route gets before and after its handler: request bodies that stall or crawl
//! are cut off (408, connection closed), and errors actix itself answers (a body over an
//! extractor's limit, a query string that does not parse) take the endpoint's JSON shape.

use super::error::ApiError;
use crate::node::Node;
use actix_web::body::BoxBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{ConnectionType, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage};
use bytes::Bytes;
use futures_util::Stream;
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// Why a request body was cut off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BodyTimeout {
    #[error("request body timed out: no data for {0} s")]
    Idle(u64),
    #[error("request body timed out: not complete after {0} s")]
    Total(u64),
}

/// The middleware (`middleware::from_fn`): wraps the request's payload in a
/// [`TimedPayload`], and after the handler replaces its answer when the body timed out or
/// when actix answered an error in its own plain-text words.
pub(crate) async fn guard_request(
    mut req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let (idle, total) = req.app_data::<web::Data<Node>>().map_or((0, 0), |node| {
        (
            node.config.body_timeout_seconds,
            node.config.body_total_timeout_seconds,
        )
    });
    // Restores stream archives of whole shards to disk (no memory is held for them): they
    // may take as long as they keep moving.
    let total = match req.path().starts_with("/api/v2/restore/") {
        true => 0,
        false => total,
    };
    let timed_out = Rc::new(Cell::new(None));
    if idle > 0 || total > 0 {
        let inner = req.take_payload();
        let timed = TimedPayload::new(inner, idle, total, timed_out.clone());
        req.set_payload(Payload::Stream {
            payload: Box::pin(timed),
        });
    }
    let path = req.path().to_owned();
    let res = next.call(req).await?;
    if let Some(reason) = timed_out.get() {
        // The client may still be sending: the answer is its last on this connection.
        let mut answer = ApiError::new(StatusCode::REQUEST_TIMEOUT, reason.to_string())
            .for_path(&path)
            .map_into_boxed_body();
        answer.head_mut().set_connection_type(ConnectionType::Close);
        return Ok(res.into_response(answer));
    }
    if let Some(message) = actix_error_message(&res) {
        let answer = ApiError::new(res.status(), message)
            .for_path(&path)
            .map_into_boxed_body();
        return Ok(res.into_response(answer));
    }
    Ok(res)
}

/// The message of an error actix answered itself (an extractor's), unless that answer is
/// already JSON: handlers render their own errors in the endpoint's shape.
fn actix_error_message(res: &ServiceResponse<BoxBody>) -> Option<String> {
    let error = res.response().error()?;
    let json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    (!json && res.status().is_client_error()).then(|| error.to_string())
}

/// A request body that fails once no byte has arrived for `idle` seconds, or the whole
/// body has taken longer than `total` seconds (0: no bound), both counted from the
/// handler's first read: a handler that reads nothing never waits on the client.
struct TimedPayload {
    inner: Payload,
    idle: Option<Duration>,
    total: Option<Duration>,
    idle_timer: Option<Pin<Box<Sleep>>>,
    total_timer: Option<Pin<Box<Sleep>>>,
    timed_out: Rc<Cell<Option<BodyTimeout>>>,
    idle_seconds: u64,
    total_seconds: u64,
}

impl TimedPayload {
    fn new(
        inner: Payload,
        idle_seconds: u64,
        total_seconds: u64,
        timed_out: Rc<Cell<Option<BodyTimeout>>>,
    ) -> TimedPayload {
        let bound = |s: u64| (s > 0).then(|| Duration::from_secs(s));
        TimedPayload {
            inner,
            idle: bound(idle_seconds),
            total: bound(total_seconds),
            idle_timer: None,
            total_timer: None,
            timed_out,
            idle_seconds,
            total_seconds,
        }
    }

    fn fail(&mut self, reason: BodyTimeout) -> Poll<Option<Result<Bytes, PayloadError>>> {
        self.timed_out.set(Some(reason));
        let error = std::io::Error::new(std::io::ErrorKind::TimedOut, reason.to_string());
        Poll::Ready(Some(Err(PayloadError::Io(error))))
    }
}

impl Stream for TimedPayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.timed_out.get().is_some() {
            return Poll::Ready(None);
        }
        let now = Instant::now();
        if let (None, Some(total)) = (&this.total_timer, this.total) {
            this.total_timer = Some(Box::pin(tokio::time::sleep_until(now + total)));
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                // Progress: the idle bound starts again at the next read.
                this.idle_timer = None;
                return Poll::Ready(Some(Ok(chunk)));
            }
            Poll::Ready(end_or_error) => return Poll::Ready(end_or_error),
            Poll::Pending => {}
        }
        if let Some(timer) = this.total_timer.as_mut() {
            if timer.as_mut().poll(cx).is_ready() {
                return this.fail(BodyTimeout::Total(this.total_seconds));
            }
        }
        if let Some(idle) = this.idle {
            let timer = this
                .idle_timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(now + idle)));
            if timer.as_mut().poll(cx).is_ready() {
                return this.fail(BodyTimeout::Idle(this.idle_seconds));
            }
        }
        Poll::Pending
    }
}

/// The methods served at `path`, if it is a known path (for the `Allow` header of a 405),
/// from the table the server registers its routes from ([`super::route_table`]).
pub(crate) fn allowed_methods(path: &str) -> Option<&'static str> {
    static ALLOWED: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();
    let allowed = ALLOWED.get_or_init(|| {
        let mut by_path: Vec<(String, String)> = Vec::new();
        for (method, pattern) in super::route_table() {
            match by_path.iter_mut().find(|(p, _)| *p == pattern) {
                Some((_, methods)) => *methods = format!("{methods}, {method}"),
                None => by_path.push((pattern, method)),
            }
        }
        by_path
    });
    allowed
        .iter()
        .find(|(pattern, _)| path_matches(pattern, path))
        .map(|(_, methods)| methods.as_str())
}

fn path_matches(pattern: &str, path: &str) -> bool {
    let mut want = pattern.split('/');
    let mut got = path.split('/');
    loop {
        match (want.next(), got.next()) {
            (None, None) => return true,
            (Some(w), Some(g)) if w.starts_with('{') => {
                if g.is_empty() {
                    return false;
                }
            }
            (Some(w), Some(g)) if w == g => {}
            _ => return false,
        }
    }
}

/// The answer to a request no route took: 405 with `Allow` for a known path, else
/// InfluxDB's plain-text 404 (Go's).
pub(crate) async fn no_route(req: actix_web::HttpRequest) -> actix_web::HttpResponse {
    let path = req.path();
    let Some(methods) = allowed_methods(path) else {
        return actix_web::HttpResponse::build(StatusCode::NOT_FOUND)
            .content_type("text/plain; charset=utf-8")
            .body("404 page not found\n");
    };
    let message = format!(
        "method {} not allowed on {path} (allowed: {methods})",
        req.method()
    );
    let mut answer = ApiError::new(StatusCode::METHOD_NOT_ALLOWED, message).for_path(path);
    answer
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(methods));
    answer
}

/// Largest `POST /query` form body, in bytes: Go's `ParseForm` bound, which InfluxDB
/// inherits (actix's default of 16 KiB is too small for long queries).
pub(crate) const MAX_QUERY_FORM_BYTES: usize = 10 << 20;

/// The `POST /query` form, if the request has one: `None` when the body is not a form
/// (as for a GET), an error (413 past [`MAX_QUERY_FORM_BYTES`], 400 for a bad encoding,
/// 408 for a stalled body) rather than `None` when it is one that could not be read.
pub(crate) struct QueryForm(pub(crate) Option<std::collections::HashMap<String, String>>);

impl FromRequest for QueryForm {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<QueryForm, actix_web::Error>>>>;

    fn from_request(req: &actix_web::HttpRequest, payload: &mut Payload) -> Self::Future {
        let form =
            web::Form::<std::collections::HashMap<String, String>>::from_request(req, payload);
        Box::pin(async move {
            match form.await {
                Ok(form) => Ok(QueryForm(Some(form.into_inner()))),
                Err(e) => match e.as_error::<actix_web::error::UrlencodedError>() {
                    Some(actix_web::error::UrlencodedError::ContentType) => Ok(QueryForm(None)),
                    _ => Err(e),
                },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_paths_match_their_patterns_and_nothing_else() {
        assert_eq!(allowed_methods("/query"), Some("GET, POST"));
        assert_eq!(allowed_methods("/api/v2/backup/shards/42"), Some("GET"));
        assert_eq!(allowed_methods("/api/v2/backup/shards/"), None);
        assert_eq!(allowed_methods("/api/v2/backup/shards/42/x"), None);
        assert_eq!(allowed_methods("/query/x"), None);
        assert_eq!(allowed_methods("/nope"), None);
    }
}
