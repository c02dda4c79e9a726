//! A client connection as the HTTP server sees it: the socket, plus a clear answer where
//! actix's HTTP/1 decoder gives none.
//!
//! A request whose head actix cannot parse is answered by its dispatcher, before any
//! handler runs, with a hard-coded empty `400` (or `431` for a head over 128 KiB). The
//! commonest cause is a URL longer than 65,534 bytes, which the `http` crate cannot
//! represent and InfluxDB (Go's 1 MiB header limit) serves: a long `GET /query?q=...`.
//! An empty 400 tells that client nothing, so the empty answers the dispatcher writes are
//! given a body in the v1 error shape on their way out. Only an answer that starts a write
//! and matches the dispatcher's exact bytes is rewritten: handlers never answer without a
//! body, and these answers end the connection, so nothing follows them.
//!
//! With `https_enabled` the socket carries TLS ([`Stream::Tls`]); the watch and the
//! rewrite see the plain bytes either way.

use crate::net::Stream;
use actix_web::rt::net::TcpStream;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The longest request target the `http` crate accepts (`u16::MAX - 1`).
pub(super) const MAX_URL_BYTES: usize = 65_534;

/// A socket whose bodiless error answers are given a body.
pub(super) struct Conn {
    stream: Stream,
    lines: LineWatch,
    /// A rewritten answer, still to be written to the socket.
    pending: Vec<u8>,
    written: usize,
}

impl Conn {
    pub(super) fn new(stream: Stream) -> Conn {
        Conn {
            stream,
            lines: LineWatch::default(),
            pending: Vec::new(),
            written: 0,
        }
    }

    /// The TCP socket under any TLS.
    pub(super) fn stream(&self) -> &TcpStream {
        self.stream.tcp()
    }

    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n =
                ready!(Pin::new(&mut self.stream).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

/// Whether a line longer than a URL can be was read: why a head that follows would fail
/// to parse.
#[derive(Default)]
struct LineWatch {
    /// Bytes since the last line feed.
    line_len: usize,
    long_line: bool,
}

impl LineWatch {
    fn saw(&mut self, bytes: &[u8]) {
        let mut start = 0;
        for at in memchr::memchr_iter(b'\n', bytes) {
            self.long_line |= self.line_len + (at - start) > MAX_URL_BYTES;
            self.line_len = 0;
            start = at + 1;
        }
        self.line_len += bytes.len() - start;
        self.long_line |= self.line_len > MAX_URL_BYTES;
    }
}

/// The start of the dispatcher's answers to a head it could not parse, through the
/// `content-length` it gives them; the rest of their head (connection, date) is kept.
const BARE_400: &[u8] = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n";
const BARE_431: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n";

/// The answer to give instead of `head`, a bare answer of the dispatcher's, or `None`.
fn with_body(head: &[u8], long_line: bool) -> Option<Vec<u8>> {
    let (bare, status, message) = if head.starts_with(BARE_400) && long_line {
        (
            BARE_400,
            "414 URI Too Long",
            format!(
                "request URL longer than {MAX_URL_BYTES} bytes: send a long query in a POST body \
                 (application/x-www-form-urlencoded, q=...)"
            ),
        )
    } else if head.starts_with(BARE_400) {
        (
            BARE_400,
            "400 Bad Request",
            "malformed HTTP/1.1 request: its request line or a header could not be parsed"
                .to_owned(),
        )
    } else if head.starts_with(BARE_431) {
        (
            BARE_431,
            "431 Request Header Fields Too Large",
            "request head larger than 128 KiB: send a long query in a POST body".to_owned(),
        )
    } else {
        return None;
    };
    let end = memchr::memmem::find(head, b"\r\n\r\n")?;
    let body = serde_json::json!({ "error": message }).to_string();
    // No handler saw this request, so no middleware gave it an id: every answer has one.
    let id = uuid::Uuid::new_v4();
    let mut out = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\ncontent-type: application/json\r\n\
         x-influxdb-error: {message}\r\nx-request-id: {id}\r\nrequest-id: {id}\r\n",
        body.len()
    )
    .into_bytes();
    // The rest of the dispatcher's head (connection: close, date), then the body; the
    // dispatcher wrote no body, and the connection closes after this answer.
    out.extend_from_slice(&head[bare.len()..end + 4]);
    out.extend_from_slice(body.as_bytes());
    Some(out)
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.stream).poll_read(cx, buf))?;
        if !this.lines.long_line {
            this.lines.saw(&buf.filled()[before..]);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if let Some(answer) = with_body(buf, this.lines.long_line) {
            this.pending = answer;
            // The caller's bytes are taken now; they reach the socket as the rewritten
            // answer, flushed by this call or the next write, flush or shutdown.
            let _ = this.poll_pending(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DISPATCHER_400: &[u8] =
        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\ndate: Sun, 06 Dec 2026 14:16:46 GMT\r\n\r\n";

    fn parts(answer: &[u8]) -> (String, serde_json::Value) {
        let text = String::from_utf8(answer.to_vec()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(length, body.len(), "{head}");
        assert!(head.contains("connection: close"), "{head}");
        (
            head.lines().next().unwrap().to_owned(),
            serde_json::from_str(body).unwrap(),
        )
    }

    #[test]
    fn a_bare_400_after_a_long_line_becomes_414_with_a_json_error() {
        let (status, body) = parts(&with_body(DISPATCHER_400, true).unwrap());
        assert_eq!(status, "HTTP/1.1 414 URI Too Long");
        assert!(
            body["error"].as_str().unwrap().contains("65534 bytes"),
            "{body}"
        );
    }

    #[test]
    fn a_bare_400_otherwise_gets_a_json_error() {
        let (status, body) = parts(&with_body(DISPATCHER_400, false).unwrap());
        assert_eq!(status, "HTTP/1.1 400 Bad Request");
        assert!(
            body["error"].as_str().unwrap().contains("malformed"),
            "{body}"
        );
    }

    #[test]
    fn a_bare_431_gets_a_json_error() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\ndate: x\r\n\r\n";
        let (status, body) = parts(&with_body(head, false).unwrap());
        assert_eq!(status, "HTTP/1.1 431 Request Header Fields Too Large");
        assert!(
            body["error"].as_str().unwrap().contains("128 KiB"),
            "{body}"
        );
    }

    #[test]
    fn other_answers_are_left_alone() {
        let handler_400 = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 11\r\n\r\n{\"error\":1}";
        assert!(with_body(handler_400, true).is_none());
        assert!(with_body(b"HTTP/1.1 204 No Content\r\n\r\n", true).is_none());
    }

    #[test]
    fn a_line_longer_than_a_url_is_noticed_across_reads() {
        let mut conn_lines = LineWatch::default();
        conn_lines.saw(&vec![b'x'; MAX_URL_BYTES]);
        assert!(!conn_lines.long_line);
        conn_lines.saw(b"x\r\nHost: a\r\n");
        assert!(conn_lines.long_line);
        let mut short = LineWatch::default();
        short.saw(b"GET / HTTP/1.1\r\n");
        short.saw(&[b'y'; 100]);
        assert!(!short.long_line);
    }
}
