//! What one write request may cost the node: memory within `max_request_memory_mib`
//! whatever the body's shape (a gzip bomb, a body of tiny lines, a 100,000-field line),
//! parsing off the threads that answer other requests, field-count limits, and bodies in
//! encodings the node does not read refused rather than parsed as text.

mod common;

use common::{query, request, Daemon, Response};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

/// The node's resident memory besides what requests hold (runtime, log writers, the
/// catalog, one shard's head of a few points): `deploy/shardkeeper.toml` documents the
/// bound as this plus `max_request_memory_mib` per write under way.
const IDLE_BASELINE_MIB: u64 = 32;

fn create_database(addr: SocketAddr, db: &str) {
    let r = query(addr, "", &format!("CREATE DATABASE {db}"));
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
}

fn write(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    request(addr, "POST", path, headers, body)
}

/// The daemon's peak resident set so far (`VmHWM`), in bytes.
fn peak_rss(d: &Daemon) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.child.id()))
        .expect("read /proc/<pid>/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmHWM value");
    kib * 1024
}

/// `bytes` of valid line protocol (the same point over and over) gzip-compressed as it is
/// produced, so that the test holds only the compressed body: a few hundred KB.
fn gzip_bomb(bytes: usize) -> Vec<u8> {
    let line =
        b"cpu,host=server01,region=us-west usage_user=0.5,usage_system=0.25 1700000000000000000\n";
    let chunk: Vec<u8> = line.repeat(10_000);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut written = 0;
    while written < bytes {
        gz.write_all(&chunk).expect("gzip");
        written += chunk.len();
    }
    gz.finish().expect("gzip")
}

/// One line of `fields` fields `f0=0i,f1=1i,...` of measurement `m`.
fn wide_line(m: &str, fields: usize) -> String {
    let mut line = format!("{m} ");
    for i in 0..fields {
        if i > 0 {
            line.push(',');
        }
        line.push_str(&format!("f{i}={i}i"));
    }
    line
}

fn rows(r: &Response) -> Vec<serde_json::Value> {
    common::rows_of(r)
}

#[test]
fn a_gzip_bomb_a_body_of_tiny_lines_and_a_100000_field_line_stay_within_the_request_budget() {
    const BUDGET_MIB: u64 = 64;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start_with_config(
        &dir.path().join("node"),
        &format!("max_request_memory_mib = {BUDGET_MIB}\nmax_fields_per_point = 0\n"),
    );
    create_database(d.addr, "db");

    // 400 MB of lines in about 1 MB of gzip: refused as soon as it inflates past the
    // budget, twice (the first one's memory must not stay on top of the second's).
    let bomb = gzip_bomb(400_000_000);
    assert!(
        bomb.len() < 2 * MIB as usize,
        "bomb is {} bytes",
        bomb.len()
    );
    for _ in 0..2 {
        let r = write(
            d.addr,
            "/write?db=db",
            &[("Content-Encoding", "gzip")],
            &bomb,
        );
        assert_eq!(r.status, 413, "{:?}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.error(), "Request Entity Too Large");
    }
    let r = write(
        d.addr,
        "/api/v2/write?bucket=db",
        &[("Content-Encoding", "gzip")],
        &bomb,
    );
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["code"], "request too large");
    assert!(
        rows(&query(d.addr, "db", "SELECT count(*) FROM cpu")).is_empty(),
        "a refused body wrote nothing"
    );

    // 20 MB of the shortest lines: under max_body_bytes, but millions of points.
    let tiny: Vec<u8> = b"t f=1\n".repeat(20_000_000 / 6);
    let r = write(d.addr, "/write?db=db", &[], &tiny);
    assert_eq!(r.status, 413, "{:?}", String::from_utf8_lossy(&r.body));
    let message = r.error();
    assert!(
        message.starts_with("Request Entity Too Large")
            && message.contains("max_request_memory_mib (64)"),
        "{message}"
    );
    drop(tiny);
    assert!(rows(&query(d.addr, "db", "SELECT count(*) FROM t")).is_empty());

    // A 100,000-field line is served (no field limit on this node), and reads back.
    let line = wide_line("wide", 100_000);
    let r = write(d.addr, "/write?db=db", &[], line.as_bytes());
    assert_eq!(r.status, 204, "{:?}", String::from_utf8_lossy(&r.body));
    let back = rows(&query(d.addr, "db", "SELECT f0, f99999 FROM wide"));
    assert_eq!(back.len(), 1);
    assert_eq!(back[0][1], 0);
    assert_eq!(back[0][2], 99_999);

    let peak = peak_rss(&d);
    let bound = (BUDGET_MIB + IDLE_BASELINE_MIB) * MIB;
    assert!(
        peak < bound,
        "peak RSS {} MiB is over the budget plus baseline ({} MiB)",
        peak / MIB,
        bound / MIB
    );
    d.stop();
}

#[test]
fn ping_answers_while_wide_lines_are_parsed_and_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start_with_config(&dir.path().join("node"), "max_fields_per_point = 0\n");
    create_database(d.addr, "db");
    // Seconds of parsing and storing (minutes when a field was looked up by a scan).
    let body: String = (0..12)
        .map(|i| wide_line(&format!("wide{i}"), 100_000) + "\n")
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (addr, done) = (d.addr, done.clone());
        std::thread::spawn(move || {
            let r = write(addr, "/write?db=db", &[], body.as_bytes());
            done.store(true, Ordering::SeqCst);
            r
        })
    };
    // Both HTTP workers must stay free: pings on new connections (spread over the two
    // workers) are answered while the write is still under way.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut answered_during_write = 0;
    while answered_during_write < 4 {
        assert!(Instant::now() < deadline, "no ping answered");
        let r = request(d.addr, "GET", "/ping", &[], b"");
        assert_eq!(r.status, 204);
        assert!(
            !done.load(Ordering::SeqCst),
            "the write finished before {} pings were answered: they waited for it",
            4 - answered_during_write
        );
        answered_during_write += 1;
    }
    let r = writer.join().expect("writer thread");
    assert_eq!(r.status, 204, "{:?}", String::from_utf8_lossy(&r.body));
    let back = rows(&query(d.addr, "db", "SELECT f99999 FROM wide11"));
    assert_eq!(back.len(), 1);
    assert_eq!(back[0][1], 99_999);
    d.stop();
}

#[test]
fn field_limits_refuse_wide_points_with_messages_naming_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    // max_fields_per_point keeps its default (65,536).
    let d = Daemon::start_with_config(
        &dir.path().join("node"),
        "max_fields_per_measurement = 10\n",
    );
    create_database(d.addr, "db");

    let line = wide_line("wide", 100_000);
    let r = write(d.addr, "/write?db=db", &[], line.as_bytes());
    assert_eq!(r.status, 400);
    let message = r.error();
    assert!(
        message.starts_with("unable to parse 'wide f0=0i,f1=1i,")
            && message.ends_with("': too many fields: 100000 > max_fields_per_point (65536)"),
        "{}...{}",
        &message[..80],
        &message[message.len() - 80..]
    );
    assert!(rows(&query(d.addr, "db", "SELECT count(*) FROM wide")).is_empty());

    // Eight fields, then a point adding three more: past 10, dropped; the other lines
    // of its body are written.
    let r = write(d.addr, "/write?db=db", &[], wide_line("m", 8).as_bytes());
    assert_eq!(r.status, 204, "{:?}", String::from_utf8_lossy(&r.body));
    let body = format!("{} 1\nm f0=5i 2\n", wide_line("m", 11));
    let r = write(d.addr, "/write?db=db", &[], body.as_bytes());
    assert_eq!(r.status, 400);
    assert_eq!(
        r.error(),
        "partial write: field limit exceeded: measurement \"m\" would have 11 fields, more than max_fields_per_measurement (10) dropped=1"
    );
    let keys = rows(&query(d.addr, "db", "SHOW FIELD KEYS FROM m"));
    assert_eq!(keys.len(), 8, "{keys:?}");
    let back = rows(&query(d.addr, "db", "SELECT f0 FROM m WHERE time < 1000"));
    assert_eq!(back.len(), 1, "{back:?}");
    assert_eq!(back[0][1], 5);

    // The v2 endpoint answers the same limits in its shape.
    let r = write(d.addr, "/api/v2/write?bucket=db", &[], body.as_bytes());
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["code"], "invalid");
    d.stop();
}

#[test]
fn deflate_and_br_bodies_are_refused_with_415_in_each_endpoints_shape() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(&dir.path().join("node"));
    create_database(d.addr, "db");
    for encoding in ["deflate", "br", "zstd"] {
        let r = write(
            d.addr,
            "/write?db=db",
            &[("Content-Encoding", encoding)],
            b"refused value=1 1",
        );
        assert_eq!(r.status, 415, "{encoding}");
        assert_eq!(
            r.error(),
            format!(
                "unsupported Content-Encoding \"{encoding}\": only gzip and identity are accepted"
            )
        );
        let r = write(
            d.addr,
            "/api/v2/write?bucket=db",
            &[("Content-Encoding", encoding)],
            b"refused value=1 1",
        );
        assert_eq!(r.status, 415, "{encoding}");
        assert_eq!(r.json()["code"], "unsupported media type");
    }
    assert!(rows(&query(d.addr, "db", "SELECT * FROM refused")).is_empty());

    // identity, no header and gzip are read.
    let r = write(
        d.addr,
        "/write?db=db",
        &[("Content-Encoding", "identity")],
        b"kept value=1 1",
    );
    assert_eq!(r.status, 204);
    let r = write(d.addr, "/write?db=db", &[], b"kept value=2 2");
    assert_eq!(r.status, 204);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"kept value=3 3").expect("gzip");
    let r = write(
        d.addr,
        "/api/v2/write?bucket=db",
        &[("Content-Encoding", "gzip")],
        &gz.finish().expect("gzip"),
    );
    assert_eq!(r.status, 204);
    assert_eq!(rows(&query(d.addr, "db", "SELECT * FROM kept")).len(), 3);
    d.stop();
}

/// The largest body the node accepts (just under `max_body_bytes`, 25 MB), with points
/// in five shard groups: written whole (204, every point read back with its value) when
/// `max_request_memory_mib` lets it be held, and refused whole (413, nothing written)
/// when it does not, as with the default budget for this body of short lines.
#[test]
fn a_25_mb_body_spanning_five_shards_is_written_whole_or_not_at_all() {
    const WEEK: i64 = 7 * 86_400 * 1_000_000_000;
    let start: i64 = 1_700_006_400_000_000_000;
    let mut body = Vec::with_capacity(25_000_000);
    let (mut lines, mut sum) = (0i64, 0i64);
    loop {
        let line = format!(
            "big,host=h{},region=r{} v={lines}i,w=0.5,x=\"some text\",y=true {}\n",
            lines % 1000,
            lines % 7,
            start + (lines % 5) * WEEK + lines
        );
        if body.len() + line.len() > 24_999_000 {
            break;
        }
        body.extend_from_slice(line.as_bytes());
        sum += lines;
        lines += 1;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let totals = "SELECT count(v), sum(v), count(x) FROM big";

    let d = Daemon::start(&dir.path().join("default"));
    create_database(d.addr, "db");
    let r = write(d.addr, "/write?db=db", &[], &body);
    assert_eq!(r.status, 413, "{:?}", String::from_utf8_lossy(&r.body));
    assert!(
        r.error().contains("max_request_memory_mib"),
        "{}",
        r.error()
    );
    assert!(
        rows(&query(d.addr, "db", totals)).is_empty(),
        "nothing was written"
    );
    drop(d);

    let d = Daemon::start_with_config(&dir.path().join("roomy"), "max_request_memory_mib = 1024\n");
    create_database(d.addr, "db");
    let r = write(d.addr, "/write?db=db", &[], &body);
    assert_eq!(r.status, 204, "{:?}", String::from_utf8_lossy(&r.body));
    let shards = query(d.addr, "db", "SHOW SHARDS");
    assert_eq!(shards.status, 200);
    let listed = shards.json()["results"][0]["series"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "db"))
        .and_then(|s| s["values"].as_array())
        .map(Vec::len)
        .expect("the database's shards");
    assert_eq!(listed, 5, "the body's points fall in five shard groups");
    let found = rows(&query(d.addr, "db", totals));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0][1], lines, "every point counted");
    assert_eq!(found[0][2], sum, "every value read back");
    assert_eq!(found[0][3], lines, "every string field too");
}
