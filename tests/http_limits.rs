//! Large, odd and slow requests (issue 13's probe): errors quote bounded excerpts of what
//! was sent, oversized bodies get 413 in the endpoint's JSON shape, known paths asked with
//! another method get 405 with `Allow`, and bodies that stall or crawl get 408 and lose
//! their connection.

mod common;
use common::{parse_response, query, request, urlencode, Daemon, Response};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const DB: &str = "limits";

fn body_text(r: &Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

fn create_db(addr: SocketAddr) {
    let r = query(addr, "", &format!("CREATE DATABASE {DB}"));
    assert_eq!(r.status, 200, "{}", body_text(&r));
}

fn write(addr: SocketAddr, body: &[u8]) -> Response {
    request(addr, "POST", &format!("/write?db={DB}"), &[], body)
}

#[test]
fn errors_about_many_bad_lines_quote_a_bounded_excerpt() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path());
    create_db(daemon.addr);
    // ~900 KB of lines that do not parse (no fields).
    let bad: String = (0..30_000)
        .map(|i| format!("cpu,host=server{i:06},region=somewhere\n"))
        .collect();
    let r = write(daemon.addr, bad.as_bytes());
    assert_eq!(r.status, 400);
    let header = r.header("X-Influxdb-Error").expect("X-Influxdb-Error");
    assert!(header.len() <= 1024, "header of {} bytes", header.len());
    assert!(header
        .starts_with("unable to parse 'cpu,host=server000000,region=somewhere': missing fields"));
    assert!(header.ends_with("..."), "{header}");
    assert!(r.body.len() <= 65 * 1024, "body of {} bytes", r.body.len());
    let message = r.json()["error"].as_str().expect("error").to_owned();
    assert!(message
        .starts_with("unable to parse 'cpu,host=server000000,region=somewhere': missing fields\n"));
    assert!(
        message.ends_with("more lines not shown"),
        "{}",
        &message[message.len() - 200..]
    );

    // The same with good lines among them: a partial write keeps its "dropped=" ending.
    let mixed = format!("cpu v=1 1000000000\n{bad}");
    let r = write(daemon.addr, mixed.as_bytes());
    assert_eq!(r.status, 400);
    assert!(r.body.len() <= 65 * 1024, "body of {} bytes", r.body.len());
    let message = r.json()["error"].as_str().expect("error").to_owned();
    assert!(
        message.starts_with("partial write: unable to parse"),
        "{}",
        &message[..100]
    );
    assert!(
        message.ends_with("more lines not shown dropped=0"),
        "{}",
        &message[message.len() - 100..]
    );
    assert!(r.header("X-Influxdb-Error").expect("header").len() <= 1024);
}

#[test]
fn an_error_about_a_megabyte_tag_value_quotes_a_kilobyte_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path());
    create_db(daemon.addr);
    let line = format!("cpu,host={}", "h".repeat(1 << 20));
    let r = write(daemon.addr, line.as_bytes());
    assert_eq!(r.status, 400);
    let header = r.header("X-Influxdb-Error").expect("header");
    assert!(header.len() <= 1024, "header of {} bytes", header.len());
    assert!(r.body.len() < 4096, "body of {} bytes", r.body.len());
    let message = r.json()["error"].as_str().expect("error").to_owned();
    let quoted = format!("cpu,host={}", "h".repeat(1024 - "cpu,host=".len()));
    assert_eq!(
        message,
        format!("unable to parse '{quoted}...': missing fields")
    );
}

#[test]
fn a_query_form_beyond_16_kib_is_read_and_one_beyond_the_bound_gets_413() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path());
    create_db(daemon.addr);
    let form_request = |body: &[u8]| {
        request(
            daemon.addr,
            "POST",
            "/query",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body,
        )
    };
    // 40 KiB of form: actix's default limit (16 KiB) answered `missing required parameter "q"`.
    let body = format!(
        "q={}&pad={}",
        urlencode("SHOW DATABASES"),
        "x".repeat(40 << 10)
    );
    let r = form_request(body.as_bytes());
    assert_eq!(r.status, 200, "{}", body_text(&r));
    assert_eq!(r.json()["results"][0]["series"][0]["values"][0][0], DB);
    // A long query in the form is read whole.
    let q = format!(
        "SELECT * FROM cpu WHERE host =~ /^({})$/",
        (0..4000)
            .map(|i| format!("h{i}"))
            .collect::<Vec<_>>()
            .join("|")
    );
    let body = format!("q={}&db={DB}", urlencode(&q));
    assert!(body.len() > 16 << 10);
    let r = form_request(body.as_bytes());
    assert_eq!(r.status, 200, "{}", body_text(&r));
    assert_eq!(r.json()["results"][0]["statement_id"], 0);

    let huge = format!(
        "q={}&pad={}",
        urlencode("SHOW DATABASES"),
        "x".repeat(11 << 20)
    );
    let r = form_request(huge.as_bytes());
    assert_eq!(r.status, 413, "{}", body_text(&r));
    let error = r.json()["error"].as_str().expect("error").to_owned();
    assert!(error.contains("larger"), "{error}");
    assert!(r.header("X-Influxdb-Error").is_some());
}

#[test]
fn a_v2_body_over_its_limit_gets_413_in_the_v2_shape() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path());
    let body = format!(
        r#"{{"username":"a","password":"{}"}}"#,
        "p".repeat(300 << 10)
    );
    let r = request(
        daemon.addr,
        "POST",
        "/api/v2/setup",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 413, "{}", body_text(&r));
    let json = r.json();
    assert_eq!(json["code"], "request too large", "{json}");
    assert!(
        json["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{json}"
    );
}

/// Every route and its methods (as `shardkeeper::http::route_table` registers them): each is served with each of
/// its methods, and any other method gets 405 with that `Allow`.
const ROUTES: &[(&str, &str)] = &[
    ("/ping", "GET, HEAD"),
    ("/health", "GET"),
    ("/metrics", "GET"),
    ("/query", "GET, POST"),
    ("/write", "POST"),
    ("/api/v2/write", "POST"),
    ("/api/v2/setup", "GET, POST"),
    ("/api/v2/orgs", "GET, POST"),
    ("/api/v2/buckets", "GET, POST"),
    ("/api/v2/buckets/0123456789abcdef", "DELETE"),
    ("/api/v2/authorizations", "GET, POST"),
    ("/api/v2/authorizations/0123456789abcdef", "DELETE"),
    ("/api/v2/backup/kv", "GET"),
    ("/api/v2/backup/metadata", "GET"),
    ("/api/v2/backup/status", "GET"),
    ("/api/v2/backup/shards/1", "GET"),
    ("/api/v2/restore/kv", "POST"),
    ("/api/v2/restore/bucketMetadata", "POST"),
    ("/api/v2/restore/shards/1", "POST"),
];

const NO_ROUTE: &str = "404 page not found\n";

#[test]
fn known_paths_asked_with_another_method_get_405_with_allow() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path());
    for (path, methods) in ROUTES {
        let allowed: Vec<&str> = methods.split(", ").collect();
        for method in &allowed {
            let r = request(daemon.addr, method, path, &[], b"");
            assert!(
                r.status != 405 && !(r.status == 404 && r.body == NO_ROUTE.as_bytes()),
                "{method} {path} is not served: {} {}",
                r.status,
                body_text(&r)
            );
        }
        for method in ["GET", "HEAD", "OPTIONS", "PUT", "POST", "DELETE", "PATCH"] {
            if allowed.contains(&method) {
                continue;
            }
            let r = request(daemon.addr, method, path, &[], b"");
            assert_eq!(r.status, 405, "{method} {path}: {}", body_text(&r));
            assert_eq!(r.header("Allow"), Some(*methods), "{method} {path}");
            if method == "HEAD" {
                continue;
            }
            let json = r.json();
            match path.starts_with("/api/v2/") {
                true => assert_eq!(json["code"], "method not allowed", "{method} {path}"),
                false => assert!(json["error"].as_str().is_some(), "{method} {path}"),
            }
        }
    }
    for (method, path) in [
        ("GET", "/nope"),
        ("PUT", "/query/x"),
        ("GET", "/api/v2/backup/shards/"),
    ] {
        let r = request(daemon.addr, method, path, &[], b"");
        assert_eq!(r.status, 404, "{method} {path}");
        assert_eq!(body_text(&r), NO_ROUTE);
    }
}

/// Sends `head` and `sent` and nothing more, keeping the connection open, then reads the
/// answer to the end: the server must answer and close the connection on its own.
fn stalled_request(addr: SocketAddr, head: &str, sent: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).expect("connect");
    // A generous bound on a failing test, not a measured time.
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(sent).unwrap();
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .expect("the server closes the connection");
    parse_response(&raw, false)
}

#[test]
fn a_stalled_body_gets_408_in_the_endpoints_shape_and_its_connection_closed() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_with_config(dir.path(), "body_timeout_seconds = 1\n");
    create_db(daemon.addr);
    let host = daemon.addr;

    let r = stalled_request(
        daemon.addr,
        &format!("POST /write?db={DB} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1000\r\n\r\n"),
        b"cpu v=1",
    );
    assert_eq!(r.status, 408, "{}", body_text(&r));
    let error = r.json()["error"].as_str().expect("error").to_owned();
    assert_eq!(error, "request body timed out: no data for 1 s");

    let r = stalled_request(
        daemon.addr,
        &format!(
            "POST /query HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
        ),
        b"q=SHOW",
    );
    assert_eq!(r.status, 408, "{}", body_text(&r));
    assert!(r.json()["error"].as_str().is_some());

    let r = stalled_request(
        daemon.addr,
        &format!(
            "POST /api/v2/setup HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        ),
        b"{\"user",
    );
    assert_eq!(r.status, 408, "{}", body_text(&r));
    assert_eq!(r.json()["code"], "request timeout");

    // Nothing was written by the cut-off write.
    let r = query(daemon.addr, DB, "SELECT * FROM cpu");
    assert_eq!(r.status, 200);
    assert!(
        r.json()["results"][0].get("series").is_none(),
        "{}",
        body_text(&r)
    );
}

#[test]
fn a_body_that_trickles_in_is_cut_off_at_the_total_bound() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_with_config(
        dir.path(),
        "body_timeout_seconds = 30\nbody_total_timeout_seconds = 1\n",
    );
    create_db(daemon.addr);
    let mut stream = TcpStream::connect(daemon.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let head = format!(
        "POST /write?db={DB} HTTP/1.1\r\nHost: {}\r\nContent-Length: 100000\r\n\r\n",
        daemon.addr
    );
    stream.write_all(head.as_bytes()).unwrap();
    // One byte every 50 ms, never idle for long, until the server stops reading (the
    // writer then fails) or a generous bound passes.
    let mut writer = stream.try_clone().unwrap();
    let trickle = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if writer.write_all(b"c").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .expect("the server closes the connection");
    let r = parse_response(&raw, false);
    assert_eq!(r.status, 408, "{}", body_text(&r));
    assert_eq!(
        r.json()["error"],
        "request body timed out: not complete after 1 s"
    );
    drop(stream);
    trickle.join().unwrap();
}

#[test]
fn a_url_too_long_to_parse_gets_414_and_a_malformed_head_400_each_with_a_json_error() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path());
    // 65 KB of URL: the `http` crate actix parses with cannot hold it, and actix's decoder
    // answered an empty 400.
    let long = format!("/query?q={}", "x".repeat(66_000));
    let r = request(daemon.addr, "GET", &long, &[], b"");
    assert_eq!(r.status, 414, "{}", body_text(&r));
    let error = r.json()["error"].as_str().expect("error").to_owned();
    assert!(error.contains("POST body"), "{error}");
    assert_eq!(r.header("X-Influxdb-Error"), Some(error.as_str()));

    // The same on a connection that has already served a request.
    let mut stream = TcpStream::connect(daemon.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .write_all(b"GET /ping HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 1024];
    let n = stream.read(&mut first).unwrap();
    assert!(first[..n].starts_with(b"HTTP/1.1 204"));
    stream
        .write_all(format!("GET {long} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes())
        .unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let r = parse_response(&raw, false);
    assert_eq!(r.status, 414, "{}", body_text(&r));

    // A head that is not HTTP: 400 saying so, not an empty answer.
    let mut stream = TcpStream::connect(daemon.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .write_all(b"GET /ping HTTP/1.1\r\nHost: a\r\nno colon here\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let r = parse_response(&raw, false);
    assert_eq!(r.status, 400, "{}", body_text(&r));
    let error = r.json()["error"].as_str().expect("error").to_owned();
    assert!(error.contains("malformed"), "{error}");
}
