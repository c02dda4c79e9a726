//! What every request gets around its handler, for the operator: an id, sent back as
//! `X-Request-Id` (and `Request-Id`, as InfluxDB names it) and carried by every log line
//! of the request (a span); its count and latency in `/metrics`; and, when
//! `http_access_log` is on, a line in InfluxDB's `[httpd]` Common Log Format.

use super::metrics::Metrics;
use crate::node::Node;
use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use std::time::{Duration, Instant};
use tracing::Instrument;

pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// InfluxDB 1.x answers the id under both names.
const INFLUX_REQUEST_ID: HeaderName = HeaderName::from_static("request-id");

/// The longest request id a client may choose (a proxy's, say); others get a new one.
const MAX_CLIENT_REQUEST_ID: usize = 128;

/// The middleware (`middleware::from_fn`), outermost, so that it sees the answer the
/// client gets.
pub(crate) async fn observe(
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let id = request_id(req.headers());
    let span = tracing::info_span!("request", request_id = %id);
    let access = req
        .app_data::<web::Data<Node>>()
        .is_some_and(|node| node.config.http_access_log)
        .then(|| AccessLine::of(&req));
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    // No clone of the request is kept across the call: the guard takes its payload, which
    // needs the only reference. Handlers answer their errors themselves (an `Err` here is
    // actix's own, rendered by its dispatcher, and goes unobserved).
    let mut res = next.call(req).instrument(span.clone()).await?;
    let took = started.elapsed();
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, value.clone());
        res.headers_mut().insert(INFLUX_REQUEST_ID, value);
    }
    let status = res.status().as_u16();
    if let Some(metrics) = metrics {
        let endpoint = res.request().match_pattern();
        let method = res.request().method().as_str();
        metrics.request(
            endpoint.as_deref().unwrap_or("unmatched"),
            method,
            status,
            took,
        );
    }
    if let Some(line) = access {
        let size = match res.response().body().size() {
            BodySize::Sized(n) => n.to_string(),
            BodySize::None => "0".to_owned(),
            BodySize::Stream => "-".to_owned(),
        };
        let line = line.render(status, &size, &id, took);
        span.in_scope(|| tracing::info!(target: "shardkeeper::httpd", "{line}"));
    }
    Ok(res)
}

/// The client's id if it sent a plausible one (a proxy in front keeps its id through
/// this node), else a new UUID.
fn request_id(headers: &HeaderMap) -> String {
    let sent = headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= MAX_CLIENT_REQUEST_ID
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        });
    match sent {
        Some(id) => id.to_owned(),
        None => uuid::Uuid::new_v4().to_string(),
    }
}

/// What the access log line takes from the request, read before the handler has it.
struct AccessLine {
    host: String,
    user: String,
    request_line: String,
    referer: String,
    agent: String,
}

impl AccessLine {
    fn of(req: &ServiceRequest) -> AccessLine {
        let header = |name: header::HeaderName| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map_or_else(|| "-".to_owned(), escape)
        };
        let uri = req.uri();
        let target = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
        AccessLine {
            host: req
                .peer_addr()
                .map_or_else(|| "-".to_owned(), |a| a.ip().to_string()),
            user: user_of(req).map_or_else(|| "-".to_owned(), |u| escape(&u)),
            request_line: format!(
                "{} {} {:?}",
                req.method(),
                escape(&redact_password(target)),
                req.version()
            ),
            referer: header(header::REFERER),
            agent: header(header::USER_AGENT),
        }
    }

    /// InfluxDB 1.x's line: `[httpd] host - user [time] "request" status size "referer"
    /// "agent" request-id microseconds`.
    fn render(&self, status: u16, size: &str, id: &str, took: Duration) -> String {
        let time = jiff::Timestamp::now().strftime("%d/%b/%Y:%H:%M:%S %z");
        format!(
            "[httpd] {} - {} [{time}] \"{}\" {status} {size} \"{}\" \"{}\" {id} {}",
            self.host,
            self.user,
            self.request_line,
            self.referer,
            self.agent,
            took.as_micros()
        )
    }
}

/// The user a request names (`u=` or Basic), as InfluxDB logs it, checked or not.
fn user_of(req: &ServiceRequest) -> Option<String> {
    let from_query = form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, v)| k == "u" && !v.is_empty())
        .map(|(_, v)| v.into_owned());
    if from_query.is_some() {
        return from_query;
    }
    use base64::Engine;
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(basic.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':').map(|(user, _)| user.to_owned())
}

/// A URL with the value of `p=` replaced, as InfluxDB does: passwords never reach logs.
fn redact_password(target: &str) -> String {
    let Some((path, query)) = target.split_once('?') else {
        return target.to_owned();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|kv| match kv.strip_prefix("p=") {
            Some(_) => "p=%5BREDACTED%5D".to_owned(),
            None => kv.to_owned(),
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

/// Quotes and control characters escaped, so that a field cannot break the line.
fn escape(s: &str) -> String {
    s.chars().flat_map(|c| c.escape_default()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_redacted() {
        assert_eq!(
            redact_password("/query?u=bob&p=secret&q=SHOW"),
            "/query?u=bob&p=%5BREDACTED%5D&q=SHOW"
        );
        assert_eq!(redact_password("/ping"), "/ping");
    }

    #[test]
    fn a_client_id_is_kept_only_when_plausible() {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&h), "abc-123");
        h.insert(REQUEST_ID, HeaderValue::from_static("a b\"c"));
        assert_ne!(request_id(&h), "a b\"c");
        assert_eq!(request_id(&HeaderMap::new()).len(), 36, "a UUID");
    }
}
