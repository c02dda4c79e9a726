//! What went wrong talking to a remote node, and what a sender should do about it.

use std::time::{Duration, SystemTime};

/// The most of an error answer's body kept: enough for any message a server writes, and
/// bounded so that a proxy's HTML page or a misdirected download does not fill a log line.
pub const MAX_ERROR_BODY: usize = 4096;

/// What a sender should do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Send again, after a backoff of the sender's choosing: the request may succeed later.
    Backoff,
    /// Send again after this delay, as the server asked (`Retry-After`).
    After(Duration),
    /// Sending the same request again will fail the same way.
    Never,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No answer: the connection could not be made, broke, or timed out. `url` never holds
    /// the query string, which may carry credentials.
    #[error("{url}: {message}")]
    Transport {
        url: String,
        message: String,
        timeout: bool,
    },
    /// A non-2xx answer. `message` is the server's own (InfluxDB's JSON `error`, or 2.x's
    /// `message`), else the body's text; `body` is the body as sent (both bounded).
    #[error("{url}: HTTP {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
        body: String,
        retry_after: Option<Duration>,
    },
    /// A query answered 200 whose statement failed (InfluxDB answers a failed statement
    /// inside a successful response).
    #[error("{url}: statement {statement_id}: {message}")]
    Statement {
        url: String,
        statement_id: u64,
        message: String,
    },
    /// A 2xx answer that is not what the endpoint sends (not JSON, say).
    #[error("{url}: unexpected answer: {reason}")]
    Answer { url: String, reason: String },
    /// A request this client will not send (an invalid URL, a precision the endpoint
    /// lacks).
    #[error("{url}: {reason}")]
    Request { url: String, reason: String },
}

impl ClientError {
    pub fn retry(&self) -> Retry {
        match self {
            ClientError::Transport { .. } => Retry::Backoff,
            ClientError::Status {
                status,
                retry_after,
                ..
            } => classify_status(*status, *retry_after),
            ClientError::Statement { .. }
            | ClientError::Answer { .. }
            | ClientError::Request { .. } => Retry::Never,
        }
    }

    /// The HTTP status of an error answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub(crate) fn transport(url: &str, error: reqwest::Error) -> ClientError {
        ClientError::Transport {
            url: url.to_owned(),
            timeout: error.is_timeout(),
            message: error_chain(&error.without_url()),
        }
    }
}

/// What to do after an answer with `status` (not 2xx), given its parsed `Retry-After`.
///
/// 5xx is the server's trouble, usually passing (501 Not Implemented is not); 429 and 503
/// with a delay are the server asking for room. 429 without one is still "too many
/// requests", so it is retried after a backoff rather than given up: the data is not at
/// fault. Every other 4xx is the request's fault and fails the same way again.
pub fn classify_status(status: u16, retry_after: Option<Duration>) -> Retry {
    match (status, retry_after) {
        (429 | 503, Some(delay)) => Retry::After(delay),
        (429, None) => Retry::Backoff,
        (501, _) => Retry::Never,
        (500..=599, _) => Retry::Backoff,
        _ => Retry::Never,
    }
}

/// A `Retry-After` value (RFC 9110 10.2.3): delay-seconds, or an HTTP date, which gives
/// the delay from `now` (zero if it has passed). None if it is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than a u64 holds is still "a very long time", not garbage.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The server's message in an error body: `{"error": ...}` (1.x), `{"message": ...}`
/// (2.x), or the text itself.
pub(crate) fn error_message(body: &str) -> String {
    let from_json = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            ["error", "message"]
                .iter()
                .find_map(|k| v[k].as_str().map(str::to_owned))
        });
    from_json.unwrap_or_else(|| body.trim().to_owned())
}

/// An error with its causes: reqwest's own text ("error sending request") says nothing of
/// why; the cause ("Connection refused") is what a person needs.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        cause = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_error(status: u16, retry_after: Option<Duration>) -> ClientError {
        ClientError::Status {
            url: "http://127.0.0.1:1/write".into(),
            status,
            message: String::new(),
            body: String::new(),
            retry_after,
        }
    }

    #[test]
    fn server_errors_are_retried_except_not_implemented() {
        for status in [500, 502, 503, 504, 507, 599] {
            assert_eq!(
                status_error(status, None).retry(),
                Retry::Backoff,
                "{status}"
            );
        }
        assert_eq!(status_error(501, None).retry(), Retry::Never);
        assert_eq!(
            status_error(501, Some(Duration::from_secs(3))).retry(),
            Retry::Never
        );
    }

    #[test]
    fn a_delay_the_server_gives_is_kept_for_429_and_503() {
        let delay = Some(Duration::from_secs(7));
        assert_eq!(
            status_error(503, delay).retry(),
            Retry::After(Duration::from_secs(7))
        );
        assert_eq!(
            status_error(429, delay).retry(),
            Retry::After(Duration::from_secs(7))
        );
        assert_eq!(status_error(429, None).retry(), Retry::Backoff);
        // Only 429 and 503 are asked to wait; a 500 with the header is an ordinary retry.
        assert_eq!(status_error(500, delay).retry(), Retry::Backoff);
    }

    #[test]
    fn client_errors_are_not_retried() {
        for status in [400, 401, 403, 404, 405, 413, 422] {
            assert_eq!(status_error(status, None).retry(), Retry::Never, "{status}");
        }
        assert_eq!(
            status_error(400, Some(Duration::from_secs(1))).retry(),
            Retry::Never
        );
    }

    #[test]
    fn transport_errors_are_retried_and_bad_answers_are_not() {
        let transport = ClientError::Transport {
            url: "u".into(),
            message: "connection reset".into(),
            timeout: false,
        };
        assert_eq!(transport.retry(), Retry::Backoff);
        let statement = ClientError::Statement {
            url: "u".into(),
            statement_id: 0,
            message: "database not found: x".into(),
        };
        assert_eq!(statement.retry(), Retry::Never);
        let answer = ClientError::Answer {
            url: "u".into(),
            reason: "not JSON".into(),
        };
        assert_eq!(answer.retry(), Retry::Never);
    }

    #[test]
    fn retry_after_in_seconds() {
        let now = SystemTime::now();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn retry_after_as_a_date() {
        // Sun, 06 Nov 1994 08:49:37 GMT, RFC 9110's example.
        let date = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        let now = date - Duration::from_secs(90);
        let value = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(parse_retry_after(value, now), Some(Duration::from_secs(90)));
        // The obsolete forms a server may still send.
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_retry_after("Sun Nov  6 08:49:37 1994", now),
            Some(Duration::from_secs(90))
        );
        // A date already passed means "now".
        assert_eq!(
            parse_retry_after(value, date + Duration::from_secs(5)),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn retry_after_that_is_neither_is_ignored() {
        let now = SystemTime::now();
        for value in ["", "soon", "-5", "1.5", "5s", "Sun, 06 Nov 1994"] {
            assert_eq!(parse_retry_after(value, now), None, "{value:?}");
        }
    }

    #[test]
    fn the_servers_message_is_taken_from_its_json() {
        assert_eq!(
            error_message(r#"{"error":"unable to parse 'x': missing fields"}"#),
            "unable to parse 'x': missing fields"
        );
        assert_eq!(
            error_message(r#"{"code":"invalid","message":"bucket not found"}"#),
            "bucket not found"
        );
        assert_eq!(error_message("Bad Gateway\n"), "Bad Gateway");
    }
}
