//! The one place errors become HTTP answers: InfluxDB's status codes and JSON shapes.

use crate::log::LogError;
use crate::projection::ProjectionError;
use crate::query::result::{QueryResponse, StatementResult};
use crate::query::QueryError;
use crate::storage::StorageError;
use actix_web::http::StatusCode;
use actix_web::HttpResponse;

/// An error answer in the v1 shape: `{"error":"..."}` plus `X-Influxdb-Error`.
#[derive(Debug)]
pub(super) struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Sent as `Retry-After` (429 and 503 answers that know when to come back).
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    pub(super) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub(super) fn v1(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after_secs {
            r.insert_header(("Retry-After", secs.to_string()));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            r.insert_header(("Www-Authenticate", "Basic realm=\"InfluxDB\""));
        }
        if self.status != StatusCode::UNAUTHORIZED {
            r.insert_header(("X-Influxdb-Error", header_quote(&self.message)));
        }
        // Written as 1.x's Go encoder writes it: `<` as `\u003c`, and a closing newline.
        let mut body =
            crate::query::json::to_vec(&serde_json::json!({ "error": body_quote(&self.message) }));
        body.push(b'\n');
        r.content_type("application/json").body(body)
    }

    /// The v2 shape: `{"code":"...","message":"..."}`.
    pub(super) fn v2(&self) -> HttpResponse {
        let code = match self.status {
            StatusCode::BAD_REQUEST => "invalid",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not found",
            StatusCode::METHOD_NOT_ALLOWED => "method not allowed",
            StatusCode::REQUEST_TIMEOUT => "request timeout",
            StatusCode::PAYLOAD_TOO_LARGE => "request too large",
            StatusCode::URI_TOO_LONG => "request too large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported media type",
            StatusCode::UNPROCESSABLE_ENTITY => "conflict",
            StatusCode::CONFLICT => "conflict",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            StatusCode::TOO_MANY_REQUESTS => "too many requests",
            StatusCode::NOT_IMPLEMENTED => "not implemented",
            s if s.is_client_error() => "invalid",
            _ => "internal error",
        };
        let mut r = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after_secs {
            r.insert_header(("Retry-After", secs.to_string()));
        }
        r.json(serde_json::json!({ "code": code, "message": body_quote(&self.message) }))
    }

    /// The shape the endpoint at `path` answers in: v2 under `/api/v2/`, v1 elsewhere.
    pub(crate) fn for_path(&self, path: &str) -> HttpResponse {
        match path.starts_with("/api/v2/") {
            true => self.v2(),
            false => self.v1(),
        }
    }
}

/// Most bytes of a message `X-Influxdb-Error` carries, as InfluxDB 1.x (which cuts there
/// without a marker). Common clients refuse header lines of a megabyte.
const MAX_ERROR_HEADER_BYTES: usize = 1024;

/// Most bytes of a message an error body carries: messages may quote what a client sent.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// Marks a message cut short.
const TRUNCATED: &str = "...";

/// The message as a header value: visible ASCII only (the message may quote any bytes a
/// client sent), at most [`MAX_ERROR_HEADER_BYTES`].
fn header_quote(message: &str) -> String {
    let chars = message.chars().count();
    let kept = match chars <= MAX_ERROR_HEADER_BYTES {
        true => chars,
        false => MAX_ERROR_HEADER_BYTES - TRUNCATED.len(),
    };
    let mut visible: String = message
        .chars()
        .take(kept)
        .map(|c| match c.is_ascii_graphic() || c == ' ' {
            true => c,
            false => '?',
        })
        .collect();
    if kept < chars {
        visible.push_str(TRUNCATED);
    }
    visible
}

/// The message for an error body, at most [`MAX_ERROR_BODY_BYTES`].
fn body_quote(message: &str) -> std::borrow::Cow<'_, str> {
    if message.len() <= MAX_ERROR_BODY_BYTES {
        return message.into();
    }
    let kept =
        crate::line_protocol::truncate_at_char(message, MAX_ERROR_BODY_BYTES - TRUNCATED.len());
    format!("{kept}{TRUNCATED}").into()
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        let status = match &e {
            StorageError::DatabaseNotFound(_) => StatusCode::NOT_FOUND,
            // InfluxDB 1.6 answers 500 here; an unknown policy is the client's mistake.
            StorageError::RetentionPolicyNotFound(_) => StatusCode::NOT_FOUND,
            StorageError::ShardLog {
                source: crate::log::LogError::Failed { .. },
                ..
            } => StatusCode::SERVICE_UNAVAILABLE,
            StorageError::ShardLog {
                source: crate::log::LogError::NoSpace { .. },
                ..
            } => StatusCode::INSUFFICIENT_STORAGE,
            StorageError::Quarantined { .. } => StatusCode::SERVICE_UNAVAILABLE,
            // The client retries: nothing of the write was stored.
            StorageError::QueueFull(_) => StatusCode::SERVICE_UNAVAILABLE,
            StorageError::Control(e) => control_log_status(e),
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "write failed");
        }
        ApiError::new(status, e.to_string())
    }
}

/// `/query`'s answer to a query that gave no results. A parse error refuses the whole query
/// (400, in CSV when the client asked for CSV), as does a missing privilege; any other
/// error is what InfluxDB answers for a statement that failed: 200, the error as
/// statement 0's result (which a CSV answer leaves out, as InfluxDB's does).
pub(crate) fn query_failure(e: QueryError, csv: bool) -> HttpResponse {
    match e {
        QueryError::Parse(_) if csv => {
            let message = e.to_string();
            HttpResponse::BadRequest()
                .content_type("text/csv")
                .insert_header(("X-Influxdb-Error", message.clone()))
                .body(crate::query::csv::error(&message))
        }
        QueryError::Parse(_) => ApiError::bad_request(e.to_string()).v1(),
        QueryError::Auth(e) => ApiError::from(e).v1(),
        _ => {
            let results = vec![StatementResult::error(0, e.to_string())];
            if csv {
                return HttpResponse::Ok()
                    .content_type("text/csv")
                    .body(crate::query::csv::render(&results));
            }
            let mut body = crate::query::json::to_vec(&QueryResponse { results });
            body.push(b'\n');
            HttpResponse::Ok()
                .content_type("application/json")
                .body(body)
        }
    }
}

/// How a failed control-log change answers, whichever request made it (a catalog change,
/// a backup's record, the shards a write creates): a change too large for the log is the
/// client's, any other failure the node's.
pub(crate) fn control_log_status(e: &ProjectionError) -> StatusCode {
    match e {
        ProjectionError::Log(LogError::RecordTooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}
