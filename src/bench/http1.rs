//! The bench's HTTP/1.1 client: one kept-alive connection, the request written and the
//! answer read on the calling thread into a buffer kept from request to request.
//!
//! A general client costs more than a small query does: ureq, timed against the same
//! servers, added 25-30 µs to each request (a liveness probe of the pooled connection and
//! three `ioctl`s around it before each request and after each answer, and a fresh
//! 128 KiB read buffer), the same on both servers, which pulled every sub-millisecond
//! ratio toward 1. What is timed here is one `write` and the `read`s of the answer.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// How long a read may wait for a server's next byte before the bench gives up on it.
const READ_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the answer is not HTTP/1.1: {0}")]
    Malformed(String),
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
}

/// An answer: its status and body (the body borrowed from the connection's buffer).
pub(crate) struct Answer<'c> {
    pub status: u16,
    pub body: &'c [u8],
}

/// A kept-alive connection to one server.
pub(crate) struct Connection {
    /// `host:port`, for the Host header and to connect again.
    authority: String,
    stream: Option<TcpStream>,
    request: Vec<u8>,
    /// What was read of the current answer (head and body as received) is
    /// `received[..filled]`; the rest is room for the next read, zeroed once.
    received: Vec<u8>,
    filled: usize,
    /// The body, de-chunked when it came in chunks.
    body: Vec<u8>,
    max_body: usize,
}

impl Connection {
    pub(crate) fn new(authority: &str, max_body: usize) -> Connection {
        Connection {
            authority: authority.to_owned(),
            stream: None,
            request: Vec::with_capacity(1024),
            received: vec![0; 64 << 10],
            filled: 0,
            body: Vec::new(),
            max_body,
        }
    }

    /// Sends a request (with a form body for a POST) and reads its answer. A kept
    /// connection the server has closed in the meantime is opened again, once.
    pub(crate) fn send(
        &mut self,
        method: &str,
        path: &str,
        form: Option<&[u8]>,
    ) -> Result<Answer<'_>, HttpError> {
        self.request.clear();
        let req = &mut self.request;
        write!(
            req,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n",
            self.authority
        )?;
        if let Some(body) = form {
            write!(
                req,
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                body.len()
            )?;
        }
        req.extend_from_slice(b"\r\n");
        if let Some(body) = form {
            req.extend_from_slice(body);
        }
        let fresh = self.stream.is_none();
        let status = match self.exchange() {
            Err(HttpError::Io(e)) if !fresh && closed_by_peer(&e) => {
                self.stream = None;
                self.exchange()
            }
            other => other,
        }
        .inspect_err(|_| self.stream = None)?;
        Ok(Answer {
            status,
            body: &self.body,
        })
    }

    /// Writes the request and reads the answer: its status.
    fn exchange(&mut self) -> Result<u16, HttpError> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.authority)?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(READ_TIMEOUT))?;
            self.stream = Some(stream);
        }
        let stream = self.stream.as_mut().expect("connected above");
        stream.write_all(&self.request)?;
        self.filled = 0;
        self.body.clear();
        let (status, head_len, framing, close) = loop {
            self.fill()?;
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(&self.received[..self.filled]) {
                Ok(httparse::Status::Complete(len)) => {
                    let status = response.code.unwrap_or(0);
                    let (mut framing, close) = framing_of(response.headers)?;
                    // No body follows these, whatever the headers say (RFC 9112, 6.3).
                    if status == 204 || status == 304 || status < 200 {
                        framing = Framing::Length(0);
                    }
                    break (status, len, framing, close);
                }
                Ok(httparse::Status::Partial) => continue,
                Err(e) => return Err(HttpError::Malformed(e.to_string())),
            }
        };
        match framing {
            Framing::Length(n) => {
                if n > self.max_body {
                    return Err(HttpError::TooLarge(self.max_body));
                }
                while self.filled < head_len + n {
                    self.fill()?;
                }
                self.body
                    .extend_from_slice(&self.received[head_len..head_len + n]);
            }
            Framing::Chunked => self.read_chunks(head_len)?,
            Framing::UntilClose => {
                while self.fill_or_end()? {}
                self.body
                    .extend_from_slice(&self.received[head_len..self.filled]);
            }
        }
        if close || matches!(framing, Framing::UntilClose) {
            self.stream = None;
        }
        Ok(status)
    }

    fn read_chunks(&mut self, mut at: usize) -> Result<(), HttpError> {
        loop {
            let (size_len, size) = loop {
                match httparse::parse_chunk_size(&self.received[at..self.filled]) {
                    Ok(httparse::Status::Complete((len, size))) => break (len, size),
                    Ok(httparse::Status::Partial) => self.fill()?,
                    Err(_) => return Err(HttpError::Malformed("bad chunk size".into())),
                }
            };
            at += size_len;
            let size = usize::try_from(size).map_err(|_| HttpError::TooLarge(self.max_body))?;
            if self.body.len().saturating_add(size) > self.max_body {
                return Err(HttpError::TooLarge(self.max_body));
            }
            // Each chunk ends in CRLF; the last (empty) one too, as neither server sends
            // trailers.
            while self.filled < at + size + 2 {
                self.fill()?;
            }
            if size == 0 {
                return Ok(());
            }
            self.body.extend_from_slice(&self.received[at..at + size]);
            at += size + 2;
        }
    }

    /// Reads more of the answer; its end is an error here (the answer is not whole).
    fn fill(&mut self) -> Result<(), HttpError> {
        if self.fill_or_end()? {
            Ok(())
        } else {
            Err(HttpError::Io(std::io::ErrorKind::UnexpectedEof.into()))
        }
    }

    /// Reads more of the answer: false at the connection's end.
    fn fill_or_end(&mut self) -> Result<bool, HttpError> {
        if self.filled == self.received.len() {
            if self.filled > self.max_body.saturating_add(64 << 10) {
                return Err(HttpError::TooLarge(self.max_body));
            }
            self.received.resize(self.filled * 2, 0);
        }
        let stream = self.stream.as_mut().expect("a request was written");
        let n = stream.read(&mut self.received[self.filled..])?;
        self.filled += n;
        Ok(n > 0)
    }
}

enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

fn framing_of(headers: &[httparse::Header<'_>]) -> Result<(Framing, bool), HttpError> {
    let mut framing = Framing::UntilClose;
    let mut close = false;
    for h in headers {
        let value = std::str::from_utf8(h.value).unwrap_or("").trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = value
                .parse()
                .map_err(|_| HttpError::Malformed(format!("content-length {value:?}")))?;
            framing = Framing::Length(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding")
            && value.eq_ignore_ascii_case("chunked")
        {
            framing = Framing::Chunked;
        } else if h.name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close") {
            close = true;
        }
    }
    Ok((framing, close))
}

/// Whether a failed exchange on a kept connection means the server had closed it (an
/// idle timeout), so that the request can be sent again on a new one.
fn closed_by_peer(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        UnexpectedEof | ConnectionReset | BrokenPipe | ConnectionAborted
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A server that answers each connection's requests with the next of `answers`, each
    /// written in pieces of `piece` bytes; `None` closes the connection instead.
    fn serve(answers: Vec<Option<&'static str>>, piece: usize) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let mut answers = answers.into_iter();
            'connections: for conn in listener.incoming() {
                let mut conn = conn.unwrap();
                let mut buf = [0u8; 4096];
                loop {
                    // Each test request fits one read: its head ends the read.
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => continue 'connections,
                        Ok(_) => {}
                    }
                    match answers.next() {
                        Some(Some(answer)) => {
                            for part in answer.as_bytes().chunks(piece) {
                                conn.write_all(part).unwrap();
                                conn.flush().unwrap();
                            }
                        }
                        Some(None) => continue 'connections,
                        None => return,
                    }
                }
            }
        });
        addr
    }

    #[test]
    fn reads_sized_and_chunked_answers_on_one_connection_in_pieces() {
        let addr = serve(
            vec![
                // influxd's /ping: no Content-Length, no body.
                Some("HTTP/1.1 204 No Content\r\nX-Influxdb-Version: 1.6.7\r\n\r\n"),
                Some("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
                Some("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"),
            ],
            3,
        );
        let mut c = Connection::new(&addr, 1 << 20);
        assert_eq!(c.send("GET", "/ping", None).unwrap().status, 204);
        let a = c.send("POST", "/query", Some(b"q=x")).unwrap();
        assert_eq!((a.status, a.body), (200, &b"hello"[..]));
        let a = c.send("GET", "/query", None).unwrap();
        assert_eq!((a.status, a.body), (200, &b"abcdefg"[..]));
    }

    #[test]
    fn a_kept_connection_the_server_closed_is_opened_again() {
        let addr = serve(
            vec![
                Some("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"),
                None,
                Some("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"),
            ],
            64,
        );
        let mut c = Connection::new(&addr, 1 << 20);
        assert_eq!(c.send("GET", "/", None).unwrap().body, b"a");
        assert_eq!(c.send("GET", "/", None).unwrap().body, b"b");
    }

    #[test]
    fn an_answer_over_the_limit_or_not_http_is_an_error() {
        let addr = serve(
            vec![Some("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")],
            64,
        );
        let mut c = Connection::new(&addr, 10);
        assert!(matches!(
            c.send("GET", "/", None),
            Err(HttpError::TooLarge(10))
        ));
        let addr = serve(vec![Some("SSH-2.0-OpenSSH\r\n\r\n")], 64);
        let mut c = Connection::new(&addr, 10);
        assert!(matches!(
            c.send("GET", "/", None),
            Err(HttpError::Malformed(_))
        ));
    }
}
