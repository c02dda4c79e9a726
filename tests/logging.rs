//! The node's log as an operator's tools read it: no colour codes in a file, JSON lines
//! that parse, InfluxDB's `[httpd]` access log (off unless asked for), and a request id
//! on every answer and in the log lines of its request.

mod common;

use common::{request, Daemon};
use std::path::Path;

/// Stops the node (so that its last lines are written) and returns its log.
fn stop_and_read(daemon: Daemon, log: &Path) -> String {
    assert!(daemon.stop().success());
    std::fs::read_to_string(log).expect("read the log")
}

/// The access line of the request with id `id`, from `[httpd]` on.
fn access_line<'a>(log: &'a str, id: &str) -> &'a str {
    let line = log
        .lines()
        .find(|l| l.contains("[httpd]") && l.contains(id))
        .unwrap_or_else(|| panic!("no access line with request id {id} in:\n{log}"));
    &line[line.find("[httpd]").unwrap()..]
}

#[test]
fn a_log_written_to_a_file_holds_no_escape_codes_and_the_access_log_is_influxdbs() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("node.log");
    let data = dir.path().join("data");
    let d = Daemon::start_logging_to(&data, "http_access_log = true\n", &[], &log);
    common::query(d.addr, "", "CREATE DATABASE logs");
    let write = request(
        d.addr,
        "POST",
        "/write?db=logs&u=alice&p=secret",
        &[("User-Agent", "logging-test/1.0")],
        b"cpu v=1 1000000000",
    );
    assert_eq!(write.status, 204);
    let write_id = write
        .header("X-Request-Id")
        .expect("a request id")
        .to_owned();
    let ping = request(
        d.addr,
        "GET",
        "/ping",
        &[("X-Request-Id", "ping-from-test-7")],
        b"",
    );
    assert_eq!(ping.header("X-Request-Id"), Some("ping-from-test-7"));
    assert_eq!(ping.header("Request-Id"), Some("ping-from-test-7"));
    let text = stop_and_read(d, &log);

    assert!(text.contains("shardkeeper starting"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "escape codes in a log file:\n{text:?}"
    );
    let line = access_line(&text, &write_id);
    // [httpd] host - user [time] "request" status size "referer" "agent" id microseconds
    let pattern = regex::Regex::new(&format!(
        r#"^\[httpd\] 127\.0\.0\.1 - alice \[\d\d/[A-Z][a-z]{{2}}/\d{{4}}:\d\d:\d\d:\d\d \+0000\] "POST /write\?db=logs&u=alice&p=%5BREDACTED%5D HTTP/1\.1" 204 0 "-" "logging-test/1\.0" {write_id} \d+$"#
    ))
    .unwrap();
    assert!(pattern.is_match(line), "{line}");
    assert!(
        !text.contains("secret"),
        "a password reached the log:\n{text}"
    );
    assert!(access_line(&text, "ping-from-test-7").contains("\"GET /ping HTTP/1.1\" 204 0"));
}

#[test]
fn the_access_log_is_off_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("node.log");
    let d = Daemon::start_logging_to(&dir.path().join("data"), "", &[], &log);
    assert_eq!(d.request("GET", "/ping", b"").status, 204);
    let text = stop_and_read(d, &log);
    assert!(text.contains("shardkeeper starting"), "{text}");
    assert!(!text.contains("[httpd]"), "{text}");
}

#[test]
fn json_log_lines_parse_and_carry_their_requests_id() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("node.log");
    let d = Daemon::start_logging_to(
        &dir.path().join("data"),
        "log_format = \"json\"\nhttp_access_log = true\n",
        &[],
        &log,
    );
    let r = request(
        d.addr,
        "GET",
        "/query?q=SHOW%20DATABASES",
        &[("X-Request-Id", "json-req-1")],
        b"",
    );
    assert_eq!(r.status, 200);
    let text = stop_and_read(d, &log);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "shardkeeper starting" && l["level"] == "INFO"),
        "{text}"
    );
    let access: Vec<_> = lines
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("[httpd]"))
        })
        .collect();
    assert_eq!(access.len(), 1, "{text}");
    assert_eq!(
        access[0]["span"]["request_id"], "json-req-1",
        "{}",
        access[0]
    );
    assert!(access[0]["message"]
        .as_str()
        .unwrap()
        .contains("\"GET /query?q=SHOW%20DATABASES HTTP/1.1\" 200"));
}

#[test]
fn every_answer_carries_a_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start_with_config(dir.path(), "auth_enabled = true\n");
    let mut seen = std::collections::HashSet::new();
    let answers = [
        request(d.addr, "GET", "/ping", &[], b""),
        request(d.addr, "GET", "/no/such/route", &[], b""),
        request(d.addr, "GET", "/query?q=SHOW%20DATABASES", &[], b""),
        request(d.addr, "POST", "/write", &[], b"cpu v=1"),
        // A request line actix cannot parse: answered below the handlers, by conn.rs.
        request(d.addr, "GET", "/bad\u{1}path", &[], b""),
    ];
    for r in &answers {
        let id = r
            .header("X-Request-Id")
            .unwrap_or_else(|| panic!("no request id: {r:?}"));
        assert!(!id.is_empty());
        assert!(seen.insert(id.to_owned()), "request ids repeat: {id}");
    }
    assert_eq!(answers[4].status, 400);
}
