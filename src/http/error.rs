//! The one place errors become HTTP answers: InfluxDB's status codes and JSON shapes.

use crate::storage::StorageError;
use actix_web::http::StatusCode;
use actix_web::HttpResponse;

/// An error answer in the v1 shape: `{"error":"..."}` plus `X-Influxdb-Error`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Sent as `Retry-After` (429 and 503 answers that know when to come back).
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn v1(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after_secs {
            r.insert_header(("Retry-After", secs.to_string()));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            r.insert_header(("Www-Authenticate", "Basic realm=\"InfluxDB\""));
        }
        if self.status != StatusCode::UNAUTHORIZED {
            // A header value carries visible ASCII only (the message may quote any bytes a
            // client sent); the body keeps the whole message.
            let visible: String = self
                .message
                .chars()
                .map(|c| {
                    if c.is_ascii_graphic() || c == ' ' {
                        c
                    } else {
                        '?'
                    }
                })
                .collect();
            r.insert_header(("X-Influxdb-Error", visible));
        }
        r.json(serde_json::json!({ "error": self.message }))
    }

    /// The v2 shape: `{"code":"...","message":"..."}`.
    pub fn v2(&self) -> HttpResponse {
        let code = match self.status {
            StatusCode::BAD_REQUEST => "invalid",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not found",
            StatusCode::PAYLOAD_TOO_LARGE => "request too large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported media type",
            StatusCode::UNPROCESSABLE_ENTITY => "conflict",
            StatusCode::CONFLICT => "conflict",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            StatusCode::TOO_MANY_REQUESTS => "too many requests",
            _ => "internal error",
        };
        let mut r = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after_secs {
            r.insert_header(("Retry-After", secs.to_string()));
        }
        r.json(serde_json::json!({ "code": code, "message": self.message }))
    }
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
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "write failed");
        }
        ApiError::new(status, e.to_string())
    }
}
